"""Every script in bench/ runs: a real subprocess in a tiny configuration.

A script added to bench/ without a tiny run in ``RUNS`` fails
``test_every_bench_script_has_a_tiny_run``. Files named ``_*.py`` are helpers
the scripts import, not scripts. The scripts run side by side (they are
independent), each checked for exit 0 and the lines BENCHMARKS.md shows. They
start as soon as a session that runs these checks is collected, niced, on the
core the rest of the suite leaves idle (``conftest.py``).
"""

import os
import re
import subprocess
import sys
import tempfile
import time

import pytest
from conftest import renice

pytestmark = pytest.mark.slow  # Multi-process scenarios: `pytest -m "not slow"` skips them.

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH = os.path.join(REPO, "bench")
TESTS = os.path.join(REPO, "tests")
# The built-in data of conftest.TINY, and a 32-unit MLP instead of the article's.
WORKLOAD = ["--n-samples", "300", "--n-features", "20", "--n-informative", "10",
            "--model", "fault_models:small"]
NUMBER = r"[-+\d.e]+"

RUNS = {
    "csv_memory.py": (
        ["--rows", "2000", "--columns", "5", "--repeats", "1"],
        [r"2000 rows x 5 columns: CSV [\d.]+ MB, float32 table [\d.]+ MB, "
         r"1 loads per reader \(alternating\)",
         re.escape("| reader | start-up MB | peak added MB (median) | "
                   "added / float32 table | seconds (median) |"),
         *(rf"\| {reader} \| \d+ \| \d+ \| [\d.]+ \| [\d.]+ \|"
           for reader in ("numpy", "python"))]),
    "distributed.py": (
        ["--trials", "1", "--epochs", "3", "--layouts", "1x1", *WORKLOAD],
        [r"1 worker\(s\) x 1 thread\(s\): 1 trials of 3 epochs, first start to last end "
         r"[\d.]+ s -> [\d.]+ trials/hour \(wall [\d.]+ s with start-up and export\)"]),
    "edge_c.py": (
        [*WORKLOAD[:6], "--epochs", "3", "--max-trials", "1", "--inputs", "64", "--units", "32", "--repeats", "5"],
        [r"\| main command \| \w+ \| [\w, ]+ \| \d+ \| \d+ \| \d+ \| [\d.]+ \| \d+ \| "
         rf"\d+ \(\w+\) \| \d+ \| {NUMBER} \| {NUMBER} \|",
         r"goal: weights \+ indices [\d.]+ x the limit \(<= 1.3\), object \d+ bytes against "
         r"3496 \(the main command's model.tflite; this run's \d+\): (met|not met)",
         r"64-32-32-1 MLP at sparsity 0.9, int8 weights, 200 rows x 5 passes, best of 3; "
         r"same predictions: yes",
         *(rf"\| {name} \| [\w, ]+ \| \d+ \| \d+ \| [\d.]+ \|" for name in ("dense", "sparse")),
         r"goal: sparse [\d.]+ x faster \(>= 3\), [\d.]+ x smaller \(>= 4\): (met|not met)"]),
    "edge_export.py": (
        ["--runs", "0.9:4x1", "--epochs", "3", "--rounds", "1", "--invokes", "5",
         *WORKLOAD],
        [*(rf"#### final sparsity 0.9, block {block}: \d+ of \d+ kernel weights nonzero; "
           rf"Keras test MSE {NUMBER}" for block in ("4x1",)),
         r"kernels padded to whole blocks: (none|.* -> \d+ inputs)",
         r"information limit \d+ bytes \(block-aware: \d+\); dense float32 TFLite \d+ "
         r"bytes",
         re.escape("| variant | bytes | gzip bytes | bytes / limit | gzip / limit | "
                   "test MSE | MSE / Keras | latency us | latency / dense int8 | "
                   "latency / int8 | loaded |"),
         *(rf"\| {name}( \*\*chosen by [a-z_]+\*\*)* \| \d+ \| \d+ \| .* \| "
           rf"(yes|(yes|no): .+) \|"
           for name in ("float32", "sparse_float32", "dynamic_int8",
                        "float16", "sparse_float16", "int8", "sparse_int8")),
         r".*\*\*chosen by bytes\*\*.*", r".*\*\*chosen by gzip_bytes\*\*.*",
         rf"goals: by gzip_bytes \w+ {NUMBER} x limit \(<= 1.15\), {NUMBER} x smaller "
         rf"than dense float32 \(>= 40\); by bytes \w+ {NUMBER} x limit \(<= 2\); "
         rf"latency {NUMBER} x dense int8 \(<= 0.5\)",
         r"sparse_int8 goals: (does not load \(.+\)|within tolerance (yes|no), chosen by "
         rf"bytes (yes|no), {NUMBER} x limit \(<= 1.0\), latency {NUMBER} x dense int8 "
         rf"and {NUMBER} x int8 \(<= 0.8\))",
         r"\d+ s"]),
    "mlp_widths.py": (
        ["2,8,0.01", "--seeds", "1", "--rows", "300", "--steps", "10"],
        [rf"2 x 8, rate 0.01: val_mse {NUMBER}, test R² {NUMBER}"]),
    "overhead.py": (
        ["--epochs", "3", "--repeats", "1", *WORKLOAD[:-2]],  # The article's MLP.
        [r"3 epochs x 1 steps, batch 1024, schedule 0->1 to 0.9, 1 alternating repeats "
         r"\(medians\)",
         re.escape("| step time dense | step time pruned | pruned / dense |"),
         r"\| [\d.]+ ms \| [\d.]+ ms \| [\d.]+ \|",
         re.escape("| bare tfmot fit | tuner_prune trial | trial / bare | "
                   "of the extra: TFLite size record |"),
         r"\| [\d.]+ s \| [\d.]+ s \| [\d.]+ \| [\d.]+ s \([\d.]+ of the bare fit\) \|"]),
    "real_tables.py": (  # Tables shipped by scikit-learn: nothing is downloaded.
        ["--tables", "diabetes,friedman1_3000", "--max-rows", "150", "--encode",
         "--out", "real_tables_runs", "--epochs", "3", "--max-trials", "1"],
        [r"(diabetes|friedman1_3000): [\d.]+ min",
         re.escape("| table | rows | columns | test MSE / ridge | test MSE / boosting | "
                   "bytes | minutes | shipped |"),
         *(rf"\| {name} \| 150 \| 10 \| {NUMBER} \| {NUMBER} \| \d+ \| [\d.]+ \| "
           rf"(trial|baseline) \|" for name in ("diabetes", "friedman1_3000")),
         rf"\| geometric mean \| \| \| {NUMBER} \| {NUMBER} \| \| \| \|"]),
    "right_size.py": (
        ["all", "--out", "right_size_runs", "--rows", "300", "--rounds", "1",
         "--invokes", "20", *WORKLOAD[:6], "--epochs", "3", "--max-trials", "1"],
        [r"(main|article|nonlinear): \d+ s",
         re.escape("| model | variant | bytes | val MSE | test MSE | test / ridge | "
                   "nonzero weights | batch-1 latency us |"),
         *(rf"\| {name} \| \w+ \| \d+ \| {NUMBER} \| {NUMBER} \| {NUMBER} \| \d+ \| "
           rf"[\d.]+ \|" for name in ("default search", "--article search")),
         rf"\| ridge baseline \(alpha {NUMBER}\) \| - \| - \| {NUMBER} \| {NUMBER} \| 1 "
         rf"\| \d+ \| - \|",
         rf"goal 1: test MSE {NUMBER} \(<= 1e-05\) and model.tflite \d+ bytes "
         rf"\(<= 8192\): (met|not met)",
         r"goal 2: first kernel reads \d+ inputs, \d+ informative: precision [\d.]+, "
         r"recall [\d.]+ \(>= 0.99\): (met|not met)",
         rf"goal 3: friedman1 test MSE {NUMBER}, {NUMBER} x ridge {NUMBER} \(<= 0.5\), "
         rf"{NUMBER} x HistGradientBoosting {NUMBER} \(<= 1\): (met|not met)",
         rf"goal 4: batch-1 latency [\d.]+ us against --article's [\d.]+ us: {NUMBER} x",
         r"goal 5: baseline fitted in [\d.]+ s of the main command's \d+ s: [\d.]+ % "
         r"\(< 2 %\): (met|not met)"]),
    "scalings.py": (  # A table shipped by scikit-learn: nothing is downloaded.
        ["diabetes", "--max-rows", "150", "--epochs", "20"],
        [re.escape("| table | rows | MLP, max-abs | MLP, standard | MLP, quantile | "
                   "MLP, signed log, standard | boosting |"),
         rf"\| diabetes \| 150 \| {NUMBER} \| {NUMBER} \| {NUMBER} \| {NUMBER} \| "
         rf"{NUMBER} \|"]),
    "search_quality.py": (
        ["--seeds", "0", "--epochs", "3", "--trials", "1", "--article-epochs", "2",
         "--manual", "0.5", *WORKLOAD],
        [r"epochs 3, trials 1, batch 1024, seeds \[0\]",
         rf"seed 0 \(\d+ s\): dense {NUMBER}, article {NUMBER}, manual {NUMBER}, "
         rf"random {NUMBER}, tuned {NUMBER}",
         r"  article reached sparsity [\d.]+; manual best at 0\.5; tuned: "
         r"final_sparsity=[\d.]+, power=[\d.]+, begin_step=\d+, end_step=\d+",
         re.escape("| method | seed 0 | mean test MSE | tuned / method |"),
         *(rf"\| {method} \| {NUMBER} \| {NUMBER} \| [\d.]+ \|"
           for method in ("dense", "article", "manual", "random", "tuned"))]),
}


