//! One training run from a validated configuration: build the population
//! (initialisation or a weights file, learning rates), pick the backend,
//! train with progress reports, and time it.

use std::fmt;
use std::ops::ControlFlow;

use clap::ValueEnum;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use crate::backend::{Backend, Engine, TrainerSetup, cpu_threads};
use crate::data::Dataset;
use crate::early_stopping::Watch;
use crate::error::Error;
use crate::evaluation::{block_metrics, held_out_losses};
use crate::gpu::{
    AdapterChoice, AdapterSummary, GpuContext, GpuOptions, Strategy, chosen_adapter, hardware,
    list_adapters,
};
use crate::init::{Init, network_parameters};
use crate::model::ModelSpec;
use crate::recording::{HistoryBlock, HistoryPlan, Recording};
use crate::setting::settings::{
    BATCH_SIZE, EARLY_STOPPING, EPOCHS, EVAL_DATA, HISTORY, HOLDOUT, INIT, INIT_SNAPSHOT,
    INIT_WEIGHTS, LAYERS, LR, NETWORKS, RESUME, SNAPSHOTS,
};
use crate::simd::Isa;
use crate::trainer::{Block, Trained};
use crate::training::NetworkMetrics;
use crate::training::{
    NetworkOutcome, Progress, StopFlag, TrainOptions, check_learning_rates, learning_rate_problem,
};
use crate::weights::{Precision, ReadFor, ResumeBlock, WeightsReader};
use std::sync::Arc;

/// A learning rate for every network, or a log-spaced sweep across them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LearningRate {
    Fixed(f64),
    /// Network i of N gets `from * (to / from)^(i / (N - 1))`.
    LogSweep {
        from: f64,
        to: f64,
    },
}

impl LearningRate {
    /// The rate of network `i` of `networks`.
    pub fn rate(&self, i: usize, networks: usize) -> f64 {
        match *self {
            LearningRate::Fixed(lr) => lr,
            LearningRate::LogSweep { from, to } => {
                let t = if networks > 1 {
                    i as f64 / (networks - 1) as f64
                } else {
                    0.0
                };
                from * (to / from).powf(t)
            }
        }
    }

    /// Every network's rate.
    pub fn rates(&self, networks: usize) -> Vec<f64> {
        (0..networks).map(|i| self.rate(i, networks)).collect()
    }

    /// The rates of networks `first..first + rates.len()` of `networks`.
    pub fn fill(&self, first: usize, networks: usize, rates: &mut [f64]) {
        for (i, r) in rates.iter_mut().enumerate() {
            *r = self.rate(first + i, networks);
        }
    }
}

impl FromStr for LearningRate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let number = |t: &str| -> Result<f64, Error> {
            match t.trim().parse::<f64>() {
                Ok(v) => match learning_rate_problem(v) {
                    None => Ok(v),
                    Some(problem) => Err(Error::Config(format!(
                        "{}: '{}': {problem} (use 0.5, or a sweep such as 0.05..5)",
                        LR.is(format!("'{s}'")),
                        t.trim()
                    ))),
                },
                Err(_) => Err(Error::Config(format!(
                    "{}: '{}' must be a finite number > 0 (use 0.5, or a sweep such as 0.05..5)",
                    LR.is(format!("'{s}'")),
                    t.trim()
                ))),
            }
        };
        match s.split_once("..") {
            None => Ok(LearningRate::Fixed(number(s)?)),
            Some((a, b)) => {
                let (from, to) = (number(a)?, number(b)?);
                if from >= to {
                    return Err(Error::Config(format!(
                        "{}: a sweep goes from the smaller rate to the larger, e.g. 0.05..5",
                        LR.is(format!("'{s}'"))
                    )));
                }
                Ok(LearningRate::LogSweep { from, to })
            }
        }
    }
}

impl fmt::Display for LearningRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LearningRate::Fixed(v) => write!(f, "{v}"),
            LearningRate::LogSweep { from, to } => write!(f, "{from}..{to}"),
        }
    }
}

/// Which backend trains.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum BackendChoice {
    /// A hardware GPU if wgpu's choice of adapter is one (the GPU whenever
    /// `--adapter` or `--kernel` names one), else the float32 SIMD trainer
    /// on the CPU.
    #[default]
    Auto,
    /// The GPU adapter wgpu picks or `--adapter` names, software adapters
    /// (lavapipe) included.
    Gpu,
    /// The float32 SIMD trainer on every CPU core.
    Simd,
    /// The float64 CPU reference.
    Cpu,
}

crate::display_as_value_name!(BackendChoice);

/// Where the starting parameters come from.
#[derive(Clone, Debug, PartialEq)]
pub enum Start {
    Init {
        init: Init,
        seed: u64,
    },
    /// A weights file (`--init-weights`): its parameters (those of its
    /// snapshot at epoch `snapshot`, `--init-snapshot`, where one is
    /// asked for) with fresh optimizer state; its learning rates unless the
    /// run gives some.
    WeightsFile {
        path: PathBuf,
        snapshot: Option<u64>,
    },
    /// A weights file to continue exactly (`--resume`): parameters,
    /// optimizer state, learning rates (unless the run gives some) and
    /// each network's epochs. The run's epochs are the total each network
    /// trains to; `epochs_from_file` takes the file's planned total.
    Resume {
        path: PathBuf,
        epochs_from_file: bool,
    },
}

impl Start {
    /// The weights file the run starts from, if any.
    pub fn file(&self) -> Option<&PathBuf> {
        match self {
            Start::Init { .. } => None,
            Start::WeightsFile { path, .. } | Start::Resume { path, .. } => Some(path),
        }
    }
}

