//! Generates the topology-specific statements of the fused kernel
//! (`shaders/fused_train.wgsl`): every parameter, gradient, activation and
//! delta becomes its own scalar, so the epoch loop runs from registers with
//! no indexing. Names: `p{i}` parameter i of the flat layout, `g{i}` its
//! gradient, `a{l}_{j}` output j of layer l (layer 0 is the input), `h{l}_{j}`
//! the net input of hidden neuron j of layer l, `z{j}` net input of output j, `d{l}_{j}` delta (dE/dnet) of neuron j of layer
//! l, `y{j}` target j. The math is called by its generic vocabulary names
//! (`hidden_activation`, `loss_delta`, ...), bound for the run from the
//! table in src/vocab.rs; no formula is written here.

use std::fmt::Write;

use crate::batches;
use crate::data::Dataset;
use crate::gpu::status;
use crate::model::{ModelSpec, ParamLayout, Reduction};
use crate::recording::Recording;
use crate::vocab::MAX_STATE_SLOTS;

/// Invocations per workgroup of the fused kernel.
pub const WORKGROUP_SIZE: u32 = 64;

/// Largest parameter count the fused kernel accepts: beyond it the
/// generated code no longer fits in registers and takes long to compile.
pub const FUSED_MAX_PARAMETERS: usize = 1024;

/// Loop iterations a submission keeps in reserve below the adapter's cap:
/// the segment loop's own (see `shaders/fused_train.wgsl`) and the error
/// in these counts. llvmpipe's cap was measured between 65,280 and 66,096
/// iterations; with history at every epoch on 100 buffered samples (205
/// counted per epoch), 319 epochs a submission (65,395) lost epochs and
/// 313 (with this reserve) did not (`tests/history.rs`).
pub const LOOP_OVERHEAD: u64 = 1024;

/// Data sets of at most this many values (samples x (inputs + targets))
/// are baked into the kernel as literals, with the sample loop unrolled:
/// no loads in the epoch loop at all. Larger ones are read from a buffer.
pub const INLINE_DATA_MAX_VALUES: usize = 64;

/// [`FusedShape::loop_iterations_per_epoch`] with the data read from the
/// buffer (the most an epoch of `spec` on `samples` samples loops).
pub fn buffered_loop_iterations_per_epoch(spec: &ModelSpec, samples: usize) -> u64 {
    let n = samples as u64;
    if spec.batching.is_some() {
        let b = spec.batches(samples) as u64;
        1 + (n + 1) + (b + 1) + (n + b) + 4 * n
    } else {
        n + 2
    }
}

/// Markers of the full-batch branch of the training loop; their
/// minibatch twins are prefixed `batch_`.
const FULL_BATCH_ONLY: [&str; 3] = ["zero_gradients", "forward_backward_all_samples", "update"];

/// Per-run constants baked into the kernel.
pub struct FusedShape<'a> {
    pub spec: &'a ModelSpec,
    pub data: &'a Dataset,
    /// The learning curves to record, if any; with held-out data, its
    /// samples follow the training data's in the samples buffer.
    pub recording: Option<&'a Recording<'a>>,
}

