"""CSV tables as they come: text columns, missing cells, rows without a target (no training)."""

import numpy as np
import pytest

import tuner_prune
from conftest import CUTS, table_text
from tuner_prune.data import encoding
from tuner_prune.data.dataset import DataError, load_arrays, load_dataset, split_rows
from tuner_prune.core.errors import InputError



def write(path, text):
    path.write_text(text, encoding="utf-8")
    return str(path)


@pytest.fixture
def mixed(tmp_path):
    return load_dataset(write(tmp_path / "mixed.csv", table_text()))


def spec(dataset, name):
    return next(s for s in dataset.encoding.columns if s["name"] == name)


def test_text_columns_are_one_hot_with_an_other_level_and_yes_no_is_text(mixed):
    cut, answer = spec(mixed, "cut"), spec(mixed, "answer")
    assert (cut["encoding"], sorted(cut["levels"])) == ("one_hot", sorted(CUTS))
    assert sorted(answer["levels"]) == ["no", "yes"]
    columns = mixed.columns
    assert "cut=(other)" in columns and "answer=(other)" in columns
    one_hot = mixed.x_train[:, cut["indices"] + [cut["other_index"]]]
    np.testing.assert_array_equal(one_hot.sum(axis=1), 1)
    assert not one_hot[:, -1].any()  # Every training level is a level.
    unseen = mixed.encoding.transform({"cut": ["Premium"], "size": [1.0],
                                       "answer": ["no"]})
    assert unseen[0, cut["other_index"]] == 1 and unseen[0, cut["indices"]].sum() == 0


def test_a_missing_cell_is_filled_with_the_training_median_and_flagged(mixed, tmp_path):
    size = spec(mixed, "size")
    flags = mixed.x_train[:, size["missing_index"]]
    assert flags.any() and not flags.all()
    filled = mixed.x_train[flags == 1, size["index"]]
    present = mixed.x_train[flags == 0, size["index"]]
    np.testing.assert_allclose(filled, np.median(present))
    assert size["fill"] == pytest.approx(np.median(present))


def test_a_row_without_a_target_is_dropped_and_an_identifier_left_out(mixed):
    assert mixed.encoding.dropped_rows == 1
    assert len(mixed.x_train) + len(mixed.x_val) + len(mixed.x_test) == 39
    assert [c["name"] for c in mixed.encoding.left_out] == ["id"]
    assert not any(name.startswith("id") for name in mixed.columns)
    lines = mixed.encoding.describe()
    assert "left out 'id': identifier (a different value in every row)" in lines
    assert "target 'price'; 1 row without a target dropped" in lines


def test_many_levels_get_the_training_splits_target_mean(tmp_path):
    levels = [f"town{i}" for i in range(encoding.ONE_HOT_MAX_LEVELS + 5)]
    rows = [(levels[i % len(levels)], i % 4, 3.0 * (i % len(levels)) + i % 2)
            for i in range(120)]
    text = "town,rooms,price\n" + "".join(f"{t},{r},{p}\n" for t, r, p in rows)
    dataset = load_dataset(write(tmp_path / "towns.csv", text))
    town = spec(dataset, "town")
    assert town["encoding"] == "target_mean" and len(dataset.columns) == 3
    train = dataset.x_train[:, town["index"]]
    mean = dataset.y_train.astype(np.float64).mean()
    for level, value in zip(town["levels"], town["values"]):
        rows_of_level = [i for i, row in enumerate(dataset.x_train) if row[town["index"]]
                         == np.float32(value)]
        targets = dataset.y_train[rows_of_level].astype(np.float64)
        expected = (targets.sum() + encoding.SMOOTHING * mean) / (
            len(targets) + encoding.SMOOTHING)
        assert value == pytest.approx(expected), level
    assert set(np.unique(train)) <= {np.float32(v) for v in town["values"]}
    assert town["other_value"] == pytest.approx(mean)


