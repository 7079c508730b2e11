//! The NumPy peers (benches/peers: einsum over a network axis, and the
//! struct-of-arrays program of soa_peers.py) train exactly what gputrain
//! trains: from the same initial weights their float64 final losses match
//! the float64 CPU reference to 1e-9 relative for every bias mode, loss and
//! reduction, and their float32 ones match the GPU's. A peer whose framework
//! is missing is listed as not installed. Without it the throughput ratios in
//! the README would compare different work. Needs Python with NumPy: the
//! interpreter `GPUTRAIN_PYTHON` names, else the repository's `.venv`
//! (the README's set-up makes it), else `python3` on the PATH.

use std::path::PathBuf;
use std::process::Command;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("GPUTRAIN_PYTHON") {
        return p.into();
    }
    let venv = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.venv/bin/python3"));
    if venv.exists() {
        venv
    } else {
        "python3".into()
    }
}

fn compare(args: &[&str]) -> String {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/compare.py");
    let python = python();
    let out = Command::new(&python)
        .arg(script)
        .args(["--gputrain", env!("CARGO_BIN_EXE_gputrain")])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "running {} {script}: {e}; install python3",
                python.display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !stderr.contains("No module named 'numpy'"),
        "the NumPy peer needs NumPy ({} has none): python3 -m venv .venv && .venv/bin/pip install numpy",
        python.display()
    );
    assert!(
        out.status.success(),
        "compare.py {args:?} failed ({:?}):\n{stdout}\n{stderr}",
        out.status.code()
    );
    stdout
}

fn assert_agrees(stdout: &str, peers: usize) {
    let lines: Vec<&str> = stdout
        .lines()
        .filter(|l| l.contains("final losses agree"))
        .collect();
    assert_eq!(lines.len(), peers, "{stdout}");
    assert!(lines.iter().all(|l| l.contains("agree: yes")), "{stdout}");
    assert!(stdout.contains("ratio gputrain/numpy = "), "{stdout}");
}

#[test]
fn float64_peer_matches_the_cpu_reference_for_every_convention() {
    for extra in [
        &["--task", "tutorial", "--bias", "shared"][..],
        &["--task", "xor", "--loss", "sse", "--reduction", "mean"],
        &["--layers", "3,4,4,2", "--synthetic", "5", "--bias", "none"],
        &[
            "--layers",
            "3,5,2",
            "--synthetic",
            "7",
            "--bias",
            "shared",
            "--reduction",
            "mean",
        ],
    ] {
        // Both NumPy peers: einsum over a network axis, and struct of
        // arrays (soa_peers.py, the program every SoA peer runs).
        let mut args = vec![
            "--backend",
            "cpu",
            "--peers",
            "numpy-einsum,numpy",
            "--dtypes",
            "float64",
            "--tolerance",
            "1e-9",
            "--networks",
            "40",
            "--epochs",
            "300",
        ];
        args.extend_from_slice(extra);
        let stdout = compare(&args);
        assert_agrees(&stdout, 2);
    }
}

#[test]
fn float32_peer_matches_the_gpu_and_reports_both_throughputs() {
    let stdout = compare(&[
        "--backend",
        "gpu",
        "--peers",
        "numpy-einsum,numpy",
        "--dtypes",
        "float32,float64",
        "--networks",
        "500",
        "--epochs",
        "2000",
    ]);
    assert_agrees(&stdout, 4);
    assert!(stdout.contains("gputrain (gpu, fused"), "{stdout}");
    assert!(
        stdout.contains("numpy") && stdout.contains("float32:"),
        "{stdout}"
    );
}

#[test]
fn disagreeing_final_losses_fail_the_comparison() {
    // An impossible tolerance: float32 GPU results cannot match float64
    // to 1e-15, so the script must say NO and exit 1.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers/compare.py");
    let out = Command::new(python())
        .arg(script)
        .args(["--gputrain", env!("CARGO_BIN_EXE_gputrain")])
        .args(["--networks", "50", "--epochs", "500", "--dtypes", "float64"])
        .args(["--tolerance", "1e-15"])
        .output()
        .expect("run python3");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("final losses agree: NO"), "{stdout}");
}

