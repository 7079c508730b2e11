//! The benchmark machinery on the test GPU: kernel timing with timestamp
//! queries changes no result and stays within the wall time, and a
//! measured row's figures follow from its own measurements.

use crate::common;

use std::time::Instant;

use gputrain::backend::{Engine, TrainerSetup};
use gputrain::bench::runner::measure;
use gputrain::bench::{Row, Workload, flops_per_network_epoch};
use gputrain::data::Task;
use gputrain::gpu::{GpuOptions, Strategy};
use gputrain::init::{Init, population_parameters};
use gputrain::model::{BiasMode, Loss, Reduction};

fn xor_workload(networks: usize, epochs: u64) -> Workload {
    Workload {
        name: "xor",
        spec: common::spec(
            &[2, 3, 1],
            BiasMode::PerNeuron,
            Loss::HalfSse,
            Reduction::Sum,
        ),
        data: Task::Xor.dataset(),
        networks,
        epochs,
        learning_rate: 0.5,
        history: None,
    }
}

#[test]
fn kernel_timing_changes_no_result_and_fits_in_the_wall_time() {
    let ctx = common::gpu();
    let engine = common::gpu_engine();
    let w = xor_workload(300, 400);
    let initial = population_parameters(&w.spec, Init::Xavier, 3, 0, w.networks).unwrap();
    let rates = vec![w.learning_rate; w.networks];
    for strategy in [Strategy::Fused, Strategy::Layered] {
        let mut trained = Vec::new();
        for timing in [false, true] {
            let gpu = GpuOptions {
                kernel_timing: timing,
                // Several submissions, so the timer sums several passes.
                epochs_per_submission: Some(150),
                ..GpuOptions::default()
            };
            let setup = TrainerSetup {
                strategy,
                gpu: &gpu,
                ..TrainerSetup::new(&w.spec, &w.data, w.networks)
            };
            let started = Instant::now();
            let opts = common::options(w.epochs);
            let run = common::run_on(&engine, &setup, &initial, &rates, &opts, &|| false);
            let wall = started.elapsed().as_secs_f64();
            match (timing, ctx.timestamp_queries, run.kernel_seconds) {
                (false, _, None) | (true, false, None) => {}
                (true, true, Some(kernel)) => {
                    eprintln!("{strategy}: kernel {kernel:.4} s of {wall:.4} s wall");
                    assert!(
                        kernel > 0.0 && kernel <= wall,
                        "{strategy}: kernel time {kernel} s must be positive and within the \
                         wall time {wall} s"
                    );
                }
                other => panic!("{strategy}: (timing, adapter timestamps, kernel) = {other:?}"),
            }
            trained.push((run.params, run.outcomes));
        }
        assert_eq!(
            trained[0], trained[1],
            "{strategy}: timing must not change parameters or outcomes"
        );
    }
}

fn assert_row_is_consistent(row: &Row, w: &Workload) {
    assert_eq!(row.workload, "xor");
    assert_eq!((row.topology.as_str(), row.samples), ("2-3-1", 4));
    assert_eq!(row.networks, w.networks);
    assert!(
        (1..=w.epochs).contains(&row.epochs),
        "{}: {} epochs, cap {}",
        row.strategy,
        row.epochs,
        w.epochs
    );
    let rate = (w.networks as u64 * row.epochs) as f64 / row.wall_seconds;
    assert!(
        (row.network_epochs_per_second - rate).abs() <= 1e-9 * rate,
        "{}: {} network-epochs/s, but {} networks x {} epochs / {} s = {rate}",
        row.strategy,
        row.network_epochs_per_second,
        w.networks,
        row.epochs,
        row.wall_seconds
    );
    let gflops = rate * flops_per_network_epoch(&w.spec, 4) / 1e9;
    assert!(
        (row.gflops_per_second - gflops).abs() <= 1e-9 * gflops,
        "{}: {} GFLOP/s, expected {gflops}",
        row.strategy,
        row.gflops_per_second
    );
    assert_eq!(row.diverged, 0, "{}", row.strategy);
    // Half-SSE over XOR's four 0/1 targets lies in [0, 2].
    let median = row.median_final_loss.expect("a median final loss");
    assert!(
        (0.0..=2.0).contains(&median),
        "{}: median loss {median}",
        row.strategy
    );
}

#[test]
fn rows_report_what_they_measured() {
    let ctx = common::gpu();
    let engine = common::gpu_engine();
    let w = xor_workload(200, 60);
    let initial = population_parameters(&w.spec, Init::Xavier, 0, 0, w.networks).unwrap();
    let fused = measure(&engine, &w, Strategy::Fused, &initial, 0.05).unwrap();
    assert_eq!(fused.strategy, "fused");
    let layered = measure(&engine, &w, Strategy::Layered, &initial, 0.05).unwrap();
    assert!(
        layered.strategy == "layered/direct" || layered.strategy == "layered/tiled",
        "{}",
        layered.strategy
    );
    for row in [&fused, &layered] {
        assert_eq!(row.adapter, ctx.adapter.name);
        assert_eq!(row.backend, ctx.adapter.backend);
        assert_eq!(row.kernel_seconds.is_some(), ctx.timestamp_queries);
        if let Some(kernel) = row.kernel_seconds {
            assert!(kernel > 0.0 && kernel <= row.wall_seconds, "{row:?}");
        }
        assert!(row.setup_seconds > 0.0, "{row:?}");
        assert_row_is_consistent(row, &w);
    }
    let cpu = measure(&Engine::Reference, &w, Strategy::Auto, &initial, 0.05).unwrap();
    assert_eq!(
        (cpu.backend.as_str(), cpu.strategy.as_str()),
        ("cpu", "reference-f64")
    );
    let isa = gputrain::simd::Isa::detect();
    let simd = measure(&Engine::Simd(isa), &w, Strategy::Auto, &initial, 0.05).unwrap();
    assert_eq!(
        (simd.backend.as_str(), simd.strategy.as_str()),
        ("cpu", format!("simd-f32/{}", isa.name()).as_str())
    );
    for row in [&cpu, &simd] {
        assert_eq!(row.kernel_seconds, None);
        assert_row_is_consistent(row, &w);
    }
}
