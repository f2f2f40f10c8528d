"""A stack of Dense layers as dependency-free C99 source, weights stored sparse (Keras-free).

Each layer's weights are quantized (``int8`` or ``int16`` with one scale per
output channel) or kept ``float`` (float32), then stored in whichever encoding
of its nonzero weights is smallest for that layer:

- ``dense``: every weight, output by output (no positions).
- ``index``: per output, its nonzero values, each with the gap (one byte)
  from the previous nonzero's input, and the count of them.
- ``bitmap``: the nonzero values and one bit per weight saying which are nonzero.
- ``block16``: per output, the 16-input blocks (``--block-size 16x1``) that
  hold a nonzero, each stored whole with its block index.
- ``bias``: no nonzero weight at all; the layer outputs its bias.

``model.c`` defines ``float tuner_prune_predict(const float *row)``; the
layers' outputs go to two static float buffers (the C export's RAM).
"""

import dataclasses

import numpy as np

from tuner_prune.core import metrics
from tuner_prune.store.ownership import C_HEADER as HEADER, C_SOURCE as SOURCE

FUNCTION = "tuner_prune_predict"
GUARD = "TUNER_PRUNE_MODEL_H_"
VALUE_TYPES = {"int8": ("signed char", 1, 127), "int16": ("short", 2, 32767),
               "float": ("float", 4, None)}
ENCODINGS = ("dense", "block16", "index", "bitmap")  # Ties go to the first.
BLOCK = 16
MAX_GAP = 255
PER_LINE = 12


@dataclasses.dataclass
class Layer:
    """One Dense layer of ``y = act(x @ kernel + bias)``.

    Attributes:
        kernel: ``(inputs, outputs)`` float weights (scaling folded in).
        bias: ``(outputs,)`` floats.
        relu: Whether a ReLU follows.
    """

    kernel: np.ndarray
    bias: np.ndarray
    relu: bool


@dataclasses.dataclass
class Encoded:
    """One layer's stored weights: values, positions and what they cost."""

    inputs: int
    outputs: int
    value_type: str
    encoding: str
    values: np.ndarray  # Quantized or float, stored order.
    arrays: dict  # Name suffix -> (C type, numbers): positions and counts.
    scales: np.ndarray  # One per output, or None for float values.
    bias: np.ndarray
    relu: bool
    nonzeros: int

    @property
    def value_bytes(self):
        return int(self.values.size) * VALUE_TYPES[self.value_type][1]

    @property
    def index_bytes(self):
        return sum(len(numbers) * _type_bytes(ctype)
                   for ctype, numbers in self.arrays.values())

    @property
    def limit_bytes(self):
        """The information limit: nonzero values' bytes plus log2 C(n, k) bits."""
        return metrics.information_limit_bytes(self.inputs * self.outputs, self.nonzeros,
                                             VALUE_TYPES[self.value_type][1])

    def summary(self):
        return {"inputs": self.inputs, "outputs": self.outputs, "encoding": self.encoding,
                "nonzeros": self.nonzeros, "value_bytes": self.value_bytes,
                "index_bytes": self.index_bytes,
                "limit_bytes": round(self.limit_bytes, 1)}


def quantize(kernel, value_type):
    """``(values, scales)``: ``kernel`` as integers with one scale per output, or as float."""
    if value_type == "float":
        return kernel.astype(np.float32), None
    top = VALUE_TYPES[value_type][2]
    largest = np.abs(kernel).max(axis=0)
    scales = np.where(largest > 0, largest / top, 1.0).astype(np.float32)
    values = np.clip(np.round(kernel / scales), -top, top)
    return values.astype(np.int8 if value_type == "int8" else np.int16), scales


