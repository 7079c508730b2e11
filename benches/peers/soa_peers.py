#!/usr/bin/env python3
"""Struct-of-arrays peers of gputrain: the same full-batch training of many
independent sigmoid networks, written the way a performance-minded user
writes it in NumPy, Numba, JAX or PyTorch.

Every parameter of the network is its own array of length `networks` (the
struct-of-arrays layout gputrain's fused kernel uses), and one epoch is a
straight-line program of elementwise operations over those arrays with the
data baked in as constants. That program is generated once from the
topology (`epoch_program`) and handed to each framework:

    numpy          eager NumPy, one temporary array per operation
    numba          @njit(parallel=True): prange over networks, the epoch loop
                   inside, every parameter a scalar local (CPU threads)
    jax            jax.jit of lax.fori_loop over epochs (XLA fuses the epoch),
                   with the four habits of a careful JAX user on the CPU,
                   each switchable: --unroll K epochs per loop iteration,
                   --host-devices D (the networks sharded over D XLA host
                   devices, one per core), --vector-width 512 (XLA's
                   preferred vector width, where the CPU has AVX-512) and
                   --block B (at most B networks per device per call)
    torch          PyTorch eager, elementwise tensors under no_grad
    torch-compile  torch.compile of one epoch (Inductor fuses it into one
                   kernel: C++/OpenMP on the CPU, Triton on CUDA)

It starts from a gputrain weights file (`gputrain --epochs 0 --weights
FILE`), so it trains exactly the networks gputrain trains. The program
grows with samples x parameters (one statement per product), so it suits
the small networks on few samples it is meant for: `gputrain bench
--peers` runs it up to 4,096 (at 64 x 552 Numba was still compiling after
three minutes). Warm-up
(compilation, JIT tracing, autotuning) runs on a copy before the timed run
and is not counted. Supported: sigmoid everywhere, half-sse or sse, sum or
mean, bias per-neuron, shared or none, full-batch SGD (the seeds' case).

Prints one JSON object on stdout; --results writes each network's final
loss (float64, from the trained float32/float64 parameters) as CSV.
Exit 3 if the framework asked for is not installed (the JSON says so).
"""

import importlib
import json
import os
import re
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_peer import (  # noqa: E402
    load_problem, loss_scale, peer_arguments, read_safetensors, report, require_peer_kind,
    set_xla_cpu_flags)

PEERS = ("numpy", "numba", "jax", "torch", "torch-compile")
MODULES = {"numpy": "numpy", "numba": "numba", "jax": "jax", "torch": "torch",
           "torch-compile": "torch"}


class Layout:
    """Where each weight and bias lives in the flat parameter list."""

    def __init__(self, widths, bias):
        self.widths, self.bias = widths, bias
        self.weight, self.biases, n = {}, {}, 0
        for l in range(len(widths) - 1):
            for j in range(widths[l + 1]):
                for k in range(widths[l]):
                    self.weight[l, j, k] = n
                    n += 1
            count = {"per-neuron": widths[l + 1], "shared": 1, "none": 0}[bias]
            for j in range(count):
                self.biases[l, j] = n
                n += 1
        self.len = n

    def bias_of(self, l, j):
        if self.bias == "none":
            return None
        return self.biases[l, 0 if self.bias == "shared" else j]

    def flatten(self, tensors, dtype):
        """One contiguous array of length networks per parameter."""
        flat = [None] * self.len
        for (l, j, k), i in self.weight.items():
            flat[i] = np.ascontiguousarray(tensors[f"layers.{l}.weight"][:, j, k], dtype)
        for (l, j), i in self.biases.items():
            flat[i] = np.ascontiguousarray(tensors[f"layers.{l}.bias"][:, j], dtype)
        return flat

    def unflatten(self, flat):
        """Per-layer weight (N, n_{l+1}, n_l) and bias arrays, float64."""
        layers = len(self.widths) - 1
        n = len(flat[0])
        weights = [np.zeros((n, self.widths[l + 1], self.widths[l])) for l in range(layers)]
        biases = [None] * layers
        for (l, j, k), i in self.weight.items():
            weights[l][:, j, k] = flat[i]
        for (l, j), i in self.biases.items():
            if biases[l] is None:
                biases[l] = np.zeros((n, 1 if self.bias == "shared" else self.widths[l + 1]))
            biases[l][:, j] = flat[i]
        return weights, biases


