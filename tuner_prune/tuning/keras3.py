"""Keras 3 models of stock layers, copied into tf_keras for tfmot and back.

keras-tuner 1.4.8 is written for Keras 3 (``import keras``), while tfmot 0.8
prunes only tf_keras (Keras 2) models. A Keras 3 ``Sequential`` or functional
model of stock layers is copied into tf_keras through its config and its
weights: the config needs a small translation (``TRANSLATION``: ``batch_shape``
becomes ``batch_input_shape``, dtype policies become their names, and a few
Keras 3 keys tf_keras lacks are dropped when they hold their defaults). The
copy's predictions are checked against the original's on a batch before it is
trained. The pruned weights go back into the user's own Keras 3 model
(``copy_weights_back``), which ``scaled_model`` wraps in the search's scaling.

What cannot be copied (a custom layer, a subclassed model, ``keras.ops`` in a
functional graph, a stock layer whose config tf_keras does not take) is refused
with one line naming the layer and saying how to write it for tf_keras.
``tests/tuning/test_keras3.py`` pins the translation to the Keras version of
``pyproject.toml``.
"""

import keras
import numpy as np

from tuner_prune.core._keras import keras as tf_keras, sparsity
from tuner_prune.space.models import BuilderError

# Keras 3 config keys that tf_keras does not take, dropped only at these values
# (another value changes what the layer computes, so the layer is refused).
DROPPED = {"optional": False, "quantization_config": None, "input_axes": None,
           "output_axes": None}
RENAMED = {"batch_shape": "batch_input_shape"}
TRANSLATION = {"dropped": DROPPED, "renamed": RENAMED}
CHECK_ROWS = 16  # Rows of the batch the copy's predictions are checked on.
TOLERANCE = 1e-4  # Largest difference of the copy's predictions, relative to their size.
HOW = ("write it with tf_keras (`import tf_keras as keras`) and have the builder "
       "return a tf_keras model")


def is_keras3_model(model):
    """Whether ``model`` is a Keras 3 (``import keras``) model."""
    return isinstance(model, keras.Model)


def to_tf_keras(model, row_shape, where="model builder"):
    """A tf_keras copy of the Keras 3 ``model``: its layers, wiring and weights.

    Args:
        model: A Keras 3 ``Sequential`` or functional model of stock layers.
        row_shape: The shape of one row, to build a model without an ``Input``.
        where: What made the model, for the messages.

    Returns:
        An uncompiled tf_keras model whose predictions match ``model``'s on a
        batch of ``CHECK_ROWS`` rows.

    Raises:
        BuilderError: A model that cannot be copied, named in one line.
    """
    check_copyable(model, where)
    if not model.built and row_shape is not None:
        model.build((None, *row_shape))
    try:
        copy = _copy(model, row_shape, where)
    except BuilderError:
        raise
    except Exception as error:  # tf_keras's many errors for a graph it cannot rebuild.
        raise BuilderError(f"{where}: Expected a Keras 3 model tf_keras can rebuild, "
                           f"received one it cannot ({type(error).__name__}: "
                           f"{str(error).splitlines()[0] if str(error) else ''}); "
                           f"{HOW}.") from None
    check_predictions(model, copy, where)
    return copy


def _copy(model, row_shape, where):
    """The tf_keras model of ``model``'s translated config, with its weights."""
    config = model.get_config()
    layers = [_layer_config(entry, where) for entry in config["layers"]]
    config = {**translate(config, where), "layers": layers}
    if isinstance(model, keras.Sequential):
        copy = tf_keras.Sequential.from_config(config)
    else:
        for entry in layers:
            entry["inbound_nodes"] = _inbound_nodes(entry, where)
        config["input_layers"], config["output_layers"] = (
            _node_refs(config["input_layers"]), _node_refs(config["output_layers"]))
        copy = tf_keras.Model.from_config(config)
    if not copy.built and row_shape is not None:
        copy.build((None, *row_shape))
    copy.set_weights(model.get_weights())
    return copy


