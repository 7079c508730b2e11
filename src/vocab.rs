//! The model's vocabulary, each term defined once: every activation, loss
//! and optimizer is one entry of a table that gives, side by side, its
//! command-line name (the enum's clap value), its float64 formula for the
//! CPU reference, and the name of its float32 twin in
//! `shaders/vocabulary.wgsl`. The CPU reference calls the formulas here;
//! both GPU strategies call the WGSL functions the entries name (bound for a
//! run by `gpu::shaders::vocabulary_prelude`). `tests/vocabulary.rs` walks
//! every table and checks each WGSL function against its f64 twin on the
//! GPU, so an entry is tested the moment it is added.
//!
//! Adding an activation: a variant below, its entry in [`ACTIVATIONS`], its
//! two functions in `shaders/vocabulary.wgsl`, a line of the vocabulary
//! table in `docs/usage.md` (and its name in the README's list).
//! Adding an optimizer: a variant of [`Optimizer`], its entry in
//! [`OPTIMIZERS`] (the hyperparameters it uses with their defaults, its
//! state's names, its f64 and lane steps, its WGSL function's name) and
//! its name in `with_optimizer!`'s list, the WGSL function in
//! `shaders/vocabulary.wgsl`, a line of `docs/usage.md`'s vocabulary table. A new hyperparameter is a
//! [`Hyperparameter`] variant (the WGSL `StepScalars` and the step scalars
//! follow from it) and its flag in `cli::OptimizerArgs`.

use clap::ValueEnum;

use crate::lane_math as lanes;
use crate::setting::settings::{MOMENTUM, OPTIMIZER};

/// One activation's definition: its twins side by side.
pub struct ActivationDef {
    pub activation: Activation,
    /// `f(z)` in float64.
    pub f: fn(f64) -> f64,
    /// `f'(z)` from the net input `z` and the output `a = f(z)`: each
    /// entry reads whichever gives the exact derivative most cheaply (the
    /// sigmoid's `a (1 - a)`, GELU's `Phi(z) + z phi(z)`).
    pub derivative: fn(f64, f64) -> f64,
    /// The SIMD trainer's float32 twins of `f` and `derivative`, applied
    /// lane by lane (branch-free, inlined into the lane loops; see
    /// [`crate::simd::lanes`]).
    pub lane: fn(f32) -> f32,
    pub lane_derivative: fn(f32, f32) -> f32,
    /// WGSL function `fn(z: f32) -> f32` in shaders/vocabulary.wgsl.
    pub wgsl: &'static str,
    /// WGSL function `fn(z: f32, a: f32) -> f32`, the derivative.
    pub wgsl_derivative: &'static str,
    /// The derivative reads the net input `z`: trainers keep the net
    /// inputs of a layer with this activation for the backward pass
    /// (those whose derivative comes from the output alone need not).
    pub needs_net: bool,
    /// Closed range of values the output can reach: targets must lie in it
    /// when this is the output activation.
    pub range: (f64, f64),
    /// May be the output layer's activation.
    pub as_output: bool,
    /// May be a hidden layer's activation.
    pub as_hidden: bool,
    /// A row form (softmax): the output layer's net inputs are first
    /// shifted by their sample's log-sum-exp, `l_j = z_j - lse(z)` (the
    /// log-probabilities, formed from the logits with their maximum
    /// subtracted: [`log_sum_exp`]), and `f` then applies to each `l_j`.
    /// The float32 trainers hand the loss `l_j` in the net input's place.
    pub normalizes_rows: bool,
    /// The only loss this output activation is defined with, if any.
    pub requires_loss: Option<Loss>,
}

