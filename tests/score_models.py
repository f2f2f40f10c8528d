"""Base-model builders whose loss is not their MSE, passed as ``--model``."""

import tf_keras as keras

N_FEATURES = 20  # The tiny built-in workload of conftest.TINY.
L2 = 0.1  # Strong: the penalty is larger than the tiny workload's MSE.


def regularized(hp):
    """A small MLP with an L2 penalty on every kernel: its loss is MSE + penalty."""
    del hp
    penalty = keras.regularizers.L2(L2)
    return keras.Sequential([
        keras.Input(shape=(N_FEATURES,)),
        keras.layers.Dense(32, activation="relu", kernel_regularizer=penalty),
        keras.layers.Dense(1, kernel_regularizer=penalty),
    ])
