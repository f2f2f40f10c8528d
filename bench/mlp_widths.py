"""Dense MLPs of the built-in model's shape on friedman1 (3,000 rows), by width.

Each is trained as a default search's trial on that table is (its training
split scaled by the largest absolute values, batches of 128 for 1,500 steps,
Adam with a half-cosine decay to a tenth of the rate), without pruning, and
measured on the CLI's validation and test splits: how wide a model the table
needs. One line per setting, the means over ``--seeds`` initialisations:

    python bench/mlp_widths.py 2,16,0.01 2,64,0.01 2,1024,0.001   # LAYERS,UNITS,RATE
"""

import argparse
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from sklearn.datasets import make_friedman1  # noqa: E402

from tuner_prune.data import dataset as data_lib  # noqa: E402

BATCH = 128


def splits(rows, seed=0):
    """``(x, y)`` of test, validation and training rows, as the CLI splits them."""
    x, y = make_friedman1(n_samples=rows, noise=1.0, random_state=0)
    order = np.random.default_rng(seed).permutation(rows)
    n_test = round(data_lib.TEST_FRACTION * rows)
    n_val = round(data_lib.VALIDATION_FRACTION * rows)
    return [(x[i], y[i]) for i in np.split(order, [n_test, n_test + n_val])]


def measure(layers, units, rate, seed, parts, steps):
    """Validation MSE and test R² of one dense MLP."""
    import tensorflow as tf

    from tuner_prune.core._keras import keras

    (x_test, y_test), (x_val, y_val), (x_train, y_train) = parts
    x_scale, y_scale = np.abs(x_train).max(axis=0), np.abs(y_train).max()
    tf.keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(shape=(x_train.shape[1],))] + [
        keras.layers.Dense(units, activation="relu") for _ in range(layers)] + [
        keras.layers.Dense(1)])
    decay = keras.optimizers.schedules.CosineDecay(rate, steps, alpha=0.1)
    model.compile(keras.optimizers.Adam(decay), "mse")
    epochs = max(1, round(steps * BATCH / len(x_train)))
    model.fit(x_train / x_scale, y_train / y_scale, batch_size=BATCH, epochs=epochs,
              verbose=0)

    def mse(x, y):
        return float(np.mean((model.predict(x / x_scale, verbose=0)[:, 0] * y_scale - y) ** 2))

    return mse(x_val, y_val), 1 - mse(x_test, y_test) / float(np.var(y_test))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("settings", nargs="+", help="LAYERS,UNITS,LEARNING_RATE")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=3000, help="friedman1's rows")
    parser.add_argument("--steps", type=int, default=1500, help="optimizer steps")
    args = parser.parse_args()
    parts = splits(args.rows)
    for setting in args.settings:
        layers, units, rate = setting.split(",")
        results = [measure(int(layers), int(units), float(rate), seed, parts, args.steps)
                   for seed in range(args.seeds)]
        val, r2 = np.mean(results, axis=0)
        print(f"{layers} x {units}, rate {rate}: val_mse {val:.3f}, test R² {r2:.4f}",
              flush=True)


if __name__ == "__main__":
    main()
