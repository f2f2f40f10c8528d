"""The README and docs/ pages: every README block is run, its shown output compared.

Each fenced block of README.md follows a comment ``<!-- run: ID, how -->``
saying which test below runs it and how. The main command itself takes
minutes, so its sample output is compared, line shape by line shape, with the
output of the shared tiny search (``tiny_search`` in conftest.py), a real process.
The other ``python -m tuner_prune`` commands and the Python blocks run in this
process, as written, in their folder (``run_tuner_prune``, ``run_python``);
``tensorboard`` is started as a process of its own.
"""

import contextlib
import io
import json
import os
import pathlib
import queue
import re
import shlex
import shutil
import subprocess
import sys
import threading
import time
import traceback
import urllib.request

import numpy as np
import pytest

import docs_check
from conftest import REPO, cli_env, run_main

README = docs_check.read("README.md")
BLOCKS = docs_check.blocks(README)
DOCS = sorted(f"docs/{name}" for name in os.listdir(os.path.join(REPO, "docs"))
              if name.endswith(".md"))
PAGES = ["README.md", "BENCHMARKS.md", "CHANGELOG.md", *DOCS]
RUN_BY = {  # Block id -> the test that runs or checks it.
    "setup-main": "test_main_command_sample_matches_a_tiny_run",
    "setup-tests": "test_setup_commands",
    "sample": "test_main_command_sample_matches_a_tiny_run",
    "sample-more": "test_main_command_sample_matches_a_tiny_run",
    "data-files": "test_own_data_and_model",
    "data-csv": "test_own_data_and_model",
    "data-serve": "test_own_data_and_model",
    "model-file": "test_own_data_and_model",
    "model-run": "test_own_data_and_model",
    "api": "test_python_api_block",
    "litert": "test_litert_block",
    "c-main": "test_c_main_block",
    "tensorboard": "test_tensorboard_block",
    "report-export": "test_report_and_export_block",
}


def commands(block):
    """The commands of a shell block, continuation lines joined, as argument lists."""
    text = block.replace("\\\n", " ")
    return [shlex.split(line) for line in text.splitlines() if line.strip()]


def run_tuner_prune(command, cwd):
    """Runs a README command ``python -m tuner_prune ...`` as written, in ``cwd``.

    It runs in this process (``run_main``), as ``python -m`` would: ``cwd`` first
    on ``sys.path``, where ``--model`` finds its module, and the modules of
    ``cwd``'s ``.py`` files imported afresh and forgotten after.
    """
    assert command[:3] == ["python", "-m", "tuner_prune"], command
    local = {path.stem for path in pathlib.Path(cwd).glob("*.py")}
    cached = {name: sys.modules.pop(name) for name in local if name in sys.modules}
    try:
        return run_main(*command[3:], cwd=cwd, env={"PYTHONPATH": str(cwd)})
    finally:
        for name in local:
            sys.modules.pop(name, None)
        sys.modules.update(cached)


def run_python(code, cwd):
    """Runs a README Python block as a script, in this process, in ``cwd``.

    The block gets a fresh ``__main__`` namespace; what it prints is captured.

    Returns:
        A ``CompletedProcess`` like ``subprocess.run``'s: status 1 and the
        traceback as stderr when the block raised.
    """
    out, status, error = io.StringIO(), 0, ""
    with contextlib.chdir(cwd), contextlib.redirect_stdout(out):
        try:
            exec(compile(code, "<README block>", "exec"), {"__name__": "__main__"})
        except Exception:  # The block's failure is the test's: reported below.
            status, error = 1, traceback.format_exc()
    return subprocess.CompletedProcess(["python", "-c", code], status, out.getvalue(), error)


# ---- The README's form.

def test_every_block_is_marked_with_how_it_is_run():
    assert docs_check.fence_count(README) == len(BLOCKS), (
        "a fenced block of README.md has no <!-- run: ID, how --> comment before it")
    assert sorted(BLOCKS) == sorted(RUN_BY)
    for match in docs_check.BLOCK.finditer(README):
        assert RUN_BY[match["id"]] in match["how"] or match["id"] == "setup-tests", match[0]


def test_readme_is_at_most_320_lines():
    # 300 until the README showed a table with text served both ways (issue 28).
    assert len(README.splitlines()) <= 320


