//! What a run reports: the summary a person reads and its JSON twin, and the
//! `--verify` comparison of GPU-trained networks with the float64 reference.

use serde::Serialize;

use crate::cpu;
use crate::data::Dataset;
use crate::model::ModelSpec;
use crate::run::{BackendInfo, Population};
use crate::training::{NetworkOutcome, TrainOptions};

/// Final-loss quantiles over the networks that did not diverge.
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

/// One sample's inputs, targets and the best network's predictions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SamplePrediction {
    pub inputs: Vec<f64>,
    pub targets: Vec<f64>,
    pub predictions: Vec<f64>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BestNetwork {
    pub index: usize,
    pub learning_rate: f64,
    pub final_loss: f64,
    /// The first few samples of the data set.
    pub samples: Vec<SamplePrediction>,
}

/// `--verify`: networks re-trained with the float64 reference.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct VerifyReport {
    pub networks: Vec<usize>,
    pub max_prediction_diff: f64,
    pub max_parameter_diff: f64,
    pub worst_network: usize,
    pub tolerance: f64,
    pub passed: bool,
}

/// Everything the summary says. Keys are documented in the README.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Summary {
    pub backend: String,
    pub adapter: Option<String>,
    pub strategy: String,
    pub data: String,
    pub topology: String,
    /// Hidden layers' activation.
    pub activation: String,
    pub output_activation: String,
    pub bias: String,
    pub freeze_bias: bool,
    pub loss: String,
    pub reduction: String,
    pub networks: usize,
    pub epochs: u64,
    /// Ctrl-C ended the run early.
    pub interrupted: bool,
    /// Fewest epochs any network completed (`epochs` unless interrupted).
    pub epochs_completed: u64,
    pub wall_seconds: f64,
    pub network_epochs_per_second: f64,
    pub final_loss: Option<Quantiles>,
    pub target_loss: Option<f64>,
    pub reached_target: usize,
    pub median_target_epoch: Option<u32>,
    pub diverged: usize,
    pub best: Option<BestNetwork>,
    pub verify: Option<VerifyReport>,
}

/// Samples shown next to the best network's predictions.
const SHOWN_SAMPLES: usize = 4;

#[expect(
    clippy::too_many_arguments,
    reason = "the summary draws on every part of a run"
)]
pub fn summarize(
    spec: &ModelSpec,
    data: &Dataset,
    options: &TrainOptions,
    backend: &BackendInfo,
    population: &Population,
    outcomes: &[NetworkOutcome],
    seconds: f64,
    verify: Option<VerifyReport>,
) -> Summary {
    let mut finite: Vec<f64> = outcomes
        .iter()
        .filter(|o| !o.diverged)
        .map(|o| o.final_loss)
        .collect();
    let mut reached: Vec<u32> = outcomes.iter().filter_map(|o| o.target_epoch).collect();
    reached.sort_unstable();
    let best = outcomes
        .iter()
        .enumerate()
        .filter(|(_, o)| !o.diverged)
        .min_by(|a, b| a.1.final_loss.total_cmp(&b.1.final_loss))
        .map(|(index, o)| BestNetwork {
            index,
            learning_rate: population.learning_rates[index],
            final_loss: o.final_loss,
            samples: (0..data.samples().min(SHOWN_SAMPLES))
                .map(|s| SamplePrediction {
                    inputs: data.input(s).to_vec(),
                    targets: data.target(s).to_vec(),
                    predictions: cpu::predict(spec, population.network(index), data.input(s)),
                })
                .collect(),
        });
    let network_epochs: f64 = outcomes.iter().map(|o| o.epochs_completed as f64).sum();
    let epochs_completed = outcomes
        .iter()
        .map(|o| o.epochs_completed)
        .min()
        .unwrap_or(options.epochs);
    Summary {
        backend: backend.backend.to_string(),
        adapter: backend.adapter.as_ref().map(|a| a.to_string()),
        strategy: backend.strategy.to_string(),
        data: data.name.clone(),
        topology: spec.topology.to_string(),
        activation: spec.activation.to_string(),
        output_activation: spec.output_activation.to_string(),
        bias: spec.bias.to_string(),
        freeze_bias: spec.freeze_bias,
        loss: spec.loss.to_string(),
        reduction: spec.reduction.to_string(),
        networks: outcomes.len(),
        epochs: options.epochs,
        interrupted: epochs_completed < options.epochs,
        epochs_completed,
        wall_seconds: seconds,
        network_epochs_per_second: if seconds > 0.0 {
            network_epochs / seconds
        } else {
            0.0
        },
        final_loss: Quantiles::of(&mut finite),
        target_loss: options.target_loss,
        reached_target: reached.len(),
        median_target_epoch: reached.get(reached.len().saturating_sub(1) / 2).copied(),
        diverged: outcomes.iter().filter(|o| o.diverged).count(),
        best,
        verify,
    }
}

