"""Distributed search: a real chief and real workers on loopback, and mirrored trials."""

import collections
import json
import os
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, TINY, TINY_UNITS, early, early_run
from tuner_prune.settings import stored_search
from tuner_prune.distributed import distribute

pytestmark = pytest.mark.slow  # Multi-process scenarios: `pytest -m "not slow"` skips them.

# A small model, quick to convert (each trial's size record, the chief's
# export; the article's width converts ten times slower). With many short
# epochs its trials are as long as the article's six: worker0 must not run
# out of trials while worker1 is paused past --worker-timeout.
SMALL = ["--hp", "hidden_layers=2", "--hp", f"units={TINY_UNITS}"]
LONG_TRIALS = ["--epochs", "90"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(tmp_path, tuner_id, port, *extra):
    log = open(tmp_path / f"{tuner_id}.log", "w", encoding="utf-8")
    args = [sys.executable, "-m", "tuner_prune", "search", *TINY, *SMALL,
            "--max-trials", "3", "--directory", str(tmp_path / "logs"),
            "--export-dir", str(tmp_path / "export"),
            "--oracle", f"127.0.0.1:{port}", "--tuner-id", tuner_id, *extra]
    env = {**os.environ, "PYTHONPATH": REPO, "TF_CPP_MIN_LOG_LEVEL": "2"}
    for name in distribute.CHIEF_ENV:
        env.pop(name, None)
    return subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)


def wait_all(processes, timeout=420):
    deadline = time.time() + timeout
    for process in processes:
        try:
            process.wait(max(1, deadline - time.time()))
        except subprocess.TimeoutExpired:
            for other in processes:
                other.kill()
            pytest.fail("distributed search did not finish in time")
    return [process.returncode for process in processes]


def trial_records(tmp_path):
    folder = tmp_path / "logs" / "search"
    return {path.parent.name: json.loads(path.read_text())
            for path in folder.glob("trial_*/trial.json")}


def log_text(tmp_path, tuner_id):
    return (tmp_path / f"{tuner_id}.log").read_text(encoding="utf-8")


