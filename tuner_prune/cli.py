"""``python -m tuner_prune``: each subcommand parses flags and calls one function."""

import argparse
import os
import sys
import traceback

from tuner_prune.core import quiet
from tuner_prune.core.errors import InputError, SearchError

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

USAGE_ERROR = 2
INTERNAL_ERROR = 1
DEBUG_VARIABLE = "TUNER_PRUNE_DEBUG"


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, formatter_class=_ShowDefaults, **kwargs)

    def error(self, message):
        raise SystemExit(_usage_error(f"{self.prog}: {message}"))


class _ShowDefaults(argparse.HelpFormatter):
    """Help that ends each flag's text with its default (``off`` for a switch)."""

    def _get_help_string(self, action):
        text = action.help or ""
        if "default" in text or action.default is argparse.SUPPRESS or not action.option_strings:
            return text
        if isinstance(action, argparse._StoreTrueAction):
            return f"{text} (default: off)"
        default = "none" if action.default is None else "%(default)s"
        return f"{text} (default: {default})"


def _usage_error(message):
    print(f"tuner_prune: error: {message}", file=sys.stderr)
    return USAGE_ERROR


def _add_data_and_training_flags(parser, defaults):
    """The flags of ``TrainingConfig``; ``defaults``: its subclass for this command."""
    add = parser.add_argument
    add("--data", help="CSV (header row; text columns and empty cells are read) or .npz "
        "with arrays x (rows, ...) and y; default: the article's built-in regression "
        "workload")
    add("--target", help="CSV column holding the target (default: the last)")
    add("--n-samples", type=int, default=defaults.n_samples, help="built-in workload rows")
    add("--n-features", type=int, default=defaults.n_features,
        help="built-in workload features")
    add("--n-informative", type=int, default=defaults.n_informative,
        help="built-in informative features")
    add("--noise", type=float, default=defaults.noise, help="built-in workload noise")
    derived = " (default: from the training rows)" if defaults.epochs is None else ""
    add("--epochs", type=int, default=defaults.epochs, help=f"epochs per trial{derived}")
    add("--batch-size", type=int, default=defaults.batch_size,
        help=f"rows per training step{derived}")
    add("--seed", type=int, default=defaults.seed, help="seed of data, oracle and weights")
    add("--model", metavar="MODULE:FUNCTION",
        help="your base-model builder: f(hp) -> uncompiled tf_keras model")


def _add_search_flags(parser):
    from tuner_prune.settings.config import SearchConfig
    from tuner_prune.space.bounds import (DEFAULT_FINAL_SPARSITY, DEFAULT_POWER,
                                   SCHEDULE_HYPERPARAMETERS)

    _add_data_and_training_flags(parser, SearchConfig)
    add = parser.add_argument
    add("--max-trials", type=int, default=SearchConfig.max_trials, help="trials to run")
    add("--directory", default=SearchConfig.directory,
        help="search state and TensorBoard logs")
    add("--export-dir", default=SearchConfig.export_dir,
        help="where the best model is exported")
    add("--overwrite", action="store_true", help="start over instead of resuming")
    add("--quiet", action="store_true", help="print only the final summary: no trial "
        "lines, no progress")
    searched = ("%s:%s" % DEFAULT_FINAL_SPARSITY, "%s:%s" % DEFAULT_POWER,
                "0 to a third of the steps before end_step's lowest",
                "a third of the steps to the last step that leaves a recovery window")
    for name, kind, default in zip(SCHEDULE_HYPERPARAMETERS[:4], ("in [0, 1)", "> 0", "step", "step"),
                                   searched):
        add(f"--{name.replace('_', '-')}", metavar="VALUE|LO:HI",
            help=f"fix ({kind}) or bound this schedule hyperparameter (default: "
            f"searched in {default})")
    add("--frequency", metavar="VALUE|LO:HI", help="fix or search the steps between "
        "mask updates (each trial snaps it to a divisor of end_step - begin_step); "
        "default: the largest such divisor <= 5, not searched")
    add("--hp", action="append", metavar="NAME=VALUE|LO:HI",
        help="fix or bound any hyperparameter, the model's included (repeatable; "
        "default: none, each searched over its declared range)")
    add("--article", action="store_true",
        help="the article's own model and optimiser: two hidden layers of 1024 units, "
        "he_normal first kernel, Adam 1e-3")
    add("--oracle", metavar="[HOST:]PORT",
        help="distributed search: the chief's address (KERASTUNER_ORACLE_IP/PORT); "
        "the chief listens on loopback unless HOST is given")
    add("--tuner-id", help="distributed search: this process's id "
        "(KERASTUNER_TUNER_ID); an id containing 'chief' makes the chief")
    add("--worker-timeout", type=float, default=SearchConfig.worker_timeout,
        help="chief: seconds without a worker heartbeat before its trial moves on; "
        "worker: seconds it waits for an answer of a chief that answered before")
    add("--threads", type=int, metavar="N",
        help="TensorFlow intra- and inter-op threads of this process (default: "
        "TensorFlow's, one per core)")
    add("--distribution", choices=["mirrored"],
        help="train each trial under tf.distribute.MirroredStrategy (all local "
        "GPUs, or 2 logical CPU devices)")
    add("--block-size", metavar="ROWSxCOLUMNS",
        help="prune kernels in blocks (tfmot block_size; 16x1 = TFLite's int8 "
        "1x16 sparse kernel, 4x1 = its float32 1x4 one); default: unstructured")
    _add_export_flags(parser, search_defaults=True)


