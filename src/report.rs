//! What a run reports: the summary a person reads and its JSON twin, and the
//! `--verify` comparison of GPU-trained networks with the float64 reference.

use serde::{Deserialize, Serialize};

use crate::cpu;
use crate::data::Dataset;
use crate::groups::{BestPoint, GroupStats};
use crate::model::{ModelSpec, Reduction};
use crate::run::{BackendInfo, RunConfig, TrainedBlock};
use crate::training::NetworkMetrics;
use crate::training::{NetworkOutcome, TrainOptions};

pub use crate::stats::Quantiles;

/// One sample's inputs, targets and the best network's predictions.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SamplePrediction {
    pub inputs: Vec<f64>,
    pub targets: Vec<f64>,
    pub predictions: Vec<f64>,
}

/// The network of lowest final loss, or of lowest held-out loss when
/// there is held-out data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestNetwork {
    pub index: usize,
    pub learning_rate: f64,
    pub final_loss: f64,
    pub train_accuracy: Option<f64>,
    pub eval_loss: Option<f64>,
    pub eval_accuracy: Option<f64>,
    /// The first few samples of the data set.
    pub samples: Vec<SamplePrediction>,
}

/// `--verify`: networks re-trained with the float64 reference.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct VerifyReport {
    pub networks: Vec<usize>,
    /// The largest difference among the comparable networks (those not in
    /// `sensitive`), against the float64 reference or, where that is
    /// beyond the tolerance, a float32 twin within it.
    pub max_prediction_diff: f64,
    pub max_parameter_diff: f64,
    pub worst_network: usize,
    pub tolerance: f64,
    /// Networks that match neither the reference nor a float32 twin (the
    /// same training in float32 values:
    /// [`crate::cpu::train_network_in_float32`]) within the tolerance,
    /// but where a twin and the reference separate by more than a tenth
    /// of it (and at least 1e-5, about 100 float32 epsilons), or one
    /// float32 rounding of the start would move the reference that far
    /// (measured with a change 64 times smaller): training there amplifies
    /// float32 rounding (a fast, chaotic or saturating regime), so float32
    /// and float64 cannot be compared, and they are left out of the
    /// verdict.
    #[serde(default)]
    pub sensitive: Vec<usize>,
    /// The largest separation of a sensitive network's float32 twin from
    /// the reference, or, where the twins stay close, of the reference
    /// from one float32 rounding of its start (extrapolated linearly, so
    /// it can pass 1).
    #[serde(default)]
    pub max_sensitivity: f64,
    pub passed: bool,
}

/// Everything the summary says. Keys are documented in the README.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// The gputrain that wrote it ([`crate::VERSION`]).
    #[serde(default)]
    pub version: String,
    /// The run's `--seed`.
    #[serde(default)]
    pub seed: u64,
    /// The command that asked for the run
    /// ([`crate::plan::TrainPlan::command`]).
    #[serde(default)]
    pub command: Vec<String>,
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
    /// The update rule with its hyperparameters, e.g. "adam (betas 0.9,
    /// 0.999, eps 1e-8)".
    pub optimizer: String,
    /// The learning rate's schedule with its settings, e.g. "constant",
    /// "cosine (lr_t_max=2000, lr_min=0)".
    pub lr_schedule: String,
    /// "full batch", or e.g. "batches of 64, shuffled".
    pub batches: String,
    pub networks: usize,
    pub epochs: u64,
    /// Ctrl-C ended the run early.
    pub interrupted: bool,
    /// Fewest epochs any network completed (`epochs` unless interrupted).
    pub epochs_completed: u64,
    /// Epochs completed, summed over the networks (`networks` x `epochs`
    /// unless interrupted; a resumed network's earlier epochs count).
    #[serde(default)]
    pub network_epochs_completed: u64,
    pub wall_seconds: f64,
    pub network_epochs_per_second: f64,
    pub final_loss: Option<Quantiles>,
    pub target_loss: Option<f64>,
    pub reached_target: usize,
    pub median_target_epoch: Option<u32>,
    pub diverged: usize,
    /// The early-stopping rule, e.g. "patience 10, checked every 1
    /// epochs" (`--early-stopping`, `--eval-every`).
    #[serde(default)]
    pub early_stopping: Option<String>,
    /// With early stopping: networks that stopped before the run's end
    /// (stopped, not diverged).
    #[serde(default)]
    pub stopped_early: Option<usize>,
    /// With early stopping: the median of the networks' best epochs.
    #[serde(default)]
    pub median_best_epoch: Option<u64>,
    /// Networks a stop came before: not trained or evaluated in this run.
    #[serde(default)]
    pub not_started: usize,
    /// Each network's resample of the training rows, e.g. "bootstrap,
    /// data seed 0" (`--bootstrap`, `--subsample`).
    #[serde(default)]
    pub resample: Option<String>,
    /// With a resample: the loss on each network's out-of-bag rows.
    #[serde(default)]
    pub oob_loss: Option<Quantiles>,
    /// With a resample and class targets: the accuracy on them.
    #[serde(default)]
    pub oob_accuracy: Option<Quantiles>,
    /// Accuracy on the training data (class targets only).
    pub train_accuracy: Option<Quantiles>,
    /// Networks at 100% training accuracy (class targets only).
    pub solved: Option<usize>,
    /// The held-out data (`--eval-data`, `--holdout`), if any.
    pub eval_data: Option<String>,
    pub eval_loss: Option<Quantiles>,
    pub eval_accuracy: Option<Quantiles>,
    /// The training samples the loss sums or averages over.
    #[serde(default)]
    pub samples: usize,
    /// The held-out samples, if any.
    #[serde(default)]
    pub eval_samples: Option<usize>,
    /// `final_loss` as a mean over the training samples: what compares
    /// with `eval_loss_per_sample` whatever the reduction.
    #[serde(default)]
    pub train_loss_per_sample: Option<Quantiles>,
    /// `eval_loss` as a mean over the held-out samples.
    #[serde(default)]
    pub eval_loss_per_sample: Option<Quantiles>,
    pub best: Option<BestNetwork>,
    pub verify: Option<VerifyReport>,
    /// What the run accepted with a note (a weights file's differences).
    pub notes: Vec<String>,
    /// The population at every recorded epoch (`--history`).
    pub history: Option<Vec<crate::history::HistoryPoint>>,
    /// A hash of the configuration ([`crate::sweep::fingerprint`]).
    pub fingerprint: String,
    /// The grid's axes (none for a run without a grid).
    pub grid: Vec<GridAxis>,
    /// Statistics per grid point, in grid order (one for a plain run).
    pub groups: Vec<GroupStats>,
    /// A one-axis sweep's best point.
    pub best_point: Option<BestPoint>,
}

