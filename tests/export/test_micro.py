"""The C++ array for TensorFlow Lite Micro, Keras-free."""

import re

from tuner_prune.export import micro

IO = {"input": {"dtype": "int8", "scale": 0.0078125, "zero_point": -1},
      "output": {"dtype": "int8", "scale": 0.5, "zero_point": 3}}


def decode_c_array(source):
    """Bytes of the one ``{...}`` array in a C source, and its declared length."""
    body = re.search(r"\[\] = \{(.*?)\};", source, re.S).group(1)
    content = bytes(int(token, 16) for token in re.findall(r"0x([0-9a-fA-F]{2})", body))
    length = int(re.search(r"_len = (\d+);", source).group(1))
    return content, length


def test_source_decodes_to_exactly_the_bytes(tmp_path):
    content = bytes(range(256)) * 3 + b"\x00\xff\x10"
    manifest = micro.write(content, IO, str(tmp_path))
    decoded, length = decode_c_array((tmp_path / micro.SOURCE).read_text())
    assert decoded == content
    assert length == len(content) == manifest["bytes"]
    assert manifest["source"] == "model_data.cc" and manifest["header"] == "model_data.h"


def test_header_declares_the_array_and_the_quantization(tmp_path):
    micro.write(b"\x01\x02", IO, str(tmp_path))
    header = (tmp_path / micro.HEADER).read_text()
    source = (tmp_path / micro.SOURCE).read_text()
    assert "extern const unsigned char g_model_data[];" in header
    assert "extern const unsigned int g_model_data_len;" in header
    assert "kModelInputScale = 0.0078125f;" in header
    assert "kModelInputZeroPoint = -1;" in header
    assert "kModelOutputZeroPoint = 3;" in header
    assert '#include "model_data.h"' in source and "alignas(16)" in source


def test_header_gives_the_arena_and_its_margin(tmp_path):
    arena = {"bytes": 2288, "smallest_bytes": 2080, "margin": 0.1}
    entry = micro.write(b"\x01\x02", IO, str(tmp_path), arena)
    header = (tmp_path / micro.HEADER).read_text()
    assert "constexpr int kTensorArenaSize = 2288;" in header
    assert "(2080 bytes) plus 10%" in header
    assert entry["arena"] == arena
