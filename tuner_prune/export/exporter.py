"""Export of a trained pruned model: SavedModel, verified TFLite, manifest.

Everything is written into a staging folder beside the target and swapped in
only when complete and checked, for the files of the previous export only (see
``staging`` and ``ownership``): an interrupted or failed export leaves the
previous one intact, a manifest never names a file that is not there, and no
other file in the target folder is touched.
"""

import json
import os

import numpy as np

from tuner_prune.store import folders
from tuner_prune.export import c_export, choice, micro, padding, raw_input, runtimes, tflite, tflm
from tuner_prune.store import ownership, staging
from tuner_prune.settings import config as config_lib
from tuner_prune.export.measure import measure_sparsity, model_mse
from tuner_prune.store.ownership import MANIFEST, SAVED_MODEL, TFLITE, shipped_files
from tuner_prune.export.serving import serving_model


def export_model(pruned_model, dataset, export_dir, *, hyperparameters=None,
                 total_steps=None, extra=None, max_mse_increase=0.05, size_metric="bytes",
                 quantization="auto", max_bytes=None, device="phone", max_flash=None,
                 max_ram=None):
    """Writes ``saved_model/``, ``model.tflite``, ``manifest.json`` (and C++).

    ``PruningTuner.export`` calls it for the best trial of a search; call it
    directly to export any pruning-wrapped model trained on
    ``dataset.scaled("train")``.

    The manifest's ``val_mse`` and ``test_mse`` are the stripped Keras model's,
    measured here on the dataset's validation and test splits in target units;
    each TFLite variant is measured on both, and chosen on validation only.
    Without a test split (``dataset.has_test`` false) the manifest's
    ``test_split`` and every ``test_mse`` are ``None``; otherwise
    ``test_split`` is ``{"rows": ...}``.

    Each variant is also run in LiteRT's built-in kernels and in TensorFlow
    Lite Micro (``runtimes``; the candidates' ``runtimes``). ``model_data.cc``
    and ``model_data.h`` are written too when the full-integer variant is
    within the tolerance and computes in TFLM as in LiteRT, and ``model.c`` and
    ``model.h`` (``c_export``) when the model is Dense and ReLU layers and
    its C, compiled and run, is within the tolerance (the manifest's ``c``). ``block_padding`` names the
    block-pruned kernels that the exported graph pads to whole blocks
    (``{layer: [inputs, padded inputs]}``, see ``padding``).

    Args:
        pruned_model: The pruning-wrapped model with its scored weights.
        dataset: The ``data.Dataset`` the model was trained on (scaling,
            validation and test splits, training rows that calibrate the
            full-integer variant): ``data.load_dataset``'s, or
            ``splits.from_arrays`` of raw arrays.
        export_dir: Target folder; the previous export's files in it are
            replaced only when the export is complete, other files are kept.
        hyperparameters: The trial's hyperparameter values
            (``trial.hyperparameters.values``), recorded as
            ``best_hyperparameters``; ``{}`` if ``None``.
        total_steps: Training steps of the trial (epochs x steps per epoch),
            recorded as ``total_steps``; ``None`` if not given.
        extra: More manifest fields.
        max_mse_increase: Tolerance of a TFLite variant's validation MSE over
            the Keras model's (the test split is measured, never used to choose).
        size_metric: ``"bytes"`` or ``"gzip_bytes"``: what "smallest" means.
        quantization: ``"auto"``, or ``"none"``, ``"dynamic"``, ``"float16"``,
            ``"int8"`` to choose ``model.tflite`` among that kind of variant only.
        max_bytes: Largest ``model.tflite`` allowed, or ``None``.
        device: ``"phone"`` (``model.tflite`` runs in LiteRT) or
            ``"microcontroller"`` (only a variant that computed in TFLM as in
            LiteRT; see ``choice.choose``).
        max_flash: Largest ``model.tflite`` and ``model.c`` object (text plus
            data) allowed, or ``None``.
        max_ram: Largest TFLM tensor arena of ``model.tflite`` (measured for
            the variants that run in TFLM) and ``model.c`` buffers, or ``None``.

    Returns:
        The manifest as a dict.

    Raises:
        choice.NoCandidateError: No variant qualifies (nothing is written).
        InputError: A bad option, or an ``export_dir`` the CLI refuses too (a
            file, not writable, the working directory, a folder of other
            files); checked before any work, nothing is written. Also
            ``export_dir`` holding a file of another origin where the export
            would write.
    """
    options = {"max_mse_increase": max_mse_increase, "size_metric": size_metric,
               "quantization": quantization, "max_bytes": max_bytes, "device": device,
               "max_flash": max_flash, "max_ram": max_ram}
    config_lib.check_export_options(options)
    folders.check_writable(export_dir, "--export-dir")
    folders.check_export_dir(export_dir)
    model = serving_model(pruned_model, dataset)
    validation = (dataset.x_val.astype(np.float32), dataset.y_val)
    test = (dataset.x_test.astype(np.float32), dataset.y_test) if dataset.has_test else None
    manifest = {
        "best_hyperparameters": dict(hyperparameters or {}),
        "total_steps": total_steps,
        "val_mse": model_mse(model, *validation),
        "test_mse": None if test is None else model_mse(model, *test),
        "test_split": None if test is None else {"rows": len(test[0])},
        **measure_sparsity(pruned_model),
        "block_padding": padding.kernel_padding(pruned_model,
                                                padding.block_rows(pruned_model)),
        **(extra or {}),
        "export_options": options,
    }
    if dataset.encoding is not None:  # A CSV's columns: how raw rows become inputs.
        manifest["inputs"] = dataset.encoding.manifest()
    with staging.staged_folder(export_dir, ownership.owned_entries, MANIFEST) as folder:
        saved_model_dir = os.path.join(folder, SAVED_MODEL)
        with raw_input.saved_models(model, dataset, saved_model_dir) as converted, \
                tflite.without_glob_characters(converted) as readable:
            found = tflite.candidates(readable, validation, test,
                                      representative_rows(dataset))
        runtimes.verify(found, validation[0], arenas=max_ram is not None)
        manifest.update(_write_tflite(found, folder, manifest, validation[0]))
        manifest["c"] = _write_c(model, found, validation, test, manifest, folder)
        manifest["macs_per_inference"] = {"dense": c_export.dense_macs(model),
                                          "c": manifest["c"].get("macs")}
        manifest["saved_model"] = {"path": SAVED_MODEL,
                                   "bytes": _tree_bytes(saved_model_dir)}
        _write_manifest(manifest, folder)
    return manifest


