//! Host memory: what a run needs, what the machine has, and the refusal,
//! before any work, of a run that cannot fit.
//!
//! A run's memory does not grow with `--networks` beyond the summary's few
//! bytes per network ([`tally_bytes_per_network`]): the networks go through
//! in blocks ([`crate::run::HOST_BLOCK_BYTES`]) and the GPU takes each block
//! in chunks that fit the adapter's buffer limits, so the device never
//! limits how many networks a run may have, only how fast it goes.

use crate::backend::cpu_threads;
use crate::data::Dataset;
use crate::error::Error;
use crate::report::tally_bytes_per_network;
use crate::run::{
    BackendChoice, RunConfig, block_bytes_per_network, block_networks, resample_bytes_per_network,
};
use crate::setting::settings::{NETWORKS, SEED, THREADS, VERIFY};
use crate::simd::lanes::{AVX512_LANES, group_width, scratch_values};
use crate::sweep::{Sweep, distinct_data};

/// The program itself: code, the wgpu instance and device, pipelines,
/// buffers in flight. Measured (`/usr/bin/time`, peak resident): a
/// 4-network 2-2-2 run takes 77 MiB on lavapipe (its driver included) and
/// 4.3 MiB on the CPU backend; 96 MiB leaves a quarter more.
pub const PROGRAM_BYTES: u64 = 96 << 20;

/// Host memory a run needs, in parts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostNeed {
    /// What the summary keeps per network, for every network.
    pub summary: u64,
    /// One block of networks in flight (and the weights file's copy).
    pub block: u64,
    /// The networks `--verify` keeps (start and end).
    pub verify: u64,
    /// The data set and the program.
    pub fixed: u64,
    /// The SIMD trainer's scratch space ([`simd_workspace_bytes`]).
    pub workspace: u64,
    /// The outputs kept in memory rather than written (the Python
    /// package's: [`kept_bytes_per_network`] for every network).
    pub kept: u64,
}

/// What a run that keeps its outputs in memory holds per network: the
/// results table's columns (fifteen of 8 bytes, and a label per grid axis
/// beyond the rate), the weights file's bytes (float64 twins where the
/// reference may train) and the learning curves (float32 per point, twice
/// with held-out data). An upper bound: a file a keyword names is not
/// kept.
pub fn kept_bytes_per_network(config: &RunConfig, axes: usize) -> u64 {
    let precision = match config.backend {
        BackendChoice::Cpu => crate::weights::Precision::F64,
        _ => crate::weights::Precision::F32,
    };
    let table = 15 * 8 + 32 * axes as u64;
    let weights =
        crate::weights::file_bytes_per_network(&config.spec, precision, config.snapshots.len());
    let curves = config.history_plan().map_or(0, |plan| {
        4 * plan.points() as u64 * (1 + u64::from(plan.eval))
    });
    table + weights + curves
}

/// The SIMD trainer's scratch space when the run may use it (`simd`, or
/// `auto`, which does where there is no hardware GPU): every thread's
/// group in flight holds its gradients, activations and deltas in float32
/// ([`scratch_values`] per lane) for the widest group it may use. A few
/// kilobytes for small networks; for a 2-4096-4096-1 network on 2
/// threads, in groups of 16, 2.0 GiB.
pub fn simd_workspace_bytes(config: &RunConfig) -> u64 {
    if !matches!(config.backend, BackendChoice::Auto | BackendChoice::Simd) {
        return 0;
    }
    let threads = cpu_threads(config.threads).0;
    let width = group_width(AVX512_LANES, config.networks, threads, &config.spec);
    (threads * width * 4 * scratch_values(&config.spec)) as u64
}

impl HostNeed {
    pub fn of(config: &RunConfig, verify: usize) -> Self {
        let p = config.spec.layout().len as u64;
        let per_network =
            block_bytes_per_network(&config.spec) + resample_bytes_per_network(config);
        let block = block_networks(config) as u64 * per_network;
        let data = dataset_bytes(&config.data) + config.eval.as_deref().map_or(0, dataset_bytes);
        Self {
            summary: (config.networks as u64).saturating_mul(tally_bytes_per_network(config)),
            block,
            verify: verify.min(config.networks) as u64 * (2 * 8 * p + 64),
            fixed: PROGRAM_BYTES + data,
            workspace: simd_workspace_bytes(config),
            kept: 0,
        }
    }

