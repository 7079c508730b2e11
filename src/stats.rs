//! Statistics over a population of networks: the quantiles every summary
//! reports. A leaf: nothing here depends on the rest of the crate.

use serde::{Deserialize, Serialize};

/// Quantiles of a population's values (final losses, accuracies).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quantiles {
    pub min: f64,
    pub p10: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Quantiles {
    /// Nearest-rank quantiles; `None` when `values` is empty. The order
    /// statistics are selected in linear time, not sorted (`values` is
    /// left partly reordered): 10^7 losses take tens of milliseconds.
    pub fn of(values: &mut [f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        let last = values.len() - 1;
        let rank = |q: f64| (last as f64 * q).round() as usize;
        // Each selection leaves the larger ranks to its right, so the
        // next one searches only there.
        let mut pick = |from: usize, k: usize| -> f64 {
            let (_, v, _) = values[from..].select_nth_unstable_by(k - from, f64::total_cmp);
            *v
        };
        let min = pick(0, 0);
        let p10 = pick(0, rank(0.1));
        let median = pick(rank(0.1), rank(0.5));
        let p90 = pick(rank(0.5), rank(0.9));
        let max = pick(rank(0.9), last);
        Some(Self {
            min,
            p10,
            median,
            p90,
            max,
        })
    }

    /// Each quantile through `f`: a nondecreasing map (a positive scale)
    /// keeps them the quantiles of the mapped values.
    pub fn map(&self, f: impl Fn(f64) -> f64) -> Self {
        Self {
            min: f(self.min),
            p10: f(self.p10),
            median: f(self.median),
            p90: f(self.p90),
            max: f(self.max),
        }
    }
}

#[cfg(test)]
mod selection_tests {
    use super::*;

    /// Selection gives exactly the sorted array's nearest-rank values,
    /// ties and odd lengths included.
    #[test]
    fn selection_equals_sorting() {
        let mut state = 12345u64;
        for n in [1usize, 2, 3, 10, 11, 100, 1001] {
            let values: Vec<f64> = (0..n)
                .map(|_| {
                    state = state
                        .wrapping_mul(6364136223846793005)
                        .wrapping_add(1442695040888963407);
                    ((state >> 33) % 50) as f64 * 0.25
                })
                .collect();
            let mut sorted = values.clone();
            sorted.sort_by(f64::total_cmp);
            let at = |q: f64| sorted[((n - 1) as f64 * q).round() as usize];
            let got = Quantiles::of(&mut values.clone()).unwrap();
            assert_eq!(
                (got.min, got.p10, got.median, got.p90, got.max),
                (sorted[0], at(0.1), at(0.5), at(0.9), sorted[n - 1]),
                "n = {n}"
            );
        }
    }
}
