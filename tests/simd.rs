//! The float32 SIMD trainer's own guarantees, beside the agreement suite
//! (tests/agreement.rs runs every shared test body on it too): agreement
//! with the float64 reference over every activation x loss x optimizer x
//! bias mode; results that do not depend on the thread count, on how the
//! networks fall into lane groups (the remainder of a population that is
//! not a multiple of the lane count included) or on the instruction set;
//! a stop request ending every group at a check, as a shorter run.

use crate::common;

use common::{Run as SimdRun, simd_run};

use gputrain::batches::Batching;
use gputrain::cpu;
use gputrain::data::{Dataset, Task, TaskOptions};
use gputrain::init::{Init, population_parameters};
use gputrain::model::{
    Activation, BiasMode, Loss, ModelSpec, Optimizer, OptimizerConfig, Reduction,
};
use gputrain::simd::Isa;
use gputrain::training::TrainOptions;
use gputrain::vocab::Hyperparameter;

/// Every model of the vocabulary on a 3-4-2 network: each hidden
/// activation x (output activation, loss) pair the loss accepts x
/// optimizer x bias mode, the shared biases frozen for SGD.
fn every_model() -> Vec<ModelSpec> {
    let mut specs = common::every_model(&[3, 4, 2], &Optimizer::ALL);
    for spec in &mut specs {
        spec.freeze_bias = spec.optimizer.kind == Optimizer::Sgd && spec.bias == BiasMode::Shared;
    }
    specs
}

/// Whether parameter `k` of `spec` has no effect on any output, so its
/// gradient is 0 in exact arithmetic: the softmax layer's shared bias (a
/// shift of every logit, which the softmax cancels). Its float32 gradient
/// is rounding noise around 0 (about 1e-8) where float64's is 1e-17, and
/// Adam divides each by its own root mean square: float32 then steps by
/// about lr a step, float64 by 1e-9 (measured: 0.26 vs -1.1e-9 after 60
/// epochs at lr 0.01). The two genuinely part there, with no effect on
/// the network's function, which the final-loss check still compares.
fn no_effect(spec: &ModelSpec, k: usize) -> bool {
    let layout = spec.layout();
    let last = layout.layers[layout.layers.len() - 1];
    spec.output_activation.def().normalizes_rows
        && spec.bias == BiasMode::Shared
        && last.bias_count == 1
        && k == last.bias_offset
}

/// float32 lanes vs float64 after 60 epochs (mean over 8 samples; lr 0.2,
/// momentum and nesterov 0.05, Adam and AdamW 0.01, RMSprop 1e-4), 16
/// networks per model, 1,440 models. Measured on the 2-core development
/// machine (Intel Xeon with AVX-512, this session's; 2 threads): the
/// worst scaled parameter difference |simd - f64| / (1 + |f64|) was
/// 3.08e-5 (Adam on a sigmoid/softmax network with a shared bias, AdamW
/// alike; RMSprop's 7.1e-6, the others' at most 5.7e-6) and the worst
/// scaled final-loss difference 2.6e-6; the tolerances are 10x.
const EVERY_MODEL_PARAM_TOL: f64 = 3.1e-4;
const EVERY_MODEL_LOSS_TOL: f64 = 2.6e-5;

