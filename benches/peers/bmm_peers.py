#!/usr/bin/env python3
"""Batched-matrix-product peer of gputrain for networks too large for the
struct-of-arrays program of soa_peers.py: every layer is one einsum over a
network axis (weights (networks, n_out, n_in), activations (networks,
samples, n)), the whole epoch loop compiled by JAX (jit of lax.fori_loop),
as a careful JAX user writes it for wide networks, with the same switches
as soa_peers.py's JAX peer: --unroll K epochs per loop iteration,
--host-devices D (the networks sharded over D XLA host devices, 0 for one
per core), --vector-width 512 and --block B networks a device per call.

    jax-bmm        jax.jit(lax.fori_loop) of einsum layers

Same conventions and output as numpy_peer.py (whose einsum trainer this
follows), and more of the vocabulary: sigmoid or tanh hidden layers, a
sigmoid output with half-sse or sse, or a softmax output with categorical
cross-entropy; bias per-neuron, shared or none; sum or mean; SGD or
Adam (PyTorch's, without weight decay) at a constant rate; full batches,
or minibatches in gputrain's order (shuffled: numpy_peer.epoch_order, from
the file's seed and epoch), the orders computed before the clock starts.
Exit 3 if JAX is not installed (the JSON says so).
"""

import importlib
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_peer import (  # noqa: E402
    epoch_order, load_problem, loss_scale, peer_arguments, read_safetensors, report,
    require_peer_kind, set_xla_cpu_flags)


# What this peer trains, by the weights file's field (None: any value).
KINDS = {"activation": ["sigmoid", "tanh"], "output_activation": ["sigmoid", "softmax"],
         "optimizer": ["sgd", "adam"], "batch_size": None, "lr_schedule": ["constant"]}


