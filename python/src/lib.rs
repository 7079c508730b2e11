//! `gputrain._native`: the Python package's bridge to the gputrain
//! library. It trains through the same function as the command line
//! (`commands::train_with`), from the same parsed flags (the keywords are
//! the flags' names), so a Python run and a command-line run of one
//! configuration are the same computation and write the same files. What
//! is here only moves values across: arguments in, NumPy arrays out, the
//! training on a thread of its own while the caller waits without the GIL.
//! The typed, documented API is the pure-Python `gputrain` package around
//! this module (python/gputrain).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use clap::{ArgAction, Args, FromArgMatches};
use numpy::{PyArray1, PyArrayMethods, PyReadonlyArray1, PyReadonlyArray2};
use pyo3::create_exception;
use pyo3::exceptions::{PyMemoryError, PyOSError, PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use gputrain::Error;
use gputrain::cli::TrainArgs;
use gputrain::commands::{self, Hooks, Trained};
use gputrain::data::Arrays;
use gputrain::setting::{self, Face};
use gputrain::sweep::outputs::{OutputPaths, summary_json};
use gputrain::table::{Column, ResultsTable};
use gputrain::training::StopFlag;
use gputrain::weights::Source;

create_exception!(
    _native,
    TrainingError,
    PyRuntimeError,
    "Training could not run or finish: no GPU adapter, a device lost or stuck, a kernel \
     that failed to build. The message says what happened and what to try."
);

/// The library's error as the Python exception a caller expects, with the
/// command line's message: bad arguments, data or files are `ValueError`,
/// a file that cannot be read or written `OSError`, a run too large for
/// memory `MemoryError`, the rest [`TrainingError`].
fn to_py(e: Error) -> PyErr {
    // Settings named as keywords: `momentum=1.5`, not `--momentum 1.5`.
    let message = setting::with_face(Face::Python, || e.to_string());
    match e {
        Error::Config(_)
        | Error::Topology(_)
        | Error::Init(_)
        | Error::Data { .. }
        | Error::WeightsFile { .. }
        | Error::Merge { .. } => PyValueError::new_err(message),
        Error::Io { .. } => PyOSError::new_err(message),
        Error::HostMemory(_) | Error::TooLarge(_) => PyMemoryError::new_err(message),
        _ => TrainingError::new_err(message),
    }
}

/// `train`'s flags as clap defines them, for the command line's parser.
fn train_command() -> clap::Command {
    TrainArgs::augment_args(clap::Command::new("gputrain").no_binary_name(true))
        .allow_negative_numbers(true)
}

/// Every flag of `gputrain train`: (keyword, flag, takes a value, may be
/// repeated, default, help, hidden). The Python package takes its
/// keywords, their defaults and their documentation from here.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn flags() -> Vec<(String, String, bool, bool, Option<String>, String, bool)> {
    train_command()
        .get_arguments()
        .filter_map(|arg| {
            let long = arg.get_long()?;
            let defaults: Vec<String> = arg
                .get_default_values()
                .iter()
                .map(|v| v.to_string_lossy().into_owned())
                .collect();
            Some((
                long.replace('-', "_"),
                format!("--{long}"),
                arg.get_action().takes_values(),
                matches!(arg.get_action(), ArgAction::Append),
                (!defaults.is_empty()).then(|| defaults.join(",")),
                arg.get_help().map_or(String::new(), |h| h.to_string()),
                arg.is_hide_set(),
            ))
        })
        .collect()
}

/// Parses command-line arguments as `gputrain train` does; the error is
/// clap's message without its "error: " and its hint about --help.
fn parse(argv: &[String]) -> Result<TrainArgs, String> {
    let mut matches = train_command()
        .try_get_matches_from(argv)
        .map_err(|e| clap_message(&e))?;
    // `resume=` alone: the file's networks, model and plan, as the
    // command line takes them.
    let words: Vec<std::ffi::OsString> = argv.iter().map(Into::into).collect();
    if let Some(argv) = gputrain::cli::with_recorded_flags(&words, &matches) {
        matches = train_command()
            .try_get_matches_from(argv)
            .map_err(|e| clap_message(&e))?;
    }
    let mut args = TrainArgs::from_arg_matches(&matches).map_err(|e| clap_message(&e))?;
    args.command = argv.to_vec();
    Ok(args)
}

