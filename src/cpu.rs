//! The float64 CPU reference trainer: plain code that mirrors the math in
//! docs/design.md term by term, run over networks in parallel with rayon.
//!
//! Names follow the seeds: `net` is a neuron's weighted input, `out` its
//! activation's output, `delta` = dE/dnet. Every formula (activations, their
//! derivatives, the loss and its delta, the update) comes from the
//! vocabulary table in [`crate::vocab`].

use rayon::prelude::*;

use crate::data::Dataset;
use crate::error::Error;
use crate::model::{ModelSpec, ParamLayout};
use crate::recording::{HistoryBlock, NetworkCurve, Recording};
use crate::trainer::{Block, Control, Trained, Trainer, drive};
use crate::training::{NetworkOutcome, TrainOptions};
use crate::vocab::{ActivationDef, LossDef, OptimizerConfig, OptimizerDef};

/// The run's vocabulary entries, looked up once.
struct Math {
    /// One per weight layer: hidden activations, then the output's.
    activations: Vec<&'static ActivationDef>,
    loss: &'static LossDef,
    optimizer: &'static OptimizerDef,
    settings: OptimizerConfig,
}

impl Math {
    fn new(spec: &ModelSpec) -> Self {
        Self {
            activations: (0..spec.topology.weight_layers())
                .map(|l| spec.layer_activation(l).def())
                .collect(),
            loss: spec.loss.def(),
            optimizer: spec.optimizer.kind.def(),
            settings: spec.optimizer,
        }
    }
}

/// Scratch space for one network: the outputs of every layer (layer 0 is the
/// input), the net inputs and the deltas of every weight layer.
struct Workspace {
    out: Vec<Vec<f64>>,
    net: Vec<Vec<f64>>,
    delta: Vec<Vec<f64>>,
}

impl Workspace {
    fn new(spec: &ModelSpec) -> Self {
        let widths = spec.topology.widths();
        Self {
            out: widths.iter().map(|&w| vec![0.0; w]).collect(),
            net: widths[1..].iter().map(|&w| vec![0.0; w]).collect(),
            delta: widths[1..].iter().map(|&w| vec![0.0; w]).collect(),
        }
    }
}

/// Forward pass of one sample; leaves every layer's output in `ws.out` and
/// every weight layer's net inputs in `ws.net` (a row form's logits
/// unshifted: its outputs are `f(z_j - lse(z))`).
fn forward(math: &Math, layout: &ParamLayout, params: &[f64], input: &[f64], ws: &mut Workspace) {
    ws.out[0].copy_from_slice(input);
    for (l, layer) in layout.layers.iter().enumerate() {
        let activation = math.activations[l];
        let (before, after) = ws.out.split_at_mut(l + 1);
        let (inputs, outputs) = (&before[l], &mut after[0]);
        for j in 0..outputs.len() {
            let mut net = layer.bias_index(j).map_or(0.0, |b| params[b]);
            for (k, a) in inputs.iter().enumerate() {
                net += params[layer.weight_index(j, k)] * a;
            }
            ws.net[l][j] = net;
        }
        let shift = match activation.normalizes_rows {
            true => crate::vocab::log_sum_exp(&ws.net[l]),
            false => 0.0,
        };
        for (out, net) in outputs.iter_mut().zip(&ws.net[l]) {
            *out = (activation.f)(net - shift);
        }
    }
}

/// The network's outputs for one input.
pub fn predict(spec: &ModelSpec, params: &[f64], input: &[f64]) -> Vec<f64> {
    let mut ws = Workspace::new(spec);
    forward(&Math::new(spec), &spec.layout(), params, input, &mut ws);
    ws.out.pop().unwrap_or_default()
}

/// The network's outputs on every sample of `data`, sample after sample.
pub fn outputs(spec: &ModelSpec, params: &[f64], data: &Dataset) -> Vec<f64> {
    let (math, layout) = (Math::new(spec), spec.layout());
    let mut ws = Workspace::new(spec);
    let mut all = Vec::with_capacity(data.samples() * spec.topology.outputs());
    for s in 0..data.samples() {
        forward(&math, &layout, params, data.input(s), &mut ws);
        all.extend_from_slice(&ws.out[ws.out.len() - 1]);
    }
    all
}

