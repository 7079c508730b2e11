// Building blocks shared by every gputrain kernel. Their float64 twins live
// in src/cpu.rs under the same names.

// The logistic function 1 / (1 + e^-z). For very negative z, exp overflows
// to +inf and the quotient is exactly 0, the sigmoid's limit.
fn sigmoid(z: f32) -> f32 {
    return 1.0 / (1.0 + exp(-z));
}

// d sigmoid / d net from the sigmoid's output: out * (1 - out).
fn sigmoid_derivative_from_output(out: f32) -> f32 {
    return out * (1.0 - out);
}

// Gradient-descent update: the new parameter from the old one and the
// gradient computed from the old parameters.
fn sgd_step(parameter: f32, gradient: f32, step: f32) -> f32 {
    return parameter - step * gradient;
}

// True unless x is NaN or +-inf, read from the exponent bits so that no
// fast-math assumption in a driver can fold it away.
fn is_finite(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
}
