//! `--early-stopping PATIENCE --eval-every K`: each network stops once
//! its held-out loss has not improved for PATIENCE epochs, and what the
//! run writes of it (parameters, optimizer state, final and held-out
//! loss) is, byte for byte, a run to its best epoch, on every backend;
//! the results say best_epoch and stopped_epoch, the summary and the
//! groups count networks stopped early apart from diverged ones; bad
//! flags are refused before any output.

use crate::common;

use common::{arg, results_by_column as results, run_err, run_ok, temp_dir};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Moons in shuffled minibatches with Adam and a spread of rates, a
/// 30% hold-out checked every 2 epochs, patience 6: on the reference the
/// networks' best epochs are 80, 80, 76, 24, 74 and 68, and those of 24
/// and 68 stop early (at 30 and 74); the one of 74 is still within its
/// patience at the run's end.
const RUN: &[&str] = &[
    "--task",
    "moons",
    "--samples",
    "60",
    "--noise",
    "0.2",
    "--holdout",
    "0.3",
    "--layers",
    "2-5-1",
    "--networks",
    "6",
    "--optimizer",
    "adam",
    "--lr",
    "0.005..0.3",
    "--batch-size",
    "16",
    "--seed",
    "3",
];

const EARLY: &[&str] = &["--early-stopping", "6", "--eval-every", "2"];

const BACKENDS: [(&str, &[&str]); 4] = [
    ("cpu", &["--backend", "cpu"]),
    ("simd", &["--backend", "simd"]),
    ("fused", &["--backend", "gpu", "--kernel", "fused"]),
    ("layered", &["--backend", "gpu", "--kernel", "layered"]),
];

/// Network `n`'s row of every tensor of a safetensors file whose first
/// dimension is the networks, by name.
fn rows(path: &Path, n: usize) -> BTreeMap<String, Vec<u8>> {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .filter(|(_, view)| !view.shape().is_empty())
        .map(|(name, view)| {
            let per = view.data().len() / view.shape()[0];
            (name, view.data()[n * per..(n + 1) * per].to_vec())
        })
        .collect()
}

#[test]
fn early_stopping_writes_a_run_to_each_networks_best_epoch_on_every_backend() {
    for (name, backend) in BACKENDS {
        let dir = temp_dir(&format!("early-stopping-{name}"));
        let out = dir.join("run");
        let mut args: Vec<&str> = [RUN, EARLY, backend].concat();
        args.extend([
            "--epochs",
            "80",
            "--snapshots",
            "80",
            "--history",
            "4",
            "--out",
            arg(&out),
        ]);
        // The float64 re-training of --verify goes to each best epoch too.
        if name == "simd" {
            args.extend(["--verify", "6"]);
        }
        run_ok(&args);
        let rows_of = results(&out.join("results.csv"));
        let best: Vec<u64> = rows_of
            .iter()
            .map(|r| r["best_epoch"].parse().unwrap())
            .collect();
        let stopped: Vec<Option<u64>> = rows_of
            .iter()
            .map(|r| r["stopped_epoch"].parse().ok())
            .collect();
        // The case tests something: networks stop, at different epochs.
        let distinct: BTreeSet<u64> = best.iter().copied().collect();
        assert!(distinct.len() >= 3, "{name}: best epochs {best:?}");
        let stops = stopped.iter().flatten().count();
        assert!(stops >= 2, "{name}: stopped {stopped:?}");
        for (n, (b, s)) in best.iter().zip(&stopped).enumerate() {
            if let Some(s) = s {
                // Stopped at the first check 6 or more epochs after its best.
                assert_eq!(*s, b + 6, "{name}: network {n}");
            }
            assert_eq!(rows_of[n]["diverged"], "0", "{name}: network {n}");
            assert_eq!(rows_of[n]["epochs_completed"], "80", "{name}: network {n}");
        }
        let weights = out.join("weights.safetensors");
        for &epoch in &distinct {
            let plain = dir.join(format!("to-{epoch}"));
            let mut args: Vec<&str> = [RUN, backend].concat();
            let epochs = epoch.to_string();
            args.extend(["--epochs", &epochs, "--out", arg(&plain)]);
            run_ok(&args);
            let plain_rows = results(&plain.join("results.csv"));
            for n in (0..best.len()).filter(|&n| best[n] == epoch) {
                let (got, want) = (
                    rows(&weights, n),
                    rows(&plain.join("weights.safetensors"), n),
                );
                // Parameters (float64 twins too) and optimizer state.
                for (tensor, bytes) in want.iter().filter(|(t, _)| t.starts_with("layers.")) {
                    assert!(
                        got.get(tensor) == Some(bytes),
                        "{name}: network {n}, tensor '{tensor}' is not that of the run to its \
                         best epoch {epoch}"
                    );
                }
                for column in ["final_loss", "eval_loss", "train_accuracy", "eval_accuracy"] {
                    assert_eq!(
                        rows_of[n][column], plain_rows[n][column],
                        "{name}: network {n}, {column} (best epoch {epoch})"
                    );
                }
                // A network that stopped is, from then on, its best weights.
                if stopped[n].is_some() {
                    for l in 0..2 {
                        let (snapshot, last) = (
                            format!("snapshot.80.layers.{l}.weight"),
                            format!("layers.{l}.weight"),
                        );
                        assert_eq!(got[&snapshot], got[&last], "{name}: network {n}");
                    }
                }
            }
        }
        // A stopped network's curve ends at its stop: its later points are
        // its final loss, that of its best weights.
        let curves = crate::history::read_curves(&out.join("history.safetensors"));
        for (n, s) in stopped.iter().enumerate() {
            let final_loss: f64 = rows_of[n]["final_loss"].parse().unwrap();
            for (q, &e) in curves.epochs.iter().enumerate() {
                let e = e as u64;
                if s.is_some_and(|s| e > s) || e == 80 {
                    assert_eq!(
                        curves.loss[n][q], final_loss as f32,
                        "{name}: network {n}, epoch {e}"
                    );
                }
            }
        }
        let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(summary["stopped_early"], stops, "{name}");
        assert_eq!(summary["diverged"], 0, "{name}");
        assert_eq!(summary["interrupted"], false, "{name}");
    }
}

