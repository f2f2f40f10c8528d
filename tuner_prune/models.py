"""Base-model builders: the article's MLP and user builders from ``--model``."""

import importlib

from tuner_prune._keras import FIX, keras


class BuilderError(ValueError):
    """A ``--model`` builder that cannot be imported or does not build a model."""


def article_mlp(hp, n_features):
    """The article's MLP: Dense(1024, he_normal), ReLU, Dense(1024), ReLU, Dense(1).

    Args:
        hp: Unused; the schedule hyperparameters are declared by the HyperModel.
        n_features: Width of the input.

    Returns:
        An uncompiled tf_keras ``Sequential`` model.
    """
    del hp
    return keras.Sequential([
        keras.Input(shape=(n_features,)),
        keras.layers.Dense(1024, kernel_initializer="he_normal"),
        keras.layers.ReLU(),
        keras.layers.Dense(1024),
        keras.layers.ReLU(),
        keras.layers.Dense(1),
    ])


def import_builder(spec):
    """Resolves ``MODULE:FUNCTION`` to a callable (runs that module's code).

    Raises:
        BuilderError: The spec is malformed, the module or function is missing.
    """
    module_name, _, function_name = spec.partition(":")
    if not module_name or not function_name:
        raise BuilderError(f"--model: expected MODULE:FUNCTION, received {spec!r}")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # Any import-time failure of user code.
        raise BuilderError(f"--model {spec}: cannot import module {module_name!r} "
                           f"({type(error).__name__}: {error})") from None
    builder = getattr(module, function_name, None)
    if not callable(builder):
        raise BuilderError(f"--model {spec}: module {module_name!r} has no function "
                           f"{function_name!r}")
    return builder


def check_model(model, where):
    """Raises ``BuilderError`` unless ``model`` is a tf_keras model."""
    if not isinstance(model, keras.Model):
        kind = f"{type(model).__module__}.{type(model).__name__}"
        hint = f" {FIX}" if type(model).__module__.startswith("keras") else ""
        raise BuilderError(f"{where}: expected a tf_keras Model, received {kind}.{hint}")
    return model
