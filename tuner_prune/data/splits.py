"""The raw arrays a ``PruningTuner.search`` receives, checked, as a ``Dataset`` (Keras-free).

The scaling is fitted on the training split by ``data.fit_scaling``, as the
CLI's ``data.split_dataset`` fits it, so that the API and the CLI train on the
same values.
"""

import numpy as np

from tuner_prune.data import encoding as encoding_lib, frames
from tuner_prune.data.dataset import Dataset, fit_scaling
from tuner_prune.core.errors import InputError

SOURCE = "arrays"


def from_arrays(x, y, validation_data, test_data=None, source=SOURCE):
    """A ``Dataset`` of raw (unscaled) splits, its scaling fitted on ``x`` and ``y``.

    Args:
        x, y: The training rows (one row per sample, of any shape) and targets.
        validation_data: ``(x_val, y_val)``.
        test_data: ``(x_test, y_test)``, or ``None``.
        source: How the dataset names its origin.

    Returns:
        A ``data.Dataset`` (without a test split when ``test_data`` is ``None``).

    Raises:
        InputError: Arrays that are not numeric and finite, a target that is
            not one value per row or is constant, or splits with different row
            shapes.
    """
    encoding = None
    if frames.is_frame(x) and frames.frame_needs_encoding(x, y):
        table = frames.frame_table("training data", x, y)
        encoding = encoding_lib.fit(table, np.arange(table.rows))
        x_train, y_train = encoding_lib.encode_table(encoding, table), table.y
    else:
        x_train, y_train = rows("training data", x, y)
    if np.ptp(y_train) == 0:  # As ``data.split_dataset`` refuses it.
        raise InputError(f"training data: Expected a target that varies, received the "
                         f"same value {float(y_train[0]):g} in all {len(y_train)} rows.")
    x_val, y_val = split("validation_data", validation_data, x_train.shape[1:], encoding)
    x_test, y_test = (None, None) if test_data is None else split(
        "test_data", test_data, x_train.shape[1:], encoding)
    x_scale, y_scale = fit_scaling(x_train, y_train)
    return Dataset(x_train, y_train, x_val, y_val, x_test, y_test, x_scale, y_scale,
                   source, encoding=encoding)


def split(name, pair, row_shape, encoding=None):
    """``(x, y)`` of the split ``name``, checked against the training rows' shape.

    With an ``encoding`` (training rows given as a DataFrame with text or
    missing values), ``x`` is a DataFrame of the same columns, encoded as the
    training rows were; a row without a target is dropped.
    """
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise InputError(f"Expected {name} as a pair (x, y) of arrays, received "
                         f"{type(pair).__name__}.")
    if encoding is not None:
        return encoded_split(name, *pair, encoding)
    x, y = rows(name, *pair)
    if x.shape[1:] != tuple(row_shape):
        raise InputError(f"Expected {name} rows of the training rows' shape "
                         f"{tuple(row_shape)}, received rows of shape {x.shape[1:]}.")
    return x, y


def encoded_split(name, x, y, encoding):
    """``(x, y)`` of a split given as a DataFrame, encoded with ``encoding``."""
    if not frames.is_frame(x):
        raise InputError(f"Expected {name} x as a DataFrame with the training data's "
                         f"columns, received {type(x).__name__}.")
    targets, keep = frames.frame_targets(name, y, len(x))
    frames.check_names(name, x)
    labels = frames.column_by_name(x)
    cells = {column: frames.frame_cells(x[labels[column]]) for column in
             encoding.raw_columns if column in labels}
    try:  # Every row, so that a refused row is named by its position in ``x``.
        return encoding.transform(cells)[keep], targets
    except InputError as error:  # Say which split, as the training data's do.
        raise InputError(f"{name} x: {error}") from None


def rows(name, x, y):
    """``x`` and ``y`` as float32 arrays of one row and one target per sample."""
    x, y = _numeric(name, "x", x), _numeric(name, "y", y)
    if x.ndim and y.ndim:
        x = x.reshape(len(x), 1) if x.ndim == 1 else x
        y = y.reshape(-1) if y.ndim > 1 and y.size == len(y) else y
    if x.ndim == 0 or y.ndim != 1 or len(x) != len(y) or len(x) == 0:
        raise InputError(f"Expected {name} as x of one row per sample and y of one "
                         f"value per row, received x of shape {x.shape} and y of shape "
                         f"{y.shape}.")
    return x, y


def _numeric(name, part, values):
    try:
        array = np.asarray(values)
    except Exception as error:  # Ragged lists and the like.
        raise InputError(f"Expected {name} {part} as a numeric array, received "
                         f"{type(values).__name__} ({error}).") from None
    if array.dtype.kind not in "biuf":
        raise InputError(f"Expected {name} {part} as a numeric array, received an "
                         f"array of {array.dtype}.")
    with np.errstate(over="ignore"):
        array = array.astype(np.float32)
    if array.ndim and not np.all(np.isfinite(array)):
        raise InputError(f"Expected finite float32 values in {name} {part}, received "
                         f"NaN or infinity.")
    return array
