//! What trains a run: the backend resolved for a model ([`Backend`]), the
//! device opened for it ([`Engine`]), and the one place a
//! [`Trainer`] is built for either ([`Engine::trainer`]). Everything
//! above (the run, the benchmark, the tests, the criterion benches)
//! trains through the [`Trainer`] this gives and holds no backend switch.

use std::fmt;
use std::sync::Arc;

use crate::cpu::ReferenceTrainer;
use crate::data::Dataset;
use crate::error::Error;
use crate::gpu::{GpuContext, GpuOptions, GpuTrainer, Strategy, choose_strategy};
use crate::model::ModelSpec;
use crate::recording::Recording;
use crate::simd::{Isa, SimdTrainer};
use crate::trainer::Trainer;
use crate::weights::Precision;

/// The backend that trains a model, resolved: the GPU with the strategy
/// the model gets there (`Fused` or `Layered`, never `Auto`), the float32
/// SIMD trainer with its instruction set, or the float64 reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Gpu(Strategy),
    Simd(Isa),
    Reference,
}

impl Backend {
    /// "gpu" or "cpu", as summaries and weights files say it.
    pub fn device_kind(self) -> &'static str {
        match self {
            Backend::Gpu(_) => "gpu",
            Backend::Simd(_) | Backend::Reference => "cpu",
        }
    }

    /// "fused" or "layered" on the GPU; "simd-f32" or "reference-f64" on
    /// the CPU. (The SIMD trainer's results do not depend on its
    /// instruction set, so the name leaves it out.)
    pub fn strategy_name(self) -> &'static str {
        match self {
            Backend::Gpu(Strategy::Layered) => "layered",
            Backend::Gpu(_) => "fused",
            Backend::Simd(_) => "simd-f32",
            Backend::Reference => "reference-f64",
        }
    }

    /// The precision it trains in, which its weights files keep.
    pub fn precision(self) -> Precision {
        match self {
            Backend::Reference => Precision::F64,
            Backend::Gpu(_) | Backend::Simd(_) => Precision::F32,
        }
    }
}

impl fmt::Display for Backend {
    /// "gpu fused", "cpu simd-f32", "cpu reference-f64".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.device_kind(), self.strategy_name())
    }
}

/// A device opened to train on: a GPU, or one of the CPU trainers.
#[derive(Clone)]
pub enum Engine {
    Gpu(Arc<GpuContext>),
    /// The float32 SIMD trainer, compiled for this instruction set.
    Simd(Isa),
    /// The float64 reference.
    Reference,
}

/// What a trainer is built for.
#[derive(Clone, Copy)]
pub struct TrainerSetup<'a> {
    pub spec: &'a ModelSpec,
    pub data: &'a Dataset,
    /// Networks trained at once: the GPU's buffers are sized for this
    /// many (fewer where the adapter's limits say so; a larger block is
    /// trained in chunks).
    pub networks: usize,
    /// Learning curves to record.
    pub recording: Option<&'a Recording<'a>>,
    /// The GPU strategy asked for (`Auto`: [`choose_strategy`]'s rule).
    pub strategy: Strategy,
    pub gpu: &'a GpuOptions,
    /// The CPU trainers' threads; `None`: one per core.
    pub threads: Option<usize>,
}

impl<'a> TrainerSetup<'a> {
    /// A setup with the defaults: no curves, strategy by the rule, default
    /// GPU options, a thread per core.
    pub fn new(spec: &'a ModelSpec, data: &'a Dataset, networks: usize) -> Self {
        static DEFAULT_GPU: std::sync::OnceLock<GpuOptions> = std::sync::OnceLock::new();
        Self {
            spec,
            data,
            networks,
            recording: None,
            strategy: Strategy::Auto,
            gpu: DEFAULT_GPU.get_or_init(GpuOptions::default),
            threads: None,
        }
    }
}

impl Engine {
    /// The backend this engine trains `spec` on `samples` samples with,
    /// `requested` the GPU strategy asked for.
    pub fn backend(
        &self,
        spec: &ModelSpec,
        samples: usize,
        requested: Strategy,
    ) -> Result<Backend, Error> {
        Ok(match self {
            Engine::Gpu(ctx) => {
                Backend::Gpu(choose_strategy(spec, samples, requested, &ctx.quirks)?)
            }
            Engine::Simd(isa) => Backend::Simd(*isa),
            Engine::Reference => Backend::Reference,
        })
    }

    /// Builds the trainer for `setup` on this device: the one backend
    /// switch of the crate.
    pub fn trainer<'a>(&'a self, setup: &TrainerSetup<'a>) -> Result<Box<dyn Trainer + 'a>, Error> {
        let TrainerSetup {
            spec,
            data,
            recording,
            ..
        } = *setup;
        Ok(match self {
            Engine::Gpu(ctx) => Box::new(GpuTrainer::recording(
                ctx,
                spec,
                data,
                setup.networks,
                setup.strategy,
                setup.gpu,
                recording,
            )?),
            Engine::Simd(isa) => Box::new(SimdTrainer {
                spec,
                data,
                recording,
                isa: *isa,
                pool: cpu_pool(setup.threads)?,
            }),
            Engine::Reference => Box::new(ReferenceTrainer {
                spec,
                data,
                recording,
                pool: cpu_pool(setup.threads)?,
            }),
        })
    }
}

impl Engine {
    /// The row names of a benchmark on this engine: the adapter and its
    /// wgpu backend (e.g. "Vulkan"), or the processor's model with the
    /// CPU trainers' threads and "cpu".
    pub fn device_names(&self) -> (String, String) {
        match self {
            Engine::Gpu(ctx) => (ctx.adapter.name.clone(), ctx.adapter.backend.clone()),
            Engine::Simd(_) | Engine::Reference => (cpu_name(cpu_threads(None).0), "cpu".into()),
        }
    }
}

/// The processor's model name (Linux) and `threads` worker threads.
pub fn cpu_name(threads: usize) -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, name)| name.trim().to_string())
        })
        .unwrap_or_else(|| "CPU".to_string());
    format!("{model}, {threads} threads")
}

/// The CPU trainers' threads: `requested` (`--threads`), at most one per
/// core; `None`: one per core. Gives the count and a note when the
/// request was lowered.
pub fn cpu_threads(requested: Option<usize>) -> (usize, Option<String>) {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    match requested {
        Some(n) if n > cores => (
            cores,
            Some(format!(
                "{}: this machine runs {cores} threads at once; using {cores}",
                crate::setting::settings::THREADS.is(n)
            )),
        ),
        Some(n) => (n.max(1), None),
        None => (cores, None),
    }
}

/// The CPU trainers' thread pool, of [`cpu_threads`]`(requested)` threads.
pub fn cpu_pool(requested: Option<usize>) -> Result<rayon::ThreadPool, Error> {
    rayon::ThreadPoolBuilder::new()
        .num_threads(cpu_threads(requested).0)
        .build()
        .map_err(|e| Error::Config(format!("cannot start the CPU trainers' threads: {e}")))
}
