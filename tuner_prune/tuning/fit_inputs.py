"""The data ``PruningTuner.search`` takes as keras-tuner's ``search`` does, as raw arrays.

keras-tuner hands ``search``'s arguments to ``model.fit``; a keras-tuner user
passes what ``fit`` takes. Here they become the raw arrays the search fits its
scaling and baseline on:

- ``x`` and ``y`` as arrays (or DataFrames, kept as they are), or ``x`` a
  finite ``tf.data.Dataset`` of ``(x, y)`` or ``(x, y, sample_weight)``
  batches, read whole (the scaling and the ridge baseline need every row);
- ``validation_data`` as ``(x, y)``, ``(x, y, sample_weight)`` or such a
  dataset, or ``validation_split``: the last fraction of ``x`` and ``y``, taken
  before any shuffling, as ``fit`` takes it;
- the batch size: ``search``'s, or a dataset's own (its first batch's rows);
- ``callbacks``, deep-copied for each trial (``trial_callbacks``).

Validation sample weights reach ``fit``'s ``validation_data``, as keras-tuner
passes them; the trials are still scored on the unweighted validation MSE.
"""

import copy
import dataclasses
import math
import os

import numpy as np

from tuner_prune.core.errors import InputError

DEFAULT_BATCH_SIZE = 32  # ``model.fit``'s for arrays.
MAX_ROWS = 10_000_000  # A pipeline with more rows is taken for an endless one.


@dataclasses.dataclass(frozen=True)
class FitInputs:
    """Raw training and validation data, sample weights and the batch size."""

    x: object
    y: object
    validation: tuple  # ``(x_val, y_val)``.
    batch_size: int
    sample_weight: object = None  # Training rows' weights, for ``fit``.
    validation_weight: object = None  # Validation rows' weights, for ``fit``.


def resolve(x, y=None, validation_data=None, validation_split=None, batch_size=None,
            sample_weight=None):
    """The raw arrays of a search's ``search(x, y, validation_data, ...)``.

    Raises:
        InputError: An infinite or unreadable dataset, a ``validation_split``
            outside ``(0, 1)`` or with a dataset, no validation data at all, or
            ``x`` without ``y``.
    """
    dataset_batch = None
    if is_dataset(x):
        if y is not None:
            raise InputError("Expected y=None with a tf.data.Dataset x (its batches "
                             "hold the targets), received y as well.")
        x, y, weight, dataset_batch = materialise("training data", x)
        sample_weight = weight if weight is not None else sample_weight
    elif y is None:
        raise InputError("Expected training data as x and y, or x a tf.data.Dataset of "
                         "(x, y) batches, received x alone.")
    validation, validation_weight = None, None
    if validation_data is not None:
        validation, validation_weight = _validation("validation_data", validation_data)
    elif validation_split is not None:
        if dataset_batch is not None:
            raise InputError("Expected validation_data with a tf.data.Dataset x (as "
                             "model.fit), received validation_split; pass "
                             "validation_data=val_dataset.")
        x, y, sample_weight, validation, validation_weight = split_last(
            x, y, sample_weight, validation_split)
    else:
        raise InputError("Expected validation_data=(x_val, y_val) or validation_split "
                         "(the trials are scored on the validation MSE), received "
                         "neither.")
    batch = (batch_size if batch_size is not None
             else dataset_batch or DEFAULT_BATCH_SIZE)
    sample_weight = _weights("sample_weight", sample_weight, x, y)
    if validation_weight is not None and isinstance(validation, (tuple, list)) and \
            len(validation) == 2:
        validation_weight = _weights("validation_data's sample_weight",
                                     validation_weight, *validation)
    return FitInputs(x, y, validation, batch, sample_weight, validation_weight)


def _weights(name, weights, x, y):
    """``weights`` of the rows ``fit`` gets: one per row of ``x``, those of the rows
    without a target dropped, as a DataFrame's rows are (``frames``).

    Raises:
        InputError: Not one weight per row.
    """
    if weights is None:
        return None
    from tuner_prune.data import frames

    weights = np.asarray(weights, np.float32).reshape(-1)
    rows = len(x) if hasattr(x, "__len__") else None
    if rows is not None and len(weights) != rows:
        raise InputError(f"Expected {name} with one value per row of x ({rows} rows), "
                         f"received {len(weights)} values.")
    if frames.is_frame(x) and y is not None and frames.frame_needs_encoding(x, y):
        targets = np.asarray(y, dtype=object).reshape(-1)
        if len(targets) == len(weights):
            keep = np.array([not frames.is_missing_value(v) for v in targets], bool)
            weights = weights[keep]
    return weights


def is_dataset(value):
    """Whether ``value`` is a ``tf.data.Dataset``."""
    import tensorflow as tf

    return isinstance(value, tf.data.Dataset)


