//! Learning curves (`--history K`): which epochs a run records, how a
//! network's curve is completed once it is trained, the per-network file
//! (`--history-out`, safetensors) and the population's quantiles per
//! recorded epoch (`--history-csv`, and the JSON summary).
//!
//! The points are epoch 0, K, 2K, ... below the run's last epoch E, then E
//! itself: the loss "at epoch e" is the loss of the parameters after e
//! updates, as everywhere else ([`crate::training::NetworkOutcome`]). The
//! trainers record the points below E inside their epoch loops (the GPU
//! kernels into a buffer read back with the chunk), each with the count of
//! points it recorded; the point at E is the final loss. A network that
//! stopped at its target or diverged records nothing after that: its
//! parameters no longer change, so its later points are its final loss. A
//! point beyond the epochs an interrupted run completed is NaN.

use std::io::SeekFrom;
use std::path::Path;

use safetensors::tensor::{Dtype, Metadata, TensorInfo};
use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::output::{Sink, Written};
pub use crate::recording::{HistoryBlock, HistoryPlan, NetworkCurve, Recording};
use crate::setting::settings::{HISTORY_CSV, HISTORY_OUT};
use crate::stats::Quantiles;
use crate::training::NetworkOutcome;

/// The `format` metadata value of history files.
pub const FORMAT: &str = "gputrain-history-1";

/// The population at one recorded epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HistoryPoint {
    pub epoch: u64,
    /// Networks that trained this far (all, unless the run was
    /// interrupted).
    pub networks: u64,
    /// Of those, networks whose loss is NaN or infinite.
    pub diverged: u64,
    /// Quantiles of the finite training losses.
    pub loss: Option<Quantiles>,
    /// Share of all networks whose target epoch is at or before this one
    /// (with --target-loss).
    pub reached_target: Option<f64>,
    /// Quantiles of the finite held-out losses.
    pub eval_loss: Option<Quantiles>,
}

/// Per recorded epoch, every network's loss (float32: the quantiles need
/// all of them; see [`HistoryPlan::tally_bytes_per_network`]), how many
/// got there, diverged, and reached the target.
#[derive(Clone, Debug)]
pub struct HistoryTally {
    plan: HistoryPlan,
    with_target: bool,
    networks: u64,
    train: Vec<Vec<f32>>,
    eval: Vec<Vec<f32>>,
    reached: Vec<u64>,
    diverged: Vec<u64>,
    targets: Vec<u64>,
}

impl HistoryTally {
    pub fn new(plan: &HistoryPlan, networks: usize, with_target: bool) -> Self {
        let points = plan.points();
        let columns = |on: bool| {
            (0..if on { points } else { 0 })
                .map(|_| Vec::with_capacity(networks))
                .collect()
        };
        Self {
            plan: *plan,
            with_target,
            networks: 0,
            train: columns(true),
            eval: columns(plan.eval),
            reached: vec![0; points],
            diverged: vec![0; points],
            targets: vec![0; points],
        }
    }

    /// Takes in a completed block.
    pub fn record(&mut self, history: &HistoryBlock, outcomes: &[NetworkOutcome]) {
        for (n, o) in outcomes.iter().enumerate() {
            self.networks += 1;
            let (train, eval) = (history.train_row(n), history.eval_row(n));
            for (q, &loss) in train.iter().enumerate() {
                let epoch = self.plan.epoch(q);
                if o.target_epoch.is_some_and(|t| u64::from(t) <= epoch) {
                    self.targets[q] += 1;
                }
                if epoch > o.epochs_completed {
                    continue;
                }
                self.reached[q] += 1;
                if loss.is_finite() {
                    self.train[q].push(loss as f32);
                } else {
                    self.diverged[q] += 1;
                }
                if let Some(&e) = eval.get(q).filter(|e| e.is_finite()) {
                    self.eval[q].push(e as f32);
                }
            }
        }
    }

