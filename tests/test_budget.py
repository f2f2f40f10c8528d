"""``--max-bytes`` against the file that would ship under the export's options,
not the ``sparse_float32`` size each trial recorded."""

import json

from conftest import run_main
from tuner_prune import records


def fitting(manifest, quantization="auto"):
    """The best trial's smallest variant within the MSE tolerance (of ``quantization``)."""
    rows = [row for row in manifest["candidates"] if row["within_tolerance"]
            and quantization in ("auto", row["quantization"])]
    return min(rows, key=lambda row: row["bytes"])


def test_max_bytes_is_compared_with_the_file_that_ships(tiny_search, tmp_path):
    manifest = tiny_search["manifest"]
    recorded, = [row["tflite_bytes"] for row in records.read_trials(str(tiny_search["logs"]))
                 if row["trial_id"] == manifest["trial_id"]]
    budget = fitting(manifest, "int8")["bytes"]
    assert budget < recorded  # The best trial's recorded size is over the budget.
    result = run_main("export", "--directory", str(tiny_search["logs"]), "--export-dir",
                      str(tmp_path / "export"), "--max-bytes", str(budget),
                      "--quantization", "int8")
    assert result.returncode == 0, result.stderr[-3000:]
    shipped = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert shipped["trial_id"] == manifest["trial_id"]  # Not a worse trial that fits.
    assert shipped["tflite"]["variant"] == "int8" and shipped["tflite"]["bytes"] <= budget
    assert (tmp_path / "export" / "model.tflite").stat().st_size <= budget