def epoch_program(layout, xs, ys, grad_scale, const=repr, sig=lambda e: f"sig({e})"):
    """One full-batch SGD epoch as straight-line code.

    Returns (lines, updates): `lines` assign temporaries from `p[i]` (the
    parameters) and `lr`; `updates[i]` is the expression of parameter i
    after the step. `const` writes a number literal, `sig` a sigmoid."""
    widths, lines, grads = layout.widths, [], [[] for _ in range(layout.len)]
    fresh = iter(range(1 << 30))

    def let(expr):
        name = f"t{next(fresh)}"
        lines.append(f"{name} = {expr}")
        return name

    for x, y in zip(xs, ys):
        acts = [[const(float(v)) for v in x]]
        for l in range(len(widths) - 1):
            layer = []
            for j in range(widths[l + 1]):
                terms = [f"p[{layout.weight[l, j, k]}] * {a}" for k, a in enumerate(acts[l])]
                b = layout.bias_of(l, j)
                if b is not None:
                    terms.append(f"p[{b}]")
                layer.append(let(sig(" + ".join(terms))))
            acts.append(layer)
        one = const(1.0)
        deltas = [let(f"{const(grad_scale)} * ({o} - {const(float(t))}) * {o} * ({one} - {o})")
                  for o, t in zip(acts[-1], y)]
        for l in reversed(range(len(widths) - 1)):
            for j, d in enumerate(deltas):
                for k, a in enumerate(acts[l]):
                    grads[layout.weight[l, j, k]].append(f"{d} * {a}")
                b = layout.bias_of(l, j)
                if b is not None and layout.bias == "per-neuron":
                    grads[b].append(d)
            if layout.bias == "shared":
                grads[layout.biases[l, 0]].extend(deltas)
            if l > 0:
                deltas = [let(f"({' + '.join(f'p[{layout.weight[l, j, k]}] * {d}' for j, d in enumerate(deltas))})"
                              f" * {a} * ({one} - {a})")
                          for k, a in enumerate(acts[l])]
    updates = [f"p[{i}] - lr * ({' + '.join(g) if g else const(0.0)})" for i, g in enumerate(grads)]
    return lines, updates


def array_epoch(layout, xs, ys, grad_scale, sig):
    """The epoch as a function of (list of arrays, lr) for array libraries."""
    lines, updates = epoch_program(layout, xs, ys, grad_scale)
    body = "\n".join(f"    {line}" for line in lines)
    source = f"def epoch(p, lr):\n{body}\n    return [{', '.join(updates)}]\n"
    scope = {"sig": sig}
    exec(compile(source, "<epoch>", "exec"), scope)
    return scope["epoch"]


def numba_trainer(layout, xs, ys, grad_scale, dtype):
    """A parallel Numba function train(P, lr, epochs) over P (params, N)."""
    numba = importlib.import_module("numba")
    kind = "float32" if dtype == np.float32 else "float64"
    one = f"np.{kind}(1.0)"
    lines, updates = epoch_program(
        layout, xs, ys, grad_scale, const=lambda v: f"np.{kind}({v!r})",
        sig=lambda e: f"{one} / ({one} + math.exp(-({e})))")

    def local(code):  # scalars per network: p[i] becomes the local p_i
        return re.sub(r"p\[(\d+)\]", r"p_\1", code)

    ind = " " * 12
    source = ["def train(P, lr_all, epochs):",
              "    for n in prange(P.shape[1]):",
              *[f"        p_{i} = P[{i}, n]" for i in range(layout.len)],
              "        lr = lr_all[n]",
              "        for _ in range(epochs):",
              *[ind + local(line) for line in lines],
              *[f"{ind}q_{i} = {local(u)}" for i, u in enumerate(updates)],
              *[f"{ind}p_{i} = q_{i}" for i in range(layout.len)],
              *[f"        P[{i}, n] = p_{i}" for i in range(layout.len)]]
    scope = {"np": np, "prange": numba.prange, "math": importlib.import_module("math")}
    exec(compile("\n".join(source), "<numba-train>", "exec"), scope)
    return numba.njit(parallel=True, fastmath=False, cache=False)(scope["train"])


