"""``PruningTuner``: a Bayesian search over pruning schedules on ``BaseTuner``.

keras-tuner's ``Tuner`` accepts only Keras 3 models, so this tuner runs each
trial itself on tf_keras; the oracle and the trial bookkeeping are keras-tuner's.
"""

import contextlib
import io
import os
import sys

import keras_tuner
import numpy as np

from tuner_prune import distribute, fencing, measure, progress, records, resume, sizes
from tuner_prune import summaries
from tuner_prune import oracle as oracle_lib
from tuner_prune._keras import keras, sparsity
from tuner_prune._kt import TrialStatus, base_tuner, oracle_client
from tuner_prune.callbacks import ScoreAtFinalSparsity, ShowProgress, StopWhenTaken
from tuner_prune.errors import InputError

# The oracle's objective: the validation MSE, multiplied by
# ``sizes.budget_score``'s penalty when a trial's TFLite model is over
# ``--max-bytes``. ``VAL_MSE`` is always the model's own validation MSE.
OBJECTIVE = "score"
VAL_MSE = "val_mse"


class PruningTuner(base_tuner.BaseTuner):
    """Bayesian search over pruning schedules that minimises validation MSE.

    Each trial reports ``val_mse`` (the model's validation MSE, target units)
    and ``score``, the objective: ``val_mse`` itself, or under ``max_bytes``
    ``sizes.budget_score`` of it.

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
    """

    def __init__(self, hypermodel, *, max_trials=10, seed=0, directory="logs",
                 project_name=records.PROJECT, overwrite=False, oracle=None, verbose=True,
                 distribution_strategy=None,
                 worker_timeout=distribute.DEFAULT_WORKER_TIMEOUT, max_bytes=None):
        self.seed = seed
        self.verbose = verbose
        self.distribution_strategy = distribution_strategy
        self.worker_timeout = worker_timeout
        self.max_bytes = max_bytes
        self.baseline = None  # ``baseline.fit``'s result, logged beside the trials.
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
            self.oracle = fencing.FencedClient(self.oracle._oracle,
                                               distribute.chief_stub(worker_timeout))
        elif not overwrite and not os.path.exists(self._get_tuner_fname()) and \
                os.path.exists(self.oracle._get_oracle_fname()):
            self._reload_oracle()  # Saved under another tuner id: a distributed chief's.
        self.oracle.verbose = 0
        if overwrite:
            summaries.clear(self.tensorboard_dir)

    @property
    def tensorboard_dir(self):
        """The TensorBoard logs of this search (see ``tuner_prune.summaries``)."""
        return records.tensorboard_dir(self.directory, self.project_name)

    def reload(self):
        """Reloads the search; trials a kill interrupted are queued to run again."""
        super().reload()
        if not self._is_worker():
            resume.requeue_interrupted(self.oracle)

    def _reload_oracle(self):
        """Reloads only the oracle: the search without this tuner id's own file."""
        self.oracle.reload()
        resume.requeue_interrupted(self.oracle)

    def save(self):
        if not self._is_worker():
            self.oracle.save()
        resume.write_json(self._get_tuner_fname(), self.get_state())

    def _populate_initial_space(self):
        # A user builder that raises must fail its trials, not the tuner's
        # construction; when it builds, its own hyperparameters join the space.
        hp = self.oracle.get_space()
        self.hypermodel.declare(hp)
        try:
            self.hypermodel.build_base(hp)
        except Exception:  # Reported by each trial instead.
            pass
        self.oracle.update_space(hp)

    def search(self, *fit_args, **fit_kwargs):
        """Runs the search: locally, as the chief's oracle server, or as a worker."""
        mode = distribute.role()
        if mode == "chief":
            self.save()
            distribute.serve(self.oracle, self.project_dir, self.worker_timeout,
                             log=print if self.verbose else _silent)
            return
        if mode == "worker":
            with distribute.Heartbeat(self.project_dir, self.tuner_id):
                super().search(*fit_args, **fit_kwargs)
            return
        super().search(*fit_args, **fit_kwargs)

    def run_trial(self, trial, x, y, validation_data, batch_size=32,
                  target_scale=1.0, input_scale=None, callbacks=()):
        """Trains one pruned model and returns its metrics.

        Args:
            trial: The keras-tuner ``Trial``.
            x, y: Training data.
            validation_data: ``(x_val, y_val)``; scores are MSE on it.
            batch_size: Rows per optimizer step.
            target_scale: Factor from the ``y`` given here to the target's own
                units; MSEs are reported in those units.
            input_scale: Factors from raw features to the ``x`` given here,
                baked into the TFLite model whose size is recorded (ones by
                default).
            callbacks: Extra Keras callbacks for this trial's fit.

        Raises:
            keras_tuner.errors.FailedTrialError: The model could not be built or
                trained, or its loss was not finite.
        """
        keras.backend.clear_session()
        keras.utils.set_random_seed(self.seed + int(trial.trial_id))
        try:
            callbacks = [*callbacks, *self._lease_callbacks(trial),
                         *summaries.trial_callbacks(self.tensorboard_dir, trial.trial_id)]
            scales = (np.ones(x.shape[-1], np.float32) if input_scale is None
                      else input_scale, target_scale, x.shape[1:])
            callbacks += self._progress_callbacks(trial, target_scale)
            return self._train_and_score(trial, x, y, validation_data, batch_size,
                                         scales, callbacks)
        except (keras_tuner.errors.FailedTrialError, keras_tuner.errors.FatalError,
                fencing.TrialTaken):
            raise
        except Exception as error:  # A trial must fail alone, whatever the cause.
            self._fail(trial, f"{type(error).__name__}: {error}")

    def _train_and_score(self, trial, x, y, validation_data, batch_size, scales,
                         callbacks):
        model, scorer, history = self._fit(trial, x, y, validation_data, batch_size,
                                           callbacks)
        reason = _non_finite_reason(history)
        if reason or scorer.best_weights is None:
            self._fail(trial, reason or "no finite validation MSE after end_step")
        scorer.restore()
        self.save_model(trial.trial_id, model)
        figures = measure.measure_sparsity(model)
        val_mse = measure.in_target_units(scorer.best_mse, scales[1])
        tflite_bytes = measure.trial_tflite_bytes(model, *scales)
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

    def _fit(self, trial, x, y, validation_data, batch_size, callbacks):
        steps = len(x) // batch_size + bool(len(x) % batch_size)
        if steps != self.hypermodel.steps_per_epoch:
            raise keras_tuner.errors.FatalValueError(
                f"Expected {self.hypermodel.steps_per_epoch} steps per epoch as the "
                f"hypermodel was built for, received {steps} ({len(x)} rows, batch "
                f"size {batch_size}).")
        with self._scope():
            model = self.hypermodel.build(trial.hyperparameters)
        plan = self.hypermodel.schedule(trial.hyperparameters)
        scorer = ScoreAtFinalSparsity(plan.end_step, steps)
        history = model.fit(
            x, y, validation_data=validation_data, batch_size=batch_size,
            epochs=self.hypermodel.epochs, verbose=0,
            callbacks=[sparsity.UpdatePruningStep(), keras.callbacks.TerminateOnNaN(),
                       scorer, *callbacks])
        return model, scorer, history

    def _progress_callbacks(self, trial, target_scale):
        """The progress line of ``trial`` (none unless verbose)."""
        if not self.verbose:
            return []
        trials_after = (None if self._is_worker() else
                        max(0, self.oracle.max_trials - int(trial.trial_id) - 1))
        line = progress.TrialProgress(f"{self._who()}Trial {trial.trial_id}",
                                      self.hypermodel.epochs, self._clock, trials_after)
        return [ShowProgress(line, self.hypermodel.schedule(trial.hyperparameters),
                             self.hypermodel.steps_per_epoch, target_scale)]

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


def failure_reason(message):
    """The first line of why a trial failed, from its ``trial.message``.

    keras-tuner stores the traceback of the exception that failed the trial;
    the reason is the first line of that exception's text (``RuntimeError:
    boom``, as ``_fail`` words it), without the ``FailedTrialError`` carrying
    it. ``record.json`` keeps the whole reason.
    """
    lines = (message or "").strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    start = frames[-1] + 1 if frames else 0
    text = next((line for line in lines[start:] if line.strip() and not line[0].isspace()),
                None)
    if text is None:
        return "no reason recorded"
    _, carried, reason = text.partition("FailedTrialError: ")
    return reason if carried else text


def _non_finite_reason(history):
    losses = history.history.get("loss", [])
    bad = [i for i, loss in enumerate(losses) if not np.isfinite(loss)]
    if bad:
        return f"training loss became {losses[bad[0]]} in epoch {bad[0] + 1}"
    return None


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _silent(*args, **kwargs):
    """A ``print`` that prints nothing (a chief under ``--quiet``)."""
