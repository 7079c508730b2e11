//! The layered GPU strategy: one dispatch per operation (tiled matrix
//! products with the sigmoid or its derivative applied on store, the
//! output deltas and loss, the weight and bias updates), each across every
//! network of the chunk, from `shaders/layered_train.wgsl`. An epoch is a
//! fixed sequence of dispatches; a submission records many epochs into one
//! compute pass. Buffers hold networks x samples x width activations, so
//! the network chunk is sized by [`LayeredPlan`].

use bytemuck::{Pod, Zeroable};

use crate::data::Dataset;
use crate::error::Error;
use crate::gpu::buffers::{self, Access, Binding, storage_buffer};
use crate::gpu::chunking::{MAX_CHUNK_BUFFER_BYTES, dispatch_grid};
use crate::gpu::device::GpuContext;
use crate::gpu::driver::ChunkKernel;
use crate::gpu::fused::check_history_fits;
use crate::gpu::options::{GpuOptions, LayeredVariant};
use crate::gpu::quirks::AdapterQuirks;
use crate::gpu::shaders;
use crate::gpu::status;
use crate::gpu::timing::{PassTimer, pass_descriptor};
use crate::model::{BiasMode, ModelSpec};
use crate::recording::{HistoryBlock, HistoryPlan, Recording};
use crate::training::{NetworkOutcome, TrainOptions};

pub const KERNEL: &str = "layered_train.wgsl";

/// The kernel's buffers, binding `i` at index `i`.
pub const BINDINGS: &[Binding] = &[
    Binding {
        name: "op",
        access: Access::Uniform {
            dynamic_offset: true,
        },
    },
    Binding {
        name: "acts",
        access: Access::ReadWrite,
    },
    Binding {
        name: "deltas",
        access: Access::ReadWrite,
    },
    Binding {
        name: "params",
        access: Access::ReadWrite,
    },
    Binding {
        name: "targets",
        access: Access::Read,
    },
    Binding {
        name: "learning_rates",
        access: Access::Read,
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
];
/// Side of the square output tile of the matrix-product kernels.
pub const TILE: u32 = 16;
/// Invocations of the per-network reduction kernels (tiled variant).
pub const REDUCE_SIZE: u32 = 256;
/// Invocations of the per-network reduction kernels (direct variant): on
/// lavapipe a 256-wide reduction cost ~50 us per network and sum; 64
/// keeps the barriers' context switches few.
pub const DIRECT_REDUCE_SIZE: u32 = 64;
/// Invocations per workgroup of the direct variant.
pub const DIRECT_SIZE: u32 = 64;
/// Terms one invocation of a direct-variant reduction sums on its own
/// before the workgroup combines them: short sums get small workgroups.
pub const DIRECT_TERMS_PER_INVOCATION: u64 = 16;

/// Invocations of the direct variant's per-network reductions for sums of
/// at most `longest_sum` terms: the power of two that leaves each at most
/// [`DIRECT_TERMS_PER_INVOCATION`] terms, from 1 to [`DIRECT_REDUCE_SIZE`].
/// Every barrier costs llvmpipe a context switch, so tiny networks sum in
/// one invocation: a 2-2-2 network's largest sum is its 10 parameters'
/// finiteness check, and a 64-invocation workgroup for it cost ~20 us per
/// network-epoch where one invocation costs (measured in the README).
pub fn direct_reduce_size(longest_sum: u64) -> u32 {
    let wanted = longest_sum.div_ceil(DIRECT_TERMS_PER_INVOCATION).max(1);
    (wanted.next_power_of_two() as u32).min(DIRECT_REDUCE_SIZE)
}
/// Every entry point of the kernel file: the operations, in the order an
/// epoch runs them (the tiled variant's), then the direct variant's
/// matrix products, each named `{operation}_direct`.
pub const ENTRY_POINTS: [&str; 13] = [
    "forward",
    "output_delta",
    "backward",
    "weight_update",
    "bias_update",
    "evaluate",
    "epoch_loss",
    "advance",
    "eval_loss",
    "output_rows",
    "forward_direct",
    "backward_direct",
    "weight_update_direct",
];
/// How many of [`ENTRY_POINTS`] are operations.
const OPERATIONS: usize = 10;

/// The entry point `variant` runs for each operation, in epoch order.
fn variant_entry_points(variant: LayeredVariant) -> Vec<String> {
    ENTRY_POINTS[..OPERATIONS]
        .iter()
        .map(|name| {
            let direct = format!("{name}_direct");
            match variant {
                LayeredVariant::Direct if ENTRY_POINTS.contains(&direct.as_str()) => direct,
                _ => name.to_string(),
            }
        })
        .collect()
}

/// The WGSL twin is `LayerOp` in shaders/layered_train.wgsl;
/// tests/shader_interface.rs checks the two agree field by field. One per
/// weight layer; the output-layer kernels use the last one.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, Pod, Zeroable)]
pub struct LayerOp {
    samples: u32,
    fan_in: u32,
    fan_out: u32,
    in_base: u32,
    in_network_stride: u32,
    out_base: u32,
    delta_in_base: u32,
    delta_out_base: u32,
    param_stride: u32,
    weight_offset: u32,
    bias_offset: u32,
    status_stride: u32,
    final_epoch: u32,
    target_loss: f32,
    flags: u32,
    network_count: u32,
    /// 1 for the output layer: its output activation, and its net inputs
    /// kept in its deltas until output_delta overwrites them.
    output_layer: u32,
    /// The run epoch the chunk's epoch counters start from.
    epoch_base: u32,
    /// 1: the rows are the current minibatch's (see [`RowSet`]).
    mapped: u32,
    target_base: u32,
    /// The run epoch of the submission's first epoch, where the
    /// schedule's table starts.
    rates_base: u32,
}

/// What the host assumes of the kernel file.
pub const INTERFACE: shaders::KernelInterface = shaders::KernelInterface {
    file: KERNEL,
    entry_points: &ENTRY_POINTS,
    bindings: BINDINGS,
    uniform: shaders::uniform_layout!(LayerOp {
        samples,
        fan_in,
        fan_out,
        in_base,
        in_network_stride,
        out_base,
        delta_in_base,
        delta_out_base,
        param_stride,
        weight_offset,
        bias_offset,
        status_stride,
        final_epoch,
        target_loss,
        flags,
        network_count,
        output_layer,
        epoch_base,
        mapped,
        target_base,
        rates_base,
    }),
};

/// Where everything lives in the layered kernels' buffers, and how many
/// networks fit at once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayeredPlan {
    /// Networks resident at once.
    pub capacity: usize,
    /// Word offset of each layer's activations (layer 0: the shared inputs).
    pub act_base: Vec<u64>,
    /// Word offset of each layer's deltas (index 0 unused).
    pub delta_base: Vec<u64>,
    pub act_words: u64,
    pub delta_words: u64,
    /// Terms of the longest per-network sum: rows x widest layer, or
    /// the parameters.
    pub longest_sum: u64,
    /// Rows per network in the activations and deltas: the samples, or
    /// the held-out samples of a history if more.
    pub row_stride: u64,
    /// Word offset of the held-out inputs in the activations (after the
    /// training inputs, in layer 0's region).
    pub eval_input_base: u64,
}

