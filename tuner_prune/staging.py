"""Write a folder completely or not at all (Keras-free).

The new content is written into a hidden staging folder beside the target and
swapped in by two renames once complete. Folders left behind by a process that
was killed are removed by the next swap into the same target; if it was killed
between the two renames, the previous folder is put back.
"""

import contextlib
import os
import re
import shutil
import tempfile

STAGING = "partial"
RETIRED = "retired"


@contextlib.contextmanager
def staged_folder(target, keep=(".gitignore",)):
    """Yields an empty folder that replaces ``target`` when the block succeeds.

    Args:
        target: The folder to replace (created if missing).
        keep: Names of files in the current ``target`` carried over into
            the new one.

    If the block raises (or the process dies), ``target`` is left as it was.
    """
    target = os.path.abspath(target)
    parent, name = os.path.split(target)
    os.makedirs(parent, exist_ok=True)
    recover(target)
    staging = tempfile.mkdtemp(prefix=_prefix(name, STAGING), dir=parent)
    try:
        yield staging
        for kept in keep:
            if os.path.isfile(os.path.join(target, kept)):
                shutil.copy(os.path.join(target, kept), os.path.join(staging, kept))
        _swap_in(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _swap_in(staging, target):
    parent, name = os.path.split(target)
    retired = None
    if os.path.exists(target):
        retired = tempfile.mkdtemp(prefix=_prefix(name, RETIRED), dir=parent)
        os.rename(target, os.path.join(retired, name))
    os.rename(staging, target)
    if retired:
        shutil.rmtree(retired, ignore_errors=True)


def recover(target):
    """Cleans up after processes that died while replacing ``target``.

    Removes their staging folders; if ``target`` is missing because one died
    between its two renames, moves the previous folder back.
    """
    parent, name = os.path.split(os.path.abspath(target))
    for kind, entry in _leftovers(parent, name):
        path = os.path.join(parent, entry)
        previous = os.path.join(path, name)
        if kind == RETIRED and not os.path.exists(target) and os.path.isdir(previous):
            os.rename(previous, target)
        shutil.rmtree(path, ignore_errors=True)


def _prefix(name, kind):
    return f".{name}.{kind}-{os.getpid()}-"


def _leftovers(parent, name):
    """``(kind, entry)`` of staging and retired folders of dead processes."""
    pattern = re.compile(rf"\.{re.escape(name)}\.({STAGING}|{RETIRED})-(\d+)-")
    for entry in sorted(os.listdir(parent)):
        match = pattern.match(entry)
        if match and not _alive(int(match.group(2))):
            yield match.group(1), entry


def _alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
