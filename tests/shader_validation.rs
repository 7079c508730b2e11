//! Every WGSL file in shaders/ parses and validates with naga: the shared
//! building blocks on their own, kernel templates once assembled for a
//! spread of shapes. A typo fails here with the file name and line.

mod common;

use gputrain::data::Task;
use gputrain::gpu::fused_codegen::FusedShape;
use gputrain::gpu::shaders::{SHADER_FILES, assemble, shader_file};
use gputrain::model::{BiasMode, Loss, Reduction};

fn validate(label: &str, source: &str) {
    let module = naga::front::wgsl::parse_str(source).unwrap_or_else(|e| {
        panic!(
            "{label} does not parse:\n{}",
            e.emit_to_string_with_path(source, label)
        )
    });
    naga::valid::Validator::new(
        naga::valid::ValidationFlags::all(),
        naga::valid::Capabilities::all(),
    )
    .validate(&module)
    .unwrap_or_else(|e| {
        panic!(
            "{label} does not validate:\n{}",
            e.emit_to_string_with_path(source, label)
        )
    });
}

#[test]
fn every_shader_file_is_listed() {
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
}

#[test]
fn common_building_blocks_validate() {
    validate("common.wgsl", shader_file("common.wgsl").unwrap());
}

#[test]
fn fused_kernel_validates_for_every_shape() {
    let big = common::synthetic_dataset(3, 2, 30, 1); // read from the buffer
    let cases = [
        (vec![2, 2, 2], Task::Tutorial.dataset()),
        (vec![2, 3, 1], Task::Xor.dataset()),
        (vec![3, 1, 4, 2], big),
    ];
    for (widths, data) in &cases {
        for bias in BiasMode::ALL {
            for freeze_bias in [false, true] {
                let mut spec = common::spec(widths, bias, Loss::Sse, Reduction::Mean);
                spec.freeze_bias = freeze_bias;
                let shape = FusedShape { spec: &spec, data };
                let source = assemble("fused_train.wgsl", &shape.constants(), |m| {
                    shape.fragment(m)
                })
                .unwrap();
                validate(
                    &format!(
                        "fused_train.wgsl ({} {bias} freeze={freeze_bias})",
                        spec.topology
                    ),
                    &source,
                );
            }
        }
    }
}
