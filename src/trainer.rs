//! The one seam every backend trains through: a [`Trainer`] takes a block
//! of networks (parameters, optimizer state, learning rates), trains it
//! for a run's epochs while reporting progress to one callback that may
//! ask it to stop, and gives back each network's outcome, the block's
//! learning curves and the device time. The GPU trainer
//! ([`crate::gpu::GpuTrainer`]), the float32 SIMD trainer
//! ([`crate::simd::SimdTrainer`]) and the float64 reference
//! ([`crate::cpu::ReferenceTrainer`]) implement it;
//! [`crate::backend::Engine::trainer`] builds the one a run asks for, so
//! the run, the benchmark, the agreement suite and the criterion benches
//! hold no backend switch of their own.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use crate::error::Error;
use crate::recording::HistoryBlock;
use crate::training::{NetworkOutcome, Progress, TrainOptions};

/// A block of networks to train in place.
pub struct Block<'a> {
    /// Parameter vectors back to back; they receive the trained ones.
    pub params: &'a mut [f64],
    /// Optimizer state network after network,
    /// [`crate::vocab::OptimizerConfig::state_slots`] x parameters each (a
    /// resumed run passes the state it was stopped with; zeros are fresh).
    pub state: &'a mut [f64],
    /// One base learning rate per network.
    pub learning_rates: &'a [f64],
    /// With a resample ([`crate::model::ModelSpec::resample`]): each
    /// network's count of every training row, network after network
    /// ([`crate::resample`]); a row's loss and delta are weighted by
    /// `count x S / m`. `None`: every row once.
    pub rows: Option<&'a [u8]>,
}

/// What a block's training gave.
#[derive(Clone, Debug, PartialEq)]
pub struct Trained {
    /// One per network, in block order. `epochs_completed` counts this
    /// call's epochs (fewer than asked when stopped).
    pub outcomes: Vec<NetworkOutcome>,
    /// The loop points of every network's learning curves, when the
    /// trainer was built to record them, not yet completed
    /// ([`HistoryBlock::complete`]).
    pub history: Option<HistoryBlock>,
    /// Device time inside the training passes, where the backend measures
    /// it (GPU timestamp queries).
    pub kernel_seconds: Option<f64>,
}

impl Trained {
    /// Which networks no longer train from run epoch `at` on: diverged,
    /// stopped at their target before `at` (with `stop_at_target`), or
    /// `halted` by the run (early stopping; empty: none).
    pub fn finished(&self, stop_at_target: bool, at: u64, halted: &[bool]) -> Vec<bool> {
        let stopped = |t: Option<u32>| stop_at_target && t.is_some_and(|t| u64::from(t) < at);
        self.outcomes
            .iter()
            .enumerate()
            .map(|(n, o)| o.diverged || stopped(o.target_epoch) || halted.get(n) == Some(&true))
            .collect()
    }

    /// This call's training followed by `later`'s, which trained the same
    /// block on from where this one ended (a run in segments, as a resume
    /// continues): each network's epochs add up; a network that had
    /// finished before `later` (diverged, or stopped at its target with
    /// `stop_at_target`) keeps this call's outcome and curve, as one
    /// uninterrupted call would have left them; the others take `later`'s
    /// outcome with their first target epoch, and the curve points
    /// `later` recorded. `later` started at run epoch `at`: a network that
    /// reached its target exactly there (at this call's last check) is
    /// still running for it, as it was in one call, which records that
    /// epoch's point before it stops. A network `halted` marks (stopped
    /// by the run before `later`: early stopping) is finished too.
    pub fn then(
        mut self,
        later: Trained,
        stop_at_target: bool,
        at: u64,
        halted: &[bool],
    ) -> Trained {
        assert_eq!(self.outcomes.len(), later.outcomes.len(), "the same block");
        let finished = self.finished(stop_at_target, at, halted);
        for ((before, after), &done) in self.outcomes.iter_mut().zip(&later.outcomes).zip(&finished)
        {
            let epochs_completed = before.epochs_completed + after.epochs_completed;
            if !done {
                *before = NetworkOutcome {
                    target_epoch: before.target_epoch.or(after.target_epoch),
                    ..*after
                };
            }
            before.epochs_completed = epochs_completed;
        }
        if let (Some(curves), Some(more)) = (&mut self.history, &later.history) {
            curves.continue_with(more, &finished);
        }
        let seconds = match (self.kernel_seconds, later.kernel_seconds) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
        self.kernel_seconds = seconds;
        self
    }
}

