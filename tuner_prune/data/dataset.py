"""Data loading, splitting and scaling, free of Keras.

The search trains on scaled data; the scaling is fitted on the training split
only and baked into the exported model, which takes raw features and predicts
in the target's own units.
"""

import dataclasses
import hashlib
import os

import numpy as np

from tuner_prune.data import encoding as encoding_lib, table as table_lib
from tuner_prune.data.table import DataError  # noqa: F401 (a public name of tuner_prune)

VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1
MIN_ROWS = 10
# The article's built-in workload: the one default of each of its settings.
N_SAMPLES, N_FEATURES, N_INFORMATIVE, NOISE = 10000, 1000, 500, 3.0


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Raw train / validation / test splits and the training-split scaling.

    ``x`` holds one row per sample of any shape: ``(rows, features)`` for
    flat rows, ``(rows, ..., channels)`` for images or sequences. ``x_scale``
    and ``y_scale`` are the largest absolute values of each feature (of each
    channel, the last axis, for N-d rows) and of the target over the training
    split (1 where that is 0), as the article scales its data. ``columns`` are
    the CSV names of the columns of ``x`` in order, then the target's; ``None``
    for ``.npz`` and built-in data. ``encoding`` is a CSV's
    ``encoding.Encoding`` (raw columns to the inputs ``x`` holds), else
    ``None``. ``x_test`` and ``y_test`` are ``None`` when
    there is no test split (data given to ``PruningTuner.search`` without one).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    x_scale: np.ndarray
    y_scale: float
    source: str
    columns: tuple = None
    encoding: object = None

    @property
    def input_shape(self):
        """Shape of one row of ``x``: ``(features,)``, or for example ``(8, 8, 1)``."""
        return tuple(self.x_train.shape[1:])

    @property
    def n_features(self):
        """Values in one row of ``x``: its width for flat rows."""
        return int(np.prod(self.input_shape))

    @property
    def has_test(self):
        """Whether there is a test split."""
        return self.x_test is not None

    def scale_x(self, x):
        return (x / self.x_scale).astype(np.float32)

    def scale_y(self, y):
        return (y / self.y_scale).astype(np.float32)

    def scaled(self, split):
        """``(x, y)`` of ``"train"``, ``"val"`` or ``"test"``, scaled for training."""
        x, y = getattr(self, f"x_{split}"), getattr(self, f"y_{split}")
        return self.scale_x(x), self.scale_y(y)

    def fingerprint(self):
        """What tells whether a resumed search or an export sees the same data.

        ``sha256`` hashes the float32 values of every split, as loaded (before
        scaling), with the column names: it changes when any value, the order
        of the columns or the target changes. ``features`` is the width of
        flat rows, the row shape as a list for N-d rows.
        """
        splits = [getattr(self, f"{axis}_{split}") for split in ("train", "val", "test")
                  for axis in ("x", "y")]
        digest = hash_arrays([a for a in splits if a is not None],  # None: no test split.
                             hashlib.sha256(repr(self.columns).encode()))
        test_rows = len(self.x_test) if self.has_test else 0
        return {"source": self.source, "rows": [len(self.x_train), len(self.x_val),
                test_rows], "features": self._features(),
                "columns": None if self.columns is None else list(self.columns),
                "sha256": digest.hexdigest()}

    def _features(self):
        shape = self.input_shape
        return self.n_features if len(shape) == 1 else list(shape)


def hash_arrays(arrays, digest=None):
    """``digest`` (a new sha256 by default) updated with each array's float32
    values and shape, in order."""
    digest = digest or hashlib.sha256()
    for array in arrays:
        values = np.ascontiguousarray(array, np.float32)
        digest.update(repr(values.shape).encode())
        digest.update(values.tobytes())
    return digest


def make_article_data(n_samples=N_SAMPLES, n_features=N_FEATURES,
                      n_informative=N_INFORMATIVE, noise=NOISE, seed=0):
    """The article's regression workload, scaled as the article scales it."""
    from sklearn.datasets import make_regression

    x, y = make_regression(n_samples=n_samples, n_features=n_features,
                           n_informative=n_informative, noise=noise,
                           random_state=seed)
    x = x / np.abs(x).max(axis=0)
    y = y / np.abs(y).max()
    return x.astype(np.float32), y.astype(np.float32)


def load_arrays(path, target=None):
    """Reads features and target from a ``.csv`` or ``.npz`` file.

    Args:
        path: File to read. CSV: a header row and numeric columns (a missing
            cell is NaN; a row without a target is dropped; text columns are
            read by ``load_dataset`` only). NPZ: arrays ``x`` (rows, ...) of
            any row shape and ``y`` (rows); never unpickled.
        target: CSV column holding the target; the last column by default.

    Returns:
        ``(x, y)`` as float32 arrays.

    Raises:
        DataError: The file is missing or malformed; the message says where.
    """
    return read_data(path, target)[:2]


