"""A small Conv2D network on scikit-learn's 8x8 digits, for ``--model``.

Run as a script, it writes ``digits.npz``: ``x`` of shape (1797, 8, 8, 1)
(pixel values 0 to 16), ``y`` the digit as a number, a regression target.
"""

import sys

import numpy as np


def build(hp):
    """Conv2D(16) → Conv2D(32) → Dense(1) over 8×8 one-channel images."""
    import tf_keras as keras

    del hp
    return keras.Sequential([
        keras.Input(shape=(8, 8, 1)),
        keras.layers.Conv2D(16, 3, activation="relu"),
        keras.layers.Conv2D(32, 3, activation="relu"),
        keras.layers.Flatten(),
        keras.layers.Dense(1),
    ])


def write_digits(path="digits.npz", rows=None):
    """Writes the digits (the first ``rows`` of them, all by default) to ``path``."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = digits.images[:rows, :, :, None].astype(np.float32)
    np.savez(path, x=x, y=digits.target[:rows].astype(np.float32))


if __name__ == "__main__":
    write_digits(*sys.argv[1:2])