def trainer(jnp, lax, x, y, scale, mean, unroll, hidden, output, adam=None, batch=None):
    """`train(weights, biases, lr, epochs, orders)`: einsum layers,
    `hidden` (sigmoid or tanh) hidden layers and a sigmoid or softmax
    output, trained by SGD or, given `adam` = (beta1, beta2, eps), by
    PyTorch's Adam, on the whole data (`batch` None) or on minibatches of
    `batch` rows taken in the order `orders[epoch]` (gputrain's:
    numpy_peer.epoch_order), the last batch keeping what is left. `scale`
    is the squared error's 1/2 (half-sse) or 1; `mean` divides a batch's
    loss by its rows. The epoch loop is lax.fori_loop, `unroll` epochs an
    iteration. `jnp` and `lax` may be NumPy and NumpyLax (the tests train
    the same code in float64 against gputrain's reference)."""
    samples = x.shape[0]
    size = samples if batch is None else min(batch, samples)
    full, rest = divmod(samples, size)

    def activate(z, kind):
        if kind == "softmax":
            return jax_softmax(jnp, z)
        return jnp.tanh(z) if kind == "tanh" else 1 / (1 + jnp.exp(-z))

    def slope(a, kind):
        return 1 - a * a if kind == "tanh" else a * (1 - a)

    def forward(weights, biases, xb):
        acts = [xb]
        for l, (w, b) in enumerate(zip(weights, biases)):
            a = acts[-1]
            z = jnp.einsum("sk,njk->nsj", a, w) if a.ndim == 2 else \
                jnp.einsum("nsk,njk->nsj", a, w)
            if b is not None:
                z = z + b[:, None, :]
            acts.append(activate(z, output if l == len(weights) - 1 else hidden))
        return acts

    def gradient(weights, biases, xb, yb):
        """The batch loss's gradient: its constant factors (2 x 1/2 for
        half-sse, 1/rows for a mean) on the output deltas."""
        factor = 1.0 / xb.shape[0] if mean else 1.0
        step = factor if output == "softmax" else 2 * scale * factor
        acts = forward(weights, biases, xb)
        out = acts[-1]
        # Softmax with categorical cross-entropy: p - y; else the squared
        # error's (yhat - y) times the sigmoid's slope.
        delta = out - yb if output == "softmax" else (out - yb) * slope(out, output)
        delta = delta * x.dtype.type(step)
        grad_w, grad_b = [None] * len(weights), [None] * len(weights)
        for l in reversed(range(len(weights))):
            a = acts[l]
            grad_w[l] = jnp.einsum("nsj,sk->njk", delta, a) if a.ndim == 2 else \
                jnp.einsum("nsj,nsk->njk", delta, a)
            if biases[l] is not None:
                grad_b[l] = delta.sum(axis=(1, 2))[:, None] if biases[l].shape[1] == 1 \
                    else delta.sum(axis=1)
            if l > 0:
                delta = jnp.einsum("nsj,njk->nsk", delta, weights[l]) * slope(a, hidden)
        return grad_w + grad_b

    def per_network(lr, p):
        return lr.reshape((-1,) + (1,) * (p.ndim - 1))

    def update(state, xb, yb, lr):
        """One step from the batch (xb, yb). state: (params, m, v, t), the
        params the weights then the biases (None where a layer has none)."""
        params, m, v, t = state
        layers = len(params) // 2
        grads = gradient(params[:layers], params[layers:], xb, yb)
        t = t + 1
        if adam is None:
            new = [None if p is None else p - per_network(lr, p) * g
                   for p, g in zip(params, grads)]
            return new, m, v, t
        beta1, beta2, eps = (x.dtype.type(h) for h in adam)
        one = x.dtype.type(1)
        # PyTorch's Adam: exp_avg.lerp_(g, 1 - beta1), exp_avg_sq scaled
        # by beta2 plus (1 - beta2) g^2, step_size = lr / (1 - beta1^t),
        # denominator sqrt(v) / sqrt(1 - beta2^t) + eps.
        bias1 = one - beta1 ** t
        bias2_sqrt = jnp.sqrt(one - beta2 ** t)
        new_p, new_m, new_v = [], [], []
        for p, g, mp, vp in zip(params, grads, m, v):
            if p is None:
                new_p.append(None), new_m.append(None), new_v.append(None)
                continue
            mp = mp + (g - mp) * (one - beta1)
            vp = vp * beta2 + (one - beta2) * (g * g)
            denom = jnp.sqrt(vp) / bias2_sqrt + eps
            new_p.append(p - per_network(lr / bias1, p) * (mp / denom))
            new_m.append(mp)
            new_v.append(vp)
        return new_p, new_m, new_v, t

    def epoch(e, state, lr, orders):
        if batch is None:
            return update(state, x, y, lr)
        order = orders[e]

        def one(b, state):
            rows = lax.dynamic_slice_in_dim(order, b * size, size)
            return update(state, x[rows], y[rows], lr)

        state = lax.fori_loop(0, full, one, state)
        if rest:
            rows = order[full * size:]
            state = update(state, x[rows], y[rows], lr)
        return state

    def train(weights, biases, lr, n, orders=None):
        params = list(weights) + list(biases)
        zeros = [None if p is None else jnp.zeros_like(p) for p in params]
        moments = (zeros, list(zeros)) if adam is not None else (None, None)
        state = (params, *moments, jnp.zeros((), x.dtype))

        def body(i, state):
            for k in range(unroll):
                state = epoch(i * unroll + k, state, lr, orders)
            return state

        state = lax.fori_loop(0, n // unroll, body, state)
        state = lax.fori_loop(n // unroll * unroll, n, lambda e, s: epoch(e, s, lr, orders),
                              state)
        return state[0][:len(weights)], state[0][len(weights):]

    return train


class NumpyLax:
    """What the trainer takes from jax.lax, for NumPy arrays: the tests
    run the trainer's code in float64 without JAX."""

    @staticmethod
    def fori_loop(lower, upper, body, state):
        for i in range(int(lower), int(upper)):
            state = body(i, state)
        return state

    @staticmethod
    def dynamic_slice_in_dim(a, start, size):
        return a[start:start + size]


def training_terms(meta):
    """What the file's run trains beyond the layers: (adam, batch, shuffle,
    seed, first epoch) for trainer(); exits on what the peer does not
    implement."""
    adam = None
    if meta.get("optimizer", "sgd") == "adam":
        if float(meta.get("weight_decay", "0")) != 0.0:
            sys.exit("error: the peer implements Adam without weight decay, the file has "
                     f"weight_decay {meta['weight_decay']}")
        if int(meta.get("epochs", "0")) > 0:
            sys.exit("error: the peer starts Adam's moments at zero, the file has trained "
                     f"{meta['epochs']} epochs (give it an --epochs 0 file)")
        adam = tuple(float(meta[h]) for h in ("beta1", "beta2", "eps"))
    size = meta.get("batch_size", "full")
    batch = None if size == "full" else int(size)
    shuffle = meta.get("shuffle", "false") == "true"
    return adam, batch, shuffle, int(meta.get("seed", "0")), int(meta.get("epochs", "0"))


def orders_for(samples, batch, shuffle, seed, first, epochs):
    """Each epoch's visiting order, (epochs, samples): gputrain's shuffle
    from epoch `first` on, or the file's order; None for full batches."""
    if batch is None:
        return None
    if not shuffle:
        return np.tile(np.arange(samples), (max(epochs, 1), 1))
    return np.stack([epoch_order(samples, seed, first + e) for e in range(max(epochs, 1))])


def jax_softmax(jnp, z):
    """Softmax over the last axis, the largest logit subtracted first."""
    e = jnp.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def main():
    p = peer_arguments(__doc__.split("\n\n")[0])
    p.add_argument("--peer", default="jax-bmm", choices=["jax-bmm"])
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--unroll", type=int, default=1)
    p.add_argument("--host-devices", type=int, default=1)
    p.add_argument("--vector-width", type=int, default=0)
    p.add_argument("--block", type=int, default=0)
    args = p.parse_args()
    if args.unroll < 1 or args.host_devices < 0:
        sys.exit("error: --unroll must be at least 1, --host-devices at least 0")
    if args.host_devices == 0:
        args.host_devices = len(os.sched_getaffinity(0))
    if args.device == "cpu":
        set_xla_cpu_flags(args.host_devices, args.vector_width)
    try:
        jax = importlib.import_module("jax")
    except ImportError:
        print(json.dumps({"peer": args.peer, "installed": False}))
        sys.exit(3)
    jax.config.update("jax_enable_x64", args.dtype == "float64")
    jnp, lax = jax.numpy, jax.lax
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    tensors, meta = read_safetensors(args.weights)
    require_peer_kind(meta, KINDS)
    hidden = meta.get("activation", "sigmoid")
    output = meta.get("output_activation", "sigmoid")
    if (output == "softmax") != (meta["loss"] == "categorical-cross-entropy"):
        sys.exit(f"error: the peer trains a softmax output with categorical-cross-entropy "
                 f"and a sigmoid one with half-sse or sse, the file has {output} and "
                 f"{meta['loss']}")
    dtype = np.dtype(args.dtype)
    layers = len(meta["topology"].split("-")) - 1
    weights = [tensors[f"layers.{l}.weight"].astype(dtype) for l in range(layers)]
    biases = [tensors[f"layers.{l}.bias"].astype(dtype) if f"layers.{l}.bias" in tensors
              else None for l in range(layers)]
    rates = tensors["learning_rate"].astype(dtype)
    x, y, source = load_problem(args, meta)
    scale, _ = loss_scale(meta, len(x))
    adam, batch, shuffle, seed, first = training_terms(meta)
    orders = orders_for(len(x), batch, shuffle, seed, first, args.epochs)

    devices = jax.devices(args.device if args.device != "cuda" else "gpu")
    count = min(args.host_devices, len(devices)) if args.device == "cpu" else 1
    devices = devices[:count]
    sharding = NamedSharding(Mesh(np.array(devices), ("n",)), PartitionSpec("n"))
    train = jax.jit(trainer(jnp, lax, jnp.asarray(x.astype(dtype)), jnp.asarray(y.astype(dtype)),
                            scale, meta["reduction"] == "mean", args.unroll, hidden, output,
                            adam, batch))
    orders = None if orders is None else jnp.asarray(orders.astype(np.int32))
    networks = len(rates)
    per_call = networks if args.block <= 0 else min(networks, args.block * count)
    per_call = -(-per_call // count) * count

    def block(values, start):
        if values is None:
            return None
        chunk = values[start:start + per_call]
        pad = per_call - len(chunk)
        if pad:
            chunk = np.concatenate([chunk, np.repeat(chunk[:1], pad, axis=0)])
        return jax.device_put(jnp.asarray(chunk), sharding)

    blocks = [([block(w, s) for w in weights], [block(b, s) for b in biases], block(rates, s))
              for s in range(0, networks, per_call)]
    jax.block_until_ready(train(*blocks[0], 1, orders))  # trace and compile
    started = time.perf_counter()
    done = [jax.block_until_ready(train(w, b, lr, args.epochs, orders)) for w, b, lr in blocks]
    seconds = time.perf_counter() - started
    trained_w = [np.concatenate([np.asarray(d[0][l]) for d in done])[:networks]
                 for l in range(layers)]
    trained_b = [None if biases[l] is None else
                 np.concatenate([np.asarray(d[1][l]) for d in done])[:networks]
                 for l in range(layers)]
    report(args, meta, source, trained_w, trained_b, x, y, seconds,
           {"peer": args.peer, "installed": True,
            "versions": {"jax": jax.__version__, "device": str(devices[0])},
            "device": str(devices[0]),
            "configuration": {"unroll": args.unroll, "host_devices": count,
                              "block": args.block, "vector_width": args.vector_width}})


if __name__ == "__main__":
    main()
