//! Every kernel, assembled for every strategy x activation x output
//! activation x bias mode (and each loss), validates with naga (no
//! optional capabilities: stricter than any adapter) and builds on the test
//! adapter with its real features; and what the host assumes of each kernel
//! file (entry points, bindings, the uniform struct's layout) matches the
//! WGSL as naga reflects it.

use crate::common;

use gputrain::data::{Dataset, Task};
use gputrain::gpu::buffers::{self, Access};
use gputrain::gpu::shaders::{self, KernelInterface, SHADER_FILES, VOCABULARY_FILE, shader_file};
use gputrain::gpu::{fused, layered, predict};
use gputrain::model::{ACTIVATIONS, Activation, BiasMode, Loss, ModelSpec, Topology};
use naga::{AddressSpace, StorageAccess, TypeInner};

fn parse(label: &str, source: &str) -> naga::Module {
    let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| {
        panic!(
            "{label} does not parse:\n{}",
            e.emit_to_string_with_path(source, label)
        )
    });
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::empty(),
    )
    .validate(&module)
    .unwrap_or_else(|e| {
        panic!(
            "{label} does not validate:\n{}",
            e.emit_to_string_with_path(source, label)
        )
    });
    module
}

/// Every model the kernels are assembled for: each hidden activation x
/// output activation x bias mode with half-sse, and cross-entropy with
/// each bias mode; frozen biases once more for the fused code generator.
fn specs() -> Vec<ModelSpec> {
    let mut specs = Vec::new();
    for hidden in ACTIVATIONS.iter().filter(|a| a.as_hidden) {
        for output in ACTIVATIONS.iter().filter(|a| a.as_output) {
            for bias in BiasMode::ALL {
                specs.push(ModelSpec {
                    topology: Topology::new(vec![3, 4, 2, 2]).unwrap(),
                    bias,
                    activation: hidden.activation,
                    output_activation: output.activation,
                    // The loss the output requires, if any (softmax's).
                    loss: output.requires_loss.unwrap_or_default(),
                    ..ModelSpec::default()
                });
            }
        }
    }
    for bias in BiasMode::ALL {
        for freeze_bias in [false, true] {
            specs.push(ModelSpec {
                topology: Topology::new(vec![3, 4, 2]).unwrap(),
                bias,
                freeze_bias,
                activation: Activation::Tanh,
                loss: Loss::CrossEntropy,
                ..ModelSpec::default()
            });
        }
    }
    specs
}

fn data_for(spec: &ModelSpec, samples: usize) -> Dataset {
    common::synthetic_dataset(spec.topology.inputs(), spec.topology.outputs(), samples, 1)
}

fn describe(spec: &ModelSpec) -> String {
    format!(
        "{} {} {}/{} {} freeze={}",
        spec.topology,
        spec.bias,
        spec.activation,
        spec.output_activation,
        spec.loss,
        spec.freeze_bias
    )
}

/// Validates `source` with naga and builds every entry point on the test
/// adapter.
fn check_builds(interface: &KernelInterface, label: &str, source: &str) {
    parse(label, source);
    let ctx = common::gpu();
    let (_, layout) = buffers::layouts(ctx, label, interface.bindings);
    shaders::build_pipelines(ctx, label, source, &layout, interface.entry_points)
        .unwrap_or_else(|e| panic!("{label} does not build on {}: {e}", ctx.adapter));
}

#[test]
fn every_fused_kernel_validates_and_builds() {
    for spec in specs() {
        // 6 samples are baked in as literals, 40 read from the buffer.
        for samples in [6, 40] {
            let label = format!("fused_train.wgsl ({}, {samples} samples)", describe(&spec));
            let source = fused::source(&spec, &data_for(&spec, samples)).unwrap();
            check_builds(&fused::INTERFACE, &label, &source);
        }
    }
}

#[test]
fn every_layered_kernel_validates_and_builds() {
    for spec in specs() {
        for reduce_size in [1, 64, 256] {
            let label = format!(
                "layered_train.wgsl ({}, reduce {reduce_size})",
                describe(&spec)
            );
            let source = layered::source(&spec, 6, reduce_size).unwrap();
            check_builds(&layered::INTERFACE, &label, &source);
        }
    }
}

