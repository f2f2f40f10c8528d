"""From a table's raw columns to the numbers a model takes (Keras-free).

Fitted on the training split only (``fit``), applied to every split
(``Encoding.transform``) and, through the manifest's ``inputs`` mapping, to
raw rows at serving time (``encode_rows``):

- a numeric column is one input; a missing cell is filled with the training
  split's median, and when the training split has missing cells in the column
  an indicator input (1 where the cell was missing) follows it;
- a text column with at most ``ONE_HOT_MAX_LEVELS`` levels is one input per
  level, then one for ``OTHER``, a level the training split never saw;
- a text column with more levels is one input: the smoothed mean of the
  training targets of its level (``MANY_LEVELS``, measured against an integer
  code in docs/inputs.md); an unseen level gets the training mean.

A missing text cell is the level ``""``. Levels are ordered by their count in
the training split, most frequent first, then by name.
"""

import collections
import dataclasses
import json
import os

import numpy as np

from tuner_prune.data import table as table_lib
from tuner_prune.core.errors import InputError

ONE_HOT_MAX_LEVELS = 10
MANY_LEVELS = "target_mean"  # Or "code"; see docs/inputs.md.
SMOOTHING = 10  # Training rows' weight of the overall mean in a level's target mean.
OTHER = "(other)"
FORMAT = "tuner_prune.inputs/1"


@dataclasses.dataclass(frozen=True)
class Encoding:
    """The fitted mapping from raw columns to model inputs.

    ``columns`` holds one JSON-ready dict per raw column the model reads (see
    docs/manifest.md); ``names`` names each model input; ``left_out``,
    ``dropped_rows`` and ``target`` say what else the reader did.
    """

    columns: tuple
    names: tuple
    target: str
    left_out: tuple = ()
    dropped_rows: int = 0

    @property
    def width(self):
        """Inputs of the model (of the ``.tflite``)."""
        return len(self.names)

    @property
    def raw_columns(self):
        """The names of the raw columns the model reads, in order."""
        return tuple(spec["name"] for spec in self.columns)

    def is_identity(self):
        """Whether the inputs are the raw columns unchanged: numbers, none missing."""
        return all(spec["kind"] == table_lib.NUMERIC and spec["missing_index"] is None
                   for spec in self.columns)

    def manifest(self):
        """The manifest's ``inputs``: the exact mapping and what was read how."""
        return {"format": FORMAT, "width": self.width, "target": self.target,
                "columns": [dict(spec) for spec in self.columns],
                "names": list(self.names), "left_out": [dict(c) for c in self.left_out],
                "dropped_rows": self.dropped_rows}

    @classmethod
    def from_manifest(cls, inputs):
        return cls(tuple(inputs["columns"]), tuple(inputs["names"]), inputs["target"],
                   tuple(inputs.get("left_out", ())), inputs.get("dropped_rows", 0))

    def transform(self, columns):
        """The float32 inputs ``(rows, width)`` of raw columns.

        Args:
            columns: ``{name: cells}`` for every raw column: numbers (NaN or
                ``None`` where missing) or strings as a CSV holds them.

        Raises:
            InputError: A missing column, or text in a numeric column.
        """
        missing = [name for name in self.raw_columns if name not in columns]
        if missing:
            raise InputError(f"Expected the columns {', '.join(self.raw_columns)}, "
                             f"received none named {missing[0]!r}.")
        rows = len(columns[self.raw_columns[0]]) if self.columns else 0
        out = np.zeros((rows, self.width), np.float32)
        for spec in self.columns:
            cells = columns[spec["name"]]
            if spec["kind"] == table_lib.NUMERIC:
                _fill_numeric(out, spec, as_numbers(spec["name"], cells))
            else:
                _fill_categorical(out, spec, as_levels(cells, spec["levels"]))
        return out

    def describe(self):
        """One line per kind of column: what the run read how."""
        numeric = [s["name"] for s in self.columns if s["kind"] == table_lib.NUMERIC]
        lines = [f"{len(numeric)} numeric: {', '.join(numeric)}"] if numeric else []
        lines += [f"categorical {s['name']!r}: {len(s['levels'])} levels, "
                  f"{s['encoding'].replace('_', '-')}" for s in self.columns
                  if s["kind"] == table_lib.CATEGORICAL]
        filled = [s["name"] for s in self.columns if s.get("missing_index") is not None]
        if filled:
            lines.append(f"missing cells filled (with an indicator): {', '.join(filled)}")
        lines += [f"left out {c['name']!r}: {c['reason']}" for c in self.left_out]
        rows = "row" if self.dropped_rows == 1 else "rows"
        lines.append(f"target {self.target!r}; {self.dropped_rows} {rows} without a "
                     f"target dropped")
        return lines


