//! Output files written whole or not at all: a temporary file next to the
//! target, renamed into place when complete and removed when a run fails
//! on the way. Also the per-network results CSV, written as the run goes.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;
use crate::evaluation::NetworkMetrics;
use crate::training::NetworkOutcome;

fn io_error(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Checks, before any work starts, that `path` can be created: its
/// directory exists and is writable.
pub fn check_writable(path: &Path) -> Result<(), Error> {
    let probe = temporary_path(path);
    std::fs::File::create(&probe).map_err(|e| io_error(path, e))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

fn temporary_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.{}.tmp", std::process::id()))
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

/// The results CSV, a row per network as blocks of them finish: index,
/// learning rate, final loss, target epoch (empty if never reached),
/// diverged (0/1), epochs completed (the run's epochs unless it was
/// interrupted), accuracy on the training data, loss and accuracy on the
/// held-out data (each empty where it does not apply).
pub struct ResultsWriter {
    file: TemporaryFile,
}

pub const RESULTS_HEADER: &str = "network,learning_rate,final_loss,target_epoch,diverged,\
     epochs_completed,train_accuracy,eval_loss,eval_accuracy\n";

impl ResultsWriter {
    pub fn create(path: &Path) -> Result<Self, Error> {
        let mut file = TemporaryFile::create(path)?;
        let result = file.handle().write_all(RESULTS_HEADER.as_bytes());
        result.map_err(|e| file.error(e))?;
        Ok(Self { file })
    }

    /// Rows for networks `first..first + outcomes.len()`.
    pub fn write_block(
        &mut self,
        first: usize,
        learning_rates: &[f64],
        outcomes: &[NetworkOutcome],
        metrics: &[NetworkMetrics],
    ) -> Result<(), Error> {
        let out = self.file.handle();
        let cell = |v: Option<f64>| v.map(|v| v.to_string()).unwrap_or_default();
        let result = (|| {
            for (i, ((lr, o), m)) in learning_rates.iter().zip(outcomes).zip(metrics).enumerate() {
                let target = o.target_epoch.map(|e| e.to_string()).unwrap_or_default();
                writeln!(
                    out,
                    "{},{lr},{},{target},{},{},{},{},{}",
                    first + i,
                    o.final_loss,
                    u8::from(o.diverged),
                    o.epochs_completed,
                    cell(m.train_accuracy),
                    cell(m.eval_loss),
                    cell(m.eval_accuracy)
                )?;
            }
            Ok(())
        })();
        result.map_err(|e| self.file.error(e))
    }

    pub fn finish(self) -> Result<(), Error> {
        self.file.persist()
    }
}
