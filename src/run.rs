//! One training run from a validated configuration: build the population
//! (initialisation or a weights file, learning rates), pick the backend,
//! train with progress reports, and time it.

use std::fmt;
use std::ops::ControlFlow;

use clap::ValueEnum;
use std::path::PathBuf;
use std::str::FromStr;
use std::time::Instant;

use crate::cpu;
use crate::data::Dataset;
use crate::error::Error;
use crate::gpu::{
    AdapterChoice, AdapterSummary, GpuContext, GpuOptions, GpuTrainer, Strategy, choose_strategy,
};
use crate::init::{Init, population_parameters};
use crate::model::ModelSpec;
use crate::training::{NetworkOutcome, Progress, StopFlag, TrainOptions, check_learning_rates};
use crate::weights;

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
    pub fn rates(&self, networks: usize) -> Vec<f64> {
        match *self {
            LearningRate::Fixed(lr) => vec![lr; networks],
            LearningRate::LogSweep { from, to } => (0..networks)
                .map(|i| {
                    let t = if networks > 1 {
                        i as f64 / (networks - 1) as f64
                    } else {
                        0.0
                    };
                    from * (to / from).powf(t)
                })
                .collect(),
        }
    }
}

impl FromStr for LearningRate {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        let number = |t: &str| -> Result<f64, Error> {
            match t.trim().parse::<f64>() {
                Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
                _ => Err(Error::Config(format!(
                    "--lr '{s}': '{}' must be a finite number > 0 (use 0.5, or a sweep such as 0.05..5)",
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
                        "--lr '{s}': a sweep goes from the smaller rate to the larger, e.g. 0.05..5"
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
    /// The GPU if an adapter is found, else the CPU reference.
    #[default]
    Auto,
    Gpu,
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
    /// A weights file; its learning rates are used unless the run gives one.
    WeightsFile(PathBuf),
}

/// A validated description of one run.
#[derive(Clone, Debug)]
pub struct RunConfig {
    pub spec: ModelSpec,
    pub data: Dataset,
    pub networks: usize,
    /// `None`: take the weights file's learning rates.
    pub learning_rate: Option<LearningRate>,
    pub start: Start,
    pub options: TrainOptions,
    pub backend: BackendChoice,
    pub adapter: AdapterChoice,
    /// GPU kernel strategy (`--kernel`).
    pub strategy: Strategy,
    pub gpu: GpuOptions,
}

impl RunConfig {
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
                "--layers {} takes {} inputs and gives {} outputs, but the data ({}) has \
                 {} inputs and {} targets",
                spec.topology,
                spec.topology.inputs(),
                spec.topology.outputs(),
                data.name,
                data.inputs,
                data.outputs
            )));
        }
        data.check_targets(spec.target_range())?;
        self.options.validate()?;
        if self.networks == 0 {
            return Err(Error::Config("--networks must be at least 1".into()));
        }
        if let Start::Init { init, .. } = self.start {
            crate::init::check(spec, init)?;
        }
        Ok(())
    }
}

/// The networks being trained: parameters back to back, and their rates.
#[derive(Clone, Debug, PartialEq)]
pub struct Population {
    pub params: Vec<f64>,
    pub learning_rates: Vec<f64>,
}

impl Population {
    pub fn parameter_count(&self) -> usize {
        self.params.len() / self.learning_rates.len().max(1)
    }

    pub fn network(&self, i: usize) -> &[f64] {
        let p = self.parameter_count();
        &self.params[i * p..(i + 1) * p]
    }
}

/// Builds the starting population.
pub fn prepare(config: &RunConfig) -> Result<Population, Error> {
    let (params, file_rates) = match &config.start {
        Start::Init { init, seed } => (
            population_parameters(&config.spec, *init, *seed, 0, config.networks)?,
            None,
        ),
        Start::WeightsFile(path) => {
            let loaded = weights::read(path, &config.spec)?;
            if loaded.networks != config.networks {
                return Err(Error::WeightsFile {
                    path: path.clone(),
                    message: format!(
                        "holds {} networks, but --networks is {}",
                        loaded.networks, config.networks
                    ),
                });
            }
            (loaded.params, Some(loaded.learning_rates))
        }
    };
    let learning_rates = match (config.learning_rate, file_rates) {
        (Some(lr), _) => lr.rates(config.networks),
        (None, Some(rates)) => rates,
        (None, None) => LearningRate::Fixed(0.5).rates(config.networks),
    };
    check_learning_rates(&learning_rates)?;
    Ok(Population {
        params,
        learning_rates,
    })
}

