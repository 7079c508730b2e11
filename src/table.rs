//! The results CSV's columns, typed, in memory: what the Python package
//! gives as `Run.results`. A run fills a [`ResultsTable`] straight from
//! its trained blocks ([`TableWriter::write_block`], beside or instead of
//! [`crate::output::ResultsWriter`]'s file), and a results CSV reads into
//! the same table ([`ResultsTable::read_csv`]); the columns are those of
//! [`crate::output::results_header`] in its order.

use std::path::Path;

use crate::error::Error;
use crate::output::{GridCells, results_header};
use crate::training::{NetworkMetrics, NetworkOutcome};

/// One column of a results table.
#[derive(Clone, Debug, PartialEq)]
pub enum Column {
    /// Every cell an integer.
    Ints(Vec<i64>),
    /// Every cell a number; NaN where the CSV's cell is empty (a value
    /// that does not apply).
    Floats(Vec<f64>),
    Text(Vec<String>),
}

impl Column {
    /// Cells typed as a CSV reader types them: integers where every cell
    /// is one, else numbers (NaN for an empty cell) where every cell is
    /// one or empty, else text.
    pub fn typed<'a>(cells: impl Iterator<Item = &'a str> + Clone) -> Self {
        let float = |c: &str| match c.is_empty() {
            true => Ok(f64::NAN),
            false => c.parse::<f64>(),
        };
        if let Ok(ints) = cells.clone().map(str::parse::<i64>).collect() {
            Column::Ints(ints)
        } else if let Ok(floats) = cells.clone().map(float).collect() {
            Column::Floats(floats)
        } else {
            Column::Text(cells.map(str::to_string).collect())
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Column::Ints(v) => v.len(),
            Column::Floats(v) => v.len(),
            Column::Text(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A results table: (name, column) in the results CSV's order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultsTable {
    pub columns: Vec<(String, Column)>,
}

/// A table being filled a block of networks at a time: the fixed columns
/// typed as they are, the grid's axis labels as text until the end.
#[derive(Clone, Debug)]
pub struct TableWriter {
    names: Vec<String>,
    network: Vec<i64>,
    point: Vec<i64>,
    replicate: Vec<i64>,
    labels: Vec<Vec<String>>,
    learning_rate: Vec<f64>,
    final_loss: Vec<f64>,
    target_epoch: Vec<f64>,
    diverged: Vec<i64>,
    epochs_completed: Vec<i64>,
    train_accuracy: Vec<f64>,
    eval_loss: Vec<f64>,
    eval_accuracy: Vec<f64>,
    train_loss_per_sample: Vec<f64>,
    eval_loss_per_sample: Vec<f64>,
    best_epoch: Vec<f64>,
    stopped_epoch: Vec<f64>,
    oob_loss: Vec<f64>,
    oob_accuracy: Vec<f64>,
}

impl TableWriter {
    /// An empty table with room for `networks` rows; `grid_columns` as
    /// [`crate::output::ResultsWriter::create`] takes them.
    pub fn new(grid_columns: &[&str], networks: usize) -> Self {
        let names: Vec<String> = results_header(grid_columns)
            .trim_end()
            .split(',')
            .map(str::to_string)
            .collect();
        let axes = grid_columns
            .iter()
            .filter(|c| **c != "learning_rate")
            .count();
        let floats = || Vec::with_capacity(networks);
        Self {
            names,
            network: Vec::with_capacity(networks),
            point: Vec::new(),
            replicate: Vec::new(),
            labels: vec![Vec::new(); axes],
            learning_rate: floats(),
            final_loss: floats(),
            target_epoch: floats(),
            diverged: Vec::with_capacity(networks),
            epochs_completed: Vec::with_capacity(networks),
            train_accuracy: floats(),
            eval_loss: floats(),
            eval_accuracy: floats(),
            train_loss_per_sample: floats(),
            eval_loss_per_sample: floats(),
            best_epoch: floats(),
            stopped_epoch: floats(),
            oob_loss: floats(),
            oob_accuracy: floats(),
        }
    }

    /// Rows for networks `first..first + outcomes.len()`, as
    /// [`crate::output::ResultsWriter::write_block`] writes them.
    pub fn write_block(
        &mut self,
        first: usize,
        grid: Option<GridCells>,
        learning_rates: &[f64],
        outcomes: &[NetworkOutcome],
        metrics: &[NetworkMetrics],
    ) {
        let nan = |v: Option<f64>| v.unwrap_or(f64::NAN);
        for (i, ((&lr, o), m)) in learning_rates.iter().zip(outcomes).zip(metrics).enumerate() {
            self.network.push((first + i) as i64);
            if let Some(g) = grid {
                self.point.push(g.point as i64);
                self.replicate.push((g.first_replicate + i) as i64);
                for (column, label) in self.labels.iter_mut().zip(g.labels) {
                    column.push(label.clone());
                }
            }
            self.learning_rate.push(lr);
            // NaN where the network was never evaluated.
            self.final_loss
                .push(nan(o.evaluated().then_some(o.final_loss)));
            self.target_epoch.push(nan(o.target_epoch.map(f64::from)));
            self.diverged.push(i64::from(o.diverged));
            self.epochs_completed.push(o.epochs_completed as i64);
            self.train_accuracy.push(nan(m.train_accuracy));
            self.eval_loss.push(nan(m.eval_loss));
            self.eval_accuracy.push(nan(m.eval_accuracy));
            self.train_loss_per_sample
                .push(nan(m.train_loss_per_sample));
            self.eval_loss_per_sample.push(nan(m.eval_loss_per_sample));
            let epoch = |e: Option<u64>| e.map_or(f64::NAN, |e| e as f64);
            self.best_epoch.push(epoch(m.best_epoch));
            self.stopped_epoch.push(epoch(m.stopped_epoch));
            self.oob_loss.push(nan(m.oob_loss));
            self.oob_accuracy.push(nan(m.oob_accuracy));
        }
    }

    /// The table, its columns in the CSV's order.
    pub fn finish(self) -> ResultsTable {
        let mut by_name: Vec<(&str, Column)> = vec![
            ("network", Column::Ints(self.network)),
            ("point", Column::Ints(self.point)),
            ("replicate", Column::Ints(self.replicate)),
            ("learning_rate", Column::Floats(self.learning_rate)),
            ("final_loss", Column::Floats(self.final_loss)),
            ("target_epoch", Column::Floats(self.target_epoch)),
            ("diverged", Column::Ints(self.diverged)),
            ("epochs_completed", Column::Ints(self.epochs_completed)),
            ("train_accuracy", Column::Floats(self.train_accuracy)),
            ("eval_loss", Column::Floats(self.eval_loss)),
            ("eval_accuracy", Column::Floats(self.eval_accuracy)),
            (
                "train_loss_per_sample",
                Column::Floats(self.train_loss_per_sample),
            ),
            (
                "eval_loss_per_sample",
                Column::Floats(self.eval_loss_per_sample),
            ),
            ("best_epoch", Column::Floats(self.best_epoch)),
            ("stopped_epoch", Column::Floats(self.stopped_epoch)),
            ("oob_loss", Column::Floats(self.oob_loss)),
            ("oob_accuracy", Column::Floats(self.oob_accuracy)),
        ];
        let mut labels = self.labels.into_iter();
        let columns = self
            .names
            .into_iter()
            .map(|name| {
                let column = match by_name.iter().position(|(n, _)| *n == name) {
                    Some(at) => by_name.swap_remove(at).1,
                    // A grid axis's column, in the header's order.
                    None => {
                        let cells = labels.next().expect("a label column per axis");
                        Column::typed(cells.iter().map(String::as_str))
                    }
                };
                (name, column)
            })
            .collect();
        ResultsTable { columns }
    }
}

impl ResultsTable {
    /// A results CSV's columns, each typed by [`Column::typed`].
    pub fn read_csv(path: &Path) -> Result<Self, Error> {
        let bad = |e: csv::Error| {
            Error::data(path, e.position().map(|p| p.line() as usize), e.to_string())
        };
        let mut reader = csv::Reader::from_path(path).map_err(bad)?;
        let names: Vec<String> = reader
            .headers()
            .map_err(bad)?
            .iter()
            .map(str::to_string)
            .collect();
        // Each column's cells back to back, with where each ends: no
        // allocation per cell.
        let mut text: Vec<(Vec<u8>, Vec<usize>)> = vec![(Vec::new(), Vec::new()); names.len()];
        let mut record = csv::ByteRecord::new();
        while reader.read_byte_record(&mut record).map_err(bad)? {
            for ((bytes, ends), cell) in text.iter_mut().zip(record.iter()) {
                bytes.extend_from_slice(cell);
                ends.push(bytes.len());
            }
        }
        let columns = names
            .into_iter()
            .zip(text)
            .map(|(name, (bytes, ends))| {
                let starts = std::iter::once(0).chain(ends.iter().copied());
                let cells = starts
                    .zip(ends.iter().copied())
                    .map(|(a, b)| std::str::from_utf8(&bytes[a..b]).unwrap_or("\u{fffd}"));
                (name, Column::typed(cells))
            })
            .collect();
        Ok(Self { columns })
    }
}