fn clap_message(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let text = text.trim().trim_start_matches("error: ");
    // The hints after the message (usage, --help) are the command line's.
    let text = ["\n\nUsage:", "\n\nFor more information"]
        .iter()
        .filter_map(|hint| text.find(hint))
        .min()
        .map_or(text, |at| &text[..at]);
    text.trim().to_string()
}

/// Parses `argv` as the command line does: None when they parse, else the
/// flag whose value was refused (where the error is about one value) and
/// the message.
#[pyfunction]
fn parse_error(argv: Vec<String>) -> Option<(Option<String>, String)> {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let e = match train_command().try_get_matches_from(&argv) {
        Ok(matches) => match TrainArgs::from_arg_matches(&matches) {
            Ok(_) => return None,
            Err(e) => e,
        },
        Err(e) => e,
    };
    let about_a_value = matches!(
        e.kind(),
        ErrorKind::InvalidValue | ErrorKind::ValueValidation
    );
    let flag = match e.get(ContextKind::InvalidArg) {
        Some(ContextValue::String(arg)) if about_a_value => {
            arg.split_whitespace().next().map(str::to_string)
        }
        _ => None,
    };
    Some((flag, clap_message(&e)))
}

/// A 2-D float64 array as row-major values and its column count, in any
/// memory order (a C-contiguous array is read in place).
fn rows(array: &PyReadonlyArray2<'_, f64>) -> (Vec<f64>, usize) {
    let view = array.as_array();
    let columns = view.ncols();
    let values = match view.as_slice() {
        Some(slice) => slice.to_vec(),
        None => view.iter().copied().collect(),
    };
    (values, columns)
}

fn arrays(
    argument: &str,
    x: &PyReadonlyArray2<'_, f64>,
    y: Option<&PyReadonlyArray2<'_, f64>>,
) -> Arrays {
    let (x, x_columns) = rows(x);
    let (y, y_columns) = y.map_or((Vec::new(), 0), rows);
    Arrays {
        argument: argument.to_string(),
        x,
        x_columns,
        y,
        y_columns,
    }
}

/// What the training thread shares with the waiting caller.
#[derive(Default)]
struct Shared {
    done: AtomicU64,
    total: AtomicU64,
    stop: StopFlag,
    log: Mutex<Vec<String>>,
    /// The run's end: its outcome, or the error's message and kind.
    result: Mutex<Option<Result<Trained, Failure>>>,
    finished: Condvar,
}

/// A run that failed, or a panic caught on its way to Python.
enum Failure {
    Error(Error),
    Panic(String),
}

impl Failure {
    fn into_py(self) -> PyErr {
        match self {
            Failure::Error(e) => to_py(e),
            Failure::Panic(message) => {
                TrainingError::new_err(format!("internal error (please report it): {message}"))
            }
        }
    }
}

/// Runs `f`, with a panic inside it caught as a [`Failure`] (so none
/// crosses into Python).
fn caught<T>(f: impl FnOnce() -> Result<T, Error>) -> Result<T, Failure> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(result) => result.map_err(Failure::Error),
        Err(panic) => Err(Failure::Panic(
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "a panic without a message".into()),
        )),
    }
}

/// A training run on a thread of its own. `wait` lets go of the GIL, so
/// the caller's other threads run, and returns at least every `timeout`
/// seconds, so the caller sees Ctrl-C (KeyboardInterrupt) and draws the
/// progress.
#[pyclass]
struct Job {
    shared: Arc<Shared>,
}

#[pymethods]
impl Job {
    /// Waits up to `timeout` seconds (without the GIL) for the run to end;
    /// true once it has.
    fn wait(&self, py: Python<'_>, timeout: f64) -> bool {
        let shared = &self.shared;
        py.detach(|| {
            let guard = shared.result.lock().expect("result lock");
            let limit = Duration::from_secs_f64(timeout.clamp(0.0, 3600.0));
            let (guard, _) = shared
                .finished
                .wait_timeout_while(guard, limit, |r| r.is_none())
                .expect("result lock");
            guard.is_some()
        })
    }

    /// (network-epochs done, network-epochs in all).
    fn progress(&self) -> (u64, u64) {
        let s = &self.shared;
        (
            s.done.load(Ordering::Relaxed),
            s.total.load(Ordering::Relaxed),
        )
    }

    /// The lines the run has for its user since the last call.
    fn messages(&self) -> Vec<String> {
        std::mem::take(&mut *self.shared.log.lock().expect("log lock"))
    }

    /// Asks the run to stop after the current chunk of epochs.
    fn cancel(&self) {
        self.shared.stop.request();
    }