/// The loss of `params` over the whole data set.
pub fn loss(spec: &ModelSpec, params: &[f64], data: &Dataset) -> f64 {
    let (math, layout) = (Math::new(spec), spec.layout());
    let mut ws = Workspace::new(spec);
    let mut total = 0.0;
    for s in 0..data.samples() {
        forward(&math, &layout, params, data.input(s), &mut ws);
        total += sample_loss(&math, &ws, data.target(s));
    }
    total * spec.reduction.factor(data.samples())
}

/// The loss of the sample whose forward pass is in `ws`.
fn sample_loss(math: &Math, ws: &Workspace, target: &[f64]) -> f64 {
    let (out, net) = (&ws.out[ws.out.len() - 1], &ws.net[ws.net.len() - 1]);
    if let Some(row) = math.loss.row_value {
        return row(net, target);
    }
    (0..target.len())
        .map(|j| (math.loss.value)(net[j], out[j], target[j]))
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
    let mut ws = Workspace::new(spec);
    loss_and_gradient_with(
        spec,
        &Math::new(spec),
        &spec.layout(),
        params,
        data,
        grad,
        &mut ws,
    )
}

fn loss_and_gradient_with(
    spec: &ModelSpec,
    math: &Math,
    layout: &ParamLayout,
    params: &[f64],
    data: &Dataset,
    grad: &mut [f64],
    ws: &mut Workspace,
) -> f64 {
    let all = 0..data.samples();
    loss_and_gradient_over(spec, math, layout, params, data, all, grad, ws)
}

