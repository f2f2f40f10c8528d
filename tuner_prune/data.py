"""Data loading, splitting and scaling, free of Keras.

The search trains on scaled data; the scaling is fitted on the training split
only and baked into the exported model, which takes raw features and predicts
in the target's own units.
"""

import collections
import csv
import dataclasses
import hashlib
import itertools
import os
import warnings

import numpy as np

from tuner_prune.errors import InputError

VALIDATION_FRACTION = 0.1
TEST_FRACTION = 0.1
MIN_ROWS = 10
# The article's built-in workload: the one default of each of its settings.
N_SAMPLES, N_FEATURES, N_INFORMATIVE, NOISE = 10000, 1000, 500, 3.0


class DataError(InputError):
    """Input data that cannot be used; the message names file, column, row."""


@dataclasses.dataclass(frozen=True)
class Dataset:
    """Raw train / validation / test splits and the training-split scaling.

    ``x`` holds one row per sample of any shape: ``(rows, features)`` for
    flat rows, ``(rows, ..., channels)`` for images or sequences. ``x_scale``
    and ``y_scale`` are the largest absolute values of each feature (of each
    channel, the last axis, for N-d rows) and of the target over the training
    split (1 where that is 0), as the article scales its data. ``columns`` are
    the CSV names of the columns of ``x`` in order, then the target's; ``None``
    for ``.npz`` and built-in data. ``x_test`` and ``y_test`` are ``None`` when
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
        path: File to read. CSV: a header row and numeric columns. NPZ: arrays
            ``x`` (rows, ...) of any row shape and ``y`` (rows); never unpickled.
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
        DataError: As ``load_arrays``.
    """
    if not os.path.isfile(path):
        raise DataError(f"{path}: Expected an existing data file, received no such file.")
    extension = os.path.splitext(path)[1].lower()
    if extension == ".csv":
        return _read_csv(path, target)
    if extension == ".npz":
        if target is not None:
            raise DataError(f"{path}: Expected --target only with a .csv file, received "
                            f"--target {target!r} with an .npz file.")
        return (*_read_npz(path), None)
    raise DataError(f"{path}: Expected a .csv or .npz file, received the file type "
                    f"{extension or '(none)'!r}.")


def _read_csv(path, target):
    """Header with ``csv``, numbers with ``numpy.loadtxt`` straight into float32.

    numpy's reader holds only the float32 table and a chunk of lines, where a
    list of Python strings per cell costs about thirty times the table. Its
    errors do not say which file row and column failed, so on any error the
    file is scanned again, one row at a time, to name them.
    """
    header, header_lines = _read_header(path)
    target = header[-1] if target is None else target
    if target not in header:
        raise DataError(f"{path}: Expected --target to be one of the columns "
                        f"{', '.join(header)}; received {target!r}.")
    if len(header) < 2:
        raise DataError(f"{path}: Expected feature columns besides the target "
                        f"{target!r}, received only the target column.")
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle, \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            body = itertools.islice(handle, header_lines, None)  # Past the header.
            lines = (line for line in body if _has_text(line.split(",")))
            values = np.loadtxt(lines, delimiter=",",
                                quotechar='"', dtype=np.float32, ndmin=2)
    except (ValueError, UnicodeDecodeError):
        raise _first_bad_cell(path, header) from None
    if len(values) == 0:
        raise DataError(f"{path}: Expected data rows after the header, received only "
                        f"the header row.")
    if values.shape[1] != len(header) or not np.all(np.isfinite(values)):
        raise _first_bad_cell(path, header)
    column = header.index(target)
    columns = tuple(header[:column] + header[column + 1:] + [target])
    return np.delete(values, column, axis=1), values[:, column], columns


