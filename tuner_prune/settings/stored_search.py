"""The settings stored with a search, and what a resume may not change (Keras-free).

A search writes its ``SearchConfig`` and its data's fingerprint to
``<directory>/tuner_prune.json`` before any other state; a resumed search and
an ``export`` compare themselves with it (``check_resumable``).
"""

import dataclasses
import json
import os

from tuner_prune.settings import config as config_lib
from tuner_prune.store import records, staging
from tuner_prune.space import bounds as space_lib
from tuner_prune.core.errors import InputError

CONFIG_FILE = "tuner_prune.json"
# Settings that define the search; a resumed search must not change them. The
# data are compared by content (``Dataset.fingerprint``'s FINGERPRINT_KEYS), not
# by path.
IDENTITY = ("target", "seed", "epochs", "batch_size", *space_lib.SCHEDULE_HYPERPARAMETERS, "model",
            "block_size", "hp", "article")
# Settings a resumed search must keep but an ``export`` of it may change: the
# budgets are in every trial's score (``metrics.budget_score``), and ``export
# --max-bytes``, ``--max-flash`` or ``--max-ram`` picks another trial. Under
# ``--max-ram``, ``--quantization`` too: it says which variants' arenas a trial
# measured (``metrics.RAM_VARIANTS``).
RESUME_IDENTITY = ("max_bytes", "max_flash", "max_ram")
# Of those, the ones a search stored by an earlier tuner_prune may lack: it ran
# without that budget.
LATER = ("max_flash", "max_ram")
# The built-in model's widest layer, derived from the table (``training``): not
# compared but kept from the stored search (``kept_width``); a search stored by an
# earlier tuner_prune lacks it, and its space went up to ``models.UNITS[1]``.
WIDEST = "widest_units"
BUILT_IN_WORKLOAD = ("n_samples", "n_features", "n_informative", "noise")
FINGERPRINT_KEYS = ("rows", "features", "columns", "sha256")
STORED = (*IDENTITY, *(name for name in RESUME_IDENTITY if name not in LATER),
          *BUILT_IN_WORKLOAD)  # Compared, so always stored.
# What each type of a ``SearchConfig`` field holds, as a refusal says it.
KINDS = {int: "a whole number", float: "a number", str: "a string", bool: "true or false",
         list: "a list of strings"}


def identity_of(config):
    """The settings of ``config`` a resumed search must share with the stored one."""
    names = IDENTITY + (BUILT_IN_WORKLOAD if config.data is None else ())
    return {name: getattr(config, name) for name in names}


def config_path(directory):
    return os.path.join(directory, CONFIG_FILE)


def load_stored(directory):
    """The config stored with a search in ``directory``, or ``None``.

    Raises:
        InputError: The file is there but is not such a config, or lacks a
            setting a resume compares (named).
    """
    path = config_path(directory)
    if not os.path.isfile(path):
        return None
    stored = records.read_json(path, "the settings of a tuner_prune search", ("config",))
    if not isinstance(stored["config"], dict):
        raise InputError(f"{path}: Expected the settings of a tuner_prune search, "
                         f"received JSON whose config is not an object.")
    missing = [name for name in STORED if name not in stored["config"]]
    if missing:
        raise InputError(f"{path}: Expected the settings of a tuner_prune search, "
                         f"received settings without "
                         f"{', '.join(_flag(name) for name in missing)}.")
    check_settings(path, stored["config"])
    check_fingerprint(path, stored.get("data"))
    return stored


def kept_width(config):
    """``config`` with the widest layer of the search it resumes, if any.

    A resumed search (and its ``export``) keeps the space it was stored with,
    whatever ``training.resolved`` derives for the table now: one stored by an
    earlier tuner_prune (no ``widest_units``) goes on up to ``models.UNITS[1]``
    wide (``None``). The width follows from settings and data that are
    compared, so it is not compared itself.
    """
    stored = None if config.overwrite else load_stored(config.directory)
    if stored is None or config.widest_units is None:
        return config
    return dataclasses.replace(config, widest_units=stored["config"].get(WIDEST))


def check_fingerprint(path, data):
    """Refuses a stored data fingerprint a search could not have written (a hand edit).

    A key that is missing is compared as absent (``data_differences``).

    Raises:
        InputError: Naming ``path``, the key and its value.
    """
    if data is None:
        return
    if not isinstance(data, dict):
        raise InputError(f'{path}: Expected "data" to be an object or null, received '
                         f'{json.dumps(data)}.')
    kinds = {
        "source": ("a string or null", lambda v: v is None or isinstance(v, str)),
        "rows": ("a list of 3 whole numbers",
                 lambda v: isinstance(v, list) and len(v) == 3 and all(map(_whole, v))),
        "features": ("a whole number or a list of them",
                     lambda v: _whole(v) or (isinstance(v, list) and v and all(map(_whole, v)))),
        "columns": ("a list of strings or null", lambda v: v is None or (
            isinstance(v, list) and all(isinstance(item, str) for item in v))),
        "sha256": ("a string", lambda v: isinstance(v, str)),
    }
    for key, (kind, holds) in kinds.items():
        if key in data and not holds(data[key]):
            raise InputError(f'{path}: Expected "data" "{key}" to be {kind}, received '
                             f'{json.dumps(data[key])}.')


