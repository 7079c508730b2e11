//! Backend-independent training vocabulary: options for a run, the
//! population being trained, and what each network's run produced.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::Error;
use crate::setting::settings::{EPOCHS, STOP_AT_TARGET, TARGET_LOSS};

/// The largest epoch count a run accepts (epoch indices travel as `u32`).
pub const MAX_EPOCHS: u64 = u32::MAX as u64 - 1;

/// What a run does, apart from the model and the data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainOptions {
    /// Epochs to run: passes over the data, one update each (full batch).
    pub epochs: u64,
    /// Epochs the parameters and optimizer state have already been trained
    /// for (a resumed run): the run's epochs are numbered from here, and
    /// Adam's step count goes on from here.
    pub first_epoch: u64,
    /// Record the first epoch whose loss is at or below this.
    pub target_loss: Option<f64>,
    /// Stop updating a network once it reached `target_loss`.
    pub stop_at_target: bool,
}

/// Epochs of a run that names none: the headline run's.
pub const DEFAULT_EPOCHS: u64 = 20_000;

impl Default for TrainOptions {
    /// The headline run's: 20,000 epochs, no target.
    fn default() -> Self {
        Self {
            epochs: DEFAULT_EPOCHS,
            first_epoch: 0,
            target_loss: None,
            stop_at_target: false,
        }
    }
}

impl TrainOptions {
    pub fn validate(&self) -> Result<(), Error> {
        if self.epochs > MAX_EPOCHS {
            return Err(Error::Config(format!(
                "{} exceeds the maximum of {MAX_EPOCHS}",
                EPOCHS.is(self.epochs)
            )));
        }
        if self.first_epoch.saturating_add(self.epochs) > MAX_EPOCHS {
            return Err(Error::Config(format!(
                "{} epochs already trained plus {} exceed the maximum of {MAX_EPOCHS}",
                self.first_epoch,
                EPOCHS.is(self.epochs)
            )));
        }
        if let Some(t) = self.target_loss
            && !(t.is_finite() && t >= 0.0)
        {
            return Err(Error::Config(format!(
                "{} must be a finite number >= 0",
                TARGET_LOSS.is(t)
            )));
        }
        if self.stop_at_target && self.target_loss.is_none() {
            return Err(Error::Config(format!(
                "{STOP_AT_TARGET} needs {TARGET_LOSS}"
            )));
        }
        Ok(())
    }
}

/// What training produced for one network.
///
/// Epoch numbering: the loss "at epoch e" is the loss of the parameters after
/// `e` updates, so epoch 0 is the initial loss and epoch `epochs` the final.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NetworkOutcome {
    /// Loss of the final parameters (NaN or infinite when diverged).
    pub final_loss: f64,
    /// First epoch whose loss was at or below the target, if any.
    pub target_epoch: Option<u32>,
    /// A loss or parameter became NaN or infinite; updates stopped there.
    pub diverged: bool,
    /// Epochs of the run carried out: the run's epochs unless it was
    /// interrupted ([`StopFlag`]). A network that stopped at its target or
    /// diverged still counts the epochs the run went on for.
    pub epochs_completed: u64,
}

impl NetworkOutcome {
    /// A network a stop came before: it trained no epoch in this run and
    /// was not evaluated (its final loss NaN, not diverged). A resumed one
    /// keeps the epochs and target epoch it had.
    pub fn not_started(epochs_completed: u64, target_epoch: Option<u32>) -> Self {
        Self {
            final_loss: f64::NAN,
            target_epoch,
            diverged: false,
            epochs_completed,
        }
    }

    /// Whether the run evaluated the network ([`Self::not_started`]'s are
    /// not).
    pub fn evaluated(&self) -> bool {
        self.diverged || !self.final_loss.is_nan()
    }
}

