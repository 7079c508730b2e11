//! One group of `L` networks trained for a whole run: the epoch loop
//! inside, the group's parameters, gradients and activations as
//! [`Lanes`] (a few kilobytes for small networks, so they stay in L1),
//! every formula the vocabulary's (the lane twin of each table entry is
//! an arm of the `match`es below; `tests/vocabulary.rs` checks each
//! against its float64 formula).
//!
//! Networks with wide layers take a step's samples
//! [`super::lanes::BLOCK_SAMPLES`] at a time through each layer, the layer
//! products as register tiles (`kernel/block.rs`); the bits are those of
//! the sample-by-sample pass.
//!
//! The loop mirrors the float64 reference ([`crate::cpu`]) step for step:
//! the same epoch numbering, loss semantics, target and divergence rules,
//! minibatch order and optimizer steps, in float32 for a group of
//! networks at a time. A network that diverges or stops at its target stops
//! updating (its lane is masked) while the others go on.

#![expect(
    clippy::needless_range_loop,
    reason = "lane loops index several arrays in step, the form LLVM vectorizes"
)]

use crate::batches::{Batching, EpochOrder};
use crate::model::{ModelSpec, Reduction};
use crate::recording::{HistoryPlan, NetworkCurve};
use crate::schedule::ScheduleConfig;
use crate::vocab::{
    Activation, Hyperparameter, Loss, MAX_STATE_SLOTS, Optimizer, OptimizerConfig, State,
    StepScalars, with_activation, with_loss, with_optimizer,
};

use super::lanes::{self, Lanes};

mod block;
#[cfg(test)]
mod same_bits;

/// How often (in epochs) a group of small networks reports progress and
/// asks whether to stop, as the reference.
pub const STOP_CHECK_EPOCHS: u64 = 256;
/// Parameters x samples a group goes through between checks, at most: a
/// group of larger networks checks more often (a 2-16-1 network on 1,024
/// samples every 32 epochs, one of 8,000 parameters on 1,000 samples
/// every epoch), so progress and Ctrl-C keep to a fraction of a second.
const CHECK_WORK: u64 = 1 << 22;

/// Weights of the largest layer from which a step takes the blocked pass.
/// Measured on an AMD EPYC (Zen 4, AVX-512), 2 threads, network-epochs/s
/// sample by sample against blocked: wide (8-32-8, 64 samples) 3.3e5
/// against 5.9e5, softmax (64-16-10, 256 samples) 3.5e4 against 8.3e4,
/// moons-minibatch (2-16-1, 32 weights a layer at most) 1.48e5 against
/// 1.46e5, xor (2-3-1, 4 samples) 1.50e8 against 1.42e8.
const BLOCKED_PRODUCT: usize = 64;

/// One weight layer as the kernel walks it.
#[derive(Clone, Copy, Debug)]
struct LayerPlan {
    fan_in: usize,
    fan_out: usize,
    /// Offset of `W[0][0]` among the parameters (`W[j][k]` at `+ j * fan_in + k`).
    weights: usize,
    /// Where neuron j's bias is: none, one shared, or one each from here.
    bias: Bias,
    activation: Activation,
    /// Offsets of the layer's inputs and outputs in the activations, and
    /// of its deltas.
    input_at: usize,
    output_at: usize,
    delta_at: usize,
}

#[derive(Clone, Copy, Debug)]
enum Bias {
    None,
    Shared(usize),
    PerNeuron(usize),
}

impl Bias {
    #[inline(always)]
    fn index(self, neuron: usize) -> Option<usize> {
        match self {
            Bias::None => None,
            Bias::Shared(at) => Some(at),
            Bias::PerNeuron(at) => Some(at + neuron),
        }
    }
}

/// Samples in float32, row after row: the inputs, then the targets.
#[derive(Clone, Debug)]
pub struct Samples {
    values: Vec<f32>,
    inputs: usize,
    stride: usize,
    count: usize,
}

impl Samples {
    pub fn new(data: &crate::data::Dataset) -> Self {
        let stride = data.inputs + data.outputs;
        let mut values = Vec::with_capacity(data.samples() * stride);
        for s in 0..data.samples() {
            values.extend(data.input(s).iter().map(|&v| v as f32));
            values.extend(data.target(s).iter().map(|&v| v as f32));
        }
        Self {
            values,
            inputs: data.inputs,
            stride,
            count: data.samples(),
        }
    }

    #[inline(always)]
    fn row(&self, s: usize) -> (&[f32], &[f32]) {
        self.values[s * self.stride..(s + 1) * self.stride].split_at(self.inputs)
    }
}

/// Everything a group's run reads and never changes: the model laid out
/// for the lanes, the data, and the options.
pub struct Plan {
    layers: Vec<LayerPlan>,
    /// Activations of every layer for one sample (the inputs included).
    activations: usize,
    /// Deltas of every weight layer.
    deltas: usize,
    pub params: usize,
    /// Indices of the parameters training changes (all but frozen biases).
    trainable: Vec<usize>,
    loss: Loss,
    reduction: Reduction,
    optimizer: OptimizerConfig,
    schedule: ScheduleConfig,
    batching: Option<Batching>,
    data: Samples,
    eval: Option<Samples>,
    history: Option<HistoryPlan>,
    target_loss: Option<f32>,
    stop_at_target: bool,
    /// Whether a step's samples go through the layers [`block::BLOCK`] at
    /// a time, the products as register tiles ([`Plan::blocks_pay`]).
    blocked: bool,
}

