//! The blocked pass: [`BLOCK`] samples go through each layer together, so
//! that the three layer products of a step (forward, the deltas back,
//! the weight gradient) run as register tiles. One tile holds a few
//! neurons x a few samples (or a few weights) of one strip of `W` lanes
//! in registers while the sum runs, so each value loaded from memory
//! feeds several fused multiply-adds; the sample-by-sample pass
//! (`Work::forward`, `Work::backward`) loads two values, and the
//! gradient also stores one, for every multiply-add, which bound the
//! wide workload by the loads, not the arithmetic.
//!
//! The same operations in the same order as the sample-by-sample pass,
//! so the same bits (the tests below compare every lane): each net input
//! starts at its bias and adds its terms in order of the inputs, each
//! delta's sum adds the layer above in order of its neurons, and each
//! gradient value adds the samples in order (a tile holds its gradient
//! values while a block's samples go by, then stores them).
//!
//! Values of a block are laid out neuron after neuron, each neuron's
//! `BLOCK` samples side by side: neuron `n` of sample `s` at
//! `n * BLOCK + s`, so one layer's values are one contiguous range.

use super::{LayerPlan, Plan, Samples, Work, loss_delta, loss_value, normalize_rows, slope};
use crate::vocab::with_activation;

use super::super::lanes::{self, Lanes};

/// Samples a blocked pass carries through each layer together (its
/// scratch space is counted in [`lanes::scratch_values`]).
pub const BLOCK: usize = lanes::BLOCK_SAMPLES;

/// Neurons (or inputs) of one tile at 16 lanes a strip (one AVX-512
/// register a value: 4 x 4 accumulators, 8 operands); 2 at narrower
/// strips, whose instruction sets have 16 registers.
const WIDE_TILE: usize = 4;
const NARROW_TILE: usize = 2;

/// A block's values: every layer's outputs (from the inputs on), and the
/// weight layers' net inputs and deltas, `BLOCK` samples each.
pub(super) struct Blocks<const L: usize> {
    out: Vec<Lanes<L>>,
    net: Vec<Lanes<L>>,
    delta: Vec<Lanes<L>>,
    /// One sample's net inputs and outputs of a row-form layer.
    row: Vec<Lanes<L>>,
    row_out: Vec<Lanes<L>>,
}

impl<const L: usize> Blocks<L> {
    pub(super) fn new(plan: &Plan) -> Self {
        let widest = plan.layers.iter().map(|l| l.fan_out).max().unwrap_or(0);
        Self {
            out: vec![Lanes::ZERO; plan.activations * BLOCK],
            net: vec![Lanes::ZERO; plan.deltas * BLOCK],
            delta: vec![Lanes::ZERO; plan.deltas * BLOCK],
            row: vec![Lanes::ZERO; widest],
            row_out: vec![Lanes::ZERO; widest],
        }
    }
}

/// Strip `c` (lanes `c * W..(c + 1) * W`) of `v`.
#[inline(always)]
fn load<const L: usize, const W: usize>(v: &Lanes<L>, c: usize) -> [f32; W] {
    v.0.as_chunks::<W>().0[c]
}

#[inline(always)]
fn store<const L: usize, const W: usize>(v: &mut Lanes<L>, c: usize, x: [f32; W]) {
    v.0.as_chunks_mut::<W>().0[c] = x;
}

/// `a * b + c`, lane by lane, rounded once.
#[inline(always)]
fn fma<const W: usize>(a: [f32; W], b: [f32; W], mut c: [f32; W]) -> [f32; W] {
    // A loop, not `from_fn`: its closure would be compiled on its own,
    // without the entry point's fused multiply-add.
    for i in 0..W {
        c[i] = a[i].mul_add(b[i], c[i]);
    }
    c
}

/// The tiles over `0..count`: `(at, true)` in steps of `T` while whole
/// tiles of `T` fit, then `(at, false)` for each one left. A loop, not a
/// closure per tile: a closure is compiled on its own, without the
/// instruction set of the entry point that calls it.
struct Tiles<const T: usize> {
    at: usize,
    count: usize,
}

