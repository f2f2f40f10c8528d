"""The trial records of a search and its layout on disk (Keras-free).

A search in ``--directory`` keeps its state in the project folder
``<directory>/search``: keras-tuner's ``oracle.json`` and one ``trial_<id>``
folder per trial, holding keras-tuner's ``trial.json`` (status and
hyperparameters) and tuner_prune's ``record.json`` (what the trial measured)
and ``weights.h5`` (the weights it was scored with). The layout is
keras-tuner's; this module names it for the code that reads it without a
tuner (``report``, export's choice under a size budget) and for the tuner's
own writes.

The status names are keras-tuner's ``TrialStatus`` values, which are plain
strings; they are repeated here so that reading a search imports no
TensorFlow (``tests/store/test_records.py`` checks that they match).
"""

import glob
import json
import os

from tuner_prune.core.errors import InputError
from tuner_prune.space.bounds import NAMES
from tuner_prune.store.staging import write_json

PROJECT = "search"
ORACLE_FILE = "oracle.json"
TRIAL_FILE = "trial.json"
RECORD_FILE = "record.json"
WEIGHTS_FILE = "weights.h5"
OWNER_FILE = "owner.json"  # Which attempt holds a distributed trial (``fencing``).
TENSORBOARD = "tensorboard"

RUNNING = "RUNNING"
IDLE = "IDLE"
INVALID = "INVALID"
STOPPED = "STOPPED"
COMPLETED = "COMPLETED"
FAILED = "FAILED"
FINISHED = (COMPLETED, FAILED)

SCHEDULE = NAMES  # The four schedule hyperparameters, as the search names them.
# From record.json: ``val_mse`` is the model's validation MSE; ``score`` the
# search's objective, ``val_mse`` penalised when the trial is over --max-bytes
# (or --max-ram); ``macs`` and ``dense_macs`` the multiply-adds per row of its
# pruned kernels, nonzero weights only and all (``measure.count_macs``; ``None``
# in a search of an older tuner_prune, or of layers it does not count);
# ``arena_bytes`` its TFLM tensor arena, measured under --max-ram only.
MACS = ("macs", "dense_macs")
ARENA = "arena_bytes"
RECORDED = ("val_mse", "score", "sparsity", "nonzero_weights", "tflite_bytes", *MACS, ARENA)
FIELDS = ("trial_id", "status", *SCHEDULE, *RECORDED)
# What keras-tuner's ``Trial.set_state`` reads from a ``trial.json``.
TRIAL_KEYS = ("trial_id", "hyperparameters", "metrics", "score", "best_step", "status",
              "message")
# Whole numbers, stored as floats as metrics.
COUNTS = ("nonzero_weights", "tflite_bytes", *MACS, ARENA)


def project_dir(directory, project=PROJECT):
    """The folder of the search state in ``directory``."""
    return os.path.join(directory, project)


def trial_dir(project_folder, trial_id):
    """The folder of one trial, in a ``project_dir``."""
    return os.path.join(project_folder, f"trial_{trial_id}")


def tensorboard_dir(directory, project=PROJECT):
    """The TensorBoard logs of the search in ``directory``."""
    return os.path.join(directory, TENSORBOARD, project)


def write_record(path, trial_id, hyperparameters, record):
    """Writes a trial's ``record.json`` atomically.

    Args:
        path: Where (``RECORD_FILE`` in the trial's folder, or its
            attempt-private name on a worker).
        trial_id: The trial's id.
        hyperparameters: The trial's hyperparameter values.
        record: What the trial measured: ``status`` (``COMPLETED`` or
            ``FAILED``), then the figures or the ``reason`` it failed.
    """
    write_json(path, {"trial_id": trial_id, "hyperparameters": hyperparameters,
                      **record}, indent=2)


