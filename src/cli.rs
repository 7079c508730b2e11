//! Command-line definitions (clap derive), grouped as the help shows them
//! (model, data, training, output, device), and their validation into a
//! [`RunConfig`]. Every problem is reported with the flag it concerns.
//! Enum-valued flags are clap `ValueEnum`s of the library's own types, so
//! their names and the error for an unknown one come from one place.

use std::path::PathBuf;
use std::sync::Arc;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::batches::Batching;
use crate::bench::{BackendFilter as BenchBackends, KernelFilter, Suite};
use crate::data::{Dataset, Task, TaskOptions, load_csv};
use crate::early_stopping::EarlyStopping;
use crate::gpu::{AdapterChoice, GpuOptions, Strategy};
use crate::init::Init;
use crate::model::{
    Activation, BiasMode, Loss, ModelSpec, Optimizer, OptimizerConfig, Reduction, Topology,
};
use crate::plan::{Devices, OutputPlan, TrainPlan, VerifyPlan};
use crate::resample::{Resample, Resampling};
use crate::run::{BackendChoice, LearningRate, RunConfig, Start};
use crate::schedule::{Schedule, ScheduleRequest};
use crate::setting::{Setting, settings};
use crate::sweep::Sweep;
use crate::sweep::axis::{self, Grid};
use crate::sweep::shard::{Shard, ShardArg};
use crate::training::TrainOptions;
use crate::vocab::Hyperparameter;

#[derive(Debug, Parser)]
#[command(
    name = "gputrain",
    version = VERSION,
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
    /// Join the directories of a sharded run (--shard I/K --out DIR) into
    /// the files one unsharded run writes, byte for byte (timing aside).
    Merge(MergeArgs),
    /// Train again the run an --out directory holds, by the command its
    /// run.json records (a shard's with its --shard), into a new
    /// directory: the same files, timing aside, on the same backend and
    /// build. Relative paths in the command (--data FILE) are read from
    /// the current directory.
    Rerun(RerunArgs),
    /// Draw a run's learning curves or final losses as SVG or PNG.
    #[command(subcommand)]
    Plot(PlotCommand),
    /// List every adapter wgpu finds, with the limits that matter here.
    Adapters {
        /// Print the list as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell's completion script for gputrain, e.g.
    /// `gputrain completions bash > ~/.local/share/bash-completion/completions/gputrain`.
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), e.g. `gputrain man | man -l -`, or a
    /// subcommand's: `gputrain man train`.
    Man {
        /// The subcommand whose page to print (default: gputrain's own).
        #[arg(value_name = "SUBCOMMAND")]
        command: Option<String>,
    },
}

/// `gputrain -V`.
pub use crate::VERSION;

/// `gputrain --version`: [`VERSION`], the compiler, and the backends this
/// build has, with the instruction set this processor gives the SIMD
/// trainer.
pub fn long_version() -> String {
    let gpu_apis: Vec<&str> = [
        (
            cfg!(any(
                target_os = "linux",
                target_os = "windows",
                target_os = "android"
            )),
            "vulkan",
        ),
        (cfg!(any(target_os = "macos", target_os = "ios")), "metal"),
        (cfg!(target_os = "windows"), "dx12"),
    ]
    .into_iter()
    .filter_map(|(built, name)| built.then_some(name))
    .collect();
    let isa = crate::simd::Isa::available();
    let names: Vec<&str> = isa.iter().map(|i| i.name()).collect();
    format!(
        "{VERSION}\nbuilt with {}\nbackends: gpu (wgpu {}: {}), simd ({} on this processor, of {}), cpu (float64 reference)",
        env!("GPUTRAIN_RUSTC"),
        env!("GPUTRAIN_WGPU"),
        gpu_apis.join(", "),
        names[0],
        names.join(", "),
    )
}

impl Cli {
    /// The command line of this process, `--version` with [`long_version`];
    /// exits with clap's message and code on a usage error.
    pub fn from_env() -> Self {
        Self::from_args(std::env::args_os())
    }

    /// [`Cli::from_env`] of the words `args` (the program's name first).
    pub fn from_args<I, T>(args: I) -> Self
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        let command = Self::command().long_version(long_version());
        let argv: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
        let mut matches = command.clone().get_matches_from(&argv);
        let train = match matches.subcommand() {
            Some(("train", sub)) => sub,
            _ => &matches,
        };
        if let Some(argv) = with_recorded_flags(&argv, train) {
            matches = command.get_matches_from(argv);
        }
        let mut cli = Self::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
        let words = argv
            .iter()
            .skip(1)
            .map(|w| w.to_string_lossy().into_owned());
        match &mut cli.command {
            Some(Command::Train(args)) => {
                args.command = words.skip_while(|w| w != "train").skip(1).collect()
            }
            None => cli.train.command = words.collect(),
            Some(_) => {}
        }
        cli
    }
}

/// The value [`TrainPlan::command`] gives `--data` and `--eval-data` for
/// samples handed over in memory.
pub const IN_MEMORY: &str = "(arrays)";

/// `--resume FILE` alone: the run's networks, model and plan that the file
/// records, as the flags `argv` leaves to their defaults (`matches` says
/// which it gives), appended to `argv`: `--networks` (unless
/// `--replicates` is given), `--layers`, `--bias`, `--activation`,
/// `--output-activation`, `--loss`, `--reduction`, `--freeze-bias`,
/// `--optimizer` with its hyperparameters (unless `--optimizer` is
/// given), `--lr-schedule` with its settings (unless another schedule
/// is given), `--batch-size`, `--no-shuffle`, `--seed`, `--target-loss` and
/// `--stop-at-target`, `--bootstrap` or `--subsample` with
/// `--data-seed` (`--epochs` defaults to the file's planned total anyway). None without
/// `--resume`, with nothing to add, or when the file cannot be read (the
/// resume then refuses it, naming what is wrong). A flag given keeps its
/// value; one other than the file's is refused as before, naming the
/// field. The data is not in the file: `--task` or `--data` stay the
/// command line's.
pub fn with_recorded_flags(
    argv: &[std::ffi::OsString],
    matches: &clap::ArgMatches,
) -> Option<Vec<std::ffi::OsString>> {
    use clap::parser::ValueSource;
    let path = matches.try_get_one::<PathBuf>("resume").ok()??;
    let (networks, meta) = crate::weights::recorded_run(path).ok()?;
    let given = |id: &str| matches.value_source(id) == Some(ValueSource::CommandLine);
    let recorded = |field: &str| meta.get(field).map(String::as_str);
    let mut extra: Vec<String> = Vec::new();
    let mut add = |id: &str, value: Option<&str>| {
        extra.push(format!("--{}", id.replace('_', "-")));
        extra.extend(value.map(String::from));
    };
    if !given("networks") && !given("replicates") && networks > 0 {
        add("networks", Some(&networks.to_string()));
    }
    let valued = [
        ("layers", "topology"),
        ("bias", "bias"),
        ("activation", "activation"),
        ("output_activation", "output_activation"),
        ("loss", "loss"),
        ("reduction", "reduction"),
        ("optimizer", "optimizer"),
        ("seed", "seed"),
    ];
    let optimizer_given = given("optimizer");
    for (id, field) in valued {
        if let (false, Some(value)) = (given(id), recorded(field)) {
            add(id, Some(value));
        }
    }
    if !given("freeze_bias") && recorded("freeze_bias") == Some("true") {
        add("freeze_bias", None);
    }
    // The file's optimizer's hyperparameters, unless the command line
    // names another optimizer (whose flags these might not be).
    for h in Hyperparameter::ALL.into_iter().filter(|_| !optimizer_given) {
        match (given(h.name()), recorded(h.name())) {
            (true, _) | (_, None) => {}
            (false, Some(value)) if h.is_switch() => {
                if value == "true" {
                    add(h.name(), None);
                }
            }
            (false, Some(value)) => add(h.name(), Some(value)),
        }
    }
    // The file's schedule and its settings, unless the command line names
    // another schedule.
    let schedule = recorded("lr_schedule");
    let schedule_given = match given("lr_schedule") {
        true => matches
            .get_many::<Schedule>("lr_schedule")
            .and_then(|mut v| v.next()),
        false => None,
    };
    if schedule.is_some() && schedule_given.is_none_or(|s| Some(s.name()) == schedule) {
        let fields = [
            "lr_schedule",
            "lr_gamma",
            "lr_step_size",
            "lr_t_max",
            "lr_min",
            "lr_warmup",
            "lr_warmup_start",
        ];
        for field in fields {
            if let (false, Some(value)) = (given(field), recorded(field)) {
                add(field, Some(value));
            }
        }
    }
    if let Some(size) = recorded("batch_size").filter(|&s| s != "full") {
        if !given("batch_size") {
            add("batch_size", Some(size));
        }
        if !given("no_shuffle") && recorded("shuffle") == Some("false") {
            add("no_shuffle", None);
        }
    }
    if let (false, Some(target)) = (given("target_loss"), recorded("target_loss"))
        && target != "none"
    {
        add("target_loss", Some(target));
    }
    if !given("stop_at_target") && recorded("stop_at_target") == Some("true") {
        add("stop_at_target", None);
    }
    // The file's resample and its seed, unless the command line names one.
    if !given("bootstrap") && !given("subsample") {
        match recorded("resample").and_then(|r| r.split_once(' ').or(Some((r, "")))) {
            Some(("bootstrap", _)) => add("bootstrap", None),
            Some(("subsample", f)) => add("subsample", Some(f)),
            _ => {}
        }
        if let (false, Some(seed)) = (given("data_seed"), recorded("resample_seed")) {
            add("data_seed", Some(seed));
        }
    }
    if extra.is_empty() {
        return None;
    }
    Some(
        argv.iter()
            .cloned()
            .chain(extra.into_iter().map(Into::into))
            .collect(),
    )
}

