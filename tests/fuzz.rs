//! Property-based fuzzing of every reader of outside input: the CSV data
//! reader, the weights-file reader and the command line. Random bytes,
//! random mutations of valid inputs, and random argument lists drawn from
//! the real flags and awkward values must each give a value or an error,
//! never a panic. Case counts are kept small (CI runs them every time);
//! `PROPTEST_CASES=100000 cargo test --test suite fuzz::` fuzzes for longer.

use std::path::{Path, PathBuf};

use clap::Parser;
use gputrain::cli::{Cli, Command};
use gputrain::data::{TargetRule, load_csv};
use gputrain::model::ModelSpec;
use gputrain::vocab::{Optimizer, OptimizerConfig};
use gputrain::weights::{self, Precision, ReadFor, ResumeBlock, WeightsMetadata, WeightsReader};
use proptest::prelude::*;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gputrain-fuzz-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A valid data file for 2 inputs and 1 output.
const XOR_CSV: &str = "x1,x2,y\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n";

/// The default 2-2-2 model trained with Adam: its files hold optimizer
/// state, epochs and target epochs too.
fn fuzz_spec() -> ModelSpec {
    ModelSpec {
        optimizer: OptimizerConfig::of(Optimizer::Adam),
        ..ModelSpec::default()
    }
}

/// A valid weights file for [`fuzz_spec`], 3 networks.
fn valid_weights() -> Vec<u8> {
    let spec = fuzz_spec();
    let path = scratch("valid.safetensors");
    let p = spec.layout().len;
    let params: Vec<f64> = (0..3 * p).map(|i| i as f64 * 0.01).collect();
    let state: Vec<f64> = (0..3 * 2 * p).map(|i| i as f64 * 0.001).collect();
    let meta = WeightsMetadata {
        snapshots_only: false,
        epochs: 10,
        planned_epochs: 20,
        seed: 1,
        interrupted: true,
        trained_on: "gpu fused on fuzz".into(),
        target_loss: None,
        stop_at_target: false,
        precision: Precision::F32,
        fingerprint: Some("0123456789abcdef".into()),
        init: Some(gputrain::init::Init::Xavier),
        snapshots: Vec::new(),
        resampled: None,
    };
    weights::write(&path, &spec, &params, &state, &[0.5, 0.25, 0.125], &meta).unwrap();
    std::fs::read(path).unwrap()
}

/// Some byte edits of `base`: overwrite, delete, insert, truncate.
fn mutate(base: &[u8], edits: &[(u8, usize, u8)]) -> Vec<u8> {
    let mut bytes = base.to_vec();
    for &(kind, at, value) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            at % bytes.len()
        };
        match kind % 4 {
            0 if !bytes.is_empty() => bytes[at] = value,
            1 if !bytes.is_empty() => {
                bytes.remove(at);
            }
            2 => bytes.insert(at, value),
            _ => bytes.truncate(at),
        }
    }
    bytes
}

fn read_csv(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    // Either a data set or an error; the only thing that must not happen is
    // a panic, which fails the property.
    if let Ok(data) = load_csv(path, 2, 1, TargetRule::range((0.0, 1.0))) {
        assert_eq!((data.inputs, data.outputs), (2, 1));
        assert!(data.samples() > 0);
    }
}

fn read_weights(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    // The model `gputrain predict` takes from the file.
    let _ = weights::recorded_model(path);
    let spec = fuzz_spec();
    let p = spec.layout().len;
    if let Ok(mut reader) = WeightsReader::open(path, &spec, ReadFor::Init) {
        let n = reader.networks();
        let mut params = vec![0.0; n * p];
        let mut rates = vec![0.0; n];
        if reader.read_block(0, &mut params, &mut rates, None).is_ok() {
            assert!(params.iter().chain(&rates).all(|v| v.is_finite()));
        }
    }
    let resume = ReadFor::Resume { target_loss: None };
    if let Ok(mut reader) = WeightsReader::open(path, &spec, resume) {
        let n = reader.networks();
        let (mut params, mut state) = (vec![0.0; n * p], vec![0.0; 2 * n * p]);
        let (mut rates, mut done, mut targets) = (vec![0.0; n], vec![0; n], vec![None; n]);
        let block = ResumeBlock {
            state: &mut state,
            epochs_completed: &mut done,
            target_epochs: &mut targets,
        };
        if reader
            .read_block(0, &mut params, &mut rates, Some(block))
            .is_ok()
        {
            assert!(rates.iter().all(|v| v.is_finite()));
            assert!(done.iter().all(|&d| d <= gputrain::training::MAX_EPOCHS));
        }
    }
}

