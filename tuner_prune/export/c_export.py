"""The C export: a model of Dense and ReLU layers as ``model.c`` and ``model.h``, verified.

The serving model's layers (its scaling folded into the first and last
kernels) become ``c_source``'s layers; the source is compiled by the
machine's C compiler (``c_build``), run on the validation rows beside
LiteRT, and written only when its validation MSE is within the export's
tolerance. The weights are tried as ``int8``, then ``int16``, then
``float``: the first within the tolerance ships, unless it predicts one value
for every row where LiteRT's predictions vary. A compiler that fails (a
cross-compiler as ``$CC``) leaves the C out with its reason.
"""

import os
import subprocess
import tempfile

import numpy as np

from tuner_prune.export import c_build, c_source
from tuner_prune.core._keras import keras
from tuner_prune.core.metrics import mse
from tuner_prune.export.padding import PaddedDense
from tuner_prune.export.serving import Scale

COVERS = "the C export covers Dense and ReLU layers"
VALUE_ORDER = ("int8", "int16", "float")
_PASSING = (keras.layers.InputLayer, keras.layers.Dropout)


class NotDenseError(ValueError):
    """A model the C export does not cover; the message names what it holds."""


def dense_layers(model):
    """``c_source.Layer``s computing ``model``, its ``Scale`` layers folded in.

    Args:
        model: A tf_keras model of flat rows: ``Dense`` layers with ``relu``
            or ``linear`` activations, ``ReLU`` layers, ``Scale`` layers
            (``serving``), ``Dropout``, nested in ``Sequential`` or functional
            models.

    Raises:
        NotDenseError: Another layer, another activation or input shape.
    """
    if model.inputs[0].shape.rank != 2:
        raise NotDenseError(f"rows of shape {tuple(model.inputs[0].shape[1:])}")
    layers, pending = [], None
    for layer in _flat(model):
        if isinstance(layer, Scale):
            factor = np.asarray(layer.factor_value, np.float32)
            if not layers:
                pending = factor if pending is None else pending * factor
            else:
                _scale_output(layers[-1], factor)
        elif isinstance(layer, keras.layers.Dense):
            layers.append(_dense(layer, pending))
            pending = None
        elif _is_relu(layer):
            if not layers:
                raise NotDenseError("a ReLU before its first Dense layer")
            layers[-1].relu = True
        elif not isinstance(layer, _PASSING) and not _is_linear(layer):
            raise NotDenseError(f"a {type(layer).__name__} layer ({layer.name})")
    if not layers:
        raise NotDenseError("no Dense layer")
    return layers


def dense_macs(model):
    """Multiply-adds per row of a Dense/ReLU model computed dense (TFLite, TFLM), or ``None``."""
    try:
        return sum(int(layer.kernel.size) for layer in dense_layers(model))
    except NotDenseError:
        return None


def _flat(model):
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            yield from _flat(layer)
        else:
            yield layer


def _dense(layer, input_factor):
    config = layer.get_config()
    if config["activation"] not in ("relu", "linear") or len(layer.kernel.shape) != 2:
        raise NotDenseError(f"a Dense layer ({layer.name}) with activation "
                            f"{config['activation']}")
    kernel = layer.kernel.numpy().astype(np.float32)
    if isinstance(layer, PaddedDense):
        kernel = kernel[:kernel.shape[0] - layer.input_padding]  # Zero rows.
    if input_factor is not None:
        with np.errstate(over="ignore"):  # An overflow is refused by ``write``.
            kernel = kernel * input_factor.reshape(-1, 1)
    bias = (layer.bias.numpy() if layer.use_bias else np.zeros(kernel.shape[1]))
    return c_source.Layer(kernel, bias.astype(np.float32), config["activation"] == "relu")


def _scale_output(layer, factor):
    if layer.relu and np.any(factor < 0):
        raise NotDenseError("a negative scale after a ReLU")
    with np.errstate(over="ignore"):  # An overflow is refused by ``write``.
        layer.kernel = layer.kernel * factor.reshape(1, -1)
        layer.bias = layer.bias * factor


def _is_relu(layer):
    if isinstance(layer, keras.layers.ReLU):
        config = layer.get_config()
        return (config.get("max_value") is None and not config.get("negative_slope")
                and not config.get("threshold"))
    return (isinstance(layer, keras.layers.Activation)
            and layer.get_config()["activation"] == "relu")


def _is_linear(layer):
    return (isinstance(layer, keras.layers.Activation)
            and layer.get_config()["activation"] == "linear")


