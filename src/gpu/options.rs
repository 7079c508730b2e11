//! The GPU trainers' tuning knobs, in one place with their defaults. A leaf
//! module: the driver and both strategies read it, it reads neither.

use std::time::Duration;

use clap::ValueEnum;

/// How the layered kernels are written. Both do the same arithmetic in the
/// same order per element, so they agree to float32 rounding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LayeredVariant {
    /// Matrix products through 16 x 16 workgroup-memory tiles, sums as
    /// 256-invocation workgroup reductions: operand reuse for GPUs.
    Tiled,
    /// Matrix products with one invocation per output element, operands
    /// straight from memory, no barriers (the sums stay workgroup
    /// reductions). On lavapipe each workgroup barrier costs a context
    /// switch per 8 invocations: a 3-7-5 network on 6 samples took 425 us
    /// per network-epoch tiled and 12 us direct.
    Direct,
}

impl LayeredVariant {
    /// Direct on CPU adapters (lavapipe, llvmpipe, WARP), tiled elsewhere.
    pub fn for_adapter(device_type: &str) -> Self {
        if device_type == "Cpu" {
            LayeredVariant::Direct
        } else {
            LayeredVariant::Tiled
        }
    }
}

crate::display_as_value_name!(LayeredVariant);

/// Tuning knobs of the GPU trainers; the defaults suit every adapter.
#[derive(Clone, Debug)]
pub struct GpuOptions {
    /// Most networks resident at once (default: as many as the limits allow).
    pub max_networks_per_chunk: Option<usize>,
    /// Epochs per submission (default: adaptive, see `submission_target`).
    pub epochs_per_submission: Option<u32>,
    /// Wall time one submission aims for.
    pub submission_target: Duration,
    /// Caps workgroups per grid dimension below the adapter's limit (tests
    /// use it to exercise the 2-D grid with few networks).
    pub max_workgroups_per_dimension: Option<u32>,
    /// The layered kernels' variant (default: by adapter type, see
    /// [`LayeredVariant::for_adapter`]).
    pub layered_variant: Option<LayeredVariant>,
    /// Time every training submission's compute pass with timestamp
    /// queries (where the adapter has them); see
    /// [`crate::trainer::Trained::kernel_seconds`].
    pub kernel_timing: bool,
    /// Longest wait for one submission before the device counts as stuck
    /// or lost (default: [`submission_timeout`] of the expected time).
    pub device_timeout: Option<Duration>,
}

/// The shortest time a wait on the device may take before it is an error:
/// generous, so that a slow first submission (a big chunk, a software
/// adapter) is never mistaken for a stuck device.
pub const DEVICE_WAIT_FLOOR: Duration = Duration::from_secs(300);

/// Times the expected duration a submission may take before the device
/// counts as stuck.
pub const DEVICE_WAIT_FACTOR: u32 = 20;

/// How long to wait for a submission expected to take `expected` (unknown
/// for the first): [`DEVICE_WAIT_FACTOR`] times that, at least
/// [`DEVICE_WAIT_FLOOR`].
pub fn submission_timeout(expected: Option<Duration>) -> Duration {
    expected.map_or(DEVICE_WAIT_FLOOR, |e| {
        (e * DEVICE_WAIT_FACTOR).max(DEVICE_WAIT_FLOOR)
    })
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            max_networks_per_chunk: None,
            epochs_per_submission: None,
            submission_target: Duration::from_millis(100),
            max_workgroups_per_dimension: None,
            layered_variant: None,
            kernel_timing: false,
            device_timeout: None,
        }
    }
}

impl GpuOptions {
    /// Workgroups per grid dimension: the adapter's limit, or the cap.
    pub fn workgroups_per_dimension(&self, limits: &wgpu::Limits) -> u32 {
        let limit = limits.max_compute_workgroups_per_dimension;
        self.max_workgroups_per_dimension
            .map_or(limit, |m| m.clamp(1, limit))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_wait_scales_with_the_expected_time_above_a_floor() {
        assert_eq!(submission_timeout(None), DEVICE_WAIT_FLOOR);
        assert_eq!(
            submission_timeout(Some(Duration::from_secs(1))),
            DEVICE_WAIT_FLOOR
        );
        assert_eq!(
            submission_timeout(Some(Duration::from_secs(60))),
            Duration::from_secs(60 * DEVICE_WAIT_FACTOR as u64)
        );
    }
}