/// The loss and gradient over the samples `batch` yields (the reduction's
/// mean is over them).
#[allow(clippy::too_many_arguments)]
fn loss_and_gradient_over(
    spec: &ModelSpec,
    math: &Math,
    layout: &ParamLayout,
    params: &[f64],
    data: &Dataset,
    batch: impl Iterator<Item = usize>,
    grad: &mut [f64],
    ws: &mut Workspace,
) -> f64 {
    let last = layout.layers.len() - 1;
    let output = math.activations[last];
    grad.fill(0.0);
    let mut total = 0.0;
    let mut count = 0;
    for s in batch {
        count += 1;
        forward(math, layout, params, data.input(s), ws);
        let target = data.target(s);
        total += sample_loss(math, ws, target);

        // Output layer: the loss's delta dL/dnet, e.g. for half-sse
        // -(target - out) * f'(net).
        for (j, delta) in ws.delta[last].iter_mut().enumerate() {
            let out = ws.out[last + 1][j];
            let slope = (output.derivative)(ws.net[last][j], out);
            *delta = (math.loss.delta)(out, target[j], slope);
        }
        // Hidden layers: delta_prev = (W^T delta) * f'(net_prev), using
        // the weights from before this epoch's update.
        for l in (1..=last).rev() {
            let layer = &layout.layers[l];
            let derivative = math.activations[l - 1].derivative;
            let (lower, upper) = ws.delta.split_at_mut(l);
            for (k, delta_prev) in lower[l - 1].iter_mut().enumerate() {
                let back: f64 = upper[0]
                    .iter()
                    .enumerate()
                    .map(|(j, d)| params[layer.weight_index(j, k)] * d)
                    .sum();
                *delta_prev = back * derivative(ws.net[l - 1][k], ws.out[l][k]);
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
    let factor = spec.reduction.factor(count);
    if factor != 1.0 {
        grad.iter_mut().for_each(|g| *g *= factor);
    }
    total * factor
}

/// What the loss at the start of an epoch decides.
enum EpochEnd {
    Diverged,
    Stop,
    Train,
}

/// How often (in epochs) an interruptible run asks whether to stop.
const STOP_CHECK_EPOCHS: u64 = 256;

/// Trains one network in place, from fresh optimizer state.
pub fn train_network(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
) -> NetworkOutcome {
    train_fresh(spec, data, params, learning_rate, options, Storage::Float64)
}

/// One network from fresh optimizer state, storing its values as `storage`.
fn train_fresh(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
    storage: Storage,
) -> NetworkOutcome {
    let mut state = vec![0.0; spec.optimizer.state_slots() * params.len()];
    let never = &|| false;
    train_stored(
        spec,
        data,
        params,
        &mut state,
        learning_rate,
        options,
        never,
        None,
        storage,
    )
}

/// Trains one network in place, its optimizer `state` too (slot after
/// slot, each one value per parameter: [`OptimizerConfig::state_slots`]
/// times the parameters). Asks `stop` before the first epoch and every few
/// hundred after it and, when it answers true, ends the run there (the
/// outcome records the epochs done: none for a network that a stop
/// reaches before it starts, so the networks after a Ctrl-C end at once,
/// with no point of their curves recorded). With `history`, records the
/// loss (and the held-out loss) at the plan's loop points into its curve
/// ([`crate::history`]).
#[allow(clippy::too_many_arguments)]
pub fn train_network_until(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    state: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
    stop: &(dyn Fn() -> bool + Sync),
    history: Option<(&Recording, &mut NetworkCurve)>,
) -> NetworkOutcome {
    let run = Storage::Float64;
    train_stored(
        spec,
        data,
        params,
        state,
        learning_rate,
        options,
        stop,
        history,
        run,
    )
}

/// How a twin stores what it trains.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Storage {
    /// The reference: every value in float64.
    Float64,
    /// Float64 arithmetic, but every parameter and optimizer state value
    /// rounded to float32 after each update, as a float32 trainer stores
    /// them: `--verify`'s yardstick of how much float32 storage alone
    /// moves a network ([`train_network_in_float32_storage`]).
    Float32,
}

/// [`train_network`] storing the parameters and the optimizer state in
/// float32 after every update (from the float32 rounding of `params`),
/// the arithmetic in float64: what a float32 trainer's rounding alone
/// does to the network. Where this twin and the reference separate,
/// training amplifies float32-sized differences (a fast, chaotic or
/// saturating regime) and float32 cannot match float64 there.
pub fn train_network_in_float32_storage(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
) -> NetworkOutcome {
    for p in params.iter_mut() {
        *p = *p as f32 as f64;
    }
    train_fresh(spec, data, params, learning_rate, options, Storage::Float32)
}

#[allow(clippy::too_many_arguments)]
fn train_stored(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    state: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
    stop: &(dyn Fn() -> bool + Sync),
    mut history: Option<(&Recording, &mut NetworkCurve)>,
    storage: Storage,
) -> NetworkOutcome {
    let round = |v: f64| match storage {
        Storage::Float64 => v,
        Storage::Float32 => v as f32 as f64,
    };
    let (math, layout) = (Math::new(spec), spec.layout());
    let p = layout.len;
    let slots = math.optimizer.state.len();
    assert_eq!(
        state.len(),
        slots * p,
        "optimizer state: slots x parameters"
    );
    let mut ws = Workspace::new(spec);
    let mut grad = vec![0.0; p];
    let frozen = spec.frozen_mask();
    let reached = |loss: f64| options.target_loss.is_some_and(|t| loss <= t);
    let mut target_epoch = None;
    let mut diverged = false;
    let mut epochs_completed = options.epochs;
    let batches = spec.batches(data.samples());
    // One update with the gradient in `grad`: update number `t` of the run.
    let mut update = |params: &mut [f64], grad: &[f64], t: u64| {
        let scalars = math.settings.scalars(learning_rate, t);
        for (i, frozen) in frozen.iter().enumerate() {
            if *frozen {
                continue;
            }
            let mut s = [0.0; crate::vocab::MAX_STATE_SLOTS];
            for (k, v) in s.iter_mut().enumerate().take(slots) {
                *v = state[k * p + i];
            }
            params[i] = round((math.optimizer.step)(params[i], grad[i], &mut s, &scalars));
            for (k, v) in s.iter().enumerate().take(slots) {
                state[k * p + i] = round(*v);
            }
        }
    };
    // The loss of the parameters at the start of a run epoch: divergence,
    // the target epoch, stopping there.
    let mut record_epoch = |loss: f64, run_epoch: u64| {
        if !loss.is_finite() {
            return EpochEnd::Diverged;
        }
        if target_epoch.is_none() && reached(loss) {
            target_epoch = Some(run_epoch as u32);
        }
        match options.stop_at_target && target_epoch.is_some() {
            true => EpochEnd::Stop,
            false => EpochEnd::Train,
        }
    };
    let plan = history.as_ref().map(|(r, _)| r.plan);
    let records = |run_epoch: u64| plan.is_some_and(|p| p.slot(run_epoch).is_some());
    // The loss at a loop point of the history, and the held-out loss.
    let mut record_point = |run_epoch: u64, loss: f64, params: &[f64]| {
        if let Some((recording, curve)) = history.as_mut()
            && let Some(q) = recording.plan.slot(run_epoch)
        {
            let eval = recording.eval.filter(|_| recording.plan.eval);
            curve.record(q, loss, eval.map(|e| self::loss(spec, params, e)));
        }
    };
    'epochs: for epoch in 0..options.epochs {
        if epoch % STOP_CHECK_EPOCHS == 0 && stop() {
            epochs_completed = epoch;
            break;
        }
        let run_epoch = options.first_epoch + epoch;
        let Some(batching) = spec.batching else {
            // Full batch: the loss of the current parameters comes with
            // their gradient.
            let loss =
                loss_and_gradient_with(spec, &math, &layout, params, data, &mut grad, &mut ws);
            record_point(run_epoch, loss, params);
            match record_epoch(loss, run_epoch) {
                EpochEnd::Diverged => {
                    diverged = true;
                    break;
                }
                EpochEnd::Stop => break,
                EpochEnd::Train => {}
            }
            // Every parameter moves with the gradient of the old parameters.
            update(params, &grad, run_epoch + 1);
            continue;
        };
        // Minibatches: the epoch's loss (for the target and the history)
        // is the full-data loss of the parameters the previous epoch ended
        // with.
        if options.target_loss.is_some() || records(run_epoch) {
            let full = loss(spec, params, data);
            record_point(run_epoch, full, params);
            // Without a target the history only observes.
            let end = match options.target_loss {
                Some(_) => record_epoch(full, run_epoch),
                None => EpochEnd::Train,
            };
            match end {
                EpochEnd::Diverged => {
                    diverged = true;
                    break;
                }
                EpochEnd::Stop => break,
                EpochEnd::Train => {}
            }
        }
        for b in 0..batches {
            let batch = batching.batch(data.samples(), run_epoch, b);
            let loss = loss_and_gradient_over(
                spec, &math, &layout, params, data, batch, &mut grad, &mut ws,
            );
            if !loss.is_finite() {
                diverged = true;
                break 'epochs;
            }
            update(params, &grad, run_epoch * batches as u64 + b as u64 + 1);
        }
    }
    let final_loss = loss(spec, params, data);
    diverged |= !final_loss.is_finite() || params.iter().any(|p| !p.is_finite());
    if !diverged && target_epoch.is_none() && reached(final_loss) {
        target_epoch = Some((options.first_epoch + epochs_completed) as u32);
    }
    NetworkOutcome {
        final_loss,
        target_epoch,
        diverged,
        epochs_completed,
    }
}

/// Trains every network of a population in parallel (on rayon's global
/// pool) from fresh optimizer state. `params` holds the networks'
/// parameter vectors back to back.
pub fn train_population(
    spec: &ModelSpec,
    data: &Dataset,
    params: &mut [f64],
    learning_rates: &[f64],
    options: &TrainOptions,
) -> Vec<NetworkOutcome> {
    let mut state = vec![0.0; spec.optimizer.state_slots() * params.len()];
    let population = Population {
        spec,
        data,
        options,
        stop: &|| false,
        done: &|_| {},
        recording: None,
    };
    population.train(params, &mut state, learning_rates).0
}

/// The float64 reference as a [`Trainer`]: [`train_network_until`] for
/// every network of a block, in parallel over its pool.
pub struct ReferenceTrainer<'a> {
    pub spec: &'a ModelSpec,
    pub data: &'a Dataset,
    /// Learning curves to record ([`crate::history`]).
    pub recording: Option<&'a Recording<'a>>,
    pub pool: rayon::ThreadPool,
}

