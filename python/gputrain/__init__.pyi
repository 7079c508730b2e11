"""Types of the gputrain package (the implementation is __init__.py over the
native module). Every keyword of `train` is a `gputrain train` flag, with
the command line's default; None where the command line's default depends
on other flags (it is given in the comment). tests/test_api.py checks this
file against the command line's own list of flags and defaults."""

import os
from typing import Literal, Sequence, Union, overload

import numpy as np
import numpy.typing as npt

__version__: str

_Path = Union[str, os.PathLike[str]]
_Number = Union[int, float]
# One value, a list (a grid axis), or the command line's text ("0.05..5:8").
_Grid = Union[_Number, Sequence[_Number], str]
_Samples = Union[tuple[npt.ArrayLike, npt.ArrayLike], _Path]

class TrainingError(RuntimeError):
    """No adapter, a device lost or stuck, a kernel that failed to build."""

def train(
    *,
    # Model
    layers: Union[Sequence[int], Sequence[Sequence[int]], str, None] = None,  # the task's
    hidden: Union[int, Sequence[int], Sequence[Sequence[int]], None] = None,  # with data=(X, Y): layers=[inputs, *hidden, outputs]
    bias: Union[Literal["per-neuron", "shared", "none"], None] = None,  # shared for tutorial, else per-neuron
    freeze_bias: bool = False,
    activation: Union[str, Sequence[str]] = "sigmoid",
    output_activation: str = "sigmoid",
    loss: Literal["half-sse", "sse", "cross-entropy", "categorical-cross-entropy"] = "half-sse",
    reduction: Literal["sum", "mean"] = "sum",
    # Data
    task: Union[str, None] = None,  # tutorial, unless data= is given
    data: Union[_Samples, None] = None,
    samples: Union[int, None] = None,  # 100
    noise: Union[float, None] = None,  # 0
    data_seed: Union[int, None] = None,  # 0
    targets: Literal["values", "class"] = "values",
    eval_data: Union[_Samples, None] = None,
    holdout: Union[float, None] = None,
    # Training
    networks: Union[int, None] = None,  # 10000, or grid points x replicates
    replicates: Union[int, None] = None,
    epochs: Union[int, None] = None,  # 20000; with resume, the file's total
    lr: Union[_Grid, tuple[float, float], None] = None,  # 0.5, or init_weights' rates
    init: Union[str, Sequence[str]] = "xavier",
    init_weights: Union[_Path, None] = None,
    init_snapshot: Union[int, None] = None,  # with init_weights: a snapshot's epoch
    resume: Union[_Path, None] = None,
    seed: int = 0,
    target_loss: Union[float, None] = None,
    stop_at_target: bool = False,
    early_stopping: Union[int, Sequence[int], None] = None,  # patience, with held-out data
    eval_every: Union[int, Sequence[int], None] = None,  # 1
    bootstrap: bool = False,  # each network on its own resample, with replacement
    subsample: Union[float, Sequence[float], None] = None,  # fraction in (0, 1), without
    batch_size: Union[int, Sequence[int], str, None] = None,  # every sample in one batch
    no_shuffle: bool = False,
    # Optimizer
    optimizer: Union[str, Sequence[str]] = "sgd",
    momentum: Union[_Grid, None] = None,  # 0.9; rmsprop 0
    beta1: Union[_Grid, None] = None,  # 0.9
    beta2: Union[_Grid, None] = None,  # 0.999
    eps: Union[_Grid, None] = None,  # 1e-8
    alpha: Union[_Grid, None] = None,  # 0.99
    centered: bool = False,
    weight_decay: Union[_Grid, None] = None,  # 0; adamw 0.01
    # Learning-rate schedule (PyTorch's schedulers, stepped once per epoch)
    lr_schedule: Union[
        Literal["constant", "step", "exponential", "cosine"], Sequence[str]
    ] = "constant",
    lr_gamma: Union[_Grid, None] = None,  # step 0.1; exponential: required
    lr_step_size: Union[int, Sequence[int], None] = None,
    lr_t_max: Union[int, Sequence[int], None] = None,  # the epochs after the warm-up
    lr_min: Union[_Grid, None] = None,  # 0
    lr_warmup: Union[int, Sequence[int], None] = None,  # 0
    lr_warmup_start: Union[_Grid, None] = None,  # 1/3
    # Output: files as the command line writes them
    results: Union[_Path, None] = None,
    weights: Union[_Path, None] = None,
    verify: Union[int, None] = None,
    verify_tolerance: float = 0.001,
    quiet: bool = False,
    history: Union[int, None] = None,
    history_out: Union[_Path, None] = None,
    history_csv: Union[_Path, None] = None,
    snapshots: Union[Sequence[int], None] = None,  # epochs kept in the weights
    snapshots_out: Union[_Path, None] = None,  # the snapshots in a file of their own
    plot: Union[_Path, None] = None,
    groups: Union[_Path, None] = None,
    out: Union[_Path, None] = None,
    overwrite: bool = False,
    # Device
    backend: Literal["auto", "gpu", "simd", "cpu"] = "auto",
    threads: Union[int, None] = None,  # one per core
    adapter: Union[str, int] = "auto",
    kernel: Literal["auto", "fused", "layered"] = "auto",
    epochs_per_submission: Union[int, None] = None,  # adaptive
    # Scale-out
    shard: Union[str, None] = None,
    shard_count: Union[int, None] = None,
    # This package's own
    progress: bool | Literal["auto", "bar", "lines", "none"] = True,
) -> Run:
    """Trains a population of networks (see `help(gputrain.train)` for
    every keyword's meaning, from the command line's help)."""

