// The float32 building blocks of the model's vocabulary: one function per
// entry of the tables in src/vocab.rs, which name them and hold their
// float64 twins. Kernels never call these directly: the assembler binds the
// run's choices to hidden_activation, output_activation, loss_value,
// loss_delta and optimizer_step (src/gpu/shaders.rs). tests/vocabulary.rs
// checks every function here against its twin.

// ---- Activations: f(z), and f'(z) written from the output a = f(z).

// The logistic function 1 / (1 + e^-z). For very negative z, exp overflows
// to +inf and the quotient is exactly 0, the sigmoid's limit.
fn act_sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

// out * (1 - out).
fn act_sigmoid_derivative(a: f32) -> f32 {
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
fn act_tanh_derivative(a: f32) -> f32 {
    return 1.0 - a * a;
}

// max(z, 0), letting NaN through (z <= 0 is false for NaN) so divergence
// stays visible.
fn act_relu(z: f32) -> f32 {
    return select(z, 0.0, z <= 0.0);
}

// 1 where the output is positive, 0 elsewhere (0 at z = 0, as PyTorch).
fn act_relu_derivative(a: f32) -> f32 {
    return select(0.0, 1.0, a > 0.0);
}

fn act_linear(z: f32) -> f32 {
    return z;
}

fn act_linear_derivative(a: f32) -> f32 {
    return 1.0;
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
// finite for every finite z. WGSL has no log1p: below 1e-3, ln(1 + t) is
// t (1 - t/2) to within t^3/3, under float32's rounding.
fn loss_cross_entropy(z: f32, yhat: f32, y: f32) -> f32 {
    let t = exp(-abs(z));
    let softplus_tail = select(log(1.0 + t), t * (1.0 - 0.5 * t), t < 1e-3);
    return max(z, 0.0) - y * z + softplus_tail;
}

// With a sigmoid output the slope cancels: yhat - y.
fn loss_cross_entropy_delta(yhat: f32, y: f32, slope: f32) -> f32 {
    return yhat - y;
}

// ---- Optimizers: the new parameter from the old one, the gradient computed
// ---- from the old parameters, and the step size.

fn sgd_step(parameter: f32, gradient: f32, step: f32) -> f32 {
    return parameter - step * gradient;
}

// ---- Helpers every kernel uses.

// True unless x is NaN or +-inf, read from the exponent bits so that no
// fast-math assumption in a driver can fold it away.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}

// True for NaN only, from the bits for the same reason.
fn is_nan(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;
}
