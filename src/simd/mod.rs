//! The float32 SIMD trainer for the CPU (`--backend simd`): networks side
//! by side in vector lanes ([`Isa::lanes`] per group, struct of arrays),
//! each group's whole epoch loop run by one core with everything in L1,
//! groups spread over a rayon pool. It trains everything the GPU kernels
//! train (every activation, loss, optimizer, bias mode, minibatches,
//! targets, learning curves, Ctrl-C, resume) and reports the same
//! outcomes; `--backend auto` picks it when the machine has no hardware
//! GPU (only software adapters such as lavapipe, or none).
//!
//! Every network's lane sees exactly the same operations whatever the
//! group, the thread or the instruction set ([`Isa`]), so results are
//! bit-identical across thread counts, chunkings and machines' vector
//! widths (`tests/simd.rs`).

mod dispatch;
pub mod kernel;
pub mod lanes;

use rayon::prelude::*;

use crate::data::Dataset;
use crate::error::Error;
use crate::model::ModelSpec;
use crate::recording::{HistoryBlock, NetworkCurve, Recording};
use crate::trainer::{Block, Control, Shared, Trained, Trainer, drive};
use crate::training::{NetworkOutcome, TrainOptions};

pub use dispatch::{ISA_VARIABLE, Isa};
use kernel::{Epochs, Group, GroupOutcome, Plan, Samples};
use lanes::{AVX512_LANES, Lanes, NARROW_LANES, SMALL_LANES, group_width};

/// The most epochs of a learning-rate schedule's table a call computes
/// ahead for its groups (8 MiB of float32 pairs).
pub const SCHEDULE_TABLE_EPOCHS: u64 = 1 << 20;

/// The trainer for one run's model, data and curves.
pub struct SimdTrainer<'a> {
    pub spec: &'a ModelSpec,
    pub data: &'a Dataset,
    /// Learning curves to record ([`crate::history`]).
    pub recording: Option<&'a Recording<'a>>,
    /// The instruction set the groups are compiled for
    /// ([`Isa::detect`]: the widest this processor has).
    pub isa: Isa,
    /// The threads groups are spread over.
    pub pool: rayon::ThreadPool,
}

impl Trainer for SimdTrainer<'_> {
    fn label(&self) -> String {
        format!("simd-f32/{}", self.isa.name())
    }

    /// Trains the block's groups of networks over the pool. Once
    /// `control` answers `Break` every group ends within
    /// [`kernel::STOP_CHECK_EPOCHS`] epochs (fewer for large networks) and
    /// records the epochs it completed.
    fn train(
        &self,
        block: Block<'_>,
        options: &TrainOptions,
        control: &mut Control<'_>,
    ) -> Result<Trained, Error> {
        options.validate()?;
        let networks = block.learning_rates.len();
        let plan = Plan::new(
            self.spec,
            Samples::new(self.data),
            self.recording.and_then(|r| r.eval).map(Samples::new),
            self.recording.map(|r| r.plan),
            options.target_loss,
            options.stop_at_target,
        );
        let (p, slots) = (plan.params, plan.slots());
        assert_eq!(
            block.params.len(),
            networks * p,
            "one parameter vector per rate"
        );
        assert_eq!(
            block.state.len(),
            networks * slots * p,
            "slots x parameters each"
        );
        let threads = self.pool.current_num_threads();
        let total = networks as u64 * options.epochs;
        Ok(drive(total, control, |shared| {
            match group_width(self.isa.lanes(), networks, threads, self.spec) {
                AVX512_LANES => self.train_in::<AVX512_LANES>(&plan, block, options, shared),
                NARROW_LANES => self.train_in::<NARROW_LANES>(&plan, block, options, shared),
                _ => self.train_in::<SMALL_LANES>(&plan, block, options, shared),
            }
        }))
    }
}

