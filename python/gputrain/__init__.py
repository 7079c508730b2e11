"""gputrain: train thousands to millions of small, independent neural
networks at once on the GPU (or every CPU core), checked against a float64
CPU reference, from Python.

    >>> import gputrain
    >>> run = gputrain.train(task="xor", layers=[2, 3, 1], networks=1000,
    ...                      epochs=5000, lr=(0.05, 5.0), target_loss=0.01)
    >>> run.final_loss.shape, run.summary["reached_target"]

`train` takes the command line's flags as keywords (`--target-loss` is
`target_loss=`), with the same defaults and the same checks, and trains
through the same code: a Python run and a `gputrain` run of one
configuration give the same numbers, bit for bit, and write the same
files. The native module does the work; this module turns keywords into
flags, draws the progress bar and turns the run's files into NumPy arrays.
"""

from __future__ import annotations

import difflib
import inspect
import json
import operator
import os
import sys
import time
import warnings

import numpy as np

from . import _native
from ._native import TrainingError

__all__ = ["train", "load", "adapters", "Run", "TrainingError", "__version__"]
__version__ = _native.__version__

# As the command does first thing: unless the user configured Mesa's
# device-selection layer, turn it off, or on a headless machine (no
# XDG_RUNTIME_DIR: Slurm, cron, containers) every adapter enumeration
# prints a Wayland error. gputrain picks its adapter itself, so the order
# the layer would impose does not matter (see gpu/device.rs).
if all(name not in os.environ for name in _native.DEVICE_SELECT_SETTINGS):
    os.environ["NODEVICE_SELECT"] = "1"

# (keyword, flag, takes a value, may repeat, default, help, hidden) of every
# `gputrain train` flag, from the command line's own definition.
_FLAGS = {f[0]: f for f in _native.flags()}

# Flags that make no sense from Python, with what to use instead.
_NOT_KEYWORDS = {"json": "Run.summary holds the summary the flag prints"}

# Keywords this module takes itself: data and eval_data (arrays, or a path
# it passes on as --data / --eval-data), progress, and hidden (the hidden
# widths of array data, which it turns into --layers).
_OWN = {"data", "eval_data", "progress", "hidden"}

# Other libraries' names for a keyword (PyTorch's, Keras's,
# scikit-learn's), which an unknown keyword is pointed from.
_ALIASES = {
    "learning_rate": "lr",
    "learning_rate_init": "lr",
    "n_networks": "networks",
    "num_networks": "networks",
    "n_models": "networks",
    "num_epochs": "epochs",
    "n_epochs": "epochs",
    "max_epochs": "epochs",
    "max_iter": "epochs",
    "hidden_layer_sizes": "layers",
    "layer_sizes": "layers",
    "hidden_layers": "layers",
    "random_state": "seed",
    "optim": "optimizer",
    "solver": "optimizer",
    "batch": "batch_size",
    "minibatch_size": "batch_size",
    "validation_data": "eval_data",
    "validation_split": "holdout",
}

# The results CSV's integer columns (the others that hold numbers are
# float64, NaN where a cell is empty; diverged is bool).
_INT_COLUMNS = {"network", "point", "replicate", "epochs_completed", "batch_size"}

# The flags where a pair (a, b) is a spread a..b rather than a list.
_SPREADS = {"lr"}


def _keywords():
    names = [k for k, f in _FLAGS.items() if not f[6] and k not in _NOT_KEYWORDS]
    return sorted(set(names) | _OWN)


def _flag_text(name, value):
    """One keyword's value as the command line's text, or a TypeError."""
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name}={value!r}: expected a value, not True or False")
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (float, np.floating)):
        # repr: the shortest text that reads back as the same float64.
        return repr(float(value))
    if isinstance(value, (list, tuple)):
        if name in _SPREADS and isinstance(value, tuple) and len(value) == 2:
            return "..".join(_flag_text(name, v) for v in value)
        if not value:
            raise TypeError(f"{name}={value!r}: an empty list")
        return ",".join(_flag_text(name, v) for v in value)
    try:
        return str(operator.index(value))
    except TypeError:
        raise TypeError(
            f"{name}={value!r}: expected a number, a string or a list of them, "
            f"not {type(value).__name__}"
        ) from None


