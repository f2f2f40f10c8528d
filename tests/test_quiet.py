"""Other libraries' lines kept off stderr, the tool's own kept on it."""

import subprocess
import sys

from conftest import REPO

NOISY = r"""
import logging, os, sys, warnings
from tuner_prune import quiet
if sys.argv[1] == "quiet":
    quiet.silence()
os.write(2, b"I0000 a C++ start-up line\n")
warnings.warn("a library's warning")
logging.getLogger("tensorflow").warning("a library's log record")
print("tuner_prune: error: the tool's own line", file=sys.stderr)
"""


def run(mode):
    return subprocess.run([sys.executable, "-c", NOISY, mode], capture_output=True,
                          text=True, env={"PYTHONPATH": REPO}, timeout=60)


def test_silence_keeps_only_the_tools_own_lines():
    assert run("quiet").stderr == "tuner_prune: error: the tool's own line\n"


def test_without_silence_everything_comes_through():
    stderr = run("verbose").stderr
    for line in ("a C++ start-up line", "a library's warning", "a library's log record",
                 "the tool's own line"):
        assert line in stderr


def test_a_search_prints_nothing_on_stderr(tiny_search):
    assert tiny_search["result"].stderr == ""
    assert "Reloading Tuner" not in tiny_search["result"].stdout
