"""A trial's val_mse is its model's validation MSE: not its loss, not its score."""

import json
import os

import numpy as np
import pytest

from conftest import REPO, TINY, early, early_run, run_main

MODELS_ENV = {"PYTHONPATH": os.pathsep.join([REPO, os.path.join(REPO, "tests")])}
BUDGET = 1000  # Bytes: below any TFLite model, so the trial is scored over budget.


def stored_tuner(directory):
    """The tuner and data of the search stored in ``directory``, only read."""
    from tuner_prune import search
    from tuner_prune.settings import config as config_lib, stored_search
    from tuner_prune.settings.plan import resolve_search

    stored = stored_search.load_stored(str(directory))
    config = config_lib.SearchConfig.from_dict(
        {**stored["config"], "directory": str(directory), "overwrite": False})
    plan = resolve_search(config)
    return search.open_tuner(plan, verbose=False), plan.dataset


early("regularized_search", lambda root: [
    "search", *TINY, "--max-trials", "1", "--max-bytes", BUDGET, "--threads", "1",
    "--model", "score_models:regularized", "--directory", root / "logs",
    "--export-dir", root / "export"], env=MODELS_ENV, nice=19)


@pytest.fixture(scope="module")
def regularized_search(request):
    """One trial of a strongly L2-regularized model under a budget it cannot meet.

    A process of its own: ``--threads`` must come before TensorFlow's first
    operation, which this process has long run. Started at collection, niced
    (``conftest.early``): it is read near the end of the suite.
    """
    run = early_run(request, "regularized_search")
    root, result = run.root, run.result()
    record = json.loads((root / "logs" / "search" / "trial_0" / "record.json").read_text())
    return {"root": root, "result": result, "record": record}


@pytest.mark.slow
def test_val_mse_is_the_mse_of_the_stored_weights_not_the_loss(regularized_search):
    record = regularized_search["record"]
    tuner, dataset = stored_tuner(regularized_search["root"] / "logs")
    trial = tuner.oracle.get_trial("0")
    model = tuner.load_model(trial)
    x_val, y_val = dataset.scaled("val")
    prediction = model.predict(x_val, verbose=0).reshape(-1)
    stored_mse = float(np.mean((prediction - y_val) ** 2)) * dataset.y_scale ** 2
    evaluated = model.evaluate(x_val, y_val, verbose=0, return_dict=True)

    assert record["status"] == "COMPLETED"
    assert record["val_mse"] == pytest.approx(stored_mse, rel=1e-4)
    assert trial.metrics.get_last_value("val_mse") == pytest.approx(record["val_mse"])
    # The L2 penalty is in the validation loss (scaled units), not in the MSE.
    assert evaluated["mse"] * dataset.y_scale ** 2 == pytest.approx(stored_mse, rel=1e-4)
    assert evaluated["loss"] > 1.5 * evaluated["mse"]


@pytest.mark.slow
def test_over_budget_the_penalised_number_is_called_score(regularized_search):
    record, out = regularized_search["record"], regularized_search["result"].stdout
    assert record["within_budget"] is False and record["tflite_bytes"] > BUDGET
    assert record["score"] > 10 * record["val_mse"]
    shown = (f"score {record['score']:.6g} (val_mse {record['val_mse']:.6g}, "
             f"{record['tflite_bytes']} bytes > --max-bytes {BUDGET})")
    assert f"  {shown} | best so far: trial 0, {shown}\n" in out


@pytest.mark.slow
def test_no_trial_within_budget_exports_nothing_and_says_why(regularized_search):
    result, record = regularized_search["result"], regularized_search["record"]
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("tuner_prune")]
    assert len(errors) == 1 and errors[0].startswith(
        f"tuner_prune: error: Expected a completed trial whose .tflite (quantization auto) "
        f"fits in --max-bytes {BUDGET} within the MSE tolerance, received none among 1 "
        f"completed trials: the smallest is "), errors
    smallest = int(errors[0].split("the smallest is ")[1].split()[0])
    assert BUDGET < smallest < record["tflite_bytes"]  # The shipped file, not the record.
    assert "Traceback" not in result.stderr
    assert not (regularized_search["root"] / "export").exists()


@pytest.mark.slow
def test_report_keeps_the_searchs_budget(regularized_search):
    logs = str(regularized_search["root"] / "logs")
    report = json.loads(run_main("report", "--directory", logs, "--format", "json").stdout)
    assert report["max_bytes"] == BUDGET and report["best"] is None
    wider = run_main("report", "--directory", logs, "--format", "json", "--max-bytes",
                     str(regularized_search["record"]["tflite_bytes"]))
    assert json.loads(wider.stdout)["best"] == "0"
