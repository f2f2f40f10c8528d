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



def test_on_a_small_validation_split_the_cross_check_decides(mlp_wins):
    from tuner_prune.tuning import cross_check

    root, result = mlp_wins
    shipped = manifest(root / "export")
    trial_id, compared = shipped["trial_id"], shipped["baseline_comparison"]
    checked = compared["cross_check"]
    assert shipped["shipped"] == "trial" and compared["trial_wins"]
    # Its 30 validation rows are below SMALL_VALIDATION: the search trained the
    # trial's hyperparameters again on 10 folds of the 270 training and
    # validation rows, each fold held out once, and compared it with the ridge.
    assert compared["rows"] == 30 < cross_check.SMALL_VALIDATION
    assert (checked["folds"], checked["rows"]) == (cross_check.FOLDS, 270)
    assert checked["trial_wins"] and checked["margin"] == 1.0
    assert checked["mse_difference"] < -checked["standard_error"] < 0
    lines = [line for line in result.stdout.splitlines()
             if line.startswith("Cross-checking") or " folds (" in line]
    assert lines[0].startswith(f"Cross-checking trial {trial_id} against the ridge "
                               f"baseline: better on the 30 validation rows by ")
    assert lines[0].endswith("10 folds of the 270 training and validation rows")
    assert lines[1].endswith("the trial ships") and len(lines) == 2
    stored = root / "logs" / "search" / f"trial_{trial_id}" / cross_check.FILE
    assert cross_check.judged(json.loads(stored.read_text()), 1.0) == checked


def test_export_follows_the_stored_cross_check_and_trains_nothing(mlp_wins, tmp_path):
    import shutil

    from tuner_prune.tuning import cross_check

    root, _ = mlp_wins
    shutil.copytree(root / "logs", tmp_path / "logs")
    trial_id = manifest(root / "export")["trial_id"]
    stored = tmp_path / "logs" / "search" / f"trial_{trial_id}" / cross_check.FILE
    checked = json.loads(stored.read_text())
    # Had the folds found the trial, and its blend with the ridge, worse than
    # the ridge, the baseline would ship, though the trial wins on validation by far.
    blended = {**checked["blend"], "mse_difference": abs(checked["blend"]["mse_difference"])}
    stored.write_text(json.dumps({**checked, "mse_difference": -checked["mse_difference"],
                                  "blend": blended}))
    before = stored.stat().st_mtime_ns
    again = run_main("export", "--directory", tmp_path / "logs", "--export-dir",
                     tmp_path / "export")
    assert again.returncode == 0, again.stderr[-3000:]
    shipped = manifest(tmp_path / "export")
    assert shipped["shipped"] == "baseline"
    assert shipped["best_trial_val_mse"] < shipped["baseline"]["val_mse"]
    assert not shipped["baseline_comparison"]["cross_check"]["trial_wins"]
    assert ("no trial beats it on 10 folds of the training and validation rows by more "
            "than 1 standard error") in again.stdout
    assert "Cross-checking" not in again.stdout and stored.stat().st_mtime_ns == before
    # Without a stored cross-check, export decides on validation and trains nothing.
    stored.unlink()
    again = run_main("export", "--directory", tmp_path / "logs", "--export-dir",
                     tmp_path / "export")
    assert again.returncode == 0, again.stderr[-3000:]
    compared = manifest(tmp_path / "export")["baseline_comparison"]
    assert compared["trial_wins"] and "cross_check" not in compared
    assert not stored.exists()


@pytest.mark.parametrize("compared, needed", [
    ({}, False),  # The trial lost on validation outright: the baseline ships.
    ({"trial_wins": True, "rows": 30}, True),
    ({"trial_wins": False, "rows": 30}, True),
    ({"trial_wins": True, "rows": 500}, False),
    ({"trial_wins": False, "rows": 500}, True)])
def test_which_trials_are_cross_checked(compared, needed):
    from tuner_prune.tuning import cross_check

    assert cross_check.needed(compared) is needed


def test_a_diverged_fold_or_a_margin_not_met_is_no_win():
    from tuner_prune.tuning import cross_check

    checked = {"mse_difference": -2.0, "standard_error": 1.0, "folds": 5}
    assert cross_check.judged(checked, 1.0)["trial_wins"]
    assert not cross_check.judged(checked, 2.0)["trial_wins"]
    diverged = {"mse_difference": None, "standard_error": None, "reason": "diverged"}
    assert not cross_check.judged(diverged, 1.0)["trial_wins"]


