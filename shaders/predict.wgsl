// Forward passes for `gputrain predict`: one invocation computes one
// network's outputs for one sample. The forward statements (`//@forward`)
// come from the same generator as the fused trainer's
// (src/gpu/fused_codegen.rs, emit_forward), calling the run's
// hidden_activation and output_activation; src/gpu/predict.rs prepends
// WORKGROUP_SIZE, INPUTS, OUTPUTS and PARAMETERS.

// Keep in sync with PredictConfig in src/gpu/predict.rs.
struct PredictConfig {
    network_count: u32,
    sample_count: u32,
    grid_width: u32,
    _pad: u32,
}

@group(0) @binding(0) var<uniform> cfg: PredictConfig;
// Sample s's inputs at [s * INPUTS + k].
@group(0) @binding(1) var<storage, read> inputs: array<f32>;
// Network n's parameter vector at [n * PARAMETERS + i].
@group(0) @binding(2) var<storage, read> params: array<f32>;
// Output j of network n for sample s at [(n * sample_count + s) * OUTPUTS + j].
@group(0) @binding(3) var<storage, read_write> outputs: array<f32>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn predict(@builtin(global_invocation_id) gid: vec3<u32>) {
    let index = gid.y * cfg.grid_width + gid.x;
    if index >= cfg.network_count * cfg.sample_count {
        return;
    }
    let n = index / cfg.sample_count;
    let s = index % cfg.sample_count;
    let base = n * PARAMETERS;
    let at = s * INPUTS;
    let out = index * OUTPUTS;
//@forward
}
