//! How well trained networks do on data: each network's loss (the float64
//! reference's) and, where the targets are class labels, its accuracy; on
//! the training data and on held-out data (`--eval-data`, `--holdout`)
//! after training, and for `gputrain predict`.

use rayon::prelude::*;
use serde::Serialize;

use crate::cpu;
use crate::data::Dataset;
use crate::model::{Activation, ModelSpec};
use crate::training::{NetworkMetrics, NetworkOutcome};

/// How targets are read as classes, for accuracy.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Labels {
    /// One output, every target one of two class values: the prediction's
    /// class is `>= threshold` (0.5, or 0 for tanh outputs).
    Binary { threshold: f64 },
    /// Several outputs, every target row one-hot: the class is the argmax.
    OneHot,
}

/// The class values an output activation's targets take: (0, 1), or
/// (-1, 1) for tanh.
fn class_values(output: Activation) -> (f64, f64) {
    match output {
        Activation::Tanh => (-1.0, 1.0),
        _ => (0.0, 1.0),
    }
}

/// How `data`'s targets read as classes, or `None` when they are not
/// class labels (regression: no accuracy).
pub fn labels(spec: &ModelSpec, data: &Dataset) -> Option<Labels> {
    let (low, high) = class_values(spec.output_activation);
    let class = |v: f64| v == low || v == high;
    if data.outputs == 0 || !data.y.iter().all(|&v| class(v)) {
        return None;
    }
    if data.outputs == 1 {
        return Some(Labels::Binary {
            threshold: (low + high) / 2.0,
        });
    }
    let one_hot =
        (0..data.samples()).all(|s| data.target(s).iter().filter(|&&v| v == high).count() == 1);
    one_hot.then_some(Labels::OneHot)
}

/// The share of samples whose predicted class is the target's.
pub fn accuracy(labels: Labels, outputs: &[f64], data: &Dataset) -> f64 {
    weighted_accuracy(labels, outputs, data, None)
}

/// [`accuracy`] with each sample counted `counts[s]` times (a resample's
/// rows: [`crate::resample`]; `None`: once).
pub fn weighted_accuracy(
    labels: Labels,
    outputs: &[f64],
    data: &Dataset,
    counts: Option<&[u8]>,
) -> f64 {
    let o = data.outputs;
    let argmax = |v: &[f64]| {
        (0..v.len())
            .max_by(|&a, &b| v[a].total_cmp(&v[b]))
            .unwrap_or(0)
    };
    let count = |s: usize| counts.map_or(1, |c| u64::from(c[s]));
    let right: u64 = (0..data.samples())
        .filter(|&s| {
            let (out, target) = (&outputs[s * o..(s + 1) * o], data.target(s));
            match labels {
                Labels::Binary { threshold } => (out[0] >= threshold) == (target[0] >= threshold),
                Labels::OneHot => argmax(out) == argmax(target),
            }
        })
        .map(count)
        .sum();
    let all: u64 = (0..data.samples()).map(count).sum();
    right as f64 / all as f64
}

/// One network's score on data with targets: the float64 reference's loss
/// and, for class labels, its accuracy.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Score {
    pub network: usize,
    pub loss: f64,
    pub accuracy: Option<f64>,
}

/// The score of every network in `params` (vectors back to back), in
/// parallel.
pub fn scores(spec: &ModelSpec, params: &[f64], data: &Dataset) -> Vec<Score> {
    let p = spec.layout().len;
    let labels = labels(spec, data);
    params
        .par_chunks(p)
        .enumerate()
        .map(|(network, net)| Score {
            network,
            loss: cpu::loss(spec, net, data),
            accuracy: labels.map(|l| accuracy(l, &cpu::outputs(spec, net, data), data)),
        })
        .collect()
}

/// The float64 reference's loss on `eval` of every network in `params`
/// (vectors back to back) that `active` marks; NaN for the others.
pub fn held_out_losses(
    spec: &ModelSpec,
    eval: &Dataset,
    params: &[f64],
    active: &[bool],
) -> Vec<f64> {
    params
        .par_chunks(spec.layout().len)
        .zip(active)
        .map(|(net, &on)| match on {
            true => cpu::loss(spec, net, eval),
            false => f64::NAN,
        })
        .collect()
}

