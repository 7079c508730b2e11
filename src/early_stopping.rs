//! Early stopping on held-out loss (`--early-stopping PATIENCE`,
//! `--eval-every K`), as Keras's `EarlyStopping(monitor="val_loss",
//! patience=PATIENCE, restore_best_weights=True)` with `min_delta` 0.
//!
//! Every K epochs (and at the run's last epoch) each network's loss on the
//! held-out data is measured by the float64 reference on its current
//! parameters ([`crate::evaluation::held_out_losses`]). A loss below the network's best so far is its new best: the
//! parameters, optimizer state and outcome at that epoch are kept, and the
//! epoch is its `best_epoch`. A network whose best is PATIENCE or more
//! epochs old at a check stops there (`stopped_epoch`). At the end every
//! network that has a best is given back its best parameters and state, so
//! the weights written are those of a run to `best_epoch` (unlike Keras,
//! which restores only when it stopped early). A diverged network keeps
//! its outcome, as it would without early stopping; a network whose
//! held-out loss is never finite has no best and trains to the end.
//!
//! The run trains in segments that end at the checks, each going on from
//! where the last stopped, as a resume does ([`crate::run::execute`]): any
//! backend, with no kernel of its own. A check is a pass over the held-out
//! data for every network on the CPU and, on the GPU, a submission of its
//! own, so `--eval-every` trades the stop's precision for speed.

use crate::error::Error;
use crate::setting::settings::{EARLY_STOPPING, EVAL_EVERY};
use crate::training::NetworkOutcome;

/// The rule: stop a network once its held-out loss has not improved for
/// `patience` epochs, checked every `every` epochs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EarlyStopping {
    pub patience: u64,
    pub every: u64,
}

impl EarlyStopping {
    /// Refuses a patience or a check period of 0.
    pub fn validate(&self) -> Result<(), Error> {
        if self.patience == 0 {
            return Err(Error::Config(format!(
                "{}: the patience is at least 1 epoch",
                EARLY_STOPPING.is(0)
            )));
        }
        if self.every == 0 {
            return Err(Error::Config(format!(
                "{}: check the held-out loss every K epochs with K at least 1",
                EVAL_EVERY.is(0)
            )));
        }
        Ok(())
    }

    /// Whether the held-out loss is checked after `epoch` of a run of
    /// `epochs`: every `every`-th epoch, and the last.
    pub fn is_check(&self, epoch: u64, epochs: u64) -> bool {
        epoch > 0 && (epoch.is_multiple_of(self.every) || epoch == epochs)
    }

    /// The first check epoch after `after` in a run of `epochs`: the
    /// next multiple of `every`, or the last epoch.
    pub fn next_check(&self, after: u64, epochs: u64) -> u64 {
        let next = (after / self.every)
            .saturating_add(1)
            .saturating_mul(self.every);
        next.min(epochs)
    }
}

/// A group of networks' best epochs so far, with what they had then.
#[derive(Clone, Debug)]
pub struct Watch {
    params_per_network: usize,
    state_per_network: usize,
    best_loss: Vec<f64>,
    best_epoch: Vec<Option<u64>>,
    stopped_epoch: Vec<Option<u64>>,
    /// Each network's parameters, optimizer state and outcome at its best
    /// epoch.
    params: Vec<f64>,
    state: Vec<f64>,
    outcomes: Vec<Option<NetworkOutcome>>,
}

impl Watch {
    /// A watch over `networks` networks of `params_per_network` parameters
    /// and `state_per_network` optimizer state values each.
    pub fn new(networks: usize, params_per_network: usize, state_per_network: usize) -> Self {
        Self {
            params_per_network,
            state_per_network,
            best_loss: vec![f64::INFINITY; networks],
            best_epoch: vec![None; networks],
            stopped_epoch: vec![None; networks],
            params: vec![0.0; networks * params_per_network],
            state: vec![0.0; networks * state_per_network],
            outcomes: vec![None; networks],
        }
    }

    pub fn networks(&self) -> usize {
        self.best_epoch.len()
    }

    /// Network `n` stopped early.
    pub fn stopped(&self, n: usize) -> bool {
        self.stopped_epoch[n].is_some()
    }

    /// Every network's [`Self::stopped`].
    pub fn halted(&self) -> Vec<bool> {
        (0..self.networks()).map(|n| self.stopped(n)).collect()
    }

    pub fn best_epoch(&self, n: usize) -> Option<u64> {
        self.best_epoch[n]
    }

    pub fn stopped_epoch(&self, n: usize) -> Option<u64> {
        self.stopped_epoch[n]
    }

    /// Network `n`'s parameters at its best epoch, if it has one.
    pub fn best_params(&self, n: usize) -> Option<&[f64]> {
        let p = self.params_per_network;
        self.best_epoch[n].map(|_| &self.params[n * p..(n + 1) * p])
    }

