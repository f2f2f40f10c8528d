"""Right-sized models: the default search against its baselines, part by part.

Parts (each a real ``python -m tuner_prune search``, results in OUT/<part>.json):
  main       the README's main command (built-in workload, defaults);
  article    the same search with ``--article`` (the article's MLP and optimiser);
  nonlinear  the default search on make_friedman1 (a nonlinear table) as a CSV,
             beside scikit-learn's HistGradientBoostingRegressor on the same split;
  table      reads the parts, times both shipped .tflite files side by side in
             LiteRT (batch 1, alternating rounds) and prints the goals.
Usage:

    python bench/right_size.py main [SEARCH FLAGS]    # then article, nonlinear, table
    python bench/right_size.py all --n-samples 300 --n-features 20 --n-informative 10 \\
        --epochs 3 --max-trials 1 --rows 300            # a tiny run of every part
Search flags after the part are passed to every search (and set the built-in data).
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from tuner_prune.data import dataset as data_lib  # noqa: E402

PARTS = ("main", "article", "nonlinear")


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=(*PARTS, "table", "all"))
    parser.add_argument("--out", default="right_size_runs", help="results folder")
    parser.add_argument("--rows", type=int, default=20000, help="rows of the nonlinear table")
    parser.add_argument("--table-noise", type=float, default=1.0,
                        help="noise of the nonlinear table (make_friedman1's)")
    parser.add_argument("--rounds", type=int, default=5, help="alternating latency rounds")
    parser.add_argument("--invokes", type=int, default=2000, help="invokes per round")
    return parser.parse_known_args(argv)


def data_flags(flags):
    """The built-in data the search flags set (the data module's defaults otherwise)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--n-samples", type=int, default=data_lib.N_SAMPLES)
    parser.add_argument("--n-features", type=int, default=data_lib.N_FEATURES)
    parser.add_argument("--n-informative", type=int, default=data_lib.N_INFORMATIVE)
    parser.add_argument("--noise", type=float, default=data_lib.NOISE)
    return parser.parse_known_args(flags)[0]


def search(folder, flags):
    """Runs one search into ``folder``; returns its manifest, wall time, baseline time."""
    command = [sys.executable, "-m", "tuner_prune", "search", "--overwrite",
               "--directory", os.path.join(folder, "logs"),
               "--export-dir", os.path.join(folder, "export"), *flags]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": REPO})
    wall = time.perf_counter() - started
    if result.returncode != 0:
        sys.exit(f"search failed ({result.returncode}): {result.stderr[-2000:]}")
    with open(os.path.join(folder, "logs", "search.out"), "w", encoding="utf-8") as handle:
        handle.write(result.stdout)
    fitted = re.search(r"fitted in ([\d.]+) s", result.stdout)
    with open(os.path.join(folder, "export", "manifest.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    return {"wall_seconds": wall, "baseline_seconds": float(fitted.group(1)),
            "manifest": manifest}


def first_kernel(export):
    """The first Dense kernel of an exported SavedModel, ``(inputs, units)``."""
    import tensorflow as tf

    loaded = tf.saved_model.load(os.path.join(export, "saved_model"))
    kernels = [v.numpy() for v in loaded.variables
               if len(v.shape) == 2 and "kernel" in v.name]
    return kernels[0]


def support(export, flags):
    """Precision and recall of the informative inputs the first kernel still reads."""
    from sklearn.datasets import make_regression

    settings = data_flags(flags)
    _, _, coef = make_regression(n_samples=settings.n_samples,
                                 n_features=settings.n_features,
                                 n_informative=settings.n_informative,
                                 noise=settings.noise, random_state=settings.seed,
                                 coef=True)
    informative = np.ravel(coef) != 0
    read = np.any(first_kernel(export)[:len(informative)] != 0, axis=1)
    kept = int(np.sum(read & informative))
    return {"inputs_read": int(read.sum()), "informative": int(informative.sum()),
            "precision": kept / max(1, int(read.sum())),
            "recall": kept / int(informative.sum())}


def run_part(part, out, flags, rows, table_noise=1.0):
    folder = os.path.join(out, part)
    os.makedirs(folder, exist_ok=True)
    if part == "nonlinear":
        return nonlinear(folder, flags, rows, table_noise)
    result = search(folder, [*flags, *(["--article"] if part == "article" else [])])
    result["support"] = support(os.path.join(folder, "export"), flags)
    return result


def nonlinear(folder, flags, rows, noise=1.0):
    """The default search on make_friedman1 beside ridge and gradient boosting."""
    from sklearn.datasets import make_friedman1
    from sklearn.ensemble import HistGradientBoostingRegressor

    x, y = make_friedman1(n_samples=rows, noise=noise, random_state=0)
    path = os.path.join(folder, "friedman1.csv")
    header = ",".join([*(f"x{i}" for i in range(x.shape[1])), "y"])
    np.savetxt(path, np.column_stack([x, y]), delimiter=",", header=header, comments="")
    seed = data_flags(flags).seed
    search_flags = [flag for flag in _without_data(flags)]
    result = search(folder, ["--data", path, *search_flags])
    dataset = data_lib.load_dataset(path, seed=seed)
    booster = HistGradientBoostingRegressor(random_state=0).fit(dataset.x_train,
                                                                 dataset.y_train)
    result["hgb_test_mse"] = float(np.mean((booster.predict(dataset.x_test)
                                            - dataset.y_test) ** 2))
    return result


def _without_data(flags):
    """``flags`` without the built-in data's settings (a CSV is searched instead)."""
    dropped = {"--n-samples", "--n-features", "--n-informative", "--noise"}
    kept, skip = [], False
    for flag in flags:
        if skip:
            skip = False
        elif flag in dropped:
            skip = True
        else:
            kept.append(flag)
    return kept


def latency_us(contents, rounds, invokes):
    """Median batch-1 latency of each model, measured in alternating rounds."""
    from ai_edge_litert.interpreter import Interpreter

    interpreters = []
    for content in contents:
        interpreter = Interpreter(model_content=content)
        interpreter.allocate_tensors()
        detail = interpreter.get_input_details()[0]
        interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], detail["dtype"]))
        interpreters.append(interpreter)
    times = [[] for _ in contents]
    for _ in range(rounds):
        for interpreter, measured in zip(interpreters, times):
            started = time.perf_counter()
            for _ in range(invokes):
                interpreter.invoke()
            measured.append((time.perf_counter() - started) / invokes * 1e6)
    return [statistics.median(measured) for measured in times]


