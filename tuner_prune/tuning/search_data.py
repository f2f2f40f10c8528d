"""What a search keeps of its data, so that a reloaded tuner can predict and export.

``PruningTuner.search`` writes ``<project_dir>/search_data.npz`` before its
first trial: the training length (epochs, batch size, steps per epoch), the
scaling fitted on the training split, a hash of the training and validation
splits, the raw validation split and the raw training rows that calibrate a
full-integer TFLite variant, and the ridge baseline's coefficients when the
search fitted it. A tuner opened on that folder in another process rebuilds
its models from it (``get_best_models``) and exports the best trial
(``export``) as the process that searched would. Read without unpickling.

``prepare`` checks and scales the raw arrays ``search`` is given; ``keep``
stores their ``SearchData`` with a new search, or checks it against the stored
one, with the ridge baseline.
"""

import dataclasses
import json
import os

import numpy as np

from tuner_prune.data import baseline as baseline_lib, splits
from tuner_prune.settings import config as config_lib
from tuner_prune.space import schedule
from tuner_prune.store import staging
from tuner_prune.data.dataset import Dataset, hash_arrays
from tuner_prune.data.encoding import Encoding
from tuner_prune.core.errors import InputError

FILE = "search_data.npz"


@dataclasses.dataclass(frozen=True)
class SearchData:
    """The stored data of a search (see the module's docstring)."""

    epochs: int
    batch_size: int
    steps_per_epoch: int
    x_scale: np.ndarray
    y_scale: float
    sha256: str
    x_val: np.ndarray
    y_val: np.ndarray
    x_calibration: np.ndarray
    ridge: tuple = None  # ``baseline.fit_ridge``'s ``(coefficients, intercept)``.
    inputs: str = None  # A DataFrame's ``encoding.Encoding`` as JSON (its manifest).

    @property
    def encoding(self):
        """The ``encoding.Encoding`` of rows given as a DataFrame to encode, or ``None``."""
        return None if self.inputs is None else Encoding.from_manifest(json.loads(self.inputs))

    @property
    def input_shape(self):
        return tuple(self.x_val.shape[1:])

    @property
    def total_steps(self):
        return self.epochs * self.steps_per_epoch

    def dataset(self, test_data=None):
        """The ``Dataset`` an export measures on: validation, calibration rows, test.

        Its training split holds only the calibration rows; its scaling is the
        search's.
        """
        x_test, y_test = (None, None) if test_data is None else test_data
        return Dataset(self.x_calibration, np.zeros(len(self.x_calibration), np.float32),
                       self.x_val, self.y_val, x_test, y_test, self.x_scale, self.y_scale,
                       "stored", encoding=self.encoding)


def prepare(x, y, validation_data, test_data, epochs, batch_size, input_shape=None):
    """Checks and scales the raw arrays of a search: its ``Dataset`` and ``SearchData``.

    Args:
        x, y, validation_data, test_data: As ``PruningTuner.search`` takes them.
        epochs: Epochs of each trial.
        batch_size: Rows per optimizer step.
        input_shape: The shape of a row the hypermodel expects, or ``None``.

    Returns:
        ``(dataset, data)``: the ``data.Dataset``, its scaling fitted on the
        training split, and the ``SearchData`` of the search on it (no ridge).

    Raises:
        InputError: Bad arrays, ``epochs``, ``batch_size`` or row shape.
    """
    config_lib.check_positive("epochs", epochs)
    config_lib.check_positive("batch_size", batch_size)
    dataset = splits.from_arrays(x, y, validation_data, test_data)
    if input_shape not in (None, dataset.input_shape):
        raise InputError(f"Expected rows of shape {input_shape} (the hypermodel's "
                         f"input_shape), received rows of shape {dataset.input_shape}.")
    per_epoch = schedule.steps_per_epoch(len(dataset.x_train), batch_size)
    from tuner_prune.export.exporter import representative_rows

    return dataset, from_dataset(dataset, epochs, batch_size, per_epoch,
                                 representative_rows(dataset))


