"""Distributed search: a real chief and real workers on loopback, and mirrored trials."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conftest import REPO, TINY, run_cli
from tuner_prune import distribute


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(tmp_path, tuner_id, port, *extra):
    log = open(tmp_path / f"{tuner_id}.log", "w", encoding="utf-8")
    args = [sys.executable, "-m", "tuner_prune", "search", *TINY, "--max-trials", "4",
            "--directory", str(tmp_path / "logs"), "--export-dir", str(tmp_path / "export"),
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
        time.sleep(0.5)
    return False


def test_chief_and_two_workers_run_every_trial_once(tmp_path):
    port = free_port()
    chief = start(tmp_path, "chief", port)
    workers = [start(tmp_path, f"worker{i}", port) for i in range(2)]
    assert wait_all([chief, *workers]) == [0, 0, 0], log_text(tmp_path, "chief")[-2000:]
    records = trial_records(tmp_path)
    assert sorted(records) == [f"trial_{i}" for i in range(4)]
    assert all(r["status"] == "COMPLETED" for r in records.values())
    started = [line.split("]")[0] for name in ("worker0", "worker1")
               for line in log_text(tmp_path, name).splitlines()
               if "] Trial " in line and " of 4)" in line]
    assert len(started) == 4  # each trial ran exactly once
    assert {"[worker0", "[worker1"} == set(started)
    assert (tmp_path / "export" / "model.tflite").is_file()
    assert "Best trial" in log_text(tmp_path, "chief")


def test_search_finishes_when_a_worker_is_killed_mid_trial(tmp_path):
    port = free_port()
    chief = start(tmp_path, "chief", port, "--worker-timeout", "6")
    workers = [start(tmp_path, f"worker{i}", port) for i in range(2)]
    assert wait_for(lambda: "[worker1] Trial" in log_text(tmp_path, "worker1"))
    workers[1].send_signal(signal.SIGKILL)
    killed_line = [line for line in log_text(tmp_path, "worker1").splitlines()
                   if "[worker1] Trial" in line][-1]
    killed_trial = "trial_" + killed_line.split("Trial ")[1].split()[0]
    assert wait_all([chief, workers[0]]) == [0, 0], log_text(tmp_path, "chief")[-2000:]
    records = trial_records(tmp_path)
    assert len(records) == 4
    assert all(r["status"] in ("COMPLETED", "FAILED") for r in records.values())
    outcome = records[killed_trial]
    if outcome["status"] == "FAILED":
        assert "stopped responding" in outcome["message"]
    assert "Worker worker1 stopped responding" in log_text(tmp_path, "chief")


def test_mirrored_trial_trains_and_exports(tmp_path):
    result = run_cli("search", *TINY, "--max-trials", "1", "--distribution", "mirrored",
                     "--directory", str(tmp_path / "logs"),
                     "--export-dir", str(tmp_path / "export"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on 2 replicas" in result.stdout
    assert (tmp_path / "export" / "manifest.json").is_file()


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