#[test]
fn every_predict_kernel_validates_and_builds() {
    for spec in specs() {
        let label = format!("predict.wgsl ({})", describe(&spec));
        check_builds(
            &predict::INTERFACE,
            &label,
            &predict::source(&spec).unwrap(),
        );
    }
}

#[test]
fn kernel_files_match_what_the_host_assumes() {
    let spec = ModelSpec::default();
    let data = Task::Tutorial.dataset();
    let kernels = [
        (fused::INTERFACE, fused::source(&spec, &data).unwrap()),
        (layered::INTERFACE, layered::source(&spec, 1, 64).unwrap()),
        (predict::INTERFACE, predict::source(&spec).unwrap()),
    ];
    for (interface, source) in &kernels {
        let file = interface.file;
        let module = parse(file, source);
        // Entry points: exactly those the host names.
        let mut found: Vec<&str> = module
            .entry_points
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        let mut wanted = interface.entry_points.to_vec();
        found.sort_unstable();
        wanted.sort_unstable();
        assert_eq!(found, wanted, "{file}: entry points");
        // Bindings: every global with a binding is in the table, at its
        // index, with the table's access; and every table entry is bound.
        let mut bound = 0;
        for (_, var) in module.global_variables.iter() {
            let Some(binding) = &var.binding else {
                continue;
            };
            bound += 1;
            let name = var.name.as_deref().unwrap_or("?");
            assert_eq!(binding.group, 0, "{file}: {name} is not in group 0");
            let entry = interface
                .bindings
                .get(binding.binding as usize)
                .unwrap_or_else(|| {
                    panic!(
                        "{file}: {name} at binding {} has no table entry",
                        binding.binding
                    )
                });
            assert_eq!(entry.name, name, "{file}: binding {}", binding.binding);
            let access = match var.space {
                AddressSpace::Uniform => Access::Uniform {
                    dynamic_offset: matches!(
                        entry.access,
                        Access::Uniform {
                            dynamic_offset: true
                        }
                    ),
                },
                AddressSpace::Storage { access } if access.contains(StorageAccess::STORE) => {
                    Access::ReadWrite
                }
                AddressSpace::Storage { .. } => Access::Read,
                other => panic!("{file}: {name} is in {other:?}"),
            };
            assert_eq!(access, entry.access, "{file}: access of {name}");
        }
        assert_eq!(
            bound,
            interface.bindings.len(),
            "{file}: bindings in the table but not the WGSL"
        );
        // The uniform struct: same fields at the same offsets, same size.
        let uniform = &interface.uniform;
        let (members, span) = module
            .types
            .iter()
            .find_map(|(_, ty)| match (&ty.name, &ty.inner) {
                (Some(n), TypeInner::Struct { members, span }) if n == uniform.wgsl_name => {
                    Some((members.clone(), *span))
                }
                _ => None,
            })
            .unwrap_or_else(|| panic!("{file}: no struct {}", uniform.wgsl_name));
        let wgsl: Vec<(String, usize)> = members
            .iter()
            .map(|m| (m.name.clone().unwrap_or_default(), m.offset as usize))
            .collect();
        let rust: Vec<(String, usize)> = uniform
            .fields
            .iter()
            .map(|(n, o)| (n.to_string(), *o))
            .collect();
        assert_eq!(
            wgsl, rust,
            "{file}: {} fields (name, offset)",
            uniform.wgsl_name
        );
        assert_eq!(
            span as usize, uniform.size,
            "{file}: size of {}",
            uniform.wgsl_name
        );
    }
}

#[test]
fn every_shader_file_is_listed_and_the_vocabulary_validates_with_its_step_scalars() {
    let mut on_disk: Vec<String> =
        std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(".wgsl"))
            .collect();
    on_disk.sort();
    let mut listed: Vec<String> = SHADER_FILES.iter().map(|(n, _)| n.to_string()).collect();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "shaders/ and SHADER_FILES in src/gpu/shaders.rs disagree"
    );
    // With the one declaration generated from the Rust list, StepScalars.
    let vocabulary = format!(
        "{}{}",
        shader_file(VOCABULARY_FILE).unwrap(),
        shaders::step_scalars_struct()
    );
    parse(VOCABULARY_FILE, &vocabulary);
}
