//! A run's files, for the whole sweep or a shard's range of ids: the
//! results CSV (a row per network, keyed by global id), the weights (a
//! file per model), the learning curves, the groups CSV, the summary and
//! `run.json`. Everything is written under temporary names and handed to
//! the caller complete, to be renamed into place together.

use std::io::Write;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::Engine;
use crate::error::Error;
use crate::groups;
use crate::history::HistoryWriter;
use crate::init::Init;
use crate::output::{GridCells, ResultsWriter, Sink, TemporaryFile, Written, check_writable};
use crate::report::{self, GridAxis, Summary, VerifyPlan};
use crate::run::{self, BackendInfo, RunConfig, Starting, TrainedBlock};
use crate::setting::{Setting, render};
use crate::sweep::Sweep;
use crate::sweep::shard::Shard;
use crate::sweep::tallies::{Tallies, point_runs};
use crate::table::{ResultsTable, TableWriter};
use crate::training::{Progress, StopFlag};
use crate::weights::{BlockValues, WeightsMetadata, WeightsWriter};

/// Where a run's outputs go; `None` where one is not asked for.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct OutputPaths {
    pub results: Option<PathBuf>,
    /// The weights file, or with several models the name their files
    /// derive from ([`OutputPaths::weights_file`]).
    pub weights: Option<PathBuf>,
    pub groups: Option<PathBuf>,
    pub history_out: Option<PathBuf>,
    pub history_csv: Option<PathBuf>,
    /// The summary as JSON (`--out`'s summary.json).
    pub summary: Option<PathBuf>,
    /// `--out`'s run.json: what `merge` needs to know of a shard.
    pub run: Option<PathBuf>,
    /// The snapshots' own file (`--snapshots-out`; one model only),
    /// instead of the weights file.
    pub snapshots: Option<PathBuf>,
}

/// File names inside an `--out` directory.
pub const RESULTS_FILE: &str = "results.csv";
pub const GROUPS_FILE: &str = "groups.csv";
pub const SUMMARY_FILE: &str = "summary.json";
pub const RUN_FILE: &str = "run.json";
pub const WEIGHTS_FILE: &str = "weights.safetensors";
pub const HISTORY_FILE: &str = "history.safetensors";
pub const HISTORY_CSV_FILE: &str = "history.csv";

impl OutputPaths {
    /// Every output of a run in directory `dir`; the curves with `history`.
    pub fn directory(dir: &Path, history: bool) -> Self {
        Self {
            results: Some(dir.join(RESULTS_FILE)),
            weights: Some(dir.join(WEIGHTS_FILE)),
            groups: Some(dir.join(GROUPS_FILE)),
            history_out: history.then(|| dir.join(HISTORY_FILE)),
            history_csv: history.then(|| dir.join(HISTORY_CSV_FILE)),
            summary: Some(dir.join(SUMMARY_FILE)),
            run: Some(dir.join(RUN_FILE)),
            snapshots: None,
        }
    }

    /// Model `k`'s weights file of `models`: the weights path itself for
    /// one model, else `NAME-k.EXT` beside it.
    pub fn weights_file(&self, k: usize, models: usize) -> Option<PathBuf> {
        let path = self.weights.as_ref()?;
        if models <= 1 {
            return Some(path.clone());
        }
        let stem = path
            .file_stem()
            .map_or(String::new(), |s| s.to_string_lossy().into_owned());
        let name = match path.extension() {
            Some(ext) => format!("{stem}-{k}.{}", ext.to_string_lossy()),
            None => format!("{stem}-{k}"),
        };
        Some(path.with_file_name(name))
    }

