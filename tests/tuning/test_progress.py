"""The progress line: time left from finished trials, plain lines off a terminal."""

import fcntl
import io
import os
import pty
import select
import struct
import termios

from tuner_prune.tuning.progress import ProgressLine, SearchClock, TrialProgress, format_seconds


class Ticks:
    """A clock the test moves by hand."""

    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_format_seconds():
    assert [format_seconds(s) for s in (42.4, 312, 3725)] == ["42s", "5m12s", "1h02m"]


def test_time_left_from_the_current_trial_then_from_finished_trials():
    ticks = Ticks()
    clock = SearchClock(epochs=10, clock=ticks)
    clock.trial_began()
    assert clock.left(0, trials_after=2) is None
    ticks.now += 20  # 2 s per epoch over 10 epochs
    assert clock.left(10, trials_after=2) == 40  # 0 epochs of this one + 2 x 10 epochs
    clock.trial_ended()
    clock.trial_began()
    ticks.now += 5
    assert clock.left(2, trials_after=1) == (20 - 5) + 20
    assert clock.elapsed() == 25


def test_between_trials_only_whole_trials_are_left():
    ticks = Ticks()
    clock = SearchClock(epochs=4, clock=ticks)
    clock.trial_began()
    ticks.now += 30
    clock.trial_ended()
    ticks.now += 100  # Not spent in a trial: no trial is running.
    assert clock.left(0, trials_after=2) == 60
    assert clock.describe("sweep", 0, 2) == "sweep 2m10s, ~1m00s left"
    assert clock.describe("sweep", 0, None) == "sweep 2m10s"


def test_off_a_terminal_a_plain_line_every_quarter_of_the_trial():
    stream = io.StringIO()
    line = TrialProgress("Trial 0 (1 of 3)", 8, SearchClock(8), trials_after=2,
                         stream=stream)
    for epoch in range(8):
        line.epoch_ended(epoch, 0.5, 0.25, 0.9 * epoch / 7)
    line.close()
    lines = stream.getvalue().splitlines()
    assert [text.split(":")[0] for text in lines] == [
        f"  Trial 0 (1 of 3) epoch {n}/8" for n in (2, 4, 6, 8)]
    assert "mse 0.5, val_mse 0.25, sparsity 0.900, search " in lines[-1]
    assert lines[-1].endswith(" left") and "\r" not in stream.getvalue()


def test_off_a_terminal_a_plain_line_every_step_by_default():
    stream = io.StringIO()
    line = ProgressLine("Sweep", 3, "{n}/{total} runs", stream=stream)
    for run in range(3):
        line.step(f"run {run}")
    line.close()
    assert stream.getvalue().splitlines() == [f"  Sweep {n}/3 runs: run {n - 1}"
                                              for n in (1, 2, 3)]


def shown_in_a_terminal(draw):
    """What ``draw(stream)`` shows in a real pseudo-terminal, 160 columns wide."""
    leader, follower = pty.openpty()
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 160, 0, 0))
    with os.fdopen(follower, "w") as terminal:
        draw(terminal)
        terminal.flush()
        shown = b""
        while select.select([leader], [], [], 0.5)[0]:
            shown += os.read(leader, 65536)
    os.close(leader)
    return shown.decode()


def test_in_a_terminal_one_line_rewritten_in_place():
    def draw(terminal):
        line = TrialProgress("Trial 1 (2 of 3)", 4, SearchClock(4), trials_after=1,
                             stream=terminal)
        for epoch in range(4):
            line.epoch_ended(epoch, 0.5, 0.25, 0.5)
        line.close()

    shown = shown_in_a_terminal(draw)
    assert "\r" in shown and "Trial 1 (2 of 3) epoch 4/4" in shown
    assert "val_mse 0.25" in shown
    assert "\n" not in shown.replace("\r\n", "")  # No plain lines.


def test_in_a_terminal_the_count_reads_as_given():
    def draw(terminal):
        line = ProgressLine("Sweep", 2, "{n}/{total} runs", stream=terminal)
        for run in range(2):
            line.step(f"run {run}")
        line.close()

    shown = shown_in_a_terminal(draw)
    assert "Sweep 2/2 runs" in shown and "run 1" in shown
    assert "\n" not in shown.replace("\r\n", "")
