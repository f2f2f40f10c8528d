"""``TunerState``: a pruning search's state on keras-tuner's ``BaseTuner``.

The half of ``PruningTuner`` a tuner reloaded from its ``directory`` needs:
setting the search up (oracle, resume, a worker's fenced oracle client, the
display, the trial files), saving and reloading it, and what its stored
trials give back (their models, the export of the best, through ``best``).
``PruningTuner`` adds the search itself: its data, its trials and its hooks.
"""

import contextlib
import io
import os
import sys

import keras_tuner

from tuner_prune.core import _kt, metrics
from tuner_prune.core._kt import TrialStatus, oracle_client
from tuner_prune.core.errors import InputError
from tuner_prune.distributed import distribute, fencing
from tuner_prune.settings import config as config_lib
from tuner_prune.store import folders, records, resume
from tuner_prune.tuning import hypermodel as hypermodel_lib
from tuner_prune.tuning import oracle as oracle_lib
from tuner_prune.tuning import search_data, summaries
from tuner_prune.tuning.display import Display
from tuner_prune.tuning.trial_runner import OBJECTIVE, TrialFiles, TrialRunner


class TunerState(_kt.BaseTuner):
    """Set-up, state and results of a pruning search; the arguments are ``PruningTuner``'s."""

    def __init__(self, hypermodel, *, max_trials=10, seed=0, directory="logs",
                 project_name=records.PROJECT, overwrite=False, oracle=None, verbose=True,
                 distribution_strategy=None,
                 worker_timeout=distribute.DEFAULT_WORKER_TIMEOUT, max_bytes=None,
                 fit_baseline=True, objective=None, max_flash=None, max_ram=None,
                 quantization="auto"):
        hypermodel_lib.check_objective(objective)
        self.seed = seed
        self.verbose = verbose
        self.distribution_strategy = distribution_strategy
        self.worker_timeout = worker_timeout
        self.max_bytes = max_bytes
        self.max_flash = max_flash
        self.max_ram, self.quantization = max_ram, quantization
        config_lib.check_max_ram(max_ram, quantization)
        budget = metrics.trial_budget(max_bytes, max_flash)
        limit, flag = budget or (None, None)
        self.fit_baseline = fit_baseline
        self.baseline = None  # ``baseline.fit``'s result, logged beside the trials.
        self.search_data = None  # ``search_data.SearchData``: scaling, training length.
        self.search_test = None  # The test split ``search`` was given, if any.
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
                                max_ram=max_ram, worker=_kt.is_worker(self))
        self._files = TrialFiles(self.oracle, self.get_trial_dir)
        self._runner = TrialRunner(self.hypermodel, self._files, self.tensorboard_dir,
                                   self._console.progress_callbacks, seed=seed,
                                   max_bytes=limit, max_ram=max_ram,
                                   ram_variants=metrics.RAM_VARIANTS.get(quantization, ()),
                                   distribution_strategy=distribution_strategy)
        if overwrite:
            summaries.clear(self.tensorboard_dir)
        self.search_data = search_data.load(self.project_dir)
        if self.search_data is not None:  # The stored search's training and rows.
            self._configure(self.search_data)

    @property
    def _budgeted(self):
        """Whether a budget scores the trials (``metrics.trial_budget``)."""
        return (metrics.trial_budget(self.max_bytes, self.max_flash) is not None
                or self.max_ram is not None)

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
        self._files.load_weights(trial.trial_id, model)
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
        from tuner_prune.tuning import best

        return best.best_models(self, num_models)

    def export(self, export_dir, test_data=None, *, quantization=None,
               size_metric="bytes", max_mse_increase=0.05, max_bytes=None, device="phone",
               max_flash=None, max_ram=None, ship="trial"):
        """Exports the best completed trial as the CLI does (``best.export_tuner``,
        which says what each option does: the CLI's flag of the same name).

        Returns:
            The manifest as a dict.
        """
        from tuner_prune.tuning import best

        return best.export_tuner(self, export_dir, test_data, quantization=quantization,
                                 size_metric=size_metric, max_mse_increase=max_mse_increase,
                                 max_bytes=max_bytes, device=device, max_flash=max_flash,
                                 max_ram=max_ram, ship=ship)

    def stored_data(self):
        """The ``SearchData`` the search stored; ``InputError`` before it started."""
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
