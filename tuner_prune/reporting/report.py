"""``python -m tuner_prune report``: every trial, its size and work, and the Pareto front.

Reads the trial records of a search directory through ``tuner_prune.store.records``,
and the manifest of its export when ``--export-dir`` holds one of its trials
(the shipped files' flash, RAM, MACs and runtimes); needs neither TensorFlow
nor the data.
"""

import csv
import io
import json
import os

from tuner_prune.core import metrics, plots
from tuner_prune.core.errors import InputError
from tuner_prune.data import baseline as baseline_lib
from tuner_prune.export import choice
from tuner_prune.settings import config as config_lib, state
from tuner_prune.store import folders, records
from tuner_prune.store.ownership import MANIFEST
from tuner_prune.store.records import ARENA, COMPLETED, MACS, RECORDED, SCHEDULE, best_trial_id

SHORT = {"nonzero_weights": "nonzero", "kernel_initializer": "initializer",
         "hidden_layers": "layers", "learning_rate": "lr", ARENA: "arena"}


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


def load_export(export_dir, rows, explicit=False):
    """The manifest in ``export_dir`` if it is the export of one of ``rows``' trials.

    An export is a trial's when the manifest's ``trial_id`` is one of the
    search's and its ``best_hyperparameters`` are that trial's.

    Args:
        export_dir: The export's folder (``--export-dir``).
        rows: The search's rows (``load_trials``).
        explicit: Whether the user named ``export_dir``: then a folder without
            a manifest, or with another search's, is refused; otherwise
            (the CLI's default folder) it is ``None``.

    Raises:
        InputError: ``explicit`` and no export of this search there, or a
            damaged manifest (named).
    """
    path = os.path.join(export_dir, MANIFEST)
    if not os.path.isfile(path):
        if explicit:
            raise InputError(f"--export-dir {export_dir}: Expected an export (its "
                             f"{MANIFEST}), received a folder without one.")
        return None
    manifest = records.read_json(path, "a tuner_prune export manifest",
                                 ("trial_id", "best_hyperparameters", "tflite"))
    row = next((r for r in rows if r["trial_id"] == manifest["trial_id"]), None)
    ours = row is not None and all(row.get(name) == value for name, value
                                   in manifest["best_hyperparameters"].items())
    if not ours:
        if explicit:
            raise InputError(f"--export-dir {export_dir}: Expected the export of a trial "
                             f"of this search, received trial {manifest['trial_id']}'s "
                             f"with other hyperparameters.")
        return None
    return manifest


def artifacts(manifest):
    """The shipped files' flash, RAM and work, from an export's manifest.

    Returns:
        One dict per file (``model.tflite``, ``model_data.cc``, ``model.c``,
        those shipped): ``file``, ``variant``, ``flash_bytes`` (a
        ``.tflite``'s or C++ array's bytes; ``model.c``'s object's text plus
        data), ``ram_bytes`` (the TFLM tensor arena, ``model_data.h``'s
        ``kTensorArenaSize``; ``model.c``'s static buffers; ``None`` when not
        measured), ``macs`` (multiply-adds per row: every weight for the
        interpreters, the nonzero ones for ``model.c``), ``val_mse``, and
        ``runtimes``: where it computes as its reference (``choice``'s labels).
    """
    by_name = {row["name"]: row for row in manifest.get("candidates", [])}
    macs = manifest.get("macs_per_inference") or {}
    micro = manifest.get("micro")
    micro_arena = ((micro or {}).get("arena") or {}).get("bytes")

    def runtimes(variant):
        states = (by_name.get(variant) or {}).get("runtimes") or {}
        return [choice.RUNTIME_LABELS[name] for name in choice.RUNTIMES
                if states.get(name) in ("matched", "reference")]

    tflite = manifest["tflite"]
    arena = (by_name.get(tflite["variant"]) or {}).get("arena_bytes")
    if arena is None and micro and micro["variant"] == tflite["variant"]:
        arena = micro_arena
    found = [{"file": tflite["path"], "variant": tflite["variant"],
              "flash_bytes": tflite["bytes"], "ram_bytes": arena,
              "macs": macs.get("dense"), "val_mse": tflite["val_mse"],
              "runtimes": runtimes(tflite["variant"])}]
    if micro:
        found.append({"file": micro["source"], "variant": micro["variant"],
                      "flash_bytes": micro["bytes"], "ram_bytes": micro_arena,
                      "macs": macs.get("dense"),
                      "val_mse": (by_name.get(micro["variant"]) or {}).get("val_mse"),
                      "runtimes": [choice.RUNTIME_LABELS[choice.TFLM]]})
    c = manifest.get("c") or {}
    if c.get("source"):
        found.append({"file": c["source"], "variant": f"{c['value_type']} weights",
                      "flash_bytes": c["flash_bytes"], "ram_bytes": c["ram_bytes"],
                      "macs": c.get("macs"), "val_mse": c["val_mse"], "runtimes": ["C"]})
    return found


