//! Figures with plotters, SVG or PNG by the output's extension, 800 x 600:
//! the learning curves of a population (median with p10-p90 and min-max
//! bands against epoch, log loss, the held-out median and the target line
//! where there are), and the final losses of a run (a histogram with log
//! bins, or for a learning-rate sweep the scatter of rate against final
//! loss, log-log, with diverged networks marked). The text is set in a
//! subset of DejaVu Sans bundled in `assets/`, so no system font is needed
//! (servers and CI have none). The grouped statistics of a grid have
//! their own figure ([`groups`]). Legends stand beside the data, never on
//! it; axes name the loss and its reduction where the run is known
//! ([`Labels`]).

pub mod grid_curves;
pub mod groups;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::FontStyle;

use crate::error::Error;
use crate::history::HistoryPoint;
use crate::output::TemporaryFile;
use crate::stats::Quantiles;

/// Pixels of every figure.
pub const SIZE: (u32, u32) = (800, 600);

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");
const FAMILY: &str = "sans-serif";

/// The file formats, by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Svg,
    Png,
}

impl Format {
    /// The format `path`'s extension names; `flag` names the option in
    /// the error.
    pub fn of(path: &Path, flag: &str) -> Result<Self, Error> {
        let ext = path
            .extension()
            .map(|e| e.to_string_lossy().to_ascii_lowercase());
        match ext.as_deref() {
            Some("svg") => Ok(Format::Svg),
            Some("png") => Ok(Format::Png),
            _ => Err(Error::Config(format!(
                "{flag} {}: a figure is written as .svg or .png (by the file's extension)",
                path.display()
            ))),
        }
    }
}

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // The bundled file is a valid font: a failure here is a build bug.
        plotters::style::register_font(FAMILY, FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the bundled font assets/DejaVuSans-subset.ttf is valid"));
    });
}

fn drawing_error(path: &Path, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("drawing {}: {e}", path.display()))
}

/// A figure that draws itself on any backend.
trait Figure {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String>;
}

/// Draws `figure` on an 800 x 600 area and writes it to `path` whole or
/// not at all.
fn render(path: &Path, flag: &str, figure: &impl Figure) -> Result<(), Error> {
    let format = Format::of(path, flag)?;
    register_font();
    let bytes = match format {
        Format::Svg => {
            let mut text = String::new();
            {
                let root = SVGBackend::with_string(&mut text, SIZE).into_drawing_area();
                figure.draw(&root).map_err(|e| drawing_error(path, e))?;
                root.present().map_err(|e| drawing_error(path, e))?;
            }
            text.into_bytes()
        }
        Format::Png => {
            let mut rgb = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut rgb, SIZE).into_drawing_area();
                figure.draw(&root).map_err(|e| drawing_error(path, e))?;
                root.present().map_err(|e| drawing_error(path, e))?;
            }
            encode_png(&rgb).map_err(|e| drawing_error(path, e))?
        }
    };
    let mut file = TemporaryFile::create(path)?;
    let written = file.handle().write_all(&bytes);
    written.map_err(|e| file.error(e))?;
    file.persist()
}

fn encode_png(rgb: &[u8]) -> Result<Vec<u8>, png::EncodingError> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, SIZE.0, SIZE.1);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        encoder.set_compression(png::Compression::Best);
        encoder.set_adaptive_filter(png::AdaptiveFilterType::Adaptive);
        let mut writer = encoder.write_header()?;
        writer.write_image_data(rgb)?;
    }
    Ok(bytes)
}

/// The learning curves to draw: a population's quantiles per epoch.
#[derive(Clone, Debug, PartialEq)]
pub struct Curves {
    pub points: Vec<HistoryPoint>,
    pub networks: u64,
    pub target_loss: Option<f64>,
    /// Where the curves come from, for the title when `labels` has no
    /// model.
    pub source: String,
    pub labels: Labels,
}

