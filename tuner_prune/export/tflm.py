"""TFLite models run in TensorFlow Lite Micro's interpreter, in child processes (Keras-free).

The ``tflite-micro`` package is TFLM's own C++ interpreter built for Python. A
model it cannot run well can crash it (a tensor arena too small, a kernel
reading past its buffers), so it runs in a child process: ``run`` starts one
(``python -m tuner_prune.export.tflm``) that takes the models one by one and writes a
result line per model; if the child dies, the model it was running is
reported as crashed and a new child takes the rest.
"""

import json
import os
import subprocess
import sys
import tempfile

import numpy as np

from tuner_prune.core.metrics import SMALLEST_ARENA  # noqa: F401 (tflm.SMALLEST_ARENA)

TIMEOUT = 600
ARENA_STEP = 16  # Bytes: the bisection's resolution and the arena's alignment.
ARENA_MARGIN = 0.10  # Added to the smallest arena that works on this machine.
ARENA_ROWS = 3  # Rows each probe must predict as the default arena does.


def run(contents, x, arena_bytes=None):
    """Predictions of each model in TFLM, one invoke per row.

    Args:
        contents: ``{name: .tflite bytes}``.
        x: Input rows (float), batch first; integer inputs and outputs are
            quantized and dequantized with the model's own scale and zero point.
        arena_bytes: TFLM's tensor arena; ``None`` is the package's default
            (ten times the model's bytes).

    Returns:
        ``{name: (predictions, error)}``: a float array and ``None``, or
        ``None`` and a one-line reason (it failed to load or run, or crashed).
    """
    results, pending = {}, list(contents)
    with tempfile.TemporaryDirectory(prefix="tuner_prune-tflm-") as folder:
        rows = os.path.join(folder, "rows.npy")
        np.save(rows, np.asarray(x, np.float32))
        while pending:
            done = _child(folder, rows, {name: contents[name] for name in pending},
                          arena_bytes)
            results.update(done)
            pending = [name for name in pending if name not in results]
    return results


def _child(folder, rows, contents, arena_bytes):
    """Runs the models in one child; the one it died on is reported as crashed."""
    paths = []
    for number, (name, content) in enumerate(contents.items()):
        path = os.path.join(folder, f"{number}.tflite")
        with open(path, "wb") as handle:
            handle.write(content)
        paths.append((name, path))
    out = os.path.join(folder, "results.jsonl")
    if os.path.exists(out):
        os.remove(out)
    job = os.path.join(folder, "job.json")
    with open(job, "w", encoding="utf-8") as handle:
        json.dump({"rows": rows, "models": paths, "out": out, "arena": arena_bytes}, handle)
    status = subprocess.run([sys.executable, "-m", "tuner_prune.export.tflm", job],
                            env=_child_env(),
                            capture_output=True, timeout=TIMEOUT, check=False).returncode
    results = {}
    if os.path.exists(out):
        with open(out, encoding="utf-8") as handle:
            for line in handle:
                row = json.loads(line)
                predicted = row.get("predictions")
                results[row["name"]] = (None if predicted is None
                                        else np.asarray(predicted, np.float32), row.get("error"))
    if len(results) < len(paths):
        crashed = paths[len(results)][0]
        results[crashed] = (None, f"TFLM crashed (exit status {status})")
    return results


def smallest_arena(content, x, expected=None):
    """The smallest tensor arena (bytes, a multiple of ``ARENA_STEP``) that runs the model.

    Bisection between 0 and the package's default arena, in child processes:
    each probe builds the interpreter with that arena and must predict the
    first ``ARENA_ROWS`` rows exactly as the default arena does; one that
    fails or crashes its child is too small.

    Args:
        content: The ``.tflite`` bytes.
        x: Input rows; the first ``ARENA_ROWS`` are predicted.
        expected: TFLM's predictions of those rows with the default arena,
            if already known (``run``).

    Returns:
        The bytes, or ``None`` when the model does not run in TFLM.
    """
    rows = np.asarray(x, np.float32)[:ARENA_ROWS]
    if expected is None:
        expected, error = run({"model": content}, rows)["model"]
        if error is not None:
            return None
    expected = np.asarray(expected, np.float32)[:ARENA_ROWS]
    low, high = 0, _round_up(10 * len(content))  # The package's default arena works.
    with tempfile.TemporaryDirectory(prefix="tuner_prune-arena-") as folder:
        job = {"rows": os.path.join(folder, "rows.npy"),
               "model": os.path.join(folder, "model.tflite"),
               "expected": expected.tolist(), "out": os.path.join(folder, "probes.jsonl")}
        np.save(job["rows"], rows)
        with open(job["model"], "wb") as handle:
            handle.write(content)
        while high - low > ARENA_STEP:
            for size, works in _probe_child(folder, {**job, "low": low, "high": high}):
                low, high = (low, size) if works else (size, high)
    return high


def smallest_of(contents, x):
    """The smallest arena among models, with its margin: ``(bytes, name)``.

    Each model's arena is ``smallest_arena`` plus ``ARENA_MARGIN``, as an
    export reports it for the same ``.tflite`` and rows.

    Args:
        contents: ``{name: .tflite bytes}``.
        x: Input rows; the first ``ARENA_ROWS`` are predicted.

    Raises:
        RuntimeError: None of the models runs in TFLM (each one's reason).
    """
    rows = np.asarray(x, np.float32)[:ARENA_ROWS]
    found, failed = [], []
    for name, (predicted, error) in run(contents, rows).items():
        if error is None:
            smallest = smallest_arena(contents[name], rows, predicted)
            found.append((arena_with_margin(smallest), name))
        else:
            failed.append(f"{name}: {error}")
    if not found:
        raise RuntimeError(f"Expected a model that runs in TFLM, whose tensor arena "
                           f"--max-ram bounds, received {'; '.join(failed)}")
    return min(found)


