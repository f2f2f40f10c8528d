"""TensorBoard: a real ``tensorboard`` server over a search's logs, read through its HTTP API."""

import contextlib
import io
import json
import math
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from conftest import data, small_model

from tuner_prune.core._keras import keras
from tuner_prune.tuning.hypermodel import PruningHyperModel
from tuner_prune.tuning.tuner import PruningTuner

STARTUP_SECONDS = 120
ALL_STATUSES = ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_FAILURE", "STATUS_RUNNING"]
SCHEDULE = {"final_sparsity", "power", "begin_step", "end_step"}
METRIC_TAGS = {"hparams/val_mse", "hparams/sparsity", "hparams/nonzero_weights",
               "hparams/status"}


def tensorboard_command():
    """The ``tensorboard`` program installed beside this Python."""
    script = os.path.join(os.path.dirname(sys.executable), "tensorboard")
    return [script] if os.path.exists(script) else [sys.executable, "-m", "tensorboard.main"]


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(url, path, **params):
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with urllib.request.urlopen(f"{url}{path}{query}", timeout=30) as response:
        body = response.read()
    return json.loads(body) if response.headers.get_content_type() == "application/json" \
        else body


def post(url, path, body):
    request = urllib.request.Request(f"{url}{path}", data=json.dumps(body).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@contextlib.contextmanager
def tensorboard(logdir, ready, log_path):
    """Serves ``logdir`` on a free loopback port until ``ready(url)`` holds.

    The server is always terminated on leaving the block.
    """
    port = free_port()
    with open(log_path, "w", encoding="utf-8") as log:
        server = subprocess.Popen(
            [*tensorboard_command(), "--logdir", str(logdir), "--host", "127.0.0.1",
             "--port", str(port), "--reload_interval", "1"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.PIPE)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(server, url, ready, log_path)
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=20)


def wait_until(server, url, ready, log_path):
    deadline, last = time.monotonic() + STARTUP_SECONDS, None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"tensorboard exited with {server.returncode}: "
                        f"{open(log_path, encoding='utf-8').read()[-2000:]}")
        try:
            if ready(url):
                return
        except (urllib.error.URLError, ConnectionError) as error:  # Not serving yet.
            last = error
        time.sleep(0.5)
    pytest.fail(f"tensorboard at {url} did not serve the logs within {STARTUP_SECONDS} s "
                f"(last error: {last!r})")


def scalars(url, run, tag):
    return [(step, value) for _, step, value in
            get(url, "/data/plugin/scalars/scalars", run=run, tag=tag)]


def session_groups(url):
    response = post(url, "/data/plugin/hparams/session_groups", {
        "experimentName": "", "allowedStatuses": ALL_STATUSES, "colParams": [],
        "startIndex": 0, "sliceSize": 1000})
    return {group["name"]: group for group in response.get("sessionGroups", [])}


def metric_values(group):
    return {metric["name"]["tag"]: metric["value"] for metric in group["metricValues"]}


def board_ready(root, trial_ids):
    """A ``ready`` check: every trial's session and the search run's last step are in."""
    search_run = f"{root}/search"

    def ready(url):
        best = get(url, "/data/plugin/scalars/tags").get(search_run, {})
        images = get(url, "/data/plugin/images/tags").get(search_run, {})
        steps = [step for step, _ in scalars(url, search_run, "best_val_mse")] \
            if "best_val_mse" in best else []
        return (set(session_groups(url)) == {f"trial_{t}" for t in trial_ids}
                and images and (not best or max(steps) == len(trial_ids)))
    return ready


def records(logs):
    found = [json.loads(path.read_text())
             for path in (logs / "search").glob("trial_*/record.json")]
    return sorted(found, key=lambda record: int(record["trial_id"]))


@pytest.fixture(scope="module")
def tiny_board(tiny_search):
    """A real TensorBoard over the tiny search's ``logs`` folder."""
    logs = tiny_search["logs"]
    ids = [record["trial_id"] for record in records(logs)]
    with tensorboard(logs, board_ready("tensorboard/search", ids),
                     tiny_search["root"] / "tensorboard.log") as url:
        yield url, records(logs)


def test_every_trial_logs_sparsity_of_every_pruned_layer(tiny_board, tiny_search):
    url, trials = tiny_board
    assert len(trials) == 3
    tags = get(url, "/data/plugin/scalars/tags")
    total_steps = tiny_search["manifest"]["total_steps"]
    for record in trials:
        run = f"tensorboard/search/trial_{record['trial_id']}"
        layers = [layer["name"] for layer in record["layers"]]
        assert len(layers) == 3
        for layer in layers:
            tag = f"prune_low_magnitude_{layer}/mask:0/sparsity"
            assert tag in tags[f"{run}/metrics"], (run, sorted(tags[f"{run}/metrics"]))
            assert f"prune_low_magnitude_{layer}/threshold:0/threshold" in tags[f"{run}/metrics"]
            curve = scalars(url, f"{run}/metrics", tag)
            values = [value for _, value in curve]
            assert curve[0] == (0, 0.0)
            assert values == sorted(values), "sparsity never decreases"
            assert curve[-1][0] == total_steps
            assert values[-1] == pytest.approx(
                record["hyperparameters"]["final_sparsity"], abs=0.01)
        for group in ("train", "validation"):
            losses = scalars(url, f"{run}/{group}", "epoch_loss")
            assert [step for step, _ in losses] == list(range(6))


