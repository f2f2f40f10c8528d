"""Which TFLite candidate ships, and the export settings that decide it."""

import subprocess
import sys

import pytest

from conftest import cli_env
from tuner_prune.export.choice import Candidate, NoCandidateError, choose
from tuner_prune.settings.config import SearchConfig, parse_block_size
from tuner_prune.settings.stored_search import identity_of


def found():
    """Candidates whose test MSE equals their validation MSE, bar one."""
    return [
        Candidate("float32", "none", bytes=8000, gzip_bytes=7000, val_mse=1.00,
                  test_mse=1.00, loaded=True),
        Candidate("dynamic_int8", "dynamic", bytes=2000, gzip_bytes=300, val_mse=1.04,
                  test_mse=1.04, loaded=True),
        Candidate("sparse_dynamic_int8", "dynamic", bytes=400, gzip_bytes=350,
                  error="RuntimeError: failed to prepare"),
        Candidate("float16", "float16", bytes=4000, gzip_bytes=250, val_mse=1.00,
                  test_mse=0.90, loaded=True),
        Candidate("int8", "int8", bytes=1900, gzip_bytes=310, val_mse=1.20, test_mse=1.20,
                  loaded=True),
        Candidate("sparse_float16", "float16", bytes=300, gzip_bytes=200, loaded=True,
                  error="loads and runs, but predicts NaN or infinity"),
    ]


def test_smallest_loaded_candidate_within_tolerance_by_bytes():
    candidates = found()
    best = choose(candidates, reference_mse=1.0)
    assert best.name == "dynamic_int8" and best.chosen
    assert [c.name for c in candidates if c.chosen] == ["dynamic_int8"]
    assert [c.within_tolerance for c in candidates] == [True, True, False, True, False, False]


def test_the_choice_is_made_on_validation_and_test_mse_is_only_reported():
    candidates = [
        Candidate("float32", "none", bytes=8000, val_mse=1.00, test_mse=1.00, loaded=True),
        # Within 5 % of Keras on test, 30 % over on validation: never chosen.
        Candidate("int8", "int8", bytes=2000, val_mse=1.30, test_mse=1.01, loaded=True),
        # Within 5 % on validation, 30 % over on test: chosen, its test MSE kept as is.
        Candidate("float16", "float16", bytes=4000, val_mse=1.03, test_mse=1.30,
                  loaded=True),
    ]
    best = choose(candidates, reference_mse=1.0, max_mse_increase=0.05)
    assert best.name == "float16" and best.test_mse == 1.30
    assert [c.within_tolerance for c in candidates] == [True, False, True]
    assert choose(candidates, 1.0, quantization="int8", max_mse_increase=0.3).name == "int8"
    with pytest.raises(NoCandidateError, match="int8: validation MSE 1.3;"):
        choose(candidates, 1.0, quantization="int8")


def test_the_choice_loads_neither_tensorflow_nor_keras():
    code = ("import sys, tuner_prune.export.choice; "
            "print(sorted({'tensorflow', 'tf_keras', 'keras'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=cli_env(), timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_size_metric_gzip_and_a_looser_tolerance_change_the_choice():
    assert choose(found(), 1.0, size_metric="gzip_bytes").name == "float16"
    assert choose(found(), 1.0, max_mse_increase=0.25).name == "int8"
    assert choose(found(), 1.0, max_mse_increase=0.01).name == "float16"


def test_quantization_restricts_the_choice_to_its_kind():
    assert choose(found(), 1.0, quantization="float16").name == "float16"
    assert choose(found(), 1.0, quantization="none").name == "float32"


def test_no_qualifying_candidate_names_each_reason():
    with pytest.raises(NoCandidateError) as error:
        choose(found(), 1.0, quantization="int8")
    message = str(error.value)
    assert message.startswith("Expected a TFLite variant (quantization int8) that loads "
                              "in LiteRT with validation MSE <= 1.05 (Keras 1 + 5%)")
    assert "int8: validation MSE 1.2" in message and "--max-mse-increase" in message


@pytest.mark.parametrize("setting, value, flag", [
    ("quantization", "int4", "--quantization"),
    ("size_metric", "kb", "--size-metric"),
    ("max_mse_increase", -0.1, "--max-mse-increase"),
    ("max_mse_increase", float("nan"), "--max-mse-increase"),
    ("block_size", "16", "--block-size"),
    ("block_size", "0x4", "--block-size"),
])
def test_bad_export_settings_are_refused_with_the_flag(setting, value, flag):
    with pytest.raises(ValueError, match=f"^Expected {flag}.*received"):
        SearchConfig(**{setting: value})


def test_block_size_parses_and_is_part_of_the_search_identity():
    assert parse_block_size("16x1") == (16, 1)
    assert parse_block_size(None) == (1, 1)
    assert identity_of(SearchConfig(block_size="4X1"))["block_size"] == "4X1"
    assert "quantization" not in identity_of(SearchConfig())


def test_variants_that_all_failed_to_convert_get_no_tolerance_advice():
    failed = [Candidate(name, kind, error="conversion failed: FileNotFoundError: no files")
              for name, kind in (("float32", "none"), ("int8", "int8"))]
    with pytest.raises(NoCandidateError) as error:
        choose(failed, 1.0)
    message = str(error.value)
    assert message.endswith("received float32: conversion failed: FileNotFoundError: no "
                            "files; int8: conversion failed: FileNotFoundError: no files")
    assert "--max-mse-increase" not in message
