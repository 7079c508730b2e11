//! The standard benchmark workloads: the same networks, data and sizes on
//! every machine, so figures from different adapters can be set side by
//! side. Each names an epoch count that a row runs at most; a time budget
//! may run fewer (see [`super::runner`]).

use crate::batches::Batching;
use crate::data::{self, Dataset, Task, TaskOptions};
use crate::error::Error;
use crate::gpu::{AdapterChoice, GpuOptions, Strategy};
use crate::init::Init;
use crate::model::{BiasMode, ModelSpec, Topology};
use crate::run::{BackendChoice, LearningRate, RunConfig, Start};
use crate::training::TrainOptions;
use crate::vocab::{Optimizer, OptimizerConfig};

/// One standard workload.
#[derive(Clone, Debug)]
pub struct Workload {
    /// Short name used on the command line and in reports.
    pub name: &'static str,
    pub spec: ModelSpec,
    pub data: Dataset,
    pub networks: usize,
    /// The epochs a row runs unless its time budget runs out first.
    pub epochs: u64,
    /// Learning rate of every network.
    pub learning_rate: f64,
    /// Record every network's loss every this many epochs (`--history`).
    pub history: Option<u64>,
}

impl Workload {
    fn new(
        name: &'static str,
        widths: &[usize],
        bias: BiasMode,
        data: Dataset,
        networks: usize,
        epochs: u64,
    ) -> Self {
        Self {
            name,
            spec: ModelSpec {
                topology: Topology::new(widths.to_vec()).expect("standard topologies are valid"),
                bias,
                ..ModelSpec::default()
            },
            data,
            networks,
            epochs,
            learning_rate: 0.5,
            history: None,
        }
    }
}

impl Workload {
    /// The workload as a training run's configuration (xavier from
    /// [`BENCH_SEED`], on the GPU if there is one), which
    /// [`select`] validates as `train` validates its flags.
    pub fn config(&self) -> RunConfig {
        RunConfig {
            spec: self.spec.clone(),
            data: std::sync::Arc::new(self.data.clone()),
            eval: None,
            networks: self.networks,
            first_network: 0,
            population: self.networks,
            points: None,
            history: self.history,
            snapshots: Vec::new(),
            learning_rate: Some(LearningRate::Fixed(self.learning_rate)),
            start: Start::Init {
                init: Init::Xavier,
                seed: BENCH_SEED,
            },
            options: TrainOptions {
                epochs: self.epochs,
                ..TrainOptions::default()
            },
            backend: BackendChoice::Auto,
            adapter: AdapterChoice::Auto,
            strategy: Strategy::Auto,
            threads: None,
            gpu: GpuOptions::default(),
        }
    }

    /// Every network's starting parameters (xavier from [`BENCH_SEED`]),
    /// back to back: what every row and peer starts from.
    pub fn initial(&self) -> Result<Vec<f64>, Error> {
        crate::init::population_parameters(&self.spec, Init::Xavier, BENCH_SEED, 0, self.networks)
    }

    fn with_learning_rate(mut self, learning_rate: f64) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// `kind` with its default hyperparameters at `learning_rate`.
    fn with_optimizer(mut self, kind: Optimizer, learning_rate: f64) -> Self {
        self.spec.optimizer = OptimizerConfig::of(kind);
        self.with_learning_rate(learning_rate)
    }

    /// Shuffled minibatches of `size` (order seeded by [`BENCH_SEED`]).
    fn with_batches(mut self, size: usize) -> Self {
        self.spec.batching = Some(Batching {
            size,
            shuffle: true,
            seed: BENCH_SEED,
        });
        self
    }
}

/// Seed of the benchmark populations (xavier initialisation), fixed so
/// every machine trains the same networks.
pub const BENCH_SEED: u64 = 0;

/// Names of the standard workloads, in report order.
pub const WORKLOAD_NAMES: [&str; 12] = [
    "tutorial-10k",
    "tutorial-momentum",
    "tutorial-adam",
    "tutorial-cosine",
    "tutorial-100k",
    "tutorial-1m",
    "xor",
    "wide",
    "moons-minibatch",
    "moons-bootstrap",
    "tutorial-history",
    "softmax",
];

/// Salt of the softmax workload's synthetic data set.
pub const SOFTMAX_DATA_SALT: u64 = 6410;

/// 256 samples of 64 inputs uniform in [-1, 1), each labelled with one of
/// 10 classes (one-hot): the argmax of a synthetic target row, so the
/// classes are spread over the samples (fixed for ever, as the wide
/// workload's data).
pub fn softmax_data() -> Dataset {
    let raw = data::synthetic(64, 10, 256, SOFTMAX_DATA_SALT);
    let y = raw
        .y
        .chunks_exact(10)
        .flat_map(|row| {
            let class = (0..10)
                .max_by(|&a, &b| row[a].total_cmp(&row[b]))
                .unwrap_or(0);
            (0..10).map(move |j| f64::from(u8::from(j == class)))
        })
        .collect();
    Dataset::new("softmax (synthetic, 10 classes)", 64, 10, raw.x, y)
        .expect("the synthetic rows are whole")
}

