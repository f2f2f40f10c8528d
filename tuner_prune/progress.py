"""A search you can watch: a trial's epochs, its MSEs and sparsity, the time left.

Keras-free: the callback in ``callbacks`` feeds ``TrialProgress`` once per
epoch. In a terminal the trial's progress is one line that tqdm rewrites in
place; elsewhere (a CI log, ``> file``) it is a plain line every quarter of
the trial, so a log file holds no carriage returns.
"""

import statistics
import sys
import time

from tqdm import tqdm

PLAIN_LINES_PER_TRIAL = 4


def format_seconds(seconds):
    """``3725`` -> ``"1h02m"``, ``312`` -> ``"5m12s"``, ``42.4`` -> ``"42s"``."""
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{seconds:02d}s"
    return f"{seconds}s"


class SearchClock:
    """Time since the search started in this process, and an estimate of what is left.

    The estimate is the mean duration of the trials this process finished,
    times the trials still to run, less the time the current one has taken;
    before any has finished, it is the current trial's time per epoch times the
    epochs still to run.

    Args:
        epochs: Epochs of one trial.
        clock: Seconds, monotonic (``time.monotonic`` unless testing).
    """

    def __init__(self, epochs, clock=time.monotonic):
        self.epochs = epochs
        self.clock = clock
        self.start = clock()
        self.trial_seconds = []
        self.trial_start = None

    def trial_began(self):
        self.trial_start = self.clock()

    def trial_ended(self):
        if self.trial_start is not None:
            self.trial_seconds.append(self.clock() - self.trial_start)
            self.trial_start = None

    def elapsed(self):
        return self.clock() - self.start

    def left(self, epochs_done, trials_after):
        """Seconds left: the current trial (``epochs_done`` epochs in) and ``trials_after``."""
        in_trial = self.clock() - (self.trial_start if self.trial_start is not None
                                   else self.clock())
        if self.trial_seconds:
            per_trial = statistics.mean(self.trial_seconds)
            return max(0.0, per_trial - in_trial) + per_trial * trials_after
        if not epochs_done:
            return None
        per_epoch = in_trial / epochs_done
        return per_epoch * (self.epochs - epochs_done + self.epochs * trials_after)


class TrialProgress:
    """The progress line of one trial.

    Args:
        label: What the line starts with, e.g. ``"Trial 3 (4 of 10)"``.
        epochs: Epochs of the trial.
        clock: The search's ``SearchClock``.
        trials_after: Trials the search still runs after this one, or ``None``
            when unknown (then no time left is shown).
        stream: Where to write; a terminal gets one self-rewriting line.
    """

    def __init__(self, label, epochs, clock, trials_after, stream=None):
        self.label = label
        self.epochs = epochs
        self.clock = clock
        self.trials_after = trials_after
        self.stream = stream or sys.stdout
        self.bar = None
        if _is_terminal(self.stream):
            self.bar = tqdm(total=epochs, file=self.stream, leave=False, desc=label,
                            bar_format="{desc} epoch {n_fmt}/{total_fmt} {bar:10}{postfix}",
                            dynamic_ncols=True, mininterval=0)

    def epoch_ended(self, epoch, mse, val_mse, sparsity):
        """Shows the state after ``epoch`` (0-based) with its MSEs and sparsity."""
        done = epoch + 1
        text = self.describe(mse, val_mse, sparsity, done)
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif done == self.epochs or done % max(1, self.epochs // PLAIN_LINES_PER_TRIAL) == 0:
            print(f"  {self.label} epoch {done}/{self.epochs}: {text}", file=self.stream,
                  flush=True)

    def describe(self, mse, val_mse, sparsity, done):
        parts = [f"mse {_number(mse)}", f"val_mse {_number(val_mse)}",
                 f"sparsity {sparsity:.3f}", f"search {format_seconds(self.clock.elapsed())}"]
        left = None if self.trials_after is None else self.clock.left(done,
                                                                      self.trials_after)
        if left is not None:
            parts[-1] += f", ~{format_seconds(left)} left"
        return ", ".join(parts)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _number(value):
    return "-" if value is None else f"{value:.4g}"


def _is_terminal(stream):
    return hasattr(stream, "isatty") and stream.isatty()