/// What differs between the grid points one run trains together (the
/// same model): their initialisation and learning rate.
#[derive(Clone, Debug, PartialEq)]
pub struct PointStarts {
    pub inits: Vec<Init>,
    pub rates: Vec<Option<LearningRate>>,
}

/// A validated description of one run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub spec: ModelSpec,
    /// Shared: a grid's points that train on the same data hold one copy.
    pub data: Arc<Dataset>,
    /// Held-out data every network is evaluated on after training
    /// (`--eval-data`, `--holdout`).
    pub eval: Option<Arc<Dataset>>,
    pub networks: usize,
    /// The run's networks are replicates `first_network..first_network +
    /// networks` of a population of `population` (a shard's part of a grid
    /// point): initialisation is keyed on (seed, replicate) and a spread
    /// `--lr A..B` goes over the population. A plain run: 0 and `networks`.
    pub first_network: usize,
    pub population: usize,
    /// A run over several grid points of one model (consecutive, each of
    /// `population` replicates): each point's initialisation and rate.
    /// Network n of the run is replicate `(first_network + n) %
    /// population` of point `(first_network + n) / population`.
    pub points: Option<std::sync::Arc<PointStarts>>,
    /// Record every network's loss every this many epochs (`--history`).
    pub history: Option<u64>,
    /// Epochs at which every network's parameters are kept
    /// (`--snapshots`), increasing, none beyond the run's epochs: the
    /// parameters after that many epochs (0: the initial ones).
    pub snapshots: Vec<u64>,
    /// `None`: take the weights file's learning rates.
    pub learning_rate: Option<LearningRate>,
    pub start: Start,
    pub options: TrainOptions,
    pub backend: BackendChoice,
    pub adapter: AdapterChoice,
    /// GPU kernel strategy (`--kernel`).
    pub strategy: Strategy,
    pub gpu: GpuOptions,
    /// Threads of the CPU trainers (`--threads`); `None`: one per core.
    pub threads: Option<usize>,
}

impl RunConfig {
    /// The replicate network `n` of the run is, which keys its
    /// initialisation and its resample: its index in the run, or in its
    /// grid point.
    pub fn replicate(&self, n: usize) -> u64 {
        let at = self.first_network + n;
        match self.points {
            Some(_) => (at % self.population) as u64,
            None => at as u64,
        }
    }

    /// Checks the configuration as a whole, whoever built it (`train`'s
    /// flags, `bench`'s workloads, the library): the model's combination
    /// (loss and output activation), the data against the model (widths and
    /// the output's target range), the options and the initialisation.
    /// Errors name the flags involved.
    pub fn validate(&self) -> Result<(), Error> {
        let (spec, data) = (&self.spec, &self.data);
        spec.validate()?;
        if spec.topology.inputs() != data.inputs || spec.topology.outputs() != data.outputs {
            return Err(Error::Config(format!(
                "{} takes {} inputs and gives {} outputs, but the data ({}) has {} inputs \
                 and {} targets",
                LAYERS.is(&spec.topology),
                spec.topology.inputs(),
                spec.topology.outputs(),
                data.name,
                data.inputs,
                data.outputs
            )));
        }
        data.check_targets(spec.target_rule())?;
        if let Some(eval) = &self.eval {
            eval.check_targets(spec.target_rule())?;
            if (eval.inputs, eval.outputs) != (data.inputs, data.outputs) {
                return Err(Error::Config(format!(
                    "the held-out data ({}) has {} inputs and {} targets, but the training \
                     data has {} and {}",
                    eval.name, eval.inputs, eval.outputs, data.inputs, data.outputs
                )));
            }
        }
        if let Some(b) = spec.batching
            && b.size > data.samples()
        {
            return Err(Error::Config(format!(
                "{} is larger than the data ({}), which has {} samples",
                BATCH_SIZE.is(b.size),
                data.name,
                data.samples()
            )));
        }
        self.options.validate()?;
        match (self.history, &self.start) {
            (Some(0), _) => {
                return Err(Error::Config(format!(
                    "{}: record every K epochs with K at least 1",
                    HISTORY.is(0)
                )));
            }
            (Some(_), Start::Resume { .. }) => {
                return Err(Error::Config(format!(
                    "{HISTORY} cannot be combined with {RESUME} yet: the curve before the resume \
                     is not in the weights file (record it in the first run, or resume without \
                     {HISTORY})"
                )));
            }
            _ => {}
        }
        check_snapshots(&self.snapshots, self.options.epochs)?;
        if !self.snapshots.is_empty() && matches!(self.start, Start::Resume { .. }) {
            return Err(Error::Config(format!(
                "{SNAPSHOTS} cannot be combined with {RESUME} yet: the snapshots before the \
                 resume are not carried over (take them in the first run)"
            )));
        }
        if let Some(r) = spec.resample {
            r.check_samples(data.samples(), &data.name)?;
        }
        if let Some(rule) = spec.early_stopping {
            if self.eval.is_none() {
                return Err(Error::Config(format!(
                    "{} watches the held-out loss: give {EVAL_DATA} FILE or {HOLDOUT} \
                     FRACTION",
                    EARLY_STOPPING.is(rule.patience)
                )));
            }
            if matches!(self.start, Start::Resume { .. }) {
                return Err(Error::Config(format!(
                    "{EARLY_STOPPING} cannot be combined with {RESUME} yet: each network's \
                     best weights and epoch so far are not in the weights file (run it \
                     again, or start from its weights with {INIT_WEIGHTS})"
                )));
            }
        }
        if self.networks == 0 {
            return Err(Error::Config(format!("{NETWORKS} must be at least 1")));
        }
        let points = self.points.as_ref().map_or(1, |p| p.inits.len());
        if self.first_network + self.networks > self.population * points {
            return Err(Error::Config(format!(
                "networks {}..{} lie outside a population of {}",
                self.first_network,
                self.first_network + self.networks,
                self.population * points
            )));
        }
        if self.first_network > 0 && self.start.file().is_some() {
            return Err(Error::Config(format!(
                "a weights file ({INIT_WEIGHTS}, {RESUME}) starts a whole run, not a shard of one"
            )));
        }
        if let Start::Init { init, .. } = self.start {
            crate::init::check(spec, init)?;
        }
        Ok(())
    }

