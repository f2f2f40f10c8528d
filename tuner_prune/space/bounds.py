"""Bounds of the schedule hyperparameters and ``--hp`` settings, free of Keras.

A user may fix any of ``final_sparsity``, ``power``, ``begin_step`` and
``end_step`` or narrow its range; the defaults are derived from the real
training length so that every schedule in the space reaches its final sparsity.
The pruning ``frequency`` is a hyperparameter only when fixed or bounded;
otherwise ``schedule.aligned_frequency`` picks it.
"""

import dataclasses
import math

from tuner_prune.space import schedule as schedule_lib
from tuner_prune.core.errors import InputError

NAMES = ("final_sparsity", "power", "begin_step", "end_step")
FREQUENCY = "frequency"
# The names of the schedule's hyperparameters (each also a flag of its own).
SCHEDULE_HYPERPARAMETERS = (*NAMES, FREQUENCY)
INTEGERS = ("begin_step", "end_step", FREQUENCY)
DEFAULT_FINAL_SPARSITY = (0.3, 0.98)  # A small model needs 0.5 on the built-in data.
DEFAULT_POWER = (1.0, 6.0)
# Where the schedule starts in a fresh search's first trial (clipped into the
# bounds; ``begin_step`` and ``end_step`` start at their lowest): mild pruning
# with tfmot's default power.
STARTS = {"final_sparsity": 0.5, "power": 3.0}


@dataclasses.dataclass(frozen=True)
class Bound:
    """A closed range ``[low, high]``; ``low == high`` fixes the value."""

    low: float
    high: float

    @property
    def fixed(self):
        return self.low == self.high

    def clip(self, value):
        """``value`` moved into ``[low, high]``."""
        return min(self.high, max(self.low, value))

    def as_text(self):
        return f"{self.low}" if self.fixed else f"{self.low}:{self.high}"


def parse_bound(text, name, integer=False):
    """Parses ``VALUE`` or ``LO:HI`` as given on the command line.

    Args:
        text: The flag's value, or a number, or ``None``.
        name: Hyperparameter name, used in error messages.
        integer: Whether the values must be whole numbers.

    Returns:
        A ``Bound``, or ``None`` when ``text`` is ``None``.

    Raises:
        InputError: Not a (finite) number or a range ``LO <= HI``.
    """
    if text is None or isinstance(text, Bound):
        return text
    parts = str(text).split(":")
    kind = "an integer" if integer else "a number"
    if len(parts) > 2:
        raise InputError(f"Expected {name} as VALUE or LO:HI, received {text!r}.")
    try:
        values = [int(p) if integer else float(p) for p in parts]
    except ValueError:
        raise InputError(
            f"Expected {name} to be {kind} or LO:HI, received {text!r}."
        ) from None
    if not all(math.isfinite(value) for value in values):
        raise InputError(f"Expected {name} to be finite, received {text!r}.")
    low, high = values[0], values[-1]
    if low > high:
        raise InputError(f"Expected {name} range LO <= HI, received {text!r}.")
    return Bound(low, high)