impl<const T: usize> Tiles<T> {
    #[inline(always)]
    fn over(count: usize) -> Self {
        Self { at: 0, count }
    }
}

impl<const T: usize> Iterator for Tiles<T> {
    type Item = (usize, bool);

    #[inline(always)]
    fn next(&mut self) -> Option<(usize, bool)> {
        let at = self.at;
        if at + T <= self.count {
            self.at += T;
            Some((at, true))
        } else if at < self.count {
            self.at += 1;
            Some((at, false))
        } else {
            None
        }
    }
}

/// Net inputs of neurons `j..j + TJ` for samples `s..s + TS`: each starts
/// at its bias (or zero) and adds `w[k] a[k]` in order of the inputs.
#[inline(always)]
fn forward_tile<const L: usize, const W: usize, const TJ: usize, const TS: usize>(
    params: &[Lanes<L>],
    layer: &LayerPlan,
    out: &[Lanes<L>],
    net: &mut [Lanes<L>],
    j: usize,
    s: usize,
) {
    assert!(s + TS <= BLOCK && j + TJ <= layer.fan_out);
    let fan_in = layer.fan_in;
    let weights = &params[layer.weights + j * fan_in..][..TJ * fan_in];
    let inputs = out[layer.input_at * BLOCK..][..fan_in * BLOCK]
        .as_chunks::<BLOCK>()
        .0;
    let nets = net[(layer.delta_at + j) * BLOCK..][..TJ * BLOCK]
        .as_chunks_mut::<BLOCK>()
        .0;
    // Loops, not `from_fn`, here and below: its closures are compiled on
    // their own, and measured to copy the tiles through memory.
    for c in 0..L / W {
        let mut acc = [[[0.0; W]; TS]; TJ];
        for t in 0..TJ {
            if let Some(b) = layer.bias.index(j + t) {
                acc[t] = [load(&params[b], c); TS];
            }
        }
        for k in 0..fan_in {
            let mut x = [[0.0; W]; TS];
            for u in 0..TS {
                x[u] = load(&inputs[k][s + u], c);
            }
            for t in 0..TJ {
                let w = load(&weights[t * fan_in + k], c);
                for u in 0..TS {
                    acc[t][u] = fma(w, x[u], acc[t][u]);
                }
            }
        }
        for t in 0..TJ {
            for u in 0..TS {
                store(&mut nets[t][s + u], c, acc[t][u]);
            }
        }
    }
}

/// The sums `sum_j W[j][k] delta_j` of inputs `k..k + TK` for samples
/// `s..s + TS`, in order of the neurons `j`, into `back`.
#[inline(always)]
fn back_tile<const L: usize, const W: usize, const TK: usize, const TS: usize>(
    params: &[Lanes<L>],
    layer: &LayerPlan,
    delta: &[Lanes<L>],
    back: &mut [[Lanes<L>; BLOCK]],
    k: usize,
    s: usize,
) {
    assert!(s + TS <= BLOCK && k + TK <= layer.fan_in);
    let fan_in = layer.fan_in;
    let deltas = delta.as_chunks::<BLOCK>().0;
    let weights = &params[layer.weights..][..layer.fan_out * fan_in];
    for c in 0..L / W {
        let mut acc = [[[0.0; W]; TS]; TK];
        for (j, d) in deltas.iter().enumerate().take(layer.fan_out) {
            let mut x = [[0.0; W]; TS];
            for u in 0..TS {
                x[u] = load(&d[s + u], c);
            }
            let row = &weights[j * fan_in + k..][..TK];
            for v in 0..TK {
                let w = load(&row[v], c);
                for u in 0..TS {
                    acc[v][u] = fma(w, x[u], acc[v][u]);
                }
            }
        }
        for v in 0..TK {
            for u in 0..TS {
                store(&mut back[k + v][s + u], c, acc[v][u]);
            }
        }
    }
}