#[test]
fn early_stopping_matches_the_reference_on_every_backend() {
    // The float32 trainers decide from their own held-out losses; in this
    // regime they decide as the reference does.
    let best_on = |backend: &[&str], name: &str| {
        let dir = temp_dir(&format!("early-stopping-agree-{name}"));
        let results_path = dir.join("results.csv");
        let mut args: Vec<&str> = [RUN, EARLY, backend].concat();
        args.extend(["--epochs", "80", "--results", arg(&results_path)]);
        run_ok(&args);
        results(&results_path)
            .into_iter()
            .map(|r| (r["best_epoch"].clone(), r["stopped_epoch"].clone()))
            .collect::<Vec<_>>()
    };
    let reference = best_on(BACKENDS[0].1, "cpu");
    let expected: Vec<(String, String)> = [
        ("80", ""),
        ("80", ""),
        ("76", ""),
        ("24", "30"),
        ("74", ""),
        ("68", "74"),
    ]
    .iter()
    .map(|(b, s)| (b.to_string(), s.to_string()))
    .collect();
    assert_eq!(reference, expected, "the reference's best and stop epochs");
    for (name, backend) in &BACKENDS[1..] {
        assert_eq!(best_on(backend, name), reference, "{name}");
    }
}

/// [`RUN`] with `replicates` networks per grid point instead of its
/// networks.
fn grid_of_replicates(replicates: &'static str) -> Vec<&'static str> {
    let mut args: Vec<&str> = RUN.to_vec();
    let at = args.iter().position(|a| *a == "--networks").unwrap();
    args.splice(at..at + 2, ["--replicates", replicates]);
    args
}

#[test]
fn a_grid_over_patience_counts_networks_stopped_early_per_point() {
    let dir = temp_dir("early-stopping-grid");
    let out = dir.join("grid");
    let mut args = grid_of_replicates("6");
    args.extend([
        "--early-stopping",
        "2,1000",
        "--epochs",
        "80",
        "--backend",
        "cpu",
        "--out",
        arg(&out),
    ]);
    run_ok(&args);
    let groups = std::fs::read_to_string(out.join("groups.csv")).unwrap();
    let mut lines = groups.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header[1], "early_stopping", "{groups}");
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let stopped: Vec<usize> = rows
        .iter()
        .map(|r| r[column("stopped_early")].parse().unwrap())
        .collect();
    assert!(stopped[0] > 0, "patience 2 stops some networks: {groups}");
    assert_eq!(stopped[1], 0, "patience 1000 stops none: {groups}");
    assert!(
        rows.iter().all(|r| r[column("diverged")] == "0"),
        "{groups}"
    );
    // Each patience is its own model: its own weights file, recording it.
    for (k, patience) in [(0, "2"), (1, "1000")] {
        let bytes = std::fs::read(out.join(format!("weights-{k}.safetensors"))).unwrap();
        let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta["early_stopping"], patience);
        assert_eq!(meta["eval_every"], "1");
    }
}

