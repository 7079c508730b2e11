"""Every keyword of gputrain.train does what its flag does: one small run
per keyword, checked for the keyword's effect (not just that it ran)."""

import numpy as np
import pytest

import gputrain

BASE = dict(task="xor", layers=[2, 3, 1], networks=4, epochs=20, backend="simd", progress=False)
XOR = (np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float), np.array([[0], [1], [1], [0]], float))
MOONS = dict(task="moons", layers=[2, 3, 1])


def run(**kwargs):
    return gputrain.train(**{**BASE, **kwargs})


def loss_of(**kwargs):
    return run(**kwargs).final_loss


def saved_weights(tmp_path, **kwargs):
    (path,) = run(**kwargs).save(tmp_path / "start.safetensors")
    return path


def check_files(tmp_path, names, **kwargs):
    run(**{k: tmp_path / v if isinstance(v, str) and "." in v else v for k, v in kwargs.items()})
    return all((tmp_path / n).exists() and (tmp_path / n).stat().st_size > 0 for n in names)


# keyword -> a check that trains with it and returns True when it had its
# effect; tmp_path and monkeypatch are pytest's.
CASES = {
    "layers": lambda t, m: run(layers=[2, 4, 1]).summary["topology"] == "2-4-1",
    "hidden": lambda t, m: run(task=None, data=XOR, layers=None, hidden=[4]).summary["topology"]
    == "2-4-1",
    "bias": lambda t, m: run(bias="none").metadata["bias"] == "none",
    "freeze_bias": lambda t, m: run(freeze_bias=True).summary["freeze_bias"] is True,
    "activation": lambda t, m: run(activation="tanh").summary["activation"] == "tanh",
    "output_activation": lambda t, m: run(output_activation="linear", loss="sse")
    .summary["output_activation"] == "linear",
    "loss": lambda t, m: run(loss="sse").summary["loss"] == "sse",
    "reduction": lambda t, m: run(reduction="mean").summary["reduction"] == "mean",
    "task": lambda t, m: run(task="parity:3", layers=[3, 3, 1]).summary["data"].startswith("parity:3"),
    "data": lambda t, m: run(task=None, data=XOR).summary["data"] == "data (arrays)",
    "targets": lambda t, m: run(
        task=None,
        data=(XOR[0], np.array([[0], [1], [2], [0]], float)),
        targets="class",
        layers=[2, 3, 3],
        output_activation="softmax",
        loss="categorical-cross-entropy",
    ).summary["output_activation"]
    == "softmax",
    "samples": lambda t, m: run(**MOONS, samples=50, holdout=0.5).summary["eval_data"].endswith(
        ", 25 samples"
    ),
    "noise": lambda t, m: not np.array_equal(loss_of(**MOONS, noise=0.2), loss_of(**MOONS)),
    "data_seed": lambda t, m: not np.array_equal(
        loss_of(**MOONS, noise=0.2, data_seed=3), loss_of(**MOONS, noise=0.2)
    ),
    "eval_data": lambda t, m: np.isfinite(run(eval_data=XOR).results["eval_loss"]).all(),
    "holdout": lambda t, m: run(**MOONS, holdout=0.25).summary["eval_data"] is not None,
    "networks": lambda t, m: run(networks=6).final_loss.shape == (6,),
    "replicates": lambda t, m: run(networks=None, replicates=2, lr=[0.1, 0.5]).networks == 4,
    "epochs": lambda t, m: run(epochs=7).epochs_completed.tolist() == [7] * 4,
    "lr": lambda t, m: run(lr=0.25).learning_rate.tolist() == [0.25] * 4
    and np.all(np.diff(run(lr=(0.1, 1.0)).learning_rate) > 0),
    "init": lambda t, m: np.abs(run(init="uniform:0.01", epochs=0).weights["layers.0.weight"]).max()
    <= 0.01,
    "init_snapshot": lambda t, m: np.array_equal(
        run(init_weights=saved_weights(t, snapshots=[0]), init_snapshot=0, epochs=0).weights[
            "layers.0.weight"
        ],
        gputrain.load(t / "start.safetensors").weights["snapshot.0.layers.0.weight"],
    )
    and not np.array_equal(
        gputrain.load(t / "start.safetensors").weights["snapshot.0.layers.0.weight"],
        gputrain.load(t / "start.safetensors").weights["layers.0.weight"],
    ),
    "init_weights": lambda t, m: np.array_equal(
        run(init_weights=saved_weights(t, init="uniform:0.5"), epochs=0).weights["layers.0.weight"],
        gputrain.load(t / "start.safetensors").weights["layers.0.weight"],
    ),
    "resume": lambda t, m: run(resume=saved_weights(t), epochs=30).epochs_completed.tolist()
    == [30] * 4,
    "seed": lambda t, m: not np.array_equal(loss_of(seed=5), loss_of()),
    "target_loss": lambda t, m: run(target_loss=0.2).summary["target_loss"] == 0.2,
    "stop_at_target": lambda t, m: np.all(
        run(lr=5.0, epochs=3000, target_loss=0.2, stop_at_target=True).final_loss <= 0.2
    ),
    "early_stopping": lambda t, m: (
        lambda r: r.metadata["early_stopping"] == "3"
        and r.summary["stopped_early"] > 0
        and np.array_equal(
            (r.results["best_epoch"] + 3)[r.results["stopped_epoch"] >= 0],
            r.results["stopped_epoch"][r.results["stopped_epoch"] >= 0],
        )
    )(run(**MOONS, holdout=0.3, optimizer="adam", lr=0.3, epochs=300, early_stopping=3)),
    "eval_every": lambda t, m: (
        lambda r: r.metadata["eval_every"] == "10" and np.all(r.results["best_epoch"] % 10 == 0)
    )(run(**MOONS, holdout=0.3, epochs=60, early_stopping=20, eval_every=10)),
    "batch_size": lambda t, m: run(batch_size=2).metadata["batch_size"] == "2",
    "bootstrap": lambda t, m: (
        lambda r: r.metadata["resample"] == "bootstrap" and np.all(np.isfinite(r.results["oob_loss"]))
    )(run(**MOONS, samples=40, bootstrap=True)),
    "subsample": lambda t, m: (
        lambda r: r.metadata["resample"] == "subsample 0.5"
        and np.all(np.isfinite(r.results["oob_accuracy"]))
        # The groups' nearest-rank median of 4 (the third), kept in float32.
        and r.groups["median_oob_accuracy"][0]
        == np.float32(np.sort(r.results["oob_accuracy"])[2])
    )(run(**MOONS, subsample=0.5)),
    "no_shuffle": lambda t, m: run(batch_size=2, no_shuffle=True).metadata["shuffle"] == "false",
    "optimizer": lambda t, m: run(optimizer="adam").metadata["optimizer"] == "adam",
    "momentum": lambda t, m: run(optimizer="momentum", momentum=0.5).metadata["momentum"] == "0.5",
    "beta1": lambda t, m: run(optimizer="adam", beta1=0.8).metadata["beta1"] == "0.8",
    "beta2": lambda t, m: run(optimizer="adam", beta2=0.99).metadata["beta2"] == "0.99",
    "eps": lambda t, m: run(optimizer="adam", eps=1e-6).metadata["eps"] == "0.000001",
    "alpha": lambda t, m: run(optimizer="rmsprop", alpha=0.9, lr=0.01).metadata["alpha"] == "0.9",
    "centered": lambda t, m: run(optimizer="rmsprop", centered=True, lr=0.01).metadata["centered"]
    == "true",
    "weight_decay": lambda t, m: run(weight_decay=0.01).metadata["weight_decay"] == "0.01",
    "lr_schedule": lambda t, m: run(lr_schedule="cosine").metadata["lr_schedule"] == "cosine"
    and not np.array_equal(loss_of(lr_schedule="cosine"), loss_of()),
    "lr_gamma": lambda t, m: run(lr_schedule="exponential", lr_gamma=0.9).metadata["lr_gamma"]
    == "0.9"
    and not np.array_equal(
        loss_of(lr_schedule="exponential", lr_gamma=0.9),
        loss_of(lr_schedule="exponential", lr_gamma=0.5),
    ),
    "lr_step_size": lambda t, m: run(lr_schedule="step", lr_step_size=5).metadata["lr_step_size"]
    == "5",
    "lr_t_max": lambda t, m: run(lr_schedule="cosine", lr_t_max=10).metadata["lr_t_max"] == "10",
    "lr_min": lambda t, m: run(lr_schedule="cosine", lr_min=0.01).metadata["lr_min"] == "0.01",
    "snapshots": lambda t, m: run(snapshots=[0, 10]).metadata["snapshots"] == "0,10",
    "snapshots_out": lambda t, m: check_files(
        t, ["s.safetensors"], snapshots=[0, 10], snapshots_out="s.safetensors"
    )
    and "snapshot.10.layers.0.weight" in gputrain.load(t / "s.safetensors").weights,
    "lr_warmup": lambda t, m: run(lr_warmup=5).metadata["lr_warmup"] == "5"
    and not np.array_equal(loss_of(lr_warmup=5), loss_of()),
    "lr_warmup_start": lambda t, m: run(lr_warmup=5, lr_warmup_start=0.5).metadata[
        "lr_warmup_start"
    ]
    == "0.5",
    "results": lambda t, m: check_files(t, ["r.csv"], results="r.csv"),
    "weights": lambda t, m: check_files(t, ["w.safetensors"], weights="w.safetensors"),
    "verify": lambda t, m: run(verify=2).summary["verify"]["passed"] is True,
    "verify_tolerance": lambda t, m: run(verify=1, verify_tolerance=0.01)
    .summary["verify"]["tolerance"] == 0.01,
    "quiet": lambda t, m: run(quiet=True).networks == 4,
    "history": lambda t, m: run(history=5).history["epochs"].tolist() == [0, 5, 10, 15, 20],
    "history_out": lambda t, m: check_files(t, ["h.safetensors"], history=5, history_out="h.safetensors"),
    "history_csv": lambda t, m: check_files(t, ["h.csv"], history=5, history_csv="h.csv"),
    "plot": lambda t, m: check_files(t, ["p.svg"], history=5, plot="p.svg"),
    "groups": lambda t, m: check_files(t, ["g.csv"], groups="g.csv"),
    "out": lambda t, m: check_files(t, ["d/results.csv", "d/summary.json"], out=t / "d"),
    "overwrite": lambda t, m: (
        run(out=t / "o"),
        run(out=t / "o", overwrite=True, seed=3).networks == 4,
    )[1],
    "backend": lambda t, m: run(backend="cpu").summary["strategy"] == "reference-f64",
    "threads": lambda t, m: "1 thread" in run(threads=1).summary["adapter"],
    "adapter": lambda t, m: run(backend="gpu", adapter=0).summary["backend"] == "gpu",
    "kernel": lambda t, m: run(backend="gpu", kernel="layered").summary["strategy"] == "layered",
    "epochs_per_submission": lambda t, m: run(backend="gpu", epochs_per_submission=3).networks
    == 4,
    "shard": lambda t, m: run(shard="1/2", out=t / "s").results["network"].tolist() == [2, 3],
    "shard_count": lambda t, m: (
        m.setenv("JOB_COMPLETION_INDEX", "0"),
        run(shard="auto", shard_count=2, out=t / "k").results["network"].tolist() == [0, 1],
    )[1],
    "progress": lambda t, m: run(progress=False).networks == 4,
}


