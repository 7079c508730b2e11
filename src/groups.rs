//! Statistics per grid point: how many networks reached the target (with
//! a Wilson 95% interval), how fast (median and quartiles of the target
//! epoch), final-loss quantiles, diverged networks, accuracy; as an
//! aligned table, CSV and JSON, and for a one-axis sweep, the best point.

use serde::{Deserialize, Serialize};

use crate::stats::Quantiles;
use crate::training::NetworkMetrics;
use crate::training::NetworkOutcome;

/// z of a two-sided 95% normal interval.
const Z95: f64 = 1.959_963_984_540_054;

/// Wilson's 95% score interval for `successes` of `n` (n > 0).
pub fn wilson(successes: usize, n: usize) -> [f64; 2] {
    let (k, n) = (successes as f64, n as f64);
    let p = k / n;
    let z2 = Z95 * Z95;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = Z95 / denominator * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    [(center - half).max(0.0), (center + half).min(1.0)]
}

/// A share of a point's networks with its Wilson 95% interval.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub count: usize,
    pub share: f64,
    pub low: f64,
    pub high: f64,
}

impl Share {
    fn of(count: usize, n: usize) -> Option<Self> {
        (n > 0).then(|| {
            let [low, high] = wilson(count, n);
            Share {
                count,
                share: count as f64 / n as f64,
                low,
                high,
            }
        })
    }
}

/// Median and quartiles (nearest rank) of the target epochs reached.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochQuartiles {
    pub q1: u32,
    pub median: u32,
    pub q3: u32,
}

/// One grid point's statistics.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GroupStats {
    pub point: usize,
    /// The point's value on each grid axis (the summary's `grid` names them).
    pub values: Vec<String>,
    /// Its first network's id.
    pub first_network: usize,
    pub networks: usize,
    /// Networks that reached `--target-loss` (with a target).
    pub reached_target: Option<Share>,
    pub target_epoch: Option<EpochQuartiles>,
    /// Quantiles of the finite final losses.
    pub final_loss: Option<Quantiles>,
    pub diverged: usize,
    /// Networks at 100% training accuracy (class targets).
    pub solved: Option<Share>,
    pub median_train_accuracy: Option<f64>,
    pub median_eval_loss: Option<f64>,
    pub median_eval_accuracy: Option<f64>,
    /// With early stopping: networks that stopped early (stopped, not
    /// diverged), and the median of their best epochs.
    #[serde(default)]
    pub stopped_early: Option<usize>,
    #[serde(default)]
    pub median_best_epoch: Option<u64>,
    /// With a resample: the medians of the networks' out-of-bag loss and
    /// accuracy.
    #[serde(default)]
    pub median_oob_loss: Option<f64>,
    #[serde(default)]
    pub median_oob_accuracy: Option<f64>,
}

/// What the groups keep per network as blocks go by: the final loss and
/// target epoch (for exact quantiles), and float32 accuracies and
/// held-out losses where they exist.
#[derive(Clone, Debug, Default)]
struct Group {
    networks: usize,
    losses: Vec<f64>,
    target_epochs: Vec<u32>,
    diverged: usize,
    solved: usize,
    accuracies: Vec<f32>,
    eval_losses: Vec<f32>,
    eval_accuracies: Vec<f32>,
    /// With early stopping: best epochs, and the networks stopped early.
    best_epochs: Vec<u32>,
    stopped_early: usize,
    /// With a resample: out-of-bag losses and accuracies.
    oob_losses: Vec<f32>,
    oob_accuracies: Vec<f32>,
}

/// Every point's `Group`.
#[derive(Clone, Debug)]
pub struct GroupTally {
    groups: Vec<Group>,
    replicates: usize,
    with_target: bool,
}

impl GroupTally {
    pub fn new(points: usize, replicates: usize, with_target: bool) -> Self {
        Self {
            groups: vec![Group::default(); points],
            replicates,
            with_target,
        }
    }

    /// Takes in networks of `point`.
    pub fn record(
        &mut self,
        point: usize,
        outcomes: &[NetworkOutcome],
        metrics: &[NetworkMetrics],
    ) {
        let g = &mut self.groups[point];
        for (o, m) in outcomes.iter().zip(metrics) {
            g.networks += 1;
            g.target_epochs.extend(o.target_epoch);
            g.best_epochs
                .extend(m.best_epoch.map(|e| e.min(u64::from(u32::MAX)) as u32));
            g.stopped_early += usize::from(m.stopped_epoch.is_some());
            if o.diverged {
                g.diverged += 1;
                continue;
            }
            if !o.evaluated() {
                continue; // never started: no loss to count
            }
            g.losses.push(o.final_loss);
            if let Some(a) = m.train_accuracy {
                g.accuracies.push(a as f32);
                g.solved += usize::from(a == 1.0);
            }
            g.eval_losses.extend(m.eval_loss.map(|l| l as f32));
            g.eval_accuracies.extend(m.eval_accuracy.map(|a| a as f32));
            g.oob_losses.extend(m.oob_loss.map(|l| l as f32));
            g.oob_accuracies.extend(m.oob_accuracy.map(|a| a as f32));
        }
    }

