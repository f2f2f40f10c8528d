"""Schedule arithmetic, without training."""

import pytest

from tuner_prune.space import schedule
from tuner_prune.space.schedule import PruningSchedule


def test_article_schedule_stops_at_29_percent():
    # The article: 0 -> 0.75 over steps 1000..5000, but only 1600 steps trained.
    article = PruningSchedule(0.75, 3, 1000, 5000, total_steps=5000, frequency=100)
    assert article.sparsity_at(1600) == pytest.approx(0.2895, abs=1e-3)
    assert article.sparsity_at(5000) == pytest.approx(0.75)


def test_end_step_beyond_training_is_refused():
    with pytest.raises(ValueError, match=r"end_step.*training length \(1600 steps\).*5000"):
        PruningSchedule(0.75, 3, 1000, 5000, total_steps=1600)


@pytest.mark.parametrize("begin,end", [(10, 60), (0, 101), (7, 1607), (40, 280), (3, 4)])
def test_aligned_frequency_lands_on_end_step(begin, end):
    frequency = schedule.aligned_frequency(begin, end)
    assert (end - begin) % frequency == 0
    assert 1 <= frequency <= schedule.DEFAULT_FREQUENCY
    plan = PruningSchedule(0.9, 3, begin, end, total_steps=end)
    assert plan.sparsity_at(end) == pytest.approx(0.9)


def test_the_rule_picks_a_fine_frequency():
    # The span, 40 -> 280: 15 under the earlier rule, 14 % worse than 5.
    assert schedule.aligned_frequency(40, 280) == 5
    assert schedule.aligned_frequency(0, 241) == 1  # A prime span.
    assert schedule.aligned_frequency(0, 48) == 3  # At least 16 updates.


@pytest.mark.parametrize("begin,end,wanted,snapped", [
    (40, 280, 15, 15), (40, 280, 7, 6), (40, 280, 9, 8), (0, 241, 10, 1),
    (0, 12, 5, 4), (0, 12, 100, 12), (3, 4, 1, 1)])
def test_a_searched_frequency_snaps_to_the_nearest_divisor(begin, end, wanted, snapped):
    frequency = schedule.snap_frequency(begin, end, wanted)
    assert frequency == snapped
    plan = PruningSchedule(0.9, 3, begin, end, total_steps=end, frequency=frequency)
    assert plan.sparsity_at(end) == pytest.approx(0.9)


def test_default_frequency_misses_final_sparsity():
    # tfmot issue 601: 10 -> 60 at frequency 100 prunes only at step 10.
    plan = PruningSchedule(0.6, 3, 10, 60, total_steps=60, frequency=50)
    assert plan.sparsity_at(60) == pytest.approx(0.6)
    with pytest.raises(ValueError, match="frequency"):
        PruningSchedule(0.6, 3, 10, 60, total_steps=60, frequency=100)


def test_sparsity_rises_monotonically():
    plan = PruningSchedule(0.95, 2.5, 20, 420, total_steps=500)
    values = [plan.sparsity_at(step) for step in range(0, 501, 5)]
    assert values == sorted(values)
    assert values[0] == 0.0 and values[-1] == pytest.approx(0.95)


@pytest.mark.parametrize("field,kwargs", [
    ("final_sparsity", dict(final_sparsity=1.0)),
    ("final_sparsity", dict(final_sparsity=-0.1)),
    ("power", dict(power=0)),
    ("begin_step", dict(begin_step=-1)),
    ("end_step", dict(begin_step=50, end_step=50)),
    ("initial_sparsity", dict(initial_sparsity=0.95)),
])
def test_bad_argument_is_named(field, kwargs):
    args = dict(final_sparsity=0.9, power=3, begin_step=0, end_step=100, total_steps=200)
    args.update(kwargs)
    with pytest.raises(ValueError, match=f"`{field}`"):
        PruningSchedule(**args)


def test_recovery_window_is_at_least_one_epoch():
    assert schedule.recovery_steps(100, 30) == 30
    assert schedule.recovery_steps(1600, 8) == 160
    assert schedule.max_end_step(1600, 8) == 1440
    assert schedule.steps_per_epoch(8000, 1024) == 8


@pytest.mark.parametrize("power", [1.0, 3.0, 5.5])
@pytest.mark.parametrize("begin, end, frequency", [(0, 12, 1), (3, 23, 5), (10, 70, 12),
                                                    (0, 200, 40)])
@pytest.mark.parametrize("initial, final", [(0.0, 0.5), (0.2, 0.9), (0.0, 0.98)])
def test_polynomial_sparsity_is_tfmots_polynomial_decay(power, begin, end, frequency,
                                                         initial, final):
    """The Keras-free arithmetic against tfmot's own schedule, step by step: the
    sparsity of the last step at which tfmot's ``PolynomialDecay`` prunes."""
    from tuner_prune.core._keras import sparsity

    decay = sparsity.PolynomialDecay(initial_sparsity=initial, final_sparsity=final,
                                     begin_step=begin, end_step=end, power=power,
                                     frequency=frequency)
    plan = PruningSchedule(final_sparsity=final, power=power, begin_step=begin,
                           end_step=end, total_steps=end + 10, initial_sparsity=initial,
                           frequency=frequency)
    applied = 0.0
    for step in range(end + 10):
        should_prune, value = decay(step)
        if bool(should_prune):
            applied = float(value)
        assert plan.sparsity_at(step) == pytest.approx(applied, abs=1e-6), step
