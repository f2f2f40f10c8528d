"""Shared fixtures: one real tiny search through the CLI, reused by many tests."""

import contextlib
import io
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TINY = ["--n-samples", "300", "--n-features", "20", "--n-informative", "10",
        "--epochs", "6", "--batch-size", "32", "--seed", "1"]
ARTICLE_SIZE = ["--hp", "hidden_layers=2", "--hp", "units=1024"]
TINY_UNITS = 128  # The shared tiny search's width: two hidden layers of it.


def cli_env(env=None):
    """The environment CLI subprocesses run in: this checkout's code, quiet TF."""
    return {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO, **(env or {})}


def run_cli(*args, cwd=None, timeout=600, env=None):
    """Runs ``python -m tuner_prune`` as a real subprocess."""
    return subprocess.run([sys.executable, "-m", "tuner_prune", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=timeout,
                          env=cli_env(env))


def start_cli(*args, cwd=None, log=None, env=None):
    """Starts ``python -m tuner_prune`` without waiting; output goes to ``log``."""
    return subprocess.Popen([sys.executable, "-m", "tuner_prune", *args], cwd=cwd,
                            stdout=log, stderr=subprocess.STDOUT, env=cli_env(env))


def run_main(*args, cwd=None, env=None):
    """Runs a ``python -m tuner_prune`` command in this process, through ``cli.main``.

    For the cases that need no process of their own: TensorFlow is imported
    once for the session instead of once per command. ``--verbose`` keeps
    file descriptor 2 pytest's (``quiet.silence`` would take it for the rest
    of the session); the quiet path runs in subprocesses (``run_cli``).
    ``env`` entries are set for the call; its ``PYTHONPATH`` goes on
    ``sys.path``. Returns a ``CompletedProcess`` like ``run_cli``'s.
    """
    from tuner_prune import cli

    env = dict(env or {})
    paths = [p for p in env.pop("PYTHONPATH", "").split(os.pathsep) if p]
    out, err = io.StringIO(), io.StringIO()
    with contextlib.ExitStack() as stack:
        patch = stack.enter_context(pytest.MonkeyPatch.context())
        for name, value in env.items():
            patch.setenv(name, value)
        for path in paths:
            patch.syspath_prepend(path)
        if cwd is not None:
            stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        try:
            status = cli.main([*map(str, args), "--verbose"])
        except SystemExit as exit_:  # argparse's refusals.
            status = exit_.code
    return subprocess.CompletedProcess(["tuner_prune", *args], status, out.getvalue(),
                                       err.getvalue())


class EarlyRun:
    """A ``python -m tuner_prune`` subprocess started at collection, ahead of
    the fixture that reads it, into a folder of its own (``root``)."""

    def __init__(self, name, args, env=None, nice=0):
        self.root = pathlib.Path(tempfile.mkdtemp(prefix=f"{name}-"))
        self.args = [str(arg) for arg in args(self.root)]
        # Files, not pipes: nobody reads the output until the fixture does.
        self.out, self.err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tuner_prune", *self.args], stdout=self.out,
            stderr=self.err, text=True, env=cli_env(env))
        renice(self.process, nice)

    def result(self, timeout=600):
        """The finished run, a ``CompletedProcess`` like ``run_cli``'s."""
        self.process.wait(timeout=timeout)
        self.out.seek(0)
        self.err.seek(0)
        return subprocess.CompletedProcess(["tuner_prune", *self.args],
                                           self.process.returncode, self.out.read(),
                                           self.err.read())

    def stop(self):
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.out.close()
        self.err.close()
        shutil.rmtree(self.root, ignore_errors=True)


def renice(process, nice):
    """Lowers a just-started process's priority (its children inherit it).

    From this side, not in ``preexec_fn``: this process has threads by now,
    and a forked child that runs Python before its exec could deadlock.
    """
    if nice:
        os.setpriority(os.PRIO_PROCESS, process.pid, nice)


_EARLY = {}  # Fixture name -> the EarlyRun arguments of its subprocess.
_STARTED = pytest.StashKey()  # Fixture name -> its EarlyRun, once started.
_BENCH = pytest.StashKey()  # The module of the bench runs, once they are started.


