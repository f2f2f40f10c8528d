"""TensorBoard logs of a search: pruning curves, HParams sessions, search progress.

Layout under a tuner's ``tensorboard_dir`` (``tensorboard --logdir`` on it, or
on any folder above it, shows everything):

- the folder itself: the HParams experiment (hyperparameter domains and metrics).
- ``trial_<id>/``: the trial's HParams session and final metrics;
  ``trial_<id>/train`` and ``trial_<id>/validation`` its loss per epoch;
  ``trial_<id>/metrics`` the sparsity and threshold of each pruned weight over
  training steps (tfmot's ``PruningSummaries``).
- ``search/``: the best validation MSE so far against the number of ended
  trials (the trial number, unless a distributed search ends trials out of
  order), the ridge baseline's validation MSE beside it (``baseline_val_mse``,
  with a text naming the baseline), and a picture of validation MSE against
  final sparsity over them, the baseline drawn as a line.

Under a size budget (``--max-bytes``) the objective is a penalised ``score``;
it is then logged as such (HParams metric ``score``, ``best_score``) beside
``val_mse``, which is always the model's own validation MSE.
"""

import contextlib
import io
import math
import os
import shutil

import tensorflow as tf
from keras_tuner.engine import hyperparameters as kt_hp
from tensorboard.plugins.hparams import api as hp_api
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import summary as hp_summary

from tuner_prune.core import plots
from tuner_prune.core.metrics import float32_clipped
from tuner_prune.core._kt import TrialStatus
from tuner_prune.tuning.callbacks import TrialPruningSummaries

SEARCH_RUN = "search"
COMPLETED = TrialStatus.COMPLETED
FAILED = (TrialStatus.FAILED, TrialStatus.INVALID)
# (trial metric, scalar tag, display name); ``status`` is 1 completed, 0 failed.
METRICS = (
    ("val_mse", "hparams/val_mse", "validation MSE"),
    ("sparsity", "hparams/sparsity", "measured sparsity"),
    ("nonzero_weights", "hparams/nonzero_weights", "nonzero weights"),
    ("status", "hparams/status", "completed (1) or failed (0)"),
)
SCORE = ("score", "hparams/score", "score (validation MSE, penalised over --max-bytes)")
BEST_TAG = "best_val_mse"
BEST_SCORE_TAG = "best_score"
BASELINE_TAG = "baseline_val_mse"
PLOT_TAG = "val_mse_vs_final_sparsity"
PLOT_SIZE = (6, 4)  # Inches: 600 x 400 pixels.
# One open writer per search run folder for the life of the process: TensorBoard
# reads a run's event files in name order, and files opened in the same second
# sort by a per-process counter as text (``.10`` before ``.7``); a step read out
# of order makes it drop the later steps.
_search_writers = {}


def trial_run(root, trial_id):
    """The folder of a trial's runs."""
    return os.path.join(root, f"trial_{trial_id}")


def clear(root):
    """Removes every run under ``root`` (a search started over)."""
    for folder in [f for f in _search_writers if f.startswith(os.path.abspath(root))]:
        _search_writers.pop(folder).close()
    shutil.rmtree(root, ignore_errors=True)


def trial_callbacks(root, trial_id):
    """Fresh callbacks that log one trial's pruning and loss curves.

    A rerun of the trial (a resumed search) replaces its earlier curves.
    """
    folder = trial_run(root, trial_id)
    shutil.rmtree(folder, ignore_errors=True)
    return [TrialPruningSummaries(log_dir=folder, write_graph=False)]


def metrics(budgeted=False):
    """The HParams metrics: ``METRICS``, and ``SCORE`` under a size budget."""
    return (METRICS[0], SCORE, *METRICS[1:]) if budgeted else METRICS


def write_experiment(root, space, budgeted=False):
    """Writes the HParams experiment: the domains of ``space`` and the metrics.

    Args:
        root: The tuner's TensorBoard folder.
        space: The oracle's hyperparameters (``oracle.get_space()``).
        budgeted: Whether a size budget penalises the objective (then the
            score is a metric of its own).
    """
    hparams = [hp_api.HParam(hp.name, _domain(hp)) for hp in space.space]
    metric_infos = [hp_api.Metric(tag, display_name=name)
                    for _, tag, name in metrics(budgeted)]
    with _writer(root) as writer, writer.as_default():
        hp_api.hparams_config(hparams=hparams, metrics=metric_infos)


def write_baseline(root, baseline):
    """Logs the search's ridge baseline in the search run: its MSE and a text."""
    from tuner_prune.data.baseline import describe

    with _search_writer(root) as writer, writer.as_default(step=0):
        tf.summary.scalar(BASELINE_TAG, float32_clipped(baseline["val_mse"]),
                          description="Validation MSE of the ridge baseline.")
        tf.summary.text("baseline", describe(baseline))


def write_trial_end(root, trial, trials, budgeted=False, baseline=None):
    """Logs an ended trial: its HParams session and the search-level run.

    Args:
        root: The tuner's TensorBoard folder.
        trial: The ended ``Trial``, completed or failed.
        trials: The oracle's trials, ended or not (``get_best_trials`` with a
            large count lists them all, also through a distributed oracle).
        budgeted: Whether a size budget penalises the objective: the
            best-so-far is then the best ``score``, not ``val_mse``.
        baseline: The search's ridge baseline, or ``None``.
    """
    _write_session(root, trial, budgeted)
    _write_progress(root, trials, budgeted, baseline)


