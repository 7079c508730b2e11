#!/usr/bin/env python3
"""NumPy peer of gputrain: the same full-batch training of many independent
sigmoid networks, vectorised across networks the way a NumPy user would
write it (einsum over a leading network axis), in float32 or
float64.

It starts from a gputrain weights file (`gputrain --epochs 0 --weights
FILE`), so both train exactly the same networks with the same learning
rates, and follows the conventions of ../../README.md: sigmoid after every
layer, bias modes per-neuron / shared / none, loss half-sse or sse with
reduction sum or mean, one plain gradient step per epoch.

Prints one JSON object (throughput, timing, final-loss summary) on stdout;
--results writes each network's final loss as CSV (network,final_loss).
"""

import argparse
import csv
import json
import os
import struct
import sys
import time

import numpy as np


DTYPES = {"F32": "<f4", "F64": "<f8", "I64": "<i8"}


def read_safetensors(path):
    """Tensors and metadata of a safetensors file (gputrain writes F32
    from the GPU, F64 from the CPU reference, and I64 epoch counts)."""
    with open(path, "rb") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(header_len))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        if info["dtype"] not in DTYPES:
            sys.exit(f"error: {path}: tensor {name} is {info['dtype']}, expected one of "
                     f"{', '.join(DTYPES)}")
        start, end = info["data_offsets"]
        tensors[name] = np.frombuffer(data[start:end], DTYPES[info["dtype"]]).reshape(info["shape"])
    # A CPU-reference file's exact float64 values stand in for its float32 ones.
    for name in [n for n in tensors if n.endswith(".float64")]:
        tensors[name[: -len(".float64")]] = tensors.pop(name)
    return tensors, meta


def built_in_task(name):
    if name == "tutorial":
        return np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])
    if name == "xor":
        x = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
        return x, np.array([[0.0], [1.0], [1.0], [0.0]])
    sys.exit(f"error: --task {name}: expected tutorial or xor")


def load_csv(path, inputs):
    """Numeric CSV: the first `inputs` columns are inputs, the rest targets;
    an optional header row (every cell non-numeric)."""
    rows = []
    with open(path, newline="") as f:
        for i, row in enumerate(csv.reader(f)):
            cells = [c.strip() for c in row]
            if not any(cells):
                continue
            try:
                rows.append([float(c) for c in cells])
            except ValueError:
                if i == 0 and rows == []:
                    continue
                sys.exit(f"error: {path}:{i + 1}: a cell is not a number")
    table = np.array(rows)
    return table[:, :inputs], table[:, inputs:]


# einsum over the network axis: for these tiny matrices it is about 3x
# faster than stacked matmul (NumPy 2.4, 10,000 networks of 1x2 @ 2x2:
# 165 us against 526 us). Layer 0's inputs (S, n0) are shared by all.


def train(weights, biases, x, y, rates, epochs, step_scale):
    """`epochs` full-batch gradient steps, in place. weights[l] has shape
    (networks, n_{l+1}, n_l); biases[l] (networks, n_{l+1}), (networks, 1)
    for a shared bias, or None. x (S, n0) and y (S, nL) are shared."""
    lr = rates * step_scale
    for _ in range(epochs):
        acts = forward(weights, biases, x)
        out = acts[-1]
        delta = (out - y) * out * (1 - out)  # (N, S, nL), up to step_scale
        for l in reversed(range(len(weights))):
            # (N, n_{l+1}, n_l): sum over samples of delta_j * a_k
            a = acts[l]
            if a.ndim == 3:
                grad_w = np.einsum("nsj,nsk->njk", delta, a)
            else:
                grad_w = np.einsum("nsj,sk->njk", delta, a)
            if biases[l] is not None:
                if biases[l].shape[1] == 1:
                    grad_b = delta.sum(axis=(1, 2))[:, None]
                else:
                    grad_b = delta.sum(axis=1)
            if l > 0:  # backpropagate through the old weights
                delta = np.einsum("nsj,njk->nsk", delta, weights[l]) * a * (1 - a)
            weights[l] -= lr[:, None, None] * grad_w
            if biases[l] is not None:
                biases[l] -= lr[:, None] * grad_b


