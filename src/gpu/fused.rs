//! The fused GPU strategy: one invocation per network runs whole chunks of
//! epochs inside `shaders/fused_train.wgsl`. Pipelines, bind group and
//! buffers are built once per run; each epoch chunk only writes the small
//! config uniform, encodes one dispatch and submits.

use std::ops::ControlFlow;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::data::Dataset;
use crate::error::Error;
use crate::gpu::buffers::{self, option_flags, storage_buffer, storage_entry, uniform_entry};
use crate::gpu::chunking::{Grid, dispatch_grid, network_chunk_capacity};
use crate::gpu::device::GpuContext;
use crate::gpu::driver::{ChunkKernel, GpuOptions, train_chunked};
use crate::gpu::fused_codegen::{FUSED_MAX_PARAMETERS, FusedShape, WORKGROUP_SIZE};
use crate::gpu::shaders;
use crate::gpu::timing::{PassTimer, pass_descriptor};
use crate::model::ModelSpec;
use crate::training::{NetworkOutcome, Progress, TrainOptions};

const KERNEL: &str = "fused_train.wgsl";

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

/// Most samples the fused kernel's sample loop may run over: llvmpipe
/// ends any shader loop after 65,535 iterations without a word.
pub const FUSED_MAX_SAMPLES: usize = 65_535;

