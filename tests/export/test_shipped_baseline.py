"""The ridge baseline is shipped, through the same export path, when it beats every trial."""

import json

import numpy as np
import pytest

from conftest import run_main


@pytest.fixture(scope="module")
def ridge_wins(tmp_path_factory):
    """A tiny linear table and a one-trial search of two epochs: ridge wins."""
    root = tmp_path_factory.mktemp("ridge_wins")
    rng = np.random.default_rng(0)
    x = rng.normal(size=(120, 4))
    y = x @ np.array([3.0, -2.0, 0.5, 1.0]) + 10.0 + 0.01 * rng.normal(size=120)
    lines = [",".join(f"{value:.6f}" for value in (*row, target))
             for row, target in zip(x, y)]
    (root / "table.csv").write_text("a,b,c,d,y\n" + "\n".join(lines) + "\n")
    result = run_main("search", "--data", root / "table.csv", "--epochs", "2",
                      "--max-trials", "1", "--directory", root / "logs",
                      "--export-dir", root / "export")
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


def manifest(folder):
    with open(folder / "manifest.json", encoding="utf-8") as handle:
        return json.load(handle)


def test_search_ships_the_baseline_and_says_so(ridge_wins):
    root, result = ridge_wins
    shipped = manifest(root / "export")
    assert shipped["shipped"] == "baseline"
    assert shipped["best_trial_val_mse"] > shipped["baseline"]["val_mse"]
    lines = [line for line in result.stdout.splitlines() if "Shipped the ridge" in line]
    assert len(lines) == 1
    # The verified .tflite (scaling built in) predicts as the ridge does.
    assert shipped["tflite"]["test_mse"] == pytest.approx(shipped["baseline"]["test_mse"],
                                                          rel=1e-3)
    assert shipped["tflite"]["val_mse"] == pytest.approx(shipped["baseline"]["val_mse"],
                                                         rel=1e-3)
    assert (root / "export" / "saved_model").is_dir()
    assert "Note: the ridge baseline beats" not in result.stdout


def test_export_command_ships_it_too_and_ship_trial_keeps_the_trial(ridge_wins):
    root, _ = ridge_wins
    again = run_main("export", "--directory", root / "logs", "--export-dir", root / "again")
    assert again.returncode == 0, again.stderr[-3000:]
    assert manifest(root / "again")["shipped"] == "baseline"
    assert "Shipped the ridge baseline" in again.stdout
    trial = run_main("export", "--directory", root / "logs", "--export-dir", root / "trial",
                     "--ship", "trial")
    assert trial.returncode == 0, trial.stderr[-3000:]
    kept = manifest(root / "trial")
    assert kept["shipped"] == "trial"
    assert kept["val_mse"] > kept["baseline"]["val_mse"]
    assert "Note: the ridge baseline beats" in trial.stdout


def test_an_unknown_ship_is_refused_naming_the_flag():
    from tuner_prune.settings.config import SearchConfig
    from tuner_prune.core.errors import InputError

    with pytest.raises(InputError, match=r"Expected --ship among best, trial, received "
                                         r"'baseline'\."):
        SearchConfig(ship="baseline")
