"""Real tfmot training through the HyperModel and the tuner, on tiny data."""

import subprocess
import sys
import textwrap

import keras_tuner
import pytest

from conftest import cli_env, data, small_model
from tuner_prune.core.errors import InputError
from tuner_prune.tuning.hypermodel import PruningHyperModel
from tuner_prune.export.measure import measure_sparsity
from tuner_prune.space.bounds import Bound, ScheduleSpace
from tuner_prune.tuning.tuner import PruningTuner
from tuner_prune.core._keras import keras


def test_schedule_that_tfmot_defaults_would_miss_is_applied(tmp_path):
    # 10 -> 60 at tfmot's default frequency 100 leaves the model dense.
    hypermodel = PruningHyperModel(
        small_model, n_features=6, epochs=10, steps_per_epoch=6,
        space=ScheduleSpace.from_text(final_sparsity="0.8", power="3",
                                      begin_step="10", end_step="37"))
    tuner = PruningTuner(hypermodel, max_trials=1, directory=str(tmp_path),
                         verbose=False)
    x, y = data()
    tuner.search(x, y, validation_data=data(24, 1), batch_size=16)
    trial = tuner.best_trial()
    assert trial is not None
    figures = measure_sparsity(tuner.load_model(trial))
    assert figures["sparsity"] == pytest.approx(0.8, abs=0.01)
    assert trial.metrics.get_last_value("sparsity") == pytest.approx(0.8, abs=0.01)


def run_failing_search(tmp_path, builder):
    x, y = data()
    hypermodel = PruningHyperModel(builder, n_features=6, epochs=4, steps_per_epoch=6)
    tuner = PruningTuner(hypermodel, max_trials=2, directory=str(tmp_path),
                         verbose=False)
    tuner.search(x, y, validation_data=data(24, 1), batch_size=16)
    return tuner


def test_raising_builder_fails_its_trials_and_search_goes_on(tmp_path):
    def raising(hp):
        raise ValueError("builder refuses")

    tuner = run_failing_search(tmp_path, raising)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["FAILED", "FAILED"]
    assert all("ValueError: builder refuses" in t.message for t in trials)
    assert tuner.best_trial() is None


def exploding_model(hp):
    """Predicts 1e30 times too much: the squared error overflows float32."""
    return keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(1),
                             keras.layers.Lambda(lambda t: t * 1e30)])


def test_infinite_loss_fails_the_trial(tmp_path):
    # Huge targets no longer do it: the tuner scales them to [-1, 1].
    tuner = run_failing_search(tmp_path, exploding_model)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["FAILED", "FAILED"]
    assert all("training loss became inf" in t.message for t in trials)
    assert tuner.best_trial() is None


def test_search_epochs_and_batch_size_rule_over_the_constructor(tmp_path):
    # Built for 4 epochs of 3 steps; searched for 5 epochs of 96 / 16 = 6 steps.
    hypermodel = PruningHyperModel(small_model, n_features=6, epochs=4, steps_per_epoch=3)
    tuner = PruningTuner(hypermodel, max_trials=1, directory=str(tmp_path), verbose=False)
    x, y = data()
    tuner.search(x, y, validation_data=data(24, 1), epochs=5, batch_size=16)
    assert (hypermodel.epochs, hypermodel.steps_per_epoch) == (5, 6)
    trial = tuner.best_trial()
    assert trial is not None
    assert trial.hyperparameters.values["end_step"] <= 30 - 6