def _argv(kwargs):
    """The command-line flags of `train`'s keywords (those not its own)."""
    argv = []
    for name, value in kwargs.items():
        if name in _OWN:
            continue
        if name in _NOT_KEYWORDS:
            raise TypeError(f"train() does not take {name!r}: {_NOT_KEYWORDS[name]}")
        if name not in _FLAGS:
            close = [_ALIASES[name]] if name in _ALIASES else []
            close = close or difflib.get_close_matches(name, _keywords(), n=1)
            maybe = f"; did you mean {close[0]!r}?" if close else ""
            raise TypeError(f"train() got an unexpected keyword argument {name!r}{maybe}")
        _, flag, takes_value, repeats, _, _, _ = _FLAGS[name]
        if value is None:
            continue
        if not takes_value:
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{name}={value!r}: expected True or False")
            if value:
                argv.append(flag)
            continue
        if repeats and isinstance(value, (list, tuple)) and value and all(
            isinstance(v, (list, tuple, np.ndarray)) for v in value
        ):
            texts = [_flag_text(name, v) for v in value]
        else:
            texts = [_flag_text(name, value)]
        for text in texts:
            argv.extend([flag, text])
    refused = _native.parse_error(argv)
    if refused is not None:
        flag, message = refused
        name = next((k for k, f in _FLAGS.items() if f[1] == flag and k in kwargs), None)
        if name is not None:
            raise ValueError(f"{name}={kwargs[name]!r}: {message}")
        raise ValueError(message)
    return argv


# What a 1-D array most likely meant.
_ONE_D_HINTS = {
    "X": "one sample: {0}.reshape(1, -1); one input column: {0}.reshape(-1, 1)",
    "Y": "a column of one output: {0}.reshape(-1, 1)",
}


def _float_matrix(argument, name, value):
    """A 2-D float64 array from an array-like, or a ValueError naming it."""
    try:
        raw = np.asarray(value)
        if raw.dtype.kind == "c":
            # float64 would drop the imaginary part (NumPy's ComplexWarning).
            raise ValueError(
                f"{argument}: {name} is complex ({raw.dtype}); the networks take real "
                f"numbers (np.real({name}) if the imaginary part is zero)"
            )
        array = np.asarray(raw, dtype=np.float64)
    except ValueError as e:
        if str(e).startswith(f"{argument}: "):
            raise
        raise ValueError(f"{argument}: {name} must be a 2-D array of numbers: {e}") from None
    except TypeError as e:
        raise ValueError(f"{argument}: {name} must be a 2-D array of numbers: {e}") from None
    if array.ndim != 2:
        raise ValueError(
            f"{argument}: {name} must be 2-D ([samples, columns]); its shape is {array.shape}"
            + (f" ({_ONE_D_HINTS[name].format(name)})" if array.ndim == 1 else "")
        )
    return array


def _samples(argument, value):
    """`data=` / `eval_data=`: (X, Y) arrays, or a CSV path (None: neither)."""
    if value is None:
        return None, None
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value), None
    if isinstance(value, (tuple, list)) and len(value) == 2:
        x, y = value
        return None, (_float_matrix(argument, "X", x), _float_matrix(argument, "Y", y))
    raise TypeError(
        f"{argument}= takes (X, Y), two 2-D arrays of samples (inputs, targets), "
        f"or the path of a CSV file; got {type(value).__name__}"
    )


