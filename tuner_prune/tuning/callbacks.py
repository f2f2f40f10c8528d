"""The Keras callbacks of a trial: scoring, a worker's lease, pruning summaries."""

import math

from tuner_prune.core._keras import keras, pruning_summary_writer, sparsity
from tuner_prune.tuning.hypermodel import MSE
from tuner_prune.core.metrics import in_target_units


class ScoreAtFinalSparsity(keras.callbacks.Callback):
    """Keeps the best validation MSE among epochs that end after ``end_step``.

    The MSE is the compiled ``mse`` metric, not the loss: penalties a model
    adds to its loss (regularizers, ``add_loss``) are no part of the score.
    Epochs before the final sparsity is applied are denser than the model the
    trial stands for and are never scored. Must follow ``UpdatePruningStep`` in
    the callback list, so that the weights it copies are masked.
    """

    MONITOR = f"val_{MSE}"

    def __init__(self, end_step, steps_per_epoch):
        super().__init__()
        self.end_step = end_step
        self.steps_per_epoch = steps_per_epoch
        self.best_mse = math.inf
        self.best_epoch = None
        self.best_weights = None

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) * self.steps_per_epoch < self.end_step:
            return
        value = (logs or {}).get(self.MONITOR, math.nan)
        if math.isfinite(value) and value < self.best_mse:
            self.best_mse, self.best_epoch = value, epoch
            self.best_weights = self.model.get_weights()

    def restore(self):
        """Puts the scored weights back into the model."""
        if self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class StopWhenTaken(keras.callbacks.Callback):
    """Ends a worker's run at the end of an epoch once the chief gave its trial
    to another worker (raises ``fencing.TrialTaken``)."""

    def __init__(self, client, trial_dir):
        super().__init__()
        self.client = client
        self.trial_dir = trial_dir

    def on_epoch_end(self, epoch, logs=None):
        self.client.check_lease(self.trial_dir)


class TrialPruningSummaries(sparsity.PruningSummaries):
    """tfmot's ``PruningSummaries`` for one trial.

    tfmot logs masks at the start of each epoch; this also logs them after the
    last step, so each curve ends at the sparsity the trial was scored at, and
    closes the writer tfmot opened at construction.
    """

    def on_train_end(self, logs=None):
        self.on_epoch_begin(epoch=None)
        pruning_summary_writer(self).close()
        super().on_train_end(logs)


class ShowProgress(keras.callbacks.Callback):
    """Feeds a ``progress.TrialProgress`` after each epoch: the training and
    validation MSE in target units and the sparsity the schedule has applied.

    Args:
        line: The trial's ``progress.TrialProgress``.
        schedule: The trial's ``schedule.PruningSchedule``.
        steps_per_epoch: Optimizer steps per epoch.
        target_scale: Factor from the trained target to the target's units.
    """

    def __init__(self, line, schedule, steps_per_epoch, target_scale):
        super().__init__()
        self.line = line
        self.schedule = schedule
        self.steps_per_epoch = steps_per_epoch
        self.target_scale = target_scale

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        in_units = [None if logs.get(key) is None else
                    in_target_units(logs[key], self.target_scale)
                    for key in (MSE, f"val_{MSE}")]
        step = (epoch + 1) * self.steps_per_epoch
        self.line.epoch_ended(epoch, *in_units, self.schedule.sparsity_at(step))

    def on_train_end(self, logs=None):
        self.line.close()


class CosineLearningRate(keras.callbacks.Callback):
    """Decays the optimizer's learning rate along a half cosine over a trial.

    From the compiled rate at the first step to ``floor`` times it at
    ``total_steps``: the pruned model recovers, and is scored, at a low rate
    (docs/search.md, "Training that fits the table"). A learning rate that is
    already a schedule is left alone.

    Args:
        total_steps: Optimizer steps of the trial.
        floor: The last step's rate as a fraction of the first's.
    """

    def __init__(self, total_steps, floor=0.1):
        super().__init__()
        self.total_steps = total_steps
        self.floor = floor
        self.initial = None
        self.step = 0

    def on_train_begin(self, logs=None):
        optimizer = self.model.optimizer
        scheduled = isinstance(getattr(optimizer, "_learning_rate", None),
                               keras.optimizers.schedules.LearningRateSchedule)
        self.initial = (None if scheduled
                        else float(keras.backend.get_value(optimizer.learning_rate)))

    def on_train_batch_begin(self, batch, logs=None):
        if self.initial is None:
            return
        keras.backend.set_value(self.model.optimizer.learning_rate,
                                self.initial * self.factor(self.step))
        self.step += 1

    def factor(self, step):
        """The rate at ``step`` (counted from 0) as a fraction of the first."""
        progress = min(1.0, step / max(1, self.total_steps - 1))
        return self.floor + (1 - self.floor) * 0.5 * (1 + math.cos(math.pi * progress))