    /// What `--history` records, if anything.
    pub fn history_plan(&self) -> Option<HistoryPlan> {
        self.history.map(|every| HistoryPlan {
            every,
            epochs: self.options.epochs,
            eval: self.eval.is_some(),
        })
    }
}

/// Refuses snapshot epochs that do not increase or lie beyond the run's
/// `epochs`.
pub fn check_snapshots(snapshots: &[u64], epochs: u64) -> Result<(), Error> {
    let list = || {
        let all: Vec<String> = snapshots.iter().map(u64::to_string).collect();
        all.join(",")
    };
    if let Some(w) = snapshots.windows(2).find(|w| w[1] <= w[0]) {
        return Err(Error::Config(format!(
            "{}: the epochs must increase ({} comes after {})",
            SNAPSHOTS.is(list()),
            w[1],
            w[0]
        )));
    }
    if let Some(&last) = snapshots.last()
        && last > epochs
    {
        return Err(Error::Config(format!(
            "{}: epoch {last} is beyond the run's {}",
            SNAPSHOTS.is(list()),
            EPOCHS.is(epochs)
        )));
    }
    Ok(())
}

/// A block of networks the run has trained, handed to the caller's sink
/// as soon as it is done; the run then forgets it.
#[derive(Clone, Copy, Debug)]
pub struct TrainedBlock<'a> {
    /// Index of the block's first network in the run.
    pub first: usize,
    /// Starting parameters, vectors back to back.
    pub initial: &'a [f64],
    /// Trained parameters, laid out as `initial`.
    pub params: &'a [f64],
    /// Optimizer state after training, network after network
    /// ([`crate::vocab::OptimizerConfig::state_slots`] x parameters each;
    /// empty for SGD).
    pub state: &'a [f64],
    pub learning_rates: &'a [f64],
    pub outcomes: &'a [NetworkOutcome],
    /// Networks a stop came before that no run ever started: never
    /// initialised, their `initial` and `params` meaningless
    /// ([`crate::weights::NEVER_STARTED`]).
    pub never_started: &'a [bool],
    /// Accuracy and held-out figures of every network
    /// ([`crate::evaluation::block_metrics`]).
    pub metrics: &'a [NetworkMetrics],
    /// Every network's learning curves, completed, with `--history`.
    pub history: Option<&'a HistoryBlock>,
    /// With `--snapshots`, every network's parameters at each snapshot
    /// epoch: network `n`'s at snapshot `k` at `(n x snapshots + k) x P`
    /// (NaN where a stop came first).
    pub snapshots: &'a [f64],
    /// With a resample, each network's row counts ([`Block::rows`]).
    pub rows: Option<&'a [u8]>,
}

impl TrainedBlock<'_> {
    pub fn len(&self) -> usize {
        self.learning_rates.len()
    }

    pub fn is_empty(&self) -> bool {
        self.learning_rates.is_empty()
    }

    /// Trained parameters of the block's `i`-th network.
    pub fn network(&self, i: usize) -> &[f64] {
        let p = self.params.len() / self.len().max(1);
        &self.params[i * p..(i + 1) * p]
    }

    pub fn initial_network(&self, i: usize) -> &[f64] {
        let p = self.initial.len() / self.len().max(1);
        &self.initial[i * p..(i + 1) * p]
    }
}

/// Host memory a block of networks may take; a run goes through its
/// networks a block at a time (initialised or read, trained, handed on),
/// so its memory does not grow with `--networks` beyond what the caller
/// keeps of each block.
pub const HOST_BLOCK_BYTES: u64 = 256 << 20;

/// Host bytes one network takes in a block: its starting and trained
/// parameters and optimizer state (f64), rate, epochs done and target
/// epoch (a resume's), outcome, and the copies on the way to the device
/// and to a weights file (float32, or float64 from the CPU reference).
pub fn block_bytes_per_network(spec: &ModelSpec) -> u64 {
    let p = spec.layout().len as u64;
    let s = spec.optimizer.state_slots() as u64 * p;
    let resumed = (std::mem::size_of::<u64>() + std::mem::size_of::<Option<u32>>()) as u64;
    let copies = (4 + 8) * (p + s + 1);
    2 * 8 * p + 8 * s + 8 + resumed + std::mem::size_of::<NetworkOutcome>() as u64 + copies
}

/// Networks per block for `config`: [`block_bytes_per_network`] and the
/// history's ([`HistoryPlan::block_bytes_per_network`]).
/// A resample's bytes per network of a block: its row counts (a byte a
/// row) and the SIMD trainer's float32 row weights in lanes.
pub fn resample_bytes_per_network(config: &RunConfig) -> u64 {
    match config.spec.resample {
        Some(_) => 5 * config.data.samples() as u64,
        None => 0,
    }
}

