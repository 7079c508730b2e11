"""Shared fixtures of the Python package's tests: the installed package
(built by `pip install .`, never the source folder, which has no native
module) and the command-line binary the package is compared with."""

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

try:
    import gputrain  # noqa: F401
except ImportError as e:  # pragma: no cover - the message is the point
    raise SystemExit(
        f"cannot import gputrain ({e}): install the package first, from the repository "
        f"root: .venv/bin/pip install ."
    )


def _binary():
    given = os.environ.get("GPUTRAIN_BIN")
    if given:
        return Path(given)
    # The newer of the two builds: `cargo test` (the README's test command)
    # has just built the debug one.
    built = [REPO / "target" / p / "gputrain" for p in ("debug", "release")]
    built = [p for p in built if p.exists()]
    if built:
        return max(built, key=lambda p: p.stat().st_mtime)
    raise SystemExit(
        "no gputrain binary to compare with: build it (cargo build, or cargo test builds "
        "it) or point GPUTRAIN_BIN at one"
    )


@pytest.fixture(scope="session")
def cli():
    """Runs the command-line gputrain with arguments; returns the completed
    process (stdout and stderr as text)."""
    binary = _binary()

    def run(*args, check=True):
        done = subprocess.run(
            [str(binary), *map(str, args)], capture_output=True, text=True, timeout=300
        )
        if check and done.returncode != 0:
            raise AssertionError(f"gputrain {' '.join(map(str, args))} failed:\n{done.stderr}")
        return done

    return run