impl LayeredPlan {
    /// Sizes the buffers for `spec` on `samples` samples within the
    /// adapter's `limits` (and [`MAX_CHUNK_BUFFER_BYTES`]); at most
    /// `networks`, and at most `cap` if given. Fails, saying what does not
    /// fit, when not even one network does.
    ///
    /// The adapter's loop limit ([`AdapterQuirks::loop_limit`], 65,535 on
    /// llvmpipe) bounds the samples (the direct weight-gradient invocation
    /// loops over them) and the longest per-network sum (each of the
    /// reduction's 64 invocations loops over its share).
    pub fn new(
        spec: &ModelSpec,
        samples: usize,
        limits: &wgpu::Limits,
        quirks: &AdapterQuirks,
        networks: usize,
        cap: Option<usize>,
    ) -> Result<Self, Error> {
        Self::with_eval(spec, samples, 0, limits, quirks, networks, cap)
    }

    /// [`LayeredPlan::new`] with room for `eval_samples` held-out rows (a
    /// history's held-out loss): their inputs after the training data's,
    /// and rows for the larger of the two sets.
    pub fn with_eval(
        spec: &ModelSpec,
        samples: usize,
        eval_samples: usize,
        limits: &wgpu::Limits,
        quirks: &AdapterQuirks,
        networks: usize,
        cap: Option<usize>,
    ) -> Result<Self, Error> {
        let loop_limit = quirks.loop_limit() as u64;
        let max_sum_terms = loop_limit * DIRECT_REDUCE_SIZE as u64;
        let widths = spec.topology.widths();
        // Rows per network: the larger of the training and held-out sets.
        let s = samples.max(eval_samples) as u64;
        let input_rows = (samples + eval_samples) as u64;
        let max_bytes = limits
            .max_storage_buffer_binding_size
            .min(limits.max_buffer_size)
            .min(MAX_CHUNK_BUFFER_BYTES);
        let too_large = |what: String| {
            Error::TooLarge(format!(
                "{what}; the adapter binds at most {max_bytes} bytes per buffer. Use fewer \
                 samples or narrower layers, or {}",
                crate::setting::settings::BACKEND.is("cpu")
            ))
        };
        let input_bytes = 4 * input_rows * widths[0] as u64;
        let target_bytes = 4 * input_rows * spec.topology.outputs() as u64;
        let per_network_acts = 4 * s * widths[1..].iter().map(|&w| w as u64).sum::<u64>();
        let per_network_params = 4 * spec.layout().len as u64;
        if input_bytes + per_network_acts > max_bytes {
            return Err(too_large(format!(
                "one {} network on {samples} samples needs {} bytes of activations \
                 ({samples} samples x {} values x 4 bytes, plus the inputs)",
                spec.topology,
                input_bytes + per_network_acts,
                per_network_acts / (4 * s)
            )));
        }
        if target_bytes > max_bytes || per_network_params > max_bytes {
            return Err(too_large(format!(
                "the {} network's targets ({target_bytes} bytes) or parameters \
                 ({per_network_params} bytes) do not fit",
                spec.topology
            )));
        }
        let widest_sum = s * widths[1..].iter().copied().max().unwrap_or(1) as u64;
        let longest = widest_sum.max(spec.layout().len as u64);
        if longest > max_sum_terms {
            return Err(too_large(format!(
                "one {} network on {samples} samples sums {longest} terms in one kernel loop \
                 (samples x widest layer, or parameters), more than the {max_sum_terms} the \
                 layered kernels can on this adapter",
                spec.topology
            )));
        }
        if s > loop_limit {
            return Err(too_large(format!(
                "{samples} samples; the layered kernels take at most {loop_limit} on this \
                 adapter (one invocation loops over the samples)"
            )));
        }
        let grid_limit = limits.max_compute_workgroups_per_dimension as u64;
        if s.div_ceil(TILE as u64) > grid_limit {
            return Err(too_large(format!(
                "{samples} samples need {} workgroups in one dimension, more than the \
                 adapter's {grid_limit}",
                s.div_ceil(TILE as u64)
            )));
        }
        let capacity = networks
            .min(((max_bytes - input_bytes) / per_network_acts) as usize)
            .min(
                (max_bytes / (per_network_params * spec.optimizer.state_slots().max(1) as u64))
                    as usize,
            )
            .min(grid_limit as usize)
            .min(cap.unwrap_or(usize::MAX))
            .max(1);
        let cap64 = capacity as u64;
        let mut act_base = vec![0u64];
        let mut next = input_rows * widths[0] as u64;
        for &w in &widths[1..] {
            act_base.push(next);
            next += cap64 * s * w as u64;
        }
        let act_words = next;
        let mut delta_base = vec![0u64];
        let mut next = 0;
        for &w in &widths[1..] {
            delta_base.push(next);
            next += cap64 * s * w as u64;
        }
        Ok(Self {
            capacity,
            act_base,
            delta_base,
            act_words,
            delta_words: next,
            longest_sum: longest,
            row_stride: s,
            eval_input_base: samples as u64 * widths[0] as u64,
        })
    }
}