/// Defines [`Activation`], [`ACTIVATIONS`] and `with_activation!` from
/// one list of entries, so an entry is written once: its variant (the
/// clap value and its help), and its definition. `with_activation!(a,
/// DEF => expr)` evaluates `expr` with `DEF` a constant `&ActivationDef`
/// of `a`, one `match` arm per entry, so the lane forms the SIMD trainer
/// calls through `DEF` are constants it inlines into its lane loops.
macro_rules! activation_table {
    ($d:tt $( $(#[$meta:meta])* $variant:ident => $def:expr ),+ $(,)?) => {
        /// An activation function, applied element-wise after a layer's
        /// weighted sum `z` (its "net" input, in the seeds' words).
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, ValueEnum)]
        pub enum Activation { $( $(#[$meta])* $variant ),+ }

        /// Every activation, in the enum's order (a unit test checks it).
        pub const ACTIVATIONS: &[ActivationDef] = &[ $( $def ),+ ];

        macro_rules! with_activation {
            ($d act:expr, $d def:ident => $d body:expr) => {
                match $d act {
                    $( $crate::vocab::Activation::$variant => {
                        const $d def: &$crate::vocab::ActivationDef =
                            &$crate::vocab::ACTIVATIONS[$crate::vocab::Activation::$variant as usize];
                        $d body
                    } )+
                }
            };
        }
        pub(crate) use with_activation;
    };
}

/// PyTorch's Softplus threshold (beta 1): above it softplus is `z`.
pub const SOFTPLUS_THRESHOLD: f64 = 20.0;
/// `sqrt(2 / pi)`, GELU's tanh approximation's scale (PyTorch's kBeta).
const GELU_BETA: f64 = 0.797_884_560_802_865_4;
/// The cubic coefficient of GELU's tanh approximation (PyTorch's kKappa).
const GELU_KAPPA: f64 = 0.044_715;

fn sigmoid64(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

/// GELU's tanh approximation's inner argument `sqrt(2/pi) (z + 0.044715 z^3)`.
fn gelu_inner(z: f64) -> f64 {
    GELU_BETA * (z + GELU_KAPPA * z * z * z)
}

activation_table! { $
    /// `1 / (1 + e^-z)`, outputs in (0, 1): the seeds' activation.
    #[default]
    Sigmoid => ActivationDef {
        activation: Activation::Sigmoid,
        f: sigmoid64,
        derivative: |_, a| a * (1.0 - a),
        lane: lanes::sigmoid,
        lane_derivative: |_, a| a * (1.0 - a),
        wgsl: "act_sigmoid",
        wgsl_derivative: "act_sigmoid_derivative",
        needs_net: false,
        range: (0.0, 1.0),
        as_output: true,
        as_hidden: true,
        normalizes_rows: false,
        requires_loss: None,
    },
    /// `tanh z`, outputs in (-1, 1).
    Tanh => ActivationDef {
        activation: Activation::Tanh,
        f: f64::tanh,
        derivative: |_, a| 1.0 - a * a,
        lane: lanes::tanh,
        lane_derivative: |_, a| a.mul_add(-a, 1.0),
        wgsl: "act_tanh",
        wgsl_derivative: "act_tanh_derivative",
        needs_net: false,
        range: (-1.0, 1.0),
        as_output: true,
        as_hidden: true,
        normalizes_rows: false,
        requires_loss: None,
    },
    /// `max(z, 0)`; its derivative at 0 is taken as 0 (as PyTorch does).
    Relu => ActivationDef {
        activation: Activation::Relu,
        // `z <= 0` is false for NaN, so a NaN passes through (divergence
        // stays visible), as in the WGSL twin.
        f: |z| if z <= 0.0 { 0.0 } else { z },
        derivative: |_, a| if a > 0.0 { 1.0 } else { 0.0 },
        lane: lanes::relu,
        lane_derivative: |_, a| if a > 0.0 { 1.0 } else { 0.0 },
        wgsl: "act_relu",
        wgsl_derivative: "act_relu_derivative",
        needs_net: false,
        range: (0.0, f64::INFINITY),
        as_output: false,
        as_hidden: true,
        normalizes_rows: false,
        requires_loss: None,
    },
    /// `z`: the identity, for regression outputs.
    Linear => ActivationDef {
        activation: Activation::Linear,
        f: |z| z,
        derivative: |_, _| 1.0,
        lane: |z| z,
        lane_derivative: |_, _| 1.0,
        wgsl: "act_linear",
        wgsl_derivative: "act_linear_derivative",
        needs_net: false,
        range: (f64::NEG_INFINITY, f64::INFINITY),
        as_output: true,
        as_hidden: true,
        normalizes_rows: false,
        requires_loss: None,
    },
    /// `ln(1 + e^z)`, and `z` above 20: torch.nn.Softplus (beta 1,
    /// threshold 20); outputs in (0, inf), for positive targets too.
    Softplus => ActivationDef {
        activation: Activation::Softplus,
        // max(z, 0) + ln(1 + e^-|z|): ln(1 + e^z) without overflow.
        f: |z| match z > SOFTPLUS_THRESHOLD {
            true => z,
            false => z.max(0.0) + (-z.abs()).exp().ln_1p(),
        },
        // PyTorch's backward: 1 above the threshold, else the sigmoid.
        derivative: |z, _| if z > SOFTPLUS_THRESHOLD { 1.0 } else { sigmoid64(z) },
        lane: lanes::softplus,
        lane_derivative: |z, _| lanes::softplus_derivative(z),
        wgsl: "act_softplus",
        wgsl_derivative: "act_softplus_derivative",
        needs_net: true,
        range: (0.0, f64::INFINITY),
        as_output: true,
        as_hidden: true,
        normalizes_rows: false,
        requires_loss: None,
    },
    /// `z sigmoid(z)`: torch.nn.SiLU (swish); hidden layers only.
    Silu => ActivationDef {
        activation: Activation::Silu,
        f: |z| z * sigmoid64(z),
        // sigmoid(z) (1 + z (1 - sigmoid(z))) = s + a (1 - s).
        derivative: |z, a| {
            let s = sigmoid64(z);
            s + a * (1.0 - s)
        },
        lane: |z| z * lanes::sigmoid(z),
        lane_derivative: |z, a| {
            let s = lanes::sigmoid(z);
            a.mul_add(1.0 - s, s)
        },
        wgsl: "act_silu",
        wgsl_derivative: "act_silu_derivative",
        needs_net: true,
        range: (-0.278_464_542_761_073_8, f64::INFINITY),
        as_output: false,
        as_hidden: true,
        normalizes_rows: false,
        requires_loss: None,
    },
    /// `z Phi(z)` with the normal distribution's `Phi(z) = (1 + erf(z /
    /// sqrt 2)) / 2`: torch.nn.GELU() (approximate='none'); hidden
    /// layers only.
    Gelu => ActivationDef {
        activation: Activation::Gelu,
        f: |z| 0.5 * z * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2),
        // Phi(z) + z phi(z), phi(z) = e^(-z^2/2) / sqrt(2 pi).
        derivative: |z, _| {
            let phi = (-0.5 * z * z).exp() * (0.5 * std::f64::consts::FRAC_2_SQRT_PI)
                * std::f64::consts::FRAC_1_SQRT_2;
            0.5 * libm::erfc(-z * std::f64::consts::FRAC_1_SQRT_2) + z * phi
        },
        lane: lanes::gelu,
        lane_derivative: |z, _| lanes::gelu_derivative(z),
        wgsl: "act_gelu",
        wgsl_derivative: "act_gelu_derivative",
        needs_net: true,
        range: (-0.169_971_207_479_903_7, f64::INFINITY),
        as_output: false,
        as_hidden: true,
        normalizes_rows: false,
        requires_loss: None,
    },
    /// `z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))) / 2`:
    /// torch.nn.GELU(approximate='tanh'); hidden layers only.
    GeluTanh => ActivationDef {
        activation: Activation::GeluTanh,
        f: |z| 0.5 * z * (1.0 + gelu_inner(z).tanh()),
        // PyTorch's GeluBackward for 'tanh': 0.5 (1 + t) + 0.5 z (1 - t^2)
        // sqrt(2/pi) (1 + 3 kappa z^2), t = tanh(inner).
        derivative: |z, _| {
            let t = gelu_inner(z).tanh();
            0.5 * (1.0 + t)
                + 0.5 * z * (1.0 - t * t) * GELU_BETA * (1.0 + 3.0 * GELU_KAPPA * z * z)
        },
        lane: lanes::gelu_tanh,
        lane_derivative: |z, _| lanes::gelu_tanh_derivative(z),
        wgsl: "act_gelu_tanh",
        wgsl_derivative: "act_gelu_tanh_derivative",
        needs_net: true,
        range: (-0.170_040_750_571_254, f64::INFINITY),
        as_output: false,
        as_hidden: true,
        normalizes_rows: false,
        requires_loss: None,
    },
    /// `e^z_j / sum_k e^z_k` over a sample's outputs: torch.nn.Softmax
    /// (dim=-1); the output layer only, with categorical cross-entropy.
    /// Outputs in (0, 1), each sample's summing to 1.
    Softmax => ActivationDef {
        activation: Activation::Softmax,
        // The row form: f of the log-probability l_j = z_j - lse(z).
        f: f64::exp,
        // The Jacobian's diagonal p (1 - p); the categorical
        // cross-entropy's delta p - y holds the whole Jacobian and reads
        // no slope.
        derivative: |_, a| a * (1.0 - a),
        lane: lanes::exp,
        lane_derivative: |_, a| a * (1.0 - a),
        wgsl: "act_softmax",
        wgsl_derivative: "act_softmax_derivative",
        needs_net: false,
        range: (0.0, 1.0),
        as_output: true,
        as_hidden: false,
        normalizes_rows: true,
        requires_loss: Some(Loss::CategoricalCrossEntropy),
    },
}

/// `ln sum_j e^z_j` from the logits with their maximum subtracted (so no
/// `e^z` overflows): `m + ln sum_j e^(z_j - m)`, `m = max_j z_j`. NaN in,
/// NaN out.
pub fn log_sum_exp(z: &[f64]) -> f64 {
    if z.iter().any(|v| v.is_nan()) {
        return f64::NAN;
    }
    let m = z.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if m.is_infinite() {
        return m;
    }
    m + z.iter().map(|v| (v - m).exp()).sum::<f64>().ln()
}

impl Activation {
    pub fn def(self) -> &'static ActivationDef {
        &ACTIVATIONS[self as usize]
    }

    /// The activation's command-line name.
    pub fn name(self) -> &'static str {
        value_name(self)
    }
}

/// A loss: the per-sample, per-output error term, summed over outputs and
/// then reduced over samples (the run's reduction, sum or mean).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, ValueEnum)]
pub enum Loss {
    /// `1/2 (y - yhat)^2` (seed 003).
    #[default]
    HalfSse,
    /// `(y - yhat)^2` (seed 000, whose gradient carries the factor 2).
    Sse,
    /// Binary cross-entropy `-(y ln yhat + (1 - y) ln(1 - yhat))` for
    /// sigmoid outputs, computed from the logit.
    CrossEntropy,
    /// Categorical cross-entropy `-sum_j y_j ln p_j` for softmax outputs,
    /// computed from the logits: torch.nn.CrossEntropyLoss (with
    /// probability targets; one-hot rows, or `--targets class`).
    CategoricalCrossEntropy,
}

/// One loss's definition.
pub struct LossDef {
    pub loss: Loss,
    /// The loss of one output from its net input `z`, its output `yhat`
    /// and its target `y`.
    pub value: fn(f64, f64, f64) -> f64,
    /// dL/dz, the output delta, from `yhat`, `y` and the output
    /// activation's derivative at `yhat` (`slope`).
    pub delta: fn(f64, f64, f64) -> f64,
    /// WGSL twins: `fn(z: f32, yhat: f32, y: f32) -> f32` and
    /// `fn(yhat: f32, y: f32, slope: f32) -> f32`.
    pub wgsl_value: &'static str,
    pub wgsl_delta: &'static str,
    /// The SIMD trainer's float32 twins of `value` (z, yhat, y) and
    /// `delta` (yhat, y, slope), applied lane by lane through
    /// `with_loss!`.
    pub lane_value: fn(f32, f32, f32) -> f32,
    pub lane_delta: fn(f32, f32, f32) -> f32,
    /// The only output activation this loss is defined for, if any.
    pub requires_output: Option<Activation>,
    /// The row form, for a loss that couples a sample's outputs: the
    /// sample's loss from its net inputs `z` (the logits) and targets `y`,
    /// which the float64 reference uses in place of the per-output sum.
    /// `value` is then the per-output form the float32 trainers sum: it
    /// takes the output activation's shifted net input (its
    /// [`ActivationDef::normalizes_rows`] `l_j`) in `z`'s place, and the
    /// two agree exactly in real arithmetic (a unit test checks it).
    pub row_value: Option<RowLoss>,
}

/// A loss's row form: a sample's loss from its logits and its targets.
pub type RowLoss = fn(&[f64], &[f64]) -> f64;

/// Every loss, in the enum's order (a unit test checks it).
pub const LOSSES: &[LossDef] = &[
    LossDef {
        loss: Loss::HalfSse,
        value: |_, yhat, y| 0.5 * (y - yhat) * (y - yhat),
        // delta = -(target - out) * f'(net), the seed's output delta.
        delta: |yhat, y, slope| (yhat - y) * slope,
        wgsl_value: "loss_half_sse",
        wgsl_delta: "loss_half_sse_delta",
        lane_value: |_, yhat, y| {
            let e = yhat - y;
            0.5 * (e * e)
        },
        lane_delta: |yhat, y, slope| (yhat - y) * slope,
        requires_output: None,
        row_value: None,
    },
    LossDef {
        loss: Loss::Sse,
        value: |_, yhat, y| (y - yhat) * (y - yhat),
        delta: |yhat, y, slope| 2.0 * (yhat - y) * slope,
        wgsl_value: "loss_sse",
        wgsl_delta: "loss_sse_delta",
        lane_value: |_, yhat, y| {
            let e = yhat - y;
            e * e
        },
        lane_delta: |yhat, y, slope| 2.0 * (yhat - y) * slope,
        requires_output: None,
        row_value: None,
    },
    LossDef {
        loss: Loss::CrossEntropy,
        // From the logit, never from log(yhat): softplus(z) - y z, written
        // as max(z, 0) - y z + ln(1 + e^-|z|), finite for every finite z
        // (a saturated output never gives log(0) = -inf).
        value: |z, _, y| z.max(0.0) - y * z + (-z.abs()).exp().ln_1p(),
        // With a sigmoid output the sigmoid's slope cancels: yhat - y.
        delta: |yhat, y, _| yhat - y,
        wgsl_value: "loss_cross_entropy",
        wgsl_delta: "loss_cross_entropy_delta",
        // max(z, 0) - y z + ln(1 + e^-|z|), finite for every finite z.
        lane_value: |z, _, y| {
            let tail = lanes::ln_1p_unit(lanes::exp(-z.abs()));
            let positive = if z > 0.0 { z } else { 0.0 };
            (-y).mul_add(z, positive) + tail
        },
        lane_delta: |yhat, y, _| yhat - y,
        requires_output: Some(Activation::Sigmoid),
        row_value: None,
    },
    LossDef {
        loss: Loss::CategoricalCrossEntropy,
        // Per output, on the log-probability l = z - lse(z): -y l.
        value: |l, _, y| -y * l,
        // With a softmax output: p - y (the targets summing to 1).
        delta: |yhat, y, _| yhat - y,
        wgsl_value: "loss_categorical_cross_entropy",
        wgsl_delta: "loss_categorical_cross_entropy_delta",
        // -y l, on the log-probability l the row form left in z.
        lane_value: |l, _, y| -y * l,
        lane_delta: |yhat, y, _| yhat - y,
        requires_output: Some(Activation::Softmax),
        // -sum_j y_j (z_j - lse(z)) = lse(z) sum_j y_j - sum_j y_j z_j,
        // from the logits, never from the log of a probability.
        row_value: Some(|z, y| {
            let lse = log_sum_exp(z);
            y.iter().zip(z).map(|(y, z)| y * (lse - z)).sum()
        }),
    },
];

/// `entry_match!(value, TABLE, Enum, Def, [Variant, ...], DEF => expr)`:
/// the exhaustive match behind [`with_loss!`] and [`with_optimizer!`], one
/// arm per variant with `DEF` that variant's entry of `TABLE` as a
/// constant, so calls through it are direct and inline. A new entry whose
/// variant is missing from the list does not compile.
macro_rules! entry_match {
    ($value:expr, $table:ident, $ty:ident, $def_ty:ident, [$($variant:ident),+ $(,)?],
     $def:ident => $body:expr) => {{
        use $crate::vocab::{$def_ty, $table, $ty};
        match $value {
            $($ty::$variant => {
                const $def: &$def_ty = &$table[$ty::$variant as usize];
                $body
            })+
        }
    }};
}
pub(crate) use entry_match;

/// `with_loss!(loss, DEF => expr)`: `expr` with `DEF` a constant
/// `&LossDef` of `loss` ([`entry_match!`]), so the SIMD trainer's calls of
/// `DEF.lane_value` and `DEF.lane_delta` are direct and inline.
macro_rules! with_loss {
    ($loss:expr, $def:ident => $body:expr) => {
        $crate::vocab::entry_match!(
            $loss,
            LOSSES,
            Loss,
            LossDef,
            [HalfSse, Sse, CrossEntropy, CategoricalCrossEntropy],
            $def => $body
        )
    };
}
pub(crate) use with_loss;

impl Loss {
    /// Every loss, in the table's order.
    pub const ALL: [Loss; 4] = [
        Loss::HalfSse,
        Loss::Sse,
        Loss::CrossEntropy,
        Loss::CategoricalCrossEntropy,
    ];

    pub fn def(self) -> &'static LossDef {
        &LOSSES[self as usize]
    }

    /// The loss's command-line name.
    pub fn name(self) -> &'static str {
        value_name(self)
    }

    /// Whether the loss is defined for `output` activations (and the
    /// output activation for the loss).
    pub fn accepts_output(self, output: Activation) -> bool {
        self.def().requires_output.is_none_or(|a| a == output)
            && output.def().requires_loss.is_none_or(|l| l == self)
    }
}