    /// Every point's statistics, in grid order; `labels(point)` gives a
    /// point's values on the axes.
    pub fn finish(self, labels: &dyn Fn(usize) -> Vec<String>) -> Vec<GroupStats> {
        let median = |values: Vec<f32>| {
            let mut values: Vec<f64> = values.into_iter().map(f64::from).collect();
            Quantiles::of(&mut values).map(|q| q.median)
        };
        let replicates = self.replicates;
        let with_target = self.with_target;
        self.groups
            .into_iter()
            .enumerate()
            .map(|(point, mut g)| {
                g.target_epochs.sort_unstable();
                g.best_epochs.sort_unstable();
                let early = !g.best_epochs.is_empty() || g.stopped_early > 0;
                let epochs = &g.target_epochs;
                let at = |q: f64| epochs[((epochs.len() - 1) as f64 * q).round() as usize];
                let classes = !g.accuracies.is_empty();
                GroupStats {
                    point,
                    values: labels(point),
                    first_network: point * replicates,
                    networks: g.networks,
                    reached_target: with_target
                        .then(|| Share::of(epochs.len(), g.networks))
                        .flatten(),
                    target_epoch: (!epochs.is_empty()).then(|| EpochQuartiles {
                        q1: at(0.25),
                        median: at(0.5),
                        q3: at(0.75),
                    }),
                    final_loss: Quantiles::of(&mut g.losses),
                    diverged: g.diverged,
                    solved: classes.then(|| Share::of(g.solved, g.networks)).flatten(),
                    median_train_accuracy: median(g.accuracies),
                    median_eval_loss: median(g.eval_losses),
                    median_eval_accuracy: median(g.eval_accuracies),
                    stopped_early: early.then_some(g.stopped_early),
                    median_best_epoch: g
                        .best_epochs
                        .get(g.best_epochs.len().saturating_sub(1) / 2)
                        .map(|&e| u64::from(e)),
                    median_oob_loss: median(g.oob_losses),
                    median_oob_accuracy: median(g.oob_accuracies),
                }
            })
            .collect()
    }
}

/// The best point of a one-axis sweep, and by how much.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BestPoint {
    /// The axis's flag, e.g. `--lr`.
    pub axis: String,
    pub value: String,
    /// What ranks the points: `reached_target` (share, higher is better;
    /// ties by median target epoch), `solved` (share), or
    /// `median_final_loss` (lower is better).
    pub by: String,
    pub score: f64,
    /// The second-best point by the same measure, if any.
    pub runner_up: Option<String>,
    pub runner_up_score: Option<f64>,
    /// For shares: whether the two Wilson intervals are disjoint.
    pub separated: Option<bool>,
}

/// A ranking key: smaller is better.
type Key = (f64, f64);

/// The best point of `groups` on the single axis `axis`, if it can be
/// ranked.
pub fn best_point(axis: &str, groups: &[GroupStats]) -> Option<BestPoint> {
    if groups.len() < 2 {
        return None;
    }
    let by = if groups[0].reached_target.is_some() {
        "reached_target"
    } else if groups[0].solved.is_some() {
        "solved"
    } else {
        "median_final_loss"
    };
    // Smaller is better: the share negated, then the median epoch.
    let key = |g: &GroupStats| -> Option<Key> {
        match by {
            "reached_target" => {
                let epoch = g
                    .target_epoch
                    .as_ref()
                    .map_or(f64::INFINITY, |e| e.median as f64);
                g.reached_target.as_ref().map(|s| (-s.share, epoch))
            }
            "solved" => g.solved.as_ref().map(|s| (-s.share, 0.0)),
            _ => g.final_loss.as_ref().map(|q| (q.median, 0.0)),
        }
    };
    let mut ranked: Vec<(Key, &GroupStats)> = groups
        .iter()
        .filter_map(|g| key(g).map(|k| (k, g)))
        .collect();
    ranked.sort_by(|a, b| a.0.0.total_cmp(&b.0.0).then(a.0.1.total_cmp(&b.0.1)));
    let (best_key, best) = *ranked.first()?;
    let score = |k: Key| if by == "median_final_loss" { k.0 } else { -k.0 };
    let share = |g: &GroupStats| match by {
        "reached_target" => g.reached_target.clone(),
        "solved" => g.solved.clone(),
        _ => None,
    };
    let second = ranked.get(1);
    Some(BestPoint {
        axis: axis.to_string(),
        value: best.values.first().cloned().unwrap_or_default(),
        by: by.to_string(),
        score: score(best_key),
        runner_up: second.map(|(_, g)| g.values.first().cloned().unwrap_or_default()),
        runner_up_score: second.map(|(k, _)| score(*k)),
        separated: second.and_then(|(_, g)| match (share(best), share(g)) {
            (Some(a), Some(b)) => Some(a.low > b.high || b.low > a.high),
            _ => None,
        }),
    })
}