impl Plan {
    pub fn new(
        spec: &ModelSpec,
        data: Samples,
        eval: Option<Samples>,
        history: Option<HistoryPlan>,
        target_loss: Option<f64>,
        stop_at_target: bool,
    ) -> Self {
        let layout = spec.layout();
        let widths = spec.topology.widths();
        let mut input_at = 0;
        let mut delta_at = 0;
        let layers: Vec<LayerPlan> = layout
            .layers
            .iter()
            .enumerate()
            .map(|(l, layer)| {
                let plan = LayerPlan {
                    fan_in: layer.fan_in,
                    fan_out: layer.fan_out,
                    weights: layer.weight_offset,
                    bias: match layer.bias_count {
                        0 => Bias::None,
                        1 => Bias::Shared(layer.bias_offset),
                        _ => Bias::PerNeuron(layer.bias_offset),
                    },
                    activation: spec.layer_activation(l),
                    input_at,
                    output_at: input_at + layer.fan_in,
                    delta_at,
                };
                input_at += layer.fan_in;
                delta_at += layer.fan_out;
                plan
            })
            .collect();
        let frozen = spec.frozen_mask();
        let per_step = spec.batching.map_or(data.count, |b| b.size.min(data.count));
        let blocked = Self::blocks_pay(&layers, per_step);
        Self {
            layers,
            activations: widths.iter().sum(),
            deltas: widths[1..].iter().sum(),
            params: layout.len,
            trainable: (0..layout.len).filter(|&i| !frozen[i]).collect(),
            loss: spec.loss,
            reduction: spec.reduction,
            optimizer: spec.optimizer,
            schedule: spec.schedule,
            batching: spec.batching,
            data,
            eval,
            history,
            target_loss: target_loss.map(|t| t as f32),
            stop_at_target,
            blocked,
        }
    }

    /// Whether the blocked pass is the faster for `layers` at
    /// `per_step` samples a step: a layer product large enough for its
    /// tiles, and samples enough to fill a block.
    fn blocks_pay(layers: &[LayerPlan], per_step: usize) -> bool {
        let largest = layers.iter().map(|l| l.fan_in * l.fan_out).max();
        per_step >= block::BLOCK && largest.is_some_and(|p| p >= BLOCKED_PRODUCT)
    }

    /// The parameters training changes (all but frozen biases).
    pub fn trainable(&self) -> &[usize] {
        &self.trainable
    }

    /// Epochs between a group's checks for progress and a stop, a power
    /// of two: [`STOP_CHECK_EPOCHS`], fewer for large networks
    /// (`CHECK_WORK`).
    pub fn check_every(&self) -> u64 {
        let work = (self.params * self.data.count.max(1)) as u64;
        let most = (CHECK_WORK / work).clamp(1, STOP_CHECK_EPOCHS);
        1 << most.ilog2()
    }

    /// The schedule's pairs of `count` epochs from run epoch `first`
    /// ([`crate::schedule::ScheduleConfig::table`]); none for a constant
    /// rate.
    pub fn schedule_table(&self, first: u64, count: u64) -> Vec<f32> {
        match self.schedule.is_constant() {
            true => Vec::new(),
            false => self.schedule.table(first..first + count),
        }
    }

    /// Optimizer state values per parameter.
    pub fn slots(&self) -> usize {
        self.optimizer.state_slots()
    }
}

/// A group's parameters, optimizer state and rates, lane per network.
pub struct Group<'a, const L: usize> {
    /// `plan.params` values.
    pub params: &'a mut [Lanes<L>],
    /// `plan.slots()` x `plan.params` values, slot after slot.
    pub state: &'a mut [Lanes<L>],
    pub learning_rate: Lanes<L>,
    /// With a resample: every training sample's weight in each lane
    /// (`count x S / m`, [`crate::resample`]), sample after sample.
    pub weights: Option<&'a [Lanes<L>]>,
    /// The curve of each real lane (padding lanes have none), when the
    /// plan records a history.
    pub curves: &'a mut [NetworkCurve],
}

/// What a group's run produced, lane by lane.
#[derive(Clone, Copy, Debug)]
pub struct GroupOutcome<const L: usize> {
    pub final_loss: Lanes<L>,
    pub target_epoch: [Option<u32>; L],
    pub diverged: [bool; L],
    pub epochs_completed: u64,
}

/// The run's epochs: where they start, how many, and the stop request.
pub struct Epochs<'a> {
    pub first: u64,
    pub count: u64,
    pub stop: &'a (dyn Fn() -> bool + Sync),
    /// Told the epochs done since it was last told, at every check
    /// ([`Plan::check_every`]) and at the end.
    pub done: &'a (dyn Fn(u64) + Sync),
    /// The schedule's float32 (scale, shift) pairs of the run's first
    /// epochs, interleaved ([`Plan::schedule_table`]); later epochs compute
    /// their own (the same values).
    pub rates: &'a [f32],
}

