"""The Python API's DataFrames with text columns and missing values."""

import json

import numpy as np
import pandas as pd
import pytest

import tuner_prune
from tuner_prune import PruningHyperModel, PruningTuner
from tuner_prune.data import splits
from tuner_prune.core.errors import InputError

CUTS = np.array(["Ideal", "Good", "Fair"])


def frame(rows, seed):
    """A DataFrame with a text, a bool and a numeric column, some cells missing,
    an identifier, and targets with one missing."""
    rng = np.random.default_rng(seed)
    cut = CUTS[rng.integers(0, 3, rows)]
    size = rng.uniform(0, 10, rows)
    x = pd.DataFrame({"id": [f"{seed}-{i}" for i in range(rows)], "cut": cut,
                      "size": size, "sale": rng.random(rows) > 0.5})
    y = pd.Series(100 * size + 300 * (cut == "Ideal") + 50 * x["sale"], name="price")
    x.loc[1, "size"] = np.nan
    x.loc[2, "cut"] = None
    y[3] = np.nan
    return x, y


def test_a_dataframe_with_text_and_missing_values_is_encoded_on_its_training_rows():
    (x, y), (x_val, y_val) = frame(60, 0), frame(20, 1)
    dataset = splits.from_arrays(x, y, (x_val, y_val))
    encoding = dataset.encoding
    assert [c["name"] for c in encoding.columns] == ["cut", "size", "sale"]
    assert [c["name"] for c in encoding.left_out] == ["id"]
    assert (len(dataset.x_train), len(dataset.x_val)) == (59, 19)  # Row 3: no target.
    size = encoding.columns[1]
    assert size["fill"] == pytest.approx(np.nanmedian(np.delete(x["size"].to_numpy(), 3)))
    assert dataset.x_train[1, size["missing_index"]] == 1
    cut, sale = encoding.columns[0], encoding.columns[2]
    assert set(cut["levels"]) == {"Ideal", "Good", "Fair", ""}  # None: the level "".
    assert sale["kind"] == "categorical" and set(sale["levels"]) == {"True", "False"}
    np.testing.assert_array_equal(dataset.x_val, encoding.transform(
        {name: x_val[name].to_numpy()[np.arange(20) != 3] for name in ("cut", "size",
                                                                         "sale")}))


def test_numeric_dataframes_stay_arrays_and_other_splits_must_be_dataframes():
    x = pd.DataFrame({"a": np.arange(20.0), "b": np.arange(20.0) % 3})
    dataset = splits.from_arrays(x, np.arange(20.0), (x, np.arange(20.0)))
    assert dataset.encoding is None and dataset.x_train.shape == (20, 2)
    text, y = frame(30, 0)
    with pytest.raises(InputError, match="Expected validation_data x as a DataFrame with "
                                         "the training data's columns, received ndarray"):
        splits.from_arrays(text, y, (np.zeros((5, 3)), np.zeros(5)))
    with pytest.raises(InputError, match="Expected training data y of numbers, received "
                                         "'many'"):
        splits.from_arrays(text, y.astype(object).where(y.index != 5, "many"),
                           (text, y))


