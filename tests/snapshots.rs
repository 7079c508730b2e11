//! `--snapshots`: the weights file keeps every network's parameters at
//! the epochs asked for, and they are exactly those of a run stopped at
//! that epoch, on every backend, byte for byte; the run itself (final
//! parameters, optimizer state, epochs, target epochs, learning curves)
//! is the run without snapshots, byte for byte; `predict --snapshot`
//! runs them; bad lists are refused before any output.

use crate::common;

use common::{arg, run_err, run_ok, temp_dir};
use std::collections::BTreeMap;
use std::path::Path;

/// Every tensor of a safetensors file, by name: dtype, shape and bytes.
fn tensors(path: &Path) -> BTreeMap<String, (String, Vec<usize>, Vec<u8>)> {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .map(|(name, view)| {
            let dtype = format!("{:?}", view.dtype());
            (name, (dtype, view.shape().to_vec(), view.data().to_vec()))
        })
        .collect()
}

/// The parameter tensors of a 2-5-1 network with per-neuron biases.
const PARAMETERS: [&str; 4] = [
    "layers.0.weight",
    "layers.0.bias",
    "layers.1.weight",
    "layers.1.bias",
];

/// The data flags (a resume takes the model from the file, the data from
/// the command line).
const MOONS: [&str; 6] = ["--task", "moons", "--samples", "40", "--noise", "0.1"];

/// Moons in shuffled minibatches with Adam under a warmed-up cosine and a
/// target that some networks reach (and stop at): every piece of state a
/// segment boundary could lose (Adam's moments and step count, the
/// shuffle's epoch key, the schedule's epoch, the target epoch). The
/// cosine's T is given, so that a run of fewer epochs follows the same
/// schedule (by default T is the run's epochs after the warm-up). On the
/// reference, networks reach the target at epochs 12, 6, 4, 7 (a snapshot
/// boundary) and 2; one never does.
const RUN: &[&str] = &[
    "--task",
    "moons",
    "--samples",
    "40",
    "--noise",
    "0.1",
    "--layers",
    "2-5-1",
    "--networks",
    "6",
    "--optimizer",
    "adam",
    "--lr",
    "0.005..0.2",
    "--batch-size",
    "16",
    "--lr-schedule",
    "cosine",
    "--lr-warmup",
    "3",
    "--lr-t-max",
    "27",
    "--target-loss",
    "4",
    "--stop-at-target",
    "--seed",
    "3",
];

const BACKENDS: [(&str, &[&str]); 4] = [
    ("cpu", &["--backend", "cpu"]),
    ("simd", &["--backend", "simd"]),
    ("fused", &["--backend", "gpu", "--kernel", "fused"]),
    ("layered", &["--backend", "gpu", "--kernel", "layered"]),
];

/// [`MOONS`]'s samples as a CSV file, for predict.
fn write_moons(path: &Path) {
    run_ok(&[
        "data",
        "--task",
        "moons",
        "--samples",
        "40",
        "--out",
        arg(path),
    ]);
}

fn train(backend: &[&str], more: &[&str]) {
    let args: Vec<&str> = [RUN, backend, more].concat();
    run_ok(&args);
}

/// [`RUN`] of `epochs` epochs into `weights`; for 0 epochs without the
/// schedule, which is refused with a warm-up longer than the run (the
/// initial parameters do not depend on it).
fn train_stopped(backend: &[&str], epochs: u64, weights: &Path) {
    let epochs = epochs.to_string();
    let mut args: Vec<&str> = [RUN, backend].concat();
    if epochs == "0" {
        for flag in ["--lr-schedule", "--lr-warmup", "--lr-t-max"] {
            let at = args.iter().position(|a| *a == flag).unwrap();
            args.drain(at..at + 2);
        }
    }
    args.extend(["--epochs", &epochs, "--weights", arg(weights)]);
    run_ok(&args);
}

