//! The instruction sets a group's loop is compiled for, chosen at run
//! time: [`kernel::train_group`] is written once and inlined into one
//! `#[target_feature]` entry point per instruction set, so the lane loops
//! of [`super::lanes`] become that set's vector instructions.

use super::kernel::{self, Epochs, Group, GroupOutcome, Plan};
use super::lanes::{AVX512_LANES, NARROW_LANES, SMALL_LANES};

/// An instruction set for the lane loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX-512 (F, VL, DQ) and FMA: groups of
    /// [`AVX512_LANES`] (of [`NARROW_LANES`] for populations too small
    /// to give every thread one), 16 lanes per register.
    Avx512,
    /// x86-64 with AVX2 and FMA: groups of [`NARROW_LANES`], 8 lanes per
    /// register.
    Avx2,
    /// Whatever the build's baseline target gives, in groups of
    /// [`NARROW_LANES`]: NEON with fused multiply-add on aarch64; on an
    /// x86-64 without FMA, SSE2 with software fused multiply-adds
    /// (correct, and slow).
    Baseline,
}

/// The environment variable that picks an instruction set by name (to
/// compare them; the default is the widest the processor has).
pub const ISA_VARIABLE: &str = "GPUTRAIN_SIMD_ISA";

impl Isa {
    /// The widest instruction set this processor has.
    pub fn detect() -> Isa {
        Self::available()[0]
    }

    /// The instruction set [`ISA_VARIABLE`] names, else the widest this
    /// processor has. A name that is not one, or an instruction set the
    /// processor lacks, is an error that lists the ones it has.
    pub fn chosen() -> Result<Isa, crate::Error> {
        let Ok(name) = std::env::var(ISA_VARIABLE) else {
            return Ok(Self::detect());
        };
        let here: Vec<&str> = Self::available().iter().map(|i| i.name()).collect();
        let found = [Isa::Avx512, Isa::Avx2, Isa::Baseline]
            .into_iter()
            .find(|isa| isa.name() == name);
        match found {
            Some(isa) if isa.is_supported() => Ok(isa),
            _ => Err(crate::Error::Config(format!(
                "{ISA_VARIABLE}={name}: this processor runs {}",
                here.join(", ")
            ))),
        }
    }

    /// Every instruction set this processor runs, widest first.
    pub fn available() -> Vec<Isa> {
        [Isa::Avx512, Isa::Avx2, Isa::Baseline]
            .into_iter()
            .filter(|isa| isa.is_supported())
            .collect()
    }

    /// Whether this processor has the instruction set.
    pub fn is_supported(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                std::arch::is_x86_feature_detected!("avx512f")
                    && std::arch::is_x86_feature_detected!("avx512vl")
                    && std::arch::is_x86_feature_detected!("avx512dq")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            Isa::Baseline => true,
            #[allow(unreachable_patterns)]
            _ => false,
        }
    }

    /// The name reports give it.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Avx512 => "avx512",
            Isa::Avx2 => "avx2",
            Isa::Baseline if cfg!(target_arch = "aarch64") => "neon",
            Isa::Baseline => "baseline",
        }
    }

    /// Networks per wide group: [`AVX512_LANES`], else [`NARROW_LANES`]
    /// (small populations take narrower groups, large networks
    /// [`SMALL_LANES`]: [`super::lanes::group_width`]).
    pub fn lanes(self) -> usize {
        match self {
            Isa::Avx512 => AVX512_LANES,
            Isa::Avx2 | Isa::Baseline => NARROW_LANES,
        }
    }

    /// Trains one group of `L` networks with the loop compiled for this
    /// instruction set. An instruction set the processor lacks falls back
    /// to the baseline (never executes instructions it does not have).
    pub(super) fn train_group<const L: usize>(
        self,
        plan: &Plan,
        group: &mut Group<L>,
        epochs: &Epochs,
    ) -> GroupOutcome<L> {
        // Each instruction set is compiled for its own group width only
        // (the width tests are constants, so the other pairs are never
        // built).
        #[cfg(target_arch = "x86_64")]
        if (L == AVX512_LANES || L == NARROW_LANES || L == SMALL_LANES)
            && self == Isa::Avx512
            && self.is_supported()
        {
            // SAFETY: is_supported checked the processor has every
            // feature the entry point is compiled with.
            return unsafe { avx512(plan, group, epochs) };
        }
        #[cfg(target_arch = "x86_64")]
        if (L == NARROW_LANES || L == SMALL_LANES) && self == Isa::Avx2 && self.is_supported() {
            // SAFETY: as above.
            return unsafe { avx2(plan, group, epochs) };
        }
        // 128-bit vectors (SSE2, NEON).
        kernel::train_group::<L, 4>(plan, group, epochs)
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
unsafe fn avx512<const L: usize>(
    plan: &Plan,
    group: &mut Group<L>,
    epochs: &Epochs,
) -> GroupOutcome<L> {
    kernel::train_group::<L, 16>(plan, group, epochs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2<const L: usize>(
    plan: &Plan,
    group: &mut Group<L>,
    epochs: &Epochs,
) -> GroupOutcome<L> {
    kernel::train_group::<L, 8>(plan, group, epochs)
}
