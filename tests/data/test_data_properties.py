"""Properties of the CSV and .npz readers on generated files (Hypothesis).

Every generated file either loads with exactly its values as float32 (a NaN
feature is a missing cell, kept as NaN; a row whose target is NaN is dropped),
or is refused with a one-line ``DataError`` that names the file and, for a
value, where it is; never another exception, never a silent change.
"""

import csv
import io
import os
import subprocess
import sys
import tempfile

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, example, given, settings, strategies as st

from conftest import cli_env
from tuner_prune.data.dataset import DataError, read_data

pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")
SETTINGS = settings(max_examples=150, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
SPECIAL = [0.0, -0.0, 1e39, -1e39, 1e300, 3.4028235e38, 3.4028236e38, 1e-45, 5e-324,
           1.4e-45, float("nan"), float("inf"), float("-inf")]
VALUES = st.one_of(st.sampled_from(SPECIAL), st.floats(), st.floats(width=32),
                   st.integers(-10**6, 10**6).map(float))
NAMES = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\ufeff"),
                min_size=1, max_size=6).filter(str.strip)  # A leading U+FEFF is a BOM.
# (A blank name is an unnamed column: tests/data/test_tables.py.)
# Encodings that must load (all of UTF-8) and one that must be refused unless
# its bytes happen to be UTF-8 too (ASCII text in Latin-1).
ENCODINGS = st.sampled_from(["utf-8", "utf-8-sig", "latin-1", "utf-16"])


def float32(value):
    with np.errstate(over="ignore"):
        return np.float32(value)


def finite32(value):
    return bool(np.isfinite(float32(value)))


def is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


@st.composite
def tables(draw):
    """``(names, rows, quoting, padding)`` of a CSV table."""
    width = draw(st.integers(1, 5))
    names = draw(st.lists(NAMES, min_size=width, max_size=width))
    rows = draw(st.lists(st.lists(VALUES, min_size=width, max_size=width),
                         min_size=1, max_size=6))
    quoting = draw(st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]))
    padding = draw(st.sampled_from(["", " "]))
    return names, rows, quoting, padding


def csv_text(names, rows, quoting, padding):
    out = io.StringIO()
    writer = csv.writer(out, quoting=quoting, lineterminator="\n")
    writer.writerow(names)
    for row in rows:
        writer.writerow([f"{padding}{value!r}{padding}" for value in row])
    return out.getvalue()


def round_trips(text, names):
    """Whether ``csv`` reads ``names`` back (its writer leaves a lone "\r" unquoted)."""
    return next(csv.reader(io.StringIO(text, newline=""))) == names


def encodable(text, encoding):
    try:
        text.encode(encoding)
    except UnicodeEncodeError:
        return False
    return True


def utf8_of_another_text(data_bytes, text):
    """Whether ``data_bytes`` are valid UTF-8 of a text other than ``text``."""
    try:
        return data_bytes.decode("utf-8-sig") != text
    except UnicodeDecodeError:
        return False


def check_refusal(error, path):
    message = str(error)
    assert "\n" not in message and message.startswith(f"{path}: Expected "), message
    return message


def expected_refusal(names, rows, data_bytes, text, quoting):
    """What the reader must refuse about a table, or ``None``: ``(kind, detail)``."""
    try:
        if data_bytes.decode("utf-8-sig") != text:
            return "encoding", None
    except UnicodeDecodeError:
        return "encoding", None
    stripped = [name.strip() for name in names]
    if all(is_number(name) for name in stripped):
        return "header", None
    if len(names) < 2:
        return "target only", None
    if len(set(stripped)) < len(stripped):
        return "names", None
    # The header as the file writes it: its quoting decides whether a lone "\r" in a
    # name ends a line ("\r\n" unquoted) or is a break of its own ("\r" then '"').
    header = csv_text(names, [], quoting, "")
    header_lines = len(io.StringIO(header, newline="").readlines())  # "\r" is a break.
    for number, row in enumerate(rows):  # A row without a target: its target only.
        checked = row if not np.isnan(row[-1]) else row[-1:]
        names_checked = stripped if not np.isnan(row[-1]) else stripped[-1:]
        for name, value in zip(names_checked, checked):
            if not np.isnan(value) and not finite32(value):
                return "value", f"row {header_lines + number + 1}, column {name!r}"
    kept = [row for row in rows if not np.isnan(row[-1])]
    if not kept:
        return "target", None
    if any(all(np.isnan(row[i]) for row in kept) for i in range(len(names) - 1)):
        return "empty column", None
    return None


