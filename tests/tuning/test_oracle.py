"""The Bayesian oracle's log scores, without training."""

import math

import keras_tuner
import pytest
from keras_tuner.engine import hyperparameters as hp_module

from tuner_prune.tuning import oracle as oracle_lib
from tuner_prune.core._kt import TrialStatus


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


def sparsity_oracle(tmp_path, scores=()):
    oracle = oracle_lib.PruningOracle(objective="val_mse", max_trials=10, seed=0)
    oracle._set_project_dir(str(tmp_path), "search")
    space = keras_tuner.HyperParameters()
    space.Float("final_sparsity", 0.5, 0.98)
    space.Float("power", 1.0, 6.0)
    oracle.update_space(space)
    for sparsity, score in scores:
        trial = oracle.create_trial("tuner0")
        trial.hyperparameters.values.update(final_sparsity=sparsity, power=3.5)
        oracle.update_trial(trial.trial_id, {"val_mse": score})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return oracle


def test_each_halving_of_the_kept_fraction_is_an_equal_step():
    # Kept fractions 0.5, 0.1 and 0.02: 0.1 is halfway on the log scale.
    assert oracle_lib.sparsity_to_unit(0.9, 0.5, 0.98) == pytest.approx(0.5)
    assert oracle_lib.sparsity_to_unit(0.5, 0.5, 0.98) == pytest.approx(0.0)
    assert oracle_lib.sparsity_to_unit(0.98, 0.5, 0.98) == pytest.approx(1.0)
    for value in (0.5, 0.7, 0.9, 0.95, 0.98):
        unit = oracle_lib.sparsity_to_unit(value, 0.5, 0.98)
        assert oracle_lib.unit_to_sparsity(unit, 0.5, 0.98) == pytest.approx(value)


def test_gaussian_process_sees_final_sparsity_on_the_log_kept_scale(tmp_path):
    oracle = sparsity_oracle(tmp_path, [(0.9, 0.002), (0.98, 0.004)])
    x, _ = oracle._vectorize_trials()
    assert x[:, 0] == pytest.approx([0.5, 1.0])  # Linear: 0.833 and 1.
    assert x[:, 1] == pytest.approx([0.5, 0.5])  # Other hyperparameters: linear.


def test_proposals_map_back_from_the_log_kept_scale(tmp_path):
    oracle = sparsity_oracle(tmp_path)
    values = oracle._vector_to_values([0.5, 0.2])
    assert values["final_sparsity"] == pytest.approx(0.9)  # Linear: 0.74.
    assert values["power"] == pytest.approx(2.0)


def test_random_trials_give_half_their_draws_to_the_top_fifth_of_the_range(tmp_path):
    oracle = sparsity_oracle(tmp_path)
    draws = [oracle._random_values()["final_sparsity"] for _ in range(400)]
    assert all(0.5 <= value <= 0.98 for value in draws)
    share_above = sum(value >= 0.9 for value in draws) / len(draws)
    assert 0.42 < share_above < 0.58  # Linear: a sixth.


def test_gaussian_process_proposal_stays_in_bounds(tmp_path):
    oracle = sparsity_oracle(tmp_path, [(0.6, 0.006), (0.9, 0.0016), (0.97, 0.003)])
    proposal = oracle.populate_space("3")
    assert proposal["status"] == TrialStatus.RUNNING
    assert 0.5 <= proposal["values"]["final_sparsity"] <= 0.98
    assert 1.0 <= proposal["values"]["power"] <= 6.0


def bounds_oracle(tmp_path):
    """An oracle over Ints and Floats of every kind keras-tuner declares."""
    oracle = oracle_lib.PruningOracle(objective="val_mse", max_trials=10, seed=0)
    oracle._set_project_dir(str(tmp_path), "search")
    space = keras_tuner.HyperParameters()
    space.Int("begin_step", 0, 40)
    space.Int("end_step", 41, 90)
    space.Int("units", 8, 256, sampling="log")  # No step: keras-tuner's max + 1.
    space.Int("layers", 1, 10, step=4)  # Grid 1, 5, 9: 10 is not on it.
    space.Float("rate", 1e-4, 1e-1, sampling="log")
    space.Float("dropout", 0.0, 0.5, step=0.2)  # Grid 0, 0.2, 0.4.
    space.Float("final_sparsity", 0.5, 0.98)
    oracle.update_space(space)
    return oracle