@pytest.mark.slow
@pytest.mark.parametrize("prelude", [
    "import tensorflow as tf; import keras; tf.keras.layers.Dense",  # Keras 3 bound
    "import tensorflow as tf",
    "",
])
def test_models_are_tf_keras_whatever_the_import_order(prelude):
    # A fresh process: the imports, one model built; then no TensorFlow teardown.
    code = textwrap.dedent(f"""
        {prelude}
        import keras_tuner, tf_keras
        from tuner_prune.tuning.hypermodel import PruningHyperModel
        hm = PruningHyperModel(n_features=3, epochs=10, steps_per_epoch=2)
        model = hm.build(keras_tuner.HyperParameters())
        assert isinstance(model, tf_keras.Model), type(model)
        print("ok", flush=True)
        import os; os._exit(0)
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300, env=cli_env())
    assert result.stdout.strip().endswith("ok"), result.stderr[-2000:]


def declared_space(tmp_path, **kwargs):
    """The oracle's space of a tuner over the built-in model (nothing trained)."""
    hypermodel = PruningHyperModel(n_features=6, epochs=4, steps_per_epoch=6, **kwargs)
    tuner = PruningTuner(hypermodel, max_trials=1, directory=str(tmp_path), verbose=False)
    return {hp.name: hp for hp in tuner.oracle.get_space().space}


def test_built_in_model_declares_its_size_initializer_and_learning_rate(tmp_path):
    space = declared_space(tmp_path)
    assert set(space) == {"final_sparsity", "power", "begin_step", "end_step",
                          "hidden_layers", "units", "kernel_initializer", "learning_rate"}
    assert (space["hidden_layers"].min_value, space["hidden_layers"].max_value) == (0, 2)
    assert (space["units"].min_value, space["units"].max_value,
            space["units"].sampling) == (8, 1024, "log")
    assert list(space["kernel_initializer"].values) == ["glorot_uniform", "he_normal"]
    assert (space["learning_rate"].sampling, space["learning_rate"].min_value,
            space["learning_rate"].max_value) == ("log", 5e-4, 3e-2)


@pytest.mark.parametrize("depth, units, kernels", [
    (0, 8, [(6, 1)]), (1, 16, [(6, 16), (16, 1)]), (2, 32, [(6, 32), (32, 32), (32, 1)])])
def test_built_in_model_builds_the_size_it_draws(depth, units, kernels):
    hypermodel = PruningHyperModel(n_features=6, epochs=4, steps_per_epoch=6)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("hidden_layers", depth)
    hp.Fixed("units", units)
    model = hypermodel.build_base(hp)
    assert [tuple(layer.kernel.shape) for layer in model.layers
            if hasattr(layer, "kernel")] == kernels


def test_the_widest_units_bound_the_space_unless_hp_bounds_units(tmp_path):
    space = declared_space(tmp_path / "table", widest_units=64)
    assert (space["units"].min_value, space["units"].max_value) == (8, 64)
    assert space["units"].default == 32
    narrow = declared_space(tmp_path / "narrow", widest_units=8)["units"]
    assert (narrow.max_value, narrow.default) == (8, 8)
    # --hp units may go past the table's bound, up to the model's 1,024.
    wide = declared_space(tmp_path / "hp", widest_units=64,
                          hyperparameters={"units": Bound(8, 1024)})["units"]
    assert (wide.min_value, wide.max_value) == (8, 1024)


def test_block_size_keeps_only_models_tfmot_can_block_prune(tmp_path):
    space = declared_space(tmp_path, block_size=(16, 1))
    assert space["hidden_layers"].min_value == 1
    assert space["units"].min_value == 32


def test_the_trial_compiles_with_its_learning_rate_and_initializer():
    hypermodel = PruningHyperModel(n_features=6, epochs=4, steps_per_epoch=6)
    hp = keras_tuner.HyperParameters()
    hp.Fixed("learning_rate", 0.002)
    hp.Fixed("kernel_initializer", "he_normal")
    model = hypermodel.build(hp)
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.002)
    first = model.layers[0].layer
    assert type(first.kernel_initializer).__name__ == "HeNormal"
    default = PruningHyperModel(small_model, n_features=6, epochs=4, steps_per_epoch=6)
    model = default.build(keras_tuner.HyperParameters())
    assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(1e-3)


def test_hp_fixes_and_bounds_the_models_own_hyperparameters(tmp_path):
    space = declared_space(tmp_path, hyperparameters={
        "kernel_initializer": "he_normal", "learning_rate": Bound(1e-3, 2e-3)})
    assert isinstance(space["kernel_initializer"], keras_tuner.engine.hyperparameters.Fixed)
    assert space["kernel_initializer"].value == "he_normal"
    rate = space["learning_rate"]
    assert (rate.min_value, rate.max_value, rate.sampling) == (1e-3, 2e-3, "log")


def units_model(hp):
    units = hp.Int("units", 8, 64, step=8)
    return keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(units),
                             keras.layers.Dense(1)])


def test_hp_reaches_a_user_builder_and_a_searched_frequency_is_snapped():
    hypermodel = PruningHyperModel(
        units_model, n_features=6, epochs=10, steps_per_epoch=6,
        space=ScheduleSpace.from_text(begin_step="10", end_step="37", frequency="4"),
        hyperparameters={"units": 16})
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert model.layers[0].layer.units == 16
    assert hp.values["frequency"] == 4
    assert hypermodel.schedule(hp).frequency == 3  # 27 steps: the nearest divisor.


@pytest.mark.parametrize("settings,message", [
    ({"width": 3}, r"Expected --hp names among .*\(the model's: units\), received 'width'"),
    ({"units": "many"}, r"Expected --hp units to be an integer, received 'many'"),
])
def test_hp_unknown_or_mistyped_is_refused(settings, message):
    with pytest.raises(InputError, match=message):
        PruningHyperModel(units_model, n_features=6, epochs=4, steps_per_epoch=6,
                          hyperparameters=settings)


def test_a_range_for_a_choice_is_refused():
    with pytest.raises(InputError, match=r"kernel_initializer=VALUE .*Choice"):
        PruningHyperModel(n_features=6, epochs=4, steps_per_epoch=6,
                          hyperparameters={"kernel_initializer": Bound(1, 2)})
