"""What tuner_prune measures on plain arrays, free of Keras: the MSE, sizes, sparsity.

The one mean squared error of tuner_prune is computed in float64: a float32
square overflows past about 1.8e19 and underflows below about 1e-19 (a target
of magnitude 1e20 or 1e-30 would measure infinity or 0), while float64 holds
the square of any float32 value. Sizes are bytes of files and of weights, and
the budgets a trial is scored against.
"""

import gzip
import math

import numpy as np

FLOAT32_MAX = float(np.finfo(np.float32).max)


def in_target_units(value, target_scale):
    """An MSE measured on targets divided by ``target_scale``, in the target's units."""
    return float(value) * float(target_scale) ** 2


def mse(prediction, target, target_scale=1.0):
    """Mean squared error of predictions against targets, as a float (float64).

    Rows are paired whatever the shapes: ``(n,)`` and ``(n, 1)`` both hold
    one value per row.

    Args:
        prediction: Predicted values.
        target: True values.
        target_scale: Factor from these values to the target's own units.
    """
    error = (np.reshape(prediction, -1).astype(np.float64) -
             np.reshape(target, -1).astype(np.float64))
    return in_target_units(np.mean(error ** 2), target_scale)


def float32_clipped(value):
    """``value`` within float32's finite range, for a log that stores float32
    (TensorBoard's scalars): an MSE past it is logged as float32's largest."""
    return float(np.clip(value, -FLOAT32_MAX, FLOAT32_MAX))


# Sizes and sparsity.


def zero_fraction(arrays):
    """Fraction of exact zeros over all elements of ``arrays``."""
    total = sum(a.size for a in arrays)
    zeros = sum(int((a == 0).sum()) for a in arrays)
    return zeros / total if total else 0.0


def nonzero_count(arrays):
    """Number of nonzero elements over all of ``arrays``."""
    return sum(int((a != 0).sum()) for a in arrays)


def gzip_size(data, level=9):
    """Bytes of ``data`` after gzip at ``level``."""
    return len(gzip.compress(data, compresslevel=level, mtime=0))


def mask_entropy_bytes(total, nonzero):
    """Bytes needed to say which ``nonzero`` of ``total`` positions are kept.

    ``log2 C(total, nonzero)`` bits, computed with log-gamma.
    """
    if nonzero in (0, total):
        return 0.0
    log_choose = (math.lgamma(total + 1) - math.lgamma(nonzero + 1)
                  - math.lgamma(total - nonzero + 1))
    return log_choose / math.log(2) / 8


OVER_BUDGET_FACTOR = 10.0
# The budgets a trial is scored against: its recorded .tflite's bytes (a
# .tflite's flash is its bytes) and, under --max-ram, its TFLM tensor arena.
BYTE_BUDGETS = (("max_bytes", "--max-bytes"), ("max_flash", "--max-flash"))
SEARCH_BUDGETS = (*BYTE_BUDGETS, ("max_ram", "--max-ram"))
# The variants of each ``--quantization`` that TFLM runs: under ``--max-ram`` a
# trial's arena is the smallest of theirs (float16 and dynamic int8 do not run
# in TFLM, docs/export.md).
RAM_VARIANTS = {"auto": ("float32", "int8"), "none": ("float32",), "int8": ("int8",)}
# The smallest TFLM arena an export reports: ``tflm.arena_with_margin`` of the 1,120
# bytes a float32 model of one Dense unit on one input needs
# (tests/export/test_micro.py); any model tuner_prune converts has that much and more.
SMALLEST_ARENA = 1232


def trial_budget(max_bytes=None, max_flash=None):
    """The budget of a trial's recorded ``.tflite`` bytes: ``(bytes, flag)`` or ``None``.

    The tighter of ``--max-bytes`` and ``--max-flash`` (``--max-bytes`` on a
    tie), named by its flag for the messages.
    """
    limits = {"max_bytes": max_bytes, "max_flash": max_flash}
    set_ = [(limits[name], flag) for name, flag in BYTE_BUDGETS
            if limits[name] is not None]
    return min(set_) if set_ else None


def budget_score(val_mse, tflite_bytes, max_bytes=None, arena_bytes=None, max_ram=None):
    """The search's objective, ``score``, of a trial under a size and a RAM budget.

    Within ``max_bytes`` and ``max_ram`` (or without them) it is the
    validation MSE; over either, the MSE times ``OVER_BUDGET_FACTOR`` times the
    larger overshoot ratio (``tflite_bytes / max_bytes``, ``arena_bytes /
    max_ram``), so the oracle learns to move toward models that fit. The
    penalised number is a score, not an MSE: it is shown as ``score``, never
    as ``val_mse``.
    """
    ratio = max((size / budget for size, budget in ((tflite_bytes, max_bytes),
                                                    (arena_bytes, max_ram))
                 if budget is not None), default=0.0)
    return val_mse if ratio <= 1 else val_mse * OVER_BUDGET_FACTOR * ratio


def information_limit_bytes(total, nonzero, bytes_per_weight=1, block=1):
    """Smallest encoding of a sparse weight set: values plus the zero mask.

    Args:
        total: Weights, zero or not.
        nonzero: Nonzero weights.
        bytes_per_weight: Bytes of one nonzero value.
        block: Weights pruned together; the mask then says which of
            ``total / block`` blocks are kept (1: unstructured pruning).
    """
    mask = mask_entropy_bytes(round(total / block), round(nonzero / block))
    return nonzero * bytes_per_weight + mask
