//! Buffer plumbing both strategies share: binding tables and the layouts
//! and bind groups built from them, storage and readback buffers, reading a
//! buffer back.

use crate::error::Error;
use crate::gpu::device::GpuContext;
use crate::schedule::ScheduleConfig;

/// How a kernel reads one of its buffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// `var<uniform>`, with a dynamic offset when `dynamic_offset`.
    Uniform { dynamic_offset: bool },
    /// `var<storage, read>`.
    Read,
    /// `var<storage, read_write>`.
    ReadWrite,
}

/// One buffer a kernel binds. A kernel's bindings are a table whose index
/// is the `@binding` number in group 0; the bind group layout and the bind
/// group are both built from it, and `tests/shader_interface.rs` checks it
/// against the WGSL declarations through naga's reflection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    /// The WGSL variable's name.
    pub name: &'static str,
    pub access: Access,
}

impl Binding {
    fn layout_entry(&self, binding: u32) -> wgpu::BindGroupLayoutEntry {
        let ty = match self.access {
            Access::Uniform { .. } => wgpu::BufferBindingType::Uniform,
            Access::Read => wgpu::BufferBindingType::Storage { read_only: true },
            Access::ReadWrite => wgpu::BufferBindingType::Storage { read_only: false },
        };
        wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: matches!(
                    self.access,
                    Access::Uniform {
                        dynamic_offset: true
                    }
                ),
                min_binding_size: None,
            },
            count: None,
        }
    }
}

/// The bind group layout of `bindings` and a pipeline layout of just it.
pub fn layouts(
    ctx: &GpuContext,
    label: &str,
    bindings: &[Binding],
) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
    let entries: Vec<wgpu::BindGroupLayoutEntry> = bindings
        .iter()
        .enumerate()
        .map(|(i, b)| b.layout_entry(i as u32))
        .collect();
    let bind_group_layout = ctx
        .device
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries: &entries,
        });
    let pipeline_layout = ctx
        .device
        .create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(label),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
    (bind_group_layout, pipeline_layout)
}

/// The bind group of `bindings`, one resource per binding in the table's
/// order.
pub fn bind_group(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    bindings: &[Binding],
    resources: Vec<wgpu::BindingResource<'_>>,
) -> wgpu::BindGroup {
    assert_eq!(
        bindings.len(),
        resources.len(),
        "{label}: one resource per binding"
    );
    let entries: Vec<wgpu::BindGroupEntry> = resources
        .into_iter()
        .enumerate()
        .map(|(i, resource)| wgpu::BindGroupEntry {
            binding: i as u32,
            resource,
        })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

/// A storage buffer of `bytes` bytes (at least 4) with `extra` usages.
pub fn storage_buffer(
    ctx: &GpuContext,
    label: &str,
    bytes: u64,
    extra: wgpu::BufferUsages,
) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::STORAGE | extra,
        mapped_at_creation: false,
    })
}

/// A mappable buffer that receives copies for reading back.
pub fn readback_buffer(ctx: &GpuContext, bytes: u64) -> wgpu::Buffer {
    ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: bytes.max(4),
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// Waits for the submitted work, maps `readback` and hands its words to
/// `read`, then unmaps it.
pub fn read_back<T>(
    ctx: &GpuContext,
    readback: &wgpu::Buffer,
    read: impl FnOnce(&[u32]) -> T,
) -> Result<T, Error> {
    let slice = readback.slice(..);
    let (sender, receiver) = std::sync::mpsc::channel();
    slice.map_async(wgpu::MapMode::Read, move |r| {
        let _ = sender.send(r);
    });
    ctx.wait()?;
    receiver
        .recv()
        .map_err(|_| Error::Gpu("the readback was never mapped".into()))?
        .map_err(|e| Error::Gpu(format!("mapping the readback buffer failed: {e}")))?;
    let result = {
        let view = slice
            .get_mapped_range()
            .map_err(|e| Error::Gpu(format!("reading the readback buffer failed: {e}")))?;
        read(bytemuck::cast_slice(&view))
    };
    readback.unmap();
    Ok(result)
}

/// Records copies of `sources`, back to back, into `readback`.
pub fn copy_results(
    encoder: &mut wgpu::CommandEncoder,
    sources: &[&wgpu::Buffer],
    readback: &wgpu::Buffer,
) {
    let mut at = 0;
    for source in sources {
        encoder.copy_buffer_to_buffer(source, 0, readback, at, source.size());
        at += source.size();
    }
}

/// Splits the words of a readback filled by [`copy_results`] into one
/// slice per source, given the sources' sizes in bytes.
pub fn split_words<'w>(mut words: &'w [u32], sizes: &[u64]) -> Vec<&'w [u32]> {
    sizes
        .iter()
        .map(|&bytes| {
            let (head, tail) = words.split_at((bytes / 4) as usize);
            words = tail;
            head
        })
        .collect()
}

/// Epochs of a learning-rate schedule's table that one layered submission
/// reads: their float32 (scale, shift) pairs after the networks' rates in
/// the `learning_rates` buffer (128 KiB). A scheduled run's layered
/// submissions are at most this long.
pub const SCHEDULE_TABLE_EPOCHS: u32 = 1 << 14;

/// Bytes of the layered kernel's `learning_rates` buffer for `capacity`
/// networks: their rates, then the schedule's table where the run has
/// one.
pub fn learning_rates_bytes(schedule: &ScheduleConfig, capacity: usize) -> u64 {
    let table = match schedule.is_constant() {
        true => 0,
        false => 8 * SCHEDULE_TABLE_EPOCHS as u64,
    };
    4 * capacity as u64 + table
}

/// Writes the schedule's pairs of run epochs `epochs` into `buffer` from
/// byte `offset` on, one (scale, shift) pair at the start of each row of
/// `row_floats` floats (2: interleaved; 4: a uniform array of vec4s);
/// nothing for a constant rate.
pub fn write_schedule_table(
    ctx: &GpuContext,
    buffer: &wgpu::Buffer,
    offset: u64,
    schedule: &ScheduleConfig,
    epochs: std::ops::Range<u64>,
    row_floats: usize,
) {
    if schedule.is_constant() || epochs.is_empty() {
        return;
    }
    let pairs = schedule.table(epochs);
    let mut table = vec![0.0f32; pairs.len() / 2 * row_floats];
    for (row, pair) in table
        .chunks_exact_mut(row_floats)
        .zip(pairs.chunks_exact(2))
    {
        row[..2].copy_from_slice(pair);
    }
    assert!(
        offset + 4 * table.len() as u64 <= buffer.size(),
        "a submission reads at most the table's epochs"
    );
    ctx.queue
        .write_buffer(buffer, offset, bytemuck::cast_slice(&table));
}
