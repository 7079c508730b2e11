//! Learning curves (`--history K`): the same curves from the float64
//! reference, the SIMD trainer, the fused and the layered kernels;
//! recording never changes
//! what is trained; a point is the loss a run of that many epochs ends
//! with; stopped, diverged and interrupted networks; the files; the
//! refusals.

use crate::common;

use std::path::Path;

use common::{arg, interrupted, run_err, run_ok, temp_dir};

/// A history file's tensors: `loss`, `eval_loss` (empty without held-out
/// data) as [networks][points], and `epochs`.
pub(crate) struct Curves {
    pub(crate) loss: Vec<Vec<f32>>,
    pub(crate) eval_loss: Vec<Vec<f32>>,
    pub(crate) epochs: Vec<i64>,
}

pub(crate) fn read_curves(path: &Path) -> Curves {
    let bytes = std::fs::read(path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let epochs: Vec<i64> = file
        .tensor("epochs")
        .unwrap()
        .data()
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let rows = |name: &str| -> Vec<Vec<f32>> {
        let Ok(t) = file.tensor(name) else {
            return Vec::new();
        };
        assert_eq!(t.dtype(), safetensors::Dtype::F32, "{name}");
        assert_eq!(t.shape()[1], epochs.len(), "{name}: one value per epoch");
        let values: Vec<f32> = t
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        values.chunks(epochs.len()).map(<[f32]>::to_vec).collect()
    };
    Curves {
        loss: rows("loss"),
        eval_loss: rows("eval_loss"),
        epochs,
    }
}

/// The results CSV's rows, as cells.
fn result_rows(path: &Path) -> Vec<Vec<String>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

/// The worst relative difference between two files' curves; a failure
/// names the series, network, epoch and both values.
fn worst_difference(label: &str, a: &[Vec<f32>], b: &[Vec<f32>], epochs: &[i64], tol: f64) -> f64 {
    assert_eq!(a.len(), b.len(), "{label}: networks");
    let mut worst = 0.0f64;
    for (n, (ra, rb)) in a.iter().zip(b).enumerate() {
        for (q, (&x, &y)) in ra.iter().zip(rb).enumerate() {
            let (x, y) = (x as f64, y as f64);
            let diff = (x - y).abs() / y.abs().max(1e-3);
            assert!(
                diff <= tol,
                "{label}: network {n}, loss at epoch {}: {x} against {y} (relative {diff:.2e} > {tol:e})",
                epochs[q]
            );
            worst = worst.max(diff);
        }
    }
    worst
}

/// Trains `config` on `backend` (cpu, simd, fused or layered) with the history
/// every `every` epochs; returns the curves file and the results CSV.
fn train(
    dir: &Path,
    name: &str,
    config: &[&str],
    backend: &str,
    every: Option<&str>,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let curves = dir.join(format!("{name}-{backend}.safetensors"));
    let results = dir.join(format!("{name}-{backend}.csv"));
    let mut args: Vec<&str> = config.to_vec();
    args.extend(["--results", arg(&results), "-q"]);
    if let Some(every) = every {
        args.extend(["--history", every, "--history-out", arg(&curves)]);
    }
    match backend {
        "cpu" | "simd" => args.extend(["--backend", backend]),
        kernel => args.extend(["--backend", "gpu", "--kernel", kernel]),
    }
    run_ok(&args);
    (curves, results)
}

/// Full batch on the seeds' network; shuffled minibatches with Adam, with
/// and without held-out data; XOR trained on one of its points and held
/// out on the other three (more held-out rows than training rows).
const FULL_BATCH: &[&str] = &["--networks", "40", "--lr", "0.1..5", "--epochs", "600"];
/// [`FULL_BATCH`] without its epochs.
const FULL_BATCH_MODEL: &[&str] = &["--networks", "40", "--lr", "0.1..5"];
const MINIBATCH: &[&str] = &[
    "--task",
    "moons",
    "--samples",
    "40",
    "--layers",
    "2,6,1",
    "--networks",
    "24",
    "--epochs",
    "120",
    "--batch-size",
    "8",
    "--optimizer",
    "adam",
    "--lr",
    "0.01",
];

#[test]
fn every_backend_records_the_same_curves() {
    let dir = temp_dir("history-agree");
    let holdout = [MINIBATCH, &["--holdout", "0.25"]].concat();
    let xor = [
        "--task",
        "xor",
        "--networks",
        "20",
        "--epochs",
        "150",
        "--lr",
        "0.1..5",
        "--holdout",
        "0.75",
    ];
    let cases: [(&str, &[&str], &[&str]); 4] = [
        ("full", FULL_BATCH, &["simd", "fused", "layered"]),
        ("batched-eval", &holdout, &["simd", "fused", "layered"]),
        ("batched", MINIBATCH, &["simd", "layered"]),
        ("xor-eval", &xor, &["simd", "fused", "layered"]),
    ];
    for (name, config, kernels) in cases {
        let (cpu, _) = train(&dir, name, config, "cpu", Some("30"));
        let reference = read_curves(&cpu);
        for kernel in kernels {
            let (gpu, _) = train(&dir, name, config, kernel, Some("30"));
            let curves = read_curves(&gpu);
            assert_eq!(curves.epochs, reference.epochs);
            let label = format!("{name} {kernel}");
            // Measured on lavapipe: worst relative differences 3.9e-6
            // (full batch, fused and layered), 3.6e-6 (minibatches, fused;
            // held-out 4.0e-6), 3.2e-6 (minibatches, layered); tolerance
            // 4e-5.
            let worst =
                worst_difference(&label, &curves.loss, &reference.loss, &curves.epochs, 4e-5);
            let eval = worst_difference(
                &label,
                &curves.eval_loss,
                &reference.eval_loss,
                &curves.epochs,
                4e-5,
            );
            eprintln!("{label}: worst relative difference {worst:.2e}, held-out {eval:.2e}");
        }
        let (points, eval_rows) = match name {
            "full" => (21, 0),
            "batched" => (5, 0),
            "batched-eval" => (5, 24),
            _ => (6, 20),
        };
        assert_eq!(reference.epochs.len(), points, "{name}");
        assert_eq!(reference.eval_loss.len(), eval_rows, "{name}");
    }
}

#[test]
fn submissions_as_long_as_the_adapter_allows_record_every_point() {
    // 100 buffered samples with a point every epoch: the most loop
    // iterations a fused submission runs (llvmpipe ends an invocation's
    // loops past 65,535, src/gpu/quirks.rs); asking for longer
    // submissions than that allows must still give the reference's curves.
    let dir = temp_dir("history-long-submissions");
    let config = [
        "--task",
        "moons",
        "--samples",
        "100",
        "--layers",
        "2,4,1",
        "--networks",
        "8",
        "--epochs",
        "700",
        "--lr",
        "0.05",
    ];
    let (cpu, _) = train(&dir, "long", &config, "cpu", Some("1"));
    let gpu_config = [&config[..], &["--epochs-per-submission", "100000"]].concat();
    let (gpu, _) = train(&dir, "long", &gpu_config, "fused", Some("1"));
    let (reference, curves) = (read_curves(&cpu), read_curves(&gpu));
    assert_eq!(curves.epochs.len(), 701);
    // Measured on lavapipe: 7.3e-7; tolerance as above.
    let worst = worst_difference("long", &curves.loss, &reference.loss, &curves.epochs, 4e-5);
    eprintln!("long submissions: worst relative difference {worst:.2e}");
}

#[test]
fn recording_never_changes_what_is_trained() {
    let dir = temp_dir("history-observes");
    for (name, config) in [("full", FULL_BATCH), ("batched", MINIBATCH)] {
        for backend in ["cpu", "simd", "fused", "layered"] {
            let (_, with) = train(&dir, &format!("{name}-with"), config, backend, Some("7"));
            let (_, without) = train(&dir, &format!("{name}-without"), config, backend, None);
            assert_eq!(
                std::fs::read(&with).unwrap(),
                std::fs::read(&without).unwrap(),
                "{name} on {backend}: the results with --history differ from those without"
            );
        }
    }
}

#[test]
fn a_point_is_the_loss_a_run_of_that_many_epochs_ends_with() {
    let dir = temp_dir("history-points");
    let (curves, _) = train(&dir, "long", FULL_BATCH, "cpu", Some("250"));
    let curves = read_curves(&curves);
    assert_eq!(curves.epochs, [0, 250, 500, 600]);
    for (q, epochs) in [(0, "0"), (1, "250"), (2, "500")] {
        let short = [FULL_BATCH_MODEL, &["--epochs", epochs]].concat();
        let (_, results) = train(&dir, &format!("short-{epochs}"), &short, "cpu", None);
        for (n, row) in result_rows(&results).iter().enumerate() {
            let final_loss: f64 = row[2].parse().unwrap();
            // The file keeps float32: the float64 loss rounded once.
            assert_eq!(
                curves.loss[n][q], final_loss as f32,
                "network {n}, epoch {epochs}"
            );
        }
    }
}

#[test]
fn stopped_and_interrupted_networks_complete_their_curves() {
    let dir = temp_dir("history-stop");
    // Networks stop at the target at different epochs; their curves stay
    // at their final loss after it, on every backend alike.
    let config = [FULL_BATCH, &["--target-loss", "0.01", "--stop-at-target"]].concat();
    for backend in ["cpu", "simd", "fused", "layered"] {
        let (curves, results) = train(&dir, "stop", &config, backend, Some("20"));
        let curves = read_curves(&curves);
        let rows = result_rows(&results);
        let mut stopped = 0;
        for (n, row) in rows.iter().enumerate() {
            let Ok(target) = row[3].parse::<i64>() else {
                continue;
            };
            stopped += 1;
            let final_loss = row[2].parse::<f64>().unwrap() as f32;
            for (q, &epoch) in curves.epochs.iter().enumerate() {
                let value = curves.loss[n][q];
                if epoch > target {
                    assert_eq!(value, final_loss, "{backend}: network {n} at epoch {epoch}");
                } else {
                    assert!(value > 0.01 || epoch == target, "{backend}: network {n}");
                }
            }
        }
        assert!(stopped > 10, "{backend}: networks must reach the target");
    }

    // Ctrl-C: points beyond the epochs a network completed are NaN, and
    // the quantile CSV counts only the networks that got there.
    let csv = dir.join("interrupted.csv");
    let curves = dir.join("interrupted.safetensors");
    let out = interrupted(
        &[
            "--networks",
            "64",
            "--epochs",
            "100000000",
            "--backend",
            "cpu",
            "--history",
            "1000",
            "--history-out",
            arg(&curves),
            "--history-csv",
            arg(&csv),
            "-q",
        ],
        std::time::Duration::from_secs(2),
    );
    assert_eq!(out.status.code(), Some(130));
    let curves = read_curves(&curves);
    let last = curves.loss[0].len() - 1;
    assert!(curves.loss.iter().all(|row| row[last].is_nan()));
    assert!(curves.loss.iter().all(|row| row[0].is_finite()));
    let text = std::fs::read_to_string(&csv).unwrap();
    let first = text.lines().nth(1).unwrap();
    assert!(
        first.starts_with("0,") && first.ends_with(",,64,0"),
        "{first}"
    );
    let final_line = text.lines().last().unwrap();
    assert_eq!(final_line, "100000000,,,,,,,0,0");
}

#[test]
fn the_quantile_csv_and_the_summary_describe_the_population() {
    let dir = temp_dir("history-csv");
    let csv = dir.join("curve.csv");
    let curves = dir.join("curve.safetensors");
    let json = run_ok(&[
        "--networks",
        "50",
        "--epochs",
        "400",
        "--history",
        "100",
        "--history-csv",
        arg(&csv),
        "--history-out",
        arg(&curves),
        "--target-loss",
        "0.01",
        "--backend",
        "cpu",
        "--json",
        "-q",
    ]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let points = json["history"].as_array().unwrap();
    assert_eq!(points.len(), 5);
    let text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "epoch,min,p10,median,p90,max,reached_target,networks,diverged"
    );
    let curves = read_curves(&curves);
    for (q, line) in lines.enumerate() {
        let cells: Vec<&str> = line.split(',').collect();
        assert_eq!(cells[0], curves.epochs[q].to_string());
        assert_eq!(cells[7], "50");
        assert_eq!(cells[8], "0");
        // The median of 50 networks' float32 losses, nearest rank.
        let mut column: Vec<f32> = curves.loss.iter().map(|r| r[q]).collect();
        column.sort_by(f32::total_cmp);
        assert_eq!(cells[3], column[25].to_string(), "epoch {}", cells[0]);
        assert_eq!(cells[1], column[0].to_string());
        let median = points[q]["loss"]["median"].as_f64().unwrap();
        assert_eq!(median as f32, column[25]);
        let share: f64 = cells[6].parse().unwrap();
        assert_eq!(share, points[q]["reached_target"].as_f64().unwrap());
    }
    let first: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
    let last: Vec<&str> = text.lines().last().unwrap().split(',').collect();
    assert_eq!(first[6], "0", "no network starts at the target");
    assert!(last[6].parse::<f64>().unwrap() > 0.5, "{last:?}");
    let text_summary = run_ok(&[
        "--networks",
        "50",
        "--epochs",
        "400",
        "--history",
        "100",
        "--backend",
        "cpu",
        "-q",
    ]);
    assert!(
        text_summary.contains("median loss by epoch: 0 "),
        "{text_summary}"
    );
}

#[test]
fn bad_history_requests_are_refused_before_any_output() {
    let dir = temp_dir("history-refused");
    let out = dir.join("curves.safetensors");
    let err = run_err(
        &[
            "--history",
            "0",
            "--history-out",
            arg(&out),
            "--epochs",
            "5",
        ],
        2,
    );
    assert!(err.contains("--history 0"), "{err}");
    let err = run_err(&["--history-csv", arg(&dir.join("c.csv"))], 2);
    assert!(err.contains("--history"), "{err}");
    // Resume: the curve before it is not in the weights file.
    let weights = dir.join("w.safetensors");
    run_ok(&[
        "--epochs",
        "5",
        "--networks",
        "2",
        "--weights",
        arg(&weights),
        "-q",
    ]);
    let err = run_err(
        &[
            "--resume",
            arg(&weights),
            "--networks",
            "2",
            "--history",
            "5",
            "--history-out",
            arg(&out),
        ],
        2,
    );
    assert!(err.contains("--resume"), "{err}");
    assert!(!out.exists(), "no partial output");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(Result::ok)
        .filter(|e| e.file_name() != "w.safetensors")
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
