"""``python -m tuner_prune sweep``: the article's experiment, reproduced.

Trains the base model at each final sparsity over several initialisations,
each run a one-trial ``PruningTuner`` search with the schedule fixed, and plots
training and validation MSE against final sparsity as the article does.
"""

import csv
import dataclasses
import os
import sys
import tempfile
import time

import numpy as np

from tuner_prune import data as data_lib, models, schedule as schedule_lib
from tuner_prune.config import TrainingConfig
from tuner_prune.errors import InputError
from tuner_prune.space import ScheduleSpace

CSV_FILE = "sweep.csv"
PLOTS = {"sweep.png": (0.0, 1.0), "sweep_zoom.png": (0.8, 1.0)}
COLUMNS = ("final_sparsity", "repeat", "train_mse", "val_mse", "sparsity")


def default_steps(total_steps):
    """The sweep's schedule: prune from 1/16 to 7/16 of training (40 -> 280 of 640)."""
    return round(total_steps / 16), round(7 * total_steps / 16)


@dataclasses.dataclass
class SweepConfig(TrainingConfig):
    """Settings of ``python -m tuner_prune sweep`` (see the README)."""

    sparsities: tuple = (0.0, 0.5, 0.8, 0.9, 0.95, 0.98)
    repeats: int = 10
    out: str = "sweep"
    power: float = 3.0
    begin_step: int = None
    end_step: int = None

    def __post_init__(self):
        super().__post_init__()
        for value in self.sparsities:
            if not 0.0 <= value < 1.0:
                raise InputError(f"Expected --sparsities in [0, 1), received {value!r}.")
        if self.repeats < 1:
            raise InputError(f"Expected --repeats >= 1, received {self.repeats!r}.")
        if not self.power > 0:  # NaN too.
            raise InputError(f"Expected --power > 0, received {self.power!r}.")


class Progress:
    """One self-rewriting line: runs done, elapsed, estimated time left."""

    def __init__(self, total, stream=sys.stdout):
        self.total, self.done, self.stream = total, 0, stream
        self.start = time.monotonic()

    def step(self, label):
        self.done += 1
        elapsed = time.monotonic() - self.start
        left = elapsed / self.done * (self.total - self.done)
        filled = int(30 * self.done / self.total)
        self.stream.write(f"\r[{'#' * filled}{'.' * (30 - filled)}] {self.done}/"
                          f"{self.total} runs, {label}, {elapsed:.0f} s elapsed, "
                          f"~{left:.0f} s left ")
        self.stream.flush()
        if self.done == self.total:
            self.stream.write("\n")


def run_sweep(config):
    """Runs every (sparsity, repeat), writes the CSV and the two plots.

    Returns:
        The rows written, as dicts keyed by ``COLUMNS``.
    """
    dataset = data_lib.load_dataset(config.data, config.target, config.seed,
                                    config.n_samples, config.n_features,
                                    config.n_informative, config.noise)
    builder = models.import_builder(config.model) if config.model else None
    per_epoch = schedule_lib.steps_per_epoch(len(dataset.x_train), config.batch_size)
    begin, end = _schedule_steps(config, per_epoch)
    os.makedirs(config.out, exist_ok=True)
    progress = Progress(len(config.sparsities) * config.repeats)
    rows = []
    for final_sparsity in config.sparsities:
        for repeat in range(config.repeats):
            rows.append(train_one(config, dataset, builder, per_epoch, final_sparsity,
                                  begin, end, repeat))
            progress.step(f"sparsity {final_sparsity} repeat {repeat}: val_mse "
                          f"{rows[-1]['val_mse']:.4g}")
    write_csv(rows, os.path.join(config.out, CSV_FILE))
    for name, limits in PLOTS.items():
        plot(rows, os.path.join(config.out, name), limits)
    return rows


def _schedule_steps(config, per_epoch):
    default_begin, default_end = default_steps(config.epochs * per_epoch)
    begin = default_begin if config.begin_step is None else config.begin_step
    end = default_end if config.end_step is None else config.end_step
    ScheduleSpace.from_text(begin_step=str(begin), end_step=str(end)).resolve(
        config.epochs * per_epoch, per_epoch)
    return begin, end


def train_one(config, dataset, builder, per_epoch, final_sparsity, begin, end, repeat):
    """One run: a one-trial search with every schedule value fixed."""
    from tuner_prune.hypermodel import PruningHyperModel
    from tuner_prune.tuner import PruningTuner

    space = ScheduleSpace.from_text(final_sparsity=str(final_sparsity),
                                    power=str(config.power), begin_step=str(begin),
                                    end_step=str(end))
    hypermodel = PruningHyperModel(builder, n_features=dataset.n_features,
                                   epochs=config.epochs, steps_per_epoch=per_epoch,
                                   space=space)
    with tempfile.TemporaryDirectory(dir=config.out) as folder:
        tuner = PruningTuner(hypermodel, max_trials=1, seed=config.seed + 1000 * repeat,
                             directory=folder, verbose=False)
        tuner.search(*dataset.scaled("train"), validation_data=dataset.scaled("val"),
                     batch_size=config.batch_size, target_scale=dataset.y_scale)
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
    from tuner_prune.measure import model_mse

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
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    summary = {k: v for k, v in summarise(rows).items() if limits[0] <= k <= limits[1]}
    figure, axes = pyplot.subplots(figsize=(7, 4.5))
    sparsities = np.array(list(summary))
    stats = np.array(list(summary.values())).reshape(-1, 4)
    for offset, label in ((0, "training"), (2, "validation")):
        mean, spread = stats[:, offset], stats[:, offset + 1]
        axes.plot(sparsities, mean, marker="o", label=f"{label} MSE (mean)")
        axes.fill_between(sparsities, np.maximum(mean - spread, mean * 1e-3),
                          mean + spread, alpha=0.25)
    axes.set_yscale("log")
    axes.set_xlim(*limits)
    axes.set_xlabel("final sparsity")
    axes.set_ylabel("MSE")
    axes.set_title(f"Loss against final sparsity ({len(rows) // max(1, len(summarise(rows)))}"
                   f" initialisations each)")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    pyplot.close(figure)