    /// The same for a run that keeps its outputs in memory (see
    /// [`kept_bytes_per_network`]; `axes`: the grid's).
    pub fn keeping(self, config: &RunConfig, axes: usize) -> Self {
        Self {
            kept: (config.networks as u64).saturating_mul(kept_bytes_per_network(config, axes)),
            ..self
        }
    }

    /// The same for a point of `sweep`: the data every point shares
    /// counted once, with what the grid's points keep.
    pub fn in_sweep(self, sweep: &Sweep) -> Self {
        Self {
            fixed: PROGRAM_BYTES + sweep_bytes(sweep),
            ..self
        }
    }

    pub fn total(&self) -> u64 {
        self.summary
            .saturating_add(self.block)
            .saturating_add(self.verify)
            .saturating_add(self.fixed)
            .saturating_add(self.workspace)
            .saturating_add(self.kept)
    }
}

/// A data set's values in memory.
fn dataset_bytes(data: &Dataset) -> u64 {
    8 * (data.x.len() + data.y.len()) as u64
}

/// What a sweep holds: every distinct data set once (its points share
/// them), and each point's configuration and labels.
pub fn sweep_bytes(sweep: &Sweep) -> u64 {
    let data: u64 = distinct_data(&sweep.points)
        .into_iter()
        .map(|d| dataset_bytes(d))
        .sum();
    let points: usize = sweep
        .points
        .iter()
        .map(|p| {
            std::mem::size_of_val(p) + p.labels.iter().map(|l| l.capacity() + 24).sum::<usize>()
        })
        .sum();
    data + points as u64
}

