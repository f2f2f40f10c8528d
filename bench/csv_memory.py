"""Peak memory and time to load a large CSV, numpy's reader against a Python one.

Writes a CSV of random numbers (a header row, ``--columns`` columns, the last the
target), then loads it in a fresh process per reader and per repeat, alternating
the readers, and prints the peak resident memory each load added over the
process's own start-up (Python, numpy, tuner_prune.data.dataset imported), against the
size of the table as float32:

- ``numpy``: ``tuner_prune.data.dataset.load_arrays``, the reader the CLI uses;
- ``python``: the hand-written reader tuner_prune had before (``csv`` module,
  a Python float per cell, a float64 array), kept here only for comparison.

    python bench/csv_memory.py                      # 200,000 x 101: a ~215 MB file
    python bench/csv_memory.py --rows 2000 --columns 5 --repeats 1
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
READERS = ("numpy", "python")

CHILD = r"""
import csv, json, resource, sys, time
import numpy as np
from tuner_prune.data import dataset as data

def python_reader(path):
    with open(path, newline="", encoding="utf-8") as handle:
        rows = [row for row in csv.reader(handle) if any(c.strip() for c in row)]
    values = np.array([[float(cell) for cell in row] for row in rows[1:]])
    return values[:, :-1], values[:, -1]

path, reader = sys.argv[1], sys.argv[2]
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
start = time.perf_counter()
x, y = data.load_arrays(path) if reader == "numpy" else python_reader(path)
seconds = time.perf_counter() - start
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"startup_kib": before, "peak_kib": peak, "seconds": seconds,
                  "shape": [len(x), x.shape[1] + 1]}))
"""


def write_csv(path, rows, columns, seed=0, chunk=10000):
    """A header row and ``rows`` rows of random numbers with 8 significant digits."""
    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(",".join(f"c{i}" for i in range(columns - 1)) + ",target\n")
        for first in range(0, rows, chunk):
            block = rng.standard_normal((min(chunk, rows - first), columns))
            np.savetxt(handle, block, delimiter=",", fmt="%.8g")


def load_once(path, reader):
    result = subprocess.run([sys.executable, "-c", CHILD, path, reader], check=True,
                            capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": ROOT})
    return json.loads(result.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200000)
    parser.add_argument("--columns", type=int, default=101)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--readers", default=",".join(READERS))
    args = parser.parse_args(argv)
    readers = args.readers.split(",")
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "data.csv")
        write_csv(path, args.rows, args.columns)
        file_mb = os.path.getsize(path) / 1e6
        table_mb = args.rows * args.columns * 4 / 1e6
        results = {reader: [] for reader in readers}
        for _ in range(args.repeats):
            for reader in readers:
                results[reader].append(load_once(path, reader))
    print(f"{args.rows} rows x {args.columns} columns: CSV {file_mb:.1f} MB, "
          f"float32 table {table_mb:.1f} MB, {args.repeats} loads per reader (alternating)")
    print("| reader | start-up MB | peak added MB (median) | added / float32 table | "
          "seconds (median) |")
    print("|---|---|---|---|---|")
    for reader, runs in results.items():
        added = statistics.median((r["peak_kib"] - r["startup_kib"]) / 1024 * 1.048576
                                  for r in runs)
        startup = statistics.median(r["startup_kib"] / 1024 * 1.048576 for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        print(f"| {reader} | {startup:.0f} | {added:.0f} | {added / table_mb:.2f} | "
              f"{seconds:.1f} |")
    return results


if __name__ == "__main__":
    main()