/// Log-scale axes cannot show 0: positive values only, the smallest
/// positive one standing in for 0.
fn log_range(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    let (lo, hi) = values
        .filter(|v| v.is_finite() && *v > 0.0)
        .fold((f64::INFINITY, 0.0f64), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
    (hi > 0.0).then(|| {
        // A margin of a fifth of a decade each side, and at least a decade.
        let (lo, hi) = (lo / 10f64.powf(0.2), hi * 10f64.powf(0.2));
        if hi / lo < 10.0 {
            let mid = (lo * hi).sqrt();
            (mid / 10f64.sqrt(), mid * 10f64.sqrt())
        } else {
            (lo, hi)
        }
    })
}

fn tick(v: &f64) -> String {
    format!("{v:.0e}")
}

/// A number as a person writes it on an axis: 0.1, 2.5, 1000, 3e-5.
fn short(v: f64) -> String {
    if v == 0.0 {
        return "0".into();
    }
    if (1e-3..1e5).contains(&v.abs()) {
        let text = format!("{v:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        text.to_string()
    } else {
        format!("{v:.0e}")
    }
}

/// A grid value for a legend: a long number to four significant digits
/// (0.22587827631437318 -> 0.2259), anything else as written.
fn compact(value: &str) -> String {
    match value.parse::<f64>() {
        Ok(v) if v.is_finite() && v != 0.0 && value.len() > 7 => {
            let decimals = (3 - v.abs().log10().floor() as i32).clamp(0, 12) as usize;
            let text = format!("{v:.decimals$}");
            match text.contains('.') {
                true => text.trim_end_matches('0').trim_end_matches('.').to_string(),
                false => text,
            }
        }
        _ => value.to_string(),
    }
}

/// A legend's name of a grid point or line: its values, compacted.
fn point_name<'a>(values: impl IntoIterator<Item = &'a String>) -> String {
    values
        .into_iter()
        .map(|v| compact(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What the figures know of the run they draw: the model for the title,
/// the loss and its reduction for the axes. From the run itself (`--plot`)
/// or from the summary.json beside the input (an `--out` directory).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Labels {
    /// E.g. "2-3-1 on xor".
    pub model: Option<String>,
    /// The loss and its reduction, e.g. ("half-sse", "sum").
    pub loss: Option<(String, String)>,
    /// The training samples and the held-out samples (if any) the losses
    /// reduce over: with them, curves of summed training and held-out
    /// losses are drawn per sample, where they compare.
    pub samples: Option<(usize, Option<usize>)>,
}

impl Labels {
    /// From a summary's fields.
    pub fn of(topology: &str, data: &str, loss: &str, reduction: &str) -> Self {
        Labels {
            model: Some(format!("{topology} on {data}")),
            loss: Some((loss.to_string(), reduction.to_string())),
            samples: None,
        }
    }

    /// With the samples the training and held-out losses reduce over.
    pub fn with_samples(self, samples: usize, eval_samples: Option<usize>) -> Self {
        Labels {
            samples: Some((samples, eval_samples)),
            ..self
        }
    }

    /// The divisors that turn summed training and held-out losses into
    /// means per sample: only where the losses are sums and both sets'
    /// sizes are known (a mean already compares).
    fn per_sample(&self) -> Option<(f64, f64)> {
        match (&self.loss, self.samples) {
            (Some((_, reduction)), Some((train, Some(eval))))
                if reduction == "sum" && train > 0 && eval > 0 =>
            {
                Some((train as f64, eval as f64))
            }
            _ => None,
        }
    }

    /// From the summary.json in `input`'s directory, if there is one that
    /// reads; none otherwise (the figure then names the file).
    pub fn beside(input: &Path) -> Self {
        let summary = input
            .parent()
            .map(|dir| dir.join("summary.json"))
            .and_then(|path| std::fs::read_to_string(path).ok())
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok());
        let field = |name: &str| {
            summary
                .as_ref()
                .and_then(|s| s.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        };
        let count = |name: &str| {
            summary
                .as_ref()
                .and_then(|s| s.get(name))
                .and_then(|v| v.as_u64())
                .map(|n| n as usize)
        };
        let labels = match (
            field("topology"),
            field("data"),
            field("loss"),
            field("reduction"),
        ) {
            (Some(t), Some(d), Some(l), Some(r)) => Labels::of(&t, &d, &l, &r),
            _ => return Labels::default(),
        };
        match count("samples") {
            Some(n) => labels.with_samples(n, count("eval_samples")),
            None => labels,
        }
    }

    /// An axis's name: `what` with the loss and how it is reduced over
    /// the samples, if known: "loss (mse, summed over samples; log scale)".
    fn loss_axis(&self, what: &str) -> String {
        match &self.loss {
            Some((loss, reduction)) => {
                let over = match reduction.as_str() {
                    "sum" => "summed over samples".to_string(),
                    "mean" => "mean over samples".to_string(),
                    other => format!("{other} over samples"),
                };
                format!("{what} ({loss}, {over}; log scale)")
            }
            None => format!("{what} (log scale)"),
        }
    }

    /// The axis of summed losses drawn as means per sample.
    fn per_sample_axis(&self) -> String {
        let loss = self.loss.as_ref().map_or("loss", |(l, _)| l.as_str());
        format!("loss per sample ({loss} sum / samples; log scale)")
    }

    /// A short axis name for a panel: "final loss (mse, sum)".
    fn short_loss_axis(&self, what: &str) -> String {
        match &self.loss {
            Some((loss, reduction)) => format!("{what} ({loss}, {reduction})"),
            None => what.to_string(),
        }
    }

    /// The title's end: the model, or the input's name.
    fn source(&self, fallback: &str) -> String {
        self.model.clone().unwrap_or_else(|| fallback.to_string())
    }
}

/// The ten colours of matplotlib's and d3's category palette, which a
/// reader of scientific figures knows.
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// How a legend entry shows its series.
#[derive(Clone, Copy, Debug)]
enum Mark {
    Line(RGBColor, u32),
    Band(RGBColor, f64),
    Dot(RGBColor),
    Cross(RGBColor),
    /// A line through a dot with an error bar: a series of points.
    Bar(RGBColor),
    /// No mark: a line of explanation.
    Note,
}

/// Width of the legend column at the right of a figure.
const LEGEND_WIDTH: u32 = 190;

/// Splits `root` into the data's area and a legend column at the right.
fn with_legend<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let width = root.dim_in_pixel().0;
    root.split_horizontally(width.saturating_sub(LEGEND_WIDTH))
}

/// Draws a legend into `area` (a column beside the data): an optional
/// heading, then one row per entry; entries that do not fit are counted
/// in a last row.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    top: i32,
    heading: Option<&str>,
    entries: &[(String, Mark)],
) -> Result<(), String> {
    let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    let style = TextStyle::from((FAMILY, 14).into_font()).color(&BLACK);
    let row = 22;
    let mut y = top;
    if let Some(h) = heading {
        area.draw(&Text::new(h.to_string(), (8, y - 7), style.clone()))
            .map_err(e)?;
        y += row;
    }
    let height = area.dim_in_pixel().1 as i32;
    let fit = ((height - y - row) / row).max(1) as usize;
    let shown = if entries.len() > fit {
        fit - 1
    } else {
        entries.len()
    };
    for (label, mark) in &entries[..shown] {
        let (x0, x1) = (10, 34);
        match *mark {
            Mark::Line(c, w) => {
                area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(w)))
            }
            Mark::Band(c, shade) => area.draw(&Rectangle::new(
                [(x0, y - 6), (x1, y + 6)],
                c.mix(shade).filled(),
            )),
            Mark::Dot(c) => area.draw(&Circle::new(((x0 + x1) / 2, y), 3, c.mix(0.6).filled())),
            Mark::Cross(c) => area.draw(&Cross::new(((x0 + x1) / 2, y), 5, c.stroke_width(2))),
            Mark::Bar(c) => {
                area.draw(&PathElement::new(vec![(x0, y), (x1, y)], c.stroke_width(2)))
                    .map_err(e)?;
                area.draw(&PathElement::new(
                    vec![((x0 + x1) / 2, y - 7), ((x0 + x1) / 2, y + 7)],
                    c.stroke_width(1),
                ))
                .map_err(e)?;
                area.draw(&Circle::new(((x0 + x1) / 2, y), 3, c.filled()))
            }
            Mark::Note => {
                area.draw(&Text::new(clip(label, 25), (x0, y - 7), style.clone()))
                    .map_err(e)?;
                y += row;
                continue;
            }
        }
        .map_err(e)?;
        area.draw(&Text::new(clip(label, 20), (x1 + 8, y - 7), style.clone()))
            .map_err(e)?;
        y += row;
    }
    if shown < entries.len() {
        let more = format!("and {} more", entries.len() - shown);
        area.draw(&Text::new(more, (10, y - 7), style)).map_err(e)?;
    }
    Ok(())
}

