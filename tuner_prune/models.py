"""Base-model builders: the article's MLP and user builders from ``--model``.

Keras is imported on first use, so a ``--model`` is resolved (and its module's
code run) without this module loading TensorFlow first.
"""

import importlib

from tuner_prune.errors import InputError


class BuilderError(InputError):
    """A ``--model`` builder that cannot be imported or does not build a model."""


# The built-in model's own hyperparameters. Measured on the built-in workload
# (seed 0, 80 epochs, final sparsity 0.9, power 3, pruning steps 40 -> 280):
# a glorot_uniform first kernel ended at 0.00097 validation MSE, the article's
# he_normal at 0.00177; Adam at 3e-4 at 0.029, 1e-3 at 0.00177, 3e-3 at 0.0023.
INITIALIZERS = ("glorot_uniform", "he_normal")
LEARNING_RATES = (5e-4, 3e-3)
# ``--article``: the article's exact model and optimiser.
ARTICLE = {"kernel_initializer": "he_normal", "learning_rate": 1e-3}


def article_mlp(hp, n_features):
    """The article's MLP: Dense(1024), ReLU, Dense(1024), ReLU, Dense(1).

    Declares ``kernel_initializer`` (of the first layer, ``INITIALIZERS``) and
    ``learning_rate`` (Adam's, on a log scale in ``LEARNING_RATES``), which
    ``PruningHyperModel`` compiles with; fixing them to ``ARTICLE`` gives the
    article's model and optimiser.

    Args:
        hp: The trial's ``HyperParameters``.
        n_features: Width of the input.

    Returns:
        An uncompiled tf_keras ``Sequential`` model.
    """
    from tuner_prune._keras import keras

    initializer = hp.Choice("kernel_initializer", list(INITIALIZERS))
    hp.Float("learning_rate", *LEARNING_RATES, sampling="log")
    return keras.Sequential([
        keras.Input(shape=(n_features,)),
        keras.layers.Dense(1024, kernel_initializer=initializer),
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
        raise BuilderError(f"Expected --model as MODULE:FUNCTION, received {spec!r}.")
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # Any import-time failure of user code.
        raise BuilderError(f"--model {spec}: Expected an importable module "
                           f"{module_name!r}, received {type(error).__name__}: "
                           f"{error}") from None
    builder = getattr(module, function_name, None)
    if not callable(builder):
        raise BuilderError(f"--model {spec}: Expected a function {function_name!r} in "
                           f"module {module_name!r}, received "
                           f"{'no such name' if builder is None else type(builder).__name__}.")
    return builder


def check_model(model, where):
    """Raises ``BuilderError`` unless ``model`` is a tf_keras model."""
    from tuner_prune._keras import FIX, keras

    if not isinstance(model, keras.Model):
        kind = f"{type(model).__module__}.{type(model).__name__}"
        hint = f" {FIX}" if type(model).__module__.startswith("keras") else ""
        raise BuilderError(f"{where}: Expected a tf_keras Model, received {kind}.{hint}")
    return model


def output_shapes(model, row_shape):
    """Shapes of ``model``'s outputs for a batch of rows of ``row_shape``.

    Returns:
        One tuple per output (``None`` for the batch), or ``None`` when the
        model cannot compute them (its trials then fail with the reason).
    """
    import tensorflow as tf

    from tuner_prune._keras import keras

    try:
        outputs = model(keras.Input(shape=tuple(row_shape)))
    except Exception:  # Any failure of user code; reported per trial instead.
        return None
    return [(None, *tensor.shape.as_list()[1:]) for tensor in tf.nest.flatten(outputs)]


def check_output(model, row_shape, where):
    """Raises ``BuilderError`` unless ``model`` predicts one value per row.

    One output of shape ``(None, 1)`` or ``(None,)`` is accepted.
    """
    shapes = output_shapes(model, row_shape)
    if shapes is None or shapes in ([(None, 1)], [(None,)]):
        return
    if len(shapes) == 1:
        received = f"one with output shape {_shape_text(shapes[0])}"
    else:
        received = (f"{len(shapes)} outputs of shapes "
                    f"{', '.join(_shape_text(shape) for shape in shapes)}")
    raise BuilderError(f"{where}: Expected a model with one output of one value per "
                       f"row, shape (None, 1) or (None,), received {received}.")


def _shape_text(shape):
    return "(None,)" if len(shape) == 1 else f"({', '.join(map(str, shape))})"