BOUNDS = {"begin_step": (0, 40), "end_step": (41, 90), "units": (8, 256),
          "layers": (1, 9), "rate": (1e-4, 1e-1), "dropout": (0.0, 0.4),
          "final_sparsity": (0.5, 0.98)}


def assert_in_bounds(values):
    for name, (low, high) in BOUNDS.items():
        assert low <= values[name] <= high, (name, values[name])
    for name in ("begin_step", "end_step", "units", "layers"):
        assert isinstance(values[name], int), (name, values[name])
    assert values["begin_step"] < values["end_step"]


def test_keras_tuner_int_without_step_proposes_one_past_its_maximum():
    hp = hp_module.Int("units", 8, 256, sampling="log")
    assert hp.prob_to_value(1.0) == 257  # Why the oracle clips its proposals.


@pytest.mark.parametrize("unit", [0.0, 1.0])
def test_proposals_at_the_ends_of_the_unit_cube_stay_in_bounds(tmp_path, unit):
    oracle = bounds_oracle(tmp_path)
    values = oracle._vector_to_values([unit] * len(oracle._nonfixed_space()))
    assert_in_bounds(values)
    assert values["units"] == (8 if unit == 0.0 else 256)
    assert values["end_step"] == (41 if unit == 0.0 else 90)


def test_random_proposals_stay_in_bounds(tmp_path):
    oracle = bounds_oracle(tmp_path)
    for _ in range(500):
        assert_in_bounds(oracle._random_values())


def test_gaussian_process_proposal_on_the_upper_bound_stays_in_range(tmp_path):
    # Six random trials first: the Gaussian process proposes only the seventh.
    oracle = oracle_lib.PruningOracle(objective="val_mse", max_trials=10,
                                      num_initial_points=6, seed=0)
    oracle._set_project_dir(str(tmp_path), "search")
    space = keras_tuner.HyperParameters()
    space.Int("units", 8, 256, sampling="log")
    oracle.update_space(space)
    for units in (8, 16, 64, 128, 200, 250):  # The larger, the better.
        trial = oracle.create_trial("tuner0")
        trial.hyperparameters.values["units"] = units
        oracle.update_trial(trial.trial_id, {"val_mse": 1.0 / units})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    proposal = oracle.populate_space("6")
    assert proposal["values"]["units"] == 256


def test_seed_zero_is_a_seed_not_a_random_one():
    draws = []
    for _ in range(2):
        oracle = oracle_lib.PruningOracle(objective=keras_tuner.Objective("score", "min"),
                                          max_trials=5, seed=0)
        oracle.hyperparameters.Float("power", 1.0, 6.0)
        oracle.hyperparameters.Int("begin_step", 0, 100)
        assert oracle.seed == 0 and oracle.gpr.random_state == 0
        draws.append(oracle._random_values())
    assert draws[0] == draws[1]


def first_two_trials(tmp_path, declare):
    oracle = oracle_lib.PruningOracle(objective="val_mse", max_trials=10, seed=0)
    oracle._set_project_dir(str(tmp_path), "search")
    space = keras_tuner.HyperParameters()
    declare(space)
    oracle.update_space(space)
    values = []
    for _ in range(2):
        trial = oracle.create_trial("tuner0")
        values.append(dict(trial.hyperparameters.values))
        oracle.update_trial(trial.trial_id, {"val_mse": 1.0})
        trial.status = TrialStatus.COMPLETED
        oracle.end_trial(trial)
    return values


def test_the_second_trial_is_the_default_point_at_its_largest_size(tmp_path):
    def declare(hp):
        hp.Int("hidden_layers", 0, 2, default=0)
        hp.Int("units", 8, 64, step=2, sampling="log", default=32)
        hp.Float("final_sparsity", 0.3, 0.98, default=0.5)
        hp.Float("learning_rate", 5e-4, 3e-2, sampling="log", default=1e-2)

    default, largest = first_two_trials(tmp_path, declare)
    assert default == {"hidden_layers": 0, "units": 32, "final_sparsity": 0.5,
                       "learning_rate": 1e-2}
    assert largest == {"hidden_layers": 2, "units": 64, "final_sparsity": 0.3,
                       "learning_rate": 1e-2}


def test_a_size_fixed_by_hp_leaves_the_second_trial_random(tmp_path):
    def declare(hp):
        hp.Fixed("hidden_layers", 2)
        hp.Float("final_sparsity", 0.3, 0.98, default=0.5)

    _, second = first_two_trials(tmp_path, declare)
    assert second["final_sparsity"] != 0.3  # A random draw, not the largest point.
