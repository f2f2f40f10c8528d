"""--threads N: TensorFlow really runs this process's work on N threads per pool."""

import subprocess
import sys

import pytest

from conftest import cli_env

pytestmark = pytest.mark.slow  # Multi-process scenarios: `pytest -m "not slow"` skips them.

COUNT_THREADS = r"""
import collections, os, sys
from tuner_prune import search
search.set_threads(int(sys.argv[1]) if sys.argv[1] != "default" else None)
import tensorflow as tf
a = tf.random.normal((300, 300))
tf.linalg.matmul(a, a).numpy()
names = collections.Counter(open(f"/proc/self/task/{task}/comm").read().strip()
                            for task in os.listdir("/proc/self/task"))
print(names["tf_Compute"], tf.config.threading.get_intra_op_parallelism_threads(),
      tf.config.threading.get_inter_op_parallelism_threads())
"""


COUNTS = (1, 3)  # This machine's default is one per core.


@pytest.fixture(scope="module")
def threads_seen():
    """``{count: [tf_Compute threads, intra-op, inter-op]}``, one fresh process each.

    The processes run side by side: each reads its own threads only.
    """
    running = {count: subprocess.Popen([sys.executable, "-c", COUNT_THREADS, str(count)],
                                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       text=True, env=cli_env())
               for count in COUNTS}
    seen = {}
    try:
        for count, process in running.items():
            stdout, stderr = process.communicate(timeout=120)
            assert process.returncode == 0, stderr[-2000:]
            seen[count] = [int(value) for value in stdout.split()]
    finally:
        for process in running.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    return seen


@pytest.mark.parametrize("count", COUNTS)
def test_tensorflow_runs_its_inter_op_pool_on_the_threads_given(count, threads_seen):
    assert threads_seen[count] == [count, count, count]
