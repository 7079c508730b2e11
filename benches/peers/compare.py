#!/usr/bin/env python3
"""Runs gputrain and its peers on the same workload in one go and prints
every throughput and its ratio to gputrain's.

Peers (`--peers`, comma-separated, or `all`): `numpy-einsum`
(numpy_peer.py, a leading network axis and einsum, the default) and the
struct-of-arrays peers of soa_peers.py: `numpy`, `numba`, `jax`, `torch`,
`torch-compile` (`--device cuda` puts jax and torch on the GPU). A peer
whose framework is not installed is listed as "not installed".

Both start from the same initial weights and learning rates (written by
`gputrain --epochs 0 --weights`), and their final losses are compared
network by network, so the figures are for the same training. Timings:
gputrain's `wall_seconds` (its --json summary: pipeline build, upload,
training, evaluation and readback) against the peer's training loop alone.

    python3 benches/peers/compare.py                       # tutorial 10,000 x 20,000
    python3 benches/peers/compare.py --task xor --epochs 5000
    python3 benches/peers/compare.py --layers 8,32,8 --synthetic 64 --networks 1000 --epochs 20

Exit status 1 if the final losses disagree beyond the tolerance, 2 on bad
arguments or a failed command.
"""

import argparse
import csv
import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PEERS = ("numpy-einsum", "numpy", "numba", "jax", "torch", "torch-compile")
ROOT = os.path.dirname(os.path.dirname(HERE))


def run(cmd, what):
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        sys.exit(f"error: {what} failed (exit {done.returncode}): {' '.join(cmd)}")
    return done.stdout


def final_losses(path, column):
    with open(path, newline="") as f:
        return [float(row[column]) for row in csv.DictReader(f)]