def keep(project_dir, directory, dataset, data, stored, fit_baseline=True):
    """Stores ``data`` with a new search, or checks it against the stored one.

    With ``fit_baseline``, the ridge baseline is fitted and stored beside a new
    search, or the stored one reused (``baseline.ensure_ridge``); its
    coefficients are kept with the data.

    Args:
        project_dir: The search's project folder.
        directory: The search's ``--directory``, which holds the baseline.
        dataset: The ``Dataset`` of ``data``.
        data: The ``SearchData`` of this search (``prepare``'s).
        stored: The ``SearchData`` stored in ``project_dir`` (``load``'s), or
            ``None`` for a new search.
        fit_baseline: Fit or reuse the baseline.

    Returns:
        ``(data, baseline, fitted)``: the ``SearchData`` in use, the baseline
        (``None`` without ``fit_baseline``) and whether it was fitted now.

    Raises:
        InputError: The stored search has other settings or data.
    """
    _check_matching(project_dir, stored, data)
    ridge = stored.ridge if stored is not None else None
    baseline = fitted = None
    if fit_baseline:
        baseline, fitted = baseline_lib.ensure_ridge(directory, dataset,
                                                     refit=stored is None)
        ridge = fitted if fitted is not None else ridge
    data = dataclasses.replace(data, ridge=ridge)
    if stored is None or ridge is not stored.ridge:
        store(project_dir, data)
    return data, baseline, fitted is not None


def from_dataset(dataset, epochs, batch_size, steps_per_epoch, calibration, ridge=None):
    """The ``SearchData`` of a search on ``dataset`` (``calibration``: raw rows)."""
    inputs = (None if dataset.encoding is None else
              json.dumps(dataset.encoding.manifest(), sort_keys=True))
    return SearchData(epochs, batch_size, steps_per_epoch, dataset.x_scale,
                      float(dataset.y_scale), data_hash(dataset), dataset.x_val,
                      dataset.y_val, calibration, ridge, inputs)


def data_hash(dataset):
    """sha256 of the float32 training and validation splits (shapes included)."""
    return hash_arrays((dataset.x_train, dataset.y_train, dataset.x_val,
                        dataset.y_val)).hexdigest()


def path(project_dir):
    return os.path.join(project_dir, FILE)


def store(project_dir, data):
    """Writes ``data`` into ``project_dir``, whole or not at all."""
    arrays = {"epochs": data.epochs, "batch_size": data.batch_size,
              "steps_per_epoch": data.steps_per_epoch, "x_scale": data.x_scale,
              "y_scale": data.y_scale, "sha256": np.array(data.sha256),
              "x_val": data.x_val, "y_val": data.y_val,
              "x_calibration": data.x_calibration}
    if data.ridge is not None:
        arrays["ridge_coefficients"], arrays["ridge_intercept"] = data.ridge
    if data.inputs is not None:
        arrays["inputs"] = np.array(data.inputs)
    staging.write_whole(path(project_dir), lambda handle: np.savez(handle, **arrays))


def load(project_dir):
    """The ``SearchData`` stored in ``project_dir``, or ``None``.

    Raises:
        InputError: The file exists but cannot be read as one.
    """
    where = path(project_dir)
    if not os.path.isfile(where):
        return None
    try:
        with np.load(where, allow_pickle=False) as stored:
            ridge = ((stored["ridge_coefficients"], float(stored["ridge_intercept"]))
                     if "ridge_coefficients" in stored.files else None)
            return SearchData(int(stored["epochs"]), int(stored["batch_size"]),
                              int(stored["steps_per_epoch"]), stored["x_scale"],
                              float(stored["y_scale"]), str(stored["sha256"]),
                              stored["x_val"], stored["y_val"], stored["x_calibration"],
                              ridge, str(stored["inputs"]) if "inputs" in stored.files
                              else None)
    except Exception as error:  # np.load raises several types for bad files.
        raise InputError(f"{where}: Expected the data of a tuner_prune search, received "
                         f"a file that cannot be read ({error}).") from None


def _check_matching(project_dir, stored, data):
    """Checks ``data`` against the ``SearchData`` stored in ``project_dir`` (or ``None``).

    Raises:
        InputError: The stored search has other settings or data (``differences``).
    """
    changed = [] if stored is None else differences(stored, data)
    if changed:
        raise InputError(
            f"{project_dir}: Expected the settings and data of the search stored "
            f"there, received {'; '.join(changed)}. Search with them to resume it, "
            f"or pass overwrite=True to start over.")


def differences(stored, new):
    """What differs between a stored search's data and training and ``new``'s."""
    found = [f"{name} {getattr(new, name)} (the search has {getattr(stored, name)})"
             for name in ("epochs", "batch_size", "steps_per_epoch")
             if getattr(new, name) != getattr(stored, name)]
    if new.input_shape != stored.input_shape:
        found.append(f"rows of shape {new.input_shape} (the search has "
                     f"{stored.input_shape})")
    elif new.sha256 != stored.sha256:
        found.append(f"other training or validation data (sha256 {new.sha256[:12]}, "
                     f"the search has {stored.sha256[:12]})")
    return found
