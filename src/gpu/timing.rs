//! GPU time of the training submissions from timestamp queries: each
//! submission's compute pass writes a timestamp at its start and end, the
//! pair is resolved into a buffer and read back after the submission
//! completes, and the differences are summed. Set against wall time, the
//! sum shows how much of a run is kernel time and how much overhead.

use std::cell::Cell;

use crate::error::Error;
use crate::gpu::buffers::read_back;
use crate::gpu::device::GpuContext;

/// Bytes of the two resolved timestamps (8 each), padded to the resolve
/// alignment.
const RESOLVE_BYTES: u64 = wgpu::QUERY_RESOLVE_BUFFER_ALIGNMENT;

/// Sums the time the device spent inside timed compute passes.
pub struct PassTimer {
    query_set: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
    nanoseconds_per_tick: f64,
    total_nanoseconds: Cell<f64>,
}

impl PassTimer {
    /// A timer, or `None` where the adapter has no timestamp queries (the
    /// device was opened with them whenever the adapter offers them).
    pub fn new(ctx: &GpuContext) -> Option<Self> {
        if !ctx.timestamp_queries {
            return None;
        }
        let device = &ctx.device;
        let query_set = device.create_query_set(&wgpu::QuerySetDescriptor {
            label: Some("pass timestamps"),
            ty: wgpu::QueryType::Timestamp,
            count: 2,
        });
        let resolved = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("resolved timestamps"),
            size: RESOLVE_BYTES,
            usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("timestamp readback"),
            size: RESOLVE_BYTES,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Some(Self {
            query_set,
            resolved,
            readback,
            nanoseconds_per_tick: ctx.queue.get_timestamp_period() as f64,
            total_nanoseconds: Cell::new(0.0),
        })
    }

    /// The timestamp writes for a compute pass's descriptor.
    pub fn pass_writes(&self) -> wgpu::ComputePassTimestampWrites<'_> {
        wgpu::ComputePassTimestampWrites {
            query_set: &self.query_set,
            beginning_of_pass_write_index: Some(0),
            end_of_pass_write_index: Some(1),
        }
    }

    /// Records, after the timed pass, the copy of its timestamps to where
    /// [`PassTimer::collect`] reads them.
    pub fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.query_set, 0..2, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.readback, 0, 16);
    }

    /// Waits for the submission holding the timed pass and adds its
    /// duration to the total.
    pub fn collect(&self, ctx: &GpuContext) -> Result<(), Error> {
        let ticks = read_back(ctx, &self.readback, |words| {
            let stamp = |i: usize| words[2 * i] as u64 | (words[2 * i + 1] as u64) << 32;
            stamp(1).saturating_sub(stamp(0))
        })?;
        self.total_nanoseconds
            .set(self.total_nanoseconds.get() + ticks as f64 * self.nanoseconds_per_tick);
        Ok(())
    }

    /// Seconds inside the timed passes so far.
    pub fn seconds(&self) -> f64 {
        self.total_nanoseconds.get() * 1e-9
    }
}

/// A compute pass descriptor with `timer`'s writes, if there is a timer.
pub fn pass_descriptor(timer: Option<&PassTimer>) -> wgpu::ComputePassDescriptor<'_> {
    wgpu::ComputePassDescriptor {
        label: None,
        timestamp_writes: timer.map(PassTimer::pass_writes),
    }
}
