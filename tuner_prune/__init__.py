"""tuner_prune: search tfmot pruning schedules with Keras Tuner, ship the best model.

Names are imported on first use, so ``python -m tuner_prune --help`` does not
load TensorFlow.
"""

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "Dataset": "tuner_prune.data.dataset",
    "DataError": "tuner_prune.data.dataset",
    "load_dataset": "tuner_prune.data.dataset",
    "PruningHyperModel": "tuner_prune.tuning.hypermodel",
    "PruningSchedule": "tuner_prune.space.schedule",
    "PruningTuner": "tuner_prune.tuning.tuner",
    "ScheduleSpace": "tuner_prune.space.bounds",
    "SearchConfig": "tuner_prune.settings.config",
    "encode_rows": "tuner_prune.data.encoding",
    "export_model": "tuner_prune.export.exporter",
    "fit_scaling": "tuner_prune.data.dataset",
    "export_best": "tuner_prune.tuning.best",
    "export_search": "tuner_prune.search",
    "run_search": "tuner_prune.search",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'tuner_prune' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
