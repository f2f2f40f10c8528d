"""The search stage: the hypermodel, the oracle, the tuner and its trials.

``hypermodel`` wraps a base model with a searched pruning schedule, ``oracle``
is the Bayesian optimisation on log MSE, ``tuner`` (``PruningTuner``, on
``tuner_state``) runs the search's hooks, ``trial_runner`` trains, measures and
records each trial with ``callbacks``, ``fit_inputs`` and ``search_data`` take
and keep the data, ``keras3`` copies Keras 3 models, ``display``, ``progress``
and ``summaries`` show the search, ``best`` exports its best trial. May use
every stage below: ``distributed``, ``export``, ``settings``, ``data``,
``store``, ``space``, ``core``.
"""
