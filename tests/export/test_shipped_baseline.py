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


@pytest.fixture(scope="module")
def mlp_wins(tmp_path_factory):
    """A tiny nonlinear table of two features and a two-trial search: the second
    trial, the largest model the table allows, beats the ridge by far."""
    root = tmp_path_factory.mktemp("mlp_wins")
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, size=(300, 2))
    y = 4 * np.abs(x[:, 0]) + 3 * x[:, 1] ** 2 + 0.05 * rng.normal(size=300)
    lines = [f"{a:.6f},{b:.6f},{target:.6f}" for (a, b), target in zip(x, y)]
    (root / "table.csv").write_text("a,b,y\n" + "\n".join(lines) + "\n")
    result = run_main("search", "--data", root / "table.csv", "--epochs", "10",
                      "--batch-size", "16", "--max-trials", "2", "--directory",
                      root / "logs", "--export-dir", root / "export")
    assert result.returncode == 0, result.stderr[-3000:]
    return root, result


def hyperparameters(root):
    """Each trial's hyperparameters, in the order the trials ran."""
    records = sorted((root / "logs" / "search").glob("trial_*/record.json"))
    return [json.loads(record.read_text())["hyperparameters"] for record in records]


def test_the_second_trial_is_the_largest_model_the_table_allows(mlp_wins):
    from tuner_prune.space import models, bounds as space

    root, _ = mlp_wins
    stored = json.loads((root / "logs" / "tuner_prune.json").read_text())
    assert stored["config"]["widest_units"] == models.widest_units(2) == 64
    default, largest = hyperparameters(root)
    assert default["hidden_layers"] == 0
    assert (largest["hidden_layers"], largest["units"]) == (2, 64)
    assert largest["final_sparsity"] == space.DEFAULT_FINAL_SPARSITY[0]


def test_a_trial_ships_only_when_it_beats_the_baseline_by_more_than_noise(
        mlp_wins, monkeypatch):
    from tuner_prune.data import baseline

    root, _ = mlp_wins
    shipped = manifest(root / "export")
    assert shipped["shipped"] == "trial"
    assert shipped["baseline_comparison"]["trial_wins"] is True
    assert shipped["baseline_comparison"]["margin"] == baseline.MARGIN == 1.0
    # The same trial, asked to win by more standard errors than it does.
    monkeypatch.setattr(baseline, "MARGIN", 1e9)
    again = run_main("export", "--directory", root / "logs", "--export-dir", root / "again")
    assert again.returncode == 0, again.stderr[-3000:]
    shipped = manifest(root / "again")
    assert shipped["shipped"] == "baseline"
    compared = shipped["baseline_comparison"]
    assert compared["trial_wins"] is False and compared["margin"] == 1e9
    assert shipped["best_trial_val_mse"] < shipped["baseline"]["val_mse"]
    assert compared["val_mse_difference"] == pytest.approx(
        shipped["best_trial_val_mse"] - shipped["baseline"]["val_mse"], rel=1e-3)
    assert compared["rows"] == 30 and compared["standard_error"] > 0
    assert "by more than 1e+09 standard errors" in again.stdout


def test_the_margin_is_standard_errors_of_the_paired_differences():
    from tuner_prune.data import baseline

    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 1))
    y = x[:, 0] + rng.normal(size=40)
    ridge = (np.array([1.0]), 0.0)  # Its errors are the noise.
    # Each row's squared error times 0.5 to 1.4: 5 % lower on average, noisily.
    noisy = y - (y - x[:, 0]) * np.sqrt(rng.uniform(0.5, 1.4, size=40))
    close = baseline.comparison(noisy, ridge, x, y, margin=2.0)
    assert close["val_mse_difference"] < 0 and not close["trial_wins"]
    assert baseline.comparison(noisy, ridge, x, y, margin=0.0)["trial_wins"]
    assert baseline.comparison(noisy, ridge, x, y, 4.0, margin=2.0)["standard_error"] == (
        pytest.approx(16 * close["standard_error"]))  # In the target's units.
    better = baseline.comparison(x[:, 0] + 0.5 * (y - x[:, 0]), ridge, x, y, margin=2.0)
    assert better["trial_wins"] and better["rows"] == 40
