"""The C export: model.c compiled by the real C compiler, checked against Keras and LiteRT.

No training: tiny tf_keras Dense models with set weights, and the shared
tiny search's export.
"""

import math
import os

import numpy as np
import pytest

from tuner_prune.export import c_build, c_export, c_source, serving
from tuner_prune.store import ownership
from tuner_prune.core._keras import keras

pytestmark = pytest.mark.skipif(c_build.compiler() is None, reason="no C compiler")


def sparse_mlp(inputs=24, units=32, sparsity=0.85, seed=0):
    """A 2-hidden-layer ReLU MLP with ``sparsity`` of its kernels zero (no training)."""
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input(shape=(inputs,)), keras.layers.Dense(units),
                              keras.layers.ReLU(), keras.layers.Dense(units, activation="relu"),
                              keras.layers.Dense(1)])
    for layer in (layer for layer in model.layers if layer.get_weights()):
        kernel, bias = layer.get_weights()
        kernel = rng.normal(size=kernel.shape) * (rng.random(kernel.shape) >= sparsity)
        layer.set_weights([kernel, rng.normal(0, 0.1, bias.shape)])
    return model


def rows_and_keras(model, count=64, seed=1):
    x = np.random.default_rng(seed).uniform(-3, 3, (count, model.inputs[0].shape[1]))
    x = x.astype(np.float32)
    return x, model.predict(x, verbose=0).reshape(-1)


def compiled_predictions(encoded, value_type, folder, x):
    c_export._write_texts(encoded, value_type, str(folder))
    sizes = c_build.build(str(folder))
    return c_build.predict(str(folder), x), sizes


def test_serving_model_as_c_predicts_what_keras_predicts(tmp_path):
    """Scaling folded in: raw rows in, target units out, float weights exact."""
    rng = np.random.default_rng(2)
    model = serving.scaled_model(sparse_mlp(), rng.uniform(0.1, 10, 24), 7.5)
    x, expected = rows_and_keras(model)
    encoded = [c_source.encode(layer, "float") for layer in c_export.dense_layers(model)]
    predicted, sizes = compiled_predictions(encoded, "float", tmp_path, x)
    np.testing.assert_allclose(predicted, expected, rtol=1e-4, atol=1e-4)
    assert sizes["bss"] == 2 * 32 * 4  # Two static buffers of the widest layer.
    assert "dense" not in [layer.encoding for layer in encoded][:2]


@pytest.mark.parametrize("encoding", c_source.ENCODINGS)
@pytest.mark.parametrize("value_type", sorted(c_source.VALUE_TYPES))
def test_every_encoding_computes_the_same_layer(tmp_path, encoding, value_type):
    """600 inputs and 3 nonzeros per output: index gaps over 255 are bridged."""
    rng = np.random.default_rng(3)
    kernel = np.zeros((608, 5), np.float32)
    for column in range(4):  # The last output has no nonzero weight.
        kernel[rng.choice(608, 3, replace=False), column] = rng.normal(size=3)
    kernel[16:32, 0] = rng.normal(size=16)  # A whole 16x1 block.
    layer = c_source.Layer(kernel, rng.normal(size=5).astype(np.float32), relu=False)
    head = c_source.Layer(np.ones((5, 1), np.float32), np.zeros(1, np.float32), relu=False)
    encoded = [c_source.encode(layer, value_type, (encoding,)),
               c_source.encode(head, "float")]
    assert encoded[0].encoding == encoding
    x = rng.normal(size=(20, 608)).astype(np.float32)
    predicted, _ = compiled_predictions(encoded, value_type, tmp_path, x)
    values, scales = c_source.quantize(kernel, value_type)
    weights = values * (1 if scales is None else scales)
    np.testing.assert_allclose(predicted, (x @ weights + layer.bias).sum(axis=1),
                               rtol=1e-4, atol=1e-4)


