"""A CSV table as it comes: numeric and text columns, missing cells (Keras-free).

``read_csv`` reads the header row (a comma, semicolon or tab delimiter), then an
all-numeric, complete CSV straight into float32 with numpy, for ``data``; any
other CSV is read by ``read_table``, cell by cell with Python's ``csv`` module,
and each column is given a kind:

- ``numeric``: every cell that is not missing is a number;
- ``categorical``: text (a yes/no column too), encoded by ``encoding``;
- left out: a text column with a different value in every row (an
  identifier), and an unnamed column with no value (a trailing comma).

A missing cell is empty, ``NA`` or ``NaN`` (any case); a row whose target is
missing is dropped. Refused with one line naming file, row and column: a
column of numbers with stray text cells (a column whose cells are mostly
numbers is a column of numbers), an infinity, a text target, an all-empty
column, an unnamed column with values.
"""

import collections
import csv
import dataclasses
import itertools
import re
import warnings

import numpy as np

from tuner_prune.core.errors import InputError

DELIMITERS = (",", ";", "\t")  # Tried in this order on the header row.
MISSING = frozenset({"", "na", "nan"})
NUMERIC = "numeric"
CATEGORICAL = "categorical"
DECIMAL_COMMA = re.compile(r"^[-+]?\d+,\d+$")


class DataError(InputError):
    """A CSV table that cannot be used; the message names file, row and column."""


@dataclasses.dataclass(frozen=True)
class Column:
    """One feature column: its name, kind and cells.

    ``values`` holds float32 numbers with NaN for missing cells (``numeric``),
    or stripped strings with ``""`` for missing cells (``categorical``).
    """

    name: str
    kind: str
    values: np.ndarray


@dataclasses.dataclass(frozen=True)
class Table:
    """The feature columns read, the target, and what was left out or dropped.

    ``columns`` are in the file's order, the target's excluded. ``left_out``
    is ``[{"name": ..., "reason": ...}]``; ``dropped_rows`` counts the rows
    without a target; ``delimiter`` is the file's.
    """

    columns: tuple
    target: str
    y: np.ndarray
    left_out: tuple = ()
    dropped_rows: int = 0
    delimiter: str = ","

    @property
    def rows(self):
        return len(self.y)

    def numeric_matrix(self):
        """The columns as one float32 matrix (NaN where cells are missing)."""
        return np.stack([c.values for c in self.columns], axis=1).astype(np.float32)


def is_missing(cell):
    """Whether a stripped cell is a missing value: empty, ``NA`` or ``NaN``."""
    return cell.lower() in MISSING


def is_missing_value(value):
    """Whether a DataFrame cell is missing: ``None``, NaN, pandas' NA, ``""``, ``"NA"``."""
    if value is None or isinstance(value, str):
        return value is None or is_missing(value.strip())
    try:
        return bool(value != value)  # NaN, NaT.
    except TypeError:  # pandas' NA.
        return True


def read_table(path, header, header_lines, target, delimiter=","):
    """Reads every row of a CSV file past its header into a ``Table``.

    Args:
        path: The file (named in every refusal).
        header: Its column names, stripped (``""`` for an unnamed column).
        header_lines: File lines up to the end of the header row.
        target: The target column's name, one of ``header``.
        delimiter: The file's delimiter.

    Raises:
        DataError: See the module's docstring; also a ragged row.
    """
    cells, lines = _read_cells(path, header, header_lines, delimiter)
    if not lines:
        raise DataError(f"{path}: Expected data rows after the header, received only "
                         f"the header row.")
    place = header.index(target)
    _check_finite(path, header, cells, lines, place)
    y, keep = _target(path, target, cells[place], lines)
    lines = [line for line, kept in zip(lines, keep) if kept]
    columns, left_out = [], []
    for index, (name, column) in enumerate(zip(header, cells)):
        if index == place:
            continue
        read = _column(path, name, index, [c for c, k in zip(column, keep) if k], lines,
                       delimiter)
        (columns if isinstance(read, Column) else left_out).append(read)
    if not columns:
        raise DataError(f"{path}: Expected feature columns besides the target "
                         f"{target!r}, received only columns left out "
                         f"({', '.join(repr(c['name']) for c in left_out)}).")
    return Table(tuple(columns), target, y, tuple(left_out), len(keep) - len(y), delimiter)


