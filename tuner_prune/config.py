"""``SearchConfig``: every setting of a search, checked, stored with the search.

Each setting has its default here (``cli`` takes its flags' defaults from these
dataclasses) and one check; the checks against the data and the folders are
run by ``tuner_prune.plan``, without TensorFlow.
"""

import dataclasses
import os
import tempfile

from tuner_prune import data as data_lib, models, ownership, records, staging
from tuner_prune import space as space_lib
from tuner_prune.errors import InputError

CONFIG_FILE = "tuner_prune.json"
# Settings that define the search; a resumed search must not change them. The
# data are compared by content (``Dataset.fingerprint``), not by path:
# FINGERPRINT_KEYS for a search stored with the data hash, LEGACY_KEYS (a plain
# sum that misses reordered values) for one stored before it.
IDENTITY = ("target", "seed", "epochs", "batch_size", *space_lib.FLAGS, "model",
            "block_size", "hp", "article")
# Settings a resumed search must keep but an ``export`` of it may change: the
# budget is in every trial's score, and ``export --max-bytes`` picks another trial.
RESUME_IDENTITY = ("max_bytes",)
BUILT_IN_WORKLOAD = ("n_samples", "n_features", "n_informative", "noise")
FINGERPRINT_KEYS = ("rows", "features", "columns", "sha256")
LEGACY_KEYS = ("rows", "features", "checksum")
QUANTIZATIONS = ("auto", "none", "dynamic", "float16", "int8")
SIZE_METRICS = ("bytes", "gzip_bytes")


@dataclasses.dataclass
class TrainingConfig:
    """The data and training settings that ``search`` and ``sweep`` share."""

    data: str = None
    target: str = None
    n_samples: int = data_lib.N_SAMPLES
    n_features: int = data_lib.N_FEATURES
    n_informative: int = data_lib.N_INFORMATIVE
    noise: float = data_lib.NOISE
    epochs: int = 80
    batch_size: int = 1024
    seed: int = 0
    model: str = None

    @classmethod
    def from_dict(cls, values):
        """Builds a config, refusing keys it does not know."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError(f"Expected settings among {sorted(known)}, received "
                             f"unknown {unknown}.")
        return cls(**values)

    def __post_init__(self):
        for name in ("epochs", "batch_size", "n_samples", "n_features", "n_informative"):
            check_positive(name, getattr(self, name))
        if self.data is None and self.n_informative > self.n_features:
            raise InputError(f"Expected --n-informative <= --n-features "
                             f"({self.n_features}), received {self.n_informative}.")
        if not 0 <= self.noise < float("inf"):  # NaN too.
            raise InputError(f"Expected --noise >= 0 and finite, received {self.noise!r}.")


def check_positive(name, value):
    """Raises ``InputError`` unless ``value`` is an integer >= 1 (``name``: the setting)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InputError(f"Expected --{name.replace('_', '-')} >= 1, received {value!r}.")


@dataclasses.dataclass
class SearchConfig(TrainingConfig):
    """Settings of ``python -m tuner_prune search`` (see the README for each)."""

    max_trials: int = 10
    directory: str = "logs"
    export_dir: str = "export"
    overwrite: bool = False
    final_sparsity: str = None
    power: str = None
    begin_step: str = None
    end_step: str = None
    frequency: str = None
    hp: list = None
    article: bool = False
    oracle: str = None
    tuner_id: str = None
    distribution: str = None
    worker_timeout: float = 60.0
    block_size: str = None
    quantization: str = "auto"
    size_metric: str = "bytes"
    max_mse_increase: float = 0.05
    max_bytes: int = None
    quiet: bool = False
    threads: int = None

    def __post_init__(self):
        check_positive("max_trials", self.max_trials)
        if self.threads is not None:
            check_positive("threads", self.threads)
        super().__post_init__()
        if self.distribution not in (None, "mirrored"):
            raise InputError(f"Expected --distribution mirrored, received "
                             f"{self.distribution!r}.")
        if not self.worker_timeout > 0:  # NaN too.
            raise InputError(f"Expected --worker-timeout > 0, received "
                             f"{self.worker_timeout!r}.")
        check_export_options(self.export_options)
        check_tuner_id(self.tuner_id)
        parse_block_size(self.block_size)
        self.hp = sorted(self.hp) if self.hp else None  # Their order means nothing.
        self.check_hyperparameters()

    def check_hyperparameters(self):
        """Checks ``--hp`` and ``--article`` as far as it can without the model.

        Raises:
            InputError: As ``schedule_texts`` and ``model_hyperparameters``.
        """
        _ = self.schedule_texts, self.model_hyperparameters
        if self.block_size and not self.model:
            models.check_block_settings(self.model_hyperparameters,
                                        parse_block_size(self.block_size))

    def _hp_texts(self):
        """``--hp`` as ``{name: text}`` (its syntax checked)."""
        space_lib.parse_hyperparameters(self.hp)
        pairs = (text.partition("=") for text in self.hp or ())
        return {name.strip(): text for name, _, text in pairs}

    @property
    def schedule_texts(self):
        """The schedule's ``VALUE|LO:HI`` texts: its own flags, or ``--hp`` with its names.

        Raises:
            InputError: One set both ways.
        """
        texts = {name: getattr(self, name) for name in space_lib.FLAGS}
        for name, text in self._hp_texts().items():
            if name not in texts:
                continue
            if texts[name] is not None:
                flag = name.replace("_", "-")
                raise InputError(f"Expected --{flag} or --hp {name}, received both.")
            texts[name] = text
        return texts

    @property
    def model_hyperparameters(self):
        """The model's fixed or bounded hyperparameters: ``--hp`` and ``--article``.

        Returns:
            ``{name: value or space.Bound}``.

        Raises:
            InputError: ``--article`` with ``--model`` or with ``--hp`` of its names.
        """
        settings = {name: value for name, value in
                    space_lib.parse_hyperparameters(self.hp).items()
                    if name not in space_lib.FLAGS}
        if not self.article:
            return settings
        if self.model:
            raise InputError(f"Expected --article (the article's own model) or --model, "
                             f"received both (--model {self.model}).")
        both = sorted(set(settings) & set(models.ARTICLE))
        if both:
            raise InputError(f"Expected --article (which fixes "
                             f"{', '.join(sorted(models.ARTICLE))}) or --hp {both[0]}, "
                             f"received both.")
        return {**settings, **models.ARTICLE}

    @property
    def export_options(self):
        """Keyword arguments of ``export_model`` that choose ``model.tflite``."""
        return {"quantization": self.quantization, "size_metric": self.size_metric,
                "max_mse_increase": self.max_mse_increase, "max_bytes": self.max_bytes}

    def identity(self):
        """The settings a resumed search must share with the stored one."""
        names = IDENTITY + (BUILT_IN_WORKLOAD if self.data is None else ())
        return {name: getattr(self, name) for name in names}


