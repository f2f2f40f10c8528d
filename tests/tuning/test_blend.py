"""The blend of the best trial and the ridge: which ships, and the one model it is."""

import numpy as np
import pytest

from tuner_prune.data import baseline
from tuner_prune.tuning import blend

WINS, TIES, LOSES = (-3.0, 1.0), (-0.5, 1.0), (2.0, 1.0)


def _blend(versus_ridge, versus_trial):
    return {"mse_difference": versus_ridge[0], "standard_error": versus_ridge[1],
            "trial_mse_difference": versus_trial[0], "trial_standard_error": versus_trial[1]}


@pytest.mark.parametrize("trial, versus_ridge, versus_trial, shipped", [
    (WINS, WINS, TIES, "trial"),  # The blend must beat the trial, which would ship.
    (WINS, WINS, WINS, "blend"),
    (TIES, WINS, LOSES, "blend"),  # Against the baseline, which would ship.
    (TIES, TIES, WINS, "baseline"),
    (LOSES, LOSES, WINS, "baseline"),
])
def test_the_blend_ships_only_where_it_beats_the_model_that_would(
        trial, versus_ridge, versus_trial, shipped):
    assert blend.ships(*trial, _blend(versus_ridge, versus_trial), 1.0) == shipped


def test_without_a_blend_the_trial_or_the_baseline_ships():
    assert blend.ships(*WINS, None, 1.0) == "trial"
    assert blend.ships(*TIES, None, 1.0) == "baseline"
    assert blend.ships(*TIES, None, 0.0) == "trial"


def test_compared_are_paired_differences_in_the_targets_units():
    rng = np.random.default_rng(0)
    y = rng.normal(size=200)
    trial, ridge = y + 0.5 * rng.normal(size=200), y + 0.5 * rng.normal(size=200)
    found = blend.compared(trial, ridge, y, y_scale=3.0)
    mixed = blend.WEIGHT * trial + (1 - blend.WEIGHT) * ridge
    errors = {name: 9.0 * (p - y) ** 2 for name, p in
              (("trial", trial), ("ridge", ridge), ("blend", mixed))}
    assert found["mse_difference"] == pytest.approx(
        np.mean(errors["blend"] - errors["ridge"]))
    assert found["trial_standard_error"] == pytest.approx(
        np.std(errors["blend"] - errors["trial"], ddof=1) / np.sqrt(200))
    # Two models as good and wrong on other rows: their average beats both.
    assert found["mse_difference"] < -3 * found["standard_error"]
    assert found["trial_mse_difference"] < -3 * found["trial_standard_error"]


def _mlp(keras, depth, shape=(5,)):
    flat = [keras.layers.Flatten()] if len(shape) > 1 else []
    hidden = []
    for _ in range(depth):
        hidden += [keras.layers.Dense(8), keras.layers.ReLU()]
    return keras.Sequential([keras.Input(shape=shape), *flat, *hidden, keras.layers.Dense(1)])


@pytest.mark.parametrize("depth, shape", [(0, (5,)), (1, (5,)), (2, (5,)), (2, (3, 2))])
def test_the_blend_is_one_mlp_predicting_the_average(depth, shape):
    from tuner_prune.core._keras import keras, sparsity

    rng = np.random.default_rng(depth)
    pruned = sparsity.prune_low_magnitude(_mlp(keras, depth, shape))
    for weight in pruned.trainable_weights:  # Zeros, as pruning leaves them.
        weight.assign(np.where(rng.uniform(size=weight.shape) < 0.5, 0.0,
                               rng.normal(size=weight.shape)).astype(np.float32))
    width = int(np.prod(shape))
    ridge = (rng.normal(size=width), 0.3)
    rows = rng.normal(size=(64, *shape)).astype(np.float32)
    trial = sparsity.strip_pruning(pruned).predict(rows, verbose=0)
    built = blend.model(pruned, ridge)
    expected = blend.prediction(trial, baseline.predict(ridge, rows))
    np.testing.assert_allclose(built.predict(rows, verbose=0).reshape(-1), expected,
                               rtol=1e-5, atol=1e-5)
    kernels = [layer.kernel.numpy() for layer in built.layers if hasattr(layer, "kernel")]
    assert len(kernels) == depth + 1
    extra = 2 * width + 2 * depth if depth else width  # Kernel weights; linear: averaged.
    nonzero = sum(int(np.count_nonzero(k)) for k in kernels)
    stripped = sum(int(np.count_nonzero(w.numpy())) for w in
                   sparsity.strip_pruning(pruned).trainable_weights if w.shape.rank == 2)
    assert nonzero <= stripped + extra


def test_only_plain_relu_mlps_of_one_output_unstructured_are_blended():
    from tuner_prune.core._keras import keras, sparsity

    assert blend.blendable(_mlp(keras, 2))
    inputs = keras.Input(shape=(5,))
    others = [
        keras.Sequential([inputs, keras.layers.Dense(4, activation="tanh"),
                          keras.layers.Dense(1)]),
        keras.Sequential([inputs, keras.layers.Dense(4), keras.layers.Dense(1)]),
        keras.Sequential([inputs, keras.layers.Dense(4), keras.layers.ReLU(max_value=6.0),
                          keras.layers.Dense(1)]),
        keras.Sequential([inputs, keras.layers.Dense(4), keras.layers.ReLU(),
                          keras.layers.Dense(2)]),
        sparsity.prune_low_magnitude(_mlp(keras, 1), block_size=(1, 4)),
    ]
    assert [blend.blendable(model) for model in others] == [False] * len(others)