def _read_header(path):
    """The column names of a CSV file's first non-blank row (a UTF-8 BOM stripped).

    Returns:
        ``(names, lines)``: ``lines`` is the number of file lines up to the
        end of the header row, which a quoted name with a line break spans.
    """
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            first = next((row for row in reader if _has_text(row)), None)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: Expected a UTF-8 CSV file, received one that cannot "
                        f"be read ({error}).") from None
    if first is None:
        raise DataError(f"{path}: Expected a header row and data rows, received an "
                        f"empty file.")
    header = [name.strip() for name in first]
    if all(_is_number(name) for name in header):
        raise DataError(f"{path}: Expected a header row of column names, received a "
                        f"first row of numbers ({', '.join(header[:3])}"
                        f"{', ...' if len(header) > 3 else ''}).")
    repeated = [name for name, count in collections.Counter(header).items() if count > 1]
    if repeated:  # --target NAME, the columns a model was trained on: one each.
        raise DataError(f"{path}: Expected distinct column names, received "
                        f"{repeated[0]!r} more than once.")
    return header, reader.line_num


def _first_bad_cell(path, header):
    """The ``DataError`` naming the first row, column and cell that cannot be used."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = (row for row in reader if _has_text(row))
            next(rows)  # The header row.
            for row in rows:
                _check_row(path, header, row, reader.line_num)
    except (UnicodeDecodeError, csv.Error) as error:
        return DataError(f"{path}: Expected a UTF-8 CSV file, received one that cannot "
                         f"be read ({error}).")
    except DataError as error:
        return error
    return DataError(f"{path}: Expected numeric CSV rows, received rows numpy cannot "
                     f"read as float32.")


def _check_row(path, header, row, number):
    if len(row) != len(header):
        raise DataError(f"{path}: Expected {len(header)} cells in row {number}, "
                        f"received {len(row)}.")
    for name, cell in zip(header, row):
        try:
            with np.errstate(over="ignore"):  # Overflow gives inf, refused below.
                value = np.float32(float(cell))
        except ValueError:
            raise DataError(f"{path}: Expected a number in row {number}, column "
                            f"{name!r}; received {cell!r}.") from None
        if not np.isfinite(value):
            raise DataError(f"{path}: Expected a finite float32 number in row {number}, "
                            f"column {name!r}; received {cell.strip()!r}.")


def _has_text(row):
    return any(cell.strip() for cell in row)


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


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
    rows = len(x)
    if rows < MIN_ROWS:
        raise DataError(f"{source}: Expected at least {MIN_ROWS} rows for the train / "
                        f"validation / test split, received {rows}.")
    if np.ptp(y) == 0:
        raise DataError(f"{source}: Expected a target that varies, received the same "
                        f"value {float(y[0]):g} in all {rows} rows.")
    order = np.random.default_rng(seed).permutation(rows)
    n_test = max(1, round(TEST_FRACTION * rows))
    n_val = max(1, round(VALIDATION_FRACTION * rows))
    test, val, train = np.split(order, [n_test, n_test + n_val])
    x_scale, y_scale = fit_scaling(x[train], y[train])
    return Dataset(x[train], y[train], x[val], y[val], x[test], y[test],
                   x_scale, y_scale, source, columns)


def fit_scaling(x_train, y_train):
    """The scaling of a search, fitted on its training split only.

    Args:
        x_train: Raw training rows, ``(rows, features)`` or ``(rows, ..., channels)``.
        y_train: Raw training targets.

    Returns:
        ``(x_scale, y_scale)``: the largest absolute value of each feature (of
        each channel, the last axis, for N-d rows) as float32, 1 where that is
        0; the largest absolute target as a float, 1 if it is 0. Training data
        are the raw values divided by them.
    """
    x_scale = channel_scale(np.asarray(x_train)).astype(np.float32)
    x_scale[x_scale == 0] = 1.0
    y_scale = float(np.abs(np.asarray(y_train, np.float64)).max()) or 1.0
    return x_scale, y_scale


def channel_scale(x):
    """Largest absolute value of each feature (flat rows) or channel (last axis)."""
    return np.abs(x).reshape(-1, x.shape[-1]).max(axis=0)


def load_dataset(path=None, target=None, seed=0, n_samples=N_SAMPLES,
                 n_features=N_FEATURES, n_informative=N_INFORMATIVE, noise=NOISE):
    """The dataset a search runs on: a file, or the article's built-in workload."""
    if path is None:
        x, y = make_article_data(n_samples, n_features, n_informative, noise, seed)
        return split_dataset(x, y, seed, source="built-in")
    x, y, columns = read_data(path, target)
    return split_dataset(x, y, seed, source=os.path.basename(path), columns=columns)
