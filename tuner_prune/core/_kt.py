"""The one place tuner_prune binds keras-tuner's internals.

tuner_prune runs its own trial loop on ``BaseTuner``, saves state atomically,
serves the oracle with fenced leases and repairs a killed search's state;
those need names keras-tuner does not export: modules of ``keras_tuner.src``
and private members (``_name``) of its oracles, tuners and hyperparameters.
Every such name is written here only, each private member behind one small
function or, for a private method tuner_prune overrides, behind a public hook
of ``BayesianOracle`` or ``BaseTuner``; ``tests/core/test_kt.py`` pins each one, so
that an upgrade of keras-tuner fails one named test. ``Trial`` and
``TrialStatus`` are public and bound here too, so that every module takes
them from one place. keras-tuner imports TensorFlow: Keras-free modules use
the status names of ``tuner_prune.store.records`` instead.
"""

import numpy as np
from keras_tuner.oracles import BayesianOptimizationOracle
from keras_tuner.src import config, protos
from keras_tuner.src.distribute import oracle_chief, oracle_client
from keras_tuner.src.engine import base_tuner, metrics_tracking
from keras_tuner.src.engine.oracle import synchronized
from keras_tuner.engine.trial import Trial, TrialStatus

__all__ = ["config", "protos", "oracle_chief", "oracle_client", "metrics_tracking",
           "synchronized", "Trial", "TrialStatus", "BayesianOracle", "BaseTuner",
           "retry_queue", "set_retry_queue", "record_values", "trial_dir", "save_trial",
           "oracle_file", "set_seed", "next_seed", "nonfixed_space", "wrapped_oracle",
           "tuner_file", "is_worker", "retrieve", "grid_ends"]


# An oracle's state.

def retry_queue(oracle):
    """The ids of the trials ``oracle`` runs again before any new one.

    Returns:
        The oracle's own list, not a copy: ``create_trial`` pops from its end.
    """
    return oracle._retry_queue


def set_retry_queue(oracle, trial_ids):
    """Replaces the trials ``oracle`` runs again; the last of ``trial_ids`` runs first."""
    oracle._retry_queue = list(trial_ids)


def record_values(oracle, trial):
    """Records ``trial``'s values as tried: random draws of ``oracle`` skip them."""
    oracle._record_values(trial)


def trial_dir(oracle, trial_id):
    """The folder of trial ``trial_id`` (``<project_dir>/trial_<id>``), created if missing."""
    return oracle._get_trial_dir(trial_id)


def save_trial(oracle, trial):
    """Writes ``trial``'s ``trial.json`` the way ``oracle`` saves every trial."""
    oracle._save_trial(trial)


def oracle_file(oracle):
    """The path of ``oracle``'s state file, which ``oracle.reload`` reads."""
    return oracle._get_oracle_fname()


def set_seed(oracle, seed):
    """Seeds every random draw of ``oracle`` with ``seed``, 0 included.

    keras-tuner's oracles take a seed of 0 or ``None`` as none and draw one at
    random. A Bayesian oracle's restarts and Gaussian process are seeded too.
    """
    oracle.seed = oracle._seed_state = seed
    if isinstance(oracle, BayesianOptimizationOracle):
        oracle._random_state = np.random.RandomState(seed)
        oracle.gpr = oracle._make_gpr()


def next_seed(oracle):
    """A seed for one random draw that no draw of ``oracle`` uses again.

    keras-tuner seeds each random value with the oracle's seed state and then
    advances it; this takes the next one the same way.
    """
    seed = oracle._seed_state
    oracle._seed_state += 1
    return seed


def nonfixed_space(oracle):
    """The hyperparameters a Bayesian ``oracle`` models, in the order of its vectors."""
    return oracle._nonfixed_space()


class BayesianOracle(BayesianOptimizationOracle):
    """keras-tuner's ``BayesianOptimizationOracle``, its private hooks made public.

    keras-tuner calls ``_vectorize_trials``, ``_vector_to_values``,
    ``_random_values`` and ``_save_trial`` on the oracle; here each calls the
    method of the same name without the underscore, which a subclass
    overrides and which by default runs keras-tuner's own.
    """

    def _vectorize_trials(self):
        return self.vectorize_trials()

    def _vector_to_values(self, vector):
        return self.vector_to_values(vector)

    def _random_values(self):
        return self.random_values()

    def _save_trial(self, trial):
        self.save_trial(trial)

    def vectorize_trials(self):
        """The Gaussian process's data: ``(x, y)``, one row per trial it sees.

        Each row of ``x`` is a trial's values in ``[0, 1]``, one per
        hyperparameter of ``nonfixed_space``; ``y`` are the scores to minimise.
        """
        return super()._vectorize_trials()

    def vector_to_values(self, vector):
        """The ``{name: value}`` a point of the unit cube proposes (``Fixed`` ones included)."""
        return super()._vector_to_values(vector)

    def random_values(self):
        """Random ``{name: value}`` not tried before, or ``None`` when none is found."""
        return super()._random_values()

    def save_trial(self, trial):
        """Writes ``trial``'s ``trial.json``."""
        super()._save_trial(trial)


# A tuner's state.

def wrapped_oracle(client):
    """The local oracle a worker's ``OracleClient`` was built around."""
    return client._oracle


def tuner_file(tuner):
    """The path of ``tuner``'s own state file, which ``BaseTuner`` reloads from."""
    return tuner._get_tuner_fname()


def is_worker(tuner):
    """Whether ``tuner`` is a worker of a distributed search (not its chief)."""
    return tuner._is_worker()


class BaseTuner(base_tuner.BaseTuner):
    """keras-tuner's ``BaseTuner``, its private hook made public.

    keras-tuner's constructor calls ``_populate_initial_space`` on a fresh
    search (not on a reloaded one); here it calls ``populate_initial_space``,
    which a subclass overrides and which by default runs keras-tuner's own.
    """

    def _populate_initial_space(self):
        self.populate_initial_space()

    def populate_initial_space(self):
        """Declares the hypermodel's hyperparameters in the oracle's space."""
        super()._populate_initial_space()


# Hyperparameters.

def retrieve(hp, hyperparameter):
    """Declares ``hyperparameter`` in ``hp`` unless its name is there already.

    A later declaration of the same name in ``hp`` (``hp.Int(name, ...)``)
    then returns the first one's value.

    Returns:
        The value of the name in ``hp``.
    """
    return hp._retrieve(hyperparameter)


def grid_ends(hp):
    """The first and last values of the grid of an ``Int`` or ``Float`` with a ``step``."""
    return hp._get_value_by_index(0), hp._get_value_by_index(hp._get_n_values() - 1)