/// The backend that ran, for reports.
#[derive(Clone, Debug, PartialEq)]
pub struct BackendInfo {
    /// "gpu" or "cpu".
    pub backend: &'static str,
    pub adapter: Option<AdapterSummary>,
    /// "fused" or "layered" on the GPU, "reference-f64" on the CPU.
    pub strategy: String,
    /// Why the run fell back to the CPU, when it did.
    pub note: Option<String>,
}

/// Opens the backend the configuration asks for. `Auto` falls back to the
/// CPU when no adapter exists, and says so.
pub fn open_backend(config: &RunConfig) -> Result<(Option<GpuContext>, BackendInfo), Error> {
    let cpu = |note| BackendInfo {
        backend: "cpu",
        adapter: None,
        strategy: "reference-f64".to_string(),
        note,
    };
    match config.backend {
        BackendChoice::Cpu => Ok((None, cpu(None))),
        BackendChoice::Gpu | BackendChoice::Auto => match GpuContext::open(&config.adapter) {
            Ok(ctx) => {
                let info = BackendInfo {
                    backend: "gpu",
                    adapter: Some(ctx.adapter.clone()),
                    strategy: choose_strategy(
                        &config.spec,
                        config.data.samples(),
                        config.strategy,
                    )?
                    .to_string(),
                    note: None,
                };
                Ok((Some(ctx), info))
            }
            Err(e @ Error::NoAdapter { .. }) if config.backend == BackendChoice::Auto => Ok((
                None,
                cpu(Some(format!("{e}; training on the CPU reference instead"))),
            )),
            Err(e) => Err(e),
        },
    }
}

/// Trains `population` in place, reporting progress between chunks. When
/// `stop` is requested the run ends early and each outcome records the
/// epochs its network completed.
pub fn train(
    config: &RunConfig,
    ctx: Option<&GpuContext>,
    population: &mut Population,
    progress: &mut dyn FnMut(&Progress),
    stop: &StopFlag,
) -> Result<(Vec<NetworkOutcome>, f64), Error> {
    config.options.validate()?;
    let started = Instant::now();
    let outcomes = match ctx {
        Some(ctx) => {
            let trainer = GpuTrainer::new(
                ctx,
                &config.spec,
                &config.data,
                config.networks,
                config.strategy,
                &config.gpu,
            )?;
            trainer
                .train(
                    &mut population.params,
                    &population.learning_rates,
                    &config.options,
                    &mut |p| {
                        progress(p);
                        match stop.is_requested() {
                            true => ControlFlow::Break(()),
                            false => ControlFlow::Continue(()),
                        }
                    },
                )?
                .outcomes
        }
        None => train_cpu_in_slices(config, population, progress, stop),
    };
    Ok((outcomes, started.elapsed().as_secs_f64()))
}

/// The CPU reference over slices of networks, so progress can be reported.
fn train_cpu_in_slices(
    config: &RunConfig,
    population: &mut Population,
    progress: &mut dyn FnMut(&Progress),
    stop: &StopFlag,
) -> Vec<NetworkOutcome> {
    let p = config.spec.layout().len;
    let total = population.learning_rates.len();
    let slice = (total / 100).max(rayon::current_num_threads() * 4).max(1);
    let mut report = Progress {
        network_epochs_done: 0,
        network_epochs_total: total as u64 * config.options.epochs,
    };
    let mut outcomes = Vec::with_capacity(total);
    for first in (0..total).step_by(slice) {
        let end = (first + slice).min(total);
        outcomes.extend(cpu::train_population_until(
            &config.spec,
            &config.data,
            &mut population.params[first * p..end * p],
            &population.learning_rates[first..end],
            &config.options,
            &|| stop.is_requested(),
        ));
        report.network_epochs_done += (end - first) as u64 * config.options.epochs;
        progress(&report);
    }
    outcomes
}
