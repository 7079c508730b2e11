//! Per-network data (`--bootstrap`, `--subsample F`): network `i` trains
//! on its own resample of the training rows, drawn from the key
//! (`--data-seed`, replicate `i`) alone, so any network can be re-trained
//! by itself, on any backend, in any shard.
//!
//! - Bootstrap: `S` draws with replacement from the `S` training rows
//!   (scikit-learn's `BaggingClassifier(bootstrap=True, max_samples=1.0)`).
//! - Subsample: `m = round(F x S)` rows without replacement
//!   (`bootstrap=False, max_samples=F`).
//!
//! A resample is kept as one count per row and network (how many times the
//! row was drawn: 0, 1, 2, ...; one byte each), never as a copy of the
//! data: every network still reads the shared rows, and a row's loss and
//! its output delta are multiplied by the row's weight `count x S / m`.
//! So the loss of the whole data is the loss of the resample: with the
//! mean reduction `sum(count x loss) / m`, the mean over the `m` drawn
//! rows; with the sum, `S / m` times their sum (the sum over `S` rows, as
//! the data's own). With minibatches an epoch still visits the `S` rows in
//! the shared order, a batch's loss being the weighted mean over its rows
//! (divided by the batch size, as without resampling); over an epoch the
//! updates sum the resample's gradient as batches drawn from it would.
//! Rows a network never drew (count 0) are its out-of-bag rows, on which
//! its `oob_loss` and `oob_accuracy` are measured after training.

use std::fmt;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::error::Error;
use crate::setting::settings::SUBSAMPLE;

/// How each network's rows are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Resample {
    /// As many draws as rows, with replacement.
    Bootstrap,
    /// This fraction of the rows, without replacement.
    Subsample(f64),
}

/// A resample and the seed of its draws.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Resampling {
    pub how: Resample,
    /// The data seed (`--data-seed`).
    pub seed: u64,
}

/// Kept apart from the initialisation's stream: the same seed draws other
/// numbers here.
const SALT: u64 = 0x7265_7361_6d70_6c65; // "resample"

impl Resampling {
    /// Refuses a fraction outside (0, 1).
    pub fn validate(&self) -> Result<(), Error> {
        if let Resample::Subsample(f) = self.how
            && !(f.is_finite() && f > 0.0 && f < 1.0)
        {
            return Err(Error::Config(format!(
                "{} must lie strictly between 0 and 1 (a fraction of the training rows; 1 is \
                 every row: leave {SUBSAMPLE} out)",
                SUBSAMPLE.is(f)
            )));
        }
        Ok(())
    }

    /// The rows each network draws from `samples`: `m`.
    pub fn drawn(&self, samples: usize) -> usize {
        match self.how {
            Resample::Bootstrap => samples,
            Resample::Subsample(f) => (f * samples as f64).round() as usize,
        }
    }

    /// Refuses a subsample that leaves a network no row, or every row
    /// (then it is no subsample and has no out-of-bag rows).
    pub fn check_samples(&self, samples: usize, data: &str) -> Result<(), Error> {
        let m = self.drawn(samples);
        if let Resample::Subsample(f) = self.how
            && (m == 0 || m == samples)
        {
            return Err(Error::Config(format!(
                "{} of the {samples} training samples of {data} keeps {m}; a subsample needs \
                 at least one row and must leave one out",
                SUBSAMPLE.is(f)
            )));
        }
        Ok(())
    }

    /// A drawn row's weight per draw: `S / m` (1 for the bootstrap).
    pub fn scale(&self, samples: usize) -> f64 {
        samples as f64 / self.drawn(samples) as f64
    }