/// Whether the fused kernel can hold this network and loop over `samples`.
pub fn fused_supports(spec: &ModelSpec, samples: usize) -> Result<(), Error> {
    let p = spec.layout().len;
    if p > FUSED_MAX_PARAMETERS {
        return Err(Error::TooLarge(format!(
            "a {} network has {p} parameters; the fused GPU kernel holds at most \
             {FUSED_MAX_PARAMETERS} per network (use --kernel layered or auto)",
            spec.topology
        )));
    }
    if samples > FUSED_MAX_SAMPLES {
        return Err(Error::TooLarge(format!(
            "{samples} samples; the fused GPU kernel loops over at most {FUSED_MAX_SAMPLES} \
             (use --kernel layered or auto)"
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
    max_workgroups_per_dimension: u32,
    train: wgpu::ComputePipeline,
    evaluate: wgpu::ComputePipeline,
    buffers: Buffers,
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
        fused_supports(spec, data.samples())?;
        let parameter_count = spec.layout().len;
        let shape = FusedShape { spec, data };
        let source = shaders::assemble(KERNEL, &shape.constants(), |m| shape.fragment(m))?;

        let (bind_group_layout, pipeline_layout) = buffers::layouts(
            ctx,
            "fused_train",
            &[
                uniform_entry(0, false),
                storage_entry(1, true),
                storage_entry(2, true),
                storage_entry(3, false),
                storage_entry(4, false),
                storage_entry(5, false),
            ],
        );
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
        let device = &ctx.device;
        let copy_both = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let params_bytes = 4 * (parameter_count * capacity) as u64;
        let status_bytes = 8 * capacity as u64;
        let loss_bytes = 4 * capacity as u64;
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
        let rates_bytes = 4 * capacity as u64;
        let learning_rates = storage_buffer(ctx, "learning rates", rates_bytes, copy_both);
        let params = storage_buffer(ctx, "parameters", params_bytes, copy_both);
        let status = storage_buffer(ctx, "status", status_bytes, copy_both);
        let final_loss = storage_buffer(ctx, "final loss", loss_bytes, copy_both);
        let readback = buffers::readback_buffer(ctx, params_bytes + status_bytes + loss_bytes);
        let bind_group = buffers::bind_group(
            ctx,
            "fused_train",
            &bind_group_layout,
            &[
                (0, config.as_entire_binding()),
                (1, samples_buffer.as_entire_binding()),
                (2, learning_rates.as_entire_binding()),
                (3, params.as_entire_binding()),
                (4, status.as_entire_binding()),
                (5, final_loss.as_entire_binding()),
            ],
        );
        Ok(Self {
            ctx,
            spec: spec.clone(),
            parameter_count,
            capacity,
            max_workgroups_per_dimension: options.workgroups_per_dimension(&ctx.limits),
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
    /// back and receives the trained ones. See [`train_chunked`] for what
    /// `progress` answering `Break` does.
    pub fn train(
        &self,
        params: &mut [f64],
        learning_rates: &[f64],
        options: &TrainOptions,
        gpu: &GpuOptions,
        progress: &mut dyn FnMut(&Progress) -> ControlFlow<()>,
    ) -> Result<Vec<NetworkOutcome>, Error> {
        train_chunked(self, params, learning_rates, options, gpu, progress).map(|r| r.outcomes)
    }

    fn grid(&self, count: usize) -> Grid {
        dispatch_grid(count, WORKGROUP_SIZE, self.max_workgroups_per_dimension)
    }

    fn dispatch(
        &self,
        pipeline: &wgpu::ComputePipeline,
        config: FusedConfig,
        grid: Grid,
        with_readback: bool,
        timer: Option<&PassTimer>,
    ) {
        self.ctx
            .queue
            .write_buffer(&self.buffers.config, 0, bytemuck::bytes_of(&config));
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&pass_descriptor(timer));
            pass.set_pipeline(pipeline);
            pass.set_bind_group(0, &self.buffers.bind_group, &[]);
            pass.dispatch_workgroups(grid.x, grid.y, 1);
        }
        if let Some(timer) = timer {
            timer.resolve(&mut encoder);
        }
        if with_readback {
            let b = &self.buffers;
            buffers::copy_results(
                &mut encoder,
                &b.params,
                &b.status,
                &b.final_loss,
                &b.readback,
            );
        }
        self.ctx.queue.submit([encoder.finish()]);
    }

    fn config(
        &self,
        count: usize,
        epoch_base: u32,
        epoch_count: u32,
        options: &TrainOptions,
    ) -> FusedConfig {
        FusedConfig {
            network_count: count as u32,
            stride: self.capacity as u32,
            epoch_base,
            epoch_count,
            target_loss: options.target_loss.unwrap_or(0.0) as f32,
            flags: option_flags(options),
            grid_width: self.grid(count).row_invocations,
            _pad: 0,
        }
    }
}

impl ChunkKernel for FusedTrainer<'_> {
    fn context(&self) -> &GpuContext {
        self.ctx
    }

    fn capacity(&self) -> usize {
        self.capacity
    }

    fn parameter_count(&self) -> usize {
        self.parameter_count
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
        let status = buffers::initial_status(cap, 2);
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.buffers.params, 0, bytemuck::cast_slice(&soa));
        queue.write_buffer(&self.buffers.learning_rates, 0, bytemuck::cast_slice(&lrs));
        queue.write_buffer(&self.buffers.status, 0, bytemuck::cast_slice(&status));
    }

    fn submit_epochs(
        &self,
        count: usize,
        epoch_base: u32,
        epochs: u32,
        options: &TrainOptions,
        timer: Option<&PassTimer>,
    ) {
        let config = self.config(count, epoch_base, epochs, options);
        self.dispatch(&self.train, config, self.grid(count), false, timer);
    }

    fn finish(
        &self,
        params: &mut [f64],
        count: usize,
        final_epoch: u32,
        options: &TrainOptions,
    ) -> Result<Vec<NetworkOutcome>, Error> {
        let config = self.config(count, final_epoch, 0, options);
        self.dispatch(&self.evaluate, config, self.grid(count), true, None);
        let (p, cap) = (self.parameter_count, self.capacity);
        let frozen = buffers::frozen_parameters(&self.spec);
        buffers::read_back(self.ctx, &self.buffers.readback, |words| {
            let (soa, rest) = words.split_at(p * cap);
            let (status, loss) = rest.split_at(2 * cap);
            for (n, net) in params.chunks_exact_mut(p).enumerate().take(count) {
                for (i, v) in net.iter_mut().enumerate() {
                    // Frozen biases keep their exact float64 value.
                    if !frozen[i] {
                        *v = f32::from_bits(soa[i * cap + n]) as f64;
                    }
                }
            }
            buffers::outcomes(status, cap, loss, count)
        })
    }
}