def test_setup_commands():
    """Exactly two set-up commands: the main job, and .ci/run's test command."""
    section = README.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    assert docs_check.fence_count(section) == 2
    assert BLOCKS["setup-main"] == "pip install -e . && python -m tuner_prune search\n"
    ci_command = docs_check.read(".ci/run").strip().splitlines()[-1]
    assert BLOCKS["setup-tests"].strip() == ci_command


def test_article_is_identified_once_with_its_address():
    address = ("https://towardsdatascience.com/model-pruning-in-deep-neural-networks-"
               "using-the-tensorflow-api-7cf52bdd32")
    assert README.count(address) == 1
    assert "Model Pruning in Deep Neural Networks Using the TensorFlow API" in README
    assert README.index(address) < README.index("## Set-up")


# ---- The main command's output.

def test_main_command_sample_matches_a_tiny_run(tiny_search):
    """The sample's lines have the shapes of a real search's lines, in order.

    Numbers, hyperparameter values and variant names are masked; a trial's
    two lines count once however many trials ran; the variants are the same,
    in the same order. The lines of the ``sample-more`` block (the C++ files,
    the note when the baseline wins) are printed by the tiny search and left
    out of the sample: their shapes are checked where they appear.
    """
    run = tiny_search["result"].stdout
    got = docs_check.shapes(run, export_dir=tiny_search["export"])
    more = docs_check.shapes(BLOCKS["sample-more"])
    for line in more:
        assert line in got, f"{line!r} is not printed by a real search:\n{run}"
    got = [line for line in got if line not in more]
    expected = docs_check.shapes(BLOCKS["sample"])
    assert expected == got, "\n".join(
        f"{'  ' if a == b else '! '}{a}\n  {b}" for a, b in zip(expected, got))
    assert docs_check.variant_names(BLOCKS["sample"]) == docs_check.variant_names(run)
    assert any(docs_check.PROGRESS.match(line) for line in run.splitlines())
    for line in BLOCKS["sample"].splitlines():
        if docs_check.VARIANT_ROW.match(line) and " gzipped " in line:
            assert line.rstrip().endswith(("us", *docs_check.MARKS)), line


def test_sample_claims_match_the_sample():
    sample = BLOCKS["sample"]
    assert "Trial 00 (1 of 10): final_sparsity=0.5, power=3" in sample
    assert "hidden_layers=0" in sample.splitlines()[1]
    prose = " ".join(README[README.index("Trials 02-05"):].split("<!--")[0].split())
    winner = re.search(r"Trial (\d\d), linear, pruned to sparsity ([\d.]+)", prose)
    best = next(line for line in sample.splitlines() if line.startswith("Best trial"))
    assert best.startswith(f"Best trial {winner[1]}: final_sparsity=")
    assert round(float(best.split("=")[1].split(",")[0]), 2) == float(winner[2])
    assert "hidden_layers=0" in best
    size, ratio = re.search(r"won: a ([\d,]+)-byte float16 .*?; ([\d.]+) × its", prose).groups()
    assert f"export/model.tflite (float16): {size.replace(',', '')} bytes" in sample
    assert f"{ratio} x the baseline's" in sample
    assert "sparse_dynamic_int8" not in sample  # No longer converted.


# ---- Your own data and model.

@pytest.mark.slow
def test_own_data_and_model(tmp_path):
    """The data files, the CSV search, the model file and the --model search,
    each run as written in one folder (the model's module is found there)."""
    written = run_python(BLOCKS["data-files"], tmp_path)
    assert written.returncode == 0, written.stderr[-3000:]
    assert (tmp_path / "mine.csv").is_file() and (tmp_path / "mine.npz").is_file()

    (command,) = commands(BLOCKS["data-csv"])
    result = run_tuner_prune(command, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "export/mine/manifest.json").read_text())
    assert manifest["best_hyperparameters"]["hidden_layers"] in (0, 1)
    assert "Baseline: ridge regression" in result.stdout
    assert result.stdout.startswith("Read mine.csv: 1000 rows, 9 columns read as ")
    assert "  categorical 'district': 3 levels, one-hot" in result.stdout
    served = run_python(BLOCKS["data-serve"], tmp_path)
    assert served.returncode == 0, served.stderr[-3000:]
    check_served(BLOCKS["data-serve"], served.stdout, tmp_path)

    (tmp_path / "mymodel.py").write_text(BLOCKS["model-file"])
    (command,) = commands(BLOCKS["model-run"])
    result = run_tuner_prune(command, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "export/mymodel/manifest.json").read_text())
    assert 16 <= manifest["best_hyperparameters"]["units"] <= 32
    assert "learning_rate" in manifest["best_hyperparameters"]
    assert (tmp_path / "export/mymodel/model.tflite").is_file()