def test_hparams_experiment_has_the_schedule_and_the_metrics(tiny_board):
    url, _ = tiny_board
    experiment = post(url, "/data/plugin/hparams/experiment", {"experimentName": ""})
    domains = {info["name"]: info.get("domainInterval") for info in experiment["hparamInfos"]}
    assert set(domains) == SCHEDULE | {"hidden_layers", "units", "kernel_initializer",
                                       "learning_rate"}
    assert domains["final_sparsity"] == {"minValue": 0.3, "maxValue": 0.98}
    assert {info["name"]["tag"] for info in experiment["metricInfos"]} == METRIC_TAGS


def test_one_hparams_session_per_trial_with_its_metrics(tiny_board):
    url, trials = tiny_board
    groups = session_groups(url)
    assert set(groups) == {f"trial_{record['trial_id']}" for record in trials}
    for record in trials:
        group = groups[f"trial_{record['trial_id']}"]
        assert group["hparams"] == pytest.approx(record["hyperparameters"])
        assert metric_values(group) == pytest.approx({
            "hparams/val_mse": record["val_mse"], "hparams/sparsity": record["sparsity"],
            "hparams/nonzero_weights": record["nonzero_weights"], "hparams/status": 1.0})
        assert [session["status"] for session in group["sessions"]] == ["STATUS_SUCCESS"]


def test_search_run_tracks_the_best_score_and_plots_all_trials(tiny_board):
    from matplotlib import image

    url, trials = tiny_board
    run = "tensorboard/search/search"
    best = scalars(url, run, "best_val_mse")
    running_min = [min(r["val_mse"] for r in trials[:n]) for n in range(1, len(trials) + 1)]
    assert [step for step, _ in best] == [1, 2, 3]
    assert [value for _, value in best] == pytest.approx(running_min)
    pictures = get(url, "/data/plugin/images/images", run=run,
                   tag="val_mse_vs_final_sparsity")
    assert [picture["step"] for picture in pictures] == [1, 2, 3]
    png = get(url, f"/data/plugin/images/individualImage?{pictures[-1]['query']}")
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert image.imread(io.BytesIO(png), format="png").shape[:2] == (400, 600)


def test_search_run_shows_the_ridge_baseline_beside_the_best(tiny_board, tiny_search):
    url, _ = tiny_board
    baseline = tiny_search["manifest"]["baseline"]
    values = scalars(url, "tensorboard/search/search", "baseline_val_mse")
    assert [step for step, _ in values] == [0, 1, 2, 3]
    assert [value for _, value in values] == pytest.approx([baseline["val_mse"]] * 4)
    texts = get(url, "/data/plugin/text/text", run="tensorboard/search/search",
                tag="baseline")
    assert "ridge regression" in json.dumps(texts)


class FailSecondFit(keras.callbacks.Callback):
    """Makes the second trial's training raise, as a broken user callback would.

    Each trial runs a deep copy of the callback (as keras-tuner's), so the count
    of fits is kept on the class.
    """

    fits = 0

    def on_train_begin(self, logs=None):
        FailSecondFit.fits += 1
        if FailSecondFit.fits == 2:
            raise RuntimeError("second fit refused")


@pytest.mark.slow
def test_failed_trials_get_a_failed_session(tmp_path):
    hypermodel = PruningHyperModel(small_model, n_features=6, epochs=4, steps_per_epoch=6)
    tuner = PruningTuner(hypermodel, max_trials=2, directory=str(tmp_path / "logs"),
                         verbose=False)
    x, y = data()
    FailSecondFit.fits = 0
    tuner.search(x, y, validation_data=data(24, 1), batch_size=16,
                 callbacks=[FailSecondFit()])
    assert [t.status for t in tuner.oracle.trials.values()] == ["COMPLETED", "FAILED"]
    completed = tuner.oracle.trials["0"]

    with tensorboard(tmp_path / "logs", board_ready("tensorboard/search", ["0", "1"]),
                     tmp_path / "tensorboard.log") as url:
        groups = session_groups(url)
        best = scalars(url, "tensorboard/search/search", "best_val_mse")

    assert [s["status"] for s in groups["trial_0"]["sessions"]] == ["STATUS_SUCCESS"]
    assert [s["status"] for s in groups["trial_1"]["sessions"]] == ["STATUS_FAILURE"]
    assert metric_values(groups["trial_1"]) == {"hparams/status": 0.0}
    assert groups["trial_1"]["hparams"] == pytest.approx(
        tuner.oracle.trials["1"].hyperparameters.values)
    assert best == [(1, pytest.approx(completed.score)), (2, pytest.approx(completed.score))]
    assert math.isfinite(metric_values(groups["trial_0"])["hparams/val_mse"])


def test_overwrite_clears_the_tensorboard_logs(tmp_path):
    def open_tuner(overwrite):
        hypermodel = PruningHyperModel(small_model, n_features=6, epochs=4, steps_per_epoch=6)
        return PruningTuner(hypermodel, max_trials=1, directory=str(tmp_path),
                            overwrite=overwrite, verbose=False)

    stale = os.path.join(open_tuner(False).tensorboard_dir, "trial_0", "stale")
    os.makedirs(os.path.dirname(stale))
    open(stale, "w").close()
    open_tuner(False)
    assert os.path.exists(stale)
    open_tuner(True)
    assert not os.path.exists(os.path.dirname(stale))
