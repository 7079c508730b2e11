//! `gputrain merge --out DIR SHARD_DIR...`: joins the directories of a
//! sharded run into the files one unsharded run writes, byte for byte
//! (the summary's timing aside). Everything is checked before anything is
//! written: every shard of one configuration (the fingerprint in each
//! run.json), none missing, none twice. The per-network files are copied
//! and streamed, so memory holds the summaries' few bytes per network
//! and a 4 MiB copy buffer, not the networks.

use std::io::{BufRead, BufReader, Write};

use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::groups;
use crate::history::{HistoryBlock, HistoryPlan, HistoryWriter};
use crate::output::{TemporaryFile, TensorFile, Written};
use crate::report::{Summary, apply_tally};
use crate::sweep::outputs::{
    self, HISTORY_FILE, OutputPaths, RESULTS_FILE, RUN_FILE, RUN_FORMAT, RunRecord, SUMMARY_FILE,
};
use crate::sweep::shard::Shard;
use crate::sweep::tallies::Tallies;
use crate::training::NetworkMetrics;
use crate::training::NetworkOutcome;

/// A shard directory, read and checked.
pub struct ShardDir {
    dir: PathBuf,
    record: RunRecord,
    summary: Summary,
}

fn bad(path: &Path, message: impl Into<String>) -> Error {
    Error::Merge {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

fn read_json<T: serde::de::DeserializeOwned>(dir: &Path, name: &str) -> Result<T, Error> {
    let path = dir.join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound if !dir.is_dir() => "is not a directory".to_string(),
            std::io::ErrorKind::NotFound => format!(
                "is not a shard directory: it has no {name} (a run with {} {} writes one)",
                crate::setting::settings::SHARD.is("I/K"),
                crate::setting::settings::OUT.is("DIR")
            ),
            _ => format!("cannot read {name}: {e}"),
        };
        bad(dir, why)
    })?;
    serde_json::from_str(&text).map_err(|e| bad(&path, format!("is not gputrain's {name}: {e}")))
}

impl ShardDir {
    fn open(dir: &Path) -> Result<Self, Error> {
        let record: RunRecord = read_json(dir, RUN_FILE)?;
        if record.format != RUN_FORMAT {
            return Err(bad(
                &dir.join(RUN_FILE),
                format!("has format '{}', not {RUN_FORMAT}", record.format),
            ));
        }
        record
            .check()
            .map_err(|why| bad(&dir.join(RUN_FILE), format!("{why} (edited or damaged?)")))?;
        let summary = read_json(dir, SUMMARY_FILE)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            record,
            summary,
        })
    }
}

