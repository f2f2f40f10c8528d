"""Every variant run in LiteRT (XNNPACK and built-in kernels) and in the real TFLM interpreter.

No training: tiny tf_keras models with set weights, converted once per module.
"""

import contextlib
import dataclasses
import io
import json

import numpy as np
import pytest

from tuner_prune.export import choice, exporter as export, runtimes, serving, tflite, tflm
from tuner_prune.core._keras import keras
from tuner_prune.export.choice import Candidate

INPUTS, UNITS = 32, 64


def converted(tmp_path_factory, kernel_mask, variants=tflite.VARIANTS, seed=0):
    """The variants of a 32-64-1 ReLU MLP whose first kernel is ``kernel_mask``-sparse."""
    rng = np.random.default_rng(seed)
    model = keras.Sequential([keras.Input(shape=(INPUTS,)),
                              keras.layers.Dense(UNITS, activation="relu"),
                              keras.layers.Dense(1)])
    first, last = model.layers
    first.set_weights([rng.normal(0, 0.5, (INPUTS, UNITS)) * kernel_mask(rng),
                       rng.normal(0, 0.1, UNITS)])
    last.set_weights([rng.normal(0, 0.5, (UNITS, 1)), np.zeros(1)])
    served = serving.scaled_model(model, np.ones(INPUTS), 1.0)
    folder = tmp_path_factory.mktemp("runtimes") / "saved_model"
    with contextlib.redirect_stdout(io.StringIO()):
        served.export(str(folder))
    x = rng.normal(size=(40, INPUTS)).astype(np.float32)
    y = served.predict(x, verbose=0).reshape(-1)
    found = tflite.candidates(str(folder), (x, y), None, x, variants)
    runtimes.verify(found, x)
    return {c.name: c for c in found}


