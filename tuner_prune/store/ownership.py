"""Which entries of an export folder a tuner_prune export wrote (Keras-free).

An export owns its ``manifest.json`` and the files the manifest names, and
nothing else in the folder: a new export replaces only those. The names of
those files are set here, where the store reads them; the export stage's
writers (``micro``, ``c_source``) take them from here.
"""

import json
import os

MANIFEST = "manifest.json"
SAVED_MODEL = "saved_model"
TFLITE = "model.tflite"
MICRO_SOURCE, MICRO_HEADER = "model_data.cc", "model_data.h"  # The C++ array for TFLM.
C_SOURCE, C_HEADER = "model.c", "model.h"  # The C export.
# Every entry an export may write besides its manifest.
ENTRIES = (SAVED_MODEL, TFLITE, MICRO_SOURCE, MICRO_HEADER, C_SOURCE, C_HEADER)


def shipped_files(manifest):
    """Paths (relative to the export folder) that ``manifest`` names."""
    names = [manifest["saved_model"]["path"], manifest["tflite"]["path"]]
    if manifest.get("micro"):
        names += [manifest["micro"]["source"], manifest["micro"]["header"]]
    if (manifest.get("c") or {}).get("source"):
        names += [manifest["c"]["source"], manifest["c"]["header"]]
    return names


def owned_entries(folder):
    """Names of the entries of ``folder`` that the export in it wrote.

    Only the manifest and the entries it names among ``ENTRIES`` count, so an
    edited manifest cannot make an export replace anything else.

    Returns:
        A set of names, or ``None`` when ``folder`` holds no tuner_prune
        export (no readable ``manifest.json`` naming its files).
    """
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as handle:
            names = shipped_files(json.load(handle))
    except (OSError, ValueError, LookupError, TypeError, AttributeError):
        return None
    return {MANIFEST} | (set(names) & set(ENTRIES))
