//! The float64 CPU reference trainer: plain code that mirrors the math in
//! DESIGN.md term by term, run over networks in parallel with rayon.
//!
//! Names follow the seeds: `net` is a neuron's weighted input, `out` its
//! sigmoid output, `delta` = dE/dnet.

use rayon::prelude::*;

use crate::data::Dataset;
use crate::model::{Loss, ModelSpec, ParamLayout};
use crate::training::{NetworkOutcome, TrainOptions};

/// The logistic function `1 / (1 + e^-z)`.
pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// d sigmoid / d net, written from the sigmoid's output: `out (1 - out)`.
pub fn sigmoid_derivative_from_output(out: f64) -> f64 {
    out * (1.0 - out)
}

/// Scratch space for one network: the outputs of every layer (layer 0 is the
/// input) and the deltas of every weight layer.
struct Workspace {
    out: Vec<Vec<f64>>,
    delta: Vec<Vec<f64>>,
}

impl Workspace {
    fn new(spec: &ModelSpec) -> Self {
        let widths = spec.topology.widths();
        Self {
            out: widths.iter().map(|&w| vec![0.0; w]).collect(),
            delta: widths[1..].iter().map(|&w| vec![0.0; w]).collect(),
        }
    }
}

/// Forward pass of one sample; leaves every layer's output in `ws.out`.
fn forward(layout: &ParamLayout, params: &[f64], input: &[f64], ws: &mut Workspace) {
    ws.out[0].copy_from_slice(input);
    for (l, layer) in layout.layers.iter().enumerate() {
        let (before, after) = ws.out.split_at_mut(l + 1);
        let (inputs, outputs) = (&before[l], &mut after[0]);
        for (j, out) in outputs.iter_mut().enumerate() {
            let mut net = layer.bias_index(j).map_or(0.0, |b| params[b]);
            for (k, a) in inputs.iter().enumerate() {
                net += params[layer.weight_index(j, k)] * a;
            }
            *out = sigmoid(net);
        }
    }
}

/// The network's outputs for one input.
pub fn predict(spec: &ModelSpec, params: &[f64], input: &[f64]) -> Vec<f64> {
    let mut ws = Workspace::new(spec);
    forward(&spec.layout(), params, input, &mut ws);
    ws.out.pop().unwrap_or_default()
}

/// The loss of `params` over the whole data set.
pub fn loss(spec: &ModelSpec, params: &[f64], data: &Dataset) -> f64 {
    let layout = spec.layout();
    let mut ws = Workspace::new(spec);
    let mut total = 0.0;
    for s in 0..data.samples() {
        forward(&layout, params, data.input(s), &mut ws);
        total += sample_loss(spec.loss, &ws.out[layout.layers.len()], data.target(s));
    }
    total * spec.reduction.factor(data.samples())
}

fn sample_loss(loss: Loss, out: &[f64], target: &[f64]) -> f64 {
    out.iter()
        .zip(target)
        .map(|(o, y)| loss.scale() * (y - o) * (y - o))
        .sum()
}

/// Loss and its gradient with respect to every parameter, summed (or
/// averaged) over the data set. `grad` is overwritten.
pub fn loss_and_gradient(
    spec: &ModelSpec,
    params: &[f64],
    data: &Dataset,
    grad: &mut [f64],
) -> f64 {
    let layout = spec.layout();
    let mut ws = Workspace::new(spec);
    loss_and_gradient_with(spec, &layout, params, data, grad, &mut ws)
}

