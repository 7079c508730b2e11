//! Using trained networks: which networks to run (`--networks-select`),
//! the summary of their scores ([`crate::evaluation`]), and the ensemble
//! of their outputs (`--ensemble`). The forward passes themselves run on
//! the GPU ([`crate::gpu::GpuPredictor`]) or the CPU
//! ([`crate::cpu::outputs`]); `commands::predict` puts it together.

use std::str::FromStr;

use clap::ValueEnum;
use serde::Serialize;

use crate::data::Dataset;
use crate::error::Error;
use crate::evaluation::Score;
use crate::gpu::{AdapterChoice, GpuContext, GpuPredictor, predict_supports};
use crate::model::ModelSpec;
use crate::run::BackendChoice;
use crate::setting::settings::{DATA, NETWORKS_SELECT, RESUME};
use crate::stats::Quantiles;
use crate::weights::LoadedWeights;

/// The outputs of trained networks, and where they were computed.
#[derive(Clone, Debug, PartialEq)]
pub struct Forward {
    /// `[network][sample][output]`.
    pub values: Vec<f64>,
    /// The values are float32 (computed on the GPU), widened.
    pub single: bool,
    /// The adapter that computed them; `None`: the float64 CPU reference.
    pub adapter: Option<String>,
    /// Why the GPU was not used where `auto` would have used it.
    pub notes: Vec<String>,
}

/// The outputs of every network in `params` (vectors back to back) on
/// every sample of `data`, as `gputrain predict` and the Python package's
/// `Run.predict` compute them: on the GPU for `gpu`, and for `auto` where
/// an adapter is found and the kernel supports the model (else, noted, the
/// CPU reference); on the float64 CPU reference for `cpu` and `simd`.
pub fn forward(
    spec: &ModelSpec,
    params: &[f64],
    data: &Dataset,
    backend: BackendChoice,
    adapter: &AdapterChoice,
) -> Result<Forward, Error> {
    let mut notes = Vec::new();
    let unreached = match (backend, adapter) {
        (BackendChoice::Auto | BackendChoice::Gpu, AdapterChoice::Auto) => {
            crate::gpu::hardware::unreached(crate::gpu::list_adapters)
        }
        _ => None,
    };
    let ctx = match (backend, unreached) {
        (BackendChoice::Cpu | BackendChoice::Simd, _) => None,
        // A hardware GPU that wgpu cannot reach: not its software
        // stand-in unless that is named.
        (BackendChoice::Gpu, Some(u)) => {
            return Err(Error::GpuUnreached {
                diagnosis: u.to_string(),
            });
        }
        (_, Some(u)) => {
            notes.push(format!("{u}. Predicting on the CPU reference instead"));
            None
        }
        (choice, None) => match GpuContext::open(adapter) {
            Ok(ctx) => match (predict_supports(spec), choice) {
                (Ok(()), _) => Some(ctx),
                (Err(e), BackendChoice::Auto) => {
                    notes.push(format!("{e}; predicting on the CPU reference instead"));
                    None
                }
                (Err(e), _) => return Err(e),
            },
            Err(e @ Error::NoAdapter { .. }) if choice == BackendChoice::Auto => {
                notes.push(format!("{e}; predicting on the CPU reference instead"));
                None
            }
            Err(e) => return Err(e),
        },
    };
    let p = spec.layout().len;
    Ok(match &ctx {
        Some(ctx) => {
            let x: Vec<f32> = data.x.iter().map(|&v| v as f32).collect();
            let predicted = GpuPredictor::new(ctx, spec)?.predict(params, &x, data.samples())?;
            Forward {
                values: predicted.into_iter().map(f64::from).collect(),
                single: true,
                adapter: Some(ctx.adapter.to_string()),
                notes,
            }
        }
        None => {
            use rayon::prelude::*;
            Forward {
                values: params
                    .par_chunks(p.max(1))
                    .flat_map_iter(|net| crate::cpu::outputs(spec, net, data))
                    .collect(),
                single: false,
                adapter: None,
                notes,
            }
        }
    })
}

/// `--networks-select`: every network, the one of lowest loss on the data
/// (which needs targets), or a list of indices and ranges (`0,5,10-19`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Selection {
    All,
    Best,
    List(Vec<usize>),
}