    /// Checks, before any work, that every output can be created.
    /// Every file these paths write for a run of `models` models, each
    /// with the flag that names it: the one list the checks before a run
    /// and `--overwrite`'s clean-up read.
    pub fn files(&self, models: usize) -> Vec<(Setting, PathBuf)> {
        use crate::setting::settings::{
            GROUPS, HISTORY_CSV, HISTORY_OUT, OUT, RESULTS, SNAPSHOTS_OUT, WEIGHTS,
        };
        let models = models.max(1);
        let mut files = Vec::new();
        let mut add = |setting: Setting, path: Option<PathBuf>| {
            if let Some(path) = path {
                files.push((setting, path));
            }
        };
        add(RESULTS, self.results.clone());
        for k in 0..models {
            add(WEIGHTS, self.weights_file(k, models));
        }
        add(GROUPS, self.groups.clone());
        add(HISTORY_OUT, self.history_out.clone());
        add(HISTORY_CSV, self.history_csv.clone());
        add(OUT, self.summary.clone());
        add(OUT, self.run.clone());
        add(SNAPSHOTS_OUT, self.snapshots.clone());
        files
    }

    pub fn check(&self) -> Result<(), Error> {
        let all = [
            &self.results,
            &self.weights,
            &self.groups,
            &self.history_out,
            &self.history_csv,
            &self.summary,
            &self.run,
            &self.snapshots,
        ];
        for path in all.into_iter().flatten() {
            check_writable(path)?;
        }
        Ok(())
    }
}

/// A model's weights file in a run's `run.json`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelFile {
    pub file: String,
    /// The ids of the model's networks in the whole sweep.
    pub ids: [usize; 2],
}

/// `run.json`: the sweep and the shard a directory holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub format: String,
    pub version: String,
    pub fingerprint: String,
    pub shard: [usize; 2],
    /// The ids this directory holds, `[first, end)`.
    pub ids: [usize; 2],
    pub networks: usize,
    pub points: usize,
    pub replicates: usize,
    pub grid: Vec<GridAxis>,
    pub models: Vec<ModelFile>,
    pub history: bool,
    pub weights: bool,
    /// The run's `--seed`.
    #[serde(default)]
    pub seed: u64,
    /// The command that asked for the run, without where it wrote or
    /// which shard it was ([`crate::plan::TrainPlan::command`]): what
    /// `gputrain rerun` runs again (empty in files from before it).
    #[serde(default)]
    pub command: Vec<String>,
}

/// The `format` of run.json.
pub const RUN_FORMAT: &str = "gputrain-run-1";

impl RunRecord {
    /// What a run.json gputrain wrote always satisfies, whatever the run:
    /// the reason it does not (an edited or damaged file), so that merge
    /// refuses it instead of failing on the way.
    pub fn check(&self) -> Result<(), String> {
        let [index, count] = self.shard;
        if count == 0 || index >= count {
            return Err(format!("says shard {index}/{count}, which no run writes"));
        }
        if self.points == 0 || self.replicates == 0 {
            return Err(format!(
                "says {} grid points of {} replicates: both are at least 1",
                self.points, self.replicates
            ));
        }
        if self.points.checked_mul(self.replicates) != Some(self.networks) {
            return Err(format!(
                "says {} networks, but {} points x {} replicates",
                self.networks, self.points, self.replicates
            ));
        }
        let [first, end] = self.ids;
        if first > end || end > self.networks {
            return Err(format!(
                "says it holds ids {first}..{end} of {} networks",
                self.networks
            ));
        }
        for m in &self.models {
            let [a, b] = m.ids;
            if a > b || b > self.networks {
                return Err(format!(
                    "says its weights file {} holds ids {a}..{b} of {} networks",
                    m.file, self.networks
                ));
            }
        }
        if self.weights && self.models.is_empty() {
            return Err("says it has weights but names no weights file".to_string());
        }
        Ok(())
    }

    /// The record of `run`.
    pub fn of(run: &RangeRun) -> Self {
        let RangeRun {
            sweep,
            shard,
            range,
            paths,
            ..
        } = run;
        let models = sweep.models();
        Self {
            format: RUN_FORMAT.to_string(),
            version: env!("CARGO_PKG_VERSION").to_string(),
            fingerprint: sweep.fingerprint.clone(),
            shard: [shard.index, shard.count],
            ids: [range.start, range.end],
            networks: sweep.networks(),
            points: sweep.points.len(),
            replicates: sweep.replicates,
            grid: grid_axes(sweep),
            models: (0..models)
                .map(|k| {
                    let ids = sweep.model_ids(k);
                    let file = OutputPaths::directory(Path::new(""), false)
                        .weights_file(k, models)
                        .map_or(String::new(), |p| p.display().to_string());
                    ModelFile {
                        file,
                        ids: [ids.start, ids.end],
                    }
                })
                .collect(),
            history: paths.history_out.is_some(),
            weights: paths.weights.is_some(),
            seed: run.seed,
            command: run.command.to_vec(),
        }
    }
}

