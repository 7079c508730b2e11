//! The one public way to train on the GPU: [`GpuTrainer`], built for a
//! run from the strategy asked for (`fused`: one invocation per network,
//! epochs looped inside the kernel; `layered`: one dispatch per operation
//! across all networks) and the rule `auto` follows.

use clap::ValueEnum;

use crate::data::Dataset;
use crate::error::Error;
use crate::gpu::device::GpuContext;
use crate::gpu::driver::train_chunked;
use crate::gpu::fused::{FusedTrainer, fused_supports};
use crate::gpu::layered::LayeredTrainer;
use crate::gpu::options::{GpuOptions, LayeredVariant};
use crate::gpu::quirks::AdapterQuirks;
use crate::model::ModelSpec;
use crate::recording::Recording;
use crate::trainer::{Block, Control, Trained, Trainer};
use crate::training::TrainOptions;

/// The strategy asked for.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum Strategy {
    /// [`choose_strategy`]'s rule.
    #[default]
    Auto,
    Fused,
    Layered,
}

crate::display_as_value_name!(Strategy);

/// Resolves `requested` for `spec` on `samples` samples on an adapter with
/// `quirks`. `Auto` picks the fused kernel wherever it can run
/// ([`fused_supports`]: at most 1,024 parameters, and on llvmpipe 65,535
/// samples) and the layered kernels beyond. The rule
/// is measured (`gputrain bench` on lavapipe): fused was faster on every
/// standard workload, 8-32-8 on 64 samples included (8.8e4 vs 1.2e3
/// network-epochs/s; 2-2-2: 1.9e8 vs 6.9e5). `Fused` fails with a clear
/// error where it cannot run.
pub fn choose_strategy(
    spec: &ModelSpec,
    samples: usize,
    requested: Strategy,
    quirks: &AdapterQuirks,
) -> Result<Strategy, Error> {
    match requested {
        Strategy::Auto if fused_supports(spec, samples, quirks).is_ok() => Ok(Strategy::Fused),
        Strategy::Auto => Ok(Strategy::Layered),
        Strategy::Fused => fused_supports(spec, samples, quirks).map(|_| Strategy::Fused),
        Strategy::Layered => Ok(Strategy::Layered),
    }
}

enum Kernel<'a> {
    Fused(FusedTrainer<'a>),
    Layered(LayeredTrainer<'a>),
}

/// Trains a population on the GPU with the strategy chosen for the run;
/// pipelines and buffers are built once, in [`GpuTrainer::new`].
pub struct GpuTrainer<'a> {
    kernel: Kernel<'a>,
    options: GpuOptions,
    /// Optimizer state values per parameter.
    state_slots: usize,
}

impl<'a> GpuTrainer<'a> {
    /// Builds the trainer `requested` resolves to for `spec` on `data`,
    /// with buffers for up to `networks` networks at once (fewer if the
    /// adapter's limits say so).
    pub fn new(
        ctx: &'a GpuContext,
        spec: &ModelSpec,
        data: &Dataset,
        networks: usize,
        requested: Strategy,
        options: &GpuOptions,
    ) -> Result<Self, Error> {
        Self::recording(ctx, spec, data, networks, requested, options, None)
    }

    /// [`GpuTrainer::new`] for a trainer that also records learning curves
    /// ([`crate::history`]) into [`Trained::history`].
    pub fn recording(
        ctx: &'a GpuContext,
        spec: &ModelSpec,
        data: &Dataset,
        networks: usize,
        requested: Strategy,
        options: &GpuOptions,
        recording: Option<&Recording>,
    ) -> Result<Self, Error> {
        spec.validate()?;
        let kernel = match choose_strategy(spec, data.samples(), requested, &ctx.quirks)? {
            Strategy::Layered => Kernel::Layered(LayeredTrainer::new(
                ctx, spec, data, networks, options, recording,
            )?),
            _ => Kernel::Fused(FusedTrainer::new(
                ctx, spec, data, networks, options, recording,
            )?),
        };
        Ok(Self {
            kernel,
            options: options.clone(),
            state_slots: spec.optimizer.state_slots(),
        })
    }

    /// The strategy built: fused or layered.
    pub fn strategy(&self) -> Strategy {
        match self.kernel {
            Kernel::Fused(_) => Strategy::Fused,
            Kernel::Layered(_) => Strategy::Layered,
        }
    }

    /// The layered variant, for the layered strategy.
    pub fn layered_variant(&self) -> Option<LayeredVariant> {
        match &self.kernel {
            Kernel::Fused(_) => None,
            Kernel::Layered(t) => Some(t.variant()),
        }
    }
}

impl Trainer for GpuTrainer<'_> {
    fn label(&self) -> String {
        match self.layered_variant() {
            Some(variant) => format!("layered/{variant}"),
            None => self.strategy().to_string(),
        }
    }

    /// Submits the epochs in chunks ([`crate::gpu::chunking`]); `control`
    /// is called after every submission and a `Break` submits no more.
    /// Gives the kernel time when [`GpuOptions::kernel_timing`] asks.
    fn train(
        &self,
        block: Block<'_>,
        options: &TrainOptions,
        control: &mut Control<'_>,
    ) -> Result<Trained, Error> {
        assert_eq!(
            block.state.len(),
            self.state_slots * block.params.len(),
            "optimizer state slots x parameters"
        );
        let gpu = &self.options;
        match &self.kernel {
            Kernel::Fused(t) => train_chunked(t, block, options, gpu, control),
            Kernel::Layered(t) => train_chunked(t, block, options, gpu, control),
        }
    }
}
