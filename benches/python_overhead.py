"""What the Python package adds to a run, against the command line, on the
headline workload (10,000 networks x 20,000 epochs of seed 003's 2-2-2
network, default backend): the median wall time of `gputrain --networks
10000 --epochs 20000 -q` as a process, of `gputrain.train(...)` as a call,
and of a Python process that imports the package and makes the call,
interleaved, in one run.

    .venv/bin/python benches/python_overhead.py [--repeats 7] [--binary PATH]
        [--backend auto|gpu|simd|cpu]
"""

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import gputrain

ARGS = dict(networks=10_000, epochs=20_000)


def timed(f):
    start = time.perf_counter()
    f()
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--backend", default="auto", choices=["auto", "gpu", "simd", "cpu"])
    parser.add_argument(
        "--binary", default=str(Path(__file__).resolve().parents[1] / "target/release/gputrain")
    )
    args = parser.parse_args()
    ARGS["backend"] = args.backend
    flags = [f"--{k}={v}" for k, v in ARGS.items()]
    cli, call, process = [], [], []
    script = f"import gputrain; gputrain.train(progress=False, **{ARGS!r})"
    for _ in range(args.repeats):
        cli.append(timed(lambda: subprocess.run([args.binary, *flags, "-q"], check=True,
                                                stdout=subprocess.DEVNULL)))
        call.append(timed(lambda: gputrain.train(progress=False, **ARGS)))
        process.append(timed(lambda: subprocess.run([sys.executable, "-c", script], check=True)))
    run = gputrain.train(progress=False, **ARGS)
    c, p, q = (statistics.median(x) for x in (cli, call, process))
    print(f"workload: {run.summary['networks']} networks x {run.summary['epochs']} epochs, "
          f"{run.summary['topology']}, backend {run.summary['backend']} "
          f"({run.summary['adapter']}), {args.repeats} repeats, medians")
    print(f"command line (process):        {c:.3f} s")
    print(f"gputrain.train (call):         {p:.3f} s  ({p - c:+.3f} s, {100 * (p / c - 1):+.1f}%)")
    print(f"python -c 'import; train' :    {q:.3f} s  ({q - c:+.3f} s, {100 * (q / c - 1):+.1f}%)")
    print(f"all: cli {[round(x, 3) for x in cli]}, call {[round(x, 3) for x in call]}, "
          f"process {[round(x, 3) for x in process]}")


if __name__ == "__main__":
    main()
