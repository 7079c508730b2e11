//! The instruction sets a group's loop is compiled for, chosen at run
//! time: [`kernel::train_group`] is written once and inlined into one
//! `#[target_feature]` entry point per instruction set, so the lane loops
//! of [`super::lanes`] become that set's vector instructions.

use super::kernel::{self, Epochs, Group, GroupOutcome, Plan};

/// An instruction set for the lane loops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Isa {
    /// x86-64 with AVX-512 (F, VL, DQ) and FMA: one 16-lane register per
    /// [`super::lanes::Lanes`].
    Avx512,
    /// x86-64 with AVX2 and FMA: two 8-lane registers per group value.
    Avx2,
    /// Whatever the build's baseline target gives: NEON with fused
    /// multiply-add on aarch64; on an x86-64 without FMA, SSE2 with
    /// software fused multiply-adds (correct, and slow).
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

    /// Trains one group with the loop compiled for this instruction set.
    /// An instruction set the processor lacks falls back to the baseline
    /// (never executes instructions it does not have).
    pub(super) fn train_group(
        self,
        plan: &Plan,
        group: &mut Group,
        epochs: &Epochs,
    ) -> GroupOutcome {
        match self {
            // SAFETY: is_supported checked the processor has every feature
            // the entry point is compiled with.
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 if self.is_supported() => unsafe { avx512(plan, group, epochs) },
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 if self.is_supported() => unsafe { avx2(plan, group, epochs) },
            _ => kernel::train_group(plan, group, epochs),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f,avx512vl,avx512dq,avx2,fma")]
unsafe fn avx512(plan: &Plan, group: &mut Group, epochs: &Epochs) -> GroupOutcome {
    kernel::train_group(plan, group, epochs)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn avx2(plan: &Plan, group: &mut Group, epochs: &Epochs) -> GroupOutcome {
    kernel::train_group(plan, group, epochs)
}
