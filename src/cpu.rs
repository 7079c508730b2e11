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
    /// What every value computed is rounded to.
    values: Precision,
    /// The draws of [`Precision::Dithered`] so far.
    draws: std::cell::Cell<u64>,
}

impl Math {
    fn new(spec: &ModelSpec) -> Self {
        Self::in_precision(spec, Precision::Float64)
    }

    fn in_precision(spec: &ModelSpec, values: Precision) -> Self {
        Self {
            activations: (0..spec.topology.weight_layers())
                .map(|l| spec.layer_activation(l).def())
                .collect(),
            loss: spec.loss.def(),
            optimizer: spec.optimizer.kind.def(),
            settings: spec.optimizer,
            values,
            draws: std::cell::Cell::new(0),
        }
    }

    /// `v` as this run keeps it: as it is, or rounded to float32.
    #[inline(always)]
    fn r(&self, v: f64) -> f64 {
        match self.values {
            Precision::Float64 => v,
            Precision::Float32 => v as f32 as f64,
            Precision::Dithered(seed) => {
                let n = self.draws.get();
                self.draws.set(n + 1);
                stochastic_round(v, splitmix64(seed ^ splitmix64(n)))
            }
        }
    }
}

/// `v` rounded to one of its two float32 neighbours, the farther with
/// probability its share of their distance (stochastic rounding: no bias,
/// each rounding error below one float32 ulp), by the draw `bits`.
fn stochastic_round(v: f64, bits: u64) -> f64 {
    let near = v as f32;
    if near as f64 == v || !near.is_finite() {
        return near as f64;
    }
    let far = if (near as f64) < v {
        near.next_up()
    } else {
        near.next_down()
    };
    let share = (v - near as f64).abs() / (far as f64 - near as f64).abs();
    let draw = (bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
    (if draw < share { far } else { near }) as f64
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
/// In float32 values ([`Precision::Float32`]) the input, every
/// multiply-add of a net input (rounded once, as a fused multiply-add
/// is), the shift and every output are float32: each activation's float64
/// formula, its result rounded.
fn forward(math: &Math, layout: &ParamLayout, params: &[f64], input: &[f64], ws: &mut Workspace) {
    for (x, v) in ws.out[0].iter_mut().zip(input) {
        *x = math.r(*v);
    }
    for (l, layer) in layout.layers.iter().enumerate() {
        let activation = math.activations[l];
        let (before, after) = ws.out.split_at_mut(l + 1);
        let (inputs, outputs) = (&before[l], &mut after[0]);
        for j in 0..outputs.len() {
            let mut net = layer.bias_index(j).map_or(0.0, |b| params[b]);
            for (k, a) in inputs.iter().enumerate() {
                net = math.r(net + params[layer.weight_index(j, k)] * a);
            }
            ws.net[l][j] = net;
        }
        let shift = match activation.normalizes_rows {
            true => math.r(crate::vocab::log_sum_exp(&ws.net[l])),
            false => 0.0,
        };
        for (out, net) in outputs.iter_mut().zip(&ws.net[l]) {
            *out = math.r((activation.f)(math.r(net - shift)));
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
    weighted_loss(spec, params, data, None)
}

/// The loss of `params` over the whole data set, each sample's loss
/// multiplied by its weight in `weights` (a resample's:
/// [`crate::resample`]; `None`: 1).
pub fn weighted_loss(
    spec: &ModelSpec,
    params: &[f64],
    data: &Dataset,
    weights: Option<&[f64]>,
) -> f64 {
    let (math, layout) = (Math::new(spec), spec.layout());
    let mut ws = Workspace::new(spec);
    let mut total = 0.0;
    for s in 0..data.samples() {
        forward(&math, &layout, params, data.input(s), &mut ws);
        let l = sample_loss(&math, &ws, data.target(s));
        total += weights.map_or(l, |w| w[s] * l);
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
    let (math, layout) = (Math::new(spec), spec.layout());
    let data = Weighted {
        data,
        weights: None,
    };
    let all = 0..data.data.samples();
    loss_and_gradient_over(spec, &math, &layout, params, data, all, grad, &mut ws)
}

/// The training data and each sample's weight (a resample's:
/// [`crate::resample`]; `None`: every sample's 1).
#[derive(Clone, Copy)]
struct Weighted<'a> {
    data: &'a Dataset,
    weights: Option<&'a [f64]>,
}

/// The loss and gradient over the samples `batch` yields (the reduction's
/// mean is over them), each sample's loss and output delta multiplied by
/// its weight.
#[allow(clippy::too_many_arguments)]
fn loss_and_gradient_over(
    spec: &ModelSpec,
    math: &Math,
    layout: &ParamLayout,
    params: &[f64],
    Weighted { data, weights }: Weighted<'_>,
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
        let weight = weights.map(|w| w[s]);
        let l = sample_loss(math, ws, target);
        total += weight.map_or(l, |w| math.r(w * l));

        // Output layer: the loss's delta dL/dnet, e.g. for half-sse
        // -(target - out) * f'(net); times the sample's weight.
        for (j, delta) in ws.delta[last].iter_mut().enumerate() {
            let out = ws.out[last + 1][j];
            let slope = math.r((output.derivative)(ws.net[last][j], out));
            let d = math.r((math.loss.delta)(out, math.r(target[j]), slope));
            *delta = weight.map_or(d, |w| math.r(w * d));
        }
        // Hidden layers: delta_prev = (W^T delta) * f'(net_prev), using
        // the weights from before this epoch's update.
        for l in (1..=last).rev() {
            let layer = &layout.layers[l];
            let below = math.activations[l - 1];
            let (lower, upper) = ws.delta.split_at_mut(l);
            for (k, delta_prev) in lower[l - 1].iter_mut().enumerate() {
                let back = upper[0].iter().enumerate().fold(0.0, |sum, (j, d)| {
                    math.r(sum + params[layer.weight_index(j, k)] * d)
                });
                let slope = math.r((below.derivative)(ws.net[l - 1][k], ws.out[l][k]));
                *delta_prev = math.r(back * slope);
            }
        }
        // dE/dW[j][k] = delta_j * out_prev_k; dE/db = delta (summed for shared).
        for (l, layer) in layout.layers.iter().enumerate() {
            for (j, delta) in ws.delta[l].iter().enumerate() {
                for (k, out_prev) in ws.out[l].iter().enumerate() {
                    let g = &mut grad[layer.weight_index(j, k)];
                    *g = math.r(*g + delta * out_prev);
                }
                if let Some(b) = layer.bias_index(j) {
                    grad[b] = math.r(grad[b] + delta);
                }
            }
        }
    }
    let factor = spec.reduction.factor(count);
    if factor != 1.0 {
        let factor = math.r(factor);
        grad.iter_mut().for_each(|g| *g = math.r(*g * factor));
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
    let data = Weighted {
        data,
        weights: None,
    };
    train_fresh(
        spec,
        data,
        params,
        learning_rate,
        options,
        Precision::Float64,
    )
}

/// One network from fresh optimizer state, its values kept in `values`.
fn train_fresh(
    spec: &ModelSpec,
    data: Weighted<'_>,
    params: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
    values: Precision,
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
        values,
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
/// `weights`: each training sample's weight (a resample's,
/// [`crate::resample`]; `None`: 1).
#[allow(clippy::too_many_arguments)]
pub fn train_network_until(
    spec: &ModelSpec,
    data: &Dataset,
    weights: Option<&[f64]>,
    params: &mut [f64],
    state: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
    stop: &(dyn Fn() -> bool + Sync),
    history: Option<(&Recording, &mut NetworkCurve)>,
) -> NetworkOutcome {
    let run = Precision::Float64;
    train_stored(
        spec,
        Weighted { data, weights },
        params,
        state,
        learning_rate,
        options,
        stop,
        history,
        run,
    )
}

/// What a twin rounds the values it computes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Precision {
    /// The reference: every value in float64.
    Float64,
    /// The reference's training in float32 values: the data, every
    /// multiply-add of a net input and of a backpropagated sum (rounded
    /// once, as a fused multiply-add), every gradient sum, the step's
    /// scalars, and every parameter and optimizer state value after each
    /// update rounded to float32; the activations, their slopes and the
    /// loss's delta by their float64 formulas, each result rounded (a
    /// float32 function within an ulp or two of the formula, as the
    /// trainers' are). `--verify`'s yardstick of what float32 arithmetic
    /// does to a network ([`train_network_in_float32`]).
    Float32,
    /// As `Float32`, but every value rounded up or down at random (seeded
    /// by the value held), without bias: float32-sized noise at every
    /// operation, as another float32 trainer's order of operations and
    /// function approximations give.
    Dithered(u64),
}

/// [`train_network`] with every value rounded to float32 as a float32
/// trainer computes it (from the float32 rounding of `params`): float32 arithmetic with each formula of the
/// vocabulary rounded once. With `nudge` > 0 every value, the start's too,
/// is rounded up or down at random instead, seeded by `nudge`: another float32 rounding of the same
/// training, as another float32 trainer's order of operations gives.
/// Where such twins and the reference separate, training amplifies
/// float32-sized differences (a fast, chaotic or saturating regime: a
/// sigmoid whose float32 output is exactly 1 has a zero slope) and
/// float32 cannot match float64 there.
/// `weights` weighs the training samples, as [`train_network_until`]'s.
pub fn train_network_in_float32(
    spec: &ModelSpec,
    data: &Dataset,
    weights: Option<&[f64]>,
    params: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
    nudge: u64,
) -> NetworkOutcome {
    let values = match nudge {
        0 => Precision::Float32,
        seed => Precision::Dithered(seed),
    };
    let math = Math::in_precision(spec, values);
    for p in params.iter_mut() {
        *p = math.r(*p);
    }
    let data = Weighted { data, weights };
    train_fresh(spec, data, params, learning_rate, options, values)
}

/// SplitMix64's output for `x`: a well-mixed 64-bit value.
pub(crate) fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[allow(clippy::too_many_arguments)]
fn train_stored(
    spec: &ModelSpec,
    rows: Weighted<'_>,
    params: &mut [f64],
    state: &mut [f64],
    learning_rate: f64,
    options: &TrainOptions,
    stop: &(dyn Fn() -> bool + Sync),
    mut history: Option<(&Recording, &mut NetworkCurve)>,
    values: Precision,
) -> NetworkOutcome {
    let (math, layout) = (Math::in_precision(spec, values), spec.layout());
    let (data, weights) = (rows.data, rows.weights);
    let round = |v: f64| math.r(v);
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
    // One update with the gradient in `grad`: update number `t` of the
    // run, in run epoch `epoch` (whose rate the schedule gives).
    let mut update = |params: &mut [f64], grad: &[f64], t: u64, epoch: u64| {
        let rate = spec.schedule.rate(learning_rate, epoch);
        let scalars = math.settings.scalars(rate, t);
        let scalars = match math.values {
            Precision::Float64 => scalars,
            Precision::Float32 | Precision::Dithered(_) => scalars.to_f32().to_f64(),
        };
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
            let all = 0..data.samples();
            let loss =
                loss_and_gradient_over(spec, &math, &layout, params, rows, all, &mut grad, &mut ws);
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
            update(params, &grad, run_epoch + 1, run_epoch);
            continue;
        };
        // Minibatches: the epoch's loss (for the target and the history)
        // is the full-data loss of the parameters the previous epoch ended
        // with.
        if options.target_loss.is_some() || records(run_epoch) {
            let full = weighted_loss(spec, params, data, weights);
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
                spec, &math, &layout, params, rows, batch, &mut grad, &mut ws,
            );
            if !loss.is_finite() {
                diverged = true;
                break 'epochs;
            }
            update(
                params,
                &grad,
                run_epoch * batches as u64 + b as u64 + 1,
                run_epoch,
            );
        }
    }
    let final_loss = weighted_loss(spec, params, data, weights);
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
        rows: None,
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
            rows,
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
                rows,
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
    /// Each network's row counts ([`Block::rows`]).
    rows: Option<&'a [u8]>,
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
        let samples = self.data.samples();
        params
            .par_chunks_mut(p)
            .zip(states.into_par_iter())
            .zip(learning_rates.par_iter())
            .enumerate()
            .map(|(n, ((net, s), &lr))| {
                let mut curve = self.recording.map(|r| NetworkCurve::new(&r.plan));
                let history = self.recording.zip(curve.as_mut());
                let weights = row_weights(spec, self.rows, n, samples);
                let outcome = train_network_until(
                    spec,
                    self.data,
                    weights.as_deref(),
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

/// Network `n`'s row weights from a block's counts ([`Block::rows`]).
pub fn row_weights(
    spec: &ModelSpec,
    rows: Option<&[u8]>,
    n: usize,
    samples: usize,
) -> Option<Vec<f64>> {
    let counts = &rows?[n * samples..(n + 1) * samples];
    let resample = spec
        .resample
        .expect("row counts come with the model's resample");
    Some(resample.weights(counts))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stochastic_rounding_picks_a_float32_neighbour_without_bias() {
        // A quarter of the way from 1 to the next float32 up.
        let (lo, hi) = (1.0f32, 1.0f32.next_up());
        let v = 1.0 + 0.25 * (hi as f64 - 1.0);
        let draws = 100_000u64;
        let mut up = 0;
        for n in 0..draws {
            let r = stochastic_round(v, splitmix64(n));
            assert!(r == lo as f64 || r == hi as f64, "{r}");
            up += (r == hi as f64) as u64;
        }
        // Binomial(1e5, 0.25): standard deviation 137; 6 of them.
        let share = up as f64 / draws as f64;
        assert!((share - 0.25).abs() < 0.0083, "{share}");
        // Negative values and exact ones.
        assert_eq!(stochastic_round(-1.5, 7), -1.5);
        let r = stochastic_round(-v, splitmix64(3));
        assert!(r == -(lo as f64) || r == -(hi as f64), "{r}");
    }
}