    /// The finished run: the summary as `--json` prints it, whether
    /// `--verify` passed, the results table's columns, each model's
    /// weights (the file a flag named, or the file's bytes kept in memory
    /// as a uint8 array) and the learning curves likewise. Raises the
    /// run's error.
    fn result<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let taken = self.shared.result.lock().expect("result lock").take();
        let trained = match taken {
            None => return Err(PyRuntimeError::new_err("the run has not finished")),
            Some(result) => result.map_err(Failure::into_py)?,
        };
        let Trained {
            summary,
            passed,
            paths,
            models,
            kept,
        } = trained;
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        let weight_files: Vec<String> = (0..models)
            .filter_map(|k| paths.weights_file(k, models))
            .map(|p| p.display().to_string())
            .collect();
        let buffers: Vec<Bound<'py, PyAny>> = kept
            .weights
            .into_iter()
            .map(|bytes| PyArray1::from_vec(py, bytes).into_any())
            .collect();
        let out = PyDict::new(py);
        let summary = setting::with_face(Face::Python, || summary_json(&summary));
        out.set_item("summary", summary)?;
        out.set_item("passed", passed)?;
        let columns = match kept.results {
            Some(table) => Some(table_to_py(py, table)?),
            None => None,
        };
        out.set_item("results", columns)?;
        out.set_item("weight_files", weight_files)?;
        out.set_item("weight_buffers", buffers)?;
        out.set_item("history_file", path(&paths.history_out))?;
        let history = kept.history.map(|b| PyArray1::from_vec(py, b).into_any());
        out.set_item("history_buffer", history)?;
        Ok(out)
    }
}

/// A results table as (name, column) pairs: int64 and float64 arrays,
/// lists of text.
fn table_to_py(py: Python<'_>, table: ResultsTable) -> PyResult<Vec<(String, Py<PyAny>)>> {
    table
        .columns
        .into_iter()
        .map(|(name, column)| {
            let value = match column {
                Column::Ints(v) => PyArray1::from_vec(py, v).into_any().unbind(),
                Column::Floats(v) => PyArray1::from_vec(py, v).into_any().unbind(),
                Column::Text(v) => v.into_pyobject(py)?.into_any().unbind(),
            };
            Ok((name, value))
        })
        .collect()
}

/// Starts a training run of the `gputrain train` flags `argv`, with the
/// training samples `data` and held-out samples `eval_data` as float64
/// arrays `(X, Y)` where given, keeping in memory the outputs no flag
/// names. Bad flags and bad arrays raise here, before any work.
#[pyfunction]
#[pyo3(signature = (argv, data=None, eval_data=None))]
fn start(
    py: Python<'_>,
    argv: Vec<String>,
    data: Option<(PyReadonlyArray2<'_, f64>, PyReadonlyArray2<'_, f64>)>,
    eval_data: Option<(PyReadonlyArray2<'_, f64>, PyReadonlyArray2<'_, f64>)>,
) -> PyResult<Job> {
    let mut args = parse(&argv).map_err(PyValueError::new_err)?;
    if let Some((x, y)) = &data {
        args.data.arrays = Some(Arc::new(arrays("data", x, Some(y))));
    }
    if let Some((x, y)) = &eval_data {
        args.data.eval_arrays = Some(Arc::new(arrays("eval_data", x, Some(y))));
    }
    // The arguments as a whole (the grid, the data against the model),
    // here, so a mistake raises at once rather than from the thread.
    let plan = py.detach(|| args.to_plan()).map_err(to_py)?;
    let shared = Arc::new(Shared::default());
    let worker = Arc::clone(&shared);
    std::thread::Builder::new()
        .name("gputrain-train".into())
        .spawn(move || {
            let s = &worker;
            let result = caught(|| {
                commands::train_with(
                    plan,
                    true,
                    Hooks {
                        progress: &mut |p| {
                            s.done.store(p.network_epochs_done, Ordering::Relaxed);
                            s.total.store(p.network_epochs_total, Ordering::Relaxed);
                        },
                        log: &mut |line| {
                            let line = setting::with_face(Face::Python, || setting::render(line));
                            s.log.lock().expect("log lock").push(line)
                        },
                        stop: s.stop.clone(),
                    },
                )
            });
            *worker.result.lock().expect("result lock") = Some(result);
            worker.finished.notify_all();
        })
        .map_err(|e| TrainingError::new_err(format!("cannot start a training thread: {e}")))?;
    Ok(Job { shared })
}

