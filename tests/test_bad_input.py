"""Bad input through the CLI: one line naming the problem, exit 2, nothing written.

The cases run in this process (``run_main``: TensorFlow is imported once, not
once per case); one of them also runs as a real ``python -m tuner_prune``.
"""

import os
import re

import numpy as np
import pytest

from conftest import REPO, run_cli, run_main
from tuner_prune.settings import stored_search
from tuner_prune.settings import config as config_lib
from tuner_prune.data.dataset import load_dataset

TESTS = os.path.join(REPO, "tests")
GOOD_CSV = "a,b,c,y\n" + "".join(f"{i},{i % 7},{i % 3},{2 * i + 1}\n" for i in range(100))
# 80 training rows / batch 8 = 10 steps per epoch, 60 steps; latest end_step 50.
BASE = ["search", "--data", "{tmp}/good.csv", "--epochs", "6", "--batch-size", "8",
        "--max-trials", "1", "--directory", "{tmp}/logs", "--export-dir", "{tmp}/export"]
EARLIER_EXPORT = '{"saved_model": {"path": "saved_model"}, "tflite": {"path": "model.tflite"}}'
OTHER_COMMANDS = {  # A case whose flags start with one of these runs that command.
    "sweep": ["sweep", "--data", "{tmp}/good.csv", "--epochs", "6", "--batch-size", "8",
              "--repeats", "1", "--out", "{tmp}/sweep"],
    "report": ["report", "--directory", "{tmp}/logs"],
}

PAST_FLOAT32 = np.ones((20, 3))
PAST_FLOAT32[5, 1] = 1e300  # A float64 that is infinity as float32.


def store_search(tmp, fingerprint=None, **settings):
    """Stores a search in ``{tmp}/logs`` as ``search`` does before its first trial."""
    data = os.path.join(tmp, "good.csv")
    config = config_lib.SearchConfig(data=data, epochs=6, batch_size=8, max_trials=1,
                                     directory=os.path.join(tmp, "logs"), **settings)
    stored_search.store(config, {**load_dataset(data).fingerprint(), **(fingerprint or {})})