impl Summary {
    /// The share of the planned network-epochs (`networks` x `epochs`)
    /// completed: 1 for a run that finished.
    pub fn done_share(&self) -> f64 {
        let planned = self.networks as u64 * self.epochs;
        match planned {
            0 => 1.0,
            _ => self.network_epochs_completed as f64 / planned as f64,
        }
    }
}

/// A grid axis, as the summary lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GridAxis {
    pub flag: String,
    pub column: String,
    pub values: Vec<String>,
}

/// The best network as a [`Tally`] keeps it.
#[derive(Clone, Debug)]
enum Best {
    /// Trained here: its parameters, for its predictions on the data.
    Trained {
        index: usize,
        learning_rate: f64,
        final_loss: f64,
        metrics: NetworkMetrics,
        params: Vec<f64>,
        point: usize,
    },
    /// As another run's summary reported it.
    Reported(BestNetwork),
}

/// The best network as the summary reports it: one trained here gets
/// its predictions on the data's first samples from `spec`.
fn settled(best: Best, spec: &ModelSpec, data: &Dataset) -> BestNetwork {
    match best {
        Best::Reported(best) => best,
        Best::Trained {
            index,
            learning_rate,
            final_loss,
            metrics: m,
            params,
            ..
        } => BestNetwork {
            index,
            learning_rate,
            final_loss,
            train_accuracy: m.train_accuracy,
            eval_loss: m.eval_loss,
            eval_accuracy: m.eval_accuracy,
            samples: (0..data.samples().min(SHOWN_SAMPLES))
                .map(|s| SamplePrediction {
                    inputs: data.input(s).to_vec(),
                    targets: data.target(s).to_vec(),
                    predictions: cpu::predict(spec, &params, data.input(s)),
                })
                .collect(),
        },
    }
}

/// Samples shown next to the best network's predictions.
const SHOWN_SAMPLES: usize = 4;

/// A network `--verify` re-trains: where it started, where it ended.
#[derive(Clone, Debug, PartialEq)]
pub struct CheckedNetwork {
    pub index: usize,
    pub learning_rate: f64,
    pub initial: Vec<f64>,
    pub trained: Vec<f64>,
    pub outcome: NetworkOutcome,
    /// With a resample, the network's row counts ([`crate::resample`]).
    pub rows: Option<Vec<u8>>,
}

/// What the summary keeps of a run as its blocks go by: every
/// non-diverged network's final loss (8 bytes), with a target every target
/// epoch reached (4 bytes), and its training accuracy, held-out loss and
/// accuracy where they exist (4 bytes each, float32), for exact quantiles;
/// counts; the best network; the networks `--verify` checks. Nothing else
/// per network.
#[derive(Clone, Debug, Default)]
pub struct Tally {
    networks: usize,
    finite_losses: Vec<f64>,
    target_epochs: Vec<u32>,
    train_accuracies: Vec<f32>,
    eval_losses: Vec<f32>,
    eval_accuracies: Vec<f32>,
    oob_losses: Vec<f32>,
    oob_accuracies: Vec<f32>,
    diverged: usize,
    not_started: usize,
    /// With early stopping: every network's best epoch, and how many
    /// stopped early.
    best_epochs: Vec<u32>,
    stopped_early: usize,
    network_epochs: f64,
    fewest_epochs: Option<u64>,
    /// The best network so far and the loss it is best by.
    best: Option<(f64, Best)>,
    /// Networks per grid point (0: no grid), which gives a network's
    /// point from its id.
    replicates: usize,
    verify_indices: Vec<usize>,
    checked: Vec<CheckedNetwork>,
}

/// Bytes [`Tally`] and the groups keep per network at most for `config`:
/// each the final loss and a target epoch, then 4 for the training
/// accuracy (class targets) and 4 each for the held-out loss and accuracy.
pub fn tally_bytes_per_network(config: &RunConfig) -> u64 {
    let classes = crate::evaluation::labels(&config.spec, &config.data).is_some();
    let eval = config.eval.as_ref();
    let eval_classes = eval.is_some_and(|e| crate::evaluation::labels(&config.spec, e).is_some());
    let history = config
        .history_plan()
        .map_or(0, |h| h.tally_bytes_per_network());
    // Twice: the summary's values, and the same again by grid point
    // ([`crate::groups::GroupTally`]).
    let per =
        8 + 4 + 4 * (u64::from(classes) + u64::from(eval.is_some()) + u64::from(eval_classes));
    // The summary's best epochs, with early stopping.
    let best_epochs = 4 * u64::from(config.spec.early_stopping.is_some());
    // The out-of-bag loss and accuracy, with a resample: the summary's and
    // the groups' again.
    let oob = 2 * 4 * u64::from(config.spec.resample.is_some()) * (1 + u64::from(classes));
    2 * per + history + best_epochs + oob
}

impl Tally {
    /// For a run of `networks` (space is reserved up front, so memory does
    /// not double on growth); `verify` lists the networks to keep for
    /// `--verify`, ascending.
    pub fn new(networks: usize, with_target: bool, verify: Vec<usize>) -> Self {
        Self {
            finite_losses: Vec::with_capacity(networks),
            target_epochs: Vec::with_capacity(if with_target { networks } else { 0 }),
            verify_indices: verify,
            ..Default::default()
        }
    }

    /// The grid's replicates per point, so the best network's point is
    /// known from its id.
    pub fn set_replicates(&mut self, replicates: usize) {
        self.replicates = replicates;
    }

    /// Computes the best network's predictions with `spec`, its grid
    /// point's model (a grid's points may differ in shape).
    pub fn settle_best(&mut self, spec: &ModelSpec, data: &Dataset) {
        if let Some((key, best)) = self.best.take() {
            self.best = Some((key, Best::Reported(settled(best, spec, data))));
        }
    }

