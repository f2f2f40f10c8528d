"""The keras-tuner user's API, as the README's snippet writes it, on raw data.

Real training, real LiteRT: a tiny search (2 trials, 3 epochs) on raw arrays
whose features differ in scale by eight orders of magnitude and whose target
is in the thousands, so that a model that skipped the scaling, or an MSE left
in scaled units, is off by far more than any tolerance here.
"""

import contextlib
import io
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from conftest import cli_env, run_main
from tuner_prune import PruningHyperModel, PruningTuner
from tuner_prune.core._keras import keras, sparsity
from tuner_prune.tuning.callbacks import ScoreAtFinalSparsity
from tuner_prune.core.errors import InputError

FEATURE_SCALES = np.array([1e-3, 1.0, 1e3, 1e5], np.float32)


def make_data(rows, seed):
    """Raw rows of very different scales and a target around 5000."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, 4)).astype(np.float32) * FEATURE_SCALES
    y = 5000 + 800 * (x / FEATURE_SCALES) @ np.array([1.0, -0.5, 0.25, 0.75])
    return x, y.astype(np.float32)


def build(hp):
    units = hp.Choice("units", [8, 16])
    return keras.Sequential([keras.layers.Dense(units, activation="relu"),
                             keras.layers.Dense(1)])


@pytest.fixture(scope="module")
def snippet(tmp_path_factory):
    """The snippet as written, run in a fresh folder; its names and data."""
    root = tmp_path_factory.mktemp("api")
    (x_train, y_train), (x_val, y_val) = make_data(400, 0), make_data(80, 1)
    x_test, y_test = make_data(80, 2)
    here = os.getcwd()
    os.chdir(root)
    try:
        hypermodel = PruningHyperModel(build)
        tuner = PruningTuner(hypermodel, max_trials=2, directory="logs",
                             project_name="mine")
        tuner.search(x_train, y_train, validation_data=(x_val, y_val), epochs=3,
                     batch_size=128)
        best = tuner.get_best_models(1)[0]
        manifest = tuner.export("export", test_data=(x_test, y_test))
    finally:
        os.chdir(here)
    return {"root": root, "tuner": tuner, "best": best, "manifest": manifest,
            "val": (x_val, y_val), "test": (x_test, y_test)}


def layer_types(model):
    return {type(layer).__name__ for layer in model.submodules}


def test_best_model_is_stripped_and_predicts_raw_rows_in_target_units(snippet):
    best, (x_val, y_val) = snippet["best"], snippet["val"]
    assert "PruneLowMagnitude" not in layer_types(best)
    assert "Dense" in layer_types(best)
    mse = float(np.mean((best.predict(x_val, verbose=0).reshape(-1) - y_val) ** 2))
    assert mse == pytest.approx(snippet["manifest"]["val_mse"], rel=1e-4)
    trial = snippet["tuner"].best_trial()
    assert mse == pytest.approx(trial.metrics.get_last_value("val_mse"), rel=1e-3)
    assert mse > 1e3  # In target units: on targets scaled into [-1, 1] it would be < 4.


def test_export_writes_the_files_the_cli_writes(snippet):
    export = snippet["root"] / "export"
    manifest = snippet["manifest"]
    assert {"manifest.json", "model.tflite", "saved_model"} <= set(os.listdir(export))
    with open(export / "manifest.json", encoding="utf-8") as handle:
        assert json.load(handle)["val_mse"] == pytest.approx(manifest["val_mse"])
    assert manifest["test_split"] == {"rows": 80}
    assert np.isfinite(manifest["test_mse"]) and np.isfinite(manifest["tflite"]["test_mse"])
    # Searched without a test split: the baseline's test MSE is measured at export.
    assert manifest["baseline"]["kind"] == "ridge"
    assert np.isfinite(manifest["baseline"]["test_mse"])
    assert manifest["total_steps"] == 3 * 4  # 400 rows / 128 = 4 steps per epoch.


def test_export_without_test_data_says_so(snippet, tmp_path, monkeypatch):
    from tuner_prune.cli import print_summary

    monkeypatch.chdir(snippet["root"])  # The tuner's directory is "logs".
    manifest = snippet["tuner"].export(str(tmp_path / "export"))
    assert manifest["test_split"] is None
    assert manifest["test_mse"] is None and manifest["tflite"]["test_mse"] is None
    assert all(row["test_mse"] is None for row in manifest["candidates"])
    assert manifest["baseline"]["test_mse"] is None
    shown = io.StringIO()
    with contextlib.redirect_stdout(shown):
        print_summary(manifest, "export")
    assert "test_mse none" in shown.getvalue()


@pytest.mark.slow
def test_a_reloaded_tuner_in_a_new_process_predicts_and_exports(snippet):
    x_val, y_val = snippet["val"]
    np.savez(snippet["root"] / "val.npz", x=x_val, y=y_val)
    code = textwrap.dedent("""
        import json, numpy as np
        from tuner_prune import PruningHyperModel, PruningTuner
        from tuner_prune.core._keras import keras

        def build(hp):
            units = hp.Choice("units", [8, 16])
            return keras.Sequential([keras.layers.Dense(units, activation="relu"),
                                     keras.layers.Dense(1)])

        tuner = PruningTuner(PruningHyperModel(build), max_trials=2, directory="logs",
                             project_name="mine", verbose=False)
        data = np.load("val.npz")
        best = tuner.get_best_models(1)[0]
        mse = float(np.mean((best.predict(data["x"], verbose=0).reshape(-1)
                             - data["y"]) ** 2))
        manifest = tuner.export("export_again")
        print(json.dumps({"mse": mse, "val_mse": manifest["val_mse"]}))
    """)
    result = subprocess.run([sys.executable, "-c", code], cwd=snippet["root"],
                            capture_output=True, text=True, timeout=600, env=cli_env())
    assert result.returncode == 0, result.stderr[-3000:]
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["mse"] == pytest.approx(snippet["manifest"]["val_mse"], rel=1e-4)
    assert found["val_mse"] == pytest.approx(snippet["manifest"]["val_mse"], rel=1e-6)


def test_a_stored_search_refuses_other_epochs(snippet):
    root = snippet["root"]
    tuner = PruningTuner(PruningHyperModel(build), max_trials=2,
                         directory=str(root / "logs"), project_name="mine", verbose=False)
    with pytest.raises(InputError, match=r"Expected the settings and data of the search "
                                         r"stored there, received epochs 4 \(the search "
                                         r"has 3\)"):
        tuner.search(*make_data(400, 0), validation_data=snippet["val"], epochs=4,
                     batch_size=128)


class RecordingHyperModel(PruningHyperModel):
    """Trains through ``model.fit`` but returns nothing, and records its call."""

    calls = []

    def fit(self, hp, model, *args, **kwargs):
        self.calls.append(kwargs)
        model.fit(*args, **kwargs)
        return None


def test_a_hypermodel_fit_override_is_called_with_the_tuners_callbacks(tmp_path):
    (x, y), validation = make_data(300, 3), make_data(60, 4)
    tuner = PruningTuner(RecordingHyperModel(build), max_trials=1,
                         directory=str(tmp_path), verbose=False)
    tuner.search(x, y, validation_data=validation, epochs=3, batch_size=100)
    [kwargs] = RecordingHyperModel.calls
    assert (kwargs["epochs"], kwargs["batch_size"]) == (3, 100)
    kinds = [type(callback) for callback in kwargs["callbacks"]]
    assert sparsity.UpdatePruningStep in kinds and ScoreAtFinalSparsity in kinds
    trial = tuner.best_trial()  # Scored from the callback, not from a History.
    assert trial is not None and np.isfinite(trial.metrics.get_last_value("val_mse"))


@pytest.mark.parametrize("epochs, batch_size, flags", [
    (0, 128, ["--epochs", "0"]),
    (3, 0, ["--batch-size", "0"]),
    (1, 128, ["--epochs", "1", "--batch-size", "128"]),  # 2 steps: no room to prune.
])
def test_bad_epochs_or_batch_size_get_the_clis_message(tmp_path, epochs, batch_size,
                                                       flags):
    # The CLI's built-in data of 300 rows leave 240 training rows.
    x, y = make_data(240, 5)
    tuner = PruningTuner(PruningHyperModel(build), max_trials=1,
                         directory=str(tmp_path / "api"), verbose=False)
    with pytest.raises(InputError) as refused:
        tuner.search(x, y, validation_data=make_data(30, 6), epochs=epochs,
                     batch_size=batch_size)
    result = run_main("search", "--n-samples", "300", "--n-features", "4",
                      "--n-informative", "4", *flags, "--directory",
                      str(tmp_path / "logs"), "--export-dir", str(tmp_path / "export"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"tuner_prune: error: {refused.value}"


@pytest.mark.parametrize("kwargs, message", [
    ({"validation_data": (np.ones((20, 3), np.float32), np.ones(20, np.float32))},
     r"Expected validation_data rows of the training rows' shape \(4,\), received rows "
     r"of shape \(3,\)\."),
])
def test_refused_search_arguments_say_why_in_one_line(tmp_path, kwargs, message):
    tuner = PruningTuner(PruningHyperModel(build), max_trials=1, directory=str(tmp_path),
                         verbose=False)
    arguments = {"validation_data": make_data(20, 1), "epochs": 3, **kwargs}
    with pytest.raises(InputError, match=message):
        tuner.search(*make_data(100, 0), **arguments)