/// Scratch space for one group: every layer's outputs (from the inputs
/// on), and per neuron of the weight layers its net input (kept for the
/// output layer and for activations whose derivative reads it), its delta
/// and the gradient.
struct Work<const L: usize> {
    out: Vec<Lanes<L>>,
    net: Vec<Lanes<L>>,
    delta: Vec<Lanes<L>>,
    grad: Vec<Lanes<L>>,
    /// A blocked plan's values of [`block::BLOCK`] samples.
    blocks: Option<block::Blocks<L>>,
}

/// Each lane's standing during the run.
struct Lanesheet<const L: usize> {
    /// Still updating: not diverged, not stopped at the target.
    active: [bool; L],
    all_active: bool,
    diverged: [bool; L],
    target_epoch: [Option<u32>; L],
    /// The target for lanes that have not reached it, -inf for the others
    /// (no loss compares at or below it), so one vector comparison finds
    /// a lane reaching it.
    pending_target: Lanes<L>,
}

impl<const L: usize> Lanesheet<L> {
    fn new(target: Option<f32>) -> Self {
        Self {
            active: [true; L],
            all_active: true,
            diverged: [false; L],
            target_epoch: [None; L],
            pending_target: Lanes::splat(target.unwrap_or(f32::NEG_INFINITY)),
        }
    }

    /// The loss of every lane's parameters at the start of `epoch`:
    /// divergence, the target epoch, stopping there. True when some lane
    /// is still active.
    #[inline(always)]
    fn record(&mut self, plan: &Plan, loss: Lanes<L>, epoch: u64, watch_target: bool) -> bool {
        let finite = loss.finite();
        let mut quiet = true;
        for i in 0..L {
            let bad = !finite[i] & self.active[i];
            let reached = watch_target & (loss.0[i] <= self.pending_target.0[i]);
            quiet &= !(bad | reached);
        }
        if quiet {
            return true;
        }
        for i in 0..L {
            if !self.active[i] {
                continue;
            }
            if !finite[i] {
                self.diverged[i] = true;
                self.active[i] = false;
                continue;
            }
            if watch_target && loss.0[i] <= self.pending_target.0[i] {
                self.target_epoch[i] = Some(epoch as u32);
                self.pending_target.0[i] = f32::NEG_INFINITY;
            }
            if plan.stop_at_target && self.target_epoch[i].is_some() {
                self.active[i] = false;
            }
        }
        self.all_active = self.active.iter().all(|&a| a);
        self.active.iter().any(|&a| a)
    }

    /// Lanes whose batch loss is not finite diverge. True when some lane
    /// is still active.
    #[inline(always)]
    fn check_batch(&mut self, loss: Lanes<L>) -> bool {
        let finite = loss.finite();
        let mut quiet = true;
        for i in 0..L {
            quiet &= finite[i] | !self.active[i];
        }
        if quiet {
            return true;
        }
        for i in 0..L {
            if self.active[i] && !finite[i] {
                self.diverged[i] = true;
                self.active[i] = false;
            }
        }
        self.all_active = false;
        self.active.iter().any(|&a| a)
    }
}

/// `f(z)` of a layer's activation, lane by lane: the entry's lane form
/// ([`crate::vocab::ActivationDef::lane`]). Each call site wraps the
/// entry's function pointer in a closure of its own, so every lane loop
/// is its own instantiation with a direct call that inlines (a generic
/// taking the pointer type itself is one instantiation for every entry,
/// left to LLVM to devirtualize after inlining: measured 3% slower on the
/// headline run).
#[inline(always)]
pub fn activate<const L: usize>(activation: Activation, z: Lanes<L>) -> Lanes<L> {
    with_activation!(activation, DEF => z.map(|z| (DEF.lane)(z)))
}

/// `f'` from the net input `z` and the output `a`, lane by lane.
#[inline(always)]
pub fn derivative<const L: usize>(activation: Activation, z: Lanes<L>, a: Lanes<L>) -> Lanes<L> {
    with_activation!(activation, DEF => z.zip(a, |z, a| (DEF.lane_derivative)(z, a)))
}

/// The loss of one output from its net input, output and target, lane by
/// lane: the entry's lane form ([`crate::vocab::LossDef::lane_value`]).
#[inline(always)]
pub fn loss_value<const L: usize>(loss: Loss, z: Lanes<L>, yhat: Lanes<L>, y: f32) -> Lanes<L> {
    with_loss!(loss, DEF => z.zip(yhat, |z, yhat| (DEF.lane_value)(z, yhat, y)))
}

/// dL/dz from the output, the target and the output activation's slope:
/// the entry's [`crate::vocab::LossDef::lane_delta`].
#[inline(always)]
pub fn loss_delta<const L: usize>(loss: Loss, yhat: Lanes<L>, y: f32, slope: Lanes<L>) -> Lanes<L> {
    with_loss!(loss, DEF => yhat.zip(slope, |yhat, slope| (DEF.lane_delta)(yhat, y, slope)))
}

