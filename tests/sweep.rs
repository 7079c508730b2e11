//! Sweeps: grids with grouped statistics, shards merged into exactly one
//! run's files, several devices at once, and one clear error for each bad
//! input.

use crate::common;

use std::path::Path;

use common::{arg, gputrain, temp_dir};

fn ok(args: &[&str]) -> String {
    let out = gputrain(args);
    assert!(
        out.status.success(),
        "gputrain {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Compares two run directories file by file: the same names, the same
/// bytes, the summary's timing lines aside.
pub(crate) fn assert_same_files(one: &Path, other: &Path) {
    let names = |d: &Path| {
        let mut n: Vec<String> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        n.sort();
        n
    };
    assert_eq!(
        names(one),
        names(other),
        "{} vs {}",
        one.display(),
        other.display()
    );
    for name in names(one) {
        let (a, b) = (
            std::fs::read(one.join(&name)).unwrap(),
            std::fs::read(other.join(&name)).unwrap(),
        );
        if name == "summary.json" {
            let untimed = |bytes: &[u8]| -> Vec<String> {
                String::from_utf8_lossy(bytes)
                    .lines()
                    .filter(|l| !l.contains("\"wall_seconds\"") && !l.contains("per_second"))
                    .map(String::from)
                    .collect()
            };
            assert_eq!(untimed(&a), untimed(&b), "{name} differs beyond its timing");
        } else {
            assert!(
                a == b,
                "{name} differs between {} and {}",
                one.display(),
                other.display()
            );
        }
    }
}

/// The sweep the tests shard: 2 rates x 2 init scales x 15 replicates of
/// XOR, with a target, curves and snapshots (whose tensors merge as the
/// others do).
const SWEEP: &[&str] = &[
    "--task",
    "xor",
    "--lr",
    "0.5,4",
    "--init",
    "uniform:0.5,1",
    "--replicates",
    "15",
    "--epochs",
    "300",
    "--target-loss",
    "0.05",
    "--history",
    "50",
    "--snapshots",
    "0,100",
    "--backend",
    "simd",
    "--quiet",
];

#[test]
fn shards_merge_into_exactly_one_runs_files() {
    let dir = temp_dir("shards");
    let single = dir.join("single");
    ok(&[SWEEP, &["--out", arg(&single)]].concat());
    // 7 shards of 60 networks: uneven, and splitting grid points.
    let mut shards = Vec::new();
    for i in 0..7 {
        let shard = dir.join(format!("shard-{i}"));
        let which = format!("{i}/7");
        ok(&[SWEEP, &["--shard", &which, "--out", arg(&shard)]].concat());
        shards.push(shard);
    }
    let merged = dir.join("merged");
    let mut merge = vec!["merge", "--out", arg(&merged), "--quiet"];
    // Any order.
    merge.extend(shards.iter().rev().map(|s| arg(s)));
    ok(&merge);
    assert_same_files(&single, &merged);
    let weights = std::fs::read(merged.join("weights.safetensors")).unwrap();
    let weights = safetensors::SafeTensors::deserialize(&weights).unwrap();
    let snapshot = weights.tensor("snapshot.100.layers.0.weight").unwrap();
    assert_eq!(snapshot.shape(), [60, 3, 2]);
    // Slurm's environment picks the shard; Kubernetes' needs the count.
    let auto = dir.join("auto");
    let out = common::gputrain_env(
        &[SWEEP, &["--shard", "auto", "--out", arg(&auto)]].concat(),
        &[
            ("SLURM_ARRAY_TASK_ID", "3"),
            ("SLURM_ARRAY_TASK_COUNT", "7"),
        ],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_files(&shards[3], &auto);
    let k8s = dir.join("k8s");
    let out = common::gputrain_env(
        &[
            SWEEP,
            &["--shard", "auto", "--shard-count", "7", "--out", arg(&k8s)],
        ]
        .concat(),
        &[("JOB_COMPLETION_INDEX", "3")],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_same_files(&shards[3], &k8s);
    // A shard's directory reruns as that shard.
    let rerun = dir.join("rerun");
    ok(&["rerun", arg(&shards[3]), "--out", arg(&rerun)]);
    assert_same_files(&shards[3], &rerun);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// run.json and summary.json record the build's version, the seed and the
/// command without where it wrote; `gputrain rerun DIR` runs that command
/// into DIR-rerun (flags after `--` added), giving the same files; a
/// directory it cannot rerun gets one clear error.
#[test]
fn a_run_directory_records_its_command_and_reruns_from_it() {
    let dir = temp_dir("rerun");
    let run = dir.join("run");
    let command = [
        "--task",
        "xor",
        "--networks",
        "12",
        "--epochs",
        "150",
        "--seed",
        "5",
        "--lr",
        "0.2..2",
    ];
    ok(&[&command[..], &["--out", arg(&run), "--quiet"]].concat());
    let json = |path: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    for file in ["run.json", "summary.json"] {
        let record = json(&run.join(file));
        assert_eq!(record["command"], serde_json::json!(command), "{file}");
        assert_eq!(record["seed"], 5, "{file}");
        let version = record["version"].as_str().unwrap().to_string();
        assert!(
            version.starts_with(env!("CARGO_PKG_VERSION")),
            "{file}: {version}"
        );
    }
    let out = gputrain(&["rerun", arg(&run), "--", "--quiet"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let again = dir.join("run-rerun");
    assert!(
        stderr.contains(&format!("--out {}", arg(&again))),
        "the line it runs: {stderr}"
    );
    assert_same_files(&run, &again);
    // Refused: no run directory, a run.json of no command, one of arrays.
    let err = common::run_err(&["rerun", arg(&dir)], 2);
    assert!(err.contains("is not a run directory"), "{err}");
    let edit = |name: &str, command: serde_json::Value| {
        let edited = dir.join(name);
        std::fs::create_dir_all(&edited).unwrap();
        let mut record = json(&run.join("run.json"));
        record["command"] = command;
        std::fs::write(edited.join("run.json"), record.to_string()).unwrap();
        edited
    };
    let old = edit("old", serde_json::json!([]));
    let err = common::run_err(&["rerun", arg(&old)], 2);
    assert!(err.contains("records no command"), "{err}");
    let arrays = edit("arrays", serde_json::json!(["--data", "(arrays)"]));
    let err = common::run_err(&["rerun", arg(&arrays)], 2);
    assert!(err.contains("arrays handed over from Python"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// XOR for 300 epochs towards 0.05 on the SIMD trainer, with `extra`.
fn xor<'a>(extra: &[&'a str]) -> Vec<&'a str> {
    let base = [
        "--task",
        "xor",
        "--epochs",
        "300",
        "--target-loss",
        "0.05",
        "--backend",
        "simd",
        "--quiet",
    ];
    [&base[..], extra].concat()
}

#[test]
fn grid_points_get_columns_groups_and_their_own_networks() {
    let dir = temp_dir("grid");
    let out = dir.join("out");
    let json: serde_json::Value =
        serde_json::from_str(&ok(&[SWEEP, &["--out", arg(&out), "--json"]].concat())).unwrap();
    // Ids: point x R + replicate, the last axis (--lr) fastest.
    let results = std::fs::read_to_string(out.join("results.csv")).unwrap();
    let mut lines = results.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("network,point,replicate,init,learning_rate,final_loss"),
        "{results}"
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect())
        .collect();
    assert_eq!(rows.len(), 60);
    assert_eq!(rows[16][..5], ["16", "1", "1", "uniform:0.5", "4"]);
    assert_eq!(rows[31][..5], ["31", "2", "1", "uniform:1", "0.5"]);
    // Groups: one per point, in grid order, counts adding up.
    let groups = json["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 4);
    assert_eq!(groups[1]["values"], serde_json::json!(["uniform:0.5", "4"]));
    let reached: u64 = groups
        .iter()
        .map(|g| g["reached_target"]["count"].as_u64().unwrap())
        .sum();
    assert_eq!(reached, json["reached_target"].as_u64().unwrap());
    for g in groups {
        let share = &g["reached_target"];
        let (low, p, high) = (
            share["low"].as_f64().unwrap(),
            share["share"].as_f64().unwrap(),
            share["high"].as_f64().unwrap(),
        );
        assert!(low <= p && p <= high && (0.0..=1.0).contains(&low) && high <= 1.0);
    }
    let csv = std::fs::read_to_string(out.join("groups.csv")).unwrap();
    assert!(csv.starts_with("point,init,learning_rate,first_network,networks,reached,"));
    assert_eq!(csv.lines().count(), 5);
    // Initialisation is keyed on (seed, replicate): the point (uniform:1,
    // lr 4) trains exactly the networks of a plain run with those values.
    let plain = dir.join("plain.csv");
    let lr4 = ["--lr", "4", "--init", "uniform:1", "--networks", "15"];
    ok(&[&xor(&lr4)[..], &["--results", arg(&plain)]].concat());
    let plain = std::fs::read_to_string(&plain).unwrap();
    for (r, line) in plain.lines().skip(1).enumerate() {
        let loss = line.split(',').nth(2).unwrap();
        assert_eq!(rows[45 + r][5], loss, "replicate {r} of point 3");
    }
    // A one-axis sweep names its best point.
    let one_axis = xor(&["--lr", "0.05,4", "--replicates", "20"]);
    let one: serde_json::Value =
        serde_json::from_str(&ok(&[&one_axis[..], &["--json"]].concat())).unwrap();
    assert_eq!(one["best_point"]["axis"], "--lr");
    assert_eq!(one["best_point"]["value"], "4");
    assert_eq!(one["best_point"]["by"], "reached_target");
    let text = ok(&one_axis);
    assert!(text.contains("best --lr 4: reached the target"), "{text}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn topologies_run_one_after_another_with_a_weights_file_each() {
    let dir = temp_dir("topologies");
    let out = dir.join("out");
    let summary = ok(&[
        "--task",
        "xor",
        "--layers",
        "2,2,1",
        "--layers",
        "2,4,1",
        "--optimizer",
        "momentum",
        "--momentum",
        "0.5,0.9",
        "--replicates",
        "8",
        "--epochs",
        "100",
        "--backend",
        "simd",
        "--quiet",
        "--verify",
        "8",
        "--json",
        "--out",
        arg(&out),
    ]);
    // --verify re-trains networks of every point with the point's model.
    let summary: serde_json::Value = serde_json::from_str(&summary).unwrap();
    let verified: Vec<u64> = summary["verify"]["networks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_u64().unwrap())
        .collect();
    assert_eq!(verified.len(), 8);
    assert!(verified.iter().any(|&n| n < 16) && verified.iter().any(|&n| n >= 16));
    assert_eq!(summary["verify"]["passed"], true);
    for k in 0..4 {
        let file = out.join(format!("weights-{k}.safetensors"));
        let bytes = std::fs::read(&file).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let hidden = if k < 2 { 2 } else { 4 };
        assert_eq!(
            st.tensor("layers.0.weight").unwrap().shape(),
            [8, hidden, 2]
        );
    }
    let run: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(run["models"][3]["ids"], serde_json::json!([24, 32]));
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `--adapter 0,0`: two devices on the one adapter give the bytes of one.
#[test]
fn two_devices_give_the_bytes_of_one() {
    let dir = temp_dir("devices");
    let args = [
        "--task",
        "xor",
        "--lr",
        "0.5,4",
        "--replicates",
        "24",
        "--epochs",
        "200",
        "--history",
        "50",
        "--backend",
        "gpu",
        "--quiet",
    ];
    let (one, two) = (dir.join("one"), dir.join("two"));
    ok(&[&args[..], &["--out", arg(&one)]].concat());
    ok(&[&args[..], &["--out", arg(&two), "--adapter", "0,0"]].concat());
    assert_same_files(&one, &two);
    // Without --out: the files asked for, the curves' CSV alone among them.
    for (name, adapter) in [("plain-one", "0"), ("plain-two", "0,0")] {
        let d = dir.join(name);
        std::fs::create_dir_all(&d).unwrap();
        let (csv, groups) = (d.join("curves.csv"), d.join("groups.csv"));
        let files = ["--history-csv", arg(&csv), "--groups", arg(&groups)];
        ok(&[&args[..], &files, &["--adapter", adapter]].concat());
    }
    assert_same_files(&dir.join("plain-one"), &dir.join("plain-two"));
    // With no file at all, the summary's curves still come through.
    let untimed = |adapter: &str| -> Vec<String> {
        ok(&[&args[..], &["--json", "--adapter", adapter]].concat())
            .lines()
            .filter(|l| !l.contains("\"wall_seconds\"") && !l.contains("per_second"))
            .map(String::from)
            .collect()
    };
    let (one, two) = (untimed("0"), untimed("0,0"));
    assert!(one.iter().any(|l| l.contains("\"history\": [")), "{one:?}");
    assert_eq!(one, two);
    std::fs::remove_dir_all(&dir).unwrap();
}

/// One error line naming the problem, exit code `code`, nothing written:
/// not even the output directory.
fn assert_refused(args: &[&str], code: i32, needle: &str, out: &Path) {
    let result = gputrain(args);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(code), "{args:?}: {stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("error"))
        .unwrap_or("");
    assert!(
        line.contains(needle),
        "{args:?}: {line:?} should mention {needle:?}"
    );
    assert!(!out.exists(), "{args:?} left {} behind", out.display());
}

#[test]
fn bad_sweeps_shards_and_merges_get_one_clear_error() {
    let dir = temp_dir("bad-sweeps");
    let out = dir.join("nothing");
    let o = arg(&out);
    let base = [
        "--task",
        "xor",
        "--epochs",
        "5",
        "--backend",
        "simd",
        "--quiet",
    ];
    let with = |extra: &[&'static str]| -> Vec<&str> { [&base[..], extra].concat() };
    let cases: &[(&[&str], i32, &str)] = &[
        (&["--shard", "4/4"], 2, "I must be below K"),
        (&["--shard", "0/0"], 2, "at least 1"),
        (&["--shard", "x/2"], 2, "whole numbers"),
        (&["--shard", "1"], 2, "expected I/K"),
        (&["--shard", "auto"], 2, "SLURM_ARRAY_TASK_ID"),
        (&["--lr", "0.1,x"], 2, "'x' is not a number"),
        (&["--adapter", "0,0"], 2, "--backend simd trains on the CPU"),
        (&["--adapter", "0,x"], 2, "'x' is not an adapter index"),
        (&["--adapter", "0,0", "--verify", "2"], 2, "--verify cannot"),
        (&["--lr", "0.1,,2"], 2, "empty item"),
        (&["--lr", "0.1..1:1"], 2, "grid points"),
        (&["--momentum", "0.5,0.9"], 2, "--momentum applies to"),
        (&["--batch-size", "1,0"], 2, "at least 1"),
        (
            &["--lr", "0.5,1,2", "--networks", "10"],
            2,
            "does not divide evenly",
        ),
        (
            &["--lr", "0.5,1", "--networks", "10", "--replicates", "4"],
            2,
            "disagree",
        ),
    ];
    for (extra, code, needle) in cases {
        let mut args = with(extra);
        args.extend(["--out", o]);
        assert_refused(&args, *code, needle, &out);
    }
    // A run that fails after making its --out directory removes it.
    let gpu_args = [
        "--task",
        "xor",
        "--epochs",
        "5",
        "--backend",
        "gpu",
        "--quiet",
    ];
    let no_gpu = [&gpu_args[..], &["--adapter", "no-such-gpu", "--out", o]].concat();
    assert_refused(&no_gpu, 1, "no adapter matches", &out);
    // --shard needs --out.
    assert_refused(
        &with(&["--shard", "0/2"]),
        2,
        "--shard needs --out DIR",
        &out,
    );
    // Merges: a directory that is not a shard, a missing shard, a shard
    // twice, shards of another configuration.
    let shard = |i: usize, k: usize, lr: &'static str| {
        let d = dir.join(format!("s{i}of{k}-{lr}"));
        let which = format!("{i}/{k}");
        ok(&[
            &with(&["--lr", lr, "--networks", "6"])[..],
            &["--shard", &which, "--out", arg(&d)],
        ]
        .concat());
        d
    };
    let (a, b, c) = (shard(0, 3, "0.5"), shard(1, 3, "0.5"), shard(2, 3, "0.5"));
    let other = shard(2, 3, "0.7");
    let merged = dir.join("merged");
    let m = arg(&merged);
    let plain = temp_dir("bad-sweeps-plain");
    // Exit 1 for a bad input file or directory (as for a bad CSV), 2 for
    // a usage error (the shards named are not all of them).
    assert_refused(
        &["merge", "--out", m, arg(&a), arg(&plain)],
        1,
        "not a shard directory",
        &merged,
    );
    let missing = dir.join("missing");
    assert_refused(
        &["merge", "--out", m, arg(&a), arg(&missing)],
        1,
        "is not a directory",
        &merged,
    );
    assert_refused(
        &["merge", "--out", m, arg(&a), arg(&b)],
        2,
        "shard 2/3 of this run is missing",
        &merged,
    );
    assert_refused(
        &["merge", "--out", m, arg(&a), arg(&b), arg(&b), arg(&c)],
        1,
        "again",
        &merged,
    );
    assert_refused(
        &["merge", "--out", m, arg(&a), arg(&b), arg(&other)],
        1,
        "fingerprint",
        &merged,
    );
    // Into one of its own shards: refused before anything is read, the
    // shard as it was.
    let shard_files = |d: &Path| -> Vec<(std::ffi::OsString, Vec<u8>)> {
        let mut files: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                (e.file_name(), std::fs::read(e.path()).unwrap())
            })
            .collect();
        files.sort();
        files
    };
    let before = shard_files(&b);
    let b_again = format!("{}/.", b.display());
    let result = gputrain(&["merge", "--out", &b_again, arg(&a), arg(&b), arg(&c)]);
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert_eq!(result.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is also the shard") && stderr.contains("its own"),
        "{stderr}"
    );
    assert_eq!(shard_files(&b), before, "the shard changed");
    // A shard whose weights file is cut short, and one whose weights hold
    // another count of networks than its run.json (shard 0/2's three in
    // place of 1/3's two): each named, nothing merged.
    let copy_of = |from: &Path, name: &str| {
        let to = dir.join(name);
        std::fs::create_dir_all(&to).unwrap();
        for e in std::fs::read_dir(from).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
        to
    };
    let cut = copy_of(&b, "cut");
    let weights = cut.join("weights.safetensors");
    let len = std::fs::metadata(&weights).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&weights)
        .unwrap()
        .set_len(len - 40)
        .unwrap();
    assert_refused(
        &["merge", "--out", m, arg(&a), arg(&cut), arg(&c)],
        1,
        "weights.safetensors: is truncated: its tensors need",
        &merged,
    );
    let half = shard(0, 2, "0.5");
    let swapped = copy_of(&b, "swapped");
    std::fs::copy(
        half.join("weights.safetensors"),
        swapped.join("weights.safetensors"),
    )
    .unwrap();
    assert_refused(
        &["merge", "--out", m, arg(&a), arg(&swapped), arg(&c)],
        1,
        "holds 3 networks, but its shard's run.json says 2",
        &merged,
    );
    // The same configuration trained on another backend: not the same
    // bytes, so refused, and no directory left behind.
    let gpu = dir.join("s1of3-gpu");
    let shard_args = [
        "--lr",
        "0.5",
        "--networks",
        "6",
        "--shard",
        "1/3",
        "--out",
        arg(&gpu),
    ];
    ok(&[&gpu_args[..], &shard_args].concat());
    assert_refused(
        &["merge", "--out", m, arg(&a), arg(&gpu), arg(&c)],
        1,
        "trained differently",
        &merged,
    );
    ok(&["merge", "--out", m, arg(&c), arg(&a), arg(&b), "--quiet"]);
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::remove_dir_all(&plain).unwrap();
}

/// The arguments of `gputrain` (no subcommand), parsed.
fn parsed(args: &[&str]) -> gputrain::cli::TrainArgs {
    use clap::Parser;
    let argv = std::iter::once("gputrain").chain(args.iter().copied());
    gputrain::cli::Cli::try_parse_from(argv).unwrap().train
}

#[test]
fn a_grid_reads_its_data_once_and_its_points_share_it() {
    let dir = temp_dir("shared-data");
    let csv = dir.join("rows.csv");
    let rows: String = (0..2_000)
        .map(|i| format!("{},{},{}\n", i % 7, i % 3, i % 2))
        .collect();
    std::fs::write(&csv, rows).unwrap();
    let args = parsed(&[
        "--data",
        arg(&csv),
        "--eval-data",
        arg(&csv),
        "--layers",
        "2-3-1",
        "--lr",
        "0.1..1:50",
        "--init",
        "uniform:0.5,1,2,4",
        "--replicates",
        "1",
    ]);
    let sweep = args.to_sweep().unwrap();
    assert_eq!(sweep.points.len(), 200);
    let first = &sweep.points[0].config;
    for (k, p) in sweep.points.iter().enumerate() {
        assert!(
            std::sync::Arc::ptr_eq(&p.config.data, &first.data),
            "point {k}'s data"
        );
        let (eval, first_eval) = (p.config.eval.as_ref(), first.eval.as_ref());
        assert!(
            std::sync::Arc::ptr_eq(eval.unwrap(), first_eval.unwrap()),
            "point {k}"
        );
    }
    // The data (2,000 rows x 3 values x 8 bytes, twice: training and
    // held-out) is counted once, not 200 times; each point adds its
    // configuration.
    let data = 2 * 2_000 * 3 * 8;
    let bytes = gputrain::memory::sweep_bytes(&sweep);
    let per_point = (bytes - data) / 200;
    assert!(
        bytes > data && per_point < 2_000,
        "{bytes} B: {per_point} B a point"
    );
    // Points of other widths (a --layers axis) train on data read for them.
    let wide = dir.join("wide.csv");
    std::fs::write(&wide, "1,2,1,0\n4,5,0,1\n").unwrap();
    let args = parsed(&[
        "--data",
        arg(&wide),
        "--layers",
        "3-2-1",
        "--layers",
        "2-2-2",
        "--networks",
        "2",
    ]);
    let sweep = args.to_sweep().unwrap();
    let (one, two) = (&sweep.points[0].config.data, &sweep.points[1].config.data);
    assert_eq!(
        (one.inputs, one.outputs, two.inputs, two.outputs),
        (3, 1, 2, 2)
    );
}