def wait_for(predicate, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


def begun(tmp_path, tuner_id):
    """Ids of the trials ``tuner_id`` started, in order (a rerun counts again)."""
    marker = f"[{tuner_id}] Trial "
    return [line.split()[2] for line in log_text(tmp_path, tuner_id).splitlines()
            if line.startswith(marker)]


def training(tmp_path, tuner_id):
    """Whether ``tuner_id``'s latest trial printed an epoch line (one a quarter
    of the trial): it is mid-trial, past its slow first epoch."""
    started = begun(tmp_path, tuner_id)
    return bool(started) and (f"[{tuner_id}] Trial {started[-1]} epoch "
                              in log_text(tmp_path, tuner_id))


def chief_ends(tmp_path):
    """Trial id -> how many times the chief ended it (by a worker or itself)."""
    ends = collections.Counter()
    for line in log_text(tmp_path, "chief").splitlines():
        if " ended by " in line:
            ends[line.split("Trial ")[1].split()[0]] += 1
        elif "stopped responding: trial" in line and line.endswith(" failed"):
            ends[line.split(": trial ")[1].split()[0]] += 1
    return ends


def test_paused_then_killed_worker_never_ends_a_trial_twice(tmp_path):
    """worker1 is paused past --worker-timeout mid-trial and resumed, then
    killed mid-trial; worker0 carries on. Every trial ends once, each record
    scores the weights beside it, and the chief exports."""
    port = free_port()
    chief = start(tmp_path, "chief", port, "--worker-timeout", "6", *LONG_TRIALS)
    workers = [start(tmp_path, f"worker{i}", port, *LONG_TRIALS) for i in range(2)]
    assert wait_for(lambda: begun(tmp_path, "worker1"))
    workers[1].send_signal(signal.SIGSTOP)
    paused = begun(tmp_path, "worker1")[-1]
    assert wait_for(lambda: f"Worker worker1 stopped responding: trial {paused}"
                    in log_text(tmp_path, "chief"))
    workers[1].send_signal(signal.SIGCONT)
    assert wait_for(lambda: f"Trial {paused} dropped" in log_text(tmp_path, "worker1"))
    assert wait_for(lambda: len(begun(tmp_path, "worker1")) > 1), log_text(tmp_path, "worker1")
    workers[1].send_signal(signal.SIGKILL)
    killed = begun(tmp_path, "worker1")[-1]
    assert wait_all([chief, workers[0]]) == [0, 0], log_text(tmp_path, "chief")[-2000:]

    records = trial_records(tmp_path)
    assert sorted(records) == [f"trial_{i}" for i in range(3)]
    assert chief_ends(tmp_path) == {str(i): 1 for i in range(3)}, log_text(tmp_path, "chief")
    for name, record in records.items():
        assert record["status"] == "COMPLETED" or (
            name == f"trial_{killed}" and "stopped responding" in record["message"])
    worker_lines = [line for i in range(2)
                    for line in log_text(tmp_path, f"worker{i}").splitlines()]
    dropped = sum(" dropped: " in line for line in worker_lines)
    ended = sum(line.startswith("  [worker") and " epoch " not in line  # Not progress.
                for line in worker_lines) - dropped
    assert ended == log_text(tmp_path, "chief").count(" ended by ")
    started = len(begun(tmp_path, "worker0")) + len(begun(tmp_path, "worker1"))
    assert started == ended + dropped + 1  # Each run ended, dropped, or killed.
    refused = [line for line in log_text(tmp_path, "chief").splitlines()
               if line.startswith("Refused to ")]
    assert any(f"trial {paused} for worker1" in line for line in refused), refused
    assert "Worker worker1 stopped responding: trial " + killed in log_text(tmp_path, "chief")
    for name, record in records.items():
        if record["status"] == "COMPLETED":
            assert not list((tmp_path / "logs" / "search" / name).glob("*.attempt-*"))
    assert_records_score_their_weights(tmp_path / "logs")
    assert (tmp_path / "export" / "model.tflite").is_file()
    assert "Best trial" in log_text(tmp_path, "chief")


def assert_records_score_their_weights(directory):
    """Rebuilds each completed trial's model as ``PruningTuner.load_model`` does
    and checks that its ``weights.h5`` has the MSE its ``record.json`` reports."""
    from tuner_prune import search
    from tuner_prune.settings import config as config_lib
    from tuner_prune.settings.plan import resolve_search

    stored = stored_search.load_stored(str(directory))
    config = config_lib.SearchConfig.from_dict(
        {**stored["config"], "directory": str(directory), "overwrite": False})
    plan = resolve_search(config)
    tuner, dataset = search.open_tuner(plan, verbose=False), plan.dataset
    x_val, y_val = dataset.scaled("val")
    completed = [t for t in tuner.oracle.trials.values() if t.status == "COMPLETED"]
    assert completed
    for trial in completed:
        predicted = tuner.load_model(trial)(x_val, training=False).numpy().ravel()
        mse = float(np.mean((predicted - y_val) ** 2)) * dataset.y_scale ** 2
        record = json.loads((directory / "search" / f"trial_{trial.trial_id}"
                             / "record.json").read_text())
        assert mse == pytest.approx(record["val_mse"], rel=1e-4), trial.trial_id


# Started at collection, niced (it is read a minute or more into the suite).
early("mirrored_search", lambda root: [
    "search", *TINY, "--epochs", "2", "--max-trials", "1", "--distribution", "mirrored",
    "--directory", root / "logs", "--export-dir", root / "export"], nice=10)


@pytest.fixture
def mirrored_search(request):
    return early_run(request, "mirrored_search")


def test_mirrored_trial_trains_and_exports(mirrored_search):
    result = mirrored_search.result()
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on 2 replicas" in result.stdout
    assert (mirrored_search.root / "export" / "manifest.json").is_file()


@pytest.mark.parametrize("oracle,tuner_id,expected", [
    ("127.0.0.1:8000", "chief", "chief"),
    ("8000", "worker3", "worker"),
    (None, None, "local"),
])
def test_configure_sets_keras_tuner_variables(oracle, tuner_id, expected):
    environ = {}
    assert distribute.configure(oracle, tuner_id, environ) == expected
    if oracle:
        assert environ["KERASTUNER_ORACLE_IP"] == "127.0.0.1"
        assert environ["KERASTUNER_ORACLE_PORT"] == "8000"


@pytest.mark.parametrize("oracle,tuner_id,message", [
    ("host:port", "chief", "HOST:PORT"),
    ("127.0.0.1:8000", None, "KERASTUNER_TUNER_ID"),
])
def test_configure_refuses_incomplete_settings(oracle, tuner_id, message):
    with pytest.raises(ValueError, match=message):
        distribute.configure(oracle, tuner_id, {})


class InProcessChief:
    """A real chief: ``FencedServicer`` over a real oracle on a loopback port,
    with real heartbeat, owner and trial files under ``tmp_path``."""

    def __init__(self, tmp_path, monkeypatch):
        import grpc
        import keras_tuner
        from concurrent import futures
        from tuner_prune.core._kt import protos

        from tuner_prune.distributed import fencing
        from tuner_prune.tuning.oracle import PruningOracle

        self.oracle = PruningOracle(objective=keras_tuner.Objective("val_mse", "min"),
                                    max_trials=3, seed=0)
        self.oracle._set_project_dir(str(tmp_path), "search")
        space = keras_tuner.HyperParameters()
        space.Int("units", 1, 64)
        self.oracle.update_space(space)
        self.project_dir = tmp_path / "search"
        self.oracle.verbose = 0
        self.lines = []
        self.servicer = fencing.FencedServicer(self.oracle, log=self.log)
        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=1))
        protos.get_service_grpc().add_OracleServicer_to_server(self.servicer, self.server)
        port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", str(port))
        self.monkeypatch = monkeypatch

    def log(self, line, flush=False):
        self.lines.append(line)

    def client(self, tuner_id):
        from tuner_prune.distributed import fencing

        self.monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
        return fencing.FencedClient(self.oracle)

    def beat(self, tuner_id):
        path = self.project_dir / distribute.HEARTBEAT_DIR / tuner_id
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("alive")

    def trial_dir(self, trial_id):
        return self.project_dir / f"trial_{trial_id}"

    def write(self, client, name, text):
        """What a worker's run writes: ``name`` under its attempt-private name."""
        from tuner_prune.distributed import fencing

        path = fencing.attempt_path(str(self.trial_dir(client.lease.trial_id) / name),
                                    client.lease.attempt)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)