impl FusedShape<'_> {
    fn layout(&self) -> ParamLayout {
        self.spec.layout()
    }

    fn state_slots(&self) -> usize {
        self.spec.optimizer.state_slots()
    }

    fn trainable(&self) -> Vec<usize> {
        let frozen = self.spec.frozen_mask();
        (0..frozen.len()).filter(|&i| !frozen[i]).collect()
    }

    /// `const` declarations the kernel template relies on.
    pub fn constants(&self) -> String {
        let samples = self.data.samples();
        let t = self.spec.topology.inputs() + self.spec.topology.outputs();
        let eval_samples = self.eval_data().map_or(0, |e| e.samples());
        format!(
            "const WORKGROUP_SIZE: u32 = {WORKGROUP_SIZE}u;\n\
             const SAMPLES: u32 = {samples}u;\n\
             const SAMPLE_STRIDE: u32 = {t}u;\n\
             const REDUCTION: f32 = {:?};\n\
             const MEAN: bool = {};\n\
             const EVAL_SAMPLES: u32 = {eval_samples}u;\n\
             const EVAL_BASE: u32 = {}u;\n\
             const EVAL_REDUCTION: f32 = {:?};\n\
             const RESAMPLED: bool = {};\n\
             const ROW_SCALE: f32 = {:?};\n{}{}",
            self.spec.reduction.factor(samples) as f32,
            self.spec.reduction == Reduction::Mean,
            samples * t,
            self.spec.reduction.factor(eval_samples.max(1)) as f32,
            self.spec.resample.is_some(),
            self.spec.resample.map_or(1.0, |r| r.scale(samples)) as f32,
            batches::wgsl_constants(samples, self.spec.batching.as_ref()),
            status::history_constants(self.recording.map(|r| &r.plan)),
        )
    }

    /// The held-out data whose loss the history records, if it does.
    pub fn eval_data(&self) -> Option<&Dataset> {
        self.recording.filter(|r| r.plan.eval).and_then(|r| r.eval)
    }

    /// Whether the run uses minibatches (or a shuffled order): the kernel's
    /// batched branch, over the data buffer.
    pub fn batched(&self) -> bool {
        self.spec.batching.is_some()
    }

    /// The statements for the marker `//@name`, or `None` for an unknown name.
    pub fn fragment(&self, name: &str) -> Option<String> {
        let layout = self.layout();
        let mut out = String::new();
        // The training loop's statements exist for each mode (`batch_`
        // markers for minibatches); the other mode's branch is left empty.
        let (name, batch_marker) = match name.strip_prefix("batch_") {
            Some(rest) => (rest, true),
            None => (name, false),
        };
        let per_mode = FULL_BATCH_ONLY.contains(&name) || batch_marker;
        if per_mode && batch_marker != self.batched() {
            return self.is_fragment(name).then(String::new);
        }
        match name {
            "load_parameters" => {
                for i in 0..layout.len {
                    let _ = writeln!(out, "    var p{i} = params[{i}u * cfg.stride + n];");
                }
            }
            "load_state" => {
                for i in self.trainable() {
                    let slots: Vec<String> = (0..MAX_STATE_SLOTS)
                        .map(|k| match k < self.state_slots() {
                            true => format!("opt_state[{}u * cfg.stride + n]", k * layout.len + i),
                            false => "0.0".to_string(),
                        })
                        .collect();
                    let _ = writeln!(out, "    var s{i} = vec3<f32>({});", slots.join(", "));
                }
            }
            "store_parameters" => {
                for i in self.trainable() {
                    let _ = writeln!(out, "    params[{i}u * cfg.stride + n] = p{i};");
                    for (k, c) in ["x", "y", "z"].iter().enumerate().take(self.state_slots()) {
                        let at = k * layout.len + i;
                        let _ = writeln!(out, "    opt_state[{at}u * cfg.stride + n] = s{i}.{c};");
                    }
                }
            }
            "check_parameters" => {
                for i in 0..layout.len {
                    let _ = writeln!(out, "    finite = finite && is_finite(p{i});");
                }
            }
            "zero_gradients" => {
                for i in self.trainable() {
                    let _ = writeln!(out, "        var g{i} = 0.0;");
                }
            }
            "update" => {
                for i in self.trainable() {
                    let _ = writeln!(
                        out,
                        "        p{i} = optimizer_step(p{i}, g{i} * grad_scale, &s{i}, k);"
                    );
                }
            }
            "forward_loss_all_samples" => self.emit_all_samples(&layout, false, &mut out),
            "eval_loss_all_samples" => {
                // Nothing without held-out data: EVAL_HISTORY is false.
                if self.eval_data().is_some() {
                    out.push_str("            for (var s = 0u; s < EVAL_SAMPLES; s++) {\n");
                    out.push_str("                let base = EVAL_BASE + s * SAMPLE_STRIDE;\n");
                    self.emit_forward_and_loss(&layout, None, false, &mut out);
                    out.push_str("            }\n");
                }
            }
            "forward_backward_all_samples" => self.emit_all_samples(&layout, true, &mut out),
            "forward_loss_one_sample" => self.emit_forward_and_loss(&layout, None, true, &mut out),
            "forward_backward_one_sample" => {
                self.emit_forward_and_loss(&layout, None, true, &mut out);
                self.emit_backward(&layout, &mut out);
            }
            _ => return None,
        }
        Some(out)
    }

    /// Whether `name` (without the `batch_` prefix) is a marker this
    /// generator fills.
    fn is_fragment(&self, name: &str) -> bool {
        [
            "load_parameters",
            "load_state",
            "store_parameters",
            "check_parameters",
            "zero_gradients",
            "update",
            "forward_loss_all_samples",
            "eval_loss_all_samples",
            "forward_backward_all_samples",
            "forward_loss_one_sample",
            "forward_backward_one_sample",
        ]
        .contains(&name)
    }

    /// Whether the data set is small enough to bake in as literals.
    /// Loop iterations the training kernel runs per epoch, as llvmpipe
    /// counts them ([`crate::gpu::AdapterQuirks`]): the epoch loop's, plus,
    /// with buffered data, the sample loop's `samples + 1` (its exit test
    /// included).
    ///
    /// With minibatches: the epoch loop's one, the target's loss pass
    /// (`samples + 1`), the batch loop (`batches + 1`), the sample loops
    /// (`samples + batches`) and the shuffle's cycle walks (at most
    /// `4 samples`, src/batches.rs).
    ///
    /// A history adds, per segment (at most one an epoch, with `--history
    /// 1`), the segment loop's iteration and its inner loop's exit test,
    /// the recorded loss's pass over buffered data (`samples + 1`), and
    /// the held-out pass (`eval samples + 1`).
    pub fn loop_iterations_per_epoch(&self) -> u64 {
        let buffered = !self.inline_data();
        let history = match self.recording {
            Some(_) => {
                2 + if buffered {
                    self.data.samples() as u64 + 1
                } else {
                    0
                }
            }
            None => 0,
        };
        let eval = self.eval_data().map_or(0, |e| e.samples() as u64 + 1);
        history
            + eval
            + if buffered {
                buffered_loop_iterations_per_epoch(self.spec, self.data.samples())
            } else {
                1
            }
    }

    /// Whether the data is baked into the kernel as literals: small data
    /// sets in full-batch runs (minibatches read the buffer in their
    /// epoch's order).
    pub fn inline_data(&self) -> bool {
        !self.batched() && self.data.x.len() + self.data.y.len() <= INLINE_DATA_MAX_VALUES
    }

    /// One block per sample with the data as literals, or a loop over the
    /// samples buffer.
    fn emit_all_samples(&self, layout: &ParamLayout, backward: bool, out: &mut String) {
        let body = |out: &mut String, sample: Option<usize>| {
            self.emit_forward_and_loss(layout, sample, true, out);
            if backward {
                self.emit_backward(layout, out);
            }
        };
        if self.inline_data() {
            for s in 0..self.data.samples() {
                out.push_str("        {\n");
                body(out, Some(s));
                out.push_str("        }\n");
            }
        } else {
            out.push_str("        for (var s = 0u; s < SAMPLES; s++) {\n");
            out.push_str("            let row = s;\n");
            out.push_str("            let base = row * SAMPLE_STRIDE;\n");
            body(out, None);
            out.push_str("        }\n");
        }
    }

    /// Input `k` (or target `k` when `target`) of `sample`, as a literal, or
    /// as a load when the data is not baked in.
    fn value(&self, sample: Option<usize>, k: usize, target: bool) -> String {
        let inputs = self.spec.topology.inputs();
        match sample {
            Some(s) if target => format!("{:?}f", self.data.target(s)[k] as f32),
            Some(s) => format!("{:?}f", self.data.input(s)[k] as f32),
            None => format!("samples[base + {}u]", if target { inputs + k } else { k }),
        }
    }

    /// The forward pass and the sample's loss; with a resample and
    /// `training` (the training data's rows), its weight `w` too, which
    /// multiplies the loss and (in [`Self::emit_backward`]) the delta.
    fn emit_forward_and_loss(
        &self,
        layout: &ParamLayout,
        sample: Option<usize>,
        training: bool,
        out: &mut String,
    ) {
        const IND: &str = "            ";
        let rows = self.spec.output_activation.def().normalizes_rows;
        emit_forward(layout, rows, |k| self.value(sample, k, false), IND, out);
        let weighted = training && self.spec.resample.is_some();
        if weighted {
            let row = match sample {
                Some(s) => format!("{s}u"),
                None => "row".to_string(),
            };
            let _ = writeln!(out, "{IND}let w = row_weight(n, {row});");
        }
        // Loss summed over outputs; REDUCTION applies the mean.
        let last = layout.layers.len();
        for j in 0..self.spec.topology.outputs() {
            let _ = writeln!(out, "{IND}let y{j} = {};", self.value(sample, j, true));
            let value = format!("loss_value(z{j}, a{last}_{j}, y{j})");
            match weighted {
                true => writeln!(out, "{IND}loss += w * {value};"),
                false => writeln!(out, "{IND}loss += {value};"),
            }
            .expect("writing to a String");
        }
    }

    fn emit_backward(&self, layout: &ParamLayout, out: &mut String) {
        const IND: &str = "            ";
        let last = layout.layers.len();
        // Output delta dL/dnet from the loss, given the output's slope;
        // with a resample, times the row's weight `w`.
        let weight = match self.spec.resample {
            Some(_) => "w * ",
            None => "",
        };
        for j in 0..self.spec.topology.outputs() {
            let _ = writeln!(
                out,
                "{IND}let d{last}_{j} = {weight}loss_delta(a{last}_{j}, y{j}, output_derivative(z{j}, a{last}_{j}));"
            );
        }
        // Hidden delta = (W^T d) * f'(net), f' from the output, with the old
        // weights.
        for l in (1..last).rev() {
            let above = &layout.layers[l];
            for k in 0..above.fan_in {
                let back: Vec<String> = (0..above.fan_out)
                    .map(|j| format!("p{} * d{}_{j}", above.weight_index(j, k), l + 1))
                    .collect();
                let _ = writeln!(
                    out,
                    "{IND}let d{l}_{k} = ({}) * hidden_derivative(h{l}_{k}, a{l}_{k});",
                    back.join(" + ")
                );
            }
        }
        // dE/dW[j][k] = delta_j * out_prev_k; dE/db = delta, summed if shared.
        let frozen = self.spec.freeze_bias;
        for (l, layer) in layout.layers.iter().enumerate() {
            for j in 0..layer.fan_out {
                for k in 0..layer.fan_in {
                    let _ = writeln!(
                        out,
                        "{IND}g{} += d{}_{j} * a{l}_{k};",
                        layer.weight_index(j, k),
                        l + 1
                    );
                }
            }
            if frozen || layer.bias_count == 0 {
                continue;
            }
            if layer.bias_count == 1 {
                let sum: Vec<String> = (0..layer.fan_out)
                    .map(|j| format!("d{}_{j}", l + 1))
                    .collect();
                let _ = writeln!(out, "{IND}g{} += {};", layer.bias_offset, sum.join(" + "));
            } else {
                for j in 0..layer.fan_out {
                    let _ = writeln!(out, "{IND}g{} += d{}_{j};", layer.bias_offset + j, l + 1);
                }
            }
        }
    }
}

