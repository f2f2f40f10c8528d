"""The jobs behind the CLI: run a search, export its best trial."""

import os
import tempfile

import keras_tuner

from tuner_prune import config as config_lib, data as data_lib, distribute, models
from tuner_prune import schedule, space as space_lib
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


def mirrored_strategy(logical_cpus=2):
    """``MirroredStrategy`` over all local GPUs, else over logical CPU devices.

    Must run before TensorFlow initialises its devices.
    """
    import tensorflow as tf

    if not tf.config.list_physical_devices("GPU"):
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * logical_cpus)
        devices = [device.name for device in tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    return tf.distribute.MirroredStrategy()


def open_tuner(config, hypermodel, fingerprint, verbose=True, strategy=None):
    """A tuner on ``config.directory``; refuses to resume a different search.

    A worker of a distributed search never overwrites or records the search:
    the chief does.
    """
    worker = distribute.role() == "worker"
    overwrite = config.overwrite and not worker
    stored = None if overwrite else config_lib.load_stored(config.directory)
    if stored is not None:
        changed = config_lib.differences(stored, config, fingerprint)
        if changed:
            raise ValueError(f"{config.directory} holds a different search ("
                             f"{'; '.join(changed)}); use --overwrite to start over")
    tuner = PruningTuner(hypermodel, max_trials=config.max_trials, seed=config.seed,
                         directory=config.directory, project_name=PROJECT,
                         overwrite=overwrite, verbose=verbose,
                         distribution_strategy=strategy,
                         worker_timeout=config.worker_timeout)
    if not worker:
        tuner.oracle.max_trials = config.max_trials
        config_lib.store(config, fingerprint)
    return tuner


def run_search(config):
    """Runs the search a config describes, then exports its best trial.

    Returns:
        The export manifest, or ``None`` on a worker of a distributed search
        (the chief exports).
    """
    mode = distribute.configure(config.oracle, config.tuner_id)
    check_writable(config.export_dir)
    strategy = mirrored_strategy() if config.distribution == "mirrored" else None
    dataset, hypermodel = prepare(config)
    check_builder(hypermodel)
    tuner = open_tuner(config, hypermodel, dataset.fingerprint(), strategy=strategy)
    if strategy is not None:
        print(f"Training each trial on {strategy.num_replicas_in_sync} replicas "
              f"(MirroredStrategy)", flush=True)
    tuner.search(*dataset.scaled("train"), validation_data=dataset.scaled("val"),
                 batch_size=config.batch_size, target_scale=dataset.y_scale)
    if mode == "worker":
        return None
    return export_best(tuner, dataset, config.export_dir)


def export_best(tuner, dataset, export_dir, **options):
    """Exports the best completed trial of ``tuner``.

    Raises:
        SearchError: No trial completed.
    """
    trial = tuner.best_trial()
    if trial is None:
        reasons = sorted({(t.message or "").strip().splitlines()[-1]
                          for t in tuner.oracle.trials.values() if t.message})
        raise SearchError(f"no trial completed; every trial failed: {'; '.join(reasons)}")
    hyperparameters = dict(trial.hyperparameters.values)
    plan = tuner.hypermodel.schedule(trial.hyperparameters)
    return export_model(
        tuner.load_model(trial), dataset, export_dir,
        hyperparameters=hyperparameters, val_mse=trial.score,
        total_steps=tuner.hypermodel.total_steps,
        extra={"trial_id": trial.trial_id, "frequency": plan.frequency,
               "completed_trials": sum(t.status == "COMPLETED"
                                       for t in tuner.oracle.trials.values())},
        **options)
