"""Block-pruned kernels padded to whole blocks on their input side, for export.

LiteRT's sparse int8 fully-connected kernel works on 1x16 blocks along a
kernel's input axis. A Keras ``(inputs, units)`` kernel whose ``inputs`` is not
a multiple of the block's rows leaves a partial last block in each row; the
converter's block encoding does not store those, and LiteRT computes without
them (1000 inputs: 1.5-1.7 x the Keras model's MSE). The exported graph
therefore pads such a layer's input with zeros and its kernel with zero rows:
the same function, whole blocks only. Every variant is converted from that
graph, the dense ones too.
"""

import numpy as np
import tensorflow as tf

from tuner_prune.core._keras import PruneLowMagnitude, collect_prunable_layers, keras


def block_rows(pruned_model):
    """Rows (input side) of the largest pruning block of a pruning-wrapped model.

    Returns:
        1 when every layer is pruned unstructured (or not at all).
    """
    return max([int(getattr(layer, "block_size", (1, 1))[0])
                for layer in collect_prunable_layers(pruned_model)], default=1)


def padding_for(width, rows):
    """Zero rows that make ``width`` inputs a whole number of ``rows``-row blocks."""
    return -int(width) % int(rows)


class PaddedDense(keras.layers.Dense):
    """A ``Dense`` layer that zero-pads its input's last axis by ``input_padding``.

    Its kernel has ``input_padding`` more rows than its input is wide; with
    those rows zero it computes what the unpadded ``Dense`` layer computes.
    """

    def __init__(self, input_padding, **kwargs):
        super().__init__(**kwargs)
        self.input_padding = int(input_padding)

    def build(self, input_shape):
        width = int(input_shape[-1])
        super().build(tf.TensorShape(input_shape)[:-1].concatenate([width + self.input_padding]))
        self.input_spec = keras.layers.InputSpec(min_ndim=2, axes={-1: width})

    def call(self, inputs):
        rank = inputs.shape.rank
        padded = tf.pad(inputs, [[0, 0]] * (rank - 1) + [[0, self.input_padding]])
        return super().call(padded)

    def get_config(self):
        return {**super().get_config(), "input_padding": self.input_padding}


def kernel_padding(model, rows):
    """``{layer name: [inputs, padded inputs]}`` of the kernels that need padding.

    Args:
        model: A stripped or a pruning-wrapped model (its wrapped layers are read).
        rows: Rows of a pruning block along the kernels' input axis.
    """
    layers = [layer.layer if isinstance(layer, PruneLowMagnitude) else layer
              for layer in model.layers]
    return {layer.name: [width, width + padding_for(width, rows)]
            for layer in layers if _is_padded_kind(layer)
            for width in [int(layer.kernel.shape[0])] if padding_for(width, rows)}


def pad_to_blocks(model, rows):
    """A copy of a stripped model whose 2-D ``Dense`` kernels are whole blocks wide.

    Args:
        model: A stripped (plain tf_keras) Sequential or functional model.
        rows: Rows of a pruning block along the kernels' input axis.

    Returns:
        ``model`` itself when no kernel needs padding (``kernel_padding``), or
        a copy with ``PaddedDense`` layers and zero rows in their kernels.
    """
    widths = kernel_padding(model, rows)
    if not widths:
        return model

    def clone(layer):
        if layer.name not in widths:
            return layer  # Shared, as strip_pruning shares them: never written to.
        width, padded = widths[layer.name]
        return PaddedDense(padded - width, **layer.get_config())

    copy = keras.models.clone_model(model, clone_function=clone)
    for name, (width, padded) in widths.items():
        kernel, *rest = model.get_layer(name).get_weights()
        copy.get_layer(name).set_weights([np.pad(kernel, ((0, padded - width), (0, 0))),
                                          *rest])
    return copy


def fold_input_scale(padded_model, input_scale):
    """Multiplies ``input_scale`` into the first kernel of a Sequential model, if padded.

    The converter folds an input multiplier into the first fully-connected
    layer's weights by itself, but not across the zero-padding op in between;
    unfolded it costs an int8 multiply per row and the factors' bytes. Only a
    ``Sequential`` model's first layer is sure to be the one reader of the input.

    Args:
        padded_model: A model from ``pad_to_blocks`` (its padded layers are
            copies: the trained model's weights are not touched).
        input_scale: Factors applied to each input feature before the model.

    Returns:
        Whether it folded: then the model takes unscaled rows.
    """
    if (not isinstance(padded_model, keras.Sequential) or not padded_model.layers
            or not isinstance(padded_model.layers[0], PaddedDense)
            or padded_model.inputs[0].shape.rank != 2):
        return False
    scale = np.asarray(input_scale, np.float32).reshape(-1)
    first = padded_model.layers[0]
    width = int(first.kernel.shape[0]) - first.input_padding
    if scale.size != width:
        return False
    kernel, *rest = first.get_weights()
    kernel[:width] *= scale[:, None]
    first.set_weights([kernel, *rest])
    return True


def _is_padded_kind(layer):
    """A ``Dense`` layer with a 2-D kernel that block pruning pools (no dimension 1)."""
    kernel = getattr(layer, "kernel", None)
    return (type(layer) is keras.layers.Dense and kernel is not None
            and kernel.shape.rank == 2 and min(kernel.shape) > 1)
