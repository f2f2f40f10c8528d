"""``PruningTuner``: a Bayesian search over pruning schedules on ``BaseTuner``.

keras-tuner's ``Tuner`` accepts only Keras 3 models, so this tuner runs each
trial itself on tf_keras; the oracle and the trial bookkeeping are keras-tuner's.
``tuner_state.TunerState`` sets the search up, saves and reloads it and gives
back its models and export; here the search runs keras-tuner's hooks, and hands
the work on: ``search_data`` keeps the data, a ``trial_runner.TrialRunner``
trains and scores each trial, a ``display.Display`` prints, ``summaries`` logs.
"""

import sys

from tuner_prune.core import _kt
from tuner_prune.distributed import distribute, fencing
from tuner_prune.tuning import fit_inputs, search_data, summaries
from tuner_prune.tuning.tuner_state import TunerState


class PruningTuner(TunerState):
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
    ``max_bytes``, ``max_flash`` or ``max_ram`` ``metrics.budget_score`` of it.

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
        max_ram: RAM budget, as ``--max-ram``: each trial's TFLM tensor arena
            (the smallest of its ``metrics.RAM_VARIANTS[quantization]``) is scored
            as ``max_bytes`` scores its bytes; it also bounds the export.
        quantization: As ``--quantization``: whose arenas ``max_ram`` measures.
        fit_baseline: Fit the ridge baseline (``tuner_prune.data.baseline``)
            before the first trial, or reuse the one stored in ``directory``.
        objective: keras-tuner's, ``"val_mse"`` or ``"val_loss"`` (the MSE) only.
    """

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
        self.search_data, self.search_test = data, test_data
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
