"""The one place tuner_prune binds keras-tuner's internals (``keras_tuner.src``).

tuner_prune runs its own trial loop on ``BaseTuner``, saves state atomically,
serves the oracle with fenced leases and repairs a killed search's state;
those need names keras-tuner does not export. Binding them here keeps an
upgrade of keras-tuner to one file to check. ``Trial`` and ``TrialStatus``
are public and bound here too, so that every module takes them from one place.
keras-tuner imports TensorFlow: Keras-free modules use the status names of
``tuner_prune.records`` instead.
"""

from keras_tuner.src import config, protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.engine import base_tuner, metrics_tracking
from keras_tuner.src.engine.oracle import synchronized
from keras_tuner.engine.trial import Trial, TrialStatus

__all__ = ["config", "protos", "oracle_chief", "oracle_client", "base_tuner",
           "metrics_tracking", "synchronized", "Trial", "TrialStatus"]
