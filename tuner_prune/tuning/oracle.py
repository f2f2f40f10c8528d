"""The search algorithm: keras-tuner's Bayesian optimisation, fitted on log MSE.

Two scales differ from keras-tuner's ``BayesianOptimizationOracle``:

- Scores. Validation MSEs of pruning schedules span orders of magnitude (a
  schedule that prunes too hard can be ten times worse than the best). Fitted on
  the raw scores, the Gaussian process spends its variance on the one bad trial
  and sees the good ones as equal; fitted on their logarithm, it ranks the good
  ones apart.
- Final sparsity. What a sparsity costs in size and in accuracy goes with the
  fraction of weights kept, ``1 - final_sparsity``: 0.9 -> 0.95 halves the model,
  as 0.5 -> 0.75 does. The oracle draws and models ``final_sparsity`` on a log
  scale of that fraction, so each halving of the model gets an equal share of
  the space (keras-tuner's linear scale gives 0.9 to 0.98 a sixth of [0.5, 0.98];
  the log scale gives it half).

A fresh search's first trial is the space's default point (each
hyperparameter's ``default``), as SMAC and Optuna's ``enqueue_trial`` start
from a known configuration: the built-in model and schedule default to the
smallest model with mild pruning, so a search always measures it. Its second
is the same point with the model's size at its largest (``LARGEST``: the
built-in model's widest and deepest, as the table bounds it) and the lowest
final sparsity, so a search always measures the largest nonlinear model too.

Every proposal, random or from the Gaussian process, is clipped into the
declared bounds: keras-tuner's ``Int.prob_to_value(1.0)`` is ``max_value + 1``
for an ``Int`` without a step (log sampling), and float rounding of a log
scale can land just outside ``[min_value, max_value]``.
"""

import math
import random

import numpy as np
from keras_tuner.engine import hyperparameters as hp_module

from tuner_prune.core import _kt
from tuner_prune.store import resume
from tuner_prune.core._kt import TrialStatus

SPARSITY = "final_sparsity"
# The size hyperparameters the second trial takes at their largest.
LARGEST = ("hidden_layers", "units")


