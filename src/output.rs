//! Output files written whole or not at all: a temporary file next to the
//! target, then a rename. Also the per-network results CSV.

use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::Error;
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

/// Writes `bytes` to `path` atomically.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), Error> {
    let temporary = temporary_path(path);
    let result = (|| {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temporary);
        return Err(io_error(path, e));
    }
    Ok(())
}

/// One row per network: index, learning rate, final loss, target epoch
/// (empty if never reached), diverged (0/1), epochs completed (the run's
/// epochs unless it was interrupted).
pub fn results_csv(learning_rates: &[f64], outcomes: &[NetworkOutcome]) -> Vec<u8> {
    let mut out = String::with_capacity(48 * outcomes.len() + 64);
    out.push_str("network,learning_rate,final_loss,target_epoch,diverged,epochs_completed\n");
    for (i, (lr, o)) in learning_rates.iter().zip(outcomes).enumerate() {
        let target = o.target_epoch.map(|e| e.to_string()).unwrap_or_default();
        out.push_str(&format!(
            "{i},{lr},{},{target},{},{}\n",
            o.final_loss,
            u8::from(o.diverged),
            o.epochs_completed
        ));
    }
    out.into_bytes()
}
