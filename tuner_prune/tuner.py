"""``PruningTuner``: a Bayesian search over pruning schedules on ``BaseTuner``.

keras-tuner's ``Tuner`` accepts only Keras 3 models, so this tuner runs each
trial itself on tf_keras; the oracle and the trial bookkeeping are keras-tuner's.
"""

import contextlib
import dataclasses
import io
import os
import sys

import keras_tuner
import numpy as np

from tuner_prune import folders
from tuner_prune import baseline as baseline_lib, config as config_lib, distribute
from tuner_prune import fencing, measure, progress, records, resume, schedule, search_data
from tuner_prune import serving, sizes, splits, summaries
from tuner_prune import oracle as oracle_lib
from tuner_prune._keras import keras, sparsity
from tuner_prune import _kt
from tuner_prune._kt import TrialStatus, oracle_client
from tuner_prune.callbacks import ScoreAtFinalSparsity, ShowProgress, StopWhenTaken
from tuner_prune.errors import InputError
from tuner_prune.failures import failure_reason

# The oracle's objective: the validation MSE, multiplied by
# ``sizes.budget_score``'s penalty when a trial's TFLite model is over
# ``--max-bytes``. ``VAL_MSE`` is always the model's own validation MSE.
OBJECTIVE = "score"
VAL_MSE = "val_mse"


