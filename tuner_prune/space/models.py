"""Base-model builders: the built-in model, which searches its own size from a
linear model up to the article's MLP, and user builders from ``--model``.

Keras is imported on first use, so a ``--model`` is resolved (and its module's
code run) without this module loading TensorFlow first.
"""

import importlib
import math

from tuner_prune.core.errors import InputError


class BuilderError(InputError):
    """A ``--model`` builder that cannot be imported or does not build a model."""


# The built-in model's hyperparameters: its size and its training. The data
# behind the ranges is in BENCHMARKS.md ("Right-sized models"): on the built-in
# workload a linear model wants Adam at about 1e-2, the article's MLP about 1e-3.
HIDDEN_LAYERS = (0, 2)  # 0 is a linear model, 2 the article's depth.
UNITS = (8, 1024)  # Width of each hidden layer, a power of two.
# The most weights of the widest model a search over a table may build: its
# dense float32 .tflite then stays under 64 KB, and a trial's steps stay cheap
# (docs/search.md, "The built-in model's size follows the table").
MAX_WEIGHTS = 15_000
INITIALIZERS = ("glorot_uniform", "he_normal")
LEARNING_RATES = (5e-4, 3e-2)
# Where a fresh search starts (its first trial): the smallest model.
DEFAULTS = {"hidden_layers": 0, "units": 32, "kernel_initializer": "glorot_uniform",
            "learning_rate": 1e-2}
# ``--article``: the article's exact model and optimiser.
ARTICLE = {"hidden_layers": 2, "units": 1024, "kernel_initializer": "he_normal",
           "learning_rate": 1e-3}


def weights(features, hidden_layers, units):
    """Weights (kernels and biases) of the built-in model over ``features`` inputs."""
    if hidden_layers == 0:
        return features + 1
    return (features + 1) * units + (hidden_layers - 1) * (units + 1) * units + units + 1


def widest_units(features):
    """The widest layer a search of rows of ``features`` values builds by default.

    The largest power of two in ``UNITS`` whose deepest model has at most
    ``MAX_WEIGHTS`` weights (``UNITS[0]`` when none has).
    """
    units = UNITS[0]
    while units < UNITS[1] and weights(features, HIDDEN_LAYERS[1], 2 * units) <= MAX_WEIGHTS:
        units *= 2
    return units


def size_bounds(block_size=(1, 1), widest=None):
    """``(hidden_layers, units)`` ranges of the built-in model under ``block_size``.

    tfmot cannot block-prune a ``Dense(1)`` kernel (a linear model's only one)
    nor a kernel whose input is no wider than a block, so with blocks the
    model has a hidden layer and its width is at least twice the block.

    Args:
        block_size: tfmot's ``(rows, columns)``.
        widest: The widest layer (``widest_units``), ``None`` for ``UNITS[1]``;
            raised to the narrowest width ``block_size`` allows.

    Raises:
        InputError: A block wider than half the widest layer.
    """
    widest = UNITS[1] if widest is None else min(UNITS[1], widest)
    if tuple(block_size) == (1, 1):
        return HIDDEN_LAYERS, (UNITS[0], max(UNITS[0], widest))
    low = UNITS[0]
    while low <= max(block_size):
        low *= 2
    if low > UNITS[1]:
        raise InputError(f"Expected --block-size at most {UNITS[1] // 2} in each "
                         f"dimension for the built-in model (its widest layer has "
                         f"{UNITS[1]} units), received {block_size[0]}x{block_size[1]}.")
    return (max(1, HIDDEN_LAYERS[0]), HIDDEN_LAYERS[1]), (low, max(low, widest))