def arena_with_margin(smallest):
    """``smallest`` plus ``ARENA_MARGIN``, rounded up to ``ARENA_STEP``."""
    return _round_up(smallest * (1 + ARENA_MARGIN))


def _round_up(size):
    return int(-(-int(np.ceil(size)) // ARENA_STEP) * ARENA_STEP)


def _probe_child(folder, job):
    """``(size, works)`` of each probe one child made; the one it died on does not work."""
    if os.path.exists(job["out"]):
        os.remove(job["out"])
    path = os.path.join(folder, "job.json")
    with open(path, "w", encoding="utf-8") as handle:
        json.dump({**job, "mode": "arena"}, handle)
    subprocess.run([sys.executable, "-m", "tuner_prune.export.tflm", path], env=_child_env(),
                   capture_output=True, timeout=TIMEOUT, check=False)
    probes, trying = [], None
    with open(job["out"], encoding="utf-8") as handle:
        for line in handle:
            row = json.loads(line)
            if "works" in row:
                probes.append((row["size"], row["works"]))
                trying = None
            else:
                trying = row["size"]
    if trying is not None:
        probes.append((trying, False))  # It crashed the child.
    return probes


def _child_env():
    # The folder that holds tuner_prune/ (this file is tuner_prune/export/tflm.py).
    package = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return {**os.environ,
            "PYTHONPATH": os.pathsep.join([package, os.environ.get("PYTHONPATH", "")])}


def _bisect(job):
    """The child's bisection: a line before each probe and one with its result."""
    with open(job["model"], "rb") as handle:
        content = handle.read()
    x, expected = np.load(job["rows"]), np.asarray(job["expected"], np.float32)
    low, high = job["low"], job["high"]
    while high - low > ARENA_STEP:
        size = _round_up((low + high) / 2)
        size = size if size < high else high - ARENA_STEP
        _append(job["out"], {"size": size})
        try:
            with _output_to(job["out"] + ".log"):
                works = bool(np.array_equal(predict(content, x, size), expected))
        except Exception:  # TFLM raises RuntimeError when the arena is too small.
            works = False
        _append(job["out"], {"size": size, "works": works})
        low, high = (low, size) if works else (size, high)


def _append(path, row):
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(row) + "\n")


def predict(content, x, arena_bytes=None):
    """Predictions of one model in this process's TFLM interpreter (the child's work)."""
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_bytes(content, arena_size=arena_bytes)
    given, wanted = interpreter.get_input_details(0), interpreter.get_output_details(0)
    shape = tuple(given["shape"])
    predictions = []
    for row in np.asarray(x, np.float32):
        interpreter.set_input(quantize(row.reshape(shape), given["dtype"], *_scale(given)), 0)
        interpreter.invoke()
        predictions.append(dequantize(interpreter.get_output(0), *_scale(wanted)).reshape(-1)[0])
    return np.asarray(predictions, np.float32)


def quantize(x, dtype, scale, zero_point):
    """``x`` in an input tensor's ``dtype``, through its scale and zero point
    (float dtypes: a plain cast). LiteRT's inputs take it too (``tflite``)."""
    if not np.issubdtype(dtype, np.integer):
        return x.astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(x / scale) + zero_point, info.min, info.max).astype(dtype)


def dequantize(values, scale, zero_point):
    """Float values of an output tensor, through its scale and zero point."""
    if not np.issubdtype(values.dtype, np.integer):
        return values.astype(np.float32)
    return (values.astype(np.float32) - zero_point) * scale


def _scale(detail):
    """``(scale, zero_point)`` of a tensor; ``(1.0, 0)`` for a float one, which has none."""
    parameters = detail["quantization_parameters"]
    if len(parameters["scales"]) == 0:
        return 1.0, 0
    return float(parameters["scales"][0]), int(parameters["zero_points"][0])


def _main(job_path):
    """The child: each model's result as one JSON line, its C++ messages kept aside."""
    with open(job_path, encoding="utf-8") as handle:
        job = json.load(handle)
    if job.get("mode") == "arena":
        _bisect(job)
        return
    x = np.load(job["rows"])
    for name, path in job["models"]:
        with open(path, "rb") as handle:
            content = handle.read()
        log = path + ".log"
        try:
            with _output_to(log):
                predicted = predict(content, x, job["arena"])
            row = {"name": name, "predictions": predicted.tolist()}
        except Exception as error:  # TFLM raises RuntimeError on load or invoke.
            row = {"name": name, "error": _reason(error, log)}
        with open(job["out"], "a", encoding="utf-8") as handle:
            handle.write(json.dumps(row) + "\n")


class _output_to:
    """File descriptors 1 and 2 (TFLM's C++ messages) sent to ``path`` for a block."""

    def __init__(self, path):
        self.path = path

    def __enter__(self):
        sys.stdout.flush()
        self.saved = [os.dup(1), os.dup(2)]
        target = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.dup2(target, 1)
        os.dup2(target, 2)
        os.close(target)

    def __exit__(self, *exc):
        for fd, saved in zip((1, 2), self.saved):
            os.dup2(saved, fd)
            os.close(saved)


def _reason(error, log):
    lines = [line.strip() for line in open(log, encoding="utf-8", errors="replace")
             if line.strip()] if os.path.exists(log) else []
    first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"{first}: {lines[-1]}" if lines else first


if __name__ == "__main__":
    _main(sys.argv[1])
