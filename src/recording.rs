//! What the trainers record of learning curves (`--history K`): the plan
//! of recorded epochs, what a trainer is given to record, one network's
//! loop points and a block of networks' curves. The files and the
//! population's quantiles are the output layer's ([`crate::history`]);
//! this module sits beside the training types, so a trainer never
//! depends on the files.

use crate::data::Dataset;
use crate::training::{NetworkMetrics, NetworkOutcome};

/// What a run records: every `every` epochs of a run of `epochs`, the
/// training loss and, with held-out data (`eval`), the evaluation loss.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HistoryPlan {
    pub every: u64,
    pub epochs: u64,
    pub eval: bool,
}

impl HistoryPlan {
    /// Points the epoch loops record: epochs 0, K, ... below the last.
    pub fn loop_points(&self) -> usize {
        self.epochs.div_ceil(self.every.max(1)) as usize
    }

    /// Every point: the loops', then the last epoch.
    pub fn points(&self) -> usize {
        self.loop_points() + 1
    }

    /// The epoch of point `q`.
    pub fn epoch(&self, q: usize) -> u64 {
        if q < self.loop_points() {
            q as u64 * self.every
        } else {
            self.epochs
        }
    }

    /// The epochs of every point.
    pub fn epochs_recorded(&self) -> Vec<u64> {
        (0..self.points()).map(|q| self.epoch(q)).collect()
    }

    /// The point an epoch loop records at run epoch `epoch`, if any.
    pub fn slot(&self, epoch: u64) -> Option<usize> {
        (epoch < self.epochs && epoch.is_multiple_of(self.every.max(1)))
            .then(|| (epoch / self.every.max(1)) as usize)
    }

    /// Series recorded: the training loss, and the evaluation loss.
    pub fn series(&self) -> usize {
        1 + usize::from(self.eval)
    }

    /// Bytes the host keeps per network for a block in flight: both
    /// series in float64 as trained, and the float32 copies on the way to
    /// the file.
    pub fn block_bytes_per_network(&self) -> u64 {
        (8 + 4) * (self.series() * self.points()) as u64
    }

    /// Bytes [`crate::history::HistoryTally`] keeps per network: every point of both
    /// series in float32, for the quantiles.
    pub fn tally_bytes_per_network(&self) -> u64 {
        4 * (self.series() * self.points()) as u64
    }
}

/// What a trainer records: the plan, and the held-out data whose loss it
/// records beside the training loss (when `plan.eval`).
#[derive(Clone, Copy, Debug)]
pub struct Recording<'a> {
    pub plan: HistoryPlan,
    pub eval: Option<&'a Dataset>,
}

/// One network's loop points as a trainer records them: the first
/// `recorded` entries of each series are set.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct NetworkCurve {
    pub train: Vec<f64>,
    pub eval: Vec<f64>,
    pub recorded: u32,
}

impl NetworkCurve {
    pub fn new(plan: &HistoryPlan) -> Self {
        let points = plan.loop_points();
        Self {
            train: vec![f64::NAN; points],
            eval: vec![f64::NAN; if plan.eval { points } else { 0 }],
            recorded: 0,
        }
    }

    /// Records point `q`: the points come in order, none skipped after
    /// the first (a run trained on from a later epoch, a segment of one
    /// with `--snapshots`, starts past the earlier points).
    pub fn record(&mut self, q: usize, train: f64, eval: Option<f64>) {
        debug_assert!(
            q == self.recorded as usize || (self.recorded == 0 && q > 0),
            "points in order"
        );
        self.train[q] = train;
        if let Some(e) = eval {
            self.eval[q] = e;
        }
        self.recorded = q as u32 + 1;
    }
}

/// The curves of a run of networks: every point ([`HistoryPlan::points`])
/// of each network, network after network; `eval` is empty without
/// held-out data.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryBlock {
    pub points: usize,
    pub train: Vec<f64>,
    pub eval: Vec<f64>,
    /// Loop points each network recorded; the others are filled in by
    /// [`HistoryBlock::complete`].
    pub recorded: Vec<u32>,
}

