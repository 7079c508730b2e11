//! Statistics over a population of networks: the quantiles every summary
//! reports. A leaf: nothing here depends on the rest of the crate.

use serde::Serialize;

/// Quantiles of a population's values (final losses, accuracies).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Quantiles {
    pub min: f64,
    pub p10: f64,
    pub median: f64,
    pub p90: f64,
    pub max: f64,
}

impl Quantiles {
    /// Nearest-rank quantiles; `None` when `values` is empty.
    pub fn of(values: &mut [f64]) -> Option<Self> {
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
        Some(Self {
            min: values[0],
            p10: at(0.1),
            median: at(0.5),
            p90: at(0.9),
            max: values[values.len() - 1],
        })
    }
}