def test_a_search_on_dataframes_exports_the_raw_column_model(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (x, y), validation, (x_test, y_test) = frame(80, 0), frame(20, 1), frame(20, 2)
    hypermodel = PruningHyperModel(epochs=2, hyperparameters={"hidden_layers": 0})
    tuner = PruningTuner(hypermodel, max_trials=1, directory="logs",
                         project_name="frames", verbose=False)
    tuner.search(x, y, validation_data=validation, batch_size=16)
    reloaded = PruningTuner(hypermodel, max_trials=1, directory="logs",
                            project_name="frames", verbose=False)
    manifest = reloaded.export("export", test_data=(x_test, y_test))
    assert manifest["test_split"] == {"rows": 19}
    assert [c["name"] for c in manifest["inputs"]["columns"]] == ["cut", "size", "sale"]
    import tensorflow as tf
    from tuner_prune.export import tflite

    raw = x_test[["cut", "size", "sale"]].astype(object)
    rows = raw.where(raw.notna(), "").astype(str).to_numpy()  # Cells as a CSV holds them.
    served = tf.saved_model.load("export/saved_model").signatures["serving_default"]
    predicted = next(iter(served(cells=tf.constant(rows)).values())).numpy().reshape(-1)
    encoded = tuner_prune.encode_rows("export", x_test)
    content = (tmp_path / "export" / "model.tflite").read_bytes()
    np.testing.assert_allclose(tflite.predict(content, encoded), predicted,
                               atol=0.05 * float(np.nanstd(y_test)))
    assert json.loads((tmp_path / "export" / "manifest.json").read_text())["inputs"]


def test_nullable_integers_are_numbers_and_pandas_na_is_missing():
    x = pd.DataFrame({"n": pd.array([1, None, 3] * 10, dtype="Int64"),
                      "c": pd.array(["a", pd.NA, "b"] * 10, dtype="string")})
    y = pd.Series(np.arange(30.0)).astype(object).where(np.arange(30) != 4, pd.NA)
    dataset = splits.from_arrays(x, y, (x, np.arange(30.0)))
    n, c = dataset.encoding.columns
    assert n["kind"] == "numeric" and n["fill"] == 2.0 and n["missing_index"] == 1
    assert c["kind"] == "categorical" and set(c["levels"]) == {"a", "b", ""}
    assert len(dataset.x_train) == 29 and len(dataset.x_val) == 30
    encoded = tuner_prune.encode_rows({"inputs": dataset.encoding.manifest()}, x.head(3))
    np.testing.assert_array_equal(encoded, dataset.x_val[:3])


def test_numbers_held_as_text_are_numeric_and_a_stray_text_cell_is_refused():
    """``pd.read_csv(dtype=str)``, or a typo in a column of numbers, read as the CSV
    reader reads them: not categories, nor an identifier silently left out."""
    rng = np.random.default_rng(0)
    size = rng.uniform(0, 10, 30).round(3)
    x = pd.DataFrame({"size": size.astype(str), "cut": CUTS[np.arange(30) % 3]})
    y = pd.Series(10 * size, name="price")
    dataset = splits.from_arrays(x, y, (x, y))
    size_spec = dataset.encoding.columns[0]
    assert size_spec["kind"] == "numeric" and not dataset.encoding.left_out
    np.testing.assert_allclose(dataset.x_train[:, size_spec["index"]], size, rtol=1e-6)
    typo = x.copy()
    typo.loc[7, "size"] = "12..5"
    with pytest.raises(InputError, match=r"Expected a number in training data x row 7, "
                                         r"column 'size' \(29 of its 30 cells are "
                                         r"numbers; a missing value is None, NaN, '' "
                                         r"or 'NA'\); received '12..5'"):
        splits.from_arrays(typo, y, (x, y))


def test_a_bad_cell_in_the_validation_dataframe_names_the_split():
    (x, y), (x_val, y_val) = frame(40, 0), frame(20, 1)
    x_val = x_val.astype({"size": object})
    x_val.loc[4, "size"] = "big"
    with pytest.raises(InputError, match=r"^validation_data x: Expected a number in row "
                                         r"4, column 'size'; received 'big'\.$"):
        splits.from_arrays(x, y, (x_val, y_val))
    with pytest.raises(InputError, match=r"^test_data x: Expected the columns cut, size, "
                                         r"sale, received none named 'sale'\.$"):
        splits.from_arrays(x, y, (x, y), (x.drop(columns="sale"), y))


def test_integer_column_labels_are_read_and_names_must_be_distinct():
    """pd.DataFrame(array) has integer labels: its validation data and encode_rows
    found no column named '0'; a name twice gave an AttributeError."""
    rng = np.random.default_rng(0)
    x = pd.DataFrame(rng.normal(size=(30, 2)))
    x[2] = CUTS[np.arange(30) % 3]
    y = np.arange(30.0)
    dataset = splits.from_arrays(x, y, (x, y))
    assert dataset.encoding.raw_columns == ("0", "1", "2")
    np.testing.assert_array_equal(dataset.x_val, dataset.x_train)
    encoded = tuner_prune.encode_rows({"inputs": dataset.encoding.manifest()}, x.head(3))
    np.testing.assert_array_equal(encoded, dataset.x_train[:3])
    twice = x.rename(columns={1: "0"})
    with pytest.raises(InputError, match=r"^Expected training data x with distinct column "
                                         r"names, received '0' more than once\.$"):
        splits.from_arrays(twice, y, (twice, y))


def test_a_numeric_dataframe_drops_its_rows_without_a_target_as_a_csv_does():
    """Hitters' numeric columns with its 59 missing salaries: refused as 'NaN or
    infinity' in y, where the CSV and a DataFrame with text drop those rows."""
    x = pd.DataFrame({"a": np.arange(30.0), "b": np.arange(30.0) % 4})
    y = pd.Series(2 * np.arange(30.0)).where(np.arange(30) % 10 != 3)
    dataset = splits.from_arrays(x, y, (x, y))
    assert len(dataset.x_train) == len(dataset.x_val) == 27
    assert dataset.encoding.is_identity() and dataset.encoding.dropped_rows == 3
    np.testing.assert_array_equal(dataset.x_train, x.to_numpy()[np.arange(30) % 10 != 3])