CASES = {
    "missing file": ({}, ["--data", "{tmp}/nope.csv"],
                     r"nope\.csv: Expected an existing data file, received no such file"),
    "empty file": ({"d.csv": ""}, ["--data", "{tmp}/d.csv"],
                   r"d\.csv: Expected a header row and data rows, received an empty file"),
    "header only": ({"d.csv": "a,y\n"}, ["--data", "{tmp}/d.csv"],
                    r"d\.csv: Expected data rows after the header, received only the header"),
    "non-numeric cell": ({"d.csv": GOOD_CSV.replace("\n4,4,1,9\n", "\n4,four,1,9\n")},
                         ["--data", "{tmp}/d.csv"],
                         r"d\.csv: Expected a number in row 6, column 'b' \(99 of its 100 "
                         r"cells are numbers; a missing cell is empty, NA or NaN\); "
                         r"received 'four'"),
    "text target": ({"d.csv": GOOD_CSV.replace("\n2,2,2,5\n", "\n2,2,2,five\n")},
                    ["--data", "{tmp}/d.csv"],
                    r"d\.csv: Expected a number as the target in row 4, column 'y'; "
                    r"received 'five'"),
    "all-empty column": ({"d.csv": "a,e,y\n" + "".join(f"{i},,{i}\n" for i in range(20))},
                         ["--data", "{tmp}/d.csv"],
                         r"d\.csv: Expected values in column 'e', received a missing cell "
                         r"in every row"),
    "infinite value": ({"d.csv": GOOD_CSV.replace("\n3,3,0,7\n", "\n3,-inf,0,7\n")},
                       ["--data", "{tmp}/d.csv"],
                       r"finite float32 number in row 5, column 'b'; received '-inf'"),
    "ragged row": ({"d.csv": GOOD_CSV.replace("\n5,5,2,11\n", "\n5,5,11\n")},
                   ["--data", "{tmp}/d.csv"], r"d\.csv: Expected 4 cells in row 7, received 3"),
    "target not a column": ({}, ["--target", "price"],
                            r"good\.csv: Expected --target to be one of the columns a, b, "
                            r"c, y; received 'price'"),
    "constant target": ({"d.csv": "a,y\n" + "".join(f"{i},4\n" for i in range(20))},
                        ["--data", "{tmp}/d.csv"],
                        r"d\.csv: Expected a target that varies, received the same value 4 "
                        r"in all 20 rows"),
    "too few rows": ({"d.csv": "a,y\n1,2\n2,3\n3,5\n"}, ["--data", "{tmp}/d.csv"],
                     r"d\.csv: Expected at least 10 rows .*, received 3"),
    "npz without y": ({"d.npz": {"x": np.ones((20, 3))}}, ["--data", "{tmp}/d.npz"],
                      r"d\.npz: Expected arrays 'x' and 'y', received arrays \['x'\]"),
    "npz lengths differ": ({"d.npz": {"x": np.ones((20, 3)), "y": np.arange(19.0)}},
                           ["--data", "{tmp}/d.npz"],
                           r"d\.npz: Expected y with one value per row of x \(20 rows\), "
                           r"received y of shape \(19,\)"),
    "npz needing pickle": ({"d.npz": {"x": np.array([{}] * 20, dtype=object),
                                      "y": np.arange(20.0)}}, ["--data", "{tmp}/d.npz"],
                           r"d\.npz: Expected an \.npz file of numeric arrays, received one "
                           r"that cannot be read without unpickling"),
    "npz value past float32's range": ({"d.npz": {"x": PAST_FLOAT32, "y": np.arange(20.0)}},
                                       ["--data", "{tmp}/d.npz"],
                                       r"d\.npz: Expected finite float32 values in array "
                                       r"'x', received 1e\+300 \(beyond float32's range\) "
                                       r"in row 5, column 1\.$"),
    "csv with only the target": ({"d.csv": "y\n" + "".join(f"{i}\n" for i in range(20))},
                                 ["--data", "{tmp}/d.csv"],
                                 r"d\.csv: Expected feature columns besides the target 'y', "
                                 r"received only the target column\.$"),
    "noise not finite": ({}, ["--noise", "inf"],
                         r"Expected --noise >= 0 and finite, received inf\.$"),
    "unknown file type": ({"d.txt": GOOD_CSV}, ["--data", "{tmp}/d.txt"],
                          r"d\.txt: Expected a \.csv or \.npz file, received the file type "
                          r"'\.txt'"),
    "sparsity outside [0, 1)": ({}, ["--final-sparsity", "1.0"],
                                r"Expected final_sparsity in \[0, 1\), received 1\.0"),
    "range LO > HI": ({}, ["--power", "3:1"],
                      r"Expected power range LO <= HI, received '3:1'"),
    "begin_step >= end_step": ({}, ["--begin-step", "30", "--end-step", "20"],
                               r"Expected begin_step < end_step, received begin_step 30 "
                               r"and end_step 20"),
    "end_step beyond training": ({}, ["--end-step", "5000"],
                                 r"Expected end_step <= 50 \(the training length of 60 "
                                 r"steps minus a recovery window of 10\), received 5000"),
    "model not importable": ({}, ["--model", "no_such_module:build"],
                             r"--model no_such_module:build: Expected an importable module "
                             r"'no_such_module', received ModuleNotFoundError"),
    "model not tf_keras": ({}, ["--model", "fault_models:not_a_model"],
                           r"--model fault_models:not_a_model: Expected a tf_keras or "
                           r"Keras 3 Model, received builtins\.str"),
    "model with two outputs": ({}, ["--model", "fault_models:two_outputs"],
                               r"--model fault_models:two_outputs: Expected a model with one "
                               r"output of one value per row, shape \(None, 1\) or "
                               r"\(None,\), received 2 outputs of shapes \(None, 1\), "
                               r"\(None, 1\)\.$"),
    "hp not a hyperparameter": ({}, ["--hp", "width=3"],
                                r"Expected --hp names among the schedule's and the model's "
                                r"hyperparameters \(the model's: hidden_layers, "
                                r"kernel_initializer, learning_rate, units\), "
                                r"received 'width'\.$"),
    "hp below the declared range": ({}, ["--hp", "units=0"],
                                    r"Expected --hp units in \[8, 1024\] \(the range the "
                                    r"model declares\), received 0\.$"),
    "hp range beyond the declared one": ({}, ["--hp", "learning_rate=-1:0.01"],
                                         r"Expected --hp learning_rate in \[0\.0005, "
                                         r"0\.03\] \(the range the model declares\), "
                                         r"received -1\.0:0\.01\.$"),
    "hp not among the choices": ({}, ["--hp", "kernel_initializer=foo"],
                                 r"Expected --hp kernel_initializer among glorot_uniform, "
                                 r"he_normal \(the choices the model declares\), received "
                                 r"'foo'\.$"),
    "block as tall as a row": ({}, ["--block-size", "4x1"],
                               r"Expected --block-size with fewer rows than the 3 features "
                               r"of a row \(tfmot cannot block-prune a kernel whose input is "
                               r"no wider than its block\), received 4x1\.$"),
    "model kernel no wider than the block": (
        {}, ["--model", "fault_models:sized", "--block-size", "4x1"],
        r"--model fault_models:sized: Expected kernels larger than the --block-size 4x1 "
        r"in each dimension \(tfmot cannot block-prune a kernel no wider than its "
        r"block\), received layer 'dense\w*' with a 3x8 kernel\.$"),
    "article with a model": ({}, ["--article", "--model", "fault_models:two_outputs"],
                             r"Expected --article \(the article's own model\) or --model, "
                             r"received both"),
    "frequency beyond the span": ({}, ["--begin-step", "10", "--end-step", "30",
                                       "--frequency", "25"],
                                  r"Expected frequency in \[1, 20\] \(the longest span "
                                  r"end_step - begin_step\), received 25\.$"),
    "max trials below 1": ({}, ["--max-trials", "0"], r"Expected --max-trials >= 1, received 0"),
    "threads below 1": ({}, ["--threads", "0"], r"Expected --threads >= 1, received 0"),
    "epochs below 1": ({}, ["--epochs", "0"], r"Expected --epochs >= 1, received 0"),
    "epochs not a number": ({}, ["--epochs", "six"], r"--epochs: invalid int value: 'six'"),
    "export dir inside a file": ({"f": "x"}, ["--export-dir", "{tmp}/f/export"],
                                 r"Expected --export-dir to be a folder that can be created, "
                                 r"received .*/f/export, inside the file .*/f"),
    "export dir is a file": ({"f": "x"}, ["--export-dir", "{tmp}/f"],
                             r"Expected --export-dir to be a folder, received .*/f, a file"),
    "resume with other settings": ({"store": {}}, ["--epochs", "7"],
                                   r"logs: Expected the settings and data of the search "
                                   r"stored there, received --epochs 7 \(the search has 6\)"
                                   r"\. .* or add --overwrite to start over"),
    "resume with other data": ({"store": {"fingerprint": {"sha256": "0" * 64}}}, [],
                               r"received data with different values \(sha256 [0-9a-f]{12}, "
                               r"the search has 000000000000\)\. .* add --overwrite to start "
                               r"over"),
    "sweep sparsities not numbers": ({}, ["sweep", "--sparsities", "0.5,high"],
                                     r"Expected --sparsities as numbers separated by commas, "
                                     r"received '0\.5,high'"),
    "sweep power not a number": ({}, ["sweep", "--power", "nan"],
                                 r"Expected --power > 0, received nan"),
    "report on a folder without a search": ({}, ["report"],
                                            r"Expected a search in .*/logs, received a folder "
                                            r"with no trials"),
    "search state unreadable": ({"logs/tuner_prune.json": "{"}, [],
                                r"logs/tuner_prune\.json: Expected the settings of a "
                                r"tuner_prune search, received a file that cannot be read"),
}


