//! Which GPU strategy trains a run: `fused` (one invocation per network,
//! epochs looped inside the kernel) or `layered` (one dispatch per
//! operation across all networks), and the rule `auto` follows.

use std::fmt;
use std::ops::ControlFlow;
use std::str::FromStr;

use crate::data::Dataset;
use crate::error::Error;
use crate::gpu::device::GpuContext;
use crate::gpu::driver::{GpuOptions, GpuRun, train_chunked};
use crate::gpu::fused::{FusedTrainer, fused_supports};
use crate::gpu::layered::LayeredTrainer;
use crate::model::ModelSpec;
use crate::training::{NetworkOutcome, Progress, TrainOptions};

/// The strategy asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Strategy {
    /// [`choose_strategy`]'s rule.
    #[default]
    Auto,
    Fused,
    Layered,
}

impl FromStr for Strategy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "auto" => Ok(Strategy::Auto),
            "fused" => Ok(Strategy::Fused),
            "layered" => Ok(Strategy::Layered),
            _ => Err(Error::Config(format!(
                "unknown kernel strategy '{s}'; expected auto, fused or layered"
            ))),
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Strategy::Auto => "auto",
            Strategy::Fused => "fused",
            Strategy::Layered => "layered",
        })
    }
}

/// Resolves `requested` for `spec` on `samples` samples. `Auto` picks the
/// fused kernel wherever it can run ([`fused_supports`]: at most 1,024
/// parameters and 65,535 samples) and the layered kernels beyond. The rule
/// is measured (`gputrain bench` on lavapipe): fused was faster on every
/// standard workload, 8-32-8 on 64 samples included (8.8e4 vs 1.2e3
/// network-epochs/s; 2-2-2: 1.9e8 vs 6.9e5). `Fused` fails with a clear
/// error where it cannot run.
pub fn choose_strategy(
    spec: &ModelSpec,
    samples: usize,
    requested: Strategy,
) -> Result<Strategy, Error> {
    match requested {
        Strategy::Auto if fused_supports(spec, samples).is_ok() => Ok(Strategy::Fused),
        Strategy::Auto => Ok(Strategy::Layered),
        Strategy::Fused => fused_supports(spec, samples).map(|_| Strategy::Fused),
        Strategy::Layered => Ok(Strategy::Layered),
    }
}

/// A GPU trainer of either strategy.
pub enum GpuTrainer<'a> {
    Fused(FusedTrainer<'a>),
    Layered(LayeredTrainer<'a>),
}

impl<'a> GpuTrainer<'a> {
    /// Builds the trainer `requested` resolves to for `spec` on `data`.
    pub fn new(
        ctx: &'a GpuContext,
        spec: &ModelSpec,
        data: &Dataset,
        networks: usize,
        requested: Strategy,
        options: &GpuOptions,
    ) -> Result<Self, Error> {
        Ok(match choose_strategy(spec, data.samples(), requested)? {
            Strategy::Layered => {
                GpuTrainer::Layered(LayeredTrainer::new(ctx, spec, data, networks, options)?)
            }
            _ => GpuTrainer::Fused(FusedTrainer::new(ctx, spec, data, networks, options)?),
        })
    }

    /// "fused" or "layered".
    pub fn strategy(&self) -> Strategy {
        match self {
            GpuTrainer::Fused(_) => Strategy::Fused,
            GpuTrainer::Layered(_) => Strategy::Layered,
        }
    }

    /// Networks resident at once.
    pub fn capacity(&self) -> usize {
        match self {
            GpuTrainer::Fused(t) => t.capacity(),
            GpuTrainer::Layered(t) => t.capacity(),
        }
    }

    /// Trains every network in place; see the strategies' `train`.
    pub fn train(
        &self,
        params: &mut [f64],
        learning_rates: &[f64],
        options: &TrainOptions,
        gpu: &GpuOptions,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<Vec<NetworkOutcome>, Error> {
        self.run(params, learning_rates, options, gpu, progress)
            .map(|r| r.outcomes)
    }

    /// Like [`GpuTrainer::train`], also giving the kernel time when
    /// [`GpuOptions::kernel_timing`] asks for it.
    pub fn run(
        &self,
        params: &mut [f64],
        learning_rates: &[f64],
        options: &TrainOptions,
        gpu: &GpuOptions,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<GpuRun, Error> {
        match self {
            GpuTrainer::Fused(t) => {
                train_chunked(t, params, learning_rates, options, gpu, progress)
            }
            GpuTrainer::Layered(t) => {
                train_chunked(t, params, learning_rates, options, gpu, progress)
            }
        }
    }

    /// The layered variant, for the layered strategy.
    pub fn layered_variant(&self) -> Option<crate::gpu::LayeredVariant> {
        match self {
            GpuTrainer::Fused(_) => None,
            GpuTrainer::Layered(t) => Some(t.variant()),
        }
    }
}
