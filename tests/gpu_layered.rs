//! The layered GPU strategy against the float64 CPU reference and the fused
//! kernel: every bias mode x loss x reduction on widths that are not
//! multiples of the tile, two hidden layers, one-sample data, a network too
//! large for the fused kernel, 256-wide layers on 10,000 samples in both
//! variants; results independent of how epochs and networks are chunked;
//! the strategy rule; a clear error when buffers cannot fit.
//!
//! Tolerances: see tests/common (float32 vs float64, PARAM_TOL and
//! LOSS_TOL, 10x the worst measured). What every strategy must do is in
//! tests/agreement.rs; here what is the layered kernels' own.

use crate::common;

use gputrain::cpu;
use gputrain::data::Dataset;
use gputrain::gpu::{
    AdapterQuirks, GpuOptions, GpuTrainer, LayeredVariant, Strategy, choose_strategy,
};
use gputrain::init::{Init, population_parameters};
use gputrain::model::{BiasMode, Loss, Reduction};

use common::{assert_gpu_matches_cpu, assert_runs_agree, gpu_train, options};

#[test]
fn agrees_with_cpu_and_fused_for_every_bias_loss_and_reduction() {
    // Widths 3, 5, 7 and 33 straddle the 16-wide tile; one case has two
    // hidden layers, one a single sample.
    let cases: [(&str, &[usize], Dataset); 4] = [
        ("3-7-5", &[3, 7, 5], common::synthetic_dataset(3, 5, 6, 1)),
        (
            "8-33-2",
            &[8, 33, 2],
            common::synthetic_dataset(8, 2, 19, 2),
        ),
        (
            "two hidden",
            &[3, 5, 4, 2],
            common::synthetic_dataset(3, 2, 20, 3),
        ),
        (
            "one sample",
            &[2, 4, 3],
            common::synthetic_dataset(2, 3, 1, 4),
        ),
    ];
    let gpu = GpuOptions::default();
    for (name, widths, data) in &cases {
        for bias in BiasMode::ALL {
            for loss in Loss::ALL {
                for reduction in Reduction::ALL {
                    let lr = match reduction {
                        Reduction::Sum => 2.0 / data.samples().max(4) as f64,
                        Reduction::Mean => 0.5,
                    };
                    let lrs = vec![lr; 24];
                    let spec = common::spec(widths, bias, loss, reduction);
                    if spec.validate().is_err() {
                        continue; // softmax needs 2 outputs
                    }
                    let data = &common::data_for(&spec, data);
                    let label = format!("{name} {bias} {loss} {reduction}");
                    let opts = options(60);
                    assert_gpu_matches_cpu(
                        &label,
                        Strategy::Layered,
                        &spec,
                        data,
                        Init::Uniform(1.0),
                        &lrs,
                        &opts,
                    );
                    let initial =
                        population_parameters(&spec, Init::Uniform(1.0), 5, 0, 24).unwrap();
                    let (mut layered, mut fused) = (initial.clone(), initial);
                    let l = gpu_train(
                        Strategy::Layered,
                        &spec,
                        data,
                        &mut layered,
                        &lrs,
                        &opts,
                        &gpu,
                    );
                    let f = gpu_train(Strategy::Fused, &spec, data, &mut fused, &lrs, &opts, &gpu);
                    assert_runs_agree(
                        &format!("layered vs fused, {label}"),
                        &spec,
                        &lrs,
                        (&l, &layered),
                        (&f, &fused),
                    );
                }
            }
        }
    }
}

#[test]
fn network_too_large_for_the_fused_kernel_8_64_64_4_on_256_samples() {
    let spec = common::spec(
        &[8, 64, 64, 4],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Mean,
    );
    let data = common::synthetic_dataset(8, 4, 256, 6);
    let fused = choose_strategy(&spec, 256, Strategy::Fused, &AdapterQuirks::NONE)
        .unwrap_err()
        .to_string();
    assert!(
        fused.contains("8-64-64-4") && fused.contains("parameters"),
        "{fused}"
    );
    assert_eq!(
        choose_strategy(&spec, 256, Strategy::Auto, &AdapterQuirks::NONE).unwrap(),
        Strategy::Layered
    );
    let lrs = gputrain::run::LearningRate::LogSweep { from: 0.5, to: 4.0 }.rates(6);
    assert_gpu_matches_cpu(
        "8-64-64-4, 256 samples",
        Strategy::Layered,
        &spec,
        &data,
        Init::Xavier,
        &lrs,
        &options(30),
    );
}