/// The flags of `gputrain train` and values that have broken parsers.
const TOKENS: &[&str] = &[
    "--networks",
    "--epochs",
    "--lr",
    "--layers",
    "--bias",
    "--loss",
    "--activation",
    "--output-activation",
    "--reduction",
    "--init",
    "--init-weights",
    "--resume",
    "predict",
    "--networks-select",
    "--holdout",
    "--eval-data",
    "0.25",
    "--ensemble",
    "--scores",
    "best",
    "0-3,7",
    "median",
    "--seed",
    "--target-loss",
    "--stop-at-target",
    "--verify",
    "--verify-tolerance",
    "--task",
    "--data",
    "--kernel",
    "--backend",
    "--freeze-bias",
    "--optimizer",
    "--momentum",
    "--beta1",
    "--beta2",
    "--eps",
    "--weight-decay",
    "--batch-size",
    "--no-shuffle",
    "--samples",
    "--noise",
    "--data-seed",
    "--out",
    "data",
    "adam",
    "nesterov",
    "momentum",
    "moons",
    "spirals",
    "parity:3",
    "parity:99",
    "--adapter",
    "--json",
    "-q",
    "train",
    "bench",
    "adapters",
    "--",
    "0",
    "1",
    "-1",
    "3",
    "1e309",
    "-0",
    "nan",
    "inf",
    "0.5",
    "0.05..5",
    "5..0.05",
    "..",
    "1..",
    "2,3,1",
    "2,,1",
    "0,2",
    "2",
    "2,2,2",
    "tanh",
    "relu",
    "linear",
    "sigmoid",
    "cross-entropy",
    "sse",
    "half-sse",
    "mean",
    "sum",
    "uniform:0",
    "uniform:-1",
    "uniform:",
    "tutorial",
    "xavier",
    "he",
    "xor",
    "shared",
    "none",
    "per-neuron",
    "4294967295",
    "4294967296",
    "18446744073709551616",
    "",
    "/nonexistent/file.csv",
    "fused",
    "layered",
    "auto",
    "cpu",
    "gpu",
    "é",
    "\u{0}",
];

fn parse_and_configure(args: &[String]) {
    let argv = std::iter::once("gputrain".to_string()).chain(args.iter().cloned());
    let Ok(cli) = Cli::try_parse_from(argv) else {
        return;
    };
    let _ = match &cli.command {
        Some(Command::Train(args)) => args.to_plan().map(|_| ()),
        Some(Command::Bench(args)) => args.to_suite().map(|_| ()),
        Some(Command::Data(args)) => args.drawn.options(Some(args.task)).map(|_| ()),
        // Parsing is what predict's and plot's flags do before reading
        // their files.
        Some(Command::Adapters { .. })
        | Some(Command::Predict(_))
        | Some(Command::Plot(_))
        | Some(Command::Merge(_))
        | Some(Command::Rerun(_))
        | Some(Command::Completions { .. })
        | Some(Command::Man { .. }) => Ok(()),
        None => cli.train.to_plan().map(|_| ()),
    };
}

/// A valid learning-curve CSV (`--history-csv`).
const HISTORY_CSV: &str = "epoch,min,p10,median,p90,max,reached_target,networks,diverged\n\
     0,0.1,0.2,0.3,0.4,0.5,,4,0\n10,0.01,0.02,0.03,0.04,0.05,,4,1\n";