/// The scalars of one update: the rate and the bias-corrected step size
/// per lane, the rest (the run's hyperparameters, Adam's second
/// correction) shared by the group ([`StepScalars`] in float32).
#[derive(Clone, Copy)]
pub struct Step<const L: usize> {
    pub lr: Lanes<L>,
    pub step_size: Lanes<L>,
    pub shared: StepScalars<f32>,
}

impl<const L: usize> Step<L> {
    /// The same scalars in every lane.
    pub fn splat(k: StepScalars<f32>) -> Self {
        Step {
            lr: Lanes::splat(k.lr),
            step_size: Lanes::splat(k.step_size),
            shared: k,
        }
    }

    /// Lane `i`'s scalars.
    #[inline(always)]
    fn lane(&self, i: usize) -> StepScalars<f32> {
        StepScalars {
            lr: self.lr.0[i],
            step_size: self.step_size.0[i],
            ..self.shared
        }
    }
}

/// Adam's running powers `beta^t`, kept in float64 and advanced one
/// update at a time (so a step costs no `powf`).
#[derive(Clone, Copy)]
struct Powers {
    beta1: f64,
    beta2: f64,
}

impl Powers {
    /// `beta1^t, beta2^t` for update `t` (from 1), before the first step
    /// of a run that starts at update `t`.
    fn at(settings: &OptimizerConfig, t: u64) -> Self {
        let t = t as f64;
        Self {
            beta1: settings[Hyperparameter::Beta1].powf(t),
            beta2: settings[Hyperparameter::Beta2].powf(t),
        }
    }

    fn advance(&mut self, settings: &OptimizerConfig) {
        self.beta1 *= settings[Hyperparameter::Beta1];
        self.beta2 *= settings[Hyperparameter::Beta2];
    }

    /// The step's scalars with the bias corrections from the powers.
    fn step<const L: usize>(&self, settings: &OptimizerConfig, lr: Lanes<L>) -> Step<L> {
        let mut step = plain_step(settings, lr);
        step.step_size = lr * Lanes::splat((1.0 / (1.0 - self.beta1)) as f32);
        step.shared.bias2_sqrt = (1.0 - self.beta2).sqrt() as f32;
        step
    }
}

/// The scalars every update shares (all but the bias corrections).
fn plain_step<const L: usize>(settings: &OptimizerConfig, lr: Lanes<L>) -> Step<L> {
    Step {
        lr,
        step_size: lr,
        shared: settings.scalars(1.0, 1).to_f32(),
    }
}

/// The signature of an entry's lane step
/// ([`crate::vocab::OptimizerDef::lane_step`]).
type LaneStep = fn(f32, f32, &mut State<f32>, &StepScalars<f32>) -> f32;

/// One optimizer step of a parameter `p` with gradient `g` and its state
/// `s`: the entry's lane form ([`crate::vocab::OptimizerDef::lane_step`]),
/// lane by lane.
#[inline(always)]
pub fn optimizer_step<const L: usize>(
    kind: Optimizer,
    p: Lanes<L>,
    g: Lanes<L>,
    s: &mut [Lanes<L>; MAX_STATE_SLOTS],
    k: &Step<L>,
) -> Lanes<L> {
    with_optimizer!(kind, DEF => lane_steps(DEF.lane_step, p, g, s, k))
}

/// `step` lane by lane over the first `SLOTS` state values (the entry's
/// own, so SGD's step touches no state and momentum's one slot). The lane
/// loop is compiled twice: once for no weight decay (the default), where
/// the decay's test folds away, and once for the rest.
#[inline(always)]
fn lane_steps<const L: usize, const SLOTS: usize>(
    step: LaneStep,
    p: Lanes<L>,
    g: Lanes<L>,
    s: &mut [Lanes<L>; SLOTS],
    k: &Step<L>,
) -> Lanes<L> {
    let decay = Hyperparameter::WeightDecay as usize;
    if k.shared.hyper[decay] == 0.0 {
        let mut plain = *k;
        plain.shared.hyper[decay] = 0.0;
        lane_loop(step, p, g, s, &plain)
    } else {
        lane_loop(step, p, g, s, k)
    }
}

/// [`lane_steps`]' loop over the lanes.
#[inline(always)]
fn lane_loop<const L: usize, const SLOTS: usize>(
    step: LaneStep,
    p: Lanes<L>,
    g: Lanes<L>,
    s: &mut [Lanes<L>; SLOTS],
    k: &Step<L>,
) -> Lanes<L> {
    let mut out = [0.0; L];
    for i in 0..L {
        let mut lane = [0.0; MAX_STATE_SLOTS];
        for (v, slot) in lane.iter_mut().zip(s.iter()) {
            *v = slot.0[i];
        }
        out[i] = step(p.0[i], g.0[i], &mut lane, &k.lane(i));
        for (slot, v) in s.iter_mut().zip(lane) {
            slot.0[i] = v;
        }
    }
    Lanes(out)
}

/// `f'` of neuron `at`'s output `a`, reading its net input from `net`
/// only where the derivative needs it (a constant per entry), so the
/// others' backward pass does no load or bounds check for it (the
/// headline run measured 6% slower with them).
#[inline(always)]
fn slope<const L: usize>(
    activation: Activation,
    net: &[Lanes<L>],
    at: usize,
    a: Lanes<L>,
) -> Lanes<L> {
    with_activation!(activation, DEF => {
        let z = if DEF.needs_net { net[at] } else { a };
        z.zip(a, |z, a| (DEF.lane_derivative)(z, a))
    })
}

