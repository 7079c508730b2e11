//! Command-line definitions (clap derive), grouped as the help shows them
//! (model, data, training, output, device), and their validation into a
//! [`RunConfig`]. Every problem is reported with the flag it concerns.
//! Enum-valued flags are clap `ValueEnum`s of the library's own types, so
//! their names and the error for an unknown one come from one place.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::batches::Batching;
use crate::bench::{BackendFilter as BenchBackends, KernelFilter, Suite};
use crate::data::{Task, TaskOptions, load_csv};
use crate::gpu::{AdapterChoice, GpuOptions, Strategy};
use crate::init::Init;
use crate::model::{
    Activation, BiasMode, Loss, ModelSpec, Optimizer, OptimizerConfig, Reduction, Topology,
};
use crate::run::{BackendChoice, LearningRate, RunConfig, Start};
use crate::training::TrainOptions;

#[derive(Debug, Parser)]
#[command(
    name = "gputrain",
    version,
    about = "Train thousands to millions of small neural networks at once on the GPU, \
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
    /// strategy that applies, the SIMD trainer and the CPU reference.
    Bench(BenchArgs),
    /// Write a built-in task's samples as CSV, to look at them or to train
    /// elsewhere on exactly the same points.
    Data(DataCommandArgs),
    /// Run trained networks on new data: their outputs per sample, or an
    /// ensemble's; with targets in the data, each network's loss and
    /// accuracy too. The weights file gives the model.
    Predict(PredictArgs),
    /// Draw a run's learning curves or final losses as SVG or PNG.
    #[command(subcommand)]
    Plot(PlotCommand),
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
    /// Only these workloads: tutorial-10k, tutorial-momentum,
    /// tutorial-adam, tutorial-100k, tutorial-1m, xor, wide, moons-minibatch
    /// (comma-separated or repeated) [default: all].
    #[arg(long, value_delimiter = ',')]
    pub workload: Vec<String>,
    /// One adapter by index or name substring [default: every adapter].
    #[arg(long, value_parser = parse_adapter)]
    pub adapter: Option<AdapterChoice>,
    /// Rows for: all (every adapter, the SIMD trainer and the CPU
    /// reference), gpu, simd, or cpu (the float64 reference).
    #[arg(long, value_enum, default_value_t = BenchBackends::All)]
    pub backend: BenchBackends,
    /// GPU strategies: all (each that applies), or only auto, fused or layered.
    #[arg(long, value_enum, default_value_t = KernelFilter::All)]
    pub kernel: KernelFilter,
    /// Seconds each row's timed run may take; a row runs the workload's
    /// epochs or as many as fit [default: 10, or 0.5 with --quick].
    #[arg(long, value_parser = positive_f64)]
    pub seconds: Option<f64>,
    /// No notes on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also run the struct-of-arrays peers (NumPy, Numba, JAX, PyTorch
    /// eager and torch.compile) on the workloads they implement, in this
    /// run, each checked against the float64 reference first; peers not
    /// installed are listed as such.
    #[arg(long)]
    pub peers: bool,
    /// The Python that runs the peers [default: GPUTRAIN_PYTHON, else
    /// python3].
    #[arg(long, value_name = "PATH", requires = "peers")]
    pub python: Option<PathBuf>,
    /// The folder holding soa_peers.py [default: this build's
    /// benches/peers].
    #[arg(long, value_name = "DIR", requires = "peers")]
    pub peers_dir: Option<PathBuf>,
    /// Where JAX and PyTorch peers run: cpu or cuda.
    #[arg(long, default_value = "cpu", value_parser = ["cpu", "cuda"], requires = "peers")]
    pub peers_device: String,
    /// Largest relative final-loss difference from the float64 reference
    /// a peer may show (|loss - ref| / (1e-3 + ref)).
    #[arg(long, default_value_t = 1e-3, value_parser = positive_f64, requires = "peers")]
    pub peers_tolerance: f64,
}

impl BenchArgs {
    /// The peers' set-up, when `--peers` asks for them.
    pub fn peer_setup(&self) -> Option<crate::bench::PeerSetup> {
        self.peers.then(|| crate::bench::PeerSetup {
            python: self
                .python
                .clone()
                .or_else(|| std::env::var_os("GPUTRAIN_PYTHON").map(PathBuf::from))
                .unwrap_or_else(|| PathBuf::from("python3")),
            scripts: self.peers_dir.clone().unwrap_or_else(|| {
                PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers"))
            }),
            device: self.peers_device.clone(),
            tolerance: self.peers_tolerance,
        })
    }

