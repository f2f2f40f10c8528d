"""Every check of user input raises ``InputError`` (exit 2); in-process, no training.

The CLI maps ``InputError`` alone to exit status 2 (tests/test_bad_input.py runs
it); any other exception exits 1 (tests/test_resume.py runs one).
"""

import math

import pytest

from tuner_prune import config as config_lib, distribute, models, report, search, space
from tuner_prune.data import DataError
from tuner_prune.errors import InputError
from tuner_prune.sweep import SweepConfig


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