@dataclasses.dataclass(frozen=True)
class ScheduleSpace:
    """User constraints on the schedule hyperparameters (``None``: default).

    ``resolved_for`` is ``(total_steps, steps_per_epoch)`` of the training
    length a space returned by ``resolve`` was checked against, else ``None``.
    """

    final_sparsity: Bound = None
    power: Bound = None
    begin_step: Bound = None
    end_step: Bound = None
    frequency: Bound = None
    resolved_for: tuple = None

    @classmethod
    def from_text(cls, **texts):
        """Builds a space from ``VALUE`` / ``LO:HI`` strings keyed by name."""
        unknown = set(texts) - set(SCHEDULE_HYPERPARAMETERS)
        if unknown:
            raise InputError(f"Expected keys among {SCHEDULE_HYPERPARAMETERS}, "
                             f"received {sorted(unknown)}.")
        return cls(**{
            name: parse_bound(texts.get(name), name, integer=name in INTEGERS)
            for name in SCHEDULE_HYPERPARAMETERS
        })

    def declare(self, hp):
        """Declares this resolved space in keras-tuner's ``hp`` and returns the values.

        A fixed bound is ``hp.Fixed``, a range ``hp.Int`` or ``hp.Float`` that
        starts at ``STARTS`` (clipped) or its lowest value; an unbounded
        ``frequency`` is not declared (the rule picks it).
        """
        values = {}
        for name in SCHEDULE_HYPERPARAMETERS:
            bound = getattr(self, name)
            if bound is None:
                continue
            start = bound.clip(STARTS.get(name, bound.low))
            if bound.fixed:
                values[name] = hp.Fixed(name, bound.low)
            elif name in INTEGERS:
                values[name] = hp.Int(name, int(bound.low), int(bound.high),
                                      default=int(start))
            else:
                values[name] = hp.Float(name, bound.low, bound.high, default=start)
        return values

    def resolve(self, total_steps, steps_per_epoch):
        """Fills in defaults and checks the space against the training length.

        Args:
            total_steps: Optimizer steps in one trial (epochs x steps per epoch).
            steps_per_epoch: Optimizer steps in one epoch.

        Returns:
            A ``ScheduleSpace`` whose four bounds are all set (``frequency``
            stays as given): this one if it was already resolved for this
            training length.

        Raises:
            InputError: A bound is impossible; the message names it.
        """
        if self.resolved_for == (total_steps, steps_per_epoch):
            return self
        latest_end = schedule_lib.max_end_step(total_steps, steps_per_epoch)
        if latest_end < 2:
            raise InputError(
                f"Expected a training length that leaves room to prune, received "
                f"{total_steps} steps ({steps_per_epoch} per epoch); add epochs."
            )
        begin, end = self._step_bounds(latest_end, steps_per_epoch)
        resolved = ScheduleSpace(
            final_sparsity=self.final_sparsity or Bound(*DEFAULT_FINAL_SPARSITY),
            power=self.power or Bound(*DEFAULT_POWER),
            begin_step=begin,
            end_step=end,
            frequency=self.frequency,
            resolved_for=(total_steps, steps_per_epoch),
        )
        resolved._check(total_steps, latest_end)
        return resolved

    def _step_bounds(self, latest_end, steps_per_epoch):
        gap = max(1, min(steps_per_epoch, latest_end // 4))
        begin = self.begin_step
        end = self.end_step
        if begin is None:
            begin_high = latest_end // 3
            if end is not None:
                begin_high = min(begin_high, end.low - gap)
            begin = Bound(0, max(0, begin_high))
        if end is None:
            end = Bound(min(latest_end, max(begin.high + gap, latest_end // 3)), latest_end)
        return begin, end

    def _check(self, total_steps, latest_end):
        sparsity, power = self.final_sparsity, self.power
        for value in (sparsity.low, sparsity.high):
            schedule_lib.check_final_sparsity(value, received=sparsity.as_text())
        schedule_lib.check_power(power.low, received=power.as_text())
        if self.begin_step.low < 0:
            raise InputError(
                f"Expected begin_step >= 0, received {self.begin_step.as_text()}."
            )
        if self.begin_step.high >= self.end_step.low:
            raise InputError(
                f"Expected begin_step < end_step, received begin_step "
                f"{self.begin_step.as_text()} and end_step {self.end_step.as_text()}."
            )
        if self.end_step.high > latest_end:
            raise InputError(
                f"Expected end_step <= {latest_end} (the training length of "
                f"{total_steps} steps minus a recovery window of "
                f"{total_steps - latest_end}), received {self.end_step.as_text()}; "
                f"lower it or add epochs."
            )
        self._check_frequency()

    def _check_frequency(self):
        frequency = self.frequency
        if frequency is None:
            return
        longest = self.end_step.high - self.begin_step.low
        if frequency.low < 1 or frequency.high > longest:
            raise InputError(
                f"Expected frequency in [1, {longest}] (the longest span end_step - "
                f"begin_step), received {frequency.as_text()}.")


def schedule_of(values, total_steps, initial_sparsity=0.0):
    """The ``PruningSchedule`` of a trial's schedule ``values`` (``declare``'s).

    A searched or fixed ``frequency`` is snapped to the nearest divisor of
    ``end_step - begin_step``; ``PruningSchedule.frequency`` is the one used.
    """
    begin, end = int(values["begin_step"]), int(values["end_step"])
    wanted = values.get(FREQUENCY)
    return schedule_lib.PruningSchedule(
        final_sparsity=float(values["final_sparsity"]), power=float(values["power"]),
        begin_step=begin, end_step=end, total_steps=total_steps,
        initial_sparsity=initial_sparsity,
        frequency=None if wanted is None else schedule_lib.snap_frequency(
            begin, end, int(wanted)))


def parse_value(text):
    """``--hp``'s ``VALUE``: an int, a float, ``true``/``false``, else the string."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            value = kind(text)
        except ValueError:
            continue
        if not math.isfinite(value):
            raise InputError(f"Expected --hp values to be finite, received {text!r}.")
        return value
    return text


def parse_hyperparameters(texts):
    """Parses repeated ``--hp NAME=VALUE|LO:HI`` into ``{name: value or Bound}``.

    A ``LO:HI`` of two numbers is a ``Bound`` (of ints when both are ints);
    anything else is one fixed value (``parse_value``).

    Raises:
        InputError: Not ``NAME=...``, or a name given twice.
    """
    settings = {}
    for text in texts or ():
        name, equals, value = str(text).partition("=")
        name = name.strip()
        if not equals or not name or not value:
            raise InputError(f"Expected --hp NAME=VALUE or NAME=LO:HI, received {text!r}.")
        if name in settings:
            raise InputError(f"Expected each --hp name once, received {name!r} twice.")
        settings[name] = _parse_setting(name, value)
    return settings


def _parse_setting(name, text):
    parts = text.split(":")
    if len(parts) == 2 and all(isinstance(parse_value(p), (int, float)) and
                               not isinstance(parse_value(p), bool) for p in parts):
        integer = all(isinstance(parse_value(p), int) for p in parts)
        return parse_bound(text, name, integer=integer)
    return parse_value(text)
