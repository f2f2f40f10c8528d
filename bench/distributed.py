"""Trials per hour with one worker and with two workers, side by side in one run.

Each process is limited to one TensorFlow thread (TF_NUM_INTRAOP_THREADS=1,
TF_NUM_INTEROP_THREADS=1), so on a 2-core machine two workers can at best
double the throughput. Usage:

    python bench/distributed.py [--trials 4] [--epochs 20]
"""

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ONE_THREAD = {"TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1",
              "OMP_NUM_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": ROOT}


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(workers, trials, epochs, folder):
    """Wall seconds for a chief and ``workers`` workers to finish ``trials``."""
    port = free_port()
    common = [sys.executable, "-m", "tuner_prune", "search", "--max-trials", str(trials),
              "--epochs", str(epochs), "--directory", os.path.join(folder, "logs"),
              "--export-dir", os.path.join(folder, "export"),
              "--oracle", f"127.0.0.1:{port}"]
    env = {**os.environ, **ONE_THREAD}
    start = time.perf_counter()
    processes = [subprocess.Popen(common + ["--tuner-id", "chief"], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    processes += [subprocess.Popen(common + ["--tuner-id", f"worker{i}"], env=env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                  for i in range(workers)]
    codes = [p.wait() for p in processes]
    if any(codes):
        raise SystemExit(f"a process failed: exit codes {codes}")
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=20)
    args = parser.parse_args()
    rates = {}
    for workers in (1, 2):
        with tempfile.TemporaryDirectory() as folder:
            seconds = run(workers, args.trials, args.epochs, folder)
        rates[workers] = args.trials / seconds * 3600
        print(f"{workers} worker(s): {args.trials} trials of {args.epochs} epochs in "
              f"{seconds:.1f} s (chief's export included) -> "
              f"{rates[workers]:.1f} trials/hour", flush=True)
    print(f"speed-up of 2 workers over 1: {rates[2] / rates[1]:.2f}x")


if __name__ == "__main__":
    main()