/// The metrics of a block of trained networks (`params` back to back),
/// in parallel, by the float64 reference. A diverged network has none.
/// With a resample's row counts (`rows`, network after network:
/// [`crate::resample`]), the training accuracy is over each network's
/// resample (a row drawn twice counts twice), and its out-of-bag scores
/// are over the rows it never drew (none when it drew every row).
pub fn block_metrics(
    spec: &ModelSpec,
    train: &Dataset,
    eval: Option<&Dataset>,
    params: &[f64],
    outcomes: &[NetworkOutcome],
    rows: Option<&[u8]>,
) -> Vec<NetworkMetrics> {
    let (train_labels, eval_labels) = (labels(spec, train), eval.and_then(|e| labels(spec, e)));
    let per_sample = |loss: f64, data: &Dataset| spec.reduction.per_sample(loss, data.samples());
    let train_loss_per_sample = |outcome: &NetworkOutcome| {
        (outcome.evaluated() && !outcome.diverged).then(|| per_sample(outcome.final_loss, train))
    };
    if train_labels.is_none() && eval.is_none() && rows.is_none() {
        return outcomes
            .iter()
            .map(|o| NetworkMetrics {
                train_loss_per_sample: train_loss_per_sample(o),
                ..NetworkMetrics::default()
            })
            .collect();
    }
    let samples = train.samples();
    params
        .par_chunks(spec.layout().len)
        .zip(outcomes)
        .enumerate()
        .map(|(n, (net, outcome))| {
            if outcome.diverged {
                return NetworkMetrics::default();
            }
            let on = |data: &Dataset, labels: Option<Labels>| {
                labels.map(|l| accuracy(l, &cpu::outputs(spec, net, data), data))
            };
            let counts = rows.map(|r| &r[n * samples..(n + 1) * samples]);
            // One forward pass over the training rows gives both
            // accuracies: over the resample, and over the rows never drawn.
            let labelled = train_labels.map(|l| (l, cpu::outputs(spec, net, train)));
            let train_accuracy = labelled
                .as_ref()
                .map(|(l, outputs)| weighted_accuracy(*l, outputs, train, counts));
            let out_of_bag = counts.and_then(|c| {
                let unseen: Vec<usize> = (0..samples).filter(|&s| c[s] == 0).collect();
                let oob = train.subset(&unseen, format!("{} (out of bag)", train.name))?;
                let never: Vec<u8> = c.iter().map(|&c| u8::from(c == 0)).collect();
                let accuracy = labelled
                    .as_ref()
                    .map(|(l, outputs)| weighted_accuracy(*l, outputs, train, Some(&never)));
                Some((cpu::loss(spec, net, &oob), accuracy))
            });
            let eval_loss = eval.map(|e| (cpu::loss(spec, net, e), e));
            NetworkMetrics {
                train_accuracy,
                oob_loss: out_of_bag.map(|(l, _)| l),
                oob_accuracy: out_of_bag.and_then(|(_, a)| a),
                eval_loss: eval_loss.map(|(l, _)| l),
                eval_accuracy: eval.and_then(|e| on(e, eval_labels)),
                train_loss_per_sample: train_loss_per_sample(outcome),
                eval_loss_per_sample: eval_loss.map(|(l, e)| per_sample(l, e)),
                ..NetworkMetrics::default()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_reads_binary_and_one_hot_labels_and_not_regression() {
        let spec = ModelSpec::default();
        let xor = crate::data::Task::Xor.dataset();
        let one = ModelSpec {
            topology: crate::model::Topology::new(vec![2, 3, 1]).unwrap(),
            ..spec.clone()
        };
        let binary = labels(&one, &xor).unwrap();
        assert_eq!(binary, Labels::Binary { threshold: 0.5 });
        assert_eq!(accuracy(binary, &[0.2, 0.7, 0.5, 0.6], &xor), 0.75);
        let tanh = ModelSpec {
            output_activation: Activation::Tanh,
            ..one.clone()
        };
        assert_eq!(labels(&tanh, &xor), None, "0 is no tanh class value");
        // Seed 003's targets 0.01, 0.99 are not classes: regression.
        let tutorial = crate::data::Task::Tutorial.dataset();
        assert_eq!(labels(&spec, &tutorial), None);
        let hot = Dataset::new("hot", 1, 2, vec![0.0, 1.0], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
        let one_hot = labels(&spec, &hot).unwrap();
        assert_eq!(one_hot, Labels::OneHot);
        assert_eq!(accuracy(one_hot, &[0.9, 0.8, 0.3, 0.4], &hot), 1.0);
        assert_eq!(accuracy(one_hot, &[0.7, 0.8, 0.3, 0.4], &hot), 0.5);
    }

    #[test]
    fn block_metrics_measure_both_data_sets_and_skip_diverged_networks() {
        let spec = ModelSpec {
            topology: crate::model::Topology::new(vec![2, 3, 1]).unwrap(),
            bias: crate::model::BiasMode::PerNeuron,
            ..ModelSpec::default()
        };
        let xor = crate::data::Task::Xor.dataset();
        let params =
            crate::init::population_parameters(&spec, crate::init::Init::Xavier, 0, 0, 2).unwrap();
        let outcome = |diverged| NetworkOutcome {
            final_loss: 0.5,
            target_epoch: None,
            diverged,
            epochs_completed: 0,
        };
        let metrics = block_metrics(
            &spec,
            &xor,
            Some(&xor),
            &params,
            &[outcome(false), outcome(true)],
            None,
        );
        let p = spec.layout().len;
        let first = metrics[0];
        assert_eq!(first.eval_loss, Some(cpu::loss(&spec, &params[..p], &xor)));
        assert_eq!(first.train_accuracy, first.eval_accuracy);
        assert!(first.train_accuracy.is_some());
        assert_eq!(metrics[1], NetworkMetrics::default());
    }
}