impl FromStr for Selection {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self, Error> {
        match s.trim() {
            "all" => return Ok(Selection::All),
            "best" => return Ok(Selection::Best),
            _ => {}
        }
        let bad = |why: String| {
            Error::Config(format!(
                "{}: {why} (expected all, best, or indices and ranges such as 0,5,10-19)",
                NETWORKS_SELECT.is(format!("'{s}'"))
            ))
        };
        let index = |t: &str| {
            t.trim()
                .parse::<usize>()
                .map_err(|_| bad(format!("'{}' is not a network index", t.trim())))
        };
        let mut list = Vec::new();
        for item in s.split(',') {
            match item.split_once('-') {
                Some((a, b)) => {
                    let (a, b) = (index(a)?, index(b)?);
                    if a > b {
                        return Err(bad(format!("the range {a}-{b} runs backwards")));
                    }
                    list.extend(a..=b);
                }
                None => list.push(index(item)?),
            }
        }
        Ok(Selection::List(list))
    }
}

impl Selection {
    /// The chosen network indices of `networks`; `losses` (every network's,
    /// when the data has targets) ranks them for `Best`.
    pub fn indices(&self, networks: usize, losses: Option<&[f64]>) -> Result<Vec<usize>, Error> {
        match self {
            Selection::All => Ok((0..networks).collect()),
            Selection::Best => {
                let losses = losses.ok_or_else(|| {
                    Error::Config(format!(
                        "{} ranks networks by their loss on {DATA}, which needs targets in it \
                         (inputs then targets on every row)",
                        NETWORKS_SELECT.is("best")
                    ))
                })?;
                Ok(best(losses).into_iter().collect())
            }
            Selection::List(list) => {
                if let Some(&bad) = list.iter().find(|&&i| i >= networks) {
                    return Err(Error::Config(format!(
                        "{NETWORKS_SELECT}: network {bad} is not in the file, which holds \
                         networks 0 to {}",
                        networks - 1
                    )));
                }
                Ok(list.clone())
            }
        }
    }
}

/// Indices as `--networks-select` writes them: ascending runs joined,
/// e.g. `0-8,12`.
pub fn index_ranges(indices: impl IntoIterator<Item = usize>) -> String {
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for i in indices {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == i => *end = i,
            _ => runs.push((i, i)),
        }
    }
    let run = |&(a, b): &(usize, usize)| match a == b {
        true => a.to_string(),
        false => format!("{a}-{b}"),
    };
    runs.iter().map(run).collect::<Vec<_>>().join(",")
}

/// Refuses a prediction by networks that a stop came before (never
/// started, no parameters), naming them and the trained ones to choose.
pub fn refuse_never_started(
    path: &std::path::Path,
    loaded: &LoadedWeights,
    chosen: &[usize],
) -> Result<(), Error> {
    let never = &loaded.never_started;
    if !chosen.iter().any(|n| never.binary_search(n).is_ok()) {
        return Ok(());
    }
    let started = (0..loaded.networks).filter(|n| never.binary_search(n).is_err());
    let started = index_ranges(started);
    let choose = match started.is_empty() {
        true => String::new(),
        false => format!(
            "; {} predicts by the trained ones",
            NETWORKS_SELECT.is(started)
        ),
    };
    Err(Error::WeightsFile {
        path: path.to_path_buf(),
        message: format!(
            "holds {} of {} networks never started (networks {}: the run that wrote it was \
             stopped before them), which have no parameters to predict by; {} the file \
             trains them{choose}",
            never.len(),
            loaded.networks,
            index_ranges(never.iter().copied()),
            RESUME
        ),
    })
}

/// The index of the lowest finite loss (the first of equals).
pub fn best(losses: &[f64]) -> Option<usize> {
    losses
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite())
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

/// How outputs are combined across networks, per sample and output.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Ensemble {
    /// The mean, with the standard deviation (population) as the spread.
    Mean,
    /// The median, with the interquartile range (p75 - p25) as the spread.
    Median,
}

/// The combined outputs of `networks` networks' `outputs`
/// (`[network][sample][output]`) per sample and output, and their spread:
/// `(combined, spread)`, each `[sample][output]`.
pub fn combine(
    how: Ensemble,
    outputs: &[f64],
    networks: usize,
    per_network: usize,
) -> (Vec<f64>, Vec<f64>) {
    combine_where(how, outputs, networks, per_network, 1, |_, _| true)
}

/// [`combine`] over the networks `keep(network, sample)` admits for each
/// sample (`per_sample` values each): NaN where it admits none. With each
/// network's out-of-bag rows, scikit-learn's `oob_decision_function_` of
/// a bagged ensemble (`predict --oob`).
pub fn combine_where(
    how: Ensemble,
    outputs: &[f64],
    networks: usize,
    per_network: usize,
    per_sample: usize,
    keep: impl Fn(usize, usize) -> bool,
) -> (Vec<f64>, Vec<f64>) {
    let mut combined = Vec::with_capacity(per_network);
    let mut spread = Vec::with_capacity(per_network);
    let mut column = Vec::with_capacity(networks);
    for v in 0..per_network {
        column.clear();
        let sample = v / per_sample.max(1);
        let kept = (0..networks).filter(|&n| keep(n, sample));
        column.extend(kept.map(|n| outputs[n * per_network + v]));
        if column.is_empty() {
            combined.push(f64::NAN);
            spread.push(f64::NAN);
            continue;
        }
        let networks = column.len();
        match how {
            Ensemble::Mean => {
                let mean = column.iter().sum::<f64>() / networks as f64;
                let var = column.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / networks as f64;
                combined.push(mean);
                spread.push(var.sqrt());
            }
            Ensemble::Median => {
                column.sort_by(f64::total_cmp);
                combined.push(quantile(&column, 0.5));
                spread.push(quantile(&column, 0.75) - quantile(&column, 0.25));
            }
        }
    }
    (combined, spread)
}