def encode(layer, value_type, encodings=ENCODINGS):
    """The smallest of ``encodings`` of one layer's weights at ``value_type``."""
    values, scales = quantize(np.asarray(layer.kernel, np.float32), value_type)
    rows = values.T  # (outputs, inputs): each output's weights together.
    mask = rows != 0
    makers = {"dense": _dense, "index": _index, "bitmap": _bitmap, "block16": _blocks}
    options = [makers[name](rows, mask) for name in encodings
               if name != "block16" or rows.shape[1] % BLOCK == 0]
    size = VALUE_TYPES[value_type][1]
    kind, stored, arrays = (("bias", rows[:0, 0], {}) if not mask.any() else min(
        options, key=lambda o: (o[1].size * size + _arrays_bytes(o[2]),
                                ENCODINGS.index(o[0]))))
    return Encoded(rows.shape[1], rows.shape[0], value_type, kind, stored, arrays,
                   scales, np.asarray(layer.bias, np.float32), layer.relu,
                   int(mask.sum()))


def _dense(rows, _):
    return "dense", rows.reshape(-1), {}


def _index(rows, mask):
    """Nonzero values with the gap (one byte) from the previous one's input.

    A gap over 255 is bridged by stored zeros 255 inputs apart.
    """
    values, gaps, counts = [], [], []
    for row, used in zip(rows, mask):
        before = len(values)
        previous = 0
        for position in np.nonzero(used)[0]:
            while position - previous > MAX_GAP:
                previous += MAX_GAP
                values.append(0)
                gaps.append(MAX_GAP)
            values.append(row[position])
            gaps.append(position - previous)
            previous = position
        counts.append(len(values) - before)
    return "index", np.asarray(values, rows.dtype), {
        "i": ("unsigned char", np.asarray(gaps)),
        "n": (_index_type(max(counts)), np.asarray(counts))}


def _bitmap(rows, mask):
    bits = np.packbits(mask.reshape(-1), bitorder="little")
    return "bitmap", rows[mask], {"m": ("unsigned char", bits)}


