//! The learning curves of a grid (`gputrain plot history` of an `--out`
//! directory's history.safetensors, whose summary.json names the grid):
//! one median line with its 10%-90% band per grid point, or per value of
//! one axis (`--by`), and below them the share of each curve's networks
//! that had reached the target by each recorded epoch.

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::{
    FAMILY, Figure, Labels, Mark, PALETTE, draw_legend, log_range, point_name, render, tick,
    with_legend,
};
use crate::error::Error;
use crate::history::{HistoryPoint, Losses};

/// More curves than this are too many to tell apart: a grid of more
/// points is drawn per value of one axis.
pub const MOST_CURVES: usize = 10;

/// Curves by grid point or by an axis's value.
#[derive(Clone, Debug, PartialEq)]
pub struct GridCurves {
    /// Each curve's name and its population per recorded epoch.
    pub curves: Vec<(String, Vec<HistoryPoint>)>,
    /// The axes that tell the curves apart.
    pub heading: String,
    pub networks: u64,
    pub target_loss: Option<f64>,
    pub labels: Labels,
    pub source: String,
}

/// A grid as a summary.json lists it: the axes' columns, and per point
/// its values and its networks' ids.
struct SummaryGrid {
    columns: Vec<String>,
    points: Vec<(Vec<String>, std::ops::Range<usize>)>,
}

fn summary_grid(input: &Path) -> Option<SummaryGrid> {
    let text = std::fs::read_to_string(input.parent()?.join("summary.json")).ok()?;
    let summary: serde_json::Value = serde_json::from_str(&text).ok()?;
    let columns: Vec<String> = summary
        .get("grid")?
        .as_array()?
        .iter()
        .map(|a| a.get("column")?.as_str().map(str::to_string))
        .collect::<Option<_>>()?;
    let points = summary
        .get("groups")?
        .as_array()?
        .iter()
        .map(|g| {
            let values = g
                .get("values")?
                .as_array()?
                .iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<_>>>()?;
            let first = g.get("first_network")?.as_u64()? as usize;
            let networks = g.get("networks")?.as_u64()? as usize;
            Some((values, first..first + networks))
        })
        .collect::<Option<Vec<_>>>()?;
    (!columns.is_empty() && points.len() > 1).then_some(SummaryGrid { columns, points })
}

/// The curves of `losses` (read from `input`) by the grid its
/// summary.json names: per point, or per value of the axis column `by`
/// names (with the option that named it, for errors)
/// (by default the first axis of at most [`MOST_CURVES`] values when the
/// grid has more points than that). `None` where no grid lies beside the
/// file, or it does not describe the file's networks (the pooled curves
/// are drawn then), unless `by` asked for one.
pub fn of(
    input: &Path,
    losses: &Losses,
    by: Option<(&str, &str)>,
    labels: Labels,
    source: String,
) -> Result<Option<GridCurves>, Error> {
    let grid = summary_grid(input).filter(|g| {
        g.points
            .iter()
            .all(|(values, r)| values.len() == g.columns.len() && r.end <= losses.networks as usize)
    });
    let Some(grid) = grid else {
        return match by {
            Some((option, name)) => Err(Error::Config(format!(
                "{option} {name}: {} is not the {} file of a grid's {} directory \
                 (no summary.json with a grid of two or more points beside it)",
                input.display(),
                crate::setting::settings::HISTORY_OUT,
                crate::setting::settings::OUT
            ))),
            None => Ok(None),
        };
    };
    let axis = match by {
        Some((option, name)) => {
            Some(grid.columns.iter().position(|c| c == name).ok_or_else(|| {
                Error::Config(format!(
                    "{option} {name}: not an axis of this grid; its axes are {}",
                    grid.columns.join(", ")
                ))
            })?)
        }
        None if grid.points.len() <= MOST_CURVES => None,
        None => {
            let distinct = |a: usize| {
                let mut seen: Vec<&String> = grid.points.iter().map(|(v, _)| &v[a]).collect();
                seen.sort();
                seen.dedup();
                seen.len()
            };
            Some(
                (0..grid.columns.len())
                    .find(|&a| distinct(a) <= MOST_CURVES)
                    .unwrap_or(0),
            )
        }
    };
    // Each curve's name and its networks, in grid order.
    let mut members: Vec<(String, Vec<std::ops::Range<usize>>)> = Vec::new();
    for (values, range) in &grid.points {
        let name = match axis {
            Some(a) => point_name([&values[a]]),
            None => point_name(values),
        };
        match members.iter_mut().find(|(n, _)| *n == name) {
            Some((_, ranges)) => ranges.push(range.clone()),
            None => members.push((name, vec![range.clone()])),
        }
    }
    let curves = members
        .into_iter()
        .map(|(name, ranges)| (name, losses.points(&ranges)))
        .collect();
    Ok(Some(GridCurves {
        curves,
        heading: match axis {
            Some(a) => grid.columns[a].clone(),
            None => grid.columns.join(", "),
        },
        networks: losses.networks,
        target_loss: losses.target_loss,
        labels,
        source,
    }))
}

/// Draws `curves` into `path` (.svg or .png).
pub fn figure(curves: &GridCurves, path: &Path, flag: &str) -> Result<(), Error> {
    let all = curves.curves.iter().flat_map(|(_, points)| {
        points
            .iter()
            .filter_map(|p| p.loss.as_ref())
            .flat_map(|q| [q.p10, q.p90])
    });
    let Some((lo, hi)) = log_range(all.chain(curves.target_loss)) else {
        return Err(Error::Config(format!(
            "{flag} {}: the curves have no finite positive loss to draw (every network diverged?)",
            path.display()
        )));
    };
    render(path, flag, &GridFigure { curves, lo, hi })
}

