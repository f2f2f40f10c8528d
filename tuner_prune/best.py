"""Export of a search's best completed trial, for the CLI and ``PruningTuner.export``."""

from tuner_prune import baseline as baseline_lib, choice, records
from tuner_prune._kt import TrialStatus
from tuner_prune.errors import SearchError
from tuner_prune.export import export_model
from tuner_prune.failures import failure_reason
from tuner_prune.trial_runner import VAL_MSE


def export_best(tuner, dataset, export_dir, ridge=None, ship="trial", **options):
    """Exports the best completed trial of ``tuner``.

    Args:
        tuner: A ``PruningTuner`` with its trials.
        dataset: The ``Dataset`` it searched on.
        export_dir: Where to export.
        **options: ``export_model``'s ``quantization``, ``size_metric``,
            ``max_bytes`` (then the trial with the lowest validation MSE whose
            recorded ``.tflite`` fits is exported),
            ``max_mse_increase``. Without ``max_bytes``, the trial with the
            lowest score is exported.
        ship: ``"best"``: the ridge baseline's linear model instead of the
            trial's when it beats the trial on validation (``baseline.wins``;
            the manifest's ``shipped`` says which); ``"trial"``: the trial's.
        ridge: The baseline's ``(coefficients, intercept)``
            (``baseline.fit_ridge``), which measures a stored baseline's
            ``test_mse`` when the search had no test split; ``None``: as stored.
            Without a stored baseline (a search with ``fit_baseline=False``),
            the manifest has none.

    Raises:
        SearchError: No trial completed, or no TFLite variant qualifies.
    """
    trial = _pick_trial(tuner, options.get("max_bytes"))
    if trial is None:
        raise SearchError(_nothing_to_export(tuner.oracle.trials.values()))
    hyperparameters = dict(trial.hyperparameters.values)
    pruning = tuner.hypermodel.schedule(trial.hyperparameters)
    reference = baseline_lib.load(tuner.directory)
    if (reference is not None and reference["test_mse"] is None and ridge is not None
            and dataset.has_test):
        reference = {**reference, "test_mse": baseline_lib.ridge_test_mse(ridge, dataset)}
    extra = {"trial_id": trial.trial_id, "frequency": pruning.frequency,
             "baseline": reference, "shipped": "trial",
             "completed_trials": sum(t.status == TrialStatus.COMPLETED
                                     for t in tuner.oracle.trials.values())}
    model = (_shipped_model(tuner, trial, dataset, reference, ridge, extra)
             if ship == "best" else tuner.load_model(trial))
    try:
        return export_model(
            model, dataset, export_dir,
            hyperparameters=hyperparameters, total_steps=tuner.hypermodel.total_steps,
            extra=extra, **options)
    except choice.NoCandidateError as error:
        raise SearchError(str(error)) from None


def _shipped_model(tuner, trial, dataset, reference, ridge, extra):
    """The trial's model, or the ridge baseline's when it beats the trial on
    validation (``baseline.wins``; ``extra`` then says so)."""
    stored = getattr(tuner, "search_data", None)
    ridge = ridge if ridge is not None else getattr(stored, "ridge", None)
    trial_mse = trial.metrics.get_best_value(VAL_MSE)
    if not baseline_lib.wins(reference, trial_mse, ridge):
        return tuner.load_model(trial)
    extra.update(shipped="baseline", best_trial_val_mse=trial_mse)
    return baseline_lib.linear_model(ridge, dataset.input_shape)


def _pick_trial(tuner, max_bytes):
    """The trial ``report`` marks best: ``records.best_trial_id`` of the records."""
    if not tuner.oracle.trials:
        return None
    rows = records.read_trials(tuner.directory, tuner.project_name)
    trial_id = records.best_trial_id(rows, max_bytes)
    if trial_id is None:
        sizes = [r["tflite_bytes"] for r in rows if r["tflite_bytes"] is not None]
        if max_bytes is None or not sizes:
            return None
        raise SearchError(f"Expected a completed trial whose .tflite fits in "
                          f"--max-bytes {max_bytes}, received none: the smallest is "
                          f"{min(sizes)} bytes")
    return tuner.oracle.get_trial(trial_id)


def _nothing_to_export(trials):
    failed = [t for t in trials if t.status == TrialStatus.FAILED]
    if not failed:
        return "Expected a completed trial to export, received none yet."
    reasons = sorted({failure_reason(t.message) for t in failed})
    return (f"Expected a completed trial to export, received {len(failed)} failed "
            f"trials and no completed one: {'; '.join(reasons)}")