def write_synthetic(path, widths, samples, seed):
    import numpy as np

    rng = np.random.default_rng(seed)
    x = rng.uniform(-1, 1, size=(samples, widths[0]))
    y = rng.uniform(0.1, 0.9, size=(samples, widths[-1]))
    np.savetxt(path, np.hstack([x, y]), delimiter=",", fmt="%.9g")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gputrain", default=os.path.join(ROOT, "target", "release", "gputrain"),
                   help="the gputrain binary (default: target/release/gputrain, built if missing)")
    p.add_argument("--task", default="tutorial", help="tutorial or xor")
    p.add_argument("--data", help="CSV data (needs --layers)")
    p.add_argument("--synthetic", type=int, metavar="S",
                   help="make S random samples for --layers and use them as --data")
    p.add_argument("--layers", help="layer widths, e.g. 8,32,8")
    p.add_argument("--networks", type=int, default=10_000)
    p.add_argument("--epochs", type=int, default=20_000)
    p.add_argument("--lr", default="0.5")
    p.add_argument("--bias", help="gputrain's --bias (per-neuron, shared, none)")
    p.add_argument("--loss", help="gputrain's --loss (half-sse, sse)")
    p.add_argument("--reduction", help="gputrain's --reduction (sum, mean)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--backend", default="gpu", help="gputrain's --backend (auto, gpu, simd or cpu)")
    p.add_argument("--dtypes", default="float32",
                   help="peer precisions, comma-separated: float32, float64")
    p.add_argument("--peers", default="numpy-einsum",
                   help=f"comma-separated: {', '.join(PEERS)}; or all")
    p.add_argument("--device", default="cpu", help="jax and torch peers: cpu or cuda")
    p.add_argument("--python", default=sys.executable,
                   help="the interpreter that runs the peers")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="largest |final loss difference| / (1e-3 + final loss) accepted")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON")
    args = p.parse_args()
    if (args.data or args.synthetic) and not args.layers:
        sys.exit("error: --data and --synthetic need --layers")
    peer_names = PEERS if args.peers == "all" else args.peers.split(",")
    unknown = [n for n in peer_names if n not in PEERS]
    if unknown:
        sys.exit(f"error: --peers: unknown peer {unknown[0]!r}; expected {', '.join(PEERS)}")

    if not os.path.exists(args.gputrain):
        run(["cargo", "build", "--release", "--manifest-path", os.path.join(ROOT, "Cargo.toml")],
            "building gputrain")

    with tempfile.TemporaryDirectory(prefix="gputrain-peer-") as tmp:
        data_args, peer_data = [], ["--task", args.task]
        if args.synthetic:
            args.data = os.path.join(tmp, "synthetic.csv")
            write_synthetic(args.data, [int(w) for w in args.layers.split(",")],
                            args.synthetic, args.seed)
        if args.data:
            data_args, peer_data = ["--data", args.data], ["--data", args.data]
        else:
            data_args = ["--task", args.task]
        if args.layers:
            data_args += ["--layers", args.layers]
        for flag in ("bias", "loss", "reduction"):
            if getattr(args, flag):
                data_args += [f"--{flag}", getattr(args, flag)]
        common = [args.gputrain, *data_args, "--networks", str(args.networks),
                  "--seed", str(args.seed), "--lr", args.lr, "--quiet"]
        init = os.path.join(tmp, "init.safetensors")
        run([*common, "--epochs", "0", "--backend", "cpu", "--weights", init],
            "writing the initial weights")
        ours_csv = os.path.join(tmp, "gputrain.csv")
        ours = json.loads(run(
            [args.gputrain, *data_args, "--networks", str(args.networks), "--quiet",
             "--init-weights", init, "--epochs", str(args.epochs), "--backend", args.backend,
             "--results", ours_csv, "--json"],
            "gputrain"))
        ours_loss = final_losses(ours_csv, "final_loss")

        peers = []
        for name in peer_names:
            for dtype in args.dtypes.split(","):
                peer_csv = os.path.join(tmp, f"peer-{name}-{dtype}.csv")
                if name == "numpy-einsum":
                    cmd = [args.python, os.path.join(HERE, "numpy_peer.py")]
                else:
                    cmd = [args.python, os.path.join(HERE, "soa_peers.py"), "--peer", name,
                           "--device", args.device]
                cmd += [init, *peer_data, "--epochs", str(args.epochs), "--dtype", dtype,
                        "--results", peer_csv]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode == 3:
                    peers.append({"peer": name, "dtype": dtype, "installed": False})
                    continue
                if done.returncode != 0:
                    sys.stderr.write(done.stderr)
                    sys.exit(f"error: the {name} peer ({dtype}) failed (exit "
                             f"{done.returncode}): {' '.join(cmd)}")
                peer = json.loads(done.stdout.strip().splitlines()[-1])
                peer["peer"] = name
                theirs = final_losses(peer_csv, "final_loss")
                worst, worst_net = 0.0, None
                for n, (a, b) in enumerate(zip(ours_loss, theirs)):
                    diff = abs(a - b) / (1e-3 + abs(b)) if a == a and b == b else float("inf")
                    if a != a and b != b:
                        diff = 0.0  # both diverged
                    if diff > worst:
                        worst, worst_net = diff, n
                peer["worst_relative_loss_difference"] = worst
                peer["worst_network"] = worst_net
                peer["agrees"] = worst <= args.tolerance
                peer["ratio"] = (ours["network_epochs_per_second"]
                                 / peer["network_epochs_per_second"])
                peers.append(peer)

    adapter = ours.get("adapter") or {}
    who = adapter.get("name", "CPU reference") if isinstance(adapter, dict) else str(adapter)
    if args.json:
        print(json.dumps({"gputrain": ours, "peers": peers}, indent=2))
    else:
        shape = f"{ours['topology']} on {ours['data']}"
        print(f"workload: {shape}, {args.networks} networks x {args.epochs} epochs")
        print(f"gputrain ({ours['backend']}, {ours['strategy']}, {who}): "
              f"{ours['network_epochs_per_second']:.3e} network-epochs/s "
              f"({ours['wall_seconds']:.3f} s)")
        for peer in peers:
            if not peer.get("installed", True):
                print(f"{peer['peer']} {peer['dtype']}: not installed")
                continue
            label = "numpy" if peer["peer"] == "numpy-einsum" else peer["peer"]
            versions = peer.get("versions") or {"numpy": peer.get("numpy")}
            said = ", ".join(f"{k} {v}" for k, v in versions.items())
            print(f"{peer['peer']} ({said}; {peer.get('device', 'cpu')}) {peer['dtype']}: "
                  f"{peer['network_epochs_per_second']:.3e} network-epochs/s "
                  f"({peer['seconds']:.3f} s)  ratio gputrain/{label} = {peer['ratio']:.2f}x")
            print(f"  final losses agree: {'yes' if peer['agrees'] else 'NO'} (worst relative "
                  f"difference {peer['worst_relative_loss_difference']:.2e} at network "
                  f"{peer['worst_network']}, tolerance {args.tolerance:g})")
    if not all(peer.get("agrees", True) for peer in peers):
        sys.exit(1)


if __name__ == "__main__":
    main()
