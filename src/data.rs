//! Training data: the built-in tasks (`tutorial`, `xor`) and validated CSV
//! loading. A data set is `S` samples of `n0` inputs and `nL` targets.

use std::path::Path;

use crate::error::Error;
use crate::setting::settings::{HOLDOUT, TARGETS, TASK};

/// `S` samples of (inputs, targets), row-major, float64.
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset {
    /// Where the data came from (task name or file path), for messages.
    pub name: String,
    pub inputs: usize,
    pub outputs: usize,
    /// `samples * inputs` values.
    pub x: Vec<f64>,
    /// `samples * outputs` values (their range is checked against the
    /// output activation's: [`Dataset::check_targets`]).
    pub y: Vec<f64>,
}

impl Dataset {
    /// Builds a data set from rows, checking widths and that every value is
    /// finite.
    pub fn new(
        name: impl Into<String>,
        inputs: usize,
        outputs: usize,
        x: Vec<f64>,
        y: Vec<f64>,
    ) -> Result<Self, Error> {
        let name = name.into();
        let bad = |m: String| Error::data(name.clone(), None, m);
        // No targets (outputs 0): inputs to predict from; training refuses
        // such data (its outputs do not match any topology).
        if inputs == 0 {
            return Err(bad("needs at least one input column".into()));
        }
        if x.is_empty() || !x.len().is_multiple_of(inputs) || y.len() != x.len() / inputs * outputs
        {
            return Err(bad(format!(
                "{} input values and {} target values do not form whole samples of {inputs} inputs and {outputs} targets",
                x.len(),
                y.len()
            )));
        }
        if let Some(v) = x.iter().chain(&y).find(|v| !v.is_finite()) {
            return Err(bad(format!("holds the non-finite value {v}")));
        }
        Ok(Self {
            name,
            inputs,
            outputs,
            x,
            y,
        })
    }

    pub fn samples(&self) -> usize {
        self.x.len() / self.inputs
    }

    /// Splits off `round(fraction x samples)` samples as held-out data,
    /// chosen by ChaCha8 seeded with `seed` (`--data-seed`); both parts
    /// keep the data's order. Each part must keep at least one sample.
    pub fn hold_out(&self, fraction: f64, seed: u64) -> Result<(Dataset, Dataset), Error> {
        use rand_chacha::ChaCha8Rng;
        use rand_core::{Rng, SeedableRng};
        let samples = self.samples();
        if !(fraction.is_finite() && fraction > 0.0 && fraction < 1.0) {
            return Err(Error::Config(format!(
                "{} must lie strictly between 0 and 1",
                HOLDOUT.is(fraction)
            )));
        }
        let held = (fraction * samples as f64).round() as usize;
        if held == 0 || held == samples {
            return Err(Error::Config(format!(
                "{} of the {samples} samples of {} holds out {held}, leaving {}; both parts \
                 need at least one sample",
                HOLDOUT.is(fraction),
                self.name,
                if held == 0 {
                    "no sample to evaluate on"
                } else {
                    "no sample to train on"
                }
            )));
        }
        // A partial Fisher-Yates shuffle picks the held-out samples.
        let mut order: Vec<usize> = (0..samples).collect();
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        for i in 0..held {
            let j = i + (rng.next_u64() % (samples - i) as u64) as usize;
            order.swap(i, j);
        }
        let mut is_held = vec![false; samples];
        order[..held].iter().for_each(|&s| is_held[s] = true);
        let part = |held_part: bool, name: String| {
            let chosen: Vec<usize> = (0..samples).filter(|&s| is_held[s] == held_part).collect();
            self.subset(&chosen, name)
                .ok_or_else(|| Error::data(self.name.clone(), None, "no sample left".to_string()))
        };
        let percent = 100.0 * held as f64 / samples as f64;
        Ok((
            part(
                false,
                format!(
                    "{} ({} of {samples} for training)",
                    self.name,
                    samples - held
                ),
            )?,
            part(
                true,
                format!("{} ({held} held out, {percent:.0}%)", self.name),
            )?,
        ))
    }

    /// The samples `chosen` (in that order) as a data set of their own;
    /// `None` when none is chosen.
    pub fn subset(&self, chosen: &[usize], name: String) -> Option<Dataset> {
        if chosen.is_empty() {
            return None;
        }
        let x = chosen
            .iter()
            .flat_map(|&s| self.input(s).to_vec())
            .collect();
        let y = chosen
            .iter()
            .flat_map(|&s| self.target(s).to_vec())
            .collect();
        Some(Self {
            name,
            inputs: self.inputs,
            outputs: self.outputs,
            x,
            y,
        })
    }

    /// The data as CSV: a header `x0,...,y0,...`, then one sample a line,
    /// every value the shortest decimal that reads back to the same
    /// float64 (what `gputrain data` writes and `--data` reads).
    pub fn to_csv(&self) -> String {
        let header: Vec<String> = (0..self.inputs)
            .map(|i| format!("x{i}"))
            .chain((0..self.outputs).map(|j| format!("y{j}")))
            .collect();
        let mut text = header.join(",");
        text.push('\n');
        for s in 0..self.samples() {
            let values: Vec<String> = self
                .input(s)
                .iter()
                .chain(self.target(s))
                .map(|v| format!("{v}"))
                .collect();
            text.push_str(&values.join(","));
            text.push('\n');
        }
        text
    }

