//! Central finite differences confirm the reference gradient for every bias
//! mode, loss and reduction over several topologies; sse is exactly twice
//! half-sse and mean is sum / S.

use crate::common;

use gputrain::cpu;
use gputrain::init::{Init, network_parameters};
use gputrain::model::{BiasMode, Loss, Reduction};

const TOPOLOGIES: [&[usize]; 4] = [&[2, 2, 2], &[3, 4, 2], &[2, 3, 3, 1], &[4, 1, 3]];
const REL_TOL: f64 = 1e-6;

#[test]
fn gradient_matches_central_differences() {
    let mut checked = 0;
    for (t, widths) in TOPOLOGIES.iter().enumerate() {
        let data = common::synthetic_dataset(widths[0], widths[widths.len() - 1], 5, t as u64);
        for bias in BiasMode::ALL {
            for loss in Loss::ALL {
                for reduction in Reduction::ALL {
                    let spec = common::spec(widths, bias, loss, reduction);
                    if spec.validate().is_err() {
                        continue; // softmax needs 2 outputs
                    }
                    let data = common::data_for(&spec, &data);
                    let layout = spec.layout();
                    let params = network_parameters(&spec, Init::Uniform(1.5), 7, t as u64);
                    let mut grad = vec![0.0; layout.len];
                    cpu::loss_and_gradient(&spec, &params, &data, &mut grad);
                    for i in 0..layout.len {
                        let h = 1e-6;
                        let (mut up, mut down) = (params.clone(), params.clone());
                        up[i] += h;
                        down[i] -= h;
                        let numeric = (cpu::loss(&spec, &up, &data)
                            - cpu::loss(&spec, &down, &data))
                            / (2.0 * h);
                        let scale = grad[i].abs().max(numeric.abs()).max(1e-3);
                        let rel = (grad[i] - numeric).abs() / scale;
                        assert!(
                            rel < REL_TOL,
                            "{} {bias} {loss} {reduction}: {} analytic {} numeric {numeric} rel err {rel:e}",
                            spec.topology,
                            layout.describe(i),
                            grad[i]
                        );
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked > 300, "checked only {checked} gradients");
}

#[test]
fn sse_is_twice_half_sse_and_mean_is_sum_over_samples() {
    let widths = [3, 4, 2];
    let data = common::synthetic_dataset(3, 2, 6, 99);
    for bias in BiasMode::ALL {
        let half = common::spec(&widths, bias, Loss::HalfSse, Reduction::Sum);
        let params = network_parameters(&half, Init::Xavier, 3, 5);
        let grad = |loss, reduction| {
            let spec = common::spec(&widths, bias, loss, reduction);
            let mut g = vec![0.0; spec.layout().len];
            let l = cpu::loss_and_gradient(&spec, &params, &data, &mut g);
            (l, g)
        };
        let (l_half, g_half) = grad(Loss::HalfSse, Reduction::Sum);
        let (l_sse, g_sse) = grad(Loss::Sse, Reduction::Sum);
        let (l_mean, g_mean) = grad(Loss::HalfSse, Reduction::Mean);
        assert_eq!(l_sse, 2.0 * l_half);
        for i in 0..g_half.len() {
            assert_eq!(g_sse[i], 2.0 * g_half[i], "{bias}: parameter {i}");
            let expected = g_half[i] / 6.0;
            assert!(
                (g_mean[i] - expected).abs() <= 1e-15 * expected.abs().max(1e-300),
                "{bias}: parameter {i}: mean {} vs sum/S {expected}",
                g_mean[i]
            );
        }
        assert!((l_mean - l_half / 6.0).abs() <= 1e-15 * l_half);
    }
}
