"""The baseline every search stands beside: a ridge regression, free of Keras.

Before its first trial a search fits scikit-learn's ``Ridge`` on the same
scaled training split as its trials (N-d rows flattened), chooses the
regularisation on the validation split, and stores what it measured in
``<directory>/baseline.json``. A resumed search, ``export`` and ``report`` read
that file instead of fitting again. MSEs are in the target's units, as every
MSE of tuner_prune.
"""

import json
import math
import os
import time

import numpy as np

from tuner_prune.store import staging
from tuner_prune.core.errors import InputError
from tuner_prune.core.metrics import mse

FILE = "baseline.json"
KIND = "ridge"
# Ridge's ``alpha`` grid, on the training split's scaled features.
ALPHAS = (1e-6, 1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
EIGEN_LIMIT = 4096  # Features up to which one eigendecomposition serves every alpha.
# Standard errors of the validation split's noise a trial must beat the
# baseline by to be shipped instead (``comparison``): the one-standard-error
# rule of model selection, which keeps the simpler model (docs/search.md).
MARGIN = 1.0


def path(directory):
    """Where the baseline of the search in ``directory`` is stored."""
    return os.path.join(directory, FILE)


def fit(dataset, alphas=ALPHAS):
    """Fits the ridge baseline on ``dataset``'s training split.

    Args:
        dataset: A ``data.Dataset``; fitted on its scaled training split,
            ``alpha`` chosen on the validation split.
        alphas: The ``alpha`` values tried.

    Returns:
        ``{"kind", "settings", "val_mse", "test_mse", "weights",
        "fit_seconds"}``: ``settings`` holds the chosen ``alpha`` and the
        grid; ``weights`` counts the coefficients and the intercept;
        ``test_mse`` is ``None`` without a test split.
    """
    return fit_ridge(dataset, alphas)[0]


def fit_ridge(dataset, alphas=ALPHAS):
    """``fit``, and the chosen ridge as ``(coefficients, intercept)``.

    The ridge predicts scaled targets from scaled rows; ``test_mse`` measures
    it on a test split given later.
    """
    started = time.perf_counter()
    x_train, y_train = _flat(*dataset.scaled("train"))
    x_val, y_val = _flat(*dataset.scaled("val"))
    scores = _validation_mses(x_train, y_train, x_val, y_val, alphas, dataset.y_scale)
    alpha = alphas[int(np.argmin(scores))]
    ridge = ridge_on(x_train, y_train, alpha)
    return {
        "kind": KIND,
        "settings": {"alpha": alpha, "alphas": list(alphas),
                     "chosen_on": "validation split"},
        "val_mse": mse(predict(ridge, x_val), y_val, dataset.y_scale),
        "test_mse": ridge_test_mse(ridge, dataset),
        "weights": x_train.shape[1] + 1,
        "fit_seconds": round(time.perf_counter() - started, 3),
    }, ridge


def _validation_mses(x_train, y_train, x_val, y_val, alphas, y_scale):
    """Validation MSE of the ridge of each ``alpha``, from one eigendecomposition.

    The solutions ``Ridge`` finds (features and target centred, then
    ``(X'X + alpha I) w = X'y``) for every ``alpha`` at the cost of one; with
    more features than ``EIGEN_LIMIT``, one ``Ridge`` fit per ``alpha``.
    """
    from sklearn.linear_model import Ridge

    if x_train.shape[1] > EIGEN_LIMIT:
        return [mse(Ridge(alpha=alpha).fit(x_train, y_train).predict(x_val), y_val,
                    y_scale) for alpha in alphas]
    mean_x, mean_y = x_train.mean(axis=0), y_train.mean()
    centred = x_train - mean_x
    values, vectors = np.linalg.eigh(centred.T @ centred)
    projected = vectors.T @ (centred.T @ (y_train - mean_y))
    return [mse((x_val - mean_x) @ (vectors @ (projected / (values + alpha))) + mean_y,
                y_val, y_scale) for alpha in alphas]


def ridge_test_mse(ridge, dataset):
    """MSE of ``ridge`` (``fit_ridge``'s) on the dataset's test split, or ``None``."""
    if not dataset.has_test:
        return None
    x_test, y_test = dataset.scaled("test")
    return mse(predict(ridge, x_test), y_test, dataset.y_scale)


def _flat(x, y):
    """Rows as float64 vectors (N-d rows flattened), targets as a float64 vector."""
    return (np.asarray(x, np.float64).reshape(len(x), -1),
            np.asarray(y, np.float64).reshape(-1))


def store(directory, baseline):
    """Writes ``baseline`` beside the search in ``directory``."""
    staging.write_json(path(directory), baseline, indent=2)


def load(directory):
    """The baseline stored with the search in ``directory``, or ``None``.

    Raises:
        InputError: The file exists but is not a baseline tuner_prune wrote.
    """
    where = path(directory)
    if not os.path.isfile(where):
        return None
    try:
        with open(where, encoding="utf-8") as handle:
            stored = json.load(handle)
        _check(stored)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise InputError(f"{where}: Expected the baseline of a tuner_prune search, "
                         f"received a file that cannot be read ({error}).") from None
    return stored


def _check(stored):
    if stored["kind"] != KIND or not all(
            isinstance(stored[name], (int, float)) and math.isfinite(stored[name])
            for name in ("val_mse", "weights")):
        raise ValueError("missing or non-finite fields")
    if stored["test_mse"] is not None and not (  # None: searched without a test split.
            isinstance(stored["test_mse"], (int, float)) and
            math.isfinite(stored["test_mse"])):
        raise ValueError("a non-finite test_mse")


def ensure_ridge(directory, dataset, refit=False):
    """The stored baseline of the search in ``directory``, fitted and stored if absent.

    Args:
        directory: The search's ``--directory``.
        dataset: Its ``Dataset``.
        refit: Fit again even when one is stored (a search started over).

    Returns:
        ``(baseline, ridge)``: ``ridge`` is ``fit_ridge``'s ``(coefficients,
        intercept)`` when it was fitted now, else ``None``.
    """
    stored = None if refit else load(directory)
    if stored is not None:
        return stored, None
    baseline, ridge = fit_ridge(dataset)
    os.makedirs(directory, exist_ok=True)
    store(directory, baseline)
    return baseline, ridge


def describe(baseline):
    """One line naming the baseline and what it measured."""
    return (f"Baseline: ridge regression (alpha {baseline['settings']['alpha']:g}, "
            f"chosen on validation), {baseline['weights']:,} weights: "
            f"val_mse {baseline['val_mse']:.6g}  test_mse {_shown(baseline['test_mse'])}")


def _shown(value):
    """An MSE as printed, or that there was no test split to measure it on."""
    return "none (no test split)" if value is None else f"{value:.6g}"


def ratio(val_mse, baseline):
    """``val_mse`` as a multiple of the baseline's (``inf`` if the baseline's is 0)."""
    base = baseline["val_mse"]
    return val_mse / base if base > 0 else math.inf


def advice(val_mse, baseline):
    """A plain line when a model is worse than the baseline on validation, else ``None``."""
    if val_mse <= baseline["val_mse"]:
        return None
    return (f"Note: the ridge baseline beats the best trial on validation "
            f"({ratio(val_mse, baseline):.3g} x its val_mse). Try a smaller model (the "
            f"built-in one's size is bounded by --hp hidden_layers=0:1 --hp "
            f"units=8:64; a --model can declare its size for --hp to bound), more "
            f"--epochs or more --max-trials.")


def wins(reference, val_mse, ridge):
    """Whether the baseline beats ``val_mse`` on validation outright.

    Args:
        reference: The stored baseline (``load``'s), or ``None``.
        val_mse: The validation MSE of the best trial, in target units.
        ridge: ``fit_ridge``'s ``(coefficients, intercept)``, or ``None`` when
            the search kept none (then the baseline cannot be shipped).
    """
    return (reference is not None and ridge is not None and val_mse is not None
            and reference["val_mse"] < val_mse)


def comparison(prediction, ridge, x_val, y_val, y_scale=1.0, margin=MARGIN):
    """A trial's validation errors beside the baseline's, row by row.

    The trial beats the baseline when the mean of the differences of their
    squared errors on the same validation rows is below zero by more than
    ``margin`` standard errors of that mean: a validation split of a few
    dozen rows cannot tell a trial 5 % better from one as good.

    Args:
        prediction: The trial's predictions of the scaled validation rows.
        ridge: ``fit_ridge``'s ``(coefficients, intercept)``.
        x_val, y_val: The scaled validation rows and targets.
        y_scale: Factor from scaled targets to the target's units.
        margin: Standard errors the trial must win by.

    Returns:
        ``{"trial_wins", "val_mse_difference", "standard_error", "margin",
        "rows"}``: the trial's MSE minus the baseline's, and its standard
        error, in the target's units.
    """
    mean, spread = paired(squared_errors(prediction, y_val, y_scale)
                          - squared_errors(predict(ridge, x_val), y_val, y_scale))
    return {"trial_wins": bool(mean + margin * spread < 0), "val_mse_difference": mean,
            "standard_error": spread, "margin": margin, "rows": len(np.reshape(y_val, -1))}


def predict(ridge, x):
    """``ridge``'s (``(coefficients, intercept)``) predictions of scaled rows ``x``
    (N-d rows flattened), as float64."""
    coefficients, intercept = ridge
    return np.asarray(x, np.float64).reshape(len(x), -1) @ coefficients + intercept


def squared_errors(prediction, y, y_scale=1.0):
    """Row by row, the squared errors of ``prediction`` of scaled targets ``y``, in
    the target's units (``y_scale``: factor from scaled targets to them)."""
    error = np.reshape(prediction, -1).astype(np.float64) - np.reshape(y, -1).astype(np.float64)
    return error ** 2 * float(y_scale) ** 2


def paired(differences):
    """``(mean, standard error of the mean)`` of row-by-row differences."""
    rows = len(differences)
    spread = float(np.std(differences, ddof=1) / math.sqrt(rows)) if rows > 1 else 0.0
    return float(np.mean(differences)), spread


def ridge_on(x, y, alpha):
    """``(coefficients, intercept)`` of scikit-learn's ``Ridge(alpha)`` on scaled rows."""
    from sklearn.linear_model import Ridge

    x, y = _flat(x, y)
    model = Ridge(alpha=alpha).fit(x, y)
    return np.asarray(model.coef_, np.float64), float(model.intercept_)


def linear_model(ridge, input_shape):
    """The ridge as a tf_keras model over scaled rows: ``Dense(1)`` (after a
    ``Flatten`` for N-d rows) carrying its coefficients and intercept.

    ``export.export_model`` exports it as it exports a trial's model: the
    scaling built in, a SavedModel and verified TFLite variants.
    """
    from tuner_prune.core._keras import keras

    coefficients, intercept = ridge
    flat = [keras.layers.Flatten()] if len(input_shape) > 1 else []
    dense = keras.layers.Dense(1, name="ridge")
    model = keras.Sequential([keras.Input(shape=tuple(input_shape)), *flat, dense])
    dense.set_weights([np.asarray(coefficients, np.float32).reshape(-1, 1),
                       np.asarray([intercept], np.float32)])
    return model


def shipped_line(manifest):
    """The line saying the baseline (or the blend of it with the best trial) was
    shipped, or ``None`` when a trial was."""
    if manifest.get("shipped") not in ("baseline", "blend"):
        return None
    compared = manifest.get("baseline_comparison") or {}
    margin = compared.get("margin", MARGIN)
    folds = (compared.get("cross_check") or {}).get("folds")
    where = (f"on {folds} folds of the training and validation rows" if folds
             else "on validation")
    if manifest["shipped"] == "blend":
        beaten = "the trial alone" if compared.get("trial_wins") else "the ridge baseline"
        return (f"Shipped trial {manifest['trial_id']} and the ridge baseline averaged: "
                f"better than {beaten} {where} by more than {margin:g} standard "
                f"error{'' if margin == 1 else 's'} (val_mse {manifest['val_mse']:.6g}; the "
                f"trial's {manifest['best_trial_val_mse']:.6g}, the baseline's "
                f"{manifest['baseline']['val_mse']:.6g}).")
    return (f"Shipped the ridge baseline: no trial beats it {where} by more than "
            f"{margin:g} standard error{'' if margin == 1 else 's'} (val_mse "
            f"{manifest['val_mse']:.6g} against the best trial's "
            f"{manifest['best_trial_val_mse']:.6g}).")
