"""Every TFLite variant run in each runtime it may ship to, against a reference.

The runtimes: ``litert`` (LiteRT with its default XNNPACK delegate, a phone or
desktop: the one the MSEs are measured in), ``litert_builtin`` (LiteRT's own
kernels, without the delegate) and ``tflm`` (TensorFlow Lite Micro's
interpreter, a microcontroller; ``tflm.py``). The reference of a variant is
its dense counterpart (``sparse_int8`` -> ``int8``) on LiteRT's built-in
kernels: a sparse encoding must not change what the model computes. A
runtime's status is ``matched`` (within one output unit of an int8 model,
``XNNPACK_UNITS`` under XNNPACK, 1 % of the largest prediction otherwise), ``wrong: ...`` (it loaded and ran but
disagreed, or predicted NaN), ``failed: ...`` (it did not load or run),
``reference`` or ``unchecked`` (no reference to compare with).
"""

import numpy as np

from tuner_prune.export import tflite, tflm
from tuner_prune.export.choice import BUILTIN, LITERT, TFLM

RELATIVE_TOLERANCE = 0.01
# XNNPACK requantizes in its own way: its int8 outputs differ from LiteRT's
# built-in kernels by up to 2 units on rows of the tests (1 for TFLM's).
XNNPACK_UNITS = 3


def verify(found, x, arenas=False):
    """Sets each converted candidate's ``runtimes`` from runs on the rows ``x``.

    Args:
        found: ``choice.Candidate``s, their ``val_predictions`` (LiteRT's)
            made from ``x``.
        x: The validation rows, float32.
        arenas: Also set ``arena_bytes`` of those that matched in TFLM: the
            arena ``model_data.h`` would give (``tflm.smallest_arena`` plus
            its margin).
    """
    converted = [c for c in found if c.content is not None]
    builtin = {c.name: _litert_builtin(c.content, x) for c in converted}
    micro = tflm.run({c.name: c.content for c in converted}, x)
    for candidate in converted:
        reference, error = builtin.get(_dense_name(candidate.name), (None, None))
        tolerance = _tolerance(candidate.content, reference)
        own = (candidate.val_predictions, candidate.error if not candidate.loaded else None)
        candidate.runtimes = {
            LITERT: _status(own, reference, tolerance and XNNPACK_UNITS * tolerance),
            BUILTIN: ("reference" if _dense_name(candidate.name) == candidate.name
                      and error is None else
                      _status(builtin[candidate.name], reference, tolerance)),
            TFLM: _status(micro[candidate.name], reference, tolerance),
        }
        candidate.tflm_predictions = micro[candidate.name][0]
        if arenas and matched_in(candidate, TFLM):
            smallest = tflm.smallest_arena(candidate.content, x, candidate.tflm_predictions)
            candidate.arena_bytes = None if smallest is None else tflm.arena_with_margin(smallest)


def matched_in(candidate, runtime):
    """Whether ``candidate`` ran in ``runtime`` as its reference did."""
    return candidate.runtimes.get(runtime) in ("matched", "reference")


def _dense_name(name):
    return name.removeprefix("sparse_")


def _litert_builtin(content, x):
    try:
        return tflite.run(content, x, min_invokes=0, builtin=True)[0], None
    except Exception as error:  # LiteRT raises RuntimeError/ValueError on load.
        return None, tflite._first_line(error)


def _tolerance(content, reference):
    if reference is None:
        return None
    try:
        output = tflite.io_quantization(content)["output"]
    except Exception:  # Not readable by LiteRT's built-in kernels: compare as floats.
        output = {"dtype": "float32"}
    if output["dtype"] == "int8":
        return 1.001 * output["scale"]  # One int8 unit.
    return RELATIVE_TOLERANCE * max(float(np.max(np.abs(reference))), 1e-6)


def _status(result, reference, tolerance):
    predictions, error = result
    if error is not None and predictions is None:
        return f"failed: {error}"
    if not np.all(np.isfinite(predictions)):
        return "wrong: predicts NaN or infinity"
    if reference is None:
        return "unchecked: no reference (its dense variant did not run)"
    difference = float(np.max(np.abs(np.asarray(predictions) - reference)))
    if difference <= tolerance:
        return "matched"
    return f"wrong: differs from the reference by up to {difference:.3g} (> {tolerance:.3g})"
