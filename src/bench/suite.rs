//! Which rows a `gputrain bench` run measures: every standard workload (or
//! the ones named) on every adapter (or the one named) with each strategy
//! that applies, then on the SIMD trainer and the CPU reference; and
//! measuring them in order.

use clap::ValueEnum;

use std::sync::Arc;

use crate::backend::Engine;
use crate::bench::runner::{Row, measure};
use crate::bench::workloads::Workload;
use crate::error::Error;
use crate::gpu::{
    AdapterChoice, GpuContext, LayeredPlan, Strategy, choose_strategy, fused_supports,
    list_adapters,
};
use crate::simd::Isa;

/// Which backends get rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BackendFilter {
    /// Every adapter, the SIMD trainer and the float64 reference.
    All,
    Gpu,
    /// The float32 SIMD trainer.
    Simd,
    /// The float64 reference.
    Cpu,
}

/// Which GPU strategies get rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum KernelFilter {
    /// Every strategy that can run the workload.
    All,
    /// The one training would pick.
    Auto,
    Fused,
    Layered,
}

impl KernelFilter {
    /// The one strategy asked for, if one is.
    pub fn only(self) -> Option<Strategy> {
        match self {
            KernelFilter::All => None,
            KernelFilter::Auto => Some(Strategy::Auto),
            KernelFilter::Fused => Some(Strategy::Fused),
            KernelFilter::Layered => Some(Strategy::Layered),
        }
    }
}

/// A benchmark run's plan.
#[derive(Clone, Debug)]
pub struct Suite {
    pub workloads: Vec<Workload>,
    pub backends: BackendFilter,
    /// One adapter; `None`: every adapter wgpu finds.
    pub adapter: Option<AdapterChoice>,
    pub kernels: KernelFilter,
    /// Time budget of each row's timed run, in seconds.
    pub seconds: f64,
}

impl Suite {
    /// Measures every row, telling `log` what it is doing.
    pub fn run(&self, log: &mut dyn FnMut(&str)) -> Result<Vec<Row>, Error> {
        let contexts: Vec<Arc<GpuContext>> =
            self.open_adapters(log)?.into_iter().map(Arc::new).collect();
        let mut rows = Vec::new();
        for workload in &self.workloads {
            let initial = workload.initial()?;
            // Every row of the workload: (engine, strategy, where, the
            // strategy auto picks there).
            let mut plan: Vec<(Engine, Strategy, String, bool)> = Vec::new();
            for ctx in &contexts {
                let spec = &workload.spec;
                let auto =
                    choose_strategy(spec, workload.data.samples(), Strategy::Auto, &ctx.quirks)
                        .ok();
                for strategy in self.strategies(ctx, workload, log) {
                    let on = format!("{} ({strategy})", ctx.adapter.name);
                    let picked = auto == Some(strategy);
                    plan.push((Engine::Gpu(ctx.clone()), strategy, on, picked));
                }
            }
            if matches!(self.backends, BackendFilter::All | BackendFilter::Simd) {
                let isa = Isa::chosen()?;
                let on = format!("the SIMD trainer ({})", isa.name());
                plan.push((Engine::Simd(isa), Strategy::Auto, on, false));
            }
            if matches!(self.backends, BackendFilter::All | BackendFilter::Cpu) {
                let on = "the CPU reference".to_string();
                plan.push((Engine::Reference, Strategy::Auto, on, false));
            }
            for (engine, strategy, on, auto) in plan {
                log(&format!("{} on {on}", workload.name));
                let mut row = measure(&engine, workload, strategy, &initial, self.seconds)?;
                row.auto = auto;
                rows.push(row);
            }
        }
        Ok(rows)
    }

    fn open_adapters(&self, log: &mut dyn FnMut(&str)) -> Result<Vec<GpuContext>, Error> {
        if matches!(self.backends, BackendFilter::Cpu | BackendFilter::Simd) {
            return Ok(Vec::new());
        }
        let choices = match &self.adapter {
            Some(choice) => vec![choice.clone()],
            None => (0..list_adapters().len())
                .map(AdapterChoice::Index)
                .collect(),
        };
        // A hardware GPU that wgpu cannot reach: its software stand-in
        // is no measurement of it.
        let unreached = match &self.adapter {
            Some(_) => None,
            None => crate::gpu::hardware::unreached(list_adapters),
        };
        if choices.is_empty() || unreached.is_some() {
            let error = match unreached {
                Some(u) => Error::GpuUnreached {
                    diagnosis: u.to_string(),
                },
                None => Error::NoAdapter {
                    detail: String::new(),
                },
            };
            if self.backends == BackendFilter::Gpu {
                return Err(error);
            }
            log(&format!("note: {error}; measuring the CPU trainers only"));
            return Ok(Vec::new());
        }
        choices.iter().map(GpuContext::open).collect()
    }

    /// The strategies measured for `workload` on `ctx`: those asked for
    /// that can run it. A strategy asked for by name that cannot is noted.
    fn strategies(
        &self,
        ctx: &GpuContext,
        workload: &Workload,
        log: &mut dyn FnMut(&str),
    ) -> Vec<Strategy> {
        let (spec, samples) = (&workload.spec, workload.data.samples());
        let candidates = match self.kernels.only() {
            None => vec![Strategy::Fused, Strategy::Layered],
            Some(Strategy::Auto) => choose_strategy(spec, samples, Strategy::Auto, &ctx.quirks)
                .into_iter()
                .collect(),
            Some(s) => vec![s],
        };
        candidates
            .into_iter()
            .filter(|&s| {
                let fits = match s {
                    Strategy::Fused => fused_supports(spec, samples, &ctx.quirks),
                    _ => LayeredPlan::new(
                        spec,
                        samples,
                        &ctx.limits,
                        &ctx.quirks,
                        workload.networks,
                        None,
                    )
                    .map(|_| ()),
                };
                match fits {
                    Ok(()) => true,
                    Err(e) => {
                        if self.kernels != KernelFilter::All {
                            log(&format!("note: no {s} row for {}: {e}", workload.name));
                        }
                        false
                    }
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_filter_names_one_strategy_or_all() {
        assert_eq!(KernelFilter::All.only(), None);
        assert_eq!(KernelFilter::Layered.only(), Some(Strategy::Layered));
        assert_eq!(
            KernelFilter::from_str("auto", false),
            Ok(KernelFilter::Auto)
        );
        assert!(BackendFilter::from_str("tpu", false).is_err());
    }
}