def block_mask(rng):
    """1x16 blocks along the inputs (``--block-size 16x1``), 70 % of them zero."""
    return np.repeat(rng.random((INPUTS // 16, UNITS)) >= 0.7, 16, axis=0)


@pytest.fixture(scope="module")
def blocks(tmp_path_factory):
    return converted(tmp_path_factory, block_mask)


@pytest.fixture(scope="module")
def unstructured(tmp_path_factory):
    variants = [v for v in tflite.VARIANTS if v.name in ("int8", "sparse_int8")]
    return converted(tmp_path_factory, lambda rng: rng.random((INPUTS, UNITS)) >= 0.9,
                     variants)


def test_int8_runs_in_tflm_within_one_int8_unit_of_litert(blocks):
    int8 = blocks["int8"]
    assert int8.runtimes == {"litert": "matched", "litert_builtin": "reference",
                             "tflm": "matched"}


def test_tflm_predictions_agree_with_litert_builtin_row_by_row(blocks):
    int8 = blocks["int8"]
    x = np.random.default_rng(5).normal(size=(30, INPUTS)).astype(np.float32)
    micro, error = tflm.run({"int8": int8.content}, x)["int8"]
    litert = tflite.run(int8.content, x, min_invokes=0, builtin=True)[0]
    scale = tflite.io_quantization(int8.content)["output"]["scale"]
    assert error is None
    assert np.max(np.abs(micro - litert)) <= scale * 1.001


def test_block_sparse_variants_compute_wrongly_in_tflm_and_are_reported(blocks):
    """TFLM runs 1x16-block int8 without an error, wrongly; block float32 gives NaN."""
    assert blocks["sparse_int8"].runtimes["litert_builtin"] == "matched"
    assert blocks["sparse_int8"].runtimes["tflm"].startswith("wrong: differs")
    assert blocks["sparse_float32"].runtimes["tflm"] == "wrong: predicts NaN or infinity"


def test_float16_and_dynamic_int8_fail_to_load_in_tflm(blocks):
    for name in ("float16", "dynamic_int8"):
        assert blocks[name].runtimes["tflm"].startswith(
            "failed: TFLM failed to allocate tensors"), name


def test_unstructured_sparse_int8_runs_only_on_litert_builtin_kernels(unstructured):
    """XNNPACK refuses its DENSIFY-fed node, TFLM has no DENSIFY op."""
    sparse = unstructured["sparse_int8"]
    assert sparse.runtimes["litert"].startswith("failed: RuntimeError: failed to delegate")
    assert sparse.runtimes["litert_builtin"] == "matched"
    assert sparse.runtimes["tflm"] == ("failed: TFLM failed to allocate tensors: Failed to "
                                       "get registration from op code DENSIFY")
    assert unstructured["int8"].runtimes["tflm"] == "matched"


def test_a_variant_that_computes_wrongly_in_litert_is_never_chosen():
    good = Candidate("float32", "none", bytes=100, val_mse=1.0,
                     runtimes={"litert": "matched"})
    wrong = Candidate("sparse_float32", "none", bytes=50, val_mse=1.0,
                      runtimes={"litert": "wrong: differs from the reference by up to 2"})
    assert choice.choose([good, wrong], reference_mse=1.0) is good
    assert not wrong.within_tolerance


def test_model_data_cc_is_not_written_for_an_int8_model_wrong_in_tflm(tmp_path, blocks):
    int8 = blocks["int8"]
    wrong = Candidate("int8", "int8", within_tolerance=True, content=int8.content,
                      runtimes={**int8.runtimes, "tflm": "wrong: differs by 3"})
    rows = np.zeros((3, INPUTS), np.float32)
    assert export._write_micro(wrong, str(tmp_path), rows) is None
    assert list(tmp_path.iterdir()) == []
    right = dataclasses.replace(int8, within_tolerance=True)
    assert export._write_micro(right, str(tmp_path), rows)["variant"] == "int8"


def test_model_data_cc_is_not_written_over_the_flash_or_ram_budget(tmp_path, blocks):
    """`export --max-flash 1200` shipped a 1128-byte float32 model.tflite and wrote the
    1248-byte int8 model_data.cc anyway; likewise an arena over --max-ram."""
    int8 = dataclasses.replace(blocks["int8"], within_tolerance=True)
    rows = np.random.default_rng(7).normal(size=(4, INPUTS)).astype(np.float32)
    assert export._write_micro(int8, str(tmp_path), rows, max_flash=int8.bytes - 1) is None
    assert list(tmp_path.iterdir()) == []
    found = [dataclasses.replace(blocks["float32"], arena_bytes=160),
             dataclasses.replace(blocks["int8"])]
    options = {"max_mse_increase": 1.0, "size_metric": "bytes", "quantization": "auto",
               "max_bytes": None, "device": "phone", "max_flash": None, "max_ram": 200}
    written = export._write_tflite(found, str(tmp_path),
                                   {"export_options": options, "val_mse": 1e9}, rows)
    assert written["tflite"]["variant"] == "float32" and found[1].within_tolerance
    assert written["micro"] is None  # Its arena is over 200 bytes.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.tflite"]
    options["max_ram"] = None
    written = export._write_tflite(found, str(tmp_path),
                                   {"export_options": options, "val_mse": 1e9}, rows)
    assert written["micro"]["arena"]["bytes"] > 200


def test_runtimes_line_lists_every_variant_in_every_runtime(blocks):
    rows = [candidate.summary() for candidate in blocks.values()]
    line = choice.runtimes_line(rows)
    assert line.startswith("Computes as on LiteRT's built-in kernels (LiteRT XNNPack, "
                           "LiteRT built-in, TFLM): float32 yes/yes/yes; ")
    assert "sparse_int8 " in line and "float16 yes/yes/fails" in line


def test_the_tiny_search_reports_its_runtimes(tiny_search):
    for row in tiny_search["manifest"]["candidates"]:
        assert set(row["runtimes"]) == set(choice.RUNTIMES), row["name"]
    if tiny_search["manifest"]["micro"]:
        int8 = next(r for r in tiny_search["manifest"]["candidates"] if r["name"] == "int8")
        assert int8["runtimes"]["tflm"] == "matched"
    assert "  Computes as on LiteRT's built-in kernels" in tiny_search["result"].stdout


def test_arena_is_the_smallest_that_works_plus_the_stated_margin(tmp_path, blocks):
    """Bisection in child processes: a slightly smaller arena fails or crashes TFLM."""
    content = blocks["int8"].content
    x = np.random.default_rng(6).normal(size=(5, INPUTS)).astype(np.float32)
    entry = export._write_micro(dataclasses.replace(blocks["int8"], within_tolerance=True,
                                                    tflm_predictions=None),
                                str(tmp_path), x)
    arena = entry["arena"]
    smallest = arena["smallest_bytes"]
    assert arena["bytes"] == tflm.arena_with_margin(smallest) <= 1.25 * smallest
    assert arena["margin"] == tflm.ARENA_MARGIN and arena["bytes"] % 16 == 0
    results = tflm.run({"reported": content, "smallest": content}, x, arena_bytes=smallest)
    assert results["smallest"][1] is None
    assert tflm.run({"m": content}, x, arena_bytes=arena["bytes"])["m"][1] is None
    too_small = tflm.run({"m": content}, x, arena_bytes=smallest - tflm.ARENA_STEP)["m"]
    assert too_small[0] is None, too_small
    header = (tmp_path / "model_data.h").read_text()
    assert f"constexpr int kTensorArenaSize = {arena['bytes']};" in header


def test_microcontroller_device_chooses_only_what_computes_right_in_tflm():
    small_wrong = Candidate("sparse_int8", "int8", bytes=50, val_mse=1.0,
                            runtimes={"litert": "matched", "tflm": "wrong: differs by 9"})
    small_phone = Candidate("float16", "float16", bytes=60, val_mse=1.0,
                            runtimes={"litert": "matched", "tflm": "failed: DEQUANTIZE"})
    micro = Candidate("int8", "int8", bytes=100, val_mse=1.0,
                      runtimes={"litert": "matched", "tflm": "matched"})
    assert choice.choose([small_wrong, small_phone, micro], 1.0) is small_wrong
    assert choice.choose([small_wrong, small_phone, micro], 1.0,
                         device="microcontroller") is micro
    with pytest.raises(choice.NoCandidateError, match="computing in TFLM as in LiteRT"):
        choice.choose([small_wrong, small_phone], 1.0, device="microcontroller")


def test_export_with_device_microcontroller(tiny_search, tmp_path):
    from conftest import run_main

    result = run_main("export", "--directory", tiny_search["logs"], "--export-dir",
                      tmp_path / "export", "--device", "microcontroller")
    assert result.returncode == 0, result.stderr[-3000:]
    manifest = json.loads((tmp_path / "export" / "manifest.json").read_text())
    assert manifest["export_options"]["device"] == "microcontroller"
    chosen = next(row for row in manifest["candidates"] if row["chosen"])
    assert chosen["runtimes"]["tflm"] in ("matched", "reference")
    refused = run_main("export", "--directory", tiny_search["logs"], "--export-dir",
                       tmp_path / "other", "--device", "watch")
    assert refused.returncode == 2
    assert "Expected --device among phone, microcontroller, received 'watch'" in refused.stderr


def test_no_variant_for_the_device_or_budget_says_why_each_was_left_out():
    """`export --device microcontroller --quantization float16` said 'received none'."""
    phone = Candidate("float16", "float16", bytes=60, val_mse=1.0,
                      runtimes={"litert": "matched", "tflm": "failed: DEQUANTIZE"})
    with pytest.raises(choice.NoCandidateError, match=r"received float16: TFLM failed: "
                       r"DEQUANTIZE$"):
        choice.choose([phone], 1.0, device="microcontroller")
    big = Candidate("int8", "int8", bytes=900, val_mse=1.0, arena_bytes=700,
                    runtimes={"litert": "matched", "tflm": "matched"})
    with pytest.raises(choice.NoCandidateError, match=r"received float16: 60 bytes, over "
                       r"--max-flash 50; int8: 900 bytes, over --max-flash 50$"):
        choice.choose([phone, big], 1.0, max_flash=50)
    with pytest.raises(choice.NoCandidateError, match=r"received float16: no TFLM arena "
                       r"measured \(it does not run in TFLM\); int8: a TFLM arena of 700 "
                       r"bytes, over --max-ram 600$"):
        choice.choose([phone, big], 1.0, max_ram=600)


def test_flash_and_ram_budgets_bound_the_choice():
    big = Candidate("float32", "none", bytes=900, val_mse=1.0, arena_bytes=400,
                    runtimes={"litert": "matched", "tflm": "matched"})
    small = Candidate("int8", "int8", bytes=300, val_mse=1.0, arena_bytes=700,
                      runtimes={"litert": "matched", "tflm": "matched"})
    phone_only = Candidate("float16", "float16", bytes=200, val_mse=1.0,
                           runtimes={"litert": "matched", "tflm": "failed: DEQUANTIZE"})
    found = [big, small, phone_only]
    assert choice.choose(found, 1.0, max_flash=500) is phone_only
    assert choice.choose(found, 1.0, max_ram=800) is small  # No arena: no RAM known.
    assert choice.choose(found, 1.0, max_ram=500) is big
    with pytest.raises(choice.NoCandidateError, match="at most 500 bytes of flash, a TFLM "
                       "arena of at most 500 bytes"):
        choice.choose(found, 1.0, max_flash=500, max_ram=500)


def test_no_trial_within_a_ram_budget_names_the_smallest_arena_not_a_file():
    """`export --max-ram 1000` said 'the smallest is 4232 bytes (trial 0,
    dynamic_int8)': a file's bytes, of a variant TFLM does not run."""
    from tuner_prune.tuning import best

    def found():
        return [Candidate("float32", "none", bytes=900, arena_bytes=1400, within_tolerance=True,
                          runtimes={"litert": "matched", "tflm": "matched"}),
                Candidate("dynamic_int8", "dynamic", bytes=400, within_tolerance=True,
                          runtimes={"litert": "matched", "tflm": "failed: hybrid"})]

    smallest = {}
    best._keep_smallest(smallest, found(), "3", "phone")
    message = best._over_budget({"max_ram": 1000}, "auto", 2, smallest)
    assert message.endswith("received none among 2 completed trials: the smallest TFLM "
                            "arena is 1400 bytes (trial 3, float32)"), message
    message = best._over_budget({"max_bytes": 300, "max_ram": 1000}, "auto", 2, smallest)
    assert message.endswith(": the smallest is 400 bytes (trial 3, dynamic_int8); the "
                            "smallest TFLM arena is 1400 bytes (trial 3, float32)"), message
    on_device = {}  # What a microcontroller takes: what runs in TFLM.
    best._keep_smallest(on_device, found(), "3", "microcontroller")
    assert best._over_budget({"max_flash": 300}, "auto", 2, on_device).endswith(
        ": the smallest is 900 bytes (trial 3, float32)")
    assert best._over_budget({"max_ram": 9}, "auto", 2, {}).endswith(
        ": none within the MSE tolerance")


def test_arenas_are_measured_for_what_runs_in_tflm(blocks):
    x = np.random.default_rng(7).normal(size=(4, INPUTS)).astype(np.float32)
    found = [dataclasses.replace(blocks[name], runtimes={}, arena_bytes=None,
                                 val_predictions=tflite.predict(blocks[name].content, x))
             for name in ("int8", "float16")]
    runtimes.verify(found, x, arenas=True)
    int8, float16 = found
    assert int8.arena_bytes == tflm.arena_with_margin(tflm.smallest_arena(int8.content, x))
    assert float16.arena_bytes is None


@pytest.mark.parametrize("name", ["max_flash", "max_ram"])
def test_budgets_below_one_byte_are_refused(name):
    from tuner_prune.settings.config import SearchConfig
    from tuner_prune.core.errors import InputError

    flag = "--" + name.replace("_", "-")
    with pytest.raises(InputError, match=f"Expected {flag} >= 1, received 0."):
        SearchConfig(**{name: 0})


def test_an_int8_variant_predicting_one_value_is_never_shipped_nor_written_for_tflm(
        tmp_path):
    """Features of raw magnitudes 1 and 100: int8 rounds the large one's small
    weight to 0 and reads the 0/1 one as its zero point, so it predicts its bias
    for every row; an undertrained Keras model is no better, so its MSE passed."""
    model = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])
    model.layers[0].set_weights([np.array([[1000.0], [0.01]]), np.array([5000.0])])
    served = serving.scaled_model(model, np.ones(2), 1.0)
    folder = tmp_path / "saved_model"
    with contextlib.redirect_stdout(io.StringIO()):
        served.export(str(folder))
    rng = np.random.default_rng(0)
    x = np.stack([np.zeros(40), rng.uniform(0, 100, 40)], axis=1).astype(np.float32)
    expected = served.predict(x, verbose=0).reshape(-1)
    y = expected + rng.normal(0, 30, 40)
    variants = [v for v in tflite.VARIANTS if v.name in ("float32", "int8")]
    found = {c.name: c for c in tflite.candidates(str(folder), (x, y), None, x, variants)}
    runtimes.verify(list(found.values()), x)
    int8 = found["int8"]
    assert int8.loaded and int8.val_mse is None
    assert int8.error.startswith("loads and runs, but predicts 500")
    assert int8.error.endswith(" for every row (the float32 variant's predictions vary)")
    assert choice.choose(list(found.values()), float(np.mean((expected - y) ** 2)),
                         quantization="auto").name == "float32"
    assert not int8.within_tolerance
    (tmp_path / "micro").mkdir()
    assert export._write_micro(int8, str(tmp_path / "micro"), x) is None
    assert list((tmp_path / "micro").iterdir()) == []


def test_an_int8_model_whose_scale_overflows_float32_is_refused_not_run(tmp_path):
    """A target near 3.4e38: the converter wrote an output scale of inf, and LiteRT's
    allocate_tensors killed the export with a segmentation fault after the search."""
    model = keras.Sequential([keras.Input(shape=(3,)), keras.layers.Dense(1)])
    model.layers[0].set_weights([np.array([[0.9], [0.0], [-0.9]]), np.zeros(1)])
    served = serving.scaled_model(model, np.ones(3), 3e38)  # Predicts -2.7e38 to 2.7e38.
    folder = tmp_path / "saved_model"
    with contextlib.redirect_stdout(io.StringIO()):
        served.export(str(folder))
    x = np.random.default_rng(0).uniform(0, 1, (20, 3)).astype(np.float32)
    y = served.predict(x, verbose=0).reshape(-1).astype(np.float64)
    variants = [v for v in tflite.VARIANTS if v.name == "int8"]
    (int8,) = tflite.candidates(str(folder), (x, y), None, x, variants)
    assert int8.error.startswith("conversion failed: the quantization scale of tensor ")
    assert int8.error.endswith(" is inf (its range is beyond float32's)"), int8.error
    assert not int8.loaded and int8.content is None