/// `text` cut to `chars` characters, "..." marking a cut.
fn clip(text: &str, chars: usize) -> String {
    if text.chars().count() <= chars {
        text.to_string()
    } else {
        let kept: String = text.chars().take(chars.saturating_sub(3)).collect();
        format!("{kept}...")
    }
}

/// Draws `curves` into `path` (.svg or .png).
/// Summed training and held-out losses are drawn per sample (each set's
/// sum over its own size), where they compare: a sum over fewer held-out
/// rows would otherwise sit below the training curve for that alone.
pub fn history(curves: &Curves, path: &Path, flag: &str) -> Result<(), Error> {
    let scaled = per_sample(curves);
    let (curves, per_sample) = match &scaled {
        Some(scaled) => (scaled, true),
        None => (curves, false),
    };
    let figure = HistoryFigure::new(curves, per_sample).ok_or_else(|| {
        Error::Config(format!(
            "{flag} {}: the curves have no finite positive loss to draw (every network diverged?)",
            path.display()
        ))
    })?;
    render(path, flag, &figure)
}

/// Curves of summed losses with held-out ones, as means per sample (the
/// target too, which is the training sum's); none where the losses are
/// means already, there is no held-out curve, or the sizes are unknown.
fn per_sample(curves: &Curves) -> Option<Curves> {
    let held_out = curves.points.iter().any(|p| p.eval_loss.is_some());
    let (train, eval) = curves.labels.per_sample().filter(|_| held_out)?;
    let per = |q: &Option<Quantiles>, n: f64| q.as_ref().map(|q| q.map(|l| l / n));
    Some(Curves {
        points: curves
            .points
            .iter()
            .map(|p| HistoryPoint {
                loss: per(&p.loss, train),
                eval_loss: per(&p.eval_loss, eval),
                ..p.clone()
            })
            .collect(),
        target_loss: curves.target_loss.map(|t| t / train),
        ..curves.clone()
    })
}

