//! The figure of a grid's grouped statistics (`gputrain plot groups`,
//! `--plot` on a grid): along one axis of the grid, the share of each
//! point's networks that reached the target (or solved the task) with its
//! Wilson 95% interval as an error bar, one line per value of the other
//! axes; below it the median epoch to the target with its interquartile
//! range (or, without a target, the median final loss with its 10%-90%
//! range). A numeric axis whose values are log-spaced is drawn on a log
//! scale; names (activations, optimizers) stand evenly spaced.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{FAMILY, Figure, Labels, Mark, PALETTE, draw_legend, point_name, short, with_legend};
use crate::error::Error;
use crate::groups::{EpochQuartiles, GroupStats, Share};
use crate::stats::Quantiles;

/// A grid's statistics: the axes' column names and every point's row.
#[derive(Clone, Debug, PartialEq)]
pub struct Grid {
    pub axes: Vec<String>,
    pub groups: Vec<GroupStats>,
}

/// What the upper panel shows, the first a grid has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Measure {
    /// The share that reached `--target-loss`.
    Reached,
    /// The share at 100% training accuracy.
    Solved,
    /// Without either: the median final loss.
    Loss,
}

impl Measure {
    fn of(groups: &[GroupStats]) -> Self {
        if groups.iter().any(|g| g.reached_target.is_some()) {
            Measure::Reached
        } else if groups.iter().any(|g| g.solved.is_some()) {
            Measure::Solved
        } else {
            Measure::Loss
        }
    }

    fn share(self, g: &GroupStats) -> Option<&Share> {
        match self {
            Measure::Reached => g.reached_target.as_ref(),
            Measure::Solved => g.solved.as_ref(),
            Measure::Loss => None,
        }
    }
}

/// How the swept axis is laid out.
#[derive(Clone, Debug, PartialEq)]
pub enum Scale {
    Log,
    Linear,
    /// Names at 0, 1, 2, ... in the grid's order.
    Names(Vec<String>),
}

impl Scale {
    /// Log for positive numbers spaced more evenly in log than linearly
    /// (0.01, 0.1, 1 or 1, 2, 4, 8), linear for other numbers, names
    /// otherwise.
    pub fn of(values: &[String]) -> Self {
        let mut distinct: Vec<String> = Vec::new();
        for v in values {
            if !distinct.contains(v) {
                distinct.push(v.clone());
            }
        }
        let numbers: Option<Vec<f64>> = distinct
            .iter()
            .map(|v| v.parse::<f64>().ok().filter(|x| x.is_finite()))
            .collect();
        let Some(mut numbers) = numbers else {
            return Scale::Names(distinct);
        };
        numbers.sort_by(f64::total_cmp);
        if numbers.len() < 2 || numbers[0] <= 0.0 {
            return Scale::Linear;
        }
        let spread = |xs: &[f64]| {
            let steps: Vec<f64> = xs.windows(2).map(|w| w[1] - w[0]).collect();
            let mean = steps.iter().sum::<f64>() / steps.len() as f64;
            let var = steps.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / steps.len() as f64;
            var.sqrt() / mean.abs().max(f64::MIN_POSITIVE)
        };
        let logs: Vec<f64> = numbers.iter().map(|x| x.log10()).collect();
        let ratio = numbers[numbers.len() - 1] / numbers[0];
        let log = match numbers.len() {
            2 => ratio >= 10.0,
            _ => ratio >= 4.0 && spread(&logs) < spread(&numbers),
        };
        if log { Scale::Log } else { Scale::Linear }
    }

    /// Where `value` stands on the axis.
    fn position(&self, value: &str) -> f64 {
        match self {
            Scale::Names(names) => names.iter().position(|n| n == value).unwrap_or(0) as f64,
            _ => value.parse().unwrap_or(0.0),
        }
    }
}