def make_files(tmp, files):
    (tmp / "good.csv").write_text(GOOD_CSV)
    (tmp / "export").mkdir()
    (tmp / "export" / "manifest.json").write_text(EARLIER_EXPORT)
    (tmp / "export" / "keep.txt").write_text("the user's file beside an earlier export")
    for name, content in files.items():
        if name == "store":
            store_search(str(tmp), **content)
        elif isinstance(content, dict):
            np.savez(tmp / name, **content)
        else:
            (tmp / name).parent.mkdir(exist_ok=True)
            (tmp / name).write_text(content)


def tree(folder):
    """Every path under ``folder`` with its bytes (None for folders)."""
    found = {}
    for root, dirs, names in os.walk(folder):
        for name in dirs:
            found[os.path.join(root, name)] = None
        for name in names:
            with open(os.path.join(root, name), "rb") as handle:
                found[os.path.join(root, name)] = handle.read()
    return found


def check_refused(tmp_path, files, args, message, run):
    """Runs a case through ``run`` (``run_main`` or ``run_cli``) and checks it.

    Returns:
        The ``CompletedProcess`` of the refused command.
    """
    make_files(tmp_path, files)
    before = tree(tmp_path)
    argv = BASE + args
    if args and args[0] in OTHER_COMMANDS:
        argv = OTHER_COMMANDS[args[0]] + args[1:]
    argv = [a.format(tmp=tmp_path) for a in argv]
    result = run(*argv, env={"PYTHONPATH": os.pathsep.join([REPO, TESTS])})
    errors = [line for line in result.stderr.splitlines() if line.startswith("tuner_prune")]
    assert result.returncode == 2, result.stderr[-2000:]
    assert len(errors) == 1 and errors[0].startswith("tuner_prune: error: "), result.stderr
    assert re.search(message, errors[0]), errors[0]
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert tree(tmp_path) == before
    return result


@pytest.mark.parametrize("files,args,message", CASES.values(), ids=CASES.keys())
def test_bad_input_is_one_line_exit_2_and_writes_nothing(tmp_path, files, args, message):
    check_refused(tmp_path, files, args, message, run_main)


@pytest.mark.slow
def test_bad_input_through_a_real_process(tmp_path):
    # The real entry point: --model found on PYTHONPATH, TensorFlow imported,
    # and its lines kept off stderr, which holds the one line alone.
    result = check_refused(tmp_path, *CASES["model with two outputs"], run_cli)
    assert len(result.stderr.splitlines()) == 1, result.stderr