def bench_scripts():
    return sorted(name for name in os.listdir(BENCH)
                  if name.endswith(".py") and not name.startswith("_"))


def test_every_bench_script_has_a_tiny_run():
    scripts = set(bench_scripts())
    assert not scripts - set(RUNS), "bench scripts without a tiny run in RUNS"
    assert not set(RUNS) - scripts, "RUNS names scripts that are not in bench/"


NICE = 19  # The runs take the core the rest of the suite leaves idle, not its own.
_started = {}  # {script: (process, stdout file, stderr file)}, once per session.


def start_runs():
    """Starts every tiny run at once, niced, unless they are already running.

    ``conftest.py`` calls it as soon as the tests are collected, so the runs
    go on while the rest of the suite does; output goes to files, which a
    pipe nobody reads yet would block.
    """
    if not _started:
        env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
               "PYTHONPATH": os.pathsep.join([REPO, TESTS])}
        for name, (args, _) in RUNS.items():
            out, err = tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")
            process = subprocess.Popen([sys.executable, os.path.join(BENCH, name), *args],
                                       cwd=REPO, env=env, stdout=out, stderr=err, text=True)
            renice(process, NICE)
            _started[name] = (process, out, err)
    return _started


def stop_runs():
    """Kills the runs still going (a session that ended before reading them)."""
    for process, out, err in _started.values():
        if process.poll() is None:
            process.kill()
            process.wait()
        out.close()
        err.close()


@pytest.fixture(scope="module")
def bench_runs():
    """Every tiny run, finished: ``{script: (exit code, stdout, stderr)}``."""
    started = time.monotonic()
    results = {}
    for name, (process, out, err) in start_runs().items():
        process.wait(timeout=300)
        out.seek(0)
        err.seek(0)
        results[name] = (process.returncode, out.read(), err.read())
    print(f"bench scripts waited for {time.monotonic() - started:.0f} s")
    return results


@pytest.mark.parametrize("name", sorted(RUNS))
def test_bench_script_runs_and_prints_its_table(bench_runs, name):
    code, stdout, stderr = bench_runs[name]
    assert code == 0, stderr[-3000:]
    lines = stdout.splitlines()
    for pattern in RUNS[name][1]:
        assert any(re.fullmatch(pattern, line) for line in lines), (pattern, stdout)


def test_edge_export_prunes_to_the_final_sparsity(bench_runs):
    counts = re.findall(r"block \w+: (\d+) of (\d+) kernel weights nonzero",
                        bench_runs["edge_export.py"][1])
    assert len(counts) == 1
    for nonzero, total in counts:
        assert int(nonzero) / int(total) == pytest.approx(0.1, abs=0.01)