def test_every_keyword_has_a_case():
    assert set(CASES) == set(gputrain._keywords()) | {"epochs_per_submission"}


@pytest.mark.parametrize("keyword", sorted(CASES))
def test_the_keyword_has_its_flags_effect(keyword, tmp_path, monkeypatch):
    assert CASES[keyword](tmp_path, monkeypatch), f"{keyword} had no effect"


def test_resume_alone_takes_the_networks_model_and_plan_from_the_file(tmp_path):
    """`resume=` with the data alone continues the run the file records
    (its networks, layers, activation, optimizer and hyperparameter,
    minibatches, seed), as the command line's --resume does: the same
    weights as one run."""
    flags = dict(
        task="xor",
        layers=[2, 3, 1],
        networks=6,
        activation="tanh",
        optimizer="adam",
        beta1=0.8,
        batch_size=3,
        seed=4,
        backend="cpu",
        progress=False,
    )
    (path,) = gputrain.train(**flags, epochs=10).save(tmp_path / "first.safetensors")
    resumed = gputrain.train(task="xor", resume=path, epochs=25, backend="cpu", progress=False)
    whole = gputrain.train(**flags, epochs=25)
    assert sorted(resumed.weights) == sorted(whole.weights)
    for name, values in whole.weights.items():
        assert np.array_equal(resumed.weights[name], values), name


