"""All-or-nothing folder replacement, Keras-free."""

import os
import subprocess
import sys

import pytest

from tuner_prune import staging


def write(folder, name, text):
    with open(os.path.join(folder, name), "w", encoding="utf-8") as handle:
        handle.write(text)


def read(folder, name):
    with open(os.path.join(folder, name), encoding="utf-8") as handle:
        return handle.read()


def dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_success_replaces_the_folder_and_keeps_gitignore(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    write(target, "old.txt", "old")
    write(target, ".gitignore", "*\n")
    with staging.staged_folder(target) as folder:
        write(folder, "new.txt", "new")
        assert not (target / "new.txt").exists()
    assert sorted(os.listdir(target)) == [".gitignore", "new.txt"]
    assert read(target, ".gitignore") == "*\n"
    assert os.listdir(tmp_path) == ["export"]


def test_failure_leaves_the_previous_folder_and_no_staging(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    write(target, "old.txt", "old")
    with pytest.raises(RuntimeError, match="half way"):
        with staging.staged_folder(target) as folder:
            write(folder, "new.txt", "new")
            raise RuntimeError("half way")
    assert os.listdir(target) == ["old.txt"]
    assert os.listdir(tmp_path) == ["export"]


def test_leftovers_of_a_dead_process_are_removed(tmp_path):
    target = tmp_path / "export"
    target.mkdir()
    write(target, "current.txt", "current")
    stale = tmp_path / f".export.{staging.STAGING}-{dead_pid()}-abc"
    stale.mkdir()
    live = tmp_path / f".export.{staging.STAGING}-{os.getpid()}-abc"
    live.mkdir()
    staging.recover(target)
    assert not stale.exists()
    assert live.exists()  # Another export of this process may be writing it.
    assert os.listdir(target) == ["current.txt"]


def test_previous_folder_comes_back_after_a_death_between_renames(tmp_path):
    target = tmp_path / "export"
    retired = tmp_path / f".export.{staging.RETIRED}-{dead_pid()}-abc"
    (retired / "export").mkdir(parents=True)
    write(retired / "export", "previous.txt", "previous")
    staging.recover(target)
    assert read(target, "previous.txt") == "previous"
    assert not retired.exists()