struct HistoryFigure<'a> {
    curves: &'a Curves,
    /// The losses are the sums' means per sample ([`history`]).
    per_sample: bool,
    lo: f64,
    hi: f64,
    last: f64,
}

impl<'a> HistoryFigure<'a> {
    fn new(curves: &'a Curves, per_sample: bool) -> Option<Self> {
        let all = curves.points.iter().flat_map(|p| {
            let q =
                |q: &Option<Quantiles>| q.iter().flat_map(|q| [q.min, q.max]).collect::<Vec<_>>();
            q(&p.loss).into_iter().chain(q(&p.eval_loss))
        });
        let (lo, hi) = log_range(all.chain(curves.target_loss))?;
        let last = curves.points.last().map_or(1, |p| p.epoch).max(1) as f64;
        Some(Self {
            curves,
            per_sample,
            lo,
            hi,
            last,
        })
    }
}

impl Figure for HistoryFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (curves, lo, hi, last) = (self.curves, self.lo, self.hi, self.last);
        let floor = |v: f64| v.max(lo);
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let title = format!(
            "{} of {} networks: {}",
            match self.per_sample {
                true => "Loss per sample",
                false => "Training loss",
            },
            curves.networks,
            curves.labels.source(&curves.source)
        );
        let root = root.titled(&title, (FAMILY, 22)).map_err(e)?;
        let (data, legend) = with_legend(&root);
        let mut entries = Vec::new();
        let mut chart = ChartBuilder::on(&data)
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..last, (lo..hi).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc(match self.per_sample {
                true => curves.labels.per_sample_axis(),
                false => curves.labels.loss_axis("loss"),
            })
            .x_label_formatter(&|v| format!("{v:.0}"))
            .y_label_formatter(&tick)
            .label_style((FAMILY, 15))
            .axis_desc_style((FAMILY, 17))
            .light_line_style(BLACK.mix(0.04))
            .draw()
            .map_err(e)?;
        let series = |pick: fn(&HistoryPoint) -> &Option<Quantiles>| {
            curves
                .points
                .iter()
                .filter_map(move |p| pick(p).as_ref().map(|q| (p.epoch as f64, q)))
        };
        let band = |pick: fn(&HistoryPoint) -> &Option<Quantiles>,
                    low: fn(&Quantiles) -> f64,
                    high: fn(&Quantiles) -> f64| {
            let upper: Vec<(f64, f64)> = series(pick).map(|(x, q)| (x, floor(high(q)))).collect();
            let lower = series(pick).map(|(x, q)| (x, floor(low(q))));
            let mut outline = upper;
            outline.extend(lower.collect::<Vec<_>>().into_iter().rev());
            outline
        };
        let blue = RGBColor(31, 119, 180);
        let orange = RGBColor(255, 127, 14);
        let train: fn(&HistoryPoint) -> &Option<Quantiles> = training_loss;
        // Training's entries say so beside the held-out ones.
        let held_out = curves.points.iter().any(|p| p.eval_loss.is_some());
        let which = if held_out { "training " } else { "" };
        let bands: [(&str, Pick, Pick, f64); 2] = [
            ("min-max", |q| q.min, |q| q.max, 0.12),
            ("10%-90%", |q| q.p10, |q| q.p90, 0.3),
        ];
        for (label, low, high, shade) in bands {
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band(train, low, high),
                    blue.mix(shade).filled(),
                )))
                .map_err(e)?;
            entries.push((format!("{which}{label}"), Mark::Band(blue, shade)));
        }
        chart
            .draw_series(LineSeries::new(
                series(train).map(|(x, q)| (x, floor(q.median))),
                blue.stroke_width(3),
            ))
            .map_err(e)?;
        entries.push((format!("{which}median"), Mark::Line(blue, 3)));
        if held_out {
            let eval: fn(&HistoryPoint) -> &Option<Quantiles> = held_out_loss;
            chart
                .draw_series(std::iter::once(Polygon::new(
                    band(eval, |q| q.p10, |q| q.p90),
                    orange.mix(0.15).filled(),
                )))
                .map_err(e)?;
            chart
                .draw_series(LineSeries::new(
                    series(eval).map(|(x, q)| (x, floor(q.median))),
                    orange.stroke_width(3),
                ))
                .map_err(e)?;
            entries.push(("held-out median".to_string(), Mark::Line(orange, 3)));
            entries.push(("held-out 10%-90%".to_string(), Mark::Band(orange, 0.15)));
        }
        if let Some(t) = curves.target_loss.filter(|t| *t > 0.0) {
            chart
                .draw_series(LineSeries::new([(0.0, t), (last, t)], RED.stroke_width(2)))
                .map_err(e)?;
            let label = match (self.per_sample, curves.labels.samples) {
                (true, Some((n, _))) => format!("target {:e} / {n}", t * n as f64),
                _ => format!("target {t:e}"),
            };
            entries.push((label, Mark::Line(RED, 2)));
        }
        draw_legend(&legend, 40, None, &entries)
    }
}

