"""An export never touches what it did not write; what it writes is readable.

Export targets that could mix with other files are refused through the CLI
before anything is trained or written; modes come from the umask.
"""

import os
import re
import stat

import pytest

from conftest import REPO, TINY, run_main
from test_bad_input import EARLIER_EXPORT, GOOD_CSV, store_search, tree
from tuner_prune.store import folders
from tuner_prune.settings import config as config_lib
from tuner_prune.store import staging
from tuner_prune.core.errors import InputError
from tuner_prune.search import export_search

MODELS_ENV = {"PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")])}
CODE = 'import numpy\nprint("the user\'s code")\n'


def refused(result):
    """The one error line of a run refused as bad input."""
    errors = [line for line in result.stderr.splitlines() if line.startswith("tuner_prune")]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(errors) == 1 and "Traceback" not in result.stderr, result.stderr[-2000:]
    return errors[0]


def user_folder(tmp_path):
    """A working directory holding the user's data and code."""
    (tmp_path / "data.csv").write_text(GOOD_CSV)
    (tmp_path / "train.py").write_text(CODE)
    return tmp_path


def search_args(*extra):
    return ["search", "--data", "data.csv", "--epochs", "6", "--batch-size", "8",
            "--max-trials", "1", "--directory", "logs", *extra]


def test_export_dir_dot_is_refused_and_every_file_stays(tmp_path):
    root = user_folder(tmp_path)
    before = tree(root)
    line = refused(run_main(*search_args("--export-dir", "."), cwd=root))
    assert line == ("tuner_prune: error: Expected --export-dir to be a folder of its own, "
                    "received ., the working directory.")
    assert tree(root) == before  # Byte for byte, and no new entry.


def test_export_of_a_search_to_the_working_directory_is_refused(tmp_path, monkeypatch):
    # In process: the CLI's `export` would pay a TensorFlow import to say the same.
    root = user_folder(tmp_path)
    os.rename(root / "data.csv", root / "good.csv")  # Where store_search wants it.
    store_search(str(root))
    before = tree(root)
    monkeypatch.chdir(root)
    with pytest.raises(InputError, match=r"^Expected --export-dir to be a folder of its own, "
                                         r"received \., the working directory\.$"):
        export_search("logs", ".")
    assert tree(root) == before


CASES = {
    "the search directory": (["--export-dir", "logs"], r"received logs, the same folder"),
    "inside the search directory": (["--export-dir", "logs/export"],
                                    r"received logs/export, a folder inside it"),
    "above the search directory": (["--directory", "out/logs", "--export-dir", "out"],
                                   r"--directory out/logs, received out, a folder above it"),
    "a link to the search directory": (["--export-dir", "link"],
                                       r"received link, the same folder"),
    "a folder holding the data": (["--data", "project/raw/data.csv", "--export-dir",
                                   "project"],
                                  r"Expected --export-dir to be a folder without the --data "
                                  r"file project/raw/data\.csv, received project, which holds"),
    "a folder of the user's files": (["--export-dir", "mine"],
                                     r"Expected --export-dir to be empty or to hold a previous "
                                     r"tuner_prune export \(manifest\.json\), received mine "
                                     r"holding draft\.txt, results"),
    "a user's file named like an export's": (
        ["--export-dir", "export"],
        r"Expected --export-dir to hold model_data\.cc only as files its manifest\.json "
        r"names, received export holding model_data\.cc of another origin"),
}


def make_targets(root):
    (root / "logs").mkdir()
    (root / "link").symlink_to(root / "logs")
    (root / "project" / "raw").mkdir(parents=True)
    (root / "project" / "raw" / "data.csv").write_text(GOOD_CSV)
    (root / "mine" / "results").mkdir(parents=True)
    (root / "mine" / "draft.txt").write_text("a draft")
    (root / "mine" / ".gitignore").write_text("*\n")
    (root / "export").mkdir()
    (root / "export" / "manifest.json").write_text(EARLIER_EXPORT)
    (root / "export" / "model_data.cc").write_text("// the user's own")


@pytest.mark.parametrize("args,message", CASES.values(), ids=CASES.keys())
def test_export_dir_mixing_with_other_files_is_refused(tmp_path, args, message):
    root = user_folder(tmp_path)
    make_targets(root)
    before = tree(root)
    line = refused(run_main(*search_args(*args), cwd=root))
    assert line.startswith("tuner_prune: error: Expected --export-dir ")
    assert re.search(message, line), line
    assert tree(root) == before


