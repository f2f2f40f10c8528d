"""Folders and names a search writes to: checked where the files really go."""

import contextlib
import os
import shutil
import subprocess

import pytest

from conftest import run_cli
from test_bad_input import tree
from tuner_prune import config as config_lib, plan as plan_lib
from tuner_prune.errors import InputError

QUICK = ["--n-samples", "300", "--n-features", "20", "--n-informative", "10",
         "--epochs", "2", "--max-trials", "1", "--batch-size", "64"]
SMALL = {"n_samples": 300, "n_features": 20, "n_informative": 10, "epochs": 2,
         "max_trials": 1, "batch_size": 64}


def refusal(result):
    """The one error line of a refused command: exit 2, no traceback, no output."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("tuner_prune")]
    assert result.returncode == 2, result.stderr[-3000:]
    assert len(errors) == 1 and errors[0].startswith("tuner_prune: error: "), result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    return errors[0]


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


def test_a_writable_directory_in_a_read_only_parent_is_accepted(tmp_path):
    (tmp_path / "scratch" / "me").mkdir(parents=True)
    config = small_config(tmp_path, directory=str(tmp_path / "scratch" / "me"))
    with read_only(tmp_path / "scratch"):
        assert plan_lib.resolve_search(config).config is config


def test_an_export_dir_linked_into_a_read_only_folder_is_refused(tmp_path):
    (tmp_path / "locked" / "export").mkdir(parents=True)
    (tmp_path / "export").symlink_to(tmp_path / "locked" / "export")
    before = tree(tmp_path)
    with read_only(tmp_path / "locked"):
        line = refusal(run_cli("search", *QUICK, "--directory", "logs", "--export-dir",
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
    line = refusal(run_cli("search", *QUICK, "--tuner-id", "../victim.txt",
                           cwd=tmp_path / "run"))
    assert line == ("tuner_prune: error: Expected --tuner-id to be a name (no path "
                    "separator, not . or ..), received '../victim.txt'.")
    assert sorted(os.listdir(tmp_path)) == ["run", "victim.txt"]
    assert os.listdir(tmp_path / "run") == []
    assert (tmp_path / "victim.txt").read_text() == "kept"
