"""The jobs behind the CLI: run a search, export its best trial."""

import keras_tuner

from tuner_prune.settings import stored_search
from tuner_prune.distributed import distribute
from tuner_prune.settings import config as config_lib
from tuner_prune.space import models
from tuner_prune.store import lock, records, resume
from tuner_prune.tuning import best, keras3
from tuner_prune.tuning.best import export_best  # noqa: F401 (a public name of tuner_prune.search)
from tuner_prune.tuning.hypermodel import PruningHyperModel
from tuner_prune.settings.plan import Plan, resolve_search
from tuner_prune.tuning.tuner import PruningTuner


def prepare(plan):
    """The hypermodel of a ``Plan``: its builder, row shape, schedule space."""
    return PruningHyperModel(
        plan.builder,
        input_shape=plan.dataset.input_shape,
        epochs=plan.config.epochs,
        steps_per_epoch=plan.steps_per_epoch,
        space=plan.space,
        block_size=plan.block_size,
        hyperparameters=plan.hyperparameters,
        widest_units=getattr(plan.config, "widest_units", None),
    )


def check_builder(hypermodel, spec):
    """Fails early if ``--model`` returns something other than a tf_keras model
    over the data's rows (their width, or their shape when N-d) that predicts
    one value per row, or one with a kernel too small for ``--block-size``.

    A builder that raises is left to fail its trials, with the reason recorded.
    """
    if hypermodel.build_model is None:
        return
    try:
        model = hypermodel.build_model(keras_tuner.HyperParameters())
    except Exception:  # Reported per trial instead.
        return
    if keras3.is_keras3_model(model):
        model = keras3.to_tf_keras(model, hypermodel.input_shape, f"--model {spec}")
    models.check_model(model, f"--model {spec}")
    _check_input(model, hypermodel.input_shape, spec)
    models.check_output(model, hypermodel.input_shape, f"--model {spec}")
    _check_blocks(model, tuple(hypermodel.block_size), spec)


def _check_blocks(model, block_size, spec):
    """Raises ``BuilderError`` for a kernel tfmot would fail to prune in ``block_size``.

    A 2-D kernel with a dimension of 1 stays dense (``hypermodel._prune_in_blocks``); any
    other needs more than one block along each dimension.
    """
    if block_size == (1, 1):
        return
    for layer in model.layers:
        kernel = getattr(layer, "kernel", None)
        if kernel is None or kernel.shape.rank != 2 or min(kernel.shape) == 1:
            continue
        if kernel.shape[0] <= block_size[0] or kernel.shape[1] <= block_size[1]:
            raise models.BuilderError(
                f"--model {spec}: Expected kernels larger than the --block-size "
                f"{block_size[0]}x{block_size[1]} in each dimension (tfmot cannot "
                f"block-prune a kernel no wider than its block), received layer "
                f"{layer.name!r} with a {kernel.shape[0]}x{kernel.shape[1]} kernel.")


def _check_input(model, shape, spec):
    """Raises ``BuilderError`` unless ``model`` takes rows of ``shape`` (``None`` fits any)."""
    if not model.built:
        return
    taken = tuple(model.input_shape)[1:]
    if len(taken) == len(shape) and all(d in (None, s) for d, s in zip(taken, shape)):
        return
    expected = (f"{shape[0]} features" if len(shape) == 1 else
                f"rows of shape {shape} (input shape {(None, *shape)})")
    raise models.BuilderError(f"--model {spec}: Expected a model taking {expected}, "
                              f"received one with input shape {model.input_shape}.")


def set_threads(count):
    """Limits TensorFlow to ``count`` intra-op and ``count`` inter-op threads.

    Must run before TensorFlow runs its first operation; ``None`` keeps its
    defaults (one thread per core in each pool).
    """
    import tensorflow as tf

    if count is not None:
        tf.config.threading.set_intra_op_parallelism_threads(count)
        tf.config.threading.set_inter_op_parallelism_threads(count)


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


def open_tuner(plan, hypermodel=None, *, store=False, verbose=True, strategy=None):
    """A tuner on the plan's ``--directory``, resumed unless ``--overwrite``.

    Args:
        plan: The search's ``Plan`` (``resolve_search`` has checked that the
            search stored there may be resumed with it).
        hypermodel: ``prepare(plan)`` when ``None``.
        store: Whether to store the config and data fingerprint beside the
            search first; without it, the search is only read.
        verbose: Whether the tuner prints its trials.
        strategy: A ``tf.distribute`` strategy each trial trains under.

    A worker of a distributed search never overwrites or records the search:
    the chief does.
    """
    config = plan.config
    worker = distribute.role() == "worker"
    tuner = PruningTuner(hypermodel or prepare(plan), max_trials=config.max_trials,
                         seed=config.seed, directory=config.directory,
                         project_name=records.PROJECT,
                         overwrite=config.overwrite and not worker, verbose=verbose,
                         distribution_strategy=strategy,
                         worker_timeout=config.worker_timeout,
                         max_bytes=config.max_bytes, max_flash=config.max_flash,
                         max_ram=config.max_ram, quantization=config.quantization)
    if store and not worker:  # After --overwrite removed the old trials, not before.
        stored_search.store(config, plan.dataset.fingerprint())
    if not worker:
        tuner.oracle.max_trials = config.max_trials
    return tuner