    /// The grid point of the best network so far.
    pub fn best_point(&self) -> Option<usize> {
        match &self.best {
            Some((_, Best::Trained { point, .. })) => Some(*point),
            _ => None,
        }
    }

    /// Takes in network `index`: its rate, outcome and metrics, and its
    /// trained parameters where they are at hand (a candidate for the
    /// best network).
    pub fn record_network(
        &mut self,
        index: usize,
        learning_rate: f64,
        o: &NetworkOutcome,
        m: &NetworkMetrics,
        params: Option<&[f64]>,
    ) {
        self.networks += 1;
        self.not_started += usize::from(!o.evaluated());
        if !o.diverged && o.evaluated() {
            self.finite_losses.push(o.final_loss);
            self.train_accuracies
                .extend(m.train_accuracy.map(|a| a as f32));
            self.eval_losses.extend(m.eval_loss.map(|l| l as f32));
            self.eval_accuracies
                .extend(m.eval_accuracy.map(|a| a as f32));
            self.oob_losses.extend(m.oob_loss.map(|l| l as f32));
            self.oob_accuracies.extend(m.oob_accuracy.map(|a| a as f32));
            // Best by held-out loss where there is held-out data; the
            // first of equals.
            let key = m.eval_loss.unwrap_or(o.final_loss);
            if let Some(params) = params
                && key.is_finite()
                && self.best.as_ref().is_none_or(|b| key < b.0)
            {
                let best = Best::Trained {
                    index,
                    learning_rate,
                    final_loss: o.final_loss,
                    metrics: *m,
                    params: params.to_vec(),
                    point: index.checked_div(self.replicates).unwrap_or(0),
                };
                self.best = Some((key, best));
            }
        }
        self.diverged += usize::from(o.diverged);
        self.best_epochs
            .extend(m.best_epoch.map(|e| e.min(u64::from(u32::MAX)) as u32));
        self.stopped_early += usize::from(m.stopped_epoch.is_some());
        self.target_epochs.extend(o.target_epoch);
        self.network_epochs += o.epochs_completed as f64;
        self.fewest_epochs = Some(
            self.fewest_epochs
                .map_or(o.epochs_completed, |e| e.min(o.epochs_completed)),
        );
    }

    /// Offers a best network another run reported (a shard's, to merge),
    /// taken if it beats the best so far; offered in id order, the first
    /// of equals wins, as in one run.
    pub fn offer_best(&mut self, best: BestNetwork) {
        let key = best.eval_loss.unwrap_or(best.final_loss);
        if key.is_finite() && self.best.as_ref().is_none_or(|b| key < b.0) {
            self.best = Some((key, Best::Reported(best)));
        }
    }

    /// Takes in a trained block and its networks' metrics.
    pub fn record(&mut self, block: &TrainedBlock, metrics: &[NetworkMetrics]) {
        for (i, (o, m)) in block.outcomes.iter().zip(metrics).enumerate() {
            let lr = block.learning_rates[i];
            self.record_network(block.first + i, lr, o, m, Some(block.network(i)));
        }
        let range = block.first..block.first + block.len();
        for &index in self.verify_indices.iter().filter(|i| range.contains(i)) {
            let i = index - block.first;
            if !block.outcomes[i].evaluated() {
                continue; // never started: nothing to check
            }
            // Early stopping gave the network its weights at its best
            // epoch: a run to that epoch.
            let outcome = NetworkOutcome {
                epochs_completed: metrics[i]
                    .best_epoch
                    .unwrap_or(block.outcomes[i].epochs_completed),
                ..block.outcomes[i]
            };
            self.checked.push(CheckedNetwork {
                index,
                learning_rate: block.learning_rates[i],
                initial: block.initial_network(i).to_vec(),
                trained: block.network(i).to_vec(),
                outcome,
                rows: block.rows.map(|r| {
                    let samples = r.len() / block.len();
                    r[i * samples..(i + 1) * samples].to_vec()
                }),
            });
        }
    }

    /// The networks kept for `--verify`.
    pub fn checked(&self) -> &[CheckedNetwork] {
        &self.checked
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "the summary draws on every part of a run"
)]
pub fn summarize(
    spec: &ModelSpec,
    data: &Dataset,
    options: &TrainOptions,
    backend: &BackendInfo,
    mut tally: Tally,
    seconds: f64,
    verify: Option<VerifyReport>,
    notes: Vec<String>,
    eval: Option<&Dataset>,
) -> Summary {
    tally.settle_best(spec, data);
    let mut summary = Summary {
        version: crate::VERSION.to_string(),
        seed: 0,
        command: Vec::new(),
        backend: backend.backend.device_kind().to_string(),
        adapter: backend.device(),
        strategy: backend.backend.strategy_name().to_string(),
        data: data.name.clone(),
        topology: spec.topology.to_string(),
        activation: spec.activation.to_string(),
        output_activation: spec.output_activation.to_string(),
        bias: spec.bias.to_string(),
        freeze_bias: spec.freeze_bias,
        loss: spec.loss.to_string(),
        reduction: spec.reduction.to_string(),
        optimizer: spec.optimizer.describe(),
        lr_schedule: spec.schedule.describe(),
        batches: batches_text(spec, data),
        networks: 0,
        epochs: options.epochs,
        interrupted: false,
        epochs_completed: options.epochs,
        network_epochs_completed: 0,
        wall_seconds: seconds,
        network_epochs_per_second: 0.0,
        final_loss: None,
        target_loss: options.target_loss,
        reached_target: 0,
        median_target_epoch: None,
        diverged: 0,
        early_stopping: spec
            .early_stopping
            .map(|r| format!("patience {}, checked every {} epochs", r.patience, r.every)),
        stopped_early: None,
        median_best_epoch: None,
        not_started: 0,
        resample: spec
            .resample
            .map(|r| format!("{}, data seed {}", r.how, r.seed)),
        oob_loss: None,
        oob_accuracy: None,
        train_accuracy: None,
        solved: None,
        eval_data: eval.map(|e| format!("{}, {} samples", e.name, e.samples())),
        eval_loss: None,
        eval_accuracy: None,
        samples: data.samples(),
        eval_samples: eval.map(Dataset::samples),
        train_loss_per_sample: None,
        eval_loss_per_sample: None,
        best: None,
        verify,
        notes,
        history: None,
        fingerprint: String::new(),
        grid: Vec::new(),
        groups: Vec::new(),
        best_point: None,
    };
    apply_tally(&mut summary, tally, seconds);
    summary
}