def export_summary(manifest, export_dir):
    """What ``--format json`` says of the export: ``None`` without one."""
    if manifest is None:
        return None
    c = manifest.get("c") or {}
    return {"directory": export_dir, "trial_id": manifest["trial_id"],
            "shipped": manifest.get("shipped", "trial"),
            "artifacts": artifacts(manifest),
            "no_c_reason": None if c.get("source") else c.get("reason"),
            "runtimes": {row["name"]: row.get("runtimes")
                         for row in manifest.get("candidates", [])}}


def export_lines(manifest, export_dir):
    """The table's lines on the export: its files' flash, RAM, MACs, runtimes."""
    if manifest is None:
        return ""
    shipped = {"baseline": "the ridge baseline's linear model in its place",
               "blend": "marked E, averaged with the ridge baseline"}.get(
                   manifest.get("shipped"), "marked E")
    lines = [["file", "variant", "flash", "ram", "macs", "val_mse", "runs in"]]
    for row in artifacts(manifest):
        lines.append([row["file"], row["variant"], *(_cell(row[name]) for name in
                      ("flash_bytes", "ram_bytes", "macs", "val_mse")),
                      ", ".join(row["runtimes"]) or "-"])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    table = "\n".join("  " + "  ".join(
        cell.ljust(width) if i in (0, 1, 6) else cell.rjust(width)
        for i, (cell, width) in enumerate(zip(line, widths))).rstrip() for line in lines)
    text = (f"Export in {export_dir}: trial {manifest['trial_id']} ({shipped}); flash "
            f"and ram in bytes, macs per row\n{table}\n")
    c = manifest.get("c") or {}
    if c and not c.get("source"):
        text += f"  No model.c: {c.get('reason')}\n"
    text += ("  flash: the file's bytes (model.c: its object's text plus data); ram: the "
             "TFLM tensor arena (- where not measured; the int8 one is measured for "
             "model_data.h), model.c's static buffers\n")
    line = choice.runtimes_line(manifest.get("candidates", []))
    return text + (f"  {line}\n" if line else "")


def as_json(rows, max_bytes=None, baseline=None, export=None, max_flash=None, max_ram=None):
    """The report as JSON: ``best`` within the tighter of ``max_bytes`` and
    ``max_flash`` and within ``max_ram``, as the search scored its trials."""
    limit, _ = metrics.trial_budget(max_bytes, max_flash) or (None, None)
    return json.dumps({"best": best_trial_id(rows, limit, max_ram), "max_bytes": max_bytes,
                       "max_flash": max_flash, "max_ram": max_ram, "baseline": baseline,
                       "export": export, "trials": rows}, indent=2)


def baseline_line(rows, baseline, max_bytes=None, max_ram=None):
    """The baseline, and the best trial's validation MSE as a multiple of its."""
    if baseline is None:
        return f"Baseline: none stored with the search ({baseline_lib.FILE})\n"
    text = baseline_lib.describe(baseline)
    best = best_trial_id(rows, max_bytes, max_ram)
    row = next((r for r in rows if r["trial_id"] == best), None)
    if row is not None:
        text += (f"; best trial {best}'s val_mse is "
                 f"{baseline_lib.ratio(row['val_mse'], baseline):.3g} x the baseline's")
    return text + "\n"


def as_csv(rows):
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, [*records.FIELDS, *other_hyperparameters(rows), "pareto"])
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def as_table(rows, max_bytes=None, exported=None, budget_flag="--max-bytes", max_ram=None):
    """The rows as aligned text; a ``score`` column only if a budget penalised one,
    the MACs and arena columns only if some trial recorded them.

    The best mark goes to the lowest validation MSE within ``max_bytes`` (the
    budget of ``budget_flag``: ``--max-bytes`` or ``--max-flash``) and
    ``max_ram`` (by its recorded TFLM arena); the E mark to the trial
    ``exported``, if any.
    """
    best = best_trial_id(rows, max_bytes, max_ram)
    recorded = [name for name in RECORDED if (name != "score" or _penalised(rows))
                and (name not in (*MACS, ARENA) or any(r.get(name) is not None
                                                       for r in rows))]
    others = other_hyperparameters(rows)
    header = ["", "trial", "status", "final_sp", "power", "begin", "end", *others,
              *recorded]
    header = [SHORT.get(name, name) for name in header]
    lines = [header]
    for row in rows:
        mark = ("*" if row["trial_id"] == best else " ") + ("P" if row["pareto"] else " ")
        mark += "" if exported is None else ("E" if row["trial_id"] == exported else " ")
        lines.append([mark, row["trial_id"], row["status"]] + [
            _cell(row.get(name)) for name in (*SCHEDULE, *others, *recorded)])
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = "\n".join("  ".join(cell.rjust(width) for cell, width in zip(line, widths))
                     for line in lines)
    limits = [(flag, limit) for flag, limit in ((budget_flag, max_bytes),
                                                ("--max-ram", max_ram)) if limit is not None]
    within = " and ".join(f"{flag} {limit}" for flag, limit in limits)
    legend = (f"* best (lowest validation MSE{within and ' within ' + within})   "
              f"P Pareto-optimal (size, MSE)")
    legend += "" if exported is None else "   E exported"
    legend += "\n"
    if MACS[0] in recorded:
        legend += ("macs: multiply-adds per row of the pruned kernels' nonzero weights "
                   "(a sparse computation, model.c); dense_macs: of all their weights "
                   "(TFLite, TFLM)\n")
    if ARENA in recorded:
        legend += "arena: the TFLM tensor arena, with its margin (under --max-ram)\n"
    elif max_ram is not None:
        legend += (f"No trial is marked best within --max-ram {max_ram}: none recorded its "
                   f"TFLM arena (the search ran without --max-ram)\n")
    if "score" in recorded:
        over = " or ".join(flag for flag, _ in limits) or budget_flag
        legend += f"score: the search's objective, val_mse penalised over {over}\n"
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


