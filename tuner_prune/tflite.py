"""TFLite conversion variants, each loaded and run in LiteRT before it counts."""

import dataclasses
import os
import statistics
import time

import numpy as np
import tensorflow as tf
from ai_edge_litert import interpreter as litert

from tuner_prune import sizes

_OPT = tf.lite.Optimize
VARIANTS = {
    "float32": [],
    "sparse_float32": [_OPT.EXPERIMENTAL_SPARSITY],
    "dynamic_int8": [_OPT.DEFAULT],
    "sparse_dynamic_int8": [_OPT.EXPERIMENTAL_SPARSITY, _OPT.DEFAULT],
}
LATENCY_REPEATS = 50


@dataclasses.dataclass
class Candidate:
    """One converted variant and what LiteRT made of it."""

    name: str
    bytes: int = 0
    gzip_bytes: int = 0
    test_mse: float = None
    latency_us: float = None
    loaded: bool = False
    error: str = None
    chosen: bool = False
    content: bytes = dataclasses.field(default=None, repr=False)

    def summary(self):
        row = dataclasses.asdict(self)
        row.pop("content")
        return row


def convert(saved_model_dir, optimizations):
    """Converts a SavedModel's serving signature with the given optimisations."""
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    converter.optimizations = list(optimizations)
    return converter.convert()


def predict(model_content, x):
    """Runs a TFLite model in LiteRT at default settings on all rows of ``x``."""
    runner = litert.Interpreter(model_content=model_content)
    feed = runner.get_input_details()[0]
    runner.resize_tensor_input(feed["index"], [len(x), x.shape[1]])
    runner.allocate_tensors()
    runner.set_tensor(feed["index"], x.astype(feed["dtype"]))
    runner.invoke()
    return runner.get_tensor(runner.get_output_details()[0]["index"]).reshape(-1)


def batch1_latency_us(model_content, row, repeats=LATENCY_REPEATS):
    """Median wall time of one batch-1 invoke, in microseconds."""
    runner = litert.Interpreter(model_content=model_content)
    feed = runner.get_input_details()[0]
    runner.allocate_tensors()
    runner.set_tensor(feed["index"], row.reshape(1, -1).astype(feed["dtype"]))
    runner.invoke()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner.invoke()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def evaluate(name, content, x_test, y_test):
    """Sizes, test MSE and latency of one converted model, or why it failed."""
    candidate = Candidate(name, bytes=len(content), gzip_bytes=sizes.gzip_size(content),
                          content=content)
    try:
        prediction = predict(content, x_test)
        candidate.latency_us = batch1_latency_us(content, x_test[0])
    except Exception as error:  # LiteRT raises RuntimeError/ValueError on load.
        candidate.error = f"{type(error).__name__}: {str(error).strip().splitlines()[0]}"
        return candidate
    candidate.loaded = True
    candidate.test_mse = float(np.mean((prediction - y_test) ** 2))
    return candidate


def candidates(saved_model_dir, x_test, y_test, variants=VARIANTS):
    """Converts and checks every variant."""
    found = []
    for name, optimizations in variants.items():
        try:
            content = convert(saved_model_dir, optimizations)
        except Exception as error:  # Converter errors vary by op and option.
            found.append(Candidate(name, error=f"conversion failed: {error}"))
            continue
        found.append(evaluate(name, content, x_test, y_test))
    return found


def choose(found, reference_mse, max_mse_increase=0.05, size_metric="bytes"):
    """Smallest candidate that loaded and stays within the MSE tolerance.

    Raises:
        RuntimeError: No candidate qualifies.
    """
    limit = reference_mse * (1 + max_mse_increase)
    passing = [c for c in found if c.loaded and c.test_mse <= limit]
    if not passing:
        reasons = "; ".join(f"{c.name}: {c.error or f'test MSE {c.test_mse:.6g}'}"
                            for c in found)
        raise RuntimeError(f"no TFLite variant loaded in LiteRT with test MSE <= "
                           f"{limit:.6g} ({reasons})")
    best = min(passing, key=lambda c: getattr(c, size_metric))
    best.chosen = True
    return best


def write(candidate, path):
    with open(path, "wb") as handle:
        handle.write(candidate.content)
    return os.path.basename(path)