/// The sweep's axes as the summary lists them.
pub fn grid_axes(sweep: &Sweep) -> Vec<GridAxis> {
    sweep
        .axes
        .iter()
        .map(|a| GridAxis {
            flag: a.flag.to_string(),
            column: a.column.to_string(),
            values: a.labels.clone(),
        })
        .collect()
}

/// The distinct values of `f` over the points, in grid order, joined.
fn distinct(sweep: &Sweep, f: impl Fn(&crate::run::RunConfig) -> String) -> String {
    let mut seen: Vec<String> = Vec::new();
    for p in &sweep.points {
        let v = f(&p.config);
        if !seen.contains(&v) {
            seen.push(v);
        }
    }
    seen.join(" | ")
}

/// Completes a summary with what the whole sweep decides (the same for
/// every shard): the swept model fields as their values' list, the
/// fingerprint, the grid, the groups and a one-axis sweep's best point.
pub fn complete_summary(summary: &mut Summary, sweep: &Sweep, groups: Vec<groups::GroupStats>) {
    summary.topology = distinct(sweep, |c| c.spec.topology.to_string());
    summary.activation = distinct(sweep, |c| c.spec.activation.to_string());
    summary.optimizer = distinct(sweep, |c| c.spec.optimizer.describe());
    summary.batches = distinct(sweep, |c| report::batches_text(&c.spec, &c.data));
    summary.fingerprint = sweep.fingerprint.clone();
    summary.grid = grid_axes(sweep);
    summary.best_point = match sweep.axes.as_slice() {
        [axis] => groups::best_point(axis.flag, &groups),
        _ => None,
    };
    summary.groups = groups;
}

/// A run's finished outputs, not yet in place.
pub struct Finished {
    pub summary: Summary,
    /// `--verify` passed (or was not asked for).
    pub passed: bool,
    /// The files, complete, under temporary names.
    pub files: Vec<TemporaryFile>,
    /// What the run kept in memory.
    pub kept: Kept,
}

impl Finished {
    /// Renames every file into place; gives the summary and what was
    /// kept in memory.
    pub fn persist(self) -> Result<(Summary, Kept), Error> {
        for file in self.files {
            file.persist()?;
        }
        Ok((self.summary, self.kept))
    }
}

/// The summary as JSON, as `--json` prints it and summary.json holds it.
/// The summary as JSON, its notes naming settings in the current face's
/// words ([`crate::setting::with_face`]).
pub fn summary_json(summary: &Summary) -> String {
    let rendered = Summary {
        notes: summary.notes.iter().map(|n| render(n)).collect(),
        ..summary.clone()
    };
    serde_json::to_string_pretty(&rendered).expect("the summary is plain data") + "\n"
}

/// `text` as a complete temporary file for `path`.
pub fn text_file(path: &Path, text: &str) -> Result<TemporaryFile, Error> {
    let mut file = TemporaryFile::create(path)?;
    let written = file.handle().write_all(text.as_bytes());
    written.map_err(|e| file.error(e))?;
    Ok(file)
}

/// The weights file being written for one model.
struct ModelWriter {
    model: usize,
    /// The id of the file's first network.
    first: usize,
    fewest_epochs: Option<u64>,
    writer: WeightsWriter,
    /// The snapshots' own file, with `--snapshots-out`.
    snapshots: Option<WeightsWriter>,
}