    /// Replicate `replicate`'s count of every row of `samples` into `out`.
    /// Bootstrap draws are `floor(u x S)` of 64-bit uniform `u` (bias below
    /// `S / 2^64`); the subsample is a partial Fisher-Yates shuffle, as
    /// `--holdout`'s. Both come from ChaCha8 seeded with the data seed (and
    /// a salt of their own) on stream `replicate`.
    pub fn fill_counts(&self, samples: usize, replicate: u64, out: &mut [u8]) {
        assert_eq!(out.len(), samples, "one count per row");
        out.fill(0);
        let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ SALT);
        rng.set_stream(replicate);
        let mut below = |n: usize| ((u128::from(rng.next_u64()) * n as u128) >> 64) as usize;
        match self.how {
            Resample::Bootstrap => {
                for _ in 0..samples {
                    // A row drawn 256 times out of S: probability below
                    // S x 1e-500 (Poisson(1)); kept at 255 were it ever.
                    let c = &mut out[below(samples)];
                    *c = c.saturating_add(1);
                }
            }
            Resample::Subsample(_) => {
                let mut order: Vec<usize> = (0..samples).collect();
                for i in 0..self.drawn(samples) {
                    let j = i + below(samples - i);
                    order.swap(i, j);
                    out[order[i]] = 1;
                }
            }
        }
    }

    /// Replicate `replicate`'s counts.
    pub fn counts(&self, samples: usize, replicate: u64) -> Vec<u8> {
        let mut out = vec![0; samples];
        self.fill_counts(samples, replicate, &mut out);
        out
    }

    /// Every row's weight from its count: `count x S / m`.
    pub fn weights(&self, counts: &[u8]) -> Vec<f64> {
        let scale = self.scale(counts.len());
        counts.iter().map(|&c| f64::from(c) * scale).collect()
    }

    /// The name as weights files and summaries record it:
    /// "bootstrap", "subsample 0.5".
    pub fn parse(text: &str, seed: u64) -> Option<Self> {
        let how = match text.split_once(' ') {
            None if text == "bootstrap" => Resample::Bootstrap,
            Some(("subsample", f)) => Resample::Subsample(f.parse().ok()?),
            _ => return None,
        };
        Some(Self { how, seed })
    }
}

impl fmt::Display for Resample {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Resample::Bootstrap => write!(f, "bootstrap"),
            Resample::Subsample(x) => write!(f, "subsample {x}"),
        }
    }
}

/// Per-network row counts of a block, network after network.
pub fn block_counts(
    resampling: &Resampling,
    samples: usize,
    replicates: impl Iterator<Item = u64>,
) -> Vec<u8> {
    let mut all = Vec::new();
    for r in replicates {
        let at = all.len();
        all.resize(at + samples, 0);
        resampling.fill_counts(samples, r, &mut all[at..]);
    }
    all
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_draws_as_many_rows_as_there_are_and_leaves_about_a_third_out() {
        let r = Resampling {
            how: Resample::Bootstrap,
            seed: 7,
        };
        let (samples, networks) = (1000, 50);
        let mut out_of_bag = 0;
        for n in 0..networks {
            let c = r.counts(samples, n);
            assert_eq!(c.iter().map(|&c| c as usize).sum::<usize>(), samples);
            out_of_bag += c.iter().filter(|&&c| c == 0).count();
        }
        // (1 - 1/S)^S = 0.3677; over 50,000 rows the share's standard
        // deviation is 0.0022 (rows of a network are nearly independent).
        let share = out_of_bag as f64 / (samples * networks as usize) as f64;
        assert!((share - 0.3677).abs() < 0.013, "{share}");
        // Keyed on the replicate and the seed.
        assert_ne!(r.counts(samples, 0), r.counts(samples, 1));
        let other = Resampling { seed: 8, ..r };
        assert_ne!(r.counts(samples, 0), other.counts(samples, 0));
        assert_eq!(r.counts(samples, 3), r.counts(samples, 3));
    }

    #[test]
    fn a_subsample_keeps_round_f_s_rows_once_each() {
        let r = Resampling {
            how: Resample::Subsample(0.3),
            seed: 1,
        };
        let c = r.counts(11, 4);
        assert_eq!(c.iter().filter(|&&c| c == 1).count(), 3);
        assert!(c.iter().all(|&c| c <= 1));
        assert_eq!(r.scale(11), 11.0 / 3.0);
        let w = r.weights(&c);
        assert!((w.iter().sum::<f64>() - 11.0).abs() < 1e-12);
    }

    #[test]
    fn names_read_back_and_bad_fractions_are_refused() {
        for how in [Resample::Bootstrap, Resample::Subsample(0.25)] {
            let r = Resampling { how, seed: 3 };
            assert_eq!(Resampling::parse(&how.to_string(), 3), Some(r));
        }
        assert_eq!(Resampling::parse("jackknife", 0), None);
        for f in [0.0, 1.0, -0.5, f64::NAN] {
            let r = Resampling {
                how: Resample::Subsample(f),
                seed: 0,
            };
            let e = r.validate().unwrap_err().to_string();
            assert!(e.contains("--subsample"), "{e}");
        }
        let r = Resampling {
            how: Resample::Subsample(0.01),
            seed: 0,
        };
        assert!(
            r.check_samples(20, "d")
                .unwrap_err()
                .to_string()
                .contains("keeps 0")
        );
        assert!(r.check_samples(200, "d").is_ok());
    }
}
