//! Output files written whole or not at all: a temporary file next to the
//! target, renamed into place when complete and removed when a run fails
//! on the way. Also the per-network results CSV, written as the run goes.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::setting::Setting;
use crate::setting::settings::OUT;
use crate::training::NetworkMetrics;
use crate::training::NetworkOutcome;

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A path's identity for comparing files: canonical (links followed)
/// where it exists, else its directory's canonical path joined with its
/// name, else the path made absolute.
fn identity(path: &Path) -> PathBuf {
    if let Ok(canonical) = std::fs::canonicalize(path) {
        return canonical;
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    match (std::fs::canonicalize(parent), path.file_name()) {
        (Ok(dir), Some(name)) => dir.join(name),
        _ => std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf()),
    }
}

/// The lock file a run holds in its `--out` directory.
pub const LOCK_FILE: &str = ".gputrain.lock";

/// A run's hold on its `--out` directory: [`LOCK_FILE`] created
/// exclusively, holding the process id and the host; removed when
/// dropped. A lock whose process is gone (on this host) is stale and
/// taken over.
pub struct DirLock {
    path: PathBuf,
}

/// This host's name (Linux; empty elsewhere).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

impl DirLock {
    pub fn acquire(dir: &Path) -> Result<Self, Error> {
        let path = dir.join(LOCK_FILE);
        let host = host_name();
        for _ in 0..2 {
            match std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
            {
                Ok(mut file) => {
                    writeln!(file, "{} {host}", std::process::id())
                        .map_err(|e| io_error(&path, e))?;
                    return Ok(Self { path });
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let holder = std::fs::read_to_string(&path).unwrap_or_default();
                    let mut words = holder.split_whitespace();
                    let (pid, on) = (words.next().unwrap_or("?"), words.next().unwrap_or(""));
                    let gone =
                        on == host && !host.is_empty() && !Path::new("/proc").join(pid).exists();
                    if gone {
                        let _ = std::fs::remove_file(&path);
                        continue;
                    }
                    return Err(Error::Config(format!(
                        "{} is in use by another run (process {pid}{}): wait for it to finish \
                         or choose another {OUT} (if no run is using it, remove {})",
                        OUT.is(dir.display()),
                        match on.is_empty() {
                            true => String::new(),
                            false => format!(" on {on}"),
                        },
                        path.display()
                    )));
                }
                Err(e) => return Err(io_error(&path, e)),
            }
        }
        Err(Error::Config(format!(
            "{}: cannot take its lock {}",
            OUT.is(dir.display()),
            path.display()
        )))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `name` is one a run writes into an `--out` directory.
pub fn is_run_file(name: &str) -> bool {
    const NAMES: [&str; 6] = [
        "results.csv",
        "groups.csv",
        "summary.json",
        "run.json",
        "history.safetensors",
        "history.csv",
    ];
    NAMES.contains(&name) || (name.starts_with("weights") && name.ends_with(".safetensors"))
}

/// The files of a run already in `dir`, by name, sorted.
pub fn run_files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| is_run_file(n))
        .collect();
    names.sort();
    names
}

/// Whether `a` and `b` name one file or directory (canonicalised, links
/// followed; a new name by its directory's canonical path).
pub fn same_path(a: &Path, b: &Path) -> bool {
    identity(a) == identity(b)
}

