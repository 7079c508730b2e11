//! The WGSL sources in `shaders/`, kernel assembly (the status protocol,
//! the kernel's constants, the vocabulary's building blocks, the run's
//! choices from the vocabulary table, then the kernel with its generated
//! statements), and pipeline creation inside error scopes so a failure
//! names the kernel.

use std::fmt::Write;

use crate::error::Error;
use crate::gpu::device::GpuContext;
use crate::gpu::status;
use crate::model::ModelSpec;
use crate::vocab::{Hyperparameter, OptimizerConfig};

/// What the host assumes of a kernel file: its entry points, its bindings
/// and the Rust layout of the uniform struct it reads. tests/
/// shader_interface.rs checks each against the WGSL through naga.
pub struct KernelInterface {
    pub file: &'static str,
    pub entry_points: &'static [&'static str],
    pub bindings: &'static [crate::gpu::buffers::Binding],
    pub uniform: UniformLayout,
}

/// A uniform struct's Rust layout: its WGSL twin's name, its size and
/// every field's byte offset.
pub struct UniformLayout {
    pub wgsl_name: &'static str,
    pub size: usize,
    pub fields: &'static [(&'static str, usize)],
}

/// The [`UniformLayout`] of a `#[repr(C)]` struct, from its field names.
macro_rules! uniform_layout {
    ($ty:ident { $($field:ident),* $(,)? }) => {
        $crate::gpu::shaders::UniformLayout {
            wgsl_name: stringify!($ty),
            size: std::mem::size_of::<$ty>(),
            fields: &[$((stringify!($field), std::mem::offset_of!($ty, $field))),*],
        }
    };
}
pub(crate) use uniform_layout;

/// The file of the vocabulary's building blocks, prepended to every kernel.
pub const VOCABULARY_FILE: &str = "vocabulary.wgsl";

/// The minibatch order's file, prepended to every kernel after the
/// vocabulary (its constants come from [`crate::batches::wgsl_constants`],
/// which each kernel's constants include).
pub const SHUFFLE_FILE: &str = "shuffle.wgsl";

/// Every WGSL file, by name.
pub const SHADER_FILES: &[(&str, &str)] = &[
    (
        VOCABULARY_FILE,
        include_str!("../../shaders/vocabulary.wgsl"),
    ),
    (SHUFFLE_FILE, include_str!("../../shaders/shuffle.wgsl")),
    (
        "fused_train.wgsl",
        include_str!("../../shaders/fused_train.wgsl"),
    ),
    (
        "layered_train.wgsl",
        include_str!("../../shaders/layered_train.wgsl"),
    ),
    ("predict.wgsl", include_str!("../../shaders/predict.wgsl")),
];

/// The text of one file of [`SHADER_FILES`].
pub fn shader_file(name: &str) -> Result<&'static str, Error> {
    SHADER_FILES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, text)| *text)
        .ok_or_else(|| Error::Kernel {
            kernel: name.to_string(),
            message: "no such shader file".to_string(),
        })
}

/// The run's vocabulary as WGSL: the generic names the kernels call,
/// each bound to the building block the table entry names.
pub fn vocabulary_prelude(spec: &ModelSpec) -> String {
    let (hidden, output) = (spec.activation.def(), spec.output_activation.def());
    let (loss, optimizer) = (spec.loss.def(), spec.optimizer.kind.def());
    let mut out = String::from("// The run's vocabulary, bound from src/vocab.rs.\n");
    let bindings = [
        ("hidden_activation", "z: f32", "z", hidden.wgsl),
        (
            "hidden_derivative",
            "z: f32, a: f32",
            "z, a",
            hidden.wgsl_derivative,
        ),
        ("output_activation", "z: f32", "z", output.wgsl),
        (
            "output_derivative",
            "z: f32, a: f32",
            "z, a",
            output.wgsl_derivative,
        ),
        (
            "loss_value",
            "z: f32, yhat: f32, y: f32",
            "z, yhat, y",
            loss.wgsl_value,
        ),
        (
            "loss_delta",
            "yhat: f32, y: f32, slope: f32",
            "yhat, y, slope",
            loss.wgsl_delta,
        ),
    ];
    for (name, params, args, target) in bindings {
        let _ = writeln!(
            out,
            "fn {name}({params}) -> f32 {{ return {target}({args}); }}"
        );
    }
    let _ = writeln!(
        out,
        "fn optimizer_step(p: f32, g: f32, s: ptr<function, vec3<f32>>, k: StepScalars) -> f32 \
         {{ return {}(p, g, s, k); }}",
        optimizer.wgsl
    );
    out.push_str(&step_scalars_struct());
    out.push_str(&optimizer_scalars("optimizer_scalars", &spec.optimizer));
    let _ = writeln!(
        out,
        "const OPTIMIZER_SLOTS: u32 = {}u;",
        optimizer.state.len()
    );
    // Whether the hidden layers' derivative reads their net inputs, which
    // the layered trainer then keeps in the deltas' slots until backward.
    let _ = writeln!(out, "const HIDDEN_NEEDS_NET: bool = {};", hidden.needs_net);
    // Whether the learning rate follows a schedule: the kernels then read
    // each epoch's pair from a table (fused: a uniform; layered: after the
    // networks' rates).
    let _ = writeln!(
        out,
        "const SCHEDULED: bool = {};",
        !spec.schedule.is_constant()
    );
    // Whether a pair's shift can be nonzero (a cosine's minimum rate):
    // without, the fused kernel reads only the scale.
    let _ = writeln!(
        out,
        "const SCHEDULE_SHIFT: bool = {};",
        spec.schedule.has_shift()
    );
    // Whether the output activation is a row form (softmax): the layered
    // trainer then shifts each sample's output nets in its output_rows pass.
    let _ = writeln!(out, "const OUTPUT_ROWS: bool = {};", output.normalizes_rows);
    out
}

