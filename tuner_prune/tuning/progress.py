"""A search or sweep you can watch: what is done, its MSEs, the time left.

Keras-free. A ``ProgressLine`` counts steps: in a terminal it is one line that
tqdm rewrites in place; elsewhere (a CI log, ``> file``) it is a plain line
every few steps, so a log file holds no carriage returns. The callback in
``callbacks`` feeds a trial's ``TrialProgress`` once per epoch (a plain line
every quarter of the trial); ``sweep`` counts its runs with a ``ProgressLine``.
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
    times the trials still to run, less the time the running one has taken;
    before any has finished, it is the running trial's time per epoch times
    the epochs still to run. A sweep's runs (one-trial searches) are its trials.

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
        """Seconds left: the running trial (``epochs_done`` epochs in), if any, and
        ``trials_after`` more, or ``None`` before there is anything to estimate from."""
        running = self.trial_start is not None
        in_trial = self.clock() - self.trial_start if running else 0.0
        if self.trial_seconds:
            per_trial = statistics.mean(self.trial_seconds)
            current = max(0.0, per_trial - in_trial) if running else 0.0
            return current + per_trial * trials_after
        if not epochs_done:
            return None
        per_epoch = in_trial / epochs_done
        return per_epoch * (self.epochs - epochs_done + self.epochs * trials_after)

    def describe(self, what, epochs_done, trials_after):
        """``"search 5m12s, ~20m left"``: the time since ``what`` started, and the
        time ``left`` when there is an estimate (``trials_after`` ``None``: unknown)."""
        text = f"{what} {format_seconds(self.elapsed())}"
        left = None if trials_after is None else self.left(epochs_done, trials_after)
        return text if left is None else f"{text}, ~{format_seconds(left)} left"


class ProgressLine:
    """Steps done out of ``total``, each shown with a text of what it did.

    In a terminal, one line tqdm rewrites in place; elsewhere, a plain line
    every ``plain_every`` steps and at the last.

    Args:
        label: What the line starts with, e.g. ``"Trial 3 (4 of 10)"``.
        total: Steps to count.
        count: How the count reads, with ``{n}`` and ``{total}``, e.g.
            ``"epoch {n}/{total}"``.
        plain_every: Steps between plain lines.
        stream: Where to write (``sys.stdout`` if ``None``).
    """

    def __init__(self, label, total, count, plain_every=1, stream=None):
        self.label = label
        self.total = total
        self.count = count
        self.plain_every = max(1, plain_every)
        self.stream = stream or sys.stdout
        self.done = 0
        self.bar = None
        if _is_terminal(self.stream):
            counted = count.format(n="{n_fmt}", total="{total_fmt}")
            self.bar = tqdm(total=total, file=self.stream, leave=False, desc=label,
                            bar_format=f"{{desc}} {counted} {{bar:10}}{{postfix}}",
                            dynamic_ncols=True, mininterval=0)

    def step(self, text):
        """Counts one more step done and shows ``text`` beside the count."""
        self.done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=False)
            self.bar.update(1)
        elif self.done == self.total or self.done % self.plain_every == 0:
            count = self.count.format(n=self.done, total=self.total)
            print(f"  {self.label} {count}: {text}", file=self.stream, flush=True)

    def close(self):
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class TrialProgress:
    """The progress line of one trial: a ``ProgressLine`` of its epochs.

    Args:
        label: What the line starts with, e.g. ``"Trial 3 (4 of 10)"``.
        epochs: Epochs of the trial.
        clock: The search's ``SearchClock``.
        trials_after: Trials the search still runs after this one, or ``None``
            when unknown (then no time left is shown).
        stream: Where to write; a terminal gets one self-rewriting line.
    """

    def __init__(self, label, epochs, clock, trials_after, stream=None):
        self.clock = clock
        self.trials_after = trials_after
        self.line = ProgressLine(label, epochs, "epoch {n}/{total}",
                                 epochs // PLAIN_LINES_PER_TRIAL, stream)

    def epoch_ended(self, epoch, mse, val_mse, sparsity):
        """Shows the state after ``epoch`` (0-based) with its MSEs and sparsity."""
        self.line.step(self.describe(mse, val_mse, sparsity, epoch + 1))

    def describe(self, mse, val_mse, sparsity, done):
        return (f"mse {_number(mse)}, val_mse {_number(val_mse)}, sparsity {sparsity:.3f}, "
                f"{self.clock.describe('search', done, self.trials_after)}")

    def close(self):
        self.line.close()


def _number(value):
    return "-" if value is None else f"{value:.4g}"


def _is_terminal(stream):
    return hasattr(stream, "isatty") and stream.isatty()