def test_the_encoding_is_fitted_on_the_training_split_only(tmp_path):
    dataset = load_dataset(write(tmp_path / "a.csv", table_text()))
    lines = table_text().splitlines()
    kept = [n for n, line in enumerate(lines[1:], 1) if not line.endswith(",NaN")]
    test, _, _ = split_rows(np.zeros(len(kept)) + np.arange(len(kept)), 0, "a.csv")
    for row in test:  # A level no training row has, in test rows only.
        lines[kept[row]] = lines[kept[row]].replace(",Ideal,", ",Unheard,")
    again = load_dataset(write(tmp_path / "b.csv", "\n".join(lines) + "\n"))
    cut = spec(dataset, "cut")
    assert spec(again, "cut")["levels"] == cut["levels"]
    np.testing.assert_array_equal(again.x_train, dataset.x_train)
    ideal = cut["indices"][cut["levels"].index("Ideal")]
    assert dataset.x_test[:, ideal].sum() > 0
    np.testing.assert_array_equal(again.x_test[:, cut["other_index"]],
                                  dataset.x_test[:, ideal])


@pytest.mark.parametrize("delimiter", [";", "\t"])
def test_semicolon_and_tab_separated_files_read_as_a_comma_separated_one(tmp_path,
                                                                          delimiter):
    comma = load_dataset(write(tmp_path / "comma.csv", table_text()))
    other = load_dataset(write(tmp_path / "other.csv", table_text(delimiter=delimiter)))
    assert other.columns == comma.columns
    np.testing.assert_array_equal(other.x_train, comma.x_train)
    numeric = "a;b;y\n" + "".join(f"{i};{i % 3};{2 * i}\n" for i in range(12))
    x, y = load_arrays(write(tmp_path / "n.csv", numeric.replace(";", delimiter)))
    assert x.shape == (12, 2) and y.tolist() == [2.0 * i for i in range(12)]


def test_a_trailing_comma_on_every_line_is_an_empty_column_left_out(tmp_path):
    plain = load_dataset(write(tmp_path / "plain.csv", table_text()))
    trailing = load_dataset(write(tmp_path / "t.csv", table_text(trailing=",")))
    assert trailing.columns == plain.columns
    np.testing.assert_array_equal(trailing.x_train, plain.x_train)
    numeric = "a,b,y,\n" + "".join(f"{i},{i % 3},{2 * i},\n" for i in range(12))
    x, y = load_arrays(write(tmp_path / "n.csv", numeric))
    assert x.shape == (12, 2) and y.tolist() == [2.0 * i for i in range(12)]


@pytest.mark.parametrize("edit,message", [
    (lambda t: t.replace("\nr8,Fair,9.6,", "\nr8,Fair,9.6x,"),
     r"Expected a number in row 10, column 'size' \(\d+ of its \d+ cells are numbers; "
     r"a missing cell is empty, NA or NaN\); received '9.6x'"),
    (lambda t: t.replace("\nr8,Fair,9.6,", "\nr8,Fair,?,"),  # UCI's missing mark.
     r"Expected a number in row 10, column 'size' \(\d+ of its \d+ cells are numbers; "
     r"a missing cell is empty, NA or NaN\); received '\?'"),
    (lambda t: t.replace("\nr8,Fair,9.6,", "\nr8,Fair,9_6,"),  # Python's float takes it.
     r"Expected a number in row 10, column 'size' \(\d+ of its \d+ cells are numbers; "
     r"a missing cell is empty, NA or NaN\); received '9_6'"),
    (lambda t: t.replace("\nr8,Fair,9.6,", "\nr8,Fair,inf,"),
     r"Expected a finite float32 number in row 10, column 'size'; received 'inf'"),
    (lambda t: t.replace(",yes,3\n", ",yes,three\n"),
     r"Expected a number as the target in row 3, column 'price'; received 'three'"),
    (lambda t: t.replace("id,", "id,empty,").replace(",Ideal,", ",,Ideal,")
     .replace(",Good,", ",NA,Good,").replace(",Fair,", ",,Fair,"),
     r"Expected values in column 'empty', received a missing cell in every row"),
    (lambda t: table_text(trailing=",").replace(",yes,3,\n", ",yes,3,7\n"),
     r"Expected a name for column 6, which holds values, received an empty name"),
])
def test_still_refused_in_one_line_naming_row_and_column(tmp_path, edit, message):
    path = write(tmp_path / "bad.csv", edit(table_text()))
    with pytest.raises(DataError, match=message) as caught:
        load_dataset(path)
    assert str(caught.value).startswith(f"{path}: Expected") and "\n" not in str(caught.value)