def read_trials(directory, project=PROJECT):
    """One row per trial of the search in ``directory``, in folder order.

    A row has the ``FIELDS``: the trial's id and status, its schedule, its
    other hyperparameters (``frequency`` when searched, the model's), and the
    ``RECORDED`` figures of its ``record.json`` (without one, of its
    ``trial.json``'s metrics, which repeat them), which are ``None`` unless
    the trial completed.

    Raises:
        InputError: ``directory`` holds no search, or a damaged file (named).
    """
    folder = project_dir(directory, project)
    paths = sorted(glob.glob(os.path.join(glob.escape(folder), "trial_*", TRIAL_FILE)))
    if not paths:
        raise InputError(f"Expected a search in {directory}, received a folder with "
                         f"no trials ({folder}).")
    return [_row(os.path.dirname(path)) for path in paths]


def _row(folder):
    trial = read_trial(os.path.join(folder, TRIAL_FILE))
    record_path = os.path.join(folder, RECORD_FILE)
    record = (read_json(record_path, "a tuner_prune trial record")
              if os.path.isfile(record_path) else _metrics(trial))
    values = trial["hyperparameters"]["values"]
    completed = trial["status"] == COMPLETED
    row = {"trial_id": trial["trial_id"], "status": trial["status"]}
    row.update({name: values.get(name) for name in SCHEDULE})
    row.update({name: value for name, value in values.items() if name not in FIELDS})
    row.update({name: record.get(name) if completed else None for name in RECORDED})
    return row


def _metrics(trial):
    """The ``RECORDED`` figures of a trial's ``trial.json`` (its record's, as metrics).

    What a completed trial without its ``record.json`` is ranked on, as the
    oracle ranks it.
    """
    tracked = (trial["metrics"] or {}).get("metrics") or {}
    figures = {}
    for name in RECORDED:
        observations = (tracked.get(name) or {}).get("observations") or [{}]
        value = observations[-1].get("value")
        value = value[-1] if isinstance(value, list) and value else value
        figures[name] = int(value) if name in COUNTS and value is not None else value
    return figures


def read_trial(path):
    """A trial's ``trial.json``, as ``read_json`` reads it."""
    return read_json(path, "a keras-tuner trial", TRIAL_KEYS)


def read_json(path, expected, keys=()):
    """The JSON object in ``path``, a file of the search.

    Args:
        path: The file.
        expected: What it should hold, for the message (``"a keras-tuner trial"``).
        keys: Keys the object must have.

    Raises:
        InputError: Naming ``path`` and what is wrong with it: unreadable, not
            JSON (a truncated file), not an object, or without one of ``keys``.
    """
    try:
        with open(path, encoding="utf-8") as handle:
            value = json.load(handle)
    except (OSError, ValueError) as error:  # ValueError: not JSON, not UTF-8.
        raise InputError(f"{path}: Expected {expected}, received a file that cannot "
                         f"be read ({error}).") from None
    if not isinstance(value, dict):
        raise InputError(f"{path}: Expected {expected}, received JSON that is not an "
                         f"object ({type(value).__name__}).")
    missing = [key for key in keys if key not in value]
    if missing:
        raise InputError(f"{path}: Expected {expected}, received JSON without "
                         f"{', '.join(missing)}.")
    return value


def rank(row):
    """Sort key of rows: lowest validation MSE first, unmeasured ones last."""
    return (row["val_mse"] is None, row["val_mse"] or 0.0, row["trial_id"])


def best_trial_id(rows, max_bytes=None, max_ram=None):
    """Lowest validation MSE among completed rows (whose ``tflite_bytes`` is
    within ``max_bytes`` and ``arena_bytes`` within ``max_ram``), or None."""
    fitting = [r for r in rows if r["status"] == COMPLETED and r["val_mse"] is not None
               and _within(r.get("tflite_bytes"), max_bytes)
               and _within(r.get(ARENA), max_ram)]
    return min(fitting, key=rank)["trial_id"] if fitting else None


def _within(value, budget):
    """Whether a recorded figure fits ``budget`` (an unmeasured one fits none)."""
    return budget is None or (value is not None and value <= budget)
