"""The ridge baseline beside every search, and the built-in model's size."""

import json
import math

import pytest

from conftest import TINY, run_main
from tuner_prune.data import baseline, dataset as data_lib
from tuner_prune.space import models
from tuner_prune.tuning import oracle as oracle_lib
from tuner_prune.settings.config import SearchConfig
from tuner_prune.core.errors import InputError
from tuner_prune.reporting.report import run_report


def tiny_dataset(seed=1):
    return data_lib.load_dataset(None, seed=seed, n_samples=300, n_features=20,
                                 n_informative=10)


def test_ridge_baseline_is_fitted_on_the_training_split_and_chosen_on_validation():
    dataset = tiny_dataset()
    fitted = baseline.fit(dataset)
    assert fitted["kind"] == "ridge" and fitted["weights"] == 21
    assert fitted["settings"]["alpha"] in baseline.ALPHAS
    # Each alpha alone: the chosen one has the lowest validation MSE of them.
    scores = [baseline.fit(dataset, alphas=(alpha,))["val_mse"] for alpha in baseline.ALPHAS]
    assert fitted["val_mse"] == pytest.approx(min(scores))
    # A linear target plus noise: ridge is near the noise floor, in target units.
    assert fitted["test_mse"] < 1e-3


def test_baseline_flattens_nd_rows(tmp_path):
    import numpy as np

    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 4, 3)).astype("float32")
    y = x.reshape(200, -1) @ rng.normal(size=12)
    fitted = baseline.fit(data_lib.split_dataset(x, y.astype("float32")))
    assert fitted["weights"] == 13 and fitted["val_mse"] < 1e-3


def test_a_damaged_baseline_file_is_named(tmp_path):
    (tmp_path / baseline.FILE).write_text('{"kind": "ridge"}')
    with pytest.raises(InputError, match=r"baseline.json: Expected the baseline of a "
                                         r"tuner_prune search"):
        baseline.load(str(tmp_path))


def test_advice_only_when_the_baseline_wins():
    reference = {"val_mse": 1.0}
    assert baseline.advice(0.5, reference) is None
    assert "smaller model" in baseline.advice(3.0, reference)
    assert baseline.ratio(3.0, reference) == 3.0
    assert math.isinf(baseline.ratio(1.0, {"val_mse": 0.0}))


def test_search_shows_and_stores_the_baseline(tiny_search):
    stdout = tiny_search["result"].stdout
    manifest = tiny_search["manifest"]
    stored = baseline.load(str(tiny_search["logs"]))
    assert manifest["baseline"] == stored
    assert stdout.splitlines()[0].startswith("Baseline: ridge regression")
    assert "(fitted in " in stdout.splitlines()[0]
    ratio = manifest["tflite"]["val_mse"] / stored["val_mse"]
    assert f"the shipped model's val_mse is {ratio:.3g} x the baseline's" in stdout
    table = run_report(str(tiny_search["logs"]))
    assert baseline.describe(stored) in table
    as_json = json.loads(run_report(str(tiny_search["logs"]), "json"))
    assert as_json["baseline"] == stored


def test_a_model_worse_than_the_baseline_prints_the_note(tiny_search):
    # The tiny search trains 6 epochs: every trial is far worse than ridge.
    manifest = tiny_search["manifest"]
    assert manifest["val_mse"] > manifest["baseline"]["val_mse"]
    notes = [line for line in tiny_search["result"].stdout.splitlines()
             if line.startswith("Note: the ridge baseline beats the best trial")]
    assert len(notes) == 1 and "--hp hidden_layers" in notes[0]


@pytest.mark.slow
def test_resumed_search_reuses_the_stored_baseline(tmp_path):
    # In this process, on the linear built-in model: the stored baseline is the point.
    flags = ["--directory", str(tmp_path / "logs"), "--export-dir", str(tmp_path / "ex"),
             "--hp", "hidden_layers=0"]
    first = run_main("search", *TINY, "--epochs", "2", "--max-trials", "1", *flags)
    assert first.returncode == 0, first.stderr[-2000:]
    path = tmp_path / "logs" / baseline.FILE
    stored = json.loads(path.read_text())
    stored["val_mse"] = 123.0  # A refit would replace it.
    path.write_text(json.dumps(stored))
    again = run_main("search", *TINY, "--epochs", "2", "--max-trials", "2", *flags)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "val_mse 123  " in again.stdout and "(stored with the search)" in again.stdout
    assert json.loads((tmp_path / "ex" / "manifest.json").read_text())[
        "baseline"]["val_mse"] == 123.0


def test_first_trial_of_a_fresh_search_is_the_smallest_default_model():
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    hp.Float("final_sparsity", 0.3, 0.98, default=0.5)
    models.builtin_model(hp, 20)
    oracle = oracle_lib.PruningOracle(keras_tuner.Objective("score", "min"), max_trials=3,
                                      seed=1)
    oracle.update_space(hp)
    values = oracle.populate_space("00")["values"]
    assert values == {"final_sparsity": 0.5, **models.DEFAULTS}


def test_block_size_refuses_a_linear_built_in_model():
    with pytest.raises(InputError, match=r"Expected --hp hidden_layers >= 1 with "
                                         r"--block-size 16x1 \(tfmot cannot block-prune"):
        SearchConfig(block_size="16x1", hp=["hidden_layers=0:2"])
    with pytest.raises(InputError, match=r"Expected --hp units >= 32 with --block-size"):
        SearchConfig(block_size="16x1", hp=["units=16"])
    SearchConfig(block_size="16x1", hp=["hidden_layers=1", "units=64"])


def test_pareto_plot_draws_the_baseline(tiny_search, tmp_path):
    from tuner_prune.reporting import report

    rows = report.load_trials(str(tiny_search["logs"]))
    stored = baseline.load(str(tiny_search["logs"]))
    labels = report.plot(rows, str(tmp_path / "p.png"), baseline=stored)
    assert "ridge baseline (21 weights)" in labels
    assert "ridge baseline (21 weights)" not in report.plot(rows, str(tmp_path / "q.png"))


def test_one_eigendecomposition_scores_every_alpha_as_ridge_does(monkeypatch):
    dataset = tiny_dataset()
    fast = baseline.fit(dataset)
    monkeypatch.setattr(baseline, "EIGEN_LIMIT", 0)  # One sklearn Ridge per alpha.
    slow = baseline.fit(dataset)
    assert fast["settings"] == slow["settings"]
    assert fast["val_mse"] == pytest.approx(slow["val_mse"], rel=1e-9)
    assert fast["test_mse"] == pytest.approx(slow["test_mse"], rel=1e-9)