/// Every tensor of a safetensors file as a NumPy array of its dtype and
/// shape, and the file's metadata.
#[pyfunction]
fn read_tensors<'py>(
    py: Python<'py>,
    path: PathBuf,
) -> PyResult<(Bound<'py, PyDict>, Bound<'py, PyDict>)> {
    let bytes = py.detach(|| std::fs::read(&path)).map_err(|e| {
        to_py(Error::Io {
            path: path.clone(),
            source: e,
        })
    })?;
    let bad = |m: String| {
        to_py(Error::WeightsFile {
            path: path.clone(),
            message: m,
        })
    };
    let file = safetensors::SafeTensors::deserialize(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let tensors = PyDict::new(py);
    let mut names = file.names();
    names.sort();
    for name in names {
        let view = file.tensor(name).map_err(|e| bad(e.to_string()))?;
        let shape = view.shape().to_vec();
        let data = view.data();
        let array = match view.dtype() {
            safetensors::Dtype::F32 => typed::<f32>(py, data, &shape)?,
            safetensors::Dtype::F64 => typed::<f64>(py, data, &shape)?,
            safetensors::Dtype::I64 => typed::<i64>(py, data, &shape)?,
            other => return Err(bad(format!("tensor {name} has dtype {other:?}"))),
        };
        tensors.set_item(name, array)?;
    }
    let metadata = PyDict::new(py);
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    if let Some(map) = header.metadata() {
        for (k, v) in map {
            metadata.set_item(k, v)?;
        }
    }
    Ok((tensors, metadata))
}

/// Where each tensor of a safetensors file's bytes lies (`buffer`, a
/// uint8 array; `origin` names it in errors), checked whole: (name,
/// dtype "F32" | "F64" | "I64", shape, offset of its first byte in
/// `buffer`), sorted by name, and the file's metadata. The package makes
/// its arrays views of the bytes, without a copy.
#[pyfunction]
#[allow(clippy::type_complexity)]
fn tensor_layout<'py>(
    py: Python<'py>,
    buffer: PyReadonlyArray1<'py, u8>,
    origin: PathBuf,
) -> PyResult<(Vec<(String, String, Vec<usize>, usize)>, Bound<'py, PyDict>)> {
    let bytes = buffer.as_slice()?;
    let bad = |m: String| {
        to_py(Error::WeightsFile {
            path: origin.clone(),
            message: m,
        })
    };
    let (header_length, header) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(format!("not a safetensors file: {e}")))?;
    let data_start = 8 + header_length;
    let mut tensors = Vec::new();
    for (name, info) in header.tensors() {
        let dtype = match info.dtype {
            safetensors::Dtype::F32 => "F32",
            safetensors::Dtype::F64 => "F64",
            safetensors::Dtype::I64 => "I64",
            other => return Err(bad(format!("tensor {name} has dtype {other:?}"))),
        };
        tensors.push((
            name.clone(),
            dtype.to_string(),
            info.shape.clone(),
            data_start + info.data_offsets.0,
        ));
    }
    tensors.sort();
    let metadata = PyDict::new(py);
    if let Some(map) = header.metadata() {
        for (k, v) in map {
            metadata.set_item(k, v)?;
        }
    }
    Ok((tensors, metadata))
}

/// Little-endian values of one dtype as an array of `shape`.
fn typed<'py, T>(py: Python<'py>, data: &[u8], shape: &[usize]) -> PyResult<Bound<'py, PyAny>>
where
    T: numpy::Element + Copy + FromLe,
{
    let size = std::mem::size_of::<T>();
    let values: Vec<T> = data.chunks_exact(size).map(T::from_le).collect();
    let flat = PyArray1::from_vec(py, values);
    Ok(flat.reshape(shape.to_vec())?.into_any())
}

/// A number from its little-endian bytes.
trait FromLe {
    fn from_le(bytes: &[u8]) -> Self;
}

macro_rules! from_le {
    ($($t:ty),*) => {$(
        impl FromLe for $t {
            fn from_le(bytes: &[u8]) -> Self {
                <$t>::from_le_bytes(bytes.try_into().expect("whole values"))
            }
        }
    )*};
}
from_le!(f32, f64, i64);