def run_search(plan):
    """Runs (or resumes) the search a plan describes, then exports its best trial.

    The search holds its ``--directory`` while it runs (``lock.holding``);
    a worker of a distributed search does not.

    A thin caller of the API: builds the hypermodel and the tuner, calls
    ``tuner.search`` with the raw splits, then ``tuner.export`` with the test
    split and the export options.

    Args:
        plan: A ``Plan`` from ``plan.resolve_search``, or a ``SearchConfig``
            (resolved here).

    Returns:
        The export manifest, or ``None`` on a worker of a distributed search
        (the chief exports).
    """
    if not isinstance(plan, Plan):
        plan = resolve_search(plan)
    config = plan.config
    mode = distribute.configure(config.oracle, config.tuner_id)
    if mode == "worker":  # Workers share the chief's folder, which the chief holds.
        return _run(plan, mode)
    with lock.holding(config.directory):
        return _run(plan, mode)


def _run(plan, mode):
    """``run_search``'s work, its ``--directory`` held unless ``mode`` is a worker's."""
    config, dataset = plan.config, plan.dataset
    set_threads(config.threads)
    strategy = mirrored_strategy() if config.distribution == "mirrored" else None
    hypermodel = prepare(plan)
    check_builder(hypermodel, config.model)
    tuner = open_tuner(plan, hypermodel, store=True, strategy=strategy,
                       verbose=not config.quiet)
    if strategy is not None and not config.quiet:
        print(f"Training each trial on {strategy.num_replicas_in_sync} replicas "
              f"(MirroredStrategy)", flush=True)
    if dataset.encoding is not None and not config.quiet:
        print_inputs(dataset)
    if mode != "worker" and not config.quiet:  # A worker's oracle is the chief's.
        _report_resume(tuner, config)
    test = (dataset.x_test, dataset.y_test)
    tuner.search(dataset.x_train, dataset.y_train,
                 validation_data=(dataset.x_val, dataset.y_val), test_data=test,
                 epochs=config.epochs, batch_size=config.batch_size)
    if mode == "worker":
        return None
    best.cross_check_first(tuner, dataset, say=None if config.quiet else _say,
                           **plan.export_options)
    if dataset.encoding is not None:  # A CSV's: the export carries its inputs mapping.
        return export_best(tuner, dataset, config.export_dir,
                           ridge=tuner.search_data.ridge, **plan.export_options)
    return tuner.export(config.export_dir, test, **plan.export_options)


def _say(line):
    print(line, flush=True)


def print_inputs(dataset):
    """What a search read from its CSV, and how: the run's first lines."""
    encoding = dataset.encoding
    rows = len(dataset.x_train) + len(dataset.x_val) + len(dataset.x_test)
    print(f"Read {dataset.source}: {rows} rows, {len(encoding.raw_columns)} columns "
          f"read as {encoding.width} inputs", flush=True)
    for line in encoding.describe():
        print(f"  {line}", flush=True)


def _report_resume(tuner, config):
    completed, failed, again = resume.progress(tuner.oracle)
    if completed or failed or again:
        print(f"Resuming the search in {config.directory}: {completed} trials completed, "
              f"{failed} failed, {again} interrupted to run again, "
              f"--max-trials {config.max_trials}.", flush=True)


def export_search(directory, export_dir, **options):
    """Exports the best completed trial of the search stored in ``directory``.

    Works at any point of a search, while it runs or after it was killed; the
    search's state is only read and nothing is trained.

    Args:
        directory: The search's ``--directory``.
        export_dir: Where to export.
        **options: ``quantization``, ``size_metric``, ``max_mse_increase``,
            ``max_bytes``, ``device``, ``max_flash``, ``max_ram``, ``ship``;
            missing or ``None`` ones are the search's own.

    Returns:
        The export manifest.

    Raises:
        InputError: ``directory`` holds no search, its data changed, or bad
            options.
        SearchError: No trial has completed yet, or no TFLite variant qualifies.
    """
    stored = stored_search.require_stored(directory)
    chosen = {name: value for name, value in options.items() if value is not None}
    config = config_lib.SearchConfig.from_dict(
        {**stored["config"], **chosen, "directory": directory, "export_dir": export_dir,
         "overwrite": False})
    plan = resolve_search(config, reading=True)
    tuner = open_tuner(plan, verbose=False)
    return export_best(tuner, plan.dataset, export_dir, **plan.export_options)