def check_settings(path, settings):
    """Refuses stored settings a search could not have written (a hand edit).

    Raises:
        InputError: Naming ``path``, the key and its value: a value of the
            wrong type, or one its flag refuses.
    """
    fields = {field.name: field for field in dataclasses.fields(config_lib.SearchConfig)}
    for key, value in settings.items():
        field = fields.get(key)
        if field is not None and not _holds(field, value):
            kind = KINDS[field.type] + (" or null" if field.default is None else "")
            raise InputError(f'{path}: Expected "{key}" to be {kind}, received '
                             f'{json.dumps(value)}.')
    try:
        config_lib.SearchConfig.from_dict(settings)
    except InputError as error:
        key = next((key for key in settings if _refused(settings, key)), None)
        named = f'"{key}" {json.dumps(settings[key])}' if key else "these settings"
        raise InputError(f"{path}: Expected stored settings a search accepts, received "
                         f"{named}: {error}") from None


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _holds(field, value):
    """Whether ``value`` is of the type of the ``SearchConfig`` ``field``."""
    if value is None:
        return field.default is None
    if isinstance(value, bool) or field.type is bool:
        return isinstance(value, bool) and field.type is bool
    if field.type is float:
        return isinstance(value, (int, float))
    if field.type is list:
        return isinstance(value, list) and all(isinstance(item, str) for item in value)
    return isinstance(value, field.type)


def _refused(settings, key):
    """Whether ``SearchConfig`` accepts ``settings`` only without ``key`` (its default)."""
    try:
        config_lib.SearchConfig.from_dict({k: v for k, v in settings.items() if k != key})
    except InputError:
        return False
    return True


def require_stored(directory):
    """``load_stored(directory)`` for a command that needs a search there.

    Keras-free, so that ``export`` refuses a folder without a search before
    TensorFlow loads.

    Raises:
        InputError: ``directory`` holds no search, or ``load_stored``'s.
    """
    stored = load_stored(directory)
    if stored is None:
        raise InputError(f"Expected --directory to hold a search ({CONFIG_FILE}), "
                         f"received {directory}.")
    return stored


def store(config, fingerprint):
    """Writes the search's settings and data fingerprint beside its state."""
    values = dataclasses.asdict(config)
    if config.data is not None:  # So that `export` finds it from anywhere.
        values["data"] = os.path.abspath(config.data)
    staging.write_json(config_path(config.directory),
                       {"config": values, "data": fingerprint}, indent=2)


def check_resumable(config, fingerprint, reading=False):
    """Refuses to resume a search stored in ``config.directory`` with changes.

    When the search is only read (``reading``, an ``export``), the
    ``RESUME_IDENTITY`` settings may change.
    """
    stored = None if config.overwrite else load_stored(config.directory)
    if stored is None:
        return
    changed = differences(stored, config, fingerprint, reading)
    if changed and reading:
        raise InputError(
            f"{config.directory}: Expected the settings and data of the search stored "
            f"there, received {'; '.join(changed)}. An export reads the search's --data "
            f"file again ({config.data or 'the built-in workload'}): restore it as the "
            f"search read it, or run the search again.")
    if changed:
        raise InputError(
            f"{config.directory}: Expected the settings and data of the search stored "
            f"there, received {'; '.join(changed)}. Run it with its own settings to "
            f"resume it, or add --overwrite to start over.")


def differences(stored, config, fingerprint, reading=False):
    """What differs between a stored search and this one, one phrase each."""
    old_config = stored["config"]
    identity = identity_of(config)
    if not reading:
        identity.update({name: getattr(config, name) for name in RESUME_IDENTITY})
        if config.max_ram is not None:
            identity["quantization"] = config.quantization
    found = [f"{_flag(name)} {_text(value)} (the search has {_text(old_config.get(name))})"
             for name, value in identity.items() if old_config.get(name) != value]
    return found + data_differences(stored.get("data") or {}, fingerprint)


def _flag(name):
    return f"--{name.replace('_', '-')}"


def data_differences(old, new):
    """What differs between two ``Dataset.fingerprint`` results, one phrase each.

    Values are named only when rows, features and columns are the same.
    """
    *shape_keys, values_key = FINGERPRINT_KEYS
    found = [f"data with {key} {_data_text(new[key])} (the search has "
             f"{_data_text(old.get(key))})"
             for key in shape_keys if old.get(key) != new[key]]
    if not found and old.get(values_key) != new[values_key]:
        found.append(f"data with different values ({values_key} "
                     f"{_short(new[values_key])}, the search has "
                     f"{_short(old.get(values_key))})")
    return found


def _data_text(value):
    if value is None:
        return "none"
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return ", ".join(value)  # Column names.
    return str(value)


def _short(digest):
    return digest[:12] if isinstance(digest, str) else digest


def _text(value):
    return "default" if value is None else str(value)