/// Adds the block's `samples` terms `delta_j a_k` to the gradient of
/// weights `j..j + TJ` x `k..k + TK`, sample after sample.
#[inline(always)]
fn gradient_tile<const L: usize, const W: usize, const TJ: usize, const TK: usize>(
    grad: &mut [Lanes<L>],
    layer: &LayerPlan,
    out: &[[Lanes<L>; BLOCK]],
    delta: &[[Lanes<L>; BLOCK]],
    samples: usize,
    j: usize,
    k: usize,
) {
    assert!(samples <= BLOCK && j + TJ <= layer.fan_out && k + TK <= layer.fan_in);
    let fan_in = layer.fan_in;
    let (d, a) = (&delta[j..][..TJ], &out[k..][..TK]);
    let weights = &mut grad[layer.weights..][..layer.fan_out * fan_in];
    for c in 0..L / W {
        let mut acc = [[[0.0; W]; TK]; TJ];
        for t in 0..TJ {
            for v in 0..TK {
                acc[t][v] = load(&weights[(j + t) * fan_in + k + v], c);
            }
        }
        for s in 0..samples {
            let mut x = [[0.0; W]; TK];
            for v in 0..TK {
                x[v] = load(&a[v][s], c);
            }
            for t in 0..TJ {
                let d = load(&d[t][s], c);
                for v in 0..TK {
                    acc[t][v] = fma(d, x[v], acc[t][v]);
                }
            }
        }
        for t in 0..TJ {
            for v in 0..TK {
                store(&mut weights[(j + t) * fan_in + k + v], c, acc[t][v]);
            }
        }
    }
}

impl<const L: usize> Work<L> {
    /// [`Work::loss_and_gradient`]'s step for `samples.len()` (at most
    /// [`BLOCK`]) samples: their forward passes, their loss added to
    /// `total` in order, and their gradient added to `grad`.
    #[inline(always)]
    pub(super) fn block_step<const W: usize>(
        &mut self,
        plan: &Plan,
        params: &[Lanes<L>],
        weights: Option<&[Lanes<L>]>,
        samples: &[usize],
        total: &mut Lanes<L>,
    ) {
        if W >= 16 {
            self.block_step_tiled::<W, WIDE_TILE>(plan, params, weights, samples, total)
        } else {
            self.block_step_tiled::<W, NARROW_TILE>(plan, params, weights, samples, total)
        }
    }

    /// [`Work::loss`] of a blocked plan: the forward passes of
    /// `samples`, [`BLOCK`] at a time, then each sample's loss (weighted
    /// by `weights` where given) added to the sum in order, as the
    /// sample-by-sample pass adds them; the sum before the reduction.
    #[inline(always)]
    pub(super) fn block_loss<const W: usize>(
        &mut self,
        plan: &Plan,
        params: &[Lanes<L>],
        samples: &Samples,
        weights: Option<&[Lanes<L>]>,
    ) -> Lanes<L> {
        if W >= 16 {
            self.block_loss_tiled::<W, WIDE_TILE>(plan, params, samples, weights)
        } else {
            self.block_loss_tiled::<W, NARROW_TILE>(plan, params, samples, weights)
        }
    }

    #[inline(always)]
    fn block_loss_tiled<const W: usize, const T: usize>(
        &mut self,
        plan: &Plan,
        params: &[Lanes<L>],
        samples: &Samples,
        weights: Option<&[Lanes<L>]>,
    ) -> Lanes<L> {
        let output = plan.layers[plan.layers.len() - 1];
        let mut total = Lanes::ZERO;
        let mut rows = [0; BLOCK];
        for first in (0..samples.count).step_by(BLOCK) {
            let n = BLOCK.min(samples.count - first);
            for (u, row) in rows[..n].iter_mut().enumerate() {
                *row = first + u;
            }
            self.block_forward::<W, T>(plan, params, samples, &rows[..n]);
            let b = self.blocks.as_ref().expect("a blocked plan has blocks");
            for (u, &s) in rows[..n].iter().enumerate() {
                let (_, target) = samples.row(s);
                let mut l = Lanes::ZERO;
                for (j, &y) in target.iter().enumerate() {
                    let z = b.net[(output.delta_at + j) * BLOCK + u];
                    let yhat = b.out[(output.output_at + j) * BLOCK + u];
                    l = l + loss_value(plan.loss, z, yhat, y);
                }
                total = total + weights.map_or(l, |w| w[s] * l);
            }
        }
        total
    }