/// Validates the learning rates of networks `first..`: finite and
/// positive. The error names the first bad network and its rate.
pub fn check_learning_rates(first: usize, learning_rates: &[f64]) -> Result<(), String> {
    for (i, &lr) in learning_rates.iter().enumerate() {
        if let Some(problem) = learning_rate_problem(lr) {
            // Extreme rates in exponent form (1e-50, not fifty digits).
            let shown = match lr != 0.0 && !(1e-4..1e16).contains(&lr.abs()) {
                true => format!("{lr:e}"),
                false => lr.to_string(),
            };
            return Err(format!(
                "learning rate of network {} is {shown}: {problem}",
                first + i
            ));
        }
    }
    Ok(())
}

/// Why `lr` cannot be a learning rate, if it cannot: it must be a finite
/// number > 0 whose float32 value is a normal number, since the GPU and
/// SIMD trainers train in float32 and every weights file keeps the rate
/// in float32 (1e-50 would be 0 there, training nothing; 1e300 infinite;
/// a subnormal rate loses its precision).
pub fn learning_rate_problem(lr: f64) -> Option<&'static str> {
    if !(lr.is_finite() && lr > 0.0) {
        return Some("it must be a finite number > 0");
    }
    let single = lr as f32;
    if single == 0.0 || single.is_subnormal() {
        return Some("it must be at least 1.2e-38, float32's smallest normal number");
    }
    if single.is_infinite() {
        return Some("it must be below 3.4e38, float32's largest number");
    }
    None
}

/// Where a run stands, reported between epoch chunks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    pub network_epochs_done: u64,
    pub network_epochs_total: u64,
}

/// Asks a running training to stop early (Ctrl-C): GPU trainers finish the
/// current submission, the CPU reference the current block of epochs, and
/// every outcome records the epochs its network completed.
#[derive(Clone, Debug, Default)]
pub struct StopFlag(Arc<AtomicBool>);

impl StopFlag {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn request(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    pub fn is_requested(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What a run measures of each trained network beyond its final loss
/// ([`crate::evaluation::block_metrics`] computes it; the history, the
/// outputs and the reports carry it, so it lives here, below them all).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct NetworkMetrics {
    /// Accuracy on the training data (class targets only).
    pub train_accuracy: Option<f64>,
    /// Loss on the held-out data.
    pub eval_loss: Option<f64>,
    /// Accuracy on the held-out data (class targets only).
    pub eval_accuracy: Option<f64>,
    /// The final loss as a mean over the training samples
    /// ([`crate::model::Reduction::per_sample`]), to compare with
    /// `eval_loss_per_sample` whatever the reduction.
    pub train_loss_per_sample: Option<f64>,
    /// The held-out loss as a mean over the held-out samples.
    pub eval_loss_per_sample: Option<f64>,
    /// With early stopping, the epoch of the lowest held-out loss, whose
    /// weights the network has ([`crate::early_stopping`]).
    pub best_epoch: Option<u64>,
    /// With early stopping, the epoch the network stopped at, if it did
    /// before the run's end.
    pub stopped_epoch: Option<u64>,
    /// With a resample, the loss on the rows the network never drew
    /// (its out-of-bag rows; none when it drew every row).
    pub oob_loss: Option<f64>,
    /// With a resample and class targets, the accuracy on its out-of-bag
    /// rows.
    pub oob_accuracy: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learning_rates_must_be_normal_float32_numbers() {
        for lr in [0.5, 1e-30, f32::MIN_POSITIVE as f64, 3e38] {
            assert_eq!(learning_rate_problem(lr), None, "{lr}");
        }
        for lr in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(
                learning_rate_problem(lr),
                Some("it must be a finite number > 0")
            );
        }
        // 0 in float32, then subnormal, then infinite.
        for lr in [1e-50, 1e-39, 1e-45] {
            assert!(
                learning_rate_problem(lr).unwrap().contains("1.2e-38"),
                "{lr}"
            );
        }
        assert!(learning_rate_problem(1e300).unwrap().contains("3.4e38"));
        let err = check_learning_rates(7, &[0.5, 1e-50]).unwrap_err();
        assert_eq!(
            err,
            "learning rate of network 8 is 1e-50: it must be at least 1.2e-38, float32's \
             smallest normal number"
        );
    }
}
