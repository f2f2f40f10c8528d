"""Base-model builders for fault-injection tests, passed as ``--model``."""

import tf_keras as keras

N_FEATURES = 20  # The tiny built-in workload of conftest.TINY.


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


def _mlp(bias):
    return keras.Sequential([
        keras.Input(shape=(N_FEATURES,)),
        keras.layers.Dense(32, activation="relu"),
        keras.layers.Dense(1, bias_initializer=keras.initializers.Constant(bias)),
    ])