def initial_points(max_trials):
    """Random trials before the Gaussian process takes over.

    At least 3, so that the process is not fitted on one or two points;
    keras-tuner's default of 3 per hyperparameter (12 here) would leave a
    10-trial search entirely random.
    """
    return min(max_trials, max(3, max_trials // 4))


def sparsity_to_unit(value, low, high):
    """Position of a final sparsity in ``[low, high]`` on the log-kept scale."""
    span = math.log((1.0 - low) / (1.0 - high))
    return math.log((1.0 - low) / (1.0 - value)) / span


def grid_bounds(hp):
    """Smallest and largest value ``hp`` (an ``Int`` or ``Float``) can take.

    With a ``step``, the ends of its grid (``max_value`` is not on it when the
    range is not a whole number of steps).
    """
    if not hp.step:
        return hp.min_value, hp.max_value
    ends = _kt.grid_ends(hp)
    return min(ends), max(ends)


def clip_values(values, space):
    """``values`` with every ``Int`` and ``Float`` of ``space`` clipped into bounds."""
    for hp in space:
        if hp.name in values and isinstance(hp, (hp_module.Int, hp_module.Float)):
            low, high = grid_bounds(hp)
            clipped = min(high, max(low, values[hp.name]))
            values[hp.name] = round(clipped) if isinstance(hp, hp_module.Int) else clipped
    return values


def unit_to_sparsity(unit, low, high):
    """Inverse of ``sparsity_to_unit``, clipped to ``[low, high]``."""
    kept = (1.0 - low) * ((1.0 - high) / (1.0 - low)) ** float(unit)
    return min(high, max(low, 1.0 - kept))


class PruningOracle(resume.AtomicSaves, _kt.BayesianOracle):
    """``BayesianOptimizationOracle`` on log scores and log kept fraction.

    Takes the arguments of ``keras_tuner.oracles.BayesianOptimizationOracle``.
    The objective must be minimised and its scores positive (an MSE, or
    ``metrics.budget_score``); ``num_initial_points`` defaults to
    ``initial_points(max_trials)``. A ``final_sparsity`` that is a continuous
    ``Float`` within ``[0, 1)`` is drawn and modelled on the log scale of
    ``1 - final_sparsity``; every other hyperparameter as keras-tuner does.
    The first trial of a fresh search takes every hyperparameter's default.
    """

    def __init__(self, objective, max_trials, num_initial_points=None, seed=None,
                 **kwargs):
        super().__init__(objective=objective, max_trials=max_trials,
                         num_initial_points=num_initial_points or initial_points(max_trials),
                         seed=seed, **kwargs)
        if seed is not None:  # keras-tuner takes 0 for "no seed" and draws one at random.
            _kt.set_seed(self, seed)
        if self.objective.direction != "min":
            raise ValueError(
                f"Expected an objective to minimise, received direction "
                f"{self.objective.direction!r} for {self.objective.name!r}.")

    def populate_space(self, trial_id):
        if not self.trials:  # The first trial of a fresh search.
            return {"status": TrialStatus.RUNNING, "values": self._default_values()}
        if len(self.trials) == 1:
            largest, default = self._largest_values(), self._default_values()
            if any(largest.get(name) != default.get(name) for name in LARGEST):
                return {"status": TrialStatus.RUNNING, "values": largest}
        return super().populate_space(trial_id)

    def _default_values(self):
        """Every hyperparameter of the space at its ``default``, clipped into bounds."""
        values = {hp.name: hp.default for hp in self.hyperparameters.space}
        return clip_values(values, self.hyperparameters.space)

    def _largest_values(self):
        """The default point with each ``Int`` of ``LARGEST`` at its largest and
        ``final_sparsity`` at its lowest: the most weights the space keeps."""
        values = self._default_values()
        for hp in self.hyperparameters.space:
            if hp.name in LARGEST and isinstance(hp, hp_module.Int):
                values[hp.name] = grid_bounds(hp)[1]
            elif hp.name == SPARSITY and isinstance(hp, hp_module.Float):
                values[hp.name] = hp.min_value
        return clip_values(values, self.hyperparameters.space)

    def _log_sparsity(self, hp):
        """Whether ``hp`` is drawn and modelled on the log-kept scale."""
        return (hp.name == SPARSITY and isinstance(hp, hp_module.Float)
                and not hp.step and 0.0 <= hp.min_value < hp.max_value < 1.0)

    def _to_unit(self, hp, value):
        if self._log_sparsity(hp):
            return sparsity_to_unit(value, hp.min_value, hp.max_value)
        return hp.value_to_prob(value)

    def vectorize_trials(self):
        space = _kt.nonfixed_space(self)
        ongoing = set(self.ongoing_trials.values())
        x, y = [], []
        for trial in self.trials.values():
            if trial not in ongoing and trial.status != TrialStatus.COMPLETED:
                continue  # Failed, invalid, or queued to run again.
            values = trial.hyperparameters
            vector = [self._to_unit(hp, values.values[hp.name])
                      if values.is_active(hp) and hp.name in values.values
                      else self._to_unit(hp, hp.default) for hp in space]
            if trial in ongoing:
                # A pessimistic guess, on the process's own (log) scale, keeps
                # other workers from being sent to the same point.
                mean, spread = self.gpr.predict(np.reshape(vector, (1, -1)),
                                                return_std=True)
                score = float(np.ravel(mean)[0] + np.ravel(spread)[0])
            else:
                score = math.log(max(float(trial.score), np.finfo(float).tiny))
            x.append(vector)
            y.append(score)
        return np.array(x), np.array(y)

    def vector_to_values(self, vector):
        units = iter(vector)
        linear = [hp.value_to_prob(unit_to_sparsity(next(units), hp.min_value,
                                                     hp.max_value))
                  if self._log_sparsity(hp) else next(units)
                  for hp in _kt.nonfixed_space(self)]
        return clip_values(super().vector_to_values(linear), self.hyperparameters.space)

    def random_values(self):
        values = super().random_values()
        if not values:  # None: too many collisions with earlier trials.
            return values
        hp = next((hp for hp in self.hyperparameters.space if hp.name == SPARSITY), None)
        if SPARSITY in values and self._log_sparsity(hp):
            unit = random.Random(_kt.next_seed(self)).random()
            values[SPARSITY] = unit_to_sparsity(unit, hp.min_value, hp.max_value)
        return clip_values(values, self.hyperparameters.space)