    /// The population at every recorded epoch.
    pub fn points(mut self) -> Vec<HistoryPoint> {
        let quantiles = |column: &mut Vec<f32>| {
            let mut values: Vec<f64> = column.drain(..).map(f64::from).collect();
            Quantiles::of(&mut values)
        };
        (0..self.plan.points())
            .map(|q| HistoryPoint {
                epoch: self.plan.epoch(q),
                networks: self.reached[q],
                diverged: self.diverged[q],
                loss: quantiles(&mut self.train[q]),
                reached_target: self
                    .with_target
                    .then(|| self.targets[q] as f64 / self.networks.max(1) as f64),
                eval_loss: self.eval.get_mut(q).and_then(quantiles),
            })
            .collect()
    }
}

/// The header of the quantile CSV; the `eval_` columns only with held-out
/// data.
pub fn csv_header(eval: bool) -> String {
    let mut header = String::from("epoch,min,p10,median,p90,max,reached_target,networks,diverged");
    if eval {
        header.push_str(",eval_min,eval_p10,eval_median,eval_p90,eval_max");
    }
    header
}

/// The quantile CSV: a header, then a line per recorded epoch; empty cells
/// where nothing applies (no finite loss, no target).
pub fn csv_text(points: &[HistoryPoint], eval: bool) -> String {
    let mut text = csv_header(eval) + "\n";
    // The quantiles come from float32 values: printed as float32, in
    // the shortest form that reads back the same.
    let five = |q: &Option<Quantiles>| match q {
        Some(q) => [q.min, q.p10, q.median, q.p90, q.max]
            .map(|v| (v as f32).to_string())
            .join(","),
        None => ",,,,".to_string(),
    };
    for p in points {
        let reached = p.reached_target.map(|r| r.to_string()).unwrap_or_default();
        text.push_str(&format!(
            "{},{},{reached},{},{}",
            p.epoch,
            five(&p.loss),
            p.networks,
            p.diverged
        ));
        if eval {
            text.push(',');
            text.push_str(&five(&p.eval_loss));
        }
        text.push('\n');
    }
    text
}

/// Writes the per-network curves as safetensors, a block at a time:
/// `loss` [networks, points] float32, `eval_loss` likewise with held-out
/// data, `epochs` `[points]` int64, into a file (renamed into place with
/// the run's other outputs) or memory: [`HistoryWriter::written`].
/// Dropped unfinished, it leaves nothing.
pub struct HistoryWriter {
    file: Sink,
    plan: HistoryPlan,
    networks: usize,
    data_start: u64,
}

