"""Export of a search's best completed trial, for the CLI and ``PruningTuner.export``.

Without a size budget the best trial is the one with the lowest score. Under a
budget (``--max-bytes``, ``--max-flash``, ``--max-ram``) it is the trial with the lowest validation MSE whose
shipped file fits: the ``.tflite`` chosen under the export's own options
(``--quantization``, ``--size-metric``, ``--max-mse-increase``), not the
``sparse_float32`` size the trial recorded. Trials are exported in order of
validation MSE until one has a variant within every budget; only the
successful export is written.
"""

from tuner_prune import baseline as baseline_lib, choice, records
from tuner_prune._kt import TrialStatus
from tuner_prune.errors import SearchError
from tuner_prune.export import export_model
from tuner_prune.failures import failure_reason

# The export options that bound the shipped file; each is checked by
# ``choice.choose`` on the variants of a trial.
BUDGETS = ("max_bytes", "max_flash", "max_ram")


def budgets(options):
    """``{option: limit}`` of the size budgets set among export ``options``."""
    return {name: options[name] for name in BUDGETS if options.get(name) is not None}


def export_best(tuner, dataset, export_dir, ridge=None, **options):
    """Exports the best completed trial of ``tuner``.

    Args:
        tuner: A ``PruningTuner`` with its trials.
        dataset: The ``Dataset`` it searched on.
        export_dir: Where to export.
        **options: ``export_model``'s ``quantization``, ``size_metric``,
            ``max_bytes`` (then the trial with the lowest validation MSE
            whose shipped ``.tflite``, under these options, fits is
            exported), ``max_mse_increase``. Without ``max_bytes``, the trial
            with the lowest score is exported.
        ridge: The baseline's ``(coefficients, intercept)``
            (``baseline.fit_ridge``), which measures a stored baseline's
            ``test_mse`` when the search had no test split; ``None``: as stored.
            Without a stored baseline (a search with ``fit_baseline=False``),
            the manifest has none.

    Raises:
        SearchError: No trial completed, or no TFLite variant qualifies (under
            a budget: of any completed trial).
    """
    budgeted = budgets(options)
    trials = _ranked_trials(tuner, every=bool(budgeted))
    if not trials:
        raise SearchError(_nothing_to_export(tuner.oracle.trials.values()))
    smallest = {}  # Measure: (value, trial id, variant) of the smallest in tolerance.
    for trial in trials:
        try:
            return _export_trial(tuner, trial, dataset, export_dir, ridge, options)
        except choice.NoCandidateError as error:
            if not budgeted:
                raise SearchError(str(error)) from None
            _keep_smallest(smallest, error.candidates, trial.trial_id,
                           options.get("device", "phone"))
    raise SearchError(_over_budget(budgeted, options.get("quantization", "auto"),
                                   len(trials), smallest))


def _keep_smallest(smallest, candidates, trial_id, device):
    """Updates ``smallest`` with the file bytes and the TFLM arena of the variants
    within the tolerance (that ``device`` takes) of one trial."""
    for c in candidates:
        if not c.within_tolerance or (device == "microcontroller"
                                      and not choice.runs_in_tflm(c)):
            continue
        for measure, value in (("bytes", c.bytes), ("arena", c.arena_bytes)):
            if value is not None and (measure not in smallest
                                      or value < smallest[measure][0]):
                smallest[measure] = (value, trial_id, c.name)


def _export_trial(tuner, trial, dataset, export_dir, ridge, options):
    """``export_model`` of ``trial``; its manifest."""
    hyperparameters = dict(trial.hyperparameters.values)
    pruning = tuner.hypermodel.schedule(trial.hyperparameters)
    reference = baseline_lib.load(tuner.directory)
    if (reference is not None and reference["test_mse"] is None and ridge is not None
            and dataset.has_test):
        reference = {**reference, "test_mse": baseline_lib.ridge_test_mse(ridge, dataset)}
    return export_model(
        tuner.load_model(trial), dataset, export_dir,
        hyperparameters=hyperparameters, total_steps=tuner.hypermodel.total_steps,
        extra={"trial_id": trial.trial_id, "frequency": pruning.frequency,
               "baseline": reference,
               "completed_trials": sum(t.status == TrialStatus.COMPLETED
                                       for t in tuner.oracle.trials.values())},
        **options)


def _ranked_trials(tuner, every):
    """The best trial (``records.best_trial_id``), or with ``every`` all
    completed trials, lowest validation MSE first."""
    if not tuner.oracle.trials:
        return []
    rows = records.read_trials(tuner.directory, tuner.project_name)
    if not every:
        trial_id = records.best_trial_id(rows)
        return [] if trial_id is None else [tuner.oracle.get_trial(trial_id)]
    completed = sorted((r for r in rows if r["status"] == records.COMPLETED
                        and r["val_mse"] is not None), key=records.rank)
    return [tuner.oracle.get_trial(r["trial_id"]) for r in completed]


def _over_budget(budgeted, quantization, count, smallest):
    """The message of no trial within ``budgeted``; ``smallest`` as ``_keep_smallest``'s."""
    limits = ", ".join(f"--{name.replace('_', '-')} {limit}"
                       for name, limit in budgeted.items())
    found = []
    if "bytes" in smallest and ({"max_bytes", "max_flash"} & set(budgeted)):
        found.append("the smallest is {} bytes (trial {}, {})".format(*smallest["bytes"]))
    if "max_ram" in budgeted:
        found.append("the smallest TFLM arena is {} bytes (trial {}, {})".format(
            *smallest["arena"]) if "arena" in smallest
            else "none within the MSE tolerance ran in TFLM")
    if not smallest:
        found = ["none within the MSE tolerance"]
    found = "; ".join(found)
    return (f"Expected a completed trial whose .tflite (quantization {quantization}) "
            f"fits in {limits} within the MSE tolerance, received none among {count} "
            f"completed trials: {found}")


def _nothing_to_export(trials):
    failed = [t for t in trials if t.status == TrialStatus.FAILED]
    if not failed:
        return "Expected a completed trial to export, received none yet."
    reasons = sorted({failure_reason(t.message) for t in failed})
    return (f"Expected a completed trial to export, received {len(failed)} failed "
            f"trials and no completed one: {'; '.join(reasons)}")