/// A parameter update rule. Each follows torch.optim exactly
/// (`docs/usage.md`'s vocabulary table gives the formulas), so any network's trajectory replays in PyTorch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, ValueEnum)]
pub enum Optimizer {
    /// Plain gradient descent, `p - lr g` (the seeds'); torch.optim.SGD.
    #[default]
    Sgd,
    /// Heavy ball: `v = mu v + g`, `p - lr v`; torch.optim.SGD(momentum=mu).
    Momentum,
    /// `v = mu v + g`, `p - lr (g + mu v)`; torch.optim.SGD(nesterov=True).
    Nesterov,
    /// Bias-corrected first and second moments; torch.optim.Adam.
    Adam,
    /// Adam with decoupled weight decay; torch.optim.AdamW.
    Adamw,
    /// A running average of squared gradients divides the step;
    /// torch.optim.RMSprop.
    Rmsprop,
}

/// A hyperparameter an optimizer may use. Its [`name`](Self::name) is
/// PyTorch's (Adam's `betas` pair as beta1 and beta2): the field of the
/// weights metadata, of the WGSL `StepScalars` and of the summary's
/// description; each face spells it in its own way (the command line
/// `--weight-decay`, Python `weight_decay=`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Hyperparameter {
    Momentum,
    Beta1,
    Beta2,
    Eps,
    Alpha,
    /// A switch (PyTorch's bool `centered`): 0 or 1.
    Centered,
    WeightDecay,
}