/// A results CSV as (name, column) in header order (see
/// [`ResultsTable::read_csv`]): an int64 array where every cell is an
/// integer, a float64 array (NaN for an empty cell) where every cell is a
/// number or empty, else a list of the text. Parsed without the GIL.
#[pyfunction]
fn read_results(py: Python<'_>, path: PathBuf) -> PyResult<Vec<(String, Py<PyAny>)>> {
    let table = py.detach(|| ResultsTable::read_csv(&path)).map_err(to_py)?;
    table_to_py(py, table)
}

/// The row counts of the networks of `replicates` under the resample a
/// weights file records (`resample`, `resample_seed`) over `rows`
/// training rows, network after network, a byte a row
/// ([`gputrain::resample`]).
#[pyfunction]
fn resample_counts<'py>(
    py: Python<'py>,
    resample: &str,
    seed: u64,
    rows: usize,
    replicates: Vec<u64>,
) -> PyResult<Bound<'py, PyArray1<u8>>> {
    let how = gputrain::resample::Resampling::parse(resample, seed).ok_or_else(|| {
        PyValueError::new_err(format!("'{resample}' is not a resample gputrain knows"))
    })?;
    let counts = gputrain::resample::block_counts(&how, rows, replicates.into_iter());
    Ok(PyArray1::from_vec(py, counts))
}

/// A weights file named by its path, or its bytes (a uint8 array) with
/// the name errors give it.
fn weights_source(weights: &Bound<'_, PyAny>, origin: &str) -> PyResult<Source> {
    if let Ok(path) = weights.extract::<PathBuf>() {
        return Ok(Source::Path(path));
    }
    let buffer: PyReadonlyArray1<'_, u8> = weights.extract()?;
    Ok(Source::Bytes {
        bytes: buffer.as_slice()?.into(),
        origin: PathBuf::from(origin),
    })
}

/// The outputs of every network in the weights file `weights` (its
/// snapshot at epoch `snapshot`, where one is asked for) on the samples
/// `x` (float64, [samples, inputs]) as an array [networks, samples,
/// outputs], with the adapter that computed them (None: the
/// float64 CPU reference) and any notes.
#[pyfunction]
#[pyo3(signature = (weights, x, backend="auto", adapter="auto", origin="the run's weights", snapshot=None))]
#[allow(clippy::type_complexity)]
fn predict<'py>(
    py: Python<'py>,
    weights: &Bound<'py, PyAny>,
    x: PyReadonlyArray2<'py, f64>,
    backend: &str,
    adapter: &str,
    origin: &str,
    snapshot: Option<u64>,
) -> PyResult<(Bound<'py, PyAny>, Option<String>, Vec<String>)> {
    use clap::ValueEnum;
    let backend = gputrain::run::BackendChoice::from_str(backend, false).map_err(|_| {
        PyValueError::new_err(format!(
            "backend={backend:?}: expected one of 'auto', 'gpu', 'simd', 'cpu'"
        ))
    })?;
    let adapter: gputrain::gpu::AdapterChoice = match adapter.parse() {
        Ok(choice) => choice,
        Err(never) => match never {},
    };
    let weights = weights_source(weights, origin)?;
    let spec = gputrain::weights::recorded_model_in(&weights).map_err(to_py)?;
    let (inputs, outputs) = (spec.topology.inputs(), spec.topology.outputs());
    let data = arrays("predict", &x, None)
        .to_dataset(inputs, 0, spec.target_rule())
        .map_err(to_py)?;
    let samples = data.samples();
    // The notes render errors as text: in Python's words.
    let forward = py.detach(|| {
        setting::with_face(Face::Python, || {
            caught(|| {
                let loaded = gputrain::weights::read_snapshot(&weights, &spec, snapshot)?;
                gputrain::predict::forward(&spec, &loaded.params, &data, backend, &adapter)
            })
        })
    });
    let gputrain::predict::Forward {
        values,
        adapter,
        notes,
        ..
    } = forward.map_err(Failure::into_py)?;
    let networks = values.len() / (samples * outputs).max(1);
    let array = PyArray1::from_vec(py, values).reshape([networks, samples, outputs])?;
    Ok((array.into_any(), adapter, notes))
}

/// The `gputrain` command of the wheel (`[project.scripts]`): runs the
/// command line `argv` (the program's name first) exactly as the binary
/// does, without the GIL, and gives its exit status. `--help`, `--version`
/// and a usage error print clap's text and end the process, as the binary.
#[pyfunction]
fn main(py: Python<'_>, argv: Vec<String>) -> u8 {
    py.detach(|| commands::main(&gputrain::cli::Cli::from_args(argv)))
}

