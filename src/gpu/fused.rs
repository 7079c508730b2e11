//! The fused GPU strategy: one invocation per network runs whole chunks of
//! epochs inside `shaders/fused_train.wgsl`. Pipelines, bind group and
//! buffers are built once per run; each epoch chunk only writes the small
//! config uniform, encodes one dispatch and submits.

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::data::Dataset;
use crate::error::Error;
use crate::gpu::buffers::{self, Access, Binding, storage_buffer};
use crate::gpu::chunking::{Grid, dispatch_grid, network_chunk_capacity};
use crate::gpu::device::GpuContext;
use crate::gpu::driver::ChunkKernel;
use crate::gpu::fused_codegen::{
    FUSED_MAX_PARAMETERS, FusedShape, LOOP_OVERHEAD, WORKGROUP_SIZE,
    buffered_loop_iterations_per_epoch,
};
use crate::gpu::options::GpuOptions;
use crate::gpu::quirks::AdapterQuirks;
use crate::gpu::shaders;
use crate::gpu::status;
use crate::gpu::timing::{PassTimer, pass_descriptor};
use crate::model::ModelSpec;
use crate::recording::{HistoryBlock, HistoryPlan, Recording};
use crate::setting::settings::{BACKEND, HISTORY, KERNEL as KERNEL_SETTING};
use crate::training::{NetworkOutcome, TrainOptions};

pub const KERNEL: &str = "fused_train.wgsl";
/// The kernel's entry points.
pub const ENTRY_POINTS: [&str; 2] = ["train", "evaluate"];

/// The kernel's buffers, binding `i` at index `i`.
pub const BINDINGS: &[Binding] = &[
    Binding {
        name: "cfg",
        access: Access::Uniform {
            dynamic_offset: false,
        },
    },
    Binding {
        name: "samples",
        access: Access::Read,
    },
    Binding {
        name: "learning_rates",
        access: Access::Read,
    },
    Binding {
        name: "params",
        access: Access::ReadWrite,
    },
    Binding {
        name: "status",
        access: Access::ReadWrite,
    },
    Binding {
        name: "final_loss",
        access: Access::ReadWrite,
    },
    Binding {
        name: "opt_state",
        access: Access::ReadWrite,
    },
    Binding {
        name: "schedule",
        access: Access::Uniform {
            dynamic_offset: false,
        },
    },
    Binding {
        name: "rows",
        access: Access::Read,
    },
];

/// What the host assumes of the kernel file.
pub const INTERFACE: shaders::KernelInterface = shaders::KernelInterface {
    file: KERNEL,
    entry_points: &ENTRY_POINTS,
    bindings: BINDINGS,
    uniform: shaders::uniform_layout!(FusedConfig {
        network_count,
        stride,
        epoch_base,
        epoch_count,
        target_loss,
        flags,
        grid_width,
        _pad,
    }),
};

/// The kernel's full source for `spec` on `data`, its schedule table as
/// large as every adapter binds ([`schedule_epochs`] of the downlevel
/// limit).
pub fn source(spec: &ModelSpec, data: &Dataset) -> Result<String, Error> {
    let epochs = schedule_epochs(&wgpu::Limits::downlevel_defaults());
    source_recording(spec, data, None, epochs)
}

/// [`source`] for a run that records learning curves, with a schedule
/// table of `schedule_epochs` epochs.
pub fn source_recording(
    spec: &ModelSpec,
    data: &Dataset,
    recording: Option<&Recording>,
    schedule_epochs: u32,
) -> Result<String, Error> {
    let shape = FusedShape {
        spec,
        data,
        recording,
    };
    let constants = format!(
        "{}const SCHEDULE_VECS: u32 = {}u;\n",
        shape.constants(),
        schedule_epochs
    );
    shaders::assemble(KERNEL, spec, &constants, |m| shape.fragment(m))
}

/// Epochs of the fused kernel's schedule table on a device with `limits`:
/// a uniform buffer of one (scale, shift) pair per vec4 (a uniform
/// array's stride is 16 bytes), as large as the device binds up to 64 KiB
/// (4,096 epochs; 1,024 at the downlevel 16 KiB). A uniform read at one
/// address for every invocation is a broadcast, and without a shift
/// (`SCHEDULE_SHIFT`) the kernel reads the scale alone. Measured on the
/// headline run (10,000 x 20,000, lavapipe on an AMD EPYC Zen 4, 2
/// threads; cosine against constant, sets of 10 alternating runs): the
/// pairs read from the storage buffer after the rates cost 37%, two pairs
/// per vec4 with a select 11%, this layout -0.2% to 5.2% (min) and 0.5%
/// to 5.3% (median) over four sets on a noisy machine, typically 2%.
pub fn schedule_epochs(limits: &wgpu::Limits) -> u32 {
    let bytes = limits.max_uniform_buffer_binding_size.min(1 << 16);
    (bytes / 16) as u32
}