impl Hyperparameter {
    pub const COUNT: usize = 7;
    /// Every hyperparameter, in the enum's order.
    pub const ALL: [Hyperparameter; Self::COUNT] = [
        Hyperparameter::Momentum,
        Hyperparameter::Beta1,
        Hyperparameter::Beta2,
        Hyperparameter::Eps,
        Hyperparameter::Alpha,
        Hyperparameter::Centered,
        Hyperparameter::WeightDecay,
    ];

    /// PyTorch's name.
    pub fn name(self) -> &'static str {
        match self {
            Hyperparameter::Momentum => "momentum",
            Hyperparameter::Beta1 => "beta1",
            Hyperparameter::Beta2 => "beta2",
            Hyperparameter::Eps => "eps",
            Hyperparameter::Alpha => "alpha",
            Hyperparameter::Centered => "centered",
            Hyperparameter::WeightDecay => "weight_decay",
        }
    }

    /// The value where no optimizer entry gives one (unused there).
    fn neutral(self) -> f64 {
        match self {
            Hyperparameter::Momentum => 0.0,
            Hyperparameter::Beta1 => 0.9,
            Hyperparameter::Beta2 => 0.999,
            Hyperparameter::Eps => 1e-8,
            Hyperparameter::Alpha => 0.99,
            Hyperparameter::Centered => 0.0,
            Hyperparameter::WeightDecay => 0.0,
        }
    }

    /// Whether the value is a switch (0 or 1) rather than a number.
    pub fn is_switch(self) -> bool {
        self == Hyperparameter::Centered
    }

    /// PyTorch's check of a value (stricter where PyTorch accepts values
    /// that only diverge: momentum and the betas below 1, alpha at most
    /// 1, eps above 0): the reason it is refused.
    pub fn check(self, value: f64) -> Result<(), &'static str> {
        let ok = match self {
            Hyperparameter::Momentum | Hyperparameter::Beta1 | Hyperparameter::Beta2 => {
                (0.0..1.0).contains(&value)
            }
            Hyperparameter::Alpha => (0.0..=1.0).contains(&value),
            Hyperparameter::Eps => value.is_finite() && value > 0.0,
            Hyperparameter::Centered => value == 0.0 || value == 1.0,
            Hyperparameter::WeightDecay => value.is_finite() && value >= 0.0,
        };
        match (ok, self) {
            (true, _) => Ok(()),
            (false, Hyperparameter::Momentum | Hyperparameter::Beta1 | Hyperparameter::Beta2) => {
                Err("must be in [0, 1)")
            }
            (false, Hyperparameter::Alpha) => Err("must be in [0, 1]"),
            (false, Hyperparameter::Eps) => Err("must be a finite number > 0"),
            (false, Hyperparameter::Centered) => Err("must be true or false"),
            (false, Hyperparameter::WeightDecay) => Err("must be a finite number >= 0"),
        }
    }

    /// A value as the weights metadata and the summary write it: a
    /// switch as true/false, a number as Rust prints it (shortest
    /// round-trip form).
    pub fn format(self, value: f64) -> String {
        match self.is_switch() {
            true => (value != 0.0).to_string(),
            false => value.to_string(),
        }
    }

    /// A value from its [`format`](Self::format) text.
    pub fn parse(self, text: &str) -> Option<f64> {
        match self.is_switch() {
            true => text.parse::<bool>().ok().map(f64::from),
            false => text.parse().ok(),
        }
    }
}

/// The update rule and its hyperparameters. [`OptimizerConfig::of`] gives
/// an optimizer's defaults (its entry's): PyTorch's, except momentum 0.9
/// for momentum and nesterov (PyTorch's SGD default of 0 is plain SGD).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OptimizerConfig {
    pub kind: Optimizer,
    /// By [`Hyperparameter`]; those the optimizer does not use keep a
    /// neutral value and change nothing.
    values: [f64; Hyperparameter::COUNT],
}

impl Default for OptimizerConfig {
    /// SGD: the seeds' rule.
    fn default() -> Self {
        Self::of(Optimizer::Sgd)
    }
}

impl std::ops::Index<Hyperparameter> for OptimizerConfig {
    type Output = f64;
    fn index(&self, h: Hyperparameter) -> &f64 {
        &self.values[h as usize]
    }
}

impl OptimizerConfig {
    /// Plain SGD: the seeds' rule.
    pub fn sgd() -> Self {
        Self::default()
    }

    /// `kind` with its entry's default hyperparameters.
    pub fn of(kind: Optimizer) -> Self {
        let mut values = Hyperparameter::ALL.map(Hyperparameter::neutral);
        for &(h, default) in kind.def().uses {
            values[h as usize] = default;
        }
        Self { kind, values }
    }

    /// This configuration with `h` set to `value`.
    pub fn with(mut self, h: Hyperparameter, value: f64) -> Self {
        self.values[h as usize] = value;
        self
    }

    /// Whether the optimizer uses `h`.
    pub fn uses(&self, h: Hyperparameter) -> bool {
        self.kind.def().uses.iter().any(|&(used, _)| used == h)
    }

    /// The hyperparameters the optimizer uses and their values, in its
    /// entry's order.
    pub fn hyperparameters(&self) -> impl Iterator<Item = (Hyperparameter, f64)> + '_ {
        self.kind.def().uses.iter().map(|&(h, _)| (h, self[h]))
    }

    /// Checks the hyperparameters the optimizer uses as PyTorch does, and
    /// its entry's own rule; errors name the flag.
    pub fn validate(&self) -> Result<(), crate::Error> {
        for (h, value) in self.hyperparameters() {
            if let Err(reason) = h.check(value) {
                let setting = crate::setting::Setting(h.name());
                return Err(crate::Error::Config(format!(
                    "{} {reason}",
                    setting.is(value)
                )));
            }
        }
        (self.kind.def().check)(self).map_err(crate::Error::Config)
    }

    /// The optimizer and the hyperparameters it uses, for reports: "sgd",
    /// "adam (beta1=0.9, beta2=0.999, eps=1e-8)"; a weight decay of 0
    /// (every optimizer's but AdamW's default) is left out.
    pub fn describe(&self) -> String {
        let shown: Vec<String> = self
            .hyperparameters()
            .filter(|&(h, v)| !(h == Hyperparameter::WeightDecay && v == 0.0))
            .map(|(h, v)| match h {
                Hyperparameter::Eps => format!("{}={v:e}", h.name()),
                _ => format!("{}={}", h.name(), h.format(v)),
            })
            .collect();
        match shown.is_empty() {
            true => self.kind.name().to_string(),
            false => format!("{} ({})", self.kind.name(), shown.join(", ")),
        }
    }

    /// Optimizer state values per parameter.
    pub fn state_slots(&self) -> usize {
        self.kind.def().state.len()
    }

    /// The names of the state values ([`OptimizerDef::state`]).
    pub fn state_names(&self) -> &'static [&'static str] {
        self.kind.def().state
    }

    /// The scalars of update number `t` (from 1) for a network with
    /// learning rate `lr`: PyTorch's Adam bias corrections
    /// `step_size = lr / (1 - beta1^t)` and `sqrt(1 - beta2^t)` where the
    /// entry is [`OptimizerDef::bias_corrected`].
    pub fn scalars(&self, lr: f64, t: u64) -> StepScalars<f64> {
        let t = t as f64;
        let corrected = self.kind.def().bias_corrected;
        StepScalars {
            lr,
            step_size: match corrected {
                true => lr / (1.0 - self[Hyperparameter::Beta1].powf(t)),
                false => lr,
            },
            bias2_sqrt: match corrected {
                true => (1.0 - self[Hyperparameter::Beta2].powf(t)).sqrt(),
                false => 1.0,
            },
            hyper: self.values,
            complement: self.values.map(|v| 1.0 - v),
        }
    }
}