def test_each_layer_gets_its_smallest_encoding():
    rng = np.random.default_rng(4)
    dense = c_source.Layer(rng.normal(size=(16, 8)).astype(np.float32), np.zeros(8), False)
    half = rng.normal(size=(256, 4)) * (rng.random((256, 4)) < 0.5)
    blocks = np.zeros((64, 4))
    blocks[:16] = rng.normal(size=(16, 4))
    expected = {"dense": dense, "bitmap": c_source.Layer(half, np.zeros(4), False),
                "block16": c_source.Layer(blocks, np.zeros(4), False),
                "bias": c_source.Layer(np.zeros((8, 2)), np.zeros(2), False)}
    for name, layer in expected.items():
        best = c_source.encode(layer, "int8")
        assert best.encoding == name
        for other in c_source.ENCODINGS:
            if other != "block16" or layer.kernel.shape[0] % 16 == 0:
                alternative = c_source.encode(layer, "int8", (other,))
                assert (best.value_bytes + best.index_bytes
                        <= alternative.value_bytes + alternative.index_bytes)


def test_information_limit_is_values_plus_log2_binomial_bits():
    kernel = np.zeros((100, 2), np.float32)
    kernel[::7, 0] = 1.0
    kernel[::9, 1] = -2.0
    encoded = c_source.encode(c_source.Layer(kernel, np.zeros(2), False), "int16")
    k = int((kernel != 0).sum())
    assert encoded.nonzeros == k
    assert encoded.limit_bytes == pytest.approx(2 * k + math.log2(math.comb(200, k)) / 8)


def test_other_layers_get_one_line_saying_what_the_c_export_covers(tmp_path):
    model = keras.Sequential([keras.Input(shape=(6,)), keras.layers.Dense(4),
                              keras.layers.LayerNormalization(), keras.layers.Dense(1)])
    x = np.zeros((3, 6), np.float32)
    entry = c_export.write(model, (x, np.zeros(3)), None, np.zeros(3), 1.0, str(tmp_path))
    assert entry["source"] is None
    assert entry["reason"] == ("the C export covers Dense and ReLU layers; this model has "
                               "a LayerNormalization layer (layer_normalization)")
    assert os.listdir(tmp_path) == []


def test_c_over_the_tolerance_is_not_written(tmp_path):
    model = serving.scaled_model(sparse_mlp(), np.ones(24), 1.0)
    x, expected = rows_and_keras(model)
    entry = c_export.write(model, (x, expected + 1.0), None, expected, 0.5, str(tmp_path))
    assert entry["source"] is None and "over the MSE tolerance (0.5)" in entry["reason"]
    assert [t["value_type"] for t in entry["tried"]] == ["int8", "int16", "float"]
    assert os.listdir(tmp_path) == []


def test_write_ships_the_smallest_value_type_within_the_tolerance(tmp_path):
    model = serving.scaled_model(sparse_mlp(), np.ones(24), 1.0)
    x, expected = rows_and_keras(model)
    entry = c_export.write(model, (x, expected), None, expected, 1e-3, str(tmp_path))
    assert entry["value_type"] == "int8" and entry["val_mse"] <= 1e-3
    assert entry["litert_max_abs_difference"] < 0.1
    assert entry["flash_bytes"] == entry["sections"]["text"] + entry["sections"]["data"]
    assert entry["ram_bytes"] == 256
    assert sorted(os.listdir(tmp_path)) == ["model.c", "model.h"]


def test_tiny_search_ships_model_c_and_names_it(tiny_search):
    entry = tiny_search["manifest"]["c"]
    assert entry["source"] == "model.c" and entry["header"] == "model.h"
    assert entry["val_mse"] <= tiny_search["manifest"]["val_mse"] * 1.05
    assert (tiny_search["export"] / "model.c").is_file()
    assert {"model.c", "model.h"} <= set(ownership.shipped_files(tiny_search["manifest"]))
    assert (f"model.c, model.h: the model as C99 ({entry['value_type']} weights; "
            f"{entry['flash_bytes']} bytes flash") in tiny_search["result"].stdout