impl HistoryWriter {
    /// `target_loss` goes into the metadata, for the plots' target line,
    /// and the configuration's `fingerprint` where the run has one.
    pub fn create(
        target: Option<&Path>,
        plan: &HistoryPlan,
        networks: usize,
        target_loss: Option<f64>,
        fingerprint: Option<&str>,
    ) -> Result<Self, Error> {
        let points = plan.points();
        let series_bytes = 4 * networks * points;
        let mut tensors = vec![(
            "loss".to_string(),
            TensorInfo {
                dtype: Dtype::F32,
                shape: vec![networks, points],
                data_offsets: (0, series_bytes),
            },
        )];
        let mut end = series_bytes;
        if plan.eval {
            tensors.push((
                "eval_loss".to_string(),
                TensorInfo {
                    dtype: Dtype::F32,
                    shape: vec![networks, points],
                    data_offsets: (end, end + series_bytes),
                },
            ));
            end += series_bytes;
        }
        tensors.push((
            "epochs".to_string(),
            TensorInfo {
                dtype: Dtype::I64,
                shape: vec![points],
                data_offsets: (end, end + 8 * points),
            },
        ));
        let metadata = [
            ("format", FORMAT.to_string()),
            ("every", plan.every.to_string()),
            ("epochs", plan.epochs.to_string()),
            (
                "target_loss",
                target_loss.map_or("none".to_string(), |t| t.to_string()),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .chain(fingerprint.map(|f| ("fingerprint".to_string(), f.to_string())))
        .collect();
        let header = Metadata::new(Some(metadata), tensors).expect("tensors back to back");
        // Sorted keys (serde_json's map): the same run writes the same bytes.
        let sorted = serde_json::to_value(&header).expect("a header is plain data");
        let mut json = serde_json::to_vec(&sorted).expect("a header is plain data");
        json.resize(json.len().next_multiple_of(8), b' ');
        let mut file = Sink::create(target)?;
        let data_start = 8 + json.len() as u64;
        let epochs: Vec<u8> = plan
            .epochs_recorded()
            .iter()
            .flat_map(|&e| (e as i64).to_le_bytes())
            .collect();
        let result = (|| {
            let out = file.handle();
            out.write_all(&(json.len() as u64).to_le_bytes())?;
            out.write_all(&json)?;
            out.seek(SeekFrom::Start(data_start + end as u64))?;
            out.write_all(&epochs)
        })();
        result.map_err(|e| file.error(e))?;
        Ok(Self {
            file,
            plan: *plan,
            networks,
            data_start,
        })
    }

    /// Writes networks `first..first + history.networks()`.
    pub fn write_block(&mut self, first: usize, history: &HistoryBlock) -> Result<(), Error> {
        let points = self.plan.points();
        assert!(
            first + history.networks() <= self.networks,
            "block beyond the file"
        );
        let series: &[&[f64]] = if self.plan.eval {
            &[&history.train, &history.eval]
        } else {
            &[&history.train]
        };
        for (s, values) in series.iter().enumerate() {
            let bytes: Vec<u8> = values
                .iter()
                .flat_map(|&v| (v as f32).to_le_bytes())
                .collect();
            let at = self.data_start + 4 * (s * self.networks * points + first * points) as u64;
            let file = &mut self.file;
            let result = file
                .handle()
                .seek(SeekFrom::Start(at))
                .and_then(|_| file.handle().write_all(&bytes));
            result.map_err(|e| file.error(e))?;
        }
        Ok(())
    }

    /// The complete file (to persist with the run's other outputs), or
    /// bytes.
    pub fn written(self) -> Written {
        self.file.written()
    }

    /// Copies networks `first..` from `shard`, a history file of the same
    /// plan (a shard's part of this one), byte for byte. Returns its
    /// networks.
    pub fn copy_from(
        &mut self,
        first: usize,
        shard: &crate::output::TensorFile,
    ) -> Result<usize, Error> {
        let points = self.plan.points();
        let networks = shard.rows("loss")?;
        assert!(first + networks <= self.networks, "shard beyond the file");
        let names: &[&str] = if self.plan.eval {
            &["loss", "eval_loss"]
        } else {
            &["loss"]
        };
        for (s, name) in names.iter().enumerate() {
            let at = self.data_start + 4 * (s * self.networks * points + first * points) as u64;
            shard.copy_rows(name, Dtype::F32, networks, 4 * points, &mut self.file, at)?;
        }
        Ok(networks)
    }
}

/// A `--history-out` file's contents: the recorded epochs, every
/// network's losses at them (row-major [networks, points]), the held-out
/// losses where recorded, and the target loss the run had.
#[derive(Clone, Debug, PartialEq)]
pub struct Losses {
    pub epochs: Vec<u64>,
    pub loss: Vec<f32>,
    pub eval: Option<Vec<f32>>,
    pub networks: u64,
    pub target_loss: Option<f64>,
}

impl Losses {
    /// The population of the networks in `ranges` at every recorded epoch; the
    /// share that reached the target by an epoch counts the networks whose
    /// loss was at or below it at that recorded epoch or an earlier one
    /// (the results' `target_epoch` is exact, this is as recorded).
    /// `ranges` must lie within the file's networks.
    pub fn points(&self, ranges: &[std::ops::Range<usize>]) -> Vec<HistoryPoint> {
        let points = self.epochs.len().max(1);
        let rows = |values: &[f32]| -> Vec<Vec<f32>> {
            ranges
                .iter()
                .flat_map(|r| values[r.start * points..r.end * points].chunks(points))
                .map(<[f32]>::to_vec)
                .collect()
        };
        let train = rows(&self.loss);
        let eval = self.eval.as_deref().map(rows);
        let column = |rows: &[Vec<f32>], q: usize| -> (Option<Quantiles>, u64) {
            let mut finite: Vec<f64> = rows
                .iter()
                .map(|r| r[q])
                .filter(|v| v.is_finite())
                .map(f64::from)
                .collect();
            let bad = (rows.len() - finite.len()) as u64;
            (Quantiles::of(&mut finite), bad)
        };
        let mut reached = vec![false; train.len()];
        self.epochs
            .iter()
            .enumerate()
            .map(|(q, &epoch)| {
                let (loss, non_finite) = column(&train, q);
                let reached_target = self.target_loss.map(|t| {
                    for (r, row) in reached.iter_mut().zip(&train) {
                        *r |= f64::from(row[q]) <= t;
                    }
                    reached.iter().filter(|r| **r).count() as f64 / train.len().max(1) as f64
                });
                HistoryPoint {
                    epoch,
                    networks: train.len() as u64,
                    diverged: non_finite,
                    loss,
                    reached_target,
                    eval_loss: eval.as_ref().and_then(|e| column(e, q).0),
                }
            })
            .collect()
    }
}

/// Reads a `--history-out` file (`bytes` its contents; `path` names it
/// in errors): every network's losses.
pub fn read_losses(path: &Path, bytes: &[u8]) -> Result<Losses, Error> {
    let bad = |message: String| Error::Data {
        origin: path.to_path_buf(),
        line: None,
        message,
    };
    let (_, metadata) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let fields = metadata.metadata().clone().unwrap_or_default();
    if fields.get("format").map(String::as_str) != Some(FORMAT) {
        return Err(bad(format!(
            "not a gputrain history file (written by {HISTORY_OUT}): its metadata has no \
             format '{FORMAT}'"
        )));
    }
    let file = safetensors::SafeTensors::deserialize(bytes)
        .map_err(|e| bad(format!("not a safetensors file ({e})")))?;
    let epochs: Vec<u64> = match file.tensor("epochs") {
        Ok(t) if t.dtype() == Dtype::I64 => t
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")) as u64)
            .collect(),
        _ => return Err(bad("has no int64 tensor 'epochs'".into())),
    };
    let series = |name: &str| -> Result<Option<Vec<f32>>, Error> {
        match file.tensor(name) {
            Ok(t) if t.dtype() == Dtype::F32 && t.shape().get(1) == Some(&epochs.len()) => {
                Ok(Some(
                    t.data()
                        .chunks_exact(4)
                        .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
                        .collect(),
                ))
            }
            Ok(_) => Err(bad(format!(
                "tensor '{name}' is not float32 [networks, {}]",
                epochs.len()
            ))),
            Err(_) => Ok(None),
        }
    };
    let loss = series("loss")?.ok_or_else(|| bad("has no tensor 'loss'".into()))?;
    let eval = series("eval_loss")?;
    let networks = (loss.len() / epochs.len().max(1)) as u64;
    let target_loss = fields.get("target_loss").and_then(|t| t.parse().ok());
    Ok(Losses {
        epochs,
        loss,
        eval,
        networks,
        target_loss,
    })
}

/// Reads a `--history-out` file into the whole population's quantiles
/// per recorded epoch, with the file's networks and target loss.
pub fn read_file(
    path: &Path,
    bytes: &[u8],
) -> Result<(Vec<HistoryPoint>, u64, Option<f64>), Error> {
    let losses = read_losses(path, bytes)?;
    let whole = 0..losses.networks as usize;
    let mut points = losses.points(std::slice::from_ref(&whole));
    // The pooled curve's share is the quantile CSV's, which counts exact
    // target epochs: the file does not hold them, so it has none.
    for p in &mut points {
        p.reached_target = None;
    }
    Ok((points, losses.networks, losses.target_loss))
}

/// Parses a quantile CSV written by [`csv_text`]; `path` names it in
/// errors, with the line.
pub fn parse_csv(path: &Path, text: &str) -> Result<Vec<HistoryPoint>, Error> {
    let bad = |line: usize, message: String| Error::Data {
        origin: path.to_path_buf(),
        line: Some(line),
        message,
    };
    let mut lines = text.lines();
    let header = lines.next().unwrap_or_default().trim();
    let eval = match header {
        h if h == csv_header(false) => false,
        h if h == csv_header(true) => true,
        _ => {
            return Err(bad(
                1,
                format!(
                    "not a gputrain history: expected a {HISTORY_CSV} file (header '{}') or a \
                     {HISTORY_OUT} safetensors file",
                    csv_header(false)
                ),
            ));
        }
    };
    let columns = if eval { 14 } else { 9 };
    let mut points = Vec::new();
    for (i, line) in lines.enumerate() {
        let at = i + 2;
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.len() != columns {
            return Err(bad(
                at,
                format!("{} cells, expected {columns}", cells.len()),
            ));
        }
        let number = |k: usize| -> Result<Option<f64>, Error> {
            match cells[k] {
                "" => Ok(None),
                c => c
                    .parse::<f64>()
                    .map(Some)
                    .map_err(|_| bad(at, format!("cell {} ('{c}') is not a number", k + 1))),
            }
        };
        let count = |k: usize| -> Result<u64, Error> {
            cells[k].parse::<u64>().map_err(|_| {
                bad(
                    at,
                    format!("cell {} ('{}') is not a count", k + 1, cells[k]),
                )
            })
        };
        let five = |from: usize| -> Result<Option<Quantiles>, Error> {
            let v: Vec<Option<f64>> = (from..from + 5).map(number).collect::<Result<_, _>>()?;
            Ok(match v[..] {
                [Some(min), Some(p10), Some(median), Some(p90), Some(max)] => Some(Quantiles {
                    min,
                    p10,
                    median,
                    p90,
                    max,
                }),
                _ => None,
            })
        };
        points.push(HistoryPoint {
            epoch: count(0)?,
            loss: five(1)?,
            reached_target: number(6)?,
            networks: count(7)?,
            diverged: count(8)?,
            eval_loss: if eval { five(9)? } else { None },
        });
    }
    if points.is_empty() {
        return Err(bad(1, "holds no recorded epoch".into()));
    }
    Ok(points)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::training::NetworkMetrics;

    fn outcome(final_loss: f64, epochs_completed: u64, target: Option<u32>) -> NetworkOutcome {
        NetworkOutcome {
            final_loss,
            target_epoch: target,
            diverged: !final_loss.is_finite(),
            epochs_completed,
        }
    }

    #[test]
    fn a_files_curves_take_the_networks_asked_for_and_count_the_target_once_reached() {
        // Three networks x three recorded epochs (0, 10, 20); network 1
        // dips under the target at epoch 10 and rises again, network 2
        // diverges at 20.
        let losses = Losses {
            epochs: vec![0, 10, 20],
            loss: vec![
                0.5,
                0.3,
                0.2, //
                0.5,
                0.05,
                0.2, //
                0.5,
                0.4,
                f32::NAN,
            ],
            eval: None,
            networks: 3,
            target_loss: Some(0.1),
        };
        let all = losses.points(std::slice::from_ref(&(0..3)));
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].loss.as_ref().unwrap().median, 0.5);
        // Reached by epoch 10 stays reached at 20, though the loss rose.
        let shares: Vec<f64> = all.iter().map(|p| p.reached_target.unwrap()).collect();
        assert_eq!(shares, [0.0, 1.0 / 3.0, 1.0 / 3.0]);
        assert_eq!(all[2].diverged, 1);
        assert_eq!(all[2].networks, 3);
        // Networks 0 and 2 only, as two ranges.
        let some = losses.points(&[0..1, 2..3]);
        assert_eq!(some[1].loss.as_ref().unwrap().max, f64::from(0.4f32));
        assert_eq!(some[1].loss.as_ref().unwrap().min, f64::from(0.3f32));
        assert_eq!(some[2].reached_target, Some(0.0));
        assert_eq!(some[2].networks, 2);
    }