struct Buffers {
    ops: wgpu::Buffer,
    params: wgpu::Buffer,
    learning_rates: wgpu::Buffer,
    status: wgpu::Buffer,
    final_loss: wgpu::Buffer,
    opt_state: wgpu::Buffer,
    /// The targets and, with a resample, from byte `rows_at` the chunk's
    /// row weights: row s of network n at word `n * samples + s`.
    targets: wgpu::Buffer,
    rows_at: u64,
    readback: wgpu::Buffer,
    bind_group: wgpu::BindGroup,
}

struct Pipelines {
    forward: wgpu::ComputePipeline,
    output_delta: wgpu::ComputePipeline,
    backward: wgpu::ComputePipeline,
    weight_update: wgpu::ComputePipeline,
    bias_update: wgpu::ComputePipeline,
    evaluate: wgpu::ComputePipeline,
    epoch_loss: wgpu::ComputePipeline,
    advance: wgpu::ComputePipeline,
    eval_loss: wgpu::ComputePipeline,
    output_rows: wgpu::ComputePipeline,
}

/// The rows an op covers; each has its own `LayerOp` per layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RowSet {
    /// Every sample, in the data's order.
    All,
    /// A full minibatch, in its epoch's order.
    Batch,
    /// The shorter last minibatch.
    LastBatch,
    /// The held-out samples of a history.
    Eval,
}

impl RowSet {
    const ALL: [RowSet; 4] = [RowSet::All, RowSet::Batch, RowSet::LastBatch, RowSet::Eval];
}

/// Pipelines and buffers for one run of the layered kernels.
pub(crate) struct LayeredTrainer<'a> {
    ctx: &'a GpuContext,
    spec: ModelSpec,
    samples: usize,
    /// Minibatches per epoch (1: full batch).
    batches: usize,
    plan: LayeredPlan,
    parameter_count: usize,
    /// Optimizer state values per parameter.
    state_slots: usize,
    variant: LayeredVariant,
    max_workgroups_per_dimension: u32,
    /// Bytes between the per-layer `LayerOp` slots of the uniform buffer.
    op_stride: u64,
    history: Option<HistoryPlan>,
    /// Held-out samples whose loss the history records (0: none).
    eval_samples: usize,
    pipelines: Pipelines,
    buffers: Buffers,
}