def check_target(root, export_dir, directory="logs"):
    folders.check_export_target(config_lib.SearchConfig(
        data=str(root / "data.csv"), directory=str(root / directory),
        export_dir=str(root / export_dir)))


def test_a_previous_export_with_the_users_files_beside_it_is_allowed(tmp_path):
    root = user_folder(tmp_path)
    make_targets(root)
    (root / "export" / "model_data.cc").unlink()
    (root / "export" / "notes.txt").write_text("the user's notes")
    (root / "export" / ".gitignore").write_text("*\n")
    (root / "export" / "model.tflite").write_text("an earlier model")
    (root / "dotfiles" / ".gitignore").parent.mkdir()
    (root / "dotfiles" / ".gitignore").write_text("*\n")
    for folder in ("export", "dotfiles", "not/yet/there"):
        check_target(root, folder)
    with pytest.raises(InputError, match=r"received .*mine holding draft\.txt, results"):
        check_target(root, "mine")


def test_an_export_interrupted_by_a_death_is_allowed(tmp_path):
    root = user_folder(tmp_path)
    (root / "export").mkdir()
    (root / "export" / "model.tflite").write_text("moved in before the death")
    retired = root / ".export.retired-999999999-abc"  # No such process.
    staging.write_json(retired / staging.JOURNAL, {
        "staging": ".export.partial-999999999-abc", "old": [], "new": ["model.tflite",
                                                                     "manifest.json"],
        "last": "manifest.json"})
    (root / "export" / "draft.txt").write_text("a draft")
    check_target(root, "export")  # The next export finishes the swap, keeps the draft.
    (root / "export" / "model_data.h").write_text("// the user's own")
    with pytest.raises(InputError, match=r"holding model_data\.h of another origin"):
        check_target(root, "export")


def test_search_state_files_have_the_umasks_modes(tmp_path):
    # Every trial fails, so nothing is exported: only the state is written.
    previous = os.umask(0o022)
    try:
        result = run_main("search", *TINY, "--max-trials", "1", "--model", "fault_models:broken",
                          "--directory", str(tmp_path / "logs"), "--quiet",
                          "--export-dir", str(tmp_path / "export"), env=MODELS_ENV)
    finally:
        os.umask(previous)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.stdout == ""  # --quiet: no trial lines, and no summary of nothing.
    assert result.stderr.startswith("tuner_prune: error: Expected a completed trial")
    logs = tmp_path / "logs"
    files = ["tuner_prune.json", "search/oracle.json", "search/trial_0/trial.json",
             "search/trial_0/record.json"]
    for name in files:
        assert stat.S_IMODE((logs / name).stat().st_mode) == 0o644, name
    for name in (".", "search", "search/trial_0"):
        assert stat.S_IMODE((logs / name).stat().st_mode) == 0o755, name
    assert not [name for name in os.listdir(logs / "search") if name.startswith(".tmp-")]


@pytest.mark.parametrize("option, value", [
    ("size_metric", "foo"), ("max_mse_increase", "0.1"), ("quantization", "bogus"),
    ("export_dir", "a_file"), ("export_dir", "."),
])
def test_export_model_refuses_what_the_cli_refuses_before_any_work(tmp_path, monkeypatch,
                                                                   option, value):
    from tuner_prune.core._keras import keras, sparsity
    from tuner_prune.data.dataset import load_dataset
    from tuner_prune.export.exporter import export_model

    monkeypatch.chdir(tmp_path)
    (tmp_path / "a_file").write_text("the user's file")
    (tmp_path / "notes.txt").write_text("the user's notes")
    model = sparsity.prune_low_magnitude(keras.Sequential([
        keras.Input(shape=(4,)), keras.layers.Dense(1)]))
    dataset = load_dataset(n_samples=100, n_features=4, n_informative=2)
    settings = {"export_dir": "export", option: value}
    with pytest.raises(InputError) as error:
        export_model(model, dataset, hyperparameters={}, total_steps=1,
                     **settings)
    if option == "export_dir":
        with pytest.raises(InputError) as cli_error:
            folders.check_writable(value, "--export-dir")
            folders.check_export_target(config_lib.SearchConfig(export_dir=value))
    else:
        with pytest.raises(InputError) as cli_error:
            config_lib.SearchConfig(**{option: value})
    assert str(error.value) == str(cli_error.value)
    assert sorted(os.listdir(tmp_path)) == ["a_file", "notes.txt"]