def representative_rows(dataset, rows=tflite.REPRESENTATIVE_ROWS, seed=0):
    """Raw training rows that calibrate a full-integer variant."""
    count = min(rows, len(dataset.x_train))
    picked = np.random.default_rng(seed).choice(len(dataset.x_train), count, replace=False)
    return dataset.x_train[np.sort(picked)].astype(np.float32)


def _write_tflite(found, folder, manifest, rows):
    options = manifest["export_options"]
    chosen = choice.choose(found, manifest["val_mse"], **options)
    tflite.write(chosen, os.path.join(folder, TFLITE))
    by_name = {c.name: c for c in found}
    return {
        "tflite": {"path": TFLITE, "variant": chosen.name, "bytes": chosen.bytes,
                   "gzip_bytes": chosen.gzip_bytes, "val_mse": chosen.val_mse,
                   "test_mse": chosen.test_mse,
                   "latency_us": chosen.latency_us,
                   **tflite.io_quantization(chosen.content)},
        "micro": _write_micro(by_name.get("int8"), folder, rows,
                              options["max_flash"], options["max_ram"]),
        "dense_tflite_bytes": by_name["float32"].bytes,
        "candidates": [c.summary() for c in found],
    }


def _write_micro(candidate, folder, rows, max_flash=None, max_ram=None):
    """C++ source of the full-integer variant, if within the tolerance and right in TFLM.

    ``model_data.h`` gives the tensor arena: the smallest that runs it on
    ``rows`` (``tflm.smallest_arena``) plus ``tflm.ARENA_MARGIN``. Under
    ``max_flash`` or ``max_ram`` it is written only when its bytes and that
    arena fit, as ``model.c``.
    """
    if (candidate is None or not candidate.within_tolerance
            or not runtimes.matched_in(candidate, choice.TFLM)
            or (max_flash is not None and candidate.bytes > max_flash)):
        return None
    io_params = tflite.io_quantization(candidate.content)
    smallest = tflm.smallest_arena(candidate.content, rows, candidate.tflm_predictions)
    arena = None if smallest is None else {
        "bytes": tflm.arena_with_margin(smallest), "smallest_bytes": smallest,
        "margin": tflm.ARENA_MARGIN}
    if max_ram is not None and (arena is None or arena["bytes"] > max_ram):
        return None
    return {"variant": candidate.name,
            **micro.write(candidate.content, io_params, folder, arena)}


def _write_c(model, found, validation, test, manifest, folder):
    """``model.c`` and ``model.h`` when the model is Dense and ReLU layers (``c_export``)."""
    dense = next(c for c in found if c.name == "float32")
    reference = (dense.val_predictions if dense.loaded  # LiteRT's, from ``evaluate``.
                 else model.predict(validation[0], verbose=0))
    limit = manifest["val_mse"] * (1 + manifest["export_options"]["max_mse_increase"])
    options = manifest["export_options"]
    return c_export.write(model, validation, test, reference, limit, folder,
                          max_flash=options["max_flash"], max_ram=options["max_ram"])


def _write_manifest(manifest, folder):
    missing = [name for name in shipped_files(manifest)
               if not os.path.exists(os.path.join(folder, name))]
    if missing:
        raise RuntimeError(f"Expected the export to hold {missing}, received none")
    path = os.path.join(folder, MANIFEST)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)


def _tree_bytes(folder):
    return sum(os.path.getsize(os.path.join(root, name))
               for root, _, names in os.walk(folder) for name in names)