@SETTINGS
@given(tables(), ENCODINGS)
# A quoted name ending in a lone "\r": the header is two lines, the bad value on the third.
@example((["0", ":\r"], [[0.0, 1e39]], csv.QUOTE_ALL, ""), "utf-8")
def test_a_csv_loads_exactly_or_is_refused_saying_where(table, encoding):
    names, rows, quoting, padding = table
    text = csv_text(names, rows, quoting, padding)
    assume(encodable(text, encoding) and round_trips(text, names))
    data_bytes = text.encode(encoding)
    # Bytes of another encoding that happen to be valid UTF-8 (latin-1 "Â\x80" is
    # UTF-8 "\x80") are another table, read as UTF-8: no refusal to expect.
    assume(not utf8_of_another_text(data_bytes, text))
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "t.csv")
        with open(path, "wb") as handle:
            handle.write(data_bytes)
        refusal = expected_refusal(names, rows, data_bytes, text, quoting)
        try:
            x, y, columns = read_data(path)
        except DataError as error:
            message = check_refusal(error, path)
            assert refusal is not None, message
            if refusal[0] == "value":
                assert refusal[1] in message, (message, refusal)
            return
    assert refusal is None, refusal
    stripped = [name.strip() for name in names]
    assert columns == tuple(stripped)
    kept = [row for row in rows if not np.isnan(row[-1])]  # NaN: a missing cell.
    expected = np.array([[float32(v) for v in row] for row in kept], np.float32)
    assert x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(x, expected[:, :-1])  # NaN where missing.
    np.testing.assert_array_equal(y, expected[:, -1])


@st.composite
def npz_arrays(draw):
    rows = draw(st.integers(0, 5))
    shape = (rows, *draw(st.lists(st.integers(1, 3), max_size=3)))
    dtype = draw(st.sampled_from([np.float64, np.float32, np.float16, np.int64]))
    elements = (st.integers(-2**62, 2**62) if dtype is np.int64 else
                VALUES.filter(lambda v: dtype is np.float64 or finite32(v)
                              or not np.isfinite(v)))
    values = draw(st.lists(elements, min_size=int(np.prod(shape)),
                           max_size=int(np.prod(shape))))
    with np.errstate(over="ignore"):  # float16 infinities are values too.
        x = np.array(values, dtype).reshape(shape)
    y = np.array(draw(st.lists(VALUES, min_size=rows, max_size=rows)), np.float64)
    return x, y


@SETTINGS
@given(npz_arrays())
def test_an_npz_loads_exactly_or_is_refused_naming_array_and_row(arrays):
    x, y = arrays
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "t.npz")
        np.savez(path, x=x, y=y)
        bad = [(name, tuple(np.argwhere(~np.isfinite(float32(array)))[0]))
               for name, array in (("x", x), ("y", y))
               if not np.all(np.isfinite(float32(array)))]
        try:
            got_x, got_y, columns = read_data(path)
        except DataError as error:
            message = check_refusal(error, path)
            assert bad, message
            name, where = bad[0]
            assert f"array {name!r}" in message and f"in row {where[0]}" in message
            return
    assert not bad, bad
    assert columns is None and got_x.dtype == got_y.dtype == np.float32
    np.testing.assert_array_equal(got_x, float32(x).reshape(len(x), 1)
                                  if x.ndim == 1 else float32(x))
    np.testing.assert_array_equal(got_y, float32(y))


def test_a_csv_in_another_encoding_is_one_line_exit_2_through_the_cli(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("prix_é,y\n".encode("latin-1") + b"1,2\n" * 20)
    result = subprocess.run([sys.executable, "-m", "tuner_prune", "search", "--data",
                             str(path), "--directory", str(tmp_path / "logs"),
                             "--export-dir", str(tmp_path / "export")],
                            capture_output=True, text=True, timeout=120, env=cli_env())
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"tuner_prune: error: {path}: Expected a UTF-8 CSV")
    assert sorted(os.listdir(tmp_path)) == ["latin.csv"]