/// Checks, before any work, a command's outputs against its inputs and
/// against each other, each named by the flag that gave it: no output is
/// an input (canonicalised, links followed), no two outputs are one file,
/// and every output is a new name or a regular file (a directory, a FIFO,
/// a device or a symbolic link, which the finished file would replace, is
/// refused).
pub fn check_distinct(
    inputs: &[(Setting, PathBuf)],
    outputs: &[(Setting, PathBuf)],
) -> Result<(), Error> {
    let named = |setting: &Setting, path: &Path| setting.is(path.display()).to_string();
    let mut seen: Vec<(PathBuf, String)> = Vec::new();
    for (flag, path) in outputs {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(Error::Config(format!(
                    "{} is a symbolic link: an output is written as a new file, which would \
                     replace the link; name the file itself",
                    named(flag, path)
                )));
            }
            Ok(m) if m.is_dir() => {
                return Err(Error::Config(format!(
                    "{} is a directory: an output must be a file (a new name or a regular file)",
                    named(flag, path)
                )));
            }
            Ok(m) if !m.is_file() => {
                return Err(Error::Config(format!(
                    "{} is not a regular file (a FIFO or a device?): an output must be a new \
                     name or a regular file",
                    named(flag, path)
                )));
            }
            _ => {}
        }
        let id = identity(path);
        if let Some((input_flag, input)) = inputs.iter().find(|(_, p)| identity(p) == id) {
            return Err(Error::Config(format!(
                "{} is also {}: an output never replaces an input; give it another name",
                named(flag, path),
                named(input_flag, input)
            )));
        }
        if let Some((_, other)) = seen.iter().find(|(p, _)| *p == id) {
            return Err(Error::Config(format!(
                "{} is also {other}: two outputs cannot be one file",
                named(flag, path)
            )));
        }
        seen.push((id, named(flag, path)));
    }
    Ok(())
}

