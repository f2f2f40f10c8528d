"""Flags resolved once into a ``Plan``, without TensorFlow, and the flags' defaults."""

import dataclasses
import json
import re
import subprocess
import sys

import pytest

from conftest import cli_env
from tuner_prune.settings import stored_search
from tuner_prune import cli
from tuner_prune.space import schedule
from tuner_prune.settings.config import SearchConfig
from tuner_prune.core.errors import InputError
from tuner_prune.settings.plan import resolve_search, resolve_sweep
from tuner_prune.space.bounds import Bound, ScheduleSpace
from tuner_prune.reporting.sweep import SweepConfig, default_steps

TINY = dict(n_samples=300, n_features=20, n_informative=10, epochs=6, batch_size=32, seed=1)


def folders(tmp_path):
    return dict(directory=str(tmp_path / "logs"), export_dir=str(tmp_path / "export"))


def test_plan_of_the_built_in_data(tmp_path):
    plan = resolve_search(SearchConfig(**TINY, **folders(tmp_path), max_bytes=9000))
    # 300 rows: 240 train -> 8 steps of 32 per epoch, 48 in 6 epochs.
    assert len(plan.dataset.x_train) == 240 and plan.dataset.n_features == 20
    assert (plan.steps_per_epoch, plan.total_steps) == (8, 48)
    assert plan.space == ScheduleSpace().resolve(48, 8)
    assert plan.space.end_step.high == schedule.max_end_step(48, 8) == 40
    assert plan.builder is None and plan.block_size == (1, 1)
    assert plan.export_options["max_bytes"] == 9000
    assert list(tmp_path.iterdir()) == []  # Resolving writes nothing.


def test_plan_of_a_csv(tmp_path):
    rows = "\n".join(f"{i},{i % 7},{i % 3},{i * 0.5}" for i in range(50))
    (tmp_path / "d.csv").write_text(f"a,b,c,y\n{rows}\n")
    plan = resolve_search(SearchConfig(
        data=str(tmp_path / "d.csv"), epochs=5, batch_size=8, block_size="2x1",
        final_sparsity="0.8:0.9", power="2", **folders(tmp_path)))
    # 50 rows: 40 train -> 5 steps of 8 per epoch, 25 in 5 epochs, 20 before recovery.
    assert plan.dataset.columns == ("a", "b", "c", "y")
    assert (plan.steps_per_epoch, plan.total_steps) == (5, 25)
    assert plan.space.final_sparsity == Bound(0.8, 0.9)
    assert plan.space.power == Bound(2.0, 2.0)
    assert plan.space.end_step.high == 20
    assert plan.block_size == (2, 1)


def test_plan_of_a_sweep_fixes_the_schedule_but_the_sparsity(tmp_path):
    config = SweepConfig(**TINY, sparsities="0,0.9", power=2.5, out=str(tmp_path))
    plan = resolve_sweep(config)
    begin, end = default_steps(48)
    assert config.sparsities == (0.0, 0.9)
    assert plan.space.final_sparsity == Bound(0.0, 0.9)
    assert (plan.space.power, plan.space.begin_step, plan.space.end_step) == (
        Bound(2.5, 2.5), Bound(begin, begin), Bound(end, end))
    assert plan.export_options is None


def test_a_sweep_schedule_beyond_training_is_refused(tmp_path):
    with pytest.raises(InputError, match=r"Expected end_step <= 40 .* received 45"):
        resolve_sweep(SweepConfig(**TINY, end_step=45, out=str(tmp_path)))


@pytest.mark.parametrize("make,message", [
    (lambda: SweepConfig(sparsities=(0.5, 1.2)), "Expected --sparsities in [0, 1), received 1.2."),
    (lambda: ScheduleSpace.from_text(final_sparsity="0.5:1.2").resolve(48, 8),
     "Expected final_sparsity in [0, 1), received 0.5:1.2."),
    (lambda: schedule.PruningSchedule(1.2, 3, 0, 10, total_steps=10),
     "Expected `final_sparsity` in [0, 1), received 1.2."),
])
def test_final_sparsity_has_one_check_and_one_wording(make, message):
    with pytest.raises(InputError) as error:
        make()
    assert str(error.value) == message


def test_resolving_a_search_imports_no_tensorflow(tmp_path):
    code = ("import sys\n"
            "from tuner_prune.settings.config import SearchConfig\n"
            "from tuner_prune.settings.plan import resolve_search\n"
            f"resolve_search(SearchConfig(**{TINY!r}, **{folders(tmp_path)!r}))\n"
            "assert 'tensorflow' not in sys.modules, 'tensorflow imported'\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env=cli_env(), timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("command,config_class", [
    (["search"], SearchConfig), (["sweep"], SweepConfig), (["export"], SearchConfig),
    (["report"], SearchConfig)])
def test_flag_defaults_are_the_config_defaults(command, config_class):
    defaults = {field.name: field.default for field in dataclasses.fields(config_class)}
    args = vars(cli.build_parser().parse_args(command))
    compared = {name: value for name, value in args.items()
                if name in defaults and value is not None}
    assert compared, args
    assert compared == {name: defaults[name] for name in compared}
    if command[0] in ("search", "sweep"):
        # Every flag is a setting, but --verbose: it is about the process's output.
        assert set(args) - {"command", "verbose"} <= set(defaults)
        assert {name for name, value in args.items() if value is not None} >= {
            name for name, value in defaults.items() if value is not None}