impl<'a> LayeredTrainer<'a> {
    /// Builds the kernels for `spec` and buffers for up to `networks`
    /// networks on `data` at once (fewer if the adapter's limits say so),
    /// recording the training loss's history if asked (`recording` must
    /// not ask for the held-out loss's).
    pub fn new(
        ctx: &'a GpuContext,
        spec: &ModelSpec,
        data: &Dataset,
        networks: usize,
        options: &GpuOptions,
        recording: Option<&Recording>,
    ) -> Result<Self, Error> {
        let samples = data.samples();
        let history = recording.map(|r| r.plan);
        // The held-out data whose loss the history records, if it does.
        let eval = recording.filter(|r| r.plan.eval).and_then(|r| r.eval);
        let eval_samples = eval.map_or(0, |e| e.samples());
        // The final-loss buffer holds the history too: it bounds the
        // networks per chunk like the other buffers.
        let loss_words = status::loss_words(1, history.as_ref());
        check_history_fits(ctx, loss_words)?;
        let max_bytes = ctx
            .limits
            .max_storage_buffer_binding_size
            .min(ctx.limits.max_buffer_size)
            .min(MAX_CHUNK_BUFFER_BYTES);
        let by_history = (max_bytes / (4 * loss_words)) as usize;
        let plan = LayeredPlan::with_eval(
            spec,
            samples,
            eval_samples,
            &ctx.limits,
            &ctx.quirks,
            networks,
            Some(
                options
                    .max_networks_per_chunk
                    .map_or(by_history, |c| c.min(by_history)),
            ),
        )?;
        let parameter_count = spec.layout().len;
        let variant = options
            .layered_variant
            .unwrap_or_else(|| LayeredVariant::for_adapter(&ctx.adapter.device_type));
        let reduce_size = match variant {
            LayeredVariant::Tiled => REDUCE_SIZE,
            LayeredVariant::Direct => direct_reduce_size(plan.longest_sum),
        };
        let source = source_recording(
            spec,
            samples,
            &plan,
            reduce_size,
            history.as_ref(),
            eval_samples,
        )?;
        let entry_points = variant_entry_points(variant);
        let entry_points: Vec<&str> = entry_points.iter().map(String::as_str).collect();
        let op_size = std::mem::size_of::<LayerOp>() as u64;
        let (bind_group_layout, pipeline_layout) = buffers::layouts(ctx, KERNEL, BINDINGS);
        let mut built =
            shaders::build_pipelines(ctx, KERNEL, &source, &pipeline_layout, &entry_points)?
                .into_iter();
        let mut next = || built.next().expect("one pipeline per entry point");
        let pipelines = Pipelines {
            forward: next(),
            output_delta: next(),
            backward: next(),
            weight_update: next(),
            bias_update: next(),
            evaluate: next(),
            epoch_loss: next(),
            advance: next(),
            eval_loss: next(),
            output_rows: next(),
        };

        let device = &ctx.device;
        let cap = plan.capacity as u64;
        let alignment = ctx.limits.min_uniform_buffer_offset_alignment as u64;
        let op_stride = op_size.div_ceil(alignment) * alignment;
        let layers = spec.topology.weight_layers() as u64;
        let ops = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("layer ops"),
            size: op_stride * layers * RowSet::ALL.len() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let copy_both = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
        let acts = storage_buffer(ctx, "activations", 4 * plan.act_words, copy_both);
        // The training inputs, then the held-out ones (layer 0's region),
        // and the targets likewise.
        let sets: Vec<&Dataset> = std::iter::once(data).chain(eval).collect();
        let rows = || {
            sets.iter()
                .flat_map(|d| (0..d.samples()).map(move |s| (*d, s)))
        };
        let inputs: Vec<f32> = rows()
            .flat_map(|(d, s)| d.input(s))
            .map(|&v| v as f32)
            .collect();
        ctx.queue
            .write_buffer(&acts, 0, bytemuck::cast_slice(&inputs));
        let deltas = storage_buffer(ctx, "deltas", 4 * plan.delta_words, copy_both);
        let target_values: Vec<f32> = rows()
            .flat_map(|(d, s)| d.target(s))
            .map(|&v| v as f32)
            .collect();
        // With a resample, each network's row weights follow
        // ([`LayeredTrainer::upload`]).
        let weight_words = match spec.resample {
            Some(_) => samples * plan.capacity,
            None => 0,
        };
        let targets_bytes = 4 * (target_values.len() + weight_words) as u64;
        if targets_bytes > max_bytes {
            return Err(Error::TooLarge(format!(
                "the targets and {} networks' row weights take {targets_bytes} bytes; the \
                 adapter binds at most {max_bytes} bytes per buffer",
                plan.capacity
            )));
        }
        let targets = storage_buffer(ctx, "targets", targets_bytes, copy_both);
        ctx.queue
            .write_buffer(&targets, 0, bytemuck::cast_slice(&target_values));
        let rows_at = 4 * target_values.len() as u64;
        let params_bytes = 4 * parameter_count as u64 * cap;
        let status_bytes = status::bytes(plan.capacity);
        let loss_bytes = 4 * status::loss_words(plan.capacity, history.as_ref());
        let params = storage_buffer(ctx, "parameters", params_bytes, copy_both);
        let rates_bytes = buffers::learning_rates_bytes(&spec.schedule, plan.capacity);
        let learning_rates = storage_buffer(ctx, "learning rates", rates_bytes, copy_both);
        let status_buffer = storage_buffer(ctx, "status", status_bytes, copy_both);
        let final_loss = storage_buffer(ctx, "final loss", loss_bytes, copy_both);
        let state_slots = spec.optimizer.state_slots();
        let state_bytes = state_slots as u64 * params_bytes;
        let opt_state = storage_buffer(ctx, "optimizer state", state_bytes, copy_both);
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
                wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer: &ops,
                    offset: 0,
                    size: wgpu::BufferSize::new(op_size),
                }),
                acts.as_entire_binding(),
                deltas.as_entire_binding(),
                params.as_entire_binding(),
                targets.as_entire_binding(),
                learning_rates.as_entire_binding(),
                status_buffer.as_entire_binding(),
                final_loss.as_entire_binding(),
                opt_state.as_entire_binding(),
            ],
        );
        Ok(Self {
            ctx,
            spec: spec.clone(),
            samples,
            batches: spec.batches(samples),
            plan,
            parameter_count,
            state_slots,
            variant,
            max_workgroups_per_dimension: options.workgroups_per_dimension(&ctx.limits),
            op_stride,
            history,
            eval_samples,
            pipelines,
            buffers: Buffers {
                ops,
                params,
                learning_rates,
                status: status_buffer,
                final_loss,
                opt_state,
                targets,
                rows_at,
                readback,
                bind_group,
            },
        })
    }

    /// Rows of `set`: every sample, a full minibatch, or the last one.
    fn rows(&self, set: RowSet) -> usize {
        let n = self.samples;
        match (set, self.spec.batching) {
            (RowSet::Eval, _) => self.eval_samples,
            (RowSet::All, _) | (_, None) => n,
            (RowSet::Batch, Some(b)) => b.size.min(n),
            (RowSet::LastBatch, Some(b)) => n - (self.batches - 1) * b.size.min(n),
        }
    }

    /// Writes one `LayerOp` per weight layer and row set.
    fn write_ops(&self, count: usize, options: &TrainOptions, final_epoch: u32, rates_base: u32) {
        let layout = self.spec.layout();
        let widths = self.spec.topology.widths();
        let rows = self.plan.row_stride as u32;
        let mut bytes = vec![0u8; self.buffers.ops.size() as usize];
        for set in RowSet::ALL {
            let held_out = set == RowSet::Eval;
            for (l, layer) in layout.layers.iter().enumerate() {
                let op = LayerOp {
                    samples: self.rows(set) as u32,
                    fan_in: widths[l] as u32,
                    fan_out: widths[l + 1] as u32,
                    // The held-out rows read their own inputs.
                    in_base: match (held_out, l) {
                        (true, 0) => self.plan.eval_input_base as u32,
                        _ => self.plan.act_base[l] as u32,
                    },
                    // Per-network strides keep room for every row.
                    in_network_stride: if l == 0 { 0 } else { rows * widths[l] as u32 },
                    out_base: self.plan.act_base[l + 1] as u32,
                    delta_in_base: self.plan.delta_base[l] as u32,
                    delta_out_base: self.plan.delta_base[l + 1] as u32,
                    param_stride: self.parameter_count as u32,
                    weight_offset: layer.weight_offset as u32,
                    bias_offset: layer.bias_offset as u32,
                    status_stride: self.plan.capacity as u32,
                    final_epoch,
                    target_loss: options.target_loss.unwrap_or(0.0) as f32,
                    flags: status::option_flags(options),
                    network_count: count as u32,
                    output_layer: u32::from(l + 1 == layout.layers.len()),
                    epoch_base: options.first_epoch as u32,
                    mapped: u32::from(matches!(set, RowSet::Batch | RowSet::LastBatch)),
                    target_base: match held_out {
                        true => (self.samples * widths[widths.len() - 1]) as u32,
                        false => 0,
                    },
                    rates_base,
                };
                let at = self.op_slot(set, l) as usize;
                bytes[at..at + std::mem::size_of::<LayerOp>()]
                    .copy_from_slice(bytemuck::bytes_of(&op));
            }
        }
        self.ctx.queue.write_buffer(&self.buffers.ops, 0, &bytes);
    }

    /// Byte offset of the `LayerOp` of layer `l` for `set`.
    fn op_slot(&self, set: RowSet, l: usize) -> u64 {
        let layers = self.spec.topology.weight_layers();
        let index = RowSet::ALL.iter().position(|s| *s == set).unwrap_or(0) * layers + l;
        index as u64 * self.op_stride
    }

    fn trains_biases(&self) -> bool {
        self.spec.bias != BiasMode::None && !self.spec.freeze_bias
    }

    /// Records `pipeline` for layer `l`'s op over a `(x, y, z)` grid.
    /// Records `pipeline` for layer `l`'s op over `set` on a `(x, y, z)`
    /// grid.
    fn step(
        &self,
        pass: &mut wgpu::ComputePass,
        pipeline: &wgpu::ComputePipeline,
        (set, l): (RowSet, usize),
        grid: (u32, u32, u32),
    ) {
        pass.set_pipeline(pipeline);
        let offset = self.op_slot(set, l) as u32;
        pass.set_bind_group(0, &self.buffers.bind_group, &[offset]);
        pass.dispatch_workgroups(grid.0, grid.1, grid.2);
    }

    /// The variant this trainer runs.
    pub fn variant(&self) -> LayeredVariant {
        self.variant
    }

    /// Grid of a matrix product with `rows` x `cols` outputs per network:
    /// tiles for the tiled variant, elements for the direct one.
    fn product_grid(&self, rows: usize, cols: usize, count: u32) -> (u32, u32, u32) {
        match self.variant {
            LayeredVariant::Tiled => (
                (cols as u32).div_ceil(TILE),
                (rows as u32).div_ceil(TILE),
                count,
            ),
            LayeredVariant::Direct => {
                let elements = rows * cols * count as usize;
                let g = dispatch_grid(elements, DIRECT_SIZE, self.max_workgroups_per_dimension);
                (g.x, g.y, 1)
            }
        }
    }

    fn record_forward(&self, pass: &mut wgpu::ComputePass, set: RowSet, count: u32) {
        let widths = self.spec.topology.widths();
        for l in 0..widths.len() - 1 {
            let grid = self.product_grid(self.rows(set), widths[l + 1], count);
            self.step(pass, &self.pipelines.forward, (set, l), grid);
        }
        if self.spec.output_activation.def().normalizes_rows {
            // One invocation per row of every network.
            let rows = self.rows(set) * count as usize;
            let g = dispatch_grid(rows, DIRECT_SIZE, self.max_workgroups_per_dimension);
            let last = widths.len() - 2;
            self.step(
                pass,
                &self.pipelines.output_rows,
                (set, last),
                (g.x, g.y, 1),
            );
        }
    }

    /// One update over the rows of `set`: forward, output deltas (and the
    /// loss), backward, the updates.
    fn record_update(&self, pass: &mut wgpu::ComputePass, set: RowSet, count: u32) {
        let widths = self.spec.topology.widths();
        let last = widths.len() - 2;
        let rows = self.rows(set);
        self.record_forward(pass, set, count);
        // Per-network sums (loss, biases): one workgroup per network.
        let sums = (count, 1, 1);
        self.step(pass, &self.pipelines.output_delta, (set, last), sums);
        for l in (1..=last).rev() {
            let grid = self.product_grid(rows, widths[l], count);
            self.step(pass, &self.pipelines.backward, (set, l), grid);
        }
        for l in 0..=last {
            let grid = self.product_grid(widths[l + 1], widths[l], count);
            self.step(pass, &self.pipelines.weight_update, (set, l), grid);
            if self.trains_biases() {
                self.step(pass, &self.pipelines.bias_update, (set, l), sums);
            }
        }
    }

    /// Run epoch `epoch`: one update, or its minibatches' (after the
    /// full-data loss when the target or the history needs it).
    fn record_epoch(
        &self,
        pass: &mut wgpu::ComputePass,
        count: u32,
        options: &TrainOptions,
        epoch: u64,
    ) {
        let last = self.spec.topology.weight_layers() - 1;
        let recording = self.history.is_some_and(|h| h.slot(epoch).is_some());
        if recording && self.eval_samples > 0 {
            // The held-out loss of the parameters the epoch starts with.
            self.record_forward(pass, RowSet::Eval, count);
            let sums = (count, 1, 1);
            self.step(pass, &self.pipelines.eval_loss, (RowSet::Eval, last), sums);
        }
        let Some(batching) = self.spec.batching else {
            self.record_update(pass, RowSet::All, count);
            return;
        };
        if options.target_loss.is_some() || recording {
            self.record_forward(pass, RowSet::All, count);
            let sums = (count, 1, 1);
            self.step(pass, &self.pipelines.epoch_loss, (RowSet::All, last), sums);
        }
        let full = self.samples / batching.size.min(self.samples);
        let advance = (count.div_ceil(DIRECT_SIZE), 1, 1);
        for b in 0..self.batches {
            let set = if b < full {
                RowSet::Batch
            } else {
                RowSet::LastBatch
            };
            self.record_update(pass, set, count);
            self.step(pass, &self.pipelines.advance, (set, last), advance);
        }
    }
}

