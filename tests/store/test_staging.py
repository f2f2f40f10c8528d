"""Swapping an export's own files in, all or nothing, on real files (Keras-free)."""

import json
import os
import stat
import subprocess
import sys

import pytest

from conftest import REPO
from tuner_prune.store import ownership, staging
from tuner_prune.core.errors import InputError

USER_FILES = {"notes.txt": "the user's", ".gitignore": "*\n", "data/rows.csv": "a,y\n1,2\n"}
# Run in a child process: swaps a "new" export into TARGET and SIGKILLs itself
# just before its rename number LIMIT (counted over the whole swap).
DYING_SWAP = """
import os, signal, sys
sys.path.insert(0, {tests!r})
from test_staging import write_export
from tuner_prune.store import ownership, staging
renames, rename = [], os.rename
def dying_rename(source, destination):
    if len(renames) == {limit}:
        os.kill(os.getpid(), signal.SIGKILL)
    renames.append(source)
    rename(source, destination)
os.rename = dying_rename
with staging.staged_folder({target!r}, ownership.owned_entries, ownership.MANIFEST) as folder:
    write_export(folder, "new", micro=False)
"""
RENAMES = 8  # Out: the old manifest and 4 old entries; in: 2 new entries, the manifest.


def export_files(version, micro):
    """``{relative path: text}`` of an export-shaped folder, manifest aside."""
    files = {"model.tflite": version, "saved_model/saved_model.pb": version,
             "saved_model/variables/v.index": version}
    if micro:
        files.update({"model_data.cc": version, "model_data.h": version})
    return {os.path.normpath(name): text for name, text in files.items()}


def write_export(folder, version, micro):
    """Writes ``export_files`` and a manifest (with ``version``) naming them."""
    manifest = {"version": version, "saved_model": {"path": "saved_model"},
                "tflite": {"path": "model.tflite"},
                "micro": {"source": "model_data.cc", "header": "model_data.h"}
                if micro else None}
    write_files(folder, {**export_files(version, micro), "manifest.json": json.dumps(manifest)})


def write_files(folder, files):
    for name, text in files.items():
        path = os.path.join(folder, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)


def contents(folder):
    """``{relative path: text}`` of every file under ``folder``."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            with open(os.path.join(root, name), encoding="utf-8") as handle:
                found[os.path.relpath(os.path.join(root, name), folder)] = handle.read()
    return found


def split_manifest(found):
    """``(manifest version or None, the other files)`` of ``contents``."""
    others = dict(found)
    manifest = others.pop("manifest.json", None)
    return (json.loads(manifest)["version"] if manifest else None), others


def user_files():
    return {os.path.normpath(name): text for name, text in USER_FILES.items()}


def swap(target, version="new", micro=False):
    with staging.staged_folder(target, ownership.owned_entries, ownership.MANIFEST) as folder:
        write_export(folder, version, micro)


def previous_export(tmp_path):
    """``tmp/export``: an export with C++ files, and the user's files beside it."""
    target = tmp_path / "export"
    write_export(target, "old", micro=True)
    write_files(target, USER_FILES)
    return target


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_swap_replaces_only_the_previous_exports_files(tmp_path):
    target = previous_export(tmp_path)
    inode = target.stat().st_ino
    swap(target)
    version, others = split_manifest(contents(target))
    assert version == "new"
    assert others == {**export_files("new", micro=False), **user_files()}  # C++ files gone.
    assert target.stat().st_ino == inode  # The folder itself is never swapped.
    assert os.listdir(tmp_path) == ["export"]


def test_an_edited_manifest_cannot_claim_the_users_files(tmp_path):
    target = previous_export(tmp_path)
    manifest = json.loads((target / "manifest.json").read_text())
    manifest["tflite"]["path"] = "notes.txt"
    manifest["micro"] = {"source": "../outside.txt", "header": "data"}
    (target / "manifest.json").write_text(json.dumps(manifest))
    (tmp_path / "outside.txt").write_text("outside")
    assert ownership.owned_entries(target) == {"manifest.json", "saved_model"}
    with pytest.raises(InputError, match=r"Expected no model\.tflite but a previous export"):
        swap(target)  # The old model.tflite is no longer claimed: it is not replaced.
    (target / "model.tflite").unlink()
    swap(target)
    assert split_manifest(contents(target))[1] == {
        **export_files("new", micro=False), **user_files(),
        "model_data.cc": "old", "model_data.h": "old"}
    assert (tmp_path / "outside.txt").read_text() == "outside"