def check_block_settings(settings, block_size):
    """Refuses ``--hp`` sizes of the built-in model that tfmot cannot block-prune.

    Args:
        settings: ``{name: value or space.Bound}`` (``--hp``).
        block_size: tfmot's ``(rows, columns)``.

    Raises:
        InputError: ``hidden_layers`` or ``units`` below ``size_bounds``.
    """
    (fewest, _), (narrowest, _) = size_bounds(block_size)
    why = {"hidden_layers": "tfmot cannot block-prune a linear model's Dense(1) kernel",
           "units": "tfmot cannot block-prune a kernel no wider than its block"}
    for name, least in (("hidden_layers", fewest), ("units", narrowest)):
        setting = settings.get(name)
        lowest = getattr(setting, "low", setting)
        if isinstance(lowest, (int, float)) and lowest < least:
            raise InputError(f"Expected --hp {name} >= {least} with --block-size "
                             f"{block_size[0]}x{block_size[1]} ({why[name]}), received "
                             f"{getattr(setting, 'as_text', lambda: setting)()}.")


def builtin_model(hp, n_features, block_size=(1, 1), widest=None):
    """The built-in model: up to two hidden ReLU layers of one width, then Dense(1).

    Declares its size, ``hidden_layers`` (0 is a linear model, 2 the article's
    MLP) and ``units`` (a power of two), the first kernel's
    ``kernel_initializer`` and ``learning_rate`` (Adam's, log scale), which
    ``PruningHyperModel`` compiles with. Each starts at ``DEFAULTS``, the
    first trial of a fresh search; fixing them to ``ARTICLE`` gives the
    article's model and optimiser.

    Args:
        hp: The trial's ``HyperParameters``.
        n_features: Width of the input.
        block_size: tfmot's block of the search (see ``size_bounds``).
        widest: The widest layer ``units`` may take (``size_bounds``).

    Returns:
        An uncompiled tf_keras ``Sequential`` model.
    """
    from tuner_prune.core._keras import keras

    (fewest, most), (narrowest, widest) = size_bounds(block_size, widest)
    depth = hp.Int("hidden_layers", fewest, most,
                   default=max(fewest, DEFAULTS["hidden_layers"]))
    units = hp.Int("units", narrowest, widest, step=2, sampling="log",
                   default=min(widest, max(narrowest, DEFAULTS["units"])))
    initializer = hp.Choice("kernel_initializer", list(INITIALIZERS),
                            default=DEFAULTS["kernel_initializer"])
    hp.Float("learning_rate", *LEARNING_RATES, sampling="log",
             default=DEFAULTS["learning_rate"])
    layers = []
    for _ in range(depth):
        layers += [keras.layers.Dense(units, kernel_initializer=initializer if not layers
                                      else "glorot_uniform"), keras.layers.ReLU()]
    last = keras.layers.Dense(1, kernel_initializer=initializer if not layers
                              else "glorot_uniform")
    return keras.Sequential([keras.Input(shape=(n_features,)), *layers, last])


def builtin_for_rows(hp, input_shape, block_size=(1, 1), widest=None):
    """``builtin_model`` over rows of ``input_shape``, flattened first when they are N-d."""
    from tuner_prune.core._keras import keras

    mlp = builtin_model(hp, math.prod(input_shape), block_size, widest)
    if len(input_shape) == 1:
        return mlp
    return keras.Sequential([keras.Input(shape=input_shape), keras.layers.Flatten(),
                             *mlp.layers])


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
    """Raises ``BuilderError`` unless ``model`` is a tf_keras model.

    (A Keras 3 model is copied into tf_keras before this check: ``keras3``.)
    """
    from tuner_prune.core._keras import keras

    if not isinstance(model, keras.Model):
        kind = f"{type(model).__module__}.{type(model).__name__}"
        raise BuilderError(f"{where}: Expected a tf_keras or Keras 3 Model, received "
                           f"{kind}.")
    return model


def output_shapes(model, row_shape):
    """Shapes of ``model``'s outputs for a batch of rows of ``row_shape``.

    Returns:
        One tuple per output (``None`` for the batch), or ``None`` when the
        model cannot compute them (its trials then fail with the reason).
    """
    import tensorflow as tf

    from tuner_prune.core._keras import keras

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
