//! Sweeps: a grid of hyperparameter values, R networks (replicates) at
//! every point, split into shards that a cluster's scheduler runs apart
//! and `gputrain merge` joins into exactly one run's files.
//!
//! The id rule: the grid's points are numbered in row-major order over
//! its axes (the order of [`crate::cli::TrainArgs::grid_axes`], the last
//! axis fastest), and network `id = point x R + replicate`. A replicate
//! starts from the parameters of network `replicate` of a plain run with
//! the same seed and topology: initialisation is keyed on (seed,
//! replicate), so every point of a topology starts from the same R
//! networks (a paired comparison), and adding a value to an axis changes
//! no other point's networks.
//!
//! Module map: [`axis`] (a flag's values: lists and log grids), [`shard`]
//! (`--shard I/K|auto` and its id range), [`crate::groups`] (statistics per grid
//! point), [`outputs`] (a run's files, written as blocks go by), [`merge`]
//! (`gputrain merge`).

pub mod axis;
pub mod merge;
pub mod outputs;
pub mod shard;
pub mod tallies;

use std::fmt::Write as _;
use std::ops::Range;
use std::sync::Arc;

use crate::data::Dataset;
use crate::model::ModelSpec;
use crate::run::RunConfig;

/// An axis of the grid with more than one value.
#[derive(Clone, Debug, PartialEq)]
pub struct Axis {
    /// The flag, e.g. `--lr`.
    pub flag: &'static str,
    /// Its column in the results and groups CSVs.
    pub column: &'static str,
    /// Its values as the CSVs write them.
    pub labels: Vec<String>,
}

/// One point of the grid.
#[derive(Clone, Debug)]
pub struct Point {
    /// The point's value on each of [`Sweep::axes`].
    pub labels: Vec<String>,
    /// The point's configuration, for all its replicates.
    pub config: RunConfig,
}

/// A validated sweep: the grid's points in order, R networks each.
#[derive(Clone, Debug)]
pub struct Sweep {
    pub axes: Vec<Axis>,
    pub points: Vec<Point>,
    pub replicates: usize,
    /// Each point's model: points with the same [`ModelSpec`] share a
    /// weights file; models are numbered in grid order.
    pub model_of: Vec<usize>,
    /// A hash of everything that decides the results (see
    /// [`fingerprint`]).
    pub fingerprint: String,
}

/// The networks of one point that a shard trains, and where they sit.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Part {
    pub point: usize,
    /// The replicates trained (ids `point x R + replicates`).
    pub replicates: Range<usize>,
}

impl Sweep {
    pub fn new(axes: Vec<Axis>, points: Vec<Point>, replicates: usize) -> Self {
        let mut specs: Vec<&ModelSpec> = Vec::new();
        let model_of = points
            .iter()
            .map(|p| match specs.iter().position(|s| **s == p.config.spec) {
                Some(k) => k,
                None => {
                    specs.push(&p.config.spec);
                    specs.len() - 1
                }
            })
            .collect();
        let fingerprint = fingerprint(&axes, &points, replicates);
        Self {
            axes,
            points,
            replicates,
            model_of,
            fingerprint,
        }
    }

    /// Networks in the whole sweep.
    pub fn networks(&self) -> usize {
        self.points.len() * self.replicates
    }

    /// Models (weights files) in the whole sweep.
    pub fn models(&self) -> usize {
        self.model_of.iter().max().map_or(0, |m| m + 1)
    }

    /// The ids of model `k`'s networks (contiguous: the model's axes come
    /// first in grid order).
    pub fn model_ids(&self, k: usize) -> Range<usize> {
        let first = self.model_of.iter().position(|&m| m == k).unwrap_or(0);
        let count = self.model_of.iter().filter(|&&m| m == k).count();
        first * self.replicates..(first + count) * self.replicates
    }

    /// The parts of the points that ids `range` cover, in id order.
    pub fn parts(&self, range: Range<usize>) -> Vec<Part> {
        let r = self.replicates.max(1);
        let mut parts = Vec::new();
        let mut id = range.start;
        while id < range.end {
            let point = id / r;
            let end = range.end.min((point + 1) * r);
            parts.push(Part {
                point,
                replicates: id - point * r..end - point * r,
            });
            id = end;
        }
        parts
    }