/// A row form's shift ([`crate::vocab::ActivationDef::normalizes_rows`]):
/// each lane's logits `z` become `l_j = z_j - lse(z)`, `lse(z) = m + ln
/// sum_j e^(z_j - m)` with `m` the lane's largest logit, and its outputs
/// `f(l_j)`. A NaN logit makes the lane's sum, and so every output, NaN
/// (`f32::max` passes over it, `e^(NaN - m)` does not); an infinite one
/// makes `inf - inf`, NaN too.
#[inline(always)]
fn normalize_rows<const L: usize>(
    z: &mut [Lanes<L>],
    out: &mut [Lanes<L>],
    f: impl Fn(f32) -> f32,
) {
    // Loops, not `Iterator::fold`: std's adapters are only `#[inline]`,
    // and one LLVM leaves out of line is compiled for the baseline x86-64
    // ([`history_eval`]), each lane's e^x there a chain of `fmaf` calls.
    let mut m = z[0];
    for zk in &z[1..] {
        m = m.zip(*zk, f32::max);
    }
    let mut sum = Lanes::ZERO;
    for zk in z.iter() {
        sum = sum + (*zk - m).map(lanes::exp);
    }
    let lse = m + sum.map(lanes::ln);
    for (z, out) in z.iter_mut().zip(out) {
        *z = *z - lse;
        *out = z.map(&f);
    }
}

/// A neuron's net input `start + sum_k w[k] a[k]` (the terms added in
/// order, each with one rounding: fused multiply-adds) and its output
/// `f(net)`. Short sums are unrolled inside the lane loop, so the net
/// input never leaves the registers; the bits are the same either way.
#[inline(always)]
fn neuron<const L: usize>(
    start: Lanes<L>,
    w: &[Lanes<L>],
    a: &[Lanes<L>],
    f: impl Fn(f32) -> f32,
) -> (Lanes<L>, Lanes<L>) {
    #[inline(always)]
    fn unrolled<const N: usize, const L: usize>(
        start: Lanes<L>,
        w: &[Lanes<L>],
        a: &[Lanes<L>],
        f: impl Fn(f32) -> f32,
    ) -> (Lanes<L>, Lanes<L>) {
        let (w, a) = (&w[..N], &a[..N]);
        let (mut net, mut out) = (start.0, [0.0; L]);
        for i in 0..L {
            for k in 0..N {
                net[i] = w[k].0[i].mul_add(a[k].0[i], net[i]);
            }
            out[i] = f(net[i]);
        }
        (Lanes(net), Lanes(out))
    }
    match w.len() {
        1 => unrolled::<1, L>(start, w, a, f),
        2 => unrolled::<2, L>(start, w, a, f),
        3 => unrolled::<3, L>(start, w, a, f),
        4 => unrolled::<4, L>(start, w, a, f),
        _ => {
            // A loop, not `zip(..).fold(..)`: LLVM left that fold out of
            // line, compiled for the baseline x86-64 (see
            // [`history_eval`]), where its multiply-adds were calls to
            // `fmaf`; moons-minibatch (2-16-1, an output neuron of 16
            // inputs) spent 14% of its time there.
            let a = &a[..w.len()];
            let mut net = start;
            for k in 0..w.len() {
                net = w[k].mul_add(a[k], net);
            }
            (net, net.map(f))
        }
    }
}

impl<const L: usize> Work<L> {
    fn new(plan: &Plan) -> Self {
        Self {
            out: vec![Lanes::ZERO; plan.activations],
            net: vec![Lanes::ZERO; plan.deltas],
            delta: vec![Lanes::ZERO; plan.deltas],
            grad: vec![Lanes::ZERO; plan.params],
            blocks: plan.blocked.then(|| block::Blocks::new(plan)),
        }
    }

    /// Forward pass of one sample: every layer's outputs, and the net
    /// inputs the loss and the backward pass read.
    #[inline(always)]
    fn forward(&mut self, plan: &Plan, params: &[Lanes<L>], input: &[f32]) {
        for (a, &x) in self.out.iter_mut().zip(input) {
            *a = Lanes::splat(x);
        }
        let last = plan.layers.len() - 1;
        for (l, layer) in plan.layers.iter().enumerate() {
            let (before, after) = self.out.split_at_mut(layer.output_at);
            let inputs = &before[layer.input_at..];
            // One dispatch per layer: the entry's lane form inlined, and
            // whether the net input is kept and the row form applies,
            // constants of the arm.
            with_activation!(layer.activation, DEF => {
                for j in 0..layer.fan_out {
                    let bias = layer.bias.index(j).map_or(Lanes::ZERO, |b| params[b]);
                    let row = &params[layer.weights + j * layer.fan_in..][..layer.fan_in];
                    let inputs = &inputs[..layer.fan_in];
                    let (net, out) = match DEF.normalizes_rows {
                        // The row form applies f after the shift below.
                        true => neuron(bias, row, inputs, |z| z),
                        false => neuron(bias, row, inputs, |z| (DEF.lane)(z)),
                    };
                    if DEF.needs_net || l == last {
                        self.net[layer.delta_at + j] = net;
                    }
                    after[j] = out;
                }
                if DEF.normalizes_rows {
                    let nets = &mut self.net[layer.delta_at..][..layer.fan_out];
                    normalize_rows(nets, &mut after[..layer.fan_out], |l| (DEF.lane)(l));
                }
            });
        }
    }

