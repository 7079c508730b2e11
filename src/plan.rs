//! A training run as validated once: what [`crate::cli::TrainArgs::to_plan`]
//! makes of the command line's (or the Python package's) settings, and all
//! that [`crate::commands::train_with`] and everything below it see.
//!
//! The plan holds values, not flags: the sweep (every grid point's
//! validated configuration, the data loaded once and shared), where the
//! outputs go, which shard of the networks this process trains, on which
//! devices, and what `--verify` re-trains. Every rule that ties two
//! settings together is checked before a plan exists.

use std::path::PathBuf;

pub use crate::report::VerifyPlan;
use crate::setting::Setting;
use crate::sweep::Sweep;
use crate::sweep::outputs::OutputPaths;
use crate::sweep::shard::Shard;

/// A validated training run.
#[derive(Debug)]
pub struct TrainPlan {
    /// The grid's points (a plain run is a sweep of one point).
    pub sweep: Sweep,
    pub outputs: OutputPlan,
    /// The range of network ids this process trains.
    pub shard: Shard,
    pub devices: Devices,
    pub verify: Option<VerifyPlan>,
    /// The run's seed, which weights files record.
    pub seed: u64,
    /// The command that asked for the run, as its face gave it, without
    /// where its outputs go, which shard, devices or threads ran it, or how
    /// it shows progress (run.json and summary.json record it; `gputrain
    /// rerun` runs it again).
    pub command: Vec<String>,
}

/// Where a run writes, and what it reads (so that no output replaces an
/// input). Each path is named with the setting that gave it, for errors.
#[derive(Debug, Clone, Default)]
pub struct OutputPlan {
    /// One directory for every output under fixed names (`--out`).
    pub directory: Option<PathBuf>,
    /// Replace an earlier run's files in [`Self::directory`].
    pub overwrite: bool,
    /// The files named one by one; unused with a directory.
    pub results: Option<PathBuf>,
    pub weights: Option<PathBuf>,
    pub groups: Option<PathBuf>,
    pub history_out: Option<PathBuf>,
    pub history_csv: Option<PathBuf>,
    /// The snapshots' own file (`--snapshots-out`), with a directory too.
    pub snapshots: Option<PathBuf>,
    /// The learning curves' figure, drawn at the end.
    pub plot: Option<PathBuf>,
    /// The run records learning curves.
    pub history: bool,
    /// The files the run reads, each with its setting.
    pub inputs: Vec<(Setting, PathBuf)>,
}

impl OutputPlan {
    /// The output files: the directory's names, or those given, with the
    /// unnamed ones in `scratch` where there is one (the Python package's
    /// temporary directory).
    pub fn paths(&self, scratch: Option<&std::path::Path>) -> OutputPaths {
        if let Some(dir) = &self.directory {
            return OutputPaths {
                snapshots: self.snapshots.clone(),
                ..OutputPaths::directory(dir, self.history)
            };
        }
        let spare = scratch.map(|dir| OutputPaths::directory(dir, self.history));
        let spare = |pick: fn(OutputPaths) -> Option<PathBuf>| spare.clone().and_then(pick);
        OutputPaths {
            results: self.results.clone().or_else(|| spare(|p| p.results)),
            weights: self.weights.clone().or_else(|| spare(|p| p.weights)),
            groups: self.groups.clone(),
            history_out: self
                .history_out
                .clone()
                .or_else(|| spare(|p| p.history_out)),
            history_csv: self.history_csv.clone(),
            summary: None,
            run: None,
            snapshots: self.snapshots.clone(),
        }
    }
}

/// The devices a run trains on.
#[derive(Debug, Clone, PartialEq)]
pub enum Devices {
    /// One device, as the configuration's backend and adapter choose.
    One,
    /// Adapters by index, one device each, each training a contiguous
    /// part of the networks (an index may repeat).
    Several(Vec<usize>),
}
