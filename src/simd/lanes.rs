//! A group of networks side by side: [`Lanes`] holds one float32 value of
//! each of `L` networks, and every operation works lane by lane. The
//! operations are plain Rust loops over the lanes with no branches between
//! lanes; compiled inside the trainer's `#[target_feature]` entry points
//! (AVX-512, AVX2 + FMA; NEON on aarch64) LLVM turns each into one or two
//! vector instructions per 16 lanes. No intrinsics: the same source is the
//! portable fallback, and since every lane operation is IEEE-exact
//! (add, multiply, fused multiply-add, divide, square root, compare,
//! select, bit casts) every instruction set computes the same bits.
//!
//! The transcendental functions are branch-free scalar functions of
//! [`crate::lane_math`] ([`exp`], [`ln_1p_unit`], [`tanh`], ...) that the
//! lane loops inline, re-exported here.

#![expect(
    clippy::needless_range_loop,
    reason = "lane loops index several arrays in step, the form LLVM vectorizes"
)]

use std::ops::{Add, Div, Mul, Neg, Sub};

pub use crate::lane_math::*;

/// Networks per group on AVX-512: 8 registers per value. Measured on the
/// 2-core development machine (AVX-512), the seeds' network trained at
/// 3.1e8 network-epochs/s with 16 lanes, 5.5e8 with 32, 7.8e8 with 64 and
/// 8.9e8 with 128: a wider group spreads each epoch's bookkeeping (loop
/// control, indexing, dispatch on the activation) over more networks.
pub const AVX512_LANES: usize = 128;
/// Networks per group on AVX2 and the baseline: 8 AVX2 registers per
/// value, half the register file. On the same machine the AVX2 path ran
/// at 4.3e8 with 32 and 64 lanes and 3.7e8 with 128 (16 registers per
/// value: every temporary spilled). Also the AVX-512 group of a
/// population too small to give every thread a 128-lane group
/// ([`group_width`]).
pub const NARROW_LANES: usize = 64;
/// Networks per group for a population of at most this many (one group
/// whatever the width), or a network so large that a wider group's
/// scratch space outgrows [`WIDE_GROUP_BYTES`]. One AVX-512 register,
/// two AVX2 ones.
///
/// Not the width for every small population: at 16 and 32 lanes LLVM
/// vectorizes a loop over a row of values across the row (scatters and
/// gathers of one lane each) instead of along the lanes. Measured on an
/// AMD EPYC (Zen 4, AVX-512), 2 threads, 1,000 networks: the wide
/// workload (8-32-8, 64 samples) trained at 3.3e4 network-epochs/s in
/// 16-lane groups, 1.3e4 in 32-lane ones and 2.9e5 in 64-lane ones; the
/// headline network at 1.8e8, 2.6e8 and 2.9e8.
pub const SMALL_LANES: usize = 16;
/// A wide group's scratch space (gradients, activations, deltas) above
/// which groups are [`SMALL_LANES`] wide: beyond the L2 caches already,
/// and a 2-4096-4096-1 network would take 8.0 GiB a thread at 128 lanes.
pub const WIDE_GROUP_BYTES: usize = 64 << 20;

/// Samples the blocked pass (`kernel/block.rs`) carries through each
/// layer together.
pub const BLOCK_SAMPLES: usize = 4;

/// Float32 values a group keeps per lane as scratch space: the gradient
/// of every parameter, every layer's activations, and the weight layers'
/// net inputs and deltas, once for the sample-by-sample pass and
/// [`BLOCK_SAMPLES`] times (with one row of the widest layer twice) for
/// the blocked one.
pub fn scratch_values(spec: &crate::model::ModelSpec) -> usize {
    let widths = spec.topology.widths();
    let neurons: usize = widths[1..].iter().sum();
    let widest = widths[1..].iter().copied().max().unwrap_or(0);
    let per_sample = widths.iter().sum::<usize>() + 2 * neurons;
    spec.layout().len + (1 + BLOCK_SAMPLES) * per_sample + 2 * widest
}

/// The group width for `networks` networks of `spec` on `threads`
/// threads, when the instruction set's widest is `wide`: `wide` when
/// every thread gets a group of it, else [`NARROW_LANES`] (the AVX-512
/// machine's narrower group), and [`SMALL_LANES`] for a population of at
/// most that many or a network too large for wide groups.
pub fn group_width(
    wide: usize,
    networks: usize,
    threads: usize,
    spec: &crate::model::ModelSpec,
) -> usize {
    let too_few = networks < wide * threads.max(1);
    let too_large = wide * 4 * scratch_values(spec) > WIDE_GROUP_BYTES;
    if too_large || networks <= SMALL_LANES {
        SMALL_LANES
    } else if too_few {
        NARROW_LANES.min(wide)
    } else {
        wide
    }
}

/// One float32 value per network of a group of `L`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[repr(C, align(64))]
pub struct Lanes<const L: usize>(pub [f32; L]);