/// Fills the summary's population figures from `tally` (whose best
/// network is settled: [`Tally::settle_best`], or offered by a shard),
/// with `seconds` of training: what `merge` recomputes over its shards.
pub fn apply_tally(summary: &mut Summary, tally: Tally, seconds: f64) {
    let Tally {
        networks,
        mut finite_losses,
        mut target_epochs,
        train_accuracies,
        eval_losses,
        eval_accuracies,
        oob_losses,
        oob_accuracies,
        diverged,
        not_started,
        mut best_epochs,
        stopped_early,
        network_epochs,
        fewest_epochs,
        best,
        ..
    } = tally;
    best_epochs.sort_unstable();
    target_epochs.sort_unstable();
    let quantiles = |values: Vec<f32>| {
        let mut values: Vec<f64> = values.into_iter().map(f64::from).collect();
        Quantiles::of(&mut values)
    };
    let epochs_completed = fewest_epochs.unwrap_or(summary.epochs);
    summary.networks = networks;
    summary.interrupted = epochs_completed < summary.epochs;
    summary.epochs_completed = epochs_completed;
    summary.network_epochs_completed = network_epochs as u64;
    summary.wall_seconds = seconds;
    summary.network_epochs_per_second = if seconds > 0.0 {
        network_epochs / seconds
    } else {
        0.0
    };
    summary.final_loss = Quantiles::of(&mut finite_losses);
    summary.reached_target = target_epochs.len();
    summary.median_target_epoch = target_epochs
        .get(target_epochs.len().saturating_sub(1) / 2)
        .copied();
    summary.diverged = diverged;
    if summary.early_stopping.is_some() {
        summary.stopped_early = Some(stopped_early);
        summary.median_best_epoch = best_epochs
            .get(best_epochs.len().saturating_sub(1) / 2)
            .map(|&e| u64::from(e));
    }
    summary.not_started = not_started;
    summary.solved = (!train_accuracies.is_empty())
        .then(|| train_accuracies.iter().filter(|&&a| a == 1.0).count());
    summary.train_accuracy = quantiles(train_accuracies);
    summary.eval_loss = quantiles(eval_losses);
    summary.eval_accuracy = quantiles(eval_accuracies);
    summary.oob_loss = quantiles(oob_losses);
    summary.oob_accuracy = quantiles(oob_accuracies);
    let reduction = Reduction::ALL
        .into_iter()
        .find(|r| r.to_string() == summary.reduction);
    let per_sample = |q: &Option<Quantiles>, samples: Option<usize>| match (q, samples, reduction) {
        (Some(q), Some(n), Some(r)) if n > 0 => Some(q.map(|l| r.per_sample(l, n))),
        _ => None,
    };
    summary.train_loss_per_sample = per_sample(&summary.final_loss, Some(summary.samples));
    summary.eval_loss_per_sample = per_sample(&summary.eval_loss, summary.eval_samples);
    summary.best = best.map(|(_, best)| match best {
        Best::Reported(best) => best,
        Best::Trained { .. } => unreachable!("the best network is settled first"),
    });
}

/// How the model's updates batch the data, as the summary says it.
pub fn batches_text(spec: &ModelSpec, data: &Dataset) -> String {
    match spec.batching {
        None => "full batch".to_string(),
        Some(b) => format!(
            "batches of {}, {}",
            b.size.min(data.samples()),
            if b.shuffle {
                "shuffled"
            } else {
                "in the data's order"
            }
        ),
    }
}

fn list(values: &[f64]) -> String {
    let parts: Vec<String> = values.iter().map(|v| format!("{v:.6}")).collect();
    format!("[{}]", parts.join(", "))
}

/// The summary a person reads.
/// The median learning curve at five epochs spread over the recorded ones.
fn history_line(points: &[crate::history::HistoryPoint]) -> String {
    let shown = spread(points.len(), 5);
    let cells: Vec<String> = shown
        .iter()
        .map(|&q| {
            let p = &points[q];
            match &p.loss {
                Some(l) => format!("{} {:.3e}", p.epoch, l.median),
                None => format!("{} -", p.epoch),
            }
        })
        .collect();
    format!(
        "median loss by epoch: {} ({} recorded epochs)",
        cells.join(", "),
        points.len()
    )
}

