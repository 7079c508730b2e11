//! A wait on the device is bounded: a submission that does not finish in
//! the time allowed ends the run with [`Error::DeviceTimeout`], never a
//! hang. A real stuck device cannot be made on demand, so the test gives a
//! long submission (about 2 s on lavapipe) a 1 ms allowance.

use crate::common;

use std::time::Duration;

use gputrain::Error;
use gputrain::data::Task;
use gputrain::gpu::{GpuOptions, GpuTrainer, Strategy};
use gputrain::init::{Init, population_parameters};
use gputrain::trainer::{Block, Trainer, uncontrolled};

#[test]
fn a_submission_past_its_timeout_is_an_error_not_a_hang() {
    let ctx = common::gpu();
    let spec = common::tutorial_spec();
    let data = Task::Tutorial.dataset();
    let networks = 200_000;
    let options = GpuOptions {
        epochs_per_submission: Some(3_000),
        device_timeout: Some(Duration::from_millis(1)),
        ..Default::default()
    };
    let trainer = GpuTrainer::new(ctx, &spec, &data, networks, Strategy::Fused, &options).unwrap();
    let mut params = population_parameters(&spec, Init::Xavier, 1, 0, networks).unwrap();
    let rates = vec![0.5; networks];
    let mut state = vec![0.0; spec.optimizer.state_slots() * params.len()];
    let block = Block {
        params: &mut params,
        state: &mut state,
        learning_rates: &rates,
        rows: None,
    };
    let result = trainer.train(block, &common::options(3_000), &mut uncontrolled);
    match result {
        Err(e @ Error::DeviceTimeout { .. }) => {
            let message = e.to_string();
            assert!(
                message.contains("did not finish a submission within 0.0 s")
                    && message.contains("stuck or lost"),
                "{message}"
            );
        }
        other => panic!(
            "expected a device timeout, got {:?}",
            other.map(|r| r.outcomes.len())
        ),
    }
    // The device itself is fine: the submission finishes in its own time.
    ctx.wait().expect("the long submission completes");
}
