//! The fused GPU strategy: one invocation per network runs whole chunks of
//! epochs inside `shaders/fused_train.wgsl`. Pipelines, bind group and
//! buffers are built once per run; each epoch chunk only writes the small
//! config uniform, encodes one dispatch and submits.

use std::time::{Duration, Instant};

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::data::Dataset;
use crate::error::Error;
use crate::gpu::chunking::{EpochChunker, Grid, dispatch_grid, network_chunk_capacity};
use crate::gpu::device::GpuContext;
use crate::gpu::fused_codegen::{FUSED_MAX_PARAMETERS, FusedShape, WORKGROUP_SIZE};
use crate::gpu::shaders;
use crate::model::ModelSpec;
use crate::training::{NetworkOutcome, Progress, TrainOptions};

const KERNEL: &str = "fused_train.wgsl";
const NOT_REACHED: u32 = u32::MAX;
const STATE_DIVERGED: u32 = 1;
const FLAG_HAS_TARGET: u32 = 1;
const FLAG_STOP_AT_TARGET: u32 = 2;

/// Keep in sync with `FusedConfig` in shaders/fused_train.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct FusedConfig {
    network_count: u32,
    stride: u32,
    epoch_base: u32,
    epoch_count: u32,
    target_loss: f32,
    flags: u32,
    grid_width: u32,
    _pad: u32,
}

/// Tuning knobs of the GPU trainer; the defaults suit every adapter.
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
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            max_networks_per_chunk: None,
            epochs_per_submission: None,
            submission_target: Duration::from_millis(100),
            max_workgroups_per_dimension: None,
        }
    }
}

/// Whether the fused kernel can hold this network.
pub fn fused_supports(spec: &ModelSpec) -> Result<(), Error> {
    let p = spec.layout().len;
    if p > FUSED_MAX_PARAMETERS {
        return Err(Error::TooLarge(format!(
            "a {} network has {p} parameters; the fused GPU kernel holds at most \
             {FUSED_MAX_PARAMETERS} per network (use --backend cpu for larger networks)",
            spec.topology
        )));
    }
    Ok(())
}

struct Buffers {
    config: wgpu::Buffer,
    learning_rates: wgpu::Buffer,
    params: wgpu::Buffer,
    status: wgpu::Buffer,
    final_loss: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// Pipelines and buffers for one run of the fused kernel.
pub struct FusedTrainer<'a> {
    ctx: &'a GpuContext,
    spec: ModelSpec,
    parameter_count: usize,
    capacity: usize,
    train: wgpu::ComputePipeline,
    evaluate: wgpu::ComputePipeline,
    buffers: Buffers,
}

