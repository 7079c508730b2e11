//! The GPU backend: adapter and device setup ([`device`]), the WGSL sources
//! and pipeline building ([`shaders`]), buffer plumbing ([`buffers`]), work
//! splitting ([`chunking`]) and the shared training loop ([`driver`]), the
//! fused strategy ([`fused`], with its code generator [`fused_codegen`]),
//! the layered strategy ([`layered`]), the choice between them
//! ([`strategy`]) and kernel timing with timestamp queries ([`timing`]).

pub mod buffers;
pub mod chunking;
pub mod device;
pub mod driver;
pub mod fused;
pub mod fused_codegen;
pub mod layered;
pub mod shaders;
pub mod strategy;
pub mod timing;

pub use device::{AdapterChoice, AdapterSummary, GpuContext, list_adapters};
pub use driver::{GpuOptions, GpuRun};
pub use fused::{FusedTrainer, fused_supports};
pub use layered::{LayeredPlan, LayeredTrainer, LayeredVariant};
pub use strategy::{GpuTrainer, Strategy, choose_strategy};
pub use timing::PassTimer;