/// `gputrain rerun`'s arguments.
#[derive(Debug, Args)]
pub struct RerunArgs {
    /// The directory of the run (`--out DIR`), holding its run.json.
    pub dir: PathBuf,
    /// Where the new run writes [default: DIR-rerun].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Flags added to the recorded command, after `--`: `-- --backend cpu`
    /// (a flag given twice is a usage error, as on any command line).
    #[arg(last = true, allow_hyphen_values = true)]
    pub flags: Vec<String>,
}

/// `gputrain merge`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct MergeArgs {
    /// The directory for the merged files (created if need be).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// The shards' directories, in any order: every shard of one run,
    /// each once.
    #[arg(value_name = "SHARD_DIR", required = true)]
    pub shards: Vec<PathBuf>,
    /// Print the merged summary as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print nothing (errors still print).
    #[arg(long, short)]
    pub quiet: bool,
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
    /// Also write the whole report as one Markdown document: the command
    /// that makes it again, the date, the machine and its adapters, the
    /// method, every row, the fastest row per workload and the peers.
    #[arg(long, value_name = "FILE.md")]
    pub report: Option<PathBuf>,
    /// Only these workloads: tutorial-10k, tutorial-momentum,
    /// tutorial-adam, tutorial-cosine, tutorial-100k, tutorial-1m, xor,
    /// wide, moons-minibatch, moons-bootstrap, tutorial-history, softmax
    /// (comma-separated or
    /// repeated) [default: all].
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
    #[arg(long, value_parser = positive_f64, allow_negative_numbers = true)]
    pub seconds: Option<f64>,
    /// No notes on stderr.
    #[arg(long, short)]
    pub quiet: bool,
    /// Also run the struct-of-arrays peers (NumPy, Numba, JAX, PyTorch
    /// eager and torch.compile) and, for networks of 100 parameters or
    /// more or data too large for those (moons-minibatch), a JAX
    /// batched-matrix-product peer (SGD or Adam, full batches or
    /// gputrain's minibatches), on the workloads they
    /// implement, in this run, each checked against the float64 reference
    /// first and timed in the configurations a careful user tries (the
    /// fastest reported); peers not installed are listed as such.
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

/// A value parser of a grid flag from one of [`axis`]'s functions.
fn grid_of<T: Clone + Send + Sync + 'static>(
    parse: fn(&str) -> Result<Vec<T>, String>,
) -> impl Fn(&str) -> Result<Grid<T>, String> + Clone + Send + Sync + 'static {
    move |s| parse(s).map(Grid)
}

/// An adapter by index or name substring; an empty name (which every
/// adapter's name contains) is refused.
fn parse_adapter(s: &str) -> Result<AdapterChoice, String> {
    if s.trim().is_empty() {
        return Err(
            "an empty name matches every adapter: give an index or part of a name (see \
             `gputrain adapters`)"
                .to_string(),
        );
    }
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
    /// Layer widths, e.g. 2,2,2 (default: the task's own; required with
    /// --data). Given more than once, a grid axis: each topology is its
    /// own kernel, run one after another.
    #[arg(long, value_parser = parse_with::<Topology>, action = clap::ArgAction::Append)]
    pub layers: Vec<Topology>,
    /// Bias mode: one bias per neuron, one shared per layer, or none
    /// [default: shared for tutorial, per-neuron otherwise].
    #[arg(long, value_enum)]
    pub bias: Option<BiasMode>,
    /// Keep biases at their initial values.
    #[arg(long)]
    pub freeze_bias: bool,
    /// Activation of the hidden layers (a list such as sigmoid,tanh is a
    /// grid axis).
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sigmoid")]
    pub activation: Vec<Activation>,
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
    /// How the data holds its targets: one column per output (values), or
    /// one column of integer class labels in [0, K), K the last of
    /// --layers, each read as a one-hot row (class), for --data,
    /// --eval-data and data=(X, Y) alike.
    #[arg(long, value_enum, default_value_t = TargetFormat::Values)]
    pub targets: TargetFormat,
    /// Held-out data, the training data's columns: every network's loss
    /// and accuracy on it after training.
    #[arg(long, value_name = "FILE.csv", conflicts_with = "holdout")]
    pub eval_data: Option<PathBuf>,
    /// Hold out this fraction of the samples for evaluation instead,
    /// chosen from --data-seed, in (0, 1).
    #[arg(long, value_name = "FRACTION")]
    pub holdout: Option<f64>,
    /// Training samples handed over in memory instead of a file (the
    /// Python package's `data=(X, Y)`); not a flag.
    #[arg(skip)]
    pub arrays: Option<std::sync::Arc<crate::data::Arrays>>,
    /// Held-out samples in memory (`eval_data=(X, Y)`); not a flag.
    #[arg(skip)]
    pub eval_arrays: Option<std::sync::Arc<crate::data::Arrays>>,
}

/// `--targets`: how a data file (or a Y array) holds its targets.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum TargetFormat {
    /// One column per output.
    #[default]
    Values,
    /// One column of integer class labels, read as one-hot rows.
    Class,
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
    /// Seed of the noise and of the points' order; also of the --holdout
    /// split and of each network's --bootstrap or --subsample rows, for
    /// any data [default: 0].
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
            return Err(usage(format!("{} must be at least 1", Setting("samples"))));
        }
        if options.samples > MAX_DRAWN_SAMPLES {
            return Err(usage(format!(
                "{} exceeds the maximum of {MAX_DRAWN_SAMPLES}",
                Setting("samples").is(options.samples)
            )));
        }
        if !(options.noise.is_finite() && options.noise >= 0.0) {
            return Err(usage(format!(
                "{} must be a finite number >= 0",
                Setting("noise").is(options.noise)
            )));
        }
        Ok(options)
    }
}

/// Networks of a run that names neither `--networks` nor `--replicates`.
pub const DEFAULT_NETWORKS: u64 = 10_000;

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
    /// bands, log scale, the held-out median and the target line if any;
    /// of a grid's --history-out file, one median and band per point (or
    /// --by axis) and the share that reached the target by each epoch.
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
        /// Of a grid's --history-out file (its --out directory's
        /// summary.json names the grid): one curve per value of this axis
        /// column, e.g. learning_rate [default: one per grid point, or per
        /// value of the first axis of at most 10 values].
        #[arg(long)]
        by: Option<String>,
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
    /// A grid's statistics per point (a --groups CSV) along one axis: the
    /// share that reached the target (or solved the task) with Wilson 95%
    /// error bars, one line per value of the other axes, and the median
    /// epoch to the target with its IQR (without a target, the median
    /// final loss with its 10%-90% range).
    Groups {
        /// A --groups CSV file (groups.csv of an --out directory).
        input: PathBuf,
        /// The figure: .svg or .png, 800 x 600 [default: the input's name
        /// with .svg].
        #[arg(long, short)]
        out: Option<PathBuf>,
        /// The axis along the figure, by its column in the CSV (e.g.
        /// learning_rate) [default: the numeric axis with the most values].
        #[arg(long)]
        x: Option<String>,
    },
}

