//! Per-network initialisation keyed on (seed, network index).
//!
//! Network `i` draws from ChaCha8 keyed by `seed` on stream `i`, so its
//! initial parameters do not depend on how many networks are created, on the
//! backend, or on how the population is split into chunks.

use std::fmt;
use std::str::FromStr;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

use crate::error::Error;
use crate::model::{BiasMode, ModelSpec};
use crate::setting::settings::INIT;

/// How initial parameters are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Init {
    /// Weights uniform in ±sqrt(6 / (fan_in + fan_out)), biases 0
    /// (Glorot's uniform): for sigmoid, tanh and linear layers.
    Xavier,
    /// Weights uniform in ±sqrt(6 / fan_in), biases 0 (He's uniform, as
    /// PyTorch's kaiming_uniform_ with the ReLU gain): for ReLU layers.
    He,
    /// Weights and biases uniform in ±A.
    Uniform(f64),
    /// Seed 003's exact weights (2-2-2, shared bias only).
    Tutorial,
}

impl FromStr for Init {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s {
            "xavier" => Ok(Init::Xavier),
            "he" => Ok(Init::He),
            "tutorial" => Ok(Init::Tutorial),
            _ => {
                let bound = s.strip_prefix("uniform:").ok_or_else(|| {
                    Error::Config(format!(
                        "unknown initialisation '{s}'; expected xavier, he, uniform:A (e.g. uniform:0.5) or tutorial"
                    ))
                })?;
                match bound.parse::<f64>() {
                    Ok(a) if a.is_finite() && a > 0.0 => Ok(Init::Uniform(a)),
                    _ => Err(Error::Config(format!(
                        "in '{s}', the bound '{bound}' must be a positive finite number"
                    ))),
                }
            }
        }
    }
}

impl fmt::Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Init::Xavier => f.write_str("xavier"),
            Init::He => f.write_str("he"),
            Init::Uniform(a) => write!(f, "uniform:{a}"),
            Init::Tutorial => f.write_str("tutorial"),
        }
    }
}

/// Seed 003's weights in our layout: W1 rows (w1, w2), (w3, w4), b1, then
/// W2 rows (w5, w6), (w7, w8), b2.
pub const TUTORIAL_PARAMETERS: [f64; 10] =
    [0.15, 0.20, 0.25, 0.30, 0.35, 0.40, 0.45, 0.50, 0.55, 0.60];

/// Checks that `init` can be used with `spec`.
pub fn check(spec: &ModelSpec, init: Init) -> Result<(), Error> {
    if init == Init::Tutorial
        && (spec.topology.widths() != [2, 2, 2] || spec.bias != BiasMode::Shared)
    {
        return Err(Error::Init(format!(
            "{} holds seed 003's weights for a 2-2-2 network with shared biases; this run is \
             {} with {} biases",
            INIT.is("tutorial"),
            spec.topology,
            spec.bias
        )));
    }
    Ok(())
}

/// Initial parameters of network `index`.
pub fn network_parameters(spec: &ModelSpec, init: Init, seed: u64, index: u64) -> Vec<f64> {
    let layout = spec.layout();
    if init == Init::Tutorial {
        return TUTORIAL_PARAMETERS.to_vec();
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(index);
    let mut uniform_pm = |bound: f64| {
        // 53 random bits -> [0, 1) -> [-bound, bound).
        let unit = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
        bound * (2.0 * unit - 1.0)
    };
    let mut params = vec![0.0; layout.len];
    for layer in &layout.layers {
        let (weight_bound, bias_bound) = match init {
            Init::Xavier => (((6.0 / (layer.fan_in + layer.fan_out) as f64).sqrt()), 0.0),
            Init::He => ((6.0 / layer.fan_in as f64).sqrt(), 0.0),
            Init::Uniform(a) => (a, a),
            Init::Tutorial => unreachable!("handled above"),
        };
        let weights = layer.weight_offset..layer.weight_offset + layer.weight_count();
        for p in &mut params[weights] {
            *p = uniform_pm(weight_bound);
        }
        for p in &mut params[layer.bias_offset..layer.bias_offset + layer.bias_count] {
            *p = if bias_bound > 0.0 {
                uniform_pm(bias_bound)
            } else {
                0.0
            };
        }
    }
    params
}

/// Initial parameters of networks `first..first + count`, concatenated.
pub fn population_parameters(
    spec: &ModelSpec,
    init: Init,
    seed: u64,
    first: u64,
    count: usize,
) -> Result<Vec<f64>, Error> {
    check(spec, init)?;
    let mut all = Vec::with_capacity(count * spec.layout().len);
    for i in 0..count as u64 {
        all.extend(network_parameters(spec, init, seed, first + i));
    }
    Ok(all)
}
