"""The keywords, the typed stub and the errors of gputrain's Python API."""

import ast
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest

import gputrain
from gputrain import _native

STUB = Path(__file__).resolve().parents[1] / "gputrain" / "__init__.pyi"

XOR_X = [[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]]
XOR_Y = [[0.0], [1.0], [1.0], [0.0]]
SMALL = dict(task="xor", layers=[2, 3, 1], networks=8, epochs=50, backend="simd", progress=False)

NO_TASK = {k: v for k, v in SMALL.items() if k != "task"}


def stub_train():
    tree = ast.parse(STUB.read_text())
    (train,) = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "train"]
    args = train.args
    return {a.arg: ast.literal_eval(d) for a, d in zip(args.kwonlyargs, args.kw_defaults)}


def test_the_stub_lists_every_keyword_with_the_command_lines_defaults():
    stub = stub_train()
    flags = {f[0]: f for f in _native.flags()}
    keywords = set(gputrain._keywords()) | {"epochs_per_submission"}
    assert set(stub) == keywords, (
        f"in the stub only: {sorted(set(stub) - keywords)}; "
        f"flags missing from it: {sorted(keywords - set(stub))}"
    )
    for name, default in stub.items():
        if name in gputrain._OWN:
            continue
        _, flag, takes_value, _, cli_default, _, _ = flags[name]
        if not takes_value:
            assert default is False, f"{name}: a switch defaults to False"
        elif cli_default is None:
            assert default is None, f"{name}: {flag} has no fixed default, the stub says {default!r}"
        else:
            text = gputrain._flag_text(name, default)
            assert text == cli_default, f"{name}: stub {text!r}, {flag} {cli_default!r}"


def test_the_docstring_documents_every_keyword():
    doc = gputrain.train.__doc__
    for name in gputrain._keywords():
        assert f"\n{name}" in doc, f"{name} is not in help(gputrain.train)"


def test_the_signature_lists_every_keyword_with_its_default():
    """What `train?` in Jupyter and IDEs show: every keyword, keyword-only,
    with the command line's default."""
    import inspect

    params = inspect.signature(gputrain.train).parameters
    assert sorted(params) == gputrain._keywords()
    assert all(p.kind is inspect.Parameter.KEYWORD_ONLY for p in params.values())
    assert params["activation"].default == "sigmoid"
    assert params["seed"].default == 0
    assert isinstance(params["verify_tolerance"].default, float)
    assert params["freeze_bias"].default is False
    assert params["networks"].default is None
    assert params["progress"].default is True


def test_other_libraries_names_point_to_the_keyword():
    with pytest.raises(TypeError, match=r"'learning_rate'; did you mean 'lr'"):
        gputrain.train(learning_rate=0.1, **SMALL)
    with pytest.raises(TypeError, match=r"'hidden_layer_sizes'; did you mean 'layers'"):
        gputrain.train(hidden_layer_sizes=[3], **SMALL)
    with pytest.raises(TypeError, match=r"'random_state'; did you mean 'seed'"):
        gputrain.train(random_state=1, **SMALL)


def test_unknown_keywords_raise_type_error_with_a_suggestion():
    with pytest.raises(TypeError, match=r"unexpected keyword argument 'epoch'; did you mean 'epochs'"):
        gputrain.train(epoch=5, **SMALL)
    with pytest.raises(TypeError, match=r"argument 'target_los'; did you mean 'target_loss'"):
        gputrain.train(target_los=0.1, **SMALL)
    with pytest.raises(TypeError, match="unexpected keyword argument 'xyz'$"):
        gputrain.train(xyz="red", **SMALL)
    with pytest.raises(TypeError, match="does not take 'json': Run.summary"):
        gputrain.train(json=True, **SMALL)


