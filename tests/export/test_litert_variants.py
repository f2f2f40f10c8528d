"""Variants LiteRT computes wrongly: the smallest models that show it.

The reproductions assert today's wrong result (ai-edge-litert 2.3, TensorFlow
2.21's converter) and fail when a release fixes it, saying what can then change.
"""

import contextlib
import io

import numpy as np
import pytest
from ai_edge_litert import interpreter as litert

from tuner_prune.export import tflite
from tuner_prune.core._keras import keras

ROWS = 16


def block_sparse_dense(folder, block_rows, inputs=64, units=16, sparsity=0.5, seed=0):
    """One ``Dense`` layer whose kernel is zero in whole ``block_rows`` x 1 blocks.

    Returns:
        ``(saved_model_dir, x, keras_predictions)``, predictions flattened.
    """
    rng = np.random.default_rng(seed)
    kernel = rng.normal(0, inputs ** -0.5, (inputs, units)).astype(np.float32)
    kernel *= np.repeat(rng.random((inputs // block_rows, units)) >= sparsity,
                        block_rows, axis=0)
    model = keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(units)])
    model.layers[0].set_weights([kernel, np.zeros(units, np.float32)])
    with contextlib.redirect_stdout(io.StringIO()):  # export() prints its signature.
        model.export(str(folder))
    x = rng.normal(size=(ROWS, inputs)).astype(np.float32)
    return str(folder), x, model(x).numpy().ravel()


@pytest.fixture(scope="module")
def blocks_of_16(tmp_path_factory):
    """``block_sparse_dense`` in blocks of 16 rows, made once for this module."""
    return block_sparse_dense(tmp_path_factory.mktemp("blocks_of_16"), block_rows=16)


def without_delegates(content, x):
    """Predictions of LiteRT's own kernels (no XNNPACK), one row per invoke."""
    runner = litert.Interpreter(
        model_content=content,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    runner.allocate_tensors()
    feed, fetch = runner.get_input_details()[0]["index"], runner.get_output_details()[0]["index"]
    predictions = []
    for row in x:
        runner.set_tensor(feed, row[None])
        runner.invoke()
        predictions.append(runner.get_tensor(fetch).ravel())
    return np.concatenate(predictions)


def relative_error(predicted, expected):
    """Largest absolute error over the largest absolute output (NaN stays NaN)."""
    return float(np.max(np.abs(predicted - expected)) / np.max(np.abs(expected)))


def test_xnnpack_computes_block_sparse_dynamic_int8_wrongly(blocks_of_16):
    folder, x, expected = blocks_of_16
    content = tflite.convert(folder, tflite.Variant("sparse_dynamic_int8", "dynamic", True))
    own = relative_error(without_delegates(content, x), expected)
    assert own < 0.05, f"Expected LiteRT's own kernel to be right, received error {own:.3g}."
    error = relative_error(tflite.predict(content, x), expected)
    assert error > 0.5, (
        f"Expected LiteRT's XNNPACK delegate to compute block-sparse "
        f"sparse_dynamic_int8 wrongly (ai-edge-litert 2.3: error 1.57 of the largest "
        f"output), received error {error:.3g}: a LiteRT release fixed it, and "
        f"sparse_dynamic_int8 can come back (tflite.LEFT_OUT, the README's variant list).")


def test_converter_leaves_block_sparse_float16_weights_to_a_dequantize(tmp_path):
    folder, x, expected = block_sparse_dense(tmp_path, block_rows=4)
    content = tflite.convert(folder, tflite.Variant("sparse_float16", "float16", True))
    for run in (tflite.predict, without_delegates):
        error = relative_error(run(content, x), expected)
        assert not error < 0.5, (
            f"Expected sparse_float16 of block-sparse weights to predict NaN (TensorFlow "
            f"2.21's converter feeds them sparse-encoded to a DEQUANTIZE op that LiteRT "
            f"2.3 reads as dense), received error {error:.3g} ({run.__name__}): a "
            f"release fixed it; drop the notes on sparse_float16 in tflite.py and the "
            f"README.")


def test_every_variant_that_runs_is_right_or_refused(blocks_of_16):
    """A block-sparse layer's variants: each one loads and is close to Keras,
    or is reported (fails to load, or predicts NaN) and never chosen."""
    folder, x, expected = blocks_of_16
    split = (x, expected.reshape(len(x), -1))
    found = tflite.candidates(folder, split, split, x)
    wrong = {c.name: round(float(c.val_mse / np.mean(expected ** 2)), 3)
             for c in found if c.error is None and c.val_mse > 0.01 * np.mean(expected ** 2)}
    assert not wrong, ("Expected every variant that runs to be within 1 % of the outputs' "
                       f"mean square of Keras, received {wrong} (MSE / mean square).")


def unstructured_dense(folder, inputs, units=64, sparsity=0.97, seed=0):
    """One ``Dense`` layer with ``sparsity`` of its weights zero, anywhere.

    Returns:
        ``(saved_model_dir, x, keras_predictions, kernel)``, predictions ``(rows, units)``.
    """
    rng = np.random.default_rng(seed)
    kernel = rng.normal(size=(inputs, units)).astype(np.float32)
    kernel[rng.random(kernel.shape) < sparsity] = 0.0
    model = keras.Sequential([keras.Input((inputs,)), keras.layers.Dense(units)])
    model.layers[0].set_weights([kernel, np.zeros(units, np.float32)])
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(str(folder))
    x = rng.normal(size=(ROWS, inputs)).astype(np.float32)
    return str(folder), x, model(x).numpy(), kernel


def test_sparse_float32_of_very_sparse_weights_drops_a_partial_last_block(tmp_path):
    """Above about 96.5 % zeros the converter encodes unstructured float32 weights
    in 1x4 blocks; with inputs not a multiple of 4, the units that have a weight
    in the last, partial block compute wrongly, on every resolver, without an
    error. The export's runtime check reports them ``wrong`` and never ships them
    (the blend of docs/search.md met it on Hitters: 25 inputs, 97 % zeros)."""
    wrong_units = {}
    for inputs in (25, 28):
        folder, x, expected, kernel = unstructured_dense(tmp_path / str(inputs), inputs)
        content = tflite.convert(folder, tflite.Variant("sparse_float32", "none", True))
        for run in (tflite.predict, without_delegates):
            predicted = run(content, x).reshape(expected.shape)
            wrong = np.abs(predicted - expected) > 1e-4 * (1 + np.abs(expected))
            wrong_units[inputs, run.__name__] = set(np.nonzero(wrong.any(axis=0))[0].tolist())
        last_block = set(np.nonzero(kernel[inputs - inputs % 4:].any(axis=0))[0].tolist())
        if inputs % 4:
            assert last_block, "Expected the seed to put a weight in the partial last block."
            for run in (tflite.predict, without_delegates):
                assert wrong_units[inputs, run.__name__] == last_block, (
                    f"Expected exactly the units {sorted(last_block)} with a weight in "
                    f"the partial last block of {inputs} inputs to be wrong in "
                    f"sparse_float32 (TensorFlow 2.21, ai-edge-litert 2.3), received "
                    f"{sorted(wrong_units[inputs, run.__name__])} ({run.__name__}): a "
                    f"release changed it; revise docs/export.md's known limits.")
    assert not wrong_units[28, "predict"] and not wrong_units[28, "without_delegates"], (
        f"Expected 28 inputs (no partial block) to compute right, received {wrong_units}.")