#[test]
fn snapshots_equal_runs_stopped_at_those_epochs_on_every_backend() {
    for (name, backend) in BACKENDS {
        let dir = temp_dir(&format!("snapshots-{name}"));
        let (with, without) = (dir.join("with"), dir.join("without"));
        train(
            backend,
            &[
                "--epochs",
                "30",
                "--snapshots",
                "0,7,20,30",
                "--history",
                "7",
                "--out",
                arg(&with),
            ],
        );
        train(
            backend,
            &["--epochs", "30", "--history", "7", "--out", arg(&without)],
        );
        let kept = tensors(&with.join("weights.safetensors"));
        let plain = tensors(&without.join("weights.safetensors"));
        // The run is the run without snapshots: every tensor of it.
        for (tensor, value) in &plain {
            assert!(
                kept.get(tensor) == Some(value),
                "{name}: tensor '{tensor}' differs with --snapshots"
            );
        }
        let curves = |dir: &Path| std::fs::read(dir.join("history.safetensors")).unwrap();
        assert!(
            curves(&with) == curves(&without),
            "{name}: the learning curves differ with --snapshots"
        );
        // Some networks stopped at the target, some did not.
        let (_, _, targets) = &plain["target_epoch"];
        let targets: Vec<i64> = targets
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        eprintln!("{name}: target epochs {targets:?}");
        assert!(
            targets.contains(&-1) && targets.iter().any(|&t| t > 0),
            "{targets:?}"
        );
        // Each snapshot is the final parameters of a run of that many
        // epochs (epoch 0: the initial ones).
        for epoch in [0, 7, 20, 30] {
            let stopped = dir.join(format!("stopped-{epoch}.safetensors"));
            train_stopped(backend, epoch, &stopped);
            let stopped = tensors(&stopped);
            for tensor in PARAMETERS {
                let snapshot = format!("snapshot.{epoch}.{tensor}");
                let (dtype, shape, bytes) = &kept[&snapshot];
                assert_eq!(
                    (dtype.as_str(), shape),
                    ("F32", &stopped[tensor].1),
                    "{name}: {snapshot}"
                );
                if bytes != &stopped[tensor].2 {
                    let floats = |b: &[u8]| -> Vec<f32> {
                        b.chunks_exact(4)
                            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
                            .collect()
                    };
                    let (got, want) = (floats(bytes), floats(&stopped[tensor].2));
                    let at = (0..got.len()).find(|&i| got[i].to_bits() != want[i].to_bits());
                    let at = at.unwrap();
                    let per = got.len() / 6;
                    panic!(
                        "{name}: network {}, '{snapshot}' value {}: {} in the snapshot, {} after \
                         a run of {epoch} epochs",
                        at / per,
                        at % per,
                        got[at],
                        want[at]
                    );
                }
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

/// `--init-weights FILE --init-snapshot E` (rewinding) starts from the
/// snapshot: the same run as one started from the file of the run stopped
/// at E, byte for byte (the reference's snapshots carry float64 twins).
#[test]
fn a_run_rewound_to_a_snapshot_is_a_run_from_the_stopped_file() {
    for (name, backend) in BACKENDS {
        let dir = temp_dir(&format!("snapshots-rewind-{name}"));
        let file = |n: &str| dir.join(format!("{n}.safetensors"));
        train(
            backend,
            &[
                "--epochs",
                "30",
                "--snapshots",
                "7",
                "--weights",
                arg(&file("with")),
            ],
        );
        train_stopped(backend, 7, &file("stopped"));
        let again = |from: &[&str], into: &Path| {
            let rest = ["--epochs", "10", "--weights", arg(into)];
            train(backend, &[from, &rest].concat());
        };
        again(
            &["--init-weights", arg(&file("with")), "--init-snapshot", "7"],
            &file("rewound"),
        );
        again(
            &["--init-weights", arg(&file("stopped"))],
            &file("restarted"),
        );
        let (rewound, restarted) = (tensors(&file("rewound")), tensors(&file("restarted")));
        assert!(rewound == restarted, "{name}: the rewound run differs");
        if name == "cpu" {
            assert!(tensors(&file("with")).contains_key("snapshot.7.layers.0.weight.float64"));
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}

#[test]
fn predict_runs_a_snapshot() {
    let dir = temp_dir("snapshots-predict");
    let (with, stopped, data) = (
        dir.join("with.safetensors"),
        dir.join("stopped.safetensors"),
        dir.join("moons.csv"),
    );
    let simd = ["--backend", "simd"];
    train(
        &simd,
        &[
            "--epochs",
            "30",
            "--snapshots",
            "7",
            "--weights",
            arg(&with),
        ],
    );
    train(&simd, &["--epochs", "7", "--weights", arg(&stopped)]);
    write_moons(&data);
    let predict = |weights: &Path, more: &[&str]| {
        let args = [
            &[
                "predict",
                "--weights",
                arg(weights),
                "--data",
                arg(&data),
                "--backend",
                "cpu",
            ][..],
            more,
        ]
        .concat();
        run_ok(&args)
    };
    let snapshot = predict(&with, &["--snapshot", "7"]);
    assert_eq!(snapshot, predict(&stopped, &[]));
    assert_ne!(snapshot, predict(&with, &[]), "the final parameters differ");
    // An epoch the file does not hold, and a file without snapshots.
    let err = run_err(
        &[
            "predict",
            "--weights",
            arg(&with),
            "--data",
            arg(&data),
            "--snapshot",
            "8",
        ],
        1,
    );
    assert!(
        err.contains("holds no snapshot at epoch 8 (--snapshot 8): its snapshots are at epochs 7"),
        "{err}"
    );
    let err = run_err(
        &[
            "predict",
            "--weights",
            arg(&stopped),
            "--data",
            arg(&data),
            "--snapshot",
            "7",
        ],
        1,
    );
    assert!(
        err.contains("it holds none (train with --snapshots)"),
        "{err}"
    );
    // --init-snapshot: an epoch the file does not hold, and no file.
    let err = run_err(
        &[RUN, &["--init-weights", arg(&with), "--init-snapshot", "8"]].concat(),
        1,
    );
    assert!(
        err.contains(
            "holds no snapshot at epoch 8 (--init-snapshot 8): its snapshots are at epochs 7"
        ),
        "{err}"
    );
    let err = run_err(&[RUN, &["--init-snapshot", "7"]].concat(), 2);
    assert!(err.contains("--init-weights"), "{err}");
    // A file with snapshots starts and resumes runs as any other.
    let resumed = dir.join("resumed.safetensors");
    let resume = [
        "--resume",
        arg(&with),
        "--epochs",
        "40",
        "--weights",
        arg(&resumed),
    ];
    run_ok(&[&MOONS[..], &resume].concat());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_snapshot_lists_are_refused_before_any_output() {
    let dir = temp_dir("snapshots-refused");
    let weights = dir.join("w.safetensors");
    let out = dir.join("out");
    let base = [
        "--task",
        "xor",
        "--layers",
        "2-3-1",
        "--networks",
        "4",
        "--epochs",
        "30",
    ];
    for (more, code, expected) in [
        (
            &["--snapshots", "0,20,10"][..],
            2,
            "--snapshots 0,20,10: the epochs must increase (10 comes after 20)",
        ),
        (
            &["--snapshots", "5,5"][..],
            2,
            "--snapshots 5,5: the epochs must increase (5 comes after 5)",
        ),
        (
            &["--snapshots", "10,31"][..],
            2,
            "--snapshots 10,31: epoch 31 is beyond the run's --epochs 30",
        ),
        (
            &["--snapshots", "ten"][..],
            2,
            "invalid value 'ten' for '--snapshots",
        ),
    ] {
        for output in [&["--weights", arg(&weights)][..], &["--out", arg(&out)]] {
            let args = [&base[..], more, output].concat();
            let err = run_err(&args, code);
            assert!(err.contains(expected), "{args:?}: {err}");
            assert_eq!(
                err.lines().filter(|l| l.starts_with("error")).count(),
                1,
                "{err}"
            );
            assert!(!weights.exists() && !out.exists(), "{args:?} wrote output");
        }
    }
    let err = run_err(&[&base[..], &["--snapshots", "10"]].concat(), 2);
    assert!(
        err.contains("--snapshots keeps the parameters at those epochs in the weights file: give --weights FILE, --out DIR or --snapshots-out FILE"),
        "{err}"
    );
    // A resume cannot carry snapshots over yet: refused, not ignored.
    run_ok(&[&base[..], &["--weights", arg(&weights)]].concat());
    let resumed = dir.join("resumed.safetensors");
    let err = run_err(
        &[
            "--task",
            "xor",
            "--resume",
            arg(&weights),
            "--epochs",
            "40",
            "--snapshots",
            "35",
            "--weights",
            arg(&resumed),
        ],
        2,
    );
    assert!(
        err.contains("--snapshots cannot be combined with --resume yet"),
        "{err}"
    );
    assert!(!resumed.exists());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn snapshots_out_writes_them_to_a_file_of_their_own() {
    let dir = temp_dir("snapshots-out");
    let (kept, weights, apart, plain) = (
        dir.join("kept.safetensors"),
        dir.join("weights.safetensors"),
        dir.join("snapshots.safetensors"),
        dir.join("plain.safetensors"),
    );
    let cpu = ["--backend", "cpu"];
    let epochs = ["--epochs", "30"];
    train(
        &cpu,
        &[
            &epochs[..],
            &["--snapshots", "0,7", "--weights", arg(&kept)],
        ]
        .concat(),
    );
    train(
        &cpu,
        &[
            &epochs[..],
            &["--snapshots", "0,7", "--snapshots-out", arg(&apart)],
            &["--weights", arg(&weights)],
        ]
        .concat(),
    );
    train(&cpu, &[&epochs[..], &["--weights", arg(&plain)]].concat());
    // The weights file is the run's without snapshots, byte for byte; the
    // snapshots file holds the rates and every snapshot tensor of the run
    // that kept them in its weights file, float64 twins included.
    let read = |p: &Path| std::fs::read(p).unwrap();
    assert!(read(&weights) == read(&plain), "the weights file");
    let (apart_tensors, kept_tensors) = (tensors(&apart), tensors(&kept));
    let names: Vec<&String> = apart_tensors.keys().collect();
    let expected: Vec<&String> = kept_tensors
        .keys()
        .filter(|n| n.starts_with("snapshot.") || n.starts_with("learning_rate"))
        .collect();
    assert_eq!(names, expected);
    for (name, value) in &apart_tensors {
        assert!(kept_tensors[name] == *value, "tensor '{name}'");
    }
    // predict and a rewind read it as they read the snapshots kept in the
    // weights file.
    let data = dir.join("moons.csv");
    write_moons(&data);
    let predict = |file: &Path, more: &[&str]| {
        let base = ["predict", "--weights", arg(file), "--data", arg(&data)];
        run_ok(&[&base[..], more].concat())
    };
    let from_apart = predict(&apart, &["--snapshot", "7"]);
    assert_eq!(from_apart, predict(&kept, &["--snapshot", "7"]));
    let rewound = |file: &Path, out: &Path| {
        let start = ["--init-weights", arg(file), "--init-snapshot", "7"];
        train(
            &cpu,
            &[&epochs[..], &start[..], &["--weights", arg(out)]].concat(),
        );
        read(out)
    };
    let (one, other) = (
        dir.join("rewound-1.safetensors"),
        dir.join("rewound-2.safetensors"),
    );
    assert!(
        rewound(&apart, &one) == rewound(&kept, &other),
        "rewound runs"
    );
    // Without an epoch, the file says what it is.
    let base = ["predict", "--weights", arg(&apart), "--data", arg(&data)];
    let err = run_err(&base, 1);
    assert!(
        err.contains(
            "is a snapshots file (--snapshots-out): it holds the parameters at epochs 0,7"
        ),
        "{err}"
    );
    // Refused before any output: without --snapshots, with a shard.
    let refused = dir.join("refused.safetensors");
    let cases: &[(&[&str], &str)] = &[
        (&[], "writes the snapshots: give --snapshots too"),
        (
            &["--snapshots", "7", "--shard", "0/2", "--out", "shards"],
            "cannot be combined with --shard",
        ),
    ];
    for (more, message) in cases {
        let args = [
            RUN,
            &cpu[..],
            &epochs[..],
            &["--snapshots-out", arg(&refused)],
            more,
        ]
        .concat();
        let err = run_err(&args, 2);
        assert!(err.contains(message), "{more:?}: {err}");
        assert!(!refused.exists(), "{more:?}: no output");
    }
    // Not one of an --out directory's files, nor the directory itself.
    let out = dir.join("out");
    let in_out = out.join("results.csv");
    let clashes: [(&Path, &str); 2] = [
        (&in_out, "is also --out"),
        (
            &out,
            "the directory's files and the snapshots file need their own names",
        ),
    ];
    for (path, message) in clashes {
        let more = [
            "--snapshots",
            "7",
            "--snapshots-out",
            arg(path),
            "--out",
            arg(&out),
        ];
        let err = run_err(&[RUN, &cpu[..], &epochs[..], &more[..]].concat(), 2);
        assert!(err.contains(message), "{err}");
        assert!(!out.exists(), "no output");
    }
}
