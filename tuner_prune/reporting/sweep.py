"""``python -m tuner_prune sweep``: the article's experiment, reproduced.

Trains the base model at each final sparsity over several initialisations,
each run a one-trial ``PruningTuner`` search with the schedule fixed, and plots
training and validation MSE against final sparsity as the article does.
"""

import csv
import dataclasses
import math
import os
import tempfile

import numpy as np

from tuner_prune.core import plots
from tuner_prune.settings import plan as plan_lib
from tuner_prune.space import schedule as schedule_lib
from tuner_prune.store import folders
from tuner_prune.tuning import progress
from tuner_prune.settings.config import TrainingConfig, check_positive
from tuner_prune.core.errors import InputError
from tuner_prune.space.bounds import Bound

CSV_FILE = "sweep.csv"
PLOTS = {"sweep.png": (0.0, 1.0), "sweep_zoom.png": (0.8, 1.0)}
COLUMNS = ("final_sparsity", "repeat", "train_mse", "val_mse", "sparsity")


def default_steps(total_steps):
    """The sweep's schedule: prune from 1/16 to 7/16 of training (40 -> 280 of 640)."""
    return round(total_steps / 16), round(7 * total_steps / 16)


@dataclasses.dataclass
class SweepConfig(TrainingConfig):
    """Settings of ``python -m tuner_prune sweep`` (see the README).

    ``sparsities`` may be given as the flag's text, numbers joined by commas.
    ``begin_step`` and ``end_step`` default to ``default_steps``.
    """

    sparsities: tuple = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)
    repeats: int = 10
    out: str = "sweep"
    power: float = 3.0
    begin_step: int = None
    end_step: int = None

    def __post_init__(self):
        if isinstance(self.sparsities, str):
            self.sparsities = _parse_sparsities(self.sparsities)
        super().__post_init__()
        for value in self.sparsities:
            schedule_lib.check_final_sparsity(value, "--sparsities")
        check_positive("repeats", self.repeats)
        schedule_lib.check_power(self.power, "--power")
        if not math.isfinite(self.power):  # As ``search --power`` refuses it.
            raise InputError(f"Expected --power to be finite, received {self.power!r}.")

    def schedule_steps(self, total_steps):
        """``(begin_step, end_step)`` of every run: the flags, else ``default_steps``."""
        default_begin, default_end = default_steps(total_steps)
        return (default_begin if self.begin_step is None else self.begin_step,
                default_end if self.end_step is None else self.end_step)


def _parse_sparsities(text):
    try:
        return tuple(float(value) for value in text.split(","))
    except ValueError:
        raise InputError(f"Expected --sparsities as numbers separated by commas, "
                         f"received {text!r}.") from None


def run_sweep(config):
    """Runs every (sparsity, repeat), writes the CSV and the two plots.

    Raises:
        InputError: ``--out`` is a file, cannot be written or holds a
            ``sweep.csv`` or plot a sweep did not write (before any training),
            or ``plan.resolve_sweep``'s.

    Returns:
        The rows written, as dicts keyed by ``COLUMNS``.
    """
    folders.check_writable(config.out, "--out")
    check_own_files(config.out)
    plan = plan_lib.resolve_sweep(config)
    os.makedirs(config.out, exist_ok=True)
    rows = train_all(plan, [(value, repeat) for value in config.sparsities
                            for repeat in range(config.repeats)])
    write_csv(rows, os.path.join(config.out, CSV_FILE))
    for name, limits in PLOTS.items():
        plot(rows, os.path.join(config.out, name), limits)
    return rows


def check_own_files(out):
    """Refuses an ``out`` holding a ``sweep.csv``, ``sweep.png`` or
    ``sweep_zoom.png`` that no sweep wrote (or a link in their place).

    The files are a sweep's when ``sweep.csv`` is a regular file starting with
    the sweep's header; a sweep run again into its folder replaces them.

    Raises:
        InputError: Such a file, named.
    """
    csv_path = os.path.join(out, CSV_FILE)
    ours = os.path.isfile(csv_path) and not os.path.islink(csv_path) and _starts_with(
        csv_path, ",".join(COLUMNS))
    for name in (CSV_FILE, *PLOTS):
        path = os.path.join(out, name)
        if os.path.lexists(path) and not (ours and os.path.isfile(path)
                                          and not os.path.islink(path)):
            raise InputError(f"Expected --out without files a sweep did not write, "
                             f"received {path}, not a sweep's {name}; move it or choose "
                             f"another --out.")


def _starts_with(path, header):
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.readline().rstrip("\r\n") == header
    except (OSError, UnicodeDecodeError):
        return False


