//! Throughput of the fused GPU kernel and the float64 CPU reference in
//! network-epochs per second (criterion's elements). CI-sized workloads;
//! the GPU is waited for inside the timed region (train() blocks on every
//! submission and reads the results back).

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use gputrain::cpu;
use gputrain::data::Task;
use gputrain::gpu::{AdapterChoice, FusedTrainer, GpuContext, GpuOptions};
use gputrain::init::{Init, population_parameters};
use gputrain::model::{BiasMode, Loss, ModelSpec, Reduction, Topology};
use gputrain::training::TrainOptions;

fn spec(widths: &[usize], bias: BiasMode) -> ModelSpec {
    ModelSpec {
        topology: Topology::new(widths.to_vec()).unwrap(),
        bias,
        freeze_bias: false,
        loss: Loss::HalfSse,
        reduction: Reduction::Sum,
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
        };
        let gpu = GpuOptions::default();
        let trainer = FusedTrainer::new(&ctx, spec, &data, *networks, &gpu).unwrap();
        group.throughput(Throughput::Elements(*networks as u64 * epochs));
        group.bench_function(*name, |b| {
            b.iter(|| {
                let mut params = initial.clone();
                trainer
                    .train(&mut params, &lrs, &options, &gpu, &mut |_| {})
                    .unwrap()
            })
        });
    }
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
    };
    group.throughput(Throughput::Elements(networks as u64 * epochs));
    group.bench_function("tutorial 2-2-2", |b| {
        b.iter(|| {
            let mut params = initial.clone();
            cpu::train_population(&spec, &data, &mut params, &lrs, &options)
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