def materialise(name, dataset):
    """The rows of a finite dataset of ``(x, y[, sample_weight])`` batches, as arrays.

    Returns:
        ``(x, y, sample_weight or None, rows of its first batch)``.

    Raises:
        InputError: An infinite dataset, one of other elements, or one with
            more than ``MAX_ROWS`` rows.
    """
    import tensorflow as tf

    instead = ("pass a finite dataset (without .repeat()) of (x, y) batches, or "
               "numpy arrays x and y")
    if dataset.cardinality() == tf.data.INFINITE_CARDINALITY:
        raise InputError(f"Expected {name} as a finite tf.data.Dataset (the scaling and "
                         f"the baseline read all its rows), received an infinite one; "
                         f"{instead}.")
    parts, rows = [], 0
    for element in dataset:
        if not isinstance(element, (tuple, list)) or len(element) not in (2, 3) or \
                not all(tf.is_tensor(part) for part in element):
            raise InputError(f"Expected {name} as a tf.data.Dataset of (x, y) or (x, y, "
                             f"sample_weight) batches of tensors, received elements of "
                             f"{_kind(element)}; {instead}.")
        parts.append([np.asarray(part) for part in element])
        if any(part.ndim == 0 for part in parts[-1]):  # model.fit would misread it.
            raise InputError(f"Expected {name} as a tf.data.Dataset of batches, received "
                             f"single rows (a target of shape {parts[-1][1].shape}); "
                             f"batch it first, for example dataset.batch(32).")
        rows += len(parts[-1][0])
        if rows > MAX_ROWS:
            raise InputError(f"Expected {name} as a finite tf.data.Dataset, received "
                             f"more than {MAX_ROWS} rows (an endless pipeline?); {instead}.")
    if not parts:
        raise InputError(f"Expected {name} as a tf.data.Dataset of (x, y) batches, "
                         f"received an empty one; {instead}.")
    columns = [np.concatenate(column) for column in zip(*parts)]
    weight = columns[2] if len(columns) == 3 else None
    return columns[0], columns[1], weight, len(parts[0][0])


def split_last(x, y, sample_weight, fraction):
    """``x``, ``y`` and their weights split as ``fit(validation_split=fraction)`` does.

    Returns:
        ``(x, y, sample_weight, (x_val, y_val), validation_weight)``.

    Raises:
        InputError: ``fraction`` outside ``(0, 1)``, or no row on one side.
    """
    if not isinstance(fraction, (int, float)) or not 0 < fraction < 1:
        raise InputError(f"Expected validation_split between 0 and 1 (exclusive), "
                         f"received {fraction!r}.")
    total = len(x)
    at = int(math.floor(total * (1.0 - fraction)))
    if at in (0, total):
        raise InputError(f"Expected validation_split to leave rows on both sides, "
                         f"received {fraction!r} of {total} rows.")
    weights = (None, None) if sample_weight is None else (_rows(sample_weight, 0, at),
                                                          _rows(sample_weight, at, total))
    return (_rows(x, 0, at), _rows(y, 0, at), weights[0],
            (_rows(x, at, total), _rows(y, at, total)), weights[1])


def _validation(name, data):
    """``((x_val, y_val), weight or None)`` of ``validation_data``."""
    if is_dataset(data):
        x, y, weight, _ = materialise(name, data)
        return (x, y), weight
    if isinstance(data, (tuple, list)) and len(data) == 3:
        return (data[0], data[1]), (None if data[2] is None else data[2])
    return data, None  # Checked as a pair by ``splits.split``.


def _rows(values, start, stop):
    """Rows ``start:stop`` of an array or DataFrame."""
    rows = getattr(values, "iloc", values)
    return rows[start:stop]


def _kind(element):
    if isinstance(element, (tuple, list)):
        return f"{type(element).__name__} of {len(element)}"
    return type(element).__name__


def trial_callbacks(callbacks, trial_id):
    """A deep copy of ``callbacks`` for one trial, as keras-tuner's ``Tuner`` makes.

    A ``TensorBoard`` callback (Keras 3's or tf_keras's) writes under
    ``<its log_dir>/<trial_id>``, so that each trial is a run of its own. A
    Keras 3 callback runs in the tf_keras ``fit`` through ``keras3.Callback``.

    Raises:
        InputError: A callback that cannot be deep-copied.
    """
    try:
        copies = copy.deepcopy(list(callbacks))
    except Exception as error:  # Whatever the callback's state refuses.
        raise InputError(f"Expected callbacks that can be deep-copied (each trial gets "
                         f"its own copy, as in keras-tuner), received one that cannot "
                         f"({type(error).__name__}: {error}).") from None
    for callback in copies:
        if type(callback).__name__ == "TensorBoard":
            callback.log_dir = os.path.join(str(callback.log_dir), str(trial_id))
    from tuner_prune.tuning import keras3

    return keras3.tf_keras_callbacks(copies)
