"""Benchmark: the C export (issue 30), its size against the information limit and its speed.

Part 1 runs the main command (``search``, its 10 trials, unless
``--max-trials`` says fewer) and reads its C export from the manifest: weights and indices against the information limit of its nonzero
weights (the values' bytes plus log2 C(n, k) bits of positions), and the
object's text plus data against the ``model.tflite`` it ships.

Part 2 builds a hidden-layer model at 90 % unstructured sparsity (random
weights: size and speed do not depend on training), as the sparse C the
export writes and as the same model's dense C (same int8 values, every weight
stored), and times one ``tuner_prune_predict`` call per row (-O2) and
compares object sizes (-Os).

    python bench/edge_c.py                 # ~2 min on 2 cores (the main command)
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

import _workload  # noqa: E402
from tuner_prune.export import c_build, c_source  # noqa: E402

MAIN_TFLITE_BYTES = 3496  # The main command's model.tflite (README, BENCHMARKS.md).


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _workload.add_flags(parser)
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of the main command's trial (default: the CLI's)")
    parser.add_argument("--max-trials", type=int, default=None,
                        help="trials of the main command's search (default: the CLI's)")
    parser.add_argument("--inputs", type=int, default=1000, help="part 2: model inputs")
    parser.add_argument("--units", type=int, default=256,
                        help="part 2: width of its two hidden layers")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--rows", type=int, default=200, help="part 2: rows timed")
    parser.add_argument("--repeats", type=int, default=50, help="part 2: timed passes")
    return parser.parse_args(argv)


def main_command(args, folder):
    """Part 1: the main command's search, exported; its manifest."""
    flags = [*_workload.cli_flags(args),
             *(["--epochs", str(args.epochs)] if args.epochs else []),
             *(["--max-trials", str(args.max_trials)] if args.max_trials else [])]
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "tuner_prune", "search", "--quiet",
                    "--directory", os.path.join(folder, "logs"),
                    "--export-dir", os.path.join(folder, "export"), *flags], check=True)
    with open(os.path.join(folder, "export", "manifest.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    print(f"main command searched and exported in {time.monotonic() - started:.0f} s")
    return manifest


def report_main(manifest):
    c, tflite = manifest["c"], manifest["tflite"]
    if not c.get("source"):
        print(f"main command's model: no model.c ({c['reason']})")
        return
    stored = c["weight_bytes"] + c["index_bytes"]
    print("| model | values | encodings | nonzero weights | weights + indices | "
          "information limit | ratio | object text + data | model.tflite | RAM | "
          "val MSE (C) | val MSE (tflite) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    print(f"| main command | {c['value_type']} | "
          f"{', '.join(layer['encoding'] for layer in c['layers'])} | "
          f"{sum(layer['nonzeros'] for layer in c['layers'])} | {stored} | "
          f"{c['limit_bytes']:.0f} | {stored / c['limit_bytes']:.3f} | {c['flash_bytes']} | "
          f"{tflite['bytes']} ({tflite['variant']}) | {c['ram_bytes']} | "
          f"{c['val_mse']:.6g} | {tflite['val_mse']:.6g} |")
    print(f"goal: weights + indices {stored / c['limit_bytes']:.3f} x the limit (<= 1.3), "
          f"object {c['flash_bytes']} bytes against {MAIN_TFLITE_BYTES} "
          f"(the main command's model.tflite; this run's {tflite['bytes']}): "
          f"{'met' if stored <= 1.3 * c['limit_bytes'] and c['flash_bytes'] < MAIN_TFLITE_BYTES else 'not met'}")


def sparse_model(args, seed=0):
    """Two hidden ReLU layers and Dense(1) at ``args.sparsity``, random weights."""
    rng = np.random.default_rng(seed)
    widths = [args.inputs, args.units, args.units, 1]
    layers = []
    for number, (inputs, outputs) in enumerate(zip(widths, widths[1:])):
        kernel = rng.normal(0, 1 / np.sqrt(inputs * (1 - args.sparsity)), (inputs, outputs))
        kernel *= rng.random(kernel.shape) >= args.sparsity
        layers.append(c_source.Layer(kernel.astype(np.float32),
                                     rng.normal(0, 0.1, outputs).astype(np.float32),
                                     relu=number < len(widths) - 2))
    return layers


def measure(layers, encodings, rows, repeats):
    encoded = [c_source.encode(layer, "int8", encodings) for layer in layers]
    with tempfile.TemporaryDirectory() as folder:
        for name, text in ((c_source.SOURCE, c_source.source_text(encoded)),
                           (c_source.HEADER, c_source.header_text(encoded, "int8"))):
            with open(os.path.join(folder, name), "w", encoding="ascii") as handle:
                handle.write(text)
        small = c_build.build(folder, optimize="-Os")
        c_build.build(folder, optimize="-O2")
        seconds = min(c_build.seconds_per_row(folder, rows, repeats) for _ in range(3))
        predictions = c_build.predict(folder, rows)
    return {"flash": small["text"] + small["data"], "ram": small["bss"],
            "us": seconds * 1e6, "predictions": predictions,
            "encodings": ", ".join(layer.encoding for layer in encoded)}


def report_speed(args):
    layers = sparse_model(args)
    rows = np.random.default_rng(1).normal(size=(args.rows, args.inputs)).astype(np.float32)
    dense = measure(layers, ("dense",), rows, args.repeats)
    sparse = measure(layers, c_source.ENCODINGS, rows, args.repeats)
    same = np.allclose(dense["predictions"], sparse["predictions"], rtol=1e-4, atol=1e-4)
    print(f"{args.inputs}-{args.units}-{args.units}-1 MLP at sparsity {args.sparsity}, "
          f"int8 weights, {args.rows} rows x {args.repeats} passes, best of 3; "
          f"same predictions: {'yes' if same else 'no'}")
    print("| C | encodings | object text + data (-Os) | RAM | us per row (-O2) |")
    print("| --- | --- | --- | --- | --- |")
    for name, result in (("dense", dense), ("sparse", sparse)):
        print(f"| {name} | {result['encodings']} | {result['flash']} | {result['ram']} | "
              f"{result['us']:.2f} |")
    faster, smaller = dense["us"] / sparse["us"], dense["flash"] / sparse["flash"]
    print(f"goal: sparse {faster:.2f} x faster (>= 3), {smaller:.2f} x smaller (>= 4): "
          f"{'met' if faster >= 3 and smaller >= 4 else 'not met'}")


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="edge_c-") as folder:
        report_main(main_command(args, folder))
    report_speed(args)
    print(f"{time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