/// The `q` quantile of sorted values, interpolated linearly between the
/// nearest ranks (NumPy's default), so the median of an even count is the
/// mean of the middle two.
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    let at = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (at.floor() as usize, at.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (at - lo as f64)
}

/// What `gputrain predict` reports about the chosen networks on data with
/// targets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ScoreSummary {
    /// Quantiles of the networks' losses (non-finite ones left out).
    pub loss: Option<Quantiles>,
    /// Quantiles of the accuracies; `None` for targets that are not class
    /// labels.
    pub accuracy: Option<Quantiles>,
    /// Networks at 100% accuracy.
    pub solved: Option<usize>,
    /// The network of lowest loss.
    pub best: Option<Score>,
}

impl ScoreSummary {
    pub fn of(scores: &[Score]) -> Self {
        let mut losses: Vec<f64> = scores
            .iter()
            .map(|s| s.loss)
            .filter(|l| l.is_finite())
            .collect();
        let mut accuracies: Vec<f64> = scores.iter().filter_map(|s| s.accuracy).collect();
        let has_accuracy = !accuracies.is_empty();
        let best = best(&scores.iter().map(|s| s.loss).collect::<Vec<_>>()).map(|i| scores[i]);
        Self {
            loss: Quantiles::of(&mut losses),
            solved: has_accuracy.then(|| accuracies.iter().filter(|&&a| a == 1.0).count()),
            accuracy: Quantiles::of(&mut accuracies),
            best,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections_parse_and_check_their_indices() {
        assert_eq!("all".parse::<Selection>().unwrap(), Selection::All);
        assert_eq!(
            "0,5,7-9".parse::<Selection>().unwrap(),
            Selection::List(vec![0, 5, 7, 8, 9])
        );
        let err = "3-1".parse::<Selection>().unwrap_err().to_string();
        assert!(err.contains("runs backwards"), "{err}");
        let err = "1,x".parse::<Selection>().unwrap_err().to_string();
        assert!(err.contains("'x' is not a network index"), "{err}");
        let list = Selection::List(vec![1, 4]);
        let err = list.indices(4, None).unwrap_err().to_string();
        assert!(err.contains("network 4 is not in the file, which holds networks 0 to 3"));
        let err = Selection::Best.indices(4, None).unwrap_err().to_string();
        assert!(err.contains("needs targets"), "{err}");
        let losses = [0.3, f64::NAN, 0.1, 0.1];
        assert_eq!(Selection::Best.indices(4, Some(&losses)).unwrap(), [2]);
    }

    #[test]
    fn index_ranges_are_what_networks_select_reads() {
        let indices = [0, 1, 2, 3, 4, 5, 6, 7, 8, 12, 14, 15];
        let text = index_ranges(indices);
        assert_eq!(text, "0-8,12,14-15");
        let read = text
            .parse::<Selection>()
            .unwrap()
            .indices(16, None)
            .unwrap();
        assert_eq!(read, indices);
        assert_eq!(index_ranges([]), "");
    }

    #[test]
    fn ensembles_combine_per_sample_and_output() {
        // Three networks, two values each.
        let outputs = [0.1, 1.0, 0.2, 3.0, 0.6, 2.0];
        let (mean, std) = combine(Ensemble::Mean, &outputs, 3, 2);
        assert!((mean[0] - 0.3).abs() < 1e-15 && (mean[1] - 2.0).abs() < 1e-15);
        let expected = ((0.04 + 0.01 + 0.09) / 3.0f64).sqrt();
        assert!((std[0] - expected).abs() < 1e-15, "{std:?}");
        let (median, iqr) = combine(Ensemble::Median, &outputs, 3, 2);
        assert_eq!(median, [0.2, 2.0]);
        // Sorted 0.1, 0.2, 0.6: p25 0.15, p75 0.4.
        assert!((iqr[0] - 0.25).abs() < 1e-15, "{iqr:?}");
        assert_eq!(quantile(&[1.0, 2.0, 3.0, 4.0], 0.5), 2.5);
    }
}
