"""One trial of a search: trained, scored, measured and recorded.

``PruningTuner.run_trial`` hands each trial to a ``TrialRunner``: it builds
the trial's pruned model, trains it with ``hypermodel.fit`` (``model.fit``
unless overridden), keeps the weights of its best validation MSE at final
sparsity, measures the model's sparsity and TFLite size, and writes the
trial's ``record.json`` and weights through ``TrialFiles``. A trial fails
alone: whatever goes wrong is recorded as its failure, and the search goes on.
"""

import contextlib
import os

import keras_tuner
import numpy as np

from tuner_prune.core.metrics import RAM_VARIANTS, budget_score
from tuner_prune.distributed import fencing
from tuner_prune.export import measure, tflm
from tuner_prune.store import records
from tuner_prune.tuning import summaries
from tuner_prune.core._keras import keras, sparsity
from tuner_prune.core._kt import TrialStatus
from tuner_prune.core.errors import InputError
from tuner_prune.tuning.callbacks import CosineLearningRate, ScoreAtFinalSparsity, StopWhenTaken

# The oracle's objective: the validation MSE, multiplied by
# ``metrics.budget_score``'s penalty when a trial's TFLite model is over
# ``--max-bytes`` or its TFLM arena over ``--max-ram``. ``VAL_MSE`` is always the
# model's own validation MSE.
OBJECTIVE = "score"
VAL_MSE = "val_mse"


class TrialFiles:
    """Where a run of a trial writes its ``record.json`` and weights.

    A local search or a chief writes in the trial's folder. A worker of a
    distributed search writes under attempt-private names while it holds the
    chief's lease on the trial (``fencing``); the chief renames them when it
    accepts the run.

    Args:
        oracle: The tuner's oracle: a worker's ``fencing.FencedClient``
            carries its lease.
        trial_dir: Returns the folder of a trial id, made if missing (the
            tuner's ``get_trial_dir``).
    """

    def __init__(self, oracle, trial_dir):
        self.oracle = oracle
        self.trial_dir = trial_dir

    def path(self, trial_id, name):
        """Where this run writes ``name`` (``records.RECORD_FILE``, ...) of ``trial_id``."""
        path = os.path.join(self.trial_dir(trial_id), name)
        lease = self._lease(trial_id)
        return path if lease is None else fencing.attempt_path(path, lease.attempt)

    def write_record(self, trial, record):
        """Writes ``record`` as the ``record.json`` of ``trial``."""
        records.write_record(self.path(trial.trial_id, records.RECORD_FILE),
                             trial.trial_id, trial.hyperparameters.values, record)

    def save_weights(self, trial_id, model):
        model.save_weights(self.path(trial_id, records.WEIGHTS_FILE))

    def load_weights(self, trial_id, model):
        """Loads into ``model`` the weights ``trial_id`` was scored with (its folder's).

        Raises:
            InputError: The file is missing or not HDF5 (named).
        """
        path = os.path.join(self.trial_dir(trial_id), records.WEIGHTS_FILE)
        expected = f"{path}: Expected the weights of trial {trial_id} (HDF5)"
        if not os.path.isfile(path):
            raise InputError(f"{expected}, received no such file.")
        try:
            model.load_weights(path)
        except OSError as error:  # h5py's: not HDF5, truncated.
            raise InputError(f"{expected}, received a file that cannot be read "
                             f"({error}).") from None

    def lease_callbacks(self, trial_id):
        """A worker's callback that stops the run once the chief gave the trial away."""
        if self._lease(trial_id) is None:
            return []
        return [StopWhenTaken(self.oracle, self.trial_dir(trial_id))]

    def _lease(self, trial_id):
        """This worker's lease on ``trial_id``, or ``None`` (not a worker)."""
        lease = getattr(self.oracle, "lease", None)
        return lease if lease is not None and lease.trial_id == trial_id else None


