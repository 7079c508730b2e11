//! Minibatches: how an epoch splits the samples into batches, and the
//! order it visits them in, defined once. The order is a pseudo-random
//! permutation computed from (seed, epoch, position) alone, so every
//! network, backend, strategy and shard sees the same one, and a GPU
//! kernel computes it in place (its WGSL twin is `shaders/shuffle.wgsl`;
//! tests/shuffle.rs checks the two agree bit for bit) with no host round
//! trip per epoch.
//!
//! The permutation is a 4-round Feistel network over the smallest
//! power-of-4 domain holding every sample, keyed per epoch by a 32-bit
//! integer hash of the seed and the epoch; positions that map outside the
//! samples walk the cycle on until they land inside (cycle walking), which
//! keeps it a permutation of the samples. Over one epoch the walks take at
//! most 4 x samples steps in all (each out-of-range value is visited at
//! most once, and the domain is under 4 x samples).

/// How an epoch visits the samples.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    /// Samples per update; the last batch of an epoch keeps what is left
    /// (PyTorch's drop_last=False).
    pub size: usize,
    /// Shuffle the order every epoch (else: the file's order).
    pub shuffle: bool,
    /// The seed of the order (the run's `--seed`).
    pub seed: u64,
}

impl Batching {
    /// Batches per epoch over `samples` samples.
    pub fn batches(&self, samples: usize) -> usize {
        samples.div_ceil(self.size.max(1))
    }

    /// The samples of batch `b` of `epoch`, in visiting order.
    pub fn batch(&self, samples: usize, epoch: u64, b: usize) -> impl Iterator<Item = usize> {
        let order = self
            .shuffle
            .then(|| EpochOrder::new(samples, self.seed, epoch));
        let first = b * self.size;
        let last = (first + self.size).min(samples);
        (first..last).map(move |position| match &order {
            Some(order) => order.sample(position as u32) as usize,
            None => position,
        })
    }
}

/// lowbias32 (Chris Wellons' integer hash search): a 32-bit mix with good
/// avalanche, cheap on a GPU.
pub fn hash32(mut x: u32) -> u32 {
    x ^= x >> 16;
    x = x.wrapping_mul(0x7feb_352d);
    x ^= x >> 15;
    x = x.wrapping_mul(0x846c_a68b);
    x ^= x >> 16;
    x
}

/// Half the bit width of the Feistel domain for `samples` samples: the
/// domain is `4^half_bits >= samples`, at least 4.
pub fn half_bits(samples: usize) -> u32 {
    let mut half = 1;
    while (1u64 << (2 * half)) < samples as u64 {
        half += 1;
    }
    half
}

/// The two words of the seed, as the kernels take them.
pub fn seed_words(seed: u64) -> (u32, u32) {
    (seed as u32, (seed >> 32) as u32)
}

/// The four round keys of `epoch`.
pub fn epoch_keys(seed: u64, epoch: u32) -> [u32; 4] {
    let (lo, hi) = seed_words(seed);
    let base = hash32(hash32(hash32(epoch) ^ hi) ^ lo);
    std::array::from_fn(|r| hash32(base ^ hash32(r as u32 + 0x9e37_79b9)))
}

/// One epoch's visiting order over `samples` samples.
#[derive(Clone, Copy, Debug)]
pub struct EpochOrder {
    samples: u32,
    half_bits: u32,
    keys: [u32; 4],
}

impl EpochOrder {
    pub fn new(samples: usize, seed: u64, epoch: u64) -> Self {
        Self {
            samples: samples as u32,
            half_bits: half_bits(samples),
            keys: epoch_keys(seed, epoch as u32),
        }
    }

    /// The sample visited at `position` (0..samples).
    pub fn sample(&self, position: u32) -> u32 {
        self.walk(position).0
    }

