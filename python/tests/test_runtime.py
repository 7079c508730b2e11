"""What a Python user expects of a long call: other threads run while it
trains, Ctrl-C stops it within about a second and leaves the process
usable, a progress bar where a person is watching, and errors (never a
panic) from the training thread."""

import io
import os
import signal
import subprocess
import sys
import threading
import types
import time

import numpy as np
import pytest

import gputrain

# Long enough to take seconds on any machine (about 6e9 network-epochs);
# the tests below never let it finish.
LONG = dict(task="xor", layers=[2, 8, 1], networks=100_000, epochs=60_000, backend="simd",
            progress=False)


def test_other_threads_run_while_it_trains():
    ticks = []
    stop = threading.Event()

    def count():
        while not stop.is_set():
            ticks.append(time.monotonic())
            time.sleep(0.005)

    thread = threading.Thread(target=count)
    thread.start()
    try:
        start = time.monotonic()
        run = gputrain.train(task="xor", layers=[2, 8, 1], networks=20_000, epochs=4_000,
                             backend="simd", progress=False)
        end = time.monotonic()
    finally:
        stop.set()
        thread.join()
    assert run.networks == 20_000
    seconds = end - start
    during = [t for t in ticks if start < t < end]
    # With the GIL held the counter could not tick at all; let go, it
    # ticks about every 5 ms (at least a third of that on a busy machine).
    assert seconds > 0.2, f"the run took only {seconds:.3f} s: too short to tell"
    assert len(during) >= seconds / 0.005 / 3, f"{len(during)} ticks in {seconds:.2f} s"


def interrupt_after(seconds):
    timer = threading.Timer(seconds, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_raises_keyboard_interrupt_within_a_second_and_the_process_goes_on():
    for backend in ["simd", "cpu"]:
        timer = interrupt_after(0.5)
        start = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            gputrain.train(**{**LONG, "backend": backend})
        waited = time.monotonic() - start - 0.5
        timer.join()
        assert waited < 1.0, f"{backend}: KeyboardInterrupt came {waited:.2f} s after Ctrl-C"
    # The process is still usable: a run after the interrupt trains.
    run = gputrain.train(task="xor", layers=[2, 3, 1], networks=4, epochs=10, backend="simd",
                         progress=False)
    assert run.final_loss.shape == (4,)


def test_ctrl_c_on_the_gpu_backend():
    timer = interrupt_after(0.5)
    start = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        gputrain.train(**{**LONG, "backend": "gpu", "networks": 20_000})
    waited = time.monotonic() - start - 0.5
    timer.join()
    # GPU submissions are sized to about 0.1 s each (lavapipe included).
    assert waited < 1.5, f"KeyboardInterrupt came {waited:.2f} s after Ctrl-C"


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a person's is."""

    def isatty(self):
        return True


def test_a_progress_bar_in_a_terminal_and_none_when_asked(monkeypatch):
    args = dict(task="xor", layers=[2, 8, 1], networks=20_000, epochs=3_000, backend="simd")
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    gputrain.train(**args)
    shown = terminal.getvalue()
    assert "training" in shown and "net-epoch" in shown and "100%" in shown, shown
    quiet = Terminal()
    monkeypatch.setattr("sys.stderr", quiet)
    gputrain.train(progress=False, **args)
    gputrain.train(quiet=True, **args)
    assert quiet.getvalue() == ""
    # Not a terminal (a log file, CI): no bar.
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    gputrain.train(**args)
    assert "net-epoch" not in log.getvalue()
    # In a notebook (a Jupyter kernel loaded) there is a bar, though its
    # output is no terminal: tqdm.auto draws a widget there, or text where
    # the kernel has no widgets, as here.
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    notebook = io.StringIO()
    monkeypatch.setattr("sys.stderr", notebook)
    gputrain.train(**args)
    assert "net-epoch" in notebook.getvalue()


def test_notes_go_to_stderr_unless_quiet(monkeypatch):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    # More threads than the machine runs at once are lowered, with a note.
    gputrain.train(task="xor", layers=[2, 3, 1], networks=4, epochs=10, backend="simd",
                   threads=4096, progress=False)
    assert "note:" in err.getvalue(), err.getvalue()
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stderr", quiet)
    gputrain.train(task="xor", layers=[2, 3, 1], networks=4, epochs=10, backend="simd",
                   threads=4096, quiet=True)
    assert quiet.getvalue() == ""


def test_run_time_failures_are_python_exceptions(tmp_path):
    # A run too large for this machine's memory is refused before work.
    with pytest.raises(MemoryError, match="not enough memory"):
        gputrain.train(task="xor", layers=[2, 3, 1], networks=4_000_000_000, epochs=1,
                       backend="simd", progress=False)
    # A directory where an output file should go: an OSError naming it.
    (tmp_path / "taken").mkdir()
    with pytest.raises((OSError, ValueError), match="taken"):
        gputrain.train(task="xor", layers=[2, 3, 1], networks=4, epochs=10, backend="simd",
                       results=tmp_path / "taken", progress=False)
    # A diverging network is reported, not raised.
    run = gputrain.train(task="xor", layers=[2, 3, 1], networks=4, epochs=200, lr=1e30,
                         output_activation="linear", loss="sse", backend="simd", progress=False)
    assert run.diverged.all() and not np.isfinite(run.final_loss).any()


def test_silent_on_a_headless_machine():
    # No XDG_RUNTIME_DIR and no display, as under Slurm, cron or CI: a GPU
    # run, a GPU forward pass and the adapter list print nothing at all.
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_RUNTIME_DIR", "NODEVICE_SELECT")}
    script = (
        "import gputrain\n"
        "run = gputrain.train(task='xor', layers=[2, 3, 1], networks=4, epochs=10,"
        " backend='gpu', quiet=True)\n"
        "run.predict([[0.0, 1.0]], backend='gpu')\n"
        "assert gputrain.adapters()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "" and done.stderr == "", done.stderr