    pub fn input(&self, sample: usize) -> &[f64] {
        &self.x[sample * self.inputs..(sample + 1) * self.inputs]
    }

    pub fn target(&self, sample: usize) -> &[f64] {
        &self.y[sample * self.outputs..(sample + 1) * self.outputs]
    }

    /// Checks every sample's targets keep `rule` (their values as they
    /// are: class labels were expanded when the data was read): each in
    /// the output activation's range, and for softmax outputs summing to
    /// 1; the error names the sample and target column.
    pub fn check_targets(&self, rule: TargetRule) -> Result<(), Error> {
        let rule = rule.with_classes(false);
        for s in 0..self.samples() {
            if let Err(e) = rule.row(self.target(s), self.outputs) {
                let column = e
                    .column
                    .map_or(String::new(), |k| format!(", target {}", k + 1));
                return Err(Error::data(
                    self.name.clone(),
                    None,
                    format!("sample {}{column}: {}", s + 1, e.message),
                ));
            }
        }
        Ok(())
    }
}

fn in_range(v: f64, (low, high): (f64, f64)) -> bool {
    low <= v && v <= high
}

/// How far a softmax sample's targets may sum from 1: a millionth (exact
/// one-hot rows sum to 1; soft labels written to 6 decimals stay inside).
pub const DISTRIBUTION_TOLERANCE: f64 = 1e-6;

/// What a data set's targets must be, and how a file or a Y array holds
/// them: the output activation's rules and `--targets`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TargetRule {
    /// The closed range every target lies in (the output activation's).
    pub range: (f64, f64),
    /// Each sample's targets are a distribution over the classes (a row
    /// form's outputs, softmax): they sum to 1.
    pub distribution: bool,
    /// `--targets class`: the data holds one column of integer class
    /// labels in [0, outputs), each read as a one-hot row.
    pub classes: bool,
}

impl TargetRule {
    /// Targets in `range`, one column per output.
    pub fn range(range: (f64, f64)) -> Self {
        Self {
            range,
            distribution: false,
            classes: false,
        }
    }

    /// The same, with the data's targets given as class labels or not.
    pub fn with_classes(self, classes: bool) -> Self {
        Self { classes, ..self }
    }

    /// The target columns a row of the data holds for `outputs` outputs.
    pub fn columns(&self, outputs: usize) -> usize {
        if self.classes && outputs > 0 {
            1
        } else {
            outputs
        }
    }

    /// The targets of one row, from its target cells `cells` (already
    /// finite numbers), for `outputs` outputs; the error says what is
    /// wrong with them, without the row's place (the caller names it).
    pub fn row(&self, cells: &[f64], outputs: usize) -> Result<Vec<f64>, RowError> {
        let values = if self.classes {
            let label = cells[0];
            if label.fract() != 0.0 || label < 0.0 || label >= outputs as f64 {
                return Err(RowError {
                    column: Some(0),
                    message: format!(
                        "class {label} is not a whole number in [0, {outputs}) ({}: one label \
                         column, {outputs} classes from the last of layers)",
                        TARGETS.is("class")
                    ),
                    outside: None,
                });
            }
            let mut one_hot = vec![0.0; outputs];
            one_hot[label as usize] = 1.0;
            one_hot
        } else {
            if let Some(k) = cells.iter().position(|v| !in_range(*v, self.range)) {
                return Err(RowError {
                    column: Some(k),
                    message: format!("{} is outside {}", cells[k], describe_range(self.range)),
                    outside: Some(cells[k]),
                });
            }
            cells.to_vec()
        };
        let sum: f64 = values.iter().sum();
        if self.distribution && (sum - 1.0).abs() > DISTRIBUTION_TOLERANCE {
            return Err(RowError {
                column: None,
                message: format!(
                    "the targets sum to {sum}, but softmax targets are a distribution over the \
                     classes and must sum to 1 (one-hot rows, or one class column with \
                     {})",
                    TARGETS.is("class")
                ),
                outside: None,
            });
        }
        Ok(values)
    }
}

/// What [`TargetRule::row`] found wrong: the target column to blame (0-based
/// among the row's target cells), if one is, and why.
#[derive(Clone, Debug, PartialEq)]
pub struct RowError {
    pub column: Option<usize>,
    pub message: String,
    /// The value outside the output activation's range, when that is
    /// what is wrong (the message is "{value} is outside {range}").
    pub outside: Option<f64>,
}

/// `[0, 1], the values the output activation can reach`, or `any finite
/// value` for an unbounded range.
pub fn describe_range((low, high): (f64, f64)) -> String {
    if low.is_infinite() && high.is_infinite() {
        "the finite values the output activation can reach".to_string()
    } else if high.is_infinite() {
        format!("[{low}, inf), the values the output activation can reach")
    } else {
        format!("[{low}, {high}], the values the output activation can reach")
    }
}