pub fn block_networks(config: &RunConfig) -> usize {
    let history = config
        .history_plan()
        .map_or(0, |h| h.block_bytes_per_network());
    // The snapshots' parameters (f64), and their float32 copy on the way
    // to the file.
    let snapshots = 12 * (config.snapshots.len() * config.spec.layout().len) as u64;
    // Early stopping's best parameters and optimizer state (f64), with
    // the best loss, epochs and outcome ([`Watch`]).
    let p = config.spec.layout().len as u64;
    let watched = 8 * (p + config.spec.optimizer.state_slots() as u64 * p)
        + 8
        + 2 * std::mem::size_of::<Option<u64>>() as u64
        + std::mem::size_of::<Option<NetworkOutcome>>() as u64;
    let early = match config.spec.early_stopping {
        Some(_) => watched,
        None => 0,
    };
    let per_network = block_bytes_per_network(&config.spec)
        + history
        + snapshots
        + early
        + resample_bytes_per_network(config);
    let by_memory = HOST_BLOCK_BYTES / per_network;
    (by_memory as usize).clamp(1, config.networks.max(1))
}

/// Where a run's starting parameters come from, opened: fresh
/// initialisation, or a weights file read a block at a time.
pub enum Starting {
    Init { init: Init, seed: u64 },
    File(WeightsReader),
}

impl Starting {
    /// Opens the configuration's start. A weights file must hold
    /// `--networks` networks and fit the model ([`WeightsReader::open`]).
    /// A resume sets the run's epochs from the file when asked
    /// ([`Start::Resume`]) and refuses a total below what a network has
    /// already completed.
    pub fn open(config: &mut RunConfig) -> Result<Self, Error> {
        let (path, purpose, snapshot) = match &config.start {
            Start::Init { init, seed } => {
                crate::init::check(&config.spec, *init)?;
                return Ok(Starting::Init {
                    init: *init,
                    seed: *seed,
                });
            }
            Start::WeightsFile { path, snapshot } => (path.clone(), ReadFor::Init, *snapshot),
            Start::Resume { path, .. } => (
                path.clone(),
                ReadFor::Resume {
                    target_loss: config.options.target_loss,
                },
                None,
            ),
        };
        let source = crate::weights::Source::Path(path.clone());
        let asked = snapshot.map(|epoch| (INIT_SNAPSHOT, epoch));
        let reader = WeightsReader::open_snapshot(&source, &config.spec, purpose, asked)?;
        if let Some(n) = reader.first_never_started() {
            let message = match (reader.resume(), reader.recorded_init()) {
                (None, _) => Some(format!(
                    "network {n} was never started (the run that wrote it was stopped \
                     before it), so it has no parameters to start from; {RESUME} the \
                     file to train it"
                )),
                (Some(_), None) => Some(format!(
                    "network {n} was never started, and the file records no {INIT} to \
                     start it by (a grid's file, or one started from {INIT_WEIGHTS}); \
                     rerun that run"
                )),
                (Some(_), Some(_)) => None,
            };
            if let Some(message) = message {
                return Err(Error::WeightsFile { path, message });
            }
        }
        if reader.networks() != config.networks {
            return Err(Error::WeightsFile {
                path,
                message: format!(
                    "holds {} networks, but the run has {}",
                    reader.networks(),
                    NETWORKS.is(config.networks)
                ),
            });
        }
        if let (
            Some(record),
            Start::Resume {
                epochs_from_file, ..
            },
        ) = (reader.resume(), &config.start)
        {
            if *epochs_from_file {
                config.options.epochs = record.planned_epochs;
            }
            if config.options.epochs < record.most_epochs {
                return Err(Error::Config(format!(
                    "{}: a network in {} has already completed {} epochs; with {RESUME}, \
                     {EPOCHS} is the total every network trains to (default: the {} its run \
                     asked for)",
                    EPOCHS.is(config.options.epochs),
                    path.display(),
                    record.most_epochs,
                    record.planned_epochs
                )));
            }
        }
        Ok(Starting::File(reader))
    }

    /// How networks never started are initialised (by init and seed
    /// keyed on the network's index), for the weights file to record: a
    /// fresh start's `--init`, or a resumed file's record.
    pub fn recorded_init(&self) -> Option<(Init, u64)> {
        match self {
            Starting::Init { init, seed } => Some((*init, *seed)),
            Starting::File(reader) => reader.resume().and(reader.recorded_init()),
        }
    }

    /// Network-epochs the start has already done (a resumed file's).
    pub fn epochs_done(&self) -> u64 {
        match self {
            Starting::File(reader) => reader.resume().map_or(0, |r| r.total_epochs),
            Starting::Init { .. } => 0,
        }
    }

    /// What the user should know about the start: a weights file's
    /// accepted differences from the run, `--lr` replacing its rates, and
    /// a resume on another backend or strategy than the file's.
    pub fn notes(&self, config: &RunConfig, backend: &BackendInfo) -> Vec<String> {
        let Starting::File(reader) = self else {
            return Vec::new();
        };
        let path = reader.path();
        let mut notes: Vec<String> = reader
            .notes()
            .iter()
            .map(|n| format!("weights file {} {n}", path.display()))
            .collect();
        if let Some(lr) = config.learning_rate {
            notes.push(format!(
                "weights file {}: its learning rates are replaced by {}",
                path.display(),
                LR.is(lr)
            ));
        }
        if let Some(record) = reader.resume() {
            let here = backend.trained_on();
            if record.trained_on != here {
                notes.push(format!(
                    "weights file {} was trained on {}, this run resumes on {here}: the \
                     result will not be bit for bit that of one uninterrupted run",
                    path.display(),
                    record.trained_on
                ));
            }
        }
        notes
    }

