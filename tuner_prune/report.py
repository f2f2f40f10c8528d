"""``python -m tuner_prune report``: every trial, its size, and the Pareto front.

Reads the trial records of a search directory through ``tuner_prune.records``;
needs neither TensorFlow nor the data.
"""

import csv
import io
import json
import os

from tuner_prune import baseline as baseline_lib, config as config_lib, folders, records
from tuner_prune import plots, state
from tuner_prune.errors import InputError
from tuner_prune.records import COMPLETED, RECORDED, SCHEDULE, best_trial_id

SHORT = {"nonzero_weights": "nonzero", "kernel_initializer": "initializer",
         "hidden_layers": "layers",
         "learning_rate": "lr"}


def load_trials(directory, project=records.PROJECT):
    """One row per trial of the search in ``directory``, sorted by validation MSE.

    Rows are ``records.read_trials``'s, with ``pareto`` (see ``pareto_flags``).

    Raises:
        InputError: ``directory`` holds no search.
    """
    rows = records.read_trials(directory, project)
    flags = pareto_flags(rows)
    for row, flag in zip(rows, flags):
        row["pareto"] = flag
    return sorted(rows, key=records.rank)


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
    return (row["status"] == COMPLETED and row["val_mse"] is not None
            and row["tflite_bytes"] is not None)


def other_hyperparameters(rows):
    """Names of the hyperparameters beyond the schedule's four, in order of appearance."""
    known = {*records.FIELDS, "pareto"}
    return list(dict.fromkeys(name for row in rows for name in row if name not in known))


def stored_budget(directory):
    """The ``--max-bytes`` the search in ``directory`` was run with, or ``None``.

    Raises:
        InputError: The search's settings are missing or cannot be read.
    """
    return state.stored_settings(directory)["config"].get("max_bytes")


def as_json(rows, max_bytes=None, baseline=None):
    return json.dumps({"best": best_trial_id(rows, max_bytes), "max_bytes": max_bytes,
                       "baseline": baseline, "trials": rows}, indent=2)


def baseline_line(rows, baseline, max_bytes=None):
    """The baseline, and the best trial's validation MSE as a multiple of its."""
    if baseline is None:
        return f"Baseline: none stored with the search ({baseline_lib.FILE})\n"
    text = baseline_lib.describe(baseline)
    best = best_trial_id(rows, max_bytes)
    row = next((r for r in rows if r["trial_id"] == best), None)
    if row is not None:
        text += (f"; best trial {best}'s val_mse is "
                 f"{baseline_lib.ratio(row['val_mse'], baseline):.3g} x the baseline's")
    return text + "\n"


def as_csv(rows):
    buffer = io.StringIO()
    fields = [*records.FIELDS, *other_hyperparameters(rows), "pareto"]
    writer = csv.DictWriter(buffer, fieldnames=fields)
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def as_table(rows, max_bytes=None):
    """The rows as aligned text; a ``score`` column only if a budget penalised one.

    The best mark goes to the lowest validation MSE within ``max_bytes``.
    """
    best = best_trial_id(rows, max_bytes)
    recorded = [name for name in RECORDED if name != "score" or _penalised(rows)]
    others = other_hyperparameters(rows)
    header = ["", "trial", "status", "final_sp", "power", "begin", "end", *others,
              *recorded]
    header = [SHORT.get(name, name) for name in header]
    lines = [header]
    for row in rows:
        mark = ("*" if row["trial_id"] == best else " ") + ("P" if row["pareto"] else " ")
        lines.append([mark, row["trial_id"], row["status"]] + [
            _cell(row.get(name)) for name in (*SCHEDULE, *others, *recorded)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths))
                     for line in lines)
    within = "" if max_bytes is None else f" within --max-bytes {max_bytes}"
    legend = f"* best (lowest validation MSE{within})   P Pareto-optimal (size, MSE)\n"
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


def plot(rows, path, max_bytes=None, baseline=None):
    """Scatter of validation MSE against ``.tflite`` bytes, front and best marked;
    the baseline's validation MSE is a dashed line.

    Returns:
        The labels of the plot's legend.

    Raises:
        InputError: No completed trial has a size to plot.
    """
    from matplotlib import ticker

    measured = [r for r in rows if _measured(r)]
    if not measured:
        raise InputError(f"--plot {path}: Expected completed trials with sizes to plot, "
                         f"received none.")
    front = sorted((r for r in measured if r["pareto"]), key=lambda r: r["tflite_bytes"])
    best = best_trial_id(rows, max_bytes)
    with plots.png_axes(path, ".tflite bytes", "validation MSE",
                        "Error against model size") as axes:
        axes.scatter([r["tflite_bytes"] for r in measured], [r["val_mse"] for r in measured],
                     c=[r["final_sparsity"] for r in measured], cmap="viridis",
                     label="trials (colour: final sparsity)")
        axes.step([r["tflite_bytes"] for r in front], [r["val_mse"] for r in front],
                  where="post", color="tab:red", label="Pareto front")
        for row in measured:
            if row["trial_id"] == best:
                axes.scatter([row["tflite_bytes"]], [row["val_mse"]], s=200, marker="*",
                             color="tab:orange", edgecolor="black", label="best", zorder=3)
        if baseline is not None:
            axes.axhline(baseline["val_mse"], color="gray", linestyle="--",
                         label=f"ridge baseline ({baseline['weights']:,} weights)")
        axes.set_xscale("log")
        axes.set_yscale("log")
        axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    return [text.get_text() for text in axes.get_legend().get_texts()]


def check_plot_path(path):
    """Raises ``InputError`` unless ``path`` names a file a plot can be written to.

    Writes nothing: the test file is unnamed and gone when closed.
    """
    folder = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise InputError(f"--plot {path}: Expected a file name, received a folder.")
    if not os.path.isdir(folder):
        raise InputError(f"--plot {path}: Expected a file in an existing folder, received "
                         f"{os.path.dirname(path)}, which is not a folder.")
    refused = folders.write_refusal(folder)
    if refused:
        raise InputError(f"--plot {path}: Expected a writable folder, received "
                         f"{os.path.dirname(path)} ({refused}).")


def run_report(directory, output_format="table", plot_path=None, max_bytes=None):
    """The report of the search in ``directory`` as text; writes the plot if asked.

    Args:
        directory: The search's ``--directory``.
        output_format: ``table``, ``json`` or ``csv``.
        plot_path: Where to draw the plot, or ``None``.
        max_bytes: The size budget of the best mark; ``None`` takes the
            search's own ``--max-bytes`` (none if it ran without one).

    Raises:
        InputError: ``directory`` holds no search, or trials without their
            settings, a damaged file (named), ``max_bytes`` < 1, or the plot
            cannot be written there.
    """
    config_lib.check_max_bytes(max_bytes)
    if plot_path:
        check_plot_path(plot_path)
    rows = load_trials(directory)
    budget = stored_budget(directory)  # Refuses trials without their settings.
    budget = budget if max_bytes is None else max_bytes
    baseline = baseline_lib.load(directory)
    if plot_path:
        plot(rows, plot_path, budget, baseline)
    if output_format == "csv":
        return as_csv(rows)
    if output_format == "json":
        return as_json(rows, budget, baseline)
    return as_table(rows, budget) + baseline_line(rows, baseline, budget)