/// Salt of the wide workload's synthetic data set (fixed for ever, so its
/// figures stay comparable).
pub const WIDE_DATA_SALT: u64 = 8328;

/// The standard workloads:
/// - `tutorial-10k`: seed 003's 2-2-2 (shared biases) on its one sample,
///   10,000 networks x 20,000 epochs, the headline run;
/// - `tutorial-momentum`, `tutorial-adam`: the headline run with momentum
///   0.9 (lr 0.05) and with Adam (lr 0.01, betas 0.9 and 0.999), so the
///   optimizers' cost is read against SGD's in the same table (rates
///   chosen so that no network diverges: a diverged network stops
///   updating and would flatter the figure);
/// - `tutorial-cosine`: the headline run with a learning-rate schedule
///   (100 epochs of warm-up, then a cosine over the rest), read against
///   `tutorial-10k` for a schedule's cost;
/// - `tutorial-100k`: the same network at 100,000 networks x 2,000
///   epochs, where the peers' per-call overheads matter less;
/// - `tutorial-1m`: the same network at 1,000,000 networks;
/// - `xor`: the classic 2-3-1 (per-neuron biases) on the four XOR samples,
///   10,000 networks;
/// - `wide`: an 8-32-8 network (552 parameters) on 64 synthetic samples,
///   1,000 networks at learning rate 0.05 (the others use 0.5): with the
///   sum over 64 samples, 0.5 puts some networks where float32 and float64
///   trajectories part (the NumPy peer showed 3e-2 relative differences
///   in final loss after 10 epochs; 0.05 agreed to 1e-6);
/// - `moons-minibatch`: 2-16-1 on 1,024 moons (noise 0.1, data seed 0) in
///   shuffled minibatches of 64 with Adam (lr 0.01), 10,000 networks x
///   100 epochs: a data set that is read from memory, 16 updates an epoch;
/// - `moons-bootstrap`: `moons-minibatch` with every network on its own
///   bootstrap resample of the rows (`--bootstrap`, data seed 0), read
///   against it for the resample's cost;
/// - `tutorial-history`: the headline run recording every network's loss
///   every 100 epochs (`--history 100`), read against `tutorial-10k` for
///   the cost of the learning curves;
/// - `softmax`: a 64-16-10 classifier (tanh hidden units, softmax output,
///   categorical cross-entropy, mean over the samples; 1,210 parameters,
///   beyond the fused kernel's 1,024) on [`softmax_data`], 1,000 networks
///   x 100 epochs at lr 0.5.
pub fn standard() -> Vec<Workload> {
    let tutorial = || {
        Workload::new(
            "tutorial-10k",
            &[2, 2, 2],
            BiasMode::Shared,
            Task::Tutorial.dataset(),
            10_000,
            20_000,
        )
    };
    let moons = Task::Moons.generate(&TaskOptions {
        samples: 1_024,
        noise: 0.1,
        seed: 0,
    });
    vec![
        tutorial(),
        Workload {
            name: "tutorial-momentum",
            ..tutorial()
        }
        .with_optimizer(Optimizer::Momentum, 0.05),
        Workload {
            name: "tutorial-adam",
            ..tutorial()
        }
        .with_optimizer(Optimizer::Adam, 0.01),
        {
            let mut cosine = Workload {
                name: "tutorial-cosine",
                ..tutorial()
            };
            cosine.spec.schedule = crate::schedule::ScheduleRequest {
                kind: crate::schedule::Schedule::Cosine,
                warmup: Some(100),
                ..Default::default()
            }
            .resolve(cosine.epochs)
            .expect("a valid schedule");
            cosine
        },
        Workload {
            name: "tutorial-100k",
            networks: 100_000,
            epochs: 2_000,
            ..tutorial()
        },
        Workload::new(
            "tutorial-1m",
            &[2, 2, 2],
            BiasMode::Shared,
            Task::Tutorial.dataset(),
            1_000_000,
            20_000,
        ),
        Workload::new(
            "xor",
            &[2, 3, 1],
            BiasMode::PerNeuron,
            Task::Xor.dataset(),
            10_000,
            20_000,
        ),
        Workload::new(
            "wide",
            &[8, 32, 8],
            BiasMode::PerNeuron,
            data::synthetic(8, 8, 64, WIDE_DATA_SALT),
            1_000,
            1_000,
        )
        .with_learning_rate(0.05),
        Workload::new(
            "moons-minibatch",
            &[2, 16, 1],
            BiasMode::PerNeuron,
            moons.clone(),
            10_000,
            100,
        )
        .with_optimizer(Optimizer::Adam, 0.01)
        .with_batches(64),
        {
            let mut bootstrap = Workload::new(
                "moons-bootstrap",
                &[2, 16, 1],
                BiasMode::PerNeuron,
                moons,
                10_000,
                100,
            )
            .with_optimizer(Optimizer::Adam, 0.01)
            .with_batches(64);
            bootstrap.spec.resample = Some(crate::resample::Resampling {
                how: crate::resample::Resample::Bootstrap,
                seed: 0,
            });
            bootstrap
        },
        Workload {
            name: "tutorial-history",
            history: Some(100),
            ..tutorial()
        },
        {
            let mut softmax = Workload::new(
                "softmax",
                &[64, 16, 10],
                BiasMode::PerNeuron,
                softmax_data(),
                1_000,
                100,
            );
            softmax.spec.activation = crate::model::Activation::Tanh;
            softmax.spec.output_activation = crate::model::Activation::Softmax;
            softmax.spec.loss = crate::model::Loss::CategoricalCrossEntropy;
            softmax.spec.reduction = crate::model::Reduction::Mean;
            softmax
        },
    ]
}