    /// Fills networks `first..` (as many as `block.learning_rates` holds)
    /// with their starting parameters, optimizer state, learning rates,
    /// epochs done and target epochs already reached.
    /// With `initialise` false (a block the run will never start), a
    /// fresh start's networks are not initialised but marked never
    /// started, as are a resumed file's never-started ones; with it, those
    /// are initialised by the file's recorded init and seed, as the run
    /// that wrote it would have. `--init-weights` from a file with
    /// never-started networks is refused.
    fn fill(
        &mut self,
        config: &RunConfig,
        first: usize,
        block: BlockStart,
        initialise: bool,
    ) -> Result<(), Error> {
        let BlockStart {
            params,
            state,
            learning_rates,
            epochs_done,
            target_epochs,
            never_started,
        } = block;
        // Fresh optimizer state: zero, as PyTorch's buffers start.
        state.fill(0.0);
        epochs_done.fill(0);
        target_epochs.fill(None);
        never_started.fill(false);
        match self {
            Starting::Init { .. } if !initialise => never_started.fill(true),
            Starting::Init { init, seed } => {
                let p = config.spec.layout().len;
                for (i, net) in params.chunks_exact_mut(p).enumerate() {
                    // Keyed on the replicate: a grid point's networks are a
                    // plain run's.
                    let at = config.first_network + first + i;
                    let init = match &config.points {
                        Some(points) => points.inits[at / config.population],
                        None => *init,
                    };
                    let id = config.replicate(first + i);
                    let start = network_parameters(&config.spec, init, *seed, id);
                    net.copy_from_slice(&start);
                }
            }
            Starting::File(reader) => {
                let resume = reader.resume().is_some().then_some(ResumeBlock {
                    state: &mut *state,
                    epochs_completed: epochs_done,
                    target_epochs,
                });
                // Never-started networks only in a resumed file that
                // records how to start them ([`Starting::open`]).
                let never = reader.read_block(first, params, learning_rates, resume)?;
                never_started.copy_from_slice(&never);
                if let (true, Some((init, seed))) = (initialise, reader.recorded_init()) {
                    // As the run that wrote the file would have started
                    // them (keyed on the network's index), with fresh state.
                    let p = config.spec.layout().len;
                    let per_state = config.spec.optimizer.state_slots() * p;
                    for n in (0..never.len()).filter(|&n| never[n]) {
                        let id = (config.first_network + first + n) as u64;
                        let start = network_parameters(&config.spec, init, seed, id);
                        params[n * p..(n + 1) * p].copy_from_slice(&start);
                        state[n * per_state..(n + 1) * per_state].fill(0.0);
                        never_started[n] = false;
                    }
                }
            }
        }
        if let Some(points) = &config.points {
            for (i, lr) in learning_rates.iter_mut().enumerate() {
                let at = config.first_network + first + i;
                let rate = points.rates[at / config.population]
                    .unwrap_or(LearningRate::Fixed(DEFAULT_LEARNING_RATE));
                *lr = rate.rate(at % config.population, config.population);
            }
            return check_learning_rates(first, learning_rates).map_err(Error::Config);
        }
        let rate = match (config.learning_rate, config.start.file()) {
            (Some(lr), _) => lr,
            (None, Some(path)) => {
                // The file's own rates, which must be usable.
                return check_learning_rates(first, learning_rates).map_err(|message| {
                    Error::WeightsFile {
                        path: path.clone(),
                        message,
                    }
                });
            }
            (None, None) => LearningRate::Fixed(DEFAULT_LEARNING_RATE),
        };
        rate.fill(
            config.first_network + first,
            config.population,
            learning_rates,
        );
        check_learning_rates(first, learning_rates).map_err(Error::Config)
    }
}

/// A block's starting values, filled by [`Starting::fill`].
struct BlockStart<'a> {
    params: &'a mut [f64],
    state: &'a mut [f64],
    learning_rates: &'a mut [f64],
    epochs_done: &'a mut [u64],
    target_epochs: &'a mut [Option<u32>],
    /// Set for each network no run has started (see [`Starting::fill`]).
    never_started: &'a mut [bool],
}

/// The learning rate when neither `--lr` nor a weights file gives one:
/// seed 003's.
pub const DEFAULT_LEARNING_RATE: f64 = 0.5;
/// The backend that ran, for reports.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendInfo {
    pub backend: Backend,
    pub adapter: Option<AdapterSummary>,
    /// The CPU trainers' instruction set and threads, e.g. "avx512, 2
    /// threads".
    pub cpu: Option<String>,
    /// Why the run is on the backend it is on, when that needs saying.
    pub note: Option<String>,
}

impl BackendInfo {
    /// Backend, strategy and adapter, as weights files record them: what
    /// a bit-for-bit resume needs to be the same. (The SIMD trainer's
    /// results do not depend on its instruction set or threads.)
    pub fn trained_on(&self) -> String {
        match &self.adapter {
            Some(adapter) => format!("{} on {}", self.backend, adapter.name),
            None => self.backend.to_string(),
        }
    }

    /// The precision the backend trains in, which its weights files keep.
    pub fn precision(&self) -> Precision {
        self.backend.precision()
    }

    /// Where the run is, as the summary says it: the adapter, or the
    /// CPU trainer's instruction set and threads.
    pub fn device(&self) -> Option<String> {
        match &self.adapter {
            Some(adapter) => Some(adapter.to_string()),
            None => self.cpu.clone(),
        }
    }
}

