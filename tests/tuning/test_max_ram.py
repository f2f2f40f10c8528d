"""`--max-ram` bounds the search: each trial's TFLM tensor arena is measured and scored."""

import contextlib
import io
import json
import tempfile

import numpy as np
import pytest

from conftest import TINY, run_main
from tuner_prune.core import metrics as sizes
from tuner_prune.export import tflm
from tuner_prune.settings import stored_search
from tuner_prune.store import records
from tuner_prune.settings.config import SearchConfig
from tuner_prune.core.errors import InputError

BUDGET = 2000  # Between the arenas of the tiny search's first two trials (1328, 2688).
# The second trial is the largest model of the space: two hidden layers of 128.
WIDEST = ["--hp", "units=8:128"]


def test_search_scores_a_trial_over_max_ram_and_ships_one_within(tmp_path):
    """Before, `search --max-ram` scored trials by their MSE alone: trial 1, the most
    accurate, was the best trial of the search though its TFLM arena was over."""
    logs, export = tmp_path / "logs", tmp_path / "export"
    result = run_main("search", *TINY, *WIDEST, "--max-trials", "2", "--max-ram", BUDGET,
                      "--ship", "trial", "--directory", logs, "--export-dir", export)
    assert result.returncode == 0, result.stderr[-3000:]
    rows = {r["trial_id"]: json.loads((logs / "search" / f"trial_{r['trial_id']}" /
                                       "record.json").read_text())
            for r in records.read_trials(str(logs))}
    over = [r for r in rows.values() if r["arena_bytes"] > BUDGET]
    within = [r for r in rows.values() if r["arena_bytes"] <= BUDGET]
    assert len(over) == len(within) == 1
    over, within = over[0], within[0]
    assert over["val_mse"] < within["val_mse"]  # By MSE alone, the one over would win.
    assert over["within_budget"] is False and within["within_budget"] is True
    assert over["score"] == pytest.approx(sizes.budget_score(
        over["val_mse"], over["tflite_bytes"], arena_bytes=over["arena_bytes"],
        max_ram=BUDGET)) and over["score"] > over["val_mse"]
    assert within["score"] == within["val_mse"]
    assert (f"TFLM arena {over['arena_bytes']} bytes > --max-ram {BUDGET})"
            in result.stdout)
    marked = run_main("report", "--directory", logs, "--format", "json")
    assert json.loads(marked.stdout)["best"] == within["trial_id"]
    assert json.loads(marked.stdout)["max_ram"] == BUDGET
    table = run_main("report", "--directory", logs, "--max-ram", "100000").stdout
    assert "within --max-ram 100000" in table and "arena" in table.splitlines()[0]
    # The trial's arena is the one the export measures for the same variant.
    manifest = json.loads((export / "manifest.json").read_text())
    assert manifest["trial_id"] == within["trial_id"]
    arenas = {c["name"]: c["arena_bytes"] for c in manifest["candidates"]}
    assert arenas[within["arena_variant"]] == within["arena_bytes"]
    assert within["arena_bytes"] == min(arenas[name] for name in sizes.RAM_VARIANTS["auto"])
    # Under --ship best, the baseline is compared with (and ships in the place of)
    # the best trial within the budget, not the one over it that cannot ship.
    best = run_main("export", "--directory", logs, "--export-dir", tmp_path / "best",
                    "--ship", "best")
    assert best.returncode == 0, best.stderr[-3000:]
    shipped = json.loads((tmp_path / "best" / "manifest.json").read_text())
    assert shipped["trial_id"] == within["trial_id"]
    assert best.stdout.startswith(f"Best trial {within['trial_id']}: ")


