"""What a search prints: the baseline, a line per trial begun and ended, progress.

As keras-tuner's tuners hold a ``tuner_utils.Display``, ``PruningTuner`` holds
a ``Display`` and calls it from its hooks; nothing here trains, scores or
writes a file. Quiet (``verbose=False``), it prints nothing but still times
the trials. In a distributed search each line starts with the tuner's id.
"""

from tuner_prune.data import baseline as baseline_lib
from tuner_prune.distributed import distribute
from tuner_prune.tuning import progress
from tuner_prune.core._kt import TrialStatus
from tuner_prune.tuning.callbacks import ShowProgress
from tuner_prune.core.errors import failure_reason
from tuner_prune.tuning.trial_runner import VAL_MSE


class Display:
    """The console output of one tuner's search.

    Args:
        oracle: The tuner's oracle (or a worker's client of the chief's),
            read for ``max_trials`` when a trial begins.
        hypermodel: The tuner's ``PruningHyperModel``: epochs, steps per
            epoch, each trial's schedule.
        tuner_id: The tuner's id, shown in a distributed search.
        verbose: Print; ``False`` prints nothing.
        max_bytes: The size budget, or ``None``: a trial's line then shows its
            score and size too.
        budget_flag: The flag of that budget (``--max-bytes``, ``--max-flash``,
            ``metrics.trial_budget``), named when a trial is over it.
        max_ram: The RAM budget, or ``None``: a trial's line then shows its
            score and TFLM arena too.
        worker: This tuner is a worker of a distributed search, which does
            not know how many trials are left (no time left is shown).
    """

    def __init__(self, oracle, hypermodel, tuner_id, *, verbose=True, max_bytes=None,
                 budget_flag="--max-bytes", max_ram=None, worker=False):
        self.oracle = oracle
        self.hypermodel = hypermodel
        self.tuner_id = tuner_id
        self.verbose = verbose
        self.max_bytes = max_bytes
        self.budget_flag = budget_flag or "--max-bytes"
        self.max_ram = max_ram
        self.worker = worker
        self.clock = None  # A ``progress.SearchClock`` from ``search_began`` on.

    @property
    def log(self):
        """``print``, or a ``print`` that prints nothing (a chief under ``--quiet``)."""
        return print if self.verbose else _silent

    def baseline(self, baseline, fitted):
        """The ridge baseline's line: fitted now (``fitted``) or stored with the search."""
        if self.verbose:
            how = (f"fitted in {baseline['fit_seconds']:.2f} s" if fitted
                   else "stored with the search")
            print(f"{baseline_lib.describe(baseline)} ({how})", flush=True)

    def search_began(self):
        """Starts the clock of the time left."""
        self.clock = progress.SearchClock(self.hypermodel.epochs)

    def trial_began(self, trial):
        """``Trial 3 (4 of 10): final_sparsity=0.8, ...``."""
        self.clock.trial_began()
        if self.verbose:
            values = ", ".join(f"{name}={_fmt(value)}"
                               for name, value in trial.hyperparameters.values.items())
            print(f"{self._who()}Trial {trial.trial_id} ({int(trial.trial_id) + 1} of "
                  f"{self.oracle.max_trials}): {values}", flush=True)

    def progress_callbacks(self, trial, target_scale):
        """The Keras callbacks that show the progress line of ``trial`` (none if quiet).

        Args:
            trial: The keras-tuner ``Trial``.
            target_scale: Factor from the trained target to the target's units.
        """
        if not self.verbose:
            return []
        trials_after = (None if self.worker else
                        max(0, self.oracle.max_trials - int(trial.trial_id) - 1))
        line = progress.TrialProgress(f"{self._who()}Trial {trial.trial_id}",
                                      self.hypermodel.epochs, self.clock, trials_after)
        return [ShowProgress(line, self.hypermodel.schedule(trial.hyperparameters),
                             self.hypermodel.steps_per_epoch, target_scale)]

    def trial_stopped(self):
        """Stops the trial's clock, before the oracle is told (which may take a while)."""
        self.clock.trial_ended()

    def trial_dropped(self, trial, taken):
        """A worker's trial the chief gave to another worker (``fencing.TrialTaken``)."""
        if self.verbose:
            print(f"  {self._who()}Trial {trial.trial_id} dropped: {taken}; "
                  f"asking for the next trial", flush=True)

    def trial_ended(self, trial, best_trial):
        """The ended trial's scores or failure, then the best trial so far.

        Args:
            trial: The trial as the oracle recorded it.
            best_trial: Returns the best completed trial, or ``None``; called
                only when printing.
        """
        if not self.verbose:
            return
        if trial.status == TrialStatus.COMPLETED:
            line = f"  {self._who()}{self._scores(trial)}"
        else:
            line = f"  {self._who()}{trial.status}: {failure_reason(trial.message)}"
        best = best_trial()
        if best is not None:
            line += f" | best so far: trial {best.trial_id}, {self._scores(best)}"
        print(line, flush=True)

    def _scores(self, trial):
        """``val_mse ...``, or with a budget ``score ... (val_mse ..., size, arena)``."""
        val_mse = trial.metrics.get_last_value(VAL_MSE)
        if self.max_bytes is None and self.max_ram is None:
            return f"val_mse {val_mse:.6g}"
        figures = [f"val_mse {val_mse:.6g}"]
        for name, budget, flag, text in (
                ("tflite_bytes", self.max_bytes, self.budget_flag, "{} bytes"),
                ("arena_bytes", self.max_ram, "--max-ram", "TFLM arena {} bytes")):
            if budget is not None:
                value = trial.metrics.get_last_value(name)
                over = f" > {flag} {budget}" if value > budget else ""
                figures.append(text.format(int(value)) + over)
        return f"score {trial.score:.6g} ({', '.join(figures)})"

    def _who(self):
        return "" if distribute.role() == "local" else f"[{self.tuner_id}] "


def _fmt(value):
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _silent(*args, **kwargs):
    """A ``print`` that prints nothing."""