/// The WGSL twin is `FusedConfig` in shaders/fused_train.wgsl;
/// tests/shader_interface.rs checks the two agree field by field.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct FusedConfig {
    network_count: u32,
    stride: u32,
    epoch_base: u32,
    epoch_count: u32,
    target_loss: f32,
    flags: u32,
    grid_width: u32,
    _pad: u32,
}

/// Whether the fused kernel can hold this network and loop over `samples`
/// on an adapter with `quirks`: one epoch's loop iterations
/// ([`buffered_loop_iterations_per_epoch`]: the sample loop's `samples +
/// 1` and the epoch loop's one; more with minibatches) must stay within
/// the adapter's loop limit, 65,535 on llvmpipe.
pub fn fused_supports(
    spec: &ModelSpec,
    samples: usize,
    quirks: &AdapterQuirks,
) -> Result<(), Error> {
    let limit = quirks.loop_limit() as u64;
    let p = spec.layout().len;
    if p > FUSED_MAX_PARAMETERS {
        return Err(Error::TooLarge(format!(
            "a {} network has {p} parameters; the fused GPU kernel holds at most \
             {FUSED_MAX_PARAMETERS} per network (use {} or auto)",
            spec.topology,
            KERNEL_SETTING.is("layered")
        )));
    }
    let per_epoch = buffered_loop_iterations_per_epoch(spec, samples);
    if per_epoch > limit {
        return Err(Error::TooLarge(format!(
            "{samples} samples{}: one epoch of the fused GPU kernel loops {per_epoch} times, \
             more than the {limit} this adapter allows (use {} or auto)",
            if spec.batching.is_some() {
                " in minibatches"
            } else {
                ""
            },
            KERNEL_SETTING.is("layered")
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
    opt_state: wgpu::Buffer,
    /// With a schedule, the pairs of the submission's epochs.
    schedule: wgpu::Buffer,
    /// With a resample, the chunk's row counts ([`row_words`]).
    rows: wgpu::Buffer,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

/// Pipelines and buffers for one run of the fused kernel.
pub(crate) struct FusedTrainer<'a> {
    ctx: &'a GpuContext,
    spec: ModelSpec,
    parameter_count: usize,
    /// Optimizer state values per parameter.
    state_slots: usize,
    capacity: usize,
    history: Option<HistoryPlan>,
    /// The adapter's loop limit over the kernel's loop iterations per
    /// epoch ([`FusedShape::loop_iterations_per_epoch`]).
    max_epochs_per_submission: u32,
    max_workgroups_per_dimension: u32,
    train: wgpu::ComputePipeline,
    evaluate: wgpu::ComputePipeline,
    buffers: Buffers,
}

impl<'a> FusedTrainer<'a> {
    /// Builds the kernel for `spec` and `data` and buffers for up to
    /// `networks` networks at once (fewer if the adapter's limits say so),
    /// recording learning curves if asked.
    pub fn new(
        ctx: &'a GpuContext,
        spec: &ModelSpec,
        data: &Dataset,
        networks: usize,
        options: &GpuOptions,
        recording: Option<&Recording>,
    ) -> Result<Self, Error> {
        fused_supports(spec, data.samples(), &ctx.quirks)?;
        let parameter_count = spec.layout().len;
        let schedule_epochs = schedule_epochs(&ctx.limits);
        let source = source_recording(spec, data, recording, schedule_epochs)?;
        let shape = FusedShape {
            spec,
            data,
            recording,
        };
        let per_epoch = shape.loop_iterations_per_epoch();
        let quirk_limit = ctx.quirks.loop_limit() as u64;
        if per_epoch > quirk_limit {
            return Err(Error::TooLarge(format!(
                "with the held-out data's history, one epoch of the fused GPU kernel loops \
                 {per_epoch} times, more than the {quirk_limit} this adapter allows (use \
                 fewer held-out samples, or {})",
                BACKEND.is("cpu")
            )));
        }
        let max_epochs_per_submission = match ctx.quirks.max_loop_iterations {
            Some(limit) => ((limit as u64).saturating_sub(LOOP_OVERHEAD) / per_epoch).max(1) as u32,
            None => u32::MAX,
        };
        let max_epochs_per_submission = match spec.schedule.is_constant() {
            true => max_epochs_per_submission,
            false => max_epochs_per_submission.min(schedule_epochs),
        };

        let (bind_group_layout, pipeline_layout) = buffers::layouts(ctx, KERNEL, BINDINGS);
        let mut pipelines =
            shaders::build_pipelines(ctx, KERNEL, &source, &pipeline_layout, &ENTRY_POINTS)?;
        let evaluate = pipelines.pop().expect("two pipelines");
        let train = pipelines.pop().expect("two pipelines");

        // Samples as f32: inputs then targets, sample after sample; the
        // held-out samples of a history after the training data's.
        let sets = [Some(data), shape.eval_data()];
        let samples: Vec<f32> = sets
            .into_iter()
            .flatten()
            .flat_map(|d| (0..d.samples()).map(move |s| (d, s)))
            .flat_map(|(d, s)| d.input(s).iter().chain(d.target(s)))
            .map(|&v| v as f32)
            .collect();
        let sample_bytes = std::mem::size_of_val(samples.as_slice()) as u64;
        if sample_bytes > ctx.limits.max_storage_buffer_binding_size {
            return Err(Error::TooLarge(format!(
                "the data set takes {sample_bytes} bytes; adapter '{}' binds at most {}",
                ctx.adapter.name, ctx.limits.max_storage_buffer_binding_size
            )));
        }

        // The largest per-network buffer: the parameters, the optimizer
        // state (Adam: two values per parameter), or the final losses and
        // the history.
        let state_slots = spec.optimizer.state_slots();
        let history = recording.map(|r| r.plan);
        let loss_words = status::loss_words(1, history.as_ref());
        check_history_fits(ctx, loss_words)?;
        let row_words = row_words(spec, data.samples());
        let per_network = (4 * (parameter_count * state_slots.max(1)).max(2) as u64)
            .max(4 * loss_words)
            .max(4 * row_words as u64);
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
        let status_bytes = status::bytes(capacity);
        let loss_bytes = 4 * status::loss_words(capacity, history.as_ref());
        let state_bytes = 4 * (state_slots * parameter_count * capacity) as u64;
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
        let status_buffer = storage_buffer(ctx, "status", status_bytes, copy_both);
        let final_loss = storage_buffer(ctx, "final loss", loss_bytes, copy_both);
        let opt_state = storage_buffer(ctx, "optimizer state", state_bytes, copy_both);
        let schedule = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("schedule"),
            size: 16 * schedule_epochs as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let rows_bytes = 4 * (row_words * capacity).max(1) as u64;
        let rows = storage_buffer(ctx, "row counts", rows_bytes, copy_both);
        let readback = buffers::readback_buffer(
            ctx,
            params_bytes + status_bytes + loss_bytes + opt_state.size(),
        );
        let bind_group = buffers::bind_group(
            ctx,
            KERNEL,
            &bind_group_layout,
            BINDINGS,
            vec![
                config.as_entire_binding(),
                samples_buffer.as_entire_binding(),
                learning_rates.as_entire_binding(),
                params.as_entire_binding(),
                status_buffer.as_entire_binding(),
                final_loss.as_entire_binding(),
                opt_state.as_entire_binding(),
                schedule.as_entire_binding(),
                rows.as_entire_binding(),
            ],
        );
        Ok(Self {
            ctx,
            spec: spec.clone(),
            parameter_count,
            state_slots,
            capacity,
            history,
            max_epochs_per_submission,
            max_workgroups_per_dimension: options.workgroups_per_dimension(&ctx.limits),
            train,
            evaluate,
            buffers: Buffers {
                config,
                learning_rates,
                params,
                status: status_buffer,
                final_loss,
                opt_state,
                schedule,
                rows,
                readback,
                bind_group,
            },
        })
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
            let sources = [&b.params, &b.status, &b.final_loss, &b.opt_state];
            buffers::copy_results(&mut encoder, &sources, &b.readback);
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
            flags: status::option_flags(options),
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

    fn max_epochs_per_submission(&self) -> u32 {
        self.max_epochs_per_submission
    }

    fn parameter_count(&self) -> usize {
        self.parameter_count
    }

    fn upload(&self, params: &[f64], state: &[f64], learning_rates: &[f64], rows: Option<&[u8]>) {
        let (p, cap) = (self.parameter_count, self.capacity);
        if let Some(rows) = rows {
            let words = pack_rows(rows, learning_rates.len(), cap);
            let bytes = bytemuck::cast_slice(&words);
            self.ctx.queue.write_buffer(&self.buffers.rows, 0, bytes);
        }
        let mut soa = vec![0f32; p * cap];
        for (n, net) in params.chunks_exact(p).enumerate() {
            for (i, v) in net.iter().enumerate() {
                soa[i * cap + n] = *v as f32;
            }
        }
        let per_state = self.state_slots * p;
        if per_state > 0 {
            // Value j (slot-major) of network n at [j * cap + n].
            let mut state_soa = vec![0f32; per_state * cap];
            for (n, net) in state.chunks_exact(per_state).enumerate() {
                for (j, v) in net.iter().enumerate() {
                    state_soa[j * cap + n] = *v as f32;
                }
            }
            let bytes = bytemuck::cast_slice(&state_soa);
            self.ctx
                .queue
                .write_buffer(&self.buffers.opt_state, 0, bytes);
        }
        let lrs: Vec<f32> = learning_rates.iter().map(|&v| v as f32).collect();
        let initial_status = status::initial(cap);
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.buffers.params, 0, bytemuck::cast_slice(&soa));
        queue.write_buffer(&self.buffers.learning_rates, 0, bytemuck::cast_slice(&lrs));
        queue.write_buffer(
            &self.buffers.status,
            0,
            bytemuck::cast_slice(&initial_status),
        );
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
        let first = epoch_base as u64;
        buffers::write_schedule_table(
            self.ctx,
            &self.buffers.schedule,
            0,
            &self.spec.schedule,
            first..first + epochs as u64,
            4,
        );
        self.dispatch(&self.train, config, self.grid(count), false, timer);
    }

    fn finish(
        &self,
        params: &mut [f64],
        state: &mut [f64],
        count: usize,
        final_epoch: u32,
        options: &TrainOptions,
    ) -> Result<(Vec<NetworkOutcome>, Option<HistoryBlock>), Error> {
        let config = self.config(count, final_epoch, 0, options);
        self.dispatch(&self.evaluate, config, self.grid(count), true, None);
        let (p, cap) = (self.parameter_count, self.capacity);
        let per_state = self.state_slots * p;
        let frozen = self.spec.frozen_mask();
        let b = &self.buffers;
        let sizes = [b.params.size(), b.status.size(), b.final_loss.size()];
        buffers::read_back(self.ctx, &b.readback, |words| {
            let parts = buffers::split_words(words, &sizes);
            let (soa, status_words, loss) = (parts[0], parts[1], parts[2]);
            let state_soa = &words[(sizes.iter().sum::<u64>() / 4) as usize..];
            for (n, net) in params.chunks_exact_mut(p).enumerate().take(count) {
                for (i, v) in net.iter_mut().enumerate() {
                    // Frozen biases keep their exact float64 value.
                    if !frozen[i] {
                        *v = f32::from_bits(soa[i * cap + n]) as f64;
                    }
                }
            }
            if per_state > 0 {
                for (n, net) in state.chunks_exact_mut(per_state).enumerate().take(count) {
                    for (j, v) in net.iter_mut().enumerate() {
                        *v = f32::from_bits(state_soa[j * cap + n]) as f64;
                    }
                }
            }
            let outcomes = status::outcomes(status_words, cap, loss, count);
            let history = self
                .history
                .map(|plan| status::history(status_words, cap, loss, count, &plan));
            (outcomes, history)
        })
    }
}

/// Words of row counts per network: four rows to a word, with a resample;
/// none without.
fn row_words(spec: &ModelSpec, samples: usize) -> usize {
    match spec.resample {
        Some(_) => samples.div_ceil(4),
        None => 0,
    }
}

/// The row counts of `networks` networks (network after network, a byte
/// a row) as the kernel reads them: row s of network n in byte s % 4 of
/// word `(s / 4) * capacity + n`.
fn pack_rows(rows: &[u8], networks: usize, capacity: usize) -> Vec<u32> {
    let samples = rows.len() / networks.max(1);
    let mut words = vec![0u32; samples.div_ceil(4) * capacity];
    for (n, counts) in rows.chunks_exact(samples.max(1)).enumerate() {
        for (s, &c) in counts.iter().enumerate() {
            words[(s / 4) * capacity + n] |= u32::from(c) << (8 * (s % 4));
        }
    }
    words
}

/// Refuses a history whose points do not fit one network's share of the
/// final-loss buffer (`loss_words` words) within the adapter's binding
/// limit.
pub(crate) fn check_history_fits(ctx: &GpuContext, loss_words: u64) -> Result<(), Error> {
    let limit = ctx.limits.max_storage_buffer_binding_size;
    if 4 * loss_words > limit {
        return Err(Error::TooLarge(format!(
            "{HISTORY}: {} recorded losses per network take {} bytes, more than the {limit} \
             adapter '{}' binds; record fewer points (a larger {HISTORY} K)",
            loss_words - 1,
            4 * loss_words,
            ctx.adapter.name
        )));
    }
    Ok(())
}
