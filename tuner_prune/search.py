"""The jobs behind the CLI: run a search, export its best trial."""

import os
import tempfile

import keras_tuner

from tuner_prune import config as config_lib, data as data_lib, models
from tuner_prune import schedule, space as space_lib, tflite
from tuner_prune.export import export_model
from tuner_prune.hypermodel import PruningHyperModel
from tuner_prune.tuner import PruningTuner

PROJECT = "search"


class SearchError(RuntimeError):
    """The search ran but produced nothing to export (every trial failed)."""


def prepare(config):
    """Loads the data and builds the hypermodel a config describes.

    Raises:
        ValueError: Bad data, schedule bounds or ``--model`` (one-line message).
    """
    dataset = data_lib.load_dataset(
        config.data, config.target, config.seed, config.n_samples,
        config.n_features, config.n_informative, config.noise)
    builder = models.import_builder(config.model) if config.model else None
    hypermodel = PruningHyperModel(
        builder,
        n_features=dataset.n_features,
        epochs=config.epochs,
        steps_per_epoch=schedule.steps_per_epoch(len(dataset.x_train), config.batch_size),
        space=space_lib.ScheduleSpace.from_text(**config.schedule_texts),
        block_size=config_lib.parse_block_size(config.block_size),
    )
    return dataset, hypermodel


def check_writable(folder):
    """Raises ``ValueError`` unless files can be created beside ``folder``."""
    parent = os.path.dirname(os.path.abspath(folder))
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ValueError(f"--export-dir {folder}: exists and is not a folder")
    try:
        os.makedirs(parent, exist_ok=True)
        tempfile.TemporaryFile(dir=parent).close()
    except OSError as error:
        raise ValueError(f"--export-dir {folder}: cannot be written ({error.strerror})") from None


def check_builder(hypermodel):
    """Fails early if the base-model builder returns something not tf_keras.

    A builder that raises is left to fail its trials, with the reason recorded.
    """
    try:
        hypermodel.build_base(keras_tuner.HyperParameters())
    except models.BuilderError:
        raise
    except Exception:  # Reported per trial instead.
        pass


def open_tuner(config, hypermodel, fingerprint, verbose=True):
    """A tuner on ``config.directory``; refuses to resume a different search."""
    stored = None if config.overwrite else config_lib.load_stored(config.directory)
    if stored is not None:
        changed = config_lib.differences(stored, config, fingerprint)
        if changed:
            raise ValueError(f"{config.directory} holds a different search ("
                             f"{'; '.join(changed)}); use --overwrite to start over")
    tuner = PruningTuner(hypermodel, max_trials=config.max_trials, seed=config.seed,
                         directory=config.directory, project_name=PROJECT,
                         overwrite=config.overwrite, verbose=verbose)
    tuner.oracle.max_trials = config.max_trials
    config_lib.store(config, fingerprint)
    return tuner


def run_search(config):
    """Runs the search a config describes, then exports its best trial.

    Returns:
        The export manifest.
    """
    check_writable(config.export_dir)
    dataset, hypermodel = prepare(config)
    check_builder(hypermodel)
    tuner = open_tuner(config, hypermodel, dataset.fingerprint())
    tuner.search(*dataset.scaled("train"), validation_data=dataset.scaled("val"),
                 batch_size=config.batch_size, target_scale=dataset.y_scale)
    return export_best(tuner, dataset, config.export_dir, **config.export_options)


def export_search(directory, export_dir, **options):
    """Exports the best trial of the search in ``directory`` again, without training.

    The search may be finished or interrupted; its settings (data, model,
    schedule bounds) are read from the config it stored.

    Args:
        directory: The search's ``--directory``.
        export_dir: Where to export.
        **options: ``quantization``, ``size_metric``, ``max_mse_increase``;
            missing or ``None`` ones are the search's own.

    Returns:
        The export manifest.

    Raises:
        ValueError: No search in ``directory``, its data changed, or bad options.
        SearchError: No trial of the search completed, or no TFLite variant
            qualifies.
    """
    stored = config_lib.load_stored(directory)
    if stored is None:
        raise ValueError(f"Expected a search in --directory {directory} (with "
                         f"{config_lib.CONFIG_FILE}), received none; run `search` first.")
    chosen = {name: value for name, value in options.items() if value is not None}
    config = config_lib.SearchConfig.from_dict({
        **stored["config"], **chosen, "directory": directory, "export_dir": export_dir,
        "overwrite": False})
    check_writable(config.export_dir)
    dataset, hypermodel = prepare(config)
    if dataset.fingerprint() != stored["data"]:
        raise ValueError(f"Expected the data the search in {directory} was run on, "
                         f"received different data from {dataset.source}.")
    tuner = PruningTuner(hypermodel, seed=config.seed, directory=directory,
                         project_name=PROJECT, verbose=False)
    return export_best(tuner, dataset, config.export_dir, **config.export_options)


def export_best(tuner, dataset, export_dir, **options):
    """Exports the best completed trial of ``tuner``.

    Args:
        tuner: A ``PruningTuner`` with its trials.
        dataset: The ``Dataset`` it searched on.
        export_dir: Where to export.
        **options: ``export_model``'s ``quantization``, ``size_metric``,
            ``max_mse_increase``.

    Raises:
        SearchError: No trial completed, or no TFLite variant qualifies.
    """
    trial = tuner.best_trial()
    if trial is None:
        reasons = sorted({(t.message or "").strip().splitlines()[-1]
                          for t in tuner.oracle.trials.values() if t.message})
        raise SearchError(f"no trial completed; every trial failed: {'; '.join(reasons)}")
    hyperparameters = dict(trial.hyperparameters.values)
    plan = tuner.hypermodel.schedule(trial.hyperparameters)
    try:
        return export_model(
            tuner.load_model(trial), dataset, export_dir,
            hyperparameters=hyperparameters, val_mse=trial.score,
            total_steps=tuner.hypermodel.total_steps,
            extra={"trial_id": trial.trial_id, "frequency": plan.frequency,
                   "completed_trials": sum(t.status == "COMPLETED"
                                           for t in tuner.oracle.trials.values())},
            **options)
    except tflite.NoCandidateError as error:
        raise SearchError(str(error)) from None
