"""The workload flags that the benchmarks share (a helper, not a benchmark).

Defaults are the article's: its built-in data (10000 rows, 1000 features, 500
of them informative) and its MLP. Smaller values and a small ``--model`` give
the tiny runs of ``tests/test_bench.py``.
"""

from tuner_prune.data import dataset as data_lib
from tuner_prune.space import models

NAMES = ("n_samples", "n_features", "n_informative", "model")


def add_flags(parser):
    """Adds ``--n-samples``, ``--n-features``, ``--n-informative`` and ``--model``."""
    parser.add_argument("--n-samples", type=int, default=data_lib.N_SAMPLES,
                        help="rows of the built-in data (the article: 10000)")
    parser.add_argument("--n-features", type=int, default=data_lib.N_FEATURES,
                        help="width of the built-in data (the article: 1000)")
    parser.add_argument("--n-informative", type=int, default=data_lib.N_INFORMATIVE,
                        help="features the target depends on (the article: 500)")
    parser.add_argument("--model", default=None, metavar="MODULE:FUNCTION",
                        help="base-model builder as in `search --model` (default: "
                             "the article's MLP)")


def settings(args):
    """The flags as ``TrainingConfig`` fields: ``n_samples``, ..., ``model``."""
    return {name: getattr(args, name) for name in NAMES}


def cli_flags(args):
    """The same settings as ``python -m tuner_prune search`` flags."""
    return [item for name, value in settings(args).items() if value is not None
            for item in (f"--{name.replace('_', '-')}", str(value))]


def builder(args):
    """The ``--model`` builder, or ``None`` for the article's MLP."""
    return models.import_builder(args.model) if args.model else None


def base_model(builder, n_features):
    """A fresh base model: ``builder``'s, or the article's MLP when it is ``None``;
    the article's own hyperparameters (``models.ARTICLE``) where it declares them."""
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, value in models.ARTICLE.items():
        hp.Fixed(name, value)
    return builder(hp) if builder else models.builtin_model(hp, n_features)
