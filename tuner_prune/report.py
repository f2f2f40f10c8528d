"""``python -m tuner_prune report``: every trial, its size, and the Pareto front.

Reads the trial records of a search directory (keras-tuner's ``trial.json`` and
tuner_prune's ``record.json``); needs neither TensorFlow nor the data.
"""

import csv
import glob
import io
import json
import os

from tuner_prune.errors import InputError
from tuner_prune.space import NAMES as SCHEDULE
# From record.json: ``val_mse`` is the model's validation MSE; ``score`` the
# search's objective, ``val_mse`` penalised when the trial is over --max-bytes.
RECORDED = ("val_mse", "score", "sparsity", "nonzero_weights", "tflite_bytes")
FIELDS = ("trial_id", "status", *SCHEDULE, *RECORDED, "pareto")
PROJECT = "search"


def load_trials(directory, project=PROJECT):
    """One row per trial of the search in ``directory``, sorted by validation MSE.

    Raises:
        InputError: ``directory`` holds no search.
    """
    pattern = os.path.join(directory, project, "trial_*", "trial.json")
    paths = sorted(glob.glob(pattern))
    if not paths:
        raise InputError(f"Expected a search in {directory}, received a folder with "
                         f"no trials ({os.path.join(directory, project)}).")
    rows = [_row(path) for path in paths]
    flags = pareto_flags(rows)
    for row, flag in zip(rows, flags):
        row["pareto"] = flag
    return sorted(rows, key=_rank)


def _rank(row):
    return (row["val_mse"] is None, row["val_mse"] or 0.0, row["trial_id"])


def _row(path):
    with open(path, encoding="utf-8") as handle:
        trial = json.load(handle)
    record_path = os.path.join(os.path.dirname(path), "record.json")
    record = {}
    if os.path.isfile(record_path):
        with open(record_path, encoding="utf-8") as handle:
            record = json.load(handle)
    values = trial["hyperparameters"]["values"]
    completed = trial["status"] == "COMPLETED"
    row = {"trial_id": trial["trial_id"], "status": trial["status"]}
    row.update({name: values.get(name) for name in SCHEDULE})
    row.update({name: record.get(name) if completed else None for name in RECORDED})
    return row


def pareto_flags(rows):
    """Whether each row is Pareto-optimal in (``tflite_bytes``, ``val_mse``).

    A completed row is on the front unless another row is at least as small and
    at least as accurate, and strictly better in one of the two.
    """
    points = [(r["tflite_bytes"], r["val_mse"]) if _measured(r) else None for r in rows]
    return [point is not None and not any(
        other is not None and other != point and other[0] <= point[0]
        and other[1] <= point[1] for other in points) for point in points]


def _measured(row):
    return (row["status"] == "COMPLETED" and row["val_mse"] is not None
            and row["tflite_bytes"] is not None)


def best_trial_id(rows, max_bytes=None):
    """Lowest validation MSE among completed rows (within ``max_bytes``), or None."""
    fitting = [r for r in rows if r["status"] == "COMPLETED" and r["val_mse"] is not None
               and (max_bytes is None or (r["tflite_bytes"] or 0) <= max_bytes
                    and r["tflite_bytes"] is not None)]
    return min(fitting, key=_rank)["trial_id"] if fitting else None


def as_json(rows):
    return json.dumps({"best": best_trial_id(rows), "trials": rows}, indent=2)


def as_csv(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=FIELDS)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def as_table(rows):
    """The rows as aligned text; a ``score`` column only if a budget penalised one."""
    best = best_trial_id(rows)
    recorded = [name for name in RECORDED if name != "score" or _penalised(rows)]
    header = ["", "trial", "status", "final_sp", "power", "begin", "end", *recorded]
    header = [{"nonzero_weights": "nonzero"}.get(name, name) for name in header]
    lines = [header]
    for row in rows:
        mark = ("*" if row["trial_id"] == best else " ") + ("P" if row["pareto"] else " ")
        lines.append([mark, row["trial_id"], row["status"]] + [
            _cell(row[name]) for name in (*SCHEDULE, *recorded)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths))
                     for line in lines)
    legend = "* best (lowest validation MSE)   P Pareto-optimal (size, MSE)\n"
    if "score" in recorded:
        legend += "score: the search's objective, val_mse penalised over --max-bytes\n"
    return f"{text}\n{legend}"


def _penalised(rows):
    """Whether a size budget made some trial's score differ from its val_mse."""
    return any(r["score"] is not None and r["score"] != r["val_mse"] for r in rows)


def _cell(value):
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def plot(rows, path):
    """Scatter of validation MSE against ``.tflite`` bytes, front and best marked.

    Raises:
        InputError: No completed trial has a size to plot.
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot, ticker

    measured = [r for r in rows if _measured(r)]
    if not measured:
        raise InputError(f"--plot {path}: Expected completed trials with sizes to plot, "
                         f"received none.")
    front = sorted((r for r in measured if r["pareto"]), key=lambda r: r["tflite_bytes"])
    best = best_trial_id(rows)
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    axes.scatter([r["tflite_bytes"] for r in measured], [r["val_mse"] for r in measured],
                 c=[r["final_sparsity"] for r in measured], cmap="viridis",
                 label="trials (colour: final sparsity)")
    axes.step([r["tflite_bytes"] for r in front], [r["val_mse"] for r in front],
              where="post", color="tab:red", label="Pareto front")
    for row in measured:
        if row["trial_id"] == best:
            axes.scatter([row["tflite_bytes"]], [row["val_mse"]], s=200, marker="*",
                         color="tab:orange", edgecolor="black", label="best", zorder=3)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    axes.set_xlabel(".tflite bytes")
    axes.set_ylabel("validation MSE")
    axes.set_title("Error against model size")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)


def run_report(directory, output_format="table", plot_path=None):
    """The report of the search in ``directory`` as text; writes the plot if asked."""
    rows = load_trials(directory)
    if plot_path:
        plot(rows, plot_path)
    return {"table": as_table, "json": as_json, "csv": as_csv}[output_format](rows)
