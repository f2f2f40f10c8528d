"""Data loading, splitting and scaling, without training."""

import numpy as np
import pytest

from tuner_prune.data import splits
from tuner_prune.settings import stored_search
from tuner_prune.data.dataset import DataError, load_arrays, load_dataset, split_dataset
from tuner_prune.core.errors import InputError

# A value too large for float32 is refused with its row, not with a numpy warning.
pytestmark = pytest.mark.filterwarnings("error::RuntimeWarning")


def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_builtin_split_and_scaling_use_training_rows_only():
    data = load_dataset(n_samples=200, n_features=8, n_informative=4, seed=3)
    assert (len(data.x_train), len(data.x_val), len(data.x_test)) == (160, 20, 20)
    np.testing.assert_allclose(data.x_scale, np.abs(data.x_train).max(axis=0))
    assert data.y_scale == pytest.approx(np.abs(data.y_train).max())
    assert np.abs(data.scale_x(data.x_train)).max() == pytest.approx(1.0)


def test_builtin_is_reproducible_and_seeded():
    first = load_dataset(n_samples=50, n_features=5, n_informative=2, seed=1)
    again = load_dataset(n_samples=50, n_features=5, n_informative=2, seed=1)
    other = load_dataset(n_samples=50, n_features=5, n_informative=2, seed=2)
    assert first.fingerprint() == again.fingerprint() != other.fingerprint()


def test_csv_target_by_name(tmp_path):
    rows = "\n".join(f"{i},{2 * i},{i % 3}" for i in range(20))
    path = write(tmp_path / "d.csv", "a,y,b\n" + rows + "\n")
    x, y = load_arrays(path, target="y")
    assert x.shape == (20, 2)
    np.testing.assert_array_equal(y, 2 * np.arange(20))


def test_npz_is_read_without_pickle(tmp_path):
    path = tmp_path / "d.npz"
    np.savez(path, x=np.ones((12, 3)), y=np.arange(12.0))
    x, y = load_arrays(str(path))
    assert x.shape == (12, 3) and y.shape == (12,)
    bad = tmp_path / "objects.npz"
    np.savez(bad, x=np.array([{"a": 1}] * 12, dtype=object), y=np.arange(12.0))
    with pytest.raises(DataError, match="objects.npz"):
        load_arrays(str(bad))


@pytest.mark.parametrize("name,text,message", [
    ("empty.csv", "", "received an empty file"),
    ("header.csv", "a,b\n", "received only the header row"),
    ("text.csv", "a,b\n1,2\n3,x\n", r"Expected a number as the target in row 3, column 'b'; "
     r"received 'x'"),
    ("inf.csv", "a,b\n1,2\ninf,4\n", r"finite float32 number in row 3, column 'a'; received 'inf'"),
    ("ragged.csv", "a,b\n1,2\n3\n", "Expected 2 cells in row 3, received 1"),
    ("data.txt", "a,b\n1,2\n", "Expected a .csv or .npz file, received the file type '.txt'"),
    ("twice.csv", "a,b,a\n1,2,3\n", "Expected distinct column names, received 'a' more than "
     "once"),
])
def test_bad_files_are_named(tmp_path, name, text, message):
    path = write(tmp_path / name, text)
    with pytest.raises(DataError, match=message) as caught:
        load_arrays(path)
    assert name in str(caught.value)


def test_a_quoted_name_with_a_line_break_is_one_header_row(tmp_path):
    path = write(tmp_path / "d.csv", 'a,"b\nsecond line",y\n1,2,3\n4,5,-inf\n')
    with pytest.raises(DataError, match="finite float32 number in row 4, column 'y'"):
        load_arrays(path)
    write(tmp_path / "d.csv", 'a,"b\nsecond line",y\n1,2,3\n4,5,6\n')
    x, y = load_arrays(path)
    assert x.tolist() == [[1, 2], [4, 5]] and y.tolist() == [3, 6]


def test_missing_target_column(tmp_path):
    path = write(tmp_path / "d.csv", "a,b\n1,2\n")
    with pytest.raises(DataError, match="one of the columns a, b; received 'price'"):
        load_arrays(path, target="price")


def test_split_refuses_constant_target_and_too_few_rows():
    with pytest.raises(DataError, match="same value 3 in all 20 rows"):
        split_dataset(np.ones((20, 2)), np.full(20, 3.0))
    with pytest.raises(DataError, match="at least 10 rows .* received 5"):
        split_dataset(np.ones((5, 2)), np.arange(5.0))


