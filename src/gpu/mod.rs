//! The GPU backend. Leaves first: adapter and device setup ([`device`]),
//! per-adapter quirks ([`quirks`]), a GPU the system shows that wgpu
//! cannot reach ([`hardware`]), tuning knobs ([`options`]), the
//! kernel/host status protocol ([`status`]), the WGSL sources and their
//! assembly ([`shaders`]), buffer plumbing ([`buffers`]), work splitting
//! ([`chunking`]), kernel timing ([`timing`]); then the loop both
//! strategies share ([`driver`]), the fused strategy ([`fused`], with its
//! code generator [`fused_codegen`]), the layered one ([`layered`]) and
//! forward passes for prediction ([`predict`]); last [`strategy`], whose
//! [`GpuTrainer`] is the one public way to train on the GPU.

pub mod buffers;
pub mod chunking;
pub mod device;
pub mod driver;
pub mod fused;
pub mod fused_codegen;
pub mod hardware;
pub mod layered;
pub mod options;
pub mod predict;
pub mod quirks;
pub mod shaders;
pub mod status;
pub mod strategy;
pub mod timing;

pub use device::{AdapterChoice, AdapterSummary, GpuContext, chosen_adapter, list_adapters};
pub use fused::fused_supports;
pub use layered::LayeredPlan;
pub use options::{GpuOptions, LayeredVariant};
pub use predict::{GpuPredictor, predict_supports};
pub use quirks::AdapterQuirks;
pub use strategy::{GpuTrainer, Strategy, choose_strategy};
