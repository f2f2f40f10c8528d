"""Export of a search's best completed trial, for the CLI and ``PruningTuner.export``.

Without a size budget the best trial is the one with the lowest score. Under a
budget (``--max-bytes``, ``--max-flash``, ``--max-ram``) it is the trial with the
lowest validation MSE whose shipped file fits: the ``.tflite`` chosen under the
export's own options (``--quantization``, ``--size-metric``,
``--max-mse-increase``), not the ``sparse_float32`` size the trial recorded.
Trials are exported in order of validation MSE until one has a variant within
every budget; only the successful export is written. With ``ship="best"`` the
ridge baseline's linear model takes its place in that order, before the first
trial that does not beat it on validation by more than the split's noise
(``baseline.comparison``), or on folds where the search cross-checked the trial
(``cross_check``); and the trial averaged with the ridge (``blend``) before the
one of them chosen, where it beats that one.
"""

from tuner_prune.data import baseline as baseline_lib, splits
from tuner_prune.export import choice, serving
from tuner_prune.store import folders, records
from tuner_prune.tuning import blend, cross_check, keras3
from tuner_prune.core import metrics
from tuner_prune.core._kt import TrialStatus
from tuner_prune.core.errors import SearchError
from tuner_prune.export.exporter import export_model
from tuner_prune.core.errors import failure_reason
from tuner_prune.tuning.trial_runner import VAL_MSE

# The export options that bound the shipped file; each is checked by
# ``choice.choose`` on the variants of a trial.
BUDGETS = ("max_bytes", "max_flash", "max_ram")


def budgets(options):
    """``{option: limit}`` of the size budgets set among export ``options``."""
    return {name: options[name] for name in BUDGETS if options.get(name) is not None}


def export_best(tuner, dataset, export_dir, ridge=None, ship="trial", **options):
    """Exports the best completed trial of ``tuner`` (or the baseline that beats it).

    Args:
        tuner: A ``PruningTuner`` with its trials.
        dataset: The ``Dataset`` it searched on.
        export_dir: Where to export.
        ridge: The baseline's ``(coefficients, intercept)``
            (``baseline.fit_ridge``), which measures a stored baseline's
            ``test_mse`` when the search had no test split (``None``: as
            stored), and is the model shipped under ``ship="best"`` (``None``:
            the tuner's stored one).
            Without a stored baseline (a search with ``fit_baseline=False``),
            the manifest has none.
        ship: ``"best"``: the ridge baseline's linear model instead of the
            trial's unless the trial beats it on validation by more than
            ``baseline.MARGIN`` standard errors (``baseline.comparison``;
            the manifest's ``shipped`` says which); ``"trial"``: the trial's.
        **options: ``export_model``'s ``quantization``, ``size_metric``,
            ``max_bytes``, ``max_flash``, ``max_ram`` (then the trial with the
            lowest validation MSE whose shipped files, under these options,
            fit is exported), ``device``, ``max_mse_increase``. Without a
            budget, the trial with the lowest score is exported.

    Raises:
        SearchError: No trial completed, or no TFLite variant qualifies (under
            a budget: of any completed trial).
    """
    budgeted = budgets(options)
    trials = _ranked_trials(tuner, every=bool(budgeted))
    if not trials:
        raise SearchError(_nothing_to_export(tuner.oracle.trials.values()))
    count = len(trials)
    reference = _reference(tuner, dataset, ridge)
    stored = getattr(tuner, "search_data", None)
    ridge = ridge if ridge is not None else getattr(stored, "ridge", None)
    smallest = {}  # Measure: (value, trial id, variant) of the smallest in tolerance.
    trials = _within_recorded_ram(tuner, trials, options, smallest)
    loaded = {}  # Trial id: its model, loaded to compare it with the baseline.
    for trial, shipped, compared in _shippable(tuner, trials, dataset, reference, ridge,
                                               ship, loaded):
        try:
            return _export(tuner, trial, dataset, export_dir, reference, ridge, shipped,
                           options, compared, loaded)
        except choice.NoCandidateError as error:
            if not budgeted:
                raise SearchError(str(error)) from None
            _keep_smallest(smallest, error.candidates, trial.trial_id,
                           options.get("device", "phone"))
    raise SearchError(_over_budget(budgeted, options.get("quantization", "auto"),
                                   count, smallest))