def forward(weights, biases, x):
    acts = [x]  # (S, n0), shared by every network
    for w, b in zip(weights, biases):
        a = acts[-1]
        if a.ndim == 3:
            z = np.einsum("nsk,njk->nsj", a, w)
        else:
            z = np.einsum("sk,njk->nsj", a, w)
        if b is not None:
            z = z + b[:, None, :]
        acts.append(1 / (1 + np.exp(-z)))
    return acts


def peer_arguments(description):
    """The arguments every peer takes: the initial weights, the data, the
    epochs, the precision and where the final losses go."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("weights", help="initial weights from gputrain --epochs 0 --weights FILE")
    p.add_argument("--task", default="tutorial", help="tutorial or xor")
    p.add_argument("--data", help="CSV data file instead of --task")
    p.add_argument("--epochs", type=int, required=True)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--results", help="write network,final_loss CSV here")
    return p


def main():
    args = peer_arguments(__doc__.split("\n\n")[0]).parse_args()

    tensors, meta = read_safetensors(args.weights)
    dtype = np.dtype(args.dtype)
    widths = [int(w) for w in meta["topology"].split("-")]
    layers = len(widths) - 1
    weights = [tensors[f"layers.{l}.weight"].astype(dtype) for l in range(layers)]
    biases = [
        tensors[f"layers.{l}.bias"].astype(dtype) if f"layers.{l}.bias" in tensors else None
        for l in range(layers)
    ]
    rates = tensors["learning_rate"].astype(dtype)
    x, y, source = load_problem(args, meta)
    x, y = x.astype(dtype), y.astype(dtype)
    scale, factor = loss_scale(meta, len(x))

    networks = rates.shape[0]
    started = time.perf_counter()
    with np.errstate(over="ignore", invalid="ignore"):
        train(weights, biases, x, y, rates, args.epochs, dtype.type(2 * scale * factor))
    seconds = time.perf_counter() - started
    report(args, meta, source, weights, biases, x, y, seconds, {"numpy": np.__version__})


def load_problem(args, meta):
    """The data of --task or --data as (x, y, its name), checked against the
    weights' topology; a weights file with frozen biases is refused."""
    widths = [int(w) for w in meta["topology"].split("-")]
    if meta.get("freeze_bias") == "true":
        sys.exit("error: the peers do not implement --freeze-bias")
    if args.data:
        x, y = load_csv(args.data, widths[0])
        source = args.data
    else:
        x, y = built_in_task(args.task)
        source = args.task
    if x.shape[1] != widths[0] or y.shape[1] != widths[-1]:
        sys.exit(f"error: the data ({source}) does not fit the {meta['topology']} weights")
    return x, y, source


def require_peer_kind(meta, allowed=None):
    """Exits unless the weights file trains what the array peers
    implement: full-batch SGD, and the activations and loss `allowed`
    lists for each field (sigmoid layers only by default); `allowed` may
    widen the optimizer and the batch size too, None taking any value."""
    allowed = allowed or {"activation": ["sigmoid"], "output_activation": ["sigmoid"]}
    wants = {"optimizer": ["sgd"], "batch_size": ["full"], **allowed}
    for field, want in wants.items():
        if want is not None and field in meta and meta[field] not in want:
            sys.exit(f"error: the peers implement {field} {' or '.join(want)} only, the file "
                     f"has {meta[field]}")


def hash32(x):
    """gputrain's lowbias32 (src/batches.rs) over a uint32 array."""
    x = np.asarray(x, np.uint32)
    with np.errstate(over="ignore"):  # the products wrap, as u32's wrapping_mul
        x = x ^ (x >> np.uint32(16))
        x = x * np.uint32(0x7FEB352D)
        x = x ^ (x >> np.uint32(15))
        x = x * np.uint32(0x846CA68B)
        return x ^ (x >> np.uint32(16))


