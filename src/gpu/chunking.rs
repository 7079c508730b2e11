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
    /// `network_count` sets the first guess: about a million
    /// network-epochs, which is milliseconds on any adapter. No submission
    /// runs more than `most` epochs.
    pub fn new(fixed: Option<u32>, target: Duration, network_count: usize, most: u32) -> Self {
        let first = (1_000_000 / network_count.max(1)).clamp(1, 1024) as u32;
        let most = most.max(1);
        Self {
            fixed,
            most,
            target,
            next: fixed.unwrap_or(first).clamp(1, most),
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
        let mut c = EpochChunker::new(None, Duration::from_millis(100), 1_000_000, LLVMPIPE);
        assert_eq!(c.next_chunk(1000), 1);
        c.record(1, Duration::from_millis(1));
        assert_eq!(c.next_chunk(1000), 8);
        c.record(8, Duration::from_millis(8));
        assert_eq!(c.next_chunk(1000), 64);
        c.record(64, Duration::from_millis(64));
        assert_eq!(c.next_chunk(1000), 100);
        let fixed = EpochChunker::new(Some(7), Duration::from_millis(100), 10, LLVMPIPE);
        assert_eq!(fixed.next_chunk(3), 3);
        let mut fast = EpochChunker::new(None, Duration::from_secs(10), 1, LLVMPIPE);
        fast.record(1024, Duration::from_micros(1));
        assert_eq!(fast.next_chunk(u64::MAX), 8192);
        fast.record(8192, Duration::from_micros(1));
        assert_eq!(fast.next_chunk(u64::MAX), LLVMPIPE);
        let fixed = EpochChunker::new(Some(1_000_000), Duration::from_millis(100), 10, LLVMPIPE);
        assert_eq!(fixed.next_chunk(u64::MAX), LLVMPIPE);
        // Without a loop cap, a fast adapter's submissions keep growing.
        let mut uncapped = EpochChunker::new(None, Duration::from_secs(10), 1, u32::MAX);
        for _ in 0..4 {
            uncapped.record(uncapped.next_chunk(u64::MAX), Duration::from_micros(1));
        }
        assert_eq!(uncapped.next_chunk(u64::MAX), 1024 * 8 * 8 * 8 * 8);
        let fixed = EpochChunker::new(Some(1_000_000), Duration::from_millis(100), 10, u32::MAX);
        assert_eq!(fixed.next_chunk(u64::MAX), 1_000_000);
    }

    #[test]
    fn epoch_chunker_outgrows_a_fixed_submission_cost() {
        // 85 ms per submission plus 5 ms per epoch: one epoch already
        // takes about the 0.1 s target, so it tries two, sees the line,
        // and grows until the 85 ms is a tenth: (0.85 - 0.085) / 0.005.
        let cost = |e: u32| Duration::from_secs_f64(0.085 + 0.005 * e as f64);
        let mut c = EpochChunker::new(None, Duration::from_millis(100), 1_000_000, LLVMPIPE);
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
        let mut warm_up = EpochChunker::new(None, Duration::from_millis(100), 1_000_000, LLVMPIPE);
        warm_up.record(1, Duration::from_millis(150));
        assert_eq!(warm_up.next_chunk(u64::MAX), 2);
        warm_up.record(2, cost(2));
        assert_eq!(warm_up.next_chunk(u64::MAX), 4);
        warm_up.record(4, cost(4));
        assert_eq!(warm_up.next_chunk(u64::MAX), 32);
    }
}