    /// The forward passes of `rows` (at most [`BLOCK`]) of `samples`:
    /// every layer's net inputs and outputs in the blocks.
    #[inline(always)]
    fn block_forward<const W: usize, const T: usize>(
        &mut self,
        plan: &Plan,
        params: &[Lanes<L>],
        samples: &Samples,
        rows: &[usize],
    ) {
        let n = rows.len();
        let b = self.blocks.as_mut().expect("a blocked plan has blocks");
        for (u, &s) in rows.iter().enumerate() {
            let (input, _) = samples.row(s);
            for (k, &x) in input.iter().enumerate() {
                b.out[k * BLOCK + u] = Lanes::splat(x);
            }
        }
        // Forward: the products as tiles, then each output from its net
        // input (or a row form's shift, sample by sample).
        for layer in &plan.layers {
            let (net, out) = (&mut b.net, &b.out);
            for (j, whole_j) in Tiles::<T>::over(layer.fan_out) {
                for (s, whole_s) in Tiles::<T>::over(n) {
                    match (whole_j, whole_s) {
                        (true, true) => forward_tile::<L, W, T, T>(params, layer, out, net, j, s),
                        (true, false) => forward_tile::<L, W, T, 1>(params, layer, out, net, j, s),
                        (false, true) => forward_tile::<L, W, 1, T>(params, layer, out, net, j, s),
                        (false, false) => forward_tile::<L, W, 1, 1>(params, layer, out, net, j, s),
                    }
                }
            }
            let nets = &mut b.net[layer.delta_at * BLOCK..][..layer.fan_out * BLOCK];
            let outs = &mut b.out[layer.output_at * BLOCK..][..layer.fan_out * BLOCK];
            with_activation!(layer.activation, DEF => {
                if DEF.normalizes_rows {
                    let (row, row_out) = (&mut b.row[..layer.fan_out], &mut b.row_out[..layer.fan_out]);
                    for u in 0..n {
                        for j in 0..layer.fan_out {
                            row[j] = nets[j * BLOCK + u];
                        }
                        normalize_rows(row, row_out, |l| (DEF.lane)(l));
                        for j in 0..layer.fan_out {
                            nets[j * BLOCK + u] = row[j];
                            outs[j * BLOCK + u] = row_out[j];
                        }
                    }
                } else {
                    // The block's samples only (a last block may hold fewer).
                    for (o, z) in outs.chunks_mut(BLOCK).zip(nets.chunks(BLOCK)) {
                        for (o, z) in o[..n].iter_mut().zip(&z[..n]) {
                            *o = z.map(|z| (DEF.lane)(z));
                        }
                    }
                }
            });
        }
    }