/// What one update of one network needs besides a parameter, its gradient
/// and its state, in float64 (the reference) or float32 (the SIMD
/// trainer's lanes). The WGSL twin, `StepScalars`, is generated from the
/// same list ([`crate::gpu::shaders::step_scalars_struct`]): lr,
/// step_size, bias2_sqrt, then every [`Hyperparameter`] by name.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepScalars<T> {
    pub lr: T,
    /// Bias-corrected optimizers: `lr / (1 - beta1^t)`; else `lr`.
    pub step_size: T,
    /// Bias-corrected optimizers: `sqrt(1 - beta2^t)`; else 1.
    pub bias2_sqrt: T,
    /// By [`Hyperparameter`].
    pub hyper: [T; Hyperparameter::COUNT],
    /// `1 - value` of each, computed in float64 (as PyTorch passes
    /// `1 - beta2` to its float32 kernels; `1 - float32(0.999)` would be
    /// 1.3e-5 too small, relative, at every step).
    pub complement: [T; Hyperparameter::COUNT],
}

impl<T: Copy> StepScalars<T> {
    /// `1 - h`, from float64.
    #[inline(always)]
    pub fn one_minus(&self, h: Hyperparameter) -> T {
        self.complement[h as usize]
    }
}

impl<T> std::ops::Index<Hyperparameter> for StepScalars<T> {
    type Output = T;
    fn index(&self, h: Hyperparameter) -> &T {
        &self.hyper[h as usize]
    }
}

impl<T: Copy> StepScalars<T> {
    /// Every scalar through `f`, the complements too (not recomputed).
    fn map<U>(&self, f: impl Fn(T) -> U) -> StepScalars<U> {
        StepScalars {
            lr: f(self.lr),
            step_size: f(self.step_size),
            bias2_sqrt: f(self.bias2_sqrt),
            hyper: self.hyper.map(&f),
            complement: self.complement.map(&f),
        }
    }
}

impl StepScalars<f32> {
    /// The float32 scalars as float64 (exactly).
    pub fn to_f64(&self) -> StepScalars<f64> {
        self.map(f64::from)
    }
}

impl StepScalars<f64> {
    /// The float32 scalars the SIMD lanes and the kernels compute with.
    pub fn to_f32(&self) -> StepScalars<f32> {
        self.map(|v| v as f32)
    }
}

/// The most state values an optimizer keeps per parameter (RMSprop's).
pub const MAX_STATE_SLOTS: usize = 3;

/// One parameter's optimizer state, slot by slot (unused slots stay 0).
pub type State<T> = [T; MAX_STATE_SLOTS];

/// One optimizer's definition: its twins side by side.
pub struct OptimizerDef {
    pub optimizer: Optimizer,
    /// The hyperparameters it uses with its defaults, in the order the
    /// summary and the weights metadata list them. Everything that asks
    /// which settings an optimizer takes (the command line's unused-flag
    /// check, the metadata, the description) reads this.
    pub uses: &'static [(Hyperparameter, f64)],
    /// The state kept per parameter, each value starting at 0, by the
    /// names PyTorch's optimizers give it (`momentum_buffer`; Adam's
    /// `exp_avg` and `exp_avg_sq`): weights files store each as a tensor
    /// `{parameter}.{name}`. At most [`MAX_STATE_SLOTS`].
    pub state: &'static [&'static str],
    /// Whether a step needs Adam's bias corrections
    /// ([`StepScalars::step_size`], [`StepScalars::bias2_sqrt`]).
    pub bias_corrected: bool,
    /// The new parameter from the old one, its gradient (of the old
    /// parameters), its state (updated in place) and the step's scalars.
    pub step: fn(f64, f64, &mut State<f64>, &StepScalars<f64>) -> f64,
    /// The SIMD trainer's float32 twin, applied lane by lane through
    /// `with_optimizer!`.
    pub lane_step: fn(f32, f32, &mut State<f32>, &StepScalars<f32>) -> f32,
    /// WGSL twin `fn(p: f32, g: f32, s: ptr<function, vec3<f32>>,
    /// k: StepScalars) -> f32` in shaders/vocabulary.wgsl.
    pub wgsl: &'static str,
    /// A rule across hyperparameters beyond each one's range.
    pub check: fn(&OptimizerConfig) -> Result<(), String>,
}

use Hyperparameter as H;

/// PyTorch's coupled weight decay: `g + weight_decay p`, skipped at 0.
fn decayed(p: f64, g: f64, k: &StepScalars<f64>) -> f64 {
    let wd = k[H::WeightDecay];
    if wd == 0.0 { g } else { g + wd * p }
}

/// [`decayed`] in float32, as one fused multiply-add.
#[inline(always)]
fn lane_decayed(p: f32, g: f32, k: &StepScalars<f32>) -> f32 {
    let wd = k[H::WeightDecay];
    if wd == 0.0 { g } else { wd.mul_add(p, g) }
}

/// `start.lerp_(end, w)` in the form torch's lerp takes for the weight.
fn lerp(start: f64, end: f64, w: f64) -> f64 {
    if w < 0.5 {
        start + w * (end - start)
    } else {
        end - (end - start) * (1.0 - w)
    }
}

/// [`lerp`] in float32.
#[inline(always)]
fn lane_lerp(start: f32, end: f32, w: f32) -> f32 {
    if w < 0.5 {
        w.mul_add(end - start, start)
    } else {
        end - (end - start) * (1.0 - w)
    }
}

/// Adam's step from an already decayed (or not) gradient `g`: exp_avg
/// lerps toward g by 1 - beta1, exp_avg_sq is `v beta2 + (1 - beta2)
/// g^2`, then `p - step_size m / (sqrt(v) / sqrt(1 - beta2^t) + eps)`.
fn adam(p: f64, g: f64, s: &mut State<f64>, k: &StepScalars<f64>) -> f64 {
    s[0] = lerp(s[0], g, k.one_minus(H::Beta1));
    s[1] = s[1] * k[H::Beta2] + k.one_minus(H::Beta2) * (g * g);
    let denom = s[1].sqrt() / k.bias2_sqrt + k[H::Eps];
    p - k.step_size * (s[0] / denom)
}

/// [`adam`] in float32.
#[inline(always)]
fn lane_adam(p: f32, g: f32, s: &mut State<f32>, k: &StepScalars<f32>) -> f32 {
    s[0] = lane_lerp(s[0], g, k.one_minus(H::Beta1));
    s[1] = s[1] * k[H::Beta2] + k.one_minus(H::Beta2) * (g * g);
    let denom = s[1].sqrt() / k.bias2_sqrt + k[H::Eps];
    p - k.step_size * (s[0] / denom)
}

