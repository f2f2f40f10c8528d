"""The errors the CLI tells apart, and why a trial failed, in words (Keras-free).

``InputError`` is input the tool refuses: a flag, a data file, a folder, a
``--model``. The CLI prints its one-line message and exits with status 2.
Any other exception is the tool's own failure: one line and exit status 1
(a traceback with ``TUNER_PRUNE_DEBUG=1``). A failed trial's error is worded
by ``failure_reason``, as the tuner prints it and the export says it.
"""

import re

# An error line nested in the text of another: TensorFlow's "in user code:"
# indents the traceback of the error raised inside a traced function.
NESTED_ERROR = re.compile(r"^\s+((?:\w+\.)*\w*(?:Error|Exception)): (.*\S)")
WRAPPERS = ("in user code:", "Exception encountered when calling layer")


class InputError(ValueError):
    """Refused input; the message names it: ``Expected ..., received ...``."""


class SearchError(RuntimeError):
    """The search ran but has nothing to export (no trial completed, or no
    TFLite variant qualifies): exit status 1 with its one-line message."""


def failure_reason(message):
    """The first line of why a trial failed, from its ``trial.message``.

    keras-tuner stores the traceback of the exception that failed the trial;
    the reason is the first line of that exception's text (``RuntimeError:
    boom``, as ``_fail`` words it), without the ``FailedTrialError`` carrying
    it; for an error raised inside Keras's training step ("in user code:"),
    the error nested in it. ``record.json`` keeps the whole reason.
    """
    lines = (message or "").strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    start = frames[-1] + 1 if frames else 0
    text = next((line for line in lines[start:] if line.strip() and not line[0].isspace()),
                None)
    if text is None:
        return "no reason recorded"
    _, carried, reason = text.partition("FailedTrialError: ")
    return _innermost(reason if carried else text, lines)


def _innermost(reason, lines):
    """``reason``, or when it only says "in user code:" (an error raised inside
    Keras's traced training step), the innermost error nested in ``lines``."""
    if not reason.endswith(WRAPPERS[0]):
        return reason
    nested = [match.groups() for match in map(NESTED_ERROR.match, lines)
              if match and not match.group(2).startswith(WRAPPERS)]
    return f"{nested[-1][0]}: {nested[-1][1]}" if nested else reason