def write(model, validation, test, reference, limit, folder, max_flash=None, max_ram=None):
    """Writes ``model.c`` and ``model.h`` into ``folder`` if they are within the tolerance.

    Args:
        model: The serving model (raw rows in, target units out).
        validation, test: ``(x, y)`` raw splits; ``test`` may be ``None``.
        reference: LiteRT's predictions of the float32 variant on the
            validation rows, which the C predictions are compared with.
        limit: Largest validation MSE allowed.
        folder: Where the files go.
        max_flash, max_ram: Budgets of the object's text plus data and of its
            static buffers (bytes), or ``None``.

    Returns:
        The manifest entry: with ``source`` ``None`` and a ``reason`` when
        nothing was written.
    """
    try:
        layers = dense_layers(model)
    except NotDenseError as error:
        return {"source": None, "reason": f"{COVERS}; this model has {error}"}
    if not all(np.all(np.isfinite(layer.kernel)) and np.all(np.isfinite(layer.bias))
               for layer in layers):
        return {"source": None, "reason": "its weights, the scaling folded in, overflow "
                                          "float32 (a target near float32's largest, 3.4e38)"}
    if c_build.compiler() is None:
        return {"source": None, "reason": "no C compiler ($CC, cc or gcc) on PATH"}
    tried = []
    with tempfile.TemporaryDirectory(prefix="tuner_prune-c-") as work:
        for value_type in VALUE_ORDER:
            encoded = [c_source.encode(layer, value_type) for layer in layers]
            try:
                entry = _check(encoded, value_type, validation, test, reference, work)
            except (c_build.CompilerError, OSError, subprocess.SubprocessError) as error:
                # A cross-compiler as $CC, or one that refuses the flags: no C
                # export, the rest of the export goes on.
                return {"source": None, "tried": tried,
                        "reason": f"the C compiler ({os.path.basename(c_build.compiler())}) "
                                  f"failed: {_first_line(error)}"}
            collapsed = _collapsed(entry.pop("predictions"), reference)
            tried.append({"value_type": value_type, "val_mse": entry["val_mse"],
                          **({"error": collapsed} if collapsed else {})})
            if not collapsed and entry["val_mse"] <= limit:
                over = _over_budget(entry, max_flash, max_ram)
                if over:
                    return {"source": None, "tried": tried, "reason": over}
                _write_texts(encoded, value_type, folder)
                return {**entry, "tried": tried}
    reasons = ", ".join(f"{t['value_type']} " + (t.get("error") or f"val_mse {t['val_mse']:.6g}")
                        for t in tried)
    return {"source": None, "tried": tried,
            "reason": f"over the MSE tolerance ({limit:.6g}): {reasons}"}


def _collapsed(predicted, reference):
    """Why ``predicted`` is refused: one value for every row where ``reference``'s
    vary (weights of a small feature rounded to 0), or ``None``."""
    values = np.asarray(predicted, np.float64).reshape(-1)
    expected = np.asarray(reference, np.float64).reshape(-1)
    if values.size < 2 or np.ptp(values) > 0 or not np.ptp(expected) > 0:
        return None
    return f"predicts {values[0]:.6g} for every row"


def _first_line(error):
    lines = str(error).strip().splitlines() or [""]
    return lines[0] if isinstance(error, c_build.CompilerError) else (
        f"{type(error).__name__}: {lines[0]}")


def _over_budget(entry, max_flash, max_ram):
    """Why the smallest C within the tolerance is over a budget, or ``None``."""
    for flag, budget, key in (("--max-flash", max_flash, "flash_bytes"),
                              ("--max-ram", max_ram, "ram_bytes")):
        if budget is not None and entry[key] > budget:
            return (f"its {entry['value_type']} C needs {entry[key]} bytes, over "
                    f"{flag} {budget}")
    return None


def _check(encoded, value_type, validation, test, reference, work):
    _write_texts(encoded, value_type, work)
    sizes = c_build.build(work)
    predicted = c_build.predict(work, validation[0])
    return {
        "source": c_source.SOURCE, "header": c_source.HEADER,
        "function": c_source.FUNCTION, "value_type": value_type,
        "flash_bytes": sizes["text"] + sizes["data"], "ram_bytes": sizes["bss"],
        "sections": sizes, "compiler_flags": " ".join((*c_build.WARNINGS, c_build.OPTIMIZE)),
        "weight_bytes": sum(layer.value_bytes for layer in encoded),
        "index_bytes": sum(layer.index_bytes for layer in encoded),
        "limit_bytes": round(sum(layer.limit_bytes for layer in encoded), 1),
        "macs": sum(int(layer.values.size) for layer in encoded),
        "layers": [layer.summary() for layer in encoded],
        "val_mse": mse(predicted, validation[1]),
        "test_mse": None if test is None else mse(c_build.predict(work, test[0]), test[1]),
        "litert_max_abs_difference": float(np.max(np.abs(
            predicted - np.asarray(reference, np.float32).reshape(-1)))),
        "predictions": predicted,
    }


def _write_texts(encoded, value_type, folder):
    for name, text in ((c_source.SOURCE, c_source.source_text(encoded)),
                       (c_source.HEADER, c_source.header_text(encoded, value_type))):
        with open(os.path.join(folder, name), "w", encoding="ascii") as handle:
            handle.write(text)
