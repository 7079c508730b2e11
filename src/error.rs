//! The library's typed errors. Every message names what is wrong and, where
//! there is one, the file, line, setting or kernel involved. Settings are
//! named as values ([`crate::setting`]) and spelled by the face that shows
//! the error: the command line's flags by default.

use std::path::PathBuf;

use crate::setting::render;
use crate::setting::settings::{ADAPTER, BACKEND};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid topology: {}", render(.0))]
    Topology(String),

    #[error("{}", render(.0))]
    Config(String),

    /// A data set that cannot be used. `line` is 1-based.
    #[error("{}{}: {}", origin.display(), line.map(|l| format!(":{l}")).unwrap_or_default(), render(message))]
    Data {
        origin: PathBuf,
        line: Option<usize>,
        message: String,
    },

    /// A data file whose first row is not as wide as the networks need
    /// (the networks' shape and the file disagree: a face names the
    /// setting that gave the shape). Later rows of another width are
    /// [`Error::Data`].
    #[error("{}:{line}: has {columns} columns, but {inputs} inputs + {targets} need {expected}", origin.display())]
    DataWidth {
        origin: PathBuf,
        line: usize,
        columns: usize,
        inputs: usize,
        /// What the targets take: "2 targets", "1 class column".
        targets: String,
        expected: usize,
    },

    /// A shard directory or file that `merge` cannot join.
    #[error("merge: {}: {}", path.display(), render(message))]
    Merge { path: PathBuf, message: String },

    #[error("initialisation: {}", render(.0))]
    Init(String),

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("weights file {}: {}", path.display(), render(message))]
    WeightsFile { path: PathBuf, message: String },

    #[error(
        "no GPU adapter found{detail}. Install a GPU driver with Vulkan support, or Mesa's \
         software driver (Debian/Ubuntu: apt-get install mesa-vulkan-drivers), or train on \
         the CPU ({}, or {} for the float64 reference)",
        render(&BACKEND.is("simd").to_string()),
        render(&BACKEND.is("cpu").to_string())
    )]
    NoAdapter { detail: String },

    /// A hardware GPU the system shows and wgpu does not reach (no Vulkan
    /// driver for it: [`crate::gpu::hardware`]), where the GPU was asked
    /// for. Holds the diagnosis with its fix.
    #[error("{diagnosis}. Or train on the CPU: {}", render(&BACKEND.is("simd").to_string()))]
    GpuUnreached { diagnosis: String },

    #[error("no adapter matches '{wanted}'; adapters found: {available}")]
    AdapterNotFound { wanted: String, available: String },

    #[error("could not open a device on adapter '{adapter}': {message}")]
    RequestDevice { adapter: String, message: String },

    /// A shader or pipeline failed validation or compilation.
    #[error("GPU kernel '{kernel}' failed to build: {message}")]
    Kernel { kernel: String, message: String },

    #[error("the GPU device was lost: {0}")]
    DeviceLost(String),

    /// A submission did not finish in the time allowed: the device is
    /// stuck or lost.
    #[error(
        "adapter '{adapter}' did not finish a submission within {waited:.1} s{}; the device \
         is stuck or lost (a GPU reset, a driver fault). Run again; if it recurs, try \
         {}, or {}",
        expected.map(|e| format!(" (expected about {e:.2} s)")).unwrap_or_default(),
        render(&ADAPTER.to_string()),
        render(&BACKEND.is("cpu").to_string())
    )]
    DeviceTimeout {
        adapter: String,
        waited: f64,
        expected: Option<f64>,
    },

    #[error("GPU error: {0}")]
    Gpu(String),

    #[error("does not fit on the GPU: {}", render(.0))]
    TooLarge(String),

    /// A run that cannot fit in host memory, refused before any work.
    #[error("not enough memory: {}", render(.0))]
    HostMemory(String),
}

impl Error {
    /// Helper for data-set errors.
    pub fn data(
        origin: impl Into<PathBuf>,
        line: Option<usize>,
        message: impl Into<String>,
    ) -> Self {
        Error::Data {
            origin: origin.into(),
            line,
            message: message.into(),
        }
    }
}
