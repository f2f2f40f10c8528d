"""The learning rate of a trial decays along a half cosine over its steps."""

import numpy as np
import pytest

from tuner_prune.core._keras import keras
from tuner_prune.tuning.callbacks import CosineLearningRate


def rates_seen(callback, steps, batch=4, learning_rate=0.01):
    """The learning rate at each of ``steps`` real training steps of a tiny model."""
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="mse")
    seen = []
    record = keras.callbacks.LambdaCallback(on_train_batch_end=lambda *_: seen.append(
        float(keras.backend.get_value(model.optimizer.learning_rate))))
    x = np.zeros((steps * batch, 2), np.float32)
    model.fit(x, x[:, 0], batch_size=batch, epochs=1, verbose=0,
              callbacks=[callback, record])
    return seen


def test_the_rate_falls_from_the_compiled_one_to_a_tenth():
    seen = rates_seen(CosineLearningRate(total_steps=11), steps=11)
    assert seen[0] == pytest.approx(0.01)
    assert seen[5] == pytest.approx(0.01 * 0.55)  # Half way: half way down.
    assert seen[-1] == pytest.approx(0.001)
    assert all(a > b for a, b in zip(seen, seen[1:]))


def test_a_scheduled_rate_is_left_alone():
    schedule = keras.optimizers.schedules.ExponentialDecay(0.01, 1000, 0.5)
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(schedule), loss="mse")
    callback = CosineLearningRate(total_steps=4)
    model.fit(np.zeros((8, 2), np.float32), np.zeros(8, np.float32), batch_size=2,
              verbose=0, callbacks=[callback])
    assert callback.initial is None and callback.step == 0