def check_served(block, stdout, folder):
    """The SavedModel's printed predictions of the block's raw rows are the
    ``.tflite``'s of ``encode_rows``, within its quantization (5 % of the
    target's spread)."""
    import tuner_prune
    from tuner_prune.export import tflite

    namespace = {}
    exec(block.split("inputs =")[0], namespace)  # The imports and the rows.
    saved = np.array(stdout.strip().splitlines()[-1].strip("[]").split(), float)
    export = folder / "export" / "mine"
    x = tuner_prune.encode_rows(str(export), namespace["rows"])
    predicted = tflite.predict((export / "model.tflite").read_bytes(), x)
    lines = (folder / "mine.csv").read_text().splitlines()[1:]
    spread = float(np.std([float(line.rsplit(",", 1)[1]) for line in lines]))
    assert len(saved) == len(namespace["rows"]) == 2 and saved[0] != saved[1]
    np.testing.assert_allclose(predicted, saved, atol=0.05 * spread)


@pytest.mark.slow
def test_python_api_block(tmp_path):
    """The README's Python API block runs as written (2 trials of 3 epochs): a
    keras-tuner user's own snippet, Keras 3 and a plain build function."""
    assert "import keras\n" in BLOCKS["api"] and "tf_keras" not in BLOCKS["api"]
    assert "PruningTuner(build," in BLOCKS["api"]
    result = run_python(BLOCKS["api"], tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "export" / "model.tflite").is_file()
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert result.stdout.split()[-1] == manifest["tflite"]["variant"]
    assert len(list((tmp_path / "logs" / "mine").glob("trial_*"))) == 2


# ---- Shipping, TensorBoard, report.

def test_litert_block(tiny_search):
    result = run_python(BLOCKS["litert"], tiny_search["root"])
    assert result.returncode == 0, result.stderr[-3000:]
    float(result.stdout.split()[-1])


def test_c_main_block(tiny_search, tmp_path):
    """main.c compiled with the export's model.c as written: the LiteRT block's prediction."""
    (command,) = re.findall(r"`(cc -std=c99 main\.c model\.c[^`]*)`", README)
    for name in ("model.c", "model.h"):
        shutil.copy(tiny_search["export"] / name, tmp_path / name)
    (tmp_path / "main.c").write_text(BLOCKS["c-main"])
    compiled = subprocess.run(command, shell=True, cwd=tmp_path, capture_output=True,
                              text=True, timeout=120)
    assert compiled.returncode == 0, compiled.stderr
    python = run_python(BLOCKS["litert"], tiny_search["root"])
    c, litert = float(compiled.stdout), float(python.stdout.split()[-1])
    manifest = tiny_search["manifest"]
    error = (manifest["c"]["val_mse"] ** 0.5 + manifest["tflite"]["val_mse"] ** 0.5)
    assert abs(c - litert) <= 0.1 * error, (c, litert, error)


@pytest.mark.slow
def test_tensorboard_block(tiny_search):
    (command,) = commands(BLOCKS["tensorboard"])
    assert command == ["tensorboard", "--logdir", "logs"]
    executable = shutil.which("tensorboard")
    argv = ([executable] if executable else [sys.executable, "-m", "tensorboard.main"])
    process = subprocess.Popen([*argv, *command[1:], "--port", "0"],
                               cwd=tiny_search["root"], stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=cli_env())
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in process.stdout],
                     daemon=True).start()
    try:
        deadline = time.monotonic() + 120
        address = None
        while address is None and time.monotonic() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                assert process.poll() is None, "tensorboard exited"
                continue
            found = re.search(r"(http://\S+:\d+/)", line)
            address = found and found[1]
        assert address, "tensorboard did not say where it serves"
        with urllib.request.urlopen(address + "data/environment", timeout=30) as page:
            assert json.loads(page.read())["data_location"].endswith("logs")
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_report_and_export_block(tiny_search, tmp_path):
    shutil.copytree(tiny_search["logs"], tmp_path / "logs")
    report, export = commands(BLOCKS["report-export"])
    result = run_tuner_prune(report, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "front.png").is_file()
    assert "aseline" in result.stdout
    result = run_tuner_prune(export, tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "export-int8" / "manifest.json").read_text())
    assert manifest["tflite"]["variant"] in ("int8", "sparse_int8")


# ---- docs/.

