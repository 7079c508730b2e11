//! Forward passes on the GPU for `gputrain predict`: every chosen network's
//! outputs on every sample, from `shaders/predict.wgsl`, whose statements
//! come from the fused trainer's generator ([`emit_forward`]). Networks go
//! in chunks that fit the adapter's binding limits; the CPU twin is
//! [`crate::cpu::predict`].

use std::fmt::Write;

use bytemuck::{Pod, Zeroable};
use wgpu::util::DeviceExt;

use crate::error::Error;
use crate::gpu::buffers::{self, Access, Binding, storage_buffer};
use crate::gpu::chunking::{dispatch_grid, network_chunk_capacity};
use crate::gpu::device::GpuContext;
use crate::gpu::fused_codegen::{FUSED_MAX_PARAMETERS, WORKGROUP_SIZE, emit_forward};
use crate::gpu::shaders;
use crate::model::ModelSpec;

pub const KERNEL: &str = "predict.wgsl";
/// The kernel's entry points.
pub const ENTRY_POINTS: [&str; 1] = ["predict"];

/// The kernel's buffers, binding `i` at index `i`.
pub const BINDINGS: &[Binding] = &[
    Binding {
        name: "cfg",
        access: Access::Uniform {
            dynamic_offset: false,
        },
    },
    Binding {
        name: "inputs",
        access: Access::Read,
    },
    Binding {
        name: "params",
        access: Access::Read,
    },
    Binding {
        name: "outputs",
        access: Access::ReadWrite,
    },
];

/// What the host assumes of the kernel file.
pub const INTERFACE: shaders::KernelInterface = shaders::KernelInterface {
    file: KERNEL,
    entry_points: &ENTRY_POINTS,
    bindings: BINDINGS,
    uniform: shaders::uniform_layout!(PredictConfig {
        network_count,
        sample_count,
        grid_width,
        _pad,
    }),
};

/// The WGSL twin is `PredictConfig` in shaders/predict.wgsl.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct PredictConfig {
    network_count: u32,
    sample_count: u32,
    grid_width: u32,
    _pad: u32,
}

/// The kernel's full source for `spec`.
pub fn source(spec: &ModelSpec) -> Result<String, Error> {
    let layout = spec.layout();
    // The shuffle file every kernel includes needs its constants, unused here.
    let constants = format!(
        "const WORKGROUP_SIZE: u32 = {WORKGROUP_SIZE}u;\n\
         const INPUTS: u32 = {}u;\n\
         const OUTPUTS: u32 = {}u;\n\
         const PARAMETERS: u32 = {}u;\n{}",
        spec.topology.inputs(),
        spec.topology.outputs(),
        layout.len,
        crate::batches::wgsl_constants(1, None)
    );
    shaders::assemble(KERNEL, spec, &constants, |marker| {
        (marker == "forward").then(|| {
            const IND: &str = "    ";
            let mut out = String::new();
            for i in 0..layout.len {
                let _ = writeln!(out, "{IND}let p{i} = params[base + {i}u];");
            }
            let rows = spec.output_activation.def().normalizes_rows;
            let input = |k| format!("inputs[at + {k}u]");
            emit_forward(&layout, rows, input, IND, &mut out);
            let last = layout.layers.len();
            for j in 0..spec.topology.outputs() {
                let _ = writeln!(out, "{IND}outputs[out + {j}u] = a{last}_{j};");
            }
            out
        })
    })
}

/// Whether the predict kernel holds this network: its straight-line
/// forward pass keeps every parameter in a register, as the fused
/// trainer's does, so the same limit applies.
pub fn predict_supports(spec: &ModelSpec) -> Result<(), Error> {
    let p = spec.layout().len;
    if p > FUSED_MAX_PARAMETERS {
        return Err(Error::TooLarge(format!(
            "a {} network has {p} parameters; the GPU predict kernel holds at most \
             {FUSED_MAX_PARAMETERS} per network (use {})",
            spec.topology,
            crate::setting::settings::BACKEND.is("cpu")
        )));
    }
    Ok(())
}

/// Runs forward passes of many networks of one model on the GPU.
pub struct GpuPredictor<'a> {
    ctx: &'a GpuContext,
    parameter_count: usize,
    outputs: usize,
    pipeline: wgpu::ComputePipeline,
    bind_group_layout: wgpu::BindGroupLayout,
}

