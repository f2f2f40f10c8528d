"""Targets of any magnitude float32 holds: errors measured in float64, TensorBoard
given finite values, and a TFLite variant whose output underflows refused."""

import json
import math

import numpy as np
import pytest

from conftest import run_main
from tuner_prune.core.metrics import FLOAT32_MAX, float32_clipped, mse

WEIGHTS = np.array([1.0, 2.0, -1.0, 0.5])


def write_data(path, magnitude):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4)).astype(np.float32)
    y = (x @ WEIGHTS + 0.1 * rng.normal(size=200)) * magnitude
    np.savez(path, x=x, y=y)


def test_mse_squares_in_float64():
    target = np.array([1e20, -3e30, 2e-30], np.float32)
    for value in target:
        expected = float(np.float64(value)) ** 2
        assert mse(np.zeros(1, np.float32), value[None]) == pytest.approx(expected)
        assert 0 < expected < math.inf and expected != float(np.float32(value) ** 2)


@pytest.mark.parametrize("magnitude", [1e20, 1e30, 1e-30])
def test_a_search_of_any_magnitude_completes_with_finite_errors(tmp_path, magnitude):
    write_data(tmp_path / "d.npz", magnitude)
    result = run_main("search", "--data", "d.npz", "--epochs", "4", "--batch-size", "32",
                      "--max-trials", "1", "--hp", "hidden_layers=0", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    variance = float(np.var(np.load(tmp_path / "d.npz")["y"].astype(np.float64)))
    for value in (manifest["val_mse"], manifest["tflite"]["val_mse"],
                  manifest["baseline"]["val_mse"]):
        assert 0 < value / variance < 10, (value, variance)  # Neither 0 nor infinity.
    rows = {row["name"]: row for row in manifest["candidates"]}
    if magnitude < 1:  # float16 holds no value near 1e-30: its output is 0.
        assert "predicts 0 for every row" in rows["float16"]["error"], rows["float16"]
    else:
        assert rows["float32"]["error"] is None


def test_tensorboard_is_given_finite_values():
    assert float32_clipped(1e60) == FLOAT32_MAX and float32_clipped(-math.inf) == -FLOAT32_MAX
    assert float32_clipped(2.5e-60) == 2.5e-60