def export_tuner(tuner, export_dir, test_data=None, *, max_bytes=None, max_flash=None,
                 max_ram=None, quantization=None, **options):
    """``PruningTuner.export``: the best completed trial exported as the CLI does.

    Writes ``saved_model/``, ``model.tflite`` (verified in LiteRT),
    ``manifest.json`` (and the TensorFlow Lite Micro source when the
    full-integer variant qualifies) into ``export_dir``, with the search's
    scaling baked in: raw rows in, target units out. Works in the process
    that searched or on a tuner reloaded from ``directory``.

    Args:
        tuner: The ``PruningTuner``.
        export_dir: Target folder, as ``--export-dir``.
        test_data: Raw ``(x_test, y_test)``, measured and never used to
            choose; the one given to ``search`` in this process if
            ``None``. Without one, the manifest's ``test_split`` and test
            MSEs are ``None``.
        quantization: ``"auto"``, ``"none"``, ``"dynamic"``, ``"float16"``
            or ``"int8"``, as ``--quantization``; the tuner's own if ``None``.
        size_metric: ``"bytes"`` or ``"gzip_bytes"``, as ``--size-metric``.
        max_mse_increase: Tolerance of a TFLite variant's validation MSE
            over the Keras model's, as ``--max-mse-increase``.
        max_bytes: Size budget of ``model.tflite``; the tuner's own if
            ``None``, as ``--max-bytes``.
        device: ``"phone"`` or ``"microcontroller"``, as ``--device``.
        max_flash: Flash budget of ``model.tflite`` and ``model.c``; the
            tuner's own if ``None``, as ``--max-flash``.
        max_ram: RAM budget of the export; the tuner's own if ``None``,
            as ``--max-ram``.
        ship: ``"trial"`` (the API's default) or ``"best"`` (the CLI's):
            the ridge baseline's linear model when it beats the best
            trial on validation, as ``--ship``.

    Returns:
        The manifest as a dict.

    Raises:
        InputError: Bad options or ``test_data``, or an ``export_dir``
            the CLI refuses too (nothing is written).
        SearchError: No trial completed, or no TFLite variant qualifies.
    """
    data = tuner.stored_data()
    folders.check_export_dir(export_dir, tuner.directory)
    test_data = tuner.search_test if test_data is None else test_data
    test = None if test_data is None else splits.split("test_data", test_data,
                                                       data.input_shape, data.encoding)
    return export_best(tuner, data.dataset(test), export_dir,
                       max_bytes=tuner.max_bytes if max_bytes is None else max_bytes,
                       max_flash=tuner.max_flash if max_flash is None else max_flash,
                       max_ram=tuner.max_ram if max_ram is None else max_ram,
                       quantization=tuner.quantization if quantization is None else quantization,
                       ridge=data.ridge, **options)


def best_models(tuner, num_models):
    """``PruningTuner.get_best_models``: the best completed trials' stripped models,
    in the search's scaling (raw rows in, target units out), of the builder's kind."""
    data = tuner.stored_data()
    trials = [trial for trial in tuner.oracle.get_best_trials(num_models)
              if trial.status == TrialStatus.COMPLETED]
    models = []
    for trial in trials:
        pruned = tuner.load_model(trial)
        user = tuner.hypermodel.user_model(trial.hyperparameters, pruned)
        scaling = (1.0 / data.x_scale, data.y_scale, data.input_shape)
        models.append(keras3.scaled_model(user, *scaling) if user is not None
                      else serving.scaled_model(pruned, *scaling))
    return models


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


def _within_recorded_ram(tuner, trials, options, smallest):
    """``trials`` without those whose recorded TFLM arena is over ``max_ram``.

    Such a trial has no variant within the budget (its arena is the smallest
    of the variants the export may choose), so the baseline is not compared
    with it nor shipped in its place, as ``report`` does not mark it best.
    Without arenas measured for every variant the export may choose (another
    ``--quantization``), every trial stays. ``smallest`` gets the arenas left out.
    """
    max_ram, quantization = options.get("max_ram"), options.get("quantization", "auto")
    measured = metrics.RAM_VARIANTS.get(getattr(tuner, "quantization", None), ())
    if max_ram is None or not set(metrics.RAM_VARIANTS.get(quantization, ())) <= set(measured):
        return trials
    rows = {r["trial_id"]: r for r in records.read_trials(tuner.directory, tuner.project_name)}
    kept = []
    for trial in trials:
        arena = rows.get(trial.trial_id, {}).get(records.ARENA)
        if arena is None or arena <= max_ram:
            kept.append(trial)
        elif "arena" not in smallest or arena < smallest["arena"][0]:
            smallest["arena"] = (int(arena), trial.trial_id, "recorded by the search")
    return kept


def _reference(tuner, dataset, ridge):
    """The stored baseline, its ``test_mse`` measured when the search had none."""
    reference = baseline_lib.load(tuner.directory)
    if (reference is not None and reference["test_mse"] is None and ridge is not None
            and dataset.has_test):
        reference = {**reference, "test_mse": baseline_lib.ridge_test_mse(ridge, dataset)}
    return reference


def _shippable(tuner, trials, dataset, reference, ridge, ship, loaded):
    """``(trial, shipped, comparison)`` in the order to try, lazily; ``shipped``
    is ``"trial"``, ``"baseline"`` (in the place of ``trial``) or ``"blend"``
    (``trial`` and the ridge averaged). The first trial compared with the
    baseline (``_compared``) is preceded by its blend where the blend ships;
    the baseline comes just before the first trial that does not beat it."""
    pending = ship == "best" and reference is not None and ridge is not None
    for trial in trials:
        compared = None
        if pending:
            compared = _compared(tuner, trial, dataset, reference, ridge, loaded)
            if compared.get("ships") == "blend":
                yield trial, "blend", compared
            if not compared.get("trial_wins"):
                pending = False
                yield trial, "baseline", compared
        yield trial, "trial", compared


