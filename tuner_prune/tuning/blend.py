"""The best trial and the ridge baseline averaged: a third model to ship.

On a small table the best trial and the ridge often tie, each wrong on other
rows; their average is then better than either (on the real tables' folds,
docs/search.md "The blend"). ``--ship best`` weighs three models: the
baseline, the trial, and the blend ``WEIGHT * trial + (1 - WEIGHT) * ridge``.
The trial or the baseline is chosen as before (the trial must beat the ridge
by the margin); the blend takes its place only if it beats the chosen one by
the margin too (``ships``), on the cross-check's folds where the search ran
one, else on the validation split.

The blend ships as one plain MLP (``model``): the ridge rides through the
trial's hidden layers as two extra ReLU units, ``relu(z) - relu(-z) = z``, so
every export path (SavedModel, TFLite, TFLM, C) takes it as it takes a trial.
It has ``2 * inputs + 4 * hidden_layers`` weights more than the trial (a linear
trial and the ridge average into one linear model).
"""

import numpy as np

from tuner_prune.data import baseline as baseline_lib

WEIGHT = 0.5  # The trial's share; the ridge's is the rest. Not fitted: see the docs.


def prediction(trial_prediction, ridge_prediction):
    """The blend's predictions from the trial's and the ridge's of the same rows."""
    return (WEIGHT * np.reshape(trial_prediction, -1).astype(np.float64)
            + (1 - WEIGHT) * np.reshape(ridge_prediction, -1))


def compared(trial_prediction, ridge_prediction, y, y_scale=1.0):
    """The blend beside the ridge and the trial on the same rows, row by row.

    Args:
        trial_prediction, ridge_prediction: The two models' predictions of the
            same scaled rows.
        y: Those rows' scaled targets.
        y_scale: Factor from scaled targets to the target's units.

    Returns:
        ``{"mse_difference", "standard_error"}`` of the blend's squared errors
        minus the ridge's, and ``{"trial_mse_difference",
        "trial_standard_error"}`` minus the trial's, in the target's units.
    """
    errors = {name: baseline_lib.squared_errors(p, y, y_scale) for name, p in (
        ("trial", trial_prediction), ("ridge", ridge_prediction),
        ("blend", prediction(trial_prediction, ridge_prediction)))}
    (ridge_mean, ridge_error), (trial_mean, trial_error) = (
        baseline_lib.paired(errors["blend"] - errors["ridge"]),
        baseline_lib.paired(errors["blend"] - errors["trial"]))
    return {"mse_difference": ridge_mean, "standard_error": ridge_error,
            "trial_mse_difference": trial_mean, "trial_standard_error": trial_error}


def ships(trial_difference, trial_error, blend, margin):
    """Which model ships: ``"trial"``, ``"blend"`` or ``"baseline"``.

    Args:
        trial_difference, trial_error: The trial's MSE minus the ridge's and
            its standard error.
        blend: ``compared``'s, or ``None`` when the trial cannot be blended.
        margin: Standard errors a model must win by.
    """
    first = "trial" if trial_difference + margin * trial_error < 0 else "baseline"
    if not blend:
        return first
    against = "trial_" if first == "trial" else ""
    wins = (blend[f"{against}mse_difference"]
            + margin * blend[f"{against}standard_error"] < 0)
    return "blend" if wins else first


def line(compared_blend, trial_first):
    """What the blend won by (``compared``'s), against the trial when
    ``trial_first`` (it would ship otherwise), else against the baseline."""
    against = "trial_" if trial_first else ""
    difference = compared_blend[f"{against}mse_difference"]
    error = compared_blend[f"{against}standard_error"]
    errors = -difference / error if error > 0 else float("inf")
    return (f"the trial and the baseline averaged are better than the "
            f"{'trial' if trial_first else 'baseline'} by {errors:.2f} standard errors")


def blendable(pruned_model):
    """Whether ``pruned_model`` (pruning-wrapped or stripped) is an MLP ``model``
    can blend: optionally ``Flatten``, then ``Dense`` layers, each hidden one
    followed by a ``ReLU`` (or with ``activation="relu"``), the last ``Dense(1)``
    linear, every one pruned unstructured."""
    try:
        _layers(pruned_model)
    except ValueError:
        return False
    return True