/// One quantile of a point.
type Pick = fn(&Quantiles) -> f64;

fn training_loss(p: &HistoryPoint) -> &Option<Quantiles> {
    &p.loss
}

fn held_out_loss(p: &HistoryPoint) -> &Option<Quantiles> {
    &p.eval_loss
}

/// One network of a results CSV.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FinalLoss {
    pub learning_rate: f64,
    pub final_loss: f64,
    pub diverged: bool,
}

/// Bins of a log-scale histogram: `bins` equal steps in log10 over the
/// finite positive `values`, each (low, high, count).
pub fn log_bins(values: &[f64], bins: usize) -> Vec<(f64, f64, usize)> {
    let positive: Vec<f64> = values
        .iter()
        .copied()
        .filter(|v| v.is_finite() && *v > 0.0)
        .collect();
    let Some((lo, hi)) = positive.iter().fold(None, |r: Option<(f64, f64)>, &v| {
        Some(r.map_or((v, v), |(lo, hi)| (lo.min(v), hi.max(v))))
    }) else {
        return Vec::new();
    };
    // One bin a decade wide around a single value.
    let (a, b) = if hi / lo < 1.0 + 1e-9 {
        (lo.log10() - 0.5, lo.log10() + 0.5)
    } else {
        (lo.log10(), hi.log10())
    };
    let width = (b - a) / bins as f64;
    let mut counts = vec![0usize; bins];
    for v in positive {
        let i = (((v.log10() - a) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    counts
        .into_iter()
        .enumerate()
        .map(|(i, c)| {
            let low = 10f64.powf(a + i as f64 * width);
            (low, 10f64.powf(a + (i + 1) as f64 * width), c)
        })
        .collect()
}

/// Populations above this many networks are drawn as counts per cell
/// with binned quantiles, not one mark per network: a figure of 10^6
/// networks stays well under a megabyte.
pub const SCATTER_LIMIT: usize = 5_000;

/// Draws the final losses of `networks` into `path` (.svg or .png): for a
/// learning-rate sweep, rate against final loss (log-log), one mark per
/// network up to [`SCATTER_LIMIT`] and beyond it a 2-D histogram with the
/// median and 10%-90% per rate bin, diverged networks as red crosses
/// along the top; otherwise a histogram with log bins and a log count
/// axis (a stuck tail of a few networks stays visible). `source` names
/// the run in the title where `labels` has no model.
pub fn results(
    networks: &[FinalLoss],
    source: &str,
    labels: &Labels,
    path: &Path,
    flag: &str,
) -> Result<(), Error> {
    let diverged = networks
        .iter()
        .filter(|n| n.diverged || !n.final_loss.is_finite())
        .count();
    let losses: Vec<f64> = networks.iter().map(|n| n.final_loss).collect();
    let Some((lo, hi)) = log_range(losses.iter().copied()) else {
        return Err(Error::Config(format!(
            "{flag} {}: no network has a finite positive final loss to draw",
            path.display()
        )));
    };
    let sweep = networks
        .iter()
        .any(|n| n.learning_rate != networks[0].learning_rate);
    let title = format!(
        "Final loss of {} networks, {} diverged: {}",
        networks.len(),
        diverged,
        labels.source(source)
    );
    let figure = ResultsFigure {
        networks,
        losses,
        diverged,
        sweep,
        title,
        axis: labels.loss_axis("final loss"),
        lo,
        hi,
    };
    render(path, flag, &figure)
}

struct ResultsFigure<'a> {
    networks: &'a [FinalLoss],
    losses: Vec<f64>,
    diverged: usize,
    sweep: bool,
    title: String,
    /// The loss axis's name.
    axis: String,
    lo: f64,
    hi: f64,
}

/// Whether a network has a loss to place.
fn fine(n: &FinalLoss) -> bool {
    !n.diverged && n.final_loss.is_finite()
}

/// The cell counts of a 2-D histogram over log x and log y.
struct Cells {
    columns: usize,
    rows: usize,
    x: (f64, f64),
    y: (f64, f64),
    counts: Vec<u32>,
}

impl Cells {
    fn new(columns: usize, rows: usize, x: (f64, f64), y: (f64, f64)) -> Self {
        Cells {
            columns,
            rows,
            x: (x.0.log10(), x.1.log10()),
            y: (y.0.log10(), y.1.log10()),
            counts: vec![0; columns * rows],
        }
    }

    /// The bin of `v` among `n` equal steps of log10 over `range`.
    fn bin(v: f64, range: (f64, f64), n: usize) -> usize {
        let t = (v.log10() - range.0) / (range.1 - range.0);
        ((t * n as f64).max(0.0) as usize).min(n - 1)
    }

    fn column(&self, x: f64) -> usize {
        Self::bin(x, self.x, self.columns)
    }

    fn add(&mut self, x: f64, y: f64) {
        let (c, r) = (self.column(x), Self::bin(y, self.y, self.rows));
        self.counts[r * self.columns + c] += 1;
    }

    /// Column `c`'s edges in data units.
    fn x_edges(&self, c: usize) -> (f64, f64) {
        let step = (self.x.1 - self.x.0) / self.columns as f64;
        let at = |i: usize| 10f64.powf(self.x.0 + i as f64 * step);
        (at(c), at(c + 1))
    }

    fn y_edges(&self, r: usize) -> (f64, f64) {
        let step = (self.y.1 - self.y.0) / self.rows as f64;
        let at = |i: usize| 10f64.powf(self.y.0 + i as f64 * step);
        (at(r), at(r + 1))
    }
}

impl Figure for ResultsFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (networks, losses, diverged, sweep) =
            (self.networks, &self.losses, self.diverged, self.sweep);
        let (lo, hi) = (self.lo, self.hi);
        let blue = PALETTE[0];
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let root = root.titled(&self.title, (FAMILY, 22)).map_err(e)?;
        let (data, legend) = with_legend(&root);
        let mut builder = ChartBuilder::on(&data);
        builder
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80);
        let mut entries = Vec::new();
        if sweep {
            let rates = networks.iter().map(|n| n.learning_rate);
            let (r_lo, r_hi) = log_range(rates).unwrap_or((1e-3, 1.0));
            let mut chart = builder
                .build_cartesian_2d((r_lo..r_hi).log_scale(), (lo..hi).log_scale())
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("learning rate (log scale)")
                .y_desc(&self.axis)
                .x_label_formatter(&|v| short(*v))
                .y_label_formatter(&tick)
                .label_style((FAMILY, 15))
                .axis_desc_style((FAMILY, 17))
                .light_line_style(BLACK.mix(0.04))
                .draw()
                .map_err(e)?;
            let mut cells = Cells::new(60, 40, (r_lo, r_hi), (lo, hi));
            if networks.len() <= SCATTER_LIMIT {
                chart
                    .draw_series(networks.iter().filter(|n| fine(n)).map(|n| {
                        Circle::new(
                            (n.learning_rate, n.final_loss.max(lo)),
                            3,
                            blue.mix(0.6).filled(),
                        )
                    }))
                    .map_err(e)?;
                entries.push(("network".to_string(), Mark::Dot(blue)));
                let bad = networks.iter().filter(|n| !fine(n));
                chart
                    .draw_series(
                        bad.map(|n| Cross::new((n.learning_rate, hi), 5, RED.stroke_width(2))),
                    )
                    .map_err(e)?;
            } else {
                for n in networks.iter().filter(|n| fine(n)) {
                    cells.add(n.learning_rate, n.final_loss.max(lo));
                }
                let most = f64::from(cells.counts.iter().copied().max().unwrap_or(1).max(1));
                // Shade by log count: one network is faint, the most
                // crowded cell full.
                let shade = |count: u32| 0.12 + 0.88 * (f64::from(count).ln() / most.ln().max(1.0));
                let mut rectangles = Vec::new();
                for r in 0..cells.rows {
                    for c in 0..cells.columns {
                        let count = cells.counts[r * cells.columns + c];
                        if count > 0 {
                            let ((x0, x1), (y0, y1)) = (cells.x_edges(c), cells.y_edges(r));
                            rectangles.push(Rectangle::new(
                                [(x0, y0), (x1, y1)],
                                blue.mix(shade(count)).filled(),
                            ));
                        }
                    }
                }
                chart.draw_series(rectangles).map_err(e)?;
                for (count, label) in [
                    (1u32, "1 network a cell".to_string()),
                    (most as u32, format!("{most} a cell")),
                ] {
                    entries.push((label, Mark::Band(blue, shade(count))));
                }
                // The median and 10%-90% of each rate bin.
                let mut by_column: Vec<Vec<f64>> = vec![Vec::new(); cells.columns];
                for n in networks.iter().filter(|n| fine(n)) {
                    by_column[cells.column(n.learning_rate)].push(n.final_loss.max(lo));
                }
                let mut lines: [Vec<(f64, f64)>; 3] = Default::default();
                for (c, values) in by_column.iter_mut().enumerate() {
                    if values.len() >= 5 {
                        let q = Quantiles::of(values).expect("not empty");
                        let (x0, x1) = cells.x_edges(c);
                        let x = (x0 * x1).sqrt();
                        lines[0].push((x, q.p10));
                        lines[1].push((x, q.median));
                        lines[2].push((x, q.p90));
                    }
                }
                for (i, line) in lines.into_iter().enumerate() {
                    let width = if i == 1 { 3 } else { 1 };
                    chart
                        .draw_series(LineSeries::new(line, BLACK.stroke_width(width)))
                        .map_err(e)?;
                }
                entries.push(("median of a rate bin".to_string(), Mark::Line(BLACK, 3)));
                entries.push(("10%, 90% of the bin".to_string(), Mark::Line(BLACK, 1)));
                // Diverged networks: one cross per rate bin that has any.
                let mut bad = vec![0usize; cells.columns];
                for n in networks.iter().filter(|n| !fine(n)) {
                    bad[cells.column(n.learning_rate)] += 1;
                }
                let crosses = bad
                    .iter()
                    .enumerate()
                    .filter(|(_, k)| **k > 0)
                    .map(|(c, _)| {
                        let (x0, x1) = cells.x_edges(c);
                        Cross::new(((x0 * x1).sqrt(), hi), 5, RED.stroke_width(2))
                    });
                chart.draw_series(crosses).map_err(e)?;
            }
            entries.push((format!("diverged (top): {diverged}"), Mark::Cross(RED)));
        } else {
            let bins = log_bins(losses, 30);
            let most = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64;
            // The axis runs in log10 of the loss, labelled with the loss:
            // evenly spaced ticks however narrow the spread. Counts on a
            // log axis: bars rise from half a network.
            let (x_lo, x_hi) = (bins[0].0.log10(), bins[bins.len() - 1].1.log10());
            let mut chart = builder
                .build_cartesian_2d(x_lo..x_hi, (0.5..most * 2.0).log_scale())
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc(&self.axis)
                .y_desc("networks (log scale)")
                .x_label_formatter(&|v| format!("{:.1e}", 10f64.powf(*v)))
                .y_label_formatter(&|v| short(*v))
                .x_labels(8)
                .label_style((FAMILY, 15))
                .axis_desc_style((FAMILY, 17))
                .light_line_style(BLACK.mix(0.04))
                .draw()
                .map_err(e)?;
            chart
                .draw_series(bins.iter().filter(|b| b.2 > 0).map(|&(a, b, c)| {
                    Rectangle::new(
                        [(a.log10(), 0.5), (b.log10(), c as f64)],
                        blue.mix(0.7).filled(),
                    )
                }))
                .map_err(e)?;
            entries.push(("networks per bin".to_string(), Mark::Band(blue, 0.7)));
            if diverged > 0 {
                entries.push((format!("{diverged} diverged, not shown"), Mark::Cross(RED)));
            }
        }
        draw_legend(&legend, 40, None, &entries)
    }
}