/// No rule beyond the hyperparameters' ranges.
fn no_rule(_: &OptimizerConfig) -> Result<(), String> {
    Ok(())
}

const ADAM_USES: &[(Hyperparameter, f64)] = &[
    (H::Beta1, 0.9),
    (H::Beta2, 0.999),
    (H::Eps, 1e-8),
    (H::WeightDecay, 0.0),
];

/// Every optimizer, in the enum's order (a unit test checks it).
pub const OPTIMIZERS: &[OptimizerDef] = &[
    OptimizerDef {
        optimizer: Optimizer::Sgd,
        uses: &[(H::WeightDecay, 0.0)],
        state: &[],
        bias_corrected: false,
        step: |p, g, _, k| p - k.lr * decayed(p, g, k),
        lane_step: |p, g, _, k| p - k.lr * lane_decayed(p, g, k),
        wgsl: "sgd_step",
        check: no_rule,
    },
    OptimizerDef {
        optimizer: Optimizer::Momentum,
        uses: &[(H::Momentum, 0.9), (H::WeightDecay, 0.0)],
        state: &["momentum_buffer"],
        bias_corrected: false,
        // The buffer starts at 0, so the first step stores g exactly, as
        // PyTorch's first step copies the gradient.
        step: |p, g, s, k| {
            s[0] = k[H::Momentum] * s[0] + decayed(p, g, k);
            p - k.lr * s[0]
        },
        lane_step: |p, g, s, k| {
            s[0] = k[H::Momentum].mul_add(s[0], lane_decayed(p, g, k));
            p - k.lr * s[0]
        },
        wgsl: "momentum_step",
        check: no_rule,
    },
    OptimizerDef {
        optimizer: Optimizer::Nesterov,
        uses: &[(H::Momentum, 0.9), (H::WeightDecay, 0.0)],
        state: &["momentum_buffer"],
        bias_corrected: false,
        step: |p, g, s, k| {
            let g = decayed(p, g, k);
            s[0] = k[H::Momentum] * s[0] + g;
            p - k.lr * (g + k[H::Momentum] * s[0])
        },
        lane_step: |p, g, s, k| {
            let d = lane_decayed(p, g, k);
            s[0] = k[H::Momentum].mul_add(s[0], d);
            p - k.lr * k[H::Momentum].mul_add(s[0], d)
        },
        wgsl: "nesterov_step",
        check: |c| match c[H::Momentum] == 0.0 {
            true => Err(format!(
                "{} needs {} > 0 (as PyTorch's SGD)",
                OPTIMIZER.is("nesterov"),
                MOMENTUM
            )),
            false => Ok(()),
        },
    },
    OptimizerDef {
        optimizer: Optimizer::Adam,
        uses: ADAM_USES,
        state: &["exp_avg", "exp_avg_sq"],
        bias_corrected: true,
        step: |p, g, s, k| adam(p, decayed(p, g, k), s, k),
        lane_step: |p, g, s, k| lane_adam(p, lane_decayed(p, g, k), s, k),
        wgsl: "adam_step",
        check: no_rule,
    },
    OptimizerDef {
        optimizer: Optimizer::Adamw,
        // PyTorch's AdamW default weight_decay is 0.01.
        uses: &[
            (H::Beta1, 0.9),
            (H::Beta2, 0.999),
            (H::Eps, 1e-8),
            (H::WeightDecay, 0.01),
        ],
        state: &["exp_avg", "exp_avg_sq"],
        bias_corrected: true,
        // Decoupled decay: param.mul_(1 - lr * weight_decay), then Adam's
        // step with the gradient as it is.
        step: |p, g, s, k| adam(p * (1.0 - k.lr * k[H::WeightDecay]), g, s, k),
        lane_step: |p, g, s, k| lane_adam(p * (1.0 - k.lr * k[H::WeightDecay]), g, s, k),
        wgsl: "adamw_step",
        check: no_rule,
    },
    OptimizerDef {
        optimizer: Optimizer::Rmsprop,
        uses: &[
            (H::Alpha, 0.99),
            (H::Eps, 1e-8),
            (H::Momentum, 0.0),
            (H::Centered, 0.0),
            (H::WeightDecay, 0.0),
        ],
        state: &["square_avg", "momentum_buffer", "grad_avg"],
        bias_corrected: false,
        // square_avg = alpha v + (1 - alpha) g^2; centered: grad_avg lerps
        // toward g by 1 - alpha and avg = sqrt(v - grad_avg^2), else
        // sqrt(v); avg + eps divides g, through a momentum buffer when
        // momentum > 0.
        step: |p, g, s, k| {
            let g = decayed(p, g, k);
            let alpha = k[H::Alpha];
            s[0] = s[0] * alpha + k.one_minus(H::Alpha) * (g * g);
            let avg = if k[H::Centered] != 0.0 {
                s[2] = lerp(s[2], g, k.one_minus(H::Alpha));
                (s[0] - s[2] * s[2]).sqrt()
            } else {
                s[0].sqrt()
            } + k[H::Eps];
            if k[H::Momentum] > 0.0 {
                s[1] = s[1] * k[H::Momentum] + g / avg;
                p - k.lr * s[1]
            } else {
                p - k.lr * (g / avg)
            }
        },
        lane_step: |p, g, s, k| {
            let g = lane_decayed(p, g, k);
            let alpha = k[H::Alpha];
            s[0] = s[0] * alpha + k.one_minus(H::Alpha) * (g * g);
            let avg = if k[H::Centered] != 0.0 {
                s[2] = lane_lerp(s[2], g, k.one_minus(H::Alpha));
                (s[0] - s[2] * s[2]).sqrt()
            } else {
                s[0].sqrt()
            } + k[H::Eps];
            if k[H::Momentum] > 0.0 {
                s[1] = s[1] * k[H::Momentum] + g / avg;
                p - k.lr * s[1]
            } else {
                p - k.lr * (g / avg)
            }
        },
        wgsl: "rmsprop_step",
        check: no_rule,
    },
];

/// `with_optimizer!(kind, DEF => expr)`: `expr` with `DEF` a constant
/// `&OptimizerDef` of `kind` ([`entry_match!`]), so the SIMD trainer's call
/// of `DEF.lane_step` is direct and inline.
macro_rules! with_optimizer {
    ($kind:expr, $def:ident => $body:expr) => {
        $crate::vocab::entry_match!(
            $kind,
            OPTIMIZERS,
            Optimizer,
            OptimizerDef,
            [Sgd, Momentum, Nesterov, Adam, Adamw, Rmsprop],
            $def => $body
        )
    };
}
pub(crate) use with_optimizer;

impl Optimizer {
    /// Every optimizer, in the table's order.
    pub const ALL: [Optimizer; 6] = [
        Optimizer::Sgd,
        Optimizer::Momentum,
        Optimizer::Nesterov,
        Optimizer::Adam,
        Optimizer::Adamw,
        Optimizer::Rmsprop,
    ];

    pub fn def(self) -> &'static OptimizerDef {
        &OPTIMIZERS[self as usize]
    }

    /// The optimizer's command-line name.
    pub fn name(self) -> &'static str {
        value_name(self)
    }

    /// The optimizers that use `h`, by name: "momentum, nesterov or
    /// rmsprop".
    pub fn users_of(h: Hyperparameter) -> String {
        let users: Vec<&str> = Optimizer::ALL
            .iter()
            .filter(|o| o.def().uses.iter().any(|&(used, _)| used == h))
            .map(|o| o.name())
            .collect();
        match users.split_last() {
            Some((last, [])) => last.to_string(),
            Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
            None => String::new(),
        }
    }
}