    /// Validates the arguments into a benchmark plan.
    pub fn to_suite(&self) -> Result<Suite, crate::Error> {
        Ok(Suite {
            workloads: crate::bench::workloads::select(&self.workload)?,
            backends: self.backend,
            adapter: self.adapter.clone(),
            kernels: self.kernel,
            seconds: self.seconds.unwrap_or(if self.quick { 0.5 } else { 10.0 }),
        })
    }
}

fn parse_with<T: std::str::FromStr<Err = crate::Error>>(s: &str) -> Result<T, String> {
    s.parse::<T>().map_err(|e| e.to_string())
}

fn parse_adapter(s: &str) -> Result<AdapterChoice, String> {
    s.parse::<AdapterChoice>().map_err(|e| match e {})
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

/// What the networks are: shape, activations, loss.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Model")]
pub struct ModelArgs {
    /// Layer widths, e.g. 2,2,2 (default: the task's own; required with --data).
    #[arg(long, value_parser = parse_with::<Topology>)]
    pub layers: Option<Topology>,
    /// Bias mode: one bias per neuron, one shared per layer, or none
    /// [default: shared for tutorial, per-neuron otherwise].
    #[arg(long, value_enum)]
    pub bias: Option<BiasMode>,
    /// Keep biases at their initial values.
    #[arg(long)]
    pub freeze_bias: bool,
    /// Activation of the hidden layers.
    #[arg(long, value_enum, default_value_t)]
    pub activation: Activation,
    /// Activation of the output layer (sigmoid, tanh or linear).
    #[arg(long, value_enum, default_value_t)]
    pub output_activation: Activation,
    /// Loss per output: half-sse 1/2 (y - yhat)^2, sse (y - yhat)^2, or
    /// binary cross-entropy (sigmoid outputs only).
    #[arg(long, value_enum, default_value_t)]
    pub loss: Loss,
    /// Reduction over samples: sum or mean.
    #[arg(long, value_enum, default_value_t)]
    pub reduction: Reduction,
}

/// What the networks learn from.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Data")]
pub struct DataArgs {
    /// Built-in data set: tutorial (seed 003's one sample), xor, parity:N
    /// (all 2^N bit strings), or moons, circles, spirals (drawn: see
    /// --samples, --noise, --data-seed).
    #[arg(long, value_parser = parse_with::<Task>, conflicts_with = "data")]
    pub task: Option<Task>,
    /// CSV data: the first n0 columns are inputs, the rest targets (in the
    /// output activation's range: [0, 1] for sigmoid, [-1, 1] for tanh).
    #[arg(long, value_name = "FILE.csv")]
    pub data: Option<PathBuf>,
    #[command(flatten)]
    pub drawn: DrawArgs,
    /// Held-out data, the training data's columns: every network's loss
    /// and accuracy on it after training.
    #[arg(long, value_name = "FILE.csv", conflicts_with = "holdout")]
    pub eval_data: Option<PathBuf>,
    /// Hold out this fraction of the samples for evaluation instead,
    /// chosen from --data-seed, in (0, 1).
    #[arg(long, value_name = "FRACTION")]
    pub holdout: Option<f64>,
}

/// How moons, circles and spirals are drawn.
#[derive(Debug, Clone, Default, Args)]
pub struct DrawArgs {
    /// Points of moons, circles or spirals, half of each class
    /// (scikit-learn's n_samples) [default: 100].
    #[arg(long, value_name = "K")]
    pub samples: Option<usize>,
    /// Standard deviation of the Gaussian noise added to the points
    /// [default: 0].
    #[arg(long, value_name = "X")]
    pub noise: Option<f64>,
    /// Seed of the noise and of the points' order [default: 0].
    #[arg(long)]
    pub data_seed: Option<u64>,
}

impl DrawArgs {
    /// The drawing options for `task` (`None`: the data comes from
    /// `--data`); each flag is refused where it does not apply, and a bad
    /// value names its flag.
    pub fn options(&self, task: Option<Task>) -> Result<TaskOptions, crate::Error> {
        self.options_with(task, false)
    }

    /// [`Self::options`], where `seed_used` says `--data-seed` also seeds
    /// something else (the `--holdout` split), so it applies to any data.
    pub fn options_with(
        &self,
        task: Option<Task>,
        seed_used: bool,
    ) -> Result<TaskOptions, crate::Error> {
        let usage = crate::Error::Config;
        let given = [
            ("--samples", self.samples.is_some()),
            ("--noise", self.noise.is_some()),
            ("--data-seed", self.data_seed.is_some() && !seed_used),
        ];
        if !task.is_some_and(Task::is_drawn)
            && let Some((flag, _)) = given.iter().find(|(_, g)| *g)
        {
            let instead = task.map_or("--data".to_string(), |t| format!("--task {t}"));
            return Err(usage(format!(
                "{flag} applies to --task moons, circles and spirals, not {instead}"
            )));
        }
        let defaults = TaskOptions::default();
        let options = TaskOptions {
            samples: self.samples.unwrap_or(defaults.samples),
            noise: self.noise.unwrap_or(defaults.noise),
            seed: self.data_seed.unwrap_or(defaults.seed),
        };
        if options.samples == 0 {
            return Err(usage("--samples must be at least 1".into()));
        }
        if options.samples > MAX_DRAWN_SAMPLES {
            return Err(usage(format!(
                "--samples {} exceeds the maximum of {MAX_DRAWN_SAMPLES}",
                options.samples
            )));
        }
        if !(options.noise.is_finite() && options.noise >= 0.0) {
            return Err(usage(format!(
                "--noise {} must be a finite number >= 0",
                options.noise
            )));
        }
        Ok(options)
    }
}

/// The most points `--samples` draws (16 Mi): far beyond what small
/// networks train on, and well inside memory.
pub const MAX_DRAWN_SAMPLES: usize = 1 << 24;

/// `gputrain data`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct DataCommandArgs {
    /// The task to write: xor, parity:N, moons, circles or spirals.
    #[arg(long, value_parser = parse_with::<Task>)]
    pub task: Task,
    #[command(flatten)]
    pub drawn: DrawArgs,
    /// The CSV file to write: inputs, then targets, one sample a line,
    /// under a header (x0,x1,...,y0,...); --data reads it back.
    #[arg(long, value_name = "FILE.csv")]
    pub out: PathBuf,
}

