//! Held-out evaluation while training: every network's accuracy on the
//! training data, and its loss and accuracy on `--eval-data` or a
//! `--holdout` split, in the results CSV and the summary; the same figures
//! `gputrain predict` gives for those networks on that data.

use crate::common;

use std::path::Path;

use common::{arg, run_err, run_ok, temp_dir};

/// The results CSV as rows of cells.
fn results(path: &Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect()
}

const FINAL_LOSS: usize = 2;
const TRAIN_ACCURACY: usize = 6;
const EVAL_LOSS: usize = 7;
const EVAL_ACCURACY: usize = 8;

#[test]
fn evaluating_on_the_training_data_repeats_its_figures() {
    let dir = temp_dir("eval-same");
    let xor = dir.join("xor.csv");
    std::fs::write(&xor, "0,0,0\n0,1,1\n1,0,1\n1,1,0\n").unwrap();
    let out = dir.join("results.csv");
    let json = run_ok(&[
        "--data",
        arg(&xor),
        "--layers",
        "2,3,1",
        "--networks",
        "30",
        "--epochs",
        "1500",
        "--lr",
        "0.5..5",
        "--backend",
        "cpu",
        "--eval-data",
        arg(&xor),
        "--results",
        arg(&out),
        "--json",
        "-q",
    ]);
    let rows = results(&out);
    assert_eq!(rows.len(), 30);
    for row in &rows {
        // The float64 reference computes both, from the same parameters.
        assert_eq!(row[EVAL_LOSS], row[FINAL_LOSS], "{row:?}");
        assert_eq!(row[EVAL_ACCURACY], row[TRAIN_ACCURACY], "{row:?}");
    }
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    let solved = rows.iter().filter(|r| r[TRAIN_ACCURACY] == "1").count();
    assert_eq!(json["solved"], solved as u64, "{json}");
    assert!(solved > 0, "some networks solve XOR");
    // The summary keeps held-out losses as float32: within its rounding,
    // half an ulp (6e-8 relative), of the float64 final loss.
    let (eval, last) = (
        json["eval_loss"]["median"].as_f64().unwrap(),
        json["final_loss"]["median"].as_f64().unwrap(),
    );
    assert!((eval - last).abs() <= 6e-8 * last, "{eval} against {last}");
    assert!(
        json["eval_data"]
            .as_str()
            .unwrap()
            .ends_with("xor.csv, 4 samples"),
        "{json}"
    );
    // The best network is chosen by the held-out loss.
    let best = rows
        .iter()
        .min_by(|a, b| {
            let loss = |r: &Vec<String>| r[EVAL_LOSS].parse::<f64>().unwrap();
            loss(a).total_cmp(&loss(b))
        })
        .unwrap();
    assert_eq!(json["best"]["index"].to_string(), best[0], "{json}");
}

#[test]
fn held_out_figures_are_what_predict_reports() {
    let dir = temp_dir("eval-predict");
    let (train, eval) = (dir.join("train.csv"), dir.join("eval.csv"));
    for (path, seed) in [(&train, "1"), (&eval, "2")] {
        run_ok(&[
            "data",
            "--task",
            "moons",
            "--samples",
            "60",
            "--noise",
            "0.2",
            "--data-seed",
            seed,
            "--out",
            arg(path),
        ]);
    }
    let (out, weights, scores) = (
        dir.join("results.csv"),
        dir.join("w.safetensors"),
        dir.join("scores.csv"),
    );
    run_ok(&[
        "--data",
        arg(&train),
        "--layers",
        "2,6,1",
        "--networks",
        "20",
        "--epochs",
        "200",
        "--optimizer",
        "adam",
        "--lr",
        "0.01..0.1",
        "--batch-size",
        "16",
        "--backend",
        "cpu",
        "--eval-data",
        arg(&eval),
        "--results",
        arg(&out),
        "--weights",
        arg(&weights),
        "-q",
    ]);
    run_ok(&[
        "predict",
        "--weights",
        arg(&weights),
        "--data",
        arg(&eval),
        "--backend",
        "cpu",
        "--out",
        arg(&dir.join("p.csv")),
        "--scores",
        arg(&scores),
        "-q",
    ]);
    let scores: Vec<Vec<String>> = std::fs::read_to_string(&scores)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    for (row, score) in results(&out).iter().zip(&scores) {
        assert_eq!(row[0], score[0]);
        // Both by the float64 reference from the float64 parameters.
        assert_eq!(row[EVAL_LOSS], score[1], "network {}", row[0]);
        assert_eq!(row[EVAL_ACCURACY], score[2], "network {}", row[0]);
    }
}

#[test]
fn a_holdout_is_drawn_from_the_data_seed() {
    let dir = temp_dir("eval-holdout");
    let run = |seed: &str, name: &str| {
        let out = dir.join(name);
        let json = run_ok(&[
            "--task",
            "moons",
            "--samples",
            "40",
            "--noise",
            "0.1",
            "--holdout",
            "0.25",
            "--data-seed",
            seed,
            "--layers",
            "2,4,1",
            "--networks",
            "8",
            "--epochs",
            "50",
            "--results",
            arg(&out),
            "--json",
            "-q",
        ]);
        let json: serde_json::Value = serde_json::from_str(&json).unwrap();
        (json, std::fs::read_to_string(&out).unwrap())
    };
    let (json, first) = run("5", "a.csv");
    assert!(
        json["data"]
            .as_str()
            .unwrap()
            .contains("30 of 40 for training"),
        "{json}"
    );
    assert!(
        json["eval_data"]
            .as_str()
            .unwrap()
            .contains("10 held out, 25%"),
        "{json}"
    );
    assert!(json["eval_accuracy"]["median"].is_number(), "{json}");
    assert_eq!(
        run("5", "b.csv").1,
        first,
        "the same seed, the same split and results"
    );
    assert_ne!(run("6", "c.csv").1, first, "another seed, another split");
    // --data-seed applies to --data too when it seeds the holdout.
    let xor = dir.join("xor.csv");
    std::fs::write(&xor, "0,0,0\n0,1,1\n1,0,1\n1,1,0\n").unwrap();
    run_ok(&[
        "--data",
        arg(&xor),
        "--layers",
        "2,2,1",
        "--holdout",
        "0.5",
        "--data-seed",
        "3",
        "--networks",
        "2",
        "--epochs",
        "5",
        "-q",
    ]);
}

