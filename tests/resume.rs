//! Exact resume: E1 epochs, then `--resume` to E1 + E2, gives the bytes of
//! one run of E1 + E2 epochs (weights file and results CSV), for every
//! optimizer and with a learning-rate schedule, with shuffled
//! minibatches, on the CPU reference, the SIMD
//! trainer and both GPU strategies; so does a run stopped by Ctrl-C and
//! resumed. A file that
//! cannot be continued exactly is refused, naming the field and both
//! values; `--init-weights` keeps its meaning (fresh optimizer state).

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{arg, gputrain, interrupted, run_err, run_ok, temp_dir};

/// Shuffled minibatches with a smaller last batch (32 samples in batches
/// of 10), a learning-rate sweep and a target, so that every part of the
/// state a resume carries matters: parameters, optimizer state, the epoch
/// (Adam's step count, the shuffle), learning rates and target epochs.
const TRAINING: &[&str] = &[
    "--task",
    "moons",
    "--samples",
    "32",
    "--noise",
    "0.2",
    "--layers",
    "2,3,1",
    "--batch-size",
    "10",
    "--networks",
    "24",
    "--lr",
    "0.05..2",
    "--target-loss",
    "1.0",
    "--seed",
    "7",
    "--quiet",
];

/// The weights and results files of a run.
struct Outputs {
    weights: PathBuf,
    results: PathBuf,
}

impl Outputs {
    fn new(dir: &Path, name: &str) -> Self {
        Self {
            weights: dir.join(format!("{name}.safetensors")),
            results: dir.join(format!("{name}.csv")),
        }
    }

    fn args(&self) -> Vec<&str> {
        vec![
            "--weights",
            arg(&self.weights),
            "--results",
            arg(&self.results),
        ]
    }

