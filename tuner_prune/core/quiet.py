"""Keeping other libraries' start-up and progress lines off the terminal (Keras-free).

TensorFlow, absl, gRPC, LiteRT and the TFLite converter write from C++ straight
to file descriptor 2, where nothing in Python can filter them. ``silence``
points descriptor 2 at an unnamed scratch file and gives ``sys.stderr`` a
descriptor of its own on the real stderr, so that the tool's own messages (and
a Python traceback) still reach the terminal while the libraries' lines do not.
Python warnings (sklearn's ``ConvergenceWarning``, deprecations) and log
records below ERROR are dropped too.

A crash in native code (a segmentation fault, an abort) must not end the
process silently: the scratch file is a named log, and a small watcher process
receives Python's ``faulthandler`` report through a pipe. If the process dies
of such a signal, the watcher appends the report to the log, keeps it, and
prints one line saying so; otherwise it removes the log when the process ends.
"""

import faulthandler
import logging
import os
import subprocess
import sys
import tempfile
import warnings

_scratch = []  # Keeps the scratch file open for the life of the process.
# The watcher: reads the faulthandler report until the process ends. No report
# means a normal end (or a kill no handler sees): the log goes. Else it is kept.
WATCHER = r"""
import os, sys
log, report = sys.argv[1], sys.stdin.buffer.read()
if not report.strip():
    try:
        os.unlink(log)
    except OSError:
        pass
    sys.exit()
with open(log, "ab") as handle:
    handle.write(b"\n" + report)
first = report.decode("utf-8", "replace").strip().splitlines()[0]
sys.stderr.write(f"tuner_prune: error: the process died in native code ({first}); "
                 f"its native log is kept in {log}\n")
"""


def silence():
    """Sends everything written to file descriptor 2 from now on to a scratch file.

    ``sys.stderr`` keeps writing to the real stderr. Call it once, before the
    libraries are imported; a second call does nothing.
    """
    if _scratch:
        return
    sys.stderr.flush()
    real = os.dup(2)
    scratch = tempfile.NamedTemporaryFile(prefix="tuner_prune-native-", suffix=".log",
                                          delete=False)
    os.dup2(scratch.fileno(), 2)
    _scratch.append(scratch)
    sys.stderr = os.fdopen(real, "w", buffering=1, encoding="utf-8",
                           errors="backslashreplace")
    _watch(scratch.name, real)
    warnings.simplefilter("ignore")
    logging.disable(logging.WARNING)


def _watch(log, real):
    """Starts the watcher of ``log`` (see ``WATCHER``), printing to ``real``."""
    try:
        watcher = subprocess.Popen([sys.executable, "-I", "-S", "-c", WATCHER, log],
                                   stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                   stderr=real, start_new_session=True)
    except OSError:  # No interpreter to start: the report goes to stderr itself.
        faulthandler.enable(file=real)
        return
    _scratch.append(watcher)  # Its pipe stays open until this process ends.
    faulthandler.enable(file=watcher.stdin.fileno())
