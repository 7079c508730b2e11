//! Figures with plotters, SVG or PNG by the output's extension, 800 x 600:
//! the learning curves of a population (median with p10-p90 and min-max
//! bands against epoch, log loss, the held-out median and the target line
//! where there are), and the final losses of a run (a histogram with log
//! bins, or for a learning-rate sweep the scatter of rate against final
//! loss, log-log, with diverged networks marked). The text is set in a
//! subset of DejaVu Sans bundled in `assets/`, so no system font is needed
//! (servers and CI have none).

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

const FONT: &[u8] = include_bytes!("../assets/DejaVuSans-subset.ttf");
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
    /// Where the curves come from, for the title.
    pub source: String,
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

/// Draws `curves` into `path` (.svg or .png).
pub fn history(curves: &Curves, path: &Path, flag: &str) -> Result<(), Error> {
    let figure = HistoryFigure::new(curves).ok_or_else(|| {
        Error::Config(format!(
            "{flag} {}: the curves have no finite positive loss to draw (every network diverged?)",
            path.display()
        ))
    })?;
    render(path, flag, &figure)
}

struct HistoryFigure<'a> {
    curves: &'a Curves,
    lo: f64,
    hi: f64,
    last: f64,
}

impl<'a> HistoryFigure<'a> {
    fn new(curves: &'a Curves) -> Option<Self> {
        let all = curves.points.iter().flat_map(|p| {
            let q =
                |q: &Option<Quantiles>| q.iter().flat_map(|q| [q.min, q.max]).collect::<Vec<_>>();
            q(&p.loss).into_iter().chain(q(&p.eval_loss))
        });
        let (lo, hi) = log_range(all.chain(curves.target_loss))?;
        let last = curves.points.last().map_or(1, |p| p.epoch).max(1) as f64;
        Some(Self {
            curves,
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
        let mut chart = ChartBuilder::on(root)
            .caption(
                format!(
                    "Training loss of {} networks ({})",
                    curves.networks, curves.source
                ),
                (FAMILY, 22),
            )
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80)
            .build_cartesian_2d(0.0..last, (lo..hi).log_scale())
            .map_err(e)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .y_desc("loss (log scale)")
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
                .map_err(e)?
                .label(label)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 6), (x + 20, y + 6)], blue.mix(shade).filled())
                });
        }
        chart
            .draw_series(LineSeries::new(
                series(train).map(|(x, q)| (x, floor(q.median))),
                blue.stroke_width(3),
            ))
            .map_err(e)?
            .label("median")
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], blue.stroke_width(3))
            });
        if curves.points.iter().any(|p| p.eval_loss.is_some()) {
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
                .map_err(e)?
                .label("held-out median (10%-90%)")
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], orange.stroke_width(3))
                });
        }
        if let Some(t) = curves.target_loss.filter(|t| *t > 0.0) {
            chart
                .draw_series(LineSeries::new([(0.0, t), (last, t)], RED.stroke_width(2)))
                .map_err(e)?
                .label(format!("target {t:e}"))
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .label_font((FAMILY, 15))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .draw()
            .map_err(e)?;
        Ok(())
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

/// Draws the final losses of `networks` into `path` (.svg or .png): for a
/// learning-rate sweep, rate against final loss (log-log) with diverged
/// networks as red crosses along the top; otherwise a histogram with log
/// bins. `source` names the run in the title.
pub fn results(networks: &[FinalLoss], source: &str, path: &Path, flag: &str) -> Result<(), Error> {
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
        "Final loss of {} networks, {} diverged ({source})",
        networks.len(),
        diverged
    );
    let figure = ResultsFigure {
        networks,
        losses,
        diverged,
        sweep,
        title,
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
    lo: f64,
    hi: f64,
}

impl Figure for ResultsFigure<'_> {
    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), String> {
        let (networks, losses, diverged, sweep) =
            (self.networks, &self.losses, self.diverged, self.sweep);
        let (title, lo, hi) = (&self.title, self.lo, self.hi);
        let blue = RGBColor(31, 119, 180);
        let e = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(e)?;
        let mut builder = ChartBuilder::on(root);
        builder
            .caption(title, (FAMILY, 22))
            .margin(20)
            .x_label_area_size(50)
            .y_label_area_size(80);
        if sweep {
            let rates = networks.iter().map(|n| n.learning_rate);
            let (r_lo, r_hi) = log_range(rates).unwrap_or((1e-3, 1.0));
            let mut chart = builder
                .build_cartesian_2d((r_lo..r_hi).log_scale(), (lo..hi).log_scale())
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("learning rate (log scale)")
                .y_desc("final loss (log scale)")
                .x_label_formatter(&tick)
                .y_label_formatter(&tick)
                .label_style((FAMILY, 15))
                .axis_desc_style((FAMILY, 17))
                .light_line_style(BLACK.mix(0.04))
                .draw()
                .map_err(e)?;
            let fine = networks
                .iter()
                .filter(|n| !n.diverged && n.final_loss.is_finite());
            chart
                .draw_series(fine.map(|n| {
                    Circle::new(
                        (n.learning_rate, n.final_loss.max(lo)),
                        3,
                        blue.mix(0.6).filled(),
                    )
                }))
                .map_err(e)?
                .label("network")
                .legend(move |(x, y)| Circle::new((x + 10, y), 3, blue.mix(0.6).filled()));
            let bad = networks
                .iter()
                .filter(|n| n.diverged || !n.final_loss.is_finite());
            chart
                .draw_series(bad.map(|n| Cross::new((n.learning_rate, hi), 5, RED.stroke_width(2))))
                .map_err(e)?
                .label(format!("diverged ({diverged}), drawn at the top"))
                .legend(|(x, y)| Cross::new((x + 10, y), 5, RED.stroke_width(2)));
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .label_font((FAMILY, 15))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .draw()
                .map_err(e)?;
        } else {
            let bins = log_bins(losses, 30);
            let most = bins.iter().map(|b| b.2).max().unwrap_or(1).max(1) as f64;
            // The axis runs in log10 of the loss, labelled with the loss:
            // evenly spaced ticks however narrow the spread.
            let (x_lo, x_hi) = (bins[0].0.log10(), bins[bins.len() - 1].1.log10());
            let mut chart = builder
                .build_cartesian_2d(x_lo..x_hi, 0.0..most * 1.1)
                .map_err(e)?;
            chart
                .configure_mesh()
                .x_desc("final loss (log scale)")
                .y_desc("networks")
                .x_label_formatter(&|v| format!("{:.1e}", 10f64.powf(*v)))
                .y_label_formatter(&|v| format!("{v:.0}"))
                .x_labels(8)
                .label_style((FAMILY, 15))
                .axis_desc_style((FAMILY, 17))
                .light_line_style(BLACK.mix(0.04))
                .draw()
                .map_err(e)?;
            chart
                .draw_series(bins.iter().map(|&(a, b, c)| {
                    Rectangle::new(
                        [(a.log10(), 0.0), (b.log10(), c as f64)],
                        blue.mix(0.7).filled(),
                    )
                }))
                .map_err(e)?;
        }
        Ok(())
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
    if names.first() != Some(&"network") || !header.trim().ends_with(tail) {
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
    })
}

/// The default output of `gputrain plot`: the input's name with `.svg`.
pub fn default_output(input: &Path) -> PathBuf {
    input.with_extension("svg")
}
