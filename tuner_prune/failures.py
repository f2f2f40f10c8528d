"""Why a trial failed, as the tuner prints it and the export says it (Keras-free)."""


def failure_reason(message):
    """The first line of why a trial failed, from its ``trial.message``.

    keras-tuner stores the traceback of the exception that failed the trial;
    the reason is the first line of that exception's text (``RuntimeError:
    boom``, as ``_fail`` words it), without the ``FailedTrialError`` carrying
    it. ``record.json`` keeps the whole reason.
    """
    lines = (message or "").strip().splitlines()
    frames = [i for i, line in enumerate(lines) if line.startswith("  File ")]
    start = frames[-1] + 1 if frames else 0
    text = next((line for line in lines[start:] if line.strip() and not line[0].isspace()),
                None)
    if text is None:
        return "no reason recorded"
    _, carried, reason = text.partition("FailedTrialError: ")
    return reason if carried else text