#[test]
fn every_peer_is_run_or_listed_as_not_installed() {
    let stdout = compare(&[
        "--peers",
        "all",
        "--networks",
        "20",
        "--epochs",
        "50",
        "--task",
        "xor",
    ]);
    for peer in [
        "numpy-einsum",
        "numpy",
        "numba",
        "jax",
        "torch",
        "torch-compile",
    ] {
        let line = stdout
            .lines()
            .find(|l| l.starts_with(&format!("{peer} ")))
            .unwrap_or_else(|| panic!("no line for {peer}:\n{stdout}"));
        if !line.ends_with("not installed") {
            assert!(line.contains("network-epochs/s"), "{line}");
        }
    }
    // Every line with a rate but gputrain's own is a peer that ran.
    assert_agrees(&stdout, stdout.matches("network-epochs/s (").count() - 1);
}

/// `gputrain bench --peers` on the xor workload with the test's Python.
fn bench_peers(extra: &[&str]) -> std::process::Output {
    let python = python();
    Command::new(env!("CARGO_BIN_EXE_gputrain"))
        .args([
            "bench",
            "--workload",
            "xor",
            "--backend",
            "cpu",
            "--seconds",
            "0.2",
        ])
        .args(["--peers", "--python"])
        .arg(&python)
        .args(extra)
        .env("XDG_RUNTIME_DIR", std::env::temp_dir())
        .output()
        .expect("run gputrain bench")
}

