"""The one mean squared error of tuner_prune, on plain arrays (Keras-free).

Errors are computed in float64: a float32 square overflows past about 1.8e19
and underflows below about 1e-19 (a target of magnitude 1e20 or 1e-30 would
measure infinity or 0), while float64 holds the square of any float32 value.
"""

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)


def in_target_units(value, target_scale):
    """An MSE measured on targets divided by ``target_scale``, in the target's units."""
    return float(value) * float(target_scale) ** 2


def mse(prediction, target, target_scale=1.0):
    """Mean squared error of predictions against targets, as a float (float64).

    Rows are paired whatever the shapes: ``(n,)`` and ``(n, 1)`` both hold
    one value per row.

    Args:
        prediction: Predicted values.
        target: True values.
        target_scale: Factor from these values to the target's own units.
    """
    error = (np.reshape(prediction, -1).astype(np.float64) -
             np.reshape(target, -1).astype(np.float64))
    return in_target_units(np.mean(error ** 2), target_scale)


def float32_clipped(value):
    """``value`` within float32's finite range, for a log that stores float32
    (TensorBoard's scalars): an MSE past it is logged as float32's largest."""
    return float(np.clip(value, -FLOAT32_MAX, FLOAT32_MAX))