def test_the_smallest_arena_is_measured_and_a_model_tflm_cannot_run_is_named():
    """SMALLEST_ARENA, below which --max-ram is refused, is what the smallest model
    (one Dense unit on one input) needs in TFLM, with the margin an export adds."""
    from tuner_prune.export import tflite
    from tuner_prune.core._keras import keras

    model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
    x = np.linspace(-1, 1, 20, dtype=np.float32).reshape(-1, 1)
    with contextlib.ExitStack() as stack:
        folder = stack.enter_context(tempfile.TemporaryDirectory())
        stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
        model.export(folder)
        contents = {v.name: tflite.convert(folder, v, x) for v in tflite.VARIANTS
                    if v.name in ("float32", "int8", "float16")}
    arena, name = tflm.smallest_of({n: contents[n] for n in ("float32", "int8")}, x)
    assert (arena, name) == (tflm.SMALLEST_ARENA, "float32")
    with pytest.raises(RuntimeError, match=r"^Expected a model that runs in TFLM, whose "
                       r"tensor arena --max-ram bounds, received float16: "):
        tflm.smallest_of({"float16": contents["float16"]}, x)


def test_max_ram_below_any_arena_or_with_a_variant_tflm_cannot_run_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"^Expected --max-ram >= 1, received 0\.$"):
        SearchConfig(max_ram=0)
    with pytest.raises(InputError, match=rf"^Expected --max-ram >= {tflm.SMALLEST_ARENA} "
                       rf"\(the smallest TFLM tensor arena a model needs\), received "
                       rf"{tflm.SMALLEST_ARENA - 1}\.$"):
        SearchConfig(max_ram=tflm.SMALLEST_ARENA - 1)
    for quantization in ("float16", "dynamic"):
        with pytest.raises(InputError, match=rf"^Expected --quantization among auto, none, "
                           rf"int8 with --max-ram .*, received '{quantization}'\.$"):
            SearchConfig(max_ram=5000, quantization=quantization)
    result = run_main("search", "--max-ram", "-5", "--directory", tmp_path / "logs")
    assert result.returncode == 2 and not (tmp_path / "logs").exists()
    assert result.stderr.strip().splitlines() == [
        "tuner_prune: error: Expected --max-ram >= 1, received -5."]


def test_a_search_resumes_only_with_its_own_ram_budget_and_measured_variants(tmp_path):
    data = {"rows": [240, 30, 30], "features": 20, "columns": None, "sha256": "0" * 64}
    folders = dict(directory=str(tmp_path / "logs"), export_dir=str(tmp_path / "export"))
    tiny = dict(n_samples=300, n_features=20, n_informative=10, epochs=6, batch_size=32,
                seed=1)
    stored_search.store(SearchConfig(**tiny, **folders, max_ram=5000), data)
    stored = stored_search.load_stored(folders["directory"])
    wider = SearchConfig(**tiny, **folders, max_ram=9000)
    assert stored_search.differences(stored, wider, data) == [
        "--max-ram 9000 (the search has 5000)"]
    assert stored_search.differences(stored, wider, data, reading=True) == []
    int8 = SearchConfig(**tiny, **folders, max_ram=5000, quantization="int8")
    assert stored_search.differences(stored, int8, data) == [
        "--quantization int8 (the search has auto)"]
    del stored["config"]["max_ram"]  # As an earlier tuner_prune stored it.
    assert stored_search.differences(stored, SearchConfig(**tiny, **folders), data) == []


def test_budget_score_and_best_trial_count_the_arena():
    assert sizes.budget_score(0.1, 500, None, 4000, 4000) == 0.1
    assert sizes.budget_score(0.1, 500, None, 8000, 4000) == pytest.approx(0.1 * 10 * 2)
    # Over both budgets: the larger overshoot counts.
    assert sizes.budget_score(0.1, 1500, 500, 8000, 4000) == pytest.approx(0.1 * 10 * 3)
    rows = [{"trial_id": i, "status": records.COMPLETED, "val_mse": mse, "tflite_bytes": 900,
             "arena_bytes": arena} for i, mse, arena in (("0", 0.1, 5000), ("1", 0.2, 3000),
                                                         ("2", 0.05, None))]
    assert records.best_trial_id(rows) == "2"
    assert records.best_trial_id(rows, max_ram=4000) == "1"
    assert records.best_trial_id(rows, max_bytes=800, max_ram=4000) is None