/// Opens the backend the configuration asks for. `Auto` takes a hardware
/// GPU where wgpu's choice of adapter is one, or the GPU when `--adapter`
/// or `--kernel` names one; else (a software adapter such as lavapipe, or
/// none) the SIMD trainer, saying so in the note where the system shows a
/// hardware GPU that wgpu cannot reach ([`hardware::unreached`]). Asked
/// for the GPU without an adapter named, a run on such a machine is
/// refused rather than left to crawl on a software adapter.
pub fn open_backend(config: &RunConfig) -> Result<(Engine, BackendInfo), Error> {
    let (threads, threads_note) = cpu_threads(config.threads);
    let on_cpu = |engine: Engine,
                  detail: String,
                  why: Option<String>|
     -> Result<(Engine, BackendInfo), Error> {
        let note = match (why, &threads_note) {
            (Some(why), Some(threads)) => Some(format!("{why}\nnote: {threads}")),
            (why, threads) => why.or_else(|| threads.clone()),
        };
        let info = BackendInfo {
            backend: engine.backend(&config.spec, config.data.samples(), config.strategy)?,
            adapter: None,
            cpu: Some(format!("{detail}{threads} threads")),
            note,
        };
        Ok((engine, info))
    };
    let simd = |why: Option<String>| {
        let isa = Isa::chosen()?;
        on_cpu(Engine::Simd(isa), format!("{}, ", isa.name()), why)
    };
    let gpu = || -> Result<(Engine, BackendInfo), Error> {
        if config.adapter == AdapterChoice::Auto
            && let Some(unreached) = hardware::unreached(list_adapters)
        {
            return Err(Error::GpuUnreached {
                diagnosis: unreached.to_string(),
            });
        }
        let engine = Engine::Gpu(Arc::new(GpuContext::open(&config.adapter)?));
        let Engine::Gpu(ctx) = &engine else {
            unreachable!("a GPU engine was just built")
        };
        let info = BackendInfo {
            backend: engine.backend(&config.spec, config.data.samples(), config.strategy)?,
            adapter: Some(ctx.adapter.clone()),
            cpu: None,
            note: None,
        };
        Ok((engine, info))
    };
    match config.backend {
        BackendChoice::Cpu => on_cpu(Engine::Reference, String::new(), None),
        BackendChoice::Simd => simd(None),
        BackendChoice::Gpu => gpu(),
        // Naming an adapter or a kernel asks for the GPU.
        BackendChoice::Auto
            if config.adapter != AdapterChoice::Auto || config.strategy != Strategy::Auto =>
        {
            gpu()
        }
        BackendChoice::Auto => match chosen_adapter(&config.adapter) {
            Ok(adapter) if !adapter.is_software() => gpu(),
            Ok(_) | Err(Error::NoAdapter { .. }) => simd(
                hardware::unreached(list_adapters)
                    .map(|u| format!("{u}. Training on the SIMD trainer instead")),
            ),
            Err(e) => Err(e),
        },
    }
}

/// The backend `engine` is for `config`: `base` (from [`open_backend`])
/// with the GPU strategy `config`'s model gets.
pub fn backend_for(
    engine: &Engine,
    config: &RunConfig,
    base: &BackendInfo,
) -> Result<BackendInfo, Error> {
    Ok(BackendInfo {
        backend: engine.backend(&config.spec, config.data.samples(), config.strategy)?,
        ..base.clone()
    })
}