/// The built-in tasks: two fixed ones, and generated ones for studies and
/// benchmarks that need more samples ([`TaskOptions`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Task {
    /// Seed 003's single sample: (0.05, 0.10) -> (0.01, 0.99).
    Tutorial,
    /// The four XOR samples with 0/1 targets.
    Xor,
    /// `parity:N`: all 2^N inputs in {0, 1}^N, target 1 when an odd number
    /// of them is 1 (N from 1 to [`MAX_PARITY_BITS`]).
    Parity(u32),
    /// scikit-learn's make_moons: two interleaving half circles.
    Moons,
    /// scikit-learn's make_circles (factor 0.8): a circle inside another.
    Circles,
    /// Two interleaved spirals, 1.5 turns each, scaled into [-1, 1].
    Spirals,
    /// `spirals:K`: K interleaved spirals (the arms of `spirals`, turned by
    /// 2 pi / K from one another), one class each, targets one-hot rows of
    /// K: a multi-class task for softmax outputs (K from 2 to
    /// [`MAX_CLASSES`]).
    ClassSpirals(u32),
}

/// Largest K of `spirals:K`.
pub const MAX_CLASSES: u32 = 64;

/// Largest N of `parity:N` (2^20 = 1,048,576 samples).
pub const MAX_PARITY_BITS: u32 = 20;

/// The names `--task` accepts, for messages.
pub const TASK_NAMES: &str = "tutorial, xor, parity:N, moons, circles, spirals, spirals:K";

/// How a generated task (moons, circles, spirals) is drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TaskOptions {
    /// `--samples`: scikit-learn's n_samples (default 100), split between
    /// the two classes as it does (the first class gets n / 2).
    pub samples: usize,
    /// `--noise`: standard deviation of the Gaussian noise added to every
    /// input (default 0, scikit-learn's None).
    pub noise: f64,
    /// `--data-seed`: the noise and the shuffle of the points.
    pub seed: u64,
}

impl Default for TaskOptions {
    fn default() -> Self {
        Self {
            samples: 100,
            noise: 0.0,
            seed: 0,
        }
    }
}

impl Task {
    /// Whether `--samples`, `--noise` and `--data-seed` apply.
    pub fn is_drawn(self) -> bool {
        matches!(
            self,
            Task::Moons | Task::Circles | Task::Spirals | Task::ClassSpirals(_)
        )
    }

    /// The task's data with the default [`TaskOptions`].
    pub fn dataset(self) -> Dataset {
        self.generate(&TaskOptions::default())
    }

    /// The task's data; drawn tasks follow `options`.
    pub fn generate(self, options: &TaskOptions) -> Dataset {
        let (inputs, outputs, x, y) = match self {
            Task::Tutorial => (2, 2, vec![0.05, 0.10], vec![0.01, 0.99]),
            Task::Xor => (
                2,
                1,
                vec![0.0, 0.0, 0.0, 1.0, 1.0, 0.0, 1.0, 1.0],
                vec![0.0, 1.0, 1.0, 0.0],
            ),
            Task::Parity(bits) => {
                let n = bits as usize;
                let x = (0..1usize << n)
                    .flat_map(|i| (0..n).map(move |b| ((i >> (n - 1 - b)) & 1) as f64))
                    .collect();
                let y = (0..1u32 << n)
                    .map(|i| (i.count_ones() % 2) as f64)
                    .collect();
                (n, 1, x, y)
            }
            Task::Moons | Task::Circles | Task::Spirals => {
                let (x, y) = draw(self, options);
                (2, 1, x, y)
            }
            Task::ClassSpirals(classes) => {
                let (x, labels) = draw(self, options);
                let k = classes as usize;
                let y = labels
                    .iter()
                    .flat_map(|&c| (0..k).map(move |j| f64::from(u8::from(j == c as usize))))
                    .collect();
                (2, k, x, y)
            }
        };
        Dataset::new(self.to_string(), inputs, outputs, x, y).expect("built-in tasks are valid")
    }

    /// The topology a task uses when none is given: seed 003's 2-2-2, the
    /// classic 2-3-1 for XOR, N-N-1 for parity, 2-8-1 for the drawn ones.
    pub fn default_widths(self) -> Vec<usize> {
        match self {
            Task::Tutorial => vec![2, 2, 2],
            Task::Xor => vec![2, 3, 1],
            Task::Parity(bits) => vec![bits as usize, bits as usize, 1],
            Task::Moons | Task::Circles | Task::Spirals => vec![2, 8, 1],
            Task::ClassSpirals(classes) => vec![2, 16, classes as usize],
        }
    }
}

