"""Resuming after kill -9: real CLI searches killed at chosen moments, then resumed.

One search is killed during a trial, then between trials, then during its
export; the same command resumes it each time, and at the end it is continued
with a higher --max-trials. Every run is checked against the trial records
found on disk after the previous kill. A finished search on a CSV is then
resumed with changed data and exported with a changed model.
"""

import json
import os
import shutil
import signal
import time

import keras_tuner
import pytest
from conftest import REPO, TINY, run_cli, run_main, start_cli

from tuner_prune.tuning import oracle as oracle_lib
from tuner_prune.core import _kt
from tuner_prune.store import resume

MODELS_ENV = {"PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")])}
# Two epochs: a kill needs the process inside a trial, not a long one.
SEARCH = ["search", *TINY, "--epochs", "2", "--model", "fault_models:small",
          "--directory", "logs", "--export-dir", "export"]
KILL_TIMEOUT = 300


def trials(root):
    """``{trial_id: what must never change once the trial completed}``."""
    found = {}
    for folder in sorted((root / "logs" / "search").glob("trial_*")):
        state = json.loads((folder / "trial.json").read_text())
        weights = folder / "weights.h5"
        found[state["trial_id"]] = {
            "status": state["status"], "score": state["score"],
            "hyperparameters": state["hyperparameters"]["values"],
            "record": (folder / "record.json").read_text()
            if (folder / "record.json").exists() else None,
            "weights": weights.stat().st_mtime_ns if weights.exists() else None,
        }
    return found


def completed(found):
    return {k: v for k, v in found.items() if v["status"] == "COMPLETED"}


def status(root, trial_id):
    path = root / "logs" / "search" / f"trial_{trial_id}" / "trial.json"
    return json.loads(path.read_text())["status"] if path.exists() else None


def partial_exports(root):
    return [name for name in os.listdir(root) if name.startswith(".export.partial-")]


def kill_when(root, ready, *extra):
    """Runs the search and SIGKILLs it as soon as ``ready()`` holds."""
    with open(root / "killed.log", "a") as log:
        process = start_cli(*SEARCH, *extra, cwd=root, log=log, env=MODELS_ENV)
        try:
            deadline = time.monotonic() + KILL_TIMEOUT
            while not ready():
                assert process.poll() is None, "the search ended before it could be killed"
                assert time.monotonic() < deadline, "the moment to kill never came"
                time.sleep(0.02)
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait()


def manifest(root):
    path = root / "export" / "manifest.json"
    return json.loads(path.read_text()) if path.exists() else None


@pytest.fixture(scope="module")
def killed_search(tmp_path_factory):
    """Snapshots of one search across its kills and resumes."""
    root = tmp_path_factory.mktemp("killed")
    seen = {}
    kill_when(root, lambda: status(root, 1) == "RUNNING", "--max-trials", "3")
    seen["during_trial"] = trials(root)
    seen["export"] = run_main("export", "--directory", "logs", "--export-dir", "export",
                              cwd=root, env=MODELS_ENV)
    seen["export_manifest"] = manifest(root)
    kill_when(root, lambda: status(root, 1) == "COMPLETED", "--max-trials", "3")
    seen["between_trials"] = trials(root)
    kill_when(root, lambda: partial_exports(root), "--max-trials", "3")
    seen["during_export"] = trials(root)
    seen["export_after_kill"] = manifest(root)
    seen["partial_after_kill"] = partial_exports(root)
    seen["raised"] = run_cli(*SEARCH, "--max-trials", "4", cwd=root, env=MODELS_ENV)
    seen["raised_trials"] = trials(root)
    seen["raised_manifest"] = manifest(root)
    seen["partial_exports"] = partial_exports(root)
    return seen


