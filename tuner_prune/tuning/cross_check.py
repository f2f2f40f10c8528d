"""A second look when the validation split cannot tell a trial from the baseline.

``--ship best`` ships the ridge baseline unless the best trial beats it on
validation by more than ``baseline.MARGIN`` standard errors
(``baseline.comparison``). On a table of a few hundred rows that split is a
few dozen rows, and the trial, the best of many on those same rows, is
flattered by them. When a trial is the better on validation but within the
margin, or on a validation split of fewer than ``SMALL_VALIDATION`` rows, the
search (not ``export``, which trains nothing) trains the trial's
hyperparameters again on ``FOLDS`` folds of the training and validation rows
together: on each fold a model trained on the other nine as the trial was
(its optimizer steps, its weights kept at the step the trial kept them), and
the ridge (the baseline's ``alpha``) fitted on the same nine. Nine tenths of
those rows are as many as the training split, so each fold's model learns
from as many rows as the trial did. Every row is held out once, so the
comparison rests on all of them, by models that were not chosen on them. The
trial ships if it beats the ridge there by more than the margin, whatever the
validation split said.

The same held-out predictions, each fold's trial model and ridge averaged, weigh
the blend of the two (``blend.py``) at no further training.

What it measured is stored in the trial's folder (``FILE``), so that ``export``
and a resumed search read it instead of training again; the verdict is drawn
from it with the margin of the moment (``judged``).
"""

import math
import os
import time

import numpy as np

from tuner_prune.data import baseline as baseline_lib
from tuner_prune.space import schedule
from tuner_prune.store import records, staging
from tuner_prune.core._keras import keras, sparsity
from tuner_prune.tuning import blend
from tuner_prune.tuning.callbacks import CosineLearningRate

FILE = "cross_check.json"
FOLDS = 10
# Validation splits of fewer rows cannot tell a trial from the baseline even when
# it wins there by the margin: the cross-check decides whenever the trial is the
# better on them. On larger ones, only when it is within the margin.
SMALL_VALIDATION = 500


def needed(compared):
    """Whether a trial compared on validation is cross-checked.

    Args:
        compared: ``baseline.comparison``'s, ``{}`` when the trial lost outright.
    """
    return bool(compared) and (not compared["trial_wins"]
                               or compared["rows"] < SMALL_VALIDATION)


def stored(tuner, trial_id):
    """The cross-check stored for ``trial_id``, or ``None``."""
    where = path(tuner, trial_id)
    if not os.path.isfile(where):
        return None
    return records.read_json(where, "a tuner_prune cross-check",
                             ("mse_difference", "standard_error", "folds"))


def judged(checked, margin):
    """A stored cross-check with its verdict for ``margin`` standard errors:
    ``trial_wins`` (over the ridge) and ``ships`` (``blend.ships``)."""
    if "reason" in checked:
        return {**checked, "trial_wins": False, "ships": "baseline", "margin": margin}
    difference, error = checked["mse_difference"], checked["standard_error"]
    return {**checked, "trial_wins": bool(difference + margin * error < 0),
            "ships": blend.ships(difference, error, checked.get("blend"), margin),
            "margin": margin}


def path(tuner, trial_id):
    return os.path.join(tuner.get_trial_dir(trial_id), FILE)


def run(tuner, trial, dataset, alpha, batch_size, margin=None, blended=False):
    """Compares ``trial``'s hyperparameters with the ridge on ``FOLDS`` folds; stores it.

    Args:
        tuner: The ``PruningTuner`` that ran ``trial``.
        trial: A completed keras-tuner ``Trial``.
        dataset: The search's ``Dataset`` (its training and validation rows).
        alpha: The baseline ridge's ``alpha``.
        batch_size: The trial's rows per optimizer step.
        margin: Standard errors the trial must win by (``baseline.MARGIN``).
        blended: Whether the trial can be blended with the ridge
            (``blend.blendable``): then the blend of each fold's two models
            is measured too (``"blend"``, ``blend.compared``'s).

    Returns:
        ``{"trial_wins", "ships", "mse_difference", "standard_error",
        "margin", "rows", "folds", "seconds"}`` (``baseline.comparison``'s,
        over every held-out row), with ``"blend"`` when ``blended``, and
        ``"reason"`` when a fold's training diverged (then the baseline
        ships).
    """
    started = time.perf_counter()
    margin = baseline_lib.MARGIN if margin is None else margin
    (x_train, y_train), (x_val, y_val) = dataset.scaled("train"), dataset.scaled("val")
    x, y = np.concatenate([x_train, x_val]), np.concatenate([y_train, y_val])
    order = np.random.default_rng(tuner.seed).permutation(len(y))
    trial_predictions, ridge_predictions = np.empty(len(y)), np.empty(len(y))
    reason = None
    for fold, held in enumerate(np.array_split(order, FOLDS)):
        kept = np.setdiff1d(order, held)
        prediction = _trained_prediction(tuner, trial, x[kept], y[kept], x[held],
                                         batch_size, tuner.seed + fold)
        if not np.all(np.isfinite(prediction)):
            reason = f"training on fold {fold + 1} of {FOLDS} diverged"
            break
        trial_predictions[held] = np.reshape(prediction, -1)
        ridge_predictions[held] = baseline_lib.predict(
            baseline_lib.ridge_on(x[kept], y[kept], alpha), x[held])
    measured = {"mse_difference": None, "standard_error": None}
    if not reason:
        trial_errors, ridge_errors = (baseline_lib.squared_errors(p, y, dataset.y_scale)
                                      for p in (trial_predictions, ridge_predictions))
        measured["mse_difference"], measured["standard_error"] = baseline_lib.paired(
            trial_errors - ridge_errors)
        if blended:
            measured["blend"] = blend.compared(trial_predictions, ridge_predictions, y,
                                               dataset.y_scale)
    measured.update({"rows": len(y), "folds": FOLDS,
                     "seconds": round(time.perf_counter() - started, 1),
                     **({"reason": reason} if reason else {})})
    staging.write_json(path(tuner, trial.trial_id), measured, indent=1)
    return judged(measured, margin)


