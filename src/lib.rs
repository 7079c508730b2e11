//! gputrain: train thousands to millions of small, independent, fully
//! connected networks at once on the GPU (wgpu + WGSL), with a float64 CPU
//! reference that verifies the GPU's results.
//!
//! Module map: [`vocab`] (the one table of activations, losses and
//! optimizers: f64 formula and WGSL building block per entry), [`schedule`]
//! (learning-rate schedules: one float64 formula per entry, shared by
//! every trainer), [`model`]
//! (topology, bias, the model spec, parameter layout), [`data`]
//! (tasks and CSV), [`init`] (per-network initialisation), [`training`]
//! (options and outcomes), [`resample`] (each network's own bootstrap or
//! subsample of the rows), [`early_stopping`] (stopping each network on
//! its held-out loss, keeping its best weights), [`cpu`] (the float64
//! reference), [`gpu`] (device,
//! kernels, the fused and layered trainers, forward passes), [`predict`]
//! (selection, scores and ensembles of trained networks), [`mod@bench`] (the
//! standard throughput workloads and their report), [`sweep`] (grids,
//! shards and their merge), [`groups`] (statistics by grid point).

pub mod backend;
pub mod batches;
pub mod bench;
pub mod cli;
pub mod commands;
pub mod cpu;
pub mod data;
pub mod early_stopping;
pub mod error;
pub mod evaluation;
pub mod gpu;
pub mod groups;
pub mod history;
pub mod init;
pub mod lane_math;
pub mod memory;
pub mod model;
pub mod output;
pub mod plan;
pub mod plot;
pub mod predict;
pub mod progress;
pub mod recording;
pub mod report;
pub mod resample;
pub mod run;
pub mod schedule;
pub mod setting;
pub mod simd;
pub mod stats;
pub mod sweep;
pub mod table;
pub mod trainer;
pub mod training;
pub mod vocab;
pub mod weights;

pub use error::Error;

/// This build: its version and the commit it was built from (`-modified`
/// when tracked files differed from it; `unknown` outside a git
/// checkout), as `gputrain -V`, summary.json and run.json say it.
pub const VERSION: &str = concat!(
    env!("CARGO_PKG_VERSION"),
    " (commit ",
    env!("GPUTRAIN_COMMIT"),
    ")"
);