/// The points of a drawn task: class 0 then class 1 on their curves, noise
/// added, then shuffled (scikit-learn's shuffle=True), all from `seed`.
fn draw(task: Task, options: &TaskOptions) -> (Vec<f64>, Vec<f64>) {
    use rand_chacha::ChaCha8Rng;
    use rand_core::{Rng, SeedableRng};
    use std::f64::consts::PI;
    let n = options.samples;
    let (n_out, n_in) = (n / 2, n - n / 2);
    // numpy's linspace(start, stop, count), with or without the end point.
    let linspace = |start: f64, stop: f64, count: usize, endpoint: bool| -> Vec<f64> {
        let steps = if endpoint {
            count.saturating_sub(1)
        } else {
            count
        };
        (0..count)
            .map(|i| match steps {
                0 => start,
                _ => start + (stop - start) * i as f64 / steps as f64,
            })
            .collect()
    };
    let mut points: Vec<([f64; 2], f64)> = Vec::with_capacity(n);
    match task {
        Task::Moons => {
            for t in linspace(0.0, PI, n_out, true) {
                points.push(([t.cos(), t.sin()], 0.0));
            }
            for t in linspace(0.0, PI, n_in, true) {
                points.push(([1.0 - t.cos(), 1.0 - t.sin() - 0.5], 1.0));
            }
        }
        Task::Circles => {
            for t in linspace(0.0, 2.0 * PI, n_out, false) {
                points.push(([t.cos(), t.sin()], 0.0));
            }
            for t in linspace(0.0, 2.0 * PI, n_in, false) {
                points.push(([0.8 * t.cos(), 0.8 * t.sin()], 1.0));
            }
        }
        Task::ClassSpirals(classes) => {
            // The arm of `spirals`, turned by 2 pi c / K for class c; the
            // first n % K classes get one point more.
            let (k, end) = (classes as usize, 3.0 * PI);
            for c in 0..k {
                let count = n / k + usize::from(c < n % k);
                let turn = 2.0 * PI * c as f64 / k as f64;
                for t in linspace(0.25, end, count, true) {
                    let r = t / end;
                    points.push(([r * (t + turn).cos(), r * (t + turn).sin()], c as f64));
                }
            }
        }
        _ => {
            // Angle from 0.25 to 3 pi (1.5 turns), radius growing with it;
            // class 1 is class 0 turned by half a turn.
            let end = 3.0 * PI;
            for (class, count) in [(0.0, n_out), (1.0, n_in)] {
                for t in linspace(0.25, end, count, true) {
                    let r = t / end;
                    let sign = if class == 0.0 { 1.0 } else { -1.0 };
                    points.push(([sign * r * t.cos(), sign * r * t.sin()], class));
                }
            }
        }
    }
    let mut rng = ChaCha8Rng::seed_from_u64(options.seed);
    let mut uniform = || (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
    if options.noise > 0.0 {
        // Box-Muller: two standard normal values from two uniform ones.
        for (p, _) in &mut points {
            let (u1, u2) = (1.0 - uniform(), uniform());
            let r = (-2.0 * u1.ln()).sqrt();
            p[0] += options.noise * r * (2.0 * PI * u2).cos();
            p[1] += options.noise * r * (2.0 * PI * u2).sin();
        }
    }
    // Fisher-Yates.
    for i in (1..points.len()).rev() {
        let j = (uniform() * (i + 1) as f64) as usize;
        points.swap(i, j.min(i));
    }
    let x = points.iter().flat_map(|(p, _)| *p).collect();
    let y = points.iter().map(|(_, c)| *c).collect();
    (x, y)
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Task::Tutorial => f.write_str("tutorial"),
            Task::Xor => f.write_str("xor"),
            Task::Parity(bits) => write!(f, "parity:{bits}"),
            Task::Moons => f.write_str("moons"),
            Task::Circles => f.write_str("circles"),
            Task::Spirals => f.write_str("spirals"),
            Task::ClassSpirals(classes) => write!(f, "spirals:{classes}"),
        }
    }
}

impl std::str::FromStr for Task {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = |why: String| Error::Config(format!("{}: {why}", TASK.is(format!("'{s}'"))));
        Ok(match s {
            "tutorial" => Task::Tutorial,
            "xor" => Task::Xor,
            "moons" => Task::Moons,
            "circles" => Task::Circles,
            "spirals" => Task::Spirals,
            _ if s.starts_with("spirals:") => match s["spirals:".len()..].parse::<u32>() {
                Ok(k) if (2..=MAX_CLASSES).contains(&k) => Task::ClassSpirals(k),
                _ => {
                    return Err(bad(format!(
                        "K (the classes) must be a whole number from 2 to {MAX_CLASSES}"
                    )));
                }
            },
            _ => match s.strip_prefix("parity:") {
                Some(bits) => match bits.parse::<u32>() {
                    Ok(b) if (1..=MAX_PARITY_BITS).contains(&b) => Task::Parity(b),
                    _ => {
                        return Err(bad(format!(
                            "N must be a whole number from 1 to {MAX_PARITY_BITS}"
                        )));
                    }
                },
                None => return Err(bad(format!("unknown task; expected one of: {TASK_NAMES}"))),
            },
        })
    }
}

/// A reproducible synthetic data set for tests and benchmarks: inputs
/// uniform in [-1, 1), targets uniform in [0.1, 0.9), from an xorshift
/// stream keyed by `salt` (the same values on every machine).
pub fn synthetic(inputs: usize, outputs: usize, samples: usize, salt: u64) -> Dataset {
    let mut state = 0x9E37_79B9_7F4A_7C15u64 ^ salt;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let x = (0..samples * inputs).map(|_| 2.0 * next() - 1.0).collect();
    let y = (0..samples * outputs).map(|_| 0.1 + 0.8 * next()).collect();
    Dataset::new("synthetic", inputs, outputs, x, y).expect("valid synthetic data")
}

/// Samples handed over in memory rather than as a file (the Python
/// package's `data=(X, Y)`): row-major values and their widths, with the
/// argument they came as, which every message names.
#[derive(Clone, Debug, PartialEq)]
pub struct Arrays {
    /// `data`, `eval_data` or `predict`: where the caller gave them.
    pub argument: String,
    /// `rows * x_columns` inputs.
    pub x: Vec<f64>,
    pub x_columns: usize,
    /// `rows * y_columns` targets; none (0 columns) for samples to predict.
    pub y: Vec<f64>,
    pub y_columns: usize,
}