class TrialRunner:
    """Trains and scores the trials of one tuner, one at a time.

    Args:
        hypermodel: The tuner's ``PruningHyperModel``.
        files: The tuner's ``TrialFiles``.
        tensorboard_dir: The search's TensorBoard logs (``summaries``).
        progress: Returns the progress callbacks of a trial, given the trial
            and the target's scale (``display.Display.progress_callbacks``).
        seed: Each trial is seeded with ``seed`` plus its id.
        max_bytes: The size budget of the score, or ``None``.
        max_ram: The RAM budget of the score, or ``None``: then each trial's
            TFLM tensor arena is measured (``measure.trial_files``), the
            smallest of its ``ram_variants``.
        ram_variants: The variants whose arena counts (``metrics.RAM_VARIANTS``).
        distribution_strategy: The ``tf.distribute`` strategy the model is
            built under, or ``None``.
    """

    def __init__(self, hypermodel, files, tensorboard_dir, progress, *, seed=0,
                 max_bytes=None, max_ram=None, ram_variants=RAM_VARIANTS["auto"],
                 distribution_strategy=None):
        self.hypermodel = hypermodel
        self.files = files
        self.tensorboard_dir = tensorboard_dir
        self.progress = progress
        self.seed = seed
        self.max_bytes = max_bytes
        self.max_ram = max_ram
        self.ram_variants = ram_variants
        self.distribution_strategy = distribution_strategy

    def run(self, trial, data, x, y, fit_kwargs, callbacks=()):
        """Trains one pruned model and returns its metrics.

        Args:
            trial: The keras-tuner ``Trial``.
            data: The search's ``search_data.SearchData`` (its scaling).
            x, y: Training data, scaled.
            fit_kwargs: The arguments of ``hypermodel.fit`` besides the
                model, data and callbacks (``validation_data``, scaled, ...).
            callbacks: The caller's Keras callbacks of the fit.

        Returns:
            The metrics: ``OBJECTIVE``, ``VAL_MSE`` (target units),
            ``sparsity``, ``nonzero_weights``, ``tflite_bytes``; under
            ``max_ram`` also ``arena_bytes``.

        Raises:
            keras_tuner.errors.FailedTrialError: The model could not be built or
                trained, its loss was not finite, or (under ``max_ram``) it does
                not run in TFLM.
        """
        keras.backend.clear_session()
        keras.utils.set_random_seed(self.seed + int(trial.trial_id))
        try:
            callbacks = [*callbacks, *self.files.lease_callbacks(trial.trial_id),
                         *summaries.trial_callbacks(self.tensorboard_dir, trial.trial_id),
                         *self.progress(trial, data.y_scale)]
            return self._train_and_score(trial, data, x, y, fit_kwargs, callbacks)
        except (keras_tuner.errors.FailedTrialError, keras_tuner.errors.FatalError,
                fencing.TrialTaken):
            raise
        except Exception as error:  # A trial must fail alone, whatever the cause.
            self._fail(trial, f"{type(error).__name__}: {error}")

    def _train_and_score(self, trial, data, x, y, fit_kwargs, callbacks):
        model, scorer, history = self._fit(trial, x, y, fit_kwargs, callbacks)
        reason = _non_finite_reason(history)
        if reason or scorer.best_weights is None:
            self._fail(trial, reason or "no finite validation MSE after end_step")
        scorer.restore()
        self.files.save_weights(trial.trial_id, model)
        figures = measure.measure_sparsity(model)
        macs = measure.count_macs(model)
        val_mse = measure.in_target_units(scorer.best_mse, data.y_scale)
        tflite_bytes, contents = measure.trial_files(
            model, data, () if self.max_ram is None else self.ram_variants)
        arena, ram = (None, {}) if self.max_ram is None else self._arena(trial, contents, data)
        metrics = {OBJECTIVE: budget_score(val_mse, tflite_bytes, self.max_bytes,
                                           arena, self.max_ram),
                   VAL_MSE: val_mse,
                   "sparsity": figures["sparsity"],
                   "nonzero_weights": float(figures["nonzero_weights"]),
                   "tflite_bytes": float(tflite_bytes),
                   **({} if arena is None else {"arena_bytes": float(arena)})}
        self.files.write_record(trial, {
            "status": TrialStatus.COMPLETED, "best_epoch": scorer.best_epoch, **metrics,
            "tflite_bytes": tflite_bytes, **ram,
            "nonzero_weights": figures["nonzero_weights"], **macs,
            "within_budget": ((self.max_bytes is None or tflite_bytes <= self.max_bytes)
                              and (arena is None or arena <= self.max_ram)),
            "layers": figures["layers"]})
        return metrics

    def _arena(self, trial, contents, data):
        """``(arena bytes, record fields)`` of the trial's model in TFLM, the
        smallest of its ``contents`` (``measure.trial_files``'), found as the
        export finds it; a model that TFLM does not run fails the trial, as it
        cannot ship under ``--max-ram``."""
        try:
            arena, variant = tflm.smallest_of(contents, data.x_val)
        except RuntimeError as error:
            self._fail(trial, str(error))
        return arena, {"arena_bytes": arena, "arena_variant": variant}

    def _fit(self, trial, x, y, fit_kwargs, callbacks):
        """Builds and trains the trial's model with ``hypermodel.fit``.

        Returns:
            ``(model, scorer, history)``: ``history`` is the ``History`` of
            the model's last fit, whatever ``hypermodel.fit`` returned.
        """
        with self._scope():
            model = self.hypermodel.build(trial.hyperparameters)
        pruning = self.hypermodel.schedule(trial.hyperparameters)
        scorer = ScoreAtFinalSparsity(pruning.end_step, self.hypermodel.steps_per_epoch)
        result = self.hypermodel.fit(
            trial.hyperparameters, model, x, y,
            callbacks=[sparsity.UpdatePruningStep(), keras.callbacks.TerminateOnNaN(),
                       scorer, CosineLearningRate(self.hypermodel.total_steps),
                       *callbacks], **fit_kwargs)
        history = (result if isinstance(result, keras.callbacks.History)
                   else getattr(model, "history", None))
        return model, scorer, history

    def _scope(self):
        if self.distribution_strategy is None:
            return contextlib.nullcontext()
        return self.distribution_strategy.scope()

    def _fail(self, trial, reason):
        self.files.write_record(trial, {"status": TrialStatus.FAILED, "reason": reason})
        raise keras_tuner.errors.FailedTrialError(reason)


def _non_finite_reason(history):
    losses = [] if history is None else history.history.get("loss", [])
    bad = [i for i, loss in enumerate(losses) if not np.isfinite(loss)]
    if bad:
        return f"training loss became {losses[bad[0]]} in epoch {bad[0] + 1}"
    return None
