"""The folders a search writes: can they be written, and may an export go there.

Keras-free checks that ``tuner_prune.settings.plan`` runs before anything is written
(and ``export_model`` before an export); each raises ``InputError`` naming the
flag and why.
"""

import os
import shutil
import tempfile

from tuner_prune.store import lock, ownership, staging
from tuner_prune.core.errors import InputError


def check_writable(folder, flag, staged=False):
    """Raises ``InputError`` unless ``folder`` can be created and written.

    Checks the folder links lead to, where the files really go; with
    ``staged`` (an export, staged beside its folder) its parent too. Writes
    nothing: the test file is unnamed and gone when closed.
    """
    target = os.path.realpath(folder)
    if os.path.exists(target) and not os.path.isdir(target):
        raise InputError(f"Expected {flag} to be a folder, received {folder}, a file.")
    for place in (target, os.path.dirname(target)) if staged else (target,):
        existing = place
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if not os.path.isdir(existing):
            raise InputError(f"Expected {flag} to be a folder that can be created, "
                             f"received {folder}, inside the file {existing}.")
        refused = write_refusal(existing)
        if refused:
            raise InputError(f"Expected {flag} to be writable, received {folder} "
                             f"({existing}: {refused}).")


def write_refusal(folder):
    """Why a file cannot be created in the existing ``folder``, or ``None``.

    Writes nothing: the test file is unnamed and gone when closed.
    """
    try:
        tempfile.TemporaryFile(dir=folder).close()
    except OSError as error:
        return error.strerror
    return None


def check_export_target(config):
    """Refuses an ``--export-dir`` where an export would mix with other files.

    An export replaces only the files of a previous export; refused up front,
    writing nothing: the working directory, the search's ``--directory`` or a
    folder inside or above it, a folder holding the ``--data`` file, and a
    folder holding (besides dotfiles) anything but a previous export and the
    user's files beside it.

    Raises:
        InputError: Naming ``--export-dir`` and why.
    """
    check_export_dir(config.export_dir, config.directory, config.data)


def check_export_dir(given, directory=None, data=None):
    """``check_export_target`` of the folder ``given``; of the search's
    ``directory`` and the ``data`` file only when they are given."""
    export = os.path.realpath(given)
    if export == os.path.realpath(os.getcwd()):
        raise InputError(f"Expected --export-dir to be a folder of its own, received "
                         f"{given}, the working directory.")
    relation = directory and _relation(export, os.path.realpath(directory))
    if relation:
        raise InputError(f"Expected --export-dir outside the search's --directory "
                         f"{directory}, received {given}, {relation}.")
    if data is not None and _inside(os.path.realpath(data), export):
        raise InputError(f"Expected --export-dir to be a folder without the --data file "
                         f"{data}, received {given}, which holds it.")
    if os.path.isdir(export):
        _check_export_contents(given, export)


def _check_export_contents(given, export):
    owned, pending = ownership.owned_entries(export), staging.pending(export)
    visible = {entry for entry in os.listdir(export) if not entry.startswith(".")}
    foreign = sorted(visible - (owned or set()) - pending)
    if owned is None and not pending and foreign:
        raise InputError(f"Expected --export-dir to be empty or to hold a previous "
                         f"tuner_prune export ({ownership.MANIFEST}), received {given} "
                         f"holding {_listed(foreign)}.")
    clash = [entry for entry in foreign
             if entry in (ownership.MANIFEST, *ownership.ENTRIES)]
    if clash:
        raise InputError(f"Expected --export-dir to hold {', '.join(clash)} only as "
                         f"files its {ownership.MANIFEST} names, received {given} "
                         f"holding {', '.join(clash)} of another origin.")


def _relation(export, directory):
    """How ``export`` overlaps the search's ``directory``, or ``None``."""
    if export == directory:
        return "the same folder"
    if _inside(export, directory):
        return "a folder inside it"
    if _inside(directory, export):
        return "a folder above it"
    return None


def _inside(path, folder):
    return path != folder and os.path.commonpath([path, folder]) == folder


def _listed(names, shown=5):
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def remove_search(directory, project_name):
    """Removes a search's project folder for ``--overwrite``, with ``directory`` held.

    ``PruningTuner`` calls it before keras-tuner's own ``overwrite``, whose
    ``rmtree`` follows links, sees the folder; ``None`` is keras-tuner's default.
    """
    directory, project_name = directory or ".", project_name or "untitled_project"
    with lock.holding(directory):
        remove_tree(os.path.join(directory, project_name))


def remove_tree(path):
    """Removes the folder ``path`` as a whole, never through a link.

    A link (``path`` itself or anything inside) is removed as a link; what it
    points to is never touched. Every folder of the tree is checked first, so
    that a refusal leaves it whole; then it is renamed away in one step and
    removed, so that ``path`` is never left half-deleted.

    Raises:
        InputError: A folder of the tree whose entries cannot be removed (named).
    """
    if not os.path.lexists(path):
        return
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
        return
    _check_removable(path)
    parent, name = os.path.split(os.path.abspath(path))
    doomed = tempfile.mkdtemp(prefix=f".{name}.removed-", dir=parent)
    os.rename(path, os.path.join(doomed, name))
    shutil.rmtree(doomed)


def _check_removable(path):
    """Raises ``InputError`` unless every entry of the tree ``path`` can be removed."""
    folders = [os.path.dirname(os.path.abspath(path))]
    for root, _, _ in os.walk(path):  # Links to folders are not followed.
        folders.append(root)
    for folder in folders:
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(f"{path}: Expected --overwrite to be able to remove the "
                             f"search, received {folder}, whose entries cannot be "
                             f"removed ({os.strerror(13)}); nothing was removed.")