def test_a_clash_with_a_file_of_another_origin_changes_nothing(tmp_path):
    target = tmp_path / "export"
    write_files(target, {"model.tflite": "the user's own", **USER_FILES})
    before = contents(target)
    with pytest.raises(InputError, match=r"received model\.tflite of another origin"):
        swap(target)
    assert contents(target) == before
    assert os.listdir(tmp_path) == ["export"]


def test_failure_leaves_the_previous_export_and_no_staging(tmp_path):
    target = previous_export(tmp_path)
    before = contents(target)
    with pytest.raises(RuntimeError, match="half way"):
        with staging.staged_folder(target, ownership.owned_entries,
                                   ownership.MANIFEST) as folder:
            write_export(folder, "new", micro=False)
            raise RuntimeError("half way")
    assert contents(target) == before
    assert os.listdir(tmp_path) == ["export"]


def test_first_swap_creates_the_folder_with_the_umask_modes(tmp_path):
    previous = os.umask(0o022)
    try:
        with staging.staged_folder(tmp_path / "export", ownership.owned_entries,
                                   ownership.MANIFEST) as folder:
            staged_mode = stat.S_IMODE(os.stat(folder).st_mode)
            write_export(folder, "new", micro=False)
        staging.write_json(tmp_path / "state" / "state.json", {"a": 1})
    finally:
        os.umask(previous)
    assert staged_mode == 0o755
    assert stat.S_IMODE((tmp_path / "export").stat().st_mode) == 0o755
    assert stat.S_IMODE((tmp_path / "state" / "state.json").stat().st_mode) == 0o644
    assert os.listdir(tmp_path / "state") == ["state.json"]  # No temporary file left.


@pytest.mark.parametrize("limit", range(RENAMES + 1))
def test_a_swap_killed_at_any_rename_is_finished_by_the_next_one(tmp_path, limit):
    target = previous_export(tmp_path)
    script = DYING_SWAP.format(tests=os.path.dirname(os.path.abspath(__file__)), limit=limit,
                               target=str(target))
    child = subprocess.run([sys.executable, "-c", script], env={**os.environ,
                           "PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")])},
                           capture_output=True, text=True)
    dead = child.returncode == -9
    assert dead or limit == RENAMES, child.stderr
    version, others = split_manifest(contents(target))
    if version is not None:  # A reader never sees a manifest naming a missing file.
        expected = export_files(version, micro=version == "old")
        assert {n: t for n, t in others.items() if n in expected} == expected
    assert staging.pending(target) == ({"manifest.json", "model.tflite", "saved_model",
                                        "model_data.cc", "model_data.h"} if dead else set())
    staging.recover(target)
    version, others = split_manifest(contents(target))
    assert version == "new"
    assert others == {**export_files("new", micro=False), **user_files()}
    assert os.listdir(tmp_path) == ["export"]


def test_leftovers_of_a_dead_process_are_removed(tmp_path):
    target = previous_export(tmp_path)
    before = contents(target)
    stale = tmp_path / f".export.{staging.STAGING}-{dead_pid()}-abc"
    write_export(stale, "stale", micro=False)
    unjournaled = tmp_path / f".export.{staging.RETIRED}-{dead_pid()}-abc"
    unjournaled.mkdir()
    live = tmp_path / f".export.{staging.STAGING}-{os.getpid()}-abc"
    live.mkdir()
    staging.recover(target)
    assert not stale.exists() and not unjournaled.exists()
    assert live.exists()  # Another export of this process may be writing it.
    assert contents(target) == before


def test_a_target_that_is_a_file_when_the_swap_comes_leaves_no_staging_folder(tmp_path):
    target = tmp_path / "export"
    with pytest.raises(FileExistsError):
        with staging.staged_folder(str(target), ownership.owned_entries,
                                   ownership.MANIFEST) as folder:
            write_export(folder, "new", micro=False)
            target.write_text("the user's file, made while the export ran")
    assert os.listdir(tmp_path) == ["export"]
    assert target.read_text() == "the user's file, made while the export ran"
