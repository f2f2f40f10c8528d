"""The Python API's DataFrames with text or missing values, as a ``table.Table`` (Keras-free).

``PruningTuner.search`` takes numpy arrays or DataFrames; a DataFrame with a
column that is not numbers, or with a missing value (``None``, NaN, pandas'
NA, ``""``, ``NA``), is read as a CSV is (``table``): a column of numbers is
numeric (numbers held as text too, as ``pd.read_csv(dtype=str)`` gives them;
such a column with a few stray text cells is refused, naming the row), any
other categorical unless it is an identifier, and a row without a target is
dropped; ``encoding`` then fits on the training rows.
"""

import numpy as np

from tuner_prune.data.table import (CATEGORICAL, NUMERIC, Column, DataError, Table, is_number,
                               is_missing_value)


def is_frame(x):
    """Whether ``x`` is a pandas DataFrame (without importing pandas)."""
    return hasattr(x, "columns") and hasattr(x, "dtypes") and hasattr(x, "iloc")


def frame_needs_encoding(x, y=None):
    """Whether a DataFrame has a column that is not numbers or a missing value, or
    its targets ``y`` a missing one (a row to drop, as a CSV's)."""
    if any(dtype.kind not in "biuf" for dtype in x.dtypes) or bool(x.isna().any().any()):
        return True
    return y is not None and any(is_missing_value(v) for v in
                                 np.asarray(y, dtype=object).reshape(-1))


def frame_table(name, x, y):
    """A ``Table`` of the DataFrame ``x`` and targets ``y`` (the Python API's rows).

    A column of numbers is numeric (NaN or ``None`` where missing), any other
    column categorical, unless it is an identifier; a row without a target
    (NaN) is dropped.

    Raises:
        DataError: Targets that are not numbers or not finite, a column
            without values or with an infinity, rows and targets that differ
            in number.
    """
    check_names(name, x)
    values, keep = frame_targets(name, y, len(x))
    columns, left_out = [], []
    labels = np.asarray(x.index)[keep]
    for column in x.columns:
        read = _frame_column(name, str(column), frame_cells(x[column])[keep], labels,
                             _is_text_dtype(x[column].dtype))
        (columns if isinstance(read, Column) else left_out).append(read)
    if not columns:
        raise DataError(f"Expected {name} x with a column to read, received only "
                        f"identifiers.")
    target = str(getattr(y, "name", None) or "target")
    return Table(tuple(columns), target, values, tuple(left_out), int((~keep).sum()))


def check_names(name, x):
    """Refuses a DataFrame whose column names, as text, are not distinct.

    Raises:
        DataError: A name twice (``0`` and ``"0"`` are one name: the manifest
            and ``encode_rows`` name columns by text).
    """
    seen = set()
    for column in x.columns:
        if str(column) in seen:
            raise DataError(f"Expected {name} x with distinct column names, received "
                            f"{str(column)!r} more than once.")
        seen.add(str(column))


def column_by_name(x):
    """``{name as text: column}`` of a DataFrame: its columns as the manifest names
    them (an integer label ``0`` is ``"0"``)."""
    return {str(column): column for column in x.columns}


def frame_targets(name, y, rows):
    """The float32 targets of the rows that have one, and which rows do.

    Raises:
        DataError: Not ``rows`` targets, a target that is text or infinite.
    """
    targets = np.asarray(y, dtype=object).reshape(-1)
    if len(targets) != rows:
        raise DataError(f"Expected {name} y with one value per row of x ({rows} rows), "
                        f"received {len(targets)} values.")
    keep = np.array([not is_missing_value(value) for value in targets], bool)
    try:
        values = targets[keep].astype(np.float32)
    except (TypeError, ValueError):
        raise DataError(f"Expected {name} y of numbers, received "
                        f"{next(v for v in targets[keep] if not is_number(str(v)))!r}."
                        ) from None
    if not np.all(np.isfinite(values)):
        raise DataError(f"Expected finite float32 values in {name} y, received "
                        f"infinity.")
    return values, keep


def frame_cells(series):
    """A DataFrame column's cells: float64 with NaN for numbers (nullable integers
    too), objects otherwise."""
    if series.dtype.kind in "iuf":
        return series.to_numpy(dtype=np.float64, na_value=np.nan)
    return series.to_numpy(dtype=object)


def _is_text_dtype(dtype):
    """Whether a column's cells may be numbers held as text: an ``object`` or
    ``string`` column (not ``bool`` or ``category``, chosen as categories)."""
    return dtype.kind == "O" and str(dtype) != "category"


def _cell_number(cell):
    """Whether a cell of an ``object`` column is a number, as a CSV cell is one."""
    if isinstance(cell, (bool, np.bool_)):
        return False
    if isinstance(cell, (int, float, np.integer, np.floating)):
        return True
    return isinstance(cell, str) and is_number(cell.strip())


def _frame_column(name, column, cells, labels, text_dtype):
    present = [cell for cell in cells.tolist() if not is_missing_value(cell)]
    if not present:
        raise DataError(f"Expected values in {name} x column {column!r}, received a "
                        f"missing value in every row.")
    if text_dtype:  # Numbers held as text (pd.read_csv(dtype=str)): read as a CSV is.
        numbers = sum(_cell_number(cell) for cell in present)
        if numbers * 2 >= len(present):
            cells = _text_numbers(name, column, cells, labels, numbers, len(present))
    if cells.dtype.kind in "iuf":  # A bool column is categorical, as yes/no text is.
        with np.errstate(over="ignore"):
            values = cells.astype(np.float32)
        if np.isinf(values).any():
            raise DataError(f"Expected finite float32 values in {name} x column "
                            f"{column!r}, received infinity.")
        return Column(column, NUMERIC, values)
    levels = ["" if is_missing_value(cell) else str(cell).strip() for cell in cells.tolist()]
    if len(set(present)) == len(present) > 1:
        return {"name": column, "reason": "identifier (a different value in every row)"}
    return Column(column, CATEGORICAL, np.asarray(levels, dtype=object))


def _text_numbers(name, column, cells, labels, numbers, present):
    """A column of numbers held as text, as float64 with NaN where missing; refuses
    a stray text cell (a typo is not a category), as ``table`` does in a CSV."""
    values = np.full(len(cells), np.nan)
    for row, (cell, label) in enumerate(zip(cells.tolist(), labels.tolist())):
        if is_missing_value(cell):
            continue
        if not _cell_number(cell):
            raise DataError(f"Expected a number in {name} x row {label!r}, column "
                            f"{column!r} ({numbers} of its {present} cells are numbers; a "
                            f"missing value is None, NaN, '' or 'NA'); received {cell!r}.")
        values[row] = float(cell.strip() if isinstance(cell, str) else cell)
    return values
