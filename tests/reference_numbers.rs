//! The float64 CPU reference reproduces every number of seed 003's worked
//! example as fixed in docs/design.md.

use crate::common;

use approx::assert_abs_diff_eq;
use gputrain::cpu;
use gputrain::data::Task;
use gputrain::init::TUTORIAL_PARAMETERS;
use gputrain::training::TrainOptions;
use gputrain::vocab::Activation;

const TOL: f64 = 1e-12;

fn options(epochs: u64) -> TrainOptions {
    TrainOptions {
        epochs,
        target_loss: None,
        stop_at_target: false,
        ..TrainOptions::default()
    }
}

#[test]
fn forward_pass_matches_seed() {
    let spec = common::tutorial_spec();
    let p = TUTORIAL_PARAMETERS;
    let (x1, x2) = (0.05, 0.10);
    // net_h = W1 x + b1, exactly as the seed writes it.
    assert_abs_diff_eq!(p[0] * x1 + p[1] * x2 + p[4], 0.3775, epsilon = TOL);
    assert_abs_diff_eq!(p[2] * x1 + p[3] * x2 + p[4], 0.3925, epsilon = TOL);
    assert_abs_diff_eq!(
        (Activation::Sigmoid.def().f)(0.3775),
        0.593269992107187,
        epsilon = TOL
    );
    assert_abs_diff_eq!(
        (Activation::Sigmoid.def().f)(0.3925),
        0.596884378259767,
        epsilon = TOL
    );
    let out = cpu::predict(&spec, &p, &[x1, x2]);
    assert_abs_diff_eq!(out[0], 0.751365069552316, epsilon = TOL);
    assert_abs_diff_eq!(out[1], 0.772928465321463, epsilon = TOL);
    let data = Task::Tutorial.dataset();
    assert_abs_diff_eq!(
        cpu::loss(&spec, &p, &data),
        0.298371108760003,
        epsilon = TOL
    );
}

#[test]
fn one_step_matches_seed() {
    let spec = common::tutorial_spec();
    let mut p = TUTORIAL_PARAMETERS;
    cpu::train_network(&spec, &Task::Tutorial.dataset(), &mut p, 0.5, &options(1));
    let layout = spec.layout();
    common::assert_close_per_network("one step", &p, &common::SEED_ONE_STEP, 10, TOL, |i| {
        layout.describe(i)
    });
}

#[test]
fn twenty_thousand_epochs_match_seed() {
    let spec = common::tutorial_spec();
    let mut p = TUTORIAL_PARAMETERS;
    let outcome = cpu::train_network(
        &spec,
        &Task::Tutorial.dataset(),
        &mut p,
        0.5,
        &options(20_000),
    );
    let out = cpu::predict(&spec, &p, &[0.05, 0.10]);
    assert_abs_diff_eq!(out[0], 0.010633774372091731, epsilon = TOL);
    assert_abs_diff_eq!(out[1], 0.9893773083483602, epsilon = TOL);
    assert!(!outcome.diverged);
    assert_abs_diff_eq!(
        outcome.final_loss,
        cpu::loss(&spec, &p, &Task::Tutorial.dataset()),
        epsilon = 0.0
    );
}

#[test]
fn frozen_bias_ten_thousand_epochs_match_rounded_figures() {
    // docs/design.md gives these to 5 significant digits (the article rounds), so
    // the tolerance is half a unit in the last printed digit.
    let mut spec = common::tutorial_spec();
    spec.freeze_bias = true;
    let mut p = TUTORIAL_PARAMETERS;
    let outcome = cpu::train_network(
        &spec,
        &Task::Tutorial.dataset(),
        &mut p,
        0.5,
        &options(10_000),
    );
    assert_eq!((p[4], p[9]), (0.35, 0.60), "biases must not move");
    assert_abs_diff_eq!(outcome.final_loss, 3.5102e-5, epsilon = 0.5e-9);
    let out = cpu::predict(&spec, &p, &[0.05, 0.10]);
    assert_abs_diff_eq!(out[0], 0.015914, epsilon = 0.5e-6);
    assert_abs_diff_eq!(out[1], 0.984064, epsilon = 0.5e-6);
}

#[test]
fn target_epoch_and_stop_at_target() {
    let spec = common::tutorial_spec();
    let data = Task::Tutorial.dataset();
    let mut p = TUTORIAL_PARAMETERS;
    // Find the loss trajectory by hand, then ask for a target inside it.
    let mut losses = Vec::new();
    let mut q = TUTORIAL_PARAMETERS;
    for _ in 0..50 {
        losses.push(cpu::loss(&spec, &q, &data));
        cpu::train_network(&spec, &data, &mut q, 0.5, &options(1));
    }
    let target = losses[37];
    let opts = TrainOptions {
        epochs: 100,
        target_loss: Some(target),
        stop_at_target: true,
        ..TrainOptions::default()
    };
    let outcome = cpu::train_network(&spec, &data, &mut p, 0.5, &opts);
    assert_eq!(outcome.target_epoch, Some(37));
    assert_abs_diff_eq!(outcome.final_loss, target, epsilon = 0.0);
}

#[test]
fn non_finite_network_is_reported_and_does_not_disturb_others() {
    use gputrain::init::{Init, network_parameters};
    use gputrain::model::{BiasMode, Loss, Reduction};
    let spec = common::spec(&[2, 3, 1], BiasMode::PerNeuron, Loss::Sse, Reduction::Sum);
    let data = Task::Xor.dataset();
    let healthy = network_parameters(&spec, Init::Uniform(1.0), 1, 1);
    let mut broken = network_parameters(&spec, Init::Uniform(1.0), 1, 0);
    broken[0] = f64::INFINITY; // inf * input 0 = NaN in the first sample
    let mut params = [broken, healthy.clone()].concat();
    let outcomes = cpu::train_population(&spec, &data, &mut params, &[0.5, 0.5], &options(100));
    assert!(outcomes[0].diverged, "{:?}", outcomes[0]);
    assert!(outcomes[0].final_loss.is_nan());
    assert!(!outcomes[1].diverged);
    let mut alone = healthy;
    let solo = cpu::train_network(&spec, &data, &mut alone, 0.5, &options(100));
    assert_eq!(outcomes[1], solo);
    assert_eq!(&params[alone.len()..], &alone[..]);
}