def _read_cells(path, header, header_lines, delimiter):
    """The stripped cells of each column, and each data row's file line number."""
    width = len(header)
    cells, lines = [[] for _ in header], []
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            end = 0
            for row in reader:
                start, end = end + 1, reader.line_num  # A quoted cell spans lines.
                if reader.line_num <= header_lines or not any(c.strip() for c in row):
                    continue
                if len(row) == width + 1 and not row[-1].strip():
                    row = row[:-1]  # A trailing delimiter on a data row only.
                if len(row) != width:
                    spans = (f" (a quoted cell runs from line {start} to line {end}: "
                             f"a quote left open?)" if end > start else "")
                    raise DataError(f"{path}: Expected {width} cells in row {start}, "
                                     f"received {len(row)}{spans}.")
                for column, cell in zip(cells, row):
                    column.append(cell.strip())
                lines.append(reader.line_num)
    except (UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: Expected a UTF-8 CSV file, received one that cannot "
                         f"be read ({error}).") from None
    return cells, lines


def _check_finite(path, header, cells, lines, place):
    """Refuses the first infinity (or number past float32's range), row by row.

    A row without a target is not checked, but for its target cell.
    """
    for row, line in enumerate(lines):
        kept = not is_missing(cells[place][row])
        for index, name in enumerate(header):
            cell = cells[index][row]
            if (kept or index == place) and is_number(cell) and not is_missing(cell):
                _number(path, name, cell, line, "a finite float32 number")


def _target(path, name, cells, lines):
    """The target's float32 values of the rows that have one, and which rows do."""
    keep = [not is_missing(cell) for cell in cells]
    values = []
    for cell, line, kept in zip(cells, lines, keep):
        if kept:
            values.append(_number(path, name, cell, line, "a number as the target"))
    if not values:
        raise DataError(f"{path}: Expected target values in column {name!r}, received "
                         f"a missing cell in every row.")
    return np.asarray(values, np.float32), keep


def _column(path, name, index, cells, lines, delimiter):
    """A ``Column``, or the ``{"name", "reason"}`` of a column left out."""
    present = [cell for cell in cells if not is_missing(cell)]
    if not name:
        if present:
            raise DataError(f"{path}: Expected a name for column {index + 1}, which "
                             f"holds values, received an empty name.")
        return {"name": f"(unnamed column {index + 1})", "reason": "empty"}
    if not present:
        raise DataError(f"{path}: Expected values in column {name!r}, received a "
                         f"missing cell in every row.")
    numbers = sum(is_number(cell) or (delimiter != "," and bool(DECIMAL_COMMA.match(cell)))
                  for cell in present)
    if numbers == len(present) or numbers * 2 >= len(present):
        return Column(name, NUMERIC, _numbers(path, name, cells, lines, numbers,
                                              len(present), delimiter))
    if len(set(present)) == len(present) and len(present) > 1:
        return {"name": name, "reason": "identifier (a different value in every row)"}
    return Column(name, CATEGORICAL, np.asarray(
        ["" if is_missing(cell) else cell for cell in cells], dtype=object))


def _numbers(path, name, cells, lines, numbers, present, delimiter):
    """A numeric column's float32 values, NaN where missing; refuses text cells."""
    values = np.full(len(cells), np.nan, np.float32)
    for row, (cell, line) in enumerate(zip(cells, lines)):
        if is_missing(cell):
            continue
        if not is_number(cell):
            if delimiter != "," and DECIMAL_COMMA.match(cell):
                raise DataError(f"{path}: Expected numbers with a decimal point in row "
                                 f"{line}, column {name!r}; received {cell!r} (a decimal "
                                 f"comma).")
            raise DataError(f"{path}: Expected a number in row {line}, column {name!r} "
                             f"({numbers} of its {present} cells are numbers; a missing "
                             f"cell is empty, NA or NaN); received {cell!r}.")
        values[row] = _number(path, name, cell, line, "a finite float32 number")
    return values


