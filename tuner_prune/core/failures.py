"""Why a trial failed, as the tuner prints it and the export says it (Keras-free)."""

import re

# An error line nested in the text of another: TensorFlow's "in user code:"
# indents the traceback of the error raised inside a traced function.
NESTED_ERROR = re.compile(r"^\s+((?:\w+\.)*\w*(?:Error|Exception)): (.*\S)")
WRAPPERS = ("in user code:", "Exception encountered when calling layer")


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
