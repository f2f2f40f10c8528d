"""What a trained pruned model measures: sparsity, nonzero weights, MSE, TFLite size."""

import contextlib
import io
import tempfile

import numpy as np

from tuner_prune.core import metrics
from tuner_prune.export import tflite
from tuner_prune.core._keras import collect_prunable_layers, keras
from tuner_prune.core.metrics import in_target_units, mse
from tuner_prune.export.serving import scaled_model

__all__ = ["TRIAL_VARIANT", "count_macs", "in_target_units", "measure_sparsity",
           "model_mse", "mse", "pruned_layers", "trial_files", "trial_tflite_bytes"]

TRIAL_VARIANT = "sparse_float32"


def pruned_layers(model):
    """``[(layer name, pruned weight)]`` of a pruning-wrapped model; of a model
    without wrappers (a blend, a baseline), its ``Dense`` kernels."""
    wrapped = collect_prunable_layers(model)
    if not wrapped:
        return [(layer.name, layer.kernel.numpy()) for layer in model.layers
                if isinstance(layer, keras.layers.Dense)]
    return [(layer.layer.name, weight.numpy())
            for layer in wrapped for weight, _, _ in layer.pruning_vars]


def measure_sparsity(model):
    """Sparsity figures of a pruning-wrapped model's kernels and weights."""
    layers = pruned_layers(model)
    params = [w.numpy() for w in model.trainable_weights]
    return {
        "sparsity": metrics.zero_fraction([kernel for _, kernel in layers]),
        "nonzero_weights": metrics.nonzero_count(params),
        "layers": [{"name": name, "sparsity": metrics.zero_fraction([kernel])}
                   for name, kernel in layers],
    }


# Pruned layers whose kernel weights each take part in one multiply-add per
# output position (the output's shape without its batch and channel axes).
_PER_POSITION = ("Dense", "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv2D")


def count_macs(model):
    """Multiply-adds per row of a pruning-wrapped model's pruned kernels.

    Each kernel weight is one multiply-add per output position of its layer
    (one for a ``Dense`` layer on flat rows). Biases, activations and
    unpruned layers are not counted.

    Returns:
        ``{"macs": ..., "dense_macs": ...}``: ``macs`` counts the nonzero
        weights only (the work of a sparse computation, as ``model.c``
        does it), ``dense_macs`` every weight (as TFLite and TFLM compute
        a kernel); both ``None`` when a pruned layer is not a ``Dense`` or
        convolution layer.
    """
    macs = dense = 0
    for wrapper in collect_prunable_layers(model):
        if not wrapper.pruning_vars:  # A layer without weights to prune (ReLU).
            continue
        if type(wrapper.layer).__name__ not in _PER_POSITION:
            return {"macs": None, "dense_macs": None}
        positions = int(np.prod(wrapper.output.shape[1:-1], dtype=np.int64))
        kernel = wrapper.layer.kernel.numpy()
        macs += positions * int(np.count_nonzero(kernel))
        dense += positions * int(kernel.size)
    return {"macs": macs, "dense_macs": dense}


def model_mse(model, x, y, target_scale=1.0):
    """MSE of a Keras model's predictions for ``x`` against ``y`` (see ``mse``)."""
    return mse(model.predict(x, verbose=0), y, target_scale)


def trial_tflite_bytes(pruned_model, input_scale, target_scale, input_shape=None):
    """Bytes of a trial's ``sparse_float32`` TFLite model, checked in LiteRT.

    This variant is exact and always loads, so the file an export chooses by
    bytes (the smallest that qualifies) is never larger. ``input_shape`` is
    the shape of one raw row (``(len(input_scale),)`` by default).

    Raises:
        RuntimeError: The converted model does not run in LiteRT.
    """
    model = scaled_model(pruned_model, input_scale, target_scale, input_shape)
    with _saved_model(model) as folder:
        return _checked_bytes(folder, model.input_shape[1:])


def trial_files(pruned_model, data, ram_variants=()):
    """A trial's ``trial_tflite_bytes`` and, from the same SavedModel, the
    ``.tflite`` of each of ``ram_variants`` as the export converts it (the
    full-integer one calibrated on the same rows), for ``tflm.smallest_of``.

    Args:
        pruned_model: The trial's pruning-wrapped model.
        data: The search's ``search_data.SearchData``.
        ram_variants: Names of dense ``tflite.VARIANTS`` (``metrics.RAM_VARIANTS``),
            under ``--max-ram``; none otherwise.

    Returns:
        ``(bytes, {variant name: .tflite bytes})``.

    Raises:
        RuntimeError: The ``sparse_float32`` model does not run in LiteRT.
    """
    model = scaled_model(pruned_model, 1.0 / data.x_scale, data.y_scale, data.input_shape)
    with _saved_model(model) as folder:
        size = _checked_bytes(folder, model.input_shape[1:])
        contents = {name: tflite.convert(folder, _variant(name), data.x_calibration)
                    for name in ram_variants}
    return size, contents


def _checked_bytes(folder, row_shape):
    content = tflite.convert(folder, _variant(TRIAL_VARIANT))
    tflite.predict(content, np.zeros((1, *row_shape), np.float32))
    return len(content)


@contextlib.contextmanager
def _saved_model(model):
    with tempfile.TemporaryDirectory() as folder:
        with contextlib.redirect_stdout(io.StringIO()):
            model.export(folder)
        yield folder


def _variant(name):
    return next(v for v in tflite.VARIANTS if v.name == name)