struct GridFigure<'a> {
    curves: &'a GridCurves,
    lo: f64,
    hi: f64,
}

impl Figure for GridFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (curves, lo, hi) = (self.curves, self.lo, self.hi);
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let title = format!(
            "Training loss of {} networks by {}: {}",
            curves.networks,
            curves.heading,
            curves.labels.source(&curves.source)
        );
        let root = root.titled(&title, (FAMILY, 20)).map_err(e)?;
        let (data, legend) = with_legend(&root);
        let last = curves
            .curves
            .iter()
            .flat_map(|(_, p)| p.last().map(|p| p.epoch))
            .max()
            .unwrap_or(1)
            .max(1) as f64;
        let target = curves.target_loss.filter(|t| *t > 0.0);
        let (upper, lower) = match target {
            Some(_) => {
                let (u, l) = data.split_vertically(data.dim_in_pixel().1 * 3 / 5);
                (u, Some(l))
            }
            None => (data.clone(), None),
        };
        let colour = |j: usize| PALETTE[j % PALETTE.len()];
        let mut chart = ChartBuilder::on(&upper)
            .margin(12)
            .x_label_area_size(if lower.is_some() { 30 } else { 50 })
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..last, (lo..hi).log_scale())
            .map_err(e)?;
        let mut mesh = chart.configure_mesh();
        mesh.y_desc(curves.labels.loss_axis("loss"))
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&tick)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 14))
            .light_line_style(BLACK.mix(0.04));
        if lower.is_none() {
            mesh.x_desc("epoch");
        }
        mesh.draw().map_err(e)?;
        let floor = |v: f64| v.max(lo);
        for (j, (_, points)) in curves.curves.iter().enumerate() {
            let quantiles: Vec<(f64, &crate::stats::Quantiles)> = points
                .iter()
                .filter_map(|p| p.loss.as_ref().map(|q| (p.epoch as f64, q)))
                .collect();
            let mut outline: Vec<(f64, f64)> =
                quantiles.iter().map(|(x, q)| (*x, floor(q.p90))).collect();
            outline.extend(quantiles.iter().rev().map(|(x, q)| (*x, floor(q.p10))));
            chart
                .draw_series(std::iter::once(Polygon::new(
                    outline,
                    colour(j).mix(0.12).filled(),
                )))
                .map_err(e)?;
            chart
                .draw_series(LineSeries::new(
                    quantiles.iter().map(|(x, q)| (*x, floor(q.median))),
                    colour(j).stroke_width(2),
                ))
                .map_err(e)?;
        }
        if let Some(t) = target {
            chart
                .draw_series(LineSeries::new([(0.0, t), (last, t)], RED.stroke_width(1)))
                .map_err(e)?;
        }
        if let Some(lower) = &lower {
            let mut chart = ChartBuilder::on(lower)
                .margin(12)
                .x_label_area_size(50)
                .y_label_area_size(80)
                .build_cartesian_2d(0.0..last, -0.02..1.05)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("epoch")
                .y_desc("reached the target")
                .x_label_formatter(&|v| format!("{v:.0}"))
                .y_label_formatter(&|v| format!("{:.0}%", 100.0 * v))
                .y_labels(6)
                .label_style((FAMILY, 15))
                .axis_desc_style((FAMILY, 14))
                .light_line_style(BLACK.mix(0.04))
                .draw()
                .map_err(e)?;
            for (j, (_, points)) in curves.curves.iter().enumerate() {
                chart
                    .draw_series(LineSeries::new(
                        points
                            .iter()
                            .filter_map(|p| p.reached_target.map(|r| (p.epoch as f64, r))),
                        colour(j).stroke_width(2),
                    ))
                    .map_err(e)?;
            }
        }
        let mut entries: Vec<(String, Mark)> = curves
            .curves
            .iter()
            .enumerate()
            .map(|(j, (name, _))| (name.clone(), Mark::Line(colour(j), 2)))
            .collect();
        entries.push((String::new(), Mark::Note));
        entries.push(("lines: median,".into(), Mark::Note));
        entries.push(("bands: 10%-90%".into(), Mark::Note));
        if let Some(t) = target {
            entries.push((format!("target {t:e}"), Mark::Line(RED, 1)));
            entries.push(("below: share at or".into(), Mark::Note));
            entries.push(("under it by each".into(), Mark::Note));
            entries.push(("recorded epoch".into(), Mark::Note));
        }
        draw_legend(&legend, 40, Some(&curves.heading), &entries)
    }
}

/// [`of`] for the file at `input`: `None` where it is not a
/// `--history-out` file of a grid (the pooled curves are drawn), an error
/// where `by` asked for a grid it is not. `target_loss` replaces the
/// file's own.
pub fn read(
    input: &Path,
    by: Option<(&str, &str)>,
    target_loss: Option<f64>,
) -> Result<Option<GridCurves>, Error> {
    let bytes = std::fs::read(input).map_err(|source| Error::Io {
        path: input.to_path_buf(),
        source,
    })?;
    // A safetensors file opens with its header's length, then '{'.
    if bytes.get(8) != Some(&b'{') {
        return match by {
            Some((option, name)) => Err(Error::Config(format!(
                "{option} {name}: {} is a quantile CSV of the whole population; the curves \
                 per grid point come from the {} file of the grid's {} directory",
                input.display(),
                crate::setting::settings::HISTORY_OUT,
                crate::setting::settings::OUT
            ))),
            None => Ok(None),
        };
    }
    let mut losses = crate::history::read_losses(input, &bytes)?;
    if target_loss.is_some() {
        losses.target_loss = target_loss;
    }
    let source = input
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    of(input, &losses, by, Labels::beside(input), source)
}
