"""records: the trial records and the layout of a search, as the tuner writes them."""

import json
import os
import subprocess
import sys

import keras_tuner
import pytest

from conftest import cli_env
from conftest import small_model
from tuner_prune.settings import stored_search
from tuner_prune.core import _kt
from tuner_prune.settings import config as config_lib
from tuner_prune.store import records
from tuner_prune.core._kt import Trial, TrialStatus
from tuner_prune.core.errors import InputError
from tuner_prune.tuning.hypermodel import PruningHyperModel
from tuner_prune.tuning.trial_runner import TrialFiles
from tuner_prune.tuning.tuner import PruningTuner

SCHEDULE = {"final_sparsity": 0.75, "power": 3.0, "begin_step": 6, "end_step": 18}
FIGURES = {"val_mse": 0.25, "score": 0.25, "sparsity": 0.74, "nonzero_weights": 120,
           "tflite_bytes": 2048, "macs": 96, "dense_macs": 384, "arena_bytes": 4000}


def open_tuner(directory):
    hypermodel = PruningHyperModel(small_model, n_features=6, epochs=4, steps_per_epoch=6)
    return PruningTuner(hypermodel, max_trials=2, directory=str(directory), verbose=False)


def end_trial(tuner, trial_id, status, record):
    """Saves a trial as the oracle does and its record as the tuner does."""
    hp = keras_tuner.HyperParameters()
    for name, value in SCHEDULE.items():
        hp.Fixed(name, value)
    trial = Trial(hp, trial_id=trial_id, status=status)
    _kt.save_trial(tuner.oracle, trial)
    TrialFiles(tuner.oracle, tuner.get_trial_dir).write_record(
        trial, {"status": status, **record})


def test_the_status_names_are_keras_tuners():
    for name in ("RUNNING", "IDLE", "INVALID", "STOPPED", "COMPLETED", "FAILED"):
        assert getattr(records, name) == getattr(TrialStatus, name)


def test_the_layout_is_the_one_keras_tuner_writes(tmp_path):
    tuner = open_tuner(tmp_path)
    project = records.project_dir(str(tmp_path))
    assert tuner.project_dir == project
    assert tuner.get_trial_dir("7") == records.trial_dir(project, "7")
    assert tuner.oracle._get_oracle_fname() == os.path.join(project, records.ORACLE_FILE)
    assert tuner.tensorboard_dir == records.tensorboard_dir(str(tmp_path))


def test_a_record_written_by_the_tuner_is_read_back(tmp_path):
    tuner = open_tuner(tmp_path)
    end_trial(tuner, "0", TrialStatus.COMPLETED, {"best_epoch": 3, **FIGURES})
    end_trial(tuner, "1", TrialStatus.FAILED, {"reason": "no finite validation MSE"})
    folder = records.trial_dir(records.project_dir(str(tmp_path)), "1")
    with open(os.path.join(folder, records.RECORD_FILE), encoding="utf-8") as handle:
        assert json.load(handle) == {"trial_id": "1", "hyperparameters": SCHEDULE,
                                     "status": "FAILED",
                                     "reason": "no finite validation MSE"}
    rows = records.read_trials(str(tmp_path))
    assert [list(row) for row in rows] == [list(records.FIELDS)] * 2
    assert rows[0] == {"trial_id": "0", "status": "COMPLETED", **SCHEDULE, **FIGURES}
    assert rows[1] == {"trial_id": "1", "status": "FAILED", **SCHEDULE,
                       **dict.fromkeys(records.RECORDED)}
    assert records.best_trial_id(rows) == "0"
    assert records.best_trial_id(rows, max_bytes=2047) is None
    assert records.best_trial_id(rows, max_ram=3999) is None


def test_a_folder_without_trials_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="Expected a search in .*, received a folder "
                                         "with no trials"):
        records.read_trials(str(tmp_path))


def test_report_reads_a_search_without_tensorflow(tmp_path):
    end_trial(open_tuner(tmp_path), "0", TrialStatus.COMPLETED, FIGURES)
    stored_search.store(config_lib.SearchConfig(directory=str(tmp_path)), {})  # Its settings.
    script = ("import sys\n"
              "from tuner_prune import cli\n"
              f"status = cli.main(['report', '--directory', {str(tmp_path)!r}, "
              "'--format', 'json'])\n"
              "assert status == 0, status\n"
              "loaded = {'tensorflow', 'keras_tuner', 'tf_keras'} & set(sys.modules)\n"
              "assert not loaded, loaded\n")
    result = subprocess.run([sys.executable, "-c", script], capture_output=True,
                            text=True, timeout=120, env=cli_env())
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout)["best"] == "0"