fn list(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
    format!("[{}]", parts.join(", "))
}

/// The summary a person reads.
pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    line(format!(
        "trained {} networks x {} epochs: {} {} (hidden) / {} (output), {} biases{}, {} loss ({}), data {}",
        s.networks,
        s.epochs,
        s.topology,
        s.activation,
        s.output_activation,
        s.bias,
        if s.freeze_bias { " (frozen)" } else { "" },
        s.loss,
        s.reduction,
        s.data
    ));
    if s.interrupted {
        line(format!(
            "interrupted: every network completed at least {} of {} epochs (the results file has each network's count)",
            s.epochs_completed, s.epochs
        ));
    }
    line(format!(
        "backend: {} ({}){}",
        s.backend,
        s.strategy,
        s.adapter
            .as_ref()
            .map(|a| format!(" on {a}"))
            .unwrap_or_default()
    ));
    line(format!(
        "wall time: {:.3} s, {:.3e} network-epochs/s",
        s.wall_seconds, s.network_epochs_per_second
    ));
    if let Some(q) = &s.final_loss {
        line(format!(
            "final loss: min {:.4e}  10% {:.4e}  median {:.4e}  90% {:.4e}  max {:.4e}",
            q.min, q.p10, q.median, q.p90, q.max
        ));
    }
    if let Some(t) = s.target_loss {
        line(format!(
            "reached target loss {t:e}: {} of {}{}",
            s.reached_target,
            s.networks,
            s.median_target_epoch
                .map(|e| format!(" (median epoch {e})"))
                .unwrap_or_default()
        ));
    }
    line(format!(
        "diverged (NaN/Inf): {} of {}",
        s.diverged, s.networks
    ));
    if let Some(b) = &s.best {
        line(format!(
            "best network: #{} (learning rate {}), final loss {:.6e}",
            b.index, b.learning_rate, b.final_loss
        ));
        for sample in &b.samples {
            line(format!(
                "  input {} -> prediction {}  target {}",
                list(&sample.inputs),
                list(&sample.predictions),
                list(&sample.targets)
            ));
        }
    }
    if let Some(v) = &s.verify {
        line(format!(
            "verify: {} networks re-trained in float64: max prediction diff {:.3e}, max parameter diff {:.3e} (network #{}); tolerance {:e}: {}",
            v.networks.len(),
            v.max_prediction_diff,
            v.max_parameter_diff,
            v.worst_network,
            v.tolerance,
            if v.passed { "PASS" } else { "FAIL" }
        ));
    }
    out
}

/// Indices of `k` networks spread evenly across `n`.
pub fn spread(n: usize, k: usize) -> Vec<usize> {
    let k = k.min(n);
    if k <= 1 {
        return (0..k).collect();
    }
    let mut picks: Vec<usize> = (0..k).map(|j| j * (n - 1) / (k - 1)).collect();
    picks.dedup();
    picks
}

/// Re-trains the networks `initial` holds (index, starting parameters) with
/// the float64 reference and compares predictions over the whole data set
/// and parameters with the trained population.
pub fn verify(
    spec: &ModelSpec,
    data: &Dataset,
    options: &TrainOptions,
    initial: &[(usize, Vec<f64>)],
    trained: &Population,
    outcomes: &[NetworkOutcome],
    tolerance: f64,
) -> VerifyReport {
    let mut report = VerifyReport {
        networks: initial.iter().map(|(i, _)| *i).collect(),
        max_prediction_diff: 0.0,
        max_parameter_diff: 0.0,
        worst_network: initial.first().map_or(0, |(i, _)| *i),
        tolerance,
        passed: true,
    };
    for (index, start) in initial {
        let mut reference = start.clone();
        let lr = trained.learning_rates[*index];
        // An interrupted run is compared over the epochs it completed.
        let options = TrainOptions {
            epochs: outcomes[*index].epochs_completed,
            ..*options
        };
        let expected = cpu::train_network(spec, data, &mut reference, lr, &options);
        let got = trained.network(*index);
        if expected.diverged || outcomes[*index].diverged {
            if expected.diverged != outcomes[*index].diverged {
                report.passed = false;
                report.max_prediction_diff = f64::INFINITY;
                report.worst_network = *index;
            }
            continue;
        }
        let mut prediction_diff: f64 = 0.0;
        for s in 0..data.samples() {
            let a = cpu::predict(spec, got, data.input(s));
            let b = cpu::predict(spec, &reference, data.input(s));
            for (x, y) in a.iter().zip(&b) {
                prediction_diff = prediction_diff.max((x - y).abs());
            }
        }
        let parameter_diff = got
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        if prediction_diff > report.max_prediction_diff {
            report.max_prediction_diff = prediction_diff;
            report.worst_network = *index;
        }
        report.max_parameter_diff = report.max_parameter_diff.max(parameter_diff);
    }
    report.passed &= report.max_prediction_diff <= tolerance;
    report
}
