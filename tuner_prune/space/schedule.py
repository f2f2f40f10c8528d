"""Pruning-schedule arithmetic, free of Keras.

tfmot's ``PolynomialDecay`` counts steps from 1 (the first training batch is
step 1) and updates the masks only at steps ``s`` with
``begin_step <= s <= end_step`` and ``(s - begin_step) % frequency == 0``.
The final sparsity is therefore applied only if ``end_step`` is reached and
``end_step - begin_step`` is a multiple of ``frequency``. The helpers here
guarantee both.

The rule picks a frequency of at most ``DEFAULT_FREQUENCY`` and the frequency
is not searched unless asked (``--frequency``): below 10 steps the error does
not change (BENCHMARKS.md, "The pruning frequency").
"""

import dataclasses
import math

from tuner_prune.core.errors import InputError

DEFAULT_FREQUENCY = 5  # The largest frequency the rule picks (tfmot's default: 100).
MIN_PRUNING_UPDATES = 16
RECOVERY_FRACTION = 0.1


def check_final_sparsity(value, name="final_sparsity", received=None):
    """The one check of a final sparsity: in [0, 1).

    Args:
        value: The sparsity (NaN is refused too).
        name: How the message names it (a flag, a hyperparameter).
        received: How the message shows what was given; ``repr(value)`` by default.

    Raises:
        InputError: ``Expected {name} in [0, 1), received ...``.
    """
    if not 0.0 <= value < 1.0:
        shown = repr(value) if received is None else received
        raise InputError(f"Expected {name} in [0, 1), received {shown}.")


def check_power(value, name="power", received=None):
    """The one check of a polynomial-decay exponent α: > 0 (NaN is refused).

    Raises:
        InputError: ``Expected {name} > 0, received ...``.
    """
    if not value > 0:
        shown = repr(value) if received is None else received
        raise InputError(f"Expected {name} > 0, received {shown}.")


def steps_per_epoch(rows, batch_size):
    """Number of optimizer steps Keras takes per epoch over ``rows`` rows."""
    if rows < 1 or batch_size < 1:
        raise ValueError(
            f"Expected rows >= 1 and batch_size >= 1, received rows={rows}, "
            f"batch_size={batch_size}."
        )
    return math.ceil(rows / batch_size)


def recovery_steps(total_steps, steps_per_epoch, fraction=RECOVERY_FRACTION):
    """Steps kept after ``end_step`` so the pruned model can recover.

    At least one full epoch, so that at least one validation score is taken
    on the model at its final sparsity.
    """
    return max(steps_per_epoch, math.ceil(fraction * total_steps))


def max_end_step(total_steps, steps_per_epoch, fraction=RECOVERY_FRACTION):
    """Latest ``end_step`` that leaves a recovery window in training."""
    return total_steps - recovery_steps(total_steps, steps_per_epoch, fraction)


def aligned_frequency(begin_step, end_step, preferred=DEFAULT_FREQUENCY):
    """Largest pruning frequency that lands exactly on ``end_step``.

    Picks the largest divisor of ``end_step - begin_step`` that is at most
    ``preferred`` and leaves at least ``MIN_PRUNING_UPDATES`` mask updates when
    the span allows it, so sparsity rises gradually.

    Args:
        begin_step: First step of pruning.
        end_step: Step at which the final sparsity is applied.
        preferred: Upper bound on the frequency.

    Returns:
        An int ``f >= 1`` with ``(end_step - begin_step) % f == 0``.
    """
    span = end_step - begin_step
    if span < 1:
        raise ValueError(
            f"Expected end_step > begin_step, received begin_step={begin_step}, "
            f"end_step={end_step}."
        )
    cap = max(1, min(preferred, span // MIN_PRUNING_UPDATES))
    return max(d for d in range(1, cap + 1) if span % d == 0)


def snap_frequency(begin_step, end_step, wanted):
    """The divisor of ``end_step - begin_step`` nearest to ``wanted`` (the smaller on a tie).

    A searched or fixed frequency is snapped so that the final sparsity is still
    applied at ``end_step``.

    Args:
        begin_step: First step of pruning.
        end_step: Step at which the final sparsity is applied, > ``begin_step``.
        wanted: The frequency asked for, >= 1.

    Returns:
        An int ``f >= 1`` with ``(end_step - begin_step) % f == 0``.
    """
    span = end_step - begin_step
    if span < 1 or wanted < 1:
        raise ValueError(
            f"Expected end_step > begin_step and a frequency >= 1, received "
            f"begin_step={begin_step}, end_step={end_step}, frequency={wanted}.")
    divisors = [d for d in range(1, span + 1) if span % d == 0]
    return min(divisors, key=lambda d: (abs(d - wanted), d))


def polynomial_sparsity(step, schedule):
    """Sparsity tfmot's ``PolynomialDecay`` has applied after ``step`` steps."""
    last_update = _last_update_step(step, schedule)
    if last_update is None:
        return 0.0
    progress = (last_update - schedule.begin_step) / (
        schedule.end_step - schedule.begin_step
    )
    remaining = (1.0 - progress) ** schedule.power
    return schedule.final_sparsity + (
        schedule.initial_sparsity - schedule.final_sparsity
    ) * remaining


def _last_update_step(step, schedule):
    reached = min(step, schedule.end_step)
    if reached < schedule.begin_step:
        return None
    updates = (reached - schedule.begin_step) // schedule.frequency
    return schedule.begin_step + updates * schedule.frequency


@dataclasses.dataclass(frozen=True)
class PruningSchedule:
    """A polynomial-decay pruning schedule that is known to complete.

    Args:
        final_sparsity: Fraction of weights pruned at ``end_step``, in [0, 1).
        power: Exponent α of the polynomial decay, > 0.
        begin_step: First step at which masks are updated, >= 0.
        end_step: Step at which ``final_sparsity`` is applied.
        total_steps: Training steps in a trial; ``end_step`` may not exceed it.
        initial_sparsity: Sparsity at ``begin_step``, in [0, final_sparsity].
        frequency: Steps between mask updates; ``None`` picks
            ``aligned_frequency(begin_step, end_step)``.
    """

    final_sparsity: float
    power: float
    begin_step: int
    end_step: int
    total_steps: int
    initial_sparsity: float = 0.0
    frequency: int = None

    def __post_init__(self):
        check_final_sparsity(self.final_sparsity, "`final_sparsity`")
        _check(0.0 <= self.initial_sparsity <= self.final_sparsity,
               "initial_sparsity", f"a value in [0, {self.final_sparsity}]",
               self.initial_sparsity)
        check_power(self.power, "`power`")
        _check(self.begin_step >= 0, "begin_step", "a value >= 0", self.begin_step)
        _check(self.end_step > self.begin_step, "end_step",
               f"a value > begin_step ({self.begin_step})", self.end_step)
        _check(self.end_step <= self.total_steps, "end_step",
               f"a value <= the training length ({self.total_steps} steps)",
               self.end_step)
        if self.frequency is None:
            object.__setattr__(
                self, "frequency", aligned_frequency(self.begin_step, self.end_step)
            )
        span = self.end_step - self.begin_step
        _check(self.frequency >= 1 and span % self.frequency == 0, "frequency",
               f"a divisor of end_step - begin_step ({span})", self.frequency)

    def sparsity_at(self, step):
        """Sparsity applied after ``step`` training steps."""
        return polynomial_sparsity(step, self)


def _check(condition, name, expected, received):
    if not condition:
        raise ValueError(f"Expected `{name}` to be {expected}, received {received!r}.")