/// `gputrain plot`'s figures.
#[derive(Debug, Clone, Subcommand)]
pub enum PlotCommand {
    /// The population's loss against epoch: median, 10%-90% and min-max
    /// bands, log scale, the held-out median and the target line if any.
    History {
        /// A --history-csv file, or a --history-out safetensors file.
        input: PathBuf,
        /// The figure: .svg or .png, 800 x 600 [default: the input's name
        /// with .svg].
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// Draw this target loss (a --history-out file records its own).
        #[arg(long, value_parser = non_negative_f64)]
        target_loss: Option<f64>,
    },
    /// The final losses of a --results CSV: a histogram with log bins, or
    /// for a learning-rate sweep the rate against the final loss, log-log,
    /// diverged networks marked.
    Results {
        /// A --results CSV file.
        input: PathBuf,
        /// The figure: .svg or .png, 800 x 600 [default: the input's name
        /// with .svg].
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
}

/// `gputrain predict`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// The trained networks (written by --weights): the file's metadata
    /// gives the topology, bias mode, activations and loss.
    #[arg(long, value_name = "FILE.safetensors")]
    pub weights: PathBuf,
    /// Samples to predict: each row the inputs, or the inputs then the
    /// targets (then each network's loss and accuracy are reported); an
    /// optional header row.
    #[arg(long, value_name = "FILE.csv")]
    pub data: PathBuf,
    /// Where the predictions go as CSV [default: standard output, with the
    /// summary on standard error].
    #[arg(long, value_name = "PRED.csv")]
    pub out: Option<PathBuf>,
    /// Which networks: all, best (lowest loss on --data, which needs
    /// targets), or indices and ranges such as 0,5,10-19.
    #[arg(long, default_value = "all", value_parser = parse_with::<crate::predict::Selection>)]
    pub networks_select: crate::predict::Selection,
    /// Combine the chosen networks per sample: mean (with the standard
    /// deviation) or median (with the interquartile range).
    #[arg(long, value_enum)]
    pub ensemble: Option<crate::predict::Ensemble>,
    /// Each chosen network's loss and accuracy as CSV
    /// (network,loss,accuracy); needs targets in --data.
    #[arg(long, value_name = "FILE.csv")]
    pub scores: Option<PathBuf>,
    /// Print the summary as JSON (needs --out: the predictions would share
    /// standard output).
    #[arg(long)]
    pub json: bool,
    /// No summary (errors still print).
    #[arg(long, short)]
    pub quiet: bool,
    /// auto (GPU if an adapter is found, else CPU), gpu, or cpu (the
    /// float64 forward passes; simd is the same here).
    #[arg(long, value_enum, default_value_t)]
    pub backend: BackendChoice,
    /// Adapter by index or name substring (see `gputrain adapters`).
    #[arg(long, default_value = "auto", value_parser = parse_adapter)]
    pub adapter: AdapterChoice,
}