def check_tuner_id(tuner_id):
    """Raises ``InputError`` unless ``tuner_id`` is ``None`` or a name, not a path.

    The id names files of the search (a worker's heartbeat, the tuner's state).
    """
    if tuner_id is None:
        return
    if not isinstance(tuner_id, str) or tuner_id in ("", ".", "..") or any(
            separator in tuner_id for separator in "/\\"):
        raise InputError(f"Expected --tuner-id to be a name (no path separator, not . "
                         f"or ..), received {tuner_id!r}.")


def check_writable(folder, flag, staged=False):
    """Raises ``InputError`` unless ``folder`` can be created and written.

    Checks the folder links lead to, where the files really go; with
    ``staged`` (an export, staged beside its folder) its parent too. Writes
    nothing: the test file is unnamed and gone when closed.
    """
    target = os.path.realpath(folder)
    if os.path.exists(target) and not os.path.isdir(target):
        raise InputError(f"Expected {flag} to be a folder, received {folder}, a file.")
    for place in (target, os.path.dirname(target)) if staged else (target,):
        existing = place
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise InputError(f"Expected {flag} to be a folder that can be created, "
                             f"received {folder}, inside the file {existing}.")
        try:
            tempfile.TemporaryFile(dir=existing).close()
        except OSError as error:
            raise InputError(f"Expected {flag} to be writable, received {folder} "
                             f"({existing}: {error.strerror}).") from None


def check_export_target(config):
    """Refuses an ``--export-dir`` where an export would mix with other files.

    An export replaces only the files of a previous export; refused up front,
    writing nothing: the working directory, the search's ``--directory`` or a
    folder inside or above it, a folder holding the ``--data`` file, and a
    folder holding (besides dotfiles) anything but a previous export and the
    user's files beside it.

    Raises:
        InputError: Naming ``--export-dir`` and why.
    """
    check_export_dir(config.export_dir, config.directory, config.data)


def check_export_dir(given, directory=None, data=None):
    """``check_export_target`` of the folder ``given``; of the search's
    ``directory`` and the ``data`` file only when they are given."""
    export = os.path.realpath(given)
    if export == os.path.realpath(os.getcwd()):
        raise InputError(f"Expected --export-dir to be a folder of its own, received "
                         f"{given}, the working directory.")
    relation = directory and _relation(export, os.path.realpath(directory))
    if relation:
        raise InputError(f"Expected --export-dir outside the search's --directory "
                         f"{directory}, received {given}, {relation}.")
    if data is not None and _inside(os.path.realpath(data), export):
        raise InputError(f"Expected --export-dir to be a folder without the --data file "
                         f"{data}, received {given}, which holds it.")
    if os.path.isdir(export):
        _check_export_contents(given, export)


def _check_export_contents(given, export):
    owned, pending = ownership.owned_entries(export), staging.pending(export)
    visible = {entry for entry in os.listdir(export) if not entry.startswith(".")}
    foreign = sorted(visible - (owned or set()) - pending)
    if owned is None and not pending and foreign:
        raise InputError(f"Expected --export-dir to be empty or to hold a previous "
                         f"tuner_prune export ({ownership.MANIFEST}), received {given} "
                         f"holding {_listed(foreign)}.")
    clash = [entry for entry in foreign
             if entry in (ownership.MANIFEST, *ownership.ENTRIES)]
    if clash:
        raise InputError(f"Expected --export-dir to hold {', '.join(clash)} only as "
                         f"files its {ownership.MANIFEST} names, received {given} "
                         f"holding {', '.join(clash)} of another origin.")


