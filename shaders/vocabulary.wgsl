// The float32 building blocks of the model's vocabulary: one function per
// entry of the tables in src/vocab.rs, which name them and hold their
// float64 twins. Kernels never call these directly: the assembler binds the
// run's choices to hidden_activation, output_activation, loss_value,
// loss_delta, optimizer_step and optimizer_scalars (src/gpu/shaders.rs). tests/vocabulary.rs
// checks every function here against its twin.

// ---- Activations: f(z), and f'(z) from the net input z and the output
// ---- a = f(z) (each reads whichever its exact form needs).

// The logistic function 1 / (1 + e^-z). For very negative z, exp overflows
// to +inf and the quotient is exactly 0, the sigmoid's limit.
fn act_sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

// out * (1 - out).
fn act_sigmoid_derivative(z: f32, a: f32) -> f32 {
    return a * (1.0 - a);
}

// tanh saturates to exactly +-1 in float32 beyond |z| = 9.1; the clamp keeps
// implementations that form tanh from exp(2z) from reaching inf / inf. A
// clamp would turn NaN into -15 (tests/vocabulary.rs caught it), so NaN is
// let through first.
fn act_tanh(z: f32) -> f32 {
    return select(tanh(clamp(z, -15.0, 15.0)), z, is_nan(z));
}

// 1 - a^2.
fn act_tanh_derivative(z: f32, a: f32) -> f32 {
    return 1.0 - a * a;
}

// max(z, 0), letting NaN through (z <= 0 is false for NaN) so divergence
// stays visible.
fn act_relu(z: f32) -> f32 {
    return select(z, 0.0, z <= 0.0);
}

// 1 where the output is positive, 0 elsewhere (0 at z = 0, as PyTorch).
fn act_relu_derivative(z: f32, a: f32) -> f32 {
    return select(0.0, 1.0, a > 0.0);
}

fn act_linear(z: f32) -> f32 {
    return z;
}

fn act_linear_derivative(z: f32, a: f32) -> f32 {
    return 1.0;
}

// ln(1 + e^-|z|), the tail of softplus and of the cross-entropy. WGSL has
// no log1p: below 1e-3, ln(1 + t) is t (1 - t/2) to within t^3/3, under
// float32's rounding.
fn softplus_tail(z: f32) -> f32 {
    let t = exp(-abs(z));
    return select(log(1.0 + t), t * (1.0 - 0.5 * t), t < 1e-3);
}

fn sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

// torch.nn.Softplus (beta 1, threshold 20): z above 20, else
// max(z, 0) + ln(1 + e^-|z|) = ln(1 + e^z) without overflow. NaN: the
// tail is NaN.
fn act_softplus(z: f32) -> f32 {
    return select(max(z, 0.0) + softplus_tail(z), z, z > 20.0);
}

// PyTorch's backward: 1 above the threshold, else sigmoid(z).
fn act_softplus_derivative(z: f32, a: f32) -> f32 {
    return select(sigmoid(z), 1.0, z > 20.0);
}

// torch.nn.SiLU: z sigmoid(z).
fn act_silu(z: f32) -> f32 {
    return z * sigmoid(z);
}

// sigmoid(z) (1 + z (1 - sigmoid(z))) = s + a (1 - s).
fn act_silu_derivative(z: f32, a: f32) -> f32 {
    let s = sigmoid(z);
    return s + a * (1.0 - s);
}

// erfc(x): Numerical Recipes' Chebyshev fit t exp(-x^2 - 1.26551223 +
// t P(t)), t = 1 / (1 + |x| / 2), relative error below 1.2e-7 for x >= 0
// (the tail keeps its relative accuracy), and 2 - erfc(|x|) for x < 0.
// The SIMD twin is lanes::erfc.
fn erfc(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    var p = 0.17087277;
    p = fma(p, t, -0.82215223);
    p = fma(p, t, 1.48851587);
    p = fma(p, t, -1.13520398);
    p = fma(p, t, 0.27886807);
    p = fma(p, t, -0.18628806);
    p = fma(p, t, 0.09678418);
    p = fma(p, t, 0.37409196);
    p = fma(p, t, 1.00002368);
    p = fma(p, t, -1.26551223);
    let tail = t * exp(fma(-z, z, p));
    return select(tail, 2.0 - tail, x < 0.0);
}

// torch.nn.GELU(): z Phi(z), Phi(z) = erfc(-z / sqrt 2) / 2.
fn act_gelu(z: f32) -> f32 {
    return 0.5 * z * erfc(-z * 0.70710678);
}