def check_copyable(model, where="model builder"):
    """Refuses a subclassed model, a custom layer or a ``keras.ops`` call.

    Raises:
        BuilderError: Naming the first such part of ``model``.
    """
    if not isinstance(model, (keras.Sequential, keras.src.models.Functional)):
        _refuse(where, f"a subclassed model of class {_class_name(model)}",
                "rewrite it as a Sequential or functional model of stock layers, or")
    for operation in getattr(model, "operations", None) or model.layers:
        if not isinstance(operation, keras.layers.Layer):
            _refuse(where, f"the keras.ops call {operation.name!r} in a functional graph",
                    "use a layer instead (keras.layers.Add, keras.layers.Activation, "
                    "...), or")
        if isinstance(operation, keras.Model):
            if not isinstance(model, keras.Sequential) or \
                    not isinstance(operation, keras.Sequential):  # tf_keras cannot
                # rebuild those nodes; a Sequential in a Sequential copies exactly.
                outer = "Sequential" if isinstance(model, keras.Sequential) else "functional"
                _refuse(where, f"the model {operation.name!r} ({type(operation).__name__}) "
                        f"nested in a {outer} model", "put its layers in the outer model, or")
            check_copyable(operation, where)
        elif not _is_stock(operation):
            _refuse(where, f"the layer {operation.name!r} of class "
                    f"{_class_name(operation)}", "")


def translate(config, where="model builder"):
    """A Keras 3 layer or model config in tf_keras's terms (``TRANSLATION``).

    Raises:
        BuilderError: A dropped key that holds another value than its default.
    """
    if isinstance(config, list):
        return [translate(value, where) for value in config]
    if not isinstance(config, dict):
        return config
    if config.get("class_name") in ("DTypePolicy", "FloatDTypePolicy"):
        return config["config"]["name"]
    translated = {}
    for key, value in config.items():
        if key in DROPPED:
            if value != DROPPED[key]:
                raise BuilderError(f"{where}: Expected Keras 3 config keys tf_keras "
                                   f"takes, received {key}={value!r}; {HOW}.")
            continue
        translated[RENAMED.get(key, key)] = translate(value, where)
    return translated


def check_predictions(model, copy, where="model builder"):
    """Raises ``BuilderError`` unless ``copy`` predicts as ``model`` on a batch."""
    inputs = getattr(model, "inputs", None) or []
    shape = tuple(inputs[0].shape[1:]) if len(inputs) == 1 else None
    if shape is None or None in shape:  # Checked by the trials' own data instead.
        return
    # Rows in [-1, 1), as the search's scaled rows are (an Embedding takes them).
    rows = np.random.default_rng(0).uniform(-1, 1, (CHECK_ROWS, *shape)).astype(np.float32)
    try:
        wanted = np.asarray(model(rows, training=False))
    except Exception:  # The model's own error, which its trials then record.
        return
    received = np.asarray(copy(rows, training=False))
    difference = float(np.max(np.abs(wanted - received))) if wanted.size else 0.0
    if wanted.shape != received.shape or difference > TOLERANCE * (
            1.0 + float(np.max(np.abs(wanted)))):
        raise BuilderError(f"{where}: Expected the tf_keras copy of the Keras 3 model "
                           f"to predict as the model, received a difference of "
                           f"{difference:.3g} on {CHECK_ROWS} rows; {HOW}.")


def copy_weights_back(stripped, model):
    """Sets the Keras 3 ``model``'s weights to those of its stripped tf_keras copy."""
    if not model.built:
        model.build((None, *stripped.input_shape[1:]))
    model.set_weights(stripped.get_weights())
    return model


def user_model(build_model, hp, pruned):
    """``build_model``'s own Keras 3 model for ``hp`` with ``pruned``'s weights, stripped.

    Returns:
        ``None`` without a builder, or when it returns a tf_keras model.
    """
    if build_model is None:
        return None
    model = build_model(hp)
    if not is_keras3_model(model):
        return None
    return copy_weights_back(sparsity.strip_pruning(pruned), model)


