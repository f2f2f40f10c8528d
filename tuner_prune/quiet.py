"""Keeping other libraries' start-up and progress lines off the terminal (Keras-free).

TensorFlow, absl, gRPC, LiteRT and the TFLite converter write from C++ straight
to file descriptor 2, where nothing in Python can filter them. ``silence``
points descriptor 2 at an unnamed scratch file and gives ``sys.stderr`` a
descriptor of its own on the real stderr, so that the tool's own messages (and
a Python traceback) still reach the terminal while the libraries' lines do not.
Python warnings (sklearn's ``ConvergenceWarning``, deprecations) and log
records below ERROR are dropped too.
"""

import logging
import os
import sys
import tempfile
import warnings

_scratch = []  # Keeps the scratch file open for the life of the process.


def silence():
    """Sends everything written to file descriptor 2 from now on to a scratch file.

    ``sys.stderr`` keeps writing to the real stderr. Call it once, before the
    libraries are imported; a second call does nothing.
    """
    if _scratch:
        return
    sys.stderr.flush()
    real = os.dup(2)
    scratch = tempfile.TemporaryFile()
    os.dup2(scratch.fileno(), 2)
    _scratch.append(scratch)
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding="utf-8",
                           errors="backslashreplace")
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)