def table(out, rounds, invokes):
    parts = {}
    for part in PARTS:
        with open(os.path.join(out, f"{part}.json"), encoding="utf-8") as handle:
            parts[part] = json.load(handle)
    contents = []
    for part in ("main", "article"):
        with open(os.path.join(out, part, "export", "model.tflite"), "rb") as handle:
            contents.append(handle.read())
    main_us, article_us = latency_us(contents, rounds, invokes)
    main, article, nonlin = (parts[p] for p in PARTS)
    shipped = main["manifest"]
    print("| model | variant | bytes | val MSE | test MSE | test / ridge | nonzero "
          "weights | batch-1 latency us |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, part, us in (("default search", main, main_us),
                           ("--article search", article, article_us)):
        manifest = part["manifest"]
        tflite = manifest["tflite"]
        print(f"| {name} | {tflite['variant']} | {tflite['bytes']} | "
              f"{tflite['val_mse']:.3g} | {tflite['test_mse']:.3g} | "
              f"{tflite['test_mse'] / manifest['baseline']['test_mse']:.3g} | "
              f"{manifest['nonzero_weights']} | {us:.2f} |")
    ridge = shipped["baseline"]
    print(f"| ridge baseline (alpha {ridge['settings']['alpha']:g}) | - | - | "
          f"{ridge['val_mse']:.3g} | {ridge['test_mse']:.3g} | 1 | {ridge['weights']} | - |")
    hyper = ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                      for k, v in shipped["best_hyperparameters"].items())
    print(f"default search's best trial {shipped['trial_id']}: {hyper}")
    test_mse, size = shipped["tflite"]["test_mse"], shipped["tflite"]["bytes"]
    print(f"goal 1: test MSE {test_mse:.3g} (<= 1e-05) and model.tflite {size} bytes "
          f"(<= 8192): {_met(test_mse <= 1e-5 and size <= 8192)}")
    found = main["support"]
    print(f"goal 2: first kernel reads {found['inputs_read']} inputs, "
          f"{found['informative']} informative: precision {found['precision']:.3f}, "
          f"recall {found['recall']:.3f} (>= 0.99): {_met(found['recall'] >= 0.99)}")
    nl = nonlin["manifest"]
    nl_test, nl_ridge = nl["tflite"]["test_mse"], nl["baseline"]["test_mse"]
    print(f"goal 3: friedman1 test MSE {nl_test:.4g}, {nl_test / nl_ridge:.3g} x ridge "
          f"{nl_ridge:.4g} (<= 0.5), {nl_test / nonlin['hgb_test_mse']:.3g} x "
          f"HistGradientBoosting {nonlin['hgb_test_mse']:.4g} (<= 1): "
          f"{_met(nl_test <= 0.5 * nl_ridge and nl_test <= nonlin['hgb_test_mse'])}")
    print(f"goal 4: batch-1 latency {main_us:.2f} us against --article's {article_us:.2f}"
          f" us: {main_us / article_us:.3g} x")
    fraction = main["baseline_seconds"] / main["wall_seconds"]
    print(f"goal 5: baseline fitted in {main['baseline_seconds']:.2f} s of the main "
          f"command's {main['wall_seconds']:.0f} s: {100 * fraction:.2f} % (< 2 %): "
          f"{_met(fraction < 0.02)}")


def _met(ok):
    return "met" if ok else "not met"


def main(argv=None):
    args, flags = parse(argv)
    os.makedirs(args.out, exist_ok=True)
    parts = PARTS if args.part == "all" else (() if args.part == "table" else (args.part,))
    for part in parts:
        started = time.perf_counter()
        result = run_part(part, args.out, flags, args.rows, args.table_noise)
        with open(os.path.join(args.out, f"{part}.json"), "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
        print(f"{part}: {time.perf_counter() - started:.0f} s", flush=True)
    if args.part in ("table", "all"):
        table(args.out, args.rounds, args.invokes)


if __name__ == "__main__":
    main()
