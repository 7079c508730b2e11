//! Measures one benchmark row: one workload on one GPU strategy, the SIMD
//! trainer or the float64 CPU reference, through the [`crate::trainer`]
//! seam. A row first probes with growing epoch counts
//! (which also warms the device up), then runs the epochs that fit its
//! time budget, at most the workload's own, and times that run alone.

use std::time::Instant;

use serde::Serialize;

use crate::backend::{Engine, TrainerSetup};
use crate::bench::flops::flops_per_network_epoch;
use crate::bench::workloads::Workload;
use crate::error::Error;
use crate::gpu::{GpuOptions, Strategy};
use crate::recording::Recording;
use crate::stats::Quantiles;
use crate::trainer::{Block, uncontrolled};
use crate::training::{NetworkOutcome, TrainOptions};

/// One measured row of the benchmark table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    /// Adapter name, or the CPU's model for the reference.
    pub adapter: String,
    /// wgpu backend (e.g. "Vulkan"), or "cpu".
    pub backend: String,
    /// "fused", "layered/direct", "layered/tiled", "simd-f32/avx512" (the
    /// SIMD trainer and its instruction set) or "reference-f64".
    pub strategy: String,
    pub workload: String,
    pub topology: String,
    pub samples: usize,
    pub networks: usize,
    /// Epochs of the timed run (the workload's, or fewer by the budget).
    pub epochs: u64,
    /// Wall time of the timed run: upload, every submission, evaluation
    /// and readback; not the pipeline build.
    pub wall_seconds: f64,
    /// Building the trainer (shader compilation, buffers) once.
    pub setup_seconds: f64,
    pub network_epochs_per_second: f64,
    /// Network-epochs/s times the samples: samples through a network
    /// (forward, backward and their share of the updates) per second.
    pub network_samples_per_second: f64,
    /// By [`flops_per_network_epoch`].
    pub gflops_per_second: f64,
    /// Device time inside the training passes (timestamp queries), where
    /// the adapter has them.
    pub kernel_seconds: Option<f64>,
    /// Networks whose loss or parameters became NaN/Inf.
    pub diverged: usize,
    /// A GPU row of the strategy `--kernel auto` picks for the workload on
    /// this adapter (set by the suite; false for the CPU rows).
    #[serde(default)]
    pub auto: bool,
    /// Median final loss of the others (shows the run trained).
    pub median_final_loss: Option<f64>,
}

/// One calibration run: epochs and the seconds they took.
pub type Probe = (u64, f64);

/// Epochs of the timed run from two probes: a straight line through them
/// gives the cost per epoch and the fixed cost of a run (upload,
/// evaluation, readback), and the epochs that fit `budget` seconds are
/// rounded down to two significant digits, between 1 and `cap`. Probes
/// that do not rise (timer noise) count as all per-epoch cost.
pub fn planned_epochs(first: Probe, last: Probe, budget: f64, cap: u64) -> u64 {
    let per_epoch = if last.0 > first.0 && last.1 > first.1 {
        (last.1 - first.1) / (last.0 - first.0) as f64
    } else {
        last.1 / last.0.max(1) as f64
    };
    let fixed = (last.1 - per_epoch * last.0 as f64).max(0.0);
    let fit = ((budget - fixed) / per_epoch.max(1e-12)).floor().max(1.0) as u64;
    let rounded = match fit.checked_ilog10() {
        Some(digits) if digits >= 2 => {
            let unit = 10u64.pow(digits - 1);
            fit / unit * unit
        }
        _ => fit,
    };
    rounded.clamp(1, cap.max(1))
}

/// Probes `run` (which trains for the given epochs and returns seconds)
/// with growing epoch counts until a probe takes a tenth of `budget` or
/// reaches `cap`, at least twice, and returns the planned epochs of the
/// timed run. A first one-epoch run is not counted: drivers may compile
/// shaders or fault in memory on first use (llvmpipe took 0.5 s more for
/// its first layered epoch).
pub fn calibrate(
    budget: f64,
    cap: u64,
    mut run: impl FnMut(u64) -> Result<f64, Error>,
) -> Result<u64, Error> {
    let cap = cap.max(1);
    let mut epochs = 1;
    run(epochs)?;
    let first = (epochs, run(epochs)?);
    let mut last = first;
    while last.0 < cap && (last.1 < budget / 10.0 || last == first) {
        let grow = (budget / 10.0 / last.1.max(1e-6)).clamp(2.0, 100.0);
        epochs = ((last.0 as f64 * grow).ceil() as u64).min(cap);
        last = (epochs, run(epochs)?);
    }
    Ok(planned_epochs(first, last, budget, cap))
}

fn options(epochs: u64) -> TrainOptions {
    TrainOptions {
        epochs,
        target_loss: None,
        stop_at_target: false,
        ..TrainOptions::default()
    }
}

/// A row's measurements before the adapter and strategy are attached.
struct Timed {
    epochs: u64,
    wall_seconds: f64,
    kernel_seconds: Option<f64>,
    outcomes: Vec<NetworkOutcome>,
}

