//! Walks the vocabulary tables (src/vocab.rs) and checks every entry's
//! float32 twins against its float64 formula: the WGSL building block on
//! the GPU and the SIMD trainer's lane twin (src/simd/kernel.rs), at many
//! points: zero, tiny, moderate and large |z|, the saturation regions, and
//! NaN passing through. A new entry is tested the moment it is added.

use crate::common;

use gputrain::gpu::buffers::{self, Access, Binding};
use gputrain::gpu::shaders::{self, VOCABULARY_FILE};
use gputrain::simd::kernel::{self as lanes_twin, Step};
use gputrain::simd::lanes;

/// The lane twins are probed on groups of 16 (one AVX-512 register).
type Lanes = lanes::Lanes<16>;
use gputrain::vocab::{
    ACTIVATIONS, Hyperparameter as H, LOSSES, OPTIMIZERS, Optimizer, OptimizerConfig, State,
};
use wgpu::util::DeviceExt;

/// Net inputs: zero, tiny, moderate, the saturation regions and beyond
/// float32's exp range.
const Z: [f64; 25] = [
    -1e4, -200.0, -90.0, -30.0, -17.0, -9.5, -5.0, -2.0, -1.0, -0.5, -1e-3, -1e-7, 0.0, 1e-7, 1e-3,
    0.5, 1.0, 2.0, 5.0, 9.5, 17.0, 30.0, 90.0, 200.0, 1e4,
];
/// Targets, within every output's range.
const Y: [f64; 4] = [0.0, 0.25, 0.9, 1.0];

const BINDINGS: &[Binding] = &[
    Binding {
        name: "inputs",
        access: Access::Read,
    },
    Binding {
        name: "outputs",
        access: Access::ReadWrite,
    },
];

/// Evaluates `call` (a WGSL expression of `a`, `b`, `c`) on the GPU for
/// every triple of `args`.
fn on_gpu(call: &str, args: &[[f64; 3]]) -> Vec<f64> {
    let ctx = common::gpu();
    let source = format!(
        "{}\n{}\n@group(0) @binding(0) var<storage, read> inputs: array<f32>;\n\
         @group(0) @binding(1) var<storage, read_write> outputs: array<f32>;\n\
         @compute @workgroup_size(64)\n\
         fn probe(@builtin(global_invocation_id) id: vec3<u32>) {{\n\
             let i = id.x;\n\
             if i >= arrayLength(&outputs) {{ return; }}\n\
             let a = inputs[3u * i];\n\
             let b = inputs[3u * i + 1u];\n\
             let c = inputs[3u * i + 2u];\n\
             outputs[i] = {call};\n\
         }}\n",
        shaders::shader_file(VOCABULARY_FILE).unwrap(),
        optimizer_probes()
    );
    let (layout, pipeline_layout) = buffers::layouts(ctx, "probe", BINDINGS);
    let pipeline = shaders::build_pipelines(ctx, "probe", &source, &pipeline_layout, &["probe"])
        .unwrap_or_else(|e| panic!("probe of {call}: {e}"))
        .remove(0);
    let flat: Vec<f32> = args.iter().flatten().map(|&v| v as f32).collect();
    let inputs = ctx
        .device
        .create_buffer_init(&wgpu::util::BufferInitDescriptor {
            label: Some("probe inputs"),
            contents: bytemuck::cast_slice(&flat),
            usage: wgpu::BufferUsages::STORAGE,
        });
    let bytes = 4 * args.len() as u64;
    let copy = wgpu::BufferUsages::COPY_SRC;
    let outputs = buffers::storage_buffer(ctx, "probe outputs", bytes, copy);
    let readback = buffers::readback_buffer(ctx, bytes);
    let group = buffers::bind_group(
        ctx,
        "probe",
        &layout,
        BINDINGS,
        vec![inputs.as_entire_binding(), outputs.as_entire_binding()],
    );
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&pipeline);
        pass.set_bind_group(0, &group, &[]);
        pass.dispatch_workgroups((args.len() as u32).div_ceil(64), 1, 1);
    }
    encoder.copy_buffer_to_buffer(&outputs, 0, &readback, 0, bytes);
    ctx.queue.submit([encoder.finish()]);
    buffers::read_back(ctx, &readback, |words| {
        words.iter().map(|w| f32::from_bits(*w) as f64).collect()
    })
    .unwrap()
}

/// float32 vs float64 of one function: `|f32 - f64| <= TOL |f64| + ABS`,
/// or both the same non-finite value. Inputs are rounded to float32 first,
/// so the f64 side sees exactly what the float32 twins saw. Measured over
/// every entry on lavapipe (llvmpipe, Mesa 22.3.6) and on the SIMD twins
/// (AVX-512, AMD EPYC Zen 5, the 2-core development machine): the worst
/// relative difference where |f64| > 1e-3 was 1.5e-6, GELU-tanh's
/// derivative on both (float32's rounding of its argument u, amplified
/// through sigmoid(2u) where |2u| reaches 17: the function's conditioning
/// in float32, PyTorch's float32 alike), then 6.6e-7 (SiLU's derivative)
/// and 4.2e-7 (the cross-entropy's exp and log); TOL is 10x the worst. The
/// worst absolute difference where |f64| <= 1e-3 was 1.9e-8 (tanh near 0),
/// and ABS is 10x that.
const TOL: f64 = 1.5e-5;
const ABS: f64 = 2e-7;