/// Where a run's trained blocks go: the results CSV, the curves file and
/// each model's weights file as the paths ask, and the tallies behind the
/// summary. Blocks come in id order, each with global ids.
struct RunWriter<'a> {
    run: &'a RangeRun<'a>,
    results: Option<ResultsWriter>,
    table: Option<TableWriter>,
    curves: Option<HistoryWriter>,
    model: Option<ModelWriter>,
    tallies: Tallies,
    /// Finished files (one per model done so far).
    files: Vec<TemporaryFile>,
    /// Weights kept in memory (one per model done so far).
    weights: Vec<Vec<u8>>,
    /// The axes the results CSV names apart from `learning_rate`.
    labelled: Vec<usize>,
}

impl<'a> RunWriter<'a> {
    fn open(run: &'a RangeRun<'a>) -> Result<Self, Error> {
        let (sweep, paths) = (run.sweep, run.paths);
        let first = &sweep.points[0].config;
        let plan = first.history_plan();
        let columns: Vec<&str> = sweep.axes.iter().map(|a| a.column).collect();
        let results = match &paths.results {
            Some(path) => Some(ResultsWriter::create(path, &columns)?),
            None => None,
        };
        let table = run
            .keep
            .then(|| TableWriter::new(&columns, run.range.len()));
        let curves = match (&paths.history_out, &plan) {
            (None, Some(_)) if !run.keep => None,
            (path, Some(plan)) => Some(HistoryWriter::create(
                path.as_deref(),
                plan,
                run.range.len(),
                first.options.target_loss,
                paths.run.is_some().then_some(sweep.fingerprint.as_str()),
            )?),
            _ => None,
        };
        let verify = report::spread(run.range.len(), run.verify.map_or(0, |v| v.networks));
        let tallies = Tallies::new(
            run.range.len(),
            sweep.points.len(),
            sweep.replicates,
            first.options.target_loss.is_some(),
            verify,
            plan.as_ref(),
        );
        Ok(Self {
            run,
            results,
            table,
            curves,
            model: None,
            tallies,
            files: Vec::new(),
            weights: Vec::new(),
            labelled: (0..sweep.axes.len())
                .filter(|&a| sweep.axes[a].column != "learning_rate")
                .collect(),
        })
    }

    /// Opens model `k`'s weights file (where one is asked for) unless it
    /// is the one open, finishing the one before; `init` is how its
    /// networks start ([`WeightsMetadata::init`]).
    fn start_model(
        &mut self,
        k: usize,
        config: &RunConfig,
        info: &BackendInfo,
        init: Option<(Init, u64)>,
    ) -> Result<(), Error> {
        if self.model.as_ref().is_some_and(|m| m.model == k) {
            return Ok(());
        }
        if let Some(done) = self.model.take() {
            for written in finish_model(done, config.options.epochs)? {
                self.keep(written);
            }
        }
        let (run, sweep) = (self.run, self.run.sweep);
        let path = run.paths.weights_file(k, sweep.models());
        if path.is_none() && !run.keep {
            return Ok(());
        }
        let ids = sweep.model_ids(k);
        let (from, to) = (ids.start.max(run.range.start), ids.end.min(run.range.end));
        let meta = WeightsMetadata {
            epochs: config.options.epochs,
            planned_epochs: config.options.epochs,
            // A resumed file's own seed, which its never-started networks
            // start by.
            seed: init.map_or(run.seed, |(_, seed)| seed),
            interrupted: false,
            trained_on: info.trained_on(),
            target_loss: config.options.target_loss,
            stop_at_target: config.options.stop_at_target,
            precision: info.precision(),
            // Files of a run directory (--out) carry it; a plain --weights
            // file stays the bytes a resume reproduces.
            fingerprint: run.paths.run.is_some().then(|| sweep.fingerprint.clone()),
            init: init.map(|(init, _)| init),
            snapshots: config.snapshots.clone(),
            snapshots_only: false,
            resampled: config.spec.resample.map(|_| crate::weights::Resampled {
                replicates: config.population,
                training_rows: config.data.samples(),
            }),
        };
        // With --snapshots-out the snapshots go to a file of their own.
        let (meta, snapshots) = match &run.paths.snapshots {
            Some(own) => {
                let only = WeightsMetadata {
                    snapshots_only: true,
                    ..meta.clone()
                };
                let writer = WeightsWriter::create(own, &config.spec, to - from, &only)?;
                let rest = WeightsMetadata {
                    snapshots: Vec::new(),
                    ..meta
                };
                (rest, Some(writer))
            }
            None => (meta, None),
        };
        let sink = Sink::create(path.as_deref())?;
        let writer = WeightsWriter::into_sink(sink, &config.spec, to - from, &meta)?;
        self.model = Some(ModelWriter {
            model: k,
            first: from,
            fewest_epochs: None,
            writer,
            snapshots,
        });
        Ok(())
    }