/// The clap name of a value-enum variant, as `&'static str` (clap hands
/// names out borrowed from a temporary; each distinct name is kept once, a
/// few dozen strings at most).
pub fn value_name<T: ValueEnum>(value: T) -> &'static str {
    use std::collections::HashSet;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashSet<&'static str>>> = OnceLock::new();
    let possible = value.to_possible_value().expect("no variant is skipped");
    let name = possible.get_name();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(found) = names.get(name) {
        return found;
    }
    let kept: &'static str = Box::leak(name.to_string().into_boxed_str());
    names.insert(kept);
    kept
}

/// `Display` as the clap name, for value enums.
#[macro_export]
macro_rules! display_as_value_name {
    ($($ty:ty),+ $(,)?) => {$(
        impl std::fmt::Display for $ty {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str($crate::vocab::value_name(*self))
            }
        }
    )+};
}
display_as_value_name!(Activation, Loss, Optimizer);

#[cfg(test)]
mod tests {
    use super::*;
    use Hyperparameter as H;

    #[test]
    fn tables_follow_their_enums_order() {
        for (i, d) in ACTIVATIONS.iter().enumerate() {
            assert_eq!(d.activation as usize, i, "{:?}", d.activation);
        }
        for (i, d) in LOSSES.iter().enumerate() {
            assert_eq!(d.loss as usize, i, "{:?}", d.loss);
        }
        for (i, d) in OPTIMIZERS.iter().enumerate() {
            assert_eq!(d.optimizer as usize, i, "{:?}", d.optimizer);
        }
        assert_eq!(ACTIVATIONS.len(), Activation::value_variants().len());
        assert_eq!(LOSSES.len(), Loss::value_variants().len());
        assert_eq!(OPTIMIZERS.len(), Optimizer::value_variants().len());
        assert_eq!(Optimizer::ALL.len(), OPTIMIZERS.len());
        for (i, h) in Hyperparameter::ALL.iter().enumerate() {
            assert_eq!(*h as usize, i, "{h:?}");
        }
    }

    #[test]
    fn optimizer_entries_give_pytorchs_defaults_and_their_state() {
        let of = OptimizerConfig::of;
        // torch.optim.RMSprop(lr, alpha=0.99, eps=1e-08, weight_decay=0,
        // momentum=0, centered=False); AdamW(betas=(0.9, 0.999),
        // eps=1e-08, weight_decay=0.01); Adam's weight_decay=0. Momentum
        // and nesterov take 0.9 (PyTorch's SGD default 0 is plain SGD).
        let rmsprop = of(Optimizer::Rmsprop);
        assert_eq!(
            [H::Alpha, H::Eps, H::Momentum, H::Centered, H::WeightDecay].map(|h| rmsprop[h]),
            [0.99, 1e-8, 0.0, 0.0, 0.0]
        );
        let adamw = of(Optimizer::Adamw);
        assert_eq!(
            [H::Beta1, H::Beta2, H::Eps, H::WeightDecay].map(|h| adamw[h]),
            [0.9, 0.999, 1e-8, 0.01]
        );
        assert_eq!(of(Optimizer::Adam)[H::WeightDecay], 0.0);
        assert_eq!(of(Optimizer::Momentum)[H::Momentum], 0.9);
        for def in OPTIMIZERS {
            assert!(def.state.len() <= MAX_STATE_SLOTS, "{:?}", def.optimizer);
            assert!(
                def.uses.iter().any(|&(h, _)| h == H::WeightDecay),
                "{:?}: every optimizer takes a weight decay",
                def.optimizer
            );
            // Every default passes the ranges and the entry's own rule.
            of(def.optimizer).validate().unwrap();
        }
        assert_eq!(
            rmsprop.state_names(),
            ["square_avg", "momentum_buffer", "grad_avg"]
        );
        assert_eq!(adamw.state_names(), ["exp_avg", "exp_avg_sq"]);
    }