fn loss_and_gradient_with(
    spec: &ModelSpec,
    layout: &ParamLayout,
    params: &[f64],
    data: &Dataset,
    grad: &mut [f64],
    ws: &mut Workspace,
) -> f64 {
    let last = layout.layers.len() - 1;
    // dL/dout = 2c (out - y), with c = 1/2 for half-sse and 1 for sse.
    let dloss_dout = 2.0 * spec.loss.scale();
    grad.fill(0.0);
    let mut total = 0.0;
    for s in 0..data.samples() {
        forward(layout, params, data.input(s), ws);
        let target = data.target(s);
        total += sample_loss(spec.loss, &ws.out[last + 1], target);

        // Output layer: delta = -(target - out) * out * (1 - out), times 2c.
        for (j, delta) in ws.delta[last].iter_mut().enumerate() {
            let out = ws.out[last + 1][j];
            *delta = dloss_dout * (out - target[j]) * sigmoid_derivative_from_output(out);
        }
        // Hidden layers: delta_prev = (W^T delta) * out_prev * (1 - out_prev),
        // using the weights from before this epoch's update.
        for l in (1..=last).rev() {
            let layer = &layout.layers[l];
            let (lower, upper) = ws.delta.split_at_mut(l);
            for (k, delta_prev) in lower[l - 1].iter_mut().enumerate() {
                let back: f64 = upper[0]
                    .iter()
                    .enumerate()
                    .map(|(j, d)| params[layer.weight_index(j, k)] * d)
                    .sum();
                *delta_prev = back * sigmoid_derivative_from_output(ws.out[l][k]);
            }
        }
        // dE/dW[j][k] = delta_j * out_prev_k; dE/db = delta (summed for shared).
        for (l, layer) in layout.layers.iter().enumerate() {
            for (j, delta) in ws.delta[l].iter().enumerate() {
                for (k, out_prev) in ws.out[l].iter().enumerate() {
                    grad[layer.weight_index(j, k)] += delta * out_prev;
                }
                if let Some(b) = layer.bias_index(j) {
                    grad[b] += delta;
                }
            }
        }
    }
    let factor = spec.reduction.factor(data.samples());
    if factor != 1.0 {
        grad.iter_mut().for_each(|g| *g *= factor);
    }
    total * factor
}

/// How often (in epochs) an interruptible run asks whether to stop.
const STOP_CHECK_EPOCHS: u64 = 256;

/// Trains one network in place with full-batch gradient descent.
pub fn train_network(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
) -> NetworkOutcome {
    train_network_until(spec, data, params, learning_rate, options, &|| false)
}

/// [`train_network`] that asks `stop` every few hundred epochs and, when it
/// answers true, ends the run there (the outcome records the epochs done).
pub fn train_network_until(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
    stop: &(dyn Fn() -> bool + Sync),
) -> NetworkOutcome {
    let layout = spec.layout();
    let mut ws = Workspace::new(spec);
    let mut grad = vec![0.0; layout.len];
    let frozen: Vec<bool> = (0..layout.len)
        .map(|i| spec.freeze_bias && layout.is_bias(i))
        .collect();
    let reached = |loss: f64| options.target_loss.is_some_and(|t| loss <= t);
    let mut target_epoch = None;
    let mut diverged = false;
    let mut epochs_completed = options.epochs;
    for epoch in 0..options.epochs {
        if epoch % STOP_CHECK_EPOCHS == 0 && epoch > 0 && stop() {
            epochs_completed = epoch;
            break;
        }
        let loss = loss_and_gradient_with(spec, &layout, params, data, &mut grad, &mut ws);
        if !loss.is_finite() {
            diverged = true;
            break;
        }
        if target_epoch.is_none() && reached(loss) {
            target_epoch = Some(epoch as u32);
        }
        if options.stop_at_target && target_epoch.is_some() {
            break;
        }
        // Every parameter moves with the gradient of the old parameters.
        for ((p, g), frozen) in params.iter_mut().zip(&grad).zip(&frozen) {
            if !frozen {
                *p -= learning_rate * g;
            }
        }
    }
    let final_loss = loss(spec, params, data);
    diverged |= !final_loss.is_finite() || params.iter().any(|p| !p.is_finite());
    if !diverged && target_epoch.is_none() && reached(final_loss) {
        target_epoch = Some(epochs_completed as u32);
    }
    NetworkOutcome {
        final_loss,
        target_epoch,
        diverged,
        epochs_completed,
    }
}

/// Trains every network of a population in parallel. `params` holds the
/// networks' parameter vectors back to back.
pub fn train_population(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    learning_rates: &[f64],
    options: &TrainOptions,
) -> Vec<NetworkOutcome> {
    train_population_until(spec, data, params, learning_rates, options, &|| false)
}

/// [`train_population`] with [`train_network_until`]'s `stop`.
pub fn train_population_until(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    learning_rates: &[f64],
    options: &TrainOptions,
    stop: &(dyn Fn() -> bool + Sync),
) -> Vec<NetworkOutcome> {
    let p = spec.layout().len;
    assert_eq!(
        params.len(),
        p * learning_rates.len(),
        "one parameter vector per learning rate"
    );
    params
        .par_chunks_mut(p)
        .zip(learning_rates.par_iter())
        .map(|(net, &lr)| train_network_until(spec, data, net, lr, options, stop))
        .collect()
}