/// Checks the WGSL `call` on the GPU and the SIMD twin `lane` (of the
/// float32 arguments) against `f64_twin` at every triple of `args`.
fn check(
    what: &str,
    call: &str,
    args: &[[f64; 3]],
    lane: impl Fn([f32; 3]) -> f32,
    f64_twin: impl Fn([f64; 3]) -> f64,
) {
    let on_lanes: Vec<f64> = args
        .iter()
        .map(|a| lane(a.map(|v| v as f32)) as f64)
        .collect();
    for (twin, got) in [("GPU", on_gpu(call, args)), ("SIMD", on_lanes)] {
        let (mut worst_rel, mut worst_abs) = (0.0f64, 0.0f64);
        for (arg, g) in args.iter().zip(&got) {
            let a32 = arg.map(|v| v as f32 as f64);
            let want = f64_twin(a32);
            if !want.is_finite() {
                assert!(
                    g.is_nan() == want.is_nan() && (want.is_nan() || *g == want),
                    "{what} at {a32:?}: {twin} {g}, f64 {want}"
                );
                continue;
            }
            let diff = (g - want).abs();
            assert!(
                diff <= TOL * want.abs() + ABS,
                "{what} at {a32:?}: {twin} {g}, f64 {want}, |diff| {diff:e} > {:e}",
                TOL * want.abs() + ABS
            );
            if want.abs() > 1e-3 {
                worst_rel = worst_rel.max(diff / want.abs());
            } else {
                worst_abs = worst_abs.max(diff);
            }
        }
        eprintln!(
            "{what} ({twin}): worst relative {worst_rel:e}, worst absolute near 0 {worst_abs:e}, {} points",
            args.len()
        );
    }
}

/// `f` of lanes all holding `x`, lane 0's value.
fn one_lane(x: f32, f: impl Fn(Lanes) -> Lanes) -> f32 {
    f(Lanes::splat(x)).0[0]
}

#[test]
fn every_activation_matches_its_f64_twin() {
    for def in ACTIVATIONS {
        // A row form's function takes the shifted net input, a
        // log-probability: z <= 0 only.
        let args: Vec<[f64; 3]> = Z
            .iter()
            .filter(|&&z| !def.normalizes_rows || z <= 0.0)
            .map(|&z| [z, 0.0, 0.0])
            .collect();
        let act = def.activation;
        check(
            &format!("{act:?} f"),
            &format!("{}(a)", def.wgsl),
            &args,
            |[z, ..]| one_lane(z, |z| lanes_twin::activate(act, z)),
            |[z, ..]| (def.f)(z),
        );
        // The derivative at (z, the output the activation gives there),
        // the output rounded as the trainers hold it.
        let pairs: Vec<[f64; 3]> = args
            .iter()
            .map(|&[z, ..]| [z, (def.f)(z as f32 as f64) as f32 as f64, 0.0])
            .filter(|a| a[1].is_finite() && a[1].abs() < 1e30)
            .collect();
        check(
            &format!("{act:?} derivative"),
            &format!("{}(a, b)", def.wgsl_derivative),
            &pairs,
            |[z, a, _]| lanes_twin::derivative(act, Lanes::splat(z), Lanes::splat(a)).0[0],
            |[z, a, _]| (def.derivative)(z, a),
        );
        // NaN passes through the function: a diverging network stays visible.
        let nan = on_gpu(&format!("{}(a / a)", def.wgsl), &[[0.0, 0.0, 0.0]]);
        let lane = one_lane(f32::NAN, |z| lanes_twin::activate(act, z));
        assert!(
            nan[0].is_nan() && lane.is_nan(),
            "{act:?} of NaN gave {} on the GPU, {lane} on the lanes",
            nan[0]
        );
    }
}

#[test]
fn every_loss_matches_its_f64_twin() {
    for def in LOSSES {
        for output in ACTIVATIONS.iter().filter(|a| a.as_output) {
            if !def.loss.accepts_output(output.activation) {
                continue;
            }
            // (z, yhat = f(z), y), yhat rounded as the GPU holds it.
            let args: Vec<[f64; 3]> = Z
                .iter()
                .flat_map(|&z| Y.map(|y| [z, (output.f)(z as f32 as f64) as f32 as f64, y]))
                .filter(|a| a[1].abs() < 1e3)
                .collect();
            let loss = def.loss;
            check(
                &format!("{loss:?} value, {:?} output", output.activation),
                &format!("{}(a, b, c)", def.wgsl_value),
                &args,
                |[z, yhat, y]| {
                    lanes_twin::loss_value(loss, Lanes::splat(z), Lanes::splat(yhat), y).0[0]
                },
                |[z, yhat, y]| (def.value)(z, yhat, y),
            );
            let deltas: Vec<[f64; 3]> = args
                .iter()
                .map(|&[z, yhat, y]| [yhat, y, (output.derivative)(z, yhat)])
                .collect();
            check(
                &format!("{loss:?} delta, {:?} output", output.activation),
                &format!("{}(a, b, c)", def.wgsl_delta),
                &deltas,
                |[yhat, y, slope]| {
                    lanes_twin::loss_delta(loss, Lanes::splat(yhat), y, Lanes::splat(slope)).0[0]
                },
                |[yhat, y, slope]| (def.delta)(yhat, y, slope),
            );
        }
    }
}