def test_magnitudes_below_float32s_normal_range_are_refused_before_training():
    """A 1e-42 target trained, then every variant predicted 0 and the export failed
    (exit 1); a 1e-40 feature's scaling factor overflows float32."""
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (40, 3))
    with pytest.raises(DataError, match=r"^d.csv: Expected the target 'y' of magnitude at "
                       r"least 1.18e-38 .* received at most 9.\d+e-43; scale it up.$"):
        split_dataset(x, x[:, 0] * 1e-42, source="d.csv", columns=("a", "b", "c", "y"))
    small = x * [1, 1e-40, 1]
    with pytest.raises(DataError, match=r"^d.csv: Expected column 'b' to be 0 or of "
                       r"magnitude at least 1.18e-38"):
        split_dataset(small, x[:, 0], source="d.csv", columns=("a", "b", "c", "y"))
    with pytest.raises(InputError, match=r"^training data: Expected feature 1 to be 0"):
        splits.from_arrays(small, x[:, 0], (small, x[:, 0]))
    x[:, 1] = 0.0  # A feature that is all 0 is no underflow.
    assert split_dataset(x * 1e-30, x[:, 0] * 1e-37).y_scale < 1e-37


def test_csv_byte_order_mark_is_not_part_of_the_first_name(tmp_path):
    rows = "".join(f"{i},{3 * i}\n" for i in range(12))
    path = tmp_path / "bom.csv"
    path.write_bytes(("\ufeffprice,size\n" + rows).encode("utf-8"))
    x, y = load_arrays(str(path), target="price")
    np.testing.assert_array_equal(y, np.arange(12))
    np.testing.assert_array_equal(x[:, 0], 3 * np.arange(12))


def test_csv_without_a_header_row_is_refused(tmp_path):
    path = write(tmp_path / "bare.csv", "".join(f"{i},{i + 1}\n" for i in range(12)))
    with pytest.raises(DataError, match=r"bare\.csv: Expected a header row .* received a "
                                        r"first row of numbers \(0, 1\)"):
        load_arrays(path)


@pytest.mark.parametrize("rows,bad_row,message", [
    ("a,b\n1,2\n\n   \n3,4\n", "5,1e39\n",
     r"finite float32 number in row 6, column 'b'; received '1e39'"),
    ("\n  \na,b\n,\n1,2\n\n3,4\n , \n", "5,x\n",
     r"Expected a number as the target in row 9, column 'b'; received 'x'"),
])
def test_csv_rows_are_named_by_file_line_past_blank_and_empty_lines(tmp_path, rows, bad_row,
                                                                    message):
    with pytest.raises(DataError, match=message):
        load_arrays(write(tmp_path / "bad.csv", rows + bad_row))
    x, y = load_arrays(write(tmp_path / "fine.csv", rows))
    np.testing.assert_array_equal(y, [2, 4])
    assert x.dtype == y.dtype == np.float32


def test_data_errors_are_input_errors():
    assert issubclass(DataError, InputError)


CSV_ROWS = [[i, (i * 7) % 11, (i * 5) % 13, 2 * i + 1] for i in range(40)]


def csv_text(rows, header=("a", "b", "c", "y")):
    return ",".join(header) + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)


def fingerprint(tmp_path, text, target=None):
    return load_dataset(write(tmp_path / "d.csv", text), target=target).fingerprint()


def test_fingerprint_is_stable_and_names_the_columns(tmp_path):
    first = fingerprint(tmp_path, csv_text(CSV_ROWS))
    assert first == fingerprint(tmp_path, csv_text(CSV_ROWS))
    assert first["columns"] == ["a", "b", "c", "y"]
    assert stored_search.data_differences(first, first) == []


def test_swapping_two_values_in_one_row_changes_the_fingerprint(tmp_path):
    before = fingerprint(tmp_path, csv_text(CSV_ROWS))
    rows = [list(r) for r in CSV_ROWS]
    rows[5][0], rows[5][1] = rows[5][1], rows[5][0]
    after = fingerprint(tmp_path, csv_text(rows))
    assert after["sha256"] != before["sha256"]
    changed = stored_search.data_differences(before, after)
    assert len(changed) == 1 and changed[0].startswith("data with different values")


def test_swapping_two_columns_changes_the_fingerprint(tmp_path):
    before = fingerprint(tmp_path, csv_text(CSV_ROWS))
    swapped = [[r[1], r[0], r[2], r[3]] for r in CSV_ROWS]
    after = fingerprint(tmp_path, csv_text(swapped, header=("b", "a", "c", "y")))
    assert stored_search.data_differences(before, after) == [
        "data with columns b, a, c, y (the search has a, b, c, y)"]


def test_another_target_changes_the_fingerprint(tmp_path):
    before = fingerprint(tmp_path, csv_text(CSV_ROWS))
    after = fingerprint(tmp_path, csv_text(CSV_ROWS), target="c")
    assert after["columns"] == ["a", "b", "y", "c"]
    assert stored_search.data_differences(before, after) == [
        "data with columns a, b, y, c (the search has a, b, c, y)"]
