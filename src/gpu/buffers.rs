//! Buffer plumbing both strategies share: bind-group-layout entries,
//! storage buffers, reading a buffer back, and turning the kernels' status
//! words into [`NetworkOutcome`]s.

use crate::error::Error;
use crate::gpu::device::GpuContext;
use crate::model::ModelSpec;
use crate::training::NetworkOutcome;

/// Status word: no epoch reached the target loss.
pub const NOT_REACHED: u32 = u32::MAX;
/// State bit: the network's loss or a parameter became NaN or infinite.
pub const STATE_DIVERGED: u32 = 1;
/// Config flag: a target loss is set.
pub const FLAG_HAS_TARGET: u32 = 1;
/// Config flag: networks stop updating once they reach the target.
pub const FLAG_STOP_AT_TARGET: u32 = 2;

pub fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Storage { read_only },
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    }
}

pub fn uniform_entry(binding: u32, dynamic_offset: bool) -> wgpu::BindGroupLayoutEntry {
    wgpu::BindGroupLayoutEntry {
        binding,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: dynamic_offset,
            min_binding_size: None,
        },
        count: None,
    }
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

/// The flags word of a run's options.
pub fn option_flags(options: &crate::training::TrainOptions) -> u32 {
    let mut flags = 0;
    if options.target_loss.is_some() {
        flags |= FLAG_HAS_TARGET;
    }
    if options.stop_at_target {
        flags |= FLAG_STOP_AT_TARGET;
    }
    flags
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

/// Outcomes of the first `count` networks from the status words (target
/// epoch at `[n]`, state bits at `[stride + n]`) and the final losses.
pub fn outcomes(status: &[u32], stride: usize, loss: &[u32], count: usize) -> Vec<NetworkOutcome> {
    (0..count)
        .map(|n| NetworkOutcome {
            final_loss: f32::from_bits(loss[n]) as f64,
            target_epoch: (status[n] != NOT_REACHED).then_some(status[n]),
            diverged: status[stride + n] & STATE_DIVERGED != 0,
            epochs_completed: 0,
        })
        .collect()
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

/// The bind group layout from `entries` and a pipeline layout of just it.
pub fn layouts(
    ctx: &GpuContext,
    label: &str,
    entries: &[wgpu::BindGroupLayoutEntry],
) -> (wgpu::BindGroupLayout, wgpu::PipelineLayout) {
    let bind_group_layout = ctx
        .device
        .create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some(label),
            entries,
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

/// A bind group of `(binding, resource)` pairs.
pub fn bind_group(
    ctx: &GpuContext,
    label: &str,
    layout: &wgpu::BindGroupLayout,
    resources: &[(u32, wgpu::BindingResource<'_>)],
) -> wgpu::BindGroup {
    let entries: Vec<wgpu::BindGroupEntry> = resources
        .iter()
        .map(|(binding, resource)| wgpu::BindGroupEntry {
            binding: *binding,
            resource: resource.clone(),
        })
        .collect();
    ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: Some(label),
        layout,
        entries: &entries,
    })
}

/// Status words of a freshly uploaded chunk: `NOT_REACHED` target epochs,
/// then `words_per_network - 1` more zeroed words per network slot
/// (state bits, and for the layered kernels the epoch counter).
pub fn initial_status(capacity: usize, words_per_network: usize) -> Vec<u32> {
    let mut status = vec![NOT_REACHED; capacity];
    status.resize(words_per_network * capacity, 0);
    status
}

/// Records copies of `params`, `status` and `final_loss`, back to back,
/// into `readback`.
pub fn copy_results(
    encoder: &mut wgpu::CommandEncoder,
    params: &wgpu::Buffer,
    status: &wgpu::Buffer,
    final_loss: &wgpu::Buffer,
    readback: &wgpu::Buffer,
) {
    let (p, s) = (params.size(), status.size());
    encoder.copy_buffer_to_buffer(params, 0, readback, 0, p);
    encoder.copy_buffer_to_buffer(status, 0, readback, p, s);
    encoder.copy_buffer_to_buffer(final_loss, 0, readback, p + s, final_loss.size());
}

/// Which parameters the kernels leave alone (frozen biases); the readback
/// keeps their exact float64 values.
pub fn frozen_parameters(spec: &ModelSpec) -> Vec<bool> {
    let layout = spec.layout();
    (0..layout.len)
        .map(|i| spec.freeze_bias && layout.is_bias(i))
        .collect()
}
