"""`python -m tuner_prune export`: re-export without training, never half-written."""

import hashlib
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import REPO, run_cli, run_main
from test_micro import decode_c_array
from tuner_prune.store import records, staging
from tuner_prune.data.dataset import load_dataset
from tuner_prune.export.tflite import io_quantization, predict

TOLERANCE = 0.2  # Of the re-export; the tiny search's own export uses the 5 % default.
USER_FILES = {"notes.txt": b"the user's notes", ".gitignore": b"*\n"}  # Beside the export.


def tiny_dataset():
    return load_dataset(n_samples=300, n_features=20, n_informative=10, seed=1)


def snapshot(folder):
    """``{relative path: sha256}`` of every file under ``folder``."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def named_files(manifest):
    names = [manifest["saved_model"]["path"], manifest["tflite"]["path"]]
    if manifest["micro"]:
        names += [manifest["micro"]["source"], manifest["micro"]["header"]]
    if manifest["c"]["source"]:
        names += [manifest["c"]["source"], manifest["c"]["header"]]
    return names


def export_args(logs, export):
    return ["export", "--directory", str(logs), "--export-dir", str(export),
            "--quantization", "int8", "--max-mse-increase", str(TOLERANCE)]


def kill_midway(logs, export):
    """Starts an export and SIGKILLs it once it has written its SavedModel."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tuner_prune", *export_args(logs, export)],
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": REPO},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    prefix = f".{export.name}.{staging.STAGING}-{process.pid}-"
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline and process.poll() is None:
            staged = [entry for entry in os.listdir(export.parent) if entry.startswith(prefix)]
            if staged and (export.parent / staged[0] / "saved_model" / "saved_model.pb").exists():
                process.send_signal(signal.SIGKILL)
                process.wait()
                return export.parent / staged[0]
            time.sleep(0.02)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    pytest.fail(f"the export never reached its staging folder (exit status {process.returncode})")


def modes(folder):
    """``{relative path: permission bits}`` of ``folder`` and everything under it."""
    found = {".": stat.S_IMODE(os.stat(folder).st_mode)}
    for root, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = stat.S_IMODE(os.stat(path).st_mode)
    return found


def umask():
    current = os.umask(0o022)
    os.umask(current)
    return current


@pytest.fixture(scope="module")
def reexport(tiny_search, tmp_path_factory):
    """A copy of the tiny export with the user's files beside it, an export
    killed over it, then a finished one (run under umask 022)."""
    root = tmp_path_factory.mktemp("reexport")
    export = root / "export"
    shutil.copytree(tiny_search["export"], export)
    for name, content in USER_FILES.items():
        (export / name).write_bytes(content)
    trials_before = snapshot(tiny_search["logs"] / "search")
    before = snapshot(export)
    leftover = kill_midway(tiny_search["logs"], export)
    after_kill = {"files": snapshot(export), "leftover": leftover,
                  "leftover_existed": leftover.exists()}
    previous = os.umask(0o022)
    try:
        result = run_main(*export_args(tiny_search["logs"], export))
    finally:
        os.umask(previous)
    assert result.returncode == 0, result.stderr[-3000:]
    return {"export": export, "before": before, "after_kill": after_kill, "result": result,
            "manifest": json.loads((export / "manifest.json").read_text()),
            "trials_before": trials_before}


@pytest.mark.slow
def test_killed_export_leaves_the_previous_export_intact(reexport, tiny_search):
    killed = reexport["after_kill"]
    assert killed["leftover_existed"], "the export was not killed midway"
    assert killed["files"] == reexport["before"]
    for name in named_files(tiny_search["manifest"]):
        assert name in {path.split(os.sep)[0] for path in killed["files"]}


@pytest.mark.slow
def test_next_export_removes_what_the_killed_one_left(reexport):
    assert not reexport["after_kill"]["leftover"].exists()
    assert sorted(os.listdir(reexport["export"].parent)) == ["export"]


@pytest.mark.slow
def test_reexport_keeps_the_users_files_beside_the_export(reexport):
    export, manifest = reexport["export"], reexport["manifest"]
    for name, content in USER_FILES.items():
        assert (export / name).read_bytes() == content
    owned = {*named_files(manifest), "manifest.json", *USER_FILES}
    assert sorted(os.listdir(export)) == sorted(owned)  # The old C++ files, if any, went.