/// The axis to sweep along when none is named: the numeric axis with the
/// most values, else the axis with the most values (the last of equals:
/// the innermost loop of the grid).
fn default_axis(grid: &Grid) -> usize {
    let distinct = |a: usize| {
        let mut seen: Vec<&str> = Vec::new();
        for g in &grid.groups {
            if let Some(v) = g.values.get(a)
                && !seen.contains(&v.as_str())
            {
                seen.push(v);
            }
        }
        seen.len()
    };
    let numeric = |a: usize| {
        grid.groups
            .iter()
            .all(|g| g.values.get(a).is_some_and(|v| v.parse::<f64>().is_ok()))
    };
    (0..grid.axes.len())
        .max_by_key(|&a| (numeric(a), distinct(a), a))
        .unwrap_or(0)
}

/// Draws `grid` along the axis column `along` (the option that named it,
/// and the column; or the default axis) into `path` (.svg or .png);
/// `source` names the input in the title where `labels` has no model,
/// `flag` the output's option in errors.
pub fn figure(
    grid: &Grid,
    along: Option<(&str, &str)>,
    labels: &Labels,
    source: &str,
    path: &Path,
    flag: &str,
) -> Result<(), Error> {
    if grid.axes.is_empty() || grid.groups.len() < 2 {
        return Err(Error::Config(format!(
            "{flag} {}: the grouped statistics are drawn for a grid of two or more points \
             (a grid axis such as {} 0.1,1,10); this run has one point",
            path.display(),
            crate::setting::settings::LR
        )));
    }
    let x = match along {
        None => default_axis(grid),
        Some((option, name)) => grid.axes.iter().position(|a| a == name).ok_or_else(|| {
            Error::Config(format!(
                "{option} {name}: not an axis of this grid; its axes are {}",
                grid.axes.join(", ")
            ))
        })?,
    };
    let values: Vec<String> = grid.groups.iter().map(|g| g.values[x].clone()).collect();
    let scale = Scale::of(&values);
    // One line per combination of the other axes, in grid order.
    let mut lines: Vec<(String, Vec<usize>)> = Vec::new();
    for (i, g) in grid.groups.iter().enumerate() {
        let name = point_name(
            (0..grid.axes.len())
                .filter(|&a| a != x)
                .map(|a| &g.values[a]),
        );
        match lines.iter_mut().find(|(n, _)| *n == name) {
            Some((_, members)) => members.push(i),
            None => lines.push((name, vec![i])),
        }
    }
    let others: Vec<&str> = (0..grid.axes.len())
        .filter(|&a| a != x)
        .map(|a| grid.axes[a].as_str())
        .collect();
    let measure = Measure::of(&grid.groups);
    let sizes: Vec<usize> = grid.groups.iter().map(|g| g.networks).collect();
    let (fewest, most) = (
        sizes.iter().min().copied().unwrap_or(0),
        sizes.iter().max().copied().unwrap_or(0),
    );
    let each = match fewest == most {
        true => format!("{most} networks a point"),
        false => format!("{fewest}-{most} networks a point"),
    };
    let what = match measure {
        Measure::Reached => "Reached the target",
        Measure::Solved => "Solved",
        Measure::Loss => "Final loss",
    };
    let title = format!(
        "{what} by {}: {}, {each}",
        grid.axes[x],
        labels.source(source)
    );
    let figure = GroupsFigure {
        grid,
        x,
        scale,
        lines,
        heading: others.join(", "),
        measure,
        title,
        loss_axis: labels.short_loss_axis("final loss"),
    };
    super::render(path, flag, &figure)
}

struct GroupsFigure<'a> {
    grid: &'a Grid,
    x: usize,
    scale: Scale,
    /// Each line's name and its points.
    lines: Vec<(String, Vec<usize>)>,
    /// The legend's heading: the axes that tell the lines apart.
    heading: String,
    measure: Measure,
    title: String,
    loss_axis: String,
}