// Phi(z) + z phi(z), phi(z) = e^(-z^2 / 2) / sqrt(2 pi).
fn act_gelu_derivative(z: f32, a: f32) -> f32 {
    return fma(z, 0.39894228 * exp(-0.5 * z * z), 0.5 * erfc(-z * 0.70710678));
}

// sqrt(2/pi) (z + 0.044715 z^3), the tanh approximation's argument u.
fn gelu_inner(z: f32) -> f32 {
    return 0.79788456 * fma(0.044715 * z * z, z, z);
}

// torch.nn.GELU(approximate='tanh'): z (1 + tanh u) / 2, written as
// z sigmoid(2u), the same function without 1 + tanh's cancellation.
fn act_gelu_tanh(z: f32) -> f32 {
    return z * sigmoid(2.0 * gelu_inner(z));
}

// PyTorch's 0.5 (1 + t) + 0.5 z (1 - t^2) beta (1 + 3 kappa z^2) with
// (1 + t) / 2 = s = sigmoid(2u) and 1 - t^2 = 4 s (1 - s).
fn act_gelu_tanh_derivative(z: f32, a: f32) -> f32 {
    let s = sigmoid(2.0 * gelu_inner(z));
    let slope = 0.79788456 * fma(3.0 * 0.044715 * z, z, 1.0);
    return fma(2.0 * z * s * (1.0 - s), slope, s);
}

// torch.nn.Softmax's row form: the trainers shift each sample's logits by
// their log-sum-exp (formed with the row's maximum subtracted), and this
// maps each shifted value l = z - lse(z), a log-probability, to its
// probability e^l.
fn act_softmax(l: f32) -> f32 {
    return exp(l);
}

// The Jacobian's diagonal p (1 - p); the categorical cross-entropy's delta
// holds the whole Jacobian and reads no slope.
fn act_softmax_derivative(z: f32, a: f32) -> f32 {
    return a * (1.0 - a);
}

// ---- Losses of one output: value from (net input z, output yhat, target
// ---- y), and delta dL/dz from (yhat, y, the output activation's slope).

fn loss_half_sse(z: f32, yhat: f32, y: f32) -> f32 {
    let e = yhat - y;
    return 0.5 * (e * e);
}

// -(target - out) * f'(net): the seeds' output delta.
fn loss_half_sse_delta(yhat: f32, y: f32, slope: f32) -> f32 {
    return (yhat - y) * slope;
}

fn loss_sse(z: f32, yhat: f32, y: f32) -> f32 {
    let e = yhat - y;
    return e * e;
}

fn loss_sse_delta(yhat: f32, y: f32, slope: f32) -> f32 {
    return 2.0 * (yhat - y) * slope;
}

// Binary cross-entropy from the logit: max(z, 0) - y z + ln(1 + e^-|z|),
// finite for every finite z.
fn loss_cross_entropy(z: f32, yhat: f32, y: f32) -> f32 {
    return max(z, 0.0) - y * z + softplus_tail(z);
}

// With a sigmoid output the slope cancels: yhat - y.
fn loss_cross_entropy_delta(yhat: f32, y: f32, slope: f32) -> f32 {
    return yhat - y;
}

// Categorical cross-entropy, per output of a softmax row: -y l on the
// log-probability l = z - lse(z) the row form hands over in z's place
// (summed over the row: lse(z) sum(y) - sum(y z), from the logits).
fn loss_categorical_cross_entropy(l: f32, yhat: f32, y: f32) -> f32 {
    return -y * l;
}

// With a softmax output and targets summing to 1: p - y.
fn loss_categorical_cross_entropy_delta(yhat: f32, y: f32, slope: f32) -> f32 {
    return yhat - y;
}

// ---- Optimizers, as torch.optim: the new parameter from the old one, the
// ---- gradient computed from the old parameters, the parameter's state
// ---- (slots x, y, z as the entry's state names them; zero at the start),
// ---- and the step's scalars k. StepScalars (lr, step_size, bias2_sqrt,
// ---- every hyperparameter by its PyTorch name, then one_minus_{name},
// ---- each 1 - value computed in float64 as PyTorch passes it) is generated from
// ---- the Rust list (src/gpu/shaders.rs, step_scalars_struct), as is
// ---- optimizer_scalars, which fills it for the run's hyperparameters.

