"""A small real sweep through the CLI (``cli.main``, in this process)."""

import csv

import pytest

from conftest import run_main

# The article's model (two layers of 1024) trains for 24 steps a run: its
# per-step cost is the weights', not the batch's.
TINY_SWEEP = ["--n-samples", "300", "--n-features", "20", "--n-informative", "10",
              "--epochs", "3", "--batch-size", "32", "--seed", "1"]


@pytest.mark.slow
def test_sweep_writes_csv_and_plots(tmp_path):
    out = tmp_path / "sweep"
    result = run_main("sweep", *TINY_SWEEP, "--sparsities", "0,0.9", "--repeats", "1",
                      "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    runs = [line for line in result.stdout.splitlines() if line.startswith("  Sweep")]
    assert [line.split(",")[0] for line in runs] == [
        "  Sweep 1/2 runs: sparsity 0.0 repeat 0", "  Sweep 2/2 runs: sparsity 0.9 repeat 0"]
    assert runs[1].endswith("~0s left") and "\r" not in result.stdout  # A line per run.
    with open(out / "sweep.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["final_sparsity"], r["repeat"]) for r in rows] == [("0.0", "0"), ("0.9", "0")]
    for row in rows:
        assert abs(float(row["sparsity"]) - float(row["final_sparsity"])) <= 0.01
        assert float(row["train_mse"]) > 0 and float(row["val_mse"]) > 0

    train = {r["final_sparsity"]: float(r["train_mse"]) for r in rows}
    assert train["0.9"] > train["0.0"]  # fewer weights fit the training data worse
    for name in ("sweep.png", "sweep_zoom.png"):
        assert (out / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_refuses_bad_sparsity(tmp_path):
    result = run_main("sweep", "--sparsities", "0.5,1.2", "--out", str(tmp_path / "s"))
    assert result.returncode == 2
    assert "Expected --sparsities in [0, 1), received 1.2" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_plot_without_points_in_its_range_is_drawn_empty(tmp_path):
    from tuner_prune.reporting.sweep import PLOTS, plot

    rows = [{"final_sparsity": 0.5, "repeat": 0, "train_mse": 0.1, "val_mse": 0.2,
             "test_mse": 0.2, "sparsity": 0.5}]
    for name, limits in PLOTS.items():
        plot(rows, tmp_path / name, limits)
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_sweep_refuses_an_out_that_is_a_file_before_training(tmp_path):
    out = tmp_path / "results"
    out.write_text("the user's")
    result = run_main("sweep", *TINY_SWEEP, "--out", str(out))
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("tuner_prune")]
    assert errors == [f"tuner_prune: error: Expected --out to be a folder, received "
                      f"{out}, a file."]
    assert out.read_text() == "the user's" and result.stdout == ""


@pytest.mark.parametrize("power", ["inf", "nan"])
def test_sweep_refuses_a_power_search_refuses(tmp_path, power):
    sweep = run_main("sweep", "--power", power, "--out", str(tmp_path / "s"))
    search = run_main("search", "--power", power, "--directory", str(tmp_path / "logs"))
    assert sweep.returncode == search.returncode == 2, sweep.stderr
    assert "Expected --power" in sweep.stderr and "Traceback" not in sweep.stderr
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize("name", ["sweep.csv", "sweep.png", "sweep_zoom.png"])
def test_sweep_refuses_an_out_holding_files_it_did_not_write(tmp_path, name):
    """A user's own sweep.csv or sweep.png in --out was overwritten after the runs."""
    out = tmp_path / "results"
    out.mkdir()
    (out / name).write_text("the user's")
    result = run_main("sweep", *TINY_SWEEP, "--out", str(out))
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("tuner_prune")]
    assert errors == [f"tuner_prune: error: Expected --out without files a sweep did not "
                      f"write, received {out / name}, not a sweep's {name}; move it or "
                      f"choose another --out."]
    assert (out / name).read_text() == "the user's" and result.stdout == ""


def test_a_sweep_run_again_replaces_its_own_files(tmp_path):
    from tuner_prune.reporting.sweep import COLUMNS, check_own_files

    (tmp_path / "sweep.csv").write_text(",".join(COLUMNS) + "\n0.5,0,1,1,0.5\n")
    (tmp_path / "sweep.png").write_bytes(b"\x89PNG")
    check_own_files(str(tmp_path))  # No refusal.
    (tmp_path / "sweep.csv").unlink()
    (tmp_path / "sweep.csv").symlink_to(tmp_path / "sweep.png")
    with pytest.raises(Exception, match="not a sweep's sweep.csv"):
        check_own_files(str(tmp_path))