/// The bars of one panel: per line, per point, (x, low, middle, high).
type Bars = Vec<Vec<(f64, f64, f64, f64)>>;

impl GroupsFigure<'_> {
    /// The x-range of the swept axis with a margin, and each line's
    /// offset (lines are drawn a little apart so that bars at the same
    /// value do not hide each other).
    fn x_range(&self) -> ((f64, f64), Vec<f64>) {
        let positions: Vec<f64> = self
            .grid
            .groups
            .iter()
            .map(|g| self.scale.position(&g.values[self.x]))
            .collect();
        let (lo, hi) = positions
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &p| {
                (lo.min(p), hi.max(p))
            });
        let n = self.lines.len();
        let offset = |width: f64| -> Vec<f64> {
            (0..n)
                .map(|j| (j as f64 - (n as f64 - 1.0) / 2.0) * width / n.max(1) as f64)
                .collect()
        };
        match &self.scale {
            Scale::Names(names) => ((-0.5, names.len() as f64 - 0.5), offset(0.3)),
            Scale::Log => {
                let (a, b) = (lo.log10(), hi.log10());
                let pad = ((b - a) * 0.06).max(0.1);
                (
                    (10f64.powf(a - pad), 10f64.powf(b + pad)),
                    offset((b - a).max(0.5) * 0.04),
                )
            }
            Scale::Linear => {
                let span = (hi - lo).max(hi.abs() * 0.1).max(1e-9);
                ((lo - span * 0.06, hi + span * 0.06), offset(span * 0.04))
            }
        }
    }

    /// Where line `j`'s point `i` stands.
    fn place(&self, i: usize, offset: f64) -> f64 {
        let p = self.scale.position(&self.grid.groups[i].values[self.x]);
        match self.scale {
            Scale::Log => p * 10f64.powf(offset),
            _ => p + offset,
        }
    }

    /// Every line's bars of `pick` (low, middle, high), where it applies.
    fn bars(&self, offsets: &[f64], pick: impl Fn(&GroupStats) -> Option<[f64; 3]>) -> Bars {
        self.lines
            .iter()
            .zip(offsets)
            .map(|((_, members), &offset)| {
                members
                    .iter()
                    .filter_map(|&i| {
                        pick(&self.grid.groups[i]).map(|[l, m, h]| (self.place(i, offset), l, m, h))
                    })
                    .collect()
            })
            .collect()
    }

    /// Draws one panel of `bars` on `area` with the y-axis `y_desc`.
    #[allow(clippy::too_many_arguments)]
    fn panel<DB: DrawingBackend>(
        &self,
        area: &DrawingArea<DB, Shift>,
        bars: &Bars,
        y_desc: &str,
        y: YAxis,
        x_desc: Option<&str>,
    ) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let ((x_lo, x_hi), _) = self.x_range();
        let mut builder = ChartBuilder::on(area);
        builder
            .margin(12)
            .x_label_area_size(if x_desc.is_some() { 50 } else { 30 })
            .y_label_area_size(80);
        // A log axis's range from the bars, its floor standing in for 0.
        let (y, (y_lo, y_hi)) = match y {
            YAxis::Share => (y, (-0.02, 1.05)),
            YAxis::Log(_) => {
                let all = bars.iter().flatten().flat_map(|b| [b.1, b.2, b.3]);
                let (lo, hi) = super::log_range(all).unwrap_or((0.1, 10.0));
                (YAxis::Log(lo), (lo, hi))
            }
        };
        let names = match &self.scale {
            Scale::Names(names) => names.clone(),
            _ => Vec::new(),
        };
        let x_label = |v: &f64| -> String {
            if names.is_empty() {
                short(*v)
            } else if (v - v.round()).abs() < 1e-6 && *v >= 0.0 {
                names
                    .get(v.round() as usize)
                    .map_or(String::new(), |n| super::compact(n))
            } else {
                String::new()
            }
        };
        let y_label = |v: &f64| y.label(*v);
        // The same drawing on each of the four coordinate systems.
        macro_rules! draw {
            ($chart:expr) => {{
                let mut chart = $chart;
                let mut mesh = chart.configure_mesh();
                mesh.x_label_formatter(&x_label)
                    .y_label_formatter(&y_label)
                    .y_desc(y_desc)
                    .label_style((FAMILY, 15))
                    .axis_desc_style((FAMILY, 15))
                    .light_line_style(BLACK.mix(0.04));
                if let Some(d) = x_desc {
                    mesh.x_desc(d);
                }
                if !names.is_empty() {
                    mesh.x_labels(names.len() * 2 + 1);
                }
                mesh.y_labels(match y {
                    YAxis::Share => 6,
                    YAxis::Log(_) => 4,
                });
                mesh.draw().map_err(e)?;
                for (j, line) in bars.iter().enumerate() {
                    let colour = PALETTE[j % PALETTE.len()];
                    chart
                        .draw_series(LineSeries::new(
                            line.iter().map(|b| (b.0, y.floor(b.2))),
                            colour.stroke_width(2),
                        ))
                        .map_err(e)?;
                    chart
                        .draw_series(line.iter().map(|b| {
                            ErrorBar::new_vertical(
                                b.0,
                                y.floor(b.1),
                                y.floor(b.2),
                                y.floor(b.3),
                                colour.stroke_width(2),
                                10,
                            )
                        }))
                        .map_err(e)?;
                    chart
                        .draw_series(
                            line.iter()
                                .map(|b| Circle::new((b.0, y.floor(b.2)), 4, colour.filled())),
                        )
                        .map_err(e)?;
                }
                Ok(())
            }};
        }
        match (&self.scale, y) {
            (Scale::Log, YAxis::Share) => draw!(
                builder
                    .build_cartesian_2d((x_lo..x_hi).log_scale(), y_lo..y_hi)
                    .map_err(e)?
            ),
            (_, YAxis::Share) => {
                draw!(
                    builder
                        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
                        .map_err(e)?
                )
            }
            (Scale::Log, YAxis::Log(_)) => draw!(
                builder
                    .build_cartesian_2d((x_lo..x_hi).log_scale(), (y_lo..y_hi).log_scale())
                    .map_err(e)?
            ),
            (_, YAxis::Log(_)) => draw!(
                builder
                    .build_cartesian_2d(x_lo..x_hi, (y_lo..y_hi).log_scale())
                    .map_err(e)?
            ),
        }
    }
}

