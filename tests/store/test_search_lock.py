"""One running search per ``--directory``, and ``--overwrite`` that never
deletes through a link: real processes hold the lock, real tuners remove."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import cli_env, run_main
from test_bad_input import tree
from conftest import small_model
from conftest import QUICK, refusal

from tuner_prune.store import lock
from tuner_prune.core.errors import InputError
from tuner_prune.tuning.hypermodel import PruningHyperModel
from tuner_prune.tuning.tuner import PruningTuner

HOLD = ("import sys, time\n"
        "from tuner_prune.store import lock\n"
        "with lock.holding(sys.argv[1]):\n"
        "    print('held', flush=True)\n"
        "    time.sleep(120)\n")


def copy_search(tiny_search, logs):
    """A copy of the shared tiny search's folder (without its lock file) in ``logs``."""
    shutil.copytree(tiny_search["logs"], logs, symlinks=True, dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(lock.LOCK_FILE))


@pytest.fixture
def holder(tmp_path):
    """A real process holding ``tmp_path / 'logs'``, as a running search does."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tmp_path / "logs")],
                               stdout=subprocess.PIPE, text=True, env=cli_env())
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait()


def test_a_second_search_on_a_held_directory_is_refused_naming_the_process(tmp_path, holder):
    line = refusal(run_main("search", *QUICK, "--directory", "logs", "--export-dir",
                            "export", cwd=tmp_path))
    assert line == (f"tuner_prune: error: logs: Expected a --directory no other search is "
                    f"running in, received one held by process {holder.pid}; wait for it "
                    f"to end, or choose another --directory."), line
    assert sorted(os.listdir(tmp_path)) == ["logs"]
    assert os.listdir(tmp_path / "logs") == [lock.LOCK_FILE]


def test_overwrite_of_a_held_search_is_refused_and_removes_nothing(tiny_search, tmp_path,
                                                                   holder):
    logs = tmp_path / "logs"
    copy_search(tiny_search, logs)
    before = tree(logs)
    line = refusal(run_main("search", *QUICK, "--directory", "logs", "--export-dir",
                            "export", "--overwrite", cwd=tmp_path))
    assert f"held by process {holder.pid}" in line, line
    assert tree(logs) == before
    with pytest.raises(InputError, match=f"held by process {holder.pid}"):
        PruningTuner(PruningHyperModel(small_model, n_features=6), directory=str(logs),
                     overwrite=True, verbose=False)
    assert tree(logs) == before


def test_a_killed_holder_leaves_no_lock_and_readers_need_none(tiny_search, tmp_path):
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(tiny_search["logs"])],
                               stdout=subprocess.PIPE, text=True, env=cli_env())
    assert process.stdout.readline().strip() == "held"
    report = run_main("report", "--directory", str(tiny_search["logs"]))
    assert report.returncode == 0, report.stderr
    process.kill()  # SIGKILL: no cleanup runs.
    process.wait()
    with lock.holding(tiny_search["logs"]):
        pass


def overwriting_tuner(directory, overwrite):
    hypermodel = PruningHyperModel(small_model, n_features=6, epochs=4, steps_per_epoch=6)
    return PruningTuner(hypermodel, max_trials=1, directory=str(directory),
                        overwrite=overwrite, verbose=False)


def test_overwrite_removes_links_as_links(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "folder").mkdir(parents=True)
    (elsewhere / "folder" / "notes.md").write_text("the user's")
    (elsewhere / "file.txt").write_text("the user's")
    project = overwriting_tuner(tmp_path / "logs", False).project_dir
    os.makedirs(os.path.join(project, "trial_0"))
    os.symlink(elsewhere / "folder", os.path.join(project, "trial_0", "my_notes"))
    os.symlink(elsewhere / "file.txt", os.path.join(project, "notes.txt"))
    kept = tree(elsewhere)
    overwriting_tuner(tmp_path / "logs", True)
    assert tree(elsewhere) == kept
    assert not os.path.lexists(os.path.join(project, "trial_0"))
    assert not os.path.lexists(os.path.join(project, "notes.txt"))
    assert [name for name in os.listdir(tmp_path / "logs") if name.startswith(".")] == []


def test_overwrite_of_a_linked_project_folder_removes_the_link_only(tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "notes.md").write_text("the user's")
    project = overwriting_tuner(tmp_path / "logs", False).project_dir
    os.rmdir(project)
    os.symlink(elsewhere, project)
    overwriting_tuner(tmp_path / "logs", True)
    assert (elsewhere / "notes.md").read_text() == "the user's"
    assert os.path.isdir(project) and not os.path.islink(project)


def test_search_overwrite_through_the_cli_keeps_what_links_point_to(tiny_search, tmp_path):
    logs, elsewhere = tmp_path / "logs", tmp_path / "elsewhere"
    copy_search(tiny_search, logs)
    elsewhere.mkdir()
    (elsewhere / "notes.md").write_text("the user's")
    os.symlink(elsewhere, logs / "search" / "trial_0" / "my_notes")
    result = run_main("search", *QUICK, "--directory", "logs", "--export-dir", "export",
                      "--overwrite", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (elsewhere / "notes.md").read_text() == "the user's"
    assert not os.path.lexists(logs / "search" / "trial_0" / "my_notes")


def test_a_search_that_ends_leaves_no_lock_file(tiny_search):
    assert not os.path.lexists(tiny_search["logs"] / lock.LOCK_FILE)
