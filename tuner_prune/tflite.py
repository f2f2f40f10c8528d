"""TFLite conversion variants, each loaded and run in LiteRT before it counts."""

import dataclasses
import os
import statistics
import time

import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from tuner_prune import sizes

LATENCY_REPEATS = 50
REPRESENTATIVE_ROWS = 200


class NoCandidateError(RuntimeError):
    """No converted variant loaded in LiteRT within the MSE tolerance."""


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


VARIANTS = tuple(
    Variant(("sparse_" if sparse else "") + base, quantization, sparse)
    for base, quantization in (("float32", "none"), ("dynamic_int8", "dynamic"),
                               ("float16", "float16"), ("int8", "int8"))
    for sparse in (False, True))


@dataclasses.dataclass
class Candidate:
    """One converted variant and what LiteRT made of it.

    ``loaded`` means LiteRT loaded and ran it; ``test_mse`` is ``None`` unless
    it also predicted finite values (``error`` says why not).
    """

    name: str
    quantization: str = None
    bytes: int = 0
    gzip_bytes: int = 0
    test_mse: float = None
    latency_us: float = None
    loaded: bool = False
    error: str = None
    within_tolerance: bool = False
    chosen: bool = False
    content: bytes = dataclasses.field(default=None, repr=False)

    def summary(self):
        row = dataclasses.asdict(self)
        row.pop("content")
        return row


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
    return converter.convert()


def quantize_input(detail, x):
    """``x`` in the dtype of an input tensor, through its scale and zero point."""
    dtype = detail["dtype"]
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize_output(detail, values):
    """Float values of an output tensor, through its scale and zero point."""
    if not np.issubdtype(detail["dtype"], np.integer):
        return values.astype(np.float32)
    scale, zero_point = detail["quantization"]
    return (values.astype(np.float32) - zero_point) * scale


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


def run(model_content, x, min_invokes=LATENCY_REPEATS):
    """Runs a TFLite model in LiteRT at default settings, one row per invoke.

    Integer inputs and outputs are quantized and dequantized with the model's
    own scale and zero point, so predictions are in float units whatever the
    model's input and output types.

    Args:
        model_content: The ``.tflite`` bytes.
        x: Input rows (float).
        min_invokes: Timed invokes at least (the rows are cycled through).

    Returns:
        ``(predictions, latency_us)``: one prediction per row, and the median
        wall time of one batch-1 invoke in microseconds (the first invoke,
        which prepares the model, is not timed).
    """
    runner = litert.Interpreter(model_content=model_content)
    feed, fetch = runner.get_input_details()[0], runner.get_output_details()[0]
    runner.allocate_tensors()
    rows = quantize_input(feed, x.reshape(len(x), 1, -1))
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


def evaluate(variant, content, x_test, y_test):
    """Sizes, test MSE and latency of one converted model, or why it failed."""
    candidate = Candidate(variant.name, variant.quantization, bytes=len(content),
                          gzip_bytes=sizes.gzip_size(content), content=content)
    try:
        prediction, candidate.latency_us = run(content, x_test)
    except Exception as error:  # LiteRT raises RuntimeError/ValueError on load.
        candidate.error = _first_line(error)
        return candidate
    candidate.loaded = True
    test_mse = float(np.mean((prediction - y_test) ** 2))
    if np.isfinite(test_mse):
        candidate.test_mse = test_mse
    else:
        candidate.error = "loads and runs, but predicts NaN or infinity"
    return candidate


def candidates(saved_model_dir, x_test, y_test, representative, variants=VARIANTS):
    """Converts and checks every variant.

    Args:
        saved_model_dir: The SavedModel to convert.
        x_test, y_test: Test split in the model's input and output units.
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
        found.append(evaluate(variant, content, x_test, y_test))
    return found


def mark_within_tolerance(found, reference_mse, max_mse_increase):
    """Flags the candidates that loaded with test MSE within the tolerance."""
    limit = reference_mse * (1 + max_mse_increase)
    for candidate in found:
        candidate.within_tolerance = (candidate.test_mse is not None
                                      and candidate.test_mse <= limit)
    return limit


def choose(found, reference_mse, max_mse_increase=0.05, size_metric="bytes",
           quantization="auto", max_bytes=None):
    """Smallest candidate that loaded and stays within the MSE tolerance.

    Args:
        found: ``Candidate``s from ``candidates``.
        reference_mse: Test MSE of the Keras model.
        max_mse_increase: Allowed relative increase of test MSE over it.
        size_metric: ``"bytes"`` or ``"gzip_bytes"``.
        quantization: ``"auto"`` (any variant) or ``"none"``, ``"dynamic"``,
            ``"float16"``, ``"int8"``: only variants of that kind, sparse-encoded
            or not.
        max_bytes: Only variants of at most this many bytes, or ``None``.

    Returns:
        The chosen ``Candidate`` (also marked ``chosen``).

    Raises:
        NoCandidateError: No candidate qualifies.
    """
    limit = mark_within_tolerance(found, reference_mse, max_mse_increase)
    allowed = [c for c in found if quantization in ("auto", c.quantization)
               and (max_bytes is None or c.bytes <= max_bytes)]
    passing = [c for c in allowed if c.within_tolerance]
    if not passing:
        reasons = "; ".join(f"{c.name}: {c.error or f'test MSE {c.test_mse:.6g}'}"
                            for c in allowed)
        budget = "" if max_bytes is None else f", at most {max_bytes} bytes"
        raise NoCandidateError(
            f"Expected a TFLite variant (quantization {quantization}{budget}) that "
            f"loads in LiteRT with test MSE <= {limit:.6g} (Keras {reference_mse:.6g} + "
            f"{max_mse_increase:.0%}), received {reasons or 'none'}; raise "
            f"--max-mse-increase or choose another --quantization")
    best = min(passing, key=lambda c: getattr(c, size_metric))
    best.chosen = True
    return best


def write(candidate, path):
    with open(path, "wb") as handle:
        handle.write(candidate.content)
    return os.path.basename(path)


def _first_line(error):
    lines = str(error).strip().splitlines() or [""]
    return f"{type(error).__name__}: {lines[0]}"