/// How many networks, for how long, from where.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Training")]
pub struct TrainingArgs {
    /// Number of independent networks.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u64).range(1..=(u32::MAX as u64)))]
    pub networks: u64,
    /// Epochs per network: passes over the data, one update each (one per
    /// minibatch with --batch-size); with --resume, the total each network
    /// trains to [default: 20000; with --resume, the total its run asked
    /// for].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=crate::training::MAX_EPOCHS))]
    pub epochs: Option<u64>,
    /// Learning rate, or a log-spaced sweep across networks such as 0.05..5
    /// [default: 0.5, or the rates in --init-weights].
    #[arg(long, value_parser = parse_with::<LearningRate>)]
    pub lr: Option<LearningRate>,
    /// Initialisation: xavier, he (for ReLU), uniform:A, or tutorial (seed
    /// 003's weights).
    #[arg(long, default_value = "xavier", value_parser = parse_with::<Init>, conflicts_with = "init_weights")]
    pub init: Init,
    /// Start from a weights file written by --weights: its parameters,
    /// with fresh optimizer state.
    #[arg(long, value_name = "FILE.safetensors", conflicts_with = "resume")]
    pub init_weights: Option<PathBuf>,
    /// Continue the training a weights file holds, exactly: its
    /// parameters, optimizer state and epochs (the run's flags must be the
    /// ones it was trained with).
    #[arg(long, value_name = "FILE.safetensors", conflicts_with = "init")]
    pub resume: Option<PathBuf>,
    /// Seed of the initialisation; network i depends only on (seed, i).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Record the first epoch whose loss is at or below this.
    #[arg(long, value_parser = non_negative_f64)]
    pub target_loss: Option<f64>,
    /// Stop updating a network once it reached --target-loss.
    #[arg(long, requires = "target_loss")]
    pub stop_at_target: bool,
    /// Samples per update: an epoch visits every sample once in batches of
    /// B, the last one smaller if need be (1: online training) [default:
    /// every sample in one batch].
    #[arg(long, value_name = "B")]
    pub batch_size: Option<usize>,
    /// Visit the samples in the data's order every epoch (default with
    /// --batch-size: a new order each epoch from --seed and the epoch).
    #[arg(long)]
    pub no_shuffle: bool,
}

/// The update rule, as torch.optim.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Optimizer")]
pub struct OptimizerArgs {
    /// sgd (the seeds'), momentum or nesterov (torch.optim.SGD with
    /// momentum), or adam (torch.optim.Adam).
    #[arg(long, value_enum, default_value_t)]
    pub optimizer: Optimizer,
    /// Momentum of momentum and nesterov, in [0, 1) [default: 0.9].
    #[arg(long, value_name = "MU")]
    pub momentum: Option<f64>,
    /// Adam's first-moment decay, in [0, 1) [default: 0.9].
    #[arg(long)]
    pub beta1: Option<f64>,
    /// Adam's second-moment decay, in [0, 1) [default: 0.999].
    #[arg(long)]
    pub beta2: Option<f64>,
    /// Adam's denominator term, > 0 [default: 1e-8].
    #[arg(long)]
    pub eps: Option<f64>,
    /// Coupled L2 decay: L * p is added to every gradient, as PyTorch's
    /// weight_decay [default: 0].
    #[arg(long, value_name = "L")]
    pub weight_decay: Option<f64>,
}