impl Arrays {
    /// The samples as a data set for networks of `inputs` inputs and
    /// `outputs` outputs whose targets keep `rule` (Y holds one class
    /// column with `rule.classes`). Errors name the argument, the array
    /// and, for a value, its row and column (0-based, as NumPy indexes
    /// them).
    pub fn to_dataset(
        &self,
        inputs: usize,
        outputs: usize,
        rule: TargetRule,
    ) -> Result<Dataset, Error> {
        let columns = rule.columns(outputs);
        let arg = &self.argument;
        let bad = |m: String| Error::Config(format!("{arg}: {m}"));
        let rows = self.x.len() / self.x_columns.max(1);
        let y_rows = self.y.len() / self.y_columns.max(1);
        if rows == 0 {
            return Err(bad("X has no rows: give at least one sample".into()));
        }
        if self.x_columns != inputs {
            return Err(bad(format!(
                "X has {} columns, but the networks take {inputs} inputs (the first of \
                 layers)",
                self.x_columns
            )));
        }
        if self.y_columns != columns && rule.classes {
            return Err(bad(format!(
                "Y has {} columns, but targets='class' takes one column of class labels \
                 (the {outputs} classes are the last of layers)",
                self.y_columns
            )));
        }
        if self.y_columns != columns {
            return Err(bad(format!(
                "Y has {} columns, but the networks have {outputs} outputs (the last of \
                 layers)",
                self.y_columns
            )));
        }
        if outputs > 0 && y_rows != rows {
            return Err(bad(format!(
                "X has {rows} rows but Y has {y_rows}: row i of each is sample i"
            )));
        }
        let (x_name, y_name) = if outputs > 0 { ("X", "Y") } else { ("X", "") };
        for (name, values, columns) in [(x_name, &self.x, inputs), (y_name, &self.y, columns)] {
            if let Some(i) = values.iter().position(|v| !v.is_finite()) {
                return Err(bad(format!(
                    "{name} row {}, column {} is {}: every value must be a finite number",
                    i / columns,
                    i % columns,
                    values[i]
                )));
            }
        }
        let mut y = Vec::with_capacity(rows * outputs);
        if outputs > 0 {
            for (r, cells) in self.y.chunks_exact(columns).enumerate() {
                let targets = rule.row(cells, outputs).map_err(|e| {
                    bad(match (e.column, e.outside) {
                        (Some(k), Some(v)) => format!(
                            "Y row {r}, column {k} is {v}, outside {}",
                            describe_range(rule.range)
                        ),
                        (Some(k), None) => format!("Y row {r}, column {k}: {}", e.message),
                        (None, _) => format!("Y row {r}: {}", e.message),
                    })
                })?;
                y.extend(targets);
            }
        }
        Dataset::new(
            format!("{arg} (arrays)"),
            inputs,
            outputs,
            self.x.clone(),
            y,
        )
    }
}

/// Loads a numeric CSV file whose first `inputs` columns are inputs and the
/// remaining ones the targets of `outputs` outputs, which keep `rule` (the
/// output activation's range; one class column with `rule.classes`). The
/// first line may be a header (every cell non-numeric). Blank lines are
/// skipped.
pub fn load_csv(
    path: &Path,
    inputs: usize,
    outputs: usize,
    rule: TargetRule,
) -> Result<Dataset, Error> {
    parse_csv(&read_text(path)?, path, inputs, outputs, rule)
}

/// A data file's text; the error names the file.
fn read_text(path: &Path) -> Result<String, Error> {
    std::fs::read_to_string(path)
        .map_err(|e| Error::data(path, None, format!("cannot read the file: {e}")))
}

/// Reads a CSV of samples to predict: every row holds `inputs` values, or
/// `inputs` and then `outputs` targets (checked against `target_range`),
/// as the first row does. The data set has no targets (`outputs` 0) in the
/// first case. A first row of another width names its line and both
/// widths.
pub fn load_prediction_csv(
    path: &Path,
    inputs: usize,
    outputs: usize,
    rule: TargetRule,
) -> Result<Dataset, Error> {
    let columns = rule.columns(outputs);
    let text = read_text(path)?;
    let first = csv_reader(&text)
        .records()
        .filter_map(Result::ok)
        .filter(|r| !r.iter().all(str::is_empty))
        .find(|r| r.iter().any(|cell| cell.parse::<f64>().is_ok()));
    let with_targets = match first {
        Some(row) if row.len() == inputs => false,
        Some(row) if row.len() == inputs + columns => true,
        Some(row) => {
            let line = row.position().map(|p| p.line() as usize);
            let targets = match rule.classes {
                true => "a class column".to_string(),
                false => format!("{outputs} targets"),
            };
            return Err(Error::data(
                path,
                line,
                format!(
                    "has {} columns, but the weights take {inputs} inputs: a row holds \
                     {inputs} inputs, or {inputs} inputs and {targets} ({} columns)",
                    row.len(),
                    inputs + columns
                ),
            ));
        }
        None => return Err(Error::data(path, None, "contains no data rows")),
    };
    let targets = if with_targets { outputs } else { 0 };
    parse_csv(&text, path, inputs, targets, rule)
}