    #[test]
    fn points_are_every_k_epochs_then_the_last() {
        let plan = |every, epochs| HistoryPlan {
            every,
            epochs,
            eval: false,
        };
        assert_eq!(plan(100, 300).epochs_recorded(), [0, 100, 200, 300]);
        assert_eq!(plan(100, 250).epochs_recorded(), [0, 100, 200, 250]);
        assert_eq!(plan(1, 2).epochs_recorded(), [0, 1, 2]);
        assert_eq!(plan(7, 0).epochs_recorded(), [0]);
        assert_eq!(plan(100, 250).slot(200), Some(2));
        assert_eq!(plan(100, 250).slot(150), None);
        assert_eq!(plan(100, 300).slot(300), None, "the last is the final loss");
    }

    #[test]
    fn unrecorded_points_are_the_final_loss_up_to_the_epochs_done() {
        let plan = HistoryPlan {
            every: 10,
            epochs: 40,
            eval: true,
        };
        let mut block = HistoryBlock::new(&plan, 3);
        // Network 0 trained throughout; 1 stopped after recording two
        // points; 2 was interrupted at epoch 20 after recording two.
        for n in 0..3 {
            let recorded = [4, 2, 2][n];
            for q in 0..recorded {
                block.train[n * 5 + q] = 1.0 - q as f64 / 10.0;
                block.eval[n * 5 + q] = 2.0 - q as f64 / 10.0;
            }
            block.recorded[n] = recorded as u32;
        }
        let outcomes = [
            outcome(0.5, 40, None),
            outcome(0.25, 40, Some(11)),
            outcome(0.75, 20, None),
        ];
        let metrics = [0.4, 0.3, 0.2].map(|l| NetworkMetrics {
            eval_loss: Some(l),
            ..Default::default()
        });
        block.complete(&plan, &outcomes, &metrics);
        assert_eq!(block.train_row(0), [1.0, 0.9, 0.8, 0.7, 0.5]);
        assert_eq!(block.train_row(1), [1.0, 0.9, 0.25, 0.25, 0.25]);
        assert_eq!(block.eval_row(1), [2.0, 1.9, 0.3, 0.3, 0.3]);
        let row = block.train_row(2);
        assert_eq!(row[..3], [1.0, 0.9, 0.75]);
        assert!(row[3].is_nan() && row[4].is_nan(), "{row:?}");

        let mut tally = HistoryTally::new(&plan, 3, true);
        tally.record(&block, &outcomes);
        let points = tally.points();
        assert_eq!(points[2].networks, 3);
        assert_eq!(points[3].networks, 2, "network 2 stopped at epoch 20");
        assert_eq!(points[1].reached_target, Some(0.0));
        assert_eq!(points[2].reached_target, Some(1.0 / 3.0));
        let loss = points[4].loss.as_ref().unwrap();
        assert_eq!((loss.min, loss.max), (0.25, 0.5));
        let text = csv_text(&points, true);
        assert!(
            text.starts_with(
                "epoch,min,p10,median,p90,max,reached_target,networks,diverged,eval_min"
            )
        );
        assert_eq!(text.lines().count(), 6);
    }
}
