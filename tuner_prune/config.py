"""``SearchConfig``: every setting of a search, checked, stored with the search."""

import dataclasses
import json
import os

CONFIG_FILE = "tuner_prune.json"
# Settings that define the search; a resumed search must not change them.
IDENTITY = ("data", "target", "n_samples", "n_features", "n_informative", "noise",
            "seed", "epochs", "batch_size", "final_sparsity", "power", "begin_step",
            "end_step", "model")


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
    oracle: str = None
    tuner_id: str = None
    distribution: str = None
    worker_timeout: float = 60.0

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
        if self.distribution not in (None, "mirrored"):
            raise ValueError(f"Expected --distribution mirrored, received "
                             f"{self.distribution!r}.")
        if self.worker_timeout <= 0:
            raise ValueError(f"Expected --worker-timeout > 0, received "
                             f"{self.worker_timeout!r}.")
        if self.noise < 0:
            raise ValueError(f"Expected --noise >= 0, received {self.noise!r}.")

    @property
    def schedule_texts(self):
        return {name: getattr(self, name)
                for name in ("final_sparsity", "power", "begin_step", "end_step")}

    def identity(self):
        values = dataclasses.asdict(self)
        return {name: values[name] for name in IDENTITY}


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