    /// Both files are byte for byte those of `other`; where not, the
    /// first difference is named: tensor, network and both values, or the
    /// results line.
    fn assert_same_as(&self, other: &Outputs, what: &str) {
        let (mine, theirs) = (read(&self.weights), read(&other.weights));
        if mine != theirs {
            panic!(
                "{what}: {} and {} differ: {}",
                self.weights.display(),
                other.weights.display(),
                first_tensor_difference(&mine, &theirs)
            );
        }
        let (mine, theirs) = (read(&self.results), read(&other.results));
        let lines = |b: &[u8]| {
            String::from_utf8_lossy(b)
                .lines()
                .map(String::from)
                .collect::<Vec<_>>()
        };
        let (a, b) = (lines(&mine), lines(&theirs));
        if let Some((x, y)) = a.iter().zip(&b).find(|(x, y)| x != y) {
            panic!("{what}: results differ: '{x}' against '{y}' (network,learning_rate,...)");
        }
        assert_eq!(a.len(), b.len(), "{what}: results line counts");
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The first value that differs between two weights files of the same
/// layout, as "tensor 'name', network n: a against b", or the header.
fn first_tensor_difference(a: &[u8], b: &[u8]) -> String {
    let (fa, fb) = (
        safetensors::SafeTensors::deserialize(a).unwrap(),
        safetensors::SafeTensors::deserialize(b).unwrap(),
    );
    let mut names = fa.names();
    names.sort();
    for name in names {
        let (ta, tb) = (fa.tensor(name).unwrap(), fb.tensor(name).unwrap());
        let size = ta.dtype().bitsize() / 8;
        let per_network = ta.shape()[1..].iter().product::<usize>().max(1);
        let value = |bytes: &[u8]| match ta.dtype() {
            safetensors::Dtype::F32 => f32::from_le_bytes(bytes.try_into().unwrap()).to_string(),
            safetensors::Dtype::F64 => f64::from_le_bytes(bytes.try_into().unwrap()).to_string(),
            _ => i64::from_le_bytes(bytes.try_into().unwrap()).to_string(),
        };
        let pairs = ta.data().chunks(size).zip(tb.data().chunks(size));
        if let Some((i, (x, y))) = pairs.enumerate().find(|(_, (x, y))| x != y) {
            return format!(
                "tensor '{name}', network {}, element {}: {} against {}",
                i / per_network,
                i % per_network,
                value(x),
                value(y)
            );
        }
    }
    "the headers (metadata) differ".to_string()
}

/// `base` with `flag`'s value replaced by `value`.
fn replacing(base: &[&str], flag: &str, value: &str) -> Vec<String> {
    let at = base
        .iter()
        .position(|a| *a == flag)
        .expect("the flag is there")
        + 1;
    let mut args: Vec<String> = base.iter().map(|s| s.to_string()).collect();
    args[at] = value.to_string();
    args
}

fn with(base: &[&str], extra: &[&str]) -> Vec<String> {
    base.iter().chain(extra).map(|s| s.to_string()).collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

/// E1 = 30 epochs, then a resume to 70, against one run of 70.
fn resume_matches_one_run(backend: &[&str], optimizer: &str, extra: &[&str]) {
    let name = format!("{}-{optimizer}{}", backend.join(""), extra.join(""));
    let dir = temp_dir(&format!("resume-{name}"));
    let config = with(
        &[TRAINING, backend, &["--optimizer", optimizer]].concat(),
        extra,
    );
    let config = strs(&config);
    let (whole, part, resumed) = (
        Outputs::new(&dir, "whole"),
        Outputs::new(&dir, "part"),
        Outputs::new(&dir, "resumed"),
    );
    run_ok(&[&config[..], &["--epochs", "70"], &whole.args()].concat());
    run_ok(&[&config[..], &["--epochs", "30"], &part.args()].concat());
    let resume = ["--resume", arg(&part.weights), "--epochs", "70"];
    run_ok(&[&config[..], &resume, &resumed.args()].concat());
    resumed.assert_same_as(&whole, &name);
}

const CPU: &[&str] = &["--backend", "cpu"];
const SIMD: &[&str] = &["--backend", "simd"];
const FUSED: &[&str] = &["--backend", "gpu", "--kernel", "fused"];
const LAYERED: &[&str] = &["--backend", "gpu", "--kernel", "layered"];
const OPTIMIZERS: [&str; 6] = ["sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop"];
/// A schedule that changes the rate at every epoch of both parts (the
/// resume goes on from epoch 30 of the warm-up's cosine).
const SCHEDULED: &[&str] = &[
    "--lr-schedule",
    "cosine",
    "--lr-t-max",
    "60",
    "--lr-warmup",
    "10",
    "--lr-min",
    "0.001",
];

#[test]
fn resuming_on_the_cpu_equals_one_run_for_every_optimizer() {
    for optimizer in OPTIMIZERS {
        resume_matches_one_run(CPU, optimizer, &[]);
    }
    // Weight decay, and networks that stop updating at their target.
    resume_matches_one_run(CPU, "adam", &["--weight-decay", "0.01", "--stop-at-target"]);
    resume_matches_one_run(CPU, "adam", SCHEDULED);
    resume_matches_one_run(
        CPU,
        "sgd",
        &["--lr-schedule", "step", "--lr-step-size", "7"],
    );
}

#[test]
fn resuming_on_the_simd_trainer_equals_one_run_for_every_optimizer() {
    for optimizer in OPTIMIZERS {
        resume_matches_one_run(SIMD, optimizer, &[]);
    }
    resume_matches_one_run(
        SIMD,
        "adam",
        &["--weight-decay", "0.01", "--stop-at-target"],
    );
    resume_matches_one_run(SIMD, "adam", SCHEDULED);
}

#[test]
fn resuming_on_the_fused_kernel_equals_one_run_for_every_optimizer() {
    for optimizer in OPTIMIZERS {
        resume_matches_one_run(FUSED, optimizer, &[]);
    }
    resume_matches_one_run(
        FUSED,
        "nesterov",
        &["--weight-decay", "0.01", "--stop-at-target"],
    );
    resume_matches_one_run(FUSED, "adam", SCHEDULED);
}

#[test]
fn resuming_on_the_layered_kernels_equals_one_run_for_every_optimizer() {
    for optimizer in OPTIMIZERS {
        resume_matches_one_run(LAYERED, optimizer, &[]);
    }
    resume_matches_one_run(LAYERED, "momentum", &["--no-shuffle", "--stop-at-target"]);
    resume_matches_one_run(LAYERED, "adam", SCHEDULED);
}

/// A run long enough to stop by a signal: minibatches and Adam, so that
/// a resume must restore the shuffle and the optimizer's state.
const MOONS_TO_STOP: [&str; 14] = [
    "--task",
    "moons",
    "--samples",
    "64",
    "--layers",
    "2,4,1",
    "--batch-size",
    "16",
    "--optimizer",
    "adam",
    "--lr",
    "0.01..0.1",
    "--networks",
    "200",
];

/// Starts a run of `epochs`, sends SIGINT after a second, then resumes
/// the file it wrote with no `--epochs` (the interrupted run's total) and
/// compares with one uninterrupted run.
fn interrupted_run_resumes_exactly(backend: &[&str], epochs: &str) {
    let dir = temp_dir(&format!("interrupt-resume-{}", backend.join("")));
    let config = [&MOONS_TO_STOP[..], &["--quiet"], backend].concat();
    let (whole, stopped, resumed) = (
        Outputs::new(&dir, "whole"),
        Outputs::new(&dir, "stopped"),
        Outputs::new(&dir, "resumed"),
    );
    let stopped_args = [&config[..], &["--epochs", epochs], &stopped.args()].concat();
    let out = interrupted(&stopped_args, Duration::from_secs(1));
    assert_eq!(
        out.status.code(),
        Some(130),
        "{backend:?}: the run must still be under way after a second (make it longer): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    run_ok(
        &[
            &config[..],
            &["--resume", arg(&stopped.weights)],
            &resumed.args(),
        ]
        .concat(),
    );
    run_ok(&[&config[..], &["--epochs", epochs], &whole.args()].concat());
    resumed.assert_same_as(&whole, &format!("{backend:?} after Ctrl-C"));
}

// Each takes about 5 s uninterrupted on the 2-core development machine
// (CPU: 3e5 network-epochs/s on this workload; SIMD trainer: 1.4e6 as the
// tests build it, 3.9e6 in release, in groups of 16 as 200 networks do
// not fill a wide group per thread; lavapipe fused: 1.1e6).
#[test]
fn a_run_stopped_by_ctrl_c_on_the_cpu_resumes_exactly() {
    interrupted_run_resumes_exactly(CPU, "7500");
}

#[test]
fn a_run_stopped_by_ctrl_c_on_the_simd_trainer_resumes_exactly() {
    interrupted_run_resumes_exactly(SIMD, "40000");
}

#[test]
fn a_run_stopped_by_ctrl_c_on_the_gpu_resumes_exactly() {
    interrupted_run_resumes_exactly(FUSED, "30000");
}

/// A run stopped by Ctrl-C says how far it got (its last progress line
/// short of 100%, the summary's "stopped at" and network-epochs done) and
/// prints the command that finishes it; that command, run as printed,
/// writes the bytes of one uninterrupted run.
#[test]
fn a_stopped_run_prints_how_far_it_got_and_the_command_that_finishes_it() {
    let dir = temp_dir("stopped-prints-resume");
    let config = [
        &MOONS_TO_STOP[..],
        &["--backend", "cpu", "--epochs", "7500"],
    ]
    .concat();
    let (whole, stopped) = (Outputs::new(&dir, "whole"), Outputs::new(&dir, "stopped"));
    let progress = [(gputrain::progress::LOG_EVERY_VARIABLE, "0.2")];
    let stopped_args = [&config[..], &stopped.args()].concat();
    let out = common::signalled_env("INT", &stopped_args, Duration::from_secs(1), &progress);
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        out.status.code(),
        Some(130),
        "still under way after 1 s? {stderr}"
    );
    let last = stderr
        .lines()
        .rev()
        .find_map(|l| l.strip_prefix("progress: "))
        .unwrap_or_else(|| panic!("no progress line: {stderr}"));
    let percent: f64 = last.split('%').next().unwrap().parse().unwrap();
    assert!(percent < 100.0, "the last progress after a stop: {last}");
    assert!(stdout.starts_with("stopped at "), "{stdout}");
    assert!(stdout.contains("network-epochs done"), "{stdout}");
    let command = stderr
        .lines()
        .find_map(|l| l.strip_prefix("to finish the run: "))
        .unwrap_or_else(|| panic!("no resume command: {stderr}"));
    let words: Vec<&str> = command.split(' ').collect();
    assert_eq!(words[0], env!("CARGO_BIN_EXE_gputrain"), "{command}");
    let resumed = Outputs {
        weights: dir.join("stopped-resumed.safetensors"),
        results: stopped.results.clone(),
    };
    assert!(
        command.ends_with(&format!(
            "--weights {} --results {} --resume {}",
            arg(&resumed.weights),
            arg(&resumed.results),
            arg(&stopped.weights)
        )),
        "{command}"
    );
    run_ok(&words[1..]);
    run_ok(&[&config[..], &whole.args()].concat());
    resumed.assert_same_as(&whole, "the printed resume command");
}

/// `--resume FILE` with the data alone takes the networks, model and plan
/// the file records: a run of 40 epochs far from every default (topology,
/// bias, activations, loss, reduction, frozen biases, RMSprop with its
/// hyperparameters, unshuffled minibatches, seed, target and stopping at
/// it) resumed to 100
/// writes the bytes of one run of 100.
#[test]
fn resume_alone_takes_the_networks_model_and_plan_from_the_file() {
    let dir = temp_dir("resume-alone");
    let data = ["--task", "xor", "--backend", "cpu", "--quiet"];
    let model = [
        "--networks",
        "30",
        "--layers",
        "2,3,1",
        "--bias",
        "shared",
        "--activation",
        "tanh",
        "--output-activation",
        "linear",
        "--loss",
        "sse",
        "--reduction",
        "mean",
        "--freeze-bias",
        "--optimizer",
        "rmsprop",
        "--alpha",
        "0.9",
        "--momentum",
        "0.5",
        "--centered",
        "--weight-decay",
        "0.01",
        "--batch-size",
        "3",
        "--no-shuffle",
        "--seed",
        "9",
        "--target-loss",
        "0.3",
        "--stop-at-target",
        "--lr",
        "0.001..0.01",
    ];
    let (whole, part, resumed) = (
        Outputs::new(&dir, "whole"),
        Outputs::new(&dir, "part"),
        Outputs::new(&dir, "resumed"),
    );
    let config = [&data[..], &model].concat();
    run_ok(&[&config[..], &["--epochs", "40"], &part.args()].concat());
    let resume = ["--resume", arg(&part.weights), "--epochs", "100"];
    run_ok(&[&data[..], &resume, &resumed.args()].concat());
    run_ok(&[&config[..], &["--epochs", "100"], &whole.args()].concat());
    resumed.assert_same_as(&whole, "--resume with the data alone");
    // A flag given keeps its value, and is checked against the file.
    let other = run_err(&[&data[..], &resume, &["--loss", "half-sse"]].concat(), 1);
    assert!(other.contains("loss 'sse'"), "{other}");
}

#[test]
fn init_weights_takes_the_parameters_with_fresh_optimizer_state() {
    let dir = temp_dir("resume-init-weights");
    let config = [TRAINING, CPU, &["--optimizer", "adam"]].concat();
    let part = Outputs::new(&dir, "part");
    run_ok(&[&config[..], &["--epochs", "30"], &part.args()].concat());
    // --epochs 0 writes the same parameters with fresh (zero) state and
    // no epochs done; resuming that is training from them afresh.
    let fresh = Outputs::new(&dir, "fresh");
    let init = ["--init-weights", arg(&part.weights)];
    run_ok(&[&config[..], &init, &["--epochs", "0"], &fresh.args()].concat());
    let (by_init, by_resume) = (
        Outputs::new(&dir, "by-init"),
        Outputs::new(&dir, "by-resume"),
    );
    run_ok(&[&config[..], &init, &["--epochs", "25"], &by_init.args()].concat());
    let resume = ["--resume", arg(&fresh.weights), "--epochs", "25"];
    run_ok(&[&config[..], &resume, &by_resume.args()].concat());
    by_resume.assert_same_as(&by_init, "--init-weights against a resume of fresh state");
    // And that is not what resuming the trained state gives.
    let continued = Outputs::new(&dir, "continued");
    let resume = ["--resume", arg(&part.weights), "--epochs", "55"];
    run_ok(&[&config[..], &resume, &continued.args()].concat());
    let weight = |path: &Path| {
        let bytes = std::fs::read(path).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        file.tensor("layers.0.weight").unwrap().data().to_vec()
    };
    assert_ne!(weight(&continued.weights), weight(&by_init.weights));
}

/// Without --networks, --init-weights trains the file's networks (as
/// --resume does); a --networks that differs is refused, naming both.
#[test]
fn init_weights_trains_the_files_networks_unless_told_otherwise() {
    let dir = temp_dir("init-weights-networks");
    let file = dir.join("seven.safetensors");
    let xor = ["--task", "xor", "--layers", "2-3-1", "--epochs", "5"];
    run_ok(&[&xor[..], &["--networks", "7", "--weights", arg(&file)]].concat());
    let again = dir.join("again.safetensors");
    run_ok(
        &[
            &xor[..],
            &["--init-weights", arg(&file), "--weights", arg(&again)],
        ]
        .concat(),
    );
    let bytes = std::fs::read(&again).unwrap();
    let weights = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(weights.tensor("learning_rate").unwrap().shape(), [7]);
    let err = run_err(
        &[&xor[..], &["--init-weights", arg(&file), "--networks", "8"]].concat(),
        1,
    );
    assert!(
        err.contains("holds 7 networks, but the run has --networks 8"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_file_that_cannot_be_continued_exactly_is_refused() {
    let dir = temp_dir("resume-refused");
    let sgd = Outputs::new(&dir, "sgd");
    run_ok(&[TRAINING, CPU, &["--epochs", "20"], &sgd.args()].concat());
    let file = arg(&sgd.weights);
    let resume =
        |extra: &[&str], code| run_err(&[TRAINING, CPU, &["--resume", file], extra].concat(), code);
    // The run's flags with one changed.
    let changed = |flag: &str, value: &str| {
        let args = replacing(TRAINING, flag, value);
        run_err(&[&strs(&args)[..], CPU, &["--resume", file]].concat(), 1)
    };
    let err = resume(&["--optimizer", "adam"], 1);
    assert!(
        err.contains("was trained with optimizer 'sgd', but this run's optimizer is 'adam'")
            && err.contains("--init-weights")
            && err.contains(file),
        "{err}"
    );
    // Another optimizer's file, and one of another hyperparameter.
    let rmsprop = Outputs::new(&dir, "rmsprop");
    let slow = replacing(TRAINING, "--lr", "0.001");
    let slow = strs(&slow);
    let flags = ["--optimizer", "rmsprop", "--centered", "--epochs", "20"];
    run_ok(&[&slow[..], CPU, &flags, &rmsprop.args()].concat());
    let from_rmsprop = |extra: &[&str]| {
        let file = arg(&rmsprop.weights);
        run_err(&[&slow[..], CPU, &["--resume", file], extra].concat(), 1)
    };
    let err = from_rmsprop(&["--optimizer", "adamw"]);
    assert!(
        err.contains("optimizer 'rmsprop', but this run's optimizer is 'adamw'"),
        "{err}"
    );
    let err = from_rmsprop(&["--optimizer", "rmsprop", "--alpha", "0.9", "--centered"]);
    assert!(
        err.contains("alpha '0.99', but this run's alpha is '0.9'"),
        "{err}"
    );
    let err = from_rmsprop(&["--optimizer", "rmsprop"]);
    assert!(
        err.contains("centered 'true', but this run's centered is 'false'"),
        "{err}"
    );
    let err = resume(&["--loss", "sse"], 1);
    assert!(
        err.contains("loss 'half-sse', but this run's loss is 'sse'"),
        "{err}"
    );
    let err = changed("--batch-size", "8");
    assert!(
        err.contains("batch_size '10', but this run's batch_size is '8'"),
        "{err}"
    );
    let err = changed("--seed", "8");
    assert!(
        err.contains("seed '7', but this run's seed is '8'") && err.contains("--seed 7"),
        "{err}"
    );
    let err = changed("--layers", "2,5,1");
    assert!(
        err.contains("topology '2-3-1', but this run's topology is '2-5-1'"),
        "{err}"
    );
    let err = resume(&["--epochs", "10"], 2);
    assert!(
        err.contains("--epochs 10") && err.contains("already completed 20 epochs"),
        "{err}"
    );
    let err = resume(&["--init-weights", file], 2);
    assert!(
        err.contains("--resume") && err.contains("--init-weights"),
        "{err}"
    );
    // A file from before the state was stored (the same file, its format
    // field set back) holds parameters only.
    let mut bytes = std::fs::read(&sgd.weights).unwrap();
    let at = bytes
        .windows(18)
        .position(|w| w == b"gputrain-weights-2")
        .expect("format recorded");
    bytes[at + 17] = b'1';
    let old = dir.join("old.safetensors");
    std::fs::write(&old, &bytes).unwrap();
    let err = run_err(&[TRAINING, CPU, &["--resume", arg(&old)]].concat(), 1);
    assert!(
        err.contains("has no optimizer state and epoch counts to resume from")
            && err.contains("gputrain-weights-1"),
        "{err}"
    );
    // --init-weights still reads it.
    run_ok(
        &[
            TRAINING,
            CPU,
            &["--init-weights", arg(&old), "--epochs", "5"],
        ]
        .concat(),
    );
    // Resuming elsewhere works, with a note that it is not bit for bit.
    let out = gputrain(
        &[
            TRAINING,
            FUSED,
            &["--resume", file, "--epochs", "25", "--json"],
        ]
        .concat(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let notes = json["notes"].to_string();
    assert!(
        notes.contains("was trained on cpu reference-f64, this run resumes on gpu fused")
            && notes.contains("will not be bit for bit"),
        "{notes}"
    );
    assert_eq!(json["epochs_completed"], 25, "{json}");
    // Nothing was written by the refused runs.
    let left: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left.len(), 5, "{left:?}");
}

#[test]
fn a_resumed_file_records_the_state_as_pytorch_names_it() {
    let dir = temp_dir("resume-names");
    let adam = Outputs::new(&dir, "adam");
    run_ok(
        &[
            TRAINING,
            FUSED,
            &["--optimizer", "adam", "--epochs", "5"],
            &adam.args(),
        ]
        .concat(),
    );
    let bytes = std::fs::read(&adam.weights).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names = file.names();
    names.sort();
    assert_eq!(
        names,
        [
            "epochs_completed",
            "layers.0.bias",
            "layers.0.bias.exp_avg",
            "layers.0.bias.exp_avg_sq",
            "layers.0.weight",
            "layers.0.weight.exp_avg",
            "layers.0.weight.exp_avg_sq",
            "layers.1.bias",
            "layers.1.bias.exp_avg",
            "layers.1.bias.exp_avg_sq",
            "layers.1.weight",
            "layers.1.weight.exp_avg",
            "layers.1.weight.exp_avg_sq",
            "learning_rate",
            "target_epoch",
        ]
    );
    let done = file.tensor("epochs_completed").unwrap();
    assert_eq!(done.dtype(), safetensors::Dtype::I64);
    assert_eq!(done.shape(), [24]);
    assert!(done.data().chunks(8).all(|c| c == 5i64.to_le_bytes()));
    assert_eq!(
        file.tensor("layers.0.weight.exp_avg").unwrap().shape(),
        [24, 3, 2]
    );
    // The GPU trains in float32, the CPU reference in float64: each file
    // keeps its backend's values exactly.
    assert_eq!(
        file.tensor("layers.0.weight").unwrap().dtype(),
        safetensors::Dtype::F32
    );
    let cpu = Outputs::new(&dir, "cpu");
    run_ok(
        &[
            TRAINING,
            CPU,
            &["--optimizer", "momentum", "--epochs", "5"],
            &cpu.args(),
        ]
        .concat(),
    );
    let bytes = std::fs::read(&cpu.weights).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let buffer = file.tensor("layers.1.weight.momentum_buffer").unwrap();
    assert_eq!(buffer.dtype(), safetensors::Dtype::F64);
    // docs/design.md's float32 parameters, and the exact float64 ones beside.
    let weight = file.tensor("layers.1.weight").unwrap();
    assert_eq!(weight.dtype(), safetensors::Dtype::F32);
    let exact = file.tensor("layers.1.weight.float64").unwrap();
    assert_eq!(
        (exact.dtype(), exact.shape()),
        (safetensors::Dtype::F64, weight.shape())
    );
    let rates = file.tensor("learning_rate.float64").unwrap();
    assert_eq!(rates.dtype(), safetensors::Dtype::F64);
    let as_f32 = |b: &[u8]| {
        b.chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()) as f32)
            .collect::<Vec<f32>>()
    };
    let narrow: Vec<f32> = weight
        .data()
        .chunks(4)
        .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
        .collect();
    assert_eq!(
        as_f32(exact.data()),
        narrow,
        "the float32 tensor rounds the float64 one"
    );
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    for (field, value) in [
        ("optimizer", "momentum"),
        ("momentum", "0.9"),
        ("weight_decay", "0"),
        ("batch_size", "10"),
        ("shuffle", "true"),
        ("planned_epochs", "5"),
        ("target_loss", "1"),
        ("trained_on", "cpu reference-f64"),
        ("format", "gputrain-weights-2"),
    ] {
        assert_eq!(meta[field], value, "{field} in {meta:?}");
    }
}
