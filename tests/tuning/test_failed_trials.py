"""Failed trials through the CLI (in this process): recorded with the reason, never the best."""

import json
import os

import pytest

from conftest import REPO, TINY, run_main

MODELS_ENV = {"PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")])}


def search(tmp_path, model, max_trials, seed):
    return run_main("search", *TINY, "--seed", str(seed), "--max-trials", str(max_trials),
                    "--model", f"fault_models:{model}", "--directory", str(tmp_path / "logs"),
                    "--export-dir", str(tmp_path / "export"), env=MODELS_ENV)


@pytest.mark.slow
def test_builder_error_and_nan_loss_fail_their_trials_and_the_search_goes_on(tmp_path):
    # With seed 3 the oracle draws begin_step % 3 = 0 (the default point), 2, 1
    # (see fault_models.flaky).
    result = search(tmp_path, "flaky", max_trials=3, seed=3)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    records = [json.loads(path.read_text())
               for path in sorted((tmp_path / "logs" / "search").glob("trial_*/record.json"))]
    kinds = {}
    for record in records:
        kind = record["hyperparameters"]["begin_step"] % 3
        kinds[kind] = record
        if kind == 0:
            assert record["status"] == "COMPLETED", record
        else:
            expected = "builder failed on purpose" if kind == 1 else "loss became nan"
            assert record["status"] == "FAILED" and expected in record["reason"], record
    assert sorted(kinds) == [0, 1, 2], "the seed no longer draws every kind of trial"
    out = result.stdout
    assert out.count("FAILED: ") == 2 and "builder failed on purpose" in out
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["trial_id"] == kinds[0]["trial_id"]
    assert manifest["completed_trials"] == 1


def test_every_trial_failing_exits_non_zero_and_says_why(tmp_path):
    result = search(tmp_path, "broken", max_trials=2, seed=1)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("tuner_prune")]
    assert errors == ["tuner_prune: error: Expected a completed trial to export, received 2 "
                      "failed trials and no completed one: RuntimeError: builder failed on "
                      "purpose"], result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "export").exists()
    assert not [name for name in os.listdir(tmp_path) if name.startswith(".")]


TWO_LINES = '''
def two_lines(hp):
    raise RuntimeError("boom in builder\\nsecond line")
'''


def test_a_failure_shows_its_first_line_with_its_type_and_records_all_of_it(tmp_path):
    (tmp_path / "two_line_model.py").write_text(TWO_LINES)  # A module of its own name.
    result = run_main("search", *TINY, "--max-trials", "1", "--model",
                      "two_line_model:two_lines", "--directory", str(tmp_path / "logs"),
                      "--export-dir", str(tmp_path / "export"),
                      env={"PYTHONPATH": os.pathsep.join([REPO, str(tmp_path)])})
    assert result.returncode == 1, result.stderr[-3000:]
    assert "FAILED: RuntimeError: boom in builder" in result.stdout, result.stdout
    assert "second line" not in result.stdout + result.stderr
    assert result.stderr.endswith("no completed one: RuntimeError: boom in builder\n")
    record, = (tmp_path / "logs" / "search").glob("trial_*/record.json")
    assert json.loads(record.read_text())["reason"] == ("RuntimeError: boom in builder\n"
                                                        "second line")


IN_TRAINING = '''
from tuner_prune.core._keras import keras


class FailsInTraining(keras.layers.Layer):
    def get_prunable_weights(self):
        return []

    def call(self, inputs, training=None):
        if training:
            raise ValueError("wrong in the training step on purpose")
        return inputs


def fails_in_training(hp):
    return keras.Sequential([keras.Input(shape=(20,)), FailsInTraining(),
                             keras.layers.Dense(8), keras.layers.Dense(1)])
'''


def test_a_failure_inside_the_training_step_shows_what_went_wrong(tmp_path):
    (tmp_path / "in_training_model.py").write_text(IN_TRAINING)
    result = run_main("search", *TINY, "--max-trials", "1", "--model",
                      "in_training_model:fails_in_training", "--directory",
                      str(tmp_path / "logs"), "--export-dir", str(tmp_path / "export"),
                      env={"PYTHONPATH": os.pathsep.join([REPO, str(tmp_path)])})
    assert result.returncode == 1, result.stderr[-3000:]
    expected = "ValueError: wrong in the training step on purpose"
    assert f"FAILED: {expected}\n" in result.stdout, result.stdout
    assert result.stderr.endswith(f"no completed one: {expected}\n"), result.stderr[-3000:]
    record, = (tmp_path / "logs" / "search").glob("trial_*/record.json")
    assert "in user code:" in json.loads(record.read_text())["reason"]
