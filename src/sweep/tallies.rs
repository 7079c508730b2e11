//! What a run keeps of every network for its summary, whether it trains
//! the networks ([`super::outputs::RangeRun`]) or joins the shards that
//! did ([`super::merge`]): the run's tally (quantiles, the best network,
//! `--verify`'s networks), each grid point's statistics and the learning
//! curves' quantiles. Both feed it network by network in id order, so a
//! merge keeps exactly what one run keeps.

use std::ops::Range;

use crate::groups::{GroupStats, GroupTally};
use crate::history::{HistoryBlock, HistoryPlan, HistoryPoint, HistoryTally};
use crate::report::Tally;
use crate::run::TrainedBlock;
use crate::training::{NetworkMetrics, NetworkOutcome};

pub struct Tallies {
    pub run: Tally,
    groups: GroupTally,
    history: Option<HistoryTally>,
    replicates: usize,
}

/// The runs of one grid point each in the ids `first..first + len`:
/// (point, the range of positions in the block).
pub fn point_runs(
    first: usize,
    len: usize,
    replicates: usize,
) -> impl Iterator<Item = (usize, Range<usize>)> {
    let replicates = replicates.max(1);
    let mut i = 0;
    std::iter::from_fn(move || {
        (i < len).then(|| {
            let point = (first + i) / replicates;
            let end = ((point + 1) * replicates - first).min(len);
            let run = (point, i..end);
            i = end;
            run
        })
    })
}

impl Tallies {
    /// For `networks` networks of a grid of `points` x `replicates`;
    /// `verify`: the networks `--verify` keeps; `plan`: the curves
    /// recorded, if any.
    pub fn new(
        networks: usize,
        points: usize,
        replicates: usize,
        with_target: bool,
        verify: Vec<usize>,
        plan: Option<&HistoryPlan>,
    ) -> Self {
        let mut run = Tally::new(networks, with_target, verify);
        run.set_replicates(replicates);
        Self {
            run,
            groups: GroupTally::new(points, replicates, with_target),
            history: plan.map(|p| HistoryTally::new(p, networks, with_target)),
            replicates,
        }
    }

    /// A trained block, its ids global.
    pub fn record_block(&mut self, block: &TrainedBlock) {
        self.run.record(block, block.metrics);
        for (point, at) in point_runs(block.first, block.len(), self.replicates) {
            self.groups
                .record(point, &block.outcomes[at.clone()], &block.metrics[at]);
        }
        if let Some(history) = block.history {
            self.record_history(history, block.outcomes);
        }
    }

    /// Network `id` as a shard's results file gives it.
    pub fn record_network(
        &mut self,
        id: usize,
        learning_rate: f64,
        outcome: &NetworkOutcome,
        metrics: &NetworkMetrics,
    ) {
        self.run
            .record_network(id, learning_rate, outcome, metrics, None);
        let point = id / self.replicates.max(1);
        self.groups.record(point, &[*outcome], &[*metrics]);
    }

    /// Curves of networks already recorded, in the same order.
    pub fn record_history(&mut self, history: &HistoryBlock, outcomes: &[NetworkOutcome]) {
        if let Some(tally) = &mut self.history {
            tally.record(history, outcomes);
        }
    }

    /// The run's tally, the curves' points, and the statistics of each
    /// grid point that has networks (`labels`: a point's values).
    pub fn finish(
        self,
        labels: &dyn Fn(usize) -> Vec<String>,
    ) -> (Tally, Option<Vec<HistoryPoint>>, Vec<GroupStats>) {
        let mut stats = self.groups.finish(labels);
        stats.retain(|g| g.networks > 0);
        (self.run, self.history.map(HistoryTally::points), stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn point_runs_split_a_block_at_grid_points() {
        let runs: Vec<_> = point_runs(5, 9, 4).collect();
        assert_eq!(runs, [(1, 0..3), (2, 3..7), (3, 7..9)]);
        assert_eq!(
            point_runs(0, 3, 0).collect::<Vec<_>>(),
            [(0, 0..1), (1, 1..2), (2, 2..3)]
        );
        assert_eq!(point_runs(0, 0, 4).count(), 0);
    }
}
