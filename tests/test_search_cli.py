"""End to end: the real CLI runs a tiny search and exports the best trial."""

import json
import os

import numpy as np
import pytest

from conftest import TINY_UNITS
from tuner_prune.export import tflite
from tuner_prune.data.dataset import load_dataset


def tiny_dataset():
    return load_dataset(n_samples=300, n_features=20, n_informative=10, seed=1)


def test_search_prints_progress_and_summary(tiny_search):
    out = tiny_search["result"].stdout
    assert "Trial 0 (1 of 3)" in out and "Trial 2 (3 of 3)" in out
    assert "best so far" in out
    assert "Best trial" in out and "model.tflite" in out
    progress = [line for line in out.splitlines() if line.startswith("  Trial 2 epoch ")]
    assert [line.split(":")[0] for line in progress] == [
        f"  Trial 2 epoch {n}/6" for n in range(1, 7)]  # Off a terminal: plain lines.
    assert ", sparsity " in progress[-1] and progress[-1].endswith(" left")
    assert "\r" not in out
    assert "Traceback" not in tiny_search["result"].stderr


def test_manifest_holds_the_documented_fields(tiny_search):
    manifest = tiny_search["manifest"]
    for key in ("best_hyperparameters", "total_steps", "val_mse", "test_mse",
                "sparsity", "layers", "saved_model", "tflite", "dense_tflite_bytes"):
        assert key in manifest
    assert set(manifest["best_hyperparameters"]) == {
        "final_sparsity", "power", "begin_step", "end_step", "hidden_layers", "units",
        "kernel_initializer", "learning_rate"}
    for key in ("path", "bytes", "gzip_bytes", "val_mse", "test_mse"):
        assert key in manifest["tflite"]
    export = tiny_search["export"]
    assert os.path.getsize(export / manifest["tflite"]["path"]) == manifest["tflite"]["bytes"]
    assert (export / manifest["saved_model"]["path"] / "saved_model.pb").is_file()


def test_schedule_fits_and_final_sparsity_is_reached(tiny_search):
    manifest = tiny_search["manifest"]
    chosen = manifest["best_hyperparameters"]
    assert chosen["begin_step"] < chosen["end_step"] <= manifest["total_steps"]
    assert manifest["total_steps"] == 6 * 8  # 240 training rows / 32 = 8 steps
    assert abs(manifest["sparsity"] - chosen["final_sparsity"]) <= 0.01
    for layer in manifest["layers"]:
        assert abs(layer["sparsity"] - chosen["final_sparsity"]) <= 0.01


def test_every_completed_trial_reached_its_final_sparsity(tiny_search):
    trials = sorted((tiny_search["logs"] / "search").glob("trial_*/record.json"))
    assert len(trials) == 3
    for path in trials:
        record = json.loads(path.read_text())
        assert record["status"] == "COMPLETED"
        target = record["hyperparameters"]["final_sparsity"]
        assert abs(record["sparsity"] - target) <= 0.01, path


def test_tflite_runs_in_litert_within_tolerance(tiny_search):
    from ai_edge_litert import interpreter as litert

    from tuner_prune.export.tflite import predict

    manifest, data = tiny_search["manifest"], tiny_dataset()
    content = (tiny_search["export"] / "model.tflite").read_bytes()
    val_mse = float(np.mean((predict(content, data.x_val) - data.y_val) ** 2))
    test_mse = float(np.mean((predict(content, data.x_test) - data.y_test) ** 2))
    assert val_mse == pytest.approx(manifest["tflite"]["val_mse"], rel=1e-5)
    assert test_mse == pytest.approx(manifest["tflite"]["test_mse"], rel=1e-5)
    assert val_mse <= 1.05 * manifest["val_mse"]
    assert litert.Interpreter(model_content=content) is not None


def test_every_candidate_is_measured_on_validation_and_chosen_on_it(tiny_search):
    manifest = tiny_search["manifest"]
    limit = manifest["val_mse"] * (1 + manifest["export_options"]["max_mse_increase"])
    rows = manifest["candidates"]
    assert [row["name"] for row in rows] == [v.name for v in tflite.VARIANTS]
    for row in rows:
        assert "val_mse" in row and "test_mse" in row, row
        measured = row["val_mse"] is not None
        assert measured == (row["test_mse"] is not None) == (row["error"] is None), row
        assert row["within_tolerance"] == (measured and row["val_mse"] <= limit), row
    chosen = [row for row in rows if row["chosen"]]
    assert [row["name"] for row in chosen] == [manifest["tflite"]["variant"]]
    assert chosen[0]["val_mse"] == manifest["tflite"]["val_mse"] <= limit
    assert chosen[0]["bytes"] == min(row["bytes"] for row in rows if row["within_tolerance"])


def test_keras_val_mse_is_the_exported_trials_recorded_score(tiny_search):
    manifest = tiny_search["manifest"]
    record = json.loads((tiny_search["logs"] / "search" / f"trial_{manifest['trial_id']}"
                         / "record.json").read_text())
    assert record["val_mse"] == record["score"]
    assert manifest["val_mse"] == pytest.approx(record["val_mse"], rel=1e-4)
    out = tiny_search["result"].stdout
    assert f"Keras: val_mse {manifest['val_mse']:.6g}" in out
    assert f"val_mse {record['val_mse']:.6g} | best so far" in out
    assert "score" not in out


def test_saved_model_agrees_with_manifest_and_keeps_sparsity(tiny_search):
    import tensorflow as tf

    manifest, data = tiny_search["manifest"], tiny_dataset()
    loaded = tf.saved_model.load(str(tiny_search["export"] / "saved_model"))
    serve = loaded.signatures["serving_default"]
    output = list(serve(tf.constant(data.x_test)).values())[0].numpy().reshape(-1)
    assert float(np.mean((output - data.y_test) ** 2)) == pytest.approx(
        manifest["test_mse"], rel=1e-4)
    kernels = [v.numpy() for v in loaded.variables if len(v.shape) == 2]
    assert len(kernels) == 3
    zeros = sum(int((k == 0).sum()) for k in kernels) / sum(k.size for k in kernels)
    assert abs(zeros - manifest["best_hyperparameters"]["final_sparsity"]) <= 0.01


def test_tflite_weights_keep_sparsity(tiny_search):
    from ai_edge_litert import interpreter as litert

    manifest = tiny_search["manifest"]
    # Reference kernels and every tensor kept: after one run, the square hidden
    # kernel is readable whether stored dense or decoded from a sparse encoding.
    runner = litert.Interpreter(
        model_path=str(tiny_search["export"] / "model.tflite"),
        experimental_op_resolver_type=litert.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        experimental_preserve_all_tensors=True)
    runner.allocate_tensors()
    features = runner.get_input_details()[0]
    runner.set_tensor(features["index"], np.zeros(features["shape"], features["dtype"]))
    runner.invoke()
    kernels = [runner.get_tensor(detail["index"]) for detail in runner.get_tensor_details()
               if tuple(detail["shape"]) == (TINY_UNITS, TINY_UNITS)
               and not detail["sparsity_parameters"]]
    assert kernels, manifest["tflite"]["variant"]
    final_sparsity = manifest["best_hyperparameters"]["final_sparsity"]
    for kernel in kernels:
        assert abs(float((kernel == 0).mean()) - final_sparsity) <= 0.01


def test_dense_size_is_reported_and_larger(tiny_search):
    manifest = tiny_search["manifest"]
    assert manifest["dense_tflite_bytes"] > manifest["tflite"]["bytes"]