/// Reads a results CSV (`--results`) for [`results`]: its header must be
/// the one gputrain writes; a bad line is named.
pub fn read_results(path: &Path) -> Result<Vec<FinalLoss>, Error> {
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
    let header = lines.next().unwrap_or_default();
    // A sweep's file has its grid columns after `network`; the rest are
    // the plain file's.
    let names: Vec<&str> = header.trim().split(',').collect();
    let column = |name: &str| names.iter().position(|n| *n == name);
    let tail = crate::output::RESULTS_HEADER
        .trim()
        .strip_prefix("network,")
        .unwrap_or("");
    let not_ours = || {
        bad(
            1,
            format!(
                "not a gputrain results CSV (written by {}): its header is '{}', \
                 expected '{}'",
                crate::setting::settings::RESULTS,
                header,
                crate::output::RESULTS_HEADER.trim()
            ),
        )
    };
    let (Some(lr), Some(loss), Some(diverged)) = (
        column("learning_rate"),
        column("final_loss"),
        column("diverged"),
    ) else {
        return Err(not_ours());
    };
    // Files written before the out-of-bag columns end one step earlier,
    // those before the early-stopping columns two, and those before the
    // per-sample columns three.
    let before_oob = tail.strip_suffix(",oob_loss,oob_accuracy").unwrap_or(tail);
    let before_early = before_oob
        .strip_suffix(",best_epoch,stopped_epoch")
        .unwrap_or(before_oob);
    let older = before_early
        .strip_suffix(",train_loss_per_sample,eval_loss_per_sample")
        .unwrap_or(before_early);
    let trimmed = header.trim();
    let ours = [tail, before_oob, before_early, older]
        .iter()
        .any(|t| trimmed.ends_with(t));
    if names.first() != Some(&"network") || !ours {
        return Err(not_ours());
    }
    let mut networks = Vec::new();
    for (i, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        let number = |k: usize, name: &str| -> Result<f64, Error> {
            cells
                .get(k)
                .and_then(|c| c.trim().parse::<f64>().ok())
                .ok_or_else(|| bad(i + 2, format!("the {name} column is not a number")))
        };
        networks.push(FinalLoss {
            learning_rate: number(lr, "learning_rate")?,
            final_loss: number(loss, "final_loss")?,
            diverged: number(diverged, "diverged")? != 0.0,
        });
    }
    if networks.is_empty() {
        return Err(bad(1, "holds no network".into()));
    }
    Ok(networks)
}