    /// The configuration that trains `part`.
    pub fn part_config(&self, part: &Part) -> RunConfig {
        let mut config = self.points[part.point].config.clone();
        config.first_network = part.replicates.start;
        config.networks = part.replicates.len();
        config.population = self.replicates;
        config
    }

    /// The parts of ids `range` in runs of consecutive parts of one model:
    /// each run trains as one (its networks' rates and initialisations
    /// differ per point), so a learning-rate sweep fills the GPU as one
    /// population does.
    pub fn segments(&self, range: Range<usize>) -> Vec<Vec<Part>> {
        let mut segments: Vec<Vec<Part>> = Vec::new();
        for part in self.parts(range) {
            match segments.last_mut() {
                Some(run) if self.model_of[run[0].point] == self.model_of[part.point] => {
                    run.push(part)
                }
                _ => segments.push(vec![part]),
            }
        }
        segments
    }

    /// The configuration that trains `parts` (consecutive, of one model)
    /// as one run.
    pub fn segment_config(&self, parts: &[Part]) -> RunConfig {
        let mut config = self.part_config(&parts[0]);
        config.networks = parts.iter().map(|p| p.replicates.len()).sum();
        if parts.len() > 1 {
            let points = &self.points[parts[0].point..=parts[parts.len() - 1].point];
            let inits = points.iter().map(|p| match p.config.start {
                crate::run::Start::Init { init, .. } => init,
                _ => unreachable!("a grid starts from initialisation"),
            });
            config.points = Some(std::sync::Arc::new(crate::run::PointStarts {
                inits: inits.collect(),
                rates: points.iter().map(|p| p.config.learning_rate).collect(),
            }));
        }
        config
    }

    /// The first id of `part`.
    pub fn first_id(&self, part: &Part) -> usize {
        part.point * self.replicates + part.replicates.start
    }
}

/// 64-bit FNV-1a, as a `fmt::Write` sink: the fingerprint hashes long
/// `Debug` texts without keeping them.
struct Fnv(u64);

impl std::fmt::Write for Fnv {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for b in s.bytes() {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
        Ok(())
    }
}

/// The data sets `points` train and are scored on, each once (points
/// share them: [`RunConfig::data`]), in the order points first use them.
pub fn distinct_data(points: &[Point]) -> Vec<&Arc<Dataset>> {
    let mut sets: Vec<&Arc<Dataset>> = Vec::new();
    for c in points.iter().map(|p| &p.config) {
        for data in std::iter::once(&c.data).chain(&c.eval) {
            if !sets.iter().any(|s| Arc::ptr_eq(s, data)) {
                sets.push(data);
            }
        }
    }
    sets
}

/// The configuration's fingerprint, 16 hex digits: this build's version,
/// the grid, R, and each point's model, data (every value), held-out data,
/// start, learning rate, options and history; not the backend, adapter,
/// threads, shard or output paths. Shards of one sweep share it; `merge`
/// refuses shards that differ.
pub fn fingerprint(axes: &[Axis], points: &[Point], replicates: usize) -> String {
    let mut h = Fnv(0xcbf2_9ce4_8422_2325);
    let _ = write!(
        h,
        "gputrain {} {axes:?} {replicates}",
        env!("CARGO_PKG_VERSION")
    );
    // Every value of each data set, hashed once however many points share
    // it (a 100,000-point grid on one CSV formats it once).
    let sets = distinct_data(points);
    let digests: Vec<u64> = sets
        .iter()
        .map(|data| {
            let mut d = Fnv(0xcbf2_9ce4_8422_2325);
            let _ = write!(d, "{data:?}");
            d.0
        })
        .collect();
    let digest = |data: &Arc<Dataset>| {
        let k = sets.iter().position(|s| Arc::ptr_eq(s, data));
        digests[k.expect("every point's data is among the distinct sets")]
    };
    for p in points {
        let c = &p.config;
        let (data, eval) = (digest(&c.data), c.eval.as_ref().map(digest));
        let _ = write!(
            h,
            "|{:?} {:?} {data:x} {eval:x?} {:?} {:?} {:?} {:?}",
            p.labels, c.spec, c.start, c.learning_rate, c.options, c.history
        );
    }
    format!("{:016x}", h.0)
}
