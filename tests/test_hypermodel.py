"""Real tfmot training through the HyperModel and the tuner, on tiny data."""

import subprocess
import sys
import textwrap

import keras_tuner
import numpy as np
import pytest

from tuner_prune.hypermodel import PruningHyperModel
from tuner_prune.measure import measure_sparsity
from tuner_prune.space import ScheduleSpace
from tuner_prune.tuner import PruningTuner
from tuner_prune._keras import keras


def small_model(hp):
    return keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(64),
                             keras.layers.ReLU(), keras.layers.Dense(1)])


def data(rows=96, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 6)).astype("float32")
    return x, (x @ rng.normal(size=6)).astype("float32")


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


def run_failing_search(tmp_path, builder, y_value=None):
    x, y = data()
    if y_value is not None:
        y[:] = y_value
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


def test_infinite_loss_fails_the_trial(tmp_path):
    tuner = run_failing_search(tmp_path, small_model, y_value=1e30)
    trials = list(tuner.oracle.trials.values())
    assert [t.status for t in trials] == ["FAILED", "FAILED"]
    assert all("training loss became inf" in t.message for t in trials)
    assert tuner.best_trial() is None


def test_steps_per_epoch_mismatch_is_fatal(tmp_path):
    hypermodel = PruningHyperModel(small_model, n_features=6, epochs=4, steps_per_epoch=3)
    tuner = PruningTuner(hypermodel, max_trials=1, directory=str(tmp_path), verbose=False)
    x, y = data()
    with pytest.raises(keras_tuner.errors.FatalValueError, match="Expected 3 steps"):
        tuner.search(x, y, validation_data=data(24, 1), batch_size=16)


@pytest.mark.parametrize("prelude", [
    "import tensorflow as tf; import keras; tf.keras.layers.Dense",  # Keras 3 bound
    "import tensorflow as tf",
    "",
])
def test_models_are_tf_keras_whatever_the_import_order(prelude):
    code = textwrap.dedent(f"""
        {prelude}
        import keras_tuner, tf_keras
        from tuner_prune.hypermodel import PruningHyperModel
        hm = PruningHyperModel(n_features=3, epochs=10, steps_per_epoch=2)
        model = hm.build(keras_tuner.HyperParameters())
        assert isinstance(model, tf_keras.Model), type(model)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.stdout.strip().endswith("ok"), result.stderr[-2000:]