impl Trainer for ReferenceTrainer<'_> {
    fn label(&self) -> String {
        "reference-f64".to_string()
    }

    /// Progress counts each network as it finishes; a `Break` stops every
    /// network at its next epoch.
    fn train(
        &self,
        block: Block<'_>,
        options: &TrainOptions,
        control: &mut Control<'_>,
    ) -> Result<Trained, Error> {
        options.validate()?;
        let Block {
            params,
            state,
            learning_rates,
        } = block;
        let total = learning_rates.len() as u64 * options.epochs;
        let (outcomes, curves) = drive(total, control, |shared| {
            let population = Population {
                spec: self.spec,
                data: self.data,
                options,
                stop: &|| shared.stopping(),
                done: &|epochs| shared.add_done(epochs),
                recording: self.recording,
            };
            self.pool
                .install(|| population.train(params, state, learning_rates))
        });
        Ok(Trained {
            outcomes,
            history: self
                .recording
                .map(|r| HistoryBlock::from_curves(&r.plan, &curves)),
            kernel_seconds: None,
        })
    }
}

/// A population's run on the CPU reference: [`train_network_until`] for
/// every network, in parallel.
struct Population<'a> {
    spec: &'a ModelSpec,
    data: &'a Dataset,
    options: &'a TrainOptions,
    stop: &'a (dyn Fn() -> bool + Sync),
    /// Told each network's epochs as it finishes.
    done: &'a (dyn Fn(u64) + Sync),
    /// Learning curves to record ([`crate::history`]).
    recording: Option<&'a Recording<'a>>,
}