def _add_export_flags(parser, search_defaults):
    """The flags that choose ``model.tflite``; for ``export``, left out means the
    search's own (stored) settings."""
    from tuner_prune.settings.config import SHIPS, SearchConfig

    defaults = SearchConfig().export_options
    if not search_defaults:
        defaults = dict.fromkeys(defaults)
    add = parser.add_argument
    add("--quantization", default=defaults["quantization"],
        help="auto (smallest that qualifies), none, dynamic, float16 or int8: "
        "choose model.tflite among that kind of variant")
    add("--size-metric", default=defaults["size_metric"],
        help="bytes (what the device stores) or gzip_bytes (what is downloaded)")
    add("--max-mse-increase", type=float, default=defaults["max_mse_increase"],
        help="largest relative validation MSE increase of model.tflite over Keras "
        "(0.05 = 5%%)")
    add("--device", default=defaults["device"],
        help="phone (model.tflite runs in LiteRT) or microcontroller (only a variant "
        "that computed in TensorFlow Lite Micro as in LiteRT)")
    add("--max-flash", type=int, default=defaults["max_flash"], metavar="N",
        help="flash budget: export model.tflite and model.c's object within N bytes; "
        "for search, trials whose .tflite is over it get a penalised score, as under "
        "--max-bytes")
    add("--max-ram", type=int, default=defaults["max_ram"], metavar="N",
        help="RAM budget: export model.tflite's TFLM tensor arena and model.c's buffers "
        "within N bytes; for search, trials whose TFLM arena is over it get a penalised "
        "score")
    add("--max-bytes", type=int, default=defaults["max_bytes"], metavar="N",
        help="size budget: export the most accurate trial whose .tflite fits in N "
        "bytes; for search, trials over it get a penalised score")
    add("--ship", default=defaults["ship"], choices=SHIPS,
        help="best: the best trial, or the ridge baseline unless a trial beats it by "
        "more than 1 standard error (on validation, or on folds for a small table), or "
        "the two averaged where that beats the one chosen; trial: the best trial always")


def _add_sweep_flags(parser):
    from tuner_prune.reporting.sweep import SweepConfig

    _add_data_and_training_flags(parser, SweepConfig)
    add = parser.add_argument
    add("--sparsities", default=SweepConfig.sparsities,
        help="comma-separated final sparsities")
    add("--repeats", type=int, default=SweepConfig.repeats,
        help="initialisations per sparsity")
    add("--out", default=SweepConfig.out, help="folder for sweep.csv and the plots")
    add("--power", type=float, default=SweepConfig.power, help="α of every run")
    add("--begin-step", type=int, help="default: 1/16 of the training steps")
    add("--end-step", type=int, help="default: 7/16 of the training steps")


def _add_directory_flag(parser, help_text):
    from tuner_prune.settings.config import SearchConfig

    parser.add_argument("--directory", default=SearchConfig.directory, help=help_text)