class PruningTuner(_kt.BaseTuner):
    """Bayesian search over pruning schedules that minimises validation MSE.

    Used as a keras-tuner tuner, on raw (unscaled) arrays::

        tuner = PruningTuner(PruningHyperModel(build), max_trials=5)
        tuner.search(x, y, validation_data=(x_val, y_val), epochs=30, batch_size=128)
        best = tuner.get_best_models(1)[0]  # Stripped, raw rows in, target units out.
        manifest = tuner.export("export", test_data=(x_test, y_test))

    ``search`` fits the scaling on the training split (``data.fit_scaling``,
    as the CLI does), trains on scaled data and stores the scaling with the
    search. Each trial reports ``val_mse`` (the model's validation MSE, target
    units) and ``score``, the objective: ``val_mse`` itself, or under
    ``max_bytes`` ``sizes.budget_score`` of it.

    Args:
        hypermodel: A ``PruningHyperModel``.
        max_trials: Trials to run (failed ones included, as in keras-tuner).
        seed: Seed of the oracle and of each trial's initialisation.
        directory: Folder for search state and logs.
        project_name: Sub-folder of ``directory`` for this search; its
            TensorBoard logs go to ``directory/tensorboard/project_name``.
        overwrite: Start over instead of resuming a search found there.
        oracle: A keras-tuner oracle; defaults to ``oracle.PruningOracle``
            (Bayesian optimisation of log ``score``, with state files that
            survive a kill).
        verbose: Print one line per trial.
        distribution_strategy: A ``tf.distribute`` strategy each trial trains
            under (as keras-tuner's ``Tuner`` takes), or ``None``.
        worker_timeout: Seconds without a heartbeat after which the chief of
            a distributed search gives a worker's trial to another worker; on
            a worker, the longest wait for an answer of the chief, after which
            the worker stops (``distribute.ChiefGone``).
        max_bytes: Size budget: a trial whose TFLite model is larger is
            scored ``sizes.budget_score`` (its MSE, penalised by how far over
            the budget it is).
        fit_baseline: Fit the ridge baseline (``tuner_prune.baseline``)
            before the first trial, or reuse the one stored in ``directory``.
    """

    def __init__(self, hypermodel, *, max_trials=10, seed=0, directory="logs",
                 project_name=records.PROJECT, overwrite=False, oracle=None, verbose=True,
                 distribution_strategy=None,
                 worker_timeout=distribute.DEFAULT_WORKER_TIMEOUT, max_bytes=None,
                 fit_baseline=True):
        self.seed = seed
        self.verbose = verbose
        self.distribution_strategy = distribution_strategy
        self.worker_timeout = worker_timeout
        self.max_bytes = max_bytes
        self.fit_baseline = fit_baseline
        self.baseline = None  # ``baseline.fit``'s result, logged beside the trials.
        self.search_data = None  # ``search_data.SearchData``: scaling, training length.
        self._search_test = None  # The test split ``search`` was given, if any.
        self._populated = False
        oracle = oracle or oracle_lib.PruningOracle(
            objective=keras_tuner.Objective(OBJECTIVE, "min"),
            max_trials=max_trials,
            seed=seed,
            # keras-tuner's limit raises before it saves the last failed
            # trial; here failed trials are recorded and the search goes on.
            max_consecutive_failed_trials=sys.maxsize,
        )
        with contextlib.redirect_stdout(io.StringIO()):  # "Reloading Tuner from ...".
            super().__init__(oracle, hypermodel, directory=directory,
                             project_name=project_name, overwrite=overwrite)
        if isinstance(self.oracle, oracle_client.OracleClient):  # A worker.
            self.oracle = fencing.FencedClient(_kt.wrapped_oracle(self.oracle),
                                               distribute.chief_stub(worker_timeout))
        elif not overwrite and not os.path.exists(_kt.tuner_file(self)) and \
                os.path.exists(_kt.oracle_file(self.oracle)):
            self._reload_oracle()  # Saved under another tuner id: a distributed chief's.
        self.oracle.verbose = 0
        if overwrite:
            summaries.clear(self.tensorboard_dir)
        self.search_data = search_data.load(self.project_dir)
        if self.search_data is not None:  # The stored search's training and rows.
            self._configure(self.search_data)

    @property
    def tensorboard_dir(self):
        """The TensorBoard logs of this search (see ``tuner_prune.summaries``)."""
        return records.tensorboard_dir(self.directory, self.project_name)

    def reload(self):
        """Reloads the search; trials a kill interrupted are queued to run again."""
        super().reload()
        if not _kt.is_worker(self):
            resume.requeue_interrupted(self.oracle)

    def _reload_oracle(self):
        """Reloads only the oracle: the search without this tuner id's own file."""
        self.oracle.reload()
        resume.requeue_interrupted(self.oracle)

    def save(self):
        if not _kt.is_worker(self):
            self.oracle.save()
        resume.write_json(_kt.tuner_file(self), self.get_state())

    def _configure(self, data):
        self.hypermodel.configure(data.input_shape, data.epochs, data.steps_per_epoch)

    def populate_initial_space(self):
        # A user builder that raises must fail its trials, not the tuner's
        # construction; when it builds, its own hyperparameters join the space.
        # The schedule's bounds wait for the training length (``search``).
        if not self.hypermodel.configured:
            return
        self._populated = True
        hp = self.oracle.get_space()
        self.hypermodel.declare(hp)
        try:
            self.hypermodel.build_base(hp)
        except Exception:  # Reported by each trial instead.
            pass
        self.oracle.update_space(hp)

    def search(self, x, y, validation_data, *, epochs=None, batch_size=32, test_data=None,
               callbacks=None, **fit_kwargs):
        """Runs the search: locally, as the chief's oracle server, or as a worker.

        Before the first trial, the scaling is fitted on ``x`` and ``y``, the
        schedule space is resolved against the training length, the ridge
        baseline is fitted (or the stored one reused) and all of it is stored
        with the search. A search stored in ``directory`` is resumed only with
        the same epochs, batch size and data.

        Args:
            x, y: Raw training rows and targets (numpy arrays).
            validation_data: ``(x_val, y_val)``, raw; trials are scored on it.
            epochs: Epochs of each trial; the hypermodel's if ``None``.
            batch_size: Rows per optimizer step; with the rows of ``x`` it
                sets the steps per epoch.
            test_data: ``(x_test, y_test)``, raw, or ``None``: measured by the
                baseline and by ``export``, never used to choose.
            callbacks: More Keras callbacks for each trial's fit.
            **fit_kwargs: More arguments of ``HyperModel.fit`` (``model.fit``).

        Raises:
            InputError: Bad data, ``epochs`` or ``batch_size`` (the CLI's
                messages), a schedule space the training length cannot hold,
                or a stored search with other settings or data.
        """
        for name in set(fit_kwargs) & {"target_scale", "input_scale"}:  # Before issue 23.
            raise InputError(f"Expected raw (unscaled) data and no {name}: search fits "
                             f"the scaling on the training split itself, received "
                             f"{name}={fit_kwargs[name]!r}.")
        train, val = self._start(x, y, validation_data, test_data, epochs, batch_size)
        fit_kwargs = {"validation_data": val, "epochs": self.hypermodel.epochs,
                      "batch_size": batch_size, "callbacks": list(callbacks or []),
                      **fit_kwargs}
        mode = distribute.role()
        if mode == "chief":
            self.save()
            distribute.serve(self.oracle, self.project_dir, self.worker_timeout,
                             log=print if self.verbose else _silent)
            return
        if mode == "worker":
            with distribute.Heartbeat(self.project_dir, self.tuner_id):
                super().search(*train, **fit_kwargs)
            return
        super().search(*train, **fit_kwargs)

    def _start(self, x, y, validation_data, test_data, epochs, batch_size):
        """Checks and scales the data, resolves the space, stores, fits the baseline.

        Returns:
            The scaled ``(x, y)`` and validation ``(x_val, y_val)``.
        """
        epochs = self.hypermodel.epochs if epochs is None else epochs
        config_lib.check_positive("epochs", epochs)
        config_lib.check_positive("batch_size", batch_size)
        dataset = splits.from_arrays(x, y, validation_data, test_data)
        if self.hypermodel.input_shape not in (None, dataset.input_shape):
            raise InputError(
                f"Expected rows of shape {self.hypermodel.input_shape} (the "
                f"hypermodel's input_shape), received rows of shape "
                f"{dataset.input_shape}.")
        per_epoch = schedule.steps_per_epoch(len(dataset.x_train), batch_size)
        self.hypermodel.configure(dataset.input_shape, epochs, per_epoch)
        from tuner_prune.export import representative_rows

        data = search_data.from_dataset(dataset, epochs, batch_size, per_epoch,
                                        representative_rows(dataset))
        if not _kt.is_worker(self):  # A worker's stored data and baseline are the chief's.
            data = self._store(dataset, data)
        self.search_data, self._search_test = data, test_data
        if not self._populated:
            self.populate_initial_space()
        return dataset.scaled("train"), dataset.scaled("val")

    def _store(self, dataset, data):
        """Stores ``data`` with a new search, or checks it against the stored one;
        fits or reloads the baseline. Returns the ``SearchData`` in use."""
        stored = search_data.load(self.project_dir)
        changed = [] if stored is None else search_data.differences(stored, data)
        if changed:
            raise InputError(
                f"{self.project_dir}: Expected the settings and data of the search "
                f"stored there, received {'; '.join(changed)}. Search with them to "
                f"resume it, or pass overwrite=True to start over.")
        ridge = stored.ridge if stored is not None else None
        if self.fit_baseline:
            self.baseline, fitted = baseline_lib.ensure_ridge(
                self.directory, dataset, refit=stored is None)
            ridge = fitted if fitted is not None else ridge
            if self.verbose:
                how = (f"fitted in {self.baseline['fit_seconds']:.2f} s" if fitted
                       else "stored with the search")
                print(f"{baseline_lib.describe(self.baseline)} ({how})", flush=True)
        data = dataclasses.replace(data, ridge=ridge)
        if stored is None or ridge is not stored.ridge:
            search_data.store(self.project_dir, data)
        return data

    def run_trial(self, trial, x, y, validation_data, epochs, batch_size=32,
                  callbacks=(), **fit_kwargs):
        """Trains one pruned model and returns its metrics.

        The model is trained by ``self.hypermodel.fit`` (``model.fit`` unless
        overridden), with the tuner's callbacks first in ``callbacks``.

        Args:
            trial: The keras-tuner ``Trial``.
            x, y: Training data, scaled.
            validation_data: ``(x_val, y_val)``, scaled; scores are MSE on it,
                in the target's units.
            epochs: Epochs of the trial.
            batch_size: Rows per optimizer step.
            callbacks: Extra Keras callbacks for this trial's fit.
            **fit_kwargs: More arguments of ``HyperModel.fit``.

        Raises:
            keras_tuner.errors.FailedTrialError: The model could not be built or
                trained, or its loss was not finite.
        """
        keras.backend.clear_session()
        keras.utils.set_random_seed(self.seed + int(trial.trial_id))
        try:
            callbacks = [*callbacks, *self._lease_callbacks(trial),
                         *summaries.trial_callbacks(self.tensorboard_dir, trial.trial_id),
                         *self._progress_callbacks(trial)]
            fit_kwargs = {"validation_data": validation_data, "epochs": epochs,
                          "batch_size": batch_size, "verbose": 0, **fit_kwargs}
            return self._train_and_score(trial, x, y, fit_kwargs, callbacks)
        except (keras_tuner.errors.FailedTrialError, keras_tuner.errors.FatalError,
                fencing.TrialTaken):
            raise
        except Exception as error:  # A trial must fail alone, whatever the cause.
            self._fail(trial, f"{type(error).__name__}: {error}")

    def _train_and_score(self, trial, x, y, fit_kwargs, callbacks):
        model, scorer, history = self._fit(trial, x, y, fit_kwargs, callbacks)
        reason = _non_finite_reason(history)
        if reason or scorer.best_weights is None:
            self._fail(trial, reason or "no finite validation MSE after end_step")
        scorer.restore()
        self.save_model(trial.trial_id, model)
        figures = measure.measure_sparsity(model)
        data = self.search_data
        val_mse = measure.in_target_units(scorer.best_mse, data.y_scale)
        tflite_bytes = measure.trial_tflite_bytes(model, 1.0 / data.x_scale, data.y_scale,
                                                  data.input_shape)
        metrics = {OBJECTIVE: sizes.budget_score(val_mse, tflite_bytes, self.max_bytes),
                   VAL_MSE: val_mse,
                   "sparsity": figures["sparsity"],
                   "nonzero_weights": float(figures["nonzero_weights"]),
                   "tflite_bytes": float(tflite_bytes)}
        self._write_record(trial, {
            "status": TrialStatus.COMPLETED, "best_epoch": scorer.best_epoch, **metrics,
            "tflite_bytes": tflite_bytes,
            "nonzero_weights": figures["nonzero_weights"],
            "within_budget": self.max_bytes is None or tflite_bytes <= self.max_bytes,
            "layers": figures["layers"]})
        return metrics

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
                       scorer, *callbacks], **fit_kwargs)
        history = (result if isinstance(result, keras.callbacks.History)
                   else getattr(model, "history", None))
        return model, scorer, history

    def _progress_callbacks(self, trial):
        """The progress line of ``trial`` (none unless verbose)."""
        if not self.verbose:
            return []
        trials_after = (None if _kt.is_worker(self) else
                        max(0, self.oracle.max_trials - int(trial.trial_id) - 1))
        line = progress.TrialProgress(f"{self._who()}Trial {trial.trial_id}",
                                      self.hypermodel.epochs, self._clock, trials_after)
        return [ShowProgress(line, self.hypermodel.schedule(trial.hyperparameters),
                             self.hypermodel.steps_per_epoch, self.search_data.y_scale)]

    def _scope(self):
        if self.distribution_strategy is None:
            return contextlib.nullcontext()
        return self.distribution_strategy.scope()

    def _fail(self, trial, reason):
        self._write_record(trial, {"status": TrialStatus.FAILED, "reason": reason})
        raise keras_tuner.errors.FailedTrialError(reason)

    def _lease(self, trial_id):
        """This worker's lease on ``trial_id``, or ``None`` (not a worker)."""
        lease = getattr(self.oracle, "lease", None)
        return lease if lease is not None and lease.trial_id == trial_id else None

    def _lease_callbacks(self, trial):
        if self._lease(trial.trial_id) is None:
            return []
        return [StopWhenTaken(self.oracle, self.get_trial_dir(trial.trial_id))]

    def _trial_file(self, trial_id, name):
        """Where this run writes ``name``: under an attempt-private name on a
        worker (the chief renames it when it accepts the run)."""
        path = os.path.join(self.get_trial_dir(trial_id), name)
        lease = self._lease(trial_id)
        return path if lease is None else fencing.attempt_path(path, lease.attempt)

    def _write_record(self, trial, record):
        records.write_record(self._trial_file(trial.trial_id, records.RECORD_FILE),
                             trial.trial_id, trial.hyperparameters.values, record)

    def save_model(self, trial_id, model, step=0):
        model.save_weights(self._trial_file(trial_id, records.WEIGHTS_FILE))

    def load_model(self, trial):
        """The pruning-wrapped model of ``trial`` with its scored weights.

        It takes scaled rows and predicts scaled targets, as it was trained;
        ``get_best_models`` gives models for raw rows.

        Raises:
            InputError: Its weights file is missing or not HDF5 (named).
        """
        model = self.hypermodel.build(trial.hyperparameters)
        path = os.path.join(self.get_trial_dir(trial.trial_id), records.WEIGHTS_FILE)
        expected = f"{path}: Expected the weights of trial {trial.trial_id} (HDF5)"
        if not os.path.isfile(path):
            raise InputError(f"{expected}, received no such file.")
        try:
            model.load_weights(path)
        except OSError as error:  # h5py's: not HDF5, truncated.
            raise InputError(f"{expected}, received a file that cannot be read "
                             f"({error}).") from None
        return model

    def get_best_models(self, num_models=1):
        """The models of the best completed trials, best first, ready to predict.

        Unlike keras-tuner's, each model is stripped of its pruning wrappers
        (tfmot's ``strip_pruning``: no ``PruneLowMagnitude`` layer is left; the
        pruned weights are zeros) and wrapped in the search's scaling
        (``serving.scaled_model``, as exported): it takes raw rows, as given
        to ``search``, and predicts in the target's units. ``load_model``
        gives a trial's pruning-wrapped model, on scaled data.

        Args:
            num_models: How many models, at most.

        Raises:
            InputError: The search has not started (nothing stored yet).
        """
        data = self._stored_data()
        trials = [trial for trial in self.oracle.get_best_trials(num_models)
                  if trial.status == TrialStatus.COMPLETED]
        return [serving.scaled_model(self.load_model(trial), 1.0 / data.x_scale,
                                     data.y_scale, data.input_shape)
                for trial in trials]

    def export(self, export_dir, test_data=None, *, quantization="auto",
               size_metric="bytes", max_mse_increase=0.05, max_bytes=None):
        """Exports the best completed trial as the CLI does; see ``export.export_model``.

        Writes ``saved_model/``, ``model.tflite`` (verified in LiteRT),
        ``manifest.json`` (and the TensorFlow Lite Micro source when the
        full-integer variant qualifies) into ``export_dir``, with the search's
        scaling baked in: raw rows in, target units out. Works in the process
        that searched or on a tuner reloaded from ``directory``.

        Args:
            export_dir: Target folder, as ``--export-dir``.
            test_data: Raw ``(x_test, y_test)``, measured and never used to
                choose; the one given to ``search`` in this process if
                ``None``. Without one, the manifest's ``test_split`` and test
                MSEs are ``None``.
            quantization: ``"auto"``, ``"none"``, ``"dynamic"``, ``"float16"``
                or ``"int8"``, as ``--quantization``.
            size_metric: ``"bytes"`` or ``"gzip_bytes"``, as ``--size-metric``.
            max_mse_increase: Tolerance of a TFLite variant's validation MSE
                over the Keras model's, as ``--max-mse-increase``.
            max_bytes: Size budget of ``model.tflite``; the tuner's own if
                ``None``, as ``--max-bytes``.

        Returns:
            The manifest as a dict.

        Raises:
            InputError: Bad options or ``test_data``, or an ``export_dir``
                the CLI refuses too (nothing is written).
            SearchError: No trial completed, or no TFLite variant qualifies.
        """
        from tuner_prune import best

        data = self._stored_data()
        folders.check_export_dir(export_dir, self.directory)
        test_data = self._search_test if test_data is None else test_data
        test = None if test_data is None else splits.split("test_data", test_data,
                                                           data.input_shape)
        budget = self.max_bytes if max_bytes is None else max_bytes
        return best.export_best(self, data.dataset(test), export_dir,
                                quantization=quantization, size_metric=size_metric,
                                max_mse_increase=max_mse_increase, max_bytes=budget,
                                ridge=data.ridge, fit_baseline=False)

    def _stored_data(self):
        if self.search_data is None:
            raise InputError(
                f"Expected a search in {self.project_dir} ({search_data.FILE}), "
                f"received none: run search first.")
        return self.search_data

    def best_trial(self):
        """The completed trial with the lowest score, or ``None``."""
        best = self.oracle.get_best_trials(1)
        if best and best[0].status == TrialStatus.COMPLETED:
            return best[0]
        return None

    def on_trial_begin(self, trial):
        super().on_trial_begin(trial)
        self._clock.trial_began()
        if self.verbose:
            values = ", ".join(f"{k}={_fmt(v)}" for k, v in trial.hyperparameters.values.items())
            print(f"{self._who()}Trial {trial.trial_id} ({int(trial.trial_id) + 1} of "
                  f"{self.oracle.max_trials}): {values}", flush=True)

    def on_search_begin(self):
        super().on_search_begin()
        self._clock = progress.SearchClock(self.hypermodel.epochs)
        self.save()  # From here on, a killed search resumes instead of restarting.
        summaries.write_experiment(self.tensorboard_dir, self.oracle.get_space(),
                                   budgeted=self.max_bytes is not None)
        if self.baseline is not None:
            summaries.write_baseline(self.tensorboard_dir, self.baseline)

    def on_trial_end(self, trial):
        self._clock.trial_ended()
        try:
            super().on_trial_end(trial)
        except fencing.TrialTaken as taken:  # Nothing of this run is kept.
            if self.verbose:
                print(f"  {self._who()}Trial {trial.trial_id} dropped: {taken}; "
                      f"asking for the next trial", flush=True)
            return
        trial = self.oracle.get_trial(trial.trial_id)
        summaries.write_trial_end(self.tensorboard_dir, trial,
                                  self.oracle.get_best_trials(sys.maxsize),
                                  budgeted=self.max_bytes is not None,
                                  baseline=self.baseline)
        if not self.verbose:
            return
        if trial.status == TrialStatus.COMPLETED:
            line = f"  {self._who()}{self._scores(trial)}"
        else:
            line = f"  {self._who()}{trial.status}: {failure_reason(trial.message)}"
        best = self.best_trial()
        if best is not None:
            line += f" | best so far: trial {best.trial_id}, {self._scores(best)}"
        print(line, flush=True)

    def _scores(self, trial):
        """``val_mse ...``, or with a size budget ``score ... (val_mse ..., size)``."""
        val_mse = trial.metrics.get_last_value(VAL_MSE)
        if self.max_bytes is None:
            return f"val_mse {val_mse:.6g}"
        size = int(trial.metrics.get_last_value("tflite_bytes"))
        over = f" > --max-bytes {self.max_bytes}" if size > self.max_bytes else ""
        return f"score {trial.score:.6g} (val_mse {val_mse:.6g}, {size} bytes{over})"

    def _who(self):
        return "" if distribute.role() == "local" else f"[{self.tuner_id}] "


def _non_finite_reason(history):
    losses = [] if history is None else history.history.get("loss", [])
    bad = [i for i, loss in enumerate(losses) if not np.isfinite(loss)]
    if bad:
        return f"training loss became {losses[bad[0]]} in epoch {bad[0] + 1}"
    return None


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _silent(*args, **kwargs):
    """A ``print`` that prints nothing (a chief under ``--quiet``)."""