/// Trains every network of `config`, a block at a time ([`block_networks`]):
/// each block is filled from `start`, trained by `engine` with progress
/// reports, and handed to `sink`. Once `stop` is requested, the current
/// block ends early, each outcome recording the epochs its network
/// completed, and later blocks are never started
/// ([`NetworkOutcome::not_started`]): not trained, evaluated or
/// initialised (a weights file marks them, and a resume starts them:
/// [`crate::weights::NEVER_STARTED`]). With `--snapshots` each block
/// trains in segments that end at the snapshot epochs, each continuing
/// where the last stopped ([`Trained::then`]), and keeps every network's
/// parameters at their ends ([`TrainedBlock::snapshots`]). Returns the
/// seconds spent training.
pub fn execute(
    config: &RunConfig,
    engine: &Engine,
    start: &mut Starting,
    progress: &mut dyn FnMut(&Progress),
    stop: &StopFlag,
    sink: &mut dyn FnMut(&TrainedBlock) -> Result<(), Error>,
) -> Result<f64, Error> {
    config.options.validate()?;
    let block = block_networks(config);
    let p = config.spec.layout().len;
    let plan = config.history_plan();
    let recording = plan.map(|plan| Recording {
        plan,
        eval: config.eval.as_deref(),
    });
    let trainer = engine.trainer(&TrainerSetup {
        spec: &config.spec,
        data: &config.data,
        networks: block,
        recording: recording.as_ref(),
        strategy: config.strategy,
        gpu: &config.gpu,
        threads: config.threads,
    })?;
    // Every network trains to the run's epochs; a resumed one has done some.
    let total = (config.networks as u64)
        .saturating_mul(config.options.epochs)
        .saturating_sub(start.epochs_done());
    let mut done_before = 0u64;
    let mut seconds = 0.0;
    let mut initial = vec![0.0; block * p];
    let mut params = vec![0.0; block * p];
    let per_state = config.spec.optimizer.state_slots() * p;
    let mut state = vec![0.0; block * per_state];
    let mut learning_rates = vec![0.0; block];
    let mut epochs_done = vec![0u64; block];
    let mut kept_targets = vec![None; block];
    let mut never_started = vec![false; block];
    let s = config.snapshots.len();
    let mut snapshots = vec![0.0; block * s * p];
    let (mut best_epochs, mut stopped_epochs) = (vec![None; block], vec![None; block]);
    for first in (0..config.networks).step_by(block) {
        let count = block.min(config.networks - first);
        let (initial, params) = (&mut initial[..count * p], &mut params[..count * p]);
        let learning_rates = &mut learning_rates[..count];
        let state = &mut state[..count * per_state];
        let (epochs_done, kept_targets) = (&mut epochs_done[..count], &mut kept_targets[..count]);
        let never_started = &mut never_started[..count];
        // A block that a stop came before is never started: not trained,
        // evaluated or initialised (a resumed file's networks are read, to
        // be kept as they were).
        let begun = !stop.is_requested();
        start.fill(
            config,
            first,
            BlockStart {
                params: initial,
                state,
                learning_rates,
                epochs_done,
                target_epochs: kept_targets,
                never_started,
            },
            begun,
        )?;
        if !never_started.iter().all(|&m| m) {
            params.copy_from_slice(initial);
        }
        // Networks in runs of equal epochs done, each trained on from its
        // own epoch: a fresh block is one run, a block resumed after a
        // Ctrl-C a few (the chunk that was stopped, those after it).
        let mut outcomes = Vec::with_capacity(count);
        let mut history = plan.map(|plan| HistoryBlock::new(&plan, if begun { 0 } else { count }));
        if !begun {
            let never =
                (0..count).map(|n| NetworkOutcome::not_started(epochs_done[n], kept_targets[n]));
            outcomes.extend(never);
        }
        let started = Instant::now();
        let snapshots = &mut snapshots[..count * s * p];
        snapshots.fill(f64::NAN);
        let (best_epochs, stopped_epochs) =
            (&mut best_epochs[..count], &mut stopped_epochs[..count]);
        // Each network's resample, from its key alone.
        let samples = config.data.samples();
        let rows = config.spec.resample.map(|r| {
            let replicates = (first..first + count).map(|n| config.replicate(n));
            crate::resample::block_counts(&r, samples, replicates)
        });
        best_epochs.fill(None);
        stopped_epochs.fill(None);
        let mut n = if begun { 0 } else { count };
        while n < count {
            let from = epochs_done[n];
            let end = n + epochs_done[n..].iter().take_while(|&&d| d == from).count();
            let group = Group {
                from,
                params: &mut params[n * p..end * p],
                state: &mut state[n * per_state..end * per_state],
                learning_rates: &learning_rates[n..end],
                rows: rows.as_deref().map(|r| &r[n * samples..end * samples]),
                snapshots: &mut snapshots[n * s * p..end * s * p],
            };
            let mut counter = Counter {
                progress: &mut *progress,
                done_before: &mut done_before,
                total,
            };
            let (trained, watch) =
                train_group(config, trainer.as_ref(), group, &mut counter, stop)?;
            let Trained {
                outcomes: mut trained,
                history: curves,
                ..
            } = trained;
            if let (Some(all), Some(curves)) = (&mut history, curves) {
                all.extend(curves);
            }
            for (outcome, kept) in trained.iter_mut().zip(&kept_targets[n..end]) {
                outcome.epochs_completed += from;
                if kept.is_some() {
                    outcome.target_epoch = *kept;
                }
            }
            if let Some(watch) = watch {
                for i in 0..end - n {
                    best_epochs[n + i] = watch.best_epoch(i);
                    stopped_epochs[n + i] = watch.stopped_epoch(i);
                }
            }
            outcomes.extend(trained);
            n = end;
        }
        seconds += started.elapsed().as_secs_f64();
        let (spec, eval) = (&config.spec, config.eval.as_deref());
        let mut metrics = match begun {
            true => block_metrics(spec, &config.data, eval, params, &outcomes, rows.as_deref()),
            false => vec![NetworkMetrics::default(); count],
        };
        for (m, (&best, &stopped)) in metrics
            .iter_mut()
            .zip(best_epochs.iter().zip(&*stopped_epochs))
        {
            m.best_epoch = best;
            m.stopped_epoch = stopped;
        }
        if let (Some(history), Some(plan)) = (&mut history, &plan) {
            history.complete(plan, &outcomes, &metrics);
        }
        sink(&TrainedBlock {
            first,
            initial,
            params,
            state,
            learning_rates,
            outcomes: &outcomes,
            never_started,
            metrics: &metrics,
            history: history.as_ref(),
            snapshots,
            rows: rows.as_deref(),
        })?;
    }
    Ok(seconds)
}

/// A group of a block's networks that have done the same epochs, and
/// their buffers in the block.
struct Group<'a> {
    /// The epochs they have done (a resumed block's).
    from: u64,
    params: &'a mut [f64],
    state: &'a mut [f64],
    learning_rates: &'a [f64],
    /// Their row counts, with a resample ([`Block::rows`]).
    rows: Option<&'a [u8]>,
    /// Their snapshots, laid out as [`TrainedBlock::snapshots`].
    snapshots: &'a mut [f64],
}

/// The run's progress: network-epochs counted before the current
/// training call, out of `total`.
struct Counter<'a> {
    progress: &'a mut dyn FnMut(&Progress),
    done_before: &'a mut u64,
    total: u64,
}