/// How every data CSV is read: no header assumed (a first row of
/// non-numbers is skipped by the caller), rows of any width (checked by the
/// caller, naming the line), cells trimmed.
fn csv_reader(text: &str) -> csv::Reader<&[u8]> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes())
}

/// Parses CSV text; `path` is used only in messages.
pub fn parse_csv(
    text: &str,
    path: &Path,
    inputs: usize,
    outputs: usize,
    rule: TargetRule,
) -> Result<Dataset, Error> {
    let columns = rule.columns(outputs);
    let expected = inputs + columns;
    let mut cells = Vec::with_capacity(columns);
    let mut reader = csv_reader(text);
    let (mut x, mut y) = (Vec::new(), Vec::new());
    let mut first_row = true;
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map(|p| p.line() as usize);
            Error::data(path, line, format!("malformed CSV: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        if record.iter().all(str::is_empty) {
            continue;
        }
        if first_row {
            first_row = false;
            if record.iter().all(|cell| cell.parse::<f64>().is_err()) {
                continue; // a header row
            }
        }
        if record.len() != expected {
            let targets = match rule.classes {
                true => "1 class column".to_string(),
                false => format!("{outputs} targets"),
            };
            if x.is_empty() {
                // The first data row: the file and the networks disagree.
                return Err(Error::DataWidth {
                    origin: path.to_path_buf(),
                    line,
                    columns: record.len(),
                    inputs,
                    targets,
                    expected,
                });
            }
            return Err(Error::data(
                path,
                Some(line),
                format!(
                    "has {} columns, but {inputs} inputs + {targets} need {expected} (as the \
                     rows above)",
                    record.len()
                ),
            ));
        }
        cells.clear();
        for (column, cell) in record.iter().enumerate() {
            let value: f64 = cell.parse().map_err(|_| {
                Error::data(
                    path,
                    Some(line),
                    format!("column {}: '{cell}' is not a number", column + 1),
                )
            })?;
            if !value.is_finite() {
                return Err(Error::data(
                    path,
                    Some(line),
                    format!("column {}: '{cell}' is not a finite number", column + 1),
                ));
            }
            if column < inputs {
                x.push(value);
            } else {
                cells.push(value);
            }
        }
        if outputs > 0 {
            let targets = rule.row(&cells, outputs).map_err(|e| {
                let message = match (e.column, e.outside) {
                    (Some(k), Some(_)) => {
                        format!("column {}: target {}", inputs + k + 1, e.message)
                    }
                    (Some(k), None) => format!("column {}: {}", inputs + k + 1, e.message),
                    (None, _) => e.message,
                };
                Error::data(path, Some(line), message)
            })?;
            y.extend(targets);
        }
    }
    if x.is_empty() {
        return Err(Error::data(path, None, "contains no data rows"));
    }
    Dataset::new(path.display().to_string(), inputs, outputs, x, y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holding_out_splits_the_samples_by_the_seed() {
        let data = Task::Moons.generate(&TaskOptions {
            samples: 40,
            noise: 0.0,
            seed: 0,
        });
        let (train, held) = data.hold_out(0.25, 3).unwrap();
        assert_eq!((train.samples(), held.samples()), (30, 10));
        // Together they are the data, each sample once, in the data's order.
        let mut all: Vec<&[f64]> = (0..30).map(|s| train.input(s)).collect();
        all.extend((0..10).map(|s| held.input(s)));
        all.sort_by(|a, b| a.partial_cmp(b).unwrap());
        let mut original: Vec<&[f64]> = (0..40).map(|s| data.input(s)).collect();
        original.sort_by(|a, b| a.partial_cmp(b).unwrap());
        assert_eq!(all, original);
        let position = |x: &[f64]| (0..40).position(|s| data.input(s) == x).unwrap();
        let order: Vec<usize> = (0..10).map(|s| position(held.input(s))).collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{order:?}");
        // The same seed, the same split; another seed, another.
        assert_eq!(data.hold_out(0.25, 3).unwrap().1.x, held.x);
        assert_ne!(data.hold_out(0.25, 4).unwrap().1.x, held.x);
        assert!(held.name.contains("10 held out, 25%"), "{}", held.name);
        for bad in [0.0, 1.0, -0.5, f64::NAN] {
            let err = data.hold_out(bad, 0).unwrap_err().to_string();
            assert!(err.contains("strictly between 0 and 1"), "{err}");
        }
        let err = data.hold_out(0.01, 0).unwrap_err().to_string();
        assert!(
            err.contains("holds out 0, leaving no sample to evaluate on"),
            "{err}"
        );
        let err = data.hold_out(0.99, 0).unwrap_err().to_string();
        assert!(
            err.contains("holds out 40, leaving no sample to train on"),
            "{err}"
        );
    }

    #[test]
    fn builtin_tasks_have_expected_shapes() {
        let t = Task::Tutorial.dataset();
        assert_eq!((t.samples(), t.inputs, t.outputs), (1, 2, 2));
        let x = Task::Xor.dataset();
        assert_eq!((x.samples(), x.inputs, x.outputs), (4, 2, 1));
        assert_eq!(x.target(1), &[1.0]);
        let task: Task = "spirals:3".parse().unwrap();
        let options = TaskOptions {
            samples: 100,
            noise: 0.1,
            seed: 5,
        };
        let k = task.generate(&options);
        assert_eq!((k.samples(), k.inputs, k.outputs), (100, 2, 3));
        assert_eq!(task.to_string(), "spirals:3");
        // One-hot rows, 34, 33 and 33 of each class, keyed on the seed.
        let count = |c: usize| (0..100).filter(|&s| k.target(s)[c] == 1.0).count();
        assert_eq!((count(0), count(1), count(2)), (34, 33, 33));
        assert!((0..100).all(|s| k.target(s).iter().sum::<f64>() == 1.0));
        assert_eq!(task.generate(&options), k);
        assert_ne!(task.generate(&TaskOptions { seed: 6, ..options }).x, k.x);
        for bad in ["spirals:1", "spirals:65", "spirals:x"] {
            let err = bad.parse::<Task>().unwrap_err().to_string();
            assert!(err.contains("from 2 to 64"), "{err}");
        }
    }

    #[test]
    fn csv_with_header_and_blank_lines_parses() {
        let d = parse_csv(
            "a,b,y\n0.1,0.2,1\n\n0.3,0.4,0\n",
            Path::new("m.csv"),
            2,
            1,
            TargetRule::range((0.0, 1.0)),
        )
        .unwrap();
        assert_eq!(d.samples(), 2);
        assert_eq!(d.input(1), &[0.3, 0.4]);
        assert_eq!(d.target(0), &[1.0]);
    }

    #[test]
    fn arrays_are_checked_naming_argument_array_row_and_column() {
        let arrays = |x: Vec<f64>, y: Vec<f64>, y_columns| Arrays {
            argument: "data".into(),
            x,
            x_columns: 2,
            y,
            y_columns,
        };
        let xor = arrays(
            vec![0., 0., 0., 1., 1., 0., 1., 1.],
            vec![0., 1., 1., 0.],
            1,
        );
        let data = xor.to_dataset(2, 1, TargetRule::range((0.0, 1.0))).unwrap();
        assert_eq!((data.samples(), data.name.as_str()), (4, "data (arrays)"));
        assert_eq!(data.target(2), &[1.0]);
        let message = |a: &Arrays, outputs| {
            a.to_dataset(2, outputs, TargetRule::range((0.0, 1.0)))
                .unwrap_err()
                .to_string()
        };
        let mut nan = xor.clone();
        nan.x[5] = f64::NAN;
        assert_eq!(
            message(&nan, 1),
            "data: X row 2, column 1 is NaN: every value must be a finite number"
        );
        let mut far = xor.clone();
        far.y[3] = 2.0;
        assert!(message(&far, 1).starts_with("data: Y row 3, column 0 is 2, outside [0, 1]"));
        assert!(message(&xor, 2).starts_with("data: Y has 1 columns, but the networks have 2"));
        let short = arrays(xor.x.clone(), vec![0., 1., 1.], 1);
        assert!(message(&short, 1).contains("X has 4 rows but Y has 3"));
        // Samples to predict: inputs only.
        let inputs = arrays(xor.x.clone(), Vec::new(), 0);
        assert_eq!(
            inputs
                .to_dataset(2, 0, TargetRule::range((0.0, 1.0)))
                .unwrap()
                .outputs,
            0
        );
    }

    #[test]
    fn targets_are_checked_against_the_output_range() {
        let text = "x,y\n0.5,-0.5\n0.1,7.0\n";
        let err = parse_csv(
            text,
            Path::new("r.csv"),
            1,
            1,
            TargetRule::range((-1.0, 1.0)),
        )
        .unwrap_err()
        .to_string();
        assert_eq!(
            err,
            "r.csv:3: column 2: target 7 is outside [-1, 1], the values the output activation can reach"
        );
        let any = TargetRule::range((f64::NEG_INFINITY, f64::INFINITY));
        assert_eq!(
            parse_csv(text, Path::new("r.csv"), 1, 1, any)
                .unwrap()
                .samples(),
            2
        );
        let xor = Task::Xor.dataset();
        assert!(xor.check_targets(TargetRule::range((-1.0, 1.0))).is_ok());
        assert!(xor.check_targets(TargetRule::range((0.5, 1.0))).is_err());
    }

    #[test]
    fn class_labels_become_one_hot_rows_and_distributions_sum_to_one() {
        let softmax = TargetRule {
            range: (0.0, 1.0),
            distribution: true,
            classes: false,
        };
        let classes = softmax.with_classes(true);
        let d = parse_csv(
            "a,b,c\n0.1,0.2,2\n0.3,0.4,0\n",
            Path::new("k.csv"),
            2,
            3,
            classes,
        )
        .unwrap();
        assert_eq!(d.y, [0.0, 0.0, 1.0, 1.0, 0.0, 0.0]);
        for (text, message) in [
            (
                "0.1,0.2,3\n",
                "k.csv:1: column 3: class 3 is not a whole number in [0, 3)",
            ),
            (
                "0.1,0.2,1.5\n",
                "k.csv:1: column 3: class 1.5 is not a whole number",
            ),
            (
                "0.1,0.2,-1\n",
                "k.csv:1: column 3: class -1 is not a whole number",
            ),
            (
                "0.1,0.2,0,1\n",
                "k.csv:1: has 4 columns, but 2 inputs + 1 class column",
            ),
        ] {
            let err = parse_csv(text, Path::new("k.csv"), 2, 3, classes).unwrap_err();
            assert!(err.to_string().starts_with(message), "{err}");
        }
        // One-hot (and soft) rows must sum to 1 for softmax outputs.
        let ok = parse_csv("0,0.2,0.3,0.5\n", Path::new("p.csv"), 1, 3, softmax);
        assert!(ok.is_ok());
        let err = parse_csv("0,1,1,0\n0,0,0,0\n", Path::new("p.csv"), 1, 3, softmax)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("p.csv:1: the targets sum to 2, but softmax targets"),
            "{err}"
        );
        let data = Dataset::new("m", 1, 2, vec![0.0], vec![0.5, 0.4]).unwrap();
        let err = data.check_targets(softmax).unwrap_err().to_string();
        assert!(err.contains("sample 1: the targets sum to 0.9"), "{err}");
        // Arrays: the same rules, 0-based places.
        let a = Arrays {
            argument: "data".into(),
            x: vec![0.0, 1.0],
            x_columns: 1,
            y: vec![1.0, 4.0],
            y_columns: 1,
        };
        let err = a.to_dataset(1, 3, classes).unwrap_err().to_string();
        assert!(
            err.starts_with("data: Y row 1, column 0: class 4 is not"),
            "{err}"
        );
        let err = a.to_dataset(1, 3, softmax).unwrap_err().to_string();
        assert!(
            err.contains("Y has 1 columns, but the networks have 3 outputs"),
            "{err}"
        );
    }
}

