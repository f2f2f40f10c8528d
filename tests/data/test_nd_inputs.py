"""Image and sequence rows: shape kept, scaled per channel, searched and exported.

The end-to-end test runs the README's conv example (docs/digits_conv.py) on a
subset of the digits, in this process.
"""

import importlib.util
import json
import os
import re
import runpy
import shlex
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO, run_main
from tuner_prune.data.dataset import DataError, load_dataset, split_dataset

EXAMPLE = os.path.join(REPO, "docs", "digits_conv.py")


def _save(path, x, y):
    np.savez(path, x=x, y=y)
    return str(path)


@pytest.mark.parametrize("shape", [(40, 6, 5, 2), (40, 7, 3), (40, 4)],
                         ids=["image", "sequence", "flat"])
def test_an_npz_row_keeps_its_shape_and_is_scaled_per_channel(tmp_path, shape):
    x = np.random.default_rng(0).normal(size=shape) * np.arange(1, shape[-1] + 1)
    data = load_dataset(_save(tmp_path / "d.npz", x, np.arange(40.0)))
    assert data.x_train.shape[1:] == data.input_shape == shape[1:]
    assert data.x_scale.shape == (shape[-1],)
    for channel in range(shape[-1]):
        assert data.x_scale[channel] == np.float32(np.abs(data.x_train[..., channel]).max())
    scaled, _ = data.scaled("train")
    assert np.allclose(np.abs(scaled).reshape(-1, shape[-1]).max(axis=0), 1.0)


def test_flat_rows_are_scaled_per_feature_as_before():
    x = np.random.default_rng(1).normal(size=(30, 3)) * [1.0, 10.0, 100.0]
    data = split_dataset(x.astype(np.float32), np.arange(30.0))
    assert np.array_equal(data.x_scale, np.abs(data.x_train).max(axis=0))
    assert data.n_features == 3 and data.fingerprint()["features"] == 3


def test_the_fingerprint_names_the_row_shape_and_hashes_it(tmp_path):
    x = np.random.default_rng(2).normal(size=(30, 4, 4, 1)).astype(np.float32)
    image = load_dataset(_save(tmp_path / "image.npz", x, np.arange(30.0)))
    flat = load_dataset(_save(tmp_path / "flat.npz", x.reshape(30, -1), np.arange(30.0)))
    assert image.fingerprint()["features"] == [4, 4, 1]
    assert flat.fingerprint()["features"] == 16 and image.n_features == 16
    assert image.fingerprint()["sha256"] != flat.fingerprint()["sha256"]


def test_rows_without_values_are_refused(tmp_path):
    path = _save(tmp_path / "d.npz", np.ones((20, 3, 0)), np.arange(20.0))
    with pytest.raises(DataError, match=r"d\.npz: Expected x with at least one value per "
                                        r"row, received x of shape \(20, 3, 0\)\."):
        load_dataset(path)