ARTIFACT_MARKERS = {"model.tflite": "s", "model_data.cc": "^", "model.c": "D"}


def plot(rows, path, max_bytes=None, baseline=None, export=None, max_ram=None):
    """Scatter of validation MSE against flash bytes: each trial's recorded
    ``.tflite``, front and best marked; the baseline's validation MSE is a
    dashed line; the files of ``export`` (``export_summary``), if any, at their
    own flash and validation MSE.

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
    best = best_trial_id(rows, max_bytes, max_ram)
    with plots.png_axes(path, "flash bytes (trials: recorded .tflite)", "validation MSE",
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
        for row in (export or {}).get("artifacts", []):
            if row["val_mse"] is not None:
                axes.scatter([row["flash_bytes"]], [row["val_mse"]], s=70, zorder=4,
                             marker=ARTIFACT_MARKERS.get(row["file"], "o"),
                             facecolor="none", edgecolor="black",
                             label=f"exported {row['file']} ({row['variant']})")
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


def run_report(directory, output_format="table", plot_path=None, max_bytes=None,
               export_dir=None, max_flash=None, max_ram=None):
    """The report of the search in ``directory`` as text; writes the plot if asked.

    Args:
        directory: The search's ``--directory``.
        output_format: ``table``, ``json`` or ``csv``.
        plot_path: Where to draw the plot, or ``None``.
        max_bytes: The size budget of the best mark; ``None`` takes the
            search's own ``--max-bytes`` (none if it ran without one).
        max_flash: The flash budget of the best mark, compared as
            ``max_bytes`` with each trial's recorded ``.tflite`` bytes (the
            tighter of the two counts); ``None`` takes the search's own.
        max_ram: The RAM budget of the best mark, by each trial's recorded
            TFLM arena (none recorded: none fits); ``None``: the search's own.
        export_dir: The export whose files are reported (``load_export``,
            refused unless it is of this search); ``None``: the CLI's default
            ``--export-dir``, reported only when it holds this search's export.

    Raises:
        InputError: ``directory`` holds no search, or trials without their
            settings, a damaged file (named), ``max_bytes`` < 1, or the plot
            cannot be written there.
    """
    given = {"max_bytes": max_bytes, "max_flash": max_flash, "max_ram": max_ram}
    for name, flag in metrics.SEARCH_BUDGETS:
        config_lib.check_max_bytes(given[name], flag)
    if plot_path:
        check_plot_path(plot_path)
    rows = load_trials(directory)
    budgets = state.stored_budgets(directory)  # Refuses trials without their settings.
    budgets = {name: stored if given[name] is None else given[name]
               for name, stored in budgets.items()}
    budget, flag = (metrics.trial_budget(budgets["max_bytes"], budgets["max_flash"])
                    or (None, None))
    ram = budgets["max_ram"]
    baseline = baseline_lib.load(directory)
    folder = config_lib.SearchConfig.export_dir if export_dir is None else export_dir
    manifest = load_export(folder, rows, explicit=export_dir is not None)
    export = export_summary(manifest, folder)
    if plot_path:
        plot(rows, plot_path, budget, baseline, export, ram)
    if output_format == "csv":
        return as_csv(rows)
    if output_format == "json":
        return as_json(rows, budgets["max_bytes"], baseline, export, budgets["max_flash"], ram)
    exported = None if manifest is None else manifest["trial_id"]
    return (as_table(rows, budget, exported, flag or "--max-bytes", ram)
            + baseline_line(rows, baseline, budget, ram) + export_lines(manifest, folder))