/// With `--reduction sum` a held-out loss over fewer rows is smaller for
/// that alone: beside each loss the results, the summary and its JSON give
/// it as a mean over its own rows, which compares; with `mean` the two are
/// the losses themselves.
#[test]
fn training_and_held_out_losses_compare_per_sample() {
    let dir = temp_dir("eval-per-sample");
    for (reduction, train_rows, eval_rows) in [("sum", 75.0, 25.0), ("mean", 1.0, 1.0)] {
        let out = dir.join(format!("{reduction}.csv"));
        let args = [
            "--task",
            "moons",
            "--samples",
            "100",
            "--noise",
            "0.2",
            "--holdout",
            "0.25",
            "--layers",
            "2,6,1",
            "--networks",
            "12",
            "--epochs",
            "100",
            "--reduction",
            reduction,
            "--backend",
            "cpu",
            "--results",
            arg(&out),
        ];
        let text = run_ok(&args);
        let json: serde_json::Value =
            serde_json::from_str(&run_ok(&[&args[..], &["--json"]].concat())).unwrap();
        let csv = std::fs::read_to_string(&out).unwrap();
        let header: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
        let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
        let rows = results(&out);
        assert_eq!(rows.len(), 12);
        for row in &rows {
            let cell = |name: &str| row[column(name)].parse::<f64>().unwrap();
            // One float64 division of the float64 figure, written in full.
            for (loss, per_sample, rows) in [
                ("final_loss", "train_loss_per_sample", train_rows),
                ("eval_loss", "eval_loss_per_sample", eval_rows),
            ] {
                assert_eq!(
                    cell(per_sample),
                    cell(loss) / rows,
                    "{reduction}: network {}: {per_sample} against {loss} / {rows}",
                    row[0]
                );
            }
        }
        assert_eq!(json["samples"], 75, "{json}");
        assert_eq!(json["eval_samples"], 25, "{json}");
        for (loss, per_sample, rows) in [
            ("final_loss", "train_loss_per_sample", train_rows),
            ("eval_loss", "eval_loss_per_sample", eval_rows),
        ] {
            for q in ["min", "p10", "median", "p90", "max"] {
                let (a, b) = (json[loss][q].as_f64(), json[per_sample][q].as_f64());
                assert_eq!(
                    b,
                    a.map(|a| a / rows),
                    "{reduction}: {per_sample}.{q}: {json}"
                );
            }
        }
        let how = if reduction == "sum" { "summed" } else { "mean" };
        for part in [
            format!("final loss (half-sse {how} over 75 samples): min "),
            format!("eval loss (half-sse {how} over 25 samples): min "),
        ] {
            assert!(text.contains(&part), "{reduction}: no '{part}' in\n{text}");
        }
        // A mean already compares: the line is for sums.
        assert_eq!(
            text.contains("loss per sample (each sum / its samples): train median "),
            reduction == "sum",
            "{text}"
        );
    }
}

#[test]
fn regression_targets_have_no_accuracy() {
    let json = run_ok(&["--networks", "4", "--epochs", "20", "--json", "-q"]);
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert!(
        json["train_accuracy"].is_null() && json["solved"].is_null(),
        "{json}"
    );
    assert!(json["eval_data"].is_null(), "{json}");
}

#[test]
fn bad_evaluation_input_is_refused_before_any_output() {
    let dir = temp_dir("eval-bad");
    let out = dir.join("results.csv");
    let base = [
        "--task",
        "xor",
        "--networks",
        "2",
        "--epochs",
        "5",
        "--results",
        arg(&out),
    ];
    let refused = |extra: &[&str], code| {
        let err = run_err(&[&base[..], extra].concat(), code);
        assert!(!out.exists(), "no results after: {err}");
        err
    };
    for bad in ["0", "1", "-0.5", "nan"] {
        let err = refused(&["--holdout", bad], 2);
        assert!(
            err.contains(&format!("--holdout {}", bad.replace("nan", "NaN"))),
            "{err}"
        );
        assert!(err.contains("strictly between 0 and 1"), "{err}");
    }
    let err = refused(&["--holdout", "0.1"], 2);
    assert!(
        err.contains("holds out 0, leaving no sample to evaluate on"),
        "{err}"
    );
    let wide = dir.join("wide.csv");
    std::fs::write(&wide, "0,0,0\n0,1,1,1\n").unwrap();
    let err = refused(&["--eval-data", arg(&wide)], 1);
    assert!(err.contains("wide.csv:2: has 4 columns"), "{err}");
    std::fs::write(&wide, "0,0,2\n").unwrap();
    let err = refused(&["--eval-data", arg(&wide)], 1);
    assert!(
        err.contains("wide.csv:1: column 3: target 2 is outside [0, 1]"),
        "{err}"
    );
    let err = refused(&["--eval-data", arg(&wide), "--holdout", "0.5"], 2);
    assert!(
        err.contains("--eval-data") && err.contains("--holdout"),
        "{err}"
    );
}
