"""The serving wrapper: a stripped pruned model between fixed scaling layers."""

import numpy as np

from tuner_prune._keras import keras, sparsity


class Scale(keras.layers.Layer):
    """Multiplies its input by a fixed vector (the baked-in data scaling)."""

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
    """Stripped model that takes raw features and predicts in target units."""
    return scaled_model(pruned_model, 1.0 / dataset.x_scale, dataset.y_scale)


def scaled_model(pruned_model, input_scale, target_scale):
    """Stripped model between fixed input and output multipliers."""
    stripped = sparsity.strip_pruning(pruned_model)
    features = keras.Input(shape=(len(input_scale),), name="features")
    scaled = Scale(input_scale, name="scale_features")(features)
    prediction = Scale([target_scale], name="scale_target")(stripped(scaled))
    return keras.Model(features, prediction, name="tuner_prune_model")