/// `gputrain predict`'s arguments.
#[derive(Debug, Clone, Args)]
pub struct PredictArgs {
    /// The trained networks (written by --weights): the file's metadata
    /// gives the topology, bias mode, activations and loss.
    #[arg(long, value_name = "FILE.safetensors")]
    pub weights: PathBuf,
    /// Run the parameters the file kept after this many epochs (a run's
    /// --snapshots) instead of the final ones.
    #[arg(long, value_name = "EPOCH")]
    pub snapshot: Option<u64>,
    /// Samples to predict: each row the inputs, or the inputs then the
    /// targets (then each network's loss and accuracy are reported); an
    /// optional header row.
    #[arg(long, value_name = "FILE.csv")]
    pub data: PathBuf,
    /// How --data holds its targets, if it has them: one column per output
    /// (values), or one integer class label column (class), as in training.
    #[arg(long, value_enum, default_value_t = TargetFormat::Values)]
    pub targets: TargetFormat,
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
    /// With --ensemble, on the training data of a --bootstrap or
    /// --subsample run: combine each sample over the networks that never
    /// drew it (its out-of-bag networks), scikit-learn's
    /// oob_decision_function_; the accuracy is its oob_score_.
    #[arg(long, requires = "ensemble")]
    pub oob: bool,
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
    /// Number of independent networks; in a grid, divided evenly over its
    /// points [default: 10000, or grid points x --replicates, or the
    /// networks of --init-weights' file].
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..=(u32::MAX as u64)))]
    pub networks: Option<u64>,
    /// Networks per grid point (their ids: point x R + replicate).
    #[arg(long, value_name = "R", value_parser = clap::value_parser!(u64).range(1..=(u32::MAX as u64)))]
    pub replicates: Option<u64>,
    /// Epochs per network: passes over the data, one update each (one per
    /// minibatch with --batch-size); with --resume, the total each network
    /// trains to [default: 20000; with --resume, the total its run asked
    /// for].
    #[arg(long, value_parser = clap::value_parser!(u64).range(0..=crate::training::MAX_EPOCHS))]
    pub epochs: Option<u64>,
    /// Learning rate; a list 0.1,0.5,2 or a log grid 0.05..5:8 is a grid
    /// axis; 0.05..5 without a count spreads rates log-evenly over each
    /// point's networks [default: 0.5, or the rates in --init-weights].
    #[arg(long, value_parser = grid_of(axis::learning_rates), allow_hyphen_values = true)]
    pub lr: Option<Grid<LearningRate>>,
    /// Initialisation: xavier, he (for ReLU), uniform:A, or tutorial (seed
    /// 003's weights); a list such as uniform:0.5,1,2 or uniform:0.1..10:5
    /// is a grid axis.
    #[arg(long, default_value = "xavier", value_parser = grid_of(axis::inits), conflicts_with = "init_weights")]
    pub init: Grid<Init>,
    /// Start from a weights file written by --weights: its parameters,
    /// with fresh optimizer state.
    #[arg(long, value_name = "FILE.safetensors", conflicts_with = "resume")]
    pub init_weights: Option<PathBuf>,
    /// With --init-weights: start from the parameters the file kept after
    /// this many epochs (its run's --snapshots) instead of its final ones:
    /// rewinding, with fresh optimizer state and epochs counted from 0.
    #[arg(long, value_name = "EPOCH", requires = "init_weights")]
    pub init_snapshot: Option<u64>,
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
    /// Stop each network once its held-out loss (--eval-data or
    /// --holdout) has not improved for PATIENCE epochs, and write its best
    /// weights (Keras's EarlyStopping with restore_best_weights); a list
    /// or log grid (10,100) is a grid axis.
    #[arg(long, value_name = "PATIENCE", value_parser = grid_of(axis::epoch_counts))]
    pub early_stopping: Option<Grid<u64>>,
    /// With --early-stopping: check the held-out loss every K epochs (and
    /// after the last) [default: 1]; a list is a grid axis.
    #[arg(long, value_name = "K", value_parser = grid_of(axis::epoch_counts))]
    pub eval_every: Option<Grid<u64>>,
    /// Train each network on its own bootstrap resample of the training
    /// rows (as many draws as rows, with replacement), keyed on
    /// (--data-seed, network); the rows it never drew are its out-of-bag
    /// rows (results: oob_loss, oob_accuracy).
    #[arg(long, conflicts_with = "subsample")]
    pub bootstrap: bool,
    /// Train each network on its own random fraction F of the training
    /// rows, without replacement, keyed on (--data-seed, network); F in
    /// (0, 1); a list is a grid axis.
    #[arg(long, value_name = "F", value_parser = grid_of(axis::numbers))]
    pub subsample: Option<Grid<f64>>,
    /// Samples per update: an epoch visits every sample once in batches of
    /// B, the last one smaller if need be (1: online training); a list or
    /// log grid (16,32,64 or 1..64:7) is a grid axis [default: every
    /// sample in one batch].
    #[arg(long, value_name = "B", value_parser = grid_of(axis::batch_sizes))]
    pub batch_size: Option<Grid<usize>>,
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
    /// momentum), adam, adamw or rmsprop (torch.optim's Adam, AdamW,
    /// RMSprop); a list such as sgd,adam is a grid axis.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "sgd")]
    pub optimizer: Vec<Optimizer>,
    /// Momentum of momentum and nesterov [default: 0.9] and of rmsprop
    /// [default: 0], in [0, 1).
    /// Like every number below, a list (0.5,0.9) or log grid (0.5..0.99:4)
    /// is a grid axis.
    #[arg(long, value_name = "MU", value_parser = grid_of(axis::numbers), allow_hyphen_values = true)]
    pub momentum: Option<Grid<f64>>,
    /// The first-moment decay of adam and adamw, in [0, 1) [default: 0.9].
    #[arg(long, value_parser = grid_of(axis::numbers), allow_hyphen_values = true)]
    pub beta1: Option<Grid<f64>>,
    /// The second-moment decay of adam and adamw, in [0, 1) [default:
    /// 0.999].
    #[arg(long, value_parser = grid_of(axis::numbers), allow_hyphen_values = true)]
    pub beta2: Option<Grid<f64>>,
    /// The denominator term of adam, adamw and rmsprop, > 0 [default:
    /// 1e-8].
    #[arg(long, value_parser = grid_of(axis::numbers), allow_hyphen_values = true)]
    pub eps: Option<Grid<f64>>,
    /// RMSprop's smoothing constant, in [0, 1] [default: 0.99].
    #[arg(long, value_parser = grid_of(axis::numbers), allow_hyphen_values = true)]
    pub alpha: Option<Grid<f64>>,
    /// RMSprop: divide by the centered second moment (the gradient's
    /// variance estimate), as PyTorch's centered=True.
    #[arg(long)]
    pub centered: bool,
    /// L2 decay: L * p added to every gradient (PyTorch's weight_decay),
    /// or with adamw decoupled, p scaled by 1 - lr L each step [default:
    /// 0; adamw 0.01].
    #[arg(long, value_name = "L", value_parser = grid_of(axis::numbers), allow_hyphen_values = true)]
    pub weight_decay: Option<Grid<f64>>,
}