def test_values_of_the_wrong_type_raise_type_error():
    with pytest.raises(TypeError, match=r"freeze_bias=1: expected True or False"):
        gputrain.train(freeze_bias=1, **SMALL)
    with pytest.raises(TypeError, match=r"seed=True: expected a value, not True or False"):
        gputrain.train(seed=True, **SMALL)
    with pytest.raises(TypeError, match=r"seed=\{\}: expected a number"):
        gputrain.train(seed={}, **SMALL)
    with pytest.raises(TypeError, match=r"progress='yes': expected True, False or one of 'auto', 'bar', 'lines', 'none'"):
        gputrain.train(**{**SMALL, "progress": "yes"})
    with pytest.raises(TypeError, match=r"data= takes \(X, Y\)"):
        gputrain.train(data=np.zeros((4, 3)), **SMALL)


# The command line's message, and the Python one where the core names
# settings: each face spells them in its own words (`--momentum`,
# `momentum`; `--layers 3-3-1`, `layers=[3, 3, 1]`).
@pytest.mark.parametrize(
    "kwargs, cli_args, names_keyword, in_python",
    [
        (dict(networks=0), ["--networks", "0"], True, None),
        (dict(lr=-1.0), ["--lr", "-1.0"], True, None),
        (dict(activation="swish"), ["--activation", "swish"], True, None),
        (dict(lr=(5.0, 0.05)), ["--lr", "5.0..0.05"], True, None),
        (
            dict(momentum=0.5),
            ["--momentum", "0.5"],
            False,
            "momentum applies to optimizer momentum, nesterov or rmsprop only, but the "
            "optimizer is sgd",
        ),
        (dict(stop_at_target=True), ["--stop-at-target"], False, None),
        (
            dict(task="xor", layers=[3, 3, 1]),
            ["--task", "xor", "--layers", "3,3,1"],
            False,
            "layers=[3, 3, 1] takes 3 inputs and gives 1 outputs, but the data (xor) has 2 "
            "inputs and 1 targets",
        ),
        (
            dict(networks=10, lr=[0.1, 0.5, 1.0]),
            ["--networks", "10", "--lr", "0.1,0.5,1.0"],
            False,
            "networks=10 does not divide evenly over the grid's 3 points (lr 3); give "
            "replicates R (networks per point) or networks a multiple of 3",
        ),
        (
            dict(optimizer="nesterov", momentum=0.0),
            ["--optimizer", "nesterov", "--momentum", "0.0"],
            False,
            "optimizer='nesterov' needs momentum > 0 (as PyTorch's SGD)",
        ),
    ],
)
def test_bad_values_raise_value_error_with_the_command_lines_message(
    kwargs, cli_args, names_keyword, in_python, cli
):
    done = cli(*cli_args, "--epochs", "1", "-q", check=False)
    assert done.returncode == 2, done.stderr
    message = done.stderr.strip().splitlines()[0].removeprefix("error: ")
    with pytest.raises(ValueError) as raised:
        gputrain.train(epochs=1, progress=False, **kwargs)
    expected = in_python or message
    assert expected in str(raised.value), f"CLI: {message!r}\nPython: {raised.value}"
    if in_python:
        # The core's message names keywords, never the command line's flags.
        assert "--" not in str(raised.value), str(raised.value)
        assert "--" in message, message
    if names_keyword:
        # A refused value names its keyword, as the user wrote it.
        (name, value), = kwargs.items()
        assert str(raised.value).startswith(f"{name}={value!r}: "), str(raised.value)


