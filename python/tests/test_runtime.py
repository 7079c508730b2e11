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
import warnings

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
    # And no warning: tqdm.auto warns (TqdmWarning) where ipywidgets is
    # missing.
    monkeypatch.setitem(sys.modules, "ipykernel", types.ModuleType("ipykernel"))
    notebook = io.StringIO()
    monkeypatch.setattr("sys.stderr", notebook)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        gputrain.train(**args)
    assert "net-epoch" in notebook.getvalue()


def test_a_log_gets_the_commands_progress_lines(monkeypatch):
    # Without a terminal, a plain line every GPUTRAIN_PROGRESS_SECONDS
    # (30 by default), as the command prints them, and a last one.
    args = dict(task="xor", layers=[2, 8, 1], networks=20_000, epochs=3_000, backend="simd")
    monkeypatch.setenv("GPUTRAIN_PROGRESS_SECONDS", "0.05")
    log = io.StringIO()
    monkeypatch.setattr("sys.stderr", log)
    gputrain.train(**args)
    lines = [l for l in log.getvalue().splitlines() if l.startswith("progress: ")]
    total = 20_000 * 3_000
    assert len(lines) >= 2, log.getvalue()
    assert lines[-1].startswith(f"progress: 100.0% ({total} of {total} network-epochs) after")
    assert "network-epochs/s," in lines[0]
    # progress= chooses: lines on a terminal too; none; a bad period is a
    # ValueError naming the variable.
    terminal = Terminal()
    monkeypatch.setattr("sys.stderr", terminal)
    gputrain.train(progress="lines", **args)
    assert "progress: " in terminal.getvalue() and "net-epoch" not in terminal.getvalue()
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stderr", quiet)
    gputrain.train(progress="none", **args)
    assert quiet.getvalue() == ""
    monkeypatch.setenv("GPUTRAIN_PROGRESS_SECONDS", "soon")
    with pytest.raises(ValueError, match='GPUTRAIN_PROGRESS_SECONDS="soon"'):
        gputrain.train(progress="lines", **args)


def test_the_wheel_installs_the_command(tmp_path):
    # `pip install .` puts a gputrain command beside the interpreter that
    # runs the binary's own code: the same version line, exit codes and
    # files as the package's train().
    command = os.path.join(os.path.dirname(sys.executable), "gputrain")
    assert os.access(command, os.X_OK), f"{command}: pip install . installs no command"
    version = subprocess.run([command, "--version"], capture_output=True, text=True,
                             timeout=60)
    assert version.returncode == 0, version.stderr
    assert version.stdout.startswith(f"gputrain {gputrain.__version__} (commit "), version.stdout
    assert "backends: gpu (wgpu" in version.stdout
    flags = ["--task", "xor", "--layers", "2,3,1", "--networks", "6", "--epochs", "40",
             "--backend", "simd", "-q"]
    done = subprocess.run([command, *flags, "--results", str(tmp_path / "cli.csv")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "6 networks" in done.stdout, done.stdout
    gputrain.train(task="xor", layers=[2, 3, 1], networks=6, epochs=40, backend="simd",
                   quiet=True, results=tmp_path / "py.csv")
    def rows(name):
        # Timing aside (no timing column is in the results CSV).
        return (tmp_path / name).read_text()
    assert rows("cli.csv") == rows("py.csv")
    bad = subprocess.run([command, "--networks", "0"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and bad.stderr.startswith("error: "), bad.stderr
    assert "--networks" in bad.stderr


def test_notes_go_to_stderr_unless_quiet(monkeypatch, tmp_path):
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    # More threads than the machine runs at once are lowered, with a note
    # naming the keyword as Python spells it.
    gputrain.train(task="xor", layers=[2, 3, 1], networks=4, epochs=10, backend="simd",
                   threads=4096, progress=False)
    assert "note: threads=4096: this machine runs" in err.getvalue(), err.getvalue()
    # A summary's note too: a weights file's rates replaced by lr=.
    weights = tmp_path / "w.safetensors"
    gputrain.train(task="xor", layers=[2, 3, 1], networks=4, epochs=10, backend="simd",
                   weights=weights, progress=False)
    err = io.StringIO()
    monkeypatch.setattr("sys.stderr", err)
    run = gputrain.train(task="xor", layers=[2, 3, 1], networks=4, epochs=10,
                         backend="simd", init_weights=weights, lr=0.1, progress=False)
    note = f"weights file {weights}: its learning rates are replaced by lr=0.1"
    assert note in run.summary["notes"], run.summary["notes"]
    assert f"note: {note}" in err.getvalue(), err.getvalue()
    assert "--" not in err.getvalue(), err.getvalue()
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