def train_all(plan, runs):
    """``train_one`` of each ``(final_sparsity, repeat)`` in ``runs``, in order,
    with a ``progress.ProgressLine`` of the runs done and the time left."""
    clock = progress.SearchClock(plan.config.epochs)
    line = progress.ProgressLine("Sweep", len(runs), "{n}/{total} runs")
    rows = []
    try:
        for final_sparsity, repeat in runs:
            clock.trial_began()
            rows.append(train_one(plan, final_sparsity, repeat))
            clock.trial_ended()
            line.step(f"sparsity {final_sparsity} repeat {repeat}, val_mse "
                      f"{rows[-1]['val_mse']:.4g}, "
                      f"{clock.describe('sweep', 0, len(runs) - len(rows))}")
    finally:
        line.close()
    return rows


def train_one(plan, final_sparsity, repeat):
    """One run: a one-trial search with every schedule value fixed.

    Args:
        plan: The sweep's ``Plan`` (``plan.resolve_sweep``).
        final_sparsity: This run's, one of the plan's sparsities.
        repeat: The run's index among the initialisations.
    """
    from tuner_prune.tuning.hypermodel import PruningHyperModel
    from tuner_prune.tuning.tuner import PruningTuner

    config, dataset = plan.config, plan.dataset
    # Still resolved: the plan's bound covers every sparsity of the sweep.
    space = dataclasses.replace(plan.space,
                                final_sparsity=Bound(final_sparsity, final_sparsity))
    hypermodel = PruningHyperModel(plan.builder, input_shape=dataset.input_shape,
                                   epochs=config.epochs,
                                   steps_per_epoch=plan.steps_per_epoch, space=space,
                                   hyperparameters=plan.hyperparameters)
    with tempfile.TemporaryDirectory(dir=config.out) as folder:
        tuner = PruningTuner(hypermodel, max_trials=1, seed=config.seed + 1000 * repeat,
                             directory=folder, verbose=False, fit_baseline=False)
        tuner.search(dataset.x_train, dataset.y_train,
                     validation_data=(dataset.x_val, dataset.y_val),
                     epochs=config.epochs, batch_size=config.batch_size)
        trial = tuner.best_trial()
        if trial is None:
            raise RuntimeError(f"sparsity {final_sparsity}, repeat {repeat} failed: "
                               f"{next(iter(tuner.oracle.trials.values())).message}")
        model = tuner.load_model(trial)
    return {"final_sparsity": final_sparsity, "repeat": repeat,
            "train_mse": scaled_mse(model, dataset, "train"), "val_mse": trial.score,
            "test_mse": scaled_mse(model, dataset, "test"),
            "sparsity": trial.metrics.get_last_value("sparsity")}


def scaled_mse(model, dataset, split):
    """MSE of a model trained on scaled data, in the target's units."""
    from tuner_prune.export.measure import model_mse

    return model_mse(model, *dataset.scaled(split), target_scale=dataset.y_scale)


def write_csv(rows, path):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)


def summarise(rows):
    """``{sparsity: (train mean, train std, val mean, val std)}``."""
    summary = {}
    for value in sorted({row["final_sparsity"] for row in rows}):
        train = [r["train_mse"] for r in rows if r["final_sparsity"] == value]
        val = [r["val_mse"] for r in rows if r["final_sparsity"] == value]
        summary[value] = (np.mean(train), np.std(train), np.mean(val), np.std(val))
    return summary


def plot(rows, path, limits):
    """Mean and spread of train and validation MSE against final sparsity (log y)."""
    summary = {k: v for k, v in summarise(rows).items() if limits[0] <= k <= limits[1]}
    repeats = len(rows) // max(1, len(summarise(rows)))
    with plots.png_axes(path, "final sparsity", "MSE", f"Loss against final sparsity "
                        f"({repeats} initialisations each)") as axes:
        sparsities = np.array(list(summary))
        stats = np.array(list(summary.values())).reshape(-1, 4)
        for offset, label in ((0, "training"), (2, "validation")):
            mean, spread = stats[:, offset], stats[:, offset + 1]
            axes.plot(sparsities, mean, marker="o", label=f"{label} MSE (mean)")
            axes.fill_between(sparsities, np.maximum(mean - spread, mean * 1e-3),
                              mean + spread, alpha=0.25)
        if summary:
            axes.set_yscale("log")
        else:  # A log scale of no data cannot be drawn: say why the plot is empty.
            axes.text(0.5, 0.5, f"no final sparsity of the sweep in [{limits[0]}, "
                      f"{limits[1]}]", ha="center", va="center", transform=axes.transAxes)
            axes.set_yticks([])
        axes.set_xlim(*limits)