/// The kernel's full source for `spec` on `samples` samples, with
/// per-network reductions of `reduce_size` invocations.
pub fn source(spec: &ModelSpec, samples: usize, reduce_size: u32) -> Result<String, Error> {
    let constants = constants(spec, samples, samples as u64, reduce_size, samples)
        + &status::history_constants(None);
    shaders::assemble(KERNEL, spec, &constants, |_| None)
}

/// [`source`] for the buffers `plan` lays out and a run that records
/// `history` (with `eval_samples` held-out rows in the targets buffer).
pub fn source_recording(
    spec: &ModelSpec,
    samples: usize,
    plan: &LayeredPlan,
    reduce_size: u32,
    history: Option<&HistoryPlan>,
    eval_samples: usize,
) -> Result<String, Error> {
    let rows = samples + eval_samples;
    let constants = constants(spec, samples, plan.row_stride, reduce_size, rows)
        + &status::history_constants(history);
    shaders::assemble(KERNEL, spec, &constants, |_| None)
}

/// `const` declarations the kernel relies on; `target_rows` rows of
/// targets (training, then held-out) come before the row weights.
fn constants(
    spec: &ModelSpec,
    samples: usize,
    row_stride: u64,
    reduce_size: u32,
    target_rows: usize,
) -> String {
    let bias_mode = match spec.bias {
        BiasMode::None => "BIAS_NONE",
        BiasMode::Shared => "BIAS_SHARED",
        BiasMode::PerNeuron => "BIAS_PER_NEURON",
    };
    format!(
        "const TILE: u32 = {TILE}u;\n\
         const REDUCE_SIZE: u32 = {reduce_size}u;\n\
         const DIRECT_SIZE: u32 = {DIRECT_SIZE}u;\n\
         const MEAN: bool = {};\n\
         const BIAS_MODE: u32 = {bias_mode};\n\
         const ROW_STRIDE: u32 = {row_stride}u;\n\
         const RESAMPLED: bool = {};\n\
         const ROWS_BASE: u32 = {}u;\n{}",
        spec.reduction == crate::model::Reduction::Mean,
        spec.resample.is_some(),
        target_rows * spec.topology.outputs(),
        crate::batches::wgsl_constants(samples, spec.batching.as_ref()),
    )
}