    /// One trained block into every output and the tallies.
    fn block(&mut self, block: &TrainedBlock) -> Result<(), Error> {
        let sweep = self.run.sweep;
        let replicates = sweep.replicates.max(1);
        self.tallies.record_block(block);
        if self.results.is_some() || self.table.is_some() {
            for (point, at) in point_runs(block.first, block.len(), replicates) {
                let id = block.first + at.start;
                let labels: Vec<String> = self
                    .labelled
                    .iter()
                    .map(|&a| sweep.points[point].labels[a].clone())
                    .collect();
                let cells = (!sweep.axes.is_empty()).then_some(GridCells {
                    point,
                    first_replicate: id - point * replicates,
                    labels: &labels,
                });
                let (o, m) = (&block.outcomes[at.clone()], &block.metrics[at.clone()]);
                let rates = &block.learning_rates[at];
                if let Some(results) = &mut self.results {
                    results.write_block(id, cells, rates, o, m)?;
                }
                if let Some(table) = &mut self.table {
                    table.write_block(id, cells, rates, o, m);
                }
            }
        }
        if let (Some(history), Some(curves)) = (block.history, &mut self.curves) {
            curves.write_block(block.first - self.run.range.start, history)?;
        }
        if let Some(m) = &mut self.model {
            for o in block.outcomes {
                let done = o.epochs_completed;
                m.fewest_epochs = Some(m.fewest_epochs.map_or(done, |e| e.min(done)));
            }
            let values = BlockValues {
                params: block.params,
                state: block.state,
                learning_rates: block.learning_rates,
                outcomes: block.outcomes,
                never_started: block.never_started,
                snapshots: block.snapshots,
            };
            match &mut m.snapshots {
                Some(own) => {
                    own.write_block(block.first - m.first, values)?;
                    let without = BlockValues {
                        snapshots: &[],
                        ..values
                    };
                    m.writer.write_block(block.first - m.first, without)?;
                }
                None => m.writer.write_block(block.first - m.first, values)?,
            }
        }
        Ok(())
    }

    /// A finished output: a file to persist with the others, or bytes
    /// kept.
    fn keep(&mut self, written: Written) {
        match written {
            Written::File(file) => self.files.push(file),
            Written::Memory(bytes) => self.weights.push(bytes),
        }
    }

    /// The tallies, every file, complete, and what is kept in memory
    /// (`epochs`: the run's planned).
    fn finish(mut self, epochs: u64) -> Result<(Tallies, Vec<TemporaryFile>, Kept), Error> {
        if let Some(done) = self.model.take() {
            for written in finish_model(done, epochs)? {
                self.keep(written);
            }
        }
        self.files
            .extend(self.results.map(ResultsWriter::into_file));
        let mut kept = Kept {
            results: self.table.map(TableWriter::finish),
            weights: self.weights,
            history: None,
        };
        match self.curves.map(HistoryWriter::written) {
            Some(Written::File(file)) => self.files.push(file),
            Some(Written::Memory(bytes)) => kept.history = Some(bytes),
            None => {}
        }
        Ok((self.tallies, self.files, kept))
    }
}

