"""TFLite conversion variants, each loaded and run in LiteRT before it counts.

Which one ships is ``tuner_prune.export.choice.choose``.
"""

import contextlib
import dataclasses
import gc
import os
import re
import statistics
import tempfile
import time

import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from tuner_prune.core import metrics
from tuner_prune.export import tflm
from tuner_prune.export.choice import Candidate
from tuner_prune.core.metrics import mse

LATENCY_REPEATS = 50
REPRESENTATIVE_ROWS = 2000
# A variant whose every prediction is below this fraction of the target's largest
# magnitude predicts 0: its output underflowed (float16 of a 1e-30 scale), or
# int8 rounded its weights to 0 (features of raw magnitudes 1 and 10,000 share
# one input scale: the small ones read as the zero point).
VANISHING = 1e-6
# The variant whose predictions the others' are compared with: a variant that
# predicts one value for every row where it varies has collapsed (int8 weights
# of a feature of small raw magnitude rounded to 0 beside one of a large one).
REFERENCE = "float32"


@dataclasses.dataclass(frozen=True)
class Variant:
    """One way of converting a model.

    Attributes:
        name: Name in the manifest.
        quantization: ``"none"`` (float32), ``"dynamic"`` (int8 weights, float
            activations), ``"float16"`` (float16 weights) or ``"int8"`` (full
            integer: int8 weights, activations, input and output).
        sparse: Whether the converter may store weights sparse-encoded.
    """

    name: str
    quantization: str
    sparse: bool = False


# Not converted: under LiteRT's default XNNPACK delegate (ai-edge-litert 2.3)
# ``sparse_dynamic_int8`` never computes right. Int8 weights the converter keeps
# in 1x16 blocks (``--block-size 16x1``) make a hybrid fully-connected node that
# XNNPACK computes wrongly (LiteRT's own kernel, without the delegate, is
# right); other weights get a DENSIFY op, and XNNPACK fails to prepare the node.
# tests/export/test_litert_variants.py fails when a LiteRT release fixes it.
# ``sparse_float16`` stays: it is right when the converter densifies its weights
# (unstructured up to about 0.96 sparsity) and predicts NaN when it keeps them in
# 1x4 blocks (block pruning, or sparser): then a DEQUANTIZE op reads the
# sparse-encoded float16 weights as dense (same test file); the NaN check keeps
# that case out.
LEFT_OUT = ("sparse_dynamic_int8",)

VARIANTS = tuple(
    variant for variant in (
        Variant(("sparse_" if sparse else "") + base, quantization, sparse)
        for base, quantization in (("float32", "none"), ("dynamic_int8", "dynamic"),
                                   ("float16", "float16"), ("int8", "int8"))
        for sparse in (False, True))
    if variant.name not in LEFT_OUT)


def convert(saved_model_dir, variant, representative=None):
    """Converts a SavedModel's serving signature as ``variant`` says.

    Args:
        saved_model_dir: The SavedModel (one float32 input, one output).
        variant: A ``Variant``.
        representative: Input rows (float32) that calibrate the activation
            ranges of a full-integer variant.
    """
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    optimizations = [tf.lite.Optimize.EXPERIMENTAL_SPARSITY] if variant.sparse else []
    if variant.quantization != "none":
        optimizations.append(tf.lite.Optimize.DEFAULT)
    converter.optimizations = optimizations
    if variant.quantization == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if variant.quantization == "int8":
        rows = np.asarray(representative, np.float32)
        converter.representative_dataset = lambda: ([row[None]] for row in rows)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    with _older_objects_frozen():
        return converter.convert()


@contextlib.contextmanager
def _older_objects_frozen():
    """Leaves the objects made before the block out of its garbage collections.

    The converter runs a full ``gc.collect()`` per conversion, scanning every
    object of a process that has TensorFlow loaded, to free the SavedModel it
    loaded (the time it costs: BENCHMARKS.md, issue 24). Frozen (``gc.freeze``), the
    older objects are skipped; they go back to the oldest generation after. A
    freeze of the caller's own is left as it is.
    """
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


def quantize_input(detail, x):
    """``x`` in the dtype of an input tensor, through its scale and zero point."""
    return tflm.quantize(x, detail["dtype"], *detail["quantization"])


def dequantize_output(detail, values):
    """Float values of an output tensor, through its scale and zero point."""
    return tflm.dequantize(values, *detail["quantization"])