    #[test]
    fn descriptions_and_users_come_from_the_entries() {
        let of = OptimizerConfig::of;
        assert_eq!(of(Optimizer::Sgd).describe(), "sgd");
        assert_eq!(
            of(Optimizer::Sgd).with(H::WeightDecay, 0.5).describe(),
            "sgd (weight_decay=0.5)"
        );
        assert_eq!(
            of(Optimizer::Adam).describe(),
            "adam (beta1=0.9, beta2=0.999, eps=1e-8)"
        );
        assert_eq!(
            of(Optimizer::Adamw).describe(),
            "adamw (beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.01)"
        );
        assert_eq!(
            of(Optimizer::Rmsprop).with(H::Centered, 1.0).describe(),
            "rmsprop (alpha=0.99, eps=1e-8, momentum=0, centered=true)"
        );
        assert_eq!(Optimizer::users_of(H::Alpha), "rmsprop");
        assert_eq!(Optimizer::users_of(H::Beta1), "adam or adamw");
        assert_eq!(
            Optimizer::users_of(H::Momentum),
            "momentum, nesterov or rmsprop"
        );
        // A hyperparameter the optimizer does not use is not checked.
        of(Optimizer::Sgd).with(H::Beta1, 2.0).validate().unwrap();
        let err = of(Optimizer::Adamw).with(H::Beta1, 2.0).validate();
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("--beta1 2 must be in [0, 1)")
        );
        let err = of(Optimizer::Nesterov).with(H::Momentum, 0.0).validate();
        assert!(
            err.unwrap_err()
                .to_string()
                .contains("nesterov needs --momentum > 0")
        );
    }

    #[test]
    fn complements_are_taken_in_float64() {
        let k = OptimizerConfig::of(Optimizer::Adam)
            .with(H::Beta2, 0.99999)
            .scalars(0.1, 1)
            .to_f32();
        assert_eq!(k.one_minus(H::Beta2), (1.0f64 - 0.99999) as f32);
        // Not 1 - float32(0.99999), 1.4e-4 larger.
        assert_ne!(k.one_minus(H::Beta2), 1.0 - 0.99999f32);
        assert_eq!(k.one_minus(H::Beta1), (1.0f64 - 0.9) as f32);
    }

    #[test]
    fn adamw_decays_the_parameter_and_rmsprop_divides_by_the_root_mean_square() {
        // One step from zero state at t = 1 by hand: AdamW p (1 - lr wd)
        // then Adam's first step, lr sign(g) (m = (1 - b1) g, v = (1 -
        // b2) g^2 and the corrections cancel them, eps aside).
        let (p, g, lr) = (2.0, 0.5, 0.1);
        let adamw = OptimizerConfig::of(Optimizer::Adamw).with(H::Eps, 1e-12);
        let mut s = [0.0; MAX_STATE_SLOTS];
        let q = (Optimizer::Adamw.def().step)(p, g, &mut s, &adamw.scalars(lr, 1));
        assert!((q - (p * (1.0 - lr * 0.01) - lr)).abs() < 1e-10, "{q}");
        // RMSprop: v = (1 - alpha) g^2, p - lr g / sqrt(v) = p - lr /
        // sqrt(1 - alpha) for g > 0.
        let rmsprop = OptimizerConfig::of(Optimizer::Rmsprop).with(H::Eps, 1e-12);
        let mut s = [0.0; MAX_STATE_SLOTS];
        let q = (Optimizer::Rmsprop.def().step)(p, g, &mut s, &rmsprop.scalars(lr, 1));
        assert!((q - (p - lr / 0.01f64.sqrt())).abs() < 1e-9, "{q}");
        assert_eq!(s[1], 0.0, "no momentum buffer at momentum 0");
        assert_eq!(s[2], 0.0, "no grad_avg when not centered");
    }

    #[test]
    fn derivatives_match_finite_differences() {
        // Central differences with h = 1e-6 are good to about 1e-9 here;
        // softplus' threshold (20) is kept away from.
        let points = [
            -6.0, -3.0, -1.27, -0.7, -1e-3, 0.0, 1e-3, 0.4, 0.75, 2.5, 7.0, 25.0,
        ];
        for d in ACTIVATIONS.iter().filter(|d| !d.normalizes_rows) {
            for z in points {
                if d.activation == Activation::Relu && z == 0.0 {
                    continue;
                }
                let h = 1e-6;
                let numeric = ((d.f)(z + h) - (d.f)(z - h)) / (2.0 * h);
                let exact = (d.derivative)(z, (d.f)(z));
                assert!(
                    (numeric - exact).abs() < 1e-8,
                    "{:?} at {z}: {exact} vs {numeric}",
                    d.activation
                );
            }
        }
    }

    #[test]
    fn new_activations_are_pytorchs() {
        // Values from the definitions in torch.nn's documentation, computed
        // independently: GELU(1) = Phi(1) = 0.8413447460685429,
        // GELU-tanh(1) = (1 + tanh(sqrt(2/pi) 1.044715)) / 2,
        // SiLU(1) = sigmoid(1), softplus(1) = ln(1 + e).
        let at = |a: Activation, z: f64| (a.def().f)(z);
        assert!((at(Activation::Gelu, 1.0) - 0.841_344_746_068_542_9).abs() < 1e-15);
        let t = (0.797_884_560_802_865_4f64 * 1.044_715).tanh();
        assert!((at(Activation::GeluTanh, 1.0) - 0.5 * (1.0 + t)).abs() < 1e-15);
        assert!((at(Activation::Silu, 1.0) - 1.0 / (1.0 + (-1.0f64).exp())).abs() < 1e-15);
        assert!((at(Activation::Softplus, 1.0) - (1.0 + 1f64.exp()).ln()).abs() < 1e-15);
        // PyTorch's threshold: softplus is the identity above 20.
        assert_eq!(at(Activation::Softplus, 20.5), 20.5);
        assert_eq!((Activation::Softplus.def().derivative)(20.5, 20.5), 1.0);
        // The minima that the output ranges state.
        for a in [Activation::Silu, Activation::Gelu, Activation::GeluTanh] {
            let low = a.def().range.0;
            let min = (-3000..0)
                .map(|i| at(a, i as f64 * 1e-3))
                .fold(f64::INFINITY, f64::min);
            assert!(
                (min - low).abs() < 1e-6 && min >= low - 1e-12,
                "{a:?}: {min} vs {low}"
            );
        }
        assert_eq!(Activation::GeluTanh.name(), "gelu-tanh");
        assert_eq!(Activation::Silu.name(), "silu");
    }

    #[test]
    fn loss_deltas_are_the_derivative_of_the_loss_through_the_output() {
        for loss in LOSSES {
            // Row forms are checked by softmax_and_its_loss_are_one_row_form.
            for output in ACTIVATIONS
                .iter()
                .filter(|a| a.as_output && !a.normalizes_rows)
            {
                if !loss.loss.accepts_output(output.activation) {
                    continue;
                }
                for (z, y) in [(-1.5, 0.2), (0.3, 0.9), (2.0, 0.0)] {
                    let h = 1e-6;
                    let at = |z: f64| (loss.value)(z, (output.f)(z), y);
                    let numeric = (at(z + h) - at(z - h)) / (2.0 * h);
                    let yhat = (output.f)(z);
                    let delta = (loss.delta)(yhat, y, (output.derivative)(z, yhat));
                    assert!(
                        (numeric - delta).abs() < 1e-7,
                        "{:?} with {:?} at z={z}, y={y}: delta {delta} vs {numeric}",
                        loss.loss,
                        output.activation
                    );
                }
            }
        }
    }

    #[test]
    fn softmax_and_its_loss_are_one_row_form() {
        let softmax = Activation::Softmax.def();
        let cce = Loss::CategoricalCrossEntropy.def();
        let row = cce.row_value.expect("a row form");
        for (z, y) in [
            ([0.3, -1.2, 2.0], [0.0, 0.0, 1.0]),
            ([-4.0, 0.5, 0.1], [0.2, 0.5, 0.3]),
            ([900.0, 899.0, -900.0], [1.0, 0.0, 0.0]),
        ] {
            let lse = log_sum_exp(&z);
            let l = z.map(|z| z - lse);
            let p = l.map(softmax.f);
            // Within float64 rounding of the shift (|z| up to 900).
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{p:?}");
            // The per-output form summed over the row is the row form.
            let per_output: f64 = (0..3).map(|j| (cce.value)(l[j], p[j], y[j])).sum();
            assert!((per_output - row(&z, &y)).abs() < 1e-12, "{z:?}");
            assert!(row(&z, &y).is_finite());
            // The delta p - y is d(row form)/dz_j.
            for j in 0..3 {
                let h = 1e-6;
                let at = |d: f64| {
                    let mut shifted = z;
                    shifted[j] += d;
                    row(&shifted, &y)
                };
                let numeric = (at(h) - at(-h)) / (2.0 * h);
                let delta = (cce.delta)(p[j], y[j], (softmax.derivative)(l[j], p[j]));
                assert!(
                    (numeric - delta).abs() < 1e-7,
                    "{z:?} {j}: {delta} vs {numeric}"
                );
            }
        }
        // PyTorch's value: cross_entropy([[1, 2, 3]], [2]) = 0.40760596444.
        assert!((row(&[1.0, 2.0, 3.0], &[0.0, 0.0, 1.0]) - 0.407_605_964_444_380).abs() < 1e-12);
        assert!(log_sum_exp(&[f64::NAN, 1.0]).is_nan());
        assert_eq!(log_sum_exp(&[f64::INFINITY, 1.0]), f64::INFINITY);
        assert!(Loss::CategoricalCrossEntropy.accepts_output(Activation::Softmax));
        assert!(!Loss::HalfSse.accepts_output(Activation::Softmax));
        assert!(!Loss::CategoricalCrossEntropy.accepts_output(Activation::Sigmoid));
    }

    #[test]
    fn cross_entropy_is_finite_for_saturated_outputs() {
        let ce = Loss::CrossEntropy.def();
        let sigmoid = Activation::Sigmoid.def();
        for z in [-800.0, -40.0, 40.0, 800.0] {
            for y in [0.0, 1.0] {
                let v = (ce.value)(z, (sigmoid.f)(z), y);
                assert!(v.is_finite() && v >= 0.0, "z={z} y={y}: {v}");
            }
        }
        // Matches the log form where that is accurate.
        let (z, y) = (0.8f64, 0.3);
        let a = (sigmoid.f)(z);
        let direct = -(y * a.ln() + (1.0 - y) * (1.0 - a).ln());
        assert!(((ce.value)(z, a, y) - direct).abs() < 1e-14);
    }

    #[test]
    fn names_are_the_command_line_values() {
        assert_eq!(Activation::Relu.name(), "relu");
        assert_eq!(Loss::CrossEntropy.name(), "cross-entropy");
        assert_eq!(Loss::HalfSse.name(), "half-sse");
    }
}