#[cfg(test)]
mod task_tests {
    use super::*;

    fn drawn(task: Task, samples: usize, noise: f64) -> Dataset {
        task.generate(&TaskOptions {
            samples,
            noise,
            seed: 1,
        })
    }

    #[test]
    fn parity_lists_every_input_with_its_parity() {
        let d = Task::Parity(4).dataset();
        assert_eq!((d.samples(), d.inputs), (16, 4));
        for s in 0..16 {
            let ones = d.input(s).iter().filter(|v| **v == 1.0).count();
            assert_eq!(d.target(s)[0], (ones % 2) as f64, "sample {s}");
        }
        assert_eq!(d.input(5), [0.0, 1.0, 0.0, 1.0]);
    }

    #[test]
    fn drawn_tasks_follow_scikit_learns_curves_without_noise() {
        // make_moons: the outer moon on the unit circle's upper half, the
        // inner one (1 - cos t, 0.5 - sin t); n / 2 points in class 0.
        let moons = drawn(Task::Moons, 101, 0.0);
        let mut class0 = 0;
        for s in 0..101 {
            let ([x, y], c) = ([moons.input(s)[0], moons.input(s)[1]], moons.target(s)[0]);
            if c == 0.0 {
                class0 += 1;
                assert!((x * x + y * y - 1.0).abs() < 1e-12 && y >= -1e-12);
            } else {
                let (dx, dy) = (x - 1.0, y - 0.5);
                assert!((dx * dx + dy * dy - 1.0).abs() < 1e-12 && y <= 0.5 + 1e-12);
            }
        }
        assert_eq!(class0, 50);
        // make_circles: radius 1 and 0.8 (factor).
        let circles = drawn(Task::Circles, 40, 0.0);
        for s in 0..40 {
            let r = circles.input(s)[0].hypot(circles.input(s)[1]);
            let want = if circles.target(s)[0] == 0.0 {
                1.0
            } else {
                0.8
            };
            assert!((r - want).abs() < 1e-12, "sample {s}: radius {r}");
        }
        let spirals = drawn(Task::Spirals, 64, 0.0);
        assert!(spirals.x.iter().all(|v| v.abs() <= 1.0));
    }