def test_hp_goes_to_the_schedule_or_the_model_and_article_fixes_the_model(tmp_path):
    config = SearchConfig(**TINY, **folders(tmp_path), frequency="2:4",
                          hp=["units=8:64", "power=2", "kernel_initializer=he_normal"])
    plan = resolve_search(config)
    assert plan.space.power == Bound(2.0, 2.0)
    assert plan.space.frequency == Bound(2, 4)
    assert plan.hyperparameters == {"units": Bound(8, 64),
                                    "kernel_initializer": "he_normal"}
    article = resolve_search(SearchConfig(**TINY, **folders(tmp_path), article=True))
    assert article.hyperparameters == {"hidden_layers": 2, "units": 1024,
                                       "kernel_initializer": "he_normal",
                                       "learning_rate": 1e-3}
    sweep = resolve_sweep(SweepConfig(**TINY, out=str(tmp_path)))
    assert sweep.hyperparameters == article.hyperparameters


def test_hp_frequency_and_article_are_part_of_the_search_identity(tmp_path):
    data = {"rows": [240, 30, 30], "features": 20, "columns": None, "sha256": "0" * 64}
    stored = SearchConfig(**TINY, **folders(tmp_path), hp=["b=1", "a=2"])
    stored_search.store(stored, data)
    same = SearchConfig(**TINY, **folders(tmp_path), hp=["a=2", "b=1"])
    assert stored_search.differences(stored_search.load_stored(same.directory), same, data) == []
    other = SearchConfig(**TINY, **folders(tmp_path), hp=["a=3", "b=1"], article=True,
                         frequency="5")
    assert [d.split(" ")[0] for d in stored_search.differences(
        stored_search.load_stored(other.directory), other, data)] == [
        "--frequency", "--hp", "--article"]


def test_a_search_resumes_only_with_its_own_budget_but_exports_with_any(tmp_path):
    data = {"rows": [240, 30, 30], "features": 20, "columns": None, "sha256": "0" * 64}
    stored_search.store(SearchConfig(**TINY, **folders(tmp_path), max_bytes=5000), data)
    stored = stored_search.load_stored(str(tmp_path / "logs"))
    wider = SearchConfig(**TINY, **folders(tmp_path), max_bytes=9000)
    unbudgeted = SearchConfig(**TINY, **folders(tmp_path))
    assert stored_search.differences(stored, wider, data) == [
        "--max-bytes 9000 (the search has 5000)"]
    assert stored_search.differences(stored, unbudgeted, data) == [
        "--max-bytes default (the search has 5000)"]
    assert stored_search.differences(stored, wider, data, reading=True) == []
    same = SearchConfig(**TINY, **folders(tmp_path), max_bytes=5000)
    assert stored_search.differences(stored, same, data) == []


@pytest.mark.parametrize("settings,message", [
    (dict(article=True, model="m:f"), r"Expected --article \(the article's own model\) "
     r"or --model, received both \(--model m:f\)\."),
    (dict(article=True, hp=["learning_rate=0.01"]), r"Expected --article \(which fixes "
     r"hidden_layers, kernel_initializer, learning_rate, units\) or --hp learning_rate, "
     r"received both\."),
    (dict(power="3", hp=["power=2"]), r"Expected --power or --hp power, received both\."),
    (dict(hp=["units"]), r"Expected --hp NAME=VALUE or NAME=LO:HI, received 'units'\."),
])
def test_conflicting_hp_settings_are_refused(settings, message):
    with pytest.raises(InputError, match=message):
        SearchConfig(**TINY, **settings)


def test_stored_settings_without_what_a_resume_compares_are_refused(tmp_path):
    config = SearchConfig(n_samples=60, n_features=4, n_informative=2, epochs=4,
                          batch_size=16, directory=str(tmp_path / "logs"))
    fingerprint = resolve_search(config).dataset.fingerprint()
    stored_search.store(config, fingerprint)
    path = tmp_path / "logs" / stored_search.CONFIG_FILE
    stored = json.loads(path.read_text())
    for name in ("article", "hp", "frequency"):
        del stored["config"][name]
    path.write_text(json.dumps(stored))
    for reading in (False, True):
        with pytest.raises(InputError, match=rf"^{re.escape(str(path))}: Expected the "
                           rf"settings of a tuner_prune search, received settings "
                           rf"without --frequency, --hp, --article\.$"):
            stored_search.check_resumable(config, fingerprint, reading)


def test_a_search_resumes_only_with_its_own_flash_budget(tmp_path):
    # --max-flash scores the trials as --max-bytes does, so a resume keeps it;
    # a search stored before it bounded trials ran without one.
    data = {"rows": [240, 30, 30], "features": 20, "columns": None, "sha256": "0" * 64}
    stored_search.store(SearchConfig(**TINY, **folders(tmp_path), max_flash=5000), data)
    stored = stored_search.load_stored(str(tmp_path / "logs"))
    wider = SearchConfig(**TINY, **folders(tmp_path), max_flash=9000)
    assert stored_search.differences(stored, wider, data) == [
        "--max-flash 9000 (the search has 5000)"]
    assert stored_search.differences(stored, wider, data, reading=True) == []
    del stored["config"]["max_flash"]  # As an earlier tuner_prune stored it.
    plain = SearchConfig(**TINY, **folders(tmp_path))
    assert stored_search.differences(stored, plain, data) == []
    assert stored_search.differences(stored, wider, data) == [
        "--max-flash 9000 (the search has default)"]
