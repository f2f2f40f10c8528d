"""Which converted TFLite variant ships: measured numbers and the choice (Keras-free).

Every variant is measured on the validation and the test split; only the
validation MSE decides. The test MSE is reported as measured, never used to
choose, so it stays a number the choice has not seen.
"""

import dataclasses


# The runtimes a variant is run in (``runtimes.verify``).
LITERT, BUILTIN, TFLM = "litert", "litert_builtin", "tflm"
RUNTIMES = (LITERT, BUILTIN, TFLM)
RUNTIME_LABELS = {LITERT: "LiteRT XNNPack", BUILTIN: "LiteRT built-in", TFLM: "TFLM"}
PHONE_RUNTIME = LITERT  # LiteRT with its default XNNPACK delegate: what is measured.


class NoCandidateError(RuntimeError):
    """No converted variant loaded in LiteRT within the MSE tolerance (and budget).

    ``candidates``: the variants of the asked quantization, measured and marked
    ``within_tolerance``, whatever their size.
    """

    def __init__(self, message, candidates=()):
        super().__init__(message)
        self.candidates = list(candidates)


@dataclasses.dataclass
class Candidate:
    """One converted variant and what LiteRT made of it.

    ``loaded`` means LiteRT loaded and ran it; ``val_mse`` and ``test_mse``
    are ``None`` unless it also predicted finite values on both splits
    (``error`` says why not). Only ``val_mse`` decides ``within_tolerance``,
    with ``runtimes`` (``runtimes.verify``): a variant that computes wrongly
    in LiteRT is never within it; ``test_mse`` is measured and reported,
    never used to choose.
    """

    name: str
    quantization: str = None
    bytes: int = 0
    gzip_bytes: int = 0
    val_mse: float = None
    test_mse: float = None
    latency_us: float = None
    loaded: bool = False
    error: str = None
    within_tolerance: bool = False
    chosen: bool = False
    runtimes: dict = dataclasses.field(default_factory=dict)
    arena_bytes: int = None
    content: bytes = dataclasses.field(default=None, repr=False)
    val_predictions: object = dataclasses.field(default=None, repr=False)
    tflm_predictions: object = dataclasses.field(default=None, repr=False)

    def summary(self):
        row = dataclasses.asdict(self)
        row.pop("content")
        row.pop("val_predictions")
        row.pop("tflm_predictions")
        return row

    def computes_wrongly_in(self, runtime):
        """Whether it loaded in ``runtime`` and disagreed with its reference there."""
        return str(self.runtimes.get(runtime, "")).startswith("wrong")


def mark_within_tolerance(found, reference_mse, max_mse_increase):
    """Flags the candidates whose validation MSE is within the tolerance.

    Args:
        found: ``Candidate``s.
        reference_mse: Validation MSE of the Keras model.
        max_mse_increase: Allowed relative increase over it.

    Returns:
        The largest validation MSE allowed.
    """
    limit = reference_mse * (1 + max_mse_increase)
    for candidate in found:
        candidate.within_tolerance = (candidate.val_mse is not None
                                      and candidate.val_mse <= limit
                                      and not candidate.computes_wrongly_in(PHONE_RUNTIME))
    return limit


