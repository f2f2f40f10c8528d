"""A trial's training length follows from the table's rows unless given (no training)."""

import json

import pytest

from tuner_prune.settings import stored_search
from tuner_prune.space import models, schedule, training
from tuner_prune.settings.config import SearchConfig
from tuner_prune.settings.plan import resolve_search


@pytest.mark.parametrize("rows, batch", [(100, 16), (354, 16), (800, 32), (2400, 128),
                                         (8000, 256), (400_000, 256)])
def test_the_batch_follows_the_rows(rows, batch):
    assert training.batch_size(rows) == batch
    # A small table takes at least 16 steps an epoch, never one.
    assert schedule.steps_per_epoch(rows, batch) >= min(16, rows // training.BATCH_SIZES[0])


@pytest.mark.parametrize("rows", [50, 354, 800, 2400, 8000, 40_000, 400_000])
def test_the_epochs_spend_the_step_budget_within_bounds(rows):
    batch = training.batch_size(rows)
    epochs = training.epochs(rows, batch)
    steps = epochs * schedule.steps_per_epoch(rows, batch)
    assert training.EPOCHS[0] <= epochs <= training.EPOCHS[1]
    if training.EPOCHS[0] < epochs < training.EPOCHS[1]:
        per_epoch = schedule.steps_per_epoch(rows, batch)
        assert training.STEP_BUDGET <= steps < training.STEP_BUDGET + per_epoch


def test_given_flags_are_kept_and_the_other_derived_from_them():
    assert training.training_length(8000, 30, 64) == (30, 64)
    assert training.training_length(8000, None, 64) == (training.epochs(8000, 64), 64)
    assert training.training_length(8000, 7, None) == (7, 256)
    assert training.training_length(8000, article=True) == (80, 1024)
    assert training.training_length(8000, None, 32, article=True) == (80, 32)


def csv_table(tmp_path, rows):
    path = tmp_path / "table.csv"
    lines = [f"{i % 13},{(i * 7) % 11},{i % 5 + 0.5 * (i % 3)}" for i in range(rows)]
    path.write_text("a,b,y\n" + "\n".join(lines) + "\n")
    return str(path)


def test_a_thousand_row_table_takes_many_steps_an_epoch(tmp_path):
    """The article's batch of 1,024 made one epoch of 800 rows one step."""
    plan = resolve_search(SearchConfig(data=csv_table(tmp_path, 1000),
                                       directory=str(tmp_path / "logs"),
                                       export_dir=str(tmp_path / "export")))
    assert len(plan.dataset.x_train) == 800
    assert (plan.config.batch_size, plan.steps_per_epoch) == (32, 25)
    assert plan.config.epochs == 60 and plan.total_steps == 1500
    # The schedule's step ranges are those of the derived length.
    latest_end = schedule.max_end_step(1500, 25)
    assert plan.space.end_step.high == latest_end
    assert plan.space.begin_step.high < plan.space.end_step.low


def test_explicit_flags_override_the_derived_length(tmp_path):
    plan = resolve_search(SearchConfig(data=csv_table(tmp_path, 1000), epochs=5,
                                       batch_size=1024, directory=str(tmp_path / "logs"),
                                       export_dir=str(tmp_path / "export")))
    assert (plan.config.epochs, plan.config.batch_size, plan.total_steps) == (5, 1024, 5)


@pytest.mark.parametrize("features, widest", [(1, 64), (10, 64), (49, 64), (200, 32),
                                              (1000, 8), (100_000, 8)])
def test_the_widest_layer_follows_the_features(features, widest):
    """A table's deepest model stays under MAX_WEIGHTS: no 2 x 1,024 MLP by default."""
    assert models.widest_units(features) == widest
    if widest > models.UNITS[0]:
        assert models.weights(features, 2, widest) <= models.MAX_WEIGHTS
    assert models.weights(features, 2, 2 * widest) > models.MAX_WEIGHTS


def test_weights_count_kernels_and_biases():
    assert models.weights(10, 0, 64) == 11
    assert models.weights(10, 1, 64) == 10 * 64 + 64 + 64 + 1
    assert models.weights(10, 2, 64) == 10 * 64 + 64 + 64 * 64 + 64 + 64 + 1


def plan_of(tmp_path, rows=200, **settings):
    return resolve_search(SearchConfig(data=csv_table(tmp_path, rows),
                                       directory=str(tmp_path / "logs"),
                                       export_dir=str(tmp_path / "export"), **settings))


def test_the_plan_bounds_the_built_in_width_unless_hp_or_model_sets_it(tmp_path):
    assert plan_of(tmp_path).config.widest_units == 64  # Two features.
    assert plan_of(tmp_path, hp=["units=8:1024"]).config.widest_units is None
    assert plan_of(tmp_path, article=True).config.widest_units is None
    assert plan_of(tmp_path, hp=["hidden_layers=1"]).config.widest_units == 64


def test_a_search_stored_before_the_bound_resumes_in_its_own_space(tmp_path):
    """An earlier tuner_prune stored no widest_units: its space went up to 1,024."""
    plan = plan_of(tmp_path)
    stored_search.store(plan.config, plan.dataset.fingerprint())
    path = tmp_path / "logs" / stored_search.CONFIG_FILE
    assert json.loads(path.read_text())["config"]["widest_units"] == 64
    assert plan_of(tmp_path).config.widest_units == 64
    stored = json.loads(path.read_text())
    del stored["config"]["widest_units"]
    path.write_text(json.dumps(stored))
    resumed = plan_of(tmp_path).config.widest_units
    assert resumed is None and models.size_bounds(widest=resumed)[1] == (8, 1024)
    assert plan_of(tmp_path, overwrite=True).config.widest_units == 64
    # A search stored with another width (a rule changed since) keeps its own.
    stored["config"]["widest_units"] = 16
    path.write_text(json.dumps(stored))
    assert plan_of(tmp_path).config.widest_units == 16
