"""The one plotting helper: a PNG of the asked size, the caller's matplotlib left alone."""

import subprocess
import sys

from matplotlib import image

from conftest import cli_env
from tuner_prune.core import plots

PLOTTING = r"""
import sys, matplotlib
matplotlib.use("svg")
from matplotlib import pyplot
from tuner_prune.reporting import report, sweep
sweep.plot([{"final_sparsity": 0.5, "repeat": 0, "train_mse": 0.1, "val_mse": 0.2,
             "sparsity": 0.5}], sys.argv[1] + "/sweep.png", (0.0, 1.0))
report.plot([{"trial_id": "0", "status": "COMPLETED", "tflite_bytes": 100, "val_mse": 0.2,
              "final_sparsity": 0.5, "pareto": True}], sys.argv[1] + "/front.png")
print(matplotlib.get_backend(), pyplot.get_fignums())
"""


def test_png_axes_writes_a_labelled_png_of_its_size(tmp_path):
    path = tmp_path / "p.png"
    with plots.png_axes(path, "x", "y", "title", size=(5, 3)) as axes:
        axes.plot([1, 2], [3, 4], label="line")
    assert image.imread(path).shape[:2] == (300, 500)
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["line"]
    assert (axes.get_xlabel(), axes.get_ylabel(), axes.get_title()) == ("x", "y", "title")


def test_plots_leave_the_callers_backend_and_open_no_figure(tmp_path):
    result = subprocess.run([sys.executable, "-c", PLOTTING, str(tmp_path)],
                            capture_output=True, text=True, env=cli_env(), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "svg []\n"
    for name in ("sweep.png", "front.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