// 1 - beta^t from ln_beta = ln(beta), which the host computes in float64.
// 1 - pow(beta, t) in float32 cancels: for beta2 = 0.999 and small t, pow's
// rounding of a value near 1 became a 1e-4 relative error in Adam's step
// (measured, tests/agreement.rs). Here: -expm1(y), y = t ln(beta), as a
// Taylor series for |y| < 0.1 (truncation below y^6 / 720 < 1.4e-9),
// 1 - exp(y) beyond (where exp(y) <= 0.905 amplifies exp's rounding at
// most 10x).
fn one_minus_power(ln_beta: f32, t: f32) -> f32 {
    let y = t * ln_beta;
    if y > -0.1 {
        return -y * (1.0 + y * (0.5 + y * (1.0 / 6.0 + y * (1.0 / 24.0 + y / 120.0))));
    }
    return 1.0 - exp(y);
}

// PyTorch's coupled weight decay g + weight_decay p, skipped at 0 (so an
// infinite parameter does not turn the gradient into NaN).
fn decayed(p: f32, g: f32, k: StepScalars) -> f32 {
    return select(g + k.weight_decay * p, g, k.weight_decay == 0.0);
}

// start.lerp_(end, w) in the form torch's lerp takes for the weight.
fn torch_lerp(start: f32, end: f32, w: f32) -> f32 {
    return select(end - (end - start) * (1.0 - w), start + w * (end - start), w < 0.5);
}

fn sgd_step(p: f32, g: f32, s: ptr<function, vec3<f32>>, k: StepScalars) -> f32 {
    return p - k.lr * decayed(p, g, k);
}

fn momentum_step(p: f32, g: f32, s: ptr<function, vec3<f32>>, k: StepScalars) -> f32 {
    (*s).x = k.momentum * (*s).x + decayed(p, g, k);
    return p - k.lr * (*s).x;
}

fn nesterov_step(p: f32, g: f32, s: ptr<function, vec3<f32>>, k: StepScalars) -> f32 {
    let d = decayed(p, g, k);
    (*s).x = k.momentum * (*s).x + d;
    return p - k.lr * (d + k.momentum * (*s).x);
}

// exp_avg.lerp_(g, 1 - beta1); exp_avg_sq * beta2 + (1 - beta2) g^2; then
// p - step_size * m / (sqrt(v) / sqrt(1 - beta2^t) + eps).
fn adam_moments(p: f32, g: f32, s: ptr<function, vec3<f32>>, k: StepScalars) -> f32 {
    (*s).x = torch_lerp((*s).x, g, k.one_minus_beta1);
    (*s).y = (*s).y * k.beta2 + k.one_minus_beta2 * (g * g);
    let denom = sqrt((*s).y) / k.bias2_sqrt + k.eps;
    return p - k.step_size * ((*s).x / denom);
}

fn adam_step(p: f32, g: f32, s: ptr<function, vec3<f32>>, k: StepScalars) -> f32 {
    return adam_moments(p, decayed(p, g, k), s, k);
}

// Decoupled decay: param.mul_(1 - lr * weight_decay), then Adam's step.
fn adamw_step(p: f32, g: f32, s: ptr<function, vec3<f32>>, k: StepScalars) -> f32 {
    return adam_moments(p * (1.0 - k.lr * k.weight_decay), g, s, k);
}

// square_avg (x) = alpha v + (1 - alpha) g^2; centered: grad_avg (z) lerps
// toward g by 1 - alpha, avg = sqrt(v - grad_avg^2), else sqrt(v); then
// g / (avg + eps), through momentum_buffer (y) when momentum > 0.
fn rmsprop_step(p: f32, g: f32, s: ptr<function, vec3<f32>>, k: StepScalars) -> f32 {
    let d = decayed(p, g, k);
    (*s).x = (*s).x * k.alpha + k.one_minus_alpha * (d * d);
    var avg = sqrt((*s).x);
    if k.centered != 0.0 {
        (*s).z = torch_lerp((*s).z, d, k.one_minus_alpha);
        avg = sqrt((*s).x - (*s).z * (*s).z);
    }
    avg = avg + k.eps;
    if k.momentum > 0.0 {
        (*s).y = (*s).y * k.momentum + d / avg;
        return p - k.lr * (*s).y;
    }
    return p - k.lr * (d / avg);
}

// ---- Helpers every kernel uses.

// ---- Learning-rate schedules (src/schedule.rs). A schedule's rate is
// affine in the network's base rate: the host computes each epoch's
// (scale, shift) pair once in float64, and a kernel rounds it to float32
// and applies it here, as the SIMD trainer does (one fused multiply-add):
// no cosine or power in float32 on the device.
fn scheduled_rate(lr: f32, scale: f32, shift: f32) -> f32 {
    return fma(lr, scale, shift);
}

// True unless x is NaN or +-inf, read from the exponent bits so that no
// fast-math assumption in a driver can fold it away.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// True for NaN only, from the bits for the same reason.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
