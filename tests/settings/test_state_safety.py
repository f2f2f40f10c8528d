"""Folders and search state: checked where files really go, removed or resumed
only when tuner_prune wrote them, and named when damaged."""

import contextlib
import dataclasses
import json
import os
import shutil
import subprocess

import pytest

from conftest import QUICK, TINY, refusal, run_main
from test_bad_input import tree
from tuner_prune.settings import stored_search
from tuner_prune.settings import config as config_lib, plan as plan_lib
from tuner_prune.core.errors import InputError

SMALL = {"n_samples": 300, "n_features": 20, "n_informative": 10, "epochs": 2,
         "max_trials": 1, "batch_size": 64}
RESUME = ["search", *TINY, "--max-trials", "4", "--directory", "logs",
          "--export-dir", "export"]
EXPORT = ["export", "--directory", "logs", "--export-dir", "export"]
REPORT = ["report", "--directory", "logs"]


@contextlib.contextmanager
def read_only(folder):
    """Keeps ``folder``'s own entries from changing: mode 555, or ``chattr +i`` as root.

    Root ignores permission bits; the immutable flag stops it too, where the
    filesystem has one (else the test is skipped).
    """
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        try:
            yield
        finally:
            os.chmod(folder, 0o755)
        return
    if shutil.which("chattr") is None or subprocess.run(
            ["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("root ignores permission bits, and chattr +i does not work here")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(folder)], check=True)


def small_config(tmp_path, **settings):
    folders = {"directory": str(tmp_path / "logs"), "export_dir": str(tmp_path / "export")}
    return config_lib.SearchConfig(**SMALL, **{**folders, **settings})


def test_overwrite_refuses_a_folder_tuner_prune_did_not_write(tmp_path):
    notes = tmp_path / "proj" / "search" / "notes.md"
    keep = tmp_path / "proj" / "tensorboard" / "search" / "keep.txt"
    for path in (notes, keep):
        path.parent.mkdir(parents=True)
        path.write_text("the user's")
    before = tree(tmp_path)
    line = refusal(run_main("search", *QUICK, "--directory", "proj", "--export-dir",
                            "export", "--overwrite", cwd=tmp_path))
    assert line.startswith("tuner_prune: error: proj: Expected --overwrite on a search "
                           "tuner_prune stored (tuner_prune.json) or on no search, "
                           "received proj/search, proj/tensorboard/search without "
                           "tuner_prune.json"), line
    assert tree(tmp_path) == before


def test_overwrite_starts_over_a_stored_search_or_an_empty_folder(tmp_path):
    config = small_config(tmp_path, overwrite=True)
    (tmp_path / "logs" / "search").mkdir(parents=True)
    plan = plan_lib.resolve_search(config)
    stored_search.store(config, plan.dataset.fingerprint())
    (tmp_path / "logs" / "search" / "oracle.json").write_text("{")  # Discarded anyway.
    assert unchanged(plan_lib.resolve_search(config).config, config)


def test_a_writable_directory_in_a_read_only_parent_is_accepted(tmp_path):
    (tmp_path / "scratch" / "me").mkdir(parents=True)
    config = small_config(tmp_path, directory=str(tmp_path / "scratch" / "me"))
    with read_only(tmp_path / "scratch"):
        assert unchanged(plan_lib.resolve_search(config).config, config)


def unchanged(resolved, config):
    """Whether a plan's config is ``config`` but for the width derived from the data."""
    return dataclasses.replace(resolved, widest_units=None) == config


def test_an_export_dir_linked_into_a_read_only_folder_is_refused(tmp_path):
    (tmp_path / "locked" / "export").mkdir(parents=True)
    (tmp_path / "export").symlink_to(tmp_path / "locked" / "export")
    before = tree(tmp_path)
    with read_only(tmp_path / "locked"):
        line = refusal(run_main("search", *QUICK, "--directory", "logs", "--export-dir",
                                "export", cwd=tmp_path))
    locked = os.path.realpath(tmp_path / "locked")
    assert line.startswith(f"tuner_prune: error: Expected --export-dir to be writable, "
                           f"received export ({locked}: "), line
    assert tree(tmp_path) == before


@pytest.mark.parametrize("tuner_id", ["../../victim.txt", "a/b", "..", ".", ""])
def test_a_tuner_id_is_a_name_not_a_path(tuner_id):
    with pytest.raises(InputError, match=r"Expected --tuner-id to be a name \(no path "
                                         r"separator, not \. or \.\.\), received"):
        config_lib.SearchConfig(tuner_id=tuner_id)
    assert config_lib.SearchConfig(tuner_id="worker-0.1").tuner_id == "worker-0.1"


def test_a_tuner_id_path_is_refused_by_the_cli(tmp_path):
    (tmp_path / "victim.txt").write_text("kept")
    (tmp_path / "run").mkdir()
    line = refusal(run_main("search", *QUICK, "--tuner-id", "../victim.txt",
                            cwd=tmp_path / "run"))
    assert line == ("tuner_prune: error: Expected --tuner-id to be a name (no path "
                    "separator, not . or ..), received '../victim.txt'.")
    assert sorted(os.listdir(tmp_path)) == ["run", "victim.txt"]
    assert os.listdir(tmp_path / "run") == []
    assert (tmp_path / "victim.txt").read_text() == "kept"


def copy_search(tiny_search, tmp_path):
    """A copy of the tiny search's ``logs`` in ``tmp_path``, and its best trial's folder."""
    shutil.copytree(tiny_search["logs"], tmp_path / "logs")
    best = tiny_search["manifest"]["trial_id"]
    return tmp_path / "logs", tmp_path / "logs" / "search" / f"trial_{best}"


def test_trials_without_their_settings_are_neither_resumed_nor_read(tiny_search,
                                                                    tmp_path):
    logs, _ = copy_search(tiny_search, tmp_path)
    os.remove(logs / "tuner_prune.json")
    before = tree(tmp_path)
    for argv in (RESUME, EXPORT, REPORT):
        line = refusal(run_main(*argv, cwd=tmp_path))
        assert "tuner_prune.json" in line and "logs" in line, line
    assert tree(tmp_path) == before


def test_a_search_without_its_baseline_is_reported_and_exported_without_one(tiny_search,
                                                                            tmp_path):
    logs, _ = copy_search(tiny_search, tmp_path)
    os.remove(logs / "baseline.json")
    report = run_main(*REPORT, cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    assert report.stdout.endswith("Baseline: none stored with the search (baseline.json)\n")
    exported = run_main(*EXPORT, "--quantization", "none", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    assert "Baseline:" not in exported.stdout
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["baseline"] is None and not (logs / "baseline.json").exists()


DAMAGED = {  # file: (content, commands that read it, what the line says of it)
    "search/trial_0/trial.json": ('{"trial_id": "0", "hyper', (RESUME, EXPORT, REPORT),
                                  "Expected a keras-tuner trial, received a file that "
                                  "cannot be read (Unterminated string"),
    "search/oracle.json": ("", (RESUME, EXPORT),
                           "Expected the state of a keras-tuner oracle, received a file "
                           "that cannot be read (Expecting value: line 1 column 1"),
    "tuner_prune.json": ("{}", (RESUME, EXPORT, REPORT),
                         "Expected the settings of a tuner_prune search, received JSON "
                         "without config."),
}


@pytest.mark.parametrize("name,content,commands,message",
                         [(name, *case) for name, case in DAMAGED.items()],
                         ids=DAMAGED.keys())
def test_a_damaged_state_file_is_named(tiny_search, tmp_path, name, content, commands,
                                       message):
    logs, _ = copy_search(tiny_search, tmp_path)
    (logs / name).write_text(content)
    before = tree(tmp_path)
    for argv in commands:
        line = refusal(run_main(*argv, cwd=tmp_path))
        assert line.startswith(f"tuner_prune: error: logs/{name}: {message}"), line
    assert tree(tmp_path) == before


@pytest.mark.parametrize("weights,received", [
    (None, "no such file."),
    (b"", "a file that cannot be read (Unable to synchronously open file (file "
          "signature not found))."),
], ids=["deleted", "emptied"])
def test_damaged_weights_are_named(tiny_search, tmp_path, weights, received):
    _, best = copy_search(tiny_search, tmp_path)
    os.remove(best / "weights.h5")
    if weights is not None:
        (best / "weights.h5").write_bytes(weights)
    line = refusal(run_main(*EXPORT, cwd=tmp_path))
    trial = tiny_search["manifest"]["trial_id"]
    assert line == (f"tuner_prune: error: logs/search/trial_{trial}/weights.h5: Expected "
                    f"the weights of trial {trial} (HDF5), received {received}")
    assert not (tmp_path / "export").exists()


def test_report_and_export_agree_on_the_best_without_its_record(tiny_search, tmp_path):
    _, best = copy_search(tiny_search, tmp_path)
    os.remove(best / "record.json")
    report = run_main(*REPORT, "--format", "json", cwd=tmp_path)
    assert report.returncode == 0, report.stderr[-3000:]
    exported = run_main(*EXPORT, "--quantization", "none", cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr[-3000:]
    with open(tmp_path / "export" / "manifest.json", encoding="utf-8") as handle:
        shipped = json.load(handle)["trial_id"]
    assert json.loads(report.stdout)["best"] == shipped == tiny_search["manifest"][
        "trial_id"]


@pytest.mark.parametrize("key, value, expected", [
    ("max_bytes", "2000", 'Expected "max_bytes" to be a whole number or null, '
                          'received "2000".'),
    ("epochs", "4", 'Expected "epochs" to be a whole number or null, received "4".'),
    ("epochs", 0, 'Expected stored settings a search accepts, received "epochs" 0: '
                  'Expected --epochs >= 1, received 0.')])
def test_hand_edited_settings_are_refused_naming_the_file_and_key(tiny_search, tmp_path,
                                                                  key, value, expected):
    shutil.copytree(tiny_search["logs"], tmp_path / "logs", symlinks=True)
    path = tmp_path / "logs" / stored_search.CONFIG_FILE
    stored = json.loads(path.read_text())
    stored["config"][key] = value
    path.write_text(json.dumps(stored))
    before = tree(tmp_path)
    for command in (REPORT, EXPORT):
        line = refusal(run_main(*command, cwd=tmp_path))
        assert line == f"tuner_prune: error: {os.path.join('logs', 'tuner_prune.json')}: " \
                       f"{expected}", line
    assert tree(tmp_path) == before


@pytest.mark.parametrize("key, value, expected", [
    ("features", "8", 'Expected "data" "features" to be a whole number or a list of them, '
                      'received "8".'),
    ("rows", "x", 'Expected "data" "rows" to be a list of 3 whole numbers, received "x".')])
def test_a_hand_edited_data_fingerprint_is_refused_naming_the_file_and_key(
        tmp_path, key, value, expected):
    """'received data with features 8 (the search has 8)' blamed the data, and
    `report` accepted the file."""
    path = tmp_path / stored_search.CONFIG_FILE
    config = config_lib.SearchConfig(directory=str(tmp_path))
    stored_search.store(config, {"source": "d.csv", "rows": [8, 1, 1], "features": 8,
                                 "columns": None, "sha256": "0" * 64})
    assert stored_search.load_stored(str(tmp_path))["data"]["features"] == 8
    stored = json.loads(path.read_text())
    stored["data"][key] = value
    path.write_text(json.dumps(stored))
    with pytest.raises(stored_search.InputError) as refused:
        stored_search.load_stored(str(tmp_path))
    assert str(refused.value) == f"{path}: {expected}"


def test_an_export_of_changed_data_does_not_advise_a_flag_export_lacks(tmp_path):
    """export has no --overwrite; the line said to add it."""
    config = config_lib.SearchConfig(directory=str(tmp_path), data="d.csv")
    fingerprint = {"source": "d.csv", "rows": [8, 1, 1], "features": 8, "columns": None,
                   "sha256": "0" * 64}
    stored_search.store(config, fingerprint)
    with pytest.raises(stored_search.InputError) as refused:
        stored_search.check_resumable(config, {**fingerprint, "sha256": "1" * 64},
                                      reading=True)
    assert "--overwrite" not in str(refused.value)
    assert str(refused.value).endswith(
        "An export reads the search's --data file again (d.csv): restore it as the search "
        "read it, or run the search again.")