/// A panel's y-axis: shares from 0 to 1 shown as percent, or a log axis
/// (whose floor stands in for values at or below it).
#[derive(Clone, Copy, Debug)]
enum YAxis {
    Share,
    Log(f64),
}

impl YAxis {
    fn label(self, v: f64) -> String {
        match self {
            YAxis::Share => format!("{:.0}%", 100.0 * v),
            YAxis::Log(_) => short(v),
        }
    }

    fn floor(self, v: f64) -> f64 {
        match self {
            YAxis::Share => v,
            YAxis::Log(lo) => v.max(lo),
        }
    }
}

impl Figure for GroupsFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let root = root.titled(&self.title, (FAMILY, 20)).map_err(e)?;
        let (data, legend) = with_legend(&root);
        let (_, offsets) = self.x_range();
        let x_desc = match self.scale {
            Scale::Log => format!("{} (log scale)", self.grid.axes[self.x]),
            _ => self.grid.axes[self.x].clone(),
        };
        let loss = |g: &GroupStats| {
            g.final_loss
                .as_ref()
                .map(|q: &Quantiles| [q.p10, q.median, q.p90])
        };
        let epochs = |g: &GroupStats| {
            g.target_epoch
                .as_ref()
                .map(|q: &EpochQuartiles| [q.q1 as f64, q.median as f64, q.q3 as f64])
        };
        let (second, notes) = match self.measure {
            Measure::Reached => (
                (
                    self.bars(&offsets, epochs),
                    "epochs to the target".to_string(),
                ),
                "below: median and IQR",
            ),
            _ => (
                (self.bars(&offsets, loss), self.loss_axis.clone()),
                "below: median, 10%-90%",
            ),
        };
        if self.measure == Measure::Loss {
            self.panel(&data, &second.0, &second.1, YAxis::Log(0.0), Some(&x_desc))?;
        } else {
            let (upper, lower) = data.split_vertically(data.dim_in_pixel().1 * 11 / 20);
            let share = |g: &GroupStats| self.measure.share(g).map(|s| [s.low, s.share, s.high]);
            let y_desc = match self.measure {
                Measure::Reached => "reached the target",
                _ => "solved (100% accuracy)",
            };
            self.panel(
                &upper,
                &self.bars(&offsets, share),
                y_desc,
                YAxis::Share,
                None,
            )?;
            self.panel(&lower, &second.0, &second.1, YAxis::Log(0.0), Some(&x_desc))?;
        }
        let mut entries: Vec<(String, Mark)> = self
            .lines
            .iter()
            .enumerate()
            .map(|(j, (name, _))| (name.clone(), Mark::Bar(PALETTE[j % PALETTE.len()])))
            .collect();
        if self.lines.len() == 1 && self.lines[0].0.is_empty() {
            entries[0].0 = "every point".into();
        }
        entries.push((String::new(), Mark::Note));
        match self.measure {
            Measure::Loss => entries.push(("bars: 10%-90%".into(), Mark::Note)),
            _ => {
                entries.push(("above: share, bars its".into(), Mark::Note));
                entries.push(("Wilson 95% interval".into(), Mark::Note));
                entries.push((notes.into(), Mark::Note));
            }
        }
        let heading = (!self.heading.is_empty()).then_some(self.heading.as_str());
        draw_legend(&legend, 40, heading, &entries)
    }
}

