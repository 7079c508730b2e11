//! How work is cut to fit the adapter: networks into chunks that respect the
//! buffer-binding and dispatch limits, dispatches into a 2-D grid beyond
//! 65,535 workgroups, and epochs into submissions short enough for progress
//! reports and GPU watchdogs.

use std::time::Duration;

/// The most bytes one network chunk's largest buffer may take, whatever
/// the adapter allows: keeps a 10-million-network run from asking a small
/// GPU for one enormous allocation.
pub const MAX_CHUNK_BUFFER_BYTES: u64 = 1 << 30;

/// Networks per chunk: as many as the largest per-network buffer
/// (`bytes_per_network` of it per network) allows within the binding and
/// buffer limits, the dispatch grid, and an optional caller's cap.
pub fn network_chunk_capacity(
    limits: &wgpu::Limits,
    bytes_per_network: u64,
    workgroup_size: u32,
    networks: usize,
    cap: Option<usize>,
) -> usize {
    let max_bytes = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size)
        .min(MAX_CHUNK_BUFFER_BYTES);
    let by_memory = (max_bytes / bytes_per_network.max(1)) as usize;
    let dim = limits.max_compute_workgroups_per_dimension as u64;
    let by_grid = (dim * dim * workgroup_size as u64).min(usize::MAX as u64) as usize;
    networks
        .min(by_memory)
        .min(by_grid)
        .min(cap.unwrap_or(usize::MAX))
        .max(1)
}

/// A dispatch covering `invocations` invocations: (x, y) workgroups and the
/// number of invocations per grid row, which the kernel uses to turn its
/// 2-D id back into a network index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Grid {
    pub x: u32,
    pub y: u32,
    pub row_invocations: u32,
}

pub fn dispatch_grid(invocations: usize, workgroup_size: u32, max_per_dimension: u32) -> Grid {
    let groups = invocations.div_ceil(workgroup_size as usize).max(1);
    let x = groups.min(max_per_dimension as usize);
    let y = groups.div_ceil(x);
    Grid {
        x: x as u32,
        y: y as u32,
        row_invocations: x as u32 * workgroup_size,
    }
}

/// Chooses how many epochs go into the next submission. With a fixed size it
/// always answers that; otherwise it starts small and scales towards
/// `target` seconds per submission. Consecutive submissions of different
/// sizes give the time per epoch and the fixed time of a submission
/// (loading and storing every network's parameters); submissions are then
/// made long enough that the fixed time is at most a tenth of each. At a
/// million 2-2-2 networks on lavapipe one epoch costs 5 ms and the fixed
/// time 85 ms: aiming at 0.1 s alone kept submissions at one epoch and the
/// run at 1.0e7 network-epochs/s, where 100 epochs per submission give
/// 1.2e8.
#[derive(Clone, Debug)]
pub struct EpochChunker {
    fixed: Option<u32>,
    /// Most epochs one submission may run: the fused kernel loops over a
    /// submission's epochs inside the shader, so this is the adapter's
    /// loop limit ([`crate::gpu::AdapterQuirks::loop_limit`]).
    most: u32,
    target: Duration,
    next: u32,
    /// The previous submission: epochs and seconds.
    previous: Option<(u32, f64)>,
}

impl EpochChunker {
    /// The first submission is one epoch, the calibration: its time
    /// sizes the next (at most 8x larger), so every submission's expected
    /// time is known from a measured one and the stuck-device timeout
    /// ([`crate::gpu::options::submission_timeout`]) scales with the
    /// device's real speed; only the first waits on the fixed floor. (A
    /// first guess of a million network-epochs, 1,024 epochs for 1,000
    /// networks, took longer than that floor for a wide layered model on
    /// a loaded lavapipe, and a healthy device was reported lost.) No
    /// submission runs more than `most` epochs.
    pub fn new(fixed: Option<u32>, target: Duration, most: u32) -> Self {
        let most = most.max(1);
        Self {
            fixed,
            most,
            target,
            next: fixed.unwrap_or(1).clamp(1, most),
            previous: None,
        }
    }