    /// One pass of the 4-round Feistel network over the whole domain.
    fn feistel(&self, x: u32) -> u32 {
        let mask = (1u32 << self.half_bits) - 1;
        let (mut left, mut right) = (x >> self.half_bits, x & mask);
        for key in self.keys {
            let mixed = left ^ (hash32(right ^ key) & mask);
            left = right;
            right = mixed;
        }
        (left << self.half_bits) | right
    }

    /// The sample at `position` and the Feistel passes its cycle walk took.
    fn walk(&self, position: u32) -> (u32, usize) {
        let mut x = position;
        let mut passes = 0;
        loop {
            x = self.feistel(x);
            passes += 1;
            if x < self.samples {
                return (x, passes);
            }
        }
    }
}

/// The WGSL constants the shuffle twin reads for a run over `samples`
/// samples with `batching`.
pub fn wgsl_constants(samples: usize, batching: Option<&Batching>) -> String {
    let (size, shuffle, seed) = match batching {
        Some(b) => (b.size.min(samples), b.shuffle, b.seed),
        None => (samples, false, 0),
    };
    let (lo, hi) = seed_words(seed);
    format!(
        "// Minibatches, from src/batches.rs.\n\
         const BATCHED: bool = {};\n\
         const DATA_SAMPLES: u32 = {samples}u;\n\
         const BATCH_SIZE: u32 = {size}u;\n\
         const BATCHES: u32 = {}u;\n\
         const SHUFFLE: bool = {shuffle};\n\
         const SHUFFLE_HALF_BITS: u32 = {}u;\n\
         const SHUFFLE_SEED_LO: u32 = {lo}u;\n\
         const SHUFFLE_SEED_HI: u32 = {hi}u;\n",
        batching.is_some(),
        samples.div_ceil(size.max(1)),
        half_bits(samples),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_epoch_order_is_a_permutation() {
        for samples in [1, 2, 3, 4, 5, 17, 64, 100, 1_024, 1_000] {
            for epoch in [0, 1, 7] {
                let order = EpochOrder::new(samples, 42, epoch);
                let mut seen = vec![false; samples];
                for position in 0..samples as u32 {
                    let s = order.sample(position) as usize;
                    assert!(!seen[s], "{samples} samples, epoch {epoch}: {s} twice");
                    seen[s] = true;
                }
            }
        }
    }

    #[test]
    fn orders_change_with_the_epoch_and_the_seed_only() {
        let order = |seed, epoch| -> Vec<u32> {
            let o = EpochOrder::new(1_000, seed, epoch);
            (0..1_000).map(|p| o.sample(p)).collect()
        };
        assert_eq!(order(3, 5), order(3, 5));
        assert_ne!(order(3, 5), order(3, 6));
        assert_ne!(order(3, 5), order(4, 5));
        assert_ne!(order(3, 5), (0..1_000).collect::<Vec<u32>>());
        // Seeds differing only in their high word differ too.
        assert_ne!(order(3, 5), order(3 | (1 << 40), 5));
    }

    #[test]
    fn batches_cover_every_sample_once_with_a_short_last_batch() {
        let batching = Batching {
            size: 4,
            shuffle: true,
            seed: 9,
        };
        assert_eq!(batching.batches(10), 3);
        let sizes: Vec<usize> = (0..3).map(|b| batching.batch(10, 2, b).count()).collect();
        assert_eq!(sizes, [4, 4, 2]);
        let mut all: Vec<usize> = (0..3).flat_map(|b| batching.batch(10, 2, b)).collect();
        all.sort_unstable();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        let in_order = Batching {
            shuffle: false,
            ..batching
        };
        assert_eq!(in_order.batch(10, 2, 2).collect::<Vec<_>>(), [8, 9]);
    }

    #[test]
    fn the_walks_stay_within_four_times_the_samples() {
        for samples in [5, 17, 65, 1_000, 1_025] {
            let order = EpochOrder::new(samples, 1, 0);
            let steps: usize = (0..samples as u32).map(|p| order.walk(p).1).sum();
            assert!(steps <= 4 * samples, "{samples}: {steps} steps");
        }
    }
}
