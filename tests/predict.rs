//! `gputrain predict`: the model from the weights file alone, every chosen
//! network's outputs (GPU and CPU agree), ensembles computed as stated,
//! scores on data with targets, and one clear error for bad input, with
//! no output file left behind.

use crate::common;

use std::path::{Path, PathBuf};

use common::{arg, gputrain, run_ok, temp_dir};

/// Runs gputrain, which must fail with exit `code` and one line.
fn run_err(args: &[&str], code: i32) -> String {
    let stderr = common::run_err(args, code);
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    stderr
}

/// 40 XOR networks trained on the GPU, and the XOR samples with and
/// without targets.
fn trained_xor(dir: &Path) -> (PathBuf, PathBuf, PathBuf) {
    let weights = dir.join("xor.safetensors");
    run_ok(&[
        "--task",
        "xor",
        "--layers",
        "2,3,1",
        "--networks",
        "40",
        "--epochs",
        "2000",
        "--lr",
        "0.5..5",
        "--quiet",
        "--weights",
        arg(&weights),
    ]);
    let labelled = dir.join("xor.csv");
    std::fs::write(&labelled, "x0,x1,y0\n0,0,0\n0,1,1\n1,0,1\n1,1,0\n").unwrap();
    let inputs = dir.join("inputs.csv");
    std::fs::write(&inputs, "0,0\n0,1\n1,0\n1,1\n0.5,0.5\n").unwrap();
    (weights, labelled, inputs)
}

/// The rows of a predictions CSV, as numbers.
fn rows(path: &Path) -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(path).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').map(|c| c.parse().unwrap()).collect())
        .collect()
}

#[test]
fn every_network_on_every_sample_and_the_backends_agree() {
    let dir = temp_dir("predict-all");
    let (weights, _, inputs) = trained_xor(&dir);
    let (gpu, cpu) = (dir.join("gpu.csv"), dir.join("cpu.csv"));
    let common = [
        "predict",
        "--weights",
        arg(&weights),
        "--data",
        arg(&inputs),
        "--quiet",
    ];
    run_ok(&[&common[..], &["--backend", "gpu", "--out", arg(&gpu)]].concat());
    run_ok(&[&common[..], &["--backend", "cpu", "--out", arg(&cpu)]].concat());
    let header = std::fs::read_to_string(&gpu).unwrap();
    assert!(header.starts_with("network,sample,output_0\n"), "{header}");
    let (g, c) = (rows(&gpu), rows(&cpu));
    assert_eq!(g.len(), 40 * 5);
    for (a, b) in g.iter().zip(&c) {
        assert_eq!(a[..2], b[..2], "the same network and sample order");
        // tests/agreement.rs bounds the kernel's difference at 4.1e-6.
        assert!(
            (a[2] - b[2]).abs() <= 4.1e-6 * (1.0 + b[2].abs()),
            "network {}, sample {}: gpu {} against cpu {}",
            a[0],
            a[1],
            a[2],
            b[2]
        );
    }
    assert_eq!((g[7][0], g[7][1]), (1.0, 2.0), "network-major rows");
    // Without --out the predictions go to standard output.
    let stdout = run_ok(&[&common[..], &["--backend", "cpu"]].concat());
    assert_eq!(stdout, std::fs::read_to_string(&cpu).unwrap());
}

#[test]
fn ensembles_and_scores_are_what_they_say() {
    let dir = temp_dir("predict-ensemble");
    let (weights, labelled, _) = trained_xor(&dir);
    let (each, mean, median, scores) = (
        dir.join("each.csv"),
        dir.join("mean.csv"),
        dir.join("median.csv"),
        dir.join("scores.csv"),
    );
    let common = [
        "predict",
        "--weights",
        arg(&weights),
        "--data",
        arg(&labelled),
        "--backend",
        "cpu",
    ];
    run_ok(
        &[
            &common[..],
            &["--out", arg(&each), "--scores", arg(&scores), "-q"],
        ]
        .concat(),
    );
    let json = run_ok(
        &[
            &common[..],
            &["--out", arg(&mean), "--ensemble", "mean", "--json"],
        ]
        .concat(),
    );
    run_ok(
        &[
            &common[..],
            &["--out", arg(&median), "--ensemble", "median", "-q"],
        ]
        .concat(),
    );
    let each = rows(&each);
    for (s, row) in rows(&mean).iter().enumerate() {
        let column: Vec<f64> = each
            .iter()
            .filter(|r| r[1] == s as f64)
            .map(|r| r[2])
            .collect();
        assert_eq!(column.len(), 40);
        let m = column.iter().sum::<f64>() / 40.0;
        let sd = (column.iter().map(|v| (v - m).powi(2)).sum::<f64>() / 40.0).sqrt();
        assert!(
            (row[1] - m).abs() < 1e-12 && (row[2] - sd).abs() < 1e-12,
            "sample {s}: {row:?}"
        );
    }
    for (s, row) in rows(&median).iter().enumerate() {
        let mut column: Vec<f64> = each
            .iter()
            .filter(|r| r[1] == s as f64)
            .map(|r| r[2])
            .collect();
        column.sort_by(f64::total_cmp);
        // 40 values: the median is the mean of the 20th and 21st.
        assert!(
            (row[1] - (column[19] + column[20]) / 2.0).abs() < 1e-12,
            "sample {s}"
        );
    }
    // Scores: every network, loss and accuracy; the best is the lowest loss.
    let scores = rows(&scores);
    assert_eq!(scores.len(), 40);
    let best = scores.iter().min_by(|a, b| a[1].total_cmp(&b[1])).unwrap();
    let json: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(json["scores"]["best"]["network"], best[0] as u64, "{json}");
    let solved = scores.iter().filter(|r| r[2] == 1.0).count();
    assert_eq!(json["scores"]["solved"], solved as u64, "{json}");
    assert!(solved > 20, "lr 0.5..5, 2000 epochs solves most: {solved}");
    assert_eq!(json["networks"], 40);
    assert_eq!(json["targets"], true);
    // --networks-select best predicts that one network.
    let stdout = run_ok(&[&common[..], &["--networks-select", "best", "-q"]].concat());
    let first = stdout.lines().nth(1).unwrap();
    assert!(first.starts_with(&format!("{},0,", best[0])), "{first}");
    let stdout = run_ok(&[&common[..], &["--networks-select", "3,10-11", "-q"]].concat());
    let networks: Vec<&str> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(
        networks,
        [
            "3", "3", "3", "3", "10", "10", "10", "10", "11", "11", "11", "11"
        ]
    );
}

