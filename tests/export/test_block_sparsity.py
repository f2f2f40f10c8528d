"""Block pruning gives a sparse int8 TFLite model that LiteRT loads and runs.

The input is 40 features wide, not a multiple of 16: the export pads the first
kernel to 48 inputs (``padding``).
"""

import json

import keras_tuner
import numpy as np
import pytest

from test_micro import decode_c_array
from tuner_prune.core._keras import keras, sparsity
from tuner_prune.settings.config import SearchConfig
from tuner_prune.data.dataset import load_dataset
from tuner_prune.export.exporter import export_model
from tuner_prune.tuning.hypermodel import PruningHyperModel
from tuner_prune.settings.plan import resolve_search
from tuner_prune.search import prepare
from tuner_prune.space.bounds import ScheduleSpace
from tuner_prune.export.tflite import predict
from tuner_prune.export.measure import pruned_layers

FEATURES, BATCH, EPOCHS = 40, 32, 6


def small_model(hp):
    return keras.Sequential([keras.Input(shape=(FEATURES,)), keras.layers.Dense(128),
                             keras.layers.ReLU(), keras.layers.Dense(1)])


@pytest.fixture(scope="module")
def block_export(tmp_path_factory):
    """A 16x1 block-pruned model at 90 % sparsity, trained and exported as int8."""
    keras.utils.set_random_seed(0)
    data = load_dataset(n_samples=400, n_features=FEATURES, n_informative=16, seed=2)
    hypermodel = PruningHyperModel(
        small_model, n_features=FEATURES, epochs=EPOCHS, steps_per_epoch=10,
        space=ScheduleSpace.from_text(final_sparsity="0.9", power="3", begin_step="5",
                                      end_step="45"),
        block_size=(16, 1))
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    model.fit(*data.scaled("train"), batch_size=BATCH, epochs=EPOCHS, verbose=0,
              callbacks=[sparsity.UpdatePruningStep()])
    export = tmp_path_factory.mktemp("block") / "export"
    manifest = export_model(model, data, export, hyperparameters=hp.values,
                            total_steps=hypermodel.total_steps, max_mse_increase=0.5,
                            quantization="int8")
    return {"model": model, "data": data, "export": export, "manifest": manifest}


def test_kernels_are_pruned_in_runs_of_16_inputs(block_export):
    kernels = [kernel for _, kernel in pruned_layers(block_export["model"])]
    for kernel in kernels:
        for start in range(0, len(kernel), 16):  # The last block may be partial.
            block = kernel[start:start + 16] != 0
            assert (block.all(axis=0) | ~block.any(axis=0)).all()
    assert block_export["manifest"]["sparsity"] == pytest.approx(0.9, abs=0.02)


def test_sparse_int8_loads_and_is_the_smallest(block_export):
    manifest = block_export["manifest"]
    rows = {row["name"]: row for row in manifest["candidates"]}
    assert rows["sparse_int8"]["loaded"], rows["sparse_int8"]["error"]
    zeroed = sum(int((kernel == 0).sum()) for _, kernel in pruned_layers(block_export["model"]))
    # Almost all of the one byte per zeroed weight is saved.
    assert rows["sparse_int8"]["bytes"] < rows["int8"]["bytes"] - 0.8 * zeroed
    assert manifest["tflite"]["variant"] == "sparse_int8"
    first = block_export["model"].layers[0].layer.name
    assert manifest["block_padding"] == {first: [FEATURES, 48]}
    data = block_export["data"]
    content = (block_export["export"] / "model.tflite").read_bytes()
    tflite_mse = float(np.mean((predict(content, data.x_test) - data.y_test) ** 2))
    assert tflite_mse == pytest.approx(manifest["tflite"]["test_mse"], rel=1e-5)
    val_mse = float(np.mean((predict(content, data.x_val) - data.y_val) ** 2))
    assert val_mse <= 1.5 * manifest["val_mse"]


def test_micro_array_is_the_dense_int8_candidate(block_export):
    manifest, export = block_export["manifest"], block_export["export"]
    content, _ = decode_c_array((export / "model_data.cc").read_text())
    int8 = next(row for row in manifest["candidates"] if row["name"] == "int8")
    assert manifest["micro"]["variant"] == "int8"
    assert len(content) == int8["bytes"]
    data = block_export["data"]
    mse = float(np.mean((predict(content, data.x_test) - data.y_test) ** 2))
    assert mse == pytest.approx(int8["test_mse"], rel=1e-5)
    assert json.loads((export / "manifest.json").read_text())["micro"] == manifest["micro"]


def test_block_size_setting_reaches_the_hypermodel(tmp_path):
    config = SearchConfig(n_samples=100, n_features=8, n_informative=4, batch_size=16,
                          epochs=4, block_size="4x1", directory=str(tmp_path / "logs"),
                          export_dir=str(tmp_path / "export"))
    assert prepare(resolve_search(config)).block_size == (4, 1)