def fit(table, train):
    """The ``Encoding`` of a ``table.Table``, fitted on the rows ``train``."""
    specs, names = [], []
    y_train = table.y[train].astype(np.float64)
    for column in table.columns:
        values = column.values[train]
        if column.kind == table_lib.NUMERIC:
            spec = _numeric_spec(column.name, values, len(names))
        else:
            spec = _categorical_spec(column.name, values, y_train, len(names))
        specs.append(spec)
        names += _input_names(spec)
    return Encoding(tuple(specs), tuple(names), table.target, table.left_out,
                    table.dropped_rows)


def encode_table(encoding, table):
    """The float32 inputs of every row of a ``table.Table``."""
    return encoding.transform({c.name: c.values for c in table.columns})


def _numeric_spec(name, values, start):
    present = values[~np.isnan(values)]
    fill = float(np.median(present)) if len(present) else 0.0
    has_missing = len(present) < len(values)
    return {"name": name, "kind": table_lib.NUMERIC, "index": start, "fill": fill,
            "missing_index": start + 1 if has_missing else None}


def _categorical_spec(name, values, y_train, start):
    counts = collections.Counter(values.tolist())
    levels = sorted(counts, key=lambda level: (-counts[level], level))
    if len(levels) <= ONE_HOT_MAX_LEVELS:
        return {"name": name, "kind": table_lib.CATEGORICAL, "encoding": "one_hot",
                "levels": levels, "indices": list(range(start, start + len(levels))),
                "other_index": start + len(levels)}
    spec = {"name": name, "kind": table_lib.CATEGORICAL, "encoding": MANY_LEVELS,
            "levels": levels, "index": start}
    if MANY_LEVELS == "code":
        return {**spec, "values": [float(i) for i in range(len(levels))],
                "other_value": float(len(levels))}
    mean = float(y_train.mean())
    sums = collections.defaultdict(float)
    for level, target in zip(values.tolist(), y_train):
        sums[level] += target
    return {**spec, "values": [(sums[level] + SMOOTHING * mean) / (counts[level] + SMOOTHING)
                               for level in levels], "other_value": mean}


def _input_names(spec):
    name = spec["name"]
    if spec["kind"] == table_lib.NUMERIC:
        return [name] + ([f"{name} (missing)"] if spec["missing_index"] is not None else [])
    if spec["encoding"] == "one_hot":
        return [f"{name}={level}" for level in spec["levels"]] + [f"{name}={OTHER}"]
    return [f"{name} ({spec['encoding'].replace('_', ' ')})"]


def _fill_numeric(out, spec, values):
    missing = np.isnan(values)
    out[:, spec["index"]] = np.where(missing, np.float32(spec["fill"]), values)
    if spec["missing_index"] is not None:
        out[:, spec["missing_index"]] = missing


def _fill_categorical(out, spec, levels):
    place = {level: i for i, level in enumerate(spec["levels"])}
    found = np.array([place.get(level, -1) for level in levels], np.int64)
    if spec["encoding"] == "one_hot":
        columns = np.asarray(spec["indices"] + [spec["other_index"]])
        out[np.arange(len(found)), columns[found]] = 1.0  # -1: the last, "other".
    else:
        values = np.asarray(spec["values"] + [spec["other_value"]], np.float32)
        out[:, spec["index"]] = values[found]


def as_numbers(name, cells):
    """Cells of a numeric column as float32, NaN where missing.

    Raises:
        InputError: A cell that is neither a number nor missing.
    """
    values = np.asarray(cells)
    if values.dtype.kind in "biuf":
        return values.astype(np.float32)
    out = np.empty(len(values), np.float32)
    for row, cell in enumerate(values.tolist()):
        if table_lib.is_missing_value(cell):
            out[row] = np.nan
        else:
            try:
                out[row] = table_lib.to_float(cell)
            except (TypeError, ValueError):
                raise InputError(f"Expected a number in row {row}, column {name!r}; "
                                 f"received {cell!r}.") from None
    return out