/// The best point for people.
pub fn best_point_line(b: &BestPoint) -> String {
    let percent = |v: f64| format!("{:.1}%", 100.0 * v);
    let (what, runner) = match b.by.as_str() {
        "median_final_loss" => (
            format!("median final loss {:.4e}", b.score),
            b.runner_up_score.map(|s| {
                format!(
                    "{:.3}x lower than {:.4e} at {}",
                    s / b.score,
                    s,
                    b.runner_up.as_deref().unwrap_or("")
                )
            }),
        ),
        by => (
            format!(
                "{} {}",
                if by == "solved" {
                    "solved"
                } else {
                    "reached the target"
                },
                percent(b.score)
            ),
            b.runner_up_score.map(|s| {
                format!(
                    "{:+.1} points over {} at {}{}",
                    100.0 * (b.score - s),
                    percent(s),
                    b.runner_up.as_deref().unwrap_or(""),
                    match b.separated {
                        Some(true) => "; the 95% intervals do not overlap",
                        Some(false) => "; the 95% intervals overlap: not a clear winner",
                        None => "",
                    }
                )
            }),
        ),
    };
    format!(
        "best {} {}: {what}{}",
        b.axis,
        b.value,
        runner.map_or(String::new(), |r| format!(", {r}"))
    )
}

fn cell<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_default()
}

/// The groups CSV's header, after `point` and the axes' columns.
pub const CSV_COLUMNS: &str = "first_network,networks,reached,reached_share,reached_low,\
     reached_high,target_epoch_q1,target_epoch_median,target_epoch_q3,loss_min,loss_p10,\
     loss_median,loss_p90,loss_max,diverged,solved,solved_share,solved_low,solved_high,\
     median_train_accuracy,median_eval_loss,median_eval_accuracy,stopped_early,\
     median_best_epoch,median_oob_loss,median_oob_accuracy";

/// [`CSV_COLUMNS`] as files written before resamples end.
pub const CSV_COLUMNS_BEFORE_RESAMPLES: &str = "first_network,networks,reached,\
     reached_share,reached_low,reached_high,target_epoch_q1,target_epoch_median,\
     target_epoch_q3,loss_min,loss_p10,loss_median,loss_p90,loss_max,diverged,solved,\
     solved_share,solved_low,solved_high,median_train_accuracy,median_eval_loss,\
     median_eval_accuracy,stopped_early,median_best_epoch";

/// [`CSV_COLUMNS`] as files written before early stopping end.
pub const CSV_COLUMNS_BEFORE_EARLY_STOPPING: &str = "first_network,networks,reached,\
     reached_share,reached_low,reached_high,target_epoch_q1,target_epoch_median,\
     target_epoch_q3,loss_min,loss_p10,loss_median,loss_p90,loss_max,diverged,solved,\
     solved_share,solved_low,solved_high,median_train_accuracy,median_eval_loss,\
     median_eval_accuracy";

/// The groups as CSV: `point`, one column per grid axis, then
/// `CSV_COLUMNS`; empty cells where a figure does not apply.
pub fn csv_text(columns: &[&str], groups: &[GroupStats]) -> String {
    let mut text = String::from("point");
    for c in columns {
        text.push(',');
        text.push_str(c);
    }
    text.push(',');
    text.push_str(CSV_COLUMNS);
    text.push('\n');
    for g in groups {
        let share = |s: &Option<Share>| match s {
            Some(s) => format!("{},{},{},{}", s.count, s.share, s.low, s.high),
            None => ",,,".to_string(),
        };
        let epochs = match &g.target_epoch {
            Some(e) => format!("{},{},{}", e.q1, e.median, e.q3),
            None => ",,".to_string(),
        };
        let losses = match &g.final_loss {
            Some(q) => format!("{},{},{},{},{}", q.min, q.p10, q.median, q.p90, q.max),
            None => ",,,,".to_string(),
        };
        let mut row = vec![g.point.to_string()];
        row.extend(g.values.iter().cloned());
        row.extend([
            g.first_network.to_string(),
            g.networks.to_string(),
            share(&g.reached_target),
            epochs,
            losses,
            g.diverged.to_string(),
            share(&g.solved),
            cell(g.median_train_accuracy),
            cell(g.median_eval_loss),
            cell(g.median_eval_accuracy),
            cell(g.stopped_early),
            cell(g.median_best_epoch),
            cell(g.median_oob_loss),
            cell(g.median_oob_accuracy),
        ]);
        text.push_str(&row.join(","));
        text.push('\n');
    }
    text
}

