//! The float32 peak the bench holds the CPU rows against: cores x FMA
//! units x lanes x 2 FLOP x clock, the clock measured here (a chain of
//! dependent integer additions, one a cycle), the units and lanes from
//! the processor's vendor, family and instruction set (issue #30: the
//! wide workload's target is a share of this peak).

use serde::Serialize;

/// What the peak is made of.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Peak {
    pub cores: usize,
    /// Fused multiply-add units a core.
    pub fma_units: usize,
    /// float32 lanes an FMA unit works on at once.
    pub lanes: usize,
    /// The clock under load, measured.
    pub ghz: f64,
    /// Where the units and lanes come from.
    pub basis: &'static str,
}

impl Peak {
    /// GFLOP/s: cores x units x lanes x 2 x clock.
    pub fn gflops(&self) -> f64 {
        (self.cores * self.fma_units * self.lanes * 2) as f64 * self.ghz
    }

    /// The sentence a report prints.
    pub fn describe(&self) -> String {
        format!(
            "float32 FMA peak assumed: {} cores x {} FMA units x {} lanes x 2 FLOP x {:.2} GHz \
             (measured) = {:.0} GFLOP/s ({})",
            self.cores,
            self.fma_units,
            self.lanes,
            self.ghz,
            self.gflops(),
            self.basis
        )
    }
}

/// The peak of `cores` cores of this processor; `None` where the clock
/// cannot be measured (not x86-64) or the processor is not one the table
/// below knows.
pub fn measure(cores: usize) -> Option<Peak> {
    let (fma_units, lanes, basis) = units_and_lanes()?;
    Some(Peak {
        cores,
        fma_units,
        lanes,
        ghz: clock_ghz()?,
        basis,
    })
}

/// Physical cores among `threads` threads: Linux's /proc/cpuinfo pairs
/// of (physical id, core id), so two SMT threads of a core count once;
/// `threads` where it cannot tell.
pub fn physical_cores(threads: usize) -> usize {
    let Ok(info) = std::fs::read_to_string("/proc/cpuinfo") else {
        return threads;
    };
    let field = |line: &str, name: &str| {
        line.strip_prefix(name)
            .and_then(|rest| rest.trim_start().strip_prefix(':'))
            .map(|v| v.trim().to_string())
    };
    let mut cores = std::collections::BTreeSet::new();
    let mut package = String::new();
    for line in info.lines() {
        if let Some(v) = field(line, "physical id") {
            package = v;
        } else if let Some(v) = field(line, "core id") {
            cores.insert((package.clone(), v));
        }
    }
    match cores.len() {
        0 => threads,
        n => n.min(threads),
    }
}

/// FMA units and their float32 lanes, by vendor and family: AMD Zen 4
/// (family 0x19) runs AVX-512 on two 256-bit FMA pipes, Zen 5 (0x1A) on
/// two 512-bit ones; Intel's AVX-512 server cores have two 512-bit FMA
/// units (some Xeon Silver and Bronze parts one: the peak is then
/// overstated); AVX2 cores two 256-bit ones.
#[cfg(target_arch = "x86_64")]
fn units_and_lanes() -> Option<(usize, usize, &'static str)> {
    use std::arch::x86_64::__cpuid;
    // SAFETY: leaves 0 and 1 exist on every x86-64 processor (the
    // intrinsic is unsafe on the minimum Rust, 1.89, and safe on later
    // ones).
    #[allow(unused_unsafe)]
    let (vendor, signature) = unsafe { (__cpuid(0), __cpuid(1).eax) };
    let name: Vec<u8> = [vendor.ebx, vendor.edx, vendor.ecx]
        .iter()
        .flat_map(|r| r.to_le_bytes())
        .collect();
    let family = ((signature >> 8) & 0xf) + ((signature >> 20) & 0xff);
    let avx512 = crate::simd::Isa::Avx512.is_supported();
    let avx2 = crate::simd::Isa::Avx2.is_supported();
    match (name.as_slice(), family, avx512, avx2) {
        (b"AuthenticAMD", 0x1a, true, _) => Some((2, 16, "AMD Zen 5: two 512-bit FMA pipes")),
        (b"AuthenticAMD", 0x19, true, _) => Some((2, 8, "AMD Zen 4: two 256-bit FMA pipes")),
        (b"GenuineIntel", _, true, _) => Some((2, 16, "Intel AVX-512: two 512-bit FMA units")),
        (_, _, _, true) => Some((2, 8, "AVX2: two 256-bit FMA units")),
        _ => None,
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn units_and_lanes() -> Option<(usize, usize, &'static str)> {
    None
}

/// The clock in GHz: four dependent additions an iteration take four
/// cycles whatever the core, so iterations x 4 / seconds is the clock
/// (the loop's own counter runs beside them). The best of five runs of
/// about 20 ms each, after one to wake the core up.
#[cfg(target_arch = "x86_64")]
fn clock_ghz() -> Option<f64> {
    const ITERATIONS: u64 = 20_000_000;
    let run = || {
        let started = std::time::Instant::now();
        let mut x: u64 = 0;
        for _ in 0..ITERATIONS {
            // SAFETY: register arithmetic only.
            unsafe {
                std::arch::asm!(
                    "add {x}, 1",
                    "add {x}, 1",
                    "add {x}, 1",
                    "add {x}, 1",
                    x = inout(reg) x,
                    options(nomem, nostack, pure),
                );
            }
        }
        std::hint::black_box(x);
        4.0 * ITERATIONS as f64 / started.elapsed().as_secs_f64() / 1e9
    };
    run();
    let best = (0..5).map(|_| run()).fold(0.0, f64::max);
    best.is_finite().then_some(best)
}

#[cfg(not(target_arch = "x86_64"))]
fn clock_ghz() -> Option<f64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cores_are_at_most_the_threads() {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let cores = physical_cores(threads);
        assert!((1..=threads).contains(&cores), "{cores} of {threads}");
        assert_eq!(physical_cores(1), 1);
    }

    #[test]
    fn the_peak_multiplies_its_parts() {
        let zen4 = Peak {
            cores: 2,
            fma_units: 2,
            lanes: 8,
            ghz: 3.6,
            basis: "AMD Zen 4: two 256-bit FMA pipes",
        };
        assert!((zen4.gflops() - 230.4).abs() < 1e-9);
        assert!(
            zen4.describe().contains("= 230 GFLOP/s"),
            "{}",
            zen4.describe()
        );
    }

    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_clock_is_a_processor_clock() {
        // Any x86-64 core of the last twenty years: 0.5 to 7 GHz, even
        // on a loaded machine (a run of 20 ms taken twice as long reads
        // half the clock; the best of five).
        let ghz = clock_ghz().unwrap();
        assert!((0.5..7.0).contains(&ghz), "{ghz} GHz");
    }
}