def early(fixture, args, env=None, nice=0):
    """Registers the CLI run ``fixture`` reads, to start it at collection.

    ``args(root)`` gives the command's arguments for its folder; ``nice``
    (19 for a run needed late) lets the tests before it keep their cores.
    """
    _EARLY[fixture] = (args, env, nice)


def early_run(request, fixture):
    """The run registered for ``fixture``, started now if collection did not."""
    started = request.config.stash.setdefault(_STARTED, {})
    if fixture not in started:
        args, env, nice = _EARLY[fixture]
        started[fixture] = EarlyRun(fixture, args, env, nice)
    return started[fixture]


def pytest_collection_finish(session):
    """Starts the runs a collected test reads: ``early`` ones and the bench's.

    They go on beside the tests before their first reader: the suite trains
    on one core most of the time, and a subprocess's start-up (importing
    TensorFlow) is seconds of one core.
    """
    if session.config.option.collectonly:
        return
    started = session.config.stash.setdefault(_STARTED, {})
    for item in session.items:
        for fixture in getattr(item, "fixturenames", ()):
            if fixture in _EARLY and fixture not in started:
                args, env, nice = _EARLY[fixture]
                started[fixture] = EarlyRun(fixture, args, env, nice)
            if fixture == "bench_runs" and _BENCH not in session.config.stash:
                item.module.start_runs()
                session.config.stash[_BENCH] = item.module


def pytest_sessionfinish(session):
    """Ends the runs a stopped session left going; removes the early runs' folders."""
    for run in session.config.stash.get(_STARTED, {}).values():
        run.stop()
    if _BENCH in session.config.stash:
        session.config.stash[_BENCH].stop_runs()


early("tiny_search", lambda root: [
    "search", *TINY, "--max-trials", "3", "--hp", "hidden_layers=2",
    "--hp", f"units={TINY_UNITS}", "--ship", "trial", "--directory", root / "logs",
    "--export-dir", root / "export"])


@pytest.fixture(scope="session")
def tiny_search(request):
    """A finished 3-trial search on tiny built-in data, with its export.

    ``--ship trial``: the export is the best trial's pruned model even though
    the ridge baseline beats it on this linear data in 6 epochs.

    The built-in model's size is pinned to the article's depth (two hidden
    layers, of ``TINY_UNITS`` units), whose square kernel the tests of sparse
    kernels read. Started at collection (``early``).
    """
    run = early_run(request, "tiny_search")
    root, result = run.root, run.result()
    assert result.returncode == 0, result.stderr[-3000:]
    with open(root / "export" / "manifest.json", encoding="utf-8") as handle:
        manifest = json.load(handle)
    return {"root": root, "result": result, "manifest": manifest,
            "logs": root / "logs", "export": root / "export"}


# Helpers shared by the tests of several stages.

QUICK = ["--n-samples", "300", "--n-features", "20", "--n-informative", "10",
         "--epochs", "2", "--max-trials", "1", "--batch-size", "64"]
CUTS = ("Ideal", "Good", "Fair")


def refusal(result):
    """The one error line of a refused command: exit 2, no traceback, no output."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("tuner_prune")]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith("tuner_prune: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return errors[0]


def small_model(hp):
    from tuner_prune.core._keras import keras

    return keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(64),
                             keras.layers.ReLU(), keras.layers.Dense(1)])


def data(rows=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype("float32")
    return x, (x @ rng.normal(size=6)).astype("float32")


def table_text(rows=40, delimiter=",", trailing=""):
    """A table with an identifier, a text column, a yes/no column, missing
    cells in ``size`` and one row without a target (row 5, file line 7)."""
    lines = [delimiter.join(["id", "cut", "size", "answer", "price"]) + trailing]
    for i in range(rows):
        size = "" if i % 7 == 0 else ("NA" if i % 11 == 0 else f"{(i * 37) % 100 / 10}")
        price = "NaN" if i == 5 else str(2 * i + 1)
        answer = "yes" if i % 2 else "no"
        lines.append(delimiter.join([f"r{i}", CUTS[i % 3], size, answer, price]) + trailing)
    return "\n".join(lines) + "\n"