def read_data(path, target=None):
    """``load_arrays`` with the column names.

    Returns:
        ``(x, y, columns)``: ``columns`` names the columns of ``x`` in order,
        then the target (``None`` for an ``.npz`` file).

    Raises:
        DataError: As ``load_arrays``, and a CSV with a text column.
    """
    read = read_source(path, target)
    if not isinstance(read, table_lib.Table):
        return read
    text = [c.name for c in read.columns if c.kind != table_lib.NUMERIC]
    if text:
        raise DataError(f"{path}: Expected numeric columns, received the text column "
                        f"{text[0]!r}: load_dataset encodes it, load_arrays does not.")
    names = tuple(c.name for c in read.columns) + (read.target,)
    return read.numeric_matrix(), read.y, names


def read_source(path, target=None):
    """A data file as read: ``(x, y, columns)``, or a CSV's ``table.Table``.

    A CSV comes as a ``Table`` when it needs encoding (a text column, a
    missing cell, an unnamed column, a dropped row), else as arrays.

    Raises:
        DataError: As ``load_arrays``.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: Expected an existing data file, received no such file.")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".csv":
        return table_lib.read_csv(path, target)
    if extension == ".npz":
        if target is not None:
            raise DataError(f"{path}: Expected --target only with a .csv file, received "
                            f"--target {target!r} with an .npz file.")
        return (*_read_npz(path), None)
    raise DataError(f"{path}: Expected a .csv or .npz file, received the file type "
                    f"{extension or '(none)'!r}.")


def _read_npz(path):
    try:
        with np.load(path, allow_pickle=False) as archive:
            if not {"x", "y"} <= set(archive.files):
                raise DataError(f"{path}: Expected arrays 'x' and 'y', received arrays "
                                f"{archive.files}.")
            x, y = archive["x"], archive["y"]
    except DataError:
        raise
    except Exception as error:  # np.load raises several types for bad files.
        raise DataError(f"{path}: Expected an .npz file of numeric arrays, received one "
                        f"that cannot be read without unpickling ({error}).") from None
    if x.dtype.kind not in "biuf" or y.dtype.kind not in "biuf":
        raise DataError(f"{path}: Expected numeric arrays, received x of {x.dtype}, "
                        f"y of {y.dtype}.")
    if x.ndim == 0 or y.ndim == 0:
        raise DataError(f"{path}: Expected arrays with one row per sample, received x "
                        f"of shape {x.shape}, y of shape {y.shape}.")
    if 0 in x.shape[1:]:
        raise DataError(f"{path}: Expected x with at least one value per row, received "
                        f"x of shape {x.shape}.")
    x = x.reshape(len(x), 1) if x.ndim == 1 else x
    y = y.reshape(-1) if y.ndim > 1 and y.size == len(y) else y
    if y.ndim != 1 or len(x) != len(y):
        raise DataError(f"{path}: Expected y with one value per row of x ({len(x)} rows), "
                        f"received y of shape {y.shape}.")
    return _as_float32(path, "x", x), _as_float32(path, "y", y)


def _as_float32(path, name, array):
    """``array`` as float32, refusing a value that is not finite once cast.

    The check runs on the cast values: a float64 past float32's range becomes
    infinity only in the cast.
    """
    with np.errstate(over="ignore"):
        values = array.astype(np.float32)
    bad = ~np.isfinite(values)
    if not bad.any():
        return values
    where = tuple(int(i) for i in np.argwhere(bad)[0])
    value = float(array[where])
    beyond = " (beyond float32's range)" if np.isfinite(value) else ""
    raise DataError(f"{path}: Expected finite float32 values in array {name!r}, "
                    f"received {value!r}{beyond} in {_npz_place(name, where)}.")


def _npz_place(name, where):
    """``row 5``, ``row 5, column 1`` or ``row 5 (x[5, 1, 0])``: 0-based indices."""
    if len(where) == 1:
        return f"row {where[0]}"
    if len(where) == 2:
        return f"row {where[0]}, column {where[1]}"
    return f"row {where[0]} ({name}[{', '.join(map(str, where))}])"


def split_dataset(x, y, seed=0, source="built-in", columns=None):
    """Shuffles and splits into train / validation / test; fits the scaling.

    ``columns`` (the names of ``x``'s columns, then the target's) is kept in
    the ``Dataset``.

    Raises:
        DataError: Too few rows, or a constant target.
    """
    test, val, train = split_rows(y, seed, source)
    x_scale, y_scale = fit_scaling(x[train], y[train], source, columns)
    return Dataset(x[train], y[train], x[val], y[val], x[test], y[test],
                   x_scale, y_scale, source, columns)


def split_rows(y, seed, source):
    """The ``(test, val, train)`` row indices of a table of targets ``y``.

    Raises:
        DataError: Too few rows, or a constant target.
    """
    rows = len(y)
    if rows < MIN_ROWS:
        raise DataError(f"{source}: Expected at least {MIN_ROWS} rows for the train / "
                        f"validation / test split, received {rows}.")
    if np.ptp(y) == 0:
        raise DataError(f"{source}: Expected a target that varies, received the same "
                        f"value {float(y[0]):g} in all {rows} rows.")
    order = np.random.default_rng(seed).permutation(rows)
    n_test = max(1, round(TEST_FRACTION * rows))
    n_val = max(1, round(VALIDATION_FRACTION * rows))
    return np.split(order, [n_test, n_test + n_val])


def split_table(table, seed, source):
    """A ``Dataset`` of a ``table.Table``: split, encoded as fitted on its training split."""
    test, val, train = split_rows(table.y, seed, source)
    encoding = encoding_lib.fit(table, train)
    x, y = encoding_lib.encode_table(encoding, table), table.y
    x_scale, y_scale = fit_scaling(x[train], y[train], source,
                                   encoding.names + (table.target,))
    return Dataset(x[train], y[train], x[val], y[val], x[test], y[test], x_scale,
                   y_scale, source, encoding.names + (table.target,), encoding)


def numeric_encoding(dataset):
    """The ``encoding.Encoding`` of a complete all-numeric CSV's ``Dataset``."""
    names, target = dataset.columns[:-1], dataset.columns[-1]
    medians = [np.median(dataset.x_train[:, i]) for i in range(len(names))]  # A column
    # at a time: no copy of the whole table.
    specs = tuple({"name": name, "kind": table_lib.NUMERIC, "index": i,
                   "fill": float(medians[i]), "missing_index": None}
                  for i, name in enumerate(names))
    return encoding_lib.Encoding(specs, tuple(names), target)


