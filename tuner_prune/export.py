"""Export of a trained pruned model: SavedModel, verified TFLite, manifest.

Everything is written into a temporary folder beside the target and swapped
in only when complete, so an interrupted export leaves the previous one intact.
"""

import contextlib
import io
import json
import os
import shutil
import tempfile

import numpy as np

from tuner_prune import sizes, tflite
from tuner_prune._keras import keras, sparsity
from tuner_prune.tuner import measure_sparsity

MANIFEST = "manifest.json"
SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"


class Scale(keras.layers.Layer):
    """Multiplies its input by a fixed vector (the baked-in data scaling)."""

    def __init__(self, factor, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.factor_value = np.asarray(factor, np.float32).reshape(-1)

    def build(self, input_shape):
        self.factor = self.add_weight(
            name="factor", shape=self.factor_value.shape, trainable=False,
            initializer=keras.initializers.Constant(self.factor_value))
        super().build(input_shape)

    def call(self, inputs):
        return inputs * self.factor


def serving_model(pruned_model, dataset):
    """Stripped model that takes raw features and predicts in target units."""
    stripped = sparsity.strip_pruning(pruned_model)
    features = keras.Input(shape=(dataset.n_features,), name="features")
    scaled = Scale(1.0 / dataset.x_scale, name="scale_features")(features)
    prediction = Scale([dataset.y_scale], name="scale_target")(stripped(scaled))
    return keras.Model(features, prediction, name="tuner_prune_model")


def mse(prediction, target):
    return float(np.mean((np.reshape(prediction, -1) - target) ** 2))


def export_model(pruned_model, dataset, export_dir, *, hyperparameters, val_mse,
                 total_steps, extra=None, max_mse_increase=0.05, size_metric="bytes"):
    """Writes ``saved_model/``, ``model.tflite`` and ``manifest.json``.

    Args:
        pruned_model: The pruning-wrapped model with its scored weights.
        dataset: The ``Dataset`` the model was trained on (scaling, test split).
        export_dir: Target folder; replaced only when the export is complete.
        hyperparameters: The four schedule values of the trial.
        val_mse: The trial's validation MSE (target units).
        total_steps: Training steps of the trial.
        extra: More manifest fields.
        max_mse_increase: Tolerance of a TFLite variant's test MSE over the
            Keras model's.
        size_metric: ``"bytes"`` or ``"gzip_bytes"``: what "smallest" means.

    Returns:
        The manifest as a dict.
    """
    model = serving_model(pruned_model, dataset)
    x_test = dataset.x_test.astype(np.float32)
    figures = measure_sparsity(pruned_model)
    manifest = {
        "best_hyperparameters": hyperparameters,
        "total_steps": total_steps,
        "val_mse": val_mse,
        "test_mse": mse(model.predict(x_test, verbose=0), dataset.y_test),
        **figures,
        **(extra or {}),
    }
    with _staging(export_dir) as staging:
        manifest.update(_write_artifacts(model, x_test, dataset.y_test, staging,
                                         manifest["test_mse"], max_mse_increase,
                                         size_metric))
        with open(os.path.join(staging, MANIFEST), "w", encoding="utf-8") as handle:
            json.dump(manifest, handle, indent=2)
    return manifest


def _write_artifacts(model, x_test, y_test, staging, keras_mse, max_mse_increase,
                     size_metric):
    saved_model_dir = os.path.join(staging, SAVED_MODEL)
    with contextlib.redirect_stdout(io.StringIO()):  # export() prints its signature.
        model.export(saved_model_dir)
    found = tflite.candidates(saved_model_dir, x_test, y_test)
    chosen = tflite.choose(found, keras_mse, max_mse_increase, size_metric)
    tflite.write(chosen, os.path.join(staging, TFLITE))
    dense = next(c for c in found if c.name == "float32")
    return {
        "saved_model": {"path": SAVED_MODEL, "bytes": _tree_bytes(saved_model_dir)},
        "tflite": {"path": TFLITE, "variant": chosen.name, "bytes": chosen.bytes,
                   "gzip_bytes": chosen.gzip_bytes, "test_mse": chosen.test_mse},
        "dense_tflite_bytes": dense.bytes,
        "candidates": [c.summary() for c in found],
    }


def _tree_bytes(folder):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(folder) for name in names)


@contextlib.contextmanager
def _staging(export_dir):
    """A temporary folder beside ``export_dir`` swapped in on success."""
    target = os.path.abspath(export_dir)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    prefix = f".{os.path.basename(target)}.partial-"
    _remove_abandoned(parent, prefix)
    staging = tempfile.mkdtemp(prefix=f"{prefix}{os.getpid()}-", dir=parent)
    try:
        yield staging
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _remove_abandoned(parent, prefix):
    """Removes staging folders left by exports whose process was killed."""
    for name in os.listdir(parent):
        pid = name[len(prefix):].split("-")[0]
        if name.startswith(prefix) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(os.path.join(parent, name), ignore_errors=True)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # Someone else's process.
        return True
    return True


def _swap_in(staging, target):
    _keep_ignore_file(target, staging)
    retired = None
    if os.path.exists(target):
        retired = tempfile.mkdtemp(prefix=".old-export-", dir=os.path.dirname(target))
        os.rename(target, os.path.join(retired, "export"))
    os.rename(staging, target)
    if retired:
        shutil.rmtree(retired, ignore_errors=True)


def _keep_ignore_file(target, staging):
    ignore = os.path.join(target, ".gitignore")
    if os.path.isfile(ignore):
        shutil.copy(ignore, os.path.join(staging, ".gitignore"))
