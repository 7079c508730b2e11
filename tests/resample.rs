//! `--bootstrap` and `--subsample F`: each network trains on its own
//! resample of the training rows, keyed on (--data-seed, network). A
//! resample weighs the shared rows by their counts, which is training on
//! the resampled rows themselves; the out-of-bag scores are predict's
//! scores on the rows a network never drew; the CPU trainers agree, a
//! resumed run and a sharded one are the single run byte for byte, and bad
//! flags are refused before any output.

use crate::common;

use common::{arg, results_by_column as results, run_err, run_ok, temp_dir};
use gputrain::cpu;
use gputrain::data::{Dataset, Task, TaskOptions};
use gputrain::model::{Activation, Loss, ModelSpec, Reduction, Topology};
use gputrain::resample::{Resample, Resampling};
use gputrain::training::TrainOptions;
use std::path::Path;

fn moons(samples: usize, seed: u64) -> Dataset {
    Task::Moons.generate(&TaskOptions {
        samples,
        noise: 0.2,
        seed,
    })
}

fn classifier() -> ModelSpec {
    ModelSpec {
        topology: Topology::new(vec![2, 4, 1]).unwrap(),
        activation: Activation::Tanh,
        output_activation: Activation::Sigmoid,
        loss: Loss::CrossEntropy,
        reduction: Reduction::Mean,
        ..ModelSpec::default()
    }
}

/// The rows a network drew, each as often as it drew it.
fn materialise(data: &Dataset, counts: &[u8]) -> Dataset {
    let rows: Vec<usize> = (0..data.samples())
        .flat_map(|s| std::iter::repeat_n(s, counts[s] as usize))
        .collect();
    data.subset(&rows, "resampled".into()).unwrap()
}

#[test]
fn a_weighted_run_is_the_run_on_the_resampled_rows() {
    // Full batch, mean reduction: the weighted loss over the shared rows
    // is the mean over the drawn rows, so the float64 reference trains
    // the same network on either, up to the order of the sums. Measured
    // worst parameter difference over both resamples and 4 networks:
    // 9.4e-16 (bootstrap), 1.2e-15 (subsample); of the final loss 1.1e-16.
    // The bound is 1e-14.
    let data = moons(40, 2);
    let spec = classifier();
    let options = TrainOptions {
        epochs: 200,
        ..TrainOptions::default()
    };
    for how in [Resample::Bootstrap, Resample::Subsample(0.6)] {
        let resampling = Resampling { how, seed: 9 };
        let spec = ModelSpec {
            resample: Some(resampling),
            ..spec.clone()
        };
        for network in 0..4u64 {
            let counts = resampling.counts(data.samples(), network);
            let drawn: usize = counts.iter().map(|&c| c as usize).sum();
            assert_eq!(drawn, resampling.drawn(data.samples()), "{how}");
            let start =
                gputrain::init::network_parameters(&spec, gputrain::init::Init::Xavier, 1, network);
            let (mut weighted, mut plain) = (start.clone(), start);
            let weights = resampling.weights(&counts);
            let mut state = vec![];
            let never = &|| false;
            let a = cpu::train_network_until(
                &spec,
                &data,
                Some(&weights),
                &mut weighted,
                &mut state,
                0.5,
                &options,
                never,
                None,
            );
            let plain_spec = ModelSpec {
                resample: None,
                ..spec.clone()
            };
            let resampled = materialise(&data, &counts);
            let b = cpu::train_network(&plain_spec, &resampled, &mut plain, 0.5, &options);
            for (i, (x, y)) in weighted.iter().zip(&plain).enumerate() {
                assert!(
                    (x - y).abs() < 1e-14,
                    "{how}, network {network}, parameter {i}: weighted {x}, on the rows {y}"
                );
            }
            assert!(
                (a.final_loss - b.final_loss).abs() < 1e-14,
                "{how}, network {network}: final loss {} against {}",
                a.final_loss,
                b.final_loss
            );
        }
    }
}