impl SimdTrainer<'_> {
    /// [`Trainer::train`] in groups of `L`, on the pool.
    fn train_in<const L: usize>(
        &self,
        plan: &Plan,
        block: Block<'_>,
        options: &TrainOptions,
        shared: &Shared,
    ) -> Trained {
        let Block {
            params,
            state,
            learning_rates,
            rows,
        } = block;
        let samples = self.data.samples();
        let scale = self.spec.resample.map_or(1.0, |r| r.scale(samples) as f32);
        let networks = learning_rates.len();
        let (p, slots) = (plan.params, plan.slots());
        let (params_in, state_in): (&[f64], &[f64]) = (params, state);
        let stop = || shared.stopping();
        // A schedule's pairs of the run's first epochs, computed once for
        // every group (a cosine per epoch and group measured 10% of the
        // headline run); epochs beyond the table compute theirs.
        let rates = plan.schedule_table(
            options.first_epoch,
            options.epochs.min(SCHEDULE_TABLE_EPOCHS),
        );
        let trained = self.pool.install(|| {
            (0..networks.div_ceil(L))
                .into_par_iter()
                .map(|g| {
                    let first = g * L;
                    let count = L.min(networks - first);
                    let mut lanes = GroupLanes::<L>::gather(
                        plan,
                        &params_in[first * p..(first + count) * p],
                        &state_in[first * slots * p..(first + count) * slots * p],
                        &learning_rates[first..first + count],
                    );
                    let mut curves: Vec<NetworkCurve> = match self.recording {
                        Some(r) => vec![NetworkCurve::new(&r.plan); count],
                        None => Vec::new(),
                    };
                    let report = |epochs: u64| shared.add_done(epochs * count as u64);
                    let epochs = Epochs {
                        first: options.first_epoch,
                        count: options.epochs,
                        stop: &stop,
                        done: &report,
                        rates: &rates,
                    };
                    // Each sample's weight in every lane; padding lanes
                    // repeat the group's first network, as their values do.
                    let weights: Option<Vec<Lanes<L>>> = rows.map(|rows| {
                        (0..samples)
                            .map(|s| {
                                Lanes(std::array::from_fn(|i| {
                                    let n = first + if i < count { i } else { 0 };
                                    f32::from(rows[n * samples + s]) * scale
                                }))
                            })
                            .collect()
                    });
                    let mut group = Group {
                        params: &mut lanes.params,
                        state: &mut lanes.state,
                        learning_rate: lanes.learning_rate,
                        weights: weights.as_deref(),
                        curves: &mut curves,
                    };
                    let outcome = self.isa.train_group(plan, &mut group, &epochs);
                    (lanes, outcome, curves)
                })
                .collect::<Vec<_>>()
        });
        let mut outcomes = Vec::with_capacity(networks);
        let mut curves = Vec::new();
        for (g, (lanes, outcome, group_curves)) in trained.into_iter().enumerate() {
            let first = g * L;
            let count = L.min(networks - first);
            lanes.scatter(
                plan,
                &mut params[first * p..(first + count) * p],
                &mut state[first * slots * p..(first + count) * slots * p],
            );
            outcomes.extend((0..count).map(|i| lane_outcome(&outcome, i)));
            curves.extend(group_curves);
        }
        Trained {
            outcomes,
            history: self
                .recording
                .map(|r| HistoryBlock::from_curves(&r.plan, &curves)),
            kernel_seconds: None,
        }
    }
}

/// Lane `i`'s outcome.
fn lane_outcome<const L: usize>(outcome: &GroupOutcome<L>, i: usize) -> NetworkOutcome {
    NetworkOutcome {
        final_loss: f64::from(outcome.final_loss.0[i]),
        target_epoch: outcome.target_epoch[i],
        diverged: outcome.diverged[i],
        epochs_completed: outcome.epochs_completed,
    }
}

/// One group's values in lanes, gathered from and scattered back to the
/// network-after-network float64 layout the rest of the crate uses. The
/// lanes past the last network (the remainder of a population that is
/// not a multiple of `L`) repeat the group's first network, so they
/// compute ordinary values, and are dropped on the way back.
struct GroupLanes<const L: usize> {
    params: Vec<Lanes<L>>,
    state: Vec<Lanes<L>>,
    learning_rate: Lanes<L>,
}

impl<const L: usize> GroupLanes<L> {
    fn gather(plan: &Plan, params: &[f64], state: &[f64], rates: &[f64]) -> Self {
        let (p, slots) = (plan.params, plan.slots());
        let source = |lane: usize| if lane < rates.len() { lane } else { 0 };
        let lanes_of = |values: &[f64], per: usize| -> Vec<Lanes<L>> {
            (0..per)
                .map(|v| Lanes(std::array::from_fn(|i| values[source(i) * per + v] as f32)))
                .collect()
        };
        Self {
            params: lanes_of(params, p),
            state: lanes_of(state, slots * p),
            learning_rate: Lanes(std::array::from_fn(|i| rates[source(i)] as f32)),
        }
    }

    /// Writes the trained values back: the parameters training changes
    /// (a frozen bias keeps its float64 value exactly) and the state.
    fn scatter(&self, plan: &Plan, params: &mut [f64], state: &mut [f64]) {
        let (p, slots) = (plan.params, plan.slots());
        let count = params.len() / p;
        for n in 0..count {
            for &v in plan.trainable() {
                params[n * p + v] = f64::from(self.params[v].0[n]);
            }
            for v in 0..slots * p {
                state[n * slots * p + v] = f64::from(self.state[v].0[n]);
            }
        }
    }
}