#[test]
fn every_activation_loss_optimizer_and_bias_mode_agrees_with_the_reference() {
    let data = common::synthetic_dataset(3, 2, 8, 4);
    let opts = common::options(60);
    let (mut worst_param, mut worst_loss) = (0.0f64, 0.0f64);
    // The worst scaled parameter difference of each optimizer, and where.
    let mut by_optimizer: Vec<(f64, String)> = vec![(0.0, String::new()); Optimizer::ALL.len()];
    let specs = every_model();
    // The walk reaches every entry of every table.
    for a in gputrain::vocab::ACTIVATIONS {
        let used =
            |s: &ModelSpec| s.activation == a.activation || s.output_activation == a.activation;
        assert!(specs.iter().any(used), "{:?} is not walked", a.activation);
    }
    for l in Loss::ALL {
        assert!(specs.iter().any(|s| s.loss == l), "{l:?} is not walked");
    }
    for o in Optimizer::ALL {
        assert!(
            specs.iter().any(|s| s.optimizer.kind == o),
            "{o:?} is not walked"
        );
    }
    for b in BiasMode::ALL {
        assert!(specs.iter().any(|s| s.bias == b), "{b:?} is not walked");
    }
    for spec in &specs {
        let init = match spec.activation {
            Activation::Relu => Init::He,
            _ => Init::Xavier,
        };
        // Momentum's steps grow to lr / (1 - 0.9) = 10 lr: at lr 0.2 a
        // linear-output network ran away (float64 reached 1e56, float32
        // overflowed), so the momentum methods take 0.05. RMSprop's first
        // step is lr / sqrt(1 - alpha) = 10 lr per parameter whatever the
        // gradient, and at lr 0.01 its bang-bang steps across a valley
        // make the trajectory chaotic: on a 3-4-2 tanh network the float32
        // and float64 runs parted by 6.5e-8 after 1 epoch, 1.2e-6 after
        // 20, 7.5e-6 after 40 and 3.6e-4 after 60 (growing 5x every 20
        // epochs, as rounding noise does in a chaotic map; Adam, whose
        // running mean smooths the gradient, stayed at 3.4e-6). At lr
        // 0.001, where RMSprop's steps follow the valley, they agree to
        // 3.1e-7 after 60 epochs. A ReLU network with the cross-entropy
        // still parted at lr 0.001: 2.9e-7 after 40 epochs, 2.2e-4 after
        // 60, in one jump (a hidden ReLU whose inputs cross its kink one
        // epoch apart in the two precisions; RMSprop then divides the
        // revived neuron's first tiny gradients by a running average that
        // decayed while it was dead). At lr 1e-4 (first steps 1e-3) every
        // model stays within the measured figures below: the regime
        // tested.
        let lr = match spec.optimizer.kind {
            Optimizer::Sgd => 0.2,
            Optimizer::Momentum | Optimizer::Nesterov => 0.05,
            Optimizer::Adam | Optimizer::Adamw => 0.01,
            Optimizer::Rmsprop => 1e-4,
        };
        let lrs = vec![lr; 16];
        let data = common::data_for(spec, &data);
        let initial = population_parameters(spec, init, 8, 0, lrs.len()).unwrap();
        let isa = Isa::detect();
        let run = simd_run((isa, 2), spec, &data, &initial, &lrs, &opts, &|| false);
        let (got, params) = (run.outcomes, run.params);
        let mut reference = initial.clone();
        let expected = cpu::train_population(spec, &data, &mut reference, &lrs, &opts);
        let label = format!(
            "{} {}/{} {} {} bias{} {}",
            spec.topology,
            spec.activation,
            spec.output_activation,
            spec.loss,
            spec.bias,
            if spec.freeze_bias { " (frozen)" } else { "" },
            spec.optimizer.kind
        );
        let layout = spec.layout();
        let p = layout.len;
        for (n, (g, r)) in got.iter().zip(&expected).enumerate() {
            assert_eq!(
                g.diverged, r.diverged,
                "{label}: network {n}: {g:?} vs {r:?}"
            );
            let loss = (g.final_loss - r.final_loss).abs() / (1.0 + r.final_loss.abs());
            assert!(
                loss <= EVERY_MODEL_LOSS_TOL,
                "{label}: network {n} final loss {} vs reference {}",
                g.final_loss,
                r.final_loss
            );
            worst_loss = worst_loss.max(loss);
            for k in 0..p {
                if no_effect(spec, k) {
                    continue;
                }
                let (a, b) = (params[n * p + k], reference[n * p + k]);
                let diff = (a - b).abs() / (1.0 + b.abs());
                assert!(
                    diff <= EVERY_MODEL_PARAM_TOL,
                    "{label}: network {n} {}: simd {a}, reference {b} (scaled {diff:e})",
                    layout.describe(k)
                );
                worst_param = worst_param.max(diff);
                let worst = &mut by_optimizer[spec.optimizer.kind as usize];
                if diff > worst.0 {
                    *worst = (diff, format!("{label} network {n} {}", layout.describe(k)));
                }
            }
        }
    }
    eprintln!(
        "{} models: worst scaled parameter difference {worst_param:e}, final loss {worst_loss:e}",
        specs.len()
    );
    for (kind, (diff, at)) in Optimizer::ALL.iter().zip(&by_optimizer) {
        eprintln!("  {kind}: worst scaled parameter difference {diff:e} ({at})");
    }
}

/// Asserts two SIMD runs gave the same bits: outcomes, parameters, state.
fn assert_identical(what: &str, a: &SimdRun, b: &SimdRun) {
    for (n, (x, y)) in a.outcomes.iter().zip(&b.outcomes).enumerate() {
        let same = x.final_loss.to_bits() == y.final_loss.to_bits()
            && (x.target_epoch, x.diverged, x.epochs_completed)
                == (y.target_epoch, y.diverged, y.epochs_completed);
        assert!(same, "{what}: network {n}: {x:?} vs {y:?}");
    }
    assert_eq!(a.outcomes.len(), b.outcomes.len(), "{what}: networks");
    for (name, (x, y)) in [
        ("parameter", (&a.params, &b.params)),
        ("state", (&a.state, &b.state)),
    ] {
        if let Some(i) = (0..x.len()).find(|&i| x[i].to_bits() != y[i].to_bits()) {
            panic!("{what}: {name} {i}: {} vs {}", x[i], y[i]);
        }
    }
}