    /// The loss of the sample whose forward pass is in `self`.
    #[inline(always)]
    fn sample_loss(&self, plan: &Plan, target: &[f32]) -> Lanes<L> {
        let output = plan.layers[plan.layers.len() - 1];
        let mut total = Lanes::ZERO;
        for (j, &y) in target.iter().enumerate() {
            let (z, yhat) = (
                self.net[output.delta_at + j],
                self.out[output.output_at + j],
            );
            total = total + loss_value(plan.loss, z, yhat, y);
        }
        total
    }

    /// Backpropagates the sample whose forward pass is in `self` and adds
    /// its gradient to `grad`.
    #[inline(always)]
    fn backward(
        &mut self,
        plan: &Plan,
        params: &[Lanes<L>],
        target: &[f32],
        weight: Option<Lanes<L>>,
    ) {
        let last = plan.layers.len() - 1;
        let output = plan.layers[last];
        for (j, &y) in target.iter().enumerate() {
            let yhat = self.out[output.output_at + j];
            let slope = slope(output.activation, &self.net, output.delta_at + j, yhat);
            let d = loss_delta(plan.loss, yhat, y, slope);
            self.delta[output.delta_at + j] = weight.map_or(d, |w| w * d);
        }
        // Hidden layers: delta_prev = (W^T delta) * f'(net_prev), with
        // the weights from before this update.
        for l in (1..=last).rev() {
            let layer = plan.layers[l];
            let below = plan.layers[l - 1];
            for k in 0..layer.fan_in {
                let mut back = Lanes::ZERO;
                for j in 0..layer.fan_out {
                    let w = params[layer.weights + j * layer.fan_in + k];
                    back = w.mul_add(self.delta[layer.delta_at + j], back);
                }
                let a = self.out[layer.input_at + k];
                let slope = slope(below.activation, &self.net, below.delta_at + k, a);
                self.delta[below.delta_at + k] = back * slope;
            }
        }
        // dE/dW[j][k] = delta_j out_prev_k; dE/db = delta (summed when shared).
        for layer in &plan.layers {
            for j in 0..layer.fan_out {
                let d = self.delta[layer.delta_at + j];
                let row = &mut self.grad[layer.weights + j * layer.fan_in..][..layer.fan_in];
                for (g, a) in row.iter_mut().zip(&self.out[layer.input_at..]) {
                    *g = d.mul_add(*a, *g);
                }
                if let Some(b) = layer.bias.index(j) {
                    self.grad[b] = self.grad[b] + d;
                }
            }
        }
    }

    /// The loss over `samples` (reduced), forward passes only, each
    /// sample's weighted by `weights` where given; a blocked plan takes
    /// them [`block::BLOCK`] at a time, in strips of `W` lanes.
    #[inline(always)]
    fn loss<const W: usize>(
        &mut self,
        plan: &Plan,
        params: &[Lanes<L>],
        samples: &Samples,
        weights: Option<&[Lanes<L>]>,
    ) -> Lanes<L> {
        let total = if plan.blocked {
            self.block_loss::<W>(plan, params, samples, weights)
        } else {
            let mut total = Lanes::ZERO;
            for s in 0..samples.count {
                let (input, target) = samples.row(s);
                self.forward(plan, params, input);
                let l = self.sample_loss(plan, target);
                total = total + weights.map_or(l, |w| w[s] * l);
            }
            total
        };
        total * Lanes::splat(plan.reduction.factor(samples.count) as f32)
    }

    /// Zeroes the gradient, then accumulates the loss and gradient of the
    /// samples `batch` yields; gives the summed loss and the count. A
    /// blocked plan takes them [`block::BLOCK`] at a time, in strips of
    /// `W` lanes.
    #[inline(always)]
    fn loss_and_gradient<const W: usize>(
        &mut self,
        plan: &Plan,
        params: &[Lanes<L>],
        weights: Option<&[Lanes<L>]>,
        batch: impl Iterator<Item = usize>,
    ) -> (Lanes<L>, usize) {
        self.grad.fill(Lanes::ZERO);
        let mut total = Lanes::ZERO;
        let mut count = 0;
        if plan.blocked {
            let mut block = [0; block::BLOCK];
            let mut filled = 0;
            for s in batch {
                block[filled] = s;
                filled += 1;
                count += 1;
                if filled == block::BLOCK {
                    self.block_step::<W>(plan, params, weights, &block, &mut total);
                    filled = 0;
                }
            }
            if filled > 0 {
                self.block_step::<W>(plan, params, weights, &block[..filled], &mut total);
            }
            return (total, count);
        }
        for s in batch {
            let (input, target) = plan.data.row(s);
            self.forward(plan, params, input);
            let weight = weights.map(|w| w[s]);
            let l = self.sample_loss(plan, target);
            total = total + weight.map_or(l, |w| w * l);
            self.backward(plan, params, target, weight);
            count += 1;
        }
        (total, count)
    }