def build_parser():
    from tuner_prune.settings.config import SearchConfig

    parser = _Parser(prog="python -m tuner_prune", description=(
        "Magnitude pruning schedules and model size searched with Keras Tuner, the best "
        "model exported. COMMAND --help lists its flags."))
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    search = commands.add_parser("search", help="search pruning schedules, export the best")
    _add_search_flags(search)
    export = commands.add_parser("export", help="export the best trial of a search so far")
    _add_directory_flag(export, "the search's --directory")
    export.add_argument("--export-dir", default=SearchConfig.export_dir,
                        help="where the model goes")
    _add_export_flags(export, search_defaults=False)
    report = commands.add_parser("report", help="all trials, their sizes and the "
                                 "Pareto front of error against size")
    _add_directory_flag(report, "the search's --directory")
    report.add_argument("--format", choices=["table", "json", "csv"], default="table",
                        help="how the trials are printed")
    report.add_argument("--plot", metavar="FILE.png",
                        help="also draw validation MSE against .tflite bytes")
    for flag, within in (("--max-bytes", "within N bytes"),
                         ("--max-flash", "whose recorded .tflite is within N bytes of flash"),
                         ("--max-ram", "whose recorded TFLM arena is within N bytes")):
        report.add_argument(flag, type=int, metavar="N", help=f"mark as best the lowest "
                            f"validation MSE {within} (default: the search's own {flag}, "
                            f"if any)")
    report.add_argument("--export-dir", metavar="FOLDER",
                        help="also report the flash, RAM, MACs and runtimes of the files "
                             "exported there (default: the folder "
                             f"'{SearchConfig.export_dir}', when it holds an export of "
                             "this search)")
    sweep = commands.add_parser("sweep", help="the article's experiment: loss against "
                                "final sparsity over several initialisations")
    _add_sweep_flags(sweep)
    for command in (search, export, report, sweep):
        command.add_argument("--verbose", action="store_true",
                             help="let TensorFlow's, LiteRT's and keras-tuner's own "
                             "messages and warnings through to stderr")
    return parser


def search_command(args):
    from tuner_prune.settings.config import SearchConfig
    from tuner_prune.settings.plan import resolve_search

    values = {k: v for k, v in vars(args).items() if k != "command"}
    plan = resolve_search(SearchConfig.from_dict(values))  # Before TensorFlow loads.
    manifest = _search_module().run_search(plan)
    if manifest is None:
        if not args.quiet:
            print("Worker done: the chief exports the best trial.")
        return
    print_summary(manifest, args.export_dir)


def export_command(args):
    from tuner_prune.settings import stored_search

    stored_search.require_stored(args.directory)  # Before TensorFlow loads.
    manifest = _search_module().export_search(
        args.directory, args.export_dir, quantization=args.quantization,
        size_metric=args.size_metric, max_mse_increase=args.max_mse_increase,
        max_bytes=args.max_bytes, device=args.device, max_flash=args.max_flash,
        max_ram=args.max_ram, ship=args.ship)
    print_summary(manifest, args.export_dir)


def _search_module():
    from tuner_prune import search
    from tuner_prune.core import _kt

    _kt.config.DEBUG = False  # A failed trial is one line, not a traceback.
    return search


def print_summary(manifest, export_dir):
    values = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                       for k, v in manifest["best_hyperparameters"].items())
    tflite = manifest["tflite"]
    print(f"Best trial {manifest['trial_id']}: {values}")
    _print_shipped(manifest)
    print(f"  Keras: val_mse {manifest['val_mse']:.6g}  test_mse {_mse(manifest['test_mse'])}  "
          f"sparsity {manifest['sparsity']:.4f}")
    print(f"  {export_dir}/{manifest['saved_model']['path']}/: "
          f"{manifest['saved_model']['bytes']} bytes")
    print(f"  {export_dir}/{tflite['path']} ({tflite['variant']}): {tflite['bytes']} bytes, "
          f"{tflite['gzip_bytes']} gzipped, val_mse {tflite['val_mse']:.6g}, "
          f"test_mse {_mse(tflite['test_mse'])} "
          f"(dense float32 TFLite: {manifest['dense_tflite_bytes']} bytes)")
    if manifest.get("micro"):
        micro = manifest["micro"]
        arena = (micro.get("arena") or {}).get("bytes")
        ram = "" if arena is None else f", {arena} bytes of arena"
        macs = (manifest.get("macs_per_inference") or {}).get("dense")
        ram += "" if macs is None else f", {macs} MACs"
        print(f"  {export_dir}/{micro['source']}, {micro['header']}: the {micro['variant']} "
              f"model for TensorFlow Lite Micro ({micro['bytes']} bytes flash{ram})")
    _print_c(manifest.get("c"), export_dir)
    print(f"  {export_dir}/manifest.json; TFLite variants tried (chosen on val_mse):")
    for row in manifest["candidates"]:
        print("    " + _candidate_line(row))
    _print_runtimes(manifest["candidates"])
    _print_baseline(manifest)