def io_quantization(model_content):
    """``{"input": ..., "output": ...}``: dtype, scale and zero point of each end."""
    runner = litert.Interpreter(  # Reads the tensors only: no delegate needed.
        model_content=model_content,
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    ends = {"input": runner.get_input_details()[0], "output": runner.get_output_details()[0]}
    return {end: {"dtype": np.dtype(detail["dtype"]).name,
                  "scale": float(detail["quantization"][0]),
                  "zero_point": int(detail["quantization"][1])}
            for end, detail in ends.items()}


def run(model_content, x, min_invokes=LATENCY_REPEATS, builtin=False):
    """Runs a TFLite model in LiteRT at default settings, one row per invoke.

    ``builtin`` runs it on LiteRT's own kernels instead, without the default
    XNNPACK delegate.

    Integer inputs and outputs are quantized and dequantized with the model's
    own scale and zero point, so predictions are in float units whatever the
    model's input and output types.

    Args:
        model_content: The ``.tflite`` bytes.
        x: Input rows (float) of the model's input shape, batch first.
        min_invokes: Timed invokes at least (the rows are cycled through).

    Returns:
        ``(predictions, latency_us)``: one prediction per row, and the median
        wall time of one batch-1 invoke in microseconds (the first invoke,
        which prepares the model, is not timed).
    """
    resolver = (litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES if builtin
                else litert.OpResolverType.AUTO)
    runner = litert.Interpreter(model_content=model_content,
                                experimental_op_resolver_type=resolver)
    feed, fetch = runner.get_input_details()[0], runner.get_output_details()[0]
    runner.allocate_tensors()
    rows = quantize_input(feed, x.reshape(len(x), 1, *x.shape[1:]))
    runner.set_tensor(feed["index"], rows[0])
    runner.invoke()
    predictions, times = [], []
    for i in range(max(len(rows), min_invokes)):
        runner.set_tensor(feed["index"], rows[i % len(rows)])
        start = time.perf_counter()
        runner.invoke()
        times.append(time.perf_counter() - start)
        if i < len(rows):
            predictions.append(runner.get_tensor(fetch["index"]).reshape(-1))
    return (dequantize_output(fetch, np.concatenate(predictions)),
            statistics.median(times) * 1e6)


def predict(model_content, x):
    """Predictions of a TFLite model in LiteRT for all rows of ``x`` (see ``run``)."""
    return run(model_content, x, min_invokes=0)[0]


def evaluate(variant, content, validation, test):
    """Sizes, validation and test MSE and latency of one converted model.

    Args:
        variant: The ``Variant`` that ``content`` was converted as.
        content: The ``.tflite`` bytes.
        validation, test: ``(x, y)`` splits in the model's input and output
            units; ``test`` may be ``None`` (then ``test_mse`` stays ``None``).
            Latency is timed on the validation run only.

    Returns:
        A ``Candidate``, with ``error`` set if LiteRT could not load or run it
        or it predicted NaN or infinity, or 0 for every row.
    """
    candidate = Candidate(variant.name, variant.quantization, bytes=len(content),
                          gzip_bytes=metrics.gzip_size(content), content=content)
    try:
        val_prediction, candidate.latency_us = run(content, validation[0])
        test_prediction = None if test is None else predict(content, test[0])
    except Exception as error:  # LiteRT raises RuntimeError/ValueError on load.
        candidate.error = _first_line(error)
        return candidate
    candidate.loaded = True
    candidate.val_predictions = val_prediction
    val_mse = mse(val_prediction, validation[1])
    test_mse = None if test is None else mse(test_prediction, test[1])
    if not (np.isfinite(val_mse) and (test_mse is None or np.isfinite(test_mse))):
        candidate.error = "loads and runs, but predicts NaN or infinity"
    elif _vanishes(val_prediction, validation[1]):
        cause = ("its output underflowed, or its int8 weights rounded to 0"
                 if variant.quantization in ("int8", "dynamic") else "its output underflowed")
        candidate.error = (f"loads and runs, but predicts 0 for every row (below "
                           f"{VANISHING:g} of the target's largest magnitude: {cause})")
    else:
        candidate.val_mse, candidate.test_mse = val_mse, test_mse
    return candidate


def _vanishes(prediction, target):
    """Whether every prediction is below ``VANISHING`` of the target's largest
    magnitude (a float16 model of a target of magnitude 1e-30 predicts 0)."""
    scale = float(np.max(np.abs(np.asarray(target, np.float64)), initial=0.0))
    largest = float(np.max(np.abs(np.asarray(prediction, np.float64)), initial=0.0))
    return scale > 0 and largest < VANISHING * scale


def candidates(saved_model_dir, validation, test, representative, variants=VARIANTS):
    """Converts and checks every variant.

    Args:
        saved_model_dir: The SavedModel to convert.
        validation, test: ``(x, y)`` splits in the model's input and output
            units; each variant is run on both (``test`` may be ``None``).
        representative: Input rows (from the training split) that calibrate
            full-integer variants.
        variants: The ``Variant``s to try.

    Returns:
        A ``Candidate`` per variant, in the order of ``variants``.
    """
    found = []
    for variant in variants:
        try:
            content = convert(saved_model_dir, variant, representative)
        except Exception as error:  # Converter errors vary by op and option.
            found.append(Candidate(variant.name, variant.quantization,
                                   error=f"conversion failed: {_first_line(error)}"))
            continue
        overflow = _overflowing_scale(content)
        if overflow:  # LiteRT would crash the process on it (a segmentation fault).
            found.append(Candidate(variant.name, variant.quantization, bytes=len(content),
                                   gzip_bytes=metrics.gzip_size(content),
                                   error=f"conversion failed: {overflow}"))
            continue
        found.append(evaluate(variant, content, validation, test))
    refuse_collapsed(found)
    return found


def _overflowing_scale(content):
    """Why a converted model's quantization is unusable, or ``None``.

    The full-integer converter writes a scale of infinity when a tensor's range
    is beyond float32's (a target near 3.4e38); LiteRT then dies with a
    segmentation fault in ``allocate_tensors``. Reading the tensors is safe.
    """
    try:
        runner = litert.Interpreter(
            model_content=content,
            experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
        details = runner.get_tensor_details()
    except Exception:  # Not readable: ``evaluate`` reports why.
        return None
    for detail in details:
        scales = np.asarray(detail["quantization_parameters"]["scales"], np.float64)
        if not np.all(np.isfinite(scales)):
            return (f"the quantization scale of tensor {detail['name']!r} is "
                    f"{float(scales[~np.isfinite(scales)][0]):g} (its range is beyond "
                    f"float32's)")
    return None


def refuse_collapsed(found, reference=REFERENCE):
    """Sets ``error`` of each candidate predicting one value for every validation
    row where the ``reference`` variant's predictions vary (its MSE is dropped,
    so it is never within the tolerance, shipped or written for TFLM)."""
    by_name = {c.name: c for c in found}
    expected = getattr(by_name.get(reference), "val_predictions", None)
    if expected is None or not varies(expected):
        return
    for candidate in found:
        if (candidate.error is None and candidate.val_predictions is not None
                and not varies(candidate.val_predictions)):
            value = float(np.asarray(candidate.val_predictions).reshape(-1)[0])
            candidate.error = (f"loads and runs, but predicts {value:.6g} for every row "
                               f"(the {reference} variant's predictions vary)")
            candidate.val_mse = candidate.test_mse = None


def varies(predictions):
    """Whether ``predictions`` hold more than one value."""
    values = np.asarray(predictions, np.float64).reshape(-1)
    return values.size > 1 and float(np.ptp(values)) > 0


@contextlib.contextmanager
def without_glob_characters(saved_model_dir):
    """``saved_model_dir``, or a link to it on a path without ``*?[]\\``.

    TensorFlow's checkpoint reader finds a SavedModel's variables through a
    glob of its path, so a ``[`` in the path (``--export-dir "models[v2]"``)
    matched no files. The link lives in a temporary folder of its own.
    """
    if not re.search(r"[*?[\]\\]", saved_model_dir):
        yield saved_model_dir
        return
    with tempfile.TemporaryDirectory(prefix="tuner_prune-") as folder:
        link = os.path.join(folder, "saved_model")
        os.symlink(os.path.abspath(saved_model_dir), link, target_is_directory=True)
        yield link


def write(candidate, path):
    with open(path, "wb") as handle:
        handle.write(candidate.content)
    return os.path.basename(path)


def _first_line(error):
    lines = str(error).strip().splitlines() or [""]
    return f"{type(error).__name__}: {lines[0]}"