impl Population<'_> {
    /// Trains `params` (vectors back to back) and their optimizer `state`
    /// (network after network) in place; gives the outcomes and, when
    /// recording, every network's curve.
    fn train(
        &self,
        params: &mut [f64],
        state: &mut [f64],
        learning_rates: &[f64],
    ) -> (Vec<NetworkOutcome>, Vec<NetworkCurve>) {
        let spec = self.spec;
        let p = spec.layout().len;
        let per_state = spec.optimizer.state_slots() * p;
        assert_eq!(
            params.len(),
            p * learning_rates.len(),
            "one parameter vector per learning rate"
        );
        assert_eq!(state.len(), per_state * learning_rates.len());
        // par_chunks_mut(0) would panic: a stateless optimizer gets empty slices.
        let mut empty: Vec<&mut [f64]> = Vec::new();
        let states: Vec<&mut [f64]> = if per_state == 0 {
            empty.resize_with(learning_rates.len(), || &mut []);
            empty
        } else {
            state.chunks_mut(per_state).collect()
        };
        params
            .par_chunks_mut(p)
            .zip(states.into_par_iter())
            .zip(learning_rates.par_iter())
            .map(|((net, s), &lr)| {
                let mut curve = self.recording.map(|r| NetworkCurve::new(&r.plan));
                let history = self.recording.zip(curve.as_mut());
                let outcome = train_network_until(
                    spec,
                    self.data,
                    net,
                    s,
                    lr,
                    self.options,
                    self.stop,
                    history,
                );
                (self.done)(outcome.epochs_completed);
                (outcome, curve.unwrap_or_default())
            })
            .unzip()
    }
}
