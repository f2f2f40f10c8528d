"""report, the Pareto front and the size budget, on the shared tiny search."""

import json
import os

import numpy as np
import pytest

from conftest import run_main
from tuner_prune.core import metrics as sizes
from tuner_prune.reporting.report import best_trial_id, pareto_flags


def report_json(tiny_search):
    result = run_main("report", "--directory", str(tiny_search["logs"]), "--format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def test_every_trial_records_its_size(tiny_search):
    rows = report_json(tiny_search)["trials"]
    assert len(rows) == 3
    for row in rows:
        assert row["status"] == "COMPLETED"
        assert row["tflite_bytes"] > 0 and row["nonzero_weights"] > 0
        # A linear model of the 20 tiny inputs prunes in steps of 1 / 20.
        step = 0.05 if row["hidden_layers"] == 0 else 0.01
        assert abs(row["sparsity"] - row["final_sparsity"]) <= step
        assert row["kernel_initializer"] in ("glorot_uniform", "he_normal")
        assert 5e-4 <= row["learning_rate"] <= 3e-2
    assert [r["val_mse"] for r in rows] == sorted(r["val_mse"] for r in rows)


def test_pareto_flags_match_a_recomputation(tiny_search):
    report = report_json(tiny_search)
    rows = report["trials"]
    for row in rows:
        dominated = any(
            other is not row and other["tflite_bytes"] <= row["tflite_bytes"]
            and other["val_mse"] <= row["val_mse"]
            and (other["tflite_bytes"], other["val_mse"]) != (row["tflite_bytes"],
                                                             row["val_mse"])
            for other in rows)
        assert row["pareto"] is (not dominated)
    assert report["best"] == min(rows, key=lambda r: r["val_mse"])["trial_id"]


def test_pareto_flags_on_constructed_rows():
    def row(trial_id, size, mse, status="COMPLETED"):
        return {"trial_id": trial_id, "status": status, "tflite_bytes": size, "val_mse": mse}

    rows = [row("a", 100, 0.5), row("b", 200, 0.2), row("c", 300, 0.3),
            row("d", 100, 0.5), row("e", 50, 0.9), row("f", None, None, "FAILED")]
    assert pareto_flags(rows) == [True, True, False, True, True, False]
    assert best_trial_id(rows) == "b"
    assert best_trial_id(rows, max_bytes=150) in ("a", "d")
    assert best_trial_id(rows, max_bytes=10) is None


def test_table_csv_and_plot(tiny_search, tmp_path):
    plot = tmp_path / "front.png"
    table = run_main("report", "--directory", str(tiny_search["logs"]), "--plot", str(plot))
    assert table.returncode == 0, table.stderr[-2000:]
    assert "Pareto" in table.stdout and table.stdout.count("COMPLETED") == 3
    assert table.stdout.split()[:11] == ["trial", "status", "final_sp", "power", "begin",
                                         "end", "layers", "units", "initializer", "lr",
                                         "val_mse"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    csv_text = run_main("report", "--directory", str(tiny_search["logs"]),
                        "--format", "csv").stdout
    assert csv_text.splitlines()[0].startswith("trial_id,status,final_sparsity")
    assert csv_text.splitlines()[0].endswith(
        ",hidden_layers,units,kernel_initializer,learning_rate,pareto")
    assert len(csv_text.splitlines()) == 4


def test_export_max_bytes_ships_the_best_trial_whose_shipped_file_fits(tiny_search, tmp_path):
    # --max-bytes is compared with the file export would ship under its options
    # (here int8), not the sparse_float32 size each trial recorded, which the
    # report, reading records only, compares.
    rows = report_json(tiny_search)["trials"]
    sizes_sorted = sorted(r["tflite_bytes"] for r in rows)
    budget = (sizes_sorted[0] + sizes_sorted[-1]) // 2
    recorded_best = min((r for r in rows if r["tflite_bytes"] <= budget),
                        key=lambda r: r["val_mse"])
    best = tiny_search["manifest"]  # The most accurate trial's variants, measured.
    int8 = min(row["bytes"] for row in best["candidates"]
               if row["within_tolerance"] and row["quantization"] == "int8")
    best_row, = [r for r in rows if r["trial_id"] == best["trial_id"]]
    assert int8 <= budget < best_row["tflite_bytes"]  # Fits only by its shipped file.
    result = run_main("export", "--directory", str(tiny_search["logs"]), "--export-dir",
                      str(tmp_path / "budget"), "--max-bytes", str(budget),
                      "--quantization", "int8")
    assert result.returncode == 0, result.stderr[-2000:]
    manifest = json.loads((tmp_path / "budget" / "manifest.json").read_text())
    assert manifest["trial_id"] == best["trial_id"] != recorded_best["trial_id"]
    assert manifest["tflite"]["variant"] == "int8" and manifest["tflite"]["bytes"] <= budget
    marked = run_main("report", "--directory", str(tiny_search["logs"]), "--format", "json",
                      "--max-bytes", str(budget))
    assert json.loads(marked.stdout)["best"] == recorded_best["trial_id"]


def test_report_marks_the_best_within_the_budget(tmp_path):
    from tuner_prune.reporting.report import as_table

    def row(trial_id, val_mse, size):
        return {"trial_id": trial_id, "status": "COMPLETED", "final_sparsity": 0.5,
                "power": 1.0, "begin_step": 0, "end_step": 8, "val_mse": val_mse,
                "score": val_mse, "sparsity": 0.5, "nonzero_weights": 10,
                "tflite_bytes": size, "pareto": True}

    rows = [row("0", 0.125, 900), row("1", 0.25, 400)]
    marks = {line.split()[1]: line.split()[0] for line in
             as_table(rows, max_bytes=500).splitlines()[1:3]}
    assert marks == {"0": "P", "1": "*P"}
    assert "lowest validation MSE within --max-bytes 500" in as_table(rows, max_bytes=500)
    assert as_table(rows).splitlines()[1].split()[:2] == ["*P", "0"]


def test_report_refuses_a_budget_below_one_byte(tiny_search):
    result = run_main("report", "--directory", str(tiny_search["logs"]), "--max-bytes", "0")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        "tuner_prune: error: Expected --max-bytes >= 1, received 0.")


def test_budget_score_penalises_only_over_budget():
    assert sizes.budget_score(0.1, 500, None) == 0.1
    assert sizes.budget_score(0.1, 500, 500) == 0.1
    over = [sizes.budget_score(0.1, size, 500) for size in (600, 1000, 5000)]
    assert over == sorted(over) and over[0] > 0.1 * sizes.OVER_BUDGET_FACTOR


def logged_scalars(folder):
    """``{tag: [values]}`` of the TF2 scalar summaries in one TensorBoard run."""
    import tensorflow as tf
    from tensorboard.backend.event_processing import event_accumulator

    events = event_accumulator.EventAccumulator(str(folder), size_guidance={"tensors": 0})
    events.Reload()
    return {tag: [float(tf.make_ndarray(event.tensor_proto)) for event in events.Tensors(tag)]
            for tag in events.Tags()["tensors"]
            if events.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"}


def test_search_budget_makes_oversized_trials_lose(tmp_path, capsys):
    from conftest import data, small_model
    from tuner_prune.tuning.hypermodel import PruningHyperModel
    from tuner_prune.tuning.tuner import PruningTuner

    hypermodel = PruningHyperModel(small_model, n_features=6, epochs=4, steps_per_epoch=6)
    tuner = PruningTuner(hypermodel, max_trials=1, directory=str(tmp_path),
                         verbose=True, max_bytes=100)
    x, y = data()
    x_val, y_val = data(24, 1)
    tuner.search(x, y, validation_data=(x_val, y_val), batch_size=16)
    trial = tuner.oracle.get_trial("0")
    record = json.loads((tmp_path / "search" / "trial_0" / "record.json").read_text())
    assert record["within_budget"] is False and record["tflite_bytes"] > 100
    assert trial.score == pytest.approx(
        sizes.budget_score(record["val_mse"], record["tflite_bytes"], 100))
    assert np.isfinite(trial.score) and trial.score > record["val_mse"]
    assert record["score"] == pytest.approx(trial.score)
    # val_mse is the true MSE of the stored weights, wherever it is shown; the
    # tuner scaled the data, get_best_models' model takes them raw.
    prediction = tuner.get_best_models(1)[0].predict(x_val, verbose=0).reshape(-1)
    assert record["val_mse"] == pytest.approx(float(np.mean((prediction - y_val) ** 2)),
                                              rel=1e-4)
    assert trial.metrics.get_last_value("val_mse") == pytest.approx(record["val_mse"])
    line = capsys.readouterr().out.splitlines()[-1]
    assert line == (f"  score {trial.score:.6g} (val_mse {record['val_mse']:.6g}, "
                    f"{record['tflite_bytes']} bytes > --max-bytes 100) | best so far: "
                    f"trial 0, score {trial.score:.6g} (val_mse {record['val_mse']:.6g}, "
                    f"{record['tflite_bytes']} bytes > --max-bytes 100)")
    session = logged_scalars(tmp_path / "tensorboard" / "search" / "trial_0")
    assert session["hparams/score"] == [pytest.approx(trial.score)]
    assert session["hparams/val_mse"] == [pytest.approx(record["val_mse"])]
    progress = logged_scalars(tmp_path / "tensorboard" / "search" / "search")
    baseline = tuner.baseline["val_mse"]  # The tuner's search fits it: logged at start and end.
    assert progress == {"best_score": [pytest.approx(trial.score)],
                        "baseline_val_mse": [pytest.approx(baseline)] * 2}


def test_report_shows_the_score_only_where_a_budget_penalised_it(tmp_path):
    from tuner_prune.reporting.report import as_table

    def row(trial_id, val_mse, score):
        return {"trial_id": trial_id, "status": "COMPLETED", "final_sparsity": 0.5,
                "power": 1.0, "begin_step": 0, "end_step": 8, "val_mse": val_mse,
                "score": score, "sparsity": 0.5, "nonzero_weights": 10,
                "tflite_bytes": 500, "pareto": True}

    plain = as_table([row("0", 0.25, 0.25)])
    assert "score" not in plain and "0.25" in plain
    budget = as_table([row("0", 0.25, 0.25), row("1", 0.125, 2.5)])
    header = budget.splitlines()[0].split()
    assert header[header.index("val_mse") + 1] == "score"
    assert budget.splitlines()[2].split()[-5:-3] == ["0.125", "2.5"]


@pytest.mark.parametrize("where", ["nodir/p.png", "folder"])
def test_a_plot_that_cannot_be_written_is_refused_before_the_report(tiny_search, tmp_path,
                                                                    capsys, where):
    from tuner_prune import cli

    (tmp_path / "folder").mkdir()
    status = cli.main(["report", "--directory", str(tiny_search["logs"]), "--plot",
                       str(tmp_path / where), "--verbose"])
    out, err = capsys.readouterr()
    assert (status, out) == (2, "")
    assert err.startswith(f"tuner_prune: error: --plot {tmp_path / where}: Expected a ")
    assert err.count("\n") == 1 and sorted(os.listdir(tmp_path)) == ["folder"]


def test_every_trial_records_its_macs_as_the_sparse_c_counts_them(tiny_search):
    # 20 inputs, two hidden layers of TINY_UNITS, one output: every weight of
    # the pruned kernels is one multiply-add per row computed dense; the
    # nonzero ones are the sparse C's work.
    from conftest import TINY_UNITS

    rows = report_json(tiny_search)["trials"]
    dense = 20 * TINY_UNITS + TINY_UNITS * TINY_UNITS + TINY_UNITS
    for row in rows:
        assert row["dense_macs"] == dense
        assert abs(row["macs"] - dense * (1 - row["sparsity"])) < 0.5
    manifest = tiny_search["manifest"]
    exported, = [r for r in rows if r["trial_id"] == manifest["trial_id"]]
    assert exported["macs"] == manifest["c"]["macs"]
    assert exported["dense_macs"] == manifest["macs_per_inference"]["dense"]
    table = run_main("report", "--directory", str(tiny_search["logs"])).stdout
    header = table.splitlines()[0].split()
    assert header[-3:] == ["tflite_bytes", "macs", "dense_macs"]
    assert "macs: multiply-adds per row of the pruned kernels' nonzero weights" in table


def test_report_shows_the_exports_flash_ram_macs_and_runtimes(tiny_search, tmp_path):
    manifest = tiny_search["manifest"]
    result = run_main("report", "--directory", str(tiny_search["logs"]), "--format", "json",
                      "--export-dir", str(tiny_search["export"]))
    assert result.returncode == 0, result.stderr[-2000:]
    export = json.loads(result.stdout)["export"]
    assert export["trial_id"] == manifest["trial_id"] and export["shipped"] == "trial"
    files = {row["file"]: row for row in export["artifacts"]}
    assert list(files) == ["model.tflite", "model_data.cc", "model.c"]
    tflite = files["model.tflite"]
    assert (tflite["variant"], tflite["flash_bytes"], tflite["macs"]) == (
        manifest["tflite"]["variant"], manifest["tflite"]["bytes"],
        manifest["macs_per_inference"]["dense"])
    assert "LiteRT XNNPack" in tflite["runtimes"]
    micro = files["model_data.cc"]
    assert (micro["flash_bytes"], micro["ram_bytes"], micro["runtimes"]) == (
        manifest["micro"]["bytes"], manifest["micro"]["arena"]["bytes"], ["TFLM"])
    c = files["model.c"]
    assert (c["flash_bytes"], c["ram_bytes"], c["macs"], c["val_mse"]) == (
        manifest["c"]["flash_bytes"], manifest["c"]["ram_bytes"], manifest["c"]["macs"],
        manifest["c"]["val_mse"])
    assert export["runtimes"] == {row["name"]: row["runtimes"]
                                  for row in manifest["candidates"]}
    # The table, from the CLI's default --export-dir (export, in the working folder).
    table = run_main("report", "--directory", str(tiny_search["logs"]),
                     cwd=tiny_search["root"]).stdout
    marks = {line.split()[1]: line.split()[0] for line in table.splitlines()[1:4]}
    assert marks[manifest["trial_id"]].endswith("E")
    c_line, = [line.split() for line in table.splitlines()
               if line.startswith("  model.c ")]
    assert c_line[:6] == ["model.c", manifest["c"]["value_type"], "weights",
                          str(c["flash_bytes"]), str(c["ram_bytes"]), str(c["macs"])]
    assert "Computes as on LiteRT's built-in kernels" in table
    # Without an export there, the report is the trials' only.
    alone = run_main("report", "--directory", str(tiny_search["logs"]), cwd=tmp_path).stdout
    assert "Export in" not in alone and "E exported" not in alone


def test_report_plots_the_exported_files_at_their_flash(tiny_search, tmp_path):
    from tuner_prune.reporting import report

    rows = report.load_trials(str(tiny_search["logs"]))
    manifest = report.load_export(str(tiny_search["export"]), rows, explicit=True)
    labels = report.plot(rows, str(tmp_path / "p.png"),
                         export=report.export_summary(manifest, "export"))
    assert [label for label in labels if label.startswith("exported")] == [
        f"exported model.tflite ({manifest['tflite']['variant']})",
        "exported model_data.cc (int8)",
        f"exported model.c ({manifest['c']['value_type']} weights)"]


def test_report_refuses_an_export_dir_without_this_searchs_export(tiny_search, tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_main("report", "--directory", str(tiny_search["logs"]), "--export-dir",
                      str(tmp_path / "empty"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"tuner_prune: error: --export-dir {tmp_path / 'empty'}: Expected an export (its "
        f"manifest.json), received a folder without one.")
    other = tmp_path / "other"
    other.mkdir()
    manifest = {**tiny_search["manifest"], "best_hyperparameters": {"units": 3}}
    (other / "manifest.json").write_text(json.dumps(manifest))
    result = run_main("report", "--directory", str(tiny_search["logs"]), "--export-dir",
                      str(other))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"tuner_prune: error: --export-dir {other}: Expected the export of a trial of this "
        f"search, received trial {manifest['trial_id']}'s with other hyperparameters.")
    # The default folder, another search's, is left out of the report.
    (tmp_path / "export").mkdir()
    (tmp_path / "export" / "manifest.json").write_text(json.dumps(manifest))
    quiet = run_main("report", "--directory", str(tiny_search["logs"]), cwd=tmp_path)
    assert quiet.returncode == 0 and "Export in" not in quiet.stdout


def test_trial_budget_is_the_tighter_of_max_bytes_and_max_flash():
    assert sizes.trial_budget() is None
    assert sizes.trial_budget(max_flash=900) == (900, "--max-flash")
    assert sizes.trial_budget(500, 900) == (500, "--max-bytes")
    assert sizes.trial_budget(900, 500) == (500, "--max-flash")
    assert sizes.trial_budget(500, 500) == (500, "--max-bytes")


def test_search_flash_budget_makes_oversized_trials_lose(tmp_path, capsys):
    # A .tflite's flash is its bytes: --max-flash scores a trial as --max-bytes does.
    from conftest import data, small_model
    from tuner_prune.tuning.hypermodel import PruningHyperModel
    from tuner_prune.tuning.tuner import PruningTuner

    hypermodel = PruningHyperModel(small_model, n_features=6, epochs=2, steps_per_epoch=6)
    tuner = PruningTuner(hypermodel, max_trials=1, directory=str(tmp_path),
                         verbose=True, max_flash=100, fit_baseline=False)
    x, y = data()
    tuner.search(x, y, validation_data=data(24, 1), batch_size=16)
    record = json.loads((tmp_path / "search" / "trial_0" / "record.json").read_text())
    assert record["within_budget"] is False and record["tflite_bytes"] > 100
    assert record["score"] == pytest.approx(
        sizes.budget_score(record["val_mse"], record["tflite_bytes"], 100))
    assert tuner.oracle.get_trial("0").score == pytest.approx(record["score"])
    line = capsys.readouterr().out.splitlines()[-1]
    assert f"{record['tflite_bytes']} bytes > --max-flash 100) | best so far" in line


def test_report_marks_the_best_within_the_searchs_own_flash_budget(tiny_search, tmp_path):
    import shutil

    logs = tmp_path / "logs"
    shutil.copytree(tiny_search["logs"], logs)
    rows = report_json(tiny_search)["trials"]
    budget = sorted(r["tflite_bytes"] for r in rows)[1]  # The smallest two fit.
    within = min((r for r in rows if r["tflite_bytes"] <= budget),
                 key=lambda r: r["val_mse"])["trial_id"]
    settings = json.loads((logs / "tuner_prune.json").read_text())
    settings["config"]["max_flash"] = budget
    (logs / "tuner_prune.json").write_text(json.dumps(settings))
    result = run_main("report", "--directory", str(logs), "--format", "json")
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout)
    assert (report["best"], report["max_flash"], report["max_bytes"]) == (within, budget,
                                                                          None)
    table = run_main("report", "--directory", str(logs)).stdout
    assert f"lowest validation MSE within --max-flash {budget}" in table
    # Report's own --max-flash, and the tighter --max-bytes, take its place.
    wider = run_main("report", "--directory", str(logs), "--format", "json",
                     "--max-flash", "100000000")
    assert json.loads(wider.stdout)["best"] == report_json(tiny_search)["best"]
    tighter = run_main("report", "--directory", str(logs), "--max-bytes", "10")
    assert "within --max-bytes 10" in tighter.stdout


def test_report_max_ram_on_a_search_without_arenas_says_why_nothing_is_marked(tiny_search):
    table = run_main("report", "--directory", tiny_search["logs"], "--max-ram", "100000")
    assert table.returncode == 0, table.stderr[-2000:]
    assert ("No trial is marked best within --max-ram 100000: none recorded its TFLM "
            "arena (the search ran without --max-ram)") in table.stdout
    assert marked_rows(table.stdout) == []
    plain = run_main("report", "--directory", tiny_search["logs"]).stdout
    assert "No trial is marked" not in plain and len(marked_rows(plain)) == 1


def marked_rows(table):
    """The table's trial rows marked best (the legend's ``* best`` is no row)."""
    return [line for line in table.splitlines()
            if line.lstrip().startswith("*") and not line.startswith("* best")]
