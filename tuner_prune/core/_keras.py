"""The one place tuner_prune binds Keras: tf_keras (Keras 2), as tfmot needs.

tfmot 0.8 prunes only tf_keras models. It imports tf_keras itself when
``tf.keras`` is Keras 3, so either import order works; this module checks that
tfmot's layers really are tf_keras layers and otherwise fails at import. It
is also the one place that reaches a private member of tfmot
(``pruning_summary_writer``), pinned by ``tests/core/test_kt.py``.
"""

import tensorflow_model_optimization as tfmot
import tf_keras as keras
from tensorflow_model_optimization.python.core.keras.compat import keras as _tfmot_keras

FIX = ("Install the pinned set (`pip install tf-keras==2.21.* "
       "tensorflow-model-optimization==0.8.1`) and set TF_USE_LEGACY_KERAS=1 "
       "before anything imports tensorflow.")

if _tfmot_keras.layers.Layer is not keras.layers.Layer:
    raise ImportError(
        "tuner_prune needs tensorflow-model-optimization to build tf_keras "
        f"(Keras 2) models, but it is bound to {_tfmot_keras.__name__}. {FIX}"
    )

from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import (  # noqa: E402,E501
    PruneLowMagnitude,
    collect_prunable_layers,
)

sparsity = tfmot.sparsity.keras


def pruning_summary_writer(callback):
    """The summary writer a ``sparsity.PruningSummaries`` opens at construction.

    tfmot writes the masks' sparsity through it, under ``<log_dir>/metrics``,
    and never closes it.
    """
    return callback._file_writer


__all__ = ["keras", "sparsity", "collect_prunable_layers", "PruneLowMagnitude", "FIX",
           "pruning_summary_writer"]
