//! Throughput of the fused and layered GPU strategies, the float64 CPU
//! reference and the SIMD trainer in network-epochs per second
//! (criterion's elements), every one through the same [`Trainer`] seam.
//! CI-sized workloads; the GPU is waited for inside the timed region
//! (train() blocks on every submission and reads the results back). Each
//! group also prints GFLOP/s by `gputrain::bench::flops_per_network_epoch`
//! (its formula is `gputrain::bench::FLOP_FORMULA`).
//!
//! [`Trainer`]: gputrain::trainer::Trainer

use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gputrain::backend::{Engine, TrainerSetup};
use gputrain::bench::flops_per_network_epoch;
use gputrain::data::{Dataset, Task};
use gputrain::gpu::{AdapterChoice, GpuContext, Strategy};
use gputrain::init::{Init, population_parameters};
use gputrain::model::{BiasMode, ModelSpec, Topology};
use gputrain::simd::Isa;
use gputrain::trainer::{Block, uncontrolled};
use gputrain::training::TrainOptions;

fn spec(widths: &[usize], bias: BiasMode) -> ModelSpec {
    ModelSpec {
        topology: Topology::new(widths.to_vec()).unwrap(),
        bias,
        ..ModelSpec::default()
    }
}

/// One measured case: a model on its data, networks x epochs.
struct Case {
    name: &'static str,
    spec: ModelSpec,
    data: Dataset,
    networks: usize,
    epochs: u64,
}

fn case(name: &'static str, widths: &[usize], bias: BiasMode, data: Dataset) -> Case {
    Case {
        name,
        spec: spec(widths, bias),
        data,
        networks: 0,
        epochs: 0,
    }
}

/// Benchmarks every case of `cases` on `engine` with `strategy` as one
/// criterion group.
fn group(c: &mut Criterion, name: &str, engine: &Engine, strategy: Strategy, cases: &[Case]) {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    for case in cases {
        let initial = population_parameters(&case.spec, Init::Xavier, 0, 0, case.networks).unwrap();
        let rates = vec![0.5; case.networks];
        let options = TrainOptions {
            epochs: case.epochs,
            target_loss: None,
            stop_at_target: false,
            ..TrainOptions::default()
        };
        let setup = TrainerSetup {
            strategy,
            ..TrainerSetup::new(&case.spec, &case.data, case.networks)
        };
        let trainer = engine.trainer(&setup).unwrap();
        let state_len = case.spec.optimizer.state_slots() * initial.len();
        let train = || {
            let (mut params, mut state) = (initial.clone(), vec![0.0; state_len]);
            let block = Block {
                params: &mut params,
                state: &mut state,
                learning_rates: &rates,
                rows: None,
            };
            trainer.train(block, &options, &mut uncontrolled).unwrap()
        };
        let network_epochs = case.networks as u64 * case.epochs;
        let started = std::time::Instant::now();
        train();
        let seconds = started.elapsed().as_secs_f64();
        let flops = flops_per_network_epoch(&case.spec, case.data.samples());
        eprintln!(
            "{name} ({}) {}: {:.3e} network-epochs/s, {:.2} GFLOP/s (one run)",
            trainer.label(),
            case.name,
            network_epochs as f64 / seconds,
            flops * network_epochs as f64 / seconds / 1e9
        );
        group.throughput(Throughput::Elements(network_epochs));
        group.bench_function(case.name, |b| b.iter(train));
    }
    group.finish();
}

fn bench(c: &mut Criterion) {
    let ctx = GpuContext::open(&AdapterChoice::Auto)
        .unwrap_or_else(|e| panic!("the GPU benchmarks need an adapter: {e}"));
    eprintln!("adapter: {}", ctx.adapter);
    let gpu = Engine::Gpu(Arc::new(ctx));
    let sized = |case: Case, networks, epochs| Case {
        networks,
        epochs,
        ..case
    };
    let tutorial = || {
        case(
            "tutorial 2-2-2",
            &[2, 2, 2],
            BiasMode::Shared,
            Task::Tutorial.dataset(),
        )
    };
    let xor = || {
        case(
            "xor 2-3-1",
            &[2, 3, 1],
            BiasMode::PerNeuron,
            Task::Xor.dataset(),
        )
    };
    let fused = [sized(tutorial(), 10_000, 2_000), sized(xor(), 10_000, 500)];
    group(c, "fused", &gpu, Strategy::Fused, &fused);

    // Layered: 16-64-16 on 256 samples (2,128 parameters, beyond the fused
    // kernel). 100 networks x 2 epochs keeps an iteration short on lavapipe;
    // raise them on a GPU.
    let wide = case(
        "16-64-16 x 256 samples",
        &[16, 64, 16],
        BiasMode::PerNeuron,
        gputrain::data::synthetic(16, 16, 256, 7),
    );
    group(
        c,
        "layered",
        &gpu,
        Strategy::Layered,
        &[sized(wide, 100, 2)],
    );

    let reference = [sized(tutorial(), 1_000, 200)];
    group(
        c,
        "cpu_reference",
        &Engine::Reference,
        Strategy::Auto,
        &reference,
    );

    // The SIMD trainer on every core, on the fused row's workload.
    let simd = [sized(tutorial(), 10_000, 2_000)];
    group(
        c,
        "simd",
        &Engine::Simd(Isa::detect()),
        Strategy::Auto,
        &simd,
    );
}

criterion_group!(benches, bench);
criterion_main!(benches);
