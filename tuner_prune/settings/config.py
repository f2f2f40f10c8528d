"""``SearchConfig``: every setting of a search, checked.

Each setting has its default here (``cli`` takes its flags' defaults from these
dataclasses) and one check. The checks against the folders are in
``tuner_prune.store.folders``, the stored search and the resume comparison in
``tuner_prune.settings.stored_search``; ``tuner_prune.settings.plan`` runs them,
without TensorFlow.
"""

import dataclasses

from tuner_prune.core import metrics
from tuner_prune.data import dataset as data_lib
from tuner_prune.space import models
from tuner_prune.space import bounds as space_lib
from tuner_prune.core.errors import InputError

QUANTIZATIONS = ("auto", "none", "dynamic", "float16", "int8")
SIZE_METRICS = ("bytes", "gzip_bytes")
DEVICES = ("phone", "microcontroller")  # What model.tflite must run on (choice.py).
SHIPS = ("best", "trial")  # ``--ship``: see ``best.export_best``.


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
            if getattr(self, name) is not None or name not in ("epochs", "batch_size"):
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
    """Settings of ``python -m tuner_prune search`` (see the README for each).

    ``epochs`` and ``batch_size`` left ``None`` are derived from the training
    rows when the plan is resolved (``tuner_prune.space.training``), and so is
    ``widest_units``, the built-in model's widest layer (no flag: ``--hp
    units`` bounds the width instead), from the features of a row.
    """

    epochs: int = None
    batch_size: int = None
    widest_units: int = None

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
    device: str = "phone"
    max_flash: int = None
    max_ram: int = None
    ship: str = "best"
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
        texts = {name: getattr(self, name) for name in space_lib.SCHEDULE_HYPERPARAMETERS}
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
                    if name not in space_lib.SCHEDULE_HYPERPARAMETERS}
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
        """Keyword arguments of ``tuner.export`` (``best.export_best``): what is
        shipped (``ship``) and ``export_model``'s options choosing ``model.tflite``."""
        return {"quantization": self.quantization, "size_metric": self.size_metric,
                "max_mse_increase": self.max_mse_increase, "max_bytes": self.max_bytes,
                "device": self.device, "max_flash": self.max_flash, "max_ram": self.max_ram,
                "ship": self.ship}


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


def check_export_options(options):
    """Raises ``InputError`` (naming the flag) for a bad export option."""
    for name, allowed in (("quantization", QUANTIZATIONS), ("size_metric", SIZE_METRICS),
                          ("device", DEVICES), ("ship", SHIPS)):
        if name in options and options[name] not in allowed:
            raise InputError(f"Expected --{name.replace('_', '-')} among "
                             f"{', '.join(allowed)}, received {options[name]!r}.")
    check_max_bytes(options.get("max_bytes"))
    check_max_bytes(options.get("max_flash"), "--max-flash")
    check_max_ram(options.get("max_ram"), options.get("quantization", "auto"))
    increase = options["max_mse_increase"]
    if isinstance(increase, bool) or not isinstance(increase, (int, float)) or not (
            increase >= 0):
        raise InputError(f"Expected --max-mse-increase >= 0 (0.05 is 5 %), received "
                         f"{increase!r}.")


def check_max_bytes(budget, flag="--max-bytes"):
    """Raises ``InputError`` unless ``budget`` is ``None`` or a whole number >= 1."""
    if budget is not None and (isinstance(budget, bool) or not isinstance(budget, int)
                               or budget < 1):
        raise InputError(f"Expected {flag} >= 1, received {budget!r}.")


def check_max_ram(budget, quantization="auto"):
    """Raises ``InputError`` unless ``budget`` is ``None`` or a RAM budget an
    export can meet: at least ``metrics.SMALLEST_ARENA``, with a ``quantization``
    that has variants TFLM runs (``metrics.RAM_VARIANTS``)."""
    check_max_bytes(budget, "--max-ram")
    if budget is None:
        return
    if budget < metrics.SMALLEST_ARENA:
        raise InputError(f"Expected --max-ram >= {metrics.SMALLEST_ARENA} (the smallest TFLM "
                         f"tensor arena a model needs), received {budget}.")
    if quantization not in metrics.RAM_VARIANTS:
        raise InputError(f"Expected --quantization among {', '.join(metrics.RAM_VARIANTS)} "
                         f"with --max-ram (only float32 and int8 variants run in TFLM), "
                         f"received {quantization!r}.")


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
