"""Files and folder contents written completely or not at all (Keras-free).

New files get the modes the user's umask gives, as ``open`` and ``mkdir`` make
them (not the private ones of ``mkstemp`` and ``mkdtemp``).

``staged_folder`` writes new entries into a hidden staging folder beside the
target, then swaps them in for the entries the target's previous content owns,
and only those: the target folder itself and everything else in it stay. The
swap is journaled in a hidden retired folder beside the target, which receives
the replaced entries; the entry that names the others (the manifest) is moved
out first and in last, so a reader never sees it name a missing file. The next
swap into the same target finishes a swap whose process died, and removes the
staging and retired folders such processes left.
"""

import contextlib
import fcntl
import json
import os
import re
import secrets
import shutil

from tuner_prune.core.errors import InputError

STAGING = "partial"
RETIRED = "retired"
JOURNAL = ".swap.json"


def write_json(path, value, indent=None):
    """Writes ``value`` as JSON to ``path`` so that it is never seen half-written."""
    write_whole(path, lambda stream: json.dump(value, stream, indent=indent),
                binary=False)


def write_whole(path, write, binary=True):
    """Writes ``path`` by ``write(stream)`` so that it is never seen half-written.

    The file is written under a hidden name beside ``path`` (mode 0666 less the
    umask) and renamed over it when complete.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    temporary, handle = _new_file(folder)
    try:
        with (os.fdopen(handle, "wb") if binary else
              os.fdopen(handle, "w", encoding="utf-8")) as stream:
            write(stream)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _new_file(folder):
    """``(path, descriptor)`` of a new hidden file, mode 0666 less the umask."""
    while True:
        path = os.path.join(folder, f".tmp-{secrets.token_hex(6)}")
        try:
            return path, os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
        except FileExistsError:
            continue


def _new_folder(parent, prefix):
    """A new folder ``prefix<random>`` in ``parent``, mode 0777 less the umask."""
    while True:
        path = os.path.join(parent, f"{prefix}{secrets.token_hex(6)}")
        try:
            os.mkdir(path)
            return path
        except FileExistsError:
            continue


@contextlib.contextmanager
def staged_folder(target, owned, last):
    """Yields an empty folder whose entries replace ``target``'s owned ones.

    Args:
        target: The folder to write into (created when the block succeeds).
        owned: ``owned(folder)`` returns the names of the entries of
            ``folder`` that its current content owns (those new content may
            replace), or ``None`` when it owns none.
        last: The entry that names the others (a manifest): moved out of
            ``target`` first and into it last.

    If the block raises (or the process dies before the swap), ``target`` is
    left as it was.

    Raises:
        InputError: A new entry would replace an entry of ``target`` that is
            not owned (``target`` is left as it was).
    """
    target = os.path.realpath(target)
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    with _locked(target):
        recover(target)
    staging = _new_folder(parent, _prefix(name, STAGING))
    try:
        yield staging
        os.makedirs(target, exist_ok=True)  # Fails if the target is now a file.
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    with _locked(target):
        _swap_in(staging, target, owned(target) or (), last)


@contextlib.contextmanager
def _locked(folder):
    """Holds an exclusive lock on ``folder`` (if it exists) against other swaps."""
    if not os.path.isdir(folder):
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # Not every network filesystem locks.
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _swap_in(staging, target, owned, last):
    old = sorted(name for name in owned if _plain(name))
    new = sorted(os.listdir(staging))
    try:
        _check_swap(target, old, new, last)
    except Exception:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    parent, name = os.path.split(target)
    retired = _new_folder(parent, _prefix(name, RETIRED))
    write_json(os.path.join(retired, JOURNAL), {
        "staging": os.path.basename(staging), "old": old, "new": new, "last": last})
    _finish(retired, target)  # If it raises, the next swap finishes it.
    shutil.rmtree(retired, ignore_errors=True)
    shutil.rmtree(staging, ignore_errors=True)


def _check_swap(target, old, new, last):
    """Raises unless ``new`` holds ``last`` and replaces only ``old`` entries."""
    if last not in new:
        raise RuntimeError(f"Expected the staged content to hold {last}, received {new}.")
    clash = ", ".join(entry for entry in new
                      if entry not in old and os.path.lexists(os.path.join(target, entry)))
    if clash:
        raise InputError(f"{target}: Expected no {clash} but a previous export's own, "
                         f"received {clash} of another origin; move it away or choose "
                         f"another folder.")


def _finish(retired, target):
    """Completes the swap journaled in ``retired`` from wherever it stopped."""
    journal = _read_journal(retired)
    if journal is None:
        return
    staging = os.path.join(os.path.dirname(target), journal["staging"])
    last, new = journal["last"], journal["new"]
    if not os.path.lexists(os.path.join(staging, last)):
        return  # Done: the new ``last`` is in.
    for name in [last] + [entry for entry in journal["old"] if entry != last]:
        if name not in new or os.path.lexists(os.path.join(staging, name)):
            _move(os.path.join(target, name), os.path.join(retired, name))
    for name in [entry for entry in new if entry != last] + [last]:
        _move(os.path.join(staging, name), os.path.join(target, name))


def _move(source, destination):
    """Renames ``source`` (if there) to ``destination``, never over an entry."""
    if not os.path.lexists(source):
        return
    if os.path.lexists(destination):
        raise FileExistsError(f"Expected no {destination} while moving {source} there, "
                              f"received one.")
    os.rename(source, destination)


def recover(target):
    """Cleans up after processes that died while swapping entries into ``target``.

    Finishes the swap a process journaled before it died, then removes the
    staging and retired folders of dead processes.
    """
    target = os.path.realpath(target)
    leftovers = list(_leftovers(*os.path.split(target)))
    for kind, path in leftovers:
        if kind == RETIRED:
            _finish(path, target)
    for _, path in leftovers:
        shutil.rmtree(path, ignore_errors=True)


def pending(target):
    """Names of ``target``'s entries that swaps interrupted by a death own."""
    names = set()
    for kind, path in _leftovers(*os.path.split(os.path.realpath(target))):
        journal = _read_journal(path) if kind == RETIRED else None
        if journal:
            names.update(journal["old"], journal["new"])
    return names


def _read_journal(retired):
    try:
        with open(os.path.join(retired, JOURNAL), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return None


def _plain(name):
    """Whether ``name`` is a visible entry name, not a path."""
    return bool(name) and not name.startswith(".") and os.sep not in name


def _prefix(name, kind):
    return f".{name}.{kind}-{os.getpid()}-"


def _leftovers(parent, name):
    """``(kind, path)`` of the staging and retired folders of dead processes."""
    if not os.path.isdir(parent):
        return
    pattern = re.compile(rf"\.{re.escape(name)}\.({STAGING}|{RETIRED})-(\d+)-")
    for entry in sorted(os.listdir(parent)):
        match = pattern.match(entry)
        if match and not _alive(int(match.group(2))):
            yield match.group(1), os.path.join(parent, entry)


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