def _hidden_layers(hidden, layers, data):
    """`hidden=`: the hidden layers' widths alone, X's width before them
    and Y's after (array data only: a CSV's widths are the layers' to
    say); a list of lists is a grid of topologies. `layers=` stays the
    whole topology, so a mistaken data set is still refused, not
    silently given other input and output layers."""
    if layers is not None:
        raise TypeError("give hidden= or layers=, not both")
    if data is None:
        raise TypeError(
            "hidden= takes the input and output widths from data=(X, Y); without "
            "arrays give the whole topology, layers=[inputs, ..., outputs]"
        )
    inputs, outputs = data[0].shape[1], data[1].shape[1]
    if isinstance(hidden, (int, np.integer)):
        hidden = [hidden]
    if not isinstance(hidden, (list, tuple, np.ndarray)):
        raise TypeError(f"hidden={hidden!r}: expected a list of widths, e.g. hidden=[8]")
    if len(hidden) and all(isinstance(h, (list, tuple, np.ndarray)) for h in hidden):
        return [[inputs, *h, outputs] for h in hidden]
    return [inputs, *hidden, outputs]


_PROGRESS_STYLES = ("auto", "bar", "lines", "none")


class _Progress:
    """Progress over the run's network-epochs, as the command shows it: in
    a notebook or a terminal tqdm's bar (a widget in notebooks with
    ipywidgets, text without); elsewhere (a Slurm log, nohup, CI) the
    command's plain line every GPUTRAIN_PROGRESS_SECONDS (30) seconds, on
    stderr, and a last one at the end if any was printed."""

    def __init__(self, style):
        self.bar = None
        self.done = 0
        self.total = 0
        self.every = None
        self.started = time.monotonic()
        self.last = self.started
        self.logged = False
        if style == "none":
            return
        if style == "auto":
            notebook = "ipykernel" in sys.modules
            terminal = hasattr(sys.stderr, "isatty") and sys.stderr.isatty()
            style = "bar" if notebook or terminal else "lines"
        if style == "lines":
            every = _native.progress_seconds()
            self.every = every if every > 0 else None
            return
        try:
            from tqdm import tqdm
        except ImportError:
            return
        if "ipykernel" in sys.modules:
            try:
                import ipywidgets  # noqa: F401  (the widget needs it)
                from tqdm.notebook import tqdm
            except ImportError:
                pass  # text bar; tqdm.auto would warn (TqdmWarning)
        self.bar = tqdm(
            total=0, unit="net-epoch", unit_scale=True, desc="training", dynamic_ncols=True
        )

    def update(self, done, total):
        if total == 0:
            return
        self.total = total
        if self.every is not None:
            self.done = max(self.done, done)
            now = time.monotonic()
            if now - self.last >= self.every:
                self.last = now
                self._line()
            return
        if self.bar is None:
            return
        if self.bar.total != total:
            self.bar.total = total
            self.bar.refresh()
        if done > self.done:
            self.bar.update(done - self.done)
            self.done = done

    def _line(self):
        self.logged = True
        line = _native.progress_line(self.done, self.total, time.monotonic() - self.started)
        print(line, file=sys.stderr, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
        if self.logged:
            self.logged = False
            self._line()


def _say(lines, quiet):
    if not quiet:
        for line in lines:
            print(line, file=sys.stderr)


def train(**kwargs) -> Run:
    # The docstring is built below from the command line's flags.
    progress = kwargs.get("progress", True)
    if isinstance(progress, (bool, np.bool_)):
        progress = "auto" if progress else "none"
    if progress not in _PROGRESS_STYLES:
        raise TypeError(
            f"progress={progress!r}: expected True, False or one of "
            + ", ".join(repr(p) for p in _PROGRESS_STYLES)
        )
    data_path, data = _samples("data", kwargs.get("data"))
    if kwargs.get("hidden") is not None:
        layers = _hidden_layers(kwargs["hidden"], kwargs.get("layers"), data)
        kwargs = {**kwargs, "layers": layers}
    argv = _argv(kwargs)
    eval_path, eval_data = _samples("eval_data", kwargs.get("eval_data"))
    if data_path is not None:
        argv += ["--data", data_path]
    if eval_path is not None:
        argv += ["--eval-data", eval_path]
    quiet = bool(kwargs.get("quiet", False))
    job = _native.start(argv, data, eval_data)
    bar = _Progress("none" if quiet else progress)
    try:
        while not job.wait(0.1):
            bar.update(*job.progress())
            _say(job.messages(), quiet)
        bar.update(*job.progress())
    except BaseException:
        # Ctrl-C (KeyboardInterrupt) or anything else: ask the run to stop
        # after its current chunk, give it a moment to, and let the
        # exception through within about a second; a thread still
        # finishing its chunk ends on its own, and what it kept in memory
        # goes with it.
        job.cancel()
        job.wait(0.5)
        raise
    finally:
        bar.close()
    _say(job.messages(), quiet)
    result = job.result()
    run = Run._trained(result)
    _say([f"note: {n}" for n in run.summary.get("notes", [])], quiet)
    verify = run.summary.get("verify")
    if verify is not None and not verify["passed"]:
        warnings.warn(
            f"verify: network {verify['worst_network']}'s predictions differ from the float64 "
            f"reference by {verify['max_prediction_diff']:.3e}, beyond the tolerance "
            f"{verify['tolerance']:g}",
            RuntimeWarning,
            stacklevel=2,
        )
    return run


def _train_doc():
    lines = [
        "Trains a population of networks and returns the Run.",
        "",
        "Every keyword is a `gputrain train` flag (`target_loss=` is `--target-loss`),",
        "with its default and its checks; a bad value raises ValueError with the",
        "command line's message, an unknown keyword TypeError. Numbers are ints or",
        "floats, lists are the command line's comma lists (a grid axis: lr=[0.1, 0.5]),",
        "`lr=(a, b)` spreads rates log-evenly over the networks, `layers=[2, 3, 1]`,",
        "and a list of layer lists is a grid of topologies.",
        "",
        "data: (X, Y), two 2-D float arrays [samples, inputs] and [samples, outputs]",
        "    (float32 or float64, any memory order), or the path of a CSV file;",
        "    NaN, a wrong shape or a target outside the output activation's range",
        "    raises ValueError naming the argument, row and column.",
        "eval_data: held-out (X, Y) or a CSV path, scored after training.",
        "hidden: with data=(X, Y), the hidden layers' widths alone (hidden=[8] on",
        "    2 inputs and 1 output is layers=[2, 8, 1]); a list of lists is a grid.",
        "progress: True (default) or 'auto' draws a progress bar in a terminal or",
        "    notebook and a plain line every 30 s elsewhere (a job log;",
        "    GPUTRAIN_PROGRESS_SECONDS sets the period); 'bar', 'lines', or",
        "    False / 'none'.",
        "",
    ]
    for name in sorted(_FLAGS):
        _, flag, takes_value, _, default, help_text, hidden = _FLAGS[name]
        if hidden or name in _NOT_KEYWORDS or name in _OWN:
            continue
        shown = f" (default {default})" if default is not None else ""
        lines.append(f"{name}{shown}: {' '.join(help_text.split())}")
    return "\n".join(lines)


train.__doc__ = _train_doc()


def _default_value(text):
    """A flag's default as Python shows it: a number where it is one."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _train_signature():
    """`train`'s signature, keyword by keyword from the command line's
    flags with their defaults (None: the flag's own rule, which the
    docstring gives), so that `train?` in Jupyter, `help` and IDEs show
    every keyword; it stays in step with the flags as the docstring
    does."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    own = {"data": None, "eval_data": None, "progress": True, "hidden": None}
    params = [inspect.Parameter(name, keyword, default=value) for name, value in own.items()]
    for name in sorted(_FLAGS):
        _, _, takes_value, _, default, _, hidden = _FLAGS[name]
        if hidden or name in _NOT_KEYWORDS or name in _OWN:
            continue
        if not takes_value:
            value = False
        else:
            value = None if default is None else _default_value(default)
        params.append(inspect.Parameter(name, keyword, default=value))
    return inspect.Signature(params, return_annotation="Run")


train.__signature__ = _train_signature()


def _main() -> None:
    """The `gputrain` command the wheel installs: the same command line as
    the Rust binary (`cargo install --path .`), run by the same code."""
    sys.exit(_native.main(["gputrain", *sys.argv[1:]]))


def adapters() -> list[dict]:
    """Every GPU adapter wgpu finds, as `gputrain adapters --json` lists
    them: index, name, backend, device_type, driver and the limits that
    matter (buffer sizes in bytes)."""
    return json.loads(_native.adapters())


# safetensors' dtypes as NumPy's (little-endian, as the format stores them).
_DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}


