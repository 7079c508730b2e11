//! The WGSL sources in `shaders/`, kernel assembly (constants + shared
//! building blocks + the kernel with its generated statements), and pipeline
//! creation inside error scopes so a failure names the kernel.

use crate::error::Error;
use crate::gpu::device::GpuContext;

/// Every WGSL file, by name. `common.wgsl` is prepended to every kernel.
pub const SHADER_FILES: &[(&str, &str)] = &[
    ("common.wgsl", include_str!("../../shaders/common.wgsl")),
    (
        "fused_train.wgsl",
        include_str!("../../shaders/fused_train.wgsl"),
    ),
    (
        "layered_train.wgsl",
        include_str!("../../shaders/layered_train.wgsl"),
    ),
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

/// Builds a kernel's full source: `constants`, then `common.wgsl`, then the
/// kernel file with every `//@name` line replaced by `fill(name)`.
pub fn assemble(
    kernel_file: &str,
    constants: &str,
    fill: impl Fn(&str) -> Option<String>,
) -> Result<String, Error> {
    let mut source = String::with_capacity(16 * 1024);
    source.push_str(constants);
    source.push_str(shader_file("common.wgsl")?);
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