fn row(
    adapter: String,
    backend: String,
    strategy: String,
    workload: &Workload,
    setup_seconds: f64,
    timed: Timed,
) -> Row {
    let network_epochs = workload.networks as f64 * timed.epochs as f64;
    let rate = network_epochs / timed.wall_seconds.max(1e-12);
    let flops = flops_per_network_epoch(&workload.spec, workload.data.samples());
    let mut finals: Vec<f64> = timed
        .outcomes
        .iter()
        .filter(|o| !o.diverged)
        .map(|o| o.final_loss)
        .collect();
    Row {
        adapter,
        backend,
        strategy,
        workload: workload.name.to_string(),
        topology: workload.spec.topology.to_string(),
        samples: workload.data.samples(),
        networks: workload.networks,
        epochs: timed.epochs,
        wall_seconds: timed.wall_seconds,
        setup_seconds,
        network_epochs_per_second: rate,
        network_samples_per_second: rate * workload.data.samples() as f64,
        gflops_per_second: rate * flops / 1e9,
        kernel_seconds: timed.kernel_seconds,
        diverged: timed.outcomes.iter().filter(|o| o.diverged).count(),
        auto: false,
        median_final_loss: Quantiles::of(&mut finals).map(|q| q.median),
    }
}

/// Measures `workload` on `engine` (with `strategy` on a GPU), starting
/// every run from `initial` (the workload's parameter vectors back to
/// back). The trainer is built once (its setup time is the row's); a
/// history sized for the workload's epochs records the points a shorter
/// timed run reaches.
pub fn measure(
    engine: &Engine,
    workload: &Workload,
    strategy: Strategy,
    initial: &[f64],
    budget: f64,
) -> Result<Row, Error> {
    let gpu = GpuOptions {
        kernel_timing: true,
        ..GpuOptions::default()
    };
    let started = Instant::now();
    let recording = workload
        .config()
        .history_plan()
        .map(|plan| Recording { plan, eval: None });
    let trainer = engine.trainer(&TrainerSetup {
        recording: recording.as_ref(),
        strategy,
        gpu: &gpu,
        ..TrainerSetup::new(&workload.spec, &workload.data, workload.networks)
    })?;
    let setup_seconds = started.elapsed().as_secs_f64();
    let rates = vec![workload.learning_rate; workload.networks];
    let state_len = workload.spec.optimizer.state_slots() * initial.len();
    // With a resample, each network's rows, from its key.
    let samples = workload.data.samples();
    let counts = workload.spec.resample.map(|r| {
        let replicates = 0..workload.networks as u64;
        crate::resample::block_counts(&r, samples, replicates)
    });
    let run = |epochs: u64| {
        let mut params = initial.to_vec();
        let mut state = vec![0.0; state_len];
        let started = Instant::now();
        let block = Block {
            params: &mut params,
            state: &mut state,
            learning_rates: &rates,
            rows: counts.as_deref(),
        };
        let trained = trainer.train(block, &options(epochs), &mut uncontrolled)?;
        Ok::<_, Error>((trained, started.elapsed().as_secs_f64()))
    };
    let epochs = calibrate(budget, workload.epochs, |e| run(e).map(|(_, s)| s))?;
    let (trained, wall_seconds) = run(epochs)?;
    let (adapter, backend) = engine.device_names();
    Ok(row(
        adapter,
        backend,
        trainer.label(),
        workload,
        setup_seconds,
        Timed {
            epochs,
            wall_seconds,
            kernel_seconds: trained.kernel_seconds,
            outcomes: trained.outcomes,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn planned_epochs_fill_the_budget_after_the_fixed_cost() {
        // 1 epoch 0.3 s, 101 epochs 0.4 s: 1 ms per epoch after 0.299 s
        // of fixed cost; 10 s leave 9,701 epochs -> 9,700.
        assert_eq!(planned_epochs((1, 0.3), (101, 0.4), 10.0, 1_000_000), 9_700);
        // No fixed cost: 2,000 epochs/s fill 10 s with 20,000.
        assert_eq!(
            planned_epochs((10, 0.005), (100, 0.05), 10.0, 1_000_000),
            20_000
        );
        // Small counts stay exact; the workload caps; at least one epoch.
        assert_eq!(planned_epochs((1, 1.0), (2, 2.0), 57.5, 1_000), 57);
        assert_eq!(
            planned_epochs((1, 0.0001), (10, 0.001), 10.0, 20_000),
            20_000
        );
        assert_eq!(planned_epochs((1, 30.0), (2, 60.0), 1.0, 20_000), 1);
        // Timer noise (the longer probe was not slower): per-epoch only.
        assert_eq!(planned_epochs((1, 0.02), (2, 0.02), 1.0, 1_000), 100);
    }

    #[test]
    fn calibration_grows_the_probe_until_a_tenth_of_the_budget() {
        // A workload at 1,000 epochs/s plus 50 ms per run.
        let cost = |e: u64| 0.05 + e as f64 / 1_000.0;
        let mut probes = Vec::new();
        let epochs = calibrate(2.0, 1_000_000, |e| {
            probes.push(e);
            Ok(cost(e))
        })
        .unwrap();
        assert_eq!(probes[..2], [1, 1], "a warm-up run, then the first probe");
        assert!(probes.len() >= 3, "at least two counted probes: {probes:?}");
        assert!(probes[1..].windows(2).all(|p| p[1] > p[0]), "{probes:?}");
        assert!(cost(*probes.last().unwrap()) >= 0.2, "{probes:?}");
        // The fixed 50 ms is left out of the budget: (2 - 0.05) * 1000.
        assert_eq!(epochs, 1_900, "from {probes:?}");
        // A workload cheaper than the budget runs in full.
        let mut seen = Vec::new();
        let full = calibrate(10.0, 500, |e| {
            seen.push(e);
            Ok(e as f64 * 1e-5)
        })
        .unwrap();
        assert_eq!(full, 500);
        assert_eq!(*seen.last().unwrap(), 500);
        // One epoch over budget already: two probes, then one epoch.
        let mut slow = Vec::new();
        let one = calibrate(0.5, 20_000, |e| {
            slow.push(e);
            Ok(2.0 * e as f64)
        })
        .unwrap();
        assert_eq!((one, slow), (1, vec![1, 1, 2]));
    }
}