/// Reads learning curves for [`history`]: the quantile CSV
/// (`--history-csv`) or the per-network file (`--history-out`), whose
/// quantiles are taken here.
pub fn read_history(path: &Path) -> Result<Curves, Error> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let source = path
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    // A safetensors file opens with its header's length, then '{'.
    if bytes.get(8) == Some(&b'{') {
        let (points, networks, target_loss) = crate::history::read_file(path, &bytes)?;
        return Ok(Curves {
            points,
            networks,
            target_loss,
            source,
            labels: Labels::beside(path),
        });
    }
    let text = String::from_utf8_lossy(&bytes);
    let points = crate::history::parse_csv(path, &text)?;
    let networks = points.first().map_or(0, |p| p.networks);
    Ok(Curves {
        points,
        networks,
        target_loss: None,
        source,
        labels: Labels::beside(path),
    })
}

/// The default output of `gputrain plot`: the input's name with `.svg`.
pub fn default_output(input: &Path) -> PathBuf {
    input.with_extension("svg")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn five(v: f64) -> Quantiles {
        Quantiles {
            min: v,
            p10: 2.0 * v,
            median: 3.0 * v,
            p90: 4.0 * v,
            max: 5.0 * v,
        }
    }

    fn curves(reduction: &str, eval: bool) -> Curves {
        Curves {
            points: vec![HistoryPoint {
                epoch: 10,
                networks: 4,
                diverged: 0,
                loss: Some(five(30.0)),
                reached_target: None,
                eval_loss: eval.then(|| five(10.0)),
            }],
            networks: 4,
            target_loss: Some(1.5),
            source: String::new(),
            labels: Labels::of("2-3-1", "moons", "mse", reduction).with_samples(75, Some(25)),
        }
    }

    #[test]
    fn summed_curves_beside_held_out_ones_are_drawn_per_sample() {
        let scaled = per_sample(&curves("sum", true)).expect("sums with held-out curves");
        let point = &scaled.points[0];
        assert_eq!(point.loss, Some(five(30.0).map(|q| q / 75.0)));
        assert_eq!(point.eval_loss, Some(five(10.0).map(|q| q / 25.0)));
        assert_eq!(
            scaled.target_loss,
            Some(1.5 / 75.0),
            "the training sum's target"
        );
        assert_eq!(point.epoch, 10);
        // Means compare already; a training curve alone has nothing to
        // compare with; unknown sizes cannot be divided by.
        assert_eq!(per_sample(&curves("mean", true)), None);
        assert_eq!(per_sample(&curves("sum", false)), None);
        let mut unknown = curves("sum", true);
        unknown.labels.samples = None;
        assert_eq!(per_sample(&unknown), None);
    }
}