    #[inline(always)]
    fn block_step_tiled<const W: usize, const T: usize>(
        &mut self,
        plan: &Plan,
        params: &[Lanes<L>],
        weights: Option<&[Lanes<L>]>,
        samples: &[usize],
        total: &mut Lanes<L>,
    ) {
        let n = samples.len();
        self.block_forward::<W, T>(plan, params, &plan.data, samples);
        let b = self.blocks.as_mut().expect("a blocked plan has blocks");
        // The loss and the output deltas, sample by sample.
        let output = plan.layers[plan.layers.len() - 1];
        for (u, &s) in samples.iter().enumerate() {
            let (_, target) = plan.data.row(s);
            let weight = weights.map(|w| w[s]);
            let mut l = Lanes::ZERO;
            for (j, &y) in target.iter().enumerate() {
                let at = (output.delta_at + j) * BLOCK + u;
                let (z, yhat) = (b.net[at], b.out[(output.output_at + j) * BLOCK + u]);
                l = l + loss_value(plan.loss, z, yhat, y);
                let slope = slope(output.activation, &b.net, at, yhat);
                let d = loss_delta(plan.loss, yhat, y, slope);
                b.delta[at] = weight.map_or(d, |w| w * d);
            }
            *total = *total + weight.map_or(l, |w| w * l);
        }
        // The deltas back: each layer's sums as tiles into the layer
        // below's deltas, then times the slope there.
        for l in (1..plan.layers.len()).rev() {
            let (layer, below) = (plan.layers[l], plan.layers[l - 1]);
            let (lower, upper) = b.delta.split_at_mut(layer.delta_at * BLOCK);
            let above = &upper[..layer.fan_out * BLOCK];
            let back = lower[below.delta_at * BLOCK..][..below.fan_out * BLOCK]
                .as_chunks_mut::<BLOCK>()
                .0;
            for (k, whole_k) in Tiles::<T>::over(layer.fan_in) {
                for (s, whole_s) in Tiles::<T>::over(n) {
                    match (whole_k, whole_s) {
                        (true, true) => back_tile::<L, W, T, T>(params, &layer, above, back, k, s),
                        (true, false) => back_tile::<L, W, T, 1>(params, &layer, above, back, k, s),
                        (false, true) => back_tile::<L, W, 1, T>(params, &layer, above, back, k, s),
                        (false, false) => {
                            back_tile::<L, W, 1, 1>(params, &layer, above, back, k, s)
                        }
                    }
                }
            }
            for k in 0..below.fan_out {
                for u in 0..n {
                    let at = (below.delta_at + k) * BLOCK + u;
                    let a = b.out[(layer.input_at + k) * BLOCK + u];
                    let slope = slope(below.activation, &b.net, at, a);
                    b.delta[at] = b.delta[at] * slope;
                }
            }
        }
        // The gradient: weights as tiles, sample after sample; biases
        // sample after sample, neuron after neuron.
        for layer in &plan.layers {
            let outs = b.out[layer.input_at * BLOCK..][..layer.fan_in * BLOCK]
                .as_chunks::<BLOCK>()
                .0;
            let deltas = b.delta[layer.delta_at * BLOCK..][..layer.fan_out * BLOCK]
                .as_chunks::<BLOCK>()
                .0;
            let grad = &mut self.grad;
            for (j, whole_j) in Tiles::<T>::over(layer.fan_out) {
                for (k, whole_k) in Tiles::<T>::over(layer.fan_in) {
                    match (whole_j, whole_k) {
                        (true, true) => {
                            gradient_tile::<L, W, T, T>(grad, layer, outs, deltas, n, j, k)
                        }
                        (true, false) => {
                            gradient_tile::<L, W, T, 1>(grad, layer, outs, deltas, n, j, k)
                        }
                        (false, true) => {
                            gradient_tile::<L, W, 1, T>(grad, layer, outs, deltas, n, j, k)
                        }
                        (false, false) => {
                            gradient_tile::<L, W, 1, 1>(grad, layer, outs, deltas, n, j, k)
                        }
                    }
                }
            }
            for u in 0..n {
                for j in 0..layer.fan_out {
                    if let Some(at) = layer.bias.index(j) {
                        self.grad[at] = self.grad[at] + deltas[j][u];
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Plan;
    use super::super::same_bits::{Case, same_bits};
    use crate::batches::Batching;
    use crate::data::synthetic;
    use crate::model::{BiasMode, ModelSpec, Reduction};
    use crate::vocab::{Activation, Loss, Optimizer, OptimizerConfig};

    /// The blocked pass gives every lane the bits of the sample-by-sample
    /// pass, on every instruction set here, at group widths whose strips
    /// are one and several registers.
    fn same_bits_at_two_widths(case: &Case) {
        let passes = ["sample by sample", "blocked"];
        let choose: [fn(&mut Plan); 2] = [|plan| plan.blocked = false, |plan| plan.blocked = true];
        same_bits::<16>(case, passes, choose);
        same_bits::<64>(case, passes, choose);
    }

    #[test]
    fn wide_layers_full_batch() {
        // 11 samples: blocks of 4, 4 and 3; 12 and 5 neurons: whole tiles
        // and one left.
        let wide = ModelSpec::layers(&[8, 12, 5], BiasMode::PerNeuron);
        let data = synthetic(8, 5, 11, 1);
        same_bits_at_two_widths(&Case::new("8-12-5 sigmoid", wide, data));
    }

    #[test]
    fn row_form_minibatches_and_adam() {
        // Minibatches of 5 of 13 shuffled samples: blocks of 4 and 1, and
        // a last batch of 3; a softmax output with a shared bias.
        let softmax = ModelSpec {
            activation: Activation::Tanh,
            output_activation: Activation::Softmax,
            loss: Loss::CategoricalCrossEntropy,
            reduction: Reduction::Mean,
            optimizer: OptimizerConfig::of(Optimizer::Adam),
            batching: Some(Batching {
                size: 5,
                shuffle: true,
                seed: 3,
            }),
            ..ModelSpec::layers(&[6, 7, 9, 4], BiasMode::Shared)
        };
        let data = synthetic(6, 4, 13, 2);
        same_bits_at_two_widths(&Case::new("6-7-9-4 softmax", softmax, data));
    }

    #[test]
    fn derivatives_of_the_net_input_and_weighted_samples() {
        // GELU and SiLU read the net input back; no biases; RMSprop; each
        // sample weighted as a resample weights it.
        let gelu = ModelSpec {
            activation: Activation::Gelu,
            output_activation: Activation::Silu,
            optimizer: OptimizerConfig::of(Optimizer::Rmsprop),
            ..ModelSpec::layers(&[5, 9, 3], BiasMode::None)
        };
        let data = synthetic(5, 3, 10, 3);
        let case = Case {
            weighted: true,
            ..Case::new("5-9-3 gelu", gelu, data)
        };
        same_bits_at_two_widths(&case);
    }

    #[test]
    fn losses_of_a_history_a_held_out_set_and_a_target() {
        // The forward-only loss (the curve's training and held-out points,
        // the minibatch target's full-data loss, the final loss) blocked
        // too: 9 held-out samples (blocks of 4, 4 and 1), minibatches of 6
        // of 11, a target some lanes reach within the run.
        let spec = ModelSpec {
            activation: Activation::Tanh,
            batching: Some(Batching {
                size: 6,
                shuffle: true,
                seed: 5,
            }),
            ..ModelSpec::layers(&[8, 12, 5], BiasMode::PerNeuron)
        };
        let case = Case {
            history: true,
            eval: Some(synthetic(8, 5, 9, 4)),
            target: Some(0.5),
            rate: |i| 0.05 + 0.01 * i as f32,
            ..Case::new("8-12-5 held out", spec, synthetic(8, 5, 11, 1))
        };
        same_bits_at_two_widths(&case);
        // The case does what it says: some lanes reach the target, and
        // the curves hold points.
        let run = super::super::same_bits::train::<16>(&case, crate::simd::Isa::detect(), |_| {});
        let reached = run
            .outcome
            .target_epoch
            .iter()
            .filter(|t| t.is_some())
            .count();
        assert!(
            reached > 0 && reached < 16,
            "{reached} of 16 lanes reached the target; final losses {:?}",
            run.outcome.final_loss.0
        );
        assert!(
            run.curves.iter().all(|c| c.recorded == 5),
            "5 points a curve"
        );
    }
}