impl<const L: usize> Default for Lanes<L> {
    fn default() -> Self {
        Self::ZERO
    }
}

impl<const L: usize> Lanes<L> {
    pub const ZERO: Lanes<L> = Lanes([0.0; L]);

    #[inline(always)]
    pub fn splat(x: f32) -> Self {
        Self([x; L])
    }

    /// `f` applied to every lane.
    #[inline(always)]
    pub fn map(self, f: impl Fn(f32) -> f32) -> Self {
        let mut out = [0.0; L];
        for i in 0..L {
            out[i] = f(self.0[i]);
        }
        Self(out)
    }

    /// `f` applied lane by lane to `self` and `other`.
    #[inline(always)]
    pub fn zip(self, other: Self, f: impl Fn(f32, f32) -> f32) -> Self {
        let mut out = [0.0; L];
        for i in 0..L {
            out[i] = f(self.0[i], other.0[i]);
        }
        Self(out)
    }

    /// `f` applied lane by lane to `self`, `b` and `c`.
    #[inline(always)]
    pub fn zip3(self, b: Self, c: Self, f: impl Fn(f32, f32, f32) -> f32) -> Self {
        let mut out = [0.0; L];
        for i in 0..L {
            out[i] = f(self.0[i], b.0[i], c.0[i]);
        }
        Self(out)
    }

    /// `self * a + b`, rounded once.
    #[inline(always)]
    pub fn mul_add(self, a: Self, b: Self) -> Self {
        self.zip3(a, b, f32::mul_add)
    }

    /// Lanes where `keep` is true take `new`, the others keep `self`.
    #[inline(always)]
    pub fn keep_where(self, keep: &[bool; L], new: Self) -> Self {
        let mut out = self.0;
        for i in 0..L {
            if keep[i] {
                out[i] = new.0[i];
            }
        }
        Self(out)
    }

    /// Whether each lane is finite (neither NaN nor infinite), from the
    /// exponent bits.
    #[inline(always)]
    pub fn finite(self) -> [bool; L] {
        let mut out = [false; L];
        for i in 0..L {
            out[i] = self.0[i].to_bits() & 0x7f80_0000 != 0x7f80_0000;
        }
        out
    }
}

macro_rules! lane_operator {
    ($trait:ident, $method:ident, $op:tt) => {
        impl<const L: usize> $trait for Lanes<L> {
            type Output = Lanes<L>;
            #[inline(always)]
            fn $method(self, other: Lanes<L>) -> Lanes<L> {
                self.zip(other, |a, b| a $op b)
            }
        }
    };
}
lane_operator!(Add, add, +);
lane_operator!(Sub, sub, -);
lane_operator!(Mul, mul, *);
lane_operator!(Div, div, /);

impl<const L: usize> Neg for Lanes<L> {
    type Output = Lanes<L>;
    #[inline(always)]
    fn neg(self) -> Lanes<L> {
        self.map(|a| -a)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_are_as_wide_as_the_population_and_the_network_allow() {
        use crate::model::{ModelSpec, Topology};
        let seeds = ModelSpec::default();
        // Every one of 2 threads gets a 128-lane group.
        assert_eq!(group_width(AVX512_LANES, 256, 2, &seeds), AVX512_LANES);
        // Too few for that: 64 lanes, not 16 (whose row loops LLVM
        // vectorizes across the row; see SMALL_LANES).
        assert_eq!(group_width(AVX512_LANES, 255, 2, &seeds), NARROW_LANES);
        assert_eq!(group_width(AVX512_LANES, 17, 2, &seeds), NARROW_LANES);
        assert_eq!(group_width(NARROW_LANES, 100, 2, &seeds), NARROW_LANES);
        // One group whatever its width.
        assert_eq!(group_width(AVX512_LANES, 16, 2, &seeds), SMALL_LANES);
        // A network whose wide group outgrows WIDE_GROUP_BYTES.
        let large = ModelSpec {
            topology: Topology::new(vec![2, 4096, 4096, 1]).unwrap(),
            ..ModelSpec::default()
        };
        assert_eq!(group_width(AVX512_LANES, 100_000, 2, &large), SMALL_LANES);
    }

    #[test]
    fn lane_operations_work_lane_by_lane() {
        let a = Lanes::<16>(std::array::from_fn(|i| i as f32));
        let b = Lanes::splat(2.0);
        assert_eq!((a * b + b).0[5], 12.0);
        assert_eq!(a.mul_add(b, b).0[7], 16.0);
        let mut keep = [false; 16];
        keep[3] = true;
        let kept = a.keep_where(&keep, b);
        assert_eq!((kept.0[3], kept.0[4]), (2.0, 4.0));
        let mut c = a;
        c.0[2] = f32::NAN;
        c.0[9] = f32::NEG_INFINITY;
        let finite = c.finite();
        assert!(finite[0] && !finite[2] && !finite[9] && finite[15]);
    }
}