/// Host memory this process may still use: the kernel's MemAvailable,
/// and the cgroup's limit less its usage where one is set (Slurm jobs and
/// containers run in one). `None` where neither can be read (not Linux).
pub fn available_host_bytes() -> Option<(u64, &'static str)> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok();
    let available = meminfo.as_deref().and_then(|text| {
        text.lines()
            .find_map(|l| l.strip_prefix("MemAvailable:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map(|kib| (kib * 1024, "MemAvailable in /proc/meminfo"))
    });
    let read =
        |path: &str| -> Option<u64> { std::fs::read_to_string(path).ok()?.trim().parse().ok() };
    let cgroup = [
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        (
            "/sys/fs/cgroup/memory/memory.limit_in_bytes",
            "/sys/fs/cgroup/memory/memory.usage_in_bytes",
        ),
    ]
    .into_iter()
    .find_map(|(limit, usage)| {
        let left = read(limit)?.saturating_sub(read(usage).unwrap_or(0));
        Some((left, "the cgroup's memory limit less its usage"))
    });
    match (available, cgroup) {
        (Some(a), Some(c)) => Some(if c.0 < a.0 { c } else { a }),
        (a, c) => a.or(c),
    }
}

/// Bytes in binary units, for messages.
pub fn human(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Refuses, before any work, a run whose host memory need exceeds what is
/// `available`: one line with the need and its parts, what the machine
/// has, and the most networks that would fit.
pub fn refuse_if_too_large(
    config: &RunConfig,
    need: &HostNeed,
    available: u64,
    source: &str,
) -> Result<(), Error> {
    if need.total() <= available {
        return Ok(());
    }
    let room = available.saturating_sub(need.block + need.verify + need.fixed + need.workspace);
    let kept_per_network = need.kept / (config.networks as u64).max(1);
    let per_network = tally_bytes_per_network(config) + kept_per_network;
    let fits = room / per_network;
    Err(Error::HostMemory(format!(
        "{} needs about {} of host memory ({} B per network for the summary, {} for a block of \
         networks in flight, {} for the data and the program{}{}{}), but this machine has {} \
         available ({source}); the GPU is not the limit (networks go to it in chunks that fit \
         its buffers). Use at most about {fits} networks per run (runs with different {SEED} \
         values give independent populations), or a machine with more memory",
        NETWORKS.is(config.networks),
        human(need.total()),
        tally_bytes_per_network(config),
        human(need.block),
        human(need.fixed),
        if need.verify > 0 {
            format!(", {} for {VERIFY}", human(need.verify))
        } else {
            String::new()
        },
        if need.workspace > 0 {
            format!(
                ", {} for the SIMD trainer's groups in flight (fewer with {THREADS})",
                human(need.workspace)
            )
        } else {
            String::new()
        },
        if need.kept > 0 {
            format!(
                ", {} for the results, weights and curves kept in memory ({kept_per_network} B \
                 per network; name files for them to write them instead)",
                human(need.kept)
            )
        } else {
            String::new()
        },
        human(available),
    )))
}

/// [`refuse_if_too_large`] against this machine, where it can tell, for
/// `config`, a point of `sweep`; with `keep`, the outputs kept in memory
/// count too.
pub fn check_host(
    config: &RunConfig,
    sweep: &Sweep,
    verify: usize,
    keep: bool,
) -> Result<(), Error> {
    match available_host_bytes() {
        Some((available, source)) => {
            let mut need = HostNeed::of(config, verify).in_sweep(sweep);
            if keep {
                need = need.keeping(config, sweep.axes.len());
            }
            refuse_if_too_large(config, &need, available, source)
        }
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::Task;
    use crate::gpu::{AdapterChoice, GpuOptions, Strategy};
    use crate::init::Init;
    use crate::model::ModelSpec;
    use crate::run::Start;
    use crate::training::TrainOptions;

    fn config(networks: usize) -> RunConfig {
        RunConfig {
            spec: ModelSpec::default(),
            data: Task::Tutorial.dataset().into(),
            eval: None,
            networks,
            first_network: 0,
            population: networks,
            points: None,
            history: None,
            snapshots: Vec::new(),
            learning_rate: None,
            start: Start::Init {
                init: Init::Xavier,
                seed: 0,
            },
            options: TrainOptions::default(),
            backend: BackendChoice::Auto,
            adapter: AdapterChoice::Auto,
            strategy: Strategy::Auto,
            gpu: GpuOptions::default(),
            threads: None,
        }
    }

    #[test]
    fn the_need_grows_by_the_summary_alone() {
        // Beyond one block, another million networks cost the summary's
        // and the groups' 12 bytes each and nothing more.
        let (a, b) = (
            HostNeed::of(&config(2_000_000), 0),
            HostNeed::of(&config(3_000_000), 0),
        );
        assert_eq!(
            tally_bytes_per_network(&config(1)),
            24,
            "tutorial: no accuracy"
        );
        assert_eq!(b.total() - a.total(), 1_000_000 * 24);
        // XOR's class targets add its accuracy, held-out data two more.
        let mut xor = config(1);
        xor.spec.topology = crate::model::Topology::new(vec![2, 3, 1]).unwrap();
        xor.data = Task::Xor.dataset().into();
        assert_eq!(tally_bytes_per_network(&xor), 32);
        xor.eval = Some(Task::Xor.dataset().into());
        assert_eq!(tally_bytes_per_network(&xor), 48);
        assert_eq!(a.block, b.block);
        assert!(a.block <= crate::run::HOST_BLOCK_BYTES);
    }

    #[test]
    fn the_simd_trainers_scratch_space_counts_where_it_may_run() {
        let mut wide = config(10);
        wide.spec.topology = crate::model::Topology::new(vec![2, 1024, 1024, 1]).unwrap();
        wide.threads = Some(1);
        let one = HostNeed::of(&wide, 0).workspace;
        // 1,053,697 parameters, 2,051 activations and 2 x 2,049 net inputs
        // and deltas once for the sample-by-sample pass and 4 times for
        // the blocked one, and two rows of the widest layer's 1,024, for
        // 16 lanes of float32 (at 128 the group would take 517 MiB).
        let values = wide.spec.layout().len as u64 + 5 * (2051 + 2 * 2049) + 2 * 1024;
        assert_eq!(one, 16 * 4 * values);
        // The seeds' network, 10,000 of them on one thread: 128 lanes.
        let mut small = config(10_000);
        small.threads = Some(1);
        assert_eq!(
            HostNeed::of(&small, 0).workspace,
            128 * 4 * (10 + 5 * (6 + 8) + 2 * 2)
        );
        wide.backend = BackendChoice::Gpu;
        assert_eq!(HostNeed::of(&wide, 0).workspace, 0);
        wide.backend = BackendChoice::Cpu;
        assert_eq!(HostNeed::of(&wide, 0).workspace, 0);
    }

    #[test]
    fn outputs_kept_in_memory_count_their_bytes() {
        // The seeds' network: 10 float32 parameters, a float32 rate, two
        // int64 epochs (60 B of weights file), and fifteen 8-byte columns
        // of the results table.
        let mut run = config(1000);
        assert_eq!(kept_bytes_per_network(&run, 0), 120 + 4 * 10 + 4 + 8 + 8);
        // A grid axis's label; float64 twins from the reference; the
        // curves at 5 points of one float32 each.
        assert_eq!(kept_bytes_per_network(&run, 1), 120 + 32 + 60);
        run.backend = BackendChoice::Cpu;
        assert_eq!(kept_bytes_per_network(&run, 0), 120 + 60 + 8 * 10 + 8);
        run.backend = BackendChoice::Auto;
        run.options.epochs = 100;
        run.history = Some(25);
        assert_eq!(kept_bytes_per_network(&run, 0), 120 + 60 + 4 * 5);
        let need = HostNeed::of(&run, 0);
        assert_eq!(
            need.keeping(&run, 0).total() - need.total(),
            1000 * (120 + 60 + 20)
        );
        // And the refusal says so.
        let huge = config(2_000_000_000);
        let need = HostNeed::of(&huge, 0).keeping(&huge, 0);
        let Err(Error::HostMemory(message)) = refuse_if_too_large(&huge, &need, 8 << 30, "test")
        else {
            panic!("2e9 networks kept in memory cannot fit in 8 GiB");
        };
        assert!(
            message.contains("kept in memory (180 B per network"),
            "{message}"
        );
    }

    #[test]
    fn a_resamples_rows_count_in_the_block() {
        let plain = config(1000);
        let rows = 1 << 20;
        let data = crate::data::synthetic(2, 2, rows, 1);
        let resampled = RunConfig {
            data: data.into(),
            spec: ModelSpec {
                resample: Some(crate::resample::Resampling {
                    how: crate::resample::Resample::Bootstrap,
                    seed: 0,
                }),
                ..ModelSpec::default()
            },
            ..plain.clone()
        };
        let per = block_bytes_per_network(&resampled.spec) + 5 * rows as u64;
        let need = HostNeed::of(&resampled, 0);
        assert_eq!(need.block, block_networks(&resampled) as u64 * per);
        // A byte and a float32 a row for each network of the block, which
        // stays within the block's budget.
        assert!(block_networks(&resampled) < block_networks(&plain));
        assert!(need.block <= crate::run::HOST_BLOCK_BYTES + per);
    }

    #[test]
    fn a_run_beyond_the_available_memory_is_refused_with_the_numbers() {
        let big = config(4_000_000_000);
        let need = HostNeed::of(&big, 0);
        let available = 8 << 30;
        let Err(Error::HostMemory(message)) = refuse_if_too_large(&big, &need, available, "test")
        else {
            panic!("4e9 networks need 90 GiB; 8 GiB must refuse");
        };
        assert!(message.contains("needs about 89.8 GiB"), "{message}");
        assert!(
            message.contains("has 8.0 GiB available (test)"),
            "{message}"
        );
        let fits: u64 = message
            .split("at most about ")
            .nth(1)
            .and_then(|t| t.split(' ').next())
            .and_then(|n| n.parse().ok())
            .expect("the most networks that fit");
        let at_most = config(fits as usize);
        assert!(refuse_if_too_large(&at_most, &HostNeed::of(&at_most, 0), available, "t").is_ok());
        let one_more = config(fits as usize + 1);
        assert!(
            refuse_if_too_large(&one_more, &HostNeed::of(&one_more, 0), available, "t").is_err()
        );
    }

    #[test]
    fn human_sizes() {
        assert_eq!(human(512), "512 B");
        assert_eq!(human(3 << 29), "1.5 GiB");
    }
}
