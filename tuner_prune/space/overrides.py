"""``--hp``: fixing or bounding the hyperparameters a model builder declares.

An override is declared in a trial's ``HyperParameters`` before the builder
runs; keras-tuner then hands the builder's own ``hp.Choice(name, ...)`` (or
``Int``, ``Float``, ...) the override's value instead of declaring it again.
"""

from keras_tuner.engine import hyperparameters as kt_hp

from tuner_prune.core import _kt
from tuner_prune.core.errors import InputError
from tuner_prune.space.bounds import Bound


def prepare(settings, declared):
    """The keras-tuner hyperparameters that fix or bound ``settings``.

    Args:
        settings: ``{name: value or Bound}`` (``space.parse_hyperparameters``).
        declared: ``{name: hyperparameter}`` the builder declares, or ``None``
            when it is unknown (a builder that raises): then every name is
            accepted and a range is an ``Int`` when both ends are ints.

    Returns:
        One keras-tuner hyperparameter per setting, to ``declare`` first.

    Raises:
        InputError: A name the builder does not declare, a value of the wrong
            type, or a range for a hyperparameter that has none.
    """
    if declared is not None:
        unknown = sorted(set(settings) - set(declared))
        if unknown:
            known = ", ".join(sorted(declared)) or "none"
            raise InputError(f"Expected --hp names among the schedule's and the "
                             f"model's hyperparameters (the model's: {known}), "
                             f"received {unknown[0]!r}.")
    return [_override(name, setting, (declared or {}).get(name))
            for name, setting in settings.items()]


def declare(hp, overrides):
    """Declares ``overrides`` (from ``prepare``) in ``hp``; a name already there stays."""
    for override in overrides:
        _kt.retrieve(hp, override)


def _override(name, setting, declared):
    if isinstance(setting, Bound) and setting.fixed:
        setting = setting.low
    if not isinstance(setting, Bound):
        return kt_hp.Fixed(name, _typed(name, setting, declared))
    integer = isinstance(declared, kt_hp.Int) or (
        declared is None and isinstance(setting.low, int))
    if not integer and declared is not None and not isinstance(declared, kt_hp.Float):
        raise InputError(f"Expected --hp {name}=VALUE ({name} is a "
                         f"{type(declared).__name__}), received the range "
                         f"{setting.as_text()}.")
    low, high = (_typed(name, value, declared, setting.as_text())
                 for value in (setting.low, setting.high))
    sampling = getattr(declared, "sampling", "linear")
    if sampling in ("log", "reverse_log") and low <= 0:
        raise InputError(f"Expected --hp {name} range above 0 ({name} is sampled on a "
                         f"log scale), received {setting.as_text()}.")
    kind = kt_hp.Int if integer else kt_hp.Float
    return kind(name, low, high, step=getattr(declared, "step", None), sampling=sampling)


def _typed(name, value, declared, received=None):
    """``value`` as the declared hyperparameter's type, within its range or choices.

    ``received``: the ``--hp`` text a refusal names (``value``'s by default).

    Raises:
        InputError: A value of another type, or outside what ``declared`` allows.
    """
    if isinstance(declared, kt_hp.Choice):
        matches = [choice for choice in declared.values if str(choice) == str(value)]
        if not matches:
            raise InputError(f"Expected --hp {name} among "
                             f"{', '.join(map(str, declared.values))} (the choices the "
                             f"model declares), received {value!r}.")
        return matches[0]
    if isinstance(declared, kt_hp.Boolean) and not isinstance(value, bool):
        raise InputError(f"Expected --hp {name}=true or false, received {value!r}.")
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(declared, kt_hp.Int) and not (number and float(value).is_integer()):
        raise InputError(f"Expected --hp {name} to be an integer, received {value!r}.")
    if isinstance(declared, kt_hp.Float) and not number:
        raise InputError(f"Expected --hp {name} to be a number, received {value!r}.")
    if isinstance(declared, (kt_hp.Int, kt_hp.Float)):
        _check_range(name, value, declared, received)
        return int(value) if isinstance(declared, kt_hp.Int) else float(value)
    return value


def _check_range(name, value, declared, received=None):
    """Raises ``InputError`` unless ``value`` is within ``declared``'s ``[min, max]``."""
    low, high = declared.min_value, declared.max_value
    if not low <= value <= high:
        raise InputError(f"Expected --hp {name} in [{low:g}, {high:g}] (the range the "
                         f"model declares), received {received or repr(value)}.")
