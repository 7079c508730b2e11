"""A Python run is the command line's run: the same numbers bit for bit and
the same files byte for byte, on every backend; the files read back with
safetensors.numpy; the seed network's outputs to 1e-12 on the CPU."""

import json

import numpy as np
import pytest
from safetensors.numpy import load_file

import gputrain

# docs/design.md's figures for seed 003 after 20,000 epochs (lr 0.5, the
# tutorial's weights and shared biases): the float64 reference reproduces
# them to 1e-12 (tests/reference_numbers.rs).
SEED_OUTPUTS_20000 = [0.010633774372091731, 0.9893773083483602]

# Backends and the flags of a small run on each: the GPU one runs the real
# shaders (lavapipe where there is no GPU: without any adapter it fails,
# saying how to install one).
BACKENDS = ["simd", "cpu", "gpu"]


def python_and_cli(tmp_path, cli, flags, **kwargs):
    """The same run through gputrain.train and the binary: (run, the
    Python weights file, the CLI's results CSV and weights file)."""
    results, weights = tmp_path / "cli.csv", tmp_path / "cli.safetensors"
    cli(*flags, "--results", results, "--weights", weights, "-q")
    run = gputrain.train(progress=False, **kwargs)
    saved = run.save(tmp_path / "py.safetensors")
    return run, saved, results, weights


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_python_run_is_the_command_lines_bit_for_bit(tmp_path, cli, backend):
    flags = [
        "--task", "xor", "--layers", "2,3,1", "--networks", "24", "--epochs", "300",
        "--lr", "0.1..4", "--target-loss", "0.05", "--optimizer", "momentum",
        "--seed", "7", "--backend", backend,
    ]
    run, saved, results, weights = python_and_cli(
        tmp_path, cli, flags, task="xor", layers=[2, 3, 1], networks=24, epochs=300,
        lr=(0.1, 4.0), target_loss=0.05, optimizer="momentum", seed=7, backend=backend,
    )
    assert [open(p, "rb").read() == weights.read_bytes() for p in saved] == [True]
    own = tmp_path / "py.csv"
    gputrain.train(progress=False, results=own, task="xor", layers=[2, 3, 1], networks=24,
                   epochs=300, lr=(0.1, 4.0), target_loss=0.05, optimizer="momentum", seed=7,
                   backend=backend)
    assert own.read_bytes() == results.read_bytes()
    # The arrays are the CSV's values exactly.
    table = np.genfromtxt(results, delimiter=",", names=True)
    for name in ["final_loss", "learning_rate", "target_epoch", "epochs_completed"]:
        ours = getattr(run, name)
        assert ours.shape == (24,)
        assert np.array_equal(ours, table[name], equal_nan=True), (
            f"{name}: network {np.flatnonzero(ours != table[name])[:1]}: "
            f"{ours} vs {table[name]}"
        )
    assert np.array_equal(run.diverged, table["diverged"].astype(bool))


def test_arrays_train_as_the_same_samples_in_a_csv_file(tmp_path, cli):
    rng = np.random.default_rng(3)
    x = rng.normal(size=(40, 3))
    y = (x[:, :1] * x[:, 1:2] > 0).astype(np.float64)
    csv = tmp_path / "data.csv"
    # repr: the shortest text that reads back as the same float64.
    csv.write_text("".join(",".join(repr(float(v)) for v in row) + "\n" for row in np.hstack([x, y])))
    flags = ["--data", csv, "--layers", "3,4,1", "--networks", "16", "--epochs", "200",
             "--batch-size", "8", "--holdout", "0.25", "--backend", "simd"]
    run, saved, results, weights = python_and_cli(
        tmp_path, cli, flags, data=(x, y), layers=[3, 4, 1], networks=16, epochs=200,
        batch_size=8, holdout=0.25, backend="simd",
    )
    assert open(saved[0], "rb").read() == weights.read_bytes()
    table = np.genfromtxt(results, delimiter=",", names=True)
    assert np.array_equal(run.final_loss, table["final_loss"])
    assert np.array_equal(run.results["eval_loss"], table["eval_loss"])


def test_result_columns_keep_their_types_whatever_the_values():
    # Rates of 1 and 2, and accuracies that are all whole, stay float64.
    run = gputrain.train(task="xor", layers=[2, 3, 1], lr=[1, 2], replicates=2, epochs=10,
                         batch_size=[2, 4], backend="simd", progress=False)
    types = {name: column.dtype.kind for name, column in run.results.items()}
    assert types == {
        "network": "i", "point": "i", "replicate": "i", "batch_size": "i",
        "learning_rate": "f", "final_loss": "f", "target_epoch": "f", "diverged": "b",
        "epochs_completed": "i", "train_accuracy": "f", "eval_loss": "f", "eval_accuracy": "f",
        "train_loss_per_sample": "f", "eval_loss_per_sample": "f", "best_epoch": "f",
        "stopped_epoch": "f", "oob_loss": "f", "oob_accuracy": "f",
    }
    assert run.learning_rate.tolist() == [1.0, 1.0, 2.0, 2.0] * 2