def _tensors_of(buffer, origin):
    """A safetensors file's tensors as read-only NumPy views of its bytes
    (`buffer`, a uint8 array), checked whole by the native module (errors
    name `origin`), and its metadata."""
    buffer.flags.writeable = False
    layout, metadata = _native.tensor_layout(buffer, origin)
    tensors = {}
    for name, dtype, shape, offset in layout:
        dtype = np.dtype(_DTYPES[dtype])
        count = int(np.prod(shape, dtype=np.int64))
        view = np.frombuffer(buffer, dtype=dtype, count=count, offset=offset)
        tensors[name] = view.reshape(shape)
    return tensors, metadata


def load(path) -> Run:
    """The networks of a weights file (`--weights`, `Run.save`) as a Run:
    `weights`, `learning_rate`, `target_epoch`, `epochs_completed`,
    `metadata` and `predict`; the training's own results (`final_loss`,
    `summary`, ...) are not in the file and are None. The file is read
    once, into memory: changing it later changes nothing here."""
    path = os.fspath(path)
    buffer = _native.read_file(path)
    # Checked now, so a file that is not a weights file fails here.
    tensors, metadata = _tensors_of(buffer, path)
    if metadata.get("format", "").split("-")[0:2] != ["gputrain", "weights"]:
        raise ValueError(f"weights file {path}: not a gputrain weights file (no format metadata)")
    run = Run(summary=None, results=None, weights=[buffer], history=None, origin=path)
    run._weights = tensors
    run._metadata = metadata
    return run