/// The runs the invariance test compares: a full-batch XOR sweep with a
/// target it stops at (lanes leave the group at different epochs), and
/// Adam on shuffled minibatches of moons with a short last batch.
fn invariance_cases() -> Vec<(ModelSpec, Dataset, TrainOptions)> {
    let xor = ModelSpec {
        activation: Activation::Tanh,
        ..common::spec(
            &[2, 3, 1],
            BiasMode::PerNeuron,
            Loss::CrossEntropy,
            Reduction::Sum,
        )
    };
    let moons = ModelSpec {
        optimizer: OptimizerConfig::of(Optimizer::Adam).with(Hyperparameter::WeightDecay, 0.01),
        batching: Some(Batching {
            size: 7,
            shuffle: true,
            seed: 3,
        }),
        ..common::spec(&[2, 5, 1], BiasMode::Shared, Loss::HalfSse, Reduction::Mean)
    };
    let moons_data = Task::Moons.generate(&TaskOptions {
        samples: 30,
        noise: 0.1,
        seed: 2,
    });
    vec![
        (
            xor,
            Task::Xor.dataset(),
            TrainOptions {
                epochs: 300,
                target_loss: Some(0.05),
                stop_at_target: true,
                ..TrainOptions::default()
            },
        ),
        (
            moons,
            moons_data,
            TrainOptions {
                epochs: 40,
                target_loss: Some(0.1),
                ..TrainOptions::default()
            },
        ),
    ]
}

/// Networks of 2 full groups of 128 (AVX-512) or 4 of 64 (AVX2, the
/// baseline), and a remainder of 37.
const POPULATION: usize = 2 * 128 + 37;

/// One network's lane sees the same operations whatever else runs: the
/// same bits with 1 and 2 threads, with the population split into two
/// calls at a point that moves every later network to another lane (and
/// leaves two partly filled groups; both calls are small enough for groups
/// of 64 where the whole population takes 128 on AVX-512), with a network
/// trained alone (in a group of 16, the rest of it padding), and on every
/// instruction set this processor has (each with its own group width).
#[test]
fn results_do_not_depend_on_threads_grouping_or_instruction_set() {
    for (spec, data, opts) in invariance_cases() {
        let lrs: Vec<f64> = (0..POPULATION)
            .map(|i| 0.05 * 1.02f64.powi(i as i32 % 200))
            .collect();
        let lrs: Vec<f64> = match spec.optimizer.kind {
            Optimizer::Adam => lrs.iter().map(|lr| lr / 5.0).collect(),
            _ => lrs,
        };
        let initial = population_parameters(&spec, Init::Xavier, 11, 0, POPULATION).unwrap();
        let never = || false;
        let widest = Isa::detect();
        let run = |isa, threads, first: usize, end: usize| {
            let p = spec.layout().len;
            let initial = &initial[first * p..end * p];
            let lrs = &lrs[first..end];
            simd_run((isa, threads), &spec, &data, initial, lrs, &opts, &never)
        };
        let whole = run(widest, 2, 0, POPULATION);
        let what = format!("{} {}", spec.topology, spec.optimizer.kind);
        let reached = whole
            .outcomes
            .iter()
            .filter(|o| o.target_epoch.is_some())
            .count();
        assert!(
            reached > 0 && reached < POPULATION,
            "{what}: {reached} reached the target"
        );
        assert_identical(
            &format!("{what}, 1 thread"),
            &run(widest, 1, 0, POPULATION),
            &whole,
        );
        let (a, b) = (run(widest, 2, 0, 77), run(widest, 2, 77, POPULATION));
        let split = SimdRun {
            outcomes: [a.outcomes, b.outcomes].concat(),
            params: [a.params, b.params].concat(),
            state: [a.state, b.state].concat(),
            kernel_seconds: None,
        };
        assert_identical(&format!("{what}, split at 77"), &split, &whole);
        let alone = run(widest, 1, 200, 201);
        let p = spec.layout().len;
        let s = spec.optimizer.state_slots() * p;
        let picked = SimdRun {
            outcomes: whole.outcomes[200..201].to_vec(),
            params: whole.params[200 * p..201 * p].to_vec(),
            state: whole.state[200 * s..201 * s].to_vec(),
            kernel_seconds: None,
        };
        assert_identical(&format!("{what}, network 200 alone"), &alone, &picked);
        for isa in Isa::available() {
            assert_identical(
                &format!("{what}, {}", isa.name()),
                &run(isa, 2, 0, POPULATION),
                &whole,
            );
        }
    }
}

/// A stop request ends every group at its next check (every 256 epochs),
/// each network recording the epochs it completed, with the parameters
/// of a run of that many epochs.
#[test]
fn a_stop_request_ends_every_group_as_a_shorter_run() {
    let spec = common::spec(
        &[2, 3, 1],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Sum,
    );
    let data = Task::Xor.dataset();
    let lrs = vec![0.5; Isa::detect().lanes() + 5];
    let initial = population_parameters(&spec, Init::Xavier, 2, 0, lrs.len()).unwrap();
    let isa = Isa::detect();
    let stop = || true;
    let stopped = simd_run(
        (isa, 2),
        &spec,
        &data,
        &initial,
        &lrs,
        &common::options(1000),
        &stop,
    );
    assert!(
        stopped.outcomes.iter().all(|o| o.epochs_completed == 256),
        "{:?}",
        stopped.outcomes[0]
    );
    let never = || false;
    let short = simd_run(
        (isa, 2),
        &spec,
        &data,
        &initial,
        &lrs,
        &common::options(256),
        &never,
    );
    assert_identical("stopped at 256 vs 256 epochs", &stopped, &short);
}