@pytest.mark.parametrize("command", docs_check.COMMANDS)
def test_flag_reference_lists_every_flag_with_its_default(command):
    """docs/cli.md has a row per flag of ``COMMAND --help``, with its default;
    ``python tests/docs_check.py`` regenerates the tables from the parser."""
    rows = docs_check.flag_table(docs_check.read("docs/cli.md"), command)[2:]
    documented = {}
    for row in rows:
        cells = [cell.strip() for cell in re.split(r"(?<!\\)\|", row)[1:-1]]
        documented[cells[0].strip("`").split()[0]] = cells[1].replace("\\|", "|")
    parser = docs_check.subparsers()[command]
    expected = {action.option_strings[-1]: f"`{docs_check.default_text(parser, action)}`"
                for action in docs_check.flags(parser)}
    assert documented == expected, "run: python tests/docs_check.py"


def test_module_tour_names_every_module():
    tour = docs_check.read("docs/architecture.md")
    folder = os.path.join(REPO, "tuner_prune")
    modules = sorted(os.path.relpath(os.path.join(root, name), folder)
                     for root, _, names in os.walk(folder) for name in names
                     if name.endswith(".py") and (name != "__init__.py" or root == folder))
    stages = sorted(f"{name}/" for name in os.listdir(folder)
                    if os.path.exists(os.path.join(folder, name, "__init__.py")))
    missing = [name for name in stages + modules if f"`{name}`" not in tour]
    assert not missing, f"docs/architecture.md does not name {missing}"


def test_module_tour_names_the_door_to_keras_tuners_private_members():
    """The section on keras-tuner's internals names ``_kt.py``, every function
    of it that reaches a private member, and the tests that pin them
    (``tests/core/test_kt.py`` checks that no other module reaches one)."""
    section = docs_check.read("docs/architecture.md").split("## keras-tuner's internals")[1]
    text = docs_check.read("tuner_prune/core/_kt.py")
    doors = re.findall(r"^def ([a-z]\w*)\(", text, flags=re.MULTILINE)
    assert doors and "`_kt.py`" in section and "`tests/core/test_kt.py`" in section
    missing = [name for name in doors if f"`{name}(" not in section]
    assert not missing, missing


@pytest.mark.parametrize("page", PAGES)
def test_links_resolve(page):
    text = docs_check.read(page)
    folder = os.path.dirname(page)
    for target, anchor in docs_check.local_links(text):
        path = os.path.normpath(os.path.join(folder, target)) if target else page
        assert os.path.exists(os.path.join(REPO, path)), f"{page}: {target}"
        if anchor and path.endswith(".md"):
            assert anchor in docs_check.anchors(docs_check.read(path)), f"{page}: #{anchor}"


def test_errors_page_block_pruning_refusal(tmp_path):
    """The refusal docs/errors.md shows is the CLI's, word for word."""
    page = docs_check.read("docs/errors.md")
    shown = docs_check.blocks(page)["block-refusal"]
    (command, line) = shown.strip().splitlines()
    result = run_tuner_prune(shlex.split(command.removeprefix("$ ")), tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == line


def test_manifest_page_names_every_key_of_a_real_export(tiny_search):
    page = docs_check.read("docs/manifest.md")
    manifest = tiny_search["manifest"]
    keys = {*manifest, *manifest["tflite"], *manifest["candidates"][0],
            *manifest["baseline"], *manifest["baseline"]["settings"],
            *manifest["saved_model"], *(manifest["micro"] or {}),
            *((manifest["micro"] or {}).get("arena") or {}), *manifest["c"],
            *manifest["macs_per_inference"]}
    missing = sorted(key for key in keys if f"`{key}`" not in page)
    assert not missing, f"docs/manifest.md does not name {missing}"


def test_microcontroller_names_are_the_header_s(tiny_search):
    """The names docs/export.md's TensorFlow Lite Micro section uses are in model_data.h."""
    page = docs_check.read("docs/export.md")
    paragraph = page.split("## On a microcontroller", 1)[1].split("\n## ", 1)[0]
    names = set(re.findall(r"`(g_model_\w+|kModel\w+)", paragraph))
    assert {"kModelInputScale", "kModelOutputZeroPoint"} <= names
    header = tiny_search["export"] / "model_data.h"
    if not header.is_file():
        pytest.skip("the tiny search's int8 variant was not within the tolerance")
    text = header.read_text()
    assert all(name in text for name in names), sorted(names)
    assert "tflite::GetModel()" in text