impl OptimizerArgs {
    /// The optimizer and its hyperparameters; a hyperparameter the chosen
    /// optimizer does not use is a usage error naming both flags.
    pub fn to_config(&self) -> Result<OptimizerConfig, crate::Error> {
        let kind = self.optimizer;
        let uses_momentum = matches!(kind, Optimizer::Momentum | Optimizer::Nesterov);
        let unused = [
            ("--momentum", self.momentum.is_some() && !uses_momentum),
            ("--beta1", self.beta1.is_some() && kind != Optimizer::Adam),
            ("--beta2", self.beta2.is_some() && kind != Optimizer::Adam),
            ("--eps", self.eps.is_some() && kind != Optimizer::Adam),
        ];
        if let Some((flag, _)) = unused.iter().find(|(_, unused)| *unused) {
            let users = match *flag {
                "--momentum" => "momentum and nesterov",
                _ => "adam",
            };
            return Err(crate::Error::Config(format!(
                "{flag} applies to --optimizer {users} only, but the optimizer is {kind}"
            )));
        }
        let defaults = OptimizerConfig::of(kind);
        let config = OptimizerConfig {
            kind,
            momentum: self.momentum.unwrap_or(defaults.momentum),
            beta1: self.beta1.unwrap_or(defaults.beta1),
            beta2: self.beta2.unwrap_or(defaults.beta2),
            eps: self.eps.unwrap_or(defaults.eps),
            weight_decay: self.weight_decay.unwrap_or(defaults.weight_decay),
        };
        config.validate()?;
        Ok(config)
    }
}

impl Default for TrainingArgs {
    fn default() -> Self {
        Self {
            networks: 10_000,
            epochs: None,
            lr: None,
            init: Init::Xavier,
            init_weights: None,
            resume: None,
            seed: 0,
            target_loss: None,
            stop_at_target: false,
            batch_size: None,
            no_shuffle: false,
        }
    }
}

/// What is written, and checked, at the end.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
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
    /// No progress bar and no notes on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Record every network's loss at epoch 0 and every K epochs (and the
    /// last), with held-out data its evaluation loss too: learning curves
    /// for --history-out, --history-csv and the summary.
    #[arg(long, value_name = "K")]
    pub history: Option<u64>,
    /// Every network's curves as safetensors: `loss` (and `eval_loss`)
    /// [networks, points] float32, `epochs` [points] int64.
    #[arg(long, value_name = "FILE.safetensors", requires = "history")]
    pub history_out: Option<PathBuf>,
    /// The population's loss quantiles at each recorded epoch as CSV
    /// (epoch,min,p10,median,p90,max,reached_target,networks,diverged).
    #[arg(long, value_name = "FILE.csv", requires = "history")]
    pub history_csv: Option<PathBuf>,
    /// Draw the learning curves at the end (.svg or .png), as `gputrain
    /// plot history` does.
    #[arg(long, value_name = "FILE.svg", requires = "history")]
    pub plot: Option<PathBuf>,
}

impl Default for OutputArgs {
    fn default() -> Self {
        Self {
            results: None,
            weights: None,
            json: false,
            verify: None,
            verify_tolerance: 1e-3,
            quiet: false,
            history: None,
            history_out: None,
            history_csv: None,
            plot: None,
        }
    }
}

/// Where the training runs.
#[derive(Debug, Clone, Args)]
#[command(next_help_heading = "Device")]
pub struct DeviceArgs {
    /// auto (a hardware GPU if there is one, else simd; naming --adapter
    /// or --kernel asks for the GPU), gpu (any wgpu adapter, software ones
    /// such as lavapipe included), simd (the float32 trainer on every CPU
    /// core), or cpu (the float64 reference).
    #[arg(long, value_enum, default_value_t)]
    pub backend: BackendChoice,
    /// Threads of the CPU trainers (simd, cpu) [default: one per core;
    /// more than the machine runs at once are lowered, with a note].
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub threads: Option<u32>,
    /// Adapter by index or name substring (see `gputrain adapters`).
    #[arg(long, default_value = "auto", value_parser = parse_adapter)]
    pub adapter: AdapterChoice,
    /// GPU strategy: auto (fused for small networks, layered for larger;
    /// the rule is in the README), fused, or layered.
    #[arg(long, value_enum, default_value_t)]
    pub kernel: Strategy,
    /// Epochs per GPU submission (default: adaptive, ~0.1 s each).
    #[arg(long, hide = true)]
    pub epochs_per_submission: Option<u32>,
}

impl Default for DeviceArgs {
    fn default() -> Self {
        Self {
            backend: BackendChoice::Auto,
            adapter: AdapterChoice::Auto,
            kernel: Strategy::Auto,
            epochs_per_submission: None,
            threads: None,
        }
    }
}

/// `gputrain train`'s arguments (also the top level's).
#[derive(Debug, Clone, Default, Args)]
#[command(allow_negative_numbers = true)]
pub struct TrainArgs {
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
}