#[test]
fn a_regression_model_comes_from_the_file_and_reports_no_accuracy() {
    let dir = temp_dir("predict-regression");
    let data = dir.join("reg.csv");
    std::fs::write(&data, "0.1,0.2,1.5\n0.3,-0.4,-2.0\n0.9,0.0,0.25\n").unwrap();
    let weights = dir.join("reg.safetensors");
    run_ok(&[
        "--data",
        arg(&data),
        "--layers",
        "2,4,1",
        "--activation",
        "tanh",
        "--output-activation",
        "linear",
        "--loss",
        "sse",
        "--networks",
        "5",
        "--epochs",
        "50",
        "--lr",
        "0.05",
        "--backend",
        "cpu",
        "-q",
        "--weights",
        arg(&weights),
    ]);
    let out = gputrain(&["predict", "--weights", arg(&weights), "--data", arg(&data)]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = String::from_utf8_lossy(&out.stderr);
    assert!(
        summary.contains("2-4-1 tanh (hidden) / linear (output)"),
        "{summary}"
    );
    assert!(summary.contains("loss (sse, sum)"), "{summary}");
    assert!(
        summary.contains("accuracy: none (the targets are not class labels"),
        "{summary}"
    );
}

#[test]
fn bad_input_is_one_line_and_leaves_no_output() {
    let dir = temp_dir("predict-bad");
    let (weights, labelled, inputs) = trained_xor(&dir);
    let out = dir.join("out.csv");
    let w = arg(&weights);
    let predict = |extra: &[&str], code| {
        let args = [&["predict", "--out", arg(&out)][..], extra].concat();
        let err = run_err(&args, code);
        assert!(!out.exists(), "no output after: {err}");
        err
    };
    let err = predict(
        &[
            "--weights",
            arg(&dir.join("missing.safetensors")),
            "--data",
            arg(&inputs),
        ],
        1,
    );
    assert!(
        err.contains("missing.safetensors") && err.contains("cannot read"),
        "{err}"
    );
    let short = dir.join("short.safetensors");
    let bytes = std::fs::read(&weights).unwrap();
    std::fs::write(&short, &bytes[..bytes.len() - 3]).unwrap();
    let err = predict(&["--weights", arg(&short), "--data", arg(&inputs)], 1);
    assert!(
        err.contains("short.safetensors") && err.contains("not a safetensors file"),
        "{err}"
    );
    // Tensors without gputrain's metadata, as another tool writes them.
    let bare = dir.join("bare.safetensors");
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let views: Vec<(String, safetensors::tensor::TensorView)> =
        file.tensors().into_iter().collect();
    std::fs::write(&bare, safetensors::serialize(views, None).unwrap()).unwrap();
    let err = predict(&["--weights", arg(&bare), "--data", arg(&inputs)], 1);
    assert!(
        err.contains("has no gputrain metadata (topology, bias"),
        "{err}"
    );
    let wide = dir.join("wide.csv");
    std::fs::write(&wide, "0,0\n0,1,1,1\n").unwrap();
    let err = predict(&["--weights", w, "--data", arg(&wide)], 1);
    assert!(
        err.contains("wide.csv:2: has 4 columns, but 2 inputs + 0 targets need 2"),
        "{err}"
    );
    std::fs::write(&wide, "0,1,1,1\n").unwrap();
    let err = predict(&["--weights", w, "--data", arg(&wide)], 1);
    assert!(
        err.contains("wide.csv:1: has 4 columns, but the weights take 2 inputs")
            && err.contains("(3 columns)"),
        "{err}"
    );
    // The trained networks on inputs without targets, with `extra`.
    let on_inputs = |extra: &[&str]| {
        let args = [&["--weights", w, "--data", arg(&inputs)][..], extra].concat();
        predict(&args, 2)
    };
    let err = on_inputs(&["--networks-select", "39,40"]);
    assert!(
        err.contains("network 40 is not in the file, which holds networks 0 to 39"),
        "{err}"
    );
    let err = on_inputs(&["--networks-select", "best"]);
    assert!(err.contains("needs targets"), "{err}");
    let scores = dir.join("scores.csv");
    let err = on_inputs(&["--scores", arg(&scores)]);
    assert!(err.contains("--scores needs targets"), "{err}");
    assert!(!scores.exists());
    let err = run_err(
        &[
            "predict",
            "--weights",
            w,
            "--data",
            arg(&labelled),
            "--json",
        ],
        2,
    );
    assert!(err.contains("--json needs --out"), "{err}");
    // clap's own message for an unknown value lists the known ones.
    let bad = gputrain(&[
        "predict",
        "--weights",
        w,
        "--data",
        arg(&labelled),
        "--ensemble",
        "mode",
    ]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert_eq!(bad.status.code(), Some(2), "{err}");
    assert!(
        err.contains("'mode'") && err.contains("mean, median"),
        "{err}"
    );
}