def test_a_cross_check_that_fails_leaves_the_decision_to_validation(mlp_wins, tmp_path,
                                                                    monkeypatch):
    import shutil

    from tuner_prune import search as search_lib
    from tuner_prune.settings import config as config_lib, stored_search
    from tuner_prune.settings.plan import resolve_search
    from tuner_prune.tuning import best, cross_check

    root, _ = mlp_wins
    shutil.copytree(root / "logs", tmp_path / "logs")
    trial_id = manifest(root / "export")["trial_id"]
    (tmp_path / "logs" / "search" / f"trial_{trial_id}" / cross_check.FILE).unlink()
    stored = stored_search.require_stored(str(tmp_path / "logs"))
    plan = resolve_search(config_lib.SearchConfig.from_dict(
        {**stored["config"], "directory": str(tmp_path / "logs")}), reading=True)
    tuner = search_lib.open_tuner(plan, verbose=False)

    def fails(*args, **kwargs):
        raise MemoryError("no room for the folds")

    monkeypatch.setattr(cross_check, "run", fails)
    lines = []
    assert best.cross_check_first(tuner, plan.dataset, ship="best", say=lines.append) is None
    assert lines[0].startswith(f"Cross-checking trial {trial_id}")
    assert lines[1] == ("  the cross-check failed (MemoryError: no room for the folds): "
                        "the validation split decides")


def test_the_blend_ships_where_it_beats_the_model_that_would(mlp_wins, tmp_path):
    """On folds where the trial loses to the ridge but their average beats it,
    the average ships, as one model whose file predicts it row by row."""
    import shutil

    from tuner_prune.export.tflite import predict
    from tuner_prune.tuning import blend, cross_check

    root, _ = mlp_wins
    shutil.copytree(root / "logs", tmp_path / "logs")
    trial_id = manifest(root / "export")["trial_id"]
    stored = tmp_path / "logs" / "search" / f"trial_{trial_id}" / cross_check.FILE
    checked = json.loads(stored.read_text())
    assert checked["blend"]["mse_difference"] < -checked["blend"]["standard_error"]
    losing = {**checked, "mse_difference": abs(checked["mse_difference"])}
    both_losing = {**losing, "blend": {**checked["blend"], "mse_difference": abs(
        checked["blend"]["mse_difference"])}}
    printed = {}
    for name, written, ship in (("blend", losing, "best"), ("trial", losing, "trial"),
                                ("baseline", both_losing, "best")):
        stored.write_text(json.dumps(written))
        result = run_main("export", "--directory", tmp_path / "logs", "--export-dir",
                          tmp_path / name, "--ship", ship)
        assert result.returncode == 0, result.stderr[-3000:]
        assert manifest(tmp_path / name)["shipped"] == name
        printed[name] = result.stdout
    shipped = manifest(tmp_path / "blend")
    assert shipped["blend_weight"] == blend.WEIGHT
    assert shipped["baseline_comparison"]["cross_check"]["ships"] == "blend"
    assert (f"Shipped trial {trial_id} and the ridge baseline averaged: better than the "
            f"ridge baseline on 10 folds of the training and validation rows by more "
            f"than 1 standard error") in printed["blend"]
    assert shipped["best_trial_val_mse"] < shipped["val_mse"] < shipped["baseline"]["val_mse"]
    report = run_main("report", "--directory", tmp_path / "logs", "--export-dir",
                      tmp_path / "blend")
    assert f"trial {trial_id} (marked E, averaged with the ridge baseline)" in report.stdout
    # Its pruned zeros are kept: the trial's layers, the ridge's two units beside.
    assert shipped["sparsity"] > 0.5 * manifest(tmp_path / "trial")["sparsity"]
    table = np.loadtxt(root / "table.csv", delimiter=",", skiprows=1)
    rows = table[:50, :2].astype(np.float32)
    trial, linear, mixed = (predict((tmp_path / name / "model.tflite").read_bytes(), rows)
                            for name in ("trial", "baseline", "blend"))
    np.testing.assert_allclose(mixed, blend.WEIGHT * trial + (1 - blend.WEIGHT) * linear,
                               atol=0.01 * float(np.std(table[:, 2])))