/// Trains the networks `range` of `sweep` (all of it, or a shard's), a
/// part (a point's replicates) after another, on `engine`, writing
/// `paths`; `base` is the backend [`run::open_backend`] opened.
pub struct RangeRun<'a> {
    pub sweep: &'a Sweep,
    pub shard: Shard,
    pub range: Range<usize>,
    pub paths: &'a OutputPaths,
    /// Re-train and compare (a run of one point only).
    pub verify: Option<VerifyPlan>,
    /// `--seed`, which weights files record.
    pub seed: u64,
    /// The command that asked for the run ([`crate::plan::TrainPlan::command`]).
    pub command: &'a [String],
    /// Keep the outputs no path names in memory ([`Kept`]), with the
    /// results table always (the Python package).
    pub keep: bool,
}

/// The outputs a run keeps in memory ([`RangeRun::keep`]): what the
/// Python package's `Run` holds instead of files in a scratch directory.
#[derive(Debug, Default)]
pub struct Kept {
    /// The results CSV's columns.
    pub results: Option<ResultsTable>,
    /// Each model's weights file, as bytes, where no file is asked for.
    pub weights: Vec<Vec<u8>>,
    /// The learning curves' file, as bytes, where no file is asked for.
    pub history: Option<Vec<u8>>,
}

impl Kept {
    /// What a run that wrote `paths` keeps, read back from its files: the
    /// results table, and the weights and curves written inside `dir`
    /// (the temporary directory that stood in for the paths not given).
    pub fn read_back(paths: &OutputPaths, dir: &Path, models: usize) -> Result<Self, Error> {
        let inside = |path: &Option<PathBuf>| path.as_ref().filter(|p| p.starts_with(dir)).cloned();
        let read = |path: &Path| {
            std::fs::read(path).map_err(|e| Error::Io {
                path: path.to_path_buf(),
                source: e,
            })
        };
        let results = match &paths.results {
            Some(path) => Some(ResultsTable::read_csv(path)?),
            None => None,
        };
        let weights = (0..models.max(1))
            .filter_map(|k| inside(&paths.weights_file(k, models)))
            .map(|path| read(&path))
            .collect::<Result<_, _>>()?;
        let history = match inside(&paths.history_out) {
            Some(path) => Some(read(&path)?),
            None => None,
        };
        Ok(Self {
            results,
            weights,
            history,
        })
    }
}