/// The plot inputs' readers: a figure's data or an error, never a panic.
fn read_plot_inputs(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    if let Ok(curves) = gputrain::plot::read_history(path) {
        assert!(!curves.points.is_empty());
    }
    if let Ok(networks) = gputrain::plot::read_results(path) {
        assert!(!networks.is_empty());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn plot_readers_never_panic_on_mutated_files(
        edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)
    ) {
        read_plot_inputs(&scratch("mutated-history.csv"), &mutate(HISTORY_CSV.as_bytes(), &edits));
    }

    #[test]
    fn plot_readers_never_panic_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        read_plot_inputs(&scratch("random-plot-input"), &bytes);
    }

    #[test]
    fn csv_reader_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        read_csv(&scratch("random.csv"), &bytes);
    }

    #[test]
    fn csv_reader_never_panics_on_mutated_files(
        edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)
    ) {
        read_csv(&scratch("mutated.csv"), &mutate(XOR_CSV.as_bytes(), &edits));
    }

    #[test]
    fn weights_reader_never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        read_weights(&scratch("random.safetensors"), &bytes);
    }

    #[test]
    fn weights_reader_never_panics_on_mutated_files(
        edits in proptest::collection::vec((any::<u8>(), any::<usize>(), any::<u8>()), 1..6)
    ) {
        read_weights(&scratch("mutated.safetensors"), &mutate(&valid_weights(), &edits));
    }

    #[test]
    fn argument_parser_never_panics(
        picks in proptest::collection::vec((0..TOKENS.len(), any::<bool>(), "[ -~]{0,8}"), 0..8)
    ) {
        let args: Vec<String> = picks
            .into_iter()
            .map(|(i, free, text)| if free { text } else { TOKENS[i].to_string() })
            .collect();
        parse_and_configure(&args);
    }
}

/// Two shards of one small run (xor, 6 networks, 2 shards), made once by
/// the binary.
fn shard_pair() -> &'static (PathBuf, PathBuf) {
    static SHARDS: std::sync::OnceLock<(PathBuf, PathBuf)> = std::sync::OnceLock::new();
    SHARDS.get_or_init(|| {
        let dirs = (scratch("shard-0"), scratch("shard-1"));
        for (i, dir) in [&dirs.0, &dirs.1].into_iter().enumerate() {
            let _ = std::fs::remove_dir_all(dir);
            let shard = format!("{i}/2");
            let out = std::process::Command::new(env!("CARGO_BIN_EXE_gputrain"))
                .args(["--task", "xor", "--networks", "6", "--epochs", "5", "-q"])
                .args(["--shard", &shard, "--out", dir.to_str().unwrap()])
                .env("XDG_RUNTIME_DIR", std::env::temp_dir())
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        dirs
    })
}

/// The numbers of a run.json an edit may change, as JSON pointers.
const RUN_FIELDS: [&str; 9] = [
    "/shard/0",
    "/shard/1",
    "/ids/0",
    "/ids/1",
    "/networks",
    "/points",
    "/replicates",
    "/models/0/ids/0",
    "/models/0/ids/1",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// merge reads a shard whose run.json had its numbers edited: a
    /// merge or an error, never a panic.
    #[test]
    fn merge_never_panics_on_an_edited_run_json(
        edits in proptest::collection::vec(
            (0..RUN_FIELDS.len(), prop_oneof![
                Just(0u64), Just(1), Just(2), Just(3), Just(5), Just(6), Just(7),
                Just(u32::MAX as u64), Just(u64::MAX), any::<u64>(),
            ]),
            1..4,
        ),
        case in any::<u32>(),
    ) {
        let (first, second) = shard_pair();
        let dir = scratch(&format!("edited-{case}"));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        for entry in std::fs::read_dir(first).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        let run = dir.join("run.json");
        let mut json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&run).unwrap()).unwrap();
        for (field, value) in &edits {
            if let Some(slot) = json.pointer_mut(RUN_FIELDS[*field]) {
                *slot = serde_json::Value::from(*value);
            }
        }
        std::fs::write(&run, json.to_string()).unwrap();
        let out = scratch(&format!("merged-{case}"));
        let _ = gputrain::sweep::merge::merge(&[dir.clone(), second.clone()], &out);
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&out);
    }
}