/// Trains a group to the run's epochs in segments that end at the
/// snapshot epochs and, with early stopping, at its checks: each segment
/// goes on from where the last stopped, as a resume does, so the run is
/// the one without segments, bit for bit ([`Trained::then`]). After a
/// segment it keeps the snapshot that ends there and checks the held-out
/// loss ([`Watch::check`]). Once every network has stopped early, stopped
/// at its target or diverged, the rest of the run is not trained: its
/// epochs count as done and its snapshots are the networks as they
/// stopped. At the end each network gets its best weights back
/// ([`Watch::restore`]). Gives the group's training and its watch.
fn train_group(
    config: &RunConfig,
    trainer: &dyn crate::trainer::Trainer,
    group: Group<'_>,
    counter: &mut Counter<'_>,
    stop: &StopFlag,
) -> Result<(Trained, Option<Watch>), Error> {
    let Group {
        from,
        params,
        state,
        learning_rates,
        rows,
        snapshots,
    } = group;
    let (p, s, count) = (
        config.spec.layout().len,
        config.snapshots.len(),
        learning_rates.len(),
    );
    let per_state = config.spec.optimizer.state_slots() * p;
    let (epochs, stop_at_target) = (config.options.epochs, config.options.stop_at_target);
    let rule = config.spec.early_stopping;
    // The end of the segment from `at`: the next snapshot, check or the
    // run's end (worked out as the run goes: a check every epoch of a
    // long run is too many epochs to list).
    let next_end = |at: u64| {
        let snapshot = config.snapshots.iter().copied().find(|&e| e > at);
        let check = rule.map(|r| r.next_check(at, epochs));
        [snapshot, check]
            .into_iter()
            .flatten()
            .fold(epochs, u64::min)
    };
    let mut watch = rule.map(|_| Watch::new(count, p, per_state));
    // A network's parameters at a snapshot: as it stopped, once stopped early.
    let keep = |k: usize, params: &[f64], snapshots: &mut [f64], watch: Option<&Watch>| {
        for i in 0..count {
            let stopped = watch.and_then(|w| w.stopped(i).then(|| w.best_params(i)).flatten());
            let net = stopped.unwrap_or(&params[i * p..][..p]);
            snapshots[(i * s + k) * p..][..p].copy_from_slice(net);
        }
    };
    if let Some(k) = config.snapshots.iter().position(|&e| e == from) {
        keep(k, params, snapshots, None);
    }
    let mut merged: Option<Trained> = None;
    let mut at = from;
    let mut all_stopped = false;
    // At least one segment, of no epochs for a group already done.
    while merged.is_none() || at < epochs {
        let stop_at = next_end(at);
        if merged.is_some() && stop.is_requested() {
            break;
        }
        if let (Some(w), Some(m)) = (&watch, &merged)
            && m.finished(stop_at_target, at, &w.halted())
                .iter()
                .all(|&f| f)
        {
            all_stopped = true;
            break;
        }
        let options = TrainOptions {
            first_epoch: at,
            epochs: match stop.is_requested() {
                true => 0,
                false => stop_at - at,
            },
            ..config.options
        };
        let (done_before, total) = (*counter.done_before, counter.total);
        let progress = &mut counter.progress;
        let mut control = |p: &Progress| {
            progress(&Progress {
                network_epochs_done: done_before + p.network_epochs_done,
                network_epochs_total: total,
            });
            match stop.is_requested() {
                true => ControlFlow::Break(()),
                false => ControlFlow::Continue(()),
            }
        };
        let run = Block {
            params: &mut *params,
            state: &mut *state,
            learning_rates,
            rows,
        };
        let trained = trainer.train(run, &options, &mut control)?;
        let stopped = stop.is_requested();
        // What the progress has counted: every epoch asked for, or after a
        // stop the epochs done (so it never claims the rest).
        *counter.done_before += match stopped {
            false => count as u64 * options.epochs,
            true => trained.outcomes.iter().map(|o| o.epochs_completed).sum(),
        };
        // The segment's end is a snapshot's or a check's epoch unless a
        // stop cut it short (its snapshot then stays NaN).
        let reached = !stopped
            || trained
                .outcomes
                .iter()
                .all(|o| o.epochs_completed == options.epochs);
        let halted = watch.as_ref().map_or_else(Vec::new, Watch::halted);
        if let (true, Some(k)) = (reached, config.snapshots.iter().position(|&e| e == stop_at)) {
            keep(k, params, snapshots, watch.as_ref());
        }
        let all = match merged {
            None => trained,
            Some(before) => before.then(trained, stop_at_target, at, &halted),
        };
        if let (true, Some(rule), Some(w), Some(eval)) =
            (reached, rule, &mut watch, config.eval.as_deref())
            && rule.is_check(stop_at, epochs)
        {
            let active: Vec<bool> = (0..count)
                .map(|n| !all.outcomes[n].diverged && !w.stopped(n))
                .collect();
            let losses = held_out_losses(&config.spec, eval, params, &active);
            let last = stop_at == epochs;
            w.check(&rule, stop_at, last, &losses, params, state, &all.outcomes);
        }
        merged = Some(all);
        at = stop_at;
    }
    let mut trained = merged.expect("at least the segment to the run's end");
    if all_stopped {
        // The rest of the run's epochs count as done, as for a network
        // stopped at its target.
        for o in &mut trained.outcomes {
            o.epochs_completed += epochs - at;
        }
        *counter.done_before += count as u64 * (epochs - at);
        for (k, _) in config
            .snapshots
            .iter()
            .enumerate()
            .filter(|&(_, &e)| e > at)
        {
            keep(k, params, snapshots, watch.as_ref());
        }
    }
    if let Some(w) = &mut watch {
        w.restore(params, state, &mut trained.outcomes);
    }
    Ok((trained, watch))
}
