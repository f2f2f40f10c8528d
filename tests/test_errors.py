"""Every check of user input raises ``InputError`` (exit 2); in-process, no training.

The CLI maps ``InputError`` alone to exit status 2 (tests/test_bad_input.py runs
it); any other exception exits 1 (tests/store/test_resume.py runs one).
"""

import math

import pytest
import tf_keras as keras

import fault_models
from tuner_prune import search
from tuner_prune.distributed import distribute
from tuner_prune.reporting import report
from tuner_prune.settings import config as config_lib
from tuner_prune.space import models, bounds as space
from tuner_prune.data.dataset import DataError
from tuner_prune.core.errors import InputError
from tuner_prune.tuning.hypermodel import PruningHyperModel
from tuner_prune.reporting.sweep import SweepConfig


def test_data_and_builder_errors_are_input_errors():
    assert issubclass(DataError, InputError) and issubclass(models.BuilderError, InputError)


@pytest.mark.parametrize("oracle,tuner_id,message", [
    ("host:port", "chief", "Expected --oracle HOST:PORT, received 'host:port'"),
    ("8000", None, "Expected all of KERASTUNER_TUNER_ID, .* received none for "
                   "KERASTUNER_TUNER_ID"),
])
def test_distributed_flags_are_input_errors(oracle, tuner_id, message):
    with pytest.raises(InputError, match=message):
        distribute.configure(oracle, tuner_id, environ={})


def test_report_and_export_of_a_folder_without_a_search_are_input_errors(tmp_path):
    with pytest.raises(InputError, match="Expected a search in"):
        report.load_trials(str(tmp_path))
    with pytest.raises(InputError, match="Expected --directory to hold a search"):
        search.export_search(str(tmp_path), str(tmp_path / "export"))
    assert list(tmp_path.iterdir()) == []


def test_a_plot_without_measured_trials_is_an_input_error(tmp_path):
    rows = [{"status": "FAILED", "val_mse": None, "tflite_bytes": None, "pareto": False}]
    with pytest.raises(InputError, match="--plot .*: Expected completed trials"):
        report.plot(rows, str(tmp_path / "front.png"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("make", [
    lambda: space.parse_bound("nan", "power"),
    lambda: space.ScheduleSpace.from_text(power="inf"),
    lambda: config_lib.SearchConfig(worker_timeout=math.nan),
    lambda: config_lib.SearchConfig(noise=math.nan),
    lambda: config_lib.SearchConfig.from_dict({"colour": "red"}),
    lambda: SweepConfig(power=math.nan),
    lambda: SweepConfig(sparsities=(0.5, 1.0)),
])
def test_non_finite_and_unknown_settings_are_input_errors(make):
    with pytest.raises(InputError, match="Expected"):
        make()


def hypermodel(builder):
    return PruningHyperModel(builder, n_features=5, epochs=4, steps_per_epoch=10)


def test_a_model_predicting_three_values_per_row_is_refused():
    with pytest.raises(models.BuilderError, match=r"--model m:f: Expected a model with one "
                       r"output of one value per row, .* received one with output shape "
                       r"\(None, 3\)\.$"):
        search.check_builder(hypermodel(fault_models.three_values), "m:f")


@pytest.mark.parametrize("last", [keras.layers.Dense(1), keras.layers.Reshape(())],
                         ids=["(None, 1)", "(None,)"])
def test_a_model_predicting_one_value_per_row_is_accepted(last):
    def build(hp):
        return keras.Sequential([keras.Input(shape=(5,)), keras.layers.Dense(1), last])

    search.check_builder(hypermodel(build), "m:f")