/// Reads and checks the shard directories: one configuration, every
/// shard once, ids as the shard count splits them. Gives them in shard
/// order.
fn open_shards(dirs: &[PathBuf]) -> Result<Vec<ShardDir>, Error> {
    if dirs.is_empty() {
        return Err(Error::Config(
            "merge needs the shard directories to join".into(),
        ));
    }
    let mut shards = open_parts(dirs)?;
    let first = &shards[0];
    let (fingerprint, count, networks) = (
        first.record.fingerprint.clone(),
        first.record.shard[1],
        first.record.networks,
    );
    for s in &shards {
        let r = &s.record;
        if r.fingerprint != fingerprint || r.version != first.record.version {
            return Err(bad(
                &s.dir,
                format!(
                    "has configuration fingerprint {} (gputrain {}), but {} has {fingerprint} \
                     (gputrain {}): shards of different runs cannot be merged",
                    r.fingerprint,
                    r.version,
                    first.dir.display(),
                    first.record.version
                ),
            ));
        }
        if r.shard[1] != count {
            return Err(bad(
                &s.dir,
                format!(
                    "is shard {}/{}, but {} is of {count} shards",
                    r.shard[0],
                    r.shard[1],
                    first.dir.display()
                ),
            ));
        }
        let expected = Shard {
            index: r.shard[0],
            count,
        }
        .range(networks);
        if r.ids != [expected.start, expected.end] {
            return Err(bad(
                &s.dir.join(RUN_FILE),
                format!(
                    "says shard {}/{count} holds ids {}..{}, not {}..{}",
                    r.shard[0], r.ids[0], r.ids[1], expected.start, expected.end
                ),
            ));
        }
        if r.history != first.record.history || r.weights != first.record.weights {
            return Err(bad(
                &s.dir,
                "holds different outputs (weights, history) from the other shards",
            ));
        }
    }
    shards.sort_by_key(|s| s.record.shard[0]);
    for pair in shards.windows(2) {
        if pair[0].record.shard[0] == pair[1].record.shard[0] {
            return Err(bad(
                &pair[1].dir,
                format!(
                    "is shard {}/{count} again (so is {})",
                    pair[1].record.shard[0],
                    pair[0].dir.display()
                ),
            ));
        }
    }
    let present: Vec<usize> = shards.iter().map(|s| s.record.shard[0]).collect();
    let missing: Vec<String> = (0..count)
        .filter(|i| !present.contains(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Config(format!(
            "merge: shard{} {} of this run {} missing (given: {})",
            if missing.len() > 1 { "s" } else { "" },
            missing.join(", "),
            if missing.len() > 1 { "are" } else { "is" },
            present
                .iter()
                .map(|i| format!("{i}/{count}"))
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    Ok(shards)
}

/// One row of a results CSV, parsed.
struct Row {
    id: usize,
    learning_rate: f64,
    outcome: NetworkOutcome,
    metrics: NetworkMetrics,
}

/// The columns of a results CSV that merge reads.
struct Columns {
    network: usize,
    learning_rate: usize,
    final_loss: usize,
    target_epoch: usize,
    diverged: usize,
    epochs_completed: usize,
    train_accuracy: usize,
    eval_loss: usize,
    eval_accuracy: usize,
    /// Absent from results files written before these columns existed.
    train_loss_per_sample: Option<usize>,
    eval_loss_per_sample: Option<usize>,
    /// Absent from results files written before early stopping.
    best_epoch: Option<usize>,
    stopped_epoch: Option<usize>,
    /// Absent from results files written before resamples.
    oob_loss: Option<usize>,
    oob_accuracy: Option<usize>,
}

impl Columns {
    fn of(path: &Path, header: &str) -> Result<Self, Error> {
        let names: Vec<&str> = header.trim_end().split(',').collect();
        let at = |name: &str| {
            names
                .iter()
                .position(|n| *n == name)
                .ok_or_else(|| Error::Data {
                    origin: path.to_path_buf(),
                    line: Some(1),
                    message: format!("not a gputrain results CSV: no column {name}"),
                })
        };
        Ok(Self {
            network: at("network")?,
            learning_rate: at("learning_rate")?,
            final_loss: at("final_loss")?,
            target_epoch: at("target_epoch")?,
            diverged: at("diverged")?,
            epochs_completed: at("epochs_completed")?,
            train_accuracy: at("train_accuracy")?,
            eval_loss: at("eval_loss")?,
            eval_accuracy: at("eval_accuracy")?,
            train_loss_per_sample: at("train_loss_per_sample").ok(),
            eval_loss_per_sample: at("eval_loss_per_sample").ok(),
            best_epoch: at("best_epoch").ok(),
            stopped_epoch: at("stopped_epoch").ok(),
            oob_loss: at("oob_loss").ok(),
            oob_accuracy: at("oob_accuracy").ok(),
        })
    }

    fn parse(&self, path: &Path, line: usize, text: &str) -> Result<Row, Error> {
        // The cells, without a vector per row (the first 64 columns).
        let mut cells = [""; 64];
        for (cell, value) in cells.iter_mut().zip(text.split(',')) {
            *cell = value;
        }
        let count = text.split(',').count().min(64);
        let cells = &cells[..count];
        let error = |message: String| Error::Data {
            origin: path.to_path_buf(),
            line: Some(line),
            message,
        };
        let cell = |i: usize, name: &str| {
            cells
                .get(i)
                .copied()
                .ok_or_else(|| error(format!("the row has no {name} cell")))
        };
        let number = |i: usize, name: &str| -> Result<f64, Error> {
            cell(i, name)?
                .parse::<f64>()
                .map_err(|_| error(format!("{name} '{}' is not a number", cells[i])))
        };
        let optional = |i: usize, name: &str| -> Result<Option<f64>, Error> {
            match cell(i, name)? {
                "" => Ok(None),
                _ => number(i, name).map(Some),
            }
        };
        let whole = |i: usize, name: &str| -> Result<u64, Error> {
            cell(i, name)?
                .parse::<u64>()
                .map_err(|_| error(format!("{name} '{}' is not a whole number", cells[i])))
        };
        let epoch = |column: Option<usize>, name: &str| -> Result<Option<u64>, Error> {
            match column {
                Some(i) if !cell(i, name)?.is_empty() => whole(i, name).map(Some),
                _ => Ok(None),
            }
        };
        let target = match cell(self.target_epoch, "target_epoch")? {
            "" => None,
            _ => Some(whole(self.target_epoch, "target_epoch")? as u32),
        };
        Ok(Row {
            id: whole(self.network, "network")? as usize,
            learning_rate: number(self.learning_rate, "learning_rate")?,
            outcome: NetworkOutcome {
                // Empty: a network a stop came before.
                final_loss: optional(self.final_loss, "final_loss")?.unwrap_or(f64::NAN),
                target_epoch: target,
                diverged: whole(self.diverged, "diverged")? == 1,
                epochs_completed: whole(self.epochs_completed, "epochs_completed")?,
            },
            metrics: NetworkMetrics {
                train_accuracy: optional(self.train_accuracy, "train_accuracy")?,
                eval_loss: optional(self.eval_loss, "eval_loss")?,
                eval_accuracy: optional(self.eval_accuracy, "eval_accuracy")?,
                train_loss_per_sample: match self.train_loss_per_sample {
                    Some(i) => optional(i, "train_loss_per_sample")?,
                    None => None,
                },
                eval_loss_per_sample: match self.eval_loss_per_sample {
                    Some(i) => optional(i, "eval_loss_per_sample")?,
                    None => None,
                },
                best_epoch: epoch(self.best_epoch, "best_epoch")?,
                stopped_epoch: epoch(self.stopped_epoch, "stopped_epoch")?,
                oob_loss: match self.oob_loss {
                    Some(i) => optional(i, "oob_loss")?,
                    None => None,
                },
                oob_accuracy: match self.oob_accuracy {
                    Some(i) => optional(i, "oob_accuracy")?,
                    None => None,
                },
            },
        })
    }
}

/// Networks read, checked and tallied at a time.
const CHUNK: usize = 1 << 16;

/// The history plan a shard's history file records.
fn history_plan(
    file: &TensorFile,
    path: &Path,
) -> Result<(HistoryPlan, Option<f64>, Option<String>), Error> {
    let number = |key: &str| {
        file.metadata(key)
            .and_then(|v| v.parse::<u64>().ok())
            .ok_or_else(|| bad(path, format!("has no '{key}' in its metadata")))
    };
    let plan = HistoryPlan {
        every: number("every")?,
        epochs: number("epochs")?,
        eval: file.tensor_info("eval_loss").is_ok(),
    };
    let target = file
        .metadata("target_loss")
        .and_then(|t| t.parse::<f64>().ok());
    Ok((plan, target, file.metadata("fingerprint").map(String::from)))
}

/// The labels of grid point `point` on `summary`'s axes (row-major, the
/// last axis fastest).
fn point_labels(summary: &Summary, point: usize) -> Vec<String> {
    let mut rest = point;
    let mut labels = vec![String::new(); summary.grid.len()];
    for (k, axis) in summary.grid.iter().enumerate().rev() {
        let n = axis.values.len().max(1);
        labels[k] = axis.values.get(rest % n).cloned().unwrap_or_default();
        rest /= n;
    }
    labels
}

/// Joins `dirs` into `out` (created if need be): results.csv,
/// weights, history, groups.csv, summary.json and run.json, each as
/// one unsharded run writes it. Returns the merged summary.
pub fn merge(dirs: &[PathBuf], out: &Path) -> Result<Summary, Error> {
    let shards = open_shards(dirs)?;
    let record = shards[0].record.clone();
    let created = !out.exists();
    std::fs::create_dir_all(out).map_err(|e| Error::Io {
        path: out.to_path_buf(),
        source: e,
    })?;
    let joined = join_into(&shards, out, &record);
    if joined.is_err() && created {
        // Nothing was written into it: leave no trace.
        let _ = std::fs::remove_dir(out);
    }
    joined
}

/// [`merge`]'s work once `out` exists.
fn join_into(shards: &[ShardDir], out: &Path, record: &RunRecord) -> Result<Summary, Error> {
    let paths = OutputPaths::directory(out, record.history);
    let paths = OutputPaths {
        weights: paths.weights.clone().filter(|_| record.weights),
        ..paths
    };
    paths.check()?;
    let whole = RunRecord {
        shard: [0, 1],
        ids: [0, record.networks],
        ..record.clone()
    };
    let (summary, mut files) = join(shards, &paths, &whole)?;
    files.extend(outputs::summary_files(&paths, &summary, &whole)?);
    for file in files {
        file.persist()?;
    }
    Ok(summary)
}

/// Opens the directories a run split over several devices wrote
/// (`--adapter all`), in id order.
pub fn open_parts(dirs: &[PathBuf]) -> Result<Vec<ShardDir>, Error> {
    let mut parts = dirs
        .iter()
        .map(|d| ShardDir::open(d))
        .collect::<Result<Vec<_>, _>>()?;
    parts.sort_by_key(|p| p.record.ids[0]);
    Ok(parts)
}

/// Joins `shards` (in id order, covering `whole.ids` back to back) into
/// `paths`: the summary, and the per-network files complete but not yet
/// in place (the summary's own files, [`outputs::summary_files`], are the
/// caller's, which may amend the summary first).
pub fn join(
    shards: &[ShardDir],
    paths: &OutputPaths,
    whole: &RunRecord,
) -> Result<(Summary, Vec<TemporaryFile>), Error> {
    let first = &shards[0];
    let record = whole;
    let networks = whole.ids[1] - whole.ids[0];
    let mut files: Vec<TemporaryFile> = Vec::new();
    // Weights: one file per model, its parts in shard order.
    let models = record.models.len();
    for (k, model) in record.models.iter().enumerate() {
        let Some(out) = paths.weights_file(k, models) else {
            break;
        };
        // Each part with the networks its shard's run.json says it holds.
        let parts: Vec<(PathBuf, usize)> = shards
            .iter()
            .filter(|s| s.record.ids[0].max(model.ids[0]) < s.record.ids[1].min(model.ids[1]))
            .map(|s| {
                let held = s.record.ids[1].min(model.ids[1]) - s.record.ids[0].max(model.ids[0]);
                (s.dir.join(&model.file), held)
            })
            .collect();
        if !parts.is_empty() {
            files.push(crate::weights::merge_files(&out, &parts)?);
        }
    }
    let with_target = first.summary.target_loss.is_some();
    let mut history = None;
    if first.record.history {
        let path = first.dir.join(HISTORY_FILE);
        let (plan, target, fingerprint) = history_plan(&TensorFile::open(&path)?, &path)?;
        let writer = match &paths.history_out {
            Some(out) => Some(HistoryWriter::create(
                Some(out),
                &plan,
                networks,
                target,
                fingerprint.as_deref(),
            )?),
            None => None,
        };
        history = Some((plan, writer));
    }
    let plan = history.as_ref().map(|(plan, _)| *plan);
    let mut tallies = Tallies::new(
        networks,
        record.points,
        record.replicates,
        with_target,
        Vec::new(),
        plan.as_ref(),
    );
    let mut results = match &paths.results {
        Some(path) => Some(TemporaryFile::create(path)?),
        None => None,
    };
    let mut header: Option<String> = None;
    let mut seconds = 0.0;
    let mut notes = first.summary.notes.clone();
    for shard in shards {
        join_shard(
            shard,
            whole,
            &mut header,
            &mut results,
            &mut history,
            &mut tallies,
        )?;
        if let Some(best) = &shard.summary.best {
            tallies.run.offer_best(best.clone());
        }
        seconds += shard.summary.wall_seconds;
        let (a, b) = (&first.summary, &shard.summary);
        if (&a.backend, &a.strategy, &a.adapter) != (&b.backend, &b.strategy, &b.adapter) {
            let note = format!(
                "shards ran on different backends: {} ({}) and {} ({})",
                a.adapter.as_deref().unwrap_or(&a.backend),
                a.strategy,
                b.adapter.as_deref().unwrap_or(&b.backend),
                b.strategy
            );
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }
    files.extend(results);
    let mut summary = first.summary.clone();
    summary.notes = notes;
    let labels = |point: usize| point_labels(&summary, point);
    let (tally, curves, stats) = tallies.finish(&labels);
    apply_tally(&mut summary, tally, seconds);
    summary.history = curves;
    summary.best_point = match summary.grid.as_slice() {
        [axis] => groups::best_point(&axis.flag, &stats),
        _ => None,
    };
    summary.groups = stats;
    if let Some((_, Some(writer))) = history
        && let Written::File(file) = writer.written()
    {
        files.push(file);
    }
    Ok((summary, files))
}

/// One shard's results rows into `results` (its header checked against
/// the others', `header`) and its curves into the history file, each
/// network into `tallies`, in id order; the rows' ids and count checked
/// against its run.json.
fn join_shard(
    shard: &ShardDir,
    whole: &RunRecord,
    header: &mut Option<String>,
    results: &mut Option<TemporaryFile>,
    history: &mut Option<(HistoryPlan, Option<HistoryWriter>)>,
    tallies: &mut Tallies,
) -> Result<(), Error> {
    let path = shard.dir.join(RESULTS_FILE);
    let file = std::fs::File::open(&path).map_err(|e| Error::Io {
        path: path.clone(),
        source: e,
    })?;
    let mut reader = BufReader::with_capacity(1 << 20, file);
    let mut buffer = String::new();
    // The next line into `buffer`, without its line end; false at the end.
    let mut next_line = |buffer: &mut String| -> Result<bool, Error> {
        buffer.clear();
        let read = reader.read_line(buffer).map_err(|e| Error::Io {
            path: path.clone(),
            source: e,
        })?;
        while buffer.ends_with(['\n', '\r']) {
            buffer.pop();
        }
        Ok(read > 0)
    };
    if !next_line(&mut buffer)? {
        return Err(bad(&path, "is empty: no header"));
    }
    let head = buffer.clone();
    match header {
        None => {
            if let Some(results) = results.as_mut() {
                writeln!(results.handle(), "{head}").map_err(|e| results.error(e))?;
            }
            *header = Some(head.clone());
        }
        Some(h) if *h != head => {
            return Err(bad(
                &path,
                "has other columns than the first shard's results",
            ));
        }
        Some(_) => {}
    }
    let columns = Columns::of(&path, &head)?;
    let curves = match history {
        Some(_) => {
            let p = shard.dir.join(HISTORY_FILE);
            Some(TensorFile::open(&p)?)
        }
        None => None,
    };
    if let Some(curves) = &curves {
        let rows = curves.rows("loss")?;
        if rows != shard.record.ids[1] - shard.record.ids[0] {
            return Err(bad(
                &shard.dir.join(HISTORY_FILE),
                "holds other networks than run.json says",
            ));
        }
        if let Some((_, Some(writer))) = history.as_mut() {
            writer.copy_from(shard.record.ids[0] - whole.ids[0], curves)?;
        }
    }
    let mut next = shard.record.ids[0];
    let mut line = 1;
    let mut chunk: Vec<Row> = Vec::with_capacity(CHUNK);
    loop {
        let more = next_line(&mut buffer)?;
        let text = more.then_some(buffer.as_str());
        if let Some(text) = text {
            line += 1;
            let row = columns.parse(&path, line, text)?;
            if row.id != next || next >= shard.record.ids[1] {
                return Err(Error::Data {
                    origin: path.clone(),
                    line: Some(line),
                    message: format!(
                        "network {} where network {next} was expected (this shard holds \
                         {}..{})",
                        row.id, shard.record.ids[0], shard.record.ids[1]
                    ),
                });
            }
            next += 1;
            if let Some(results) = results.as_mut() {
                let out = results.handle();
                let written = out
                    .write_all(text.as_bytes())
                    .and_then(|_| out.write_all(b"\n"));
                written.map_err(|e| results.error(e))?;
            }
            chunk.push(row);
        }
        if chunk.len() == CHUNK || (text.is_none() && !chunk.is_empty()) {
            let first_in_chunk = chunk[0].id - shard.record.ids[0];
            let outcomes: Vec<NetworkOutcome> = chunk.iter().map(|r| r.outcome).collect();
            for r in &chunk {
                tallies.record_network(r.id, r.learning_rate, &r.outcome, &r.metrics);
            }
            if let (Some((plan, _)), Some(curves)) = (&*history, &curves) {
                let points = plan.points();
                let rows = curves.rows("loss")?;
                let read = |name: &str| -> Result<Vec<f64>, Error> {
                    let values =
                        curves.read_f32_rows(name, rows, points, first_in_chunk, chunk.len())?;
                    Ok(values.into_iter().map(f64::from).collect())
                };
                let block = HistoryBlock {
                    points,
                    train: read("loss")?,
                    eval: if plan.eval {
                        read("eval_loss")?
                    } else {
                        Vec::new()
                    },
                    recorded: vec![0; chunk.len()],
                };
                tallies.record_history(&block, &outcomes);
            }
            chunk.clear();
        }
        if text.is_none() {
            break;
        }
    }
    if next != shard.record.ids[1] {
        return Err(bad(
            &path,
            format!(
                "ends at network {next}, but this shard holds {}..{}",
                shard.record.ids[0], shard.record.ids[1]
            ),
        ));
    }
    Ok(())
}