    /// One update of every trainable parameter with the gradient in
    /// `grad` scaled by `scale` (the mean's 1 / batch size, or 1); lanes
    /// not `active` keep their values.
    #[inline(always)]
    fn update(
        &self,
        plan: &Plan,
        group: &mut Group<L>,
        k: &Step<L>,
        scale: f32,
        sheet: &Lanesheet<L>,
    ) {
        // One dispatch per update; the entry's state slots a constant.
        with_optimizer!(plan.optimizer.kind, DEF => {
            const SLOTS: usize = DEF.state.len();
            self.update_with::<SLOTS>(plan, group, k, scale, sheet, DEF.lane_step)
        })
    }

    /// [`Work::update`] for an optimizer of `SLOTS` state values whose
    /// lane step is `step`.
    #[inline(always)]
    fn update_with<const SLOTS: usize>(
        &self,
        plan: &Plan,
        group: &mut Group<L>,
        k: &Step<L>,
        scale: f32,
        sheet: &Lanesheet<L>,
        step: LaneStep,
    ) {
        let p = plan.params;
        let scale = Lanes::splat(scale);
        for &i in &plan.trainable {
            let g = match plan.reduction {
                Reduction::Sum => self.grad[i],
                Reduction::Mean => self.grad[i] * scale,
            };
            let mut s: [Lanes<L>; SLOTS] = std::array::from_fn(|slot| group.state[slot * p + i]);
            let old = group.params[i];
            let new = lane_steps(step, old, g, &mut s, k);
            if sheet.all_active {
                group.params[i] = new;
                for (slot, v) in s.iter().enumerate() {
                    group.state[slot * p + i] = *v;
                }
            } else {
                group.params[i] = old.keep_where(&sheet.active, new);
                for (slot, v) in s.iter().enumerate() {
                    let at = slot * p + i;
                    group.state[at] = group.state[at].keep_where(&sheet.active, *v);
                }
            }
        }
    }
}

/// The held-out loss a history point records, when the plan has one.
/// Inline, as every lane operation must be: `train_group` is compiled
/// once per instruction set inside that set's `#[target_feature]` entry
/// point, and an out-of-line function is compiled for the baseline x86-64
/// instead, where each fused multiply-add is a call to `fmaf`. Computed
/// in [`record_point`] until 2026-12-08, it made an 8-32-8 run with
/// `--holdout 0.5 --history 1` (1,000 networks, AMD EPYC) spend 97% of
/// its time there, at 1.3e4 network-epochs/s.
#[inline(always)]
fn history_eval<const L: usize, const W: usize>(
    plan: &Plan,
    work: &mut Work<L>,
    params: &[Lanes<L>],
) -> Option<Lanes<L>> {
    match (&plan.eval, plan.history.is_some_and(|h| h.eval)) {
        (Some(eval), true) => Some(work.loss::<W>(plan, params, eval, None)),
        _ => None,
    }
}

/// Records history point `q` for the active lanes: the training loss
/// `loss`, and the held-out loss `eval` when the plan has one. Kept out
/// of line, as it runs once every `--history` epochs: the headline
/// workload with `--history 100` kept 87% to 97% of its throughput with
/// it inlined and 94% to 103% without (README, Performance). No lane
/// arithmetic here ([`history_eval`] says why).
#[inline(never)]
fn record_point<const L: usize>(
    group: &mut Group<L>,
    sheet: &Lanesheet<L>,
    q: usize,
    loss: Lanes<L>,
    eval: Option<Lanes<L>>,
) {
    for (i, curve) in group.curves.iter_mut().enumerate() {
        if sheet.active[i] {
            curve.record(q, f64::from(loss.0[i]), eval.map(|e| f64::from(e.0[i])));
        }
    }
}

/// The history's points as the epochs pass, without a division per epoch
/// (at 128 lanes an epoch of the seeds' network is about 1,200 cycles,
/// and a 64-bit division 20 to 40).
struct Points {
    plan: Option<HistoryPlan>,
    /// The next epoch that is a point.
    next: u64,
}

impl Points {
    /// The points of `plan` from run epoch `first` on.
    fn new(plan: Option<HistoryPlan>, first: u64) -> Self {
        let next = plan.map_or(u64::MAX, |h| first.next_multiple_of(h.every.max(1)));
        Self { plan, next }
    }

    /// The point run epoch `epoch` records, if any ([`HistoryPlan::slot`]);
    /// the epochs come in order.
    #[inline(always)]
    fn at(&mut self, epoch: u64) -> Option<usize> {
        if epoch != self.next {
            return None;
        }
        let plan = self.plan?;
        self.next += plan.every.max(1);
        plan.slot(epoch)
    }
}