/// The forward pass as straight-line WGSL over the parameters `p{i}`:
/// inputs `a0_{k}` from `input(k)`, every layer's matrix-vector product
/// plus bias through the hidden activation (`a{l}_{j}`), the output layer's
/// kept as `z{j}` and then through the output activation (`a{L}_{j}`).
/// With `rows` (the output activation's row form, softmax) the logits
/// `r{j}` are shifted by their log-sum-exp first, formed with their
/// maximum subtracted, and `z{j}` is the shifted value (the
/// log-probability the loss reads). The fused trainer and the predict
/// kernel both take it from here.
pub fn emit_forward(
    layout: &ParamLayout,
    rows: bool,
    input: impl Fn(usize) -> String,
    indent: &str,
    out: &mut String,
) {
    let inputs = layout.layers.first().map_or(0, |l| l.fan_in);
    for k in 0..inputs {
        let _ = writeln!(out, "{indent}let a0_{k} = {};", input(k));
    }
    let last = layout.layers.len();
    for (l, layer) in layout.layers.iter().enumerate() {
        for j in 0..layer.fan_out {
            let mut net: Vec<String> = (0..layer.fan_in)
                .map(|k| format!("p{} * a{l}_{k}", layer.weight_index(j, k)))
                .collect();
            if let Some(b) = layer.bias_index(j) {
                net.push(format!("p{b}"));
            }
            let net = net.join(" + ");
            if l + 1 == last && rows {
                let _ = writeln!(out, "{indent}let r{j} = {net};");
            } else if l + 1 == last {
                let _ = writeln!(out, "{indent}let z{j} = {net};");
                let _ = writeln!(out, "{indent}let a{last}_{j} = output_activation(z{j});");
            } else {
                // The net input stays named for derivatives that read it
                // (the compiler drops it for the others).
                let _ = writeln!(out, "{indent}let h{}_{j} = {net};", l + 1);
                let _ = writeln!(
                    out,
                    "{indent}let a{n}_{j} = hidden_activation(h{n}_{j});",
                    n = l + 1
                );
            }
        }
    }
    if rows {
        let outputs = layout.layers.last().map_or(0, |l| l.fan_out);
        let logits: Vec<String> = (0..outputs).map(|j| format!("r{j}")).collect();
        let largest = logits[1..]
            .iter()
            .fold(logits[0].clone(), |m, r| format!("max({m}, {r})"));
        let _ = writeln!(out, "{indent}let row_max = {largest};");
        let terms: Vec<String> = logits
            .iter()
            .map(|r| format!("exp({r} - row_max)"))
            .collect();
        let _ = writeln!(
            out,
            "{indent}let row_lse = row_max + log({});",
            terms.join(" + ")
        );
        for j in 0..outputs {
            let _ = writeln!(out, "{indent}let z{j} = r{j} - row_lse;");
            let _ = writeln!(out, "{indent}let a{last}_{j} = output_activation(z{j});");
        }
    }
}