fn storage_entry(binding: u32, read_only: bool) -> wgpu::BindGroupLayoutEntry {
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

impl<'a> FusedTrainer<'a> {
    /// Builds the kernel for `spec` and `data` and buffers for up to
    /// `networks` networks at once (fewer if the adapter's limits say so).
    pub fn new(
        ctx: &'a GpuContext,
        spec: &ModelSpec,
        data: &Dataset,
        networks: usize,
        options: &GpuOptions,
    ) -> Result<Self, Error> {
        fused_supports(spec)?;
        let parameter_count = spec.layout().len;
        let shape = FusedShape { spec, data };
        let source = shaders::assemble(KERNEL, &shape.constants(), |m| shape.fragment(m))?;

        let device = &ctx.device;
        let layout_entries = [
            wgpu::BindGroupLayoutEntry {
                binding: 0,
                visibility: wgpu::ShaderStages::COMPUTE,
                ty: wgpu::BindingType::Buffer {
                    ty: wgpu::BufferBindingType::Uniform,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            },
            storage_entry(1, true),
            storage_entry(2, true),
            storage_entry(3, false),
            storage_entry(4, false),
            storage_entry(5, false),
        ];
        let bind_group_layout = device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
            label: Some("fused_train"),
            entries: &layout_entries,
        });
        let pipeline_layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some("fused_train"),
            bind_group_layouts: &[Some(&bind_group_layout)],
            immediate_size: 0,
        });
        let mut pipelines = shaders::build_pipelines(
            ctx,
            KERNEL,
            &source,
            &pipeline_layout,
            &["train", "evaluate"],
        )?;
        let evaluate = pipelines.pop().expect("two pipelines");
        let train = pipelines.pop().expect("two pipelines");

        // Samples as f32: inputs then targets, sample after sample.
        let samples: Vec<f32> = (0..data.samples())
            .flat_map(|s| data.input(s).iter().chain(data.target(s)))
            .map(|&v| v as f32)
            .collect();
        let sample_bytes = std::mem::size_of_val(samples.as_slice()) as u64;
        if sample_bytes > ctx.limits.max_storage_buffer_binding_size {
            return Err(Error::TooLarge(format!(
                "the data set takes {sample_bytes} bytes; adapter '{}' binds at most {}",
                ctx.adapter.name, ctx.limits.max_storage_buffer_binding_size
            )));
        }

        let per_network = 4 * parameter_count.max(2) as u64;
        let capacity = network_chunk_capacity(
            &ctx.limits,
            per_network,
            WORKGROUP_SIZE,
            networks,
            options.max_networks_per_chunk,
        );
        let storage = |label: &str, bytes: usize, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes as u64,
                usage: wgpu::BufferUsages::STORAGE | usage,
                mapped_at_creation: false,
            })
        };
        let copy_both = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let params_bytes = 4 * parameter_count * capacity;
        let status_bytes = 8 * capacity;
        let loss_bytes = 4 * capacity;
        let config = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("fused config"),
            size: std::mem::size_of::<FusedConfig>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let samples_buffer = device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("samples"),
            contents: bytemuck::cast_slice(&samples),
            usage: wgpu::BufferUsages::STORAGE,
        });
        let learning_rates = storage("learning rates", 4 * capacity, wgpu::BufferUsages::COPY_DST);
        let params = storage("parameters", params_bytes, copy_both);
        let status = storage("status", status_bytes, copy_both);
        let final_loss = storage("final loss", loss_bytes, wgpu::BufferUsages::COPY_SRC);
        let readback = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("readback"),
            size: (params_bytes + status_bytes + loss_bytes) as u64,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("fused_train"),
            layout: &bind_group_layout,
            entries: &[
                (0, &config),
                (1, &samples_buffer),
                (2, &learning_rates),
                (3, &params),
                (4, &status),
                (5, &final_loss),
            ]
            .map(|(binding, buffer)| wgpu::BindGroupEntry {
                binding,
                resource: buffer.as_entire_binding(),
            }),
        });
        Ok(Self {
            ctx,
            spec: spec.clone(),
            parameter_count,
            capacity,
            train,
            evaluate,
            buffers: Buffers {
                config,
                learning_rates,
                params,
                status,
                final_loss,
                readback,
                bind_group,
            },
        })
    }

    /// Networks trained at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Trains every network; `params` holds the parameter vectors back to
    /// back and receives the trained ones.
    pub fn train(
        &self,
        params: &mut [f64],
        learning_rates: &[f64],
        options: &TrainOptions,
        gpu: &GpuOptions,
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<Vec<NetworkOutcome>, Error> {
        options.validate()?;
        let p = self.parameter_count;
        assert_eq!(
            params.len(),
            p * learning_rates.len(),
            "one parameter vector per learning rate"
        );
        let total = learning_rates.len();
        let mut outcomes = Vec::with_capacity(total);
        let mut report = Progress {
            network_epochs_done: 0,
            network_epochs_total: total as u64 * options.epochs,
        };
        let mut chunker = EpochChunker::new(
            gpu.epochs_per_submission,
            gpu.submission_target,
            total.min(self.capacity),
        );
        for first in (0..total).step_by(self.capacity) {
            let count = self.capacity.min(total - first);
            let chunk_params = &mut params[first * p..(first + count) * p];
            self.upload(chunk_params, &learning_rates[first..first + count]);
            let max_groups = self.ctx.limits.max_compute_workgroups_per_dimension;
            let max_groups = gpu
                .max_workgroups_per_dimension
                .map_or(max_groups, |m| m.clamp(1, max_groups));
            let grid = dispatch_grid(count, WORKGROUP_SIZE, max_groups);
            let mut done = 0u64;
            while done < options.epochs {
                let epochs = chunker.next_chunk(options.epochs - done);
                let started = Instant::now();
                self.dispatch(
                    &self.train,
                    grid,
                    count,
                    done as u32,
                    epochs,
                    options,
                    false,
                );
                self.ctx.wait()?;
                chunker.record(epochs, started.elapsed());
                done += epochs as u64;
                report.network_epochs_done += count as u64 * epochs as u64;
                progress(&report);
            }
            self.dispatch(
                &self.evaluate,
                grid,
                count,
                options.epochs as u32,
                0,
                options,
                true,
            );
            outcomes.extend(self.download(chunk_params, count)?);
        }
        Ok(outcomes)
    }

    fn upload(&self, params: &[f64], learning_rates: &[f64]) {
        let (p, cap) = (self.parameter_count, self.capacity);
        let mut soa = vec![0f32; p * cap];
        for (n, net) in params.chunks_exact(p).enumerate() {
            for (i, v) in net.iter().enumerate() {
                soa[i * cap + n] = *v as f32;
            }
        }
        let lrs: Vec<f32> = learning_rates.iter().map(|&v| v as f32).collect();
        let mut status = vec![NOT_REACHED; cap];
        status.resize(2 * cap, 0);
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.buffers.params, 0, bytemuck::cast_slice(&soa));
        queue.write_buffer(&self.buffers.learning_rates, 0, bytemuck::cast_slice(&lrs));
        queue.write_buffer(&self.buffers.status, 0, bytemuck::cast_slice(&status));
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call site per entry point; a struct would only rename these"
    )]
    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        grid: Grid,
        count: usize,
        epoch_base: u32,
        epoch_count: u32,
        options: &TrainOptions,
        with_readback: bool,
    ) {
        let mut flags = 0;
        if options.target_loss.is_some() {
            flags |= FLAG_HAS_TARGET;
        }
        if options.stop_at_target {
            flags |= FLAG_STOP_AT_TARGET;
        }
        let config = FusedConfig {
            network_count: count as u32,
            stride: self.capacity as u32,
            epoch_base,
            epoch_count,
            target_loss: options.target_loss.unwrap_or(0.0) as f32,
            flags,
            grid_width: grid.row_invocations,
            _pad: 0,
        };
        self.ctx
            .queue
            .write_buffer(&self.buffers.config, 0, bytemuck::bytes_of(&config));
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &self.buffers.bind_group, &[]);
            pass.dispatch_workgroups(grid.x, grid.y, 1);
        }
        if with_readback {
            let b = &self.buffers;
            let (params, status) = (b.params.size(), b.status.size());
            encoder.copy_buffer_to_buffer(&b.params, 0, &b.readback, 0, params);
            encoder.copy_buffer_to_buffer(&b.status, 0, &b.readback, params, status);
            encoder.copy_buffer_to_buffer(
                &b.final_loss,
                0,
                &b.readback,
                params + status,
                b.final_loss.size(),
            );
        }
        self.ctx.queue.submit([encoder.finish()]);
    }

    fn download(&self, params: &mut [f64], count: usize) -> Result<Vec<NetworkOutcome>, Error> {
        let (p, cap) = (self.parameter_count, self.capacity);
        let slice = self.buffers.readback.slice(..);
        let (sender, receiver) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = sender.send(r);
        });
        self.ctx.wait()?;
        receiver
            .recv()
            .map_err(|_| Error::Gpu("the readback was never mapped".into()))?
            .map_err(|e| Error::Gpu(format!("mapping the readback buffer failed: {e}")))?;
        let outcomes = {
            let view = slice
                .get_mapped_range()
                .map_err(|e| Error::Gpu(format!("reading the readback buffer failed: {e}")))?;
            let words: &[u32] = bytemuck::cast_slice(&view);
            let (soa, rest) = words.split_at(p * cap);
            let (status, loss) = rest.split_at(2 * cap);
            let layout = self.spec.layout();
            let frozen: Vec<bool> = (0..p)
                .map(|i| self.spec.freeze_bias && layout.is_bias(i))
                .collect();
            for (n, net) in params.chunks_exact_mut(p).enumerate().take(count) {
                for (i, v) in net.iter_mut().enumerate() {
                    // Frozen biases keep their exact float64 value.
                    if !frozen[i] {
                        *v = f32::from_bits(soa[i * cap + n]) as f64;
                    }
                }
            }
            (0..count)
                .map(|n| NetworkOutcome {
                    final_loss: f32::from_bits(loss[n]) as f64,
                    target_epoch: (status[n] != NOT_REACHED).then_some(status[n]),
                    diverged: status[cap + n] & STATE_DIVERGED != 0,
                })
                .collect()
        };
        self.buffers.readback.unmap();
        Ok(outcomes)
    }
}
