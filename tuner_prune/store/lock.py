"""One running search per ``--directory`` (Keras-free).

A search holds ``<directory>/tuner_prune.lock`` while it runs: an exclusive
``fcntl.flock`` on the open file, which the kernel releases when the process
ends, however it ends (a crash, ``kill -9``), so no stale lock survives it;
a search that ends removes the file. The file holds the holder's process id,
only for the message of the search it refuses. ``export`` and ``report`` only read a
search and take no lock; neither do the workers of a distributed search,
which share the chief's folder by design (the chief holds it).
"""

import contextlib
import fcntl
import os

from tuner_prune.core.errors import InputError

LOCK_FILE = "tuner_prune.lock"

_held = {}  # Real path of a held directory -> its open lock file.


def lock_path(directory):
    return os.path.join(directory, LOCK_FILE)


@contextlib.contextmanager
def holding(directory):
    """Holds ``directory`` for the block (already held by this process: no-op).

    The lock file, and ``directory`` if this created it, are removed when the
    block ends; the lock ends with the block, or with the process, however it
    ends (a lock file left by a killed process is taken over).

    Raises:
        InputError: Another process holds it; the message names that process.
    """
    key = os.path.realpath(directory)
    if key in _held:
        yield
        return
    created = not os.path.isdir(directory)
    os.makedirs(directory, exist_ok=True)
    try:
        _held[key] = _acquire(directory)
    except BaseException:
        _remove_empty(directory, created)
        raise
    try:
        yield
    finally:
        handle = _held.pop(key)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(lock_path(directory))  # Still locked: no one else took it.
        handle.close()
        _remove_empty(directory, created)


def _acquire(directory):
    """The open lock file of ``directory``, locked by this process.

    A file another process unlinked while this one waited to lock it is
    let go of and the current one locked instead.
    """
    path = lock_path(directory)
    while True:
        handle = open(path, "a+", encoding="utf-8")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            holder = _holder(handle)
            handle.close()
            raise InputError(f"{directory}: Expected a --directory no other search is "
                             f"running in, received one held by {holder}; wait for it "
                             f"to end, or choose another --directory.") from None
        if _is_current(handle, path):
            break
        handle.close()
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def _is_current(handle, path):
    """Whether ``handle`` is still the file at ``path`` (not unlinked meanwhile)."""
    try:
        return os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
    except FileNotFoundError:
        return False


def _remove_empty(directory, created):
    if created:
        with contextlib.suppress(OSError):
            os.rmdir(directory)  # Only if nothing else was written there.


def _holder(handle):
    handle.seek(0)
    text = handle.read().strip()
    return f"process {text}" if text.isdigit() else "another process"
