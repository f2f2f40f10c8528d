"""``model.c`` built by the machine's C compiler: its size and its predictions (Keras-free).

The compiler is ``$CC``, else ``cc``, else ``gcc``; sizes come from binutils'
``size`` (Berkeley format: ``text`` holds code and constant arrays, ``data``
initialised variables, ``bss`` the static buffers).
"""

import os
import shutil
import subprocess

import numpy as np

from tuner_prune.export import c_source

WARNINGS = ("-std=c99", "-Wall", "-Wextra", "-pedantic", "-Werror")
OPTIMIZE = "-Os"  # As firmware is built for flash; bench/edge_c.py times -O2 too.
HARNESS = "harness.c"
PROGRAM = "harness"
TIMEOUT = 300

# Reads ROWS rows of TUNER_PRUNE_INPUTS floats from stdin; writes one float per
# row to stdout, or with REPEATS > 0 the nanoseconds per row of REPEATS passes.
HARNESS_TEXT = r"""#define _POSIX_C_SOURCE 199309L
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "model.h"

int main(int argc, char **argv)
{
    long rows = argc > 1 ? atol(argv[1]) : 0, repeats = argc > 2 ? atol(argv[2]) : 0;
    long r, k;
    float *x = malloc(sizeof(float) * TUNER_PRUNE_INPUTS * (rows > 0 ? rows : 1));
    volatile float sink = 0.0f;
    struct timespec start, stop;
    if (x == NULL || fread(x, sizeof(float) * TUNER_PRUNE_INPUTS, rows, stdin) != (size_t)rows)
        return 3;
    if (repeats <= 0) {
        for (r = 0; r < rows; ++r) {
            float y = tuner_prune_predict(x + r * TUNER_PRUNE_INPUTS);
            fwrite(&y, sizeof y, 1, stdout);
        }
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (k = 0; k < repeats; ++k)
        for (r = 0; r < rows; ++r) sink = sink + tuner_prune_predict(x + r * TUNER_PRUNE_INPUTS);
    clock_gettime(CLOCK_MONOTONIC, &stop);
    printf("%.3f\n", ((stop.tv_sec - start.tv_sec) * 1e9 + (stop.tv_nsec - start.tv_nsec))
           / ((double)repeats * rows));
    return 0;
}
"""


class CompilerError(RuntimeError):
    """The C compiler refused ``model.c`` or is missing."""


def compiler():
    """Path of the C compiler, or ``None``."""
    for name in (os.environ.get("CC"), "cc", "gcc"):
        found = name and shutil.which(name)
        if found:
            return found
    return None


def build(folder, optimize=OPTIMIZE):
    """Compiles ``folder/model.c`` to ``model.o`` and a test program beside it.

    Returns:
        ``{"text": ..., "data": ..., "bss": ...}``: bytes of the object's sections.

    Raises:
        CompilerError: No compiler, or its error's first lines.
    """
    cc = compiler()
    if cc is None:
        raise CompilerError("Expected a C compiler ($CC, cc or gcc), received none on PATH")
    with open(os.path.join(folder, HARNESS), "w", encoding="ascii") as handle:
        handle.write(HARNESS_TEXT)
    obj = os.path.join(folder, "model.o")
    _run([cc, *WARNINGS, optimize, "-c", c_source.SOURCE, "-o", obj], folder)
    _run([cc, "-std=c99", "-O2", HARNESS, obj, "-o", PROGRAM], folder)
    return sections(obj)


def sections(obj):
    """``text``, ``data`` and ``bss`` bytes of an object file (binutils ``size``)."""
    size = shutil.which("size")
    if size is None:
        raise CompilerError("Expected binutils' size on PATH, received none")
    lines = _run([size, obj], os.path.dirname(obj)).splitlines()
    text, data, bss = (int(word) for word in lines[1].split()[:3])
    return {"text": text, "data": data, "bss": bss}


def predict(folder, x):
    """Predictions of the program ``build`` made, one per row of ``x``."""
    rows = np.ascontiguousarray(x, np.float32).reshape(len(x), -1)
    result = subprocess.run([os.path.join(folder, PROGRAM), str(len(rows))],
                            input=rows.tobytes(), capture_output=True, timeout=TIMEOUT,
                            check=False)
    if result.returncode != 0:
        raise CompilerError(f"Expected the C test program to exit 0, received "
                            f"{result.returncode}")
    return np.frombuffer(result.stdout, np.float32).copy()


def seconds_per_row(folder, x, repeats):
    """Mean time of one ``tuner_prune_predict`` call over ``repeats`` passes of ``x``."""
    rows = np.ascontiguousarray(x, np.float32).reshape(len(x), -1)
    result = subprocess.run([os.path.join(folder, PROGRAM), str(len(rows)), str(repeats)],
                            input=rows.tobytes(), capture_output=True, timeout=TIMEOUT,
                            check=True)
    return float(result.stdout) * 1e-9


def _run(command, folder):
    result = subprocess.run(command, cwd=folder, capture_output=True, text=True,
                            timeout=TIMEOUT, check=False)
    if result.returncode != 0:
        first = (result.stderr or result.stdout).strip().splitlines()[:3]
        said = " / ".join(first) or f"exit status {result.returncode} and no message"
        raise CompilerError(f"Expected {os.path.basename(command[0])} to succeed, "
                            f"received: {said}")
    return result.stdout