fn variant(v: LayeredVariant) -> GpuOptions {
    GpuOptions {
        layered_variant: Some(v),
        ..GpuOptions::default()
    }
}

#[test]
fn widths_of_256_on_10000_samples_in_both_variants() {
    // A shared bias sums 10,000 x 256 deltas per step: the case that showed
    // one llvmpipe invocation cannot loop over millions of terms.
    let wide = common::spec(&[5, 256, 3], BiasMode::Shared, Loss::Sse, Reduction::Mean);
    let long = common::synthetic_dataset(5, 3, 10_000, 9);
    let deep = common::spec(
        &[3, 256, 256, 2],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Mean,
    );
    let short = common::synthetic_dataset(3, 2, 64, 10);
    for v in [LayeredVariant::Direct, LayeredVariant::Tiled] {
        for (label, spec, data, epochs) in [
            ("5-256-3, 10,000 samples", &wide, &long, 2),
            ("3-256-256-2, 64 samples", &deep, &short, 5),
        ] {
            let initial = population_parameters(spec, Init::Xavier, 11, 0, 2).unwrap();
            let (mut g, mut c) = (initial.clone(), initial);
            let lrs = [1.0, 2.0];
            let gpu_out = gpu_train(
                Strategy::Layered,
                spec,
                data,
                &mut g,
                &lrs,
                &options(epochs),
                &variant(v),
            );
            let cpu_out = cpu::train_population(spec, data, &mut c, &lrs, &options(epochs));
            assert_runs_agree(
                &format!("{v:?} {label}"),
                spec,
                &lrs,
                (&gpu_out, &g),
                (&cpu_out, &c),
            );
        }
    }
}

#[test]
fn results_do_not_depend_on_epoch_or_network_chunking() {
    let spec = common::spec(
        &[3, 7, 5],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Sum,
    );
    let data = common::synthetic_dataset(3, 5, 6, 10);
    let lrs = gputrain::run::LearningRate::LogSweep { from: 0.1, to: 2.0 }.rates(23);
    let initial = population_parameters(&spec, Init::Xavier, 2, 0, lrs.len()).unwrap();
    let run = |gpu: GpuOptions| {
        let mut p = initial.clone();
        let out = gpu_train(
            Strategy::Layered,
            &spec,
            &data,
            &mut p,
            &lrs,
            &options(40),
            &gpu,
        );
        (out, p)
    };
    let reference = run(GpuOptions {
        epochs_per_submission: Some(40),
        ..GpuOptions::default()
    });
    for (label, gpu) in [
        (
            "1 epoch per submission",
            GpuOptions {
                epochs_per_submission: Some(1),
                ..GpuOptions::default()
            },
        ),
        (
            "7 epochs per submission",
            GpuOptions {
                epochs_per_submission: Some(7),
                ..GpuOptions::default()
            },
        ),
        ("adaptive submissions", GpuOptions::default()),
        (
            "chunks of 5 networks",
            GpuOptions {
                max_networks_per_chunk: Some(5),
                ..GpuOptions::default()
            },
        ),
    ] {
        let (out, p) = run(gpu);
        assert_eq!(out, reference.0, "{label}: outcomes differ");
        if let Some(i) = (0..p.len()).find(|&i| p[i].to_bits() != reference.1[i].to_bits()) {
            let layout = spec.layout();
            panic!(
                "{label}: network {} {} is {} but {} with one 40-epoch submission",
                i / layout.len,
                layout.describe(i % layout.len),
                p[i],
                reference.1[i]
            );
        }
    }
}

#[test]
fn buffers_that_cannot_fit_are_a_clear_error() {
    // 100,000 samples x 4,097 activations x 4 bytes = 1.6 GB per network,
    // beyond any adapter's binding and the 1 GiB chunk cap.
    let spec = common::spec(
        &[1, 4096, 1],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Mean,
    );
    let data = common::synthetic_dataset(1, 1, 100_000, 13);
    let err = GpuTrainer::new(
        common::gpu(),
        &spec,
        &data,
        10,
        Strategy::Layered,
        &GpuOptions::default(),
    )
    .err()
    .expect("1.6 GB of activations per network cannot fit")
    .to_string();
    assert!(err.contains("1-4096-1 network on 100000 samples"), "{err}");
    assert!(err.contains("--backend cpu"), "{err}");
}