def test_the_summary_is_the_json_one(tmp_path, cli):
    flags = ["--task", "xor", "--layers", "2,3,1", "--networks", "12", "--epochs", "100",
             "--history", "25", "--backend", "simd", "--json", "-q"]
    printed = json.loads(cli(*flags).stdout)
    run = gputrain.train(task="xor", layers=[2, 3, 1], networks=12, epochs=100, history=25,
                         backend="simd", progress=False)
    timing = {"wall_seconds", "network_epochs_per_second", "adapter"}
    assert set(run.summary) == set(printed)
    for key in set(printed) - timing:
        assert run.summary[key] == printed[key], key
    # The curves: every network's loss at epochs 0, 25, ..., 100.
    assert run.history["epochs"].tolist() == [0, 25, 50, 75, 100]
    assert run.history["loss"].shape == (12, 5)
    last = run.history["loss"][:, -1]
    assert np.array_equal(last, run.final_loss.astype(np.float32))


def test_weights_round_trip_through_safetensors_numpy(tmp_path):
    run = gputrain.train(task="xor", layers=[2, 4, 1], networks=6, epochs=200,
                         optimizer="adam", backend="simd", progress=False)
    (path,) = run.save(tmp_path / "w.safetensors")
    read = load_file(path)
    assert set(read) == set(run.weights)
    for name, array in run.weights.items():
        assert read[name].dtype == array.dtype and np.array_equal(read[name], array), name
    assert read["layers.0.weight"].shape == (6, 4, 2)
    assert "layers.0.weight.exp_avg" in read
    loaded = gputrain.load(path)
    assert loaded.summary is None and loaded.final_loss is None
    assert loaded.networks == 6
    assert np.array_equal(loaded.learning_rate, run.learning_rate)
    assert np.array_equal(loaded.epochs_completed, run.epochs_completed)
    assert loaded.metadata["optimizer"] == "adam"
    x = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    assert np.array_equal(loaded.predict(x, backend="cpu"), run.predict(x, backend="cpu"))
    # Saving the loaded file writes it again unchanged.
    (again,) = loaded.save(tmp_path / "again.safetensors")
    assert open(again, "rb").read() == open(path, "rb").read()
    with pytest.raises(ValueError, match="not a gputrain weights file"):
        from safetensors.numpy import save_file

        save_file({"a": np.zeros(2, np.float32)}, str(tmp_path / "other.safetensors"))
        gputrain.load(tmp_path / "other.safetensors")


def test_the_seed_networks_outputs_after_20000_epochs_to_1e_12_on_the_cpu():
    run = gputrain.train(task="tutorial", init="tutorial", networks=1, epochs=20000,
                         backend="cpu", progress=False)
    outputs = run.predict([[0.05, 0.10]], backend="cpu")
    assert outputs.shape == (1, 1, 2)
    for j, (got, want) in enumerate(zip(outputs[0, 0], SEED_OUTPUTS_20000)):
        assert abs(got - want) <= 1e-12, f"network 0, output {j}: {got!r} vs {want!r}"
    assert run.summary["backend"] == "cpu" and run.summary["strategy"] == "reference-f64"


def test_predict_on_the_gpu_agrees_with_the_cpu_reference():
    run = gputrain.train(task="xor", layers=[2, 3, 1], networks=5, epochs=100,
                         backend="simd", progress=False)
    x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    gpu, cpu = run.predict(x, backend="gpu"), run.predict(x, backend="cpu")
    assert gpu.shape == cpu.shape == (5, 4, 1)
    # float32 forward passes against float64 ones of the same parameters:
    # at most 9.2e-8 measured on lavapipe (this run and seeds 0-4); 10x.
    assert np.max(np.abs(gpu - cpu)) < 1e-6