/// Moons as a CSV, the run's flags on it, and 6 networks of 2-4-1 with
/// Adam in shuffled minibatches.
fn bootstrap_run(dir: &Path) -> Vec<String> {
    let data = dir.join("moons.csv");
    run_ok(&[
        "data",
        "--task",
        "moons",
        "--samples",
        "30",
        "--noise",
        "0.2",
        "--data-seed",
        "4",
        "--out",
        arg(&data),
    ]);
    [
        "--data",
        arg(&data),
        "--layers",
        "2-4-1",
        "--activation",
        "tanh",
        "--loss",
        "cross-entropy",
        "--reduction",
        "mean",
        "--networks",
        "6",
        "--optimizer",
        "adam",
        "--lr",
        "0.05",
        "--batch-size",
        "8",
        "--epochs",
        "60",
        "--bootstrap",
        "--data-seed",
        "11",
        "--quiet",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

fn strs(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

#[test]
fn oob_scores_are_predicts_scores_on_the_rows_each_network_never_drew() {
    let dir = temp_dir("resample-oob");
    let flags = bootstrap_run(&dir);
    let out = dir.join("run");
    run_ok(&[&strs(&flags)[..], &["--backend", "cpu", "--out", arg(&out)]].concat());
    let rows = results(&out.join("results.csv"));
    let data =
        gputrain::data::load_csv(&dir.join("moons.csv"), 2, 1, classifier().target_rule()).unwrap();
    let resampling = Resampling {
        how: Resample::Bootstrap,
        seed: 11,
    };
    let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
    assert!(
        summary.contains("\"resample\": \"bootstrap, data seed 11\""),
        "{summary}"
    );
    for (n, row) in rows.iter().enumerate() {
        // The rows recomputed from the key alone.
        let counts = resampling.counts(30, n as u64);
        let unseen: Vec<usize> = (0..30).filter(|&s| counts[s] == 0).collect();
        assert!(!unseen.is_empty(), "network {n} drew every row of 30");
        let oob = data.subset(&unseen, "oob".into()).unwrap();
        let csv = dir.join(format!("oob-{n}.csv"));
        std::fs::write(&csv, oob.to_csv()).unwrap();
        let scores = dir.join(format!("scores-{n}.csv"));
        run_ok(&[
            "predict",
            "--weights",
            arg(&out.join("weights.safetensors")),
            "--data",
            arg(&csv),
            "--backend",
            "cpu",
            "--networks-select",
            &n.to_string(),
            "--scores",
            arg(&scores),
            "--out",
            arg(&dir.join(format!("predict-{n}.csv"))),
        ]);
        let text = std::fs::read_to_string(&scores).unwrap();
        let cells: Vec<&str> = text.lines().nth(1).unwrap().split(',').collect();
        let (loss, accuracy): (f64, f64) = (cells[1].parse().unwrap(), cells[2].parse().unwrap());
        let (oob_loss, oob_accuracy): (f64, f64) = (
            row["oob_loss"].parse().unwrap(),
            row["oob_accuracy"].parse().unwrap(),
        );
        // The same float64 forward passes over the same rows, from the
        // same float64 parameters: equal.
        assert_eq!(
            oob_loss, loss,
            "network {n}: oob_loss against predict's loss"
        );
        assert_eq!(oob_accuracy, accuracy, "network {n}: oob_accuracy");
    }

    // The out-of-bag ensemble (scikit-learn's oob_decision_function_ and
    // oob_score_): each training row's mean over the networks that never
    // drew it, from every network's own outputs.
    let weights = out.join("weights.safetensors");
    let each = dir.join("each.csv");
    let train = dir.join("moons.csv");
    let predict = ["predict", "--weights", arg(&weights), "--data", arg(&train)];
    run_ok(&[&predict[..], &["--backend", "cpu", "--out", arg(&each)]].concat());
    let outputs: Vec<f64> = std::fs::read_to_string(&each)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap().parse().unwrap())
        .collect();
    let counts: Vec<Vec<u8>> = (0..6).map(|n| resampling.counts(30, n)).collect();
    let ensemble = dir.join("oob-ensemble.csv");
    let extra = ["--ensemble", "mean", "--oob", "--backend", "cpu", "--json"];
    let summary = run_ok(&[&predict[..], &extra[..], &["--out", arg(&ensemble)]].concat());
    let lines: Vec<String> = std::fs::read_to_string(&ensemble)
        .unwrap()
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    let (mut scored, mut right) = (0, 0);
    for s in 0..30 {
        let out_of_bag: Vec<f64> = (0..6)
            .filter(|&n| counts[n][s] == 0)
            .map(|n| outputs[n * 30 + s])
            .collect();
        let cell = lines[s].split(',').nth(1).unwrap().to_string();
        if out_of_bag.is_empty() {
            assert_eq!(cell, "NaN", "sample {s} is in every network's resample");
            continue;
        }
        let mean = out_of_bag.iter().sum::<f64>() / out_of_bag.len() as f64;
        assert_eq!(cell.parse::<f64>().unwrap(), mean, "sample {s}");
        scored += 1;
        right += usize::from((mean >= 0.5) == (data.target(s)[0] >= 0.5));
    }
    let json: serde_json::Value = serde_json::from_str(&summary).unwrap();
    assert_eq!(json["oob_samples"], scored);
    let score = json["ensemble_accuracy"].as_f64().unwrap();
    assert_eq!(score, right as f64 / scored as f64, "oob_score_");
    assert!(
        scored >= 25,
        "six bootstraps leave most rows out somewhere: {scored}"
    );

    // Refused, with no output: not the training rows, and no ensemble.
    let refused = dir.join("refused.csv");
    let fewer = dir.join("oob-0.csv");
    let other = ["--data", arg(&fewer), "--ensemble", "mean", "--oob"];
    let to = ["--out", arg(&refused)];
    let err = run_err(&[&predict[..3], &other[..], &to[..]].concat(), 2);
    assert!(
        err.contains("--oob scores the run's training rows"),
        "{err}"
    );
    let err = run_err(&[&predict[..], &["--oob"][..], &to[..]].concat(), 2);
    assert!(err.contains("--ensemble"), "{err}");
    assert!(!refused.exists());
}

const BACKENDS: [(&str, &[&str]); 4] = [
    ("cpu", &["--backend", "cpu"]),
    ("simd", &["--backend", "simd"]),
    ("fused", &["--backend", "gpu", "--kernel", "fused"]),
    ("layered", &["--backend", "gpu", "--kernel", "layered"]),
];

/// Every backend's final and out-of-bag losses with `flags` against the
/// float64 reference's, within `bound` (relative), and with `--history`
/// every figure of the curves' quantiles (training loss, weighted; the
/// held-out loss, not).
fn agreement(dir: &Path, flags: &[&str], bound: f64) {
    let mut reference: Option<Vec<(f64, f64)>> = None;
    let mut reference_curves: Option<Vec<f64>> = None;
    for (name, backend) in BACKENDS {
        let out = dir.join(name);
        run_ok(&[flags, backend, &["--out", arg(&out)]].concat());
        let summary = std::fs::read_to_string(out.join("summary.json")).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
        // --verify's float64 re-training weighs the network's rows too.
        if let Some(verify) = summary.get("verify").filter(|v| !v.is_null()) {
            assert_eq!(verify["passed"], true, "{name}: {verify}");
            assert_eq!(verify["sensitive"].as_array().unwrap().len(), 0, "{name}");
        }
        let curves: Vec<f64> = std::fs::read_to_string(out.join("history.csv"))
            .map(|text| {
                let cells = text.lines().skip(1).flat_map(|l| l.split(',').skip(1));
                cells.filter_map(|c| c.parse().ok()).collect()
            })
            .unwrap_or_default();
        match &reference_curves {
            None => reference_curves = Some(curves),
            Some(expected) => {
                assert_eq!(expected.len(), curves.len(), "{name}: history.csv");
                for (i, (x, y)) in expected.iter().zip(&curves).enumerate() {
                    let scale = x.abs().max(1e-30);
                    assert!(
                        ((x - y) / scale).abs() < bound,
                        "history cell {i}: cpu {x}, {name} {y}"
                    );
                }
            }
        }
        let rows = results(&out.join("results.csv"));
        let got: Vec<(f64, f64)> = rows
            .iter()
            .map(|r| {
                (
                    r["final_loss"].parse().unwrap(),
                    r["oob_loss"].parse().unwrap(),
                )
            })
            .collect();
        let Some(expected) = &reference else {
            reference = Some(got);
            continue;
        };
        for (n, (a, b)) in expected.iter().zip(&got).enumerate() {
            for (what, x, y) in [("final_loss", a.0, b.0), ("oob_loss", a.1, b.1)] {
                assert!(
                    ((x - y) / x).abs() < bound,
                    "network {n}, {what}: cpu {x}, {name} {y}"
                );
            }
        }
    }
}

#[test]
fn every_backend_trains_each_network_on_its_own_rows() {
    let dir = temp_dir("resample-every-backend");
    let flags = bootstrap_run(&dir);
    // Minibatches, every kernel reading the data buffer in the epoch's
    // order: float32 against float64 over 60 epochs x 4 batches of Adam;
    // measured worst relative difference (final and out-of-bag loss,
    // 6 networks) 5.0e-7 simd, 1.5e-6 fused, 2.0e-6 layered (lavapipe);
    // bound 2e-5. A kernel that trained on every row would be off by
    // 5% to 58% (these networks' final losses without the resample).
    let verified = [&strs(&flags)[..], &["--verify", "6"]].concat();
    agreement(&dir.join("minibatch"), &verified, 2e-5);
    // Full batch on a subsample with the sum, 30% held out and the
    // curves every 10 epochs: the fused kernel's data baked in as
    // literals, the held-out loss unweighted beside the weighted training
    // loss. Measured worst relative difference, final and out-of-bag
    // losses: 1.7e-7 simd, 3.1e-7 fused, 2.9e-7 layered; the curves'
    // quantiles (84 figures): 2.6e-7, 3.6e-7, 3.3e-7. Bound 4e-6.
    let full: Vec<&str> = strs(&flags)
        .into_iter()
        .filter(|f| !["--batch-size", "8", "--bootstrap"].contains(f))
        .map(|f| if f == "mean" { "sum" } else { f })
        .collect();
    let extra = ["--subsample", "0.7", "--holdout", "0.3", "--history", "10"];
    let full = [&full[..], &extra[..]].concat();
    agreement(&dir.join("full"), &full, 4e-6);
}

#[test]
fn resume_and_shards_are_the_single_run() {
    let dir = temp_dir("resample-resume");
    let flags = bootstrap_run(&dir);
    let simd = dir.join("simd");
    run_ok(
        &[
            &strs(&flags)[..],
            &["--backend", "simd", "--out", arg(&simd)],
        ]
        .concat(),
    );
    let finals: Vec<f64> = results(&simd.join("results.csv"))
        .iter()
        .map(|r| r["final_loss"].parse().unwrap())
        .collect();
    // The networks train on different rows: their losses differ from one
    // another, and from the same networks on every row.
    let every = dir.join("every-row");
    let plain: Vec<String> = flags
        .iter()
        .filter(|f| *f != "--bootstrap")
        .cloned()
        .collect();
    let plain: Vec<&str> = strs(&plain)
        .into_iter()
        .filter(|f| *f != "--data-seed" && *f != "11")
        .collect();
    run_ok(&[&plain[..], &["--backend", "simd", "--out", arg(&every)]].concat());
    let rows = results(&every.join("results.csv"));
    let unresampled: Vec<f64> = rows
        .iter()
        .map(|r| r["final_loss"].parse().unwrap())
        .collect();
    assert!(finals.iter().zip(&unresampled).all(|(a, b)| a != b));
    assert!(rows.iter().all(|r| r["oob_loss"].is_empty()));

    // Resumed halfway: the run's weights, byte for byte (the resample
    // comes back from the file's metadata).
    let (whole, half) = (dir.join("whole.safetensors"), dir.join("half.safetensors"));
    run_ok(
        &[
            &strs(&flags)[..],
            &["--backend", "simd", "--weights", arg(&whole)],
        ]
        .concat(),
    );
    let half_flags: Vec<String> = flags
        .iter()
        .map(|f| {
            if f == "60" {
                "30".to_string()
            } else {
                f.clone()
            }
        })
        .collect();
    run_ok(
        &[
            &strs(&half_flags)[..],
            &["--backend", "simd", "--weights", arg(&half)],
        ]
        .concat(),
    );
    let resumed = dir.join("resumed.safetensors");
    run_ok(&[
        "--resume",
        arg(&half),
        "--data",
        arg(&dir.join("moons.csv")),
        "--epochs",
        "60",
        "--backend",
        "simd",
        "--quiet",
        "--weights",
        arg(&resumed),
    ]);
    let (whole, again) = (
        std::fs::read(whole).unwrap(),
        std::fs::read(resumed).unwrap(),
    );
    assert!(
        whole == again,
        "the resumed run's weights differ from the whole run's"
    );

    // Three shards merged: the single run's files.
    let mut shards = Vec::new();
    for i in 0..3 {
        let shard = dir.join(format!("shard-{i}"));
        let which = format!("{i}/3");
        let extra = ["--backend", "simd", "--shard", &which, "--out", arg(&shard)];
        run_ok(&[&strs(&flags)[..], &extra[..]].concat());
        shards.push(shard);
    }
    let merged = dir.join("merged");
    let mut merge = vec!["merge", "--out", arg(&merged), "--quiet"];
    merge.extend(shards.iter().map(|s| arg(s)));
    run_ok(&merge);
    crate::sweep::assert_same_files(&dir.join("simd"), &merged);
}

#[test]
fn subsample_is_a_grid_axis_and_bad_flags_are_refused() {
    let dir = temp_dir("resample-flags");
    let out = dir.join("grid");
    run_ok(&[
        "--task",
        "moons",
        "--samples",
        "20",
        "--layers",
        "2-3-1",
        "--replicates",
        "3",
        "--epochs",
        "5",
        "--subsample",
        "0.5,0.8",
        "--backend",
        "simd",
        "--quiet",
        "--out",
        arg(&out),
    ]);
    let rows = results(&out.join("results.csv"));
    let subsamples: Vec<&str> = rows.iter().map(|r| r["subsample"].as_str()).collect();
    assert_eq!(subsamples, ["0.5", "0.5", "0.5", "0.8", "0.8", "0.8"]);
    assert!(rows.iter().all(|r| !r["oob_accuracy"].is_empty()));
    // The groups: each point's median out-of-bag loss and accuracy (the
    // middle of its three networks'), which plot groups reads.
    let groups = results(&out.join("groups.csv"));
    for (point, group) in groups.iter().enumerate() {
        for what in ["oob_loss", "oob_accuracy"] {
            let mut three: Vec<f64> = rows[3 * point..3 * point + 3]
                .iter()
                .map(|r| r[what].parse::<f32>().unwrap() as f64)
                .collect();
            three.sort_by(f64::total_cmp);
            let median: f64 = group[&format!("median_{what}")].parse().unwrap();
            assert_eq!(median, three[1], "point {point}, median_{what}");
        }
    }
    let plot = out.join("groups.svg");
    run_ok(&[
        "plot",
        "groups",
        arg(&out.join("groups.csv")),
        "--out",
        arg(&plot),
    ]);
    assert!(plot.exists());

    let base = [
        "--task",
        "moons",
        "--samples",
        "20",
        "--epochs",
        "5",
        "--quiet",
    ];
    let refused = |extra: &[&str], needle: &str, code: i32| {
        let out = dir.join("refused");
        let args = [&base[..], extra, &["--out", arg(&out)]].concat();
        let err = run_err(&args, code);
        assert!(err.contains(needle), "{extra:?}: {err}");
        assert!(!out.exists(), "{extra:?} left output");
    };
    refused(&["--bootstrap", "--subsample", "0.5"], "--subsample", 2);
    refused(
        &["--subsample", "1"],
        "--subsample 1 must lie strictly between 0 and 1",
        2,
    );
    refused(
        &["--subsample", "0"],
        "--subsample 0 must lie strictly between 0 and 1",
        2,
    );
    refused(&["--subsample", "0.01"], "keeps 0", 2);
}
