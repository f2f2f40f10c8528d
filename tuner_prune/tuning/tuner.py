"""``PruningTuner``: a Bayesian search over pruning schedules on ``BaseTuner``.

keras-tuner's ``Tuner`` accepts only Keras 3 models, so this tuner runs each
trial itself on tf_keras; the oracle and the trial bookkeeping are keras-tuner's.
The tuner sets up the search and runs its hooks; a ``trial_runner.TrialRunner``
trains and scores each trial, and a ``display.Display`` prints.
"""

import contextlib
import io
import os
import sys

import keras_tuner

from tuner_prune.distributed import distribute, fencing
from tuner_prune.store import folders, records, resume
from tuner_prune.tuning import fit_inputs, keras3
from tuner_prune.core import metrics
from tuner_prune.data import splits
from tuner_prune.export import serving
from tuner_prune.tuning import search_data, summaries
from tuner_prune.tuning import hypermodel as hypermodel_lib
from tuner_prune.tuning import oracle as oracle_lib
from tuner_prune.core import _kt
from tuner_prune.core._kt import TrialStatus, oracle_client
from tuner_prune.tuning.display import Display
from tuner_prune.core.errors import InputError
from tuner_prune.tuning.trial_runner import OBJECTIVE, TrialFiles, TrialRunner


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
    ``max_bytes`` or ``max_flash`` ``metrics.budget_score`` of it.

    Args:
        hypermodel: A ``PruningHyperModel``, or as keras-tuner takes one (a
            ``build(hp)`` function, a ``HyperModel``), wrapped in one.
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
            scored ``metrics.budget_score`` (its MSE, penalised by how far over
            the budget it is).
        max_flash: Flash budget, as ``--max-flash``: a ``.tflite``'s flash is
            its bytes, so a trial is scored against the tighter of
            ``max_bytes`` and ``max_flash`` (``metrics.trial_budget``); the
            export also bounds ``model.c``'s object by it.
        fit_baseline: Fit the ridge baseline (``tuner_prune.data.baseline``)
            before the first trial, or reuse the one stored in ``directory``.
        objective: keras-tuner's, ``"val_mse"`` or ``"val_loss"`` (the MSE) only.
    """

    def __init__(self, hypermodel, *, max_trials=10, seed=0, directory="logs",
                 project_name=records.PROJECT, overwrite=False, oracle=None, verbose=True,
                 distribution_strategy=None,
                 worker_timeout=distribute.DEFAULT_WORKER_TIMEOUT, max_bytes=None,
                 fit_baseline=True, objective=None, max_flash=None):
        hypermodel_lib.check_objective(objective)
        self.seed = seed
        self.verbose = verbose
        self.distribution_strategy = distribution_strategy
        self.worker_timeout = worker_timeout
        self.max_bytes = max_bytes
        self.max_flash = max_flash
        budget = metrics.trial_budget(max_bytes, max_flash)
        limit, flag = budget or (None, None)
        self.fit_baseline = fit_baseline
        self.baseline = None  # ``baseline.fit``'s result, logged beside the trials.
        self.search_data = None  # ``search_data.SearchData``: scaling, training length.
        self._search_test = None  # The test split ``search`` was given, if any.
        self._populated = False
        hypermodel = hypermodel_lib.as_pruning_hypermodel(hypermodel)
        oracle = oracle or oracle_lib.PruningOracle(
            objective=keras_tuner.Objective(OBJECTIVE, "min"),
            max_trials=max_trials,
            seed=seed,
            # keras-tuner's limit raises before it saves the last failed
            # trial; here failed trials are recorded and the search goes on.
            max_consecutive_failed_trials=sys.maxsize,
        )
        if overwrite:  # Links removed as links, never followed (keras-tuner's rmtree follows).
            folders.remove_search(directory, project_name)
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
        self._console = Display(self.oracle, self.hypermodel, self.tuner_id,
                                verbose=verbose, max_bytes=limit, budget_flag=flag,
                                worker=_kt.is_worker(self))
        self._files = TrialFiles(self.oracle, self.get_trial_dir)
        self._runner = TrialRunner(self.hypermodel, self._files, self.tensorboard_dir,
                                   self._console.progress_callbacks, seed=seed,
                                   max_bytes=limit,
                                   distribution_strategy=distribution_strategy)
        if overwrite:
            summaries.clear(self.tensorboard_dir)
        self.search_data = search_data.load(self.project_dir)
        if self.search_data is not None:  # The stored search's training and rows.
            self._configure(self.search_data)

    @property
    def _budgeted(self):
        """Whether a budget scores the trials (``metrics.trial_budget``)."""
        return metrics.trial_budget(self.max_bytes, self.max_flash) is not None

    @property
    def tensorboard_dir(self):
        """The TensorBoard logs of this search (see ``tuner_prune.tuning.summaries``)."""
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

    def search(self, x, y=None, validation_data=None, *, epochs=None, batch_size=None,
               test_data=None, callbacks=None, validation_split=None, **fit_kwargs):
        """Runs the search: locally, as the chief's oracle server, or as a worker.

        Before the first trial, the scaling is fitted on ``x`` and ``y``, the
        schedule space is resolved against the training length, the ridge
        baseline is fitted (or the stored one reused) and all of it is stored
        with the search. A search stored in ``directory`` is resumed only with
        the same epochs, batch size and data.

        Args:
            x, y: Raw training rows and targets (arrays, DataFrames), or ``x``
                a finite ``tf.data.Dataset`` of raw batches (``fit_inputs``).
            validation_data: ``(x_val, y_val)``, ``(x_val, y_val,
                sample_weight)`` or a dataset, raw; scored on its unweighted MSE.
            epochs: Epochs of each trial; the hypermodel's if ``None``.
            batch_size: Rows per optimizer step (a dataset's own, else 32).
            test_data: ``(x_test, y_test)``, raw, or ``None``: measured by the
                baseline and by ``export``, never used to choose.
            callbacks: More Keras callbacks, deep-copied for each trial's fit.
            validation_split: Without ``validation_data``, the last fraction of
                ``x`` and ``y`` to score on, as ``fit`` takes it.
            **fit_kwargs: More arguments of ``HyperModel.fit`` (``model.fit``).

        Raises:
            InputError: Bad data, ``epochs`` or ``batch_size`` (the CLI's
                messages), a schedule space the training length cannot hold,
                a Keras 3 model that cannot be copied into tf_keras, or a
                stored search with other settings or data.
        """
        fit_inputs.trial_callbacks(callbacks or [], "check")  # Refused before training.
        inputs = fit_inputs.resolve(x, y, validation_data, validation_split, batch_size,
                                    fit_kwargs.pop("sample_weight", None))
        train, val = self._start(inputs.x, inputs.y, inputs.validation, test_data,
                                 epochs, inputs.batch_size)
        val = val if inputs.validation_weight is None else (*val, inputs.validation_weight)
        if inputs.sample_weight is not None:
            fit_kwargs["sample_weight"] = inputs.sample_weight
        fit_kwargs = {"validation_data": val, "epochs": self.hypermodel.epochs,
                      "batch_size": inputs.batch_size, "callbacks": list(callbacks or []),
                      **fit_kwargs}
        mode = distribute.role()
        if mode == "chief":
            self.save()
            distribute.serve(self.oracle, self.project_dir, self.worker_timeout,
                             log=self._console.log)
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
        dataset, data = search_data.prepare(x, y, validation_data, test_data, epochs,
                                            batch_size, self.hypermodel.input_shape)
        self.hypermodel.configure(dataset.input_shape, epochs, data.steps_per_epoch)
        self.hypermodel.check_builder()
        if not _kt.is_worker(self):  # A worker's stored data and baseline are the chief's.
            data, self.baseline, fitted = search_data.keep(
                self.project_dir, self.directory, dataset, data, self.search_data,
                self.fit_baseline)
            if self.baseline is not None:
                self._console.baseline(self.baseline, fitted)
        self.search_data, self._search_test = data, test_data
        if not self._populated:
            self.populate_initial_space()
        return dataset.scaled("train"), dataset.scaled("val")

    def run_trial(self, trial, x, y, validation_data, epochs, batch_size=32,
                  callbacks=(), **fit_kwargs):
        """Trains, scores and records one pruned model (``TrialRunner.run``).

        Args:
            trial: The keras-tuner ``Trial``.
            x, y: Training data, scaled.
            validation_data: ``(x_val, y_val)``, scaled; scores are MSE on it,
                in the target's units.
            epochs, batch_size: Epochs of the trial, rows per optimizer step.
            callbacks: Extra Keras callbacks for this trial's fit.
            **fit_kwargs: More arguments of ``HyperModel.fit``.

        Returns:
            The trial's metrics, ``OBJECTIVE`` (``score``) first.

        Raises:
            keras_tuner.errors.FailedTrialError: The model could not be built or
                trained, or its loss was not finite.
        """
        fit_kwargs = {"validation_data": validation_data, "epochs": epochs,
                      "batch_size": batch_size, "verbose": 0, **fit_kwargs}
        return self._runner.run(trial, self.search_data, x, y, fit_kwargs,
                                fit_inputs.trial_callbacks(callbacks, trial.trial_id))

    def save_model(self, trial_id, model, step=0):
        self._files.save_weights(trial_id, model)

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
        to ``search``, and predicts in the target's units. A builder that
        returns Keras 3 models gets back its own Keras 3 model, with the
        pruned weights, in Keras 3 scaling layers. ``load_model``
        gives a trial's pruning-wrapped model, on scaled data.

        Args:
            num_models: How many models, at most.

        Raises:
            InputError: The search has not started (nothing stored yet).
        """
        data = self._stored_data()
        trials = [trial for trial in self.oracle.get_best_trials(num_models)
                  if trial.status == TrialStatus.COMPLETED]
        return [self._best_model(trial, data) for trial in trials]

    def _best_model(self, trial, data):
        """``trial``'s stripped model in the search's scaling, of the builder's kind."""
        pruned = self.load_model(trial)
        user = self.hypermodel.user_model(trial.hyperparameters, pruned)
        if user is not None:
            return keras3.scaled_model(user, 1.0 / data.x_scale, data.y_scale,
                                       data.input_shape)
        return serving.scaled_model(pruned, 1.0 / data.x_scale, data.y_scale,
                                    data.input_shape)

    def export(self, export_dir, test_data=None, *, quantization="auto",
               size_metric="bytes", max_mse_increase=0.05, max_bytes=None, device="phone",
               max_flash=None, max_ram=None, ship="trial"):
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
            device: ``"phone"`` or ``"microcontroller"``, as ``--device``.
            max_flash: Flash budget of ``model.tflite`` and ``model.c``; the
                tuner's own if ``None``, as ``--max-flash``.
            max_ram: RAM budget of the export, as ``--max-ram``.
            ship: ``"trial"`` (the API's default) or ``"best"`` (the CLI's):
                the ridge baseline's linear model when it beats the best
                trial on validation, as ``--ship``.

        Returns:
            The manifest as a dict.

        Raises:
            InputError: Bad options or ``test_data``, or an ``export_dir``
                the CLI refuses too (nothing is written).
            SearchError: No trial completed, or no TFLite variant qualifies.
        """
        from tuner_prune.tuning import best

        data = self._stored_data()
        folders.check_export_dir(export_dir, self.directory)
        test_data = self._search_test if test_data is None else test_data
        test = None if test_data is None else splits.split("test_data", test_data,
                                                           data.input_shape, data.encoding)
        budget = self.max_bytes if max_bytes is None else max_bytes
        max_flash = self.max_flash if max_flash is None else max_flash
        return best.export_best(self, data.dataset(test), export_dir,
                                quantization=quantization, size_metric=size_metric,
                                max_mse_increase=max_mse_increase, max_bytes=budget,
                                device=device, max_flash=max_flash, max_ram=max_ram,
                                ridge=data.ridge, ship=ship)

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
        self._console.trial_began(trial)

    def on_search_begin(self):
        super().on_search_begin()
        self._console.search_began()
        self.save()  # From here on, a killed search resumes instead of restarting.
        summaries.write_experiment(self.tensorboard_dir, self.oracle.get_space(),
                                   budgeted=self._budgeted)
        if self.baseline is not None:
            summaries.write_baseline(self.tensorboard_dir, self.baseline)

    def on_trial_end(self, trial):
        self._console.trial_stopped()
        try:
            super().on_trial_end(trial)
        except fencing.TrialTaken as taken:  # Nothing of this run is kept.
            self._console.trial_dropped(trial, taken)
            return
        trial = self.oracle.get_trial(trial.trial_id)
        summaries.write_trial_end(self.tensorboard_dir, trial,
                                  self.oracle.get_best_trials(sys.maxsize),
                                  budgeted=self._budgeted,
                                  baseline=self.baseline)
        self._console.trial_ended(trial, self.best_trial)