def test_a_grid_and_a_run_directory(tmp_path, cli):
    run = gputrain.train(task="xor", layers=[[2, 2, 1], [2, 3, 1]], lr=[0.5, 2.0], replicates=3,
                         epochs=50, backend="simd", out=tmp_path / "run", progress=False)
    assert run.networks == 12
    assert run.results["point"].tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert run.results["layers"].tolist()[::3] == ["2-2-1", "2-2-1", "2-3-1", "2-3-1"]
    assert len(run.summary["groups"]) == 4
    with pytest.raises(ValueError, match="this run trained 2 models"):
        run.weights
    saved = run.save(tmp_path / "w.safetensors")
    assert [p.rsplit("/", 1)[1] for p in saved] == ["w-0.safetensors", "w-1.safetensors"]
    for k, path in enumerate(saved):
        written = (tmp_path / "run" / f"weights-{k}.safetensors").read_bytes()
        assert open(path, "rb").read() == written
    cli("--task", "xor", "--layers", "2,2,1", "--layers", "2,3,1", "--lr", "0.5,2.0",
        "--replicates", "3", "--epochs", "50", "--backend", "simd", "--out", tmp_path / "cli", "-q")
    for name in ["results.csv", "groups.csv", "weights-0.safetensors", "weights-1.safetensors"]:
        assert (tmp_path / "run" / name).read_bytes() == (tmp_path / "cli" / name).read_bytes(), name


def test_the_results_kept_in_memory_are_the_csvs_values(tmp_path):
    # A grid with a text axis, held-out data and a target: every column of
    # the table kept in memory equals the CSV the same run wrote, typed
    # as the CSV's reader types it.
    path = tmp_path / "results.csv"
    run = gputrain.train(task="moons", samples=64, holdout=0.25, layers=[2, 4, 1],
                         init=["xavier", "uniform:0.5"], lr=[0.5, 2.0], replicates=3,
                         epochs=60, target_loss=5.0, backend="simd", results=path,
                         progress=False)
    kept = run.results
    from_file = gputrain.Run(None, gputrain._native.read_results(str(path)), [], None).results
    assert list(kept) == list(from_file)
    assert run.results["init"].tolist()[::3] == ["xavier", "xavier", "uniform:0.5", "uniform:0.5"]
    for name, column in from_file.items():
        assert kept[name].dtype == column.dtype, name
        if column.dtype.kind == "f":
            assert np.array_equal(kept[name], column, equal_nan=True), name
        else:
            assert np.array_equal(kept[name], column), name
    # The summed losses per sample: 48 training rows, 16 held out.
    assert np.array_equal(kept["train_loss_per_sample"], kept["final_loss"] / 48, equal_nan=True)
    assert np.array_equal(kept["eval_loss_per_sample"], kept["eval_loss"] / 16, equal_nan=True)
    assert (run.summary["samples"], run.summary["eval_samples"]) == (48, 16)


def test_a_run_writes_no_temporary_files(tmp_path, monkeypatch):
    # The outputs no keyword names stay in memory: nothing appears in the
    # temporary directory (the package used to write its results, weights
    # and curves there and read them back).
    import tempfile

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    run = gputrain.train(task="xor", layers=[2, 3, 1], networks=8, epochs=40, history=10,
                         backend="simd", progress=False)
    assert run.weights["layers.0.weight"].shape == (8, 3, 2)
    assert run.history["loss"].shape == (8, 5)
    assert run.predict(np.array([[0.0, 1.0]])).shape == (8, 1, 1)
    assert list(scratch.iterdir()) == []
    # Views of the bytes save() writes: read-only, copies change freely.
    with pytest.raises(ValueError, match="read-only"):
        run.weights["layers.0.weight"][0, 0, 0] = 1.0
    copy = run.weights["layers.0.weight"].copy()
    copy[0, 0, 0] = 1.0
    saved = run.save(tmp_path / "w.safetensors")
    assert np.array_equal(load_file(saved[0])["layers.0.weight"], run.weights["layers.0.weight"])


def test_a_file_with_networks_a_stop_came_before(tmp_path):
    # A stopped run's file marks a never-started network with
    # epochs_completed -1 and leaves its parameters unwritten (zeros), as
    # the command writes it after a stop before the network's block.
    run = gputrain.train(task="xor", layers=[2, 4, 1], networks=4, epochs=100,
                         backend="simd", progress=False)
    (path,) = run.save(tmp_path / "w.safetensors")
    tensors = load_file(path)
    metadata = gputrain.load(path).metadata
    tensors["epochs_completed"][2:] = -1
    for name in tensors:
        if name.startswith("layers."):
            tensors[name][2:] = 0
    from safetensors.numpy import save_file

    stopped = str(tmp_path / "stopped.safetensors")
    save_file(tensors, stopped, metadata=metadata)
    loaded = gputrain.load(stopped)
    # As the results table counts them: 0 epochs.
    assert loaded.epochs_completed.tolist() == [100, 100, 0, 0]
    x = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    outputs = loaded.predict(x, backend="cpu")
    assert np.all(np.isnan(outputs[2:])), outputs
    assert np.array_equal(outputs[:2], run.predict(x, backend="cpu")[:2])


