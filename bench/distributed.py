"""Trials per hour for layouts of workers and threads, side by side in one run.

Each layout is ``WORKERSxTHREADS``: a chief and that many workers, each worker
limited to that many TensorFlow threads (``--threads``). Trials per hour are
counted from the first trial's start to the last trial's end (a trial starts
when its folder appears, ends when its ``record.json`` appears), so start-up
and the chief's export are left out; the wall time with them is printed too.

    python bench/distributed.py [--trials 8] [--epochs 20] [--layouts 1x2,1x1,2x1]
    python bench/distributed.py --trials 1 --epochs 3 --layouts 1x1 --n-samples 300 \\
        --n-features 20 --n-informative 10 --model MODULE:FUNCTION   # a tiny run
"""

import argparse
import glob
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _workload  # noqa: E402

from tuner_prune.store import records  # noqa: E402

POLL_SECONDS = 0.2


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def parse_layouts(text):
    """``"1x2,2x1"`` -> ``[(1, 2), (2, 1)]`` (workers, threads)."""
    return [tuple(int(n) for n in layout.split("x")) for layout in text.split(",")]


def run(workers, threads, args, folder):
    """``(first start to last end, wall seconds)`` of one distributed search."""
    port = free_port()
    common = [sys.executable, "-m", "tuner_prune", "search", "--max-trials",
              str(args.trials), "--epochs", str(args.epochs), *_workload.cli_flags(args),
              "--directory", os.path.join(folder, "logs"),
              "--export-dir", os.path.join(folder, "export"),
              "--oracle", f"127.0.0.1:{port}", "--threads", str(threads)]
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": path}
    names = ["chief"] + [f"worker{i}" for i in range(workers)]
    logs = {name: open(os.path.join(folder, f"{name}.log"), "w+", encoding="utf-8")
            for name in names}
    start = time.perf_counter()
    processes = {name: subprocess.Popen(common + ["--tuner-id", name], env=env,
                                        stdout=logs[name], stderr=subprocess.STDOUT)
                 for name in names}
    starts, ends = watch(processes, records.project_dir(os.path.join(folder, "logs")))
    seconds = time.perf_counter() - start
    check(processes, logs)
    if len(ends) < args.trials:
        raise SystemExit(f"Expected {args.trials} trials to end, received {len(ends)}")
    return max(ends.values()) - min(starts.values()), seconds


def watch(processes, project):
    """Times at which each trial's folder and its ``record.json`` appeared."""
    starts, ends = {}, {}
    while any(process.poll() is None for process in processes.values()):
        now = time.perf_counter()
        for folder in glob.glob(os.path.join(project, "trial_*")):
            starts.setdefault(folder, now)
            if os.path.exists(os.path.join(folder, records.RECORD_FILE)):
                ends.setdefault(folder, now)
        time.sleep(POLL_SECONDS)
    return starts, ends


def check(processes, logs):
    codes = {name: process.returncode for name, process in processes.items()}
    failed = {name: code for name, code in codes.items() if code}
    for name, log in logs.items():
        log.seek(0)
        if name in failed:
            sys.stderr.write(f"--- {name} (exit {failed[name]}):\n{log.read()[-3000:]}\n")
        log.close()
    if failed:
        raise SystemExit(f"a process failed: exit codes {codes}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--layouts", default="1x2,1x1,2x1",
                        help="WORKERSxTHREADS,... : one search each, in this order")
    _workload.add_flags(parser)
    args = parser.parse_args(argv)
    rates = {}
    for workers, threads in parse_layouts(args.layouts):
        with tempfile.TemporaryDirectory() as folder:
            window, wall = run(workers, threads, args, folder)
        rates[(workers, threads)] = args.trials / window * 3600
        print(f"{workers} worker(s) x {threads} thread(s): {args.trials} trials of "
              f"{args.epochs} epochs, first start to last end {window:.1f} s -> "
              f"{rates[(workers, threads)]:.1f} trials/hour (wall {wall:.1f} s with "
              f"start-up and export)", flush=True)
    for layout, rate in rates.items():
        for other, other_rate in rates.items():
            if layout != other:
                print(f"{layout[0]}x{layout[1]} over {other[0]}x{other[1]}: "
                      f"{rate / other_rate:.2f}x")


if __name__ == "__main__":
    main()