def model(pruned_model, ridge):
    """The blend as one tf_keras ``Sequential`` over scaled rows.

    Args:
        pruned_model: The trial's model (``blendable``).
        ridge: ``(coefficients, intercept)`` over scaled rows.

    Returns:
        A model predicting ``prediction``'s values, of plain ``Dense`` and
        ``ReLU`` layers (the trial's zeros kept).
    """
    from tuner_prune.core._keras import keras, sparsity

    _layers(pruned_model)  # Its block sizes, before they are stripped.
    flatten, denses = _layers(sparsity.strip_pruning(pruned_model))
    coefficients = np.asarray(ridge[0], np.float32).reshape(-1, 1)
    intercept = np.float32(ridge[1])
    kernels = [np.asarray(d.kernel.numpy(), np.float32) for d in denses]
    biases = [np.asarray(d.bias.numpy(), np.float32) for d in denses]
    if len(denses) == 1:
        weights = [(WEIGHT * kernels[0] + (1 - WEIGHT) * coefficients,
                    WEIGHT * biases[0] + (1 - WEIGHT) * intercept)]
    else:
        weights = [(np.hstack([kernels[0], coefficients, -coefficients]),
                    np.concatenate([biases[0], [intercept, -intercept]]))]
        for kernel, bias in zip(kernels[1:-1], biases[1:-1]):
            inner = np.zeros((kernel.shape[0] + 2, kernel.shape[1] + 2), np.float32)
            inner[:kernel.shape[0], :kernel.shape[1]] = kernel
            inner[-2:, -2:] = np.eye(2)
            weights.append((inner, np.concatenate([bias, [0.0, 0.0]])))
        weights.append((np.vstack([WEIGHT * kernels[-1], [[1 - WEIGHT], [WEIGHT - 1]]]),
                        WEIGHT * biases[-1]))
    layers = [keras.Input(shape=pruned_model.input_shape[1:])]
    layers += [keras.layers.Flatten()] if flatten else []
    for index, (kernel, bias) in enumerate(weights):
        if index:
            layers.append(keras.layers.ReLU())
        layers.append(keras.layers.Dense(kernel.shape[1], name=f"blend_dense_{index}"))
    built = keras.Sequential(layers)
    new_denses = [layer for layer in built.layers if isinstance(layer, keras.layers.Dense)]
    for dense, (kernel, bias) in zip(new_denses, weights):
        dense.set_weights([np.asarray(kernel, np.float32), np.asarray(bias, np.float32)])
    return built


def _layers(pruned_model):
    """``(flatten, denses)`` of a blendable model; ``ValueError`` otherwise."""
    from tuner_prune.core._keras import keras

    denses, flatten, pending_relu = [], False, False
    for layer in getattr(pruned_model, "layers", None) or ():
        if tuple(getattr(layer, "block_size", (1, 1))) != (1, 1):
            raise ValueError("block-pruned")
        inner = getattr(layer, "layer", layer)
        if isinstance(inner, keras.layers.InputLayer):
            continue
        if isinstance(inner, keras.layers.Flatten) and not (flatten or denses):
            flatten = True
        elif isinstance(inner, keras.layers.Dense) and not pending_relu and (
                inner.use_bias and inner.activation.__name__ in ("linear", "relu")):
            denses.append(inner)
            pending_relu = inner.activation.__name__ == "linear"
        elif isinstance(inner, keras.layers.ReLU) and pending_relu and _plain_relu(inner):
            pending_relu = False
        else:
            raise ValueError(type(inner).__name__)
    if not denses or denses[-1].units != 1 or denses[-1].activation.__name__ != "linear":
        raise ValueError("not an MLP of one output")
    return flatten, denses


def _plain_relu(layer):
    config = layer.get_config()
    return (config.get("max_value") is None and not config.get("negative_slope")
            and not config.get("threshold"))
