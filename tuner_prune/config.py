"""``SearchConfig``: every setting of a search, checked, stored with the search."""

import dataclasses
import json
import os

CONFIG_FILE = "tuner_prune.json"
# Settings that define the search; a resumed search must not change them.
IDENTITY = ("data", "target", "n_samples", "n_features", "n_informative", "noise",
            "seed", "epochs", "batch_size", "final_sparsity", "power", "begin_step",
            "end_step", "model", "block_size")
QUANTIZATIONS = ("auto", "none", "dynamic", "float16", "int8")
SIZE_METRICS = ("bytes", "gzip_bytes")


@dataclasses.dataclass
class SearchConfig:
    """Settings of ``python -m tuner_prune search`` (see the README for each)."""

    data: str = None
    target: str = None
    n_samples: int = 10000
    n_features: int = 1000
    n_informative: int = 500
    noise: float = 3.0
    max_trials: int = 10
    epochs: int = 80
    batch_size: int = 1024
    directory: str = "logs"
    export_dir: str = "export"
    overwrite: bool = False
    seed: int = 0
    final_sparsity: str = None
    power: str = None
    begin_step: str = None
    end_step: str = None
    model: str = None
    block_size: str = None
    quantization: str = "auto"
    size_metric: str = "bytes"
    max_mse_increase: float = 0.05

    @classmethod
    def from_dict(cls, values):
        """Builds a config, refusing keys it does not know."""
        known = {field.name for field in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"Expected settings among {sorted(known)}, received "
                             f"unknown {unknown}.")
        return cls(**values)

    def __post_init__(self):
        for name in ("max_trials", "epochs", "batch_size", "n_samples", "n_features",
                     "n_informative"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                flag = "--" + name.replace("_", "-")
                raise ValueError(f"Expected {flag} >= 1, received {value!r}.")
        if self.data is None and self.n_informative > self.n_features:
            raise ValueError(f"Expected --n-informative <= --n-features "
                             f"({self.n_features}), received {self.n_informative}.")
        if self.noise < 0:
            raise ValueError(f"Expected --noise >= 0, received {self.noise!r}.")
        check_export_options(self.export_options)
        parse_block_size(self.block_size)

    @property
    def schedule_texts(self):
        return {name: getattr(self, name)
                for name in ("final_sparsity", "power", "begin_step", "end_step")}

    @property
    def export_options(self):
        """Keyword arguments of ``export_model`` that choose ``model.tflite``."""
        return {"quantization": self.quantization, "size_metric": self.size_metric,
                "max_mse_increase": self.max_mse_increase}

    def identity(self):
        values = dataclasses.asdict(self)
        return {name: values[name] for name in IDENTITY}


def check_export_options(options):
    """Raises ``ValueError`` (naming the flag) for a bad export option."""
    for name, allowed in (("quantization", QUANTIZATIONS), ("size_metric", SIZE_METRICS)):
        if options[name] not in allowed:
            raise ValueError(f"Expected --{name.replace('_', '-')} among "
                             f"{', '.join(allowed)}, received {options[name]!r}.")
    increase = options["max_mse_increase"]
    if isinstance(increase, bool) or not isinstance(increase, (int, float)) or not (
            increase >= 0):
        raise ValueError(f"Expected --max-mse-increase >= 0 (0.05 is 5 %), received "
                         f"{increase!r}.")


def parse_block_size(text):
    """``"16x1"`` -> ``(16, 1)``; ``None`` -> ``(1, 1)`` (unstructured pruning).

    Raises:
        ValueError: Not two positive integers joined by ``x``.
    """
    if text is None:
        return (1, 1)
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise ValueError(f"Expected --block-size ROWSxCOLUMNS (positive integers, "
                         f"e.g. 16x1), received {text!r}.")
    return int(parts[0]), int(parts[1])


def config_path(directory):
    return os.path.join(directory, CONFIG_FILE)


def load_stored(directory):
    """The config stored with a search in ``directory``, or ``None``."""
    path = config_path(directory)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def store(config, fingerprint):
    """Writes the search's settings and data fingerprint beside its state."""
    os.makedirs(config.directory, exist_ok=True)
    path = config_path(config.directory)
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump({"config": dataclasses.asdict(config), "data": fingerprint},
                  handle, indent=2)
    os.replace(path + ".tmp", path)


def differences(stored, config, fingerprint):
    """Human-readable differences between a stored search and this one."""
    found = [f"{name}: {stored['config'].get(name)!r} -> {value!r}"
             for name, value in config.identity().items()
             if stored["config"].get(name) != value]
    if stored.get("data") != fingerprint:
        found.append("the data differ")
    return found