def as_levels(cells, known=()):
    """Cells of a text column as stripped strings, ``""`` where missing.

    A cell that pandas parsed from the CSV's text (a ``bool`` from ``TRUE``,
    a number from ``1``) is the ``known`` level it was read from: a bool is
    matched to ``known`` whatever the case, a number to the level of equal
    value (``1.0`` to ``"1"``); else it is ``str(cell)``.
    """
    levels, aliases = [], _aliases(known)
    for cell in np.asarray(cells, dtype=object).tolist():
        if table_lib.is_missing_value(cell):
            levels.append("")
        elif isinstance(cell, str):
            levels.append(cell.strip())
        else:
            text = str(cell).strip()
            levels.append(text if text in known else aliases.get(_alias(cell), text))
    return levels


def _alias(cell):
    """What a level and a parsed cell share: ``("bool", "true")``, ``("number", 1.0)``."""
    if isinstance(cell, (bool, np.bool_)):
        return ("bool", str(bool(cell)).lower())
    if isinstance(cell, str):
        if cell.lower() in ("true", "false"):
            return ("bool", cell.lower())
        return ("number", float(cell)) if table_lib.is_number(cell) else None
    if isinstance(cell, (int, float, np.integer, np.floating)):
        return ("number", float(cell))
    return None


def _aliases(known):
    """``{alias: level}`` of the ``known`` levels whose alias no other level shares."""
    found = {}
    for level in known:
        alias = _alias(level)
        if alias is not None:
            found[alias] = None if alias in found else level
    return {alias: level for alias, level in found.items() if level is not None}


def encode_rows(manifest_or_export_dir, rows):
    """The ``.tflite``'s float32 inputs ``(rows, width)`` of raw rows.

    Args:
        manifest_or_export_dir: An export folder, its ``manifest.json``'s
            path, or the manifest as a dict (its ``inputs`` mapping is used).
        rows: A pandas DataFrame with the raw columns; a list of dicts
            ``{column: cell}``; or a list of lists of cells (strings as in
            the CSV, or numbers) in the order of ``manifest["inputs"]
            ["columns"]``. Other columns (the target, left-out ones) are
            ignored; missing cells may be ``""``, ``"NA"``, ``"NaN"``,
            ``None`` or NaN.

    Returns:
        A float32 array ``(rows, width)``: one row is one ``invoke`` of the
        ``.tflite`` (scaling is built into the model).

    Raises:
        InputError: No ``inputs`` mapping (an ``.npz`` or built-in search),
            a missing column, or text in a numeric column.
    """
    encoding = Encoding.from_manifest(_inputs(manifest_or_export_dir))
    return encoding.transform(_columns_of(rows, encoding.raw_columns))


def _inputs(manifest_or_export_dir):
    manifest = manifest_or_export_dir
    if isinstance(manifest, (str, os.PathLike)):
        path = os.fspath(manifest)
        path = os.path.join(path, "manifest.json") if os.path.isdir(path) else path
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    if not manifest.get("inputs"):
        raise InputError("Expected a manifest with an 'inputs' mapping (a search on a "
                         "CSV file), received one without.")
    return manifest["inputs"]


def _columns_of(rows, names):
    """``{name: cells}`` of a DataFrame, a list of dicts or a list of lists."""
    if hasattr(rows, "columns") and hasattr(rows, "dtypes"):  # A DataFrame.
        labels = {str(column): column for column in rows.columns}  # 0 is "0".
        return {name: rows[labels[name]].to_numpy(dtype=object) for name in names
                if name in labels}
    rows = list(rows)
    if rows and isinstance(rows[0], dict):
        return {name: [row.get(name) for row in rows] for name in names
                if all(name in row for row in rows)}
    for number, row in enumerate(rows):
        if len(row) != len(names):
            raise InputError(f"Expected {len(names)} cells ({', '.join(names)}) in row "
                             f"{number}, received {len(row)}.")
    return {name: [row[i] for row in rows] for i, name in enumerate(names)}