def test_a_run_directory_records_the_keywords_flags(tmp_path):
    """run.json and summary.json record the keywords as the command line's
    flags, the seed and the version; arrays as `(arrays)`, which
    `gputrain rerun` refuses, naming why."""
    gputrain.train(data=XOR, layers=[2, 3, 1], networks=4, epochs=20, seed=6, progress=False, out=tmp_path / "d")
    import json

    for name in ["run.json", "summary.json"]:
        record = json.loads((tmp_path / "d" / name).read_text())
        command = record["command"]
        assert command[command.index("--seed") + 1] == "6", command
        assert command[-2:] == ["--data", "(arrays)"], command
        assert record["seed"] == 6 and record["version"].startswith(gputrain.__version__)


def test_hidden_gives_the_hidden_widths_of_array_data_alone():
    """hidden=[3] on XOR's arrays is layers=[2, 3, 1] (the widths of X and
    Y around it), a list of lists a grid of topologies; it needs arrays and
    does not go with layers=."""
    small = dict(task=None, data=XOR, networks=2, epochs=5, backend="cpu", progress=False)
    assert gputrain.train(**small, hidden=[3]).summary["topology"] == "2-3-1"
    assert gputrain.train(**small, hidden=[5, 4]).summary["topology"] == "2-5-4-1"
    assert gputrain.train(**small, hidden=6).summary["topology"] == "2-6-1"
    grid = gputrain.train(**{**small, "networks": 4}, hidden=[[3], [4]])
    assert sorted(set(grid.results["layers"])) == ["2-3-1", "2-4-1"]
    with pytest.raises(TypeError, match="hidden= or layers=, not both"):
        gputrain.train(**small, hidden=[3], layers=[2, 3, 1])
    with pytest.raises(TypeError, match=r"hidden= takes the input and output widths from data="):
        gputrain.train(task="xor", hidden=[3], networks=2, epochs=5, progress=False)