pub fn render(s: &Summary) -> String {
    let mut out = String::new();
    let mut line = |text: String| {
        out.push_str(&text);
        out.push('\n');
    };
    let trained = match s.interrupted {
        false => format!("trained {} networks x {} epochs", s.networks, s.epochs),
        true => format!(
            "stopped at {:.1}% of {} networks x {} epochs",
            100.0 * s.done_share(),
            s.networks,
            s.epochs
        ),
    };
    line(format!(
        "{trained}: {} {} (hidden) / {} (output), {} biases{}, {} loss ({}), data {}",
        s.topology,
        s.activation,
        s.output_activation,
        s.bias,
        if s.freeze_bias { " (frozen)" } else { "" },
        s.loss,
        s.reduction,
        s.data
    ));
    match s.lr_schedule.as_str() {
        "constant" => line(format!("optimizer: {}, {}", s.optimizer, s.batches)),
        schedule => line(format!(
            "optimizer: {}, learning rate {schedule}, {}",
            s.optimizer, s.batches
        )),
    }
    if s.interrupted {
        line(format!(
            "interrupted: {} of {} network-epochs done; every network completed at least {} of \
             {} epochs (the results file has each network's count)",
            s.network_epochs_completed,
            s.networks as u64 * s.epochs,
            s.epochs_completed,
            s.epochs
        ));
    }
    if s.not_started > 0 {
        line(format!(
            "not started: {} of {} networks (the stop came before them: not trained or \
             evaluated; a resume trains them)",
            s.not_started, s.networks
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
    // "mse summed over 150 samples": what a loss figure is.
    let over = |samples: usize| {
        let how = match s.reduction.as_str() {
            "sum" => "summed",
            "mean" => "mean",
            other => other,
        };
        format!("{} {how} over {samples} samples", s.loss)
    };
    let five = |q: &Quantiles| {
        format!(
            "min {:.4e}  10% {:.4e}  median {:.4e}  90% {:.4e}  max {:.4e}",
            q.min, q.p10, q.median, q.p90, q.max
        )
    };
    if let Some(q) = &s.final_loss {
        line(format!("final loss ({}): {}", over(s.samples), five(q)));
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
    if let (Some(rule), Some(stopped)) = (&s.early_stopping, s.stopped_early) {
        line(format!(
            "early stopping ({rule}): {stopped} of {} stopped early{}; each has its best \
             weights",
            s.networks,
            s.median_best_epoch
                .map(|e| format!(", median best epoch {e}"))
                .unwrap_or_default()
        ));
    }
    let percent = |v: f64| format!("{:.1}%", 100.0 * v);
    let percents = |q: &Quantiles| {
        format!(
            "min {}  10% {}  median {}  90% {}  max {}",
            percent(q.min),
            percent(q.p10),
            percent(q.median),
            percent(q.p90),
            percent(q.max)
        )
    };
    if let (Some(q), Some(solved)) = (&s.train_accuracy, s.solved) {
        line(format!(
            "train accuracy: {}; solved (100%): {solved} of {}",
            percents(q),
            s.networks
        ));
    }
    if let Some(resample) = &s.resample {
        line(format!(
            "each network on its own {resample} (training loss and accuracy over it)"
        ));
        if let Some(q) = &s.oob_loss {
            line(format!("out-of-bag loss (its undrawn rows): {}", five(q)));
        }
        if let Some(q) = &s.oob_accuracy {
            line(format!("out-of-bag accuracy: {}", percents(q)));
        }
    }
    if let Some(eval) = &s.eval_data {
        line(format!("held-out data: {eval}"));
        if let Some(q) = &s.eval_loss {
            let samples = s.eval_samples.unwrap_or_default();
            line(format!("eval loss ({}): {}", over(samples), five(q)));
        }
        // Sums over row sets of different sizes do not compare: their
        // means do.
        if let (true, Some(train), Some(eval)) = (
            s.reduction == Reduction::Sum.to_string(),
            &s.train_loss_per_sample,
            &s.eval_loss_per_sample,
        ) {
            let median = |q: &Quantiles| {
                format!(
                    "median {:.4e} (10%-90% {:.4e}-{:.4e})",
                    q.median, q.p10, q.p90
                )
            };
            line(format!(
                "loss per sample (each sum / its samples): train {}, held-out {}",
                median(train),
                median(eval)
            ));
        }
        match &s.eval_accuracy {
            Some(q) => line(format!("eval accuracy: {}", percents(q))),
            None => line(
                "eval accuracy: none (the targets are not class labels: 0/1 for one output, \
                 -1/1 for tanh, one-hot rows for several)"
                    .to_string(),
            ),
        }
    }
    if let Some(points) = &s.history {
        line(history_line(points));
    }
    if let Some(b) = &s.best {
        let mut also = String::new();
        if let Some(a) = b.train_accuracy {
            also.push_str(&format!(", train accuracy {}", percent(a)));
        }
        if let Some(l) = b.eval_loss {
            also.push_str(&format!(", eval loss {l:.6e} (best by it)"));
        }
        if let Some(a) = b.eval_accuracy {
            also.push_str(&format!(", eval accuracy {}", percent(a)));
        }
        line(format!(
            "best network: #{} (learning rate {}), final loss {:.6e}{also}",
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
    if !s.grid.is_empty() {
        let flags: Vec<&str> = s.grid.iter().map(|a| a.flag.as_str()).collect();
        line(format!(
            "by grid point ({} points x {} networks; Wilson 95% intervals):",
            s.groups.len(),
            s.groups.first().map_or(0, |g| g.networks)
        ));
        out_table(&mut line, &crate::groups::table(&flags, &s.groups));
        if let Some(best) = &s.best_point {
            line(crate::groups::best_point_line(best));
        }
    }
    if let Some(v) = &s.verify {
        line(format!(
            "verify: {} networks re-trained in float64: max prediction diff {:.3e}, max parameter diff {:.3e} (network #{}); tolerance {:e}: {}",
            v.networks.len() - v.sensitive.len(),
            v.max_prediction_diff,
            v.max_parameter_diff,
            v.worst_network,
            v.tolerance,
            if v.passed { "PASS" } else { "FAIL" }
        ));
        if !v.sensitive.is_empty() {
            line(format!(
                "verify: {} more left out, too sensitive to compare float32 with float64 (float32 rounding moves the reference by up to {:.3e}): {}",
                v.sensitive.len(),
                v.max_sensitivity,
                list_networks(&v.sensitive)
            ));
        }
    }
    out
}

/// Network ids for a message: the first few, and how many more.
fn list_networks(ids: &[usize]) -> String {
    let shown: Vec<String> = ids.iter().take(8).map(|i| format!("#{i}")).collect();
    match ids.len() > 8 {
        true => format!("{} and {} more", shown.join(", "), ids.len() - 8),
        false => shown.join(", "),
    }
}

/// Adds a multi-line text, indented, a line at a time.
fn out_table(line: &mut dyn FnMut(String), text: &str) {
    for row in text.lines() {
        line(format!("  {row}"));
    }
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

impl VerifyReport {
    /// The report over both sets of networks (a grid's points, each
    /// verified with its own model).
    pub fn combine(mut self, other: VerifyReport) -> VerifyReport {
        self.networks.extend(other.networks);
        if other.max_prediction_diff > self.max_prediction_diff {
            self.max_prediction_diff = other.max_prediction_diff;
            self.worst_network = other.worst_network;
        }
        self.max_parameter_diff = self.max_parameter_diff.max(other.max_parameter_diff);
        self.sensitive.extend(other.sensitive);
        self.max_sensitivity = self.max_sensitivity.max(other.max_sensitivity);
        self.passed &= other.passed;
        self
    }
}

/// The separation of a float32 twin from the reference beyond which
/// float32 rounding counts as amplified whatever the tolerance: about 100
/// float32 epsilons (2^-23 = 1.2e-7). Float32 rounding alone moves a
/// network's predictions by about 1e-7 to 1e-6 (5.4e-7 measured on xor
/// 2-3-1, 500 epochs, rounding the stored values), so a tolerance below
/// that is not excused by it.
const AMPLIFIED: f64 = 1e-5;

/// The float32 twins `--verify` trains for a network beyond the
/// tolerance: every value rounded to the nearest float32, then the rest
/// rounded up or down at random ([`cpu::train_network_in_float32`]'s
/// `nudge`). One twin is one sample of float32's rounding: in a chaotic
/// regime it may happen to follow the reference where the kernel's own
/// rounding does not (moons and circles sweeps at rates above 2 showed
/// it), so a few are drawn.
const FLOAT32_TWINS: u64 = 3;

/// The relative change of every starting parameter (one way or the other,
/// by a fixed pattern) with which `--verify` measures the float64
/// reference's own sensitivity to its start: 2^-30, a 64th of one float32
/// rounding ([`FLOAT32_ROUNDING`]), small enough that the separation it
/// causes grows in proportion to it outside chaotic regimes. Measured on
/// `--task circles --lr 2..5 --networks 200` (20,000 epochs, 126 networks,
/// a change of 1e-9): 94 networks moved their predictions by less than
/// the change itself, one by 58 times it, and the other 31 by 3.4e3 to
/// 1e9 times it; every network the SIMD trainer and the reference trained
/// more than 1e-3 apart was among them (a change of 1e-12 already flips
/// networks #2, #6 and #9), so one float32 rounding moves those by 2e-4
/// or more and the stable ones by under 6e-8 (1e-3's tenth lies between).
const START_NUDGE: f64 = 1.0 / (1u64 << 30) as f64;

/// One float32 rounding, relative: half an ulp, 2^-24.
const FLOAT32_ROUNDING: f64 = 1.0 / (1u64 << 24) as f64;

/// The largest difference between two networks' predictions over `data`.
fn predictions_diff(spec: &ModelSpec, data: &Dataset, a: &[f64], b: &[f64]) -> f64 {
    let mut diff: f64 = 0.0;
    for s in 0..data.samples() {
        let (x, y) = (
            cpu::predict(spec, a, data.input(s)),
            cpu::predict(spec, b, data.input(s)),
        );
        for (x, y) in x.iter().zip(&y) {
            diff = diff.max((x - y).abs());
        }
    }
    diff
}

/// The float64 reference's own sensitivity to its start, which float32
/// twins may miss in a chaotic regime (their few roundings can happen to
/// follow the reference where a kernel's do not): what one float32
/// rounding of every starting parameter would move the predictions of
/// `reference` (network `c` trained over `options`) by, extrapolated
/// linearly from a change `START_NUDGE` 64 times smaller; infinite where
/// that change makes it diverge.
fn start_sensitivity(
    spec: &ModelSpec,
    data: &Dataset,
    options: &TrainOptions,
    c: &CheckedNetwork,
    reference: &[f64],
) -> f64 {
    let mut nudged = c.initial.clone();
    for (i, v) in nudged.iter_mut().enumerate() {
        let sign = match cpu::splitmix64(i as u64) & 1 {
            0 => 1.0,
            _ => -1.0,
        };
        *v *= 1.0 + sign * START_NUDGE;
    }
    let weights = c.weights(spec);
    match train_reference(spec, data, weights.as_deref(), &mut nudged, c, options).diverged {
        true => f64::INFINITY,
        false => {
            predictions_diff(spec, data, &nudged, reference) * (FLOAT32_ROUNDING / START_NUDGE)
        }
    }
}

/// `--verify K`: re-train K networks spread over the population in
/// float64 and compare predictions within `tolerance` ([`verify`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VerifyPlan {
    pub networks: usize,
    pub tolerance: f64,
}

impl CheckedNetwork {
    /// Its row weights, with a resample.
    fn weights(&self, spec: &ModelSpec) -> Option<Vec<f64>> {
        let counts = self.rows.as_deref()?;
        spec.resample.map(|r| r.weights(counts))
    }
}

/// `c` trained again by the float64 reference from `params`, on its rows.
fn train_reference(
    spec: &ModelSpec,
    data: &Dataset,
    weights: Option<&[f64]>,
    params: &mut [f64],
    c: &CheckedNetwork,
    options: &TrainOptions,
) -> NetworkOutcome {
    let mut state = vec![0.0; spec.optimizer.state_slots() * params.len()];
    let never = &|| false;
    let lr = c.learning_rate;
    cpu::train_network_until(
        spec, data, weights, params, &mut state, lr, options, never, None,
    )
}

/// Re-trains the `checked` networks with the float64 reference from their
/// starting parameters and compares predictions over the whole data set
/// and parameters with what the run trained. A network beyond the
/// tolerance is compared with float32 twins, the same training with every
/// value rounded to float32 ([`cpu::train_network_in_float32`],
/// `FLOAT32_TWINS` of them): within the tolerance of one, it passes; else,
/// if a twin separates from the reference by more than a tenth of the
/// tolerance (and at least `AMPLIFIED`), or the reference itself would
/// from one float32 rounding of its start (measured with a change of
/// `START_NUDGE`, scaled linearly), float32 rounding is amplified there
/// and the network is reported as too sensitive to compare
/// ([`VerifyReport::sensitive`]); else it fails. A wrong kernel differs
/// from every twin where they agree and the reference is insensitive.
pub fn verify(
    spec: &ModelSpec,
    data: &Dataset,
    options: &TrainOptions,
    checked: &[CheckedNetwork],
    tolerance: f64,
) -> VerifyReport {
    let mut report = VerifyReport {
        networks: checked.iter().map(|c| c.index).collect(),
        max_prediction_diff: 0.0,
        max_parameter_diff: 0.0,
        worst_network: checked.first().map_or(0, |c| c.index),
        tolerance,
        sensitive: Vec::new(),
        max_sensitivity: 0.0,
        passed: true,
    };
    let predictions_diff = |a: &[f64], b: &[f64]| predictions_diff(spec, data, a, b);
    for c in checked {
        let mut reference = c.initial.clone();
        // An interrupted run is compared over the epochs it completed.
        let options = TrainOptions {
            epochs: c.outcome.epochs_completed,
            ..*options
        };
        let weights = c.weights(spec);
        let weights = weights.as_deref();
        let expected = train_reference(spec, data, weights, &mut reference, c, &options);
        let got = &c.trained;
        if expected.diverged || c.outcome.diverged {
            if expected.diverged != c.outcome.diverged {
                report.passed = false;
                report.max_prediction_diff = f64::INFINITY;
                report.worst_network = c.index;
            }
            continue;
        }
        let mut prediction_diff = predictions_diff(got, &reference);
        if prediction_diff > tolerance {
            // The yardsticks: the same training in float32 values, from
            // the float32 rounding of the start and from starts one ulp
            // away. A kernel that matches one is right; where they
            // separate from the reference, float32 rounding is amplified
            // and the network cannot be compared.
            let mut sensitivity: f64 = 0.0;
            let mut matched = None;
            for nudge in 0..FLOAT32_TWINS {
                let mut twin = c.initial.clone();
                let twin_outcome = cpu::train_network_in_float32(
                    spec,
                    data,
                    weights,
                    &mut twin,
                    c.learning_rate,
                    &options,
                    nudge,
                );
                if twin_outcome.diverged {
                    continue;
                }
                let to_twin = predictions_diff(got, &twin);
                sensitivity = sensitivity.max(predictions_diff(&twin, &reference));
                if to_twin <= tolerance {
                    matched = Some((to_twin, twin));
                    break;
                }
            }
            // The start's yardstick only where the twins do not already
            // show the amplification (one float64 training saved per
            // chaotic network).
            let amplified = (tolerance / 10.0).max(AMPLIFIED);
            if matched.is_none() && sensitivity <= amplified {
                let start = start_sensitivity(spec, data, &options, c, &reference);
                sensitivity = sensitivity.max(start);
            }
            if let Some((to_twin, twin)) = matched {
                prediction_diff = to_twin;
                reference = twin;
            } else if sensitivity > amplified {
                report.sensitive.push(c.index);
                report.max_sensitivity = report.max_sensitivity.max(sensitivity);
                continue;
            }
        }
        let parameter_diff = got
            .iter()
            .zip(&reference)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        if prediction_diff > report.max_prediction_diff {
            report.max_prediction_diff = prediction_diff;
            report.worst_network = c.index;
        }
        report.max_parameter_diff = report.max_parameter_diff.max(parameter_diff);
    }
    report.passed &= report.max_prediction_diff <= tolerance;
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Task;
    use crate::init::{Init, network_parameters};
    use crate::model::Topology;

    /// Network `index` of a 2-3-1 xor population trained `epochs` with
    /// `lr`, by the float64 reference with `lr_error` relative error (a
    /// deliberately wrong kernel when non-zero).
    fn checked(index: usize, lr: f64, lr_error: f64, options: &TrainOptions) -> CheckedNetwork {
        let spec = xor_spec();
        let initial = network_parameters(&spec, Init::Xavier, 7, index as u64);
        let mut trained = initial.clone();
        let data = Task::Xor.dataset();
        let outcome =
            cpu::train_network(&spec, &data, &mut trained, lr * (1.0 + lr_error), options);
        CheckedNetwork {
            index,
            learning_rate: lr,
            initial,
            trained,
            outcome,
            rows: None,
        }
    }

    fn xor_spec() -> ModelSpec {
        ModelSpec {
            topology: Topology::new(vec![2, 3, 1]).unwrap(),
            ..ModelSpec::default()
        }
    }

    #[test]
    fn verify_fails_a_wrong_kernel_where_float32_rounding_is_not_amplified() {
        let options = TrainOptions {
            epochs: 2_000,
            ..TrainOptions::default()
        };
        let data = Task::Xor.dataset();
        // The right kernel (here the reference itself) passes.
        let right: Vec<CheckedNetwork> = (0..4).map(|i| checked(i, 0.5, 0.0, &options)).collect();
        let report = verify(&xor_spec(), &data, &options, &right, 1e-3);
        assert!(report.passed && report.sensitive.is_empty(), "{report:?}");
        assert_eq!(report.max_prediction_diff, 0.0);
        // A kernel whose step is 5% too long: the twins (float64 and
        // float32 storage) agree, so it fails, and is not excused as
        // sensitive.
        let wrong: Vec<CheckedNetwork> = (0..4).map(|i| checked(i, 0.5, 0.05, &options)).collect();
        let report = verify(&xor_spec(), &data, &options, &wrong, 1e-3);
        assert!(!report.passed, "{report:?}");
        assert!(report.sensitive.is_empty(), "{report:?}");
        assert!(report.max_prediction_diff > 1e-3, "{report:?}");
    }

    /// `--task circles --lr 2..5 --networks 200` (20,000 epochs): its
    /// model, data, training and network `index` trained by the float64
    /// reference from a start one float32 rounding away (2^-24, another
    /// pattern than `start_sensitivity`'s), a kernel's stand-in.
    fn circles_network(index: usize) -> (ModelSpec, Dataset, TrainOptions, CheckedNetwork) {
        let spec = ModelSpec {
            topology: Topology::new(vec![2, 8, 1]).unwrap(),
            bias: crate::model::BiasMode::PerNeuron,
            ..ModelSpec::default()
        };
        let (data, options) = (Task::Circles.dataset(), TrainOptions::default());
        let lr = 2.0 * 2.5f64.powf(index as f64 / 199.0);
        let initial = network_parameters(&spec, Init::Xavier, 0, index as u64);
        let mut trained = initial.clone();
        for (i, v) in trained.iter_mut().enumerate() {
            *v *= 1.0 + if i % 3 == 0 { 1.0 } else { -1.0 } * FLOAT32_ROUNDING;
        }
        let outcome = cpu::train_network(&spec, &data, &mut trained, lr, &options);
        let network = CheckedNetwork {
            index,
            learning_rate: lr,
            initial,
            trained,
            outcome,
            rows: None,
        };
        (spec, data, options, network)
    }

    #[test]
    fn verify_leaves_out_a_chaotic_network_one_float32_rounding_away() {
        // Network #9 (lr 2.0855) is chaotic (a 1e-12 change of its start
        // flips its predictions in float64), #0 (lr 2) is not (a change
        // moves them by 7e-8 times it): #0 passes, compared; #9 is left
        // out, not failed. (A wrong kernel there would be too: at these
        // rates the predictions saturate at 0 and 1 within a few epochs,
        // so a step 5% too long ends 5e-9 from the right ones; the xor
        // test above fails one where the reference is insensitive.)
        let (spec, data, options, zero) = circles_network(0);
        let checked = [zero, circles_network(9).3];
        let report = verify(&spec, &data, &options, &checked, 1e-3);
        assert!(report.passed, "{report:?}");
        assert_eq!(report.sensitive, vec![9], "{report:?}");
        assert!(report.max_sensitivity > 1e-2, "{report:?}");
        assert!(report.max_prediction_diff < 1e-6, "{report:?}");
    }

    #[test]
    fn the_start_measures_a_sensitivity_the_float32_twins_miss() {
        // Network #180 of the circles sweep (lr 4.58): the SIMD trainer
        // (AVX2) ended 1.0 from the reference, while all three float32
        // twins stay within 1e-4 of it; a 2^-30 change of its start, scaled
        // to one float32 rounding, moves it by 2.5e-4. Network #0 is
        // insensitive by both measures (4e-15 from its start).
        let (spec, data, options, chaotic) = circles_network(180);
        let mut reference = chaotic.initial.clone();
        cpu::train_network(
            &spec,
            &data,
            &mut reference,
            chaotic.learning_rate,
            &options,
        );
        for nudge in 0..FLOAT32_TWINS {
            let mut twin = chaotic.initial.clone();
            let lr = chaotic.learning_rate;
            cpu::train_network_in_float32(&spec, &data, None, &mut twin, lr, &options, nudge);
            let separation = predictions_diff(&spec, &data, &twin, &reference);
            assert!(separation < 1e-4, "twin {nudge}: {separation:e}");
        }
        let sensitivity = start_sensitivity(&spec, &data, &options, &chaotic, &reference);
        // 2.5e-4 measured: beyond 1e-4, a tenth of the default tolerance.
        assert!(sensitivity > 1e-4, "#180: {sensitivity:e}");
        let (.., stable) = circles_network(0);
        let mut reference = stable.initial.clone();
        cpu::train_network(&spec, &data, &mut reference, stable.learning_rate, &options);
        let sensitivity = start_sensitivity(&spec, &data, &options, &stable, &reference);
        assert!(sensitivity < 1e-9, "#0: {sensitivity:e}");
    }

    #[test]
    fn the_float32_twin_rounds_parameters_and_state_every_update() {
        let spec = ModelSpec {
            optimizer: crate::vocab::OptimizerConfig::of(crate::model::Optimizer::Adam),
            ..xor_spec()
        };
        let data = Task::Xor.dataset();
        let options = TrainOptions {
            epochs: 50,
            ..TrainOptions::default()
        };
        let initial = network_parameters(&spec, Init::Xavier, 1, 0);
        let (mut exact, mut stored) = (initial.clone(), initial.clone());
        cpu::train_network(&spec, &data, &mut exact, 0.05, &options);
        cpu::train_network_in_float32(&spec, &data, None, &mut stored, 0.05, &options, 0);
        assert!(
            stored.iter().all(|&p| p == p as f32 as f64),
            "every value float32"
        );
        // Close (float32 rounding), but not the float64 run's values.
        let diff = exact
            .iter()
            .zip(&stored)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        assert!(diff > 0.0 && diff < 1e-5, "{diff}");
    }

    #[test]
    fn the_float32_twin_rounds_outputs_so_a_saturated_sigmoid_has_no_slope() {
        // 1-1, sigmoid, one sample x = 1, target 0, net 20: in float64 the
        // output is 1 - 2.1e-9 and its slope 2.1e-9, which at lr 1e6 moves
        // both parameters by about 2e-3; in float32 the output is exactly
        // 1, the slope 0, and nothing moves. Rounding only the stored
        // parameters would move them as float64 does.
        let spec = ModelSpec {
            topology: Topology::new(vec![1, 1]).unwrap(),
            ..ModelSpec::default()
        };
        let data = Dataset::new("one", 1, 1, vec![1.0], vec![0.0]).unwrap();
        let options = TrainOptions {
            epochs: 1,
            ..TrainOptions::default()
        };
        let start = vec![10.0; spec.layout().len];
        let (mut exact, mut twin) = (start.clone(), start.clone());
        cpu::train_network(&spec, &data, &mut exact, 1e6, &options);
        cpu::train_network_in_float32(&spec, &data, None, &mut twin, 1e6, &options, 0);
        assert_eq!(twin, start, "float32: a zero slope");
        for (p, s) in exact.iter().zip(&start) {
            assert!((s - p - 2.06e-3).abs() < 1e-5, "float64 moved {p} from {s}");
        }
    }

    #[test]
    fn a_dithered_float32_twin_starts_from_float32_neighbours_not_always_the_nearest() {
        let spec = xor_spec();
        let data = Task::Xor.dataset();
        let options = TrainOptions {
            epochs: 0,
            ..TrainOptions::default()
        };
        let initial = network_parameters(&spec, Init::Xavier, 3, 0);
        let (mut nearest, mut other) = (0, 0);
        for nudge in 1..FLOAT32_TWINS {
            let mut twin = initial.clone();
            cpu::train_network_in_float32(&spec, &data, None, &mut twin, 0.5, &options, nudge);
            for (t, p) in twin.iter().zip(&initial) {
                assert_eq!(*t, *t as f32 as f64, "nudge {nudge}: a float32 value");
                let ulp = ((*p as f32).next_up() as f64 - *p as f32 as f64).abs();
                assert!(
                    (t - p).abs() < ulp,
                    "nudge {nudge}: {t} is no neighbour of {p}"
                );
                match *t == *p as f32 as f64 {
                    true => nearest += 1,
                    false => other += 1,
                }
            }
        }
        assert!(nearest > 0 && other > 0, "{nearest} nearest, {other} other");
    }
}
