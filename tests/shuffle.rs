//! The minibatch order's WGSL twin (shaders/shuffle.wgsl) against
//! src/batches.rs, bit for bit: the GPU kernels and the CPU reference must
//! visit the same samples in the same order every epoch.

use crate::common;

use gputrain::batches::{Batching, EpochOrder, wgsl_constants};
use gputrain::gpu::buffers::{self, Access, Binding};
use gputrain::gpu::shaders::{self, SHUFFLE_FILE};

const BINDINGS: &[Binding] = &[Binding {
    name: "order",
    access: Access::ReadWrite,
}];

/// The order of `epoch` over `samples` samples, computed on the GPU.
fn order_on_gpu(samples: usize, seed: u64, epoch: u32) -> Vec<u32> {
    let ctx = common::gpu();
    let batching = Batching {
        size: 1,
        shuffle: true,
        seed,
    };
    let source = format!(
        "{}{}\n@group(0) @binding(0) var<storage, read_write> order: array<u32>;\n\
         @compute @workgroup_size(64)\n\
         fn probe(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
             if id.x < DATA_SAMPLES {{\n\
                 order[id.x] = sample_at(id.x, epoch_keys({epoch}u));\n\
             }}\n\
         }}\n",
        wgsl_constants(samples, Some(&batching)),
        shaders::shader_file(SHUFFLE_FILE).unwrap(),
    );
    let (layout, pipeline_layout) = buffers::layouts(ctx, "order", BINDINGS);
    let pipeline = shaders::build_pipelines(ctx, "order", &source, &pipeline_layout, &["probe"])
        .unwrap_or_else(|e| panic!("the order probe: {e}"))
        .remove(0);
    let bytes = 4 * samples as u64;
    let order = buffers::storage_buffer(ctx, "order", bytes, wgpu::BufferUsages::COPY_SRC);
    let readback = buffers::readback_buffer(ctx, bytes);
    let group = buffers::bind_group(
        ctx,
        "order",
        &layout,
        BINDINGS,
        vec![order.as_entire_binding()],
    );
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups((samples as u32).div_ceil(64), 1, 1);
    }
    encoder.copy_buffer_to_buffer(&order, 0, &readback, 0, bytes);
    ctx.queue.submit([encoder.finish()]);
    buffers::read_back(ctx, &readback, |words| words.to_vec()).unwrap()
}

#[test]
fn the_gpu_visits_the_samples_in_the_references_order() {
    for samples in [1, 3, 4, 37, 1_000, 1_024, 4_097] {
        for (seed, epoch) in [(0, 0), (5, 1), (u64::MAX, 123_456), (1 << 40, 7)] {
            let order = EpochOrder::new(samples, seed, epoch as u64);
            let expected: Vec<u32> = (0..samples as u32).map(|p| order.sample(p)).collect();
            let got = order_on_gpu(samples, seed, epoch);
            if let Some(p) = (0..samples).find(|&p| got[p] != expected[p]) {
                panic!(
                    "{samples} samples, seed {seed}, epoch {epoch}: position {p} visits sample {} \
                     on the GPU, {} on the CPU",
                    got[p], expected[p]
                );
            }
        }
    }
}