def _trained_prediction(tuner, trial, x, y, x_held, batch_size, seed):
    """Predictions of ``x_held`` by ``trial``'s model trained anew on ``x``, ``y``.

    It trains for at least the trial's optimizer steps (its pruning schedule
    and learning-rate decay are in steps) and keeps the weights of the step
    the trial kept (``kept_step``), not chosen on ``x_held``.
    """
    hypermodel = tuner.hypermodel
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    model = hypermodel.build(trial.hyperparameters)
    per_epoch = schedule.steps_per_epoch(len(y), batch_size)
    keep = KeepAtStep(kept_step(tuner, trial.trial_id), per_epoch)
    hypermodel.fit(trial.hyperparameters, model, x, y,
                   epochs=math.ceil(hypermodel.total_steps / per_epoch),
                   batch_size=batch_size, verbose=0,
                   callbacks=[sparsity.UpdatePruningStep(), keras.callbacks.TerminateOnNaN(),
                              CosineLearningRate(hypermodel.total_steps), keep])
    keep.restore()
    return model.predict(x_held, verbose=0)


def kept_step(tuner, trial_id):
    """The optimizer step at which the trial's scored weights were kept: the end
    of its ``best_epoch`` (``ScoreAtFinalSparsity``), else its last step."""
    hypermodel = tuner.hypermodel
    where = os.path.join(tuner.get_trial_dir(trial_id), records.RECORD_FILE)
    record = (records.read_json(where, "a tuner_prune trial record")
              if os.path.isfile(where) else {})
    best_epoch = record.get("best_epoch")
    if not isinstance(best_epoch, int):
        return hypermodel.total_steps
    return (best_epoch + 1) * hypermodel.steps_per_epoch


class KeepAtStep(keras.callbacks.Callback):
    """Keeps the weights of the first epoch that ends at or after ``step``."""

    def __init__(self, step, steps_per_epoch):
        super().__init__()
        self.step = step
        self.steps_per_epoch = steps_per_epoch
        self.weights = None

    def on_epoch_end(self, epoch, logs=None):
        if self.weights is None and (epoch + 1) * self.steps_per_epoch >= self.step:
            self.weights = self.model.get_weights()

    def restore(self):
        if self.weights is not None:
            self.model.set_weights(self.weights)


def announce(trial_id, compared, rows):
    """The line before a cross-check: why it runs (``compared``: ``baseline.comparison``'s)."""
    errors = _errors(compared["val_mse_difference"], compared["standard_error"])
    return (f"Cross-checking trial {trial_id} against the ridge baseline: better on the "
            f"{compared['rows']} validation rows by {errors:.2f} standard errors; training "
            f"it again on {FOLDS} folds of the {rows} training and validation rows")


def verdict(checked):
    """The line after a cross-check: what it found and what ships."""
    if "reason" in checked:
        return f"  {checked['reason']}: the baseline ships"
    errors = _errors(checked["mse_difference"], checked["standard_error"])
    favoured = "the trial's" if errors >= 0 else "the baseline's"
    line = (f"  on {checked['folds']} folds ({checked['seconds']:g} s): MSE difference "
            f"{checked['mse_difference']:.6g} (the trial's minus the baseline's), "
            f"{abs(errors):.2f} standard errors in {favoured} favour")
    if checked["ships"] != "blend":
        return f"{line}: the {checked['ships']} ships"
    return f"{line}; {blend.line(checked['blend'], checked['trial_wins'])}: the blend ships"


def _errors(difference, standard_error):
    """Standard errors by which the trial is the better (``difference``: its MSE minus
    the baseline's)."""
    if standard_error > 0:
        return -difference / standard_error
    return math.copysign(math.inf, -difference) if difference else 0.0