/// Checks, before any work starts, that `path` can be created: its
/// directory exists and is writable.
pub fn check_writable(path: &Path) -> Result<(), Error> {
    let probe = temporary_path(path);
    std::fs::File::create(&probe).map_err(|e| io_error(path, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The most bytes of a file name on the usual file systems (ext4, XFS,
/// APFS, NTFS).
const NAME_MAX: usize = 255;

/// The temporary name a file is written under beside `path`:
/// `.{name}.{pid}.{n}.tmp`, the name cut (at a character boundary) so the
/// whole stays within [`NAME_MAX`] bytes, `n` counting this process's
/// temporaries so two cut names never meet.
fn temporary_path(path: &Path) -> PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNT: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = COUNT.fetch_add(1, Ordering::Relaxed);
    let tail = format!(".{}.{n}.tmp", std::process::id());
    let room = NAME_MAX - 1 - tail.len();
    let mut cut = name.len().min(room);
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    path.with_file_name(format!(".{}{tail}", &name[..cut]))
}

/// A file being written next to its target, which appears under the
/// target's name only through [`TemporaryFile::persist`]; dropped before
/// that, it is removed.
pub struct TemporaryFile {
    target: PathBuf,
    temporary: PathBuf,
    writer: Option<BufWriter<File>>,
}

impl TemporaryFile {
    pub fn create(target: &Path) -> Result<Self, Error> {
        let temporary = temporary_path(target);
        let file = File::create(&temporary).map_err(|e| io_error(target, e))?;
        Ok(Self {
            target: target.to_path_buf(),
            temporary,
            writer: Some(BufWriter::new(file)),
        })
    }

    /// The buffered file, for writes and seeks.
    pub fn handle(&mut self) -> &mut BufWriter<File> {
        self.writer.as_mut().expect("open until persisted")
    }

    /// An I/O error, reported against the target's name.
    pub fn error(&self, source: std::io::Error) -> Error {
        io_error(&self.target, source)
    }

    /// Truncates or extends the file to `bytes`.
    pub fn set_len(&mut self, bytes: u64) -> Result<(), Error> {
        let writer = self.writer.as_mut().expect("open until persisted");
        let result = writer.flush().and_then(|_| writer.get_ref().set_len(bytes));
        result.map_err(|e| self.error(e))
    }

    /// Flushes, syncs and renames the file into place.
    pub fn persist(mut self) -> Result<(), Error> {
        let writer = self.writer.take().expect("open until persisted");
        let result = writer
            .into_inner()
            .map_err(|e| e.into_error())
            .and_then(|file| file.sync_all())
            .and_then(|_| std::fs::rename(&self.temporary, &self.target));
        result.map_err(|e| self.error(e))
    }
}

impl Drop for TemporaryFile {
    fn drop(&mut self) {
        if self.writer.is_some() || self.temporary.exists() {
            self.writer = None;
            let _ = std::fs::remove_file(&self.temporary);
        }
    }
}

/// A writer that also seeks: what a file or a buffer in memory is to the
/// writers of safetensors files, which fill their tensors block by block.
pub trait WriteSeek: Write + Seek {}
impl<T: Write + Seek> WriteSeek for T {}

/// Where a writer's bytes go: a [`TemporaryFile`] that becomes its target
/// at the end, or memory, for outputs no file is asked for (the Python
/// package keeps a run's weights and curves so, and writes a file only
/// on `save`). Either way the bytes are the same.
pub enum Sink {
    File(TemporaryFile),
    Memory(std::io::Cursor<Vec<u8>>),
}

/// A [`Sink`] written to the end.
pub enum Written {
    File(TemporaryFile),
    Memory(Vec<u8>),
}

impl Sink {
    /// A temporary file for `target`, or memory for `None`.
    pub fn create(target: Option<&Path>) -> Result<Self, Error> {
        Ok(match target {
            Some(path) => Sink::File(TemporaryFile::create(path)?),
            None => Sink::Memory(std::io::Cursor::new(Vec::new())),
        })
    }

    /// For writes and seeks.
    pub fn handle(&mut self) -> &mut dyn WriteSeek {
        match self {
            Sink::File(file) => file.handle(),
            Sink::Memory(cursor) => cursor,
        }
    }

    /// An I/O error, against the target's name.
    pub fn error(&self, source: std::io::Error) -> Error {
        match self {
            Sink::File(file) => file.error(source),
            Sink::Memory(_) => io_error(Path::new("(memory)"), source),
        }
    }

    /// Truncates or extends the output to `bytes`.
    pub fn set_len(&mut self, bytes: u64) -> Result<(), Error> {
        match self {
            Sink::File(file) => file.set_len(bytes),
            Sink::Memory(cursor) => {
                cursor.get_mut().resize(bytes as usize, 0);
                Ok(())
            }
        }
    }

    pub fn written(self) -> Written {
        match self {
            Sink::File(file) => Written::File(file),
            Sink::Memory(cursor) => Written::Memory(cursor.into_inner()),
        }
    }
}

/// The results CSV, a row per network as blocks of them finish: index,
/// learning rate, final loss, target epoch (empty if never reached),
/// diverged (0/1), epochs completed (the run's epochs unless it was
/// interrupted), accuracy on the training data, loss and accuracy on the
/// held-out data, and the training and held-out losses as means over their
/// samples, which compare whatever the reduction (each empty where it does
/// not apply).
pub struct ResultsWriter {
    file: TemporaryFile,
}

pub const RESULTS_HEADER: &str = "network,learning_rate,final_loss,target_epoch,diverged,\
     epochs_completed,train_accuracy,eval_loss,eval_accuracy,train_loss_per_sample,\
     eval_loss_per_sample,best_epoch,stopped_epoch,oob_loss,oob_accuracy\n";

/// The results CSV's header: with a grid, `point`, `replicate` and a
/// column per grid axis (but `learning_rate`, which is always there)
/// follow `network`.
pub fn results_header(grid_columns: &[&str]) -> String {
    let extra: Vec<&str> = grid_columns
        .iter()
        .copied()
        .filter(|c| *c != "learning_rate")
        .collect();
    if grid_columns.is_empty() {
        return RESULTS_HEADER.to_string();
    }
    let rest = RESULTS_HEADER
        .strip_prefix("network,")
        .expect("network comes first");
    let mut header = String::from("network,point,replicate,");
    for c in extra {
        header.push_str(c);
        header.push(',');
    }
    header + rest
}

/// A block's place in a grid, for its rows' grid cells.
#[derive(Clone, Copy, Debug)]
pub struct GridCells<'a> {
    pub point: usize,
    /// The replicate of the block's first network.
    pub first_replicate: usize,
    /// The point's values on the axes other than `--lr`.
    pub labels: &'a [String],
}

impl ResultsWriter {
    /// A results file; `grid_columns` are the grid's axes' columns (none
    /// without a grid).
    pub fn create(path: &Path, grid_columns: &[&str]) -> Result<Self, Error> {
        let mut file = TemporaryFile::create(path)?;
        let header = results_header(grid_columns);
        let result = file.handle().write_all(header.as_bytes());
        result.map_err(|e| file.error(e))?;
        Ok(Self { file })
    }

    /// Rows for networks `first..first + outcomes.len()`.
    pub fn write_block(
        &mut self,
        first: usize,
        grid: Option<GridCells>,
        learning_rates: &[f64],
        outcomes: &[NetworkOutcome],
        metrics: &[NetworkMetrics],
    ) -> Result<(), Error> {
        let out = self.file.handle();
        let cell = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let epoch = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        let result = (|| {
            for (i, ((lr, o), m)) in learning_rates.iter().zip(outcomes).zip(metrics).enumerate() {
                let target = o.target_epoch.map(|e| e.to_string()).unwrap_or_default();
                let grid = match grid {
                    None => String::new(),
                    Some(g) => {
                        let mut cells = format!(",{},{}", g.point, g.first_replicate + i);
                        for label in g.labels {
                            cells.push(',');
                            cells.push_str(label);
                        }
                        cells
                    }
                };
                // Empty where the network was never evaluated.
                let loss = cell(o.evaluated().then_some(o.final_loss));
                writeln!(
                    out,
                    "{}{grid},{lr},{loss},{target},{},{},{},{},{},{},{},{},{},{},{}",
                    first + i,
                    u8::from(o.diverged),
                    o.epochs_completed,
                    cell(m.train_accuracy),
                    cell(m.eval_loss),
                    cell(m.eval_accuracy),
                    cell(m.train_loss_per_sample),
                    cell(m.eval_loss_per_sample),
                    epoch(m.best_epoch),
                    epoch(m.stopped_epoch),
                    cell(m.oob_loss),
                    cell(m.oob_accuracy)
                )?;
            }
            Ok(())
        })();
        result.map_err(|e| self.file.error(e))
    }

    pub fn finish(self) -> Result<(), Error> {
        self.file.persist()
    }

    /// The complete file, to persist with the run's other outputs.
    pub fn into_file(self) -> TemporaryFile {
        self.file
    }
}

/// A safetensors file opened for its header and for copying or reading
/// rows of its tensors (whose first dimension is the networks) without
/// loading them: what `merge` needs of a shard's weights and history.
pub struct TensorFile {
    path: PathBuf,
    file: File,
    data_start: u64,
    header: serde_json::Map<String, serde_json::Value>,
}

/// The most bytes a merge holds at once while copying.
const COPY_BUFFER: usize = 4 << 20;

impl TensorFile {
    fn bad(&self, message: String) -> Error {
        Error::Merge {
            path: self.path.clone(),
            message,
        }
    }

    pub fn open(path: &Path) -> Result<Self, Error> {
        let mut file = File::open(path).map_err(|e| io_error(path, e))?;
        let bad = |message: &str| Error::Merge {
            path: path.to_path_buf(),
            message: format!("not a safetensors file written by gputrain ({message})"),
        };
        let mut length = [0u8; 8];
        file.read_exact(&mut length)
            .map_err(|_| bad("shorter than its header"))?;
        let length = u64::from_le_bytes(length);
        let size = file.metadata().map_err(|e| io_error(path, e))?.len();
        if length > size.saturating_sub(8) || length > 100 << 20 {
            return Err(bad("its header length is past the end"));
        }
        let mut json = vec![0u8; length as usize];
        file.read_exact(&mut json)
            .map_err(|_| bad("shorter than its header"))?;
        let header = match serde_json::from_slice::<serde_json::Value>(&json) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => return Err(bad("its header is not a JSON object")),
        };
        // Every tensor's data must be in the file: a truncated file is
        // named as one, not met as a short read halfway through a merge.
        let end = header
            .values()
            .filter_map(|t| t.get("data_offsets")?.as_array()?.get(1)?.as_u64())
            .max()
            .unwrap_or(0);
        let data = size - 8 - length;
        if end > data {
            return Err(Error::Merge {
                path: path.to_path_buf(),
                message: format!(
                    "is truncated: its tensors need {end} bytes of data, the file holds {data}"
                ),
            });
        }
        Ok(Self {
            path: path.to_path_buf(),
            file,
            data_start: 8 + length,
            header,
        })
    }

    /// A value of the header's `__metadata__`.
    pub fn metadata(&self, key: &str) -> Option<&str> {
        self.header.get("__metadata__")?.get(key)?.as_str()
    }

    /// The header: tensors by name, and `__metadata__`.
    pub fn header(&self) -> &serde_json::Map<String, serde_json::Value> {
        &self.header
    }

    /// The `__metadata__` pairs.
    pub fn metadata_map(&self) -> Vec<(String, String)> {
        match self.header.get("__metadata__").and_then(|m| m.as_object()) {
            Some(m) => m
                .iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect(),
            None => Vec::new(),
        }
    }

    /// Tensor `name`'s dtype, shape and data range (relative to the data).
    pub fn tensor_info(&self, name: &str) -> Result<(String, Vec<usize>, u64, u64), Error> {
        self.tensor(name)
    }

    /// Tensor `name`'s dtype, shape and data range.
    fn tensor(&self, name: &str) -> Result<(String, Vec<usize>, u64, u64), Error> {
        let info = self
            .header
            .get(name)
            .ok_or_else(|| self.bad(format!("has no tensor '{name}'")))?;
        let dtype = info["dtype"].as_str().unwrap_or_default().to_string();
        let shape: Vec<usize> = info["shape"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|d| d.as_u64())
                    .map(|d| d as usize)
                    .collect()
            })
            .unwrap_or_default();
        let offsets = info["data_offsets"].as_array();
        let at = |i: usize| offsets.and_then(|o| o.get(i)).and_then(|v| v.as_u64());
        match (at(0), at(1)) {
            (Some(begin), Some(end)) if begin <= end && !shape.is_empty() => {
                Ok((dtype, shape, begin, end))
            }
            _ => Err(self.bad(format!("tensor '{name}' has no valid shape and offsets"))),
        }
    }

    /// The rows (networks) of tensor `name`.
    pub fn rows(&self, name: &str) -> Result<usize, Error> {
        Ok(self.tensor(name)?.1[0])
    }

    /// Checks that tensor `name` is `rows` rows of `row_bytes` in `dtype`,
    /// and gives the file offset of its first byte.
    fn rows_at(
        &self,
        name: &str,
        dtype: safetensors::Dtype,
        rows: usize,
        row_bytes: usize,
    ) -> Result<u64, Error> {
        let (found, shape, begin, end) = self.tensor(name)?;
        let want = format!("{dtype:?}");
        if found != want || shape[0] != rows || end - begin != (rows * row_bytes) as u64 {
            return Err(self.bad(format!(
                "tensor '{name}' is {found} {shape:?}, not {rows} rows of {row_bytes} bytes of \
                 {want}: the shards' models differ"
            )));
        }
        Ok(self.data_start + begin)
    }

    /// Copies tensor `name`, `rows` rows of `row_bytes`, into `out` at
    /// byte `at`, in pieces of at most `COPY_BUFFER`.
    pub fn copy_rows(
        &self,
        name: &str,
        dtype: safetensors::Dtype,
        rows: usize,
        row_bytes: usize,
        out: &mut Sink,
        at: u64,
    ) -> Result<(), Error> {
        let from = self.rows_at(name, dtype, rows, row_bytes)?;
        let mut source = &self.file;
        source
            .seek(SeekFrom::Start(from))
            .map_err(|e| io_error(&self.path, e))?;
        out.handle()
            .seek(SeekFrom::Start(at))
            .map_err(|e| out.error(e))?;
        let mut left = rows * row_bytes;
        let mut buffer = vec![0u8; COPY_BUFFER.min(left)];
        while left > 0 {
            let piece = &mut buffer[..COPY_BUFFER.min(left)];
            source
                .read_exact(piece)
                .map_err(|e| io_error(&self.path, e))?;
            out.handle().write_all(piece).map_err(|e| out.error(e))?;
            left -= piece.len();
        }
        Ok(())
    }

    /// Rows `first..first + count` of float32 tensor `name` (`width`
    /// values a row, `rows` rows in all).
    pub fn read_f32_rows(
        &self,
        name: &str,
        rows: usize,
        width: usize,
        first: usize,
        count: usize,
    ) -> Result<Vec<f32>, Error> {
        let from = self.rows_at(name, safetensors::Dtype::F32, rows, 4 * width)?;
        let mut source = &self.file;
        let mut bytes = vec![0u8; 4 * width * count];
        source
            .seek(SeekFrom::Start(from + (4 * width * first) as u64))
            .and_then(|_| source.read_exact(&mut bytes))
            .map_err(|e| io_error(&self.path, e))?;
        Ok(bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect())
    }
}