impl ChunkKernel for LayeredTrainer<'_> {
    fn context(&self) -> &GpuContext {
        self.ctx
    }

    fn capacity(&self) -> usize {
        self.plan.capacity
    }

    /// Epochs are separate dispatches here, not a shader loop: the
    /// adapter's loop limit does not bound a submission.
    fn max_epochs_per_submission(&self) -> u32 {
        match self.spec.schedule.is_constant() {
            true => u32::MAX,
            false => buffers::SCHEDULE_TABLE_EPOCHS,
        }
    }

    fn parameter_count(&self) -> usize {
        self.parameter_count
    }

    fn upload(&self, params: &[f64], state: &[f64], learning_rates: &[f64], rows: Option<&[u8]>) {
        let cap = self.plan.capacity;
        if let (Some(rows), Some(r)) = (rows, self.spec.resample) {
            // count x rows / drawn rows in float32, as the SIMD trainer's.
            let scale = r.scale(self.samples) as f32;
            let weights: Vec<f32> = rows.iter().map(|&c| f32::from(c) * scale).collect();
            let bytes = bytemuck::cast_slice(&weights);
            self.ctx
                .queue
                .write_buffer(&self.buffers.targets, self.buffers.rows_at, bytes);
        }
        let values: Vec<f32> = params.iter().map(|&v| v as f32).collect();
        // Host: network after network, slot after slot; device: slot k of
        // parameter i of network n at k * cap * P + n * P + i.
        let p = self.parameter_count;
        let per_state = self.state_slots * p;
        for k in 0..self.state_slots {
            let slot: Vec<f32> = state
                .chunks_exact(per_state)
                .flat_map(|net| &net[k * p..(k + 1) * p])
                .map(|&v| v as f32)
                .collect();
            let at = 4 * (k * cap * p) as u64;
            let bytes = bytemuck::cast_slice(&slot);
            self.ctx
                .queue
                .write_buffer(&self.buffers.opt_state, at, bytes);
        }
        let lrs: Vec<f32> = learning_rates.iter().map(|&v| v as f32).collect();
        let initial_status = status::initial(cap);
        let queue = &self.ctx.queue;
        queue.write_buffer(&self.buffers.params, 0, bytemuck::cast_slice(&values));
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
        self.write_ops(count, options, 0, epoch_base);
        let first = epoch_base as u64;
        buffers::write_schedule_table(
            self.ctx,
            &self.buffers.learning_rates,
            4 * self.plan.capacity as u64,
            &self.spec.schedule,
            first..first + epochs as u64,
            2,
        );
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&pass_descriptor(timer));
            for e in 0..epochs {
                let epoch = epoch_base as u64 + e as u64;
                self.record_epoch(&mut pass, count as u32, options, epoch);
            }
        }
        if let Some(timer) = timer {
            timer.resolve(&mut encoder);
        }
        self.ctx.queue.submit([encoder.finish()]);
    }

    fn finish(
        &self,
        params: &mut [f64],
        state: &mut [f64],
        count: usize,
        final_epoch: u32,
        options: &TrainOptions,
    ) -> Result<(Vec<NetworkOutcome>, Option<HistoryBlock>), Error> {
        self.write_ops(count, options, final_epoch, final_epoch);
        let last = self.spec.topology.weight_layers() - 1;
        let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
        {
            let mut pass = encoder.begin_compute_pass(&Default::default());
            self.record_forward(&mut pass, RowSet::All, count as u32);
            let sums = (count as u32, 1, 1);
            self.step(
                &mut pass,
                &self.pipelines.evaluate,
                (RowSet::All, last),
                sums,
            );
        }
        let b = &self.buffers;
        let sources = [&b.params, &b.status, &b.final_loss, &b.opt_state];
        buffers::copy_results(&mut encoder, &sources, &b.readback);
        self.ctx.queue.submit([encoder.finish()]);

        let (p, cap) = (self.parameter_count, self.plan.capacity);
        let per_state = self.state_slots * p;
        let frozen = self.spec.frozen_mask();
        let sizes = [b.params.size(), b.status.size(), b.final_loss.size()];
        buffers::read_back(self.ctx, &b.readback, |words| {
            let parts = buffers::split_words(words, &sizes);
            let (values, status_words, loss) = (parts[0], parts[1], parts[2]);
            let device_state = &words[(sizes.iter().sum::<u64>() / 4) as usize..];
            for (i, v) in params.iter_mut().enumerate().take(count * p) {
                // Frozen biases keep their exact float64 value.
                if !frozen[i % p] {
                    *v = f32::from_bits(values[i]) as f64;
                }
            }
            if per_state > 0 {
                for (n, net) in state.chunks_exact_mut(per_state).enumerate().take(count) {
                    for (j, v) in net.iter_mut().enumerate() {
                        let (k, i) = (j / p, j % p);
                        *v = f32::from_bits(device_state[k * cap * p + n * p + i]) as f64;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Topology;

    const LLVMPIPE: AdapterQuirks = AdapterQuirks::LLVMPIPE;

    fn spec(widths: &[usize]) -> ModelSpec {
        ModelSpec {
            topology: Topology::new(widths.to_vec()).unwrap(),
            bias: BiasMode::PerNeuron,
            ..ModelSpec::default()
        }
    }

    fn limits(binding: u64) -> wgpu::Limits {
        wgpu::Limits {
            max_storage_buffer_binding_size: binding,
            max_buffer_size: binding,
            ..wgpu::Limits::default()
        }
    }

    #[test]
    fn plan_lays_out_layers_and_fills_the_binding_limit() {
        // 20 samples of 3-4-1: inputs 60 words; per network 20 * (4 + 1) =
        // 100 words = 400 bytes of activations (21 parameters, 84 bytes).
        let plan = LayeredPlan::new(
            &spec(&[3, 4, 1]),
            20,
            &limits(240 + 4000),
            &LLVMPIPE,
            1_000,
            None,
        )
        .unwrap();
        assert_eq!(plan.capacity, 10);
        assert_eq!(plan.act_base, vec![0, 60, 60 + 10 * 80]);
        assert_eq!(plan.delta_base, vec![0, 0, 10 * 80]);
        assert_eq!(plan.act_words, 60 + 10 * 100);
        assert_eq!(plan.delta_words, 10 * 100);
        assert_eq!(plan.longest_sum, 80);
        // 2 samples: the parameters (84 bytes each) limit the chunk.
        let by_params =
            LayeredPlan::new(&spec(&[3, 4, 1]), 2, &limits(424), &LLVMPIPE, 1_000, None);
        assert_eq!(by_params.unwrap().capacity, 5);
        let capped = LayeredPlan::new(
            &spec(&[3, 4, 1]),
            2,
            &limits(1 << 20),
            &LLVMPIPE,
            1_000,
            Some(3),
        );
        assert_eq!(capped.unwrap().capacity, 3);
    }

    #[test]
    fn each_variant_runs_one_entry_point_per_operation() {
        assert_eq!(
            variant_entry_points(LayeredVariant::Direct),
            [
                "forward_direct",
                "output_delta",
                "backward_direct",
                "weight_update_direct",
                "bias_update",
                "evaluate",
                "epoch_loss",
                "advance",
                "eval_loss",
                "output_rows"
            ]
        );
        assert_eq!(
            variant_entry_points(LayeredVariant::Tiled),
            ENTRY_POINTS[..OPERATIONS]
        );
    }

    #[test]
    fn direct_reductions_shrink_for_short_sums() {
        assert_eq!(direct_reduce_size(1), 1);
        assert_eq!(direct_reduce_size(16), 1);
        assert_eq!(direct_reduce_size(17), 2);
        assert_eq!(direct_reduce_size(42), 4);
        assert_eq!(direct_reduce_size(1_024), 64);
        assert_eq!(
            direct_reduce_size(65_535 * DIRECT_REDUCE_SIZE as u64),
            DIRECT_REDUCE_SIZE
        );
    }

    #[test]
    fn plan_says_what_does_not_fit() {
        let err = LayeredPlan::new(
            &spec(&[256, 256, 10]),
            10_000,
            &limits(1 << 20),
            &LLVMPIPE,
            10,
            None,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("256-256-10 network on 10000 samples"), "{err}");
        assert!(err.contains("1048576 bytes"), "{err}");
        assert!(err.contains("--backend cpu"), "{err}");
    }
}