def _blocks(rows, mask):
    outputs, inputs = rows.shape
    used = mask.reshape(outputs, inputs // BLOCK, BLOCK).any(axis=2)
    values = rows.reshape(outputs, inputs // BLOCK, BLOCK)[used].reshape(-1)
    counts = used.sum(axis=1)
    return "block16", values, {"i": (_index_type(inputs // BLOCK - 1), np.nonzero(used)[1]),
                               "n": (_index_type(counts.max()), counts)}


def _index_type(largest):
    return "unsigned char" if largest < 256 else (
        "unsigned short" if largest < 65536 else "unsigned long")


def _type_bytes(ctype):
    return {"unsigned char": 1, "unsigned short": 2, "unsigned long": 4}[ctype]


def _arrays_bytes(arrays):
    return sum(len(numbers) * _type_bytes(ctype) for ctype, numbers in arrays.values())


def buffer_floats(encoded):
    """Floats of each static buffer: the widest layer output."""
    return max(layer.outputs for layer in encoded)


def source_text(encoded):
    """``model.c``: the layers' arrays, one function per layer and ``tuner_prune_predict``."""
    width = buffer_floats(encoded)
    buffers = ("tp_a", "tp_b")[:min(2, len(encoded))]
    parts = ["/* Generated by tuner_prune: the model as dependency-free C99. */",
             f'#include "{HEADER}"', "",
             *(f"static float {name}[{width}];" for name in buffers), ""]
    for number, layer in enumerate(encoded):
        parts += [_arrays_text(number, layer), _layer_text(number, layer), ""]
    calls, source = [], "row"
    for number in range(len(encoded)):
        target = buffers[number % 2]
        calls.append(f"    layer{number}({source}, {target});")
        source = target
    parts += [f"float {FUNCTION}(const float *row)", "{", *calls,
              f"    return {source}[0];", "}", ""]
    return "\n".join(parts)


def header_text(encoded, value_type):
    """``model.h``: the input width and the function's declaration."""
    inputs = encoded[0].inputs
    ram = 4 * buffer_floats(encoded) * min(2, len(encoded))
    encodings = ", ".join(layer.encoding for layer in encoded)
    return "\n".join([
        "/* Generated by tuner_prune: the model as dependency-free C99. */",
        f"#ifndef {GUARD}", f"#define {GUARD}", "",
        "#ifdef __cplusplus", 'extern "C" {', "#endif", "",
        "/* Raw features per row, in the order of the training data's columns (for a",
        " * CSV with text or missing cells, the numbers tuner_prune.encode_rows makes). */",
        f"#define TUNER_PRUNE_INPUTS {inputs}", "",
        f"/* {len(encoded)} Dense layer(s), {value_type} weights ({encodings}).",
        f" * Takes TUNER_PRUNE_INPUTS raw features (the scaling is built in) and",
        " * returns the prediction in the target's units. Not reentrant: the layers",
        f" * share {ram} bytes of static buffers. */",
        f"float {FUNCTION}(const float *row);", "",
        "#ifdef __cplusplus", "}", "#endif", "", f"#endif  /* {GUARD} */", ""])


def _arrays_text(number, layer):
    name = f"L{number}"
    ctype = VALUE_TYPES[layer.value_type][0]
    out = []
    if layer.values.size:
        out.append(_array(f"{name}_v", ctype, layer.values))
    for suffix, (index_type, numbers) in layer.arrays.items():
        out.append(_array(f"{name}_{suffix}", index_type, numbers))
    if layer.scales is not None:
        out.append(_array(f"{name}_s", "float", layer.scales))
    out.append(_array(f"{name}_b", "float", layer.bias))
    return "\n".join(out)


def _array(name, ctype, numbers):
    if ctype == "float":
        items = [_float(value) for value in np.asarray(numbers, np.float32)]
    else:
        items = [str(int(value)) for value in numbers]
    lines = [", ".join(items[i:i + PER_LINE]) for i in range(0, len(items), PER_LINE)]
    body = ",\n".join(f"    {line}" for line in lines)
    return f"static const {ctype} {name}[{len(items)}] = {{\n{body}\n}};"


def _float(value):
    text = str(np.float32(value))  # The shortest text that reads back the same float32.
    return text + ("f" if ("." in text or "e" in text) else ".0f")


_LOOPS = {
    "dense": ("    const {v} *v = {L}_v;",
              "        for (i = 0; i < {I}; ++i) acc += x[i] * v[i];\n"
              "        v += {I};"),
    "index": ("    const {v} *v = {L}_v;\n    const {i} *p = {L}_i;\n    const float *xp;",
              "        for (xp = x, i = {L}_n[j]; i > 0; --i) {{\n"
              "            xp += *p++;\n"
              "            acc += *xp * *v++;\n"
              "        }}"),
    "bitmap": ("    const {v} *v = {L}_v;\n    unsigned long bit = 0;",
               "        for (i = 0; i < {I}; ++i, ++bit)\n"
               "            if (({L}_m[bit >> 3] >> (bit & 7u)) & 1u) acc += x[i] * *v++;"),
    "block16": ("    const {v} *v = {L}_v;\n    const {i} *p = {L}_i;",
                "        for (i = {L}_n[j]; i > 0; --i, v += 16) {{\n"
                "            const float *xs = x + 16L * *p++;\n"
                "            for (t = 0; t < 16; ++t) acc += xs[t] * v[t];\n"
                "        }}"),
    "bias": ("", ""),
}


def _layer_text(number, layer):
    name = f"L{number}"
    declare, loop = _LOOPS[layer.encoding]
    fields = {"L": name, "I": layer.inputs, "v": VALUE_TYPES[layer.value_type][0],
              "i": layer.arrays.get("i", ("", None))[0]}
    total = "acc" if layer.scales is None else f"{name}_s[j] * acc"
    finish = (f"        acc = {name}_b[j] + {total};\n"
              + ("        y[j] = acc > 0.0f ? acc : 0.0f;" if layer.relu else "        y[j] = acc;"))
    counters = {"bias": "long j", "block16": "long i, j, t"}.get(layer.encoding, "long i, j")
    body = [f"static void layer{number}(const float *x, float *y)", "{",
            f"    {counters};"]
    if declare:
        body.append(declare.format(**fields))
    body += ["    (void)x;" if layer.encoding == "bias" else "",
             f"    for (j = 0; j < {layer.outputs}; ++j) {{", "        float acc = 0.0f;"]
    if loop:
        body.append(loop.format(**fields))
    body += [finish, "    }", "}"]
    return "\n".join(line for line in body if line)
