"""The serving wrapper: a stripped pruned model between fixed scaling layers."""

import numpy as np

from tuner_prune.export import padding
from tuner_prune.core._keras import keras, sparsity


class Scale(keras.layers.Layer):
    """Multiplies its input by a fixed vector along the last axis (the baked-in scaling).

    One factor per feature of flat rows, per channel of image or sequence rows.
    """

    def __init__(self, factor, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.factor_value = np.asarray(factor, np.float32).reshape(-1)

    def build(self, input_shape):
        self.factor = self.add_weight(
            name="factor", shape=self.factor_value.shape, trainable=False,
            initializer=keras.initializers.Constant(self.factor_value))
        super().build(input_shape)

    def call(self, inputs):
        return inputs * self.factor


def serving_model(pruned_model, dataset):
    """Stripped model that takes raw rows of the data's shape and predicts in target units."""
    return scaled_model(pruned_model, 1.0 / dataset.x_scale, dataset.y_scale,
                        dataset.input_shape)


def scaled_model(pruned_model, input_scale, target_scale, input_shape=None):
    """Stripped model between fixed input and output multipliers.

    A block-pruned model's ``Dense`` kernels are zero-padded to whole blocks on
    their input side (``padding.pad_to_blocks``): the same predictions, and a
    kernel LiteRT's block-sparse int8 path computes correctly. A padded first
    kernel takes the input factors into its weights
    (``padding.fold_input_scale``).

    Args:
        pruned_model: The pruning-wrapped model.
        input_scale: Factors from raw rows to the model's input, one per
            feature (flat rows) or per channel (the last axis).
        target_scale: Factor from the model's output to target units.
        input_shape: Shape of one raw row; ``(len(input_scale),)`` by default.

    Returns:
        A tf_keras model whose input ``features`` is ``(batch, *input_shape)``.
    """
    stripped = padding.pad_to_blocks(sparsity.strip_pruning(pruned_model),
                                     padding.block_rows(pruned_model))
    shape = tuple(input_shape) if input_shape is not None else (len(input_scale),)
    features = keras.Input(shape=shape, name="features")
    folded = padding.fold_input_scale(stripped, input_scale)
    scaled = features if folded else Scale(input_scale, name="scale_features")(features)
    prediction = Scale([target_scale], name="scale_target")(stripped(scaled))
    return keras.Model(features, prediction, name="tuner_prune_model")