def run_jax(habits, device, flat, rates, layout, xs, ys, grad_scale, epochs, dtype):
    """The JAX peer: `habits` (unroll, host_devices, block) as main() set
    them up (the vector width and the device count are XLA flags, set
    before JAX is imported)."""
    jax = importlib.import_module("jax")
    # float64 arrays stay float64 only with x64 on (before any array).
    jax.config.update("jax_enable_x64", dtype == np.float64)
    jnp, lax = jax.numpy, jax.lax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec
    devices = jax.devices(device if device != "cuda" else "gpu")
    count = min(habits.host_devices, len(devices)) if device == "cpu" else 1
    devices = devices[:count]
    sharding = NamedSharding(Mesh(np.array(devices), ("n",)), PartitionSpec("n"))
    epoch = array_epoch(layout, xs, ys, grad_scale, jax.nn.sigmoid)
    unroll = habits.unroll

    def steps(q, lr, n):
        def body(_, q):
            for _ in range(unroll):
                q = epoch(q, lr)
            return q

        q = lax.fori_loop(0, n // unroll, body, q)
        return lax.fori_loop(0, n % unroll, lambda _, q: epoch(q, lr), q)

    train = jax.jit(steps)
    networks = len(rates)
    # Blocks of at most `block` networks a device, every block padded to
    # the same size (a multiple of the devices; the padding repeats the
    # first network) so one compilation serves them all.
    per_call = networks if habits.block <= 0 else min(networks, habits.block * count)
    per_call = -(-per_call // count) * count
    starts = range(0, networks, per_call)

    def block(values, start):
        chunk = values[start:start + per_call]
        pad = per_call - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad)])
        return jax.device_put(jnp.asarray(chunk), sharding)

    lr_all = rates.astype(dtype)
    blocks = [([block(a, s) for a in flat], block(lr_all, s)) for s in starts]
    jax.block_until_ready(train(*blocks[0], 1))  # trace and compile
    started = time.perf_counter()
    done = [jax.block_until_ready(train(p, lr, epochs)) for p, lr in blocks]
    seconds = time.perf_counter() - started
    trained = [np.concatenate([np.asarray(d[i]) for d in done])[:networks]
               for i in range(len(flat))]
    config = {"unroll": unroll, "host_devices": count, "block": habits.block,
              "vector_width": habits.vector_width}
    return trained, seconds, {"jax": jax.__version__, "device": str(devices[0]),
                              "configuration": config}, str(devices[0])