def test_missing_files_are_os_errors_naming_the_file(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(ValueError, match="nope.safetensors"):
        gputrain.train(init_weights=missing, **SMALL)
    with pytest.raises(OSError, match="nope.safetensors"):
        gputrain.load(missing)
    with pytest.raises(ValueError, match="no.csv"):
        gputrain.train(data=tmp_path / "no.csv", **NO_TASK)


def test_data_arrays_are_checked_naming_argument_row_and_column():
    x, y = np.array(XOR_X), np.array(XOR_Y)
    cases = [
        ((x, y.ravel()), r"data: Y must be 2-D .* shape is \(4,\) \(a column of one output"),
        ((x[:, :1], y), r"data: X has 1 columns, but the networks take 2 inputs"),
        ((x, np.hstack([y, y])), r"data: Y has 2 columns, but the networks have 1 outputs"),
        ((x, y[:3]), r"data: X has 4 rows but Y has 3"),
        ((x[:0], y[:0]), r"data: X has no rows"),
        ((np.where(np.arange(8).reshape(4, 2) == 5, np.nan, x), y), r"data: X row 2, column 1 is NaN"),
        ((x, np.array([[0.0], [1.0], [1.5], [0.0]])), r"data: Y row 2, column 0 is 1.5, outside \[0, 1\]"),
        ((x, [["a"], ["b"], ["c"], ["d"]]), r"data: Y must be a 2-D array of numbers"),
        ((x + 1j, y), r"data: X is complex \(complex128\); the networks take real numbers"),
        ((x, [[0j], [1], [1], [0]]), r"data: Y is complex \(complex128\)"),
    ]
    for data, pattern in cases:
        with pytest.raises(ValueError, match=pattern):
            gputrain.train(data=data, **NO_TASK)
    with pytest.raises(ValueError, match=r"eval_data: Y row 1, column 0 is -1, outside"):
        gputrain.train(data=(x, y), eval_data=(x, -y), **NO_TASK)
    with pytest.raises(ValueError, match="data: give samples as arrays or task, not both"):
        gputrain.train(data=(x, y), **SMALL)
    with pytest.raises(ValueError, match=r"data needs layers \(e.g. \[2, 3, 1\]"):
        gputrain.train(data=(x, y), networks=2, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"X has 3 columns, but the networks take 2 inputs"):
        gputrain.train(**SMALL).predict(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"X row 0, column 1 is inf"):
        gputrain.train(**SMALL).predict([[0.0, np.inf]])
    with pytest.raises(ValueError, match=r"predict: X is complex \(complex64\)"):
        gputrain.train(**SMALL).predict(np.zeros((2, 2), np.complex64))


def test_a_damaged_weights_file_is_named_as_the_user_gave_it(tmp_path):
    (path,) = gputrain.train(**SMALL).save(tmp_path / "w.safetensors")
    data = open(path, "rb").read()
    damaged = tmp_path / "damaged.safetensors"
    damaged.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as raised:
        gputrain.load(damaged)
    message = str(raised.value)
    assert str(damaged) in message, message
    assert tempfile.gettempdir() + os.sep + "gputrain-" not in message, message


def test_any_float_array_layout_gives_the_same_run():
    x, y = np.array(XOR_X), np.array(XOR_Y)
    base = gputrain.train(data=(x, y), **NO_TASK)
    for data in [
        (np.asfortranarray(x), np.asfortranarray(y)),
        (x.astype(np.float32), y.astype(np.float32)),
        (XOR_X, XOR_Y),
        (np.hstack([x, x])[:, :2], y),  # a strided view
    ]:
        run = gputrain.train(data=data, **NO_TASK)
        assert np.array_equal(run.final_loss, base.final_loss)


def test_adapters_are_the_command_lines(cli):
    import json

    listed = json.loads(cli("adapters", "--json").stdout)
    assert gputrain.adapters() == listed
    assert listed, "no adapter: install mesa-vulkan-drivers (lavapipe) for the GPU tests"
    assert {"index", "name", "backend", "device_type", "driver"} <= set(listed[0])


def test_a_gpu_without_a_vulkan_driver_is_named_in_pythons_words(monkeypatch, tmp_path):
    # A fake NVIDIA device node and a Vulkan loader that finds no driver:
    # a GPU container without the driver's Vulkan part (docs/usage.md).
    (tmp_path / "nvidia0").write_bytes(b"")
    monkeypatch.setenv("GPUTRAIN_DEV_DIR", str(tmp_path))
    monkeypatch.setenv("VK_DRIVER_FILES", str(tmp_path / "no-such-driver.json"))
    with pytest.raises(RuntimeError) as raised:
        gputrain.train(networks=4, epochs=5, backend="gpu", progress=False)
    message = str(raised.value)
    assert f"an NVIDIA GPU is visible ({tmp_path}/nvidia0)" in message
    assert "VK_DRIVER_FILES=" in message
    assert message.endswith("Or train on the CPU: backend='simd'")
    # auto trains on the SIMD trainer.
    run = gputrain.train(networks=4, epochs=5, progress=False)
    assert run.summary["strategy"] == "simd-f32"
