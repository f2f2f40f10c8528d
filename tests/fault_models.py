"""Base-model builders for fault-injection tests, passed as ``--model``."""

import os

import tf_keras as keras

N_FEATURES = 20  # The tiny built-in workload of conftest.TINY.
WIDTH_VARIABLE = "FAULT_MODELS_WIDTH"


def small(hp):
    """A small model that trains in well under a second per epoch."""
    del hp
    return _mlp(bias=0.0)


def flaky(hp):
    """Fails by ``begin_step % 3``: 1 raises in the builder, 2 trains to a NaN loss."""
    kind = hp.values.get("begin_step", 0) % 3
    if kind == 1:
        raise RuntimeError("builder failed on purpose")
    return _mlp(bias=float("nan") if kind == 2 else 0.0)


def broken(hp):
    raise RuntimeError("builder failed on purpose")


def not_a_model(hp):
    return "not a model"


def sized(hp):
    """A tiny MLP over any number of features, its width read from the
    environment: a model that changes between search and export."""
    del hp
    return keras.Sequential([
        keras.layers.Dense(int(os.environ.get(WIDTH_VARIABLE, "8")), activation="relu"),
        keras.layers.Dense(1),
    ])


class _TwoHeads(keras.Model):
    def __init__(self):
        super().__init__()
        self.first = keras.layers.Dense(1)
        self.second = keras.layers.Dense(1)

    def call(self, inputs):
        return [self.first(inputs), self.second(inputs)]


def two_outputs(hp):
    """A model with two outputs of one value each, over any number of features."""
    del hp
    return _TwoHeads()


def three_values(hp):
    """A model predicting three values per row, over any number of features."""
    del hp
    return keras.Sequential([keras.layers.Dense(8), keras.layers.Dense(3)])


def _mlp(bias):
    return keras.Sequential([
        keras.Input(shape=(N_FEATURES,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(bias)),
    ])