def fit_scaling(x_train, y_train, source=None, columns=None):
    """The scaling of a search, fitted on its training split only.

    Args:
        x_train: Raw training rows, ``(rows, features)`` or ``(rows, ..., channels)``.
        y_train: Raw training targets.
        source, columns: The data's name and its columns' (the target's last),
            for the message of a refusal.

    Returns:
        ``(x_scale, y_scale)``: the largest absolute value of each feature (of
        each channel, the last axis, for N-d rows) as float32, 1 where that is
        0; the largest absolute target as a float, 1 if it is 0. Training data
        are the raw values divided by them.

    Raises:
        DataError: A target or a feature whose largest magnitude is below
            float32's smallest normal number (1.18e-38): the exported models
            compute in float32, where it underflows to 0 (or its inverse, the
            input factor, to infinity).
    """
    x_scale = channel_scale(np.asarray(x_train)).astype(np.float32)
    y_scale = float(np.abs(np.asarray(y_train, np.float64)).max()) or 1.0
    _check_magnitudes(x_scale, y_scale, source or "training data", columns)
    x_scale[x_scale == 0] = 1.0
    return x_scale, y_scale


def _check_magnitudes(x_scale, y_scale, source, columns):
    tiny = float(np.finfo(np.float32).tiny)
    names = list(columns) if columns is not None else None
    if y_scale < tiny:
        target = f"the target {names[-1]!r}" if names else "the target"
        raise DataError(f"{source}: Expected {target} of magnitude at least {tiny:.3g} "
                        f"(float32's smallest normal number) in the training split, received "
                        f"at most {y_scale:.3g}; scale it up.")
    small = np.flatnonzero((x_scale > 0) & (x_scale < tiny))
    if small.size:
        index = int(small[0])
        feature = (f"column {names[index]!r}" if names and len(names) > len(x_scale)
                   else f"feature {index}")
        raise DataError(f"{source}: Expected {feature} to be 0 or of magnitude at least "
                        f"{tiny:.3g} (float32's smallest normal number) in the training "
                        f"split, received at most {float(x_scale[index]):.3g}; scale it up.")


def channel_scale(x):
    """Largest absolute value of each feature (flat rows) or channel (last axis)."""
    return np.abs(x).reshape(-1, x.shape[-1]).max(axis=0)


def load_dataset(path=None, target=None, seed=0, n_samples=N_SAMPLES,
                 n_features=N_FEATURES, n_informative=N_INFORMATIVE, noise=NOISE):
    """The dataset a search runs on: a file, or the article's built-in workload.

    A CSV's ``Dataset`` has an ``encoding`` (``encoding.Encoding``): for a
    table with text or missing cells it is fitted on the training split and
    ``x`` holds the encoded inputs.
    """
    if path is None:
        x, y = make_article_data(n_samples, n_features, n_informative, noise, seed)
        return split_dataset(x, y, seed, source="built-in")
    source = os.path.basename(path)
    read = read_source(path, target)
    if isinstance(read, table_lib.Table):
        return split_table(read, seed, source)
    x, y, columns = read
    dataset = split_dataset(x, y, seed, source=source, columns=columns)
    if dataset.columns is None:
        return dataset
    return dataclasses.replace(dataset, encoding=numeric_encoding(dataset))
