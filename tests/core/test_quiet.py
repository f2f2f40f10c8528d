"""Other libraries' lines kept off stderr, the tool's own kept on it."""

import os
import re
import signal
import subprocess
import sys

from conftest import REPO

NOISY = r"""
import logging, os, sys, warnings
from tuner_prune.core import quiet
if sys.argv[1] == "quiet":
    quiet.silence()
os.write(2, b"I0000 a C++ start-up line\n")
warnings.warn("a library's warning")
logging.getLogger("tensorflow").warning("a library's log record")
print("tuner_prune: error: the tool's own line", file=sys.stderr)
"""

CRASHING = r"""
import ctypes, os, sys
from tuner_prune.core import quiet
quiet.silence()
os.write(2, b"I0000 a C++ line before the crash\n")
if sys.argv[1] == "crash":
    ctypes.string_at(0)  # A real segmentation fault, in native code.
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


def run_crashing(mode, tmp_path):
    return subprocess.run([sys.executable, "-c", CRASHING, mode], capture_output=True,
                          text=True, env={"PYTHONPATH": REPO, "TMPDIR": str(tmp_path)},
                          timeout=60)


def test_a_native_crash_is_one_line_naming_the_kept_native_log(tmp_path):
    result = run_crashing("crash", tmp_path)
    assert result.returncode == -signal.SIGSEGV
    line, = result.stderr.splitlines()
    found = re.fullmatch(r"tuner_prune: error: the process died in native code \(Fatal "
                         r"Python error: Segmentation fault\); its native log is kept in "
                         r"(.+\.log)", line)
    assert found and os.path.dirname(found[1]) == str(tmp_path), line
    with open(found[1], encoding="utf-8") as handle:
        log = handle.read()
    assert "I0000 a C++ line before the crash" in log and "in string_at" in log


def test_the_native_log_goes_when_the_process_ends_normally(tmp_path):
    result = run_crashing("live", tmp_path)
    assert (result.returncode, result.stderr) == (0, "")
    assert os.listdir(tmp_path) == []
