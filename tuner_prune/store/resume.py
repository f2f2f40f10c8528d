"""Resuming a search killed at any moment, even by SIGKILL.

keras-tuner writes a trial's ``trial.json`` and the oracle's ``oracle.json`` one
after the other, in place. A kill between or during those writes leaves states
that keras-tuner's reload gets wrong: a truncated file fails to load, a trial
saved as started but missing from ``oracle.json`` never runs yet counts toward
``max_trials``, and a trial saved as finished but still listed as ongoing is run
again. Here every state file is replaced atomically, and on reload each trial's
own ``trial.json`` decides: finished trials stay as they are, unfinished ones
run again under their id and hyperparameters.
"""

import os

from tuner_prune.core import _kt
from tuner_prune.store import records
from tuner_prune.core._kt import TrialStatus, metrics_tracking
from tuner_prune.store.staging import write_json  # Keras-free, so stored_search.store shares it.



class AtomicSaves:
    """Mixin of a ``_kt.BayesianOracle``: ``oracle.json`` and each ``trial.json``
    replaced atomically."""

    def save(self):
        write_json(_kt.oracle_file(self), self.get_state())

    def save_trial(self, trial):
        write_json(os.path.join(_kt.trial_dir(self, trial.trial_id), records.TRIAL_FILE),
                   trial.get_state())


def requeue_interrupted(oracle):
    """Repairs a reloaded oracle's state after its process was killed.

    Every trial whose ``trial.json`` does not say COMPLETED or FAILED is queued
    to run again, with its id and hyperparameters and without the metrics of
    the interrupted run; every finished trial is left as it is, never re-run.

    Returns:
        The ids of the trials queued to run again.
    """
    waiting = set(_kt.retry_queue(oracle))
    queued = []
    for trial_id in sorted(oracle.trials, key=int):
        trial = oracle.trials[trial_id]
        if trial.status in records.FINISHED or (trial.status == TrialStatus.INVALID
                                        and trial_id not in waiting):
            if trial_id not in oracle.end_order:
                oracle.end_order.append(trial_id)
            continue
        if trial.status != TrialStatus.INVALID:  # An INVALID one keeps its history.
            trial.metrics = metrics_tracking.MetricsTracker()
            trial.score, trial.best_step = None, 0
        _kt.record_values(oracle, trial)  # A new trial must not repeat its values.
        if trial_id not in oracle.start_order:
            oracle.start_order.append(trial_id)
        queued.append(trial_id)
    _kt.set_retry_queue(oracle, queued[::-1])  # Popped from the end: lowest id first.
    oracle.ongoing_trials = {}
    return queued


def progress(oracle):
    """``(completed, failed, to run again)`` trial counts of an oracle."""
    statuses = [trial.status for trial in oracle.trials.values()]
    return (statuses.count(TrialStatus.COMPLETED), statuses.count(TrialStatus.FAILED),
            len(_kt.retry_queue(oracle)))