def choose(found, reference_mse, max_mse_increase=0.05, size_metric="bytes",
           quantization="auto", max_bytes=None, device="phone", max_flash=None,
           max_ram=None):
    """Smallest candidate that loaded and stays within the MSE tolerance.

    The tolerance is on the validation split; the test split plays no part in
    the choice.

    Args:
        found: ``Candidate``s from ``candidates``.
        reference_mse: Validation MSE of the Keras model.
        max_mse_increase: Allowed relative increase of validation MSE over it.
        size_metric: ``"bytes"`` or ``"gzip_bytes"``.
        quantization: ``"auto"`` (any variant) or ``"none"``, ``"dynamic"``,
            ``"float16"``, ``"int8"``: only variants of that kind, sparse-encoded
            or not.
        max_bytes: Only variants of at most this many bytes, or ``None``.
        device: ``"phone"``, or ``"microcontroller"``: only variants that
            computed in TFLM as on LiteRT's built-in kernels (``runtimes``).
        max_flash: Only variants of at most this many bytes, or ``None``.
        max_ram: Only variants whose TFLM arena (``arena_bytes``) is at most
            this, or ``None``.

    Returns:
        The chosen ``Candidate`` (also marked ``chosen``).

    Raises:
        NoCandidateError: No candidate qualifies.
    """
    limit = mark_within_tolerance(found, reference_mse, max_mse_increase)
    kind = [c for c in found if quantization in ("auto", c.quantization)]
    allowed = [c for c in kind
               if (max_bytes is None or c.bytes <= max_bytes)
               and (device != "microcontroller" or runs_in_tflm(c))
               and (max_flash is None or c.bytes <= max_flash)
               and (max_ram is None or (c.arena_bytes or max_ram + 1) <= max_ram)]
    passing = [c for c in allowed if c.within_tolerance]
    if not passing:
        reasons = "; ".join(f"{c.name}: {c.error or f'validation MSE {c.val_mse:.6g}'}"
                            for c in allowed) or "; ".join(
            f"{c.name}: {_left_out(c, max_bytes, device, max_flash, max_ram)}" for c in kind)
        budget = "" if max_bytes is None else f", at most {max_bytes} bytes"
        budget += ", computing in TFLM as in LiteRT" if device == "microcontroller" else ""
        budget += "" if max_flash is None else f", at most {max_flash} bytes of flash"
        budget += "" if max_ram is None else f", a TFLM arena of at most {max_ram} bytes"
        measured = any(c.val_mse is not None for c in allowed)  # Over the tolerance.
        advice = ("; raise --max-mse-increase or choose another --quantization"
                  if measured else "")
        raise NoCandidateError(
            f"Expected a TFLite variant (quantization {quantization}{budget}) that "
            f"loads in LiteRT with validation MSE <= {limit:.6g} (Keras "
            f"{reference_mse:.6g} + {max_mse_increase:.0%}), received "
            f"{reasons or 'none'}{advice}", candidates=kind)
    best = min(passing, key=lambda c: getattr(c, size_metric))
    best.chosen = True
    return best


def _left_out(candidate, max_bytes, device, max_flash, max_ram):
    """Why ``candidate`` was not among those ``choose`` considers (one reason)."""
    if device == "microcontroller" and not runs_in_tflm(candidate):
        return f"TFLM {candidate.runtimes.get(TFLM) or 'not run'}"
    for flag, budget in (("--max-bytes", max_bytes), ("--max-flash", max_flash)):
        if budget is not None and candidate.bytes > budget:
            return f"{candidate.bytes} bytes, over {flag} {budget}"
    if candidate.arena_bytes is None:
        return "no TFLM arena measured (it does not run in TFLM)"
    return f"a TFLM arena of {candidate.arena_bytes} bytes, over --max-ram {max_ram}"


def runs_in_tflm(candidate):
    """Whether the candidate computed in TensorFlow Lite Micro as its reference did."""
    return candidate.runtimes.get(TFLM) in ("matched", "reference")


def runtimes_line(rows):
    """One line: each variant's status in each runtime (yes / wrong / fails / ?).

    Args:
        rows: The manifest's ``candidates`` (``Candidate.summary()``).
    """
    short = {"matched": "yes", "reference": "yes", "wrong": "wrong", "failed": "fails"}
    parts = [f"{row['name']} " + "/".join(short.get(row["runtimes"][r].split(":")[0], "?")
                                          for r in RUNTIMES)
             for row in rows if row.get("runtimes")]
    if not parts:
        return None
    labels = ", ".join(RUNTIME_LABELS[r] for r in RUNTIMES)
    return f"Computes as on LiteRT's built-in kernels ({labels}): {'; '.join(parts)}"