def _write_session(root, trial, budgeted):
    completed = trial.status == COMPLETED
    values = {"status": float(completed)}
    if completed:
        values.update({name: _metric(trial, name) for name, _, _ in metrics(budgeted)
                       if name != "status"})
    status = api_pb2.STATUS_SUCCESS if completed else api_pb2.STATUS_FAILURE
    with _writer(trial_run(root, trial.trial_id)) as writer, writer.as_default(step=0):
        hp_api.hparams(trial.hyperparameters.values, trial_id=f"trial_{trial.trial_id}")
        for name, tag, _ in metrics(budgeted):
            if values.get(name) is not None:
                tf.summary.scalar(tag, float32_clipped(values[name]))
        tf.summary.experimental.write_raw_pb(
            hp_summary.session_end_pb(status).SerializeToString())


def _write_progress(root, trials, budgeted, baseline=None):
    ended = [t for t in trials if t.status == COMPLETED or t.status in FAILED]
    scores = [t.score for t in ended if _scored(t)]
    tag, what = ((BEST_SCORE_TAG, "score (validation MSE, penalised over --max-bytes)")
                 if budgeted else (BEST_TAG, "validation MSE"))
    with _search_writer(root) as writer, writer.as_default(step=len(ended)):
        if scores:
            tf.summary.scalar(tag, float32_clipped(min(scores)),
                              description=f"Best {what} once N trials have ended.")
        if baseline is not None:
            tf.summary.scalar(BASELINE_TAG, float32_clipped(baseline["val_mse"]))
        tf.summary.image(PLOT_TAG, _plot(ended, baseline)[None],
                         description="Validation MSE against final sparsity; "
                                     "failed trials are marked on the x axis.")


def _plot(trials, baseline=None):
    """A PNG (as a uint8 tensor) of validation MSE against final sparsity of ended trials.

    The best trial (lowest score) is circled; the baseline is a dashed line.
    """
    scored = [t for t in trials if _scored(t)]
    failed = [t for t in trials if t.status in FAILED]
    x = [t.hyperparameters.get("final_sparsity") for t in scored]
    y = [_val_mse(t) for t in scored]
    buffer = io.BytesIO()
    with plots.png_axes(buffer, "final_sparsity", "validation MSE",
                        f"{len(scored)} completed, {len(failed)} failed",
                        size=PLOT_SIZE) as axes:
        axes.scatter(x, y, label="completed")
        for trial, xi, yi in zip(scored, x, y):
            axes.annotate(trial.trial_id, (xi, yi), textcoords="offset points",
                          xytext=(4, 4))
        if scored:
            best = min(scored, key=lambda t: t.score)
            axes.scatter([best.hyperparameters.get("final_sparsity")], [_val_mse(best)],
                         s=160, facecolors="none", edgecolors="red", label="best")
        if failed:
            axes.scatter([t.hyperparameters.get("final_sparsity") for t in failed],
                         [0.0] * len(failed), marker="x", color="gray",
                         transform=axes.get_xaxis_transform(), clip_on=False,
                         label="failed")
        if baseline is not None:
            axes.axhline(baseline["val_mse"], color="gray", linestyle="--",
                         label="ridge baseline")
    return tf.image.decode_png(buffer.getvalue(), channels=4)


def _scored(trial):
    return trial.status == COMPLETED and trial.score is not None and math.isfinite(trial.score)


def _metric(trial, name):
    """A trial's last value of metric ``name``, or ``None`` if it has none."""
    return trial.metrics.get_last_value(name) if trial.metrics.exists(name) else None


def _val_mse(trial):
    return trial.metrics.get_last_value("val_mse")


def _domain(hp):
    """The HParams domain of a keras-tuner hyperparameter."""
    if isinstance(hp, kt_hp.Fixed):
        return hp_api.Discrete([hp.value])
    if isinstance(hp, kt_hp.Boolean):
        return hp_api.Discrete([False, True])
    if isinstance(hp, kt_hp.Choice):
        return hp_api.Discrete(list(hp.values))
    if isinstance(hp, kt_hp.Int):
        return hp_api.IntInterval(hp.min_value, hp.max_value)
    return hp_api.RealInterval(float(hp.min_value), float(hp.max_value))


@contextlib.contextmanager
def _search_writer(root):
    """The open writer of the search run under ``root``, flushed on leaving the block."""
    folder = os.path.abspath(os.path.join(root, SEARCH_RUN))
    writer = _search_writers.get(folder)
    if writer is None or not os.path.isdir(folder):  # New, or removed since.
        if writer is not None:
            writer.close()
        writer = _search_writers[folder] = tf.summary.create_file_writer(folder)
    try:
        yield writer
    finally:
        writer.flush()


@contextlib.contextmanager
def _writer(folder):
    """A summary file writer, closed (and so flushed) on leaving the block."""
    writer = tf.summary.create_file_writer(folder)
    try:
        yield writer
    finally:
        writer.close()