/// The WGSL `StepScalars` struct, from the same list as its Rust twin
/// [`crate::vocab::StepScalars`]: lr, step_size, bias2_sqrt, every
/// [`Hyperparameter`] by its name, then `one_minus_{name}` of each, all
/// f32.
pub fn step_scalars_struct() -> String {
    let mut out = String::from(
        "struct StepScalars {\n    lr: f32,\n    step_size: f32,\n    bias2_sqrt: f32,\n",
    );
    for h in Hyperparameter::ALL {
        let _ = writeln!(out, "    {}: f32,", h.name());
    }
    for h in Hyperparameter::ALL {
        let _ = writeln!(out, "    one_minus_{}: f32,", h.name());
    }
    out.push_str("}\n");
    out
}

/// `fn {name}(lr: f32, t: f32) -> StepScalars`: the scalars of update `t`
/// (from 1) for `config`, its hyperparameters as float32 literals and, for
/// a bias-corrected optimizer, `step_size = lr / (1 - beta1^t)` and
/// `sqrt(1 - beta2^t)` by `one_minus_power` from ln(beta) computed here in
/// float64 ([`crate::vocab::StepScalars`]'s twin, field by field).
pub fn optimizer_scalars(name: &str, config: &OptimizerConfig) -> String {
    let (step_size, bias2_sqrt) = match config.kind.def().bias_corrected {
        true => (
            format!(
                "lr / one_minus_power({:?}, t)",
                wgsl_ln(config[Hyperparameter::Beta1])
            ),
            format!(
                "sqrt(one_minus_power({:?}, t))",
                wgsl_ln(config[Hyperparameter::Beta2])
            ),
        ),
        false => ("lr".to_string(), "1.0".to_string()),
    };
    // Each value, then each 1 - value computed in float64.
    let hyper: Vec<String> = Hyperparameter::ALL
        .iter()
        .map(|&h| format!("{:?}", config[h] as f32))
        .chain(
            Hyperparameter::ALL
                .iter()
                .map(|&h| format!("{:?}", (1.0 - config[h]) as f32)),
        )
        .collect();
    format!(
        "fn {name}(lr: f32, t: f32) -> StepScalars {{ \
         return StepScalars(lr, {step_size}, {bias2_sqrt}, {}); }}\n",
        hyper.join(", ")
    )
}

/// `ln(beta)` in float64, as the float32 literal the kernels'
/// `one_minus_power` takes; beta = 0 (ln = -inf, which WGSL cannot write)
/// becomes -1e30, whose exp is 0 all the same.
pub fn wgsl_ln(beta: f64) -> f32 {
    if beta > 0.0 { beta.ln() as f32 } else { -1e30 }
}

/// Builds a kernel's full source: the status protocol, `constants`, the
/// vocabulary file, [`vocabulary_prelude`] for `spec`, then the kernel file
/// with every `//@name` line replaced by `fill(name)`.
pub fn assemble(
    kernel_file: &str,
    spec: &ModelSpec,
    constants: &str,
    fill: impl Fn(&str) -> Option<String>,
) -> Result<String, Error> {
    let mut source = String::with_capacity(16 * 1024);
    source.push_str(&status::wgsl_constants());
    source.push_str(constants);
    source.push_str(shader_file(VOCABULARY_FILE)?);
    source.push_str(shader_file(SHUFFLE_FILE)?);
    source.push_str(&vocabulary_prelude(spec));
    for line in shader_file(kernel_file)?.lines() {
        match line.trim().strip_prefix("//@") {
            Some(name) => source.push_str(&fill(name).ok_or_else(|| Error::Kernel {
                kernel: kernel_file.to_string(),
                message: format!("no generator for the marker //@{name}"),
            })?),
            None => {
                source.push_str(line);
                source.push('\n');
            }
        }
    }
    Ok(source)
}

/// Compiles `source` and builds one compute pipeline per entry point, all
/// with `layout`. Validation and internal errors become [`Error::Kernel`].
pub fn build_pipelines(
    ctx: &GpuContext,
    kernel: &str,
    source: &str,
    layout: &wgpu::PipelineLayout,
    entry_points: &[&str],
) -> Result<Vec<wgpu::ComputePipeline>, Error> {
    let validation = ctx.device.push_error_scope(wgpu::ErrorFilter::Validation);
    let internal = ctx.device.push_error_scope(wgpu::ErrorFilter::Internal);
    let module = ctx
        .device
        .create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(kernel),
            source: wgpu::ShaderSource::Wgsl(source.into()),
        });
    let pipelines = entry_points
        .iter()
        .map(|entry| {
            ctx.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(&format!("{kernel}::{entry}")),
                    layout: Some(layout),
                    module: &module,
                    entry_point: Some(entry),
                    compilation_options: Default::default(),
                    cache: None,
                })
        })
        .collect();
    let internal = pollster::block_on(internal.pop());
    let validation = pollster::block_on(validation.pop());
    match validation.or(internal) {
        Some(e) => Err(Error::Kernel {
            kernel: kernel.to_string(),
            message: e.to_string(),
        }),
        None => Ok(pipelines),
    }
}