impl RangeRun<'_> {
    /// Network-epochs the range trains.
    pub fn total(&self) -> u64 {
        let epochs = self.sweep.points[0].config.options.epochs;
        self.range.len() as u64 * epochs
    }

    pub fn train(
        &self,
        engine: &Engine,
        base: &BackendInfo,
        progress: &mut dyn FnMut(&Progress),
        stop: &StopFlag,
    ) -> Result<Finished, Error> {
        let sweep = self.sweep;
        let first = &sweep.points[0].config;
        let mut out = RunWriter::open(self)?;
        let mut seconds = 0.0;
        let mut notes: Vec<String> = Vec::new();
        let total = self.total();
        let mut done_before = 0u64;
        let segments = sweep.segments(self.range.clone());
        let single = segments.len() == 1;
        let mut options = first.options;
        for parts in segments {
            let mut config = sweep.segment_config(&parts);
            let part = &parts[0];
            let info = run::backend_for(engine, &config, base)?;
            // A resume takes its epochs from the file here.
            let mut start = Starting::open(&mut config)?;
            options = config.options;
            for note in start.notes(&config, &info) {
                if !notes.contains(&note) {
                    notes.push(note);
                }
            }
            // One rule starts every network of a plain run (a grid's
            // networks are keyed on their replicate: a resume cannot take
            // one up).
            let init = start.recorded_init().filter(|_| sweep.points.len() == 1);
            out.start_model(sweep.model_of[part.point], &config, &info, init)?;
            let first_id = sweep.first_id(part);
            // The segment's network-epochs as its progress last counted
            // them (all it asked for unless a stop came first).
            let mut segment_done = 0;
            seconds += run::execute(
                &config,
                engine,
                &mut start,
                &mut |p| {
                    segment_done = p.network_epochs_done;
                    match single {
                        // One part (a resume among them) knows its own total.
                        true => progress(p),
                        false => progress(&Progress {
                            network_epochs_done: done_before + p.network_epochs_done,
                            network_epochs_total: total,
                        }),
                    }
                },
                stop,
                &mut |block| {
                    out.block(&TrainedBlock {
                        first: first_id + block.first,
                        ..*block
                    })
                },
            )?;
            done_before += match stop.is_requested() {
                false => config.networks as u64 * options.epochs,
                true => segment_done,
            };
        }
        let (tallies, mut files, kept) = out.finish(options.epochs)?;
        let labels = |point: usize| sweep.points[point].labels.clone();
        let (mut tally, history, stats) = tallies.finish(&labels);
        let replicates = sweep.replicates.max(1);
        // Each point's networks against its own model.
        let tolerance = self.verify.map_or(0.0, |v| v.tolerance);
        let verify = tally
            .checked()
            .chunk_by(|a, b| a.index / replicates == b.index / replicates)
            .map(|checked| {
                let point = &sweep.points[checked[0].index / replicates].config;
                let (spec, data) = (&point.spec, &point.data);
                report::verify(spec, data, &options, checked, tolerance)
            })
            .reduce(report::VerifyReport::combine);
        let passed = verify.as_ref().is_none_or(|v| v.passed);
        if let Some(point) = tally.best_point() {
            tally.settle_best(&sweep.points[point].config.spec, &first.data);
        }
        let mut summary = report::summarize(
            &first.spec,
            &first.data,
            &options,
            base,
            tally,
            seconds,
            verify,
            notes,
            first.eval.as_deref(),
        );
        summary.strategy = self.strategies(engine, base)?;
        summary.history = history;
        summary.seed = self.seed;
        summary.command = self.command.to_vec();
        complete_summary(&mut summary, sweep, stats);
        files.extend(self.summary_files(&summary)?);
        Ok(Finished {
            summary,
            passed,
            files,
            kept,
        })
    }

    /// The strategies of every point of the sweep (so every shard names
    /// the same), distinct, in grid order.
    fn strategies(&self, engine: &Engine, base: &BackendInfo) -> Result<String, Error> {
        let mut seen: Vec<String> = Vec::new();
        for p in &self.sweep.points {
            let s = run::backend_for(engine, &p.config, base)?
                .backend
                .strategy_name();
            if !seen.iter().any(|seen| seen == s) {
                seen.push(s.to_string());
            }
        }
        Ok(seen.join(" | "))
    }

    /// The files made from the summary: the history and groups CSVs, the
    /// summary's JSON, run.json.
    fn summary_files(&self, summary: &Summary) -> Result<Vec<TemporaryFile>, Error> {
        let record = RunRecord::of(self);
        summary_files(self.paths, summary, &record)
    }
}

/// The files made from a finished summary (see [`RangeRun`]): the
/// history CSV, the groups CSV, summary.json and run.json, as paths ask.
pub fn summary_files(
    paths: &OutputPaths,
    summary: &Summary,
    record: &RunRecord,
) -> Result<Vec<TemporaryFile>, Error> {
    let mut files = Vec::new();
    let eval = summary.eval_data.is_some();
    if let (Some(path), Some(points)) = (&paths.history_csv, &summary.history) {
        files.push(text_file(path, &crate::history::csv_text(points, eval))?);
    }
    if let Some(path) = &paths.groups {
        let columns: Vec<&str> = summary.grid.iter().map(|a| a.column.as_str()).collect();
        files.push(text_file(
            path,
            &groups::csv_text(&columns, &summary.groups),
        )?);
    }
    if let Some(path) = &paths.summary {
        files.push(text_file(path, &summary_json(summary))?);
    }
    if let Some(path) = &paths.run {
        let text = serde_json::to_string_pretty(record).expect("plain data") + "\n";
        files.push(text_file(path, &text)?);
    }
    Ok(files)
}

/// The model's weights file complete, and its snapshots file where it has
/// one.
fn finish_model(done: ModelWriter, planned: u64) -> Result<Vec<Written>, Error> {
    let epochs = done.fewest_epochs.unwrap_or(planned);
    let mut written = vec![done.writer.complete(epochs, epochs < planned)?];
    if let Some(own) = done.snapshots {
        written.push(own.complete(epochs, epochs < planned)?);
    }
    Ok(written)
}
