//! The fused GPU kernel against the float64 CPU reference: seed 003's
//! 20,000 epochs, every bias mode x squared loss x reduction on baked-in
//! and buffered data sets and deeper topologies, learning-rate sweeps,
//! awkward network counts, chunking, the 2-D grid.
//!
//! Tolerances (tests/common): float32 on the GPU vs float64 on the CPU.
//! After the epochs used here the parameters agree to `PARAM_TOL`
//! (absolute, plus `PARAM_TOL` relative for large values) and losses to
//! `LOSS_TOL`, both 10x the worst measured. What every strategy must do
//! (seed step, vocabulary, frozen biases, targets, divergence) is in
//! tests/agreement.rs; here what is the fused kernel's own.

use crate::common;

use gputrain::cpu;
use gputrain::data::{Dataset, TargetRule, Task, load_csv};
use gputrain::gpu::{AdapterQuirks, GpuOptions, Strategy};
use gputrain::init::{Init, TUTORIAL_PARAMETERS, population_parameters};
use gputrain::model::{BiasMode, Loss, ModelSpec, Reduction};
use gputrain::training::{NetworkOutcome, TrainOptions};

fn options(epochs: u64) -> TrainOptions {
    common::options(epochs)
}

fn gpu_train(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    lrs: &[f64],
    opts: &TrainOptions,
    gpu: &GpuOptions,
) -> Vec<NetworkOutcome> {
    common::gpu_train(Strategy::Fused, spec, data, params, lrs, opts, gpu)
}

fn assert_gpu_matches_cpu(
    label: &str,
    spec: &ModelSpec,
    data: &Dataset,
    init: Init,
    lrs: &[f64],
    opts: &TrainOptions,
) {
    common::assert_gpu_matches_cpu(label, Strategy::Fused, spec, data, init, lrs, opts);
}

#[test]
fn seed_network_twenty_thousand_epochs_within_1e_4() {
    let spec = common::tutorial_spec();
    let mut p = TUTORIAL_PARAMETERS.to_vec();
    let out = gpu_train(
        &spec,
        &Task::Tutorial.dataset(),
        &mut p,
        &[0.5],
        &options(20_000),
        &GpuOptions::default(),
    );
    let predicted = cpu::predict(&spec, &p, &[0.05, 0.10]);
    common::assert_close_per_network(
        "GPU outputs after 20,000 epochs",
        &predicted,
        &[0.010633774372091731, 0.9893773083483602],
        2,
        // docs/design.md's contract is 1e-4; lavapipe measured 2.7e-7.
        2.7e-6,
        |j| format!("output {j}"),
    );
    assert!(!out[0].diverged);
}

fn csv_dataset(samples: usize) -> Dataset {
    // Three inputs, two targets, written to a real CSV file and loaded back.
    let d = common::synthetic_dataset(3, 2, samples, 5);
    let mut text = String::from("x1,x2,x3,y1,y2\n");
    for s in 0..samples {
        let row: Vec<String> = d
            .input(s)
            .iter()
            .chain(d.target(s))
            .map(|v| v.to_string())
            .collect();
        text.push_str(&row.join(","));
        text.push('\n');
    }
    let path =
        std::env::temp_dir().join(format!("gputrain-gpu-{}-{samples}.csv", std::process::id()));
    std::fs::write(&path, text).unwrap();
    load_csv(&path, 3, 2, TargetRule::range((0.0, 1.0))).unwrap()
}

