"""A trial's training length from the table: batch size and epochs, free of Keras.

A search that is not given ``--batch-size`` or ``--epochs`` derives them from
its training rows (docs/search.md, "Training that fits the table"):

- the batch is the largest power of two at most ``rows / STEPS_PER_EPOCH``,
  within ``BATCH_SIZES``: a small table takes many small steps an epoch, a
  large one RealMLP's batch of 256;
- the epochs are as many as a budget of ``STEP_BUDGET`` optimizer steps
  takes, within ``EPOCHS``: every table trains for about the same number of
  steps, so a trial's time hardly grows with its rows until the fewest epochs.

A flag given keeps its value; the other is derived from it. ``--article``
keeps the article's 80 epochs of batches of 1,024 unless given.

The built-in model's widest layer follows from the features of a row
(``models.widest_units``) unless ``--hp units`` (or ``--article``) sets it.
"""

import dataclasses
import math

from tuner_prune.space import models, schedule

BATCH_SIZES = (16, 256)  # The smallest and largest derived batch.
STEPS_PER_EPOCH = 16  # At least this many steps an epoch, up to the largest batch.
STEP_BUDGET = 1500  # Optimizer steps of one trial.
EPOCHS = (20, 200)  # The fewest and most derived epochs.
ARTICLE_EPOCHS, ARTICLE_BATCH_SIZE = 80, 1024  # The article's, for ``--article``.


def batch_size(rows):
    """The derived batch size of a training split of ``rows`` rows."""
    wanted = max(1, rows // STEPS_PER_EPOCH)
    power = 2 ** int(math.log2(wanted))
    return min(BATCH_SIZES[1], max(BATCH_SIZES[0], power))


def epochs(rows, batch):
    """The derived epochs of ``rows`` training rows in batches of ``batch``."""
    per_epoch = schedule.steps_per_epoch(rows, batch)
    return min(EPOCHS[1], max(EPOCHS[0], math.ceil(STEP_BUDGET / per_epoch)))


def training_length(rows, given_epochs=None, given_batch_size=None, article=False):
    """``(epochs, batch_size)`` of a search over ``rows`` training rows.

    Args:
        rows: Rows of the training split.
        given_epochs, given_batch_size: The flags, ``None`` when not given.
        article: ``--article``: the article's length where a flag is not given.

    Returns:
        ``(epochs, batch_size)``: the given values kept, the others derived.
    """
    if article:
        return (given_epochs or ARTICLE_EPOCHS, given_batch_size or ARTICLE_BATCH_SIZE)
    batch = given_batch_size or batch_size(rows)
    return given_epochs or epochs(rows, batch), batch


def resolved(config, rows, features=None):
    """``config`` with its ``epochs`` and ``batch_size`` set for ``rows`` training
    rows, and its ``widest_units`` for rows of ``features`` values when the
    search builds the built-in model of a width not set by ``--hp``."""
    if config.epochs is None or config.batch_size is None:
        length = training_length(rows, config.epochs, config.batch_size,
                                 getattr(config, "article", False))
        config = dataclasses.replace(config, epochs=length[0], batch_size=length[1])
    if features is not None and builds_widest(config) and config.widest_units is None:
        config = dataclasses.replace(config, widest_units=models.widest_units(features))
    return config


def builds_widest(config):
    """Whether the search's width is the built-in model's default: no ``--model``,
    no ``--hp units``, no ``--article``."""
    return (hasattr(config, "widest_units") and not config.model
            and "units" not in config.model_hyperparameters)