impl TrainArgs {
    /// Validates the arguments into a run configuration. Errors name the
    /// flags involved.
    pub fn to_config(&self) -> Result<RunConfig, crate::Error> {
        let usage = crate::Error::Config;
        let (model, training) = (&self.model, &self.training);
        let task = match (&self.data.data, self.data.task) {
            (Some(_), _) => None,
            (None, task) => Some(task.unwrap_or(Task::Tutorial)),
        };
        let topology = match (&model.layers, task, &self.data.data) {
            (Some(t), _, _) => t.clone(),
            (None, Some(task), _) => Topology::new(task.default_widths())?,
            (None, None, path) => {
                return Err(usage(format!(
                    "--data {} needs --layers (e.g. --layers 3,4,2: the first width is the \
                     number of input columns, the last the number of target columns)",
                    path.as_ref()
                        .map_or(String::new(), |p| p.display().to_string())
                )));
            }
        };
        if self.data.data.is_some() {
            self.data
                .drawn
                .options_with(None, self.data.holdout.is_some())?;
        }
        let spec = ModelSpec {
            topology,
            bias: model.bias.unwrap_or(match task {
                Some(Task::Tutorial) => BiasMode::Shared,
                _ => BiasMode::PerNeuron,
            }),
            freeze_bias: model.freeze_bias,
            activation: model.activation,
            output_activation: model.output_activation,
            loss: model.loss,
            reduction: model.reduction,
            optimizer: self.optimizer.to_config()?,
            batching: match training.batch_size {
                None if training.no_shuffle => {
                    return Err(usage(
                        "--no-shuffle needs --batch-size (one full batch has no order)".into(),
                    ));
                }
                Some(0) => return Err(usage("--batch-size must be at least 1".into())),
                Some(size) => Some(Batching {
                    size,
                    shuffle: !training.no_shuffle,
                    seed: training.seed,
                }),
                None => None,
            },
        };
        spec.validate()?;
        let data = match (&self.data.data, task) {
            (Some(path), _) => load_csv(
                path,
                spec.topology.inputs(),
                spec.topology.outputs(),
                spec.target_range(),
            )?,
            (None, task) => {
                let task = task.unwrap_or(Task::Tutorial);
                let holdout = self.data.holdout.is_some();
                task.generate(&self.data.drawn.options_with(Some(task), holdout)?)
            }
        };
        let (data, eval) = match (&self.data.eval_data, self.data.holdout) {
            (Some(path), _) => {
                let (inputs, outputs) = (spec.topology.inputs(), spec.topology.outputs());
                let eval = load_csv(path, inputs, outputs, spec.target_range())?;
                (data, Some(eval))
            }
            (None, Some(fraction)) => {
                let seed = self.data.drawn.data_seed.unwrap_or(0);
                let (train, held) = data.hold_out(fraction, seed)?;
                (train, Some(held))
            }
            (None, None) => (data, None),
        };
        let start = match (&training.init_weights, &training.resume) {
            (Some(path), _) => Start::WeightsFile(path.clone()),
            (None, Some(path)) => Start::Resume {
                path: path.clone(),
                epochs_from_file: training.epochs.is_none(),
            },
            (None, None) => Start::Init {
                init: training.init,
                seed: training.seed,
            },
        };
        let options = TrainOptions {
            epochs: training.epochs.unwrap_or(crate::training::DEFAULT_EPOCHS),
            target_loss: training.target_loss,
            stop_at_target: training.stop_at_target,
            ..TrainOptions::default()
        };
        match self.output.verify {
            Some(0) => return Err(usage("--verify needs at least 1 network".into())),
            Some(k) if k as u64 > training.networks => {
                return Err(usage(format!(
                    "--verify {k} asks for more networks than the run has (--networks {}); \
                     use --verify {} or fewer",
                    training.networks, training.networks
                )));
            }
            _ => {}
        }
        let config = RunConfig {
            spec,
            data,
            eval,
            networks: training.networks as usize,
            history: self.output.history,
            learning_rate: training.lr,
            start,
            options,
            backend: self.device.backend,
            adapter: self.device.adapter.clone(),
            strategy: self.device.kernel,
            gpu: GpuOptions {
                epochs_per_submission: self.device.epochs_per_submission,
                ..GpuOptions::default()
            },
            threads: self.device.threads.map(|n| n as usize),
        };
        config.validate()?;
        Ok(config)
    }
}