/// The plain progress line a log gets (`gputrain::progress::log_line`):
/// `done` of `total` network-epochs after `elapsed` seconds.
#[pyfunction]
fn progress_line(done: u64, total: u64, elapsed: f64) -> String {
    let p = gputrain::training::Progress {
        network_epochs_done: done,
        network_epochs_total: total,
    };
    gputrain::progress::log_line(&p, elapsed)
}

/// How often a log gets a progress line, in seconds (0: never), from
/// GPUTRAIN_PROGRESS_SECONDS as the command reads it; ValueError for a
/// value that is not a number of seconds.
#[pyfunction]
fn progress_seconds() -> PyResult<f64> {
    gputrain::progress::log_every().map_err(to_py)
}

/// Every adapter wgpu finds, as JSON (`gputrain adapters --json`).
#[pyfunction]
fn adapters(py: Python<'_>) -> String {
    py.detach(|| serde_json::Value::Array(commands::adapters_json()).to_string())
}

/// The weights files of `models` models for the weights path `path`, as a
/// run names them (one model: the path itself; several: NAME-k.EXT).
#[pyfunction]
fn weights_files(path: PathBuf, models: usize) -> Vec<String> {
    let paths = OutputPaths {
        weights: Some(path),
        ..OutputPaths::default()
    };
    (0..models)
        .filter_map(|k| paths.weights_file(k, models))
        .map(|p| p.display().to_string())
        .collect()
}

/// Copies `from` to `to` whole or not at all (a temporary file beside
/// `to`, renamed into place).
#[pyfunction]
fn copy_file(py: Python<'_>, from: PathBuf, to: PathBuf) -> PyResult<()> {
    py.detach(|| copy_whole(&from, &to)).map_err(to_py)
}

fn copy_whole(from: &Path, to: &Path) -> Result<(), Error> {
    let bytes = std::fs::read(from).map_err(|e| Error::Io {
        path: from.to_path_buf(),
        source: e,
    })?;
    write_whole(&bytes, to)
}

fn write_whole(bytes: &[u8], to: &Path) -> Result<(), Error> {
    use std::io::Write;
    let mut file = gputrain::output::TemporaryFile::create(to)?;
    let written = file.handle().write_all(bytes);
    written.map_err(|e| file.error(e))?;
    file.persist()
}

/// Writes `buffer` (a uint8 array: a file's bytes kept in memory) to `to`
/// whole or not at all.
#[pyfunction]
fn write_file(py: Python<'_>, buffer: PyReadonlyArray1<'_, u8>, to: PathBuf) -> PyResult<()> {
    let bytes = buffer.as_slice()?;
    py.detach(|| write_whole(bytes, &to)).map_err(to_py)
}

/// Reads a file whole, as a uint8 array.
#[pyfunction]
fn read_file<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyAny>> {
    let bytes = py
        .detach(|| std::fs::read(&path))
        .map_err(|e| to_py(Error::Io { path, source: e }))?;
    Ok(PyArray1::from_vec(py, bytes).into_any())
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    // The variables that configure Mesa's device-selection layer; unless
    // one is set, the package turns the layer off as the command does
    // (gpu::device::quiet_display_probe), so a headless machine stays
    // silent. Python sets it, through os.environ, as it sets any variable.
    m.add(
        "DEVICE_SELECT_SETTINGS",
        gputrain::gpu::device::DEVICE_SELECT_SETTINGS.to_vec(),
    )?;
    m.add("TrainingError", m.py().get_type::<TrainingError>())?;
    m.add_class::<Job>()?;
    for f in [
        wrap_pyfunction!(flags, m)?,
        wrap_pyfunction!(parse_error, m)?,
        wrap_pyfunction!(start, m)?,
        wrap_pyfunction!(read_tensors, m)?,
        wrap_pyfunction!(read_results, m)?,
        wrap_pyfunction!(predict, m)?,
        wrap_pyfunction!(resample_counts, m)?,
        wrap_pyfunction!(adapters, m)?,
        wrap_pyfunction!(weights_files, m)?,
        wrap_pyfunction!(copy_file, m)?,
        wrap_pyfunction!(write_file, m)?,
        wrap_pyfunction!(read_file, m)?,
        wrap_pyfunction!(tensor_layout, m)?,
        wrap_pyfunction!(main, m)?,
        wrap_pyfunction!(progress_line, m)?,
        wrap_pyfunction!(progress_seconds, m)?,
    ] {
        m.add_function(f)?;
    }
    Ok(())
}
