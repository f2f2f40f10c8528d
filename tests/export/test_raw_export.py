"""A search on a CSV with text and missing cells: what it says, and what it ships.

One tiny search (a linear model, one trial of two epochs) through the CLI.
"""

import json

import numpy as np
import pytest

import tuner_prune
from conftest import run_main
from conftest import table_text


@pytest.fixture(scope="module")
def mixed_search(tmp_path_factory):
    root = tmp_path_factory.mktemp("mixed_search")
    (root / "mixed.csv").write_text(table_text(rows=60))
    result = run_main("search", "--data", "mixed.csv", "--epochs", "2", "--batch-size", "8",
                      "--max-trials", "1", "--hp", "hidden_layers=0",
                      "--quantization", "none", "--directory", "logs",
                      "--export-dir", "export", cwd=root)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((root / "export" / "manifest.json").read_text())
    return {"root": root, "stdout": result.stdout, "manifest": manifest}


def test_the_first_lines_say_how_each_column_was_read(mixed_search):
    lines = mixed_search["stdout"].splitlines()
    assert lines[0] == "Read mixed.csv: 59 rows, 3 columns read as 9 inputs"
    assert lines[1:7] == [
        "  1 numeric: size",
        "  categorical 'cut': 3 levels, one-hot",
        "  categorical 'answer': 2 levels, one-hot",
        "  missing cells filled (with an indicator): size",
        "  left out 'id': identifier (a different value in every row)",
        "  target 'price'; 1 row without a target dropped"]
    assert lines[7].startswith("Baseline: ridge regression")
    inputs = mixed_search["manifest"]["inputs"]
    assert [c["name"] for c in inputs["columns"]] == ["cut", "size", "answer"]
    assert inputs["width"] == 9 and inputs["dropped_rows"] == 1
    assert inputs["left_out"] == [{"name": "id", "reason": "identifier (a different "
                                                           "value in every row)"}]


def test_the_saved_model_takes_raw_cells_and_the_tflite_encode_rows(mixed_search):
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    export = mixed_search["root"] / "export"
    rows = [{"cut": "Good", "size": "2.5", "answer": "yes"},
            {"cut": "Premium", "size": "", "answer": "no"},  # A level never seen.
            {"cut": "Fair", "size": "NA", "answer": "maybe"}]
    names = [c["name"] for c in mixed_search["manifest"]["inputs"]["columns"]]
    serve = tf.saved_model.load(str(export / "saved_model")).signatures["serving_default"]
    cells = tf.constant([[row[name] for name in names] for row in rows])
    served = next(iter(serve(cells=cells).values())).numpy().reshape(-1)
    interpreter = Interpreter(model_path=str(export / "model.tflite"))
    interpreter.allocate_tensors()
    given, output = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    predicted = []
    for row in tuner_prune.encode_rows(str(export), rows):
        interpreter.set_tensor(given["index"], row[None])
        interpreter.invoke()
        predicted.append(interpreter.get_tensor(output["index"]).reshape(-1)[0])
    assert given["shape"].tolist() == [1, 9]
    np.testing.assert_allclose(predicted, served, rtol=1e-3, atol=1e-3)
    assert len(set(np.round(served, 4))) == 3