def test_groups_best_and_ensembles_are_the_command_lines(tmp_path, cli):
    # A one-axis grid with a target: run.groups is the groups CSV the run
    # wrote, column for column; run.best names the lowest-loss network and
    # the best point; predict(ensemble=) is `gputrain predict --ensemble`.
    run = gputrain.train(task="xor", lr=[0.5, 2.0, 8.0], replicates=20, epochs=300,
                         target_loss=0.05, backend="simd", out=tmp_path / "run", progress=False)
    groups = run.groups
    lines = (tmp_path / "run" / "groups.csv").read_text().splitlines()
    header = lines[0].split(",")
    assert list(groups) == header
    rows = [line.split(",") for line in lines[1:]]
    for k, name in enumerate(header):
        cells = [r[k] for r in rows]
        if groups[name].dtype.kind == "U":
            assert groups[name].tolist() == cells, name
        else:
            expected = np.array([float(c) if c else np.nan for c in cells])
            assert np.array_equal(groups[name].astype(np.float64), expected, equal_nan=True), name
    assert groups["learning_rate"].tolist() == ["0.5", "2", "8"]
    assert groups["networks"].tolist() == [20, 20, 20]

    best = run.best
    assert best["index"] == int(np.argmin(run.final_loss))
    assert best["final_loss"] == run.final_loss[best["index"]]
    assert best["point"]["axis"] == "--lr" and best["point"]["value"] in ("0.5", "2", "8")

    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
    (tmp_path / "x.csv").write_text("x0,x1\n0,0\n0,1\n1,0\n1,1\n")
    outputs = run.predict(x, backend="cpu")
    for how in ("mean", "median"):
        combined, spread = run.predict(x, backend="cpu", ensemble=how)
        assert combined.shape == spread.shape == (4, 1)
        printed = cli("predict", "--weights", tmp_path / "run" / "weights.safetensors",
                      "--data", tmp_path / "x.csv", "--ensemble", how, "--backend", "cpu",
                      "-q").stdout
        table = np.array([[float(c) for c in line.split(",")] for line in printed.splitlines()[1:]])
        # Measured: identical (0.0) for these 60 networks on AMD EPYC. NumPy
        # sums in 8-way blocks, the command line in order, so other data may
        # separate them by an ulp or two (2.2e-16 below 1); 1e-14 is ~50 ulps.
        np.testing.assert_allclose(combined[:, 0], table[:, 1], rtol=0, atol=1e-14)
        np.testing.assert_allclose(spread[:, 0], table[:, 2], rtol=0, atol=1e-14)
    mean, std = run.predict(x, backend="cpu", ensemble="mean")
    np.testing.assert_array_equal(mean, outputs.mean(axis=0))
    np.testing.assert_array_equal(std, outputs.std(axis=0))
    with pytest.raises(ValueError, match="ensemble='average'"):
        run.predict(x, ensemble="average")
    assert gputrain.load(tmp_path / "run" / "weights.safetensors").groups is None


def test_predict_runs_a_snapshot_as_the_command_line_does(tmp_path, cli):
    """predict(snapshot=E) runs the parameters the run kept after E epochs:
    those of the same run trained for E epochs, and the same outputs as
    `gputrain predict --snapshot E` of the saved file."""
    small = dict(task="xor", layers=[2, 3, 1], networks=5, backend="simd", progress=False)
    run = gputrain.train(**small, epochs=30, snapshots=[0, 10])
    stopped = gputrain.train(**small, epochs=10)
    x = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
    at_10 = run.predict(x, backend="cpu", snapshot=10)
    assert np.array_equal(at_10, stopped.predict(x, backend="cpu"))
    assert not np.array_equal(at_10, run.predict(x, backend="cpu"))
    assert np.array_equal(run.weights["snapshot.10.layers.0.weight"], stopped.weights["layers.0.weight"])
    (path,) = run.save(tmp_path / "run.safetensors")
    data = tmp_path / "xor.csv"
    data.write_text("x0,x1\n" + "\n".join(f"{a},{b}" for a, b in x) + "\n")
    printed = cli("predict", "--weights", path, "--data", data, "--snapshot", "10", "--backend", "cpu")
    rows = [line.split(",") for line in printed.stdout.strip().splitlines()[1:]]
    from_cli = np.array([float(r[2]) for r in rows]).reshape(at_10.shape)
    assert np.array_equal(from_cli, at_10)
    with pytest.raises(ValueError, match=r"holds no snapshot at epoch 5 \(snapshot=5\)"):
        run.predict(x, snapshot=5)
    with pytest.raises(TypeError, match="snapshot=1.5"):
        run.predict(x, snapshot=1.5)