def _number(path, name, cell, line, expected):
    try:
        with np.errstate(over="ignore"):  # Overflow gives inf, refused below.
            value = np.float32(to_float(cell))
    except ValueError:
        raise DataError(f"{path}: Expected {expected} in row {line}, column {name!r}; "
                         f"received {cell!r}.") from None
    if not np.isfinite(value):
        raise DataError(f"{path}: Expected a finite float32 number in row {line}, "
                         f"column {name!r}; received {cell!r}.")
    return value


def read_csv(path, target):
    """A CSV file's ``(x, y, columns)``, or its ``table.Table`` when it needs encoding.

    An all-numeric, complete CSV is read with ``numpy.loadtxt`` straight into
    float32: numpy's reader holds only the float32 table and a chunk of lines,
    where a list of Python strings per cell costs about thirty times the
    table. Any other (text, missing cells, an unnamed column, or any error)
    is read again cell by cell by ``table.read_table``, which names the file
    row and column of what it refuses.
    """
    header, header_lines, delimiter = _read_header(path)
    named = [name for name in header if name]
    target = named[-1] if target is None else target
    if target not in named:
        raise DataError(f"{path}: Expected --target to be one of the columns "
                        f"{', '.join(named)}; received {target!r}.")
    if len(named) < 2:
        raise DataError(f"{path}: Expected feature columns besides the target "
                        f"{target!r}, received only the target column.")
    values = _load_numbers(path, header_lines, delimiter) if len(named) == len(header) \
        else None
    if values is not None and len(values) == 0:
        raise DataError(f"{path}: Expected data rows after the header, received only "
                        f"the header row.")
    if values is None or values.shape[1] != len(header) or not np.all(np.isfinite(values)):
        return read_table(path, header, header_lines, target, delimiter)
    column = header.index(target)
    columns = tuple(header[:column] + header[column + 1:] + [target])
    return np.delete(values, column, axis=1), values[:, column], columns


def _load_numbers(path, header_lines, delimiter):
    """The float32 rows past the header, or ``None`` if numpy cannot read them."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle, \
                warnings.catch_warnings():
            warnings.filterwarnings("ignore", "loadtxt: input contained no data")
            body = itertools.islice(handle, header_lines, None)  # Past the header.
            lines = (line for line in body if _has_text(line.split(delimiter)))
            return np.loadtxt(lines, delimiter=delimiter, quotechar='"',
                              dtype=np.float32, ndmin=2)
    except (ValueError, UnicodeDecodeError):
        return None


def _read_header(path):
    """The column names of a CSV file's first non-blank row (a UTF-8 BOM stripped).

    The delimiter is a comma, or a semicolon or a tab when the first row holds
    one and no comma outside quotes.

    Returns:
        ``(names, lines, delimiter)``: ``lines`` is the number of file lines
        up to the end of the header row, which a quoted name with a line
        break spans.
    """
    for delimiter in DELIMITERS:
        first, lines = _first_row(path, delimiter)
        if first is None or len(first) > 1:
            break
    else:
        first, lines = _first_row(path, delimiter := ",")
    if first is None:
        raise DataError(f"{path}: Expected a header row and data rows, received an "
                        f"empty file.")
    header = [name.strip() for name in first]
    if all(is_number(name) for name in header):
        raise DataError(f"{path}: Expected a header row of column names, received a "
                        f"first row of numbers ({', '.join(header[:3])}"
                        f"{', ...' if len(header) > 3 else ''}).")
    repeated = [name for name, count in collections.Counter(header).items()
                if count > 1 and name]
    if repeated:  # --target NAME, the columns a model was trained on: one each.
        raise DataError(f"{path}: Expected distinct column names, received "
                        f"{repeated[0]!r} more than once.")
    return header, lines, delimiter


def _first_row(path, delimiter):
    try:
        with open(path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle, delimiter=delimiter)
            first = next((row for row in reader if _has_text(row)), None)
            return first, reader.line_num
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"{path}: Expected a UTF-8 CSV file, received one that cannot "
                        f"be read ({error}).") from None


def _has_text(row):
    return any(cell.strip() for cell in row)


def is_number(text):
    try:
        to_float(text)
    except ValueError:
        return False
    return True


def to_float(text):
    """``float(text)`` without the digit separators (``1_000``) that Python's
    ``float`` takes and a SavedModel's string-to-number does not."""
    if isinstance(text, str) and "_" in text:
        raise ValueError(f"could not convert string to float: {text!r}")
    return float(text)
