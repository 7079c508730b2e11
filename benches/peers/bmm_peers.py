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
cross-entropy; bias per-neuron, shared or none; sum or mean; full-batch
SGD. Exit 3 if JAX is not installed (the JSON says so).
"""

import importlib
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from numpy_peer import (  # noqa: E402
    load_problem, loss_scale, peer_arguments, read_safetensors, report, require_peer_kind,
    set_xla_cpu_flags)


# What this peer trains, by the weights file's field.
KINDS = {"activation": ["sigmoid", "tanh"], "output_activation": ["sigmoid", "softmax"]}


def trainer(jnp, lax, x, y, step_scale, unroll, hidden, output):
    """`train(weights, biases, lr, epochs)`: full-batch SGD, einsum layers,
    `hidden` (sigmoid or tanh) hidden layers and a sigmoid or softmax
    output; `step_scale` takes the loss's constant factors (2 x 1/2 for
    half-sse, 1/S for a mean)."""

    def activate(z, kind):
        if kind == "softmax":
            return jax_softmax(jnp, z)
        return jnp.tanh(z) if kind == "tanh" else 1 / (1 + jnp.exp(-z))

    def slope(a, kind):
        return 1 - a * a if kind == "tanh" else a * (1 - a)

    def forward(weights, biases):
        acts = [x]
        for l, (w, b) in enumerate(zip(weights, biases)):
            a = acts[-1]
            z = jnp.einsum("sk,njk->nsj", a, w) if a.ndim == 2 else \
                jnp.einsum("nsk,njk->nsj", a, w)
            if b is not None:
                z = z + b[:, None, :]
            acts.append(activate(z, output if l == len(weights) - 1 else hidden))
        return acts

    def epoch(params, lr):
        weights, biases = params
        acts = forward(weights, biases)
        out = acts[-1]
        # Softmax with categorical cross-entropy: p - y; else the squared
        # error's (yhat - y) times the sigmoid's slope.
        delta = out - y if output == "softmax" else (out - y) * slope(out, output)
        new_w, new_b = list(weights), list(biases)
        for l in reversed(range(len(weights))):
            a = acts[l]
            grad_w = jnp.einsum("nsj,sk->njk", delta, a) if a.ndim == 2 else \
                jnp.einsum("nsj,nsk->njk", delta, a)
            grad_b = None
            if biases[l] is not None:
                grad_b = delta.sum(axis=(1, 2))[:, None] if biases[l].shape[1] == 1 \
                    else delta.sum(axis=1)
            if l > 0:
                delta = jnp.einsum("nsj,njk->nsk", delta, weights[l]) * slope(a, hidden)
            new_w[l] = weights[l] - (lr * step_scale)[:, None, None] * grad_w
            if grad_b is not None:
                new_b[l] = biases[l] - (lr * step_scale)[:, None] * grad_b
        return new_w, new_b

    def train(weights, biases, lr, n):
        def body(_, params):
            for _ in range(unroll):
                params = epoch(params, lr)
            return params

        params = lax.fori_loop(0, n // unroll, body, (weights, biases))
        return lax.fori_loop(0, n % unroll, lambda _, q: epoch(q, lr), params)

    return train


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
    scale, factor = loss_scale(meta, len(x))

    devices = jax.devices(args.device if args.device != "cuda" else "gpu")
    count = min(args.host_devices, len(devices)) if args.device == "cpu" else 1
    devices = devices[:count]
    sharding = NamedSharding(Mesh(np.array(devices), ("n",)), PartitionSpec("n"))
    step_scale = factor if output == "softmax" else 2 * scale * factor
    train = jax.jit(trainer(jnp, lax, jnp.asarray(x.astype(dtype)), jnp.asarray(y.astype(dtype)),
                            dtype.type(step_scale), args.unroll, hidden, output))
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
    jax.block_until_ready(train(*blocks[0], 1))  # trace and compile
    started = time.perf_counter()
    done = [jax.block_until_ready(train(w, b, lr, args.epochs)) for w, b, lr in blocks]
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