@pytest.fixture
def chief(tmp_path, monkeypatch):
    served = InProcessChief(tmp_path, monkeypatch)
    yield served
    served.server.stop(grace=None)


def finish(client, trial, val_mse):
    client.update_trial(trial.trial_id, {"val_mse": val_mse})
    trial.status = "COMPLETED"
    client.end_trial(trial)


def test_a_released_attempt_can_neither_end_its_trial_nor_place_its_files(chief):
    from tuner_prune.distributed import fencing

    slow, other = chief.client("worker0"), chief.client("worker1")
    taken = slow.create_trial("worker0")
    second = other.create_trial("worker1")
    chief.write(slow, "weights.h5", "slow run")
    slow.update_trial(taken.trial_id, {"val_mse": 0.5})  # Accepted: it still holds it.
    chief.beat("worker1")
    distribute._search_over(chief.oracle, chief.servicer, str(chief.project_dir), 60,
                            chief.log)  # worker0 has no heartbeat: released.
    assert fencing.read_owner(str(chief.trial_dir(taken.trial_id)))["attempt"] is None

    taken.status = "COMPLETED"
    with pytest.raises(fencing.TrialTaken):
        slow.end_trial(taken)
    assert not fencing.attempt_files(str(chief.trial_dir(taken.trial_id)))
    finish(other, second, 2.0)
    rerun = other.create_trial("worker1")
    assert rerun.trial_id == taken.trial_id and other.lease.attempt != slow.lease.attempt
    assert not chief.oracle.get_trial(taken.trial_id).metrics.exists("val_mse")

    paused = chief.client("worker0")  # An attempt that has not heard yet.
    paused.lease = fencing.Lease("worker0", taken.trial_id, slow.lease.attempt)
    with pytest.raises(fencing.TrialTaken):
        paused.check_lease(str(chief.trial_dir(taken.trial_id)))
    other.check_lease(str(chief.trial_dir(taken.trial_id)))  # Still its own.
    chief.write(slow, "weights.h5", "late write of the slow run")
    chief.write(other, "weights.h5", "accepted run")
    chief.write(other, "record.json", "{}")
    finish(other, rerun, 1.0)

    folder = chief.trial_dir(taken.trial_id)
    assert (folder / "weights.h5").read_text() == "accepted run"
    assert (folder / "record.json").is_file()
    assert not fencing.attempt_files(str(folder))
    assert chief.oracle.end_order == [second.trial_id, taken.trial_id]
    assert chief.oracle.get_trial(taken.trial_id).score == 1.0
    assert [line.split(":")[0] for line in chief.lines if line.startswith("Refused")] == [
        f"Refused to end trial {taken.trial_id} for worker0 (attempt {slow.lease.attempt})",
        f"Refused to continue trial {taken.trial_id} for worker0 "
        f"(attempt {slow.lease.attempt})"]