    #[test]
    fn noise_and_order_come_from_the_data_seed() {
        let a = drawn(Task::Moons, 30, 0.2);
        assert_eq!(a, drawn(Task::Moons, 30, 0.2));
        let other = Task::Moons.generate(&TaskOptions {
            samples: 30,
            noise: 0.2,
            seed: 2,
        });
        assert_ne!(a.x, other.x);
        // Noise moves points off the curve, with about the asked spread.
        let clean = drawn(Task::Moons, 2_000, 0.0);
        let noisy = drawn(Task::Moons, 2_000, 0.1);
        let spread = |d: &Dataset| {
            let n = d.x.len() as f64;
            let mean = d.x.iter().sum::<f64>() / n;
            d.x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n
        };
        // Independent noise adds its variance, 0.01, to the clean spread.
        let added = spread(&noisy) - spread(&clean);
        assert!((added - 0.01).abs() < 0.002, "added variance {added}");
    }

    #[test]
    fn task_names_parse_and_print_back() {
        for name in ["tutorial", "xor", "parity:7", "moons", "circles", "spirals"] {
            assert_eq!(name.parse::<Task>().unwrap().to_string(), name);
        }
        assert!("parity:21".parse::<Task>().is_err());
        assert!("parity:x".parse::<Task>().is_err());
    }
}