/// The learning rate's schedule over the epochs, as
/// torch.optim.lr_scheduler stepped once per epoch (every minibatch of an
/// epoch at its rate); each network's base rate (`--lr`) is scheduled.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Learning-rate schedule")]
pub struct ScheduleArgs {
    /// constant, step (StepLR), exponential (ExponentialLR) or cosine
    /// (CosineAnnealingLR); a list such as constant,cosine is a grid axis.
    #[arg(long, value_enum, value_delimiter = ',', default_value = "constant")]
    pub lr_schedule: Vec<Schedule>,
    /// The rate's factor: per --lr-step-size epochs (step) [default: 0.1],
    /// or per epoch (exponential, required); in (0, 1].
    /// Like every value below, a list (0.5,0.9) or log grid (0.5..0.99:4)
    /// is a grid axis.
    #[arg(long, value_name = "GAMMA", value_parser = grid_of(axis::numbers), allow_hyphen_values = true)]
    pub lr_gamma: Option<Grid<f64>>,
    /// step: epochs between the rate's cuts by --lr-gamma (StepLR's
    /// step_size).
    #[arg(long, value_name = "E", value_parser = grid_of(axis::epoch_counts))]
    pub lr_step_size: Option<Grid<u64>>,
    /// cosine: the epochs of the half cosine from the base rate down to
    /// --lr-min (T_max) [default: the run's epochs after the warm-up].
    #[arg(long, value_name = "T", value_parser = grid_of(axis::epoch_counts))]
    pub lr_t_max: Option<Grid<u64>>,
    /// cosine: the rate it anneals to (eta_min), >= 0 [default: 0].
    #[arg(long, value_name = "RATE", value_parser = grid_of(axis::numbers), allow_hyphen_values = true)]
    pub lr_min: Option<Grid<f64>>,
    /// Epochs of linear warm-up in front of the schedule (LinearLR, then
    /// the schedule from its start: SequentialLR) [default: 0].
    #[arg(long, value_name = "W", value_parser = grid_of(axis::warmup_epochs))]
    pub lr_warmup: Option<Grid<u64>>,
    /// The warm-up's first epoch's share of the rate (LinearLR's
    /// start_factor), in (0, 1] [default: 1/3].
    #[arg(long, value_name = "F", value_parser = grid_of(axis::numbers), allow_hyphen_values = true)]
    pub lr_warmup_start: Option<Grid<f64>>,
}

impl ScheduleArgs {
    /// The values given (a list's first: a grid point has one).
    pub fn to_request(&self) -> ScheduleRequest {
        fn one<T: Copy>(g: &Option<Grid<T>>) -> Option<T> {
            g.as_ref().map(|g| g.0[0])
        }
        ScheduleRequest {
            kind: self.lr_schedule.first().copied().unwrap_or_default(),
            gamma: one(&self.lr_gamma),
            step_size: one(&self.lr_step_size),
            t_max: one(&self.lr_t_max),
            eta_min: one(&self.lr_min),
            warmup: one(&self.lr_warmup),
            warmup_start: one(&self.lr_warmup_start),
        }
    }
}

impl OptimizerArgs {
    /// The value this face gives `h`, if any (a list's first: a grid
    /// point has one).
    fn given(&self, h: Hyperparameter) -> Option<f64> {
        let one = |g: &Option<Grid<f64>>| g.as_ref().map(|g| g.0[0]);
        match h {
            Hyperparameter::Momentum => one(&self.momentum),
            Hyperparameter::Beta1 => one(&self.beta1),
            Hyperparameter::Beta2 => one(&self.beta2),
            Hyperparameter::Eps => one(&self.eps),
            Hyperparameter::Alpha => one(&self.alpha),
            Hyperparameter::Centered => self.centered.then_some(1.0),
            Hyperparameter::WeightDecay => one(&self.weight_decay),
        }
    }

    /// The optimizer and its hyperparameters: the entry's defaults with
    /// the flags given; a flag of a hyperparameter the optimizer does not
    /// use ([`crate::vocab::OptimizerDef::uses`]) is a usage error naming
    /// both flags.
    pub fn to_config(&self) -> Result<OptimizerConfig, crate::Error> {
        let kind = self.optimizer.first().copied().unwrap_or_default();
        let mut config = OptimizerConfig::of(kind);
        for h in Hyperparameter::ALL {
            let Some(value) = self.given(h) else {
                continue;
            };
            if !config.uses(h) {
                return Err(crate::Error::Config(format!(
                    "{} applies to {} {} only, but the optimizer is {kind}",
                    Setting(h.name()),
                    settings::OPTIMIZER,
                    Optimizer::users_of(h)
                )));
            }
            config = config.with(h, value);
        }
        config.validate()?;
        Ok(config)
    }
}

impl TrainingArgs {
    /// The networks of a run that names no --networks (nor --replicates):
    /// those of the --init-weights file, which must hold as many as the
    /// run trains, else the headline run's 10,000.
    fn default_networks(&self) -> Result<u64, crate::Error> {
        match &self.init_weights {
            Some(path) => Ok(crate::weights::recorded_run(path)?.0 as u64),
            None => Ok(DEFAULT_NETWORKS),
        }
    }
}