/// Progress and stop in one: called with the network-epochs done so far
/// (at least every [`PROGRESS_EVERY`] on the CPU trainers, after every
/// submission on the GPU); `Break` asks the trainer to stop, after which
/// every network's outcome records the epochs it completed.
pub type Control<'a> = dyn FnMut(&Progress) -> ControlFlow<()> + 'a;

/// A backend that trains blocks of networks for one model, data set and
/// recording, fixed when it was built.
pub trait Trainer {
    /// What trains, as tables name it: "fused", "layered/direct",
    /// "simd-f32/avx512", "reference-f64".
    fn label(&self) -> String;

    /// Trains `block` in place for `options.epochs` epochs from
    /// `options.first_epoch`.
    fn train(
        &self,
        block: Block<'_>,
        options: &TrainOptions,
        control: &mut Control<'_>,
    ) -> Result<Trained, Error>;
}

/// A control that never stops and ignores progress.
pub fn uncontrolled(_: &Progress) -> ControlFlow<()> {
    ControlFlow::Continue(())
}

/// How often the CPU trainers report progress.
pub const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// What a CPU trainer's workers share with the thread that reports:
/// network-epochs done and whether to stop.
#[derive(Default)]
pub struct Shared {
    done: AtomicU64,
    stop: AtomicBool,
}

impl Shared {
    /// Counts `network_epochs` more done.
    pub fn add_done(&self, network_epochs: u64) {
        self.done.fetch_add(network_epochs, Ordering::Relaxed);
    }

    /// Whether the control asked to stop.
    pub fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// Runs `work` on a scoped worker thread (which may fan out further, e.g.
/// into a rayon pool) while this thread calls `control` every
/// [`PROGRESS_EVERY`] with `total` and the network-epochs `work` counted
/// in its [`Shared`]; a `Break` sets [`Shared::stopping`]. `control` is
/// asked once before `work` starts (so a stop already requested is heard
/// before the first epoch) and sees a last report when `work` returns.
pub fn drive<R: Send>(
    total: u64,
    control: &mut Control<'_>,
    work: impl FnOnce(&Shared) -> R + Send,
) -> R {
    let shared = Shared::default();
    let report = |control: &mut Control<'_>, done: u64| {
        let progress = Progress {
            network_epochs_done: done.min(total),
            network_epochs_total: total,
        };
        if control(&progress).is_break() {
            shared.stop.store(true, Ordering::Relaxed);
        }
    };
    // A control that already says stop is heard before any epoch.
    report(control, 0);
    let result = std::thread::scope(|scope| {
        let (send, receive) = mpsc::channel();
        let shared = &shared;
        scope.spawn(move || {
            // The receiver waits for this; it cannot be gone.
            let _ = send.send(work(shared));
        });
        loop {
            match receive.recv_timeout(PROGRESS_EVERY) {
                Ok(result) => break Some(result),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    report(control, shared.done.load(Ordering::Relaxed))
                }
                // The worker panicked; the scope re-raises it.
                Err(mpsc::RecvTimeoutError::Disconnected) => break None,
            }
        }
    });
    let result = result.expect("the worker's panic is raised by the scope");
    let done = shared.done.load(Ordering::Relaxed);
    report(control, if shared.stopping() { done } else { total });
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drive_reports_progress_and_passes_a_stop_to_the_worker() {
        let mut seen = Vec::new();
        let mut control = |p: &Progress| {
            seen.push(p.network_epochs_done);
            match p.network_epochs_done >= 3 {
                true => ControlFlow::Break(()),
                false => ControlFlow::Continue(()),
            }
        };
        let steps = drive(100, &mut control, |shared| {
            let mut steps = 0;
            while !shared.stopping() {
                shared.add_done(1);
                steps += 1;
                std::thread::sleep(PROGRESS_EVERY / 2);
            }
            steps
        });
        assert!(steps >= 3, "the worker ran until the stop: {steps} steps");
        assert!(seen.len() >= 2, "{seen:?}");
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        assert!(*seen.last().unwrap() < 100, "a stopped run is not all done");
    }

    #[test]
    fn drive_ends_with_everything_done() {
        let mut last = None;
        let mut control = |p: &Progress| {
            last = Some((p.network_epochs_done, p.network_epochs_total));
            ControlFlow::Continue(())
        };
        assert_eq!(drive(7, &mut control, |_| 42), 42);
        assert_eq!(last, Some((7, 7)));
    }
}