def test_c_over_a_budget_is_not_written_and_says_which(tmp_path):
    model = serving.scaled_model(sparse_mlp(), np.ones(24), 1.0)
    x, expected = rows_and_keras(model)
    entry = c_export.write(model, (x, expected), None, expected, 1e-3, str(tmp_path),
                           max_ram=100)
    assert entry["source"] is None
    assert entry["reason"] == "its int8 C needs 256 bytes, over --max-ram 100"
    entry = c_export.write(model, (x, expected), None, expected, 1e-3, str(tmp_path),
                           max_flash=50)
    assert entry["reason"].startswith("its int8 C needs ") and "over --max-flash 50" in entry["reason"]
    assert os.listdir(tmp_path) == []


def test_c_predicting_one_value_for_every_row_is_not_shipped(tmp_path):
    """int8 and int16 round the weight of the wide feature to 0 beside the large one
    of a feature that is always 0: both predict the bias, within the MSE tolerance of
    an undertrained model; float ships."""
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.layers[0].set_weights([np.array([[1000.0], [0.001]]), np.array([5.0])])
    rng = np.random.default_rng(0)
    x = np.stack([np.zeros(40), rng.uniform(0, 100, 40)], axis=1).astype(np.float32)
    expected = model.predict(x, verbose=0).reshape(-1)
    y = expected + rng.normal(0, 1, 40)
    limit = 1.05 * float(np.mean((expected - y) ** 2))
    entry = c_export.write(model, (x, y), None, expected, limit, str(tmp_path))
    assert entry["value_type"] == "float"
    assert [t.get("error") for t in entry["tried"]] == [
        "predicts 5 for every row", "predicts 5 for every row", None]


def test_a_failing_compiler_leaves_the_c_out_and_says_why(tmp_path, monkeypatch):
    """A cross-compiler as $CC (here one that always fails): no model.c, no traceback."""
    monkeypatch.setenv("CC", "false")
    model = serving.scaled_model(sparse_mlp(), np.ones(24), 1.0)
    x, expected = rows_and_keras(model)
    entry = c_export.write(model, (x, expected), None, expected, 1e-3, str(tmp_path))
    assert entry["source"] is None
    assert entry["reason"] == ("the C compiler (false) failed: Expected false to succeed, "
                               "received: exit status 1 and no message")
    assert os.listdir(tmp_path) == []


def test_header_says_a_csv_with_text_takes_encode_rows_numbers():
    """A CSV of 12 columns with text ones has 24 inputs: the header named 'the
    training data's columns' only."""
    layer = c_source.encode(c_source.Layer(np.ones((24, 1), np.float32), np.zeros(1),
                                           False), "float")
    header = c_source.header_text([layer], "float")
    assert "#define TUNER_PRUNE_INPUTS 24" in header
    assert "(for a\n * CSV with text or missing cells, the numbers tuner_prune.encode_rows " \
           "makes). */" in header


def test_weights_overflowing_float32_with_the_scaling_folded_in_are_said_so(tmp_path):
    """A target near 3.4e38: 1.5 x 3e38 is inf in float32, and model.c held 'inf.0f'
    (a compiler error, a CompilerError traceback out of the export)."""
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    model.layers[0].set_weights([np.full((3, 1), 1.5), np.zeros(1)])
    served = serving.scaled_model(model, np.ones(3), 3e38)
    x = np.full((4, 3), 0.1, np.float32)
    expected = served.predict(x, verbose=0).reshape(-1)
    entry = c_export.write(served, (x, expected), None, expected, 1e80, str(tmp_path))
    assert entry == {"source": None, "reason": "its weights, the scaling folded in, overflow "
                     "float32 (a target near float32's largest, 3.4e38)"}
    assert os.listdir(tmp_path) == []
