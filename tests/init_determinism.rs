//! Network i's initial parameters depend only on (seed, i).

use crate::common;

use gputrain::init::{Init, check, network_parameters, population_parameters};
use gputrain::model::{BiasMode, Loss, Reduction};

#[test]
fn network_i_is_identical_whatever_the_population_size() {
    let spec = common::spec(
        &[3, 5, 2],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Sum,
    );
    let p = spec.layout().len;
    for init in [Init::Xavier, Init::Uniform(0.7)] {
        let one = population_parameters(&spec, init, 42, 0, 1).unwrap();
        let ten = population_parameters(&spec, init, 42, 0, 10).unwrap();
        let thousand = population_parameters(&spec, init, 42, 0, 1000).unwrap();
        assert_eq!(one[..], ten[..p]);
        assert_eq!(ten[..], thousand[..10 * p]);
        // A shard starting at network 500 holds the same networks.
        let shard = population_parameters(&spec, init, 42, 500, 3).unwrap();
        assert_eq!(shard[..], thousand[500 * p..503 * p]);
    }
}

#[test]
fn seeds_and_indices_give_different_parameters() {
    let spec = common::spec(
        &[2, 3, 1],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Sum,
    );
    let a = network_parameters(&spec, Init::Uniform(1.0), 1, 0);
    assert_ne!(a, network_parameters(&spec, Init::Uniform(1.0), 2, 0));
    assert_ne!(a, network_parameters(&spec, Init::Uniform(1.0), 1, 1));
}

#[test]
fn xavier_respects_bounds_and_zero_biases() {
    let spec = common::spec(
        &[2, 6, 1],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Sum,
    );
    let layout = spec.layout();
    for i in 0..200 {
        let p = network_parameters(&spec, Init::Xavier, 3, i);
        for layer in &layout.layers {
            let bound = (6.0 / (layer.fan_in + layer.fan_out) as f64).sqrt();
            for w in &p[layer.weight_offset..layer.weight_offset + layer.weight_count()] {
                assert!(w.abs() <= bound, "network {i}: weight {w} beyond ±{bound}");
            }
            assert!(
                p[layer.bias_offset..layer.bias_offset + layer.bias_count]
                    .iter()
                    .all(|b| *b == 0.0)
            );
        }
    }
    let uniform = network_parameters(&spec, Init::Uniform(0.25), 3, 0);
    assert!(uniform.iter().all(|v| v.abs() <= 0.25) && uniform.iter().any(|v| *v != 0.0));
}

#[test]
fn tutorial_init_only_for_its_topology() {
    let shared = common::tutorial_spec();
    assert!(check(&shared, Init::Tutorial).is_ok());
    let per_neuron = common::spec(
        &[2, 2, 2],
        BiasMode::PerNeuron,
        Loss::HalfSse,
        Reduction::Sum,
    );
    let err = check(&per_neuron, Init::Tutorial).unwrap_err().to_string();
    assert!(err.contains("2-2-2") && err.contains("per-neuron"), "{err}");
    let other = common::spec(&[2, 3, 2], BiasMode::Shared, Loss::HalfSse, Reduction::Sum);
    assert!(check(&other, Init::Tutorial).is_err());
}