#[test]
fn bad_early_stopping_flags_are_refused_before_any_output() {
    let dir = temp_dir("early-stopping-refused");
    let results_path = dir.join("results.csv");
    let resumed = dir.join("resumed.safetensors");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--task", "xor", "--early-stopping", "5"],
            "--early-stopping 5 watches the held-out loss: give --eval-data FILE or --holdout",
        ),
        (
            &["--task", "xor", "--holdout", "0.5", "--early-stopping", "0"],
            "--early-stopping",
        ),
        (
            &["--task", "xor", "--holdout", "0.5", "--eval-every", "5"],
            "--eval-every 5 sets how often --early-stopping checks the held-out loss",
        ),
        (
            &[
                "--task",
                "xor",
                "--holdout",
                "0.5",
                "--early-stopping",
                "5",
                "--eval-every",
                "0",
            ],
            "--eval-every",
        ),
    ];
    for (flags, message) in cases {
        let mut args = flags.to_vec();
        args.extend(["--epochs", "10", "--results", arg(&results_path)]);
        let err = run_err(&args, 2);
        assert!(err.contains(message), "{flags:?}: {err}");
        // One error line (clap adds its pointer to --help below its own).
        let errors = err.lines().filter(|l| l.starts_with("error")).count();
        assert_eq!(errors, 1, "{flags:?}: one error: {err}");
        assert!(!results_path.exists(), "{flags:?}: no output");
    }
    // A resume cannot carry the best weights so far.
    let weights = dir.join("w.safetensors");
    let mut args: Vec<&str> = [RUN, EARLY].concat();
    args.extend([
        "--epochs",
        "10",
        "--weights",
        arg(&weights),
        "--backend",
        "cpu",
    ]);
    run_ok(&args);
    let mut args: Vec<&str> = [RUN, EARLY].concat();
    args.extend([
        "--resume",
        arg(&weights),
        "--epochs",
        "20",
        "--weights",
        arg(&resumed),
        "--backend",
        "cpu",
    ]);
    let err = run_err(&args, 2);
    assert!(
        err.contains("--early-stopping cannot be combined with --resume yet"),
        "{err}"
    );
    assert!(!resumed.exists());
}

#[test]
fn shards_of_an_early_stopping_grid_merge_into_the_single_runs_files() {
    let dir = temp_dir("early-stopping-shards");
    let mut sweep = grid_of_replicates("5");
    sweep.extend([
        "--early-stopping",
        "2,6",
        "--eval-every",
        "2",
        "--epochs",
        "60",
        "--history",
        "10",
        "--snapshots",
        "40",
        "--backend",
        "simd",
        "--quiet",
    ]);
    let single = dir.join("single");
    run_ok(&[&sweep[..], &["--out", arg(&single)]].concat());
    let mut shards = Vec::new();
    for i in 0..3 {
        let shard = dir.join(format!("shard-{i}"));
        let which = format!("{i}/3");
        run_ok(&[&sweep[..], &["--shard", &which, "--out", arg(&shard)]].concat());
        shards.push(shard);
    }
    let merged = dir.join("merged");
    let mut merge = vec!["merge", "--out", arg(&merged), "--quiet"];
    merge.extend(shards.iter().map(|s| arg(s)));
    run_ok(&merge);
    crate::sweep::assert_same_files(&single, &merged);
    let summary = std::fs::read_to_string(merged.join("summary.json")).unwrap();
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let stopped = summary["stopped_early"].as_u64().unwrap();
    assert!(stopped > 0, "the shards' networks stop early: {summary}");
}

#[test]
fn a_stopped_early_stopping_run_keeps_the_best_weights_so_far_and_says_it_cannot_resume() {
    let dir = temp_dir("early-stopping-interrupted");
    let weights = dir.join("w.safetensors");
    // Never stops early (a patience beyond the run), and takes far more
    // than a second on the reference: a check every epoch.
    let mut args: Vec<&str> = RUN.to_vec();
    args.extend([
        "--early-stopping",
        "1000000",
        "--epochs",
        "1000000",
        "--backend",
        "cpu",
        "--weights",
        arg(&weights),
    ]);
    let out = common::interrupted(&args, std::time::Duration::from_secs(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(
        stderr.contains("holds each network's best weights so far")
            && stderr.contains("cannot be resumed yet"),
        "{stderr}"
    );
    assert!(!stderr.contains("to finish the run:"), "{stderr}");
    let bytes = std::fs::read(&weights).unwrap();
    let (_, meta) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let meta = meta.metadata().clone().unwrap();
    assert_eq!(meta["interrupted"], "true");
    assert_eq!(meta["early_stopping"], "1000000");
}
