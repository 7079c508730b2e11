//! Command-line definitions (clap derive) and their validation into a
//! [`RunConfig`]. Every problem is reported with the flag it concerns.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::bench::{BackendFilter as BenchBackends, KernelFilter, Suite};
use crate::data::{Task, load_csv};
use crate::gpu::{AdapterChoice, GpuOptions, Strategy};
use crate::init::{self, Init};
use crate::model::{BiasMode, Loss, ModelSpec, Reduction, Topology};
use crate::run::{BackendChoice, LearningRate, RunConfig, Start};
use crate::training::TrainOptions;

#[derive(Debug, Parser)]
#[command(
    name = "gputrain",
    version,
    about = "Train thousands to millions of small sigmoid networks at once on the GPU, \
             checked against a float64 CPU reference",
    args_conflicts_with_subcommands = true,
    allow_negative_numbers = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub train: TrainArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Train a population of networks (the default command).
    Train(Box<TrainArgs>),
    /// Measure throughput on the standard workloads on every adapter, each
    /// strategy that applies, and the CPU reference.
    Bench(BenchArgs),
    /// List every adapter wgpu finds, with the limits that matter here.
    Adapters {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
}

/// `gputrain bench`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct BenchArgs {
    /// A short run: 0.5 s per row instead of 10 (under a minute on a
    /// 2-core machine's software adapter).
    #[arg(long)]
    pub quick: bool,
    /// Print the rows as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Only these workloads: tutorial-10k, tutorial-1m, xor, wide
    /// (comma-separated or repeated) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub workload: Vec<String>,
    /// One adapter by index or name substring [default: every adapter].
    #[arg(long)]
    pub adapter: Option<String>,
    /// Rows for: all (GPU and CPU reference), gpu, or cpu.
    #[arg(long, default_value = "all", value_parser = parse_with::<BenchBackends>)]
    pub backend: BenchBackends,
    /// GPU strategies: all (each that applies), auto, fused, or layered.
    #[arg(long, default_value = "all", value_parser = parse_with::<KernelFilter>)]
    pub kernel: KernelFilter,
    /// Seconds each row's timed run may take; a row runs the workload's
    /// epochs or as many as fit [default: 10, or 0.5 with --quick].
    #[arg(long, value_parser = positive_f64)]
    pub seconds: Option<f64>,
    /// No notes on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

impl BenchArgs {
    /// Validates the arguments into a benchmark plan.
    pub fn to_suite(&self) -> Result<Suite, crate::Error> {
        Ok(Suite {
            workloads: crate::bench::workloads::select(&self.workload)?,
            backends: self.backend,
            adapter: self
                .adapter
                .as_ref()
                .map(|a| a.parse::<AdapterChoice>().unwrap_or_default()),
            kernels: self.kernel,
            seconds: self.seconds.unwrap_or(if self.quick { 0.5 } else { 10.0 }),
        })
    }
}

fn parse_with<T: std::str::FromStr<Err = crate::Error>>(s: &str) -> Result<T, String> {
    s.parse::<T>().map_err(|e| e.to_string())
}

fn positive_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("'{s}' must be a finite number > 0")),
    }
}

fn non_negative_f64(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' must be a finite number >= 0")),
    }
}

