"""Search-space bounds from the training length, without training."""

import keras_tuner
import pytest

from tuner_prune.space import schedule
from tuner_prune.space.bounds import Bound, ScheduleSpace, parse_bound, parse_hyperparameters


def test_defaults_fit_inside_training_length():
    space = ScheduleSpace().resolve(total_steps=640, steps_per_epoch=8)
    latest = schedule.max_end_step(640, 8)
    assert space.end_step.high == latest <= 640
    assert space.begin_step.low == 0
    assert space.begin_step.high < space.end_step.low
    assert 0 <= space.final_sparsity.low < space.final_sparsity.high < 1


def test_parse_value_and_range():
    assert parse_bound("0.9", "final_sparsity") == Bound(0.9, 0.9)
    assert parse_bound("0.8:0.95", "final_sparsity") == Bound(0.8, 0.95)
    assert parse_bound("10:40", "begin_step", integer=True) == Bound(10, 40)
    with pytest.raises(ValueError, match="LO <= HI"):
        parse_bound("0.9:0.5", "final_sparsity")
    with pytest.raises(ValueError, match="integer"):
        parse_bound("1.5", "begin_step", integer=True)
    with pytest.raises(ValueError, match="begin_step"):
        parse_bound("a:b:c", "begin_step", integer=True)


@pytest.mark.parametrize("texts,message", [
    (dict(end_step="5000"), r"end_step <= 1440 .*1600 steps.*5000"),
    (dict(final_sparsity="1.0"), r"final_sparsity in \[0, 1\)"),
    (dict(begin_step="300", end_step="200"), "begin_step < end_step"),
    (dict(begin_step="0:500", end_step="400:800"), "begin_step < end_step"),
    (dict(power="0"), "power > 0"),
])
def test_impossible_settings_are_refused(texts, message):
    with pytest.raises(ValueError, match=message):
        ScheduleSpace.from_text(**texts).resolve(total_steps=1600, steps_per_epoch=8)


def test_fixing_one_value_moves_the_other_default():
    space = ScheduleSpace.from_text(begin_step="1000").resolve(1600, 8)
    assert space.begin_step == Bound(1000, 1000)
    assert space.end_step.low > 1000
    space = ScheduleSpace.from_text(end_step="100").resolve(1600, 8)
    assert space.begin_step.high < 100


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="initial_sparsity"):
        ScheduleSpace.from_text(initial_sparsity="0.1")


def test_frequency_is_bounded_only_when_asked_and_by_the_longest_span():
    assert ScheduleSpace().resolve(640, 8).frequency is None
    space = ScheduleSpace.from_text(frequency="1:10").resolve(640, 8)
    assert space.frequency == Bound(1, 10)
    with pytest.raises(ValueError, match=r"Expected frequency in \[1, 20\].*received 21"):
        ScheduleSpace.from_text(begin_step="10", end_step="30", frequency="21").resolve(
            640, 8)
    with pytest.raises(ValueError, match="frequency to be an integer"):
        ScheduleSpace.from_text(frequency="2.5")


def test_hp_settings_parse_to_values_and_bounds():
    settings = parse_hyperparameters(["kernel_initializer=he_normal", "units=64:256",
                                      "learning_rate=1e-4:1e-2", "dropout=0.5",
                                      "batch_norm=true"])
    assert settings == {"kernel_initializer": "he_normal", "units": Bound(64, 256),
                        "learning_rate": Bound(1e-4, 1e-2), "dropout": 0.5,
                        "batch_norm": True}
    assert isinstance(settings["units"].low, int)
    assert parse_hyperparameters(None) == {}


@pytest.mark.parametrize("texts,message", [
    (["units"], r"Expected --hp NAME=VALUE or NAME=LO:HI, received 'units'"),
    (["=3"], "NAME=VALUE"),
    (["units=1", "units=2"], "received 'units' twice"),
    (["rate=nan"], "finite"),
    (["units=9:3"], "LO <= HI"),
])
def test_bad_hp_settings_are_refused(texts, message):
    with pytest.raises(ValueError, match=message):
        parse_hyperparameters(texts)


def test_hypermodel_declares_the_four_hyperparameters():
    from tuner_prune.tuning.hypermodel import PruningHyperModel

    hypermodel = PruningHyperModel(
        n_features=4, epochs=20, steps_per_epoch=5,
        space=ScheduleSpace.from_text(power="2"))
    hp = keras_tuner.HyperParameters()
    hypermodel.declare_schedule(hp)
    names = {p.name: p for p in hp.space}
    assert set(names) == {"final_sparsity", "power", "begin_step", "end_step"}
    assert isinstance(names["power"], keras_tuner.engine.hyperparameters.Fixed)
    assert names["end_step"].max_value <= hypermodel.total_steps
    assert names["begin_step"].max_value < names["end_step"].min_value


def test_a_resolved_space_is_not_resolved_again_for_the_same_length():
    from tuner_prune.tuning.hypermodel import PruningHyperModel

    resolved = ScheduleSpace.from_text(end_step="30").resolve(total_steps=40, steps_per_epoch=4)
    assert resolved.resolved_for == (40, 4)
    assert resolved.resolve(40, 4) is resolved
    with pytest.raises(ValueError, match="end_step <= 20"):  # Another length: checked.
        resolved.resolve(total_steps=24, steps_per_epoch=4)
    hypermodel = PruningHyperModel(n_features=4, epochs=10, steps_per_epoch=4,
                                   space=resolved)
    assert hypermodel.bounds is resolved
