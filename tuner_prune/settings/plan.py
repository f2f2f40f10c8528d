"""From flags to a resolved ``Plan``, once, free of TensorFlow.

``resolve_search`` and ``resolve_sweep`` run every check of a config against
its folders and data (loading the data, resolving the schedule space against
the training length, importing ``--model``); ``search``, ``export`` and
``sweep`` take the ``Plan`` and check nothing again.
"""

import dataclasses

import numpy as np

from tuner_prune.store import folders
from tuner_prune.settings import stored_search
from tuner_prune.data import dataset as data_lib
from tuner_prune.settings import config as config_lib, state
from tuner_prune.space import models, schedule
from tuner_prune.core.errors import InputError
from tuner_prune.space import training
from tuner_prune.space.bounds import Bound, ScheduleSpace


@dataclasses.dataclass(frozen=True)
class Plan:
    """Everything a search or a sweep runs on, checked.

    Args:
        config: The ``SearchConfig`` or ``SweepConfig`` it was resolved from.
        dataset: The loaded ``Dataset``.
        space: The ``ScheduleSpace`` resolved for the training length.
        builder: The ``--model`` builder, or ``None`` for the built-in model.
        block_size: tfmot's ``(rows, columns)``; ``(1, 1)`` is unstructured.
        steps_per_epoch: Optimizer steps in one epoch over the training split.
        export_options: ``tuner.export``'s options: ``ship`` and those
            choosing ``model.tflite``;
            ``None`` for a sweep.
        hyperparameters: The model's hyperparameters fixed or bounded
            (``{name: value or Bound}``, ``--hp`` and ``--article``; a sweep's
            are the article's), checked against the model when it is built.
    """

    config: object
    dataset: data_lib.Dataset
    space: ScheduleSpace
    builder: object
    block_size: tuple
    steps_per_epoch: int
    export_options: dict = None
    hyperparameters: dict = None

    @property
    def total_steps(self):
        """Optimizer steps in one trial."""
        return self.config.epochs * self.steps_per_epoch


def resolve_search(config, reading=False):
    """Checks every setting of a search against its folders and data; writes nothing.

    In this order: the schedule flags parse, ``--directory`` and
    ``--export-dir`` can be written and an export there can touch no other
    file, the search state in ``--directory`` is tuner_prune's and can be
    read (``state.check_directory``), the data load, the schedule space fits
    the training length, a search stored in ``--directory`` may be resumed
    with these settings, the built-in model's first kernel is taller than a
    ``--block-size`` block (``check_block_input``), and the
    ``--model`` module imports (the only user code that runs; TensorFlow is
    not imported unless that module imports it).

    Args:
        config: A ``SearchConfig``.
        reading: The stored search is only read (``export``), which may
            choose another ``--max-bytes`` than the search's.

    Returns:
        The ``Plan``: its config's ``epochs`` and ``batch_size`` set (derived
        from the training rows when not given, ``training.resolved``), and the
        built-in model's ``widest_units`` (the stored search's when resumed).

    Raises:
        InputError: With a one-line reason (a ``DataError``, a ``BuilderError``).
    """
    space = ScheduleSpace.from_text(**config.schedule_texts)
    folders.check_writable(config.directory, "--directory")
    folders.check_writable(config.export_dir, "--export-dir", staged=True)
    folders.check_export_target(config)
    state.check_directory(config)
    dataset = load_data(config)
    config = stored_search.kept_width(
        training.resolved(config, len(dataset.x_train), int(np.prod(dataset.input_shape))))
    per_epoch = schedule.steps_per_epoch(len(dataset.x_train), config.batch_size)
    resolved = space.resolve(config.epochs * per_epoch, per_epoch)
    stored_search.check_resumable(config, dataset.fingerprint(), reading)
    block_size = config_lib.parse_block_size(config.block_size)
    if not config.model:  # A --model's kernels are checked when it is built.
        check_block_input(block_size, dataset.input_shape)
    return Plan(config, dataset, resolved, import_builder(config), block_size, per_epoch,
                config.export_options, config.model_hyperparameters)


def check_block_input(block_size, input_shape):
    """Refuses blocks as tall as the built-in model's first kernel (its input).

    tfmot pools a kernel into blocks and fails on a kernel with one block
    along a dimension; the first kernel has a row per feature.

    Raises:
        InputError: Naming ``--block-size`` and the features of a row.
    """
    rows, columns = block_size
    features = int(np.prod(input_shape))
    if (rows, columns) != (1, 1) and features <= rows:
        raise InputError(f"Expected --block-size with fewer rows than the {features} "
                         f"features of a row (tfmot cannot block-prune a kernel whose input "
                         f"is no wider than its block), received {rows}x{columns}.")


def resolve_sweep(config):
    """Loads the data of a sweep, imports its ``--model``, checks its schedule.

    The space fixes ``power``, ``begin_step`` and ``end_step`` (by default
    ``config.schedule_steps``) and bounds ``final_sparsity`` by the sweep's
    sparsities; each run fixes one of them. The built-in model is the
    article's (``models.ARTICLE``).

    Args:
        config: A ``SweepConfig``.

    Returns:
        The ``Plan``.

    Raises:
        InputError: As ``resolve_search``.
    """
    dataset = load_data(config)
    builder = import_builder(config)
    per_epoch = schedule.steps_per_epoch(len(dataset.x_train), config.batch_size)
    total = config.epochs * per_epoch
    begin, end = config.schedule_steps(total)
    space = ScheduleSpace(final_sparsity=Bound(min(config.sparsities),
                                               max(config.sparsities)),
                          power=Bound(config.power, config.power),
                          begin_step=Bound(begin, begin), end_step=Bound(end, end))
    return Plan(config, dataset, space.resolve(total, per_epoch), builder, (1, 1),
                per_epoch, hyperparameters={} if builder else dict(models.ARTICLE))


def load_data(config):
    """The ``Dataset`` of a config's ``--data`` or built-in workload."""
    return data_lib.load_dataset(config.data, config.target, config.seed,
                                 config.n_samples, config.n_features,
                                 config.n_informative, config.noise)


def import_builder(config):
    """The ``--model`` builder, or ``None`` for the built-in model."""
    return models.import_builder(config.model) if config.model else None