def test_a_quote_left_open_is_refused_at_the_row_where_it_opens(tmp_path):
    path = write(tmp_path / "q.csv", table_text().replace("\nr8,Fair,", '\nr8,"Fair,'))
    with pytest.raises(DataError, match=r"Expected 5 cells in row 10, received 2 \(a "
                                        r"quoted cell runs from line 10 to line 41: a "
                                        r"quote left open\?\)\.$"):
        load_dataset(path)


def test_a_decimal_comma_in_a_semicolon_file_is_refused(tmp_path):
    text = "a;y\n" + "".join(f"{i},5;{i}\n" for i in range(12))
    with pytest.raises(DataError, match=r"Expected numbers with a decimal point in row 2, "
                                        r"column 'a'; received '0,5' \(a decimal comma\)"):
        load_dataset(write(tmp_path / "d.csv", text))


def test_load_arrays_reads_missing_cells_as_nan_and_refuses_text(tmp_path):
    x, y = load_arrays(write(tmp_path / "n.csv", "a,b,y\n1,,3\nNA,2,\n4,5,6\n"))
    assert np.isnan(x[0, 1]) and x.shape == (2, 2) and y.tolist() == [3, 6]
    with pytest.raises(DataError, match="the text column 'cut': load_dataset encodes it"):
        load_arrays(write(tmp_path / "t.csv", table_text()))


def test_a_numeric_complete_csv_keeps_its_columns_and_an_identity_mapping(tmp_path):
    text = "a,b,y\n" + "".join(f"{i},{i % 3},{2 * i}\n" for i in range(20))
    dataset = load_dataset(write(tmp_path / "n.csv", text))
    assert dataset.columns == ("a", "b", "y") and dataset.encoding.is_identity()
    assert [s["fill"] for s in dataset.encoding.columns] == pytest.approx(
        np.median(dataset.x_train, axis=0))


def test_encode_rows_takes_a_dataframe_dicts_or_lists_of_cells(mixed):
    import pandas

    manifest = {"inputs": mixed.encoding.manifest()}
    rows = [{"id": "new", "cut": "Good", "size": "2.5", "answer": "yes"},
            {"cut": "Premium", "size": "", "answer": "no", "price": 3},
            {"cut": "Fair", "size": None, "answer": "maybe"}]
    names = mixed.encoding.raw_columns
    lists = [[row.get(name) for name in names] for row in rows]
    from_dicts = tuner_prune.encode_rows(manifest, rows)
    np.testing.assert_array_equal(tuner_prune.encode_rows(manifest, lists), from_dicts)
    np.testing.assert_array_equal(
        tuner_prune.encode_rows(manifest, pandas.DataFrame(rows)), from_dicts)
    size, cut = spec(mixed, "size"), spec(mixed, "cut")
    assert from_dicts[0, size["index"]] == 2.5 and from_dicts[0, size["missing_index"]] == 0
    assert from_dicts[1, size["index"]] == np.float32(size["fill"])
    assert from_dicts[1, size["missing_index"]] == 1
    assert from_dicts[1, cut["other_index"]] == 1
    with pytest.raises(InputError, match="Expected a number in row 0, column 'size'"):
        tuner_prune.encode_rows(manifest, [["Good", "big", "yes"]])


def test_encode_rows_of_pandas_read_csv_matches_the_cells_as_text(tmp_path):
    """pandas parses R's TRUE/FALSE into bools and a text column's numbers into
    floats; encode_rows maps them to the levels they were read from, not (other)."""
    import pandas

    lines = ["flag,code,a,y"] + [f"{'TRUE' if i % 2 else 'FALSE'},{['1', 'x', 'z'][i % 3]},"
                                 f"{i},{i % 5 + (i % 2)}" for i in range(30)]
    path = write(tmp_path / "r.csv", "\n".join(lines) + "\n")
    manifest = {"inputs": load_dataset(path).encoding.manifest()}
    as_text = pandas.read_csv(path, dtype=str)
    typed = pandas.read_csv(path)
    typed["code"] = pandas.to_numeric(typed["code"], errors="coerce")  # 1.0 and NaN.
    typed["code"] = typed["code"].astype(object)
    typed.loc[typed.index % 3 > 0, "code"] = as_text["code"]
    assert typed["flag"].dtype == bool
    np.testing.assert_array_equal(tuner_prune.encode_rows(manifest, typed),
                                  tuner_prune.encode_rows(manifest, as_text))