/// Reads a groups CSV (`--groups`) back: the axes are the columns between
/// `point` and `first_network`, the rest must be the columns gputrain
/// writes; a bad line is named.
pub fn read(path: &Path) -> Result<Grid, Error> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let bad = |line: usize, message: String| Error::Data {
        origin: path.to_path_buf(),
        line: Some(line),
        message,
    };
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().trim();
    let names: Vec<&str> = header.split(',').collect();
    let expected = crate::groups::CSV_COLUMNS;
    let first = names.iter().position(|n| *n == "first_network");
    let tail = first.map(|f| names[f..].join(","));
    let tail_matches = tail.as_deref().is_some_and(|t| {
        t == expected
            || t == crate::groups::CSV_COLUMNS_BEFORE_RESAMPLES
            || t == crate::groups::CSV_COLUMNS_BEFORE_EARLY_STOPPING
    });
    let (true, Some(first), true) = (names.first() == Some(&"point"), first, tail_matches) else {
        return Err(bad(
            1,
            format!(
                "not a gputrain groups CSV (written by {}): its header is '{header}', \
                 expected 'point,<the grid's axes>,{expected}'",
                crate::setting::settings::GROUPS
            ),
        ));
    };
    let axes: Vec<String> = names[1..first].iter().map(|s| s.to_string()).collect();
    let mut groups = Vec::new();
    for (i, line) in lines.enumerate() {
        let number = i + 2;
        if line.trim().is_empty() {
            continue;
        }
        let cells: Vec<&str> = line.split(',').collect();
        if cells.len() != names.len() {
            return Err(bad(
                number,
                format!("has {} columns, the header {}", cells.len(), names.len()),
            ));
        }
        let at = |name: &str| cells[names.iter().position(|n| *n == name).expect("checked")];
        let value = |name: &str| -> Result<Option<f64>, Error> {
            let cell = at(name).trim();
            if cell.is_empty() {
                return Ok(None);
            }
            cell.parse::<f64>().map(Some).map_err(|_| {
                bad(
                    number,
                    format!("the {name} column is not a number: '{cell}'"),
                )
            })
        };
        let count =
            |name: &str| -> Result<Option<usize>, Error> { Ok(value(name)?.map(|v| v as usize)) };
        let share = |prefix: &str, count_name: &str| -> Result<Option<Share>, Error> {
            let parts = (
                count(count_name)?,
                value(&format!("{prefix}_share"))?,
                value(&format!("{prefix}_low"))?,
                value(&format!("{prefix}_high"))?,
            );
            Ok(match parts {
                (Some(count), Some(share), Some(low), Some(high)) => Some(Share {
                    count,
                    share,
                    low,
                    high,
                }),
                _ => None,
            })
        };
        let epochs = (
            value("target_epoch_q1")?,
            value("target_epoch_median")?,
            value("target_epoch_q3")?,
        );
        let losses = (
            value("loss_min")?,
            value("loss_p10")?,
            value("loss_median")?,
            value("loss_p90")?,
            value("loss_max")?,
        );
        groups.push(GroupStats {
            point: count("point")?.unwrap_or(groups.len()),
            values: cells[1..first].iter().map(|s| s.to_string()).collect(),
            first_network: count("first_network")?.unwrap_or(0),
            networks: count("networks")?
                .ok_or_else(|| bad(number, "the networks column is empty".into()))?,
            reached_target: share("reached", "reached")?,
            target_epoch: match epochs {
                (Some(q1), Some(median), Some(q3)) => Some(EpochQuartiles {
                    q1: q1 as u32,
                    median: median as u32,
                    q3: q3 as u32,
                }),
                _ => None,
            },
            final_loss: match losses {
                (Some(min), Some(p10), Some(median), Some(p90), Some(max)) => Some(Quantiles {
                    min,
                    p10,
                    median,
                    p90,
                    max,
                }),
                _ => None,
            },
            diverged: count("diverged")?.unwrap_or(0),
            solved: share("solved", "solved")?,
            median_train_accuracy: value("median_train_accuracy")?,
            median_eval_loss: value("median_eval_loss")?,
            median_eval_accuracy: value("median_eval_accuracy")?,
            // Absent from files written before early stopping.
            stopped_early: match names.contains(&"stopped_early") {
                true => count("stopped_early")?,
                false => None,
            },
            median_best_epoch: match names.contains(&"median_best_epoch") {
                true => value("median_best_epoch")?.map(|e| e as u64),
                false => None,
            },
            // Absent from files written before resamples.
            median_oob_loss: match names.contains(&"median_oob_loss") {
                true => value("median_oob_loss")?,
                false => None,
            },
            median_oob_accuracy: match names.contains(&"median_oob_accuracy") {
                true => value("median_oob_accuracy")?,
                false => None,
            },
        });
    }
    if groups.is_empty() {
        return Err(bad(1, "holds no grid point".into()));
    }
    Ok(Grid { axes, groups })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(values: &[&str]) -> Vec<String> {
        values.iter().map(|v| v.to_string()).collect()
    }

    #[test]
    fn log_spaced_numbers_get_a_log_axis_and_names_stand_apart() {
        assert_eq!(Scale::of(&strings(&["0.01", "0.1", "1", "10"])), Scale::Log);
        assert_eq!(Scale::of(&strings(&["1", "2", "4", "8", "16"])), Scale::Log);
        assert_eq!(Scale::of(&strings(&["0.1", "10"])), Scale::Log);
        assert_eq!(Scale::of(&strings(&["1", "2", "3", "4"])), Scale::Linear);
        assert_eq!(Scale::of(&strings(&["0", "1", "10"])), Scale::Linear);
        assert_eq!(
            Scale::of(&strings(&["tanh", "sigmoid", "tanh"])),
            Scale::Names(strings(&["tanh", "sigmoid"]))
        );
    }
}