def epoch_order(samples, seed, epoch):
    """The samples in the order gputrain's shuffled epoch `epoch` visits
    them (src/batches.rs, `EpochOrder`): a 4-round Feistel network over
    the smallest power-of-4 domain holding the samples, keyed by the seed
    and the epoch, walking the cycle on from values outside the samples.
    tests/peer_numpy.rs checks it against gputrain's for several sizes,
    seeds and epochs."""
    half = 1
    while (1 << (2 * half)) < samples:
        half += 1
    mask = np.uint32((1 << half) - 1)
    lo, hi = np.uint32(seed & 0xFFFFFFFF), np.uint32((seed >> 32) & 0xFFFFFFFF)
    base = hash32(hash32(hash32(np.uint32(epoch & 0xFFFFFFFF)) ^ hi) ^ lo)
    keys = [hash32(base ^ hash32(np.uint32((r + 0x9E3779B9) & 0xFFFFFFFF))) for r in range(4)]

    def feistel(x):
        left, right = x >> np.uint32(half), x & mask
        for key in keys:
            left, right = right, left ^ (hash32(right ^ key) & mask)
        return (left << np.uint32(half)) | right

    x = feistel(np.arange(samples, dtype=np.uint32))
    outside = x >= samples
    while outside.any():
        x[outside] = feistel(x[outside])
        outside = x >= samples
    return x.astype(np.int64)


def set_xla_cpu_flags(host_devices, vector_width):
    """XLA's flags for `host_devices` CPU devices and, if given, its
    preferred vector width in bits; XLA reads them once, when JAX is
    imported, so this runs before."""
    flags = [f"--xla_force_host_platform_device_count={host_devices}"]
    if vector_width:
        flags.append(f"--xla_cpu_prefer_vector_width={vector_width}")
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", "")] + flags).strip()


def loss_scale(meta, samples):
    """(1/2 for half-sse else 1, 1/S for mean else 1): the loss is
    scale * factor * sum (y - yhat)^2."""
    scale = 0.5 if meta["loss"] == "half-sse" else 1.0
    return scale, (1.0 / samples if meta["reduction"] == "mean" else 1.0)


def final_losses(meta, weights, biases, x, y):
    """Each network's loss of the trained parameters, in float64: the
    hidden layers' activation and the output's as the weights file names
    them (sigmoid, tanh; a softmax output with categorical cross-entropy,
    from the logits), the loss reduced as it says."""
    weights = [np.asarray(w, np.float64) for w in weights]
    biases = [None if b is None else np.asarray(b, np.float64) for b in biases]
    a = np.asarray(x, np.float64)
    hidden = meta.get("activation", "sigmoid")
    output = meta.get("output_activation", "sigmoid")
    scale, factor = loss_scale(meta, len(x))
    with np.errstate(over="ignore", invalid="ignore"):
        for l, (w, b) in enumerate(zip(weights, biases)):
            z = np.einsum("nsk,njk->nsj", a, w) if a.ndim == 3 else np.einsum("sk,njk->nsj", a, w)
            if b is not None:
                z = z + b[:, None, :]
            if l == len(weights) - 1 and output == "softmax":
                m = z.max(axis=2, keepdims=True)
                lse = m + np.log(np.exp(z - m).sum(axis=2, keepdims=True))
                return factor * (y * (lse - z)).sum(axis=(1, 2))
            kind = output if l == len(weights) - 1 else hidden
            a = np.tanh(z) if kind == "tanh" else 1 / (1 + np.exp(-z))
        return scale * factor * ((y - a) ** 2).sum(axis=(1, 2))


def report(args, meta, source, weights, biases, x, y, seconds, fields):
    """Each network's final loss (float64, from the trained parameters) to
    --results, and one JSON line with the timing and `fields`."""
    networks = weights[0].shape[0]
    final = final_losses(meta, weights, biases, x, y)
    finite = final[np.isfinite(final)]
    if args.results:
        with open(args.results, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["network", "final_loss"])
            for i, v in enumerate(final):
                w.writerow([i, repr(float(v))])
    print(json.dumps({
        "peer": "numpy",
        **fields,
        "dtype": args.dtype,
        "topology": meta["topology"],
        "data": source,
        "samples": len(x),
        "networks": networks,
        "epochs": args.epochs,
        "seconds": seconds,
        "network_epochs_per_second": networks * args.epochs / seconds if seconds > 0 else None,
        "median_final_loss": float(np.median(finite)) if finite.size else None,
        "diverged": int(networks - finite.size),
    }))


if __name__ == "__main__":
    main()