def _compared(tuner, trial, dataset, reference, ridge, loaded):
    """``baseline.comparison`` of ``trial`` (``{}`` when it loses outright), with
    its stored ``cross_check`` deciding when there is one."""
    compared = _on_validation(tuner, trial, dataset, reference, ridge, loaded)
    checked = cross_check.stored(tuner, trial.trial_id) if compared else None
    if checked is None:
        return compared
    checked = cross_check.judged(checked, baseline_lib.MARGIN)
    return {**compared, "trial_wins": checked["trial_wins"], "ships": checked["ships"],
            "cross_check": checked}


def _on_validation(tuner, trial, dataset, reference, ridge, loaded):
    """``baseline.comparison`` of ``trial`` on validation (``{}`` when it loses
    outright), with the blend's (``blend.compared``) when it can be blended,
    and what ``ships`` on them."""
    if baseline_lib.wins(reference, trial.metrics.get_best_value(VAL_MSE), ridge):
        return {}
    if trial.trial_id not in loaded:
        loaded[trial.trial_id] = tuner.load_model(trial)
    model = loaded[trial.trial_id]
    x_val, y_val = dataset.scaled("val")
    predicted = model.predict(x_val, verbose=0)
    compared = baseline_lib.comparison(predicted, ridge, x_val, y_val, dataset.y_scale,
                                       baseline_lib.MARGIN)
    if blend.blendable(model):
        compared["blend"] = blend.compared(predicted, baseline_lib.predict(ridge, x_val),
                                           y_val, dataset.y_scale)
    compared["ships"] = blend.ships(compared["val_mse_difference"],
                                    compared["standard_error"], compared.get("blend"),
                                    baseline_lib.MARGIN)
    return compared


def cross_check_first(tuner, dataset, ship="trial", say=None, **options):
    """Cross-checks the trial an export compares first, when validation cannot tell.

    Under ``ship="best"``, when that trial (``export_best``'s first) is the
    better on validation but ``cross_check.needed`` (within the margin, or a
    small validation split) and has no stored cross-check, trains it anew on
    folds (``cross_check.run``) and stores the verdict, which ``export_best``
    then follows. The search calls it before its export; ``export`` trains
    nothing.

    Args:
        tuner: The ``PruningTuner`` in the process that searched.
        dataset: The search's ``Dataset``, its training split whole.
        ship: ``--ship``.
        say: Prints a line (``None``: quiet).
        **options: The export options (``budgets``, ``max_ram``, ``quantization``).

    Returns:
        The new cross-check, or ``None`` when none was run.
    """
    reference = baseline_lib.load(tuner.directory)
    ridge = getattr(getattr(tuner, "search_data", None), "ridge", None)
    if ship != "best" or reference is None or ridge is None:
        return None
    trials = _within_recorded_ram(tuner, _ranked_trials(tuner, bool(budgets(options))),
                                  options, {})
    if not trials or cross_check.stored(tuner, trials[0].trial_id) is not None:
        return None
    compared = _on_validation(tuner, trials[0], dataset, reference, ridge, {})
    if not cross_check.needed(compared):
        return None
    say = say or (lambda line: None)
    say(cross_check.announce(trials[0].trial_id, compared,
                             len(dataset.y_train) + len(dataset.y_val)))
    try:
        checked = cross_check.run(tuner, trials[0], dataset,
                                  reference["settings"]["alpha"], tuner.search_data.batch_size,
                                  blended="blend" in compared)
    except Exception as error:  # The search's trials stand: the validation split decides.
        say(f"  the cross-check failed ({type(error).__name__}: {error}): the validation "
            f"split decides")
        return None
    say(cross_check.verdict(checked))
    return checked


def _export(tuner, trial, dataset, export_dir, reference, ridge, shipped, options,
            compared=None, loaded=None):
    """``export_model`` of ``trial`` (``shipped="trial"``), of the baseline's
    linear model ``ridge`` in its place (``"baseline"``), or of the two
    averaged (``"blend"``); the manifest (with ``compared``, ``_compared``'s)."""
    pruning = tuner.hypermodel.schedule(trial.hyperparameters)
    extra = {"trial_id": trial.trial_id, "frequency": pruning.frequency,
             "baseline": reference, "shipped": "trial",
             "completed_trials": sum(t.status == TrialStatus.COMPLETED
                                     for t in tuner.oracle.trials.values())}
    if compared:
        extra["baseline_comparison"] = compared
    if shipped == "baseline":
        extra.update(shipped="baseline",
                     best_trial_val_mse=trial.metrics.get_best_value(VAL_MSE))
        model = baseline_lib.linear_model(ridge, dataset.input_shape)
    else:
        model = (loaded or {}).get(trial.trial_id)
        if model is None:
            model = tuner.load_model(trial)
    if shipped == "blend":
        extra.update(shipped="blend", blend_weight=blend.WEIGHT,
                     best_trial_val_mse=trial.metrics.get_best_value(VAL_MSE))
        model = blend.model(model, ridge)
    return export_model(
        model, dataset, export_dir, hyperparameters=dict(trial.hyperparameters.values),
        total_steps=tuner.hypermodel.total_steps, extra=extra, **options)


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
