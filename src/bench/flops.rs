//! The arithmetic the benchmarks count, so GFLOP/s means the same thing for
//! every strategy and backend: the matrix products of one full-batch epoch
//! plus the SGD step, two FLOPs per multiply-add.

use crate::model::ModelSpec;

/// The formula [`flops_per_network_epoch`] evaluates, for reports.
pub const FLOP_FORMULA: &str = "FLOP per network-epoch = 2 S (2 sum_l n_l n_{l+1} + \
     sum_{l>=1} n_l n_{l+1}) + 2 P B (S samples, widths n_l, P parameters, B updates per \
     epoch): forward and weight-gradient products over every layer, delta products for all \
     but the first, and an SGD step per update (counted so for every optimizer); \
     activations, derivatives, biases and the loss are not counted";

/// FLOPs of one network-epoch of `spec` on `samples` samples: forward
/// `2 S sum_l n_l n_{l+1}`, weight gradients the same, backward deltas
/// `2 S sum_{l>=1} n_l n_{l+1}` (none for the inputs), and `2 P` for each
/// of the epoch's updates `p -= lr * g` (one per minibatch).
pub fn flops_per_network_epoch(spec: &ModelSpec, samples: usize) -> f64 {
    let w = spec.topology.widths();
    let products: Vec<f64> = w.windows(2).map(|p| (p[0] * p[1]) as f64).collect();
    let all: f64 = products.iter().sum();
    let matrix = 2.0 * samples as f64 * (2.0 * all + (all - products[0]));
    matrix + 2.0 * (spec.layout().len * spec.batches(samples)) as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::BiasMode;

    fn spec(widths: &[usize], bias: BiasMode) -> ModelSpec {
        ModelSpec::layers(widths, bias)
    }

    #[test]
    fn flop_count_follows_the_formula() {
        // 16-64-16 on 256 samples: products 1024 and 1024; forward and
        // gradients 2 * 2048 each, backward 2 * 1024, all times 256; 2128
        // parameters with per-neuron biases.
        let f = flops_per_network_epoch(&spec(&[16, 64, 16], BiasMode::PerNeuron), 256);
        assert_eq!(f, 2.0 * 256.0 * (2.0 * 2048.0 + 1024.0) + 2.0 * 2128.0);
        // Seed 003's 2-2-2 with shared biases on its one sample: products
        // 4 and 4, 10 parameters: 2 (16 + 4) + 20 = 60.
        let t = flops_per_network_epoch(&spec(&[2, 2, 2], BiasMode::Shared), 1);
        assert_eq!(t, 60.0);
        // No hidden layer: no delta products at all.
        let single = flops_per_network_epoch(&spec(&[3, 2], BiasMode::None), 5);
        assert_eq!(single, 2.0 * 5.0 * 12.0 + 12.0);
        // Minibatches of 2 over the 5 samples: three updates an epoch.
        let mut batched = spec(&[3, 2], BiasMode::None);
        batched.batching = Some(crate::batches::Batching {
            size: 2,
            shuffle: true,
            seed: 0,
        });
        let f = flops_per_network_epoch(&batched, 5);
        assert_eq!(f, 2.0 * 5.0 * 12.0 + 3.0 * 12.0);
    }
}
