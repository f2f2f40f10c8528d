"""The Bayesian oracle's log scores, without training."""

import math

import keras_tuner
import pytest
from keras_tuner.src.engine.trial import TrialStatus

from tuner_prune import oracle as oracle_lib


def oracle_with_trials(tmp_path, scores):
    oracle = oracle_lib.PruningOracle(objective="val_mse", max_trials=10, seed=0)
    oracle._set_project_dir(str(tmp_path), "search")
    space = keras_tuner.HyperParameters()
    space.Float("x", 0.0, 1.0)
    oracle.update_space(space)
    trials = []
    for score in scores:
        trial = oracle.create_trial("tuner0")
        if score is not None:
            oracle.update_trial(trial.trial_id, {"val_mse": score})
            trial.status = TrialStatus.COMPLETED
            oracle.end_trial(trial)
        trials.append(trial)
    return oracle, trials


def test_gaussian_process_sees_log_of_completed_scores(tmp_path):
    oracle, _ = oracle_with_trials(tmp_path, [0.001, 0.01, 0.1])
    _, y = oracle._vectorize_trials()
    assert list(y) == pytest.approx([math.log(0.001), math.log(0.01), math.log(0.1)])


def test_failed_trials_are_skipped_and_ongoing_ones_not_logged_twice(tmp_path):
    oracle, trials = oracle_with_trials(tmp_path, [0.001, 0.01, 0.1, None])
    failed = oracle.create_trial("tuner1")
    failed.status = TrialStatus.FAILED
    oracle.end_trial(failed)
    x, y = oracle._vectorize_trials()
    oracle.gpr.fit(x, y)
    x, y = oracle._vectorize_trials()
    assert len(y) == 4  # Three completed, one ongoing, the failed one left out.
    prediction, spread = oracle.gpr.predict(x[3:], return_std=True)
    assert y[3] == pytest.approx(prediction[0] + spread[0])
    assert y[3] < 0  # On the log scale of the others, not the log of a log.


def test_an_objective_to_maximise_is_refused():
    with pytest.raises(ValueError, match="Expected an objective to minimise"):
        oracle_lib.PruningOracle(objective=keras_tuner.Objective("acc", "max"),
                                 max_trials=3)


def test_initial_points_leave_room_for_the_gaussian_process():
    assert oracle_lib.initial_points(2) == 2
    assert oracle_lib.initial_points(10) == 3
    assert oracle_lib.initial_points(40) == 10