#[test]
fn bench_runs_the_peers_in_the_same_run_and_judges_them() {
    let out = bench_peers(&["--json", "--quiet"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let peers = report["peers"].as_array().unwrap();
    let names: Vec<&str> = peers.iter().map(|p| p["peer"].as_str().unwrap()).collect();
    assert_eq!(names, ["numpy", "numba", "jax", "torch", "torch-compile"]);
    let rate = report["rows"][0]["network_epochs_per_second"]
        .as_f64()
        .unwrap();
    for peer in peers {
        match peer["status"].as_str().unwrap() {
            "not-installed" => assert!(peer["network_epochs_per_second"].is_null()),
            "measured" => {
                let worst = peer["worst_relative_loss_difference"].as_f64().unwrap();
                assert!(worst <= 1e-3, "{peer}");
                let theirs = peer["network_epochs_per_second"].as_f64().unwrap();
                let ratio = peer["gputrain_ratio"].as_f64().unwrap();
                assert!((ratio - rate / theirs).abs() <= 1e-9 * ratio, "{peer}");
            }
            other => panic!("{other}: {peer}"),
        }
    }
    assert_eq!(peers[0]["status"], "measured", "NumPy is installed here");
    assert!(report["machine"].as_str().unwrap().contains("threads"));
}

#[test]
fn a_peer_beyond_the_tolerance_fails_the_bench() {
    // float32 peers cannot match the float64 reference to 1e-12.
    let out = bench_peers(&["--peers-tolerance", "1e-12"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("FAILED agreement"), "{stdout}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("disagree with the float64 reference"), "{err}");
    let missing = bench_peers(&["--peers-dir", "/nonexistent"]);
    let err = String::from_utf8_lossy(&missing.stderr);
    assert_eq!(missing.status.code(), Some(2), "{err}");
    assert!(
        err.contains("--peers-dir /nonexistent: no soa_peers.py there"),
        "{err}"
    );
}

/// The loss every peer is judged by (numpy_peer.py's `final_losses`,
/// which bmm_peers.py's softmax classifiers report through) is the
/// reference's: a tanh-softmax network's float64 losses before training
/// match the float64 reference's to 1e-12 relative (measured: 0, the same
/// operations in float64), and so do a sigmoid network's.
#[test]
fn the_peers_loss_is_the_references_for_softmax_and_sigmoid_outputs() {
    let dir = crate::common::temp_dir("peer-loss");
    let data = dir.join("classes.csv");
    class_data(&data, 6, 4, 3, (3, 11, 5.0));
    for (name, flags) in [
        (
            "softmax",
            &[
                "--activation",
                "tanh",
                "--output-activation",
                "softmax",
                "--loss",
                "categorical-cross-entropy",
                "--reduction",
                "mean",
            ][..],
        ),
        ("sigmoid", &["--loss", "sse"][..]),
    ] {
        let out = dir.join(name);
        let _ = std::fs::remove_dir_all(&out);
        let run = ["--layers", "4-5-3", "--networks", "7", "--epochs", "0"];
        let init = ["--backend", "cpu", "--init", "uniform:0.8"];
        gputrain(&out, &data, &[&run[..], &init, flags].concat());
        let script = "from numpy_peer import read_safetensors, load_csv, final_losses\n\
             t, meta = read_safetensors(sys.argv[1])\n\
             layers = len(meta['topology'].split('-')) - 1\n\
             w = [t[f'layers.{l}.weight'] for l in range(layers)]\n\
             b = [t.get(f'layers.{l}.bias') for l in range(layers)]\n\
             x, y = load_csv(sys.argv[2], 4)\n\
             print(' '.join(repr(float(v)) for v in final_losses(meta, w, b, x, y)))";
        let weights = out.join("weights.safetensors");
        let stdout = run_python(script, &[weights.as_ref(), data.as_ref()]);
        assert_close(name, "numpy_peer.py", &stdout, &out, 1e-12);
    }
}

/// `samples` rows of `inputs` inputs (sample `s`'s input `k` is
/// `((7 s + a k) % m) / d - 1` for `shape` = (a, m, d)) and one-hot
/// targets of `classes` classes (`s % classes`), as CSV at `path`.
fn class_data(
    path: &std::path::Path,
    samples: usize,
    inputs: usize,
    classes: usize,
    shape: (usize, usize, f64),
) {
    let (a, m, d) = shape;
    let rows: String = (0..samples)
        .map(|s| {
            let x: Vec<String> = (0..inputs)
                .map(|k| format!("{:.3}", ((s * 7 + k * a) % m) as f64 / d - 1.0))
                .collect();
            let y: Vec<&str> = (0..classes)
                .map(|j| if j == s % classes { "1" } else { "0" })
                .collect();
            format!("{},{}\n", x.join(","), y.join(","))
        })
        .collect();
    std::fs::write(path, rows).unwrap();
}

/// Runs gputrain with `args` on `data`, writing into `out`.
fn gputrain(out: &std::path::Path, data: &std::path::Path, args: &[&str]) {
    let run = Command::new(env!("CARGO_BIN_EXE_gputrain"))
        .args(args)
        .arg("--data")
        .arg(data)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "gputrain {args:?}: {}",
        String::from_utf8_lossy(&run.stderr)
    );
}

/// The final losses a peer printed (`stdout`, one a network) against
/// those of the run in `out` (its results.csv), to `tolerance` relative.
fn assert_close(name: &str, peer: &str, stdout: &str, out: &std::path::Path, tolerance: f64) {
    let theirs: Vec<f64> = stdout
        .split_whitespace()
        .map(|v| v.parse().unwrap())
        .collect();
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut header = results.lines().next().unwrap().split(',');
    let column = header.position(|c| c == "final_loss").unwrap();
    let ours: Vec<f64> = results
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(column).unwrap().parse().unwrap())
        .collect();
    assert_eq!(theirs.len(), ours.len(), "{name}: one loss a network");
    for (n, (a, b)) in theirs.iter().zip(&ours).enumerate() {
        assert!(
            (a - b).abs() <= tolerance * b.abs(),
            "{name}, network {n}: final loss {a} from {peer}, {b} from the reference"
        );
    }
}

/// Runs `script` (Python, with benches/peers on its path) with `args`,
/// returning its stdout; a failure shows its stderr.
fn run_python(script: &str, args: &[&std::ffi::OsStr]) -> String {
    let peers = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/peers");
    let prelude = format!("import sys; sys.path.insert(0, {peers:?})\n");
    let out = Command::new(python())
        .args(["-c", &(prelude + script)])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}; install python3", python().display()));
    assert!(
        out.status.success(),
        "python failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_peers_shuffle_is_gputrains() {
    // numpy_peer.epoch_order against src/batches.rs: a power-of-4 sample
    // count, ones that walk the cycle, a seed with a high word, epochs
    // past 2^32 (the key takes the epoch's low 32 bits, as the kernels).
    let cases: [(usize, u64, u64); 6] = [
        (1, 0, 0),
        (10, 9, 2),
        (64, 0, 5),
        (1_000, 3 | (1 << 40), 7),
        (1_024, 0, 99),
        (300, 12_345, (1 << 32) + 3),
    ];
    for (samples, seed, epoch) in cases {
        let script = "from numpy_peer import epoch_order\n\
                      s, seed, e = (int(v) for v in sys.argv[1:4])\n\
                      print(' '.join(str(v) for v in epoch_order(s, seed, e)))";
        let [s, k, e] = [samples as u64, seed, epoch].map(|v| v.to_string());
        let theirs = run_python(script, &[s.as_ref(), k.as_ref(), e.as_ref()]);
        let batching = gputrain::batches::Batching {
            size: samples,
            shuffle: true,
            seed,
        };
        let ours: Vec<String> = batching
            .batch(samples, epoch, 0)
            .map(|i| i.to_string())
            .collect();
        assert_eq!(
            theirs.split_whitespace().collect::<Vec<_>>(),
            ours,
            "{samples} samples, seed {seed}, epoch {epoch}: numpy_peer.epoch_order (left) \
             against gputrain's order (right)"
        );
    }
}

#[test]
fn the_einsum_peer_trains_adam_and_minibatches_as_the_reference() {
    // bmm_peers.py's trainer (the code jax-bmm compiles) run with NumPy in
    // float64 against the float64 reference: Adam on shuffled minibatches
    // with a short last batch (50 rows in batches of 16); SGD on
    // minibatches in the file's order with a mean;
    // tanh hidden layers into a softmax. Measured (AMD EPYC, NumPy 2.4):
    // the worst relative difference of a final loss was 2.8e-16, float64
    // rounding; 3e-15 is about 10x that.
    let dir = crate::common::temp_dir("peer-bmm");
    let data = dir.join("data.csv");
    class_data(&data, 50, 3, 2, (5, 13, 6.0));
    let cases: [(&str, &[&str]); 3] = [
        (
            "adam",
            &[
                "--optimizer",
                "adam",
                "--lr",
                "0.02",
                "--batch-size",
                "16",
                "--seed",
                "11",
            ],
        ),
        (
            "sgd-ordered-mean",
            &[
                "--batch-size",
                "20",
                "--no-shuffle",
                "--reduction",
                "mean",
                "--loss",
                "sse",
                "--bias",
                "shared",
            ],
        ),
        (
            "tanh-softmax-adam",
            &[
                "--activation",
                "tanh",
                "--output-activation",
                "softmax",
                "--loss",
                "categorical-cross-entropy",
                "--optimizer",
                "adam",
                "--lr",
                "0.01",
                "--batch-size",
                "16",
            ],
        ),
    ];
    let epochs = 13;
    for (name, flags) in cases {
        let train = |out: &str, epochs: u32| {
            let out = dir.join(name).join(out);
            let e = epochs.to_string();
            let run = ["--layers", "3-6-2", "--networks", "5", "--backend", "cpu"];
            gputrain(&out, &data, &[&run[..], &["--epochs", &e], flags].concat());
            out
        };
        let init = train("init", 0);
        let trained = train("trained", epochs);
        let script = "import numpy as np\n\
             from numpy_peer import read_safetensors, load_csv, final_losses, loss_scale\n\
             from bmm_peers import trainer, NumpyLax, training_terms, orders_for\n\
             t, meta = read_safetensors(sys.argv[1])\n\
             epochs = int(sys.argv[3])\n\
             layers = len(meta['topology'].split('-')) - 1\n\
             w = [t[f'layers.{l}.weight'] for l in range(layers)]\n\
             b = [t.get(f'layers.{l}.bias') for l in range(layers)]\n\
             x, y = load_csv(sys.argv[2], 3)\n\
             scale, _ = loss_scale(meta, len(x))\n\
             adam, batch, shuffle, seed, first = training_terms(meta)\n\
             orders = orders_for(len(x), batch, shuffle, seed, first, epochs)\n\
             train = trainer(np, NumpyLax, x, y, scale, meta['reduction'] == 'mean', 3,\n\
                             meta['activation'], meta['output_activation'], adam, batch)\n\
             w, b = train(w, b, t['learning_rate'], epochs, orders)\n\
             print(' '.join(repr(float(v)) for v in final_losses(meta, w, b, x, y)))";
        let weights = init.join("weights.safetensors");
        let e = epochs.to_string();
        let stdout = run_python(script, &[weights.as_ref(), data.as_ref(), e.as_ref()]);
        assert_close(name, "bmm_peers.py's trainer", &stdout, &trained, 3e-15);
    }
}
