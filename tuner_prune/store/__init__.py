"""The files of a search and of an export on disk, written whole or not at all.

``staging`` (atomic files, staged export folders), ``folders`` (writable,
removable, may an export go there), ``ownership`` (which entries an export
owns, and their names), ``lock`` (one search per ``--directory``), ``records``
(the trial records and the layout of a search) and ``resume`` (a killed
search's state repaired). Uses ``space`` (the schedule's names) and ``core``.
"""