def test_a_run_stops_at_the_epoch_after_its_trial_was_taken(chief):
    from tuner_prune.distributed import fencing
    from tuner_prune.core._keras import keras
    from tuner_prune.tuning.callbacks import StopWhenTaken

    slow = chief.client("worker0")
    trial = slow.create_trial("worker0")
    distribute._search_over(chief.oracle, chief.servicer, str(chief.project_dir), 60,
                            chief.log)  # No heartbeat: released.
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    epochs = []
    with pytest.raises(fencing.TrialTaken):
        model.fit(np.ones((8, 2)), np.ones(8), epochs=5, verbose=0, callbacks=[
            keras.callbacks.LambdaCallback(on_epoch_end=lambda epoch, logs: epochs.append(epoch)),
            StopWhenTaken(slow, str(chief.trial_dir(trial.trial_id)))])
    assert epochs == [0]


def test_a_worker_stops_when_its_chief_is_gone_between_calls(chief):
    from tuner_prune.distributed import fencing

    chief.client("worker0")  # Sets this worker's id.
    client = fencing.FencedClient(chief.oracle, distribute.chief_stub(1.0))
    trial = client.create_trial("worker0")
    chief.server.stop(grace=None)
    started = time.time()
    with pytest.raises(distribute.ChiefGone, match="within 1 s, .*the chief is gone"):
        client.update_trial(trial.trial_id, {"val_mse": 1.0})
    assert time.time() - started < 30


def test_heartbeat_survives_a_failed_write(tmp_path):
    heartbeat = distribute.Heartbeat(str(tmp_path), "worker0", interval=0.05)
    path = tmp_path / distribute.HEARTBEAT_DIR / "worker0"
    path.mkdir(parents=True)  # Writing the heartbeat now fails.
    with heartbeat:
        assert wait_for(lambda: heartbeat.failures >= 2, timeout=10)
        path.rmdir()
        assert wait_for(path.is_file, timeout=10)
        first = path.stat().st_mtime_ns
        assert wait_for(lambda: path.stat().st_mtime_ns > first, timeout=10)
    assert not path.exists()


def test_a_paused_worker_whose_chief_is_gone_stops_with_one_line(tmp_path):
    """worker0 is paused mid-trial past --worker-timeout and its chief is
    killed meanwhile: resumed, it stops within a bound (keras-tuner would wait
    an hour), with status 1 and one line saying the chief is gone."""
    # The chief gives up on a silent worker after 4 s; the worker on a silent
    # chief after 3 s (the flag is each process's own).
    port = free_port()
    chief = start(tmp_path, "chief", port, "--worker-timeout", "4", "--epochs", "20")
    worker = start(tmp_path, "worker0", port, "--worker-timeout", "3", "--epochs", "20")
    try:
        assert wait_for(lambda: training(tmp_path, "worker0")), log_text(tmp_path, "worker0")
        worker.send_signal(signal.SIGSTOP)
        assert wait_for(lambda: "Worker worker0 stopped responding"
                        in log_text(tmp_path, "chief"), timeout=60)
        chief.kill()
        chief.wait()
        resumed = time.time()
        worker.send_signal(signal.SIGCONT)
        status = worker.wait(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail(f"Expected the worker to stop within 60 s of its chief's end, "
                    f"received a worker still waiting: {log_text(tmp_path, 'worker0')[-1000:]}")
    finally:
        for process in (chief, worker):
            process.kill()
            process.wait()
    text = log_text(tmp_path, "worker0")
    assert status == 1, f"Expected exit status 1, received {status}: {text[-1000:]}"
    assert "the chief is gone" in text.splitlines()[-1], text[-1000:]
    assert "Traceback" not in text, text[-3000:]
    assert time.time() - resumed < 60