impl HistoryBlock {
    /// Room for `networks` networks, nothing recorded.
    pub fn new(plan: &HistoryPlan, networks: usize) -> Self {
        let points = plan.points();
        Self {
            points,
            train: vec![f64::NAN; networks * points],
            eval: vec![f64::NAN; if plan.eval { networks * points } else { 0 }],
            recorded: vec![0; networks],
        }
    }

    /// The block of the trainers' `curves`, one per network.
    pub fn from_curves(plan: &HistoryPlan, curves: &[NetworkCurve]) -> Self {
        let mut block = Self::new(plan, curves.len());
        for (n, curve) in curves.iter().enumerate() {
            let row = n * block.points;
            block.train[row..row + curve.train.len()].copy_from_slice(&curve.train);
            if plan.eval {
                block.eval[row..row + curve.eval.len()].copy_from_slice(&curve.eval);
            }
            block.recorded[n] = curve.recorded;
        }
        block
    }

    pub fn networks(&self) -> usize {
        self.recorded.len()
    }

    /// Appends `other`'s networks.
    pub fn extend(&mut self, other: HistoryBlock) {
        assert_eq!(self.points, other.points, "the same plan");
        self.train.extend(other.train);
        self.eval.extend(other.eval);
        self.recorded.extend(other.recorded);
    }

    /// The points `later` recorded after this block's, for every network
    /// not `finished`: the curves of a run trained in segments, each on
    /// from where the last ended ([`crate::trainer::Trained::then`]).
    pub fn continue_with(&mut self, later: &HistoryBlock, finished: &[bool]) {
        assert_eq!(self.points, later.points, "the same plan");
        assert_eq!(self.networks(), later.networks(), "the same networks");
        let points = self.points;
        for n in (0..self.networks()).filter(|&n| !finished[n]) {
            let (from, to) = (self.recorded[n] as usize, later.recorded[n] as usize);
            if to <= from {
                continue;
            }
            let row = n * points;
            self.train[row + from..row + to].copy_from_slice(&later.train[row + from..row + to]);
            if !self.eval.is_empty() {
                self.eval[row + from..row + to].copy_from_slice(&later.eval[row + from..row + to]);
            }
            self.recorded[n] = later.recorded[n];
        }
    }

    /// Network `n`'s training-loss curve.
    pub fn train_row(&self, n: usize) -> &[f64] {
        &self.train[n * self.points..(n + 1) * self.points]
    }

    /// Network `n`'s evaluation-loss curve (empty without held-out data).
    pub fn eval_row(&self, n: usize) -> &[f64] {
        self.eval
            .get(n * self.points..(n + 1) * self.points)
            .unwrap_or(&[])
    }

    /// Fills every point the loops did not record: up to the epochs a
    /// network completed, its final loss (and held-out loss, from
    /// `metrics`; NaN for a diverged network); beyond them, NaN.
    pub fn complete(
        &mut self,
        plan: &HistoryPlan,
        outcomes: &[NetworkOutcome],
        metrics: &[NetworkMetrics],
    ) {
        let points = self.points;
        for (n, (o, m)) in outcomes.iter().zip(metrics).enumerate() {
            let fill = |row: &mut [f64], last: f64| {
                for (q, v) in row.iter_mut().enumerate().skip(self.recorded[n] as usize) {
                    *v = if plan.epoch(q) <= o.epochs_completed {
                        last
                    } else {
                        f64::NAN
                    };
                }
            };
            fill(&mut self.train[n * points..(n + 1) * points], o.final_loss);
            if plan.eval {
                let last = m.eval_loss.unwrap_or(f64::NAN);
                fill(&mut self.eval[n * points..(n + 1) * points], last);
            }
        }
    }
}