@pytest.mark.slow
def test_reexport_files_have_the_umasks_modes(reexport):
    export = reexport["export"]
    found = {path: mode for path, mode in modes(export).items()
             if path != "." and path not in USER_FILES}  # Those the export wrote.
    assert {"manifest.json", "model.tflite", "saved_model"} <= set(found)
    assert found == {path: 0o755 if (export / path).is_dir() else 0o644 for path in found}


def test_the_first_export_creates_its_folder_with_the_umasks_mode(tiny_search):
    assert modes(tiny_search["export"])["."] == 0o777 & ~umask()


@pytest.mark.slow
def test_reexport_reuses_the_trained_weights(reexport, tiny_search):
    manifest, original = reexport["manifest"], tiny_search["manifest"]
    assert snapshot(tiny_search["logs"] / "search") == reexport["trials_before"]
    assert manifest["trial_id"] == original["trial_id"]
    assert manifest["test_mse"] == pytest.approx(original["test_mse"], rel=1e-6)
    assert manifest["export_options"] == {"quantization": "int8", "size_metric": "bytes",
                                          "max_mse_increase": TOLERANCE, "max_bytes": None,
                                          "device": "phone", "max_flash": None,
                                          "max_ram": None}
    assert manifest["tflite"]["variant"] == "int8"
    assert "Best trial" in reexport["result"].stdout


@pytest.mark.parametrize("which", [
    "tiny_search", pytest.param("reexport", marks=pytest.mark.slow)])
def test_every_shipped_file_loads_and_matches_keras(which, request):
    export = request.getfixturevalue(which)["export"]
    manifest = json.loads((export / "manifest.json").read_text())
    data, limit = tiny_dataset(), manifest["val_mse"] * (
        1 + manifest["export_options"]["max_mse_increase"])
    for name in named_files(manifest):
        assert (export / name).exists(), name
    shipped = {"model.tflite": (export / "model.tflite").read_bytes()}
    if manifest["micro"]:
        shipped["model_data.cc"] = decode_c_array((export / "model_data.cc").read_text())[0]
    for name, content in shipped.items():
        tflite_mse = float(np.mean((predict(content, data.x_val) - data.y_val) ** 2))
        assert tflite_mse <= limit, name
    chosen = [row for row in manifest["candidates"] if row["chosen"]]
    assert [row["name"] for row in chosen] == [manifest["tflite"]["variant"]]
    assert chosen[0]["bytes"] == len(shipped["model.tflite"])


@pytest.mark.slow
def test_c_array_is_exactly_the_int8_candidate(reexport):
    export, manifest = reexport["export"], reexport["manifest"]
    content, length = decode_c_array((export / "model_data.cc").read_text())
    assert content == (export / "model.tflite").read_bytes()  # The int8 variant was chosen.
    int8 = next(row for row in manifest["candidates"] if row["name"] == "int8")
    assert length == len(content) == int8["bytes"] == manifest["micro"]["bytes"]
    quantization = io_quantization(content)
    assert quantization["input"]["dtype"] == quantization["output"]["dtype"] == "int8"
    header = (export / "model_data.h").read_text()
    assert f"kModelInputZeroPoint = {quantization['input']['zero_point']};" in header
    assert manifest["micro"]["input"] == quantization["input"]


def test_export_without_a_search_is_one_line_exit_2(tmp_path):
    result = run_cli("export", "--directory", str(tmp_path / "nothing"),
                     "--export-dir", str(tmp_path / "export"))
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("tuner_prune: error: Expected --directory to hold a search")
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "export").exists()


def test_glob_characters_in_the_folders_are_plain_characters(tmp_path):
    logs, export = tmp_path / "runs[1]" / "logs[a]", tmp_path / "runs[1]" / "models[v2]"
    result = run_main("search", "--n-samples", "200", "--n-features", "8",
                      "--n-informative", "4", "--epochs", "2", "--batch-size", "64",
                      "--max-trials", "1", "--directory", str(logs), "--export-dir",
                      str(export))
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((export / "manifest.json").read_text())
    assert not [row for row in manifest["candidates"]
                if (row["error"] or "").startswith("conversion failed")], manifest
    assert [row["status"] for row in records.read_trials(str(logs))] == ["COMPLETED"]