def _print_runtimes(rows):
    """Which runtimes each variant computes right in (``choice.runtimes_line``)."""
    from tuner_prune.export import choice

    line = choice.runtimes_line(rows)
    if line:
        print("  " + line)


def _print_c(entry, export_dir):
    """The C export's line: its files, weights, flash and RAM, or why there are none."""
    if not entry:
        return
    if not entry.get("source"):
        print(f"  No model.c: {entry['reason']}")
        return
    print(f"  {export_dir}/{entry['source']}, {entry['header']}: the model as C99 "
          f"({entry['value_type']} weights; {entry['flash_bytes']} bytes flash, "
          f"{entry['ram_bytes']} bytes RAM, {entry['macs']} MACs), "
          f"val_mse {entry['val_mse']:.6g}")


def _print_shipped(manifest):
    from tuner_prune.data import baseline

    line = baseline.shipped_line(manifest)
    if line:
        print(line)


def _print_baseline(manifest):
    """The baseline beside the shipped model, and advice if it beats the best trial."""
    from tuner_prune.data import baseline

    reference = manifest.get("baseline")
    if reference is None:
        return
    shipped = manifest["tflite"]["val_mse"]
    print(f"{baseline.describe(reference)}; the shipped model's val_mse is "
          f"{baseline.ratio(shipped, reference):.3g} x the baseline's")
    advice = baseline.advice(manifest["val_mse"], reference)
    if advice and manifest.get("shipped", "trial") == "trial":
        print(advice)


def _candidate_line(row):
    if row["val_mse"] is None:
        return f"{row['name']:20s} {row['bytes']:>10} bytes  {row['error']}"
    mark = "chosen" if row["chosen"] else ("" if row["within_tolerance"] else
                                           "over the MSE tolerance")
    return (f"{row['name']:20s} {row['bytes']:>10} bytes {row['gzip_bytes']:>10} gzipped  "
            f"val_mse {row['val_mse']:<10.6g} test_mse {_mse(row['test_mse'], 10)} "
            f"{row['latency_us']:8.1f} us  {mark}")


def _mse(value, width=0):
    """An MSE as the summary prints it; ``none`` without a test split."""
    text = "none" if value is None else f"{value:.6g}"
    return f"{text:<{width}}"


def sweep_command(args):
    from tuner_prune.reporting.sweep import SweepConfig, run_sweep

    values = {k: v for k, v in vars(args).items() if k != "command"}
    rows = run_sweep(SweepConfig.from_dict(values))
    print(f"{len(rows)} runs: {args.out}/sweep.csv, {args.out}/sweep.png, "
          f"{args.out}/sweep_zoom.png")


def report_command(args):
    from tuner_prune.reporting.report import run_report

    print(run_report(args.directory, args.format, args.plot, args.max_bytes,
                     args.export_dir, args.max_flash, args.max_ram), end="")


COMMANDS = {"search": search_command, "export": export_command, "sweep": sweep_command,
            "report": report_command}


def main(argv=None):
    """Runs one command; returns the exit status.

    0 done; 1 nothing to export (``SearchError``) or the tool's own failure;
    2 refused input (``InputError``, bad flags); 130 interrupted.
    """
    args = build_parser().parse_args(argv)
    if not vars(args).pop("verbose") and not _debugging():
        quiet.silence()
    try:
        COMMANDS[args.command](args)
    except InputError as error:
        return _usage_error(str(error))
    except SearchError as error:
        print(f"tuner_prune: error: {error}", file=sys.stderr)
        return INTERNAL_ERROR
    except KeyboardInterrupt:
        print("tuner_prune: interrupted; run the same command again to resume.",
              file=sys.stderr)
        return 130
    except Exception as error:  # The tool's own failure: one line, not a traceback.
        return _internal_error(error)
    return 0


def _debugging():
    return os.environ.get(DEBUG_VARIABLE, "") not in ("", "0")


def _internal_error(error):
    """Prints ``error`` as one line (after its traceback if debugging)."""
    if _debugging():
        traceback.print_exception(error)
    message = " ".join(line.strip() for line in str(error).splitlines() if line.strip())
    name = type(error).__name__
    print(f"tuner_prune: error: {name}: {message}" if message else
          f"tuner_prune: error: {name}", file=sys.stderr)
    return INTERNAL_ERROR
