"""Benchmark: every TFLite candidate of the article's MLP at high sparsity.

For each (final sparsity, block size) it trains one model on the built-in data
with a fixed schedule (power 3, begin step 40, end step 280 of 640: 1/16 to
7/16 of training), converts
every variant, runs each in LiteRT at default settings, and prints bytes, gzip
bytes, test MSE and batch-1 latency, the information limit and which variant
``model.tflite`` would be by ``bytes`` and by ``gzip_bytes``. Latencies of all
candidates of one model are measured side by side (interleaved rounds), so
their ratios are comparable even on a shared machine.

Which variant would ship is decided as the export decides it: on the
validation split (``choice.choose``); the test MSE is measured and shown.

    python bench/edge_export.py                       # the full grid, ~25 min on 2 cores
    python bench/edge_export.py --runs 0.95:16x1      # issue 17, part 3: ~2 min
"""

import argparse
import contextlib
import dataclasses
import io
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402
from ai_edge_litert import interpreter as litert  # noqa: E402

import _workload  # noqa: E402
from tuner_prune import search  # noqa: E402
from tuner_prune.core import metrics as sizes  # noqa: E402
from tuner_prune.export import choice, exporter as export, padding, tflite  # noqa: E402
from tuner_prune.settings import config as config_lib  # noqa: E402
from tuner_prune.export.measure import model_mse, pruned_layers  # noqa: E402
from tuner_prune.export.serving import serving_model  # noqa: E402
from tuner_prune.settings.plan import resolve_search  # noqa: E402
from tuner_prune.reporting.sweep import default_steps  # noqa: E402

RUNS = "0.9:1x1,0.95:1x1,0.98:1x1,0.9:16x1,0.95:16x1,0.98:16x1,0.95:4x1"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default=RUNS,
                        help="SPARSITY:BLOCK,... (BLOCK: tfmot block_size ROWSxCOLUMNS)")
    parser.add_argument("--epochs", type=int, default=80)
    _workload.add_flags(parser)
    parser.add_argument("--max-mse-increase", type=float, default=0.05)
    parser.add_argument("--rounds", type=int, default=15,
                        help="interleaved latency rounds per model")
    parser.add_argument("--invokes", type=int, default=100,
                        help="batch-1 invokes per candidate and round")
    return parser.parse_args(argv)


def grid(args):
    return [(float(run.split(":")[0]), run.split(":")[1]) for run in args.runs.split(",")]


def train(sparsity, block, args, workdir):
    """One model with a fixed schedule, trained through the search machinery.

    The article's MLP is trained with its own initialiser and learning rate
    (``--article``). The schedule prunes from 1/16 to 7/16 of training (steps 40 -> 280 of 640
    at the defaults), as ``sweep`` does.
    """
    config = config_lib.SearchConfig(
        max_trials=1, epochs=args.epochs, **_workload.settings(args),
        final_sparsity=str(sparsity), power="3",
        block_size=None if block == "1x1" else block,
        article=args.model is None,
        overwrite=True, directory=os.path.join(workdir, f"logs_{sparsity}_{block}"),
        export_dir=os.path.join(workdir, "export"))
    begin, end = default_steps(resolve_search(config).total_steps)
    plan = resolve_search(dataclasses.replace(config, begin_step=str(begin),
                                              end_step=str(end)))
    dataset, tuner = plan.dataset, search.open_tuner(plan, store=True, verbose=False)
    tuner.search(dataset.x_train, dataset.y_train,
                 validation_data=(dataset.x_val, dataset.y_val),
                 epochs=plan.config.epochs, batch_size=plan.config.batch_size)
    return dataset, tuner.load_model(tuner.best_trial())


def measure(dataset, pruned, workdir, max_mse_increase):
    """Candidates, Keras test MSE, the two choices and the weight counts.

    As the export does, each variant is chosen on the validation split against
    the Keras model's validation MSE.
    """
    model = serving_model(pruned, dataset)
    validation = (dataset.x_val.astype(np.float32), dataset.y_val)
    test = (dataset.x_test.astype(np.float32), dataset.y_test)
    keras_val_mse, keras_mse = model_mse(model, *validation), model_mse(model, *test)
    saved_model = tempfile.mkdtemp(dir=workdir)
    with contextlib.redirect_stdout(io.StringIO()):
        model.export(saved_model)
    found = tflite.candidates(saved_model, validation, test,
                              export.representative_rows(dataset))
    choices = {}
    for metric in ("bytes", "gzip_bytes"):
        choices[metric] = choice.choose(found, keras_val_mse, max_mse_increase, metric).name
        for candidate in found:
            candidate.chosen = False
    kernels = [kernel for _, kernel in pruned_layers(pruned)]
    counts = (sum(k.size for k in kernels), sizes.nonzero_count(kernels))
    padded = padding.kernel_padding(pruned, padding.block_rows(pruned))
    return found, keras_mse, choices, counts, padded