    pub fn next_chunk(&self, remaining: u64) -> u32 {
        (self.next as u64).min(remaining) as u32
    }

    /// Records that `epochs` took `elapsed` and adapts the next size
    /// (growing at most 8x at a time so a slow start cannot overshoot).
    pub fn record(&mut self, epochs: u32, elapsed: Duration) {
        if self.fixed.is_some() || epochs == 0 {
            return;
        }
        let seconds = elapsed.as_secs_f64().max(1e-9);
        // A line through this submission and the previous one, when they
        // differ in size and time; else all of the time is per epoch.
        let line = self.previous.and_then(|(e0, t0)| {
            (epochs != e0 && (seconds - t0) * (epochs as f64 - e0 as f64) > 0.0).then(|| {
                let per_epoch = (seconds - t0) / (epochs as f64 - e0 as f64);
                let overhead = (seconds - per_epoch * epochs as f64).max(0.0);
                (per_epoch, overhead)
            })
        });
        let (per_epoch, overhead) = line.unwrap_or((seconds / epochs as f64, 0.0));
        let budget = self.target.as_secs_f64().max(10.0 * overhead);
        let ideal = ((budget - overhead) / per_epoch).clamp(1.0, 1e9) as u64;
        // Without a line yet, try a larger size once to find one.
        let explore = if line.is_none() && ideal <= epochs as u64 {
            2 * epochs as u64
        } else {
            1
        };
        let grown = ideal.max(explore).min(epochs as u64 * 8).max(1);
        self.next = grown.min(self.most as u64) as u32;
        self.previous = Some((epochs, seconds));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// llvmpipe's loop limit.
    const LLVMPIPE: u32 = 65_535;

    #[test]
    fn grid_switches_to_two_dimensions_beyond_the_limit() {
        let g = dispatch_grid(100, 64, 65_535);
        assert_eq!((g.x, g.y, g.row_invocations), (2, 1, 128));
        let g = dispatch_grid(10_000_000, 64, 65_535);
        assert_eq!(g.y, 3);
        assert!(g.x as usize * g.y as usize * 64 >= 10_000_000);
        let g = dispatch_grid(1000, 64, 4);
        assert_eq!((g.x, g.y, g.row_invocations), (4, 4, 256));
    }

    #[test]
    fn chunk_capacity_respects_limits_and_cap() {
        let limits = wgpu::Limits {
            max_storage_buffer_binding_size: 4000,
            ..wgpu::Limits::default()
        };
        assert_eq!(network_chunk_capacity(&limits, 40, 64, 1_000, None), 100);
        assert_eq!(network_chunk_capacity(&limits, 40, 64, 50, None), 50);
        assert_eq!(network_chunk_capacity(&limits, 40, 64, 1_000, Some(7)), 7);
    }

    #[test]
    fn epoch_chunker_grows_towards_target() {
        let mut c = EpochChunker::new(None, Duration::from_millis(100), LLVMPIPE);
        assert_eq!(c.next_chunk(1000), 1);
        c.record(1, Duration::from_millis(1));
        assert_eq!(c.next_chunk(1000), 8);
        c.record(8, Duration::from_millis(8));
        assert_eq!(c.next_chunk(1000), 64);
        c.record(64, Duration::from_millis(64));
        assert_eq!(c.next_chunk(1000), 100);
        let fixed = EpochChunker::new(Some(7), Duration::from_millis(100), LLVMPIPE);
        assert_eq!(fixed.next_chunk(3), 3);
        // A fast adapter: 1, 8, 64, ... up to the loop cap.
        let mut fast = EpochChunker::new(None, Duration::from_secs(10), LLVMPIPE);
        let mut sizes = Vec::new();
        for _ in 0..7 {
            sizes.push(fast.next_chunk(u64::MAX));
            fast.record(*sizes.last().unwrap(), Duration::from_micros(1));
        }
        assert_eq!(sizes, [1, 8, 64, 512, 4096, 32768, LLVMPIPE]);
        let fixed = EpochChunker::new(Some(1_000_000), Duration::from_millis(100), LLVMPIPE);
        assert_eq!(fixed.next_chunk(u64::MAX), LLVMPIPE);
        // Without a loop cap, a fast adapter's submissions keep growing.
        let mut uncapped = EpochChunker::new(None, Duration::from_secs(10), u32::MAX);
        for _ in 0..8 {
            uncapped.record(uncapped.next_chunk(u64::MAX), Duration::from_micros(1));
        }
        assert_eq!(uncapped.next_chunk(u64::MAX), 8u32.pow(8));
        let fixed = EpochChunker::new(Some(1_000_000), Duration::from_millis(100), u32::MAX);
        assert_eq!(fixed.next_chunk(u64::MAX), 1_000_000);
    }

    #[test]
    fn a_slow_device_is_sized_from_its_first_epoch_and_never_waits_past_its_timeout() {
        use crate::gpu::options::{DEVICE_WAIT_FLOOR, submission_timeout};
        // A device 10,000x slower than lavapipe at its best: 40 s an epoch
        // (a wide layered model on a loaded machine). The first submission
        // is one epoch; each later one is sized from what was measured, so
        // its real time stays within the timeout the driver gives it (the
        // slowest epoch so far times the epochs, DEVICE_WAIT_FACTOR over).
        let per_epoch = Duration::from_secs(40);
        let mut c = EpochChunker::new(None, Duration::from_millis(100), LLVMPIPE);
        let mut slowest: Option<Duration> = None;
        for n in 0..6 {
            let epochs = c.next_chunk(u64::MAX);
            if n == 0 {
                assert_eq!(epochs, 1, "the first submission calibrates");
            }
            let took = per_epoch * epochs;
            let timeout = submission_timeout(slowest.map(|s| s * epochs));
            assert!(
                took < timeout,
                "{epochs} epochs take {took:?}, timeout {timeout:?}"
            );
            if n == 0 {
                assert_eq!(timeout, DEVICE_WAIT_FLOOR);
            }
            c.record(epochs, took);
            slowest = Some(slowest.map_or(per_epoch, |s| s.max(per_epoch)));
        }
    }

    #[test]
    fn epoch_chunker_outgrows_a_fixed_submission_cost() {
        // 85 ms per submission plus 5 ms per epoch: one epoch already
        // takes about the 0.1 s target, so it tries two, sees the line,
        // and grows until the 85 ms is a tenth: (0.85 - 0.085) / 0.005.
        let cost = |e: u32| Duration::from_secs_f64(0.085 + 0.005 * e as f64);
        let mut c = EpochChunker::new(None, Duration::from_millis(100), LLVMPIPE);
        let mut sizes = Vec::new();
        for _ in 0..6 {
            let e = c.next_chunk(u64::MAX);
            sizes.push(e);
            c.record(e, cost(e));
        }
        assert_eq!(sizes[..5], [1, 2, 16, 128, 153]);
        assert!((152..=153).contains(&sizes[5]), "{sizes:?}");
        // A slow first submission (shader compilation, say): the larger
        // one is faster, which gives no line, so it explores again.
        let mut warm_up = EpochChunker::new(None, Duration::from_millis(100), LLVMPIPE);
        warm_up.record(1, Duration::from_millis(150));
        assert_eq!(warm_up.next_chunk(u64::MAX), 2);
        warm_up.record(2, cost(2));
        assert_eq!(warm_up.next_chunk(u64::MAX), 4);
        warm_up.record(4, cost(4));
        assert_eq!(warm_up.next_chunk(u64::MAX), 32);
    }
}