/// Trains one group for `epochs`, in place. Written once and compiled per
/// instruction set by the entry points in `super::dispatch`, which is
/// why every helper it calls is `#[inline(always)]`; `W` is the lanes of
/// one of that set's vector registers (the blocked pass's strip).
#[inline(always)]
pub fn train_group<const L: usize, const W: usize>(
    plan: &Plan,
    group: &mut Group<L>,
    epochs: &Epochs,
) -> GroupOutcome<L> {
    let mut work = Work::new(plan);
    let weights = group.weights;
    let mut sheet = Lanesheet::new(plan.target_loss);
    let watch_target = plan.target_loss.is_some();
    let settings = &plan.optimizer;
    let samples = plan.data.count;
    let batches = plan.batching.map_or(1, |b| b.batches(samples)) as u64;
    let mut powers = Powers::at(settings, epochs.first * batches + 1);
    let corrected = settings.kind.def().bias_corrected;
    let mut step = plain_step(settings, group.learning_rate);
    // A schedule's rate for the epoch: the float64 pair of the epoch
    // (src/schedule.rs) in float32, one multiply-add per lane.
    let scheduled = !plan.schedule.is_constant();
    let mut lr = group.learning_rate;
    let mut points = Points::new(plan.history, epochs.first);
    let mut epochs_completed = epochs.count;
    let mut reported = 0;
    // A power of two, so the test below is a mask.
    let check_mask = plan.check_every() - 1;
    let full_factor = plan.reduction.factor(samples) as f32;
    'epochs: for e in 0..epochs.count {
        if e & check_mask == 0 && e > 0 {
            (epochs.done)(e - reported);
            reported = e;
            if (epochs.stop)() {
                epochs_completed = e;
                break;
            }
        }
        let epoch = epochs.first + e;
        if scheduled {
            let (scale, shift) = match epochs.rates.get(2 * e as usize..2 * e as usize + 2) {
                Some(pair) => (pair[0], pair[1]),
                None => {
                    let (scale, shift) = plan.schedule.pair(epoch);
                    (scale as f32, shift as f32)
                }
            };
            let (scale, shift) = (Lanes::splat(scale), Lanes::splat(shift));
            lr = group.learning_rate.mul_add(scale, shift);
            if !corrected {
                (step.lr, step.step_size) = (lr, lr);
            }
        }
        let Some(batching) = plan.batching else {
            // Full batch: the loss of the current parameters comes with
            // their gradient.
            let (total, _) = work.loss_and_gradient::<W>(plan, group.params, weights, 0..samples);
            let loss = total * Lanes::splat(full_factor);
            if let Some(q) = points.at(epoch) {
                let eval = history_eval::<L, W>(plan, &mut work, group.params);
                record_point(group, &sheet, q, loss, eval);
            }
            if !sheet.record(plan, loss, epoch, watch_target) {
                break;
            }
            if corrected {
                step = powers.step(settings, lr);
                powers.advance(settings);
            }
            work.update(plan, group, &step, full_factor, &sheet);
            continue;
        };
        // Minibatches: the epoch's loss (for the target and the history)
        // is the full-data loss of the parameters the previous epoch
        // ended with.
        let point = points.at(epoch);
        if watch_target || point.is_some() {
            let loss = work.loss::<W>(plan, group.params, &plan.data, weights);
            if let Some(q) = point {
                let eval = history_eval::<L, W>(plan, &mut work, group.params);
                record_point(group, &sheet, q, loss, eval);
            }
            if watch_target && !sheet.record(plan, loss, epoch, true) {
                break;
            }
        }
        let order = batching
            .shuffle
            .then(|| EpochOrder::new(samples, batching.seed, epoch));
        for b in 0..batches as usize {
            let first = b * batching.size;
            let last = (first + batching.size).min(samples);
            let batch = (first..last).map(|position| match &order {
                Some(order) => order.sample(position as u32) as usize,
                None => position,
            });
            let (total, count) = work.loss_and_gradient::<W>(plan, group.params, weights, batch);
            let scale = plan.reduction.factor(count) as f32;
            if !sheet.check_batch(total * Lanes::splat(scale)) {
                break 'epochs;
            }
            if corrected {
                step = powers.step(settings, lr);
                powers.advance(settings);
            }
            work.update(plan, group, &step, scale, &sheet);
        }
    }
    // The final loss; divergence if it or any parameter is not finite; a
    // target first reached by the last update.
    let final_loss = work.loss::<W>(plan, group.params, &plan.data, weights);
    let mut diverged = sheet.diverged;
    // One pass over the parameters, every lane at once.
    let mut finite = final_loss.finite();
    for p in group.params.iter() {
        let f = p.finite();
        for (all, f) in finite.iter_mut().zip(f) {
            *all &= f;
        }
    }
    for (d, f) in diverged.iter_mut().zip(finite) {
        *d |= !f;
    }
    let mut target_epoch = sheet.target_epoch;
    if let Some(target) = plan.target_loss {
        for i in 0..L {
            if !diverged[i] && target_epoch[i].is_none() && final_loss.0[i] <= target {
                target_epoch[i] = Some((epochs.first + epochs_completed) as u32);
            }
        }
    }
    (epochs.done)(epochs.count - reported);
    GroupOutcome {
        final_loss,
        target_epoch,
        diverged,
        epochs_completed,
    }
}
