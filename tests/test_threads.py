"""--threads N: TensorFlow really runs this process's work on N threads per pool."""

import subprocess
import sys

import pytest

from conftest import cli_env

COUNT_THREADS = r"""
import collections, os, sys
from tuner_prune import search
search.set_threads(int(sys.argv[1]) if sys.argv[1] != "default" else None)
import tensorflow as tf

pytestmark = pytest.mark.slow  # Multi-process scenarios: `pytest -m "not slow"` skips them.
a = tf.random.normal((300, 300))
tf.linalg.matmul(a, a).numpy()
names = collections.Counter(open(f"/proc/self/task/{task}/comm").read().strip()
                            for task in os.listdir("/proc/self/task"))
print(names["tf_Compute"], tf.config.threading.get_intra_op_parallelism_threads(),
      tf.config.threading.get_inter_op_parallelism_threads())
"""


def threads_seen(setting):
    result = subprocess.run([sys.executable, "-c", COUNT_THREADS, setting],
                            capture_output=True, text=True, env=cli_env(), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return [int(value) for value in result.stdout.split()]


@pytest.mark.parametrize("count", [1, 3])  # This machine's default is one per core.
def test_tensorflow_runs_its_inter_op_pool_on_the_threads_given(count):
    assert threads_seen(str(count)) == [count, count, count]