def test_the_serving_model_takes_raw_sequences_and_scales_each_channel():
    from tuner_prune.core._keras import keras, sparsity
    from tuner_prune.export.serving import scaled_model

    base = keras.Sequential([keras.Input(shape=(10, 3)), keras.layers.Conv1D(4, 3),
                             keras.layers.Flatten(), keras.layers.Dense(1)])
    pruned = sparsity.prune_low_magnitude(base)
    scale = np.array([0.5, 0.25, 0.125], np.float32)
    model = scaled_model(pruned, scale, 3.0, (10, 3))
    x = np.random.default_rng(3).normal(size=(5, 10, 3)).astype(np.float32)
    assert model.input_shape == (None, 10, 3)
    expected = sparsity.strip_pruning(pruned)(x * scale).numpy() * 3.0
    assert np.allclose(model(x).numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("shape", [(8, 8, 2), (8, 7, 1), (64,)])
def test_a_model_over_another_row_shape_is_refused(shape):
    from tuner_prune import search
    from tuner_prune.space import models
    from tuner_prune.core._keras import keras
    from tuner_prune.tuning.hypermodel import PruningHyperModel

    def build(hp):
        return keras.Sequential([keras.Input(shape=shape), keras.layers.Flatten(),
                                 keras.layers.Dense(1)])

    hypermodel = PruningHyperModel(build, input_shape=(8, 8, 1), epochs=2,
                                   steps_per_epoch=5)
    with pytest.raises(models.BuilderError, match=r"--model m:f: Expected a model taking "
                       r"rows of shape \(8, 8, 1\) \(input shape \(None, 8, 8, 1\)\), "
                       r"received one with input shape"):
        search.check_builder(hypermodel, "m:f")


def test_a_model_with_free_dimensions_fits_the_rows():
    from tuner_prune import search
    from tuner_prune.core._keras import keras
    from tuner_prune.tuning.hypermodel import PruningHyperModel

    def build(hp):
        return keras.Sequential([keras.Input(shape=(None, 2)), keras.layers.Conv1D(3, 2),
                                 keras.layers.GlobalAveragePooling1D(),
                                 keras.layers.Dense(1)])

    search.check_builder(PruningHyperModel(build, input_shape=(12, 2), epochs=2,
                                           steps_per_epoch=5), "m:f")


def readme_example():
    """The builder and the commands the conv example of docs/inputs.md shows."""
    readme = Path(REPO, "docs", "inputs.md").read_text(encoding="utf-8")
    section = readme.split("## Image and sequence inputs", 1)[1].split("\n## ", 1)[0]
    blocks = [textwrap.dedent(block) for block in
              re.findall(r"(?:^    .*\n|^\n(?=    ))+", section, re.M)]
    builder, commands = blocks[0], blocks[1]
    lines = commands.replace("\\\n", " ").strip().splitlines()
    return builder, [shlex.split(line) for line in lines]


def _load_example():
    spec = importlib.util.spec_from_file_location("digits_conv", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_conv_example_searches_exports_and_runs_in_litert(tmp_path,
                                                                     monkeypatch):
    builder, (script, search) = readme_example()
    assert builder.strip() in Path(EXAMPLE).read_text(encoding="utf-8")
    assert script == ["python", "docs/digits_conv.py"]
    assert search[:3] == ["python", "-m", "tuner_prune"]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [EXAMPLE])  # As `python docs/digits_conv.py` runs it.
    runpy.run_path(EXAMPLE, run_name="__main__")
    with np.load(tmp_path / "digits.npz") as written:
        assert written["x"].shape == (1797, 8, 8, 1) and written["y"].shape == (1797,)
    _load_example().write_digits(str(tmp_path / "digits.npz"), rows=400)  # A tiny subset.

    # --ship trial: in 4 epochs on 400 rows the ridge baseline would be shipped.
    tiny = ["--epochs", "4", "--max-trials", "1", "--final-sparsity", "0.75",
            "--ship", "trial"]
    result = run_main(*search[3:], *tiny, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]

    export = tmp_path / "export" / "digits"
    manifest = json.loads((export / "manifest.json").read_text())
    convs = [layer for layer in manifest["layers"] if layer["name"].startswith("conv2d")]
    assert len(convs) == 2
    for layer in convs:
        assert layer["sparsity"] == pytest.approx(0.75, abs=0.01)
    stored = json.loads((tmp_path / "logs" / "digits" / "tuner_prune.json").read_text())
    assert stored["data"]["features"] == [8, 8, 1]
    _check_exported_models(export, manifest, tmp_path / "digits.npz")


def _check_exported_models(export, manifest, data_path):
    import tensorflow as tf
    from ai_edge_litert import interpreter as litert

    from tuner_prune.export import tflite
    from tuner_prune.core.metrics import mse

    data = load_dataset(str(data_path))
    signature = tf.saved_model.load(str(export / "saved_model")).signatures["serving_default"]
    spec = signature.structured_input_signature[1]["features"]
    assert spec.shape.as_list() == [None, 8, 8, 1]
    prediction = list(signature(features=tf.constant(data.x_test)).values())[0].numpy()
    assert mse(prediction, data.y_test) == pytest.approx(manifest["test_mse"], rel=1e-4)

    content = (export / "model.tflite").read_bytes()
    runner = litert.Interpreter(model_content=content)
    assert list(runner.get_input_details()[0]["shape"]) == [1, 8, 8, 1]
    assert mse(tflite.predict(content, data.x_val), data.y_val) == pytest.approx(
        manifest["tflite"]["val_mse"], rel=1e-5)
    int8 = next(c for c in manifest["candidates"] if c["name"] == "int8")
    assert int8["loaded"] and int8["val_mse"] is not None  # Calibrated on 8x8x1 rows.
