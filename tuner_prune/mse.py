"""The one mean squared error of tuner_prune, on plain arrays (Keras-free)."""

import numpy as np


def in_target_units(value, target_scale):
    """An MSE measured on targets divided by ``target_scale``, in the target's units."""
    return value * target_scale ** 2


def mse(prediction, target, target_scale=1.0):
    """Mean squared error of predictions against targets, as a float.

    Rows are paired whatever the shapes: ``(n,)`` and ``(n, 1)`` both hold
    one value per row.

    Args:
        prediction: Predicted values.
        target: True values.
        target_scale: Factor from these values to the target's own units.
    """
    error = np.reshape(prediction, -1) - np.reshape(target, -1)
    return in_target_units(float(np.mean(error ** 2)), target_scale)