def side_by_side_latency(found, row, rounds, invokes):
    """Median batch-1 latency (us) of each loaded candidate, interleaved rounds."""
    runners = {}
    for candidate in found:
        if candidate.loaded:
            runner = litert.Interpreter(model_content=candidate.content)
            runner.allocate_tensors()
            feed = runner.get_input_details()[0]
            runner.set_tensor(feed["index"], tflite.quantize_input(feed, row[None]))
            runner.invoke()
            runners[candidate.name] = runner
    times = {name: [] for name in runners}
    for _ in range(rounds):
        for name, runner in runners.items():
            times[name].append(_median_invoke_us(runner, invokes))
    return {name: statistics.median(values) for name, values in times.items()}


def _median_invoke_us(runner, invokes):
    times = []
    for _ in range(invokes):
        start = time.perf_counter()
        runner.invoke()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def report(sparsity, block, found, keras_mse, choices, counts, padded, latency):
    total, nonzero = counts
    block_weights = int(np.prod([int(n) for n in block.split("x")]))
    limit = sizes.information_limit_bytes(total, nonzero)
    block_limit = sizes.information_limit_bytes(total, nonzero, block=block_weights)
    dense = next(c for c in found if c.name == "float32")
    dense_int8, full_int8 = latency.get("dynamic_int8"), latency.get("int8")
    print(f"\n#### final sparsity {sparsity}, block {block}: {nonzero} of {total} kernel "
          f"weights nonzero; Keras test MSE {keras_mse:.6g}")
    print("kernels padded to whole blocks: " + (", ".join(
        f"{name} {width} -> {wide} inputs" for name, (width, wide) in padded.items())
        or "none"))
    print(f"information limit {limit:.0f} bytes (block-aware: {block_limit:.0f}); "
          f"dense float32 TFLite {dense.bytes} bytes")
    print("| variant | bytes | gzip bytes | bytes / limit | gzip / limit | test MSE | "
          "MSE / Keras | latency us | latency / dense int8 | latency / int8 | loaded |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for c in found:
        mark = "".join(f" **chosen by {m}**" for m, name in choices.items() if name == c.name)
        if c.test_mse is None:
            ran = (f"{latency[c.name]:.1f} | {latency[c.name] / dense_int8:.2f} | "
                   f"{latency[c.name] / full_int8:.2f}" if c.loaded else " | | ")
            print(f"| {c.name} | {c.bytes} | {c.gzip_bytes} | {c.bytes / limit:.2f} | "
                  f"{c.gzip_bytes / limit:.2f} | | | {ran} | {'yes' if c.loaded else 'no'}: "
                  f"{c.error} |")
            continue
        print(f"| {c.name}{mark} | {c.bytes} | {c.gzip_bytes} | {c.bytes / limit:.2f} | "
              f"{c.gzip_bytes / limit:.2f} | {c.test_mse:.6g} | {c.test_mse / keras_mse:.3f} | "
              f"{latency[c.name]:.1f} | {latency[c.name] / dense_int8:.2f} | "
              f"{latency[c.name] / full_int8:.2f} | yes |")
    by_bytes = next(c for c in found if c.name == choices["bytes"])
    by_gzip = next(c for c in found if c.name == choices["gzip_bytes"])
    print(f"goals: by gzip_bytes {by_gzip.name} {by_gzip.gzip_bytes / limit:.2f} x limit "
          f"(<= 1.15), {dense.bytes / by_gzip.gzip_bytes:.1f} x smaller than dense float32 "
          f"(>= 40); by bytes {by_bytes.name} {by_bytes.bytes / limit:.2f} x limit (<= 2); "
          f"latency {latency[by_bytes.name] / dense_int8:.2f} x dense int8 (<= 0.5)")
    print(_sparse_int8_goals(found, choices, limit, latency), flush=True)


def _sparse_int8_goals(found, choices, limit, latency):
    """Issue 17's goals for ``sparse_int8`` (16x1 blocks at 95 % sparsity)."""
    c = next(c for c in found if c.name == "sparse_int8")
    if not c.loaded:
        return f"sparse_int8 goals: does not load ({c.error})"
    return (f"sparse_int8 goals: within tolerance {'yes' if c.within_tolerance else 'no'}, "
            f"chosen by bytes {'yes' if choices['bytes'] == c.name else 'no'}, "
            f"{c.bytes / limit:.3f} x limit (<= 1.0), latency "
            f"{latency[c.name] / latency['dynamic_int8']:.2f} x dense int8 and "
            f"{latency[c.name] / latency['int8']:.2f} x int8 (<= 0.8)")


def main(argv=None):
    args = parse_args(argv)
    started = time.time()
    with tempfile.TemporaryDirectory() as workdir:
        for sparsity, block in grid(args):
            dataset, pruned = train(sparsity, block, args, workdir)
            found, keras_mse, choices, counts, padded = measure(
                dataset, pruned, workdir, args.max_mse_increase)
            latency = side_by_side_latency(found, dataset.x_test[0].astype(np.float32),
                                           args.rounds, args.invokes)
            report(sparsity, block, found, keras_mse, choices, counts, padded, latency)
    print(f"\n{time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
