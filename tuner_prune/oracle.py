"""The search algorithm: keras-tuner's Bayesian optimisation, fitted on log MSE.

Validation MSEs of pruning schedules span orders of magnitude (a schedule that
prunes too hard can be ten times worse than the best). Fitted on the raw scores,
the Gaussian process spends its variance on the one bad trial and sees the good
ones as equal; fitted on their logarithm, it ranks the good ones apart.
"""

import math

import keras_tuner
import numpy as np
from keras_tuner.src.engine.trial import TrialStatus

from tuner_prune import resume

SKIPPED = (TrialStatus.FAILED, TrialStatus.INVALID)


def initial_points(max_trials):
    """Random trials before the Gaussian process takes over.

    At least 3, so that the process is not fitted on one or two points;
    keras-tuner's default of 3 per hyperparameter (12 here) would leave a
    10-trial search entirely random.
    """
    return min(max_trials, max(3, max_trials // 4))


class PruningOracle(resume.AtomicSaves, keras_tuner.oracles.BayesianOptimizationOracle):
    """``BayesianOptimizationOracle`` on log scores, with atomic state files.

    Takes the arguments of ``keras_tuner.oracles.BayesianOptimizationOracle``.
    The objective must be minimised and its scores positive (an MSE, or
    ``sizes.budget_score``); ``num_initial_points`` defaults to
    ``initial_points(max_trials)``.
    """

    def __init__(self, objective, max_trials, num_initial_points=None, **kwargs):
        super().__init__(objective=objective, max_trials=max_trials,
                         num_initial_points=num_initial_points or initial_points(max_trials),
                         **kwargs)
        if self.objective.direction != "min":
            raise ValueError(
                f"Expected an objective to minimise, received direction "
                f"{self.objective.direction!r} for {self.objective.name!r}.")

    def _vectorize_trials(self):
        x, y = super()._vectorize_trials()
        # Ongoing trials come back as the process's own (already log) predictions.
        ongoing = set(self.ongoing_trials.values())
        measured = [trial.status == TrialStatus.COMPLETED and trial not in ongoing
                    for trial in self.trials.values()
                    if trial in ongoing or trial.status not in SKIPPED]
        for index in np.flatnonzero(measured):
            y[index] = math.log(max(float(y[index]), np.finfo(float).tiny))
        return x, y
