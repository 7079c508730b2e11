//! `gputrain bench --peers`: the struct-of-arrays peers of
//! `benches/peers/soa_peers.py` (NumPy, Numba, JAX, PyTorch eager and
//! `torch.compile`) and the batched-matrix-product peer of
//! `benches/peers/bmm_peers.py` (JAX einsum over a network axis, for
//! larger networks) on the workloads they implement, in the same run as
//! gputrain's rows, each in the configurations a careful user of its
//! library tries ([`configurations`]; the fastest is reported). Each peer first trains a short run from the workload's
//! initial weights and is checked against the float64 reference's final
//! losses; then it is timed on the epochs gputrain's fastest row ran (fewer
//! if they would not fit the row budget), its compilation not counted.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;

use crate::bench::runner::{Row, planned_epochs};
use crate::bench::workloads::{BENCH_SEED, Workload};
use crate::cpu;
use crate::error::Error;
use crate::training::TrainOptions;
use crate::weights::{Precision, WeightsMetadata};

/// The peers, in report order: soa_peers.py's, then bmm_peers.py's.
pub const PEERS: [&str; 6] = ["numpy", "numba", "jax", "torch", "torch-compile", "jax-bmm"];

/// The batched-matrix-product peers (bmm_peers.py: every layer one einsum
/// over a network axis), for networks of at least [`BMM_PARAMETERS`].
const BMM_PEERS: [&str; 1] = ["jax-bmm"];

/// Parameters from which a network has a batched-matrix-product peer
/// (issue #30: "networks with more than a few hundred parameters", where
/// a layer is a matrix product worth the name; the wide workload has
/// 552).
pub const BMM_PARAMETERS: usize = 100;

/// Epochs of the agreement run each peer makes before it is timed.
pub const CHECK_EPOCHS: u64 = 200;

/// The most samples x epochs of an agreement run (the softmax workload's
/// 256 x 100): the float64 reference trains every network of the
/// workload for it, and moons-minibatch's 1,024 samples x 100 epochs of
/// 10,000 networks would take it minutes; 25 epochs are 400 Adam steps.
pub const CHECK_SAMPLE_EPOCHS: u64 = 25_600;

/// Epochs of `workload`'s agreement run: [`CHECK_EPOCHS`], fewer for a
/// short run or many samples ([`CHECK_SAMPLE_EPOCHS`]).
pub fn check_epochs(workload: &Workload) -> u64 {
    let samples = workload.data.samples().max(1) as u64;
    CHECK_EPOCHS
        .min(workload.epochs)
        .min((CHECK_SAMPLE_EPOCHS / samples).max(1))
}

/// Where the peers come from and how they are judged.
#[derive(Clone, Debug)]
pub struct PeerSetup {
    /// The Python interpreter that runs them.
    pub python: PathBuf,
    /// The folder holding soa_peers.py.
    pub scripts: PathBuf,
    /// `cpu` or `cuda` (for JAX and PyTorch).
    pub device: String,
    /// Largest |loss - reference| / (1e-3 + reference) accepted.
    pub tolerance: f64,
}

/// How a peer fared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum PeerStatus {
    Measured,
    NotInstalled,
    /// Its final losses disagree with the reference beyond the tolerance.
    Failed,
}

/// One peer on one workload.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerRow {
    pub peer: String,
    pub workload: String,
    pub status: PeerStatus,
    /// The framework's version and threads or device, as the peer says.
    pub versions: Option<serde_json::Value>,
    pub device: Option<String>,
    pub epochs: u64,
    pub seconds: Option<f64>,
    pub network_epochs_per_second: Option<f64>,
    /// After [`check_epochs`] epochs, against the float64 reference.
    pub worst_relative_loss_difference: Option<f64>,
    /// The tuning of the configuration reported (the fastest of those
    /// [`configurations`] gives the peer that agreed with the reference).
    pub configuration: String,
    /// Every configuration timed, with its rate.
    pub tried: Vec<PeerTrial>,
    /// gputrain's fastest row on the workload in this run, over the peer.
    pub gputrain_ratio: Option<f64>,
}

/// One configuration of a peer, timed.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PeerTrial {
    pub configuration: String,
    pub network_epochs_per_second: Option<f64>,
}

/// A peer's tuning: what the table calls it and soa_peers.py's arguments.
#[derive(Clone, Debug, PartialEq)]
pub struct Configuration {
    pub label: String,
    pub args: Vec<String>,
}

