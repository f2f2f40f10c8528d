"""The errors the CLI tells apart (Keras-free).

``InputError`` is input the tool refuses: a flag, a data file, a folder, a
``--model``. The CLI prints its one-line message and exits with status 2.
Any other exception is the tool's own failure: one line and exit status 1
(a traceback with ``TUNER_PRUNE_DEBUG=1``).
"""


class InputError(ValueError):
    """Refused input; the message names it: ``Expected ..., received ...``."""


class SearchError(RuntimeError):
    """The search ran but has nothing to export (no trial completed, or no
    TFLite variant qualifies): exit status 1 with its one-line message."""
