"""Whose search state a ``--directory`` holds, and whether it can be read (Keras-free).

A tuner_prune search stores its settings (``stored_search.CONFIG_FILE``) before it
writes any other state: its project folder (``records.project_dir``) and its
TensorBoard logs (``records.tensorboard_dir``). State there without the
settings is not a tuner_prune search's: it is neither resumed (its trials ran
on unknown data and settings) nor removed by ``--overwrite``. State with them
is read before any training, so that a damaged file is named up front.
"""

import glob
import os

from tuner_prune.core import metrics
from tuner_prune.settings import stored_search
from tuner_prune.store import records
from tuner_prune.core.errors import InputError

# The files keras-tuner reloads a search from, besides each trial's ``trial.json``.
ORACLE = "the state of a keras-tuner oracle"
TUNER = "the state of a keras-tuner tuner"


def check_directory(config):
    """Refuses a search's ``--directory`` tuner_prune may not resume or overwrite.

    Args:
        config: A ``SearchConfig`` (``directory``, ``overwrite``).

    Raises:
        InputError: State without stored settings (for ``--overwrite`` too),
            or a damaged state file of the search to resume or read (named).
    """
    directory = config.directory
    if os.path.isfile(stored_search.config_path(directory)):
        if not config.overwrite:
            check_readable(directory)
        return
    held = foreign_state(directory)
    if not held:
        return
    if config.overwrite:
        raise InputError(f"{directory}: Expected --overwrite on a search tuner_prune "
                         f"stored ({stored_search.CONFIG_FILE}) or on no search, received "
                         f"{', '.join(held)} without {stored_search.CONFIG_FILE}; "
                         f"--overwrite removes only what tuner_prune wrote. Move them "
                         f"away or choose another --directory.")
    raise InputError(_unsettled(directory, held))


def stored_settings(directory):
    """The settings stored with the search in ``directory`` (``stored_search.load_stored``).

    Raises:
        InputError: The search has none, or they cannot be read.
    """
    stored = stored_search.load_stored(directory)
    if stored is None:
        raise InputError(_unsettled(directory, foreign_state(directory) or
                                    [records.project_dir(directory)]))
    return stored


def _unsettled(directory, held):
    return (f"{directory}: Expected a search stored with its settings "
            f"({stored_search.CONFIG_FILE}), received {', '.join(held)} without "
            f"{stored_search.CONFIG_FILE}, so its trials' data and settings are unknown. "
            f"Choose another --directory.")


def foreign_state(directory):
    """The search state folders in ``directory`` that hold anything (files or folders)."""
    folders = (records.project_dir(directory), records.tensorboard_dir(directory))
    return [folder for folder in folders if os.path.lexists(folder) and (
        not os.path.isdir(folder) or os.listdir(folder))]


def check_readable(directory):
    """Reads every file keras-tuner reloads the search in ``directory`` from.

    Raises:
        InputError: Naming the first file that cannot be read or is not what
            it should be (a truncated ``trial.json`` or ``oracle.json``).
    """
    project = records.project_dir(directory)
    for path in sorted(glob.glob(os.path.join(glob.escape(project), "*.json"))):
        expected = ORACLE if os.path.basename(path) == records.ORACLE_FILE else TUNER
        records.read_json(path, expected)
    pattern = os.path.join(glob.escape(project), "trial_*", records.TRIAL_FILE)
    for path in sorted(glob.glob(pattern)):
        records.read_trial(path)


def stored_budgets(directory):
    """``{"max_bytes": ..., "max_flash": ..., "max_ram": ...}`` of a search.

    Each is ``None`` when the search ran without it (``max_flash``,
    ``max_ram``: also a search of a tuner_prune before it bounded trials).

    Raises:
        InputError: The search's settings are missing or cannot be read.
    """
    config = stored_settings(directory)["config"]
    return {name: config.get(name) for name, _ in metrics.SEARCH_BUDGETS}
