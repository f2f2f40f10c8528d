"""One running search per ``--directory`` (Keras-free).

A search holds ``<directory>/tuner_prune.lock`` while it runs (a CLI search:
for the life of its process):
an exclusive ``fcntl.flock`` on the open file, which the kernel releases
when the process ends, however it ends (a crash, ``kill -9``), so no stale
lock survives it. The file holds the holder's process id, only for the
message of the search it refuses. ``export`` and ``report`` only read a
search and take no lock; neither do the workers of a distributed search,
which share the chief's folder by design (the chief holds it).
"""

import contextlib
import fcntl
import os

from tuner_prune.errors import InputError

LOCK_FILE = "tuner_prune.lock"

_held = {}  # Real path of a held directory -> its open lock file.


def lock_path(directory):
    return os.path.join(directory, LOCK_FILE)


@contextlib.contextmanager
def holding(directory):
    """Holds ``directory`` for the block (already held by this process: no-op).

    Creates ``directory`` if missing; writes only the lock file. The lock
    ends with the block, or with the process, however it ends.

    Raises:
        InputError: Another process holds it; the message names that process.
    """
    key = os.path.realpath(directory)
    if key in _held:
        yield
        return
    _held[key] = _acquire(directory)
    try:
        yield
    finally:
        _held.pop(key).close()


def _acquire(directory):
    """The open lock file of ``directory``, locked by this process."""
    os.makedirs(directory, exist_ok=True)
    handle = open(lock_path(directory), "a+", encoding="utf-8")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        holder = _holder(handle)
        handle.close()
        raise InputError(f"{directory}: Expected a --directory no other search is running "
                         f"in, received one held by {holder}; wait for it to end, "
                         f"or choose another --directory.") from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _holder(handle):
    handle.seek(0)
    text = handle.read().strip()
    return f"process {text}" if text.isdigit() else "another process"
