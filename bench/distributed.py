"""Trials per hour with one worker and with two workers, side by side in one run.

Each process is limited to one TensorFlow thread (TF_NUM_INTRAOP_THREADS=1,
TF_NUM_INTEROP_THREADS=1), so on a 2-core machine two workers can at best
double the throughput. Usage:

    python bench/distributed.py [--trials 4] [--epochs 20] [--workers 1,2]
    python bench/distributed.py --trials 1 --epochs 3 --workers 1 --n-samples 300 \\
        --n-features 20 --n-informative 10 --model MODULE:FUNCTION   # a tiny run
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import _workload  # noqa: E402

ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2"}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(workers, args, folder):
    """Wall seconds for a chief and ``workers`` workers to finish ``args.trials``."""
    port = free_port()
    common = [sys.executable, "-m", "tuner_prune", "search", "--max-trials",
              str(args.trials), "--epochs", str(args.epochs), *_workload.cli_flags(args),
              "--directory", os.path.join(folder, "logs"),
              "--export-dir", os.path.join(folder, "export"),
              "--oracle", f"127.0.0.1:{port}"]
    path = os.pathsep.join(filter(None, [ROOT, os.environ.get("PYTHONPATH")]))
    env = {**os.environ, **ONE_THREAD, "PYTHONPATH": path}
    names = ["chief"] + [f"worker{i}" for i in range(workers)]
    logs = {name: open(os.path.join(folder, f"{name}.log"), "w+", encoding="utf-8")
            for name in names}
    start = time.perf_counter()
    processes = {name: subprocess.Popen(common + ["--tuner-id", name], env=env,
                                        stdout=logs[name], stderr=subprocess.STDOUT)
                 for name in names}
    codes = {name: process.wait() for name, process in processes.items()}
    seconds = time.perf_counter() - start
    failed = {name: code for name, code in codes.items() if code}
    for name, log in logs.items():
        log.seek(0)
        if name in failed:
            sys.stderr.write(f"--- {name} (exit {failed[name]}):\n{log.read()[-3000:]}\n")
        log.close()
    if failed:
        raise SystemExit(f"a process failed: exit codes {codes}")
    return seconds


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--workers", default="1,2",
                        help="worker counts to run, one search each, in this order")
    _workload.add_flags(parser)
    args = parser.parse_args(argv)
    rates = {}
    for workers in [int(n) for n in args.workers.split(",")]:
        with tempfile.TemporaryDirectory() as folder:
            seconds = run(workers, args, folder)
        rates[workers] = args.trials / seconds * 3600
        print(f"{workers} worker(s): {args.trials} trials of {args.epochs} epochs in "
              f"{seconds:.1f} s (chief's export included) -> "
              f"{rates[workers]:.1f} trials/hour", flush=True)
    first, *others = rates
    for workers in others:
        print(f"speed-up of {workers} workers over {first}: "
              f"{rates[workers] / rates[first]:.2f}x")


if __name__ == "__main__":
    main()
