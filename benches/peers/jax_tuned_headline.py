"""The headline (seed 003's 2-2-2 network, one sample, half-SSE, SGD at
0.5) for N networks x E epochs in JAX, as a careful user writes it
(issue #30's four habits): struct of arrays in float32, jit(fori_loop)
with UNROLL epochs per iteration (default 8), the networks sharded over
DEVICES XLA host devices (default 2, one per core), 512-bit vectors
(WIDE=1, `--xla_cpu_prefer_vector_width=512`). Every network starts from
the seed's weights (the time does not depend on them). Prints the
training time (compilation excluded) and the mean final loss.

Not wired into `gputrain bench --peers` yet (soa_peers.py's JAX peer has
none of the four habits); the yardstick for #30:

    python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax
    /tmp/jaxenv/bin/python benches/peers/jax_tuned_headline.py 10000 20000
    gputrain --networks 10000 --epochs 20000 --backend simd --json

It computes no loss and checks no divergence per epoch, which gputrain's
trainers do (the target and the NaN rule need them)."""

import os
import sys
import time

N = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
E = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
DEVICES = int(os.environ.get("DEVICES", "2"))
UNROLL = int(os.environ.get("UNROLL", "8"))
WIDE = os.environ.get("WIDE", "1") == "1"
flags = [f"--xla_force_host_platform_device_count={DEVICES}"]
if WIDE:
    flags.append("--xla_cpu_prefer_vector_width=512")
os.environ["XLA_FLAGS"] = " ".join(flags)

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P  # noqa: E402

I1, I2, T1, T2, LR = 0.05, 0.10, 0.01, 0.99, 0.5
START = [0.15, 0.20, 0.25, 0.30, 0.40, 0.45, 0.50, 0.55, 0.35, 0.60]


def sig(x):
    return 1.0 / (1.0 + jnp.exp(-x))


def forward(p):
    w1, w2, w3, w4, w5, w6, w7, w8, b1, b2 = p
    h1 = sig(w1 * I1 + w2 * I2 + b1)
    h2 = sig(w3 * I1 + w4 * I2 + b1)
    return h1, h2, sig(w5 * h1 + w6 * h2 + b2), sig(w7 * h1 + w8 * h2 + b2)


def epoch(p):
    w5, w6, w7, w8 = p[4:8]
    h1, h2, o1, o2 = forward(p)
    d1 = -(T1 - o1) * o1 * (1 - o1)
    d2 = -(T2 - o2) * o2 * (1 - o2)
    e1 = (d1 * w5 + d2 * w7) * h1 * (1 - h1)
    e2 = (d1 * w6 + d2 * w8) * h2 * (1 - h2)
    g = (e1 * I1, e1 * I2, e2 * I1, e2 * I2, d1 * h1, d1 * h2, d2 * h1, d2 * h2, e1 + e2, d1 + d2)
    return tuple(x - LR * gx for x, gx in zip(p, g))


def loss(p):
    _, _, o1, o2 = forward(p)
    return 0.5 * ((T1 - o1) ** 2 + (T2 - o2) ** 2)


@jax.jit
def train(p):
    def body(_, p):
        for _ in range(UNROLL):
            p = epoch(p)
        return p

    return jax.lax.fori_loop(0, E // UNROLL, body, p)


mesh = Mesh(jax.devices()[:DEVICES], ("n",))
sharding = NamedSharding(mesh, P("n"))
params = tuple(jax.device_put(jnp.full((N,), v, jnp.float32), sharding) for v in START)
jax.block_until_ready(train(params))  # compile
start = time.perf_counter()
out = jax.block_until_ready(train(params))
seconds = time.perf_counter() - start
print(f"jax {jax.__version__} N={N} E={E} devices={DEVICES} unroll={UNROLL} wide={WIDE}: "
      f"{seconds:.3f} s, {N * E / seconds:.3e} network-epochs/s, "
      f"loss {float(jnp.mean(loss(out))):.6e}")