/// The configurations each optimizer is probed with, at update t = 3 and
/// lr 0.1: momentum 0.9, betas (0.8, 0.999), eps 1e-8, alpha 0.9, not
/// centered and no weight decay; then weight decay 0.05; then centered;
/// then centered without momentum and with weight decay. (A variant that
/// changes a hyperparameter the optimizer does not use repeats the base.)
fn probe_configs(kind: Optimizer) -> [OptimizerConfig; 4] {
    let base = OptimizerConfig::of(kind)
        .with(H::Momentum, 0.9)
        .with(H::Beta1, 0.8)
        .with(H::Beta2, 0.999)
        .with(H::Eps, 1e-8)
        .with(H::Alpha, 0.9)
        .with(H::Centered, 0.0)
        .with(H::WeightDecay, 0.0);
    [
        base,
        base.with(H::WeightDecay, 0.05),
        base.with(H::Centered, 1.0),
        base.with(H::Centered, 1.0)
            .with(H::Momentum, 0.0)
            .with(H::WeightDecay, 0.05),
    ]
}

/// Probe arguments' `which`: variant (of [`probe_configs`]) x 4 + the
/// value read (0 the new parameter, 1, 2, 3 the state slots).
const PROBE_READS: usize = 4;

/// The state a probe starts from, from the gradient: nonzero in every
/// slot, as after a few updates (RMSprop's centered `v - grad_avg^2`
/// stays positive).
fn probe_state(g: f64) -> State<f64> {
    [0.3 * g, 0.5 * g * g + 1e-4, 0.2 * g]
}

/// One WGSL probe per optimizer, `probe_{wgsl}(p, g, which)`: one step
/// from [`probe_state`] with the scalars of a [`probe_configs`] variant,
/// each generated by the kernels' own `optimizer_scalars` generator.
fn optimizer_probes() -> String {
    let mut out = shaders::step_scalars_struct();
    for def in OPTIMIZERS {
        let name = def.wgsl;
        let configs = probe_configs(def.optimizer);
        for (v, config) in configs.iter().enumerate() {
            out.push_str(&shaders::optimizer_scalars(
                &format!("scalars_{name}_{v}"),
                config,
            ));
        }
        let pick: String = (1..configs.len())
            .map(|v| format!("    if v == {v}u {{ k = scalars_{name}_{v}(0.1, 3.0); }}\n"))
            .collect();
        out.push_str(&format!(
            "fn probe_{name}(p: f32, g: f32, which: f32) -> f32 {{\n\
             var s = vec3<f32>(0.3 * g, 0.5 * g * g + 1e-4, 0.2 * g);\n\
             let v = u32(which) / {PROBE_READS}u;\n\
             var k = scalars_{name}_0(0.1, 3.0);\n{pick}\
             let q = {name}(p, g, &s, k);\n\
             let w = u32(which) % {PROBE_READS}u;\n\
             return select(select(select(s.z, s.y, w == 2u), s.x, w == 1u), q, w == 0u);\n}}\n"
        ));
    }
    out
}

#[test]
fn every_optimizer_matches_its_f64_twin() {
    for def in OPTIMIZERS {
        let kind = def.optimizer;
        let configs = probe_configs(kind);
        let mut args: Vec<[f64; 3]> = Vec::new();
        for (p, g) in [
            (0.3, 0.02),
            (-1.5, 3.0),
            (2.0, -1e-4),
            (0.7, 0.0),
            (-0.2, -0.4),
        ] {
            for which in 0..configs.len() * PROBE_READS {
                args.push([p, g, which as f64]);
            }
        }
        let split = |which: usize| (&configs[which / PROBE_READS], which % PROBE_READS);
        check(
            &format!("{kind:?} step"),
            &format!("probe_{}(a, b, c)", def.wgsl),
            &args,
            |[p, g, which]| {
                let (config, read) = split(which as usize);
                let k = Step::<16>::splat(config.scalars(0.1, 3).to_f32());
                let mut s = probe_state(g as f64).map(|v| Lanes::splat(v as f32));
                let q =
                    lanes_twin::optimizer_step(kind, Lanes::splat(p), Lanes::splat(g), &mut s, &k);
                [q, s[0], s[1], s[2]][read].0[0]
            },
            |[p, g, which]| {
                let (config, read) = split(which as usize);
                let k = config.scalars(0.1, 3);
                let mut s = probe_state(g as f32 as f64).map(|v| v as f32 as f64);
                let q = (def.step)(p, g, &mut s, &k);
                [q, s[0], s[1], s[2]][read]
            },
        );
    }
}