#[test]
fn agrees_with_cpu_for_every_bias_loss_and_reduction() {
    // xor and a 6-sample CSV are baked into the kernel; the 20-sample CSV is
    // read from the samples buffer. One and two hidden layers.
    let cases: [(&str, &[usize], Dataset); 4] = [
        ("xor", &[2, 3, 1], Task::Xor.dataset()),
        ("xor, two hidden layers", &[2, 4, 3, 1], Task::Xor.dataset()),
        ("csv 6 samples", &[3, 4, 2], csv_dataset(6)),
        ("csv 20 samples", &[3, 5, 4, 2], csv_dataset(20)),
    ];
    for (name, widths, data) in &cases {
        for bias in BiasMode::ALL {
            // The squared losses, in the regime this test was measured in.
            // Cross-entropy is in tests/agreement.rs: here, at summed lr
            // 0.5 from uniform(1) weights, some 2-4-3-1 XOR networks leave
            // a plateau right around epoch 300 (f64 loss 2.76 at 100, 2.08
            // at 250, 0.48 at 300), and float32 rounding moves the moment
            // of escape: network 4 ended at 1.31 on the GPU and 0.48 in
            // float64, while perturbing the f64 start by 1e-7 moved its
            // final loss by 1e-8 only.
            for loss in [Loss::HalfSse, Loss::Sse] {
                for reduction in Reduction::ALL {
                    // Summed gradients grow with S: keep the step in the
                    // well-conditioned regime where float32 tracks float64.
                    let lr = match reduction {
                        Reduction::Sum => 2.0 / data.samples().max(4) as f64,
                        Reduction::Mean => 0.5,
                    };
                    let lrs = vec![lr; 200];
                    let spec = common::spec(widths, bias, loss, reduction);
                    let label = format!("{name} {} {bias} {loss} {reduction}", spec.topology);
                    assert_gpu_matches_cpu(
                        &label,
                        &spec,
                        data,
                        Init::Uniform(1.0),
                        &lrs,
                        &options(300),
                    );
                }
            }
        }
    }
}

#[test]
fn learning_rate_sweep_gives_each_network_its_rate() {
    let spec = common::spec(
        &[2, 3, 1],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Mean,
    );
    let n = 96;
    let lrs: Vec<f64> = (0..n)
        .map(|i| 0.05 * (100f64).powf(i as f64 / (n - 1) as f64))
        .collect();
    assert_gpu_matches_cpu(
        "lr sweep",
        &spec,
        &Task::Xor.dataset(),
        Init::Xavier,
        &lrs,
        &options(400),
    );
    // The sweep matters: the same networks end differently with different rates.
    let mut a = population_parameters(&spec, Init::Xavier, 11, 0, 1).unwrap();
    let mut b = a.clone();
    gpu_train(
        &spec,
        &Task::Xor.dataset(),
        &mut a,
        &[0.05],
        &options(50),
        &GpuOptions::default(),
    );
    gpu_train(
        &spec,
        &Task::Xor.dataset(),
        &mut b,
        &[5.0],
        &options(50),
        &GpuOptions::default(),
    );
    assert_ne!(a, b);
}

#[test]
fn network_counts_that_are_not_multiples_of_the_workgroup() {
    let spec = common::spec(&[2, 2, 1], BiasMode::PerNeuron, Loss::Sse, Reduction::Sum);
    for n in [1, 63, 65, 130] {
        assert_gpu_matches_cpu(
            &format!("{n} networks"),
            &spec,
            &Task::Xor.dataset(),
            Init::Xavier,
            &vec![0.7; n],
            &options(200),
        );
    }
}

#[test]
fn results_do_not_depend_on_epoch_or_network_chunking_or_grid_shape() {
    let spec = common::spec(&[2, 3, 1], BiasMode::Shared, Loss::HalfSse, Reduction::Sum);
    let data = Task::Xor.dataset();
    let n = 1000;
    let lrs: Vec<f64> = (0..n).map(|i| 0.1 + i as f64 * 0.002).collect();
    let initial = population_parameters(&spec, Init::Uniform(1.0), 5, 0, n).unwrap();
    let opts = TrainOptions {
        epochs: 150,
        target_loss: Some(0.3),
        stop_at_target: false,
        ..TrainOptions::default()
    };
    let run = |gpu: GpuOptions| {
        let mut p = initial.clone();
        let out = gpu_train(&spec, &data, &mut p, &lrs, &opts, &gpu);
        (p, out)
    };
    let reference = run(GpuOptions {
        epochs_per_submission: Some(150),
        ..Default::default()
    });
    let variants = [
        (
            "1 epoch per submission",
            GpuOptions {
                epochs_per_submission: Some(1),
                ..Default::default()
            },
        ),
        (
            "7 epochs per submission",
            GpuOptions {
                epochs_per_submission: Some(7),
                ..Default::default()
            },
        ),
        ("adaptive submissions", GpuOptions::default()),
        (
            "300-network chunks",
            GpuOptions {
                max_networks_per_chunk: Some(300),
                ..Default::default()
            },
        ),
        (
            "2-D grid of 3 workgroups per row",
            GpuOptions {
                max_workgroups_per_dimension: Some(3),
                ..Default::default()
            },
        ),
    ];
    for (label, gpu) in variants {
        let (p, out) = run(gpu);
        assert!(
            p == reference.0,
            "{label}: parameters differ from a single 150-epoch submission"
        );
        assert!(
            out == reference.1,
            "{label}: outcomes differ from a single 150-epoch submission"
        );
    }
    assert!(reference.1.iter().any(|o| o.target_epoch.is_some()));
}