class Run:
    """A trained population (from `train`) or one read from a weights file
    (from `load`).

    Per-network arrays have one entry per network, in network id order:
    final_loss, target_epoch, diverged, learning_rate, epochs_completed.

    The run's outputs live in memory, unless a keyword named a file for
    one (`weights=`, `history_out=`, `results=`, `out=`): the results
    table, and each model's weights and the learning curves as the bytes
    their files would hold, of which `weights` and `history` are read-only
    views (`.copy()` one to change it). `save` writes those bytes.
    """

    def __init__(self, summary, results, weights, history, passed=True, origin="the run's weights"):
        self.summary = summary
        # (name, column) pairs from the native module, typed on first use.
        self._columns = results
        self._results = None
        # Per model: the file a keyword named, or its bytes (uint8).
        self._weights_sources = weights
        # The curves' file, or their bytes; None without history.
        self._history_source = history
        self._origin = origin
        self._weights = None
        self._metadata = None
        self._history = None
        self.passed = passed

    @classmethod
    def _trained(cls, result):
        weights = result["weight_files"] or result["weight_buffers"]
        history = result["history_file"]
        if history is None:
            history = result["history_buffer"]
        return cls(
            summary=json.loads(result["summary"]),
            results=result["results"],
            weights=weights,
            history=history,
            passed=result["passed"],
        )

    def __repr__(self):
        if self.summary is None:
            return f"<gputrain.Run of {self.networks} networks from a weights file>"
        s = self.summary
        return (
            f"<gputrain.Run of {s['networks']} networks: {s['topology']}, {s['data']}, "
            f"{s['epochs']} epochs on {s['backend']}>"
        )

    @property
    def networks(self) -> int:
        """The number of networks."""
        if self.summary is not None:
            return int(self.summary["networks"])
        return int(self.learning_rate.shape[0])

    @property
    def results(self) -> dict | None:
        """The results CSV's columns (the command line's --results) as
        NumPy arrays by column name: network, learning_rate, final_loss,
        target_epoch, diverged, epochs_completed, train_accuracy, eval_loss,
        eval_accuracy, train_loss_per_sample, eval_loss_per_sample (the
        training and held-out losses as means over their own rows, which
        compare whatever the reduction), best_epoch and stopped_epoch (with
        early_stopping: the epoch whose weights the network has, and the
        epoch it stopped at, NaN where it did not), oob_loss and
        oob_accuracy (with bootstrap or subsample: on the training rows the
        network never drew), and point, replicate and a column
        per axis in a grid. Empty cells are NaN. `pandas.DataFrame(run.results)` makes
        the table. None for a Run from `load`."""
        if self._results is None and self._columns is not None:
            columns = {}
            for name, column in self._columns:
                column = np.asarray(column)
                if name == "diverged":
                    column = column.astype(bool)
                elif name not in _INT_COLUMNS and column.dtype.kind in "iu":
                    # A float column whose every value happens to be whole
                    # (lr=1, accuracies all 1) stays a float column.
                    column = column.astype(np.float64)
                columns[name] = column
            self._results = columns
            self._columns = None
        return self._results

    def _column(self, name):
        return None if self.results is None else self.results[name]

    @property
    def final_loss(self) -> np.ndarray | None:
        """float64 [networks]: each network's loss after training (NaN or inf
        where it diverged; NaN with epochs_completed 0 where a stop came
        before it started), in the loss and reduction of the run."""
        return self._column("final_loss")

    @property
    def target_epoch(self) -> np.ndarray:
        """float64 [networks]: the first epoch whose loss was at or below
        target_loss, NaN where never reached (all NaN without target_loss)."""
        if self.results is not None:
            return self.results["target_epoch"]
        epochs = self.weights["target_epoch"].astype(np.float64)
        epochs[epochs < 0] = np.nan
        return epochs

    @property
    def diverged(self) -> np.ndarray | None:
        """bool [networks]: a loss or parameter became NaN or infinite."""
        return self._column("diverged")

    @property
    def learning_rate(self) -> np.ndarray:
        """float64 [networks]: each network's learning rate."""
        if self.results is not None:
            return self.results["learning_rate"]
        w = self.weights
        return np.asarray(w.get("learning_rate.float64", w["learning_rate"]), dtype=np.float64)

    @property
    def epochs_completed(self) -> np.ndarray:
        """int64 [networks]: epochs each network trained (fewer than asked
        only for an interrupted run; 0 where a stop came before it started)."""
        if self.results is not None:
            return self.results["epochs_completed"]
        # The file marks a network never started with -1.
        return np.maximum(self.weights["epochs_completed"], 0)

    @property
    def weights(self) -> dict:
        """The weights file's tensors by name, as in the safetensors file
        (`layers.{l}.weight` [networks, n_{l+1}, n_l] float32,
        `layers.{l}.bias`, optimizer state `layers.{l}.weight.{state}`,
        `learning_rate`, `epochs_completed`, `target_epoch`; from the
        float64 CPU reference also `{name}.float64`). A network a stop came
        before it started has `epochs_completed` -1, and its parameters and
        state were never written (zeros)."""
        if self._weights is None:
            self._weights, self._metadata = _tensors_of(*self._source(self._only_model()))
        return self._weights

    def _only_model(self):
        """The one model's weights source, or the several-models error."""
        if len(self._weights_sources) != 1:
            raise ValueError(
                f"this run trained {len(self._weights_sources)} models (a grid over the "
                f"model's flags): their weights are in separate files; "
                f"Run.save(path) writes them as NAME-k.safetensors, and "
                f"gputrain.load reads each"
            )
        return self._weights_sources[0]

    def _source(self, source):
        """(bytes, name for errors) of a file or of bytes kept."""
        if isinstance(source, str):
            return _native.read_file(source), source
        return source, self._origin

    @property
    def metadata(self) -> dict:
        """The weights file's metadata: topology, activations, loss,
        optimizer, epochs, seed, backend (`trained_on`), format."""
        self.weights
        return self._metadata

    @property
    def groups(self) -> dict | None:
        """The grouped statistics per grid point (the command line's
        --groups CSV) as NumPy arrays by column name, in grid order: point,
        a column per grid axis (strings, as the CSV writes them),
        first_network, networks, reached, reached_share, reached_low,
        reached_high (the Wilson 95% interval), target_epoch_q1/median/q3,
        loss_min/p10/median/p90/max, diverged, solved, solved_share,
        solved_low, solved_high, median_train_accuracy, median_eval_loss,
        median_eval_accuracy, with early stopping stopped_early and
        median_best_epoch, and with bootstrap or subsample median_oob_loss
        and median_oob_accuracy. NaN where a figure does not apply (no target,
        no classes, no network reached it, no early stopping). `pandas.DataFrame(run.groups)`
        makes the table. A run without a grid has one point. None for a Run
        from `load`."""
        if self.summary is None:
            return None
        groups = self.summary["groups"]
        nan = float("nan")

        def numbers(pick):
            return np.array([nan if v is None else v for v in map(pick, groups)], dtype=np.float64)

        def counts(pick):
            return np.array([pick(g) for g in groups], dtype=np.int64)

        def part(name, field):
            # A field of a figure that may be absent (null in the JSON).
            return lambda g: g[name][field] if g[name] is not None else None

        table = {"point": counts(lambda g: g["point"])}
        for k, axis in enumerate(self.summary["grid"]):
            table[axis["column"]] = np.array([g["values"][k] for g in groups])
        table["first_network"] = counts(lambda g: g["first_network"])
        table["networks"] = counts(lambda g: g["networks"])
        table["reached"] = numbers(part("reached_target", "count"))
        for field in ("share", "low", "high"):
            table[f"reached_{field}"] = numbers(part("reached_target", field))
        for field in ("q1", "median", "q3"):
            table[f"target_epoch_{field}"] = numbers(part("target_epoch", field))
        for field in ("min", "p10", "median", "p90", "max"):
            table[f"loss_{field}"] = numbers(part("final_loss", field))
        table["diverged"] = counts(lambda g: g["diverged"])
        table["solved"] = numbers(part("solved", "count"))
        for field in ("share", "low", "high"):
            table[f"solved_{field}"] = numbers(part("solved", field))
        for name in (
            "median_train_accuracy",
            "median_eval_loss",
            "median_eval_accuracy",
            "stopped_early",
            "median_best_epoch",
            "median_oob_loss",
            "median_oob_accuracy",
        ):
            table[name] = numbers(lambda g, name=name: g.get(name))
        return table

    @property
    def best(self) -> dict | None:
        """The network with the lowest final loss, as the summary names it:
        index (its network id), learning_rate, final_loss, train_accuracy,
        eval_loss, eval_accuracy (None where they do not apply), and its
        predictions on the training samples; and for a one-axis grid, the
        best point (`point`: axis, value, by what and the runner-up, as
        the summary's best_point). None for a Run from `load`, or when
        every network diverged."""
        if self.summary is None or self.summary.get("best") is None:
            return None
        best = dict(self.summary["best"])
        if self.summary.get("best_point") is not None:
            best["point"] = dict(self.summary["best_point"])
        return best

    @property
    def history(self) -> dict | None:
        """With history=K: `epochs` int64 [points] and every network's
        `loss` (and with held-out data `eval_loss`) float32 [networks,
        points]; the population's quantiles are in summary["history"]."""
        if self._history is None and self._history_source is not None:
            buffer, origin = self._source(self._history_source)
            self._history = _tensors_of(buffer, origin)[0]
        return self._history

    @property
    def counts(self) -> np.ndarray | None:
        """uint8 [networks, training rows]: how many times each network drew
        each training row (bootstrap= or subsample=, recomputed from the
        weights file's resample, its data seed and each network's
        replicate); 0 marks its out-of-bag rows. None without a resample."""
        meta = self.metadata
        if meta.get("resample", "none") == "none":
            return None
        rows, replicates = int(meta["training_rows"]), int(meta["replicates"])
        ids = [n % replicates for n in range(self.networks)]
        counts = _native.resample_counts(
            meta["resample"], int(meta["resample_seed"]), rows, ids
        )
        return counts.reshape(self.networks, rows)

    def predict(
        self,
        X,
        backend: str = "auto",
        adapter: str = "auto",
        ensemble=None,
        snapshot=None,
        oob: bool = False,
    ):
        """Every network's outputs on the samples X (a 2-D float array
        [samples, inputs]), as float64 [networks, samples, outputs]; NaN for
        a network a stop came before it started.

        backend: "auto" (the GPU where an adapter is found, else the CPU),
        "gpu" (float32 forward passes), or "cpu" (the float64 reference,
        from the file's float64 parameters where the run kept them).

        ensemble: "mean" or "median" combines the networks per sample and
        output, as `gputrain predict --ensemble` does, and returns
        (combined, spread), each float64 [samples, outputs]: the mean with
        the population standard deviation, or the median with the
        interquartile range (NumPy's linear quantiles). A network that
        diverged makes its samples NaN, as on the command line; a run with
        networks a stop came before is refused, naming them.

        snapshot: an epoch of the run's snapshots (`snapshots=`): the
        networks' parameters after that many epochs instead of the final
        ones, as `gputrain predict --snapshot` runs them.

        oob: with ensemble, on X the run's training rows (bootstrap= or
        subsample=), combine each row over the networks that never drew it
        (`counts`), as `gputrain predict --oob`: scikit-learn's
        oob_decision_function_; NaN for a row every network drew."""
        if ensemble not in (None, "mean", "median"):
            raise ValueError(f"ensemble={ensemble!r}: expected None, 'mean' or 'median'")
        if oob and ensemble is None:
            raise ValueError("oob=True combines each row's out-of-bag networks: give ensemble=")
        if snapshot is not None and (
            isinstance(snapshot, bool) or not isinstance(snapshot, (int, np.integer)) or snapshot < 0
        ):
            raise TypeError(f"snapshot={snapshot!r}: expected an epoch, an integer >= 0")
        source = self._only_model()
        x = _float_matrix("predict", "X", X)
        for name, value in (("backend", backend), ("adapter", adapter)):
            if not isinstance(value, str):
                raise TypeError(f"{name}={value!r}: expected a string")
        outputs, _adapter, notes = _native.predict(
            source, x, backend, adapter, self._origin, None if snapshot is None else int(snapshot)
        )
        for note in notes:
            warnings.warn(note, RuntimeWarning, stacklevel=2)
        if ensemble is None:
            return outputs
        never = np.flatnonzero(self.weights["epochs_completed"] < 0)
        if never.size:
            shown = ", ".join(str(i) for i in never[:10]) + (", ..." if never.size > 10 else "")
            raise ValueError(
                f"ensemble={ensemble!r}: {never.size} networks were never started (a stop came "
                f"before them: {shown}); resume the run to train them"
            )
        if oob:
            counts = self.counts
            if counts is None:
                raise ValueError("oob=True: the run trained every network on every row")
            if counts.shape[1] != x.shape[0]:
                raise ValueError(
                    f"oob=True: X has {x.shape[0]} rows, but the networks trained on "
                    f"{counts.shape[1]} (the training rows, in their order)"
                )
            outputs = np.where((counts > 0)[:, :, None], np.nan, outputs)
            with warnings.catch_warnings():
                # A row every network drew is NaN, as on the command line.
                warnings.simplefilter("ignore", RuntimeWarning)
                if ensemble == "mean":
                    return np.nanmean(outputs, axis=0), np.nanstd(outputs, axis=0)
                q1, median, q3 = np.nanpercentile(outputs, [25, 50, 75], axis=0)
                return median, q3 - q1
        if ensemble == "mean":
            return outputs.mean(axis=0), outputs.std(axis=0)
        q1, median, q3 = np.percentile(outputs, [25, 50, 75], axis=0)
        return median, q3 - q1

    def save(self, path) -> list[str]:
        """Writes the weights file the command line's --weights PATH writes
        for this run (byte for byte), whole or not at all; a grid of several
        models writes one file per model, NAME-k.EXT. Returns the paths."""
        path = os.fspath(path)
        targets = _native.weights_files(path, len(self._weights_sources))
        for source, target in zip(self._weights_sources, targets):
            if isinstance(source, str):
                _native.copy_file(source, target)
            else:
                _native.write_file(source, target)
        return targets