impl<'a> GpuPredictor<'a> {
    /// Builds the kernel for `spec`.
    pub fn new(ctx: &'a GpuContext, spec: &ModelSpec) -> Result<Self, Error> {
        predict_supports(spec)?;
        let (bind_group_layout, pipeline_layout) = buffers::layouts(ctx, KERNEL, BINDINGS);
        let mut pipelines =
            shaders::build_pipelines(ctx, KERNEL, &source(spec)?, &pipeline_layout, &ENTRY_POINTS)?;
        Ok(Self {
            ctx,
            parameter_count: spec.layout().len,
            outputs: spec.topology.outputs(),
            pipeline: pipelines.pop().expect("one pipeline"),
            bind_group_layout,
        })
    }

    /// The outputs of every network in `params` (vectors back to back) on
    /// every sample of `inputs` (sample after sample), as
    /// `[network][sample][output]`.
    pub fn predict(
        &self,
        params: &[f64],
        inputs: &[f32],
        samples: usize,
    ) -> Result<Vec<f32>, Error> {
        let p = self.parameter_count;
        let networks = params.len() / p.max(1);
        let limits = &self.ctx.limits;
        let input_bytes = std::mem::size_of_val(inputs) as u64;
        if input_bytes > limits.max_storage_buffer_binding_size {
            return Err(Error::TooLarge(format!(
                "the data's inputs take {input_bytes} bytes; adapter '{}' binds at most {}",
                self.ctx.adapter.name, limits.max_storage_buffer_binding_size
            )));
        }
        // One invocation per (network, sample): the outputs buffer is the
        // largest per network.
        let per_network = 4 * (samples * self.outputs).max(p) as u64;
        // A chunk's invocations, networks x samples, must fit the 2-D grid
        // and the kernel's u32 index.
        let dim = limits.max_compute_workgroups_per_dimension as u64;
        let grid = (dim * dim * WORKGROUP_SIZE as u64).min(u32::MAX as u64);
        let by_invocations = (grid / samples.max(1) as u64).max(1) as usize;
        let capacity = network_chunk_capacity(
            limits,
            per_network,
            WORKGROUP_SIZE,
            networks,
            Some(by_invocations),
        );
        let inputs_buffer = self
            .ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("predict inputs"),
                contents: bytemuck::cast_slice(inputs),
                usage: wgpu::BufferUsages::STORAGE,
            });
        let params_buffer = storage_buffer(
            self.ctx,
            "predict parameters",
            4 * (capacity * p) as u64,
            wgpu::BufferUsages::COPY_DST,
        );
        let out_bytes = 4 * (capacity * samples * self.outputs) as u64;
        let outputs = storage_buffer(
            self.ctx,
            "predictions",
            out_bytes,
            wgpu::BufferUsages::COPY_SRC,
        );
        let readback = buffers::readback_buffer(self.ctx, out_bytes);
        let config = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("predict config"),
            size: std::mem::size_of::<PredictConfig>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind_group = buffers::bind_group(
            self.ctx,
            KERNEL,
            &self.bind_group_layout,
            BINDINGS,
            vec![
                config.as_entire_binding(),
                inputs_buffer.as_entire_binding(),
                params_buffer.as_entire_binding(),
                outputs.as_entire_binding(),
            ],
        );
        let max_per_dimension = limits.max_compute_workgroups_per_dimension;
        let mut all = Vec::with_capacity(networks * samples * self.outputs);
        for first in (0..networks).step_by(capacity) {
            let count = capacity.min(networks - first);
            let chunk: Vec<f32> = params[first * p..(first + count) * p]
                .iter()
                .map(|&v| v as f32)
                .collect();
            self.ctx
                .queue
                .write_buffer(&params_buffer, 0, bytemuck::cast_slice(&chunk));
            let grid = dispatch_grid(count * samples, WORKGROUP_SIZE, max_per_dimension);
            let cfg = PredictConfig {
                network_count: count as u32,
                sample_count: samples as u32,
                grid_width: grid.row_invocations,
                _pad: 0,
            };
            self.ctx
                .queue
                .write_buffer(&config, 0, bytemuck::bytes_of(&cfg));
            let mut encoder = self.ctx.device.create_command_encoder(&Default::default());
            {
                let mut pass = encoder.begin_compute_pass(&Default::default());
                pass.set_pipeline(&self.pipeline);
                pass.set_bind_group(0, &bind_group, &[]);
                pass.dispatch_workgroups(grid.x, grid.y, 1);
            }
            let bytes = 4 * (count * samples * self.outputs) as u64;
            encoder.copy_buffer_to_buffer(&outputs, 0, &readback, 0, bytes);
            self.ctx.queue.submit([encoder.finish()]);
            let words = (bytes / 4) as usize;
            buffers::read_back(self.ctx, &readback, |w| {
                all.extend(w[..words].iter().map(|&b| f32::from_bits(b)));
            })?;
        }
        Ok(all)
    }
}