    /// The check after `epoch`: `losses` are the held-out losses of the
    /// networks' current `params`, `state` and `outcomes` (NaN where not
    /// measured). A network neither diverged nor stopped improves on a
    /// loss below its best (keeping what it has now) or, its best
    /// `patience` or more epochs old, stops (not at the run's `last`
    /// epoch, where there is nothing left to stop).
    #[expect(
        clippy::too_many_arguments,
        reason = "a check reads every buffer of the group"
    )]
    pub fn check(
        &mut self,
        rule: &EarlyStopping,
        epoch: u64,
        last: bool,
        losses: &[f64],
        params: &[f64],
        state: &[f64],
        outcomes: &[NetworkOutcome],
    ) {
        let (p, s) = (self.params_per_network, self.state_per_network);
        for n in 0..self.networks() {
            if outcomes[n].diverged || self.stopped(n) {
                continue;
            }
            if losses[n] < self.best_loss[n] {
                self.best_loss[n] = losses[n];
                self.best_epoch[n] = Some(epoch);
                self.params[n * p..(n + 1) * p].copy_from_slice(&params[n * p..(n + 1) * p]);
                self.state[n * s..(n + 1) * s].copy_from_slice(&state[n * s..(n + 1) * s]);
                self.outcomes[n] = Some(outcomes[n]);
            } else if let Some(best) = self.best_epoch[n]
                && epoch - best >= rule.patience
                && !last
            {
                self.stopped_epoch[n] = Some(epoch);
            }
        }
    }

    /// Gives every network with a best that did not diverge its best
    /// parameters, optimizer state and final loss (its epochs and target
    /// epoch stay what the run made of them); a diverged network keeps its
    /// own, and has no best epoch.
    pub fn restore(
        &mut self,
        params: &mut [f64],
        state: &mut [f64],
        outcomes: &mut [NetworkOutcome],
    ) {
        let (p, s) = (self.params_per_network, self.state_per_network);
        for n in 0..self.networks() {
            let Some(best) = self.outcomes[n] else {
                continue;
            };
            if outcomes[n].diverged {
                self.best_epoch[n] = None;
                continue;
            }
            params[n * p..(n + 1) * p].copy_from_slice(&self.params[n * p..(n + 1) * p]);
            state[n * s..(n + 1) * s].copy_from_slice(&self.state[n * s..(n + 1) * s]);
            outcomes[n].final_loss = best.final_loss;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checks_fall_every_k_epochs_and_on_the_last() {
        let rule = EarlyStopping {
            patience: 3,
            every: 4,
        };
        let checks = |from: u64, epochs: u64| {
            let mut at = from;
            std::iter::from_fn(move || {
                (at < epochs).then(|| {
                    at = rule.next_check(at, epochs);
                    at
                })
            })
            .collect::<Vec<u64>>()
        };
        assert_eq!(checks(0, 10), vec![4, 8, 10]);
        assert_eq!(checks(0, 8), vec![4, 8]);
        assert_eq!(checks(5, 13), vec![8, 12, 13]);
        assert_eq!(checks(8, 8), Vec::<u64>::new());
        assert_eq!(rule.next_check(u64::MAX - 1, u64::MAX), u64::MAX);
        assert!(rule.is_check(8, 10) && rule.is_check(10, 10));
        assert!(!rule.is_check(0, 10) && !rule.is_check(9, 10));
        assert!(
            EarlyStopping {
                patience: 0,
                every: 1
            }
            .validate()
            .is_err()
        );
        assert!(
            EarlyStopping {
                patience: 1,
                every: 0
            }
            .validate()
            .is_err()
        );
    }

    fn outcome(loss: f64, diverged: bool) -> NetworkOutcome {
        NetworkOutcome {
            final_loss: loss,
            target_epoch: None,
            diverged,
            epochs_completed: 0,
        }
    }

    #[test]
    fn a_network_stops_patience_epochs_after_its_best_and_gets_it_back() {
        // As Keras with min_delta 0: an equal loss is no improvement.
        let rule = EarlyStopping {
            patience: 2,
            every: 1,
        };
        let mut watch = Watch::new(3, 1, 1);
        // Network 0 improves at 1 and 2, then not; network 1 keeps
        // improving; network 2 diverges at epoch 2.
        let held_out = [
            [0.5, 0.9, 0.3],
            [0.4, 0.8, f64::NAN],
            [0.4, 0.7, f64::NAN],
            [0.6, 0.6, f64::NAN],
            [0.1, 0.5, f64::NAN],
        ];
        for (k, losses) in held_out.iter().enumerate() {
            let epoch = k as u64 + 1;
            let params = [epoch as f64; 3];
            let state = [10.0 * epoch as f64; 3];
            let outcomes = [
                outcome(epoch as f64, false),
                outcome(epoch as f64, false),
                outcome(f64::NAN, epoch >= 2),
            ];
            watch.check(&rule, epoch, false, losses, &params, &state, &outcomes);
        }
        assert_eq!(watch.best_epoch(0), Some(2));
        assert_eq!(watch.stopped_epoch(0), Some(4), "2 epochs after its best");
        assert_eq!(watch.best_epoch(1), Some(5), "still improving: not stopped");
        assert_eq!(watch.stopped_epoch(1), None);
        assert_eq!(watch.best_epoch(2), Some(1));
        assert_eq!(watch.stopped_epoch(2), None, "diverged, not stopped");
        assert_eq!(watch.halted(), vec![true, false, false]);
        // Network 1's best is 2 epochs old at the run's last epoch: kept,
        // not stopped.
        let same = [0.9, 0.5, f64::NAN];
        let outcomes = [
            outcome(7.0, false),
            outcome(7.0, false),
            outcome(f64::NAN, true),
        ];
        watch.check(&rule, 7, true, &same, &[7.0; 3], &[70.0; 3], &outcomes);
        assert_eq!(watch.stopped_epoch(1), None, "nothing to stop at the end");
        let (mut params, mut state) = ([9.0; 3], [90.0; 3]);
        let mut outcomes = [
            outcome(9.0, false),
            outcome(9.0, false),
            outcome(f64::NAN, true),
        ];
        watch.restore(&mut params, &mut state, &mut outcomes);
        assert_eq!(params, [2.0, 5.0, 9.0]);
        assert_eq!(state, [20.0, 50.0, 90.0]);
        assert_eq!(outcomes[0].final_loss, 2.0);
        assert!(outcomes[2].diverged, "a diverged network keeps its outcome");
        assert_eq!(watch.best_epoch(2), None, "and has no best epoch");
    }
}