def scaled_model(model, input_scale, target_scale, input_shape):
    """The Keras 3 ``model`` between fixed input and output multipliers.

    The Keras 3 twin of ``serving.scaled_model``: raw rows in (``features``),
    target units out.
    """
    features = keras.Input(shape=tuple(input_shape), name="features")
    scaled = keras.layers.Rescaling(np.asarray(input_scale, np.float32).reshape(-1),
                                    name="scale_features")(features)
    prediction = keras.layers.Rescaling(float(target_scale),
                                        name="scale_target")(model(scaled))
    return keras.Model(features, prediction, name="tuner_prune_model")


def _layer_config(entry, where):
    """A layer's entry of a model config, translated; refused naming the layer."""
    translated = translate(entry, where)
    translated.pop("build_config", None)
    translated.pop("compile_config", None)
    try:
        tf_keras.layers.deserialize({"class_name": translated["class_name"],
                                     "config": translated["config"]})
    except Exception:  # tf_keras's many errors for a config it cannot take.
        name = entry.get("config", {}).get("name", entry.get("class_name"))
        raise BuilderError(f"{where}: Expected Keras 3 layers tf_keras can rebuild, "
                           f"received the layer {name!r} of class "
                           f"{entry.get('class_name')}, whose Keras 3 config tf_keras "
                           f"does not take; {HOW}.") from None
    return translated


def _inbound_nodes(entry, where):
    """A functional layer's Keras 3 ``inbound_nodes`` in tf_keras's format."""
    nodes = []
    for node in entry.get("inbound_nodes", []):
        tensors = list(_tensor_refs(node.get("args", []), entry, where))
        kwargs = {key: value for key, value in node.get("kwargs", {}).items()}
        if any(_tensor_refs(kwargs, entry, where)):
            _refuse(where, f"the layer {entry['name']!r} called with tensor keyword "
                    f"arguments", "")
        nodes.append([[*ref, kwargs if i == 0 else {}] for i, ref in enumerate(tensors)])
    return nodes


def _tensor_refs(value, entry, where):
    """The ``(layer, node, tensor)`` of each Keras tensor in ``value``, in order."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        yield list(value["config"]["keras_history"])
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensor_refs(item, entry, where)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensor_refs(item, entry, where)


def _node_refs(refs):
    """Input or output layers as a list of ``[layer, node, tensor]``."""
    return [list(refs)] if refs and isinstance(refs[0], str) else [list(r) for r in refs]


def _is_stock(layer):
    cls = type(layer)
    return cls.__module__.startswith("keras.") and hasattr(tf_keras.layers, cls.__name__)


def _class_name(obj):
    return f"{type(obj).__module__}.{type(obj).__name__}"


def _refuse(where, what, how):
    raise BuilderError(f"{where}: Expected a Keras 3 Sequential or functional model of "
                       f"stock layers (tuner_prune copies it into tf_keras for tfmot), "
                       f"received {what}; {how or ''}{' ' if how else ''}{HOW}.")


class Callback(tf_keras.callbacks.Callback):
    """A Keras 3 callback run in a tf_keras ``fit``: each hook forwarded to it.

    The Keras 3 callback sees the tf_keras model (``stop_training``, its
    weights, its optimizer).
    """

    def __init__(self, callback):
        super().__init__()
        self.callback = callback

    def set_model(self, model):
        super().set_model(model)
        self.callback.set_model(model)

    def set_params(self, params):
        super().set_params(params)
        self.callback.set_params(params)


def _forward(hook):
    def forwarded(self, *args, **kwargs):
        return getattr(self.callback, hook)(*args, **kwargs)
    forwarded.__name__ = hook
    return forwarded


for _hook in ("on_train_begin", "on_train_end", "on_epoch_begin", "on_epoch_end",
              "on_train_batch_begin", "on_train_batch_end", "on_test_begin",
              "on_test_end",
              "on_test_batch_begin", "on_test_batch_end", "on_predict_begin",
              "on_predict_end", "on_predict_batch_begin", "on_predict_batch_end"):
    setattr(Callback, _hook, _forward(_hook))


def tf_keras_callbacks(callbacks):
    """``callbacks`` with each Keras 3 callback wrapped in a ``Callback``."""
    return [Callback(callback) if isinstance(callback, keras.callbacks.Callback)
            else callback for callback in callbacks]
