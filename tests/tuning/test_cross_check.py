"""The cross-check's fold training keeps the weights the trial kept (real tf_keras)."""

import numpy as np


def test_a_fold_keeps_the_weights_of_the_step_the_trial_kept():
    from tuner_prune.core._keras import keras
    from tuner_prune.tuning.cross_check import KeepAtStep

    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    x = np.random.default_rng(0).normal(size=(40, 2)).astype(np.float32)
    after_each_epoch = []

    class Record(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            after_each_epoch.append(self.model.get_weights()[0].copy())

    keep = KeepAtStep(step=9, steps_per_epoch=4)  # Epochs end at steps 4, 8, 12, ...
    model.fit(x, x.sum(axis=1), batch_size=10, epochs=5, verbose=0,
              callbacks=[Record(), keep])
    assert not np.array_equal(model.get_weights()[0], after_each_epoch[2])
    keep.restore()
    np.testing.assert_array_equal(model.get_weights()[0], after_each_epoch[2])
