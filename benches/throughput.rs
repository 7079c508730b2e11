//! Throughput of the fused and layered GPU strategies, the float64 CPU
//! reference and the SIMD trainer in network-epochs per second
//! (criterion's elements).
//! CI-sized workloads; the GPU is waited for inside the timed region
//! (train() blocks on every submission and reads the results back). The
//! layered workload also prints GFLOP/s by
//! `gputrain::bench::flops_per_network_epoch` (its formula is
//! `gputrain::bench::FLOP_FORMULA`).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gputrain::bench::flops_per_network_epoch;
use gputrain::cpu;
use gputrain::data::Task;
use gputrain::gpu::{AdapterChoice, GpuContext, GpuOptions, GpuTrainer, Strategy};
use gputrain::init::{Init, population_parameters};
use gputrain::model::{BiasMode, ModelSpec, Topology};
use gputrain::simd::{Isa, SimdTrainer};
use gputrain::training::TrainOptions;
use std::ops::ControlFlow;

fn spec(widths: &[usize], bias: BiasMode) -> ModelSpec {
    ModelSpec {
        topology: Topology::new(widths.to_vec()).unwrap(),
        bias,
        ..ModelSpec::default()
    }
}

fn bench(c: &mut Criterion) {
    let ctx = GpuContext::open(&AdapterChoice::Auto)
        .unwrap_or_else(|e| panic!("the GPU benchmarks need an adapter: {e}"));
    eprintln!("adapter: {}", ctx.adapter);
    let workloads = [
        (
            "tutorial 2-2-2",
            spec(&[2, 2, 2], BiasMode::Shared),
            Task::Tutorial,
            10_000usize,
            2_000u64,
        ),
        (
            "xor 2-3-1",
            spec(&[2, 3, 1], BiasMode::PerNeuron),
            Task::Xor,
            10_000,
            500,
        ),
    ];
    let mut group = c.benchmark_group("fused");
    group.sample_size(10);
    for (name, spec, task, networks, epochs) in &workloads {
        let data = task.dataset();
        let initial = population_parameters(spec, Init::Xavier, 0, 0, *networks).unwrap();
        let lrs = vec![0.5; *networks];
        let options = TrainOptions {
            epochs: *epochs,
            target_loss: None,
            stop_at_target: false,
            ..TrainOptions::default()
        };
        let gpu = GpuOptions::default();
        let trainer = GpuTrainer::new(&ctx, spec, &data, *networks, Strategy::Fused, &gpu).unwrap();
        group.throughput(Throughput::Elements(*networks as u64 * epochs));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let mut params = initial.clone();
                trainer
                    .train(&mut params, &lrs, &options, &mut |_| {
                        ControlFlow::Continue(())
                    })
                    .unwrap()
            })
        });
    }
    group.finish();

    // Layered: 16-64-16 on 256 samples (2,128 parameters, beyond the fused
    // kernel). 100 networks x 2 epochs keeps an iteration short on lavapipe;
    // raise them on a GPU.
    let mut group = c.benchmark_group("layered");
    group.sample_size(10);
    let wide = spec(&[16, 64, 16], BiasMode::PerNeuron);
    let data = gputrain::data::synthetic(16, 16, 256, 7);
    let (networks, epochs) = (100usize, 2u64);
    let initial = population_parameters(&wide, Init::Xavier, 0, 0, networks).unwrap();
    let lrs = vec![0.5; networks];
    let options = TrainOptions {
        epochs,
        target_loss: None,
        stop_at_target: false,
        ..TrainOptions::default()
    };
    let gpu = GpuOptions::default();
    let trainer = GpuTrainer::new(&ctx, &wide, &data, networks, Strategy::Layered, &gpu).unwrap();
    let flops = flops_per_network_epoch(&wide, data.samples()) * (networks as u64 * epochs) as f64;
    let started = std::time::Instant::now();
    trainer
        .train(&mut initial.clone(), &lrs, &options, &mut |_| {
            ControlFlow::Continue(())
        })
        .unwrap();
    let seconds = started.elapsed().as_secs_f64();
    eprintln!(
        "layered 16-64-16, 256 samples, {networks} networks x {epochs} epochs ({:?} variant): \
         {:.3e} network-epochs/s, {:.2} GFLOP/s",
        trainer.layered_variant(),
        (networks as u64 * epochs) as f64 / seconds,
        flops / seconds / 1e9
    );
    group.throughput(Throughput::Elements(networks as u64 * epochs));
    group.bench_function("16-64-16 x 256 samples", |b| {
        b.iter(|| {
            let mut params = initial.clone();
            trainer
                .train(&mut params, &lrs, &options, &mut |_| {
                    ControlFlow::Continue(())
                })
                .unwrap()
        })
    });
    group.finish();

    let mut group = c.benchmark_group("cpu_reference");
    group.sample_size(10);
    let spec = spec(&[2, 2, 2], BiasMode::Shared);
    let data = Task::Tutorial.dataset();
    let (networks, epochs) = (1_000usize, 200u64);
    let initial = population_parameters(&spec, Init::Xavier, 0, 0, networks).unwrap();
    let lrs = vec![0.5; networks];
    let options = TrainOptions {
        epochs,
        target_loss: None,
        stop_at_target: false,
        ..TrainOptions::default()
    };
    group.throughput(Throughput::Elements(networks as u64 * epochs));
    group.bench_function("tutorial 2-2-2", |b| {
        b.iter(|| {
            let mut params = initial.clone();
            cpu::train_population(&spec, &data, &mut params, &lrs, &options)
        })
    });
    group.finish();

    // The SIMD trainer on every core, on the fused row's workload.
    let mut group = c.benchmark_group("simd");
    group.sample_size(10);
    let (networks, epochs) = (10_000usize, 2_000u64);
    let initial = population_parameters(&spec, Init::Xavier, 0, 0, networks).unwrap();
    let lrs = vec![0.5; networks];
    let options = TrainOptions { epochs, ..options };
    let pool = rayon::ThreadPoolBuilder::new().build().unwrap();
    let trainer = SimdTrainer {
        spec: &spec,
        data: &data,
        recording: None,
        isa: Isa::detect(),
        pool: &pool,
    };
    let mut state = Vec::new();
    group.throughput(Throughput::Elements(networks as u64 * epochs));
    group.bench_function("tutorial 2-2-2", |b| {
        b.iter(|| {
            let mut params = initial.clone();
            let (progress, stop) = (&mut |_: &_| {}, &|| false);
            trainer.train(&mut params, &mut state, &lrs, &options, progress, stop)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