def load(path: _Path) -> Run:
    """The networks of a weights file as a Run (weights, learning_rate,
    target_epoch, epochs_completed, metadata, predict)."""

def adapters() -> list[dict[str, object]]:
    """Every GPU adapter wgpu finds, as `gputrain adapters --json`."""

class Run:
    summary: dict[str, object] | None
    """The summary `--json` prints (None for a Run from `load`)."""
    passed: bool
    """verify= passed, or was not asked for."""
    @property
    def networks(self) -> int: ...
    @property
    def results(self) -> dict[str, np.ndarray] | None:
        """The results CSV's columns by name (empty cells NaN)."""
    @property
    def final_loss(self) -> npt.NDArray[np.float64] | None:
        """[networks]: the loss after training (NaN or inf if diverged; NaN
        if a stop came before it started)."""
    @property
    def target_epoch(self) -> npt.NDArray[np.float64]:
        """[networks]: first epoch at or below target_loss; NaN if never."""
    @property
    def diverged(self) -> npt.NDArray[np.bool_] | None:
        """[networks]: a loss or parameter became NaN or infinite."""
    @property
    def learning_rate(self) -> npt.NDArray[np.float64]:
        """[networks]: each network's learning rate."""
    @property
    def epochs_completed(self) -> npt.NDArray[np.int64]:
        """[networks]: epochs trained (fewer only if interrupted)."""
    @property
    def weights(self) -> dict[str, np.ndarray]:
        """The safetensors file's tensors by name: layers.{l}.weight
        float32 [networks, n_{l+1}, n_l], layers.{l}.bias, optimizer
        state, learning_rate, epochs_completed, target_epoch."""
    @property
    def metadata(self) -> dict[str, str]:
        """The weights file's metadata (topology, loss, optimizer, ...)."""
    @property
    def groups(self) -> dict[str, np.ndarray] | None:
        """The --groups CSV's columns by name, one entry per grid point
        (reached share with its Wilson 95% interval, target epochs, loss
        quantiles, ...); NaN where a figure does not apply."""
    @property
    def best(self) -> dict[str, object] | None:
        """The lowest-loss network (index, learning_rate, final_loss, ...)
        and, for a one-axis grid, the best point under "point"."""
    @property
    def history(self) -> dict[str, np.ndarray] | None:
        """With history=K: epochs int64 [points], loss (and eval_loss)
        float32 [networks, points]."""
    @property
    def counts(self) -> npt.NDArray[np.uint8] | None: ...
    @overload
    def predict(
        self,
        X: npt.ArrayLike,
        backend: Literal["auto", "gpu", "simd", "cpu"] = "auto",
        adapter: str = "auto",
        ensemble: None = None,
        snapshot: int | None = None,
    ) -> npt.NDArray[np.float64]:
        """Outputs [networks, samples, outputs] on X [samples, inputs]."""
    @overload
    def predict(
        self,
        X: npt.ArrayLike,
        backend: Literal["auto", "gpu", "simd", "cpu"] = "auto",
        adapter: str = "auto",
        *,
        ensemble: Literal["mean", "median"],
        snapshot: int | None = None,
        oob: bool = False,
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """(combined, spread) [samples, outputs]: mean and standard
        deviation, or median and interquartile range, over the networks."""
    def save(self, path: _Path) -> list[str]:
        """Writes the weights file --weights PATH writes, byte for byte."""