def _relation(export, directory):
    """How ``export`` overlaps the search's ``directory``, or ``None``."""
    if export == directory:
        return "the same folder"
    if _inside(export, directory):
        return "a folder inside it"
    if _inside(directory, export):
        return "a folder above it"
    return None


def _inside(path, folder):
    return path != folder and os.path.commonpath([path, folder]) == folder


def _listed(names, shown=5):
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def check_resumable(config, fingerprint, reading=False):
    """Refuses to resume a search stored in ``config.directory`` with changes.

    A setting the stored search lacks (an earlier tuner_prune stored it) is
    refused when resuming, since its trials searched another space, and
    counts as its default when the search is only read (``reading``).
    """
    stored = None if config.overwrite else load_stored(config.directory)
    if stored is None:
        return
    changed = differences(stored, config, fingerprint, reading)
    if changed:
        raise InputError(
            f"{config.directory}: Expected the settings and data of the search stored "
            f"there, received {'; '.join(changed)}. Run it with its own settings to "
            f"resume it, or add --overwrite to start over.")


def check_export_options(options):
    """Raises ``InputError`` (naming the flag) for a bad export option."""
    for name, allowed in (("quantization", QUANTIZATIONS), ("size_metric", SIZE_METRICS)):
        if options[name] not in allowed:
            raise InputError(f"Expected --{name.replace('_', '-')} among "
                             f"{', '.join(allowed)}, received {options[name]!r}.")
    check_max_bytes(options.get("max_bytes"))
    increase = options["max_mse_increase"]
    if isinstance(increase, bool) or not isinstance(increase, (int, float)) or not (
            increase >= 0):
        raise InputError(f"Expected --max-mse-increase >= 0 (0.05 is 5 %), received "
                         f"{increase!r}.")


def check_max_bytes(budget):
    """Raises ``InputError`` unless ``budget`` is ``None`` or a whole number >= 1."""
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 1):
        raise InputError(f"Expected --max-bytes >= 1, received {budget!r}.")


def parse_block_size(text):
    """``"16x1"`` -> ``(16, 1)``; ``None`` -> ``(1, 1)`` (unstructured pruning).

    Raises:
        InputError: Not two positive integers joined by ``x``.
    """
    if text is None:
        return (1, 1)
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise InputError(f"Expected --block-size ROWSxCOLUMNS (positive integers, "
                         f"e.g. 16x1), received {text!r}.")
    return int(parts[0]), int(parts[1])


def config_path(directory):
    return os.path.join(directory, CONFIG_FILE)


def load_stored(directory):
    """The config stored with a search in ``directory``, or ``None``.

    Raises:
        InputError: The file is there but is not such a config (named).
    """
    path = config_path(directory)
    if not os.path.isfile(path):
        return None
    stored = records.read_json(path, "the settings of a tuner_prune search", ("config",))
    if not isinstance(stored["config"], dict):
        raise InputError(f"{path}: Expected the settings of a tuner_prune search, "
                         f"received JSON whose config is not an object.")
    return stored


def store(config, fingerprint):
    """Writes the search's settings and data fingerprint beside its state."""
    values = dataclasses.asdict(config)
    if config.data is not None:  # So that `export` finds it from anywhere.
        values["data"] = os.path.abspath(config.data)
    staging.write_json(config_path(config.directory),
                       {"config": values, "data": fingerprint}, indent=2)


def differences(stored, config, fingerprint, reading=False):
    """What differs between a stored search and this one, one phrase each."""
    old_config = stored["config"]
    identity = config.identity()
    if not reading:
        identity.update({name: getattr(config, name) for name in RESUME_IDENTITY})
    unknown = [name for name in identity if name not in old_config]
    if reading:
        defaults = {field.name: field.default for field in dataclasses.fields(config)}
        old_config = {**{name: defaults[name] for name in unknown}, **old_config}
        unknown = []
    found = [f"a search stored by an earlier tuner_prune, without "
             f"{', '.join(_flag(name) for name in unknown)}"] if unknown else []
    found += [f"{_flag(name)} {_text(value)} (the search has {_text(old_config[name])})"
              for name, value in identity.items()
              if name in old_config and old_config[name] != value]
    return found + data_differences(stored.get("data") or {}, fingerprint)


def _flag(name):
    return f"--{name.replace('_', '-')}"


def data_differences(old, new):
    """What differs between two ``Dataset.fingerprint`` results, one phrase each.

    Values are named only when rows, features and columns are the same. A
    fingerprint stored before the data hash is compared by its plain sum.
    """
    keys = FINGERPRINT_KEYS if "sha256" in old else LEGACY_KEYS
    *shape_keys, values_key = keys
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