#[derive(Debug, Clone, Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    /// Number of independent networks.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=(u32::MAX as u64)))]
    pub networks: u64,
    /// Full-batch gradient-descent steps per network.
    #[arg(long, default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(0..=crate::training::MAX_EPOCHS))]
    pub epochs: u64,
    /// Built-in data set: tutorial (seed 003's one sample) or xor.
    #[arg(long, value_parser = parse_with::<Task>, conflicts_with = "data")]
    pub task: Option<Task>,
    /// CSV data: the first n0 columns are inputs, the rest targets in [0, 1].
    #[arg(long, value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    /// Layer widths, e.g. 2,2,2 (default: the task's own; required with --data).
    #[arg(long, value_parser = parse_with::<Topology>)]
    pub layers: Option<Topology>,
    /// Bias mode: per-neuron, shared (one per layer) or none
    /// [default: shared for tutorial, per-neuron otherwise].
    #[arg(long, value_parser = parse_with::<BiasMode>)]
    pub bias: Option<BiasMode>,
    /// Keep biases at their initial values.
    #[arg(long)]
    pub freeze_bias: bool,
    /// Loss: half-sse (1/2 (y - yhat)^2) or sse ((y - yhat)^2).
    #[arg(long, default_value = "half-sse", value_parser = parse_with::<Loss>)]
    pub loss: Loss,
    /// Reduction over samples: sum or mean.
    #[arg(long, default_value = "sum", value_parser = parse_with::<Reduction>)]
    pub reduction: Reduction,
    /// Learning rate, or a log-spaced sweep across networks such as 0.05..5
    /// [default: 0.5, or the rates in --init-weights].
    #[arg(long, value_parser = parse_with::<LearningRate>)]
    pub lr: Option<LearningRate>,
    /// Initialisation: xavier, uniform:A, or tutorial (seed 003's weights).
    #[arg(long, default_value = "xavier", value_parser = parse_with::<Init>, conflicts_with = "init_weights")]
    pub init: Init,
    /// Start from a weights file written by --weights.
    #[arg(long, value_name = "FILE.safetensors")]
    pub init_weights: Option<PathBuf>,
    /// Seed of the initialisation; network i depends only on (seed, i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Record the first epoch whose loss is at or below this.
    #[arg(long, value_parser = non_negative_f64)]
    pub target_loss: Option<f64>,
    /// Stop updating a network once it reached --target-loss.
    #[arg(long, requires = "target_loss")]
    pub stop_at_target: bool,
    /// auto (GPU if an adapter is found, else CPU), gpu, or cpu.
    #[arg(long, default_value = "auto", value_parser = parse_with::<BackendChoice>)]
    pub backend: BackendChoice,
    /// Adapter by index or name substring (see `gputrain adapters`).
    #[arg(long, default_value = "auto")]
    pub adapter: String,
    /// GPU strategy: auto (fused for small networks, layered for larger;
    /// the rule is in the README), fused, or layered.
    #[arg(long, default_value = "auto", value_parser = parse_with::<Strategy>)]
    pub kernel: Strategy,
    /// Per-network results as CSV.
    #[arg(long, value_name = "FILE.csv")]
    pub results: Option<PathBuf>,
    /// Final weights as safetensors (--epochs 0 writes the initial ones).
    #[arg(long, value_name = "FILE.safetensors")]
    pub weights: Option<PathBuf>,
    /// Print the summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Re-train K networks spread across the population in float64 on the
    /// CPU and compare; exit 1 if predictions differ beyond the tolerance.
    #[arg(long, value_name = "K")]
    pub verify: Option<usize>,
    /// Largest prediction difference --verify accepts.
    #[arg(long, default_value_t = 1e-3, value_parser = positive_f64)]
    pub verify_tolerance: f64,
    /// Epochs per GPU submission (default: adaptive, ~0.1 s each).
    #[arg(long, hide = true)]
    pub epochs_per_submission: Option<u32>,
    /// No progress bar and no notes on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

impl TrainArgs {
    /// Validates the arguments into a run configuration. Errors name the
    /// flags involved.
    pub fn to_config(&self) -> Result<RunConfig, crate::Error> {
        let usage = crate::Error::Config;
        let (data, default_widths, task) = match (&self.data, self.task) {
            (Some(path), _) => {
                let topology = self.layers.as_ref().ok_or_else(|| {
                    usage(format!(
                        "--data {} needs --layers (e.g. --layers 3,4,2: the first width is the \
                         number of input columns, the last the number of target columns)",
                        path.display()
                    ))
                })?;
                let data = load_csv(path, topology.inputs(), topology.outputs())?;
                (data, topology.widths().to_vec(), None)
            }
            (None, task) => {
                let task = task.unwrap_or(Task::Tutorial);
                (task.dataset(), task.default_widths(), Some(task))
            }
        };
        let topology = match &self.layers {
            Some(t) => t.clone(),
            None => Topology::new(default_widths)?,
        };
        if topology.inputs() != data.inputs || topology.outputs() != data.outputs {
            return Err(usage(format!(
                "--layers {topology} takes {} inputs and gives {} outputs, but the data ({}) has \
                 {} inputs and {} targets",
                topology.inputs(),
                topology.outputs(),
                data.name,
                data.inputs,
                data.outputs
            )));
        }
        let bias = self.bias.unwrap_or(match task {
            Some(Task::Tutorial) => BiasMode::Shared,
            _ => BiasMode::PerNeuron,
        });
        let spec = ModelSpec {
            topology,
            bias,
            freeze_bias: self.freeze_bias,
            loss: self.loss,
            reduction: self.reduction,
        };
        let start = match &self.init_weights {
            Some(path) => Start::WeightsFile(path.clone()),
            None => {
                init::check(&spec, self.init)?;
                Start::Init {
                    init: self.init,
                    seed: self.seed,
                }
            }
        };
        let options = TrainOptions {
            epochs: self.epochs,
            target_loss: self.target_loss,
            stop_at_target: self.stop_at_target,
        };
        options.validate()?;
        if self.verify == Some(0) {
            return Err(usage("--verify needs at least 1 network".into()));
        }
        Ok(RunConfig {
            spec,
            data,
            networks: self.networks as usize,
            learning_rate: self.lr,
            start,
            options,
            backend: self.backend,
            adapter: self.adapter.parse::<AdapterChoice>().unwrap_or_default(),
            strategy: self.kernel,
            gpu: GpuOptions {
                epochs_per_submission: self.epochs_per_submission,
                ..GpuOptions::default()
            },
        })
    }
}