#[test]
fn millions_of_networks_use_the_two_dimensional_grid() {
    // Beyond 65,535 workgroups of 64 the dispatch must go 2-D.
    let spec = common::tutorial_spec();
    let data = Task::Tutorial.dataset();
    let n = 65_535 * 64 + 1_000;
    let lrs: Vec<f64> = (0..n).map(|i| 0.1 + (i % 10) as f64 * 0.1).collect();
    let mut params = population_parameters(&spec, Init::Xavier, 2, 0, n).unwrap();
    let initial = params.clone();
    let out = gpu_train(
        &spec,
        &data,
        &mut params,
        &lrs,
        &options(3),
        &GpuOptions::default(),
    );
    assert_eq!(out.len(), n);
    let p = spec.layout().len;
    for i in [0, 1, n / 2, n - 1_001, n - 1] {
        let mut alone = initial[i * p..(i + 1) * p].to_vec();
        let c = cpu::train_network(&spec, &data, &mut alone, lrs[i], &options(3));
        for k in 0..p {
            assert!(
                (params[i * p + k] - alone[k]).abs() < 1e-5,
                "network {i} {}",
                spec.layout().describe(k)
            );
        }
        assert!(
            (out[i].final_loss - c.final_loss).abs() < 1e-5,
            "network {i} loss"
        );
    }
}

/// The fused kernel loops over a submission's epochs inside the shader,
/// and with buffered data over the samples inside each epoch. llvmpipe
/// counts an invocation's loop iterations over all its loops and past
/// 65,535 silently ends them ([`AdapterQuirks`], detected per adapter), so
/// on llvmpipe a submission holds at most 65,535 / (samples + 2) epochs:
/// 642 for 100 buffered samples. Asked for all 4,000 epochs in one
/// submission, the run must end bit for bit where 50-epoch submissions
/// end; before the cap followed the kernel's loops (it was 65,535 epochs
/// whatever the data) it ended elsewhere. Baked-in data has no sample
/// loop: 70,000 epochs asked in one submission agree too.
#[test]
fn epochs_per_submission_respect_the_adapters_loop_limit() {
    let ctx = common::gpu();
    if ctx.adapter.name.contains("llvmpipe") {
        assert_eq!(ctx.quirks, AdapterQuirks::LLVMPIPE, "{}", ctx.adapter);
    }
    assert_eq!(ctx.quirks, ctx.adapter.quirks);
    let cases = [
        (
            "100 buffered samples, 1-2-1",
            common::spec(
                &[1, 2, 1],
                BiasMode::PerNeuron,
                Loss::HalfSse,
                Reduction::Mean,
            ),
            common::synthetic_dataset(1, 1, 100, 3),
            4_000,
        ),
        (
            "tutorial, baked in",
            common::tutorial_spec(),
            Task::Tutorial.dataset(),
            70_000,
        ),
    ];
    for (label, spec, data, epochs) in cases {
        let initial = population_parameters(&spec, Init::Xavier, 1, 0, 1).unwrap();
        let run = |per_submission: u32| {
            let mut p = initial.clone();
            let gpu = GpuOptions {
                epochs_per_submission: Some(per_submission),
                ..Default::default()
            };
            let out = gpu_train(&spec, &data, &mut p, &[0.5], &options(epochs), &gpu);
            (p, out[0].final_loss)
        };
        let (one, one_loss) = run(epochs as u32);
        let (split, split_loss) = run(50);
        let layout = spec.layout();
        for k in 0..layout.len {
            assert_eq!(
                one[k].to_bits(),
                split[k].to_bits(),
                "{label}, network 0 {}: one submission {} vs 50-epoch submissions {}",
                layout.describe(k),
                one[k],
                split[k]
            );
        }
        assert_eq!(one_loss, split_loss, "{label}: final loss");
    }
}