def run_peer(peer, device, flat, rates, layout, xs, ys, grad_scale, epochs, dtype,
             habits=None):
    """Trains `flat` for `epochs`; returns (trained float arrays, seconds,
    versions, where). Warm-up on copies is not timed."""
    if peer == "numpy":
        sig = lambda z: 1.0 / (1.0 + np.exp(-z))  # noqa: E731
        epoch = array_epoch(layout, xs, ys, grad_scale, sig)
        lr = rates.astype(dtype)
        p = [a.copy() for a in flat]
        epoch(p, lr)  # warm-up: NumPy's first call pages memory in
        started = time.perf_counter()
        with np.errstate(over="ignore", invalid="ignore"):
            for _ in range(epochs):
                p = epoch(p, lr)
        return p, time.perf_counter() - started, {"numpy": np.__version__}, "cpu"
    if peer == "numba":
        numba = importlib.import_module("numba")
        train = numba_trainer(layout, xs, ys, grad_scale, dtype)
        P = np.stack(flat).astype(dtype)
        lr = rates.astype(dtype)
        train(P.copy(), lr, 1)  # compile
        started = time.perf_counter()
        train(P, lr, epochs)
        threads = numba.get_num_threads()
        return list(P), time.perf_counter() - started, \
            {"numba": numba.__version__, "threads": threads}, "cpu"
    if peer == "jax":
        return run_jax(habits, device, flat, rates, layout, xs, ys, grad_scale, epochs, dtype)
    torch = importlib.import_module("torch")
    dev = torch.device(device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    epoch = array_epoch(layout, xs, ys, grad_scale, torch.sigmoid)
    # torch-compile: `per_call` epochs in one compiled function (Inductor
    # fuses them into one kernel; fewer calls from Python), the remainder
    # one compiled epoch at a time.
    per_call = habits.torch_epochs if peer == "torch-compile" and habits else 1
    if peer == "torch-compile":
        one = epoch

        def several(q, lr):
            for _ in range(per_call):
                q = one(q, lr)
            return q

        epoch, several = torch.compile(one), torch.compile(several)
    p = [torch.from_numpy(a.copy()).to(dev) for a in flat]
    lr = torch.from_numpy(rates.astype(dtype)).to(dev)
    with torch.no_grad():
        warm = [a.clone() for a in p]
        for _ in range(3):  # compile, then settle the caches
            warm = epoch(warm, lr)
            if per_call > 1:
                warm = several(warm, lr)
        sync()
        started = time.perf_counter()
        for _ in range(epochs // per_call if per_call > 1 else 0):
            p = several(p, lr)
        for _ in range(epochs % per_call if per_call > 1 else epochs):
            p = epoch(p, lr)
        sync()
        seconds = time.perf_counter() - started
    versions = {"torch": torch.__version__, "threads": torch.get_num_threads()}
    if peer == "torch-compile":
        versions["configuration"] = {"epochs_per_call": per_call}
    where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    return [a.cpu().numpy() for a in p], seconds, versions, where


def main():
    p = peer_arguments(__doc__.split("\n\n")[0])
    p.add_argument("--peer", required=True, choices=PEERS)
    p.add_argument("--device", default="cpu", help="cpu or cuda (jax and torch)")
    p.add_argument("--unroll", type=int, default=1,
                   help="jax: epochs per loop iteration (default 1)")
    p.add_argument("--host-devices", type=int, default=1,
                   help="jax on the CPU: XLA host devices the networks are sharded "
                        "over, 0 for one per core (default 1)")
    p.add_argument("--vector-width", type=int, default=0,
                   help="jax on the CPU: XLA's preferred vector width in bits, e.g. 512 "
                        "(default: XLA's choice)")
    p.add_argument("--block", type=int, default=0,
                   help="jax: at most this many networks a device per call (default: all)")
    p.add_argument("--torch-epochs", type=int, default=1,
                   help="torch-compile: epochs per compiled call (default 1)")
    args = p.parse_args()
    if args.unroll < 1 or args.host_devices < 0 or args.torch_epochs < 1:
        sys.exit("error: --unroll and --torch-epochs must be at least 1, "
                 "--host-devices at least 0")
    if args.host_devices == 0:
        args.host_devices = len(os.sched_getaffinity(0))
    if args.peer == "jax" and args.device == "cpu":
        set_xla_cpu_flags(args.host_devices, args.vector_width)

    try:
        importlib.import_module(MODULES[args.peer])
    except ImportError:
        print(json.dumps({"peer": args.peer, "installed": False}))
        sys.exit(3)

    tensors, meta = read_safetensors(args.weights)
    require_peer_kind(meta)
    layout = Layout([int(w) for w in meta["topology"].split("-")], meta["bias"])
    xs, ys, source = load_problem(args, meta)
    scale, factor = loss_scale(meta, len(xs))
    dtype = np.dtype(args.dtype).type
    rates = tensors["learning_rate"]
    trained, seconds, versions, where = run_peer(
        args.peer, args.device, layout.flatten(tensors, dtype), rates, layout, xs, ys,
        2 * scale * factor, args.epochs, dtype, habits=args)
    weights, biases = layout.unflatten([np.asarray(a, np.float64) for a in trained])
    configuration = versions.pop("configuration", {})
    report(args, meta, source, weights, biases, xs, ys, seconds,
           {"peer": args.peer, "installed": True, "versions": versions, "device": where,
            "configuration": configuration})


if __name__ == "__main__":
    main()