impl Default for TrainingArgs {
    fn default() -> Self {
        Self {
            networks: None,
            replicates: None,
            epochs: None,
            lr: None,
            init: Grid(vec![Init::Xavier]),
            init_weights: None,
            init_snapshot: None,
            resume: None,
            seed: 0,
            target_loss: None,
            stop_at_target: false,
            early_stopping: None,
            eval_every: None,
            bootstrap: false,
            subsample: None,
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
    /// Progress on stderr: a bar on a terminal and a plain line every 30 s
    /// otherwise (auto; GPUTRAIN_PROGRESS_SECONDS sets the period), or
    /// always a bar, always lines, or none.
    #[arg(long, value_enum, value_name = "STYLE", default_value_t = crate::progress::Style::Auto)]
    pub progress: crate::progress::Style,
    /// Record every network's loss at epoch 0 and every K epochs (and the
    /// last), with held-out data its evaluation loss too: learning curves
    /// for --history-out, --history-csv and the summary.
    #[arg(long, value_name = "K")]
    pub history: Option<u64>,
    /// Every network's curves as safetensors: `loss` (and `eval_loss`)
    /// `[networks, points]` float32, `epochs` `[points]` int64.
    #[arg(long, value_name = "FILE.safetensors", requires = "history")]
    pub history_out: Option<PathBuf>,
    /// The population's loss quantiles at each recorded epoch as CSV
    /// (epoch,min,p10,median,p90,max,reached_target,networks,diverged).
    #[arg(long, value_name = "FILE.csv", requires = "history")]
    pub history_csv: Option<PathBuf>,
    /// Keep every network's parameters after these epochs (0: the initial
    /// ones; increasing, none beyond --epochs), e.g. 0,10,100, in the
    /// weights file as `snapshot.{epoch}.layers.{l}.weight` and `.bias`
    /// float32 `[networks, ...]`, for rewinding and interpolation;
    /// `gputrain predict --snapshot EPOCH` runs them.
    #[arg(long, value_name = "EPOCHS", value_delimiter = ',')]
    pub snapshots: Vec<u64>,
    /// Write the --snapshots into this safetensors file of their own (with
    /// the learning rates and the model's metadata) instead of the weights
    /// file; `gputrain predict --weights FILE --snapshot EPOCH` and
    /// --init-weights FILE --init-snapshot EPOCH read it.
    #[arg(long, value_name = "FILE.safetensors")]
    pub snapshots_out: Option<PathBuf>,
    /// Draw a figure at the end (.svg or .png): on a grid the grouped
    /// statistics, as `gputrain plot groups` does; otherwise the learning
    /// curves, as `gputrain plot history` does (which needs --history).
    #[arg(long, value_name = "FILE.svg")]
    pub plot: Option<PathBuf>,
    /// Statistics per grid point as CSV: networks, share that reached
    /// the target (Wilson 95% interval), epochs to target (median and
    /// quartiles), final-loss quantiles, diverged, accuracy.
    #[arg(long, value_name = "FILE.csv")]
    pub groups: Option<PathBuf>,
    /// Write every output into this directory under fixed names:
    /// results.csv, groups.csv, summary.json, run.json, weights.safetensors
    /// (weights-K.safetensors, one per model, when a grid has several)
    /// and, with --history, history.safetensors and history.csv. `gputrain
    /// merge` joins shards' directories into the same files.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["results", "weights", "history_out", "history_csv", "groups"])]
    pub out: Option<PathBuf>,
    /// With --out: replace the files of an earlier run in the directory
    /// (those this run does not write are removed once it has finished);
    /// without it a directory holding a run's files is refused.
    #[arg(long, requires = "out")]
    pub overwrite: bool,
}

impl Default for OutputArgs {
    fn default() -> Self {
        Self {
            overwrite: false,
            results: None,
            weights: None,
            json: false,
            verify: None,
            verify_tolerance: 1e-3,
            quiet: false,
            progress: crate::progress::Style::Auto,
            history: None,
            history_out: None,
            history_csv: None,
            snapshots: Vec::new(),
            snapshots_out: None,
            plot: None,
            groups: None,
            out: None,
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
    /// Adapter by index or name substring (see `gputrain adapters`);
    /// `all`, or indices such as 0,1, split the run over several at once,
    /// one device each (an index may repeat: two devices on one adapter).
    #[arg(long, default_value = "auto", value_parser = parse_with::<AdapterArg>)]
    pub adapter: AdapterArg,
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
            adapter: AdapterArg::One(AdapterChoice::Auto),
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
    /// The words that gave these arguments, after the program's name and
    /// a `train` (the Python package's: its keywords' flags); not a flag.
    #[arg(skip)]
    pub command: Vec<String>,
    #[command(flatten)]
    pub model: ModelArgs,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub training: TrainingArgs,
    #[command(flatten)]
    pub optimizer: OptimizerArgs,
    #[command(flatten)]
    pub schedule: ScheduleArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(flatten)]
    pub scale: ScaleArgs,
}

/// How a run is split over a cluster.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Scale-out")]
pub struct ScaleArgs {
    /// Train only shard I of K, the I-th of K contiguous ranges of network
    /// ids (0 <= I < K), into --out DIR; `auto` takes I and K from a Slurm
    /// job array (SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT, or
    /// _MIN/_MAX) or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX, with
    /// --shard-count). `gputrain merge` joins the shards.
    #[arg(long, value_name = "I/K|auto", value_parser = parse_with::<ShardArg>)]
    pub shard: Option<ShardArg>,
    /// K, the number of shards, for --shard auto under a Kubernetes
    /// Indexed Job (its completions).
    #[arg(long, value_name = "K", requires = "shard", value_parser = clap::value_parser!(u64).range(1..=(u32::MAX as u64)))]
    pub shard_count: Option<u64>,
}

/// `--adapter`: one adapter, several by index, or all of them.
#[derive(Debug, Clone, PartialEq)]
pub enum AdapterArg {
    One(AdapterChoice),
    /// Indices in `gputrain adapters`' order, one device each.
    Several(Vec<usize>),
    All,
}

impl std::str::FromStr for AdapterArg {
    type Err = crate::Error;
    fn from_str(s: &str) -> Result<Self, crate::Error> {
        if s == "all" {
            return Ok(AdapterArg::All);
        }
        if !s.contains(',') {
            return Ok(AdapterArg::One(
                parse_adapter(s).map_err(crate::Error::Config)?,
            ));
        }
        s.split(',')
            .map(|item| {
                item.trim().parse::<usize>().map_err(|_| {
                    crate::Error::Config(format!(
                        "'{s}': '{}' is not an adapter index (a list takes indices, e.g. 0,1; \
                         see `gputrain adapters`)",
                        item.trim()
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(AdapterArg::Several)
    }
}

impl std::fmt::Display for AdapterArg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AdapterArg::One(AdapterChoice::Auto) => f.write_str("auto"),
            AdapterArg::One(AdapterChoice::Index(i)) => write!(f, "{i}"),
            AdapterArg::One(AdapterChoice::Name(name)) => f.write_str(name),
            AdapterArg::Several(list) => {
                let list: Vec<String> = list.iter().map(usize::to_string).collect();
                f.write_str(&list.join(","))
            }
            AdapterArg::All => f.write_str("all"),
        }
    }
}

impl AdapterArg {
    /// The one adapter a single-device run uses (the first of several).
    pub fn first(&self) -> AdapterChoice {
        match self {
            AdapterArg::One(choice) => choice.clone(),
            AdapterArg::Several(list) => AdapterChoice::Index(list[0]),
            AdapterArg::All => AdapterChoice::Index(0),
        }
    }

    /// The adapter indices of a run split over several devices; `None`
    /// for one device.
    pub fn several(&self) -> Result<Option<Vec<usize>>, crate::Error> {
        match self {
            AdapterArg::One(_) => Ok(None),
            AdapterArg::Several(list) => {
                let found = crate::gpu::list_adapters().len();
                if let Some(bad) = list.iter().find(|&&i| i >= found) {
                    return Err(crate::Error::Config(format!(
                        "--adapter: there is no adapter {bad}; this machine has {found} (see \
                         `gputrain adapters`)"
                    )));
                }
                Ok(Some(list.clone()))
            }
            AdapterArg::All => match crate::gpu::list_adapters().len() {
                0 => Err(crate::Error::NoAdapter {
                    detail: " (--adapter all)".into(),
                }),
                n => Ok(Some((0..n).collect())),
            },
        }
    }
}

/// Refuses samples given as arrays together with another source of the
/// same samples (`others`: what each is called, and whether it is given).
fn only_arrays(
    arrays: Option<&crate::data::Arrays>,
    what: &str,
    others: [(&str, bool); 2],
) -> Result<(), crate::Error> {
    match (arrays, others.iter().find(|(_, given)| *given)) {
        (Some(a), Some((other, _))) => Err(crate::Error::Config(format!(
            "{}: give {what} as arrays or {other}, not both",
            a.argument
        ))),
        _ => Ok(()),
    }
}

/// One grid axis of a `train` command: its flag, its results column, its
/// values as text, and how one point's arguments take value i.
struct AxisDef {
    flag: &'static str,
    column: &'static str,
    labels: Vec<String>,
    set: SetValue,
}

/// How a point's arguments take an axis's value i.
type SetValue = Box<dyn Fn(&mut TrainArgs, usize)>;

fn axis_def<T: Clone + 'static>(
    flag: &'static str,
    column: &'static str,
    values: Vec<T>,
    label: impl Fn(&T) -> String,
    set: impl Fn(&mut TrainArgs, T) + 'static,
) -> AxisDef {
    AxisDef {
        flag,
        column,
        labels: values.iter().map(label).collect(),
        set: Box::new(move |args, i| set(args, values[i].clone())),
    }
}

impl TrainArgs {
    /// The grid axes, in grid order (the last varies fastest): the
    /// model's (layers, activation, optimizer and its settings, batch size)
    /// first, so each model's points are contiguous, then the
    /// per-network ones (init, lr). An axis with no value given is empty.
    fn axis_defs(&self) -> Vec<AxisDef> {
        let number = |v: &f64| v.to_string();
        let numbers = |g: &Option<Grid<f64>>| g.as_ref().map_or(Vec::new(), |g| g.0.clone());
        let whole = |g: &Option<Grid<u64>>| g.as_ref().map_or(Vec::new(), |g| g.0.clone());
        let (m, t, o, sc) = (&self.model, &self.training, &self.optimizer, &self.schedule);
        vec![
            axis_def(
                "--layers",
                "layers",
                m.layers.clone(),
                Topology::to_string,
                |a, v| a.model.layers = vec![v],
            ),
            axis_def(
                "--activation",
                "activation",
                m.activation.clone(),
                Activation::to_string,
                |a, v| a.model.activation = vec![v],
            ),
            axis_def(
                "--optimizer",
                "optimizer",
                o.optimizer.clone(),
                Optimizer::to_string,
                |a, v| a.optimizer.optimizer = vec![v],
            ),
            axis_def(
                "--momentum",
                "momentum",
                numbers(&o.momentum),
                number,
                |a, v| a.optimizer.momentum = Some(Grid(vec![v])),
            ),
            axis_def("--beta1", "beta1", numbers(&o.beta1), number, |a, v| {
                a.optimizer.beta1 = Some(Grid(vec![v]))
            }),
            axis_def("--beta2", "beta2", numbers(&o.beta2), number, |a, v| {
                a.optimizer.beta2 = Some(Grid(vec![v]))
            }),
            axis_def("--eps", "eps", numbers(&o.eps), number, |a, v| {
                a.optimizer.eps = Some(Grid(vec![v]))
            }),
            axis_def("--alpha", "alpha", numbers(&o.alpha), number, |a, v| {
                a.optimizer.alpha = Some(Grid(vec![v]))
            }),
            axis_def(
                "--weight-decay",
                "weight_decay",
                numbers(&o.weight_decay),
                number,
                |a, v| a.optimizer.weight_decay = Some(Grid(vec![v])),
            ),
            axis_def(
                "--lr-schedule",
                "lr_schedule",
                self.schedule.lr_schedule.clone(),
                Schedule::to_string,
                |a, v| a.schedule.lr_schedule = vec![v],
            ),
            axis_def(
                "--lr-gamma",
                "lr_gamma",
                numbers(&sc.lr_gamma),
                number,
                |a, v| a.schedule.lr_gamma = Some(Grid(vec![v])),
            ),
            axis_def(
                "--lr-step-size",
                "lr_step_size",
                whole(&sc.lr_step_size),
                u64::to_string,
                |a, v| a.schedule.lr_step_size = Some(Grid(vec![v])),
            ),
            axis_def(
                "--lr-t-max",
                "lr_t_max",
                whole(&sc.lr_t_max),
                u64::to_string,
                |a, v| a.schedule.lr_t_max = Some(Grid(vec![v])),
            ),
            axis_def("--lr-min", "lr_min", numbers(&sc.lr_min), number, |a, v| {
                a.schedule.lr_min = Some(Grid(vec![v]))
            }),
            axis_def(
                "--lr-warmup",
                "lr_warmup",
                whole(&sc.lr_warmup),
                u64::to_string,
                |a, v| a.schedule.lr_warmup = Some(Grid(vec![v])),
            ),
            axis_def(
                "--lr-warmup-start",
                "lr_warmup_start",
                numbers(&sc.lr_warmup_start),
                number,
                |a, v| a.schedule.lr_warmup_start = Some(Grid(vec![v])),
            ),
            axis_def(
                "--early-stopping",
                "early_stopping",
                whole(&t.early_stopping),
                u64::to_string,
                |a, v| a.training.early_stopping = Some(Grid(vec![v])),
            ),
            axis_def(
                "--eval-every",
                "eval_every",
                whole(&t.eval_every),
                u64::to_string,
                |a, v| a.training.eval_every = Some(Grid(vec![v])),
            ),
            axis_def(
                "--subsample",
                "subsample",
                numbers(&t.subsample),
                number,
                |a, v| a.training.subsample = Some(Grid(vec![v])),
            ),
            axis_def(
                "--batch-size",
                "batch_size",
                t.batch_size.as_ref().map_or(Vec::new(), |g| g.0.clone()),
                usize::to_string,
                |a, v| a.training.batch_size = Some(Grid(vec![v])),
            ),
            axis_def(
                "--init",
                "init",
                t.init.0.clone(),
                Init::to_string,
                |a, v| a.training.init = Grid(vec![v]),
            ),
            axis_def(
                "--lr",
                "learning_rate",
                t.lr.as_ref().map_or(Vec::new(), |g| g.0.clone()),
                LearningRate::to_string,
                |a, v| a.training.lr = Some(Grid(vec![v])),
            ),
        ]
    }

    /// Every axis's flag and values as text, in grid order.
    pub fn grid_axes(&self) -> Vec<(&'static str, Vec<String>)> {
        self.axis_defs()
            .into_iter()
            .map(|a| (a.flag, a.labels))
            .collect()
    }

    /// Validates the arguments into the run's plan, once: the sweep
    /// ([`Self::to_sweep`]), the outputs, the shard (`auto` read from the
    /// scheduler's environment), the devices and `--verify`, with every
    /// rule between flags checked here.
    pub fn to_plan(&self) -> Result<TrainPlan, crate::Error> {
        crate::gpu::device::check_environment()?;
        let usage = crate::Error::Config;
        let out = &self.output;
        let sweep = self.to_sweep()?;
        if out.plot.is_some() && out.history.is_none() && sweep.points.len() < 2 {
            return Err(usage(
                "--plot draws the learning curves of a run without a grid: give --history N \
                 (the epochs between points) too; on a grid (e.g. --lr 0.1,1,10) it draws the \
                 grouped statistics"
                    .into(),
            ));
        }
        if let Some(path) = &out.snapshots_out {
            let flag = settings::SNAPSHOTS_OUT.is(path.display());
            if out.snapshots.is_empty() {
                return Err(usage(format!(
                    "{flag} writes the snapshots: give {} too (e.g. {})",
                    settings::SNAPSHOTS,
                    settings::SNAPSHOTS.is("0,100")
                )));
            }
            if out.out.as_ref() == Some(path) {
                return Err(usage(format!(
                    "{flag} is also {}: the directory's files and the snapshots file need \
                     their own names",
                    settings::OUT.is(path.display())
                )));
            }
            if self.scale.shard.is_some() {
                return Err(usage(format!(
                    "{flag} cannot be combined with {}: each shard keeps its snapshots in its \
                     directory's weights file, which `gputrain merge` joins",
                    settings::SHARD
                )));
            }
            if sweep.models() > 1 {
                return Err(usage(format!(
                    "{flag} holds one model's snapshots, but the grid has {} models (one \
                     weights file each): leave the snapshots in the weights files",
                    sweep.models()
                )));
            }
            if !matches!(self.device.adapter, AdapterArg::One(_)) {
                return Err(usage(format!(
                    "{flag} cannot be combined with several adapters yet: leave the \
                     snapshots in the weights file"
                )));
            }
        }
        if self.scale.shard.is_some() && out.out.is_none() {
            return Err(usage(
                "--shard needs --out DIR: each shard writes a directory, which `gputrain merge` \
                 joins with the others"
                    .into(),
            ));
        }
        let shard = match &self.scale.shard {
            Some(arg) => {
                let count = self.scale.shard_count.map(|k| k as usize);
                arg.resolve(count, &|name| std::env::var(name).ok())?
            }
            None => Shard::WHOLE,
        };
        if shard.count > 1 && out.verify.is_some() {
            return Err(usage(
                "--verify cannot be combined with --shard yet: verify a shard's networks with \
                 `gputrain predict`, or run --verify without sharding"
                    .into(),
            ));
        }
        let device = &self.device;
        if !matches!(device.adapter, AdapterArg::One(_)) && out.verify.is_some() {
            return Err(usage(format!(
                "--verify cannot be combined with --adapter {} yet: verify on one device",
                device.adapter
            )));
        }
        let on_cpu = matches!(device.backend, BackendChoice::Simd | BackendChoice::Cpu);
        let one_named = device.adapter != AdapterArg::One(AdapterChoice::Auto);
        if on_cpu && one_named && !matches!(device.adapter, AdapterArg::One(_)) {
            return Err(usage(format!(
                "--adapter {} splits the run over GPU devices, but --backend {} trains on the CPU",
                device.adapter, device.backend
            )));
        }
        if on_cpu && one_named {
            return Err(usage(format!(
                "--adapter {} names a GPU, but --backend {} trains on the CPU: drop one of them",
                device.adapter, device.backend
            )));
        }
        let devices = match device.adapter.several()? {
            Some(adapters) => Devices::Several(adapters),
            None => Devices::One,
        };
        let named = |setting: Setting, path: &Option<PathBuf>| path.clone().map(|p| (setting, p));
        let inputs = [
            named(settings::DATA, &self.data.data),
            named(settings::EVAL_DATA, &self.data.eval_data),
            named(settings::INIT_WEIGHTS, &self.training.init_weights),
            named(settings::RESUME, &self.training.resume),
        ]
        .into_iter()
        .flatten()
        .collect();
        let outputs = OutputPlan {
            directory: out.out.clone(),
            overwrite: out.overwrite,
            results: out.results.clone(),
            weights: out.weights.clone(),
            groups: out.groups.clone(),
            history_out: out.history_out.clone(),
            history_csv: out.history_csv.clone(),
            snapshots: out.snapshots_out.clone(),
            plot: out.plot.clone(),
            history: out.history.is_some(),
            inputs,
        };
        Ok(TrainPlan {
            sweep,
            outputs,
            shard,
            devices,
            verify: out.verify.map(|networks| VerifyPlan {
                networks,
                tolerance: out.verify_tolerance,
            }),
            seed: self.training.seed,
            command: self.recorded_command(),
        })
    }

    /// [`TrainPlan::command`]: the words of [`Self::command`] without
    /// `--out`, `--snapshots-out`, `--overwrite`, `--shard`, `--shard-count`, `--adapter`,
    /// `--threads`, `--quiet`, `--json` and `--progress` (the same run,
    /// wherever it writes, whichever shard and on however many devices or
    /// threads: every part of a sweep records the one command),
    /// with `--data`/`--eval-data` `(arrays)` for samples handed over in
    /// memory, which no command line can give again.
    fn recorded_command(&self) -> Vec<String> {
        const VALUED: [&str; 7] = [
            "--out",
            "--snapshots-out",
            "--shard",
            "--shard-count",
            "--adapter",
            "--threads",
            "--progress",
        ];
        const SWITCHES: [&str; 4] = ["--overwrite", "--quiet", "-q", "--json"];
        let mut words = Vec::with_capacity(self.command.len());
        let mut rest = self.command.iter();
        while let Some(word) = rest.next() {
            let flag = word.split_once('=').map_or(word.as_str(), |(flag, _)| flag);
            if VALUED.contains(&flag) {
                if flag == word {
                    rest.next();
                }
            } else if !SWITCHES.contains(&word.as_str()) {
                words.push(word.clone());
            }
        }
        for (given, flag) in [
            (self.data.arrays.is_some(), "--data"),
            (self.data.eval_arrays.is_some(), "--eval-data"),
        ] {
            if given {
                words.extend([flag.to_string(), IN_MEMORY.to_string()]);
            }
        }
        words
    }

    /// Validates the arguments into a sweep: the grid's points in order,
    /// each point's configuration (validated, with `--replicates`
    /// networks), and the mapping from network ids to points. A command
    /// without a grid is a sweep of one point.
    pub fn to_sweep(&self) -> Result<Sweep, crate::Error> {
        let usage = crate::Error::Config;
        let defs = self.axis_defs();
        let sizes: Vec<usize> = defs.iter().map(|a| a.labels.len().max(1)).collect();
        let points = sizes
            .iter()
            .try_fold(1usize, |n, &k| n.checked_mul(k))
            .filter(|&n| n <= axis::MAX_POINTS)
            .ok_or_else(|| {
                usage(format!(
                    "the grid has more than {} points (the product of its axes' values)",
                    axis::MAX_POINTS
                ))
            })?;
        let swept: Vec<&AxisDef> = defs.iter().filter(|a| a.labels.len() > 1).collect();
        let shape = || {
            swept
                .iter()
                .map(|a| format!("{} {}", Setting(&a.flag[2..]), a.labels.len()))
                .collect::<Vec<_>>()
                .join(" x ")
        };
        let replicates = match (self.training.networks, self.training.replicates) {
            (Some(n), Some(r)) if n != points as u64 * r => {
                return Err(usage(format!(
                    "{} and {} disagree: the grid has {points} points, so {} makes {} networks \
                     (give one of the two)",
                    settings::NETWORKS.is(n),
                    settings::REPLICATES.is(r),
                    settings::REPLICATES.is(r),
                    points as u64 * r
                )));
            }
            (_, Some(r)) => r,
            (n, None) => {
                let n = match n {
                    Some(n) => n,
                    None => self.training.default_networks()?,
                };
                if n % points as u64 != 0 {
                    return Err(usage(format!(
                        "{} does not divide evenly over the grid's {points} points ({}); give \
                         {} R (networks per point) or {} a multiple of {points}",
                        settings::NETWORKS.is(n),
                        shape(),
                        settings::REPLICATES,
                        settings::NETWORKS
                    )));
                }
                n / points as u64
            }
        };
        if points as u64 * replicates > u32::MAX as u64 {
            return Err(usage(format!(
                "{points} grid points x {replicates} replicates is more than 2^32 networks"
            )));
        }
        if points > 1 {
            let start = [
                (settings::INIT_WEIGHTS, self.training.init_weights.is_some()),
                (settings::RESUME, self.training.resume.is_some()),
            ];
            if let Some((flag, _)) = start.iter().find(|(_, given)| *given) {
                return Err(usage(format!(
                    "{flag} cannot be combined with a grid ({}) yet",
                    shape()
                )));
            }
        }
        let total = points as u64 * replicates;
        match self.output.verify {
            Some(0) => {
                return Err(usage(format!(
                    "{} needs at least 1 network",
                    settings::VERIFY
                )));
            }
            Some(k) if points > 1 && k as u64 > total => {
                return Err(usage(format!(
                    "{} asks for more networks than the grid has ({points} points x \
                     {replicates}); use {} or fewer",
                    settings::VERIFY.is(k),
                    settings::VERIFY.is(total)
                )));
            }
            _ => {}
        }
        let mut list = Vec::with_capacity(points);
        let mut cache = DataCache::default();
        for g in 0..points {
            let mut args = self.clone();
            let mut rest = g;
            let mut labels = Vec::new();
            let mut index = vec![0; defs.len()];
            for (k, &n) in sizes.iter().enumerate().rev() {
                index[k] = rest % n;
                rest /= n;
            }
            for (a, &i) in defs.iter().zip(&index) {
                if !a.labels.is_empty() {
                    (a.set)(&mut args, i);
                }
                if a.labels.len() > 1 {
                    labels.push(a.labels[i].clone());
                }
            }
            args.training.networks = Some(replicates);
            args.training.replicates = None;
            if points > 1 {
                // Checked against the whole grid above.
                args.output.verify = None;
            }
            let config = args.to_config_with(&mut cache)?;
            list.push(crate::sweep::Point { labels, config });
        }
        let axes = swept
            .iter()
            .map(|a| crate::sweep::Axis {
                flag: a.flag,
                column: a.column,
                labels: a.labels.clone(),
            })
            .collect();
        Ok(Sweep::new(axes, list, replicates as usize))
    }

    /// Validates the arguments into a run configuration. Errors name the
    /// flags involved.
    pub fn to_config(&self) -> Result<RunConfig, crate::Error> {
        self.to_config_with(&mut DataCache::default())
    }

    /// [`Self::to_config`], taking the data from `cache` where an earlier
    /// point of the same arguments read it (and leaving it there).
    fn to_config_with(&self, cache: &mut DataCache) -> Result<RunConfig, crate::Error> {
        let usage = crate::Error::Config;
        let (model, training) = (&self.model, &self.training);
        let arrays = self.data.arrays.as_deref();
        let eval_arrays = self.data.eval_arrays.as_deref();
        let d = &self.data;
        only_arrays(
            arrays,
            "samples",
            [
                ("task", d.task.is_some()),
                ("a data file", d.data.is_some()),
            ],
        )?;
        only_arrays(
            eval_arrays,
            "held-out samples",
            [
                ("--eval-data", d.eval_data.is_some()),
                ("--holdout", d.holdout.is_some()),
            ],
        )?;
        let task = match (&self.data.data, arrays, self.data.task) {
            (Some(_), _, _) | (None, Some(_), _) => None,
            (None, None, task) => Some(task.unwrap_or(Task::Tutorial)),
        };
        if let Some((flag, values)) = self.grid_axes().iter().find(|(_, v)| v.len() > 1) {
            return Err(usage(format!(
                "{flag} gives {} values, a grid: a grid runs through `to_sweep`, one \
                 configuration per point",
                values.len()
            )));
        }
        let topology = match (model.layers.first(), task, &self.data.data) {
            (Some(t), _, _) => t.clone(),
            (None, Some(task), _) => Topology::new(task.default_widths())?,
            (None, None, path) => {
                if let Some(a) = arrays {
                    return Err(usage(format!(
                        "{} needs layers (e.g. [{}, 3, {}]: the first width is the number of \
                         columns of X, the last the number of columns of Y)",
                        a.argument, a.x_columns, a.y_columns
                    )));
                }
                return Err(usage(format!(
                    "{} needs {} (e.g. {}: the first width is the number of input columns, the \
                     last the number of target columns)",
                    settings::DATA.is(path
                        .as_ref()
                        .map_or(String::new(), |p| p.display().to_string())),
                    settings::LAYERS,
                    settings::LAYERS.is("3,4,2")
                )));
            }
        };
        // --data-seed keys the resamples too, whatever the data.
        let resampled = training.bootstrap || training.subsample.is_some();
        if self.data.data.is_some() || arrays.is_some() {
            self.data
                .drawn
                .options_with(None, self.data.holdout.is_some() || resampled)?;
        }
        let spec = ModelSpec {
            topology,
            bias: model.bias.unwrap_or(match task {
                Some(Task::Tutorial) => BiasMode::Shared,
                _ => BiasMode::PerNeuron,
            }),
            freeze_bias: model.freeze_bias,
            activation: model.activation.first().copied().unwrap_or_default(),
            output_activation: model.output_activation,
            loss: model.loss,
            reduction: model.reduction,
            optimizer: self.optimizer.to_config()?,
            schedule: self
                .schedule
                .to_request()
                .resolve(training.epochs.unwrap_or(crate::training::DEFAULT_EPOCHS))?,
            batching: match training.batch_size.as_ref().map(|g| g.0[0]) {
                None if training.no_shuffle => {
                    return Err(usage(format!(
                        "{} needs {} (one full batch has no order)",
                        Setting("no_shuffle"),
                        settings::BATCH_SIZE
                    )));
                }
                Some(0) => {
                    return Err(usage(format!(
                        "{} must be at least 1",
                        settings::BATCH_SIZE
                    )));
                }
                Some(size) => Some(Batching {
                    size,
                    shuffle: !training.no_shuffle,
                    seed: training.seed,
                }),
                None => None,
            },
            early_stopping: match (
                training.early_stopping.as_ref().map(|g| g.0[0]),
                training.eval_every.as_ref().map(|g| g.0[0]),
            ) {
                (None, None) => None,
                (None, Some(every)) => {
                    return Err(usage(format!(
                        "{} sets how often {} checks the held-out loss: give {} too",
                        settings::EVAL_EVERY.is(every),
                        settings::EARLY_STOPPING,
                        settings::EARLY_STOPPING
                    )));
                }
                (Some(patience), every) => Some(EarlyStopping {
                    patience,
                    every: every.unwrap_or(1),
                }),
            },
            resample: {
                let how = match (training.bootstrap, training.subsample.as_ref()) {
                    (true, _) => Some(Resample::Bootstrap),
                    (false, Some(f)) => Some(Resample::Subsample(f.0[0])),
                    (false, None) => None,
                };
                how.map(|how| Resampling {
                    how,
                    seed: self.data.drawn.data_seed.unwrap_or(0),
                })
            },
        };
        spec.validate()?;
        let (inputs, outputs) = (spec.topology.inputs(), spec.topology.outputs());
        let classes = self.data.targets == TargetFormat::Class;
        if classes && outputs < 2 {
            return Err(usage(format!(
                "{} needs at least 2 outputs (one per class), but the last of {} is {outputs}",
                settings::TARGETS.is("class"),
                settings::LAYERS
            )));
        }
        if classes && self.data.arrays.is_none() && self.data.data.is_none() {
            return Err(usage(format!(
                "{} reads class labels from {}; a {} has its targets already",
                settings::TARGETS.is("class"),
                settings::DATA,
                settings::TASK
            )));
        }
        let range = spec.target_rule().with_classes(classes);
        let key = (inputs, outputs, range);
        let (data, eval) = match cache.0.iter().find(|(k, ..)| *k == key) {
            Some((_, data, eval)) => (data.clone(), eval.clone()),
            None => {
                let (data, eval) = self.load_data(&spec, task, range)?;
                let (data, eval) = (Arc::new(data), eval.map(Arc::new));
                cache.0.push((key, data.clone(), eval.clone()));
                (data, eval)
            }
        };
        let start = match (&training.init_weights, &training.resume) {
            (Some(path), _) => Start::WeightsFile {
                path: path.clone(),
                snapshot: training.init_snapshot,
            },
            (None, Some(path)) => Start::Resume {
                path: path.clone(),
                epochs_from_file: training.epochs.is_none(),
            },
            (None, None) => Start::Init {
                init: training.init.0[0],
                seed: training.seed,
            },
        };
        let options = TrainOptions {
            epochs: training.epochs.unwrap_or(crate::training::DEFAULT_EPOCHS),
            target_loss: training.target_loss,
            stop_at_target: training.stop_at_target,
            ..TrainOptions::default()
        };
        let networks = match training.networks {
            Some(n) => n,
            None => training.default_networks()?,
        };
        match self.output.verify {
            Some(0) => {
                return Err(usage(format!(
                    "{} needs at least 1 network",
                    settings::VERIFY
                )));
            }
            Some(k) if k as u64 > networks => {
                return Err(usage(format!(
                    "{} asks for more networks than the run has ({}); use {} or fewer",
                    settings::VERIFY.is(k),
                    settings::NETWORKS.is(networks),
                    settings::VERIFY.is(networks)
                )));
            }
            _ => {}
        }
        let config = RunConfig {
            spec,
            data,
            eval,
            networks: networks as usize,
            first_network: 0,
            population: networks as usize,
            points: None,
            history: self.output.history,
            snapshots: self.output.snapshots.clone(),
            learning_rate: training.lr.as_ref().map(|g| g.0[0]),
            start,
            options,
            backend: self.device.backend,
            adapter: self.device.adapter.first(),
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

    /// The training data and the held-out data the networks of `spec`
    /// train on and are scored on, read or drawn.
    fn load_data(
        &self,
        spec: &ModelSpec,
        task: Option<Task>,
        range: crate::data::TargetRule,
    ) -> Result<(Dataset, Option<Dataset>), crate::Error> {
        let (inputs, outputs) = (spec.topology.inputs(), spec.topology.outputs());
        let (arrays, eval_arrays) = (
            self.data.arrays.as_deref(),
            self.data.eval_arrays.as_deref(),
        );
        let load = |setting: Setting, path: &std::path::Path| {
            load_csv(path, inputs, outputs, range).map_err(|e| layers_against(e, setting, spec))
        };
        let data = match (arrays, &self.data.data) {
            (Some(a), _) => a.to_dataset(inputs, outputs, range)?,
            (None, Some(path)) => load(settings::DATA, path)?,
            (None, None) => {
                let task = task.unwrap_or(Task::Tutorial);
                // --data-seed also keys the split and the resamples.
                let t = &self.training;
                let seeded = self.data.holdout.is_some() || t.bootstrap || t.subsample.is_some();
                task.generate(&self.data.drawn.options_with(Some(task), seeded)?)
            }
        };
        Ok(
            match (eval_arrays, &self.data.eval_data, self.data.holdout) {
                (Some(a), _, _) => {
                    let eval = a.to_dataset(inputs, outputs, range)?;
                    (data, Some(eval))
                }
                (None, Some(path), _) => (data, Some(load(settings::EVAL_DATA, path)?)),
                (None, None, Some(fraction)) => {
                    let seed = self.data.drawn.data_seed.unwrap_or(0);
                    let (train, held) = data.hold_out(fraction, seed)?;
                    (train, Some(held))
                }
                (None, None, None) => (data, None),
            },
        )
    }
}

/// The data sets a sweep's points train on, each read (or drawn) once and
/// shared: the points of one command line differ in their data only where
/// their networks' input and output widths or target rules do.
#[derive(Default)]
struct DataCache(Vec<DataEntry>);

/// Inputs, outputs and target rule; the training and held-out data.
type DataEntry = (
    (usize, usize, crate::data::TargetRule),
    Arc<Dataset>,
    Option<Arc<Dataset>>,
);

/// A data file whose width disagrees with the networks' shape, as the
/// usage error it is: `--layers` and the file's flag both named.
fn layers_against(error: crate::Error, setting: Setting, spec: &ModelSpec) -> crate::Error {
    match error {
        crate::Error::DataWidth {
            origin,
            line,
            columns,
            inputs,
            targets,
            expected,
        } => crate::Error::Config(format!(
            "{} takes {inputs} inputs and gives {} outputs, so {} needs {inputs} inputs + \
             {targets}{} = {expected} columns, but its line {line} has {columns}",
            settings::LAYERS.is(&spec.topology),
            spec.topology.outputs(),
            setting.is(origin.display()),
            if targets.contains("class") {
                format!(" ({})", settings::TARGETS.is("class"))
            } else {
                String::new()
            },
        )),
        other => other,
    }
}