@pytest.mark.slow
def test_kill_during_a_trial_keeps_completed_ones_and_export_works(killed_search):
    first = killed_search["during_trial"]
    assert first["0"]["status"] == "COMPLETED" and first["1"]["status"] == "RUNNING"
    result = killed_search["export"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert killed_search["export_manifest"]["trial_id"] == "0"
    assert killed_search["export_manifest"]["completed_trials"] == 1


@pytest.mark.slow
def test_the_interrupted_trial_runs_again_with_its_hyperparameters(killed_search):
    first, second = killed_search["during_trial"], killed_search["between_trials"]
    assert second["0"] == first["0"]
    assert second["1"]["status"] == "COMPLETED"
    assert second["1"]["hyperparameters"] == first["1"]["hyperparameters"]
    assert set(completed(second)) == {"0", "1"}


@pytest.mark.slow
def test_kill_during_export_keeps_trials_and_the_previous_export(killed_search):
    before, after = killed_search["between_trials"], killed_search["during_export"]
    assert {k: after[k] for k in completed(before)} == completed(before)
    assert after["2"]["status"] == "COMPLETED"
    assert killed_search["partial_after_kill"], "the kill did not land during the export"
    assert killed_search["export_after_kill"] == killed_search["export_manifest"]


@pytest.mark.slow
def test_raising_max_trials_continues_a_finished_search(killed_search):
    finished, raised = killed_search["during_export"], killed_search["raised_trials"]
    assert len(completed(finished)) == 3  # --max-trials 3 reached before the kill.
    result = killed_search["raised"]
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Trial 3 " in result.stdout and "Trial 2 " not in result.stdout
    assert {k: raised[k] for k in finished} == finished
    assert len(completed(raised)) == 4
    assert killed_search["raised_manifest"]["completed_trials"] == 4
    assert killed_search["partial_exports"] == []  # The killed export's are removed.


@pytest.mark.slow
def test_a_resumed_search_prints_nothing_on_stderr_nor_keras_tuners_reload(killed_search):
    result = killed_search["raised"]
    assert result.stderr == ""
    assert "Resuming the search" in result.stdout
    assert "Reloading Tuner" not in result.stdout


# The moments between keras-tuner's own writes are too short to hit with a kill;
# here the files are left exactly as a kill at that moment leaves them.

def new_oracle(directory):
    oracle = oracle_lib.PruningOracle(objective=keras_tuner.Objective("val_mse", "min"),
                                      max_trials=5, seed=0)
    oracle._set_project_dir(str(directory), "search")
    space = keras_tuner.HyperParameters()
    space.Float("x", 0.0, 1.0)
    oracle.update_space(space)
    return oracle


def reloaded(directory):
    oracle = new_oracle(directory)
    oracle.reload()
    return oracle, resume.requeue_interrupted(oracle)


def test_trial_saved_as_started_but_not_in_oracle_state_runs_again(tmp_path):
    oracle = new_oracle(tmp_path)
    oracle.save()
    state = (tmp_path / "search" / "oracle.json").read_text()
    started = oracle.create_trial("tuner0")
    (tmp_path / "search" / "oracle.json").write_text(state)  # Killed before saving it.
    oracle, queued = reloaded(tmp_path)
    assert queued == [started.trial_id]
    again = oracle.create_trial("tuner0")
    assert again.trial_id == started.trial_id
    assert again.hyperparameters.values == started.hyperparameters.values


def test_trial_saved_as_completed_but_still_ongoing_is_not_run_again(tmp_path):
    oracle = new_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_mse": 0.5})
    trial.status = "COMPLETED"
    oracle.score_trial(trial)
    _kt.save_trial(oracle, trial)  # end_trial's first write; killed before the second.
    oracle, queued = reloaded(tmp_path)
    assert queued == []
    assert oracle.get_best_trials(1)[0].score == 0.5
    assert oracle.create_trial("tuner0").trial_id != trial.trial_id


def test_an_interrupted_trial_forgets_the_metrics_of_its_killed_run(tmp_path):
    oracle = new_oracle(tmp_path)
    trial = oracle.create_trial("tuner0")
    oracle.update_trial(trial.trial_id, {"val_mse": 0.9})  # Killed after reporting.
    oracle, queued = reloaded(tmp_path)
    again = oracle.create_trial("tuner0")
    oracle.update_trial(again.trial_id, {"val_mse": 0.1})
    again.status = "COMPLETED"
    oracle.end_trial(again)
    assert queued == [trial.trial_id]
    assert oracle.get_trial(trial.trial_id).score == pytest.approx(0.1)


# One short search on a tiny CSV; the runs after it fail before training.

CSV = "a,b,c,y\n" + "".join(f"{i},{(7 * i) % 11},{(5 * i) % 13},{2 * i + i % 3}\n"
                            for i in range(100))
CSV_SEARCH = ["search", "--data", "d.csv", "--epochs", "2", "--batch-size", "16",
              "--max-trials", "1", "--model", "fault_models:sized", "--directory", "logs",
              "--export-dir", "export"]
NO_DEBUG = {**MODELS_ENV, "TUNER_PRUNE_DEBUG": ""}


@pytest.fixture(scope="module")
def csv_search(tmp_path_factory):
    """A finished one-trial search on a CSV, with a model 8 units wide."""
    root = tmp_path_factory.mktemp("csv_search")
    (root / "d.csv").write_text(CSV)
    result = run_main(*CSV_SEARCH, cwd=root, env=MODELS_ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    return root


def snapshot(folder):
    return {str(path): path.read_bytes() if path.is_file() else None
            for path in sorted(folder.rglob("*"))}


def error_lines(result):
    return [line for line in result.stderr.splitlines() if line.startswith("tuner_prune")]


def test_resume_after_swapping_two_csv_columns_is_refused(csv_search, tmp_path):
    work = tmp_path / "work"
    shutil.copytree(csv_search, work)
    rows = [line.split(",") for line in CSV.splitlines()]
    (work / "d.csv").write_text("".join(f"{b},{a},{c},{y}\n" for a, b, c, y in rows))
    before = snapshot(work)
    result = run_cli(*CSV_SEARCH, cwd=work, env=NO_DEBUG)
    assert result.returncode == 2, result.stderr[-3000:]
    assert error_lines(result) == [
        "tuner_prune: error: logs: Expected the settings and data of the search stored "
        "there, received data with columns b, a, c, y (the search has a, b, c, y). Run it "
        "with its own settings to resume it, or add --overwrite to start over."]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert snapshot(work) == before


def test_an_error_after_the_input_checks_exits_1_in_one_line(csv_search):
    # The builder now makes 16 units: the trial's stored weights no longer load.
    result = run_main("export", "--directory", "logs", "--export-dir", "export_16",
                      "--ship", "trial", cwd=csv_search, env={**NO_DEBUG, "FAULT_MODELS_WIDTH": "16"})
    assert result.returncode == 1, result.stderr[-3000:]
    errors = error_lines(result)
    assert len(errors) == 1 and errors[0].startswith("tuner_prune: error: ValueError: "), (
        result.stderr[-3000:])
    assert "Traceback" not in result.stderr
    assert not (csv_search / "export_16").exists()


def test_debug_prints_the_traceback_of_an_internal_error(csv_search):
    # A damaged state file is refused (exit 2); weights that no longer fit are not.
    result = run_main("export", "--directory", "logs", "--export-dir", "export_16",
                      "--ship", "trial", cwd=csv_search, env={**MODELS_ENV, "TUNER_PRUNE_DEBUG": "1",
                                           "FAULT_MODELS_WIDTH": "16"})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback (most recent call last)" in result.stderr
    assert result.stderr.splitlines()[-1].startswith(
        "tuner_prune: error: ValueError: "), result.stderr[-3000:]