/// The groups as an aligned table, one line per point in grid order.
pub fn table(flags: &[&str], groups: &[GroupStats]) -> String {
    let percent = |s: &Share| {
        format!(
            "{:.1}% [{:.1}, {:.1}]",
            100.0 * s.share,
            100.0 * s.low,
            100.0 * s.high
        )
    };
    let any = |f: &dyn Fn(&GroupStats) -> bool| groups.iter().any(f);
    let mut header: Vec<String> = flags
        .iter()
        .map(|f| f.trim_start_matches('-').to_string())
        .collect();
    header.push("networks".into());
    let target = any(&|g| g.reached_target.is_some());
    let solved = any(&|g| g.solved.is_some());
    let eval = any(&|g| g.median_eval_loss.is_some());
    let early = any(&|g| g.stopped_early.is_some());
    let oob = any(&|g| g.median_oob_loss.is_some());
    if target {
        header.extend(["reached (95% CI)".into(), "epochs median [IQR]".into()]);
    }
    if solved {
        header.push("solved (95% CI)".into());
    }
    header.extend([
        "loss median".into(),
        "loss p10..p90".into(),
        "diverged".into(),
    ]);
    if eval {
        header.push("eval loss median".into());
    }
    if early {
        header.push("stopped early".into());
        header.push("best epoch median".into());
    }
    if oob {
        header.push("oob loss median".into());
        if any(&|g| g.median_oob_accuracy.is_some()) {
            header.push("oob accuracy median".into());
        }
    }
    let mut rows = vec![header];
    for g in groups {
        let mut row = g.values.clone();
        row.push(g.networks.to_string());
        if target {
            row.push(g.reached_target.as_ref().map_or("-".into(), percent));
            row.push(
                g.target_epoch
                    .as_ref()
                    .map_or("-".into(), |e| format!("{} [{}, {}]", e.median, e.q1, e.q3)),
            );
        }
        if solved {
            row.push(g.solved.as_ref().map_or("-".into(), percent));
        }
        match &g.final_loss {
            Some(q) => {
                row.push(format!("{:.3e}", q.median));
                row.push(format!("{:.2e}..{:.2e}", q.p10, q.p90));
            }
            None => row.extend(["-".into(), "-".into()]),
        }
        row.push(g.diverged.to_string());
        if eval {
            row.push(
                g.median_eval_loss
                    .map_or("-".into(), |l| format!("{l:.3e}")),
            );
        }
        if early {
            row.push(g.stopped_early.map_or("-".into(), |n| n.to_string()));
            row.push(g.median_best_epoch.map_or("-".into(), |e| e.to_string()));
        }
        if oob {
            row.push(g.median_oob_loss.map_or("-".into(), |l| format!("{l:.3e}")));
            if any(&|g| g.median_oob_accuracy.is_some()) {
                let percent = |a: f64| format!("{:.1}%", 100.0 * a);
                row.push(g.median_oob_accuracy.map_or("-".into(), percent));
            }
        }
        rows.push(row);
    }
    let columns = rows[0].len();
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(c, (v, &w))| match c < flags.len() {
                true => format!("{v:<w$}"),
                false => format!("{v:>w$}"),
            })
            .collect();
        text.push_str(cells.join("  ").trim_end());
        text.push('\n');
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_published_values() {
        // 8 of 10: p = 0.8, z^2 = 3.8415, centre 0.71674, half-width
        // 0.22658 (worked by hand from Wilson's formula): [0.4902, 0.9433].
        let [low, high] = wilson(8, 10);
        assert!((low - 0.4902).abs() < 1e-4, "{low}");
        assert!((high - 0.9433).abs() < 1e-4, "{high}");
        let [low, high] = wilson(0, 20);
        assert!(low < 1e-12, "{low}");
        assert!((high - 0.1611).abs() < 1e-4, "{high}");
        assert_eq!(wilson(20, 20)[1], 1.0);
    }
}
