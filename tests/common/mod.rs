//! Helpers shared by the integration tests: model specs, the seed-003
//! network, and float comparisons that name the network and parameter.

#![allow(dead_code, reason = "each test binary uses a different subset")]

use gputrain::data::Dataset;
use gputrain::model::{BiasMode, Loss, ModelSpec, Reduction, Topology};

pub fn spec(widths: &[usize], bias: BiasMode, loss: Loss, reduction: Reduction) -> ModelSpec {
    ModelSpec {
        topology: Topology::new(widths.to_vec()).expect("valid test topology"),
        bias,
        freeze_bias: false,
        loss,
        reduction,
    }
}

/// DESIGN.md: seed 003's parameters after one step, in our layout (w1..w4,
/// b1, w5..w8, b2).
pub const SEED_ONE_STEP: [f64; 10] = [
    0.149780716132763,
    0.199561432265526,
    0.249751143632370,
    0.299502287264739,
    0.340637195302648,
    0.358916479717885,
    0.408666186076233,
    0.511301270238738,
    0.561370121107989,
    0.549799837444000,
];

/// Seed 003's 2-2-2 network with one shared bias per layer and half-sse.
pub fn tutorial_spec() -> ModelSpec {
    spec(&[2, 2, 2], BiasMode::Shared, Loss::HalfSse, Reduction::Sum)
}

/// Asserts `|actual - expected| <= tol` for every element, naming the first
/// offending network and parameter on failure.
pub fn assert_close_per_network(
    what: &str,
    actual: &[f64],
    expected: &[f64],
    per_network: usize,
    tol: f64,
    name_of: impl Fn(usize) -> String,
) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    let mut worst = (0.0f64, 0usize);
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        let diff = (a - e).abs();
        if diff.is_nan() || diff > tol {
            panic!(
                "{what}: network {} {}: got {a}, expected {e}, |diff| {diff:e} > tolerance {tol:e}",
                i / per_network,
                name_of(i % per_network)
            );
        }
        if diff > worst.0 {
            worst = (diff, i);
        }
    }
    eprintln!("{what}: largest |diff| {:e} (tolerance {tol:e})", worst.0);
}

/// A small deterministic data set with targets in [0.1, 0.9].
pub fn synthetic_dataset(inputs: usize, outputs: usize, samples: usize, salt: u64) -> Dataset {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ salt;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let x = (0..samples * inputs).map(|_| 2.0 * next() - 1.0).collect();
    let y = (0..samples * outputs).map(|_| 0.1 + 0.8 * next()).collect();
    Dataset::new("synthetic", inputs, outputs, x, y).expect("valid synthetic data")
}

/// Opens the GPU the tests run on. No adapter is a loud failure: GPU tests
/// never pass by skipping.
pub fn gpu() -> &'static gputrain::gpu::GpuContext {
    use std::sync::OnceLock;
    static CTX: OnceLock<gputrain::gpu::GpuContext> = OnceLock::new();
    CTX.get_or_init(
        || match gputrain::gpu::GpuContext::open(&gputrain::gpu::AdapterChoice::Auto) {
            Ok(ctx) => {
                eprintln!("GPU tests run on {}", ctx.adapter);
                ctx
            }
            Err(e) => panic!(
                "GPU tests need a wgpu adapter and found none: {e}\n\
                 On Debian/Ubuntu without a GPU: apt-get install -y mesa-vulkan-drivers \
                 (lavapipe, Mesa's software Vulkan driver)."
            ),
        },
    )
}