/// The configurations `peer` is timed in, the best reported (issue #30:
/// the peers as a careful user of each library writes them). JAX on the
/// CPU: its four habits (8 epochs unrolled per loop iteration, one XLA
/// host device per core, 512-bit vectors where the CPU has AVX-512,
/// blocks of at most 10,000 networks a device) all on, each off in turn,
/// and none. torch.compile: 1 and 8 epochs per compiled call. The others:
/// as they are.
pub fn configurations(peer: &str, device: &str, cores: usize, avx512: bool) -> Vec<Configuration> {
    let plain = || Configuration {
        label: "as written".into(),
        args: Vec::new(),
    };
    match peer {
        "jax" | "jax-bmm" if device == "cpu" => {
            // (flag, label, value) of each habit.
            let habits: Vec<(&str, String, &str)> = [
                ("--unroll", "unroll 8".to_string(), "8"),
                ("--host-devices", format!("{cores} host devices"), "0"),
                ("--vector-width", "512-bit".to_string(), "512"),
                ("--block", "blocks of 10,000".to_string(), "10000"),
            ]
            .into_iter()
            .filter(|(flag, _, _)| avx512 || *flag != "--vector-width")
            .collect();
            let with = |skip: Option<&str>| {
                let on: Vec<_> = habits.iter().filter(|h| Some(h.0) != skip).collect();
                Configuration {
                    label: on
                        .iter()
                        .map(|h| h.1.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    args: on
                        .iter()
                        .flat_map(|h| [h.0.to_string(), h.2.to_string()])
                        .collect(),
                }
            };
            let mut all = vec![with(None)];
            all.extend(habits.iter().map(|h| with(Some(h.0))));
            all.push(plain());
            all
        }
        "jax" => vec![
            Configuration {
                label: "unroll 8".into(),
                args: vec!["--unroll".into(), "8".into()],
            },
            plain(),
        ],
        "torch-compile" => [1, 8]
            .into_iter()
            .map(|k| Configuration {
                label: format!(
                    "{k} epoch{} per compiled call",
                    if k == 1 { "" } else { "s" }
                ),
                args: vec!["--torch-epochs".into(), k.to_string()],
            })
            .collect(),
        _ => vec![plain()],
    }
}

/// The largest samples x parameters the peers take: their epoch is
/// straight-line code over the data baked in, which grows with it; at 64 x
/// 552 (the wide workload) Numba was still compiling after three minutes.
pub const MAX_PROGRAM_SIZE: usize = 4_096;

/// Whether some peer implements `workload` ([`applies`]).
pub fn supports(workload: &Workload) -> bool {
    PEERS.iter().any(|peer| applies(peer, workload))
}

/// Whether `peer` implements `workload`, at a constant rate and without
/// frozen biases, resampled rows or a history. The struct-of-arrays peers:
/// sigmoid layers with a squared error, full-batch SGD, and a program of at
/// most [`MAX_PROGRAM_SIZE`]. The batched-matrix-product ones: the networks
/// the others cannot take (at least [`BMM_PARAMETERS`], or data beyond
/// their program size) with sigmoid or tanh hidden layers and a sigmoid
/// output (with a squared error) or a softmax one (with categorical
/// cross-entropy), trained by SGD or by Adam without weight decay, on full
/// batches or on minibatches in gputrain's order.
pub fn applies(peer: &str, workload: &Workload) -> bool {
    use crate::model::Activation::{Sigmoid, Softmax, Tanh};
    use crate::vocab::Loss::{CategoricalCrossEntropy, HalfSse, Sse};
    use crate::vocab::{Hyperparameter, Optimizer};
    let spec = &workload.spec;
    let params = spec.layout().len;
    let squared = matches!(spec.loss, HalfSse | Sse);
    let program = workload.data.samples() * params;
    let sgd = spec.optimizer.kind == Optimizer::Sgd;
    let fits = if BMM_PEERS.contains(&peer) {
        let output = match spec.output_activation {
            Sigmoid => squared,
            Softmax => spec.loss == CategoricalCrossEntropy,
            _ => false,
        };
        let adam = spec.optimizer.kind == Optimizer::Adam
            && spec.optimizer[Hyperparameter::WeightDecay] == 0.0;
        (params >= BMM_PARAMETERS || program > MAX_PROGRAM_SIZE)
            && matches!(spec.activation, Sigmoid | Tanh)
            && output
            && (sgd || adam)
    } else {
        program <= MAX_PROGRAM_SIZE
            && spec.activation == Sigmoid
            && spec.output_activation == Sigmoid
            && squared
            && sgd
            && spec.batching.is_none()
    };
    fits && spec.schedule.is_constant()
        && spec.resample.is_none()
        && !spec.freeze_bias
        && workload.history.is_none()
}

impl PeerSetup {
    /// Checks the interpreter and the script are there, naming the flag.
    pub fn check(&self) -> Result<(), Error> {
        let script = self.scripts.join("soa_peers.py");
        if !script.exists() {
            return Err(Error::Config(format!(
                "--peers-dir {}: no soa_peers.py there (it is in the repository's \
                 benches/peers)",
                self.scripts.display()
            )));
        }
        let found = Command::new(&self.python).arg("--version").output();
        match found {
            Ok(out) if out.status.success() => Ok(()),
            _ => Err(Error::Config(format!(
                "--python {}: cannot run it (the peers need Python 3 with NumPy; set \
                 --python or GPUTRAIN_PYTHON)",
                self.python.display()
            ))),
        }
    }

    /// Runs every peer on `workload` (which [`supports`] them), after
    /// gputrain's `rows` for it; `budget` seconds bound each timed run.
    pub fn run(
        &self,
        workload: &Workload,
        rows: &[Row],
        budget: f64,
        dir: &Path,
        log: &mut dyn FnMut(&str),
    ) -> Result<Vec<PeerRow>, Error> {
        let (weights, data) = (dir.join("init.safetensors"), dir.join("data.csv"));
        let initial = workload.initial()?;
        let rates = vec![workload.learning_rate; workload.networks];
        let meta = WeightsMetadata {
            snapshots_only: false,
            epochs: 0,
            planned_epochs: 0,
            seed: BENCH_SEED,
            interrupted: false,
            trained_on: "initialisation".into(),
            target_loss: None,
            stop_at_target: false,
            precision: Precision::F64,
            fingerprint: None,
            init: None,
            snapshots: Vec::new(),
            resampled: None,
        };
        // Fresh optimizer state (Adam's moments at zero), as a run starts.
        let state = vec![0.0; workload.spec.optimizer.state_slots() * initial.len()];
        crate::weights::write(&weights, &workload.spec, &initial, &state, &rates, &meta)?;
        write_data(&data, workload)?;
        // The reference's final losses after the agreement run.
        let check = check_epochs(workload);
        let mut reference = initial.clone();
        let options = TrainOptions {
            epochs: check,
            ..TrainOptions::default()
        };
        let expected: Vec<f64> = cpu::train_population(
            &workload.spec,
            &workload.data,
            &mut reference,
            &rates,
            &options,
        )
        .iter()
        .map(|o| o.final_loss)
        .collect();
        let fastest = rows
            .iter()
            .filter(|r| r.workload == workload.name)
            .max_by(|a, b| {
                a.network_epochs_per_second
                    .total_cmp(&b.network_epochs_per_second)
            });
        let timed_epochs = fastest.map_or(workload.epochs, |r| r.epochs);
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let avx512 = crate::simd::Isa::Avx512.is_supported();
        let mut out = Vec::new();
        for peer in PEERS.into_iter().filter(|p| applies(p, workload)) {
            let row = |status, epochs, configuration: &str| PeerRow {
                peer: peer.to_string(),
                workload: workload.name.to_string(),
                status,
                versions: None,
                device: None,
                epochs,
                seconds: None,
                network_epochs_per_second: None,
                worst_relative_loss_difference: None,
                gputrain_ratio: None,
                configuration: configuration.to_string(),
                tried: Vec::new(),
            };
            let results = dir.join(format!("{peer}.csv"));
            // The fastest configuration that agrees; else the first that
            // disagreed.
            let mut best: Option<PeerRow> = None;
            let mut tried = Vec::new();
            for config in configurations(peer, &self.device, cores, avx512) {
                log(&format!(
                    "{} with the {peer} peer ({})",
                    workload.name, config.label
                ));
                let run = |epochs| self.peer(peer, &config.args, &weights, &data, epochs, &results);
                let Some(first) = run(check)? else {
                    best = Some(row(PeerStatus::NotInstalled, 0, "-"));
                    break;
                };
                let worst = worst_difference(&read_losses(&results)?, &expected);
                let mut measured = row(PeerStatus::Failed, check, &config.label);
                measured.versions = first.get("versions").cloned();
                measured.device = first["device"].as_str().map(String::from);
                measured.worst_relative_loss_difference = Some(worst);
                if worst > self.tolerance {
                    log(&format!(
                        "note: the {peer} peer ({}) disagrees with the reference on {} \
                         ({worst:.2e} > {})",
                        config.label, workload.name, self.tolerance
                    ));
                    tried.push(PeerTrial {
                        configuration: config.label.clone(),
                        network_epochs_per_second: None,
                    });
                    if best.is_none() {
                        best = Some(measured);
                    }
                    continue;
                }
                // The timed run: gputrain's epochs, or as many as the
                // budget allows at the rate the agreement run showed.
                let seconds = first["seconds"].as_f64().unwrap_or(0.0);
                let epochs =
                    planned_epochs((check, seconds), (check, seconds), budget, timed_epochs);
                let timed = run(epochs)?.expect("the peer was there a moment ago");
                measured.status = PeerStatus::Measured;
                measured.epochs = epochs;
                measured.seconds = timed["seconds"].as_f64();
                let rate = timed["network_epochs_per_second"].as_f64();
                measured.network_epochs_per_second = rate;
                measured.gputrain_ratio = rate
                    .zip(fastest)
                    .map(|(peer_rate, row)| row.network_epochs_per_second / peer_rate);
                tried.push(PeerTrial {
                    configuration: config.label.clone(),
                    network_epochs_per_second: rate,
                });
                let faster = match &best {
                    Some(b) if b.status == PeerStatus::Measured => {
                        rate.unwrap_or(0.0) > b.network_epochs_per_second.unwrap_or(0.0)
                    }
                    _ => true,
                };
                if faster {
                    best = Some(measured);
                }
            }
            let mut best = best.expect("every peer has a configuration");
            best.tried = tried;
            out.push(best);
        }
        Ok(out)
    }

    /// One run of `peer`: its JSON line, or `None` if its framework is not
    /// installed.
    fn peer(
        &self,
        peer: &str,
        args: &[String],
        weights: &Path,
        data: &Path,
        epochs: u64,
        results: &Path,
    ) -> Result<Option<serde_json::Value>, Error> {
        let script = match BMM_PEERS.contains(&peer) {
            true => "bmm_peers.py",
            false => "soa_peers.py",
        };
        let out = Command::new(&self.python)
            .arg(self.scripts.join(script))
            .arg(weights)
            .args(["--peer", peer, "--device", &self.device, "--data"])
            .arg(data)
            .args(["--epochs", &epochs.to_string(), "--results"])
            .arg(results)
            .args(args)
            .output()
            .map_err(|e| Error::Config(format!("--python {}: {e}", self.python.display())))?;
        if out.status.code() == Some(3) {
            return Ok(None);
        }
        let stdout = String::from_utf8_lossy(&out.stdout);
        let failed = |why: String| {
            Error::Config(format!(
                "the {peer} peer failed ({why}): {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        };
        if !out.status.success() {
            return Err(failed(format!("exit {:?}", out.status.code())));
        }
        let line = stdout.lines().last().unwrap_or_default();
        serde_json::from_str(line)
            .map(Some)
            .map_err(|e| failed(format!("its output is not JSON: {e}")))
    }
}

/// The workload's samples as the CSV the peers read.
fn write_data(path: &Path, workload: &Workload) -> Result<(), Error> {
    std::fs::write(path, workload.data.to_csv())
        .map_err(|e| Error::Config(format!("writing {}: {e}", path.display())))
}

/// The final losses a peer wrote (network,final_loss).
fn read_losses(path: &Path) -> Result<Vec<f64>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("reading {}: {e}", path.display())))?;
    Ok(text
        .lines()
        .skip(1)
        .filter_map(|l| l.split(',').nth(1))
        .map(|v| v.parse().unwrap_or(f64::NAN))
        .collect())
}

/// The worst |a - b| / (1e-3 + |b|) (both non-finite counts as agreeing;
/// one alone, or a missing network, as infinitely far).
pub fn worst_difference(got: &[f64], expected: &[f64]) -> f64 {
    if got.len() != expected.len() {
        return f64::INFINITY;
    }
    got.iter()
        .zip(expected)
        .map(|(&a, &b)| match (a.is_finite(), b.is_finite()) {
            (true, true) => (a - b).abs() / (1e-3 + b.abs()),
            (false, false) => 0.0,
            _ => f64::INFINITY,
        })
        .fold(0.0, f64::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_are_relative_and_count_lone_divergence() {
        assert_eq!(worst_difference(&[1.0, 2.0], &[1.0, 2.0]), 0.0);
        let d = worst_difference(&[1.001], &[1.0]);
        assert!((d - 0.001 / 1.001).abs() < 1e-12, "{d}");
        assert_eq!(worst_difference(&[f64::NAN], &[f64::INFINITY]), 0.0);
        assert_eq!(worst_difference(&[f64::NAN], &[1.0]), f64::INFINITY);
        assert_eq!(worst_difference(&[1.0], &[1.0, 2.0]), f64::INFINITY);
    }

    #[test]
    fn jax_is_timed_with_each_habit_on_and_off() {
        let jax = configurations("jax", "cpu", 2, true);
        let labels: Vec<&str> = jax.iter().map(|c| c.label.as_str()).collect();
        assert_eq!(
            labels,
            [
                "unroll 8, 2 host devices, 512-bit, blocks of 10,000",
                "2 host devices, 512-bit, blocks of 10,000",
                "unroll 8, 512-bit, blocks of 10,000",
                "unroll 8, 2 host devices, blocks of 10,000",
                "unroll 8, 2 host devices, 512-bit",
                "as written",
            ]
        );
        assert_eq!(
            jax[0].args.join(" "),
            "--unroll 8 --host-devices 0 --vector-width 512 --block 10000"
        );
        // No AVX-512: no 512-bit habit.
        assert_eq!(configurations("jax", "cpu", 2, false).len(), 5);
        assert_eq!(configurations("torch-compile", "cpu", 2, true).len(), 2);
        assert_eq!(configurations("numpy", "cpu", 2, true)[0].args.len(), 0);
    }

    #[test]
    fn peers_take_the_workloads_they_implement() {
        let all = crate::bench::workloads::standard();
        let names: Vec<&str> = all.iter().filter(|w| supports(w)).map(|w| w.name).collect();
        assert_eq!(
            names,
            [
                "tutorial-10k",
                "tutorial-100k",
                "tutorial-1m",
                "xor",
                "wide",
                "moons-minibatch",
                "softmax"
            ]
        );
        let wide = all.iter().find(|w| w.name == "wide").unwrap();
        let on_wide: Vec<&str> = PEERS.into_iter().filter(|p| applies(p, wide)).collect();
        assert_eq!(on_wide, ["jax-bmm"]);
        let xor = all.iter().find(|w| w.name == "xor").unwrap();
        assert!(!applies("jax-bmm", xor) && applies("jax", xor));
        let softmax = all.iter().find(|w| w.name == "softmax").unwrap();
        let on_softmax: Vec<&str> = PEERS.into_iter().filter(|p| applies(p, softmax)).collect();
        assert_eq!(on_softmax, ["jax-bmm"]);
        // Minibatches with Adam on 1,024 rows: beyond the struct-of-arrays
        // program, the einsum peer's.
        let moons = all.iter().find(|w| w.name == "moons-minibatch").unwrap();
        let on_moons: Vec<&str> = PEERS.into_iter().filter(|p| applies(p, moons)).collect();
        assert_eq!(on_moons, ["jax-bmm"]);
        // Its agreement run: 25 epochs of 1,024 samples; the others' 200,
        // or their whole run.
        assert_eq!(check_epochs(moons), 25);
        assert_eq!(check_epochs(wide), 200);
        assert_eq!(check_epochs(softmax), 100);
        // Adam with weight decay, or another optimizer: no peer.
        use crate::vocab::{Hyperparameter, Optimizer, OptimizerConfig};
        let mut decayed = moons.clone();
        decayed.spec.optimizer = moons.spec.optimizer.with(Hyperparameter::WeightDecay, 0.1);
        assert!(!supports(&decayed));
        let mut momentum = moons.clone();
        momentum.spec.optimizer = OptimizerConfig::of(Optimizer::Momentum);
        assert!(!supports(&momentum));
    }
}
