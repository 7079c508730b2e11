//! The GPU backend: adapter and device setup ([`device`]), the WGSL sources
//! and pipeline building ([`shaders`]), work splitting ([`chunking`]) and the
//! fused strategy ([`fused`], with its code generator [`fused_codegen`]).

pub mod chunking;
pub mod device;
pub mod fused;
pub mod fused_codegen;
pub mod shaders;

pub use device::{AdapterChoice, AdapterSummary, GpuContext, list_adapters};
pub use fused::{FusedTrainer, GpuOptions, fused_supports};