/// The standard workloads named in `names` (all of them when empty), in
/// report order; an unknown name is an error listing the known ones.
pub fn select(names: &[String]) -> Result<Vec<Workload>, Error> {
    if let Some(unknown) = names.iter().find(|n| !WORKLOAD_NAMES.contains(&n.as_str())) {
        return Err(Error::Config(format!(
            "--workload '{unknown}' is not a standard workload; expected one of {}",
            WORKLOAD_NAMES.join(", ")
        )));
    }
    let selected: Vec<Workload> = standard()
        .into_iter()
        .filter(|w| names.is_empty() || names.iter().any(|n| n == w.name))
        .collect();
    for workload in &selected {
        workload.config().validate()?;
    }
    Ok(selected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workloads_pass_the_run_validation_train_uses() {
        for w in standard() {
            w.config()
                .validate()
                .unwrap_or_else(|e| panic!("{}: {e}", w.name));
        }
        // The same validation refuses what train refuses.
        let mut bad = named("xor").config();
        bad.spec.loss = crate::model::Loss::CrossEntropy;
        bad.spec.output_activation = crate::model::Activation::Tanh;
        let err = bad.validate().unwrap_err().to_string();
        assert!(
            err.contains("--loss cross-entropy needs --output-activation sigmoid"),
            "{err}"
        );
        let mut narrow = named("wide").config();
        narrow.spec.output_activation = crate::model::Activation::Sigmoid;
        std::sync::Arc::make_mut(&mut narrow.data).y[5] = -0.5;
        let err = narrow.validate().unwrap_err().to_string();
        assert!(
            err.contains("sample 1, target 6: -0.5 is outside [0, 1]"),
            "{err}"
        );
    }

    fn named(name: &str) -> Workload {
        standard().into_iter().find(|w| w.name == name).unwrap()
    }

    #[test]
    fn standard_workloads_match_their_names() {
        let all = standard();
        let names: Vec<&str> = all.iter().map(|w| w.name).collect();
        assert_eq!(names, WORKLOAD_NAMES);
        let by = |name: &str| all.iter().find(|w| w.name == name).unwrap();
        let tutorial = by("tutorial-10k");
        assert_eq!(tutorial.spec.topology.to_string(), "2-2-2");
        assert_eq!((tutorial.networks, tutorial.epochs), (10_000, 20_000));
        assert_eq!(
            by("tutorial-momentum").spec.optimizer.kind,
            Optimizer::Momentum
        );
        assert_eq!(by("tutorial-adam").spec.optimizer.kind, Optimizer::Adam);
        let cosine = by("tutorial-cosine");
        assert_eq!((cosine.networks, cosine.epochs), (10_000, 20_000));
        assert_eq!(cosine.spec.schedule.kind, crate::schedule::Schedule::Cosine);
        assert_eq!(cosine.spec.schedule.warmup, 100);
        let big = by("tutorial-100k");
        assert_eq!((big.networks, big.epochs), (100_000, 2_000));
        assert_eq!(by("tutorial-1m").networks, 1_000_000);
        assert_eq!(by("xor").data.samples(), 4);
        let moons = by("moons-minibatch");
        assert_eq!(moons.data.samples(), 1_024);
        assert_eq!(moons.spec.batches(moons.data.samples()), 16);
        let wide = by("wide");
        assert_eq!(wide.spec.layout().len, 552);
        assert_eq!((wide.data.samples(), wide.data.inputs), (64, 8));
        let softmax = by("softmax");
        assert_eq!(softmax.spec.layout().len, 1_210);
        assert_eq!((softmax.data.samples(), softmax.data.outputs), (256, 10));
        // Every class is present, every row one-hot.
        for class in 0..10 {
            let count = (0..256)
                .filter(|&s| softmax.data.target(s)[class] == 1.0)
                .count();
            assert!(count > 10, "class {class}: {count} samples");
        }
        assert!((0..256).all(|s| softmax.data.target(s).iter().sum::<f64>() == 1.0));
    }

    #[test]
    fn selection_keeps_report_order_and_rejects_unknown_names() {
        let picked = select(&["wide".into(), "xor".into()]).unwrap();
        let names: Vec<&str> = picked.iter().map(|w| w.name).collect();
        assert_eq!(names, ["xor", "wide"]);
        assert_eq!(select(&[]).unwrap().len(), WORKLOAD_NAMES.len());
        let err = select(&["mnist".into()]).unwrap_err().to_string();
        assert!(err.contains("--workload 'mnist'"), "{err}");
        assert!(err.contains("tutorial-10k, tutorial-momentum"), "{err}");
    }
}
