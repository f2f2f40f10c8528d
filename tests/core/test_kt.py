"""The private members of keras-tuner (and tfmot) that tuner_prune relies on.

``tuner_prune.core._kt`` (and ``tuner_prune.core._keras`` for tfmot) is the one place
that names them; each test here pins one of them on real keras-tuner objects,
and its docstring names the member, so that an upgrade that changes one fails
here rather than in a search. Nothing trains: an oracle in a temporary folder
is the largest object built.
"""

import glob
import os
import re

import keras_tuner
import numpy as np
import pytest
import tensorflow as tf
from keras_tuner.engine import hyperparameters as hp_module

from conftest import REPO
from tuner_prune.core import _keras, _kt
from tuner_prune.store import records
from tuner_prune.store.staging import write_json

OBJECTIVE = "loss"
DISTRIBUTED = ("KERASTUNER_TUNER_ID", "KERASTUNER_ORACLE_IP", "KERASTUNER_ORACLE_PORT")


@pytest.fixture(autouse=True)
def local_search(monkeypatch):
    """No test inherits the variables of a distributed search."""
    for name in DISTRIBUTED:
        monkeypatch.delenv(name, raising=False)


def x_space():
    hp = keras_tuner.HyperParameters()
    hp.Float("x", 0.0, 1.0)
    return hp


def oracle_in(folder, space=None, oracle_class=_kt.BayesianOracle, seed=1, **kwargs):
    """A Bayesian oracle with its project in ``folder/search``, set up by a tuner."""
    oracle = oracle_class(objective=keras_tuner.Objective(OBJECTIVE, "min"),
                          max_trials=20, seed=seed, **kwargs)
    _kt.BaseTuner(oracle, directory=str(folder), project_name="search")
    oracle.verbose = 0
    oracle.update_space(space or x_space())
    return oracle


def completed(oracle, tuner_id, score):
    trial = oracle.create_trial(tuner_id)
    oracle.update_trial(trial.trial_id, {OBJECTIVE: score})
    trial.status = _kt.TrialStatus.COMPLETED
    oracle.end_trial(trial)
    return trial


def fitted(folder, oracle_class=_kt.BayesianOracle, seed=1):
    """An oracle whose next trial comes from the Gaussian process."""
    oracle = oracle_in(folder, oracle_class=oracle_class, seed=seed, num_initial_points=3)
    for score in (0.3, 0.1, 0.2):
        completed(oracle, "tuner0", score)
    return oracle


class Recording(_kt.BayesianOracle):
    """A ``BayesianOracle`` that records which of its hooks keras-tuner calls."""

    def __init__(self, *args, **kwargs):
        self.calls = []
        super().__init__(*args, **kwargs)

    def vectorize_trials(self):
        self.calls.append("vectorize_trials")
        return super().vectorize_trials()

    def vector_to_values(self, vector):
        self.calls.append("vector_to_values")
        return super().vector_to_values(vector)

    def random_values(self):
        self.calls.append("random_values")
        return super().random_values()

    def save_trial(self, trial):
        self.calls.append("save_trial")
        super().save_trial(trial)


# An oracle's state.

def test_retry_queue_is_the_list_create_trial_pops_from_its_end(tmp_path):
    """``Oracle._retry_queue``: a list of trial ids, run again from its end."""
    oracle = oracle_in(tmp_path)
    first, second = completed(oracle, "a", 0.5), completed(oracle, "b", 0.4)
    _kt.retry_queue(oracle).extend([second.trial_id, first.trial_id])
    again = oracle.create_trial("c")
    assert again.trial_id == first.trial_id
    assert again.status == _kt.TrialStatus.RUNNING
    assert _kt.retry_queue(oracle) == [second.trial_id]


def test_a_set_retry_queue_is_run_and_saved_with_the_oracle(tmp_path):
    """``Oracle._retry_queue`` replaced: ``create_trial`` and ``get_state`` read it."""
    oracle = oracle_in(tmp_path)
    first, second = completed(oracle, "a", 0.5), completed(oracle, "b", 0.4)
    _kt.set_retry_queue(oracle, [first.trial_id, second.trial_id])
    assert oracle.get_state()["retry_queue"] == [first.trial_id, second.trial_id]
    assert oracle.create_trial("c").trial_id == second.trial_id


def test_reload_queues_ongoing_trials_to_run_again(tmp_path):
    """``Oracle._retry_queue`` after ``reload``: the trials that were ongoing."""
    oracle = oracle_in(tmp_path)
    completed(oracle, "a", 0.5)
    ongoing = oracle.create_trial("b")
    reloaded = oracle_in(tmp_path)
    reloaded.reload()
    assert _kt.retry_queue(reloaded) == [ongoing.trial_id]
    assert reloaded.ongoing_trials == {}


def test_recorded_values_are_not_drawn_again(tmp_path):
    """``Oracle._record_values``: random draws skip the values of recorded trials."""
    space = keras_tuner.HyperParameters()
    space.Choice("c", [1, 2])
    oracle = oracle_in(tmp_path, space)
    assert oracle.random_values() is not None
    for value in (1, 2):
        tried = space.copy()
        tried.values = {"c": value}
        _kt.record_values(oracle, _kt.Trial(tried, trial_id=str(value)))
    assert oracle.random_values() is None  # keras-tuner's "space exhausted".


def test_trial_dir_is_trial_and_id_in_the_project(tmp_path):
    """``Oracle._get_trial_dir``: ``<project_dir>/trial_<id>``, created."""
    oracle = oracle_in(tmp_path)
    path = _kt.trial_dir(oracle, "07")
    assert path == os.path.join(str(tmp_path), "search", "trial_07")
    assert os.path.isdir(path)


def test_save_trial_writes_trial_json_in_the_trial_dir(tmp_path):
    """``Oracle._save_trial``: the trial's ``trial.json``, which ``Trial.load`` reads."""
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective(OBJECTIVE, "min"), max_trials=2)
    _kt.BaseTuner(oracle, directory=str(tmp_path), project_name="search")
    trial = _kt.Trial(x_space(), trial_id="3", status=_kt.TrialStatus.FAILED)
    _kt.save_trial(oracle, trial)
    path = os.path.join(_kt.trial_dir(oracle, "3"), records.TRIAL_FILE)
    saved = _kt.Trial.load(path)
    assert (saved.trial_id, saved.status) == ("3", _kt.TrialStatus.FAILED)


def test_keras_tuner_saves_every_trial_through_the_save_trial_hook(tmp_path):
    """``Oracle._save_trial``: called by ``create_trial``, ``update_trial`` and
    ``end_trial``, so ``BayesianOracle.save_trial`` writes every ``trial.json``."""
    oracle = oracle_in(tmp_path, oracle_class=Recording)
    trial = completed(oracle, "tuner0", 0.5)
    assert oracle.calls.count("save_trial") == 3
    _kt.save_trial(oracle, trial)
    assert oracle.calls.count("save_trial") == 4


def test_oracle_file_is_what_reload_reads(tmp_path):
    """``Oracle._get_oracle_fname``: ``<project_dir>/oracle.json``, read by ``reload``."""
    oracle = oracle_in(tmp_path)
    trial = completed(oracle, "a", 0.5)
    path = _kt.oracle_file(oracle)
    assert path == os.path.join(str(tmp_path), "search", records.ORACLE_FILE)
    os.remove(path)
    write_json(path, oracle.get_state())  # As resume.AtomicSaves writes it.
    reloaded = oracle_in(tmp_path)
    reloaded.reload()
    assert reloaded.end_order == [trial.trial_id]


def test_set_seed_makes_random_draws_repeat(tmp_path):
    """``Oracle._seed_state``: the seed of the next random draw."""
    draws = []
    for seed in (1, 2):
        oracle = oracle_in(tmp_path / str(seed), seed=seed)
        _kt.set_seed(oracle, 0)
        draws.append([oracle.random_values() for _ in range(3)])
    assert oracle.seed == 0
    assert draws[0] == draws[1]


def test_set_seed_reseeds_the_restarts_of_the_gaussian_process(tmp_path):
    """``BayesianOptimizationOracle._random_state``: the ``RandomState`` that
    ``populate_space`` draws its optimiser's starting points from."""
    oracle = fitted(tmp_path)
    _kt.set_seed(oracle, 3)
    state = oracle._random_state
    assert state.get_state()[1].tolist() == np.random.RandomState(3).get_state()[1].tolist()
    oracle.populate_space("3")
    assert state.get_state()[2] != np.random.RandomState(3).get_state()[2]  # Drawn from.


def test_set_seed_rebuilds_the_gaussian_process_with_the_seed(tmp_path):
    """``BayesianOptimizationOracle._make_gpr``: a new, unfitted process seeded
    with the oracle's ``seed``."""
    oracle = fitted(tmp_path)
    oracle.populate_space("3")  # Fits ``oracle.gpr``.
    _kt.set_seed(oracle, 3)
    assert oracle.gpr.random_state == 3
    assert not hasattr(oracle.gpr, "X_train_")


def test_each_random_value_takes_one_seed(tmp_path):
    """``Oracle._seed_state``: advanced by one per value drawn, as ``next_seed`` does."""
    oracle = oracle_in(tmp_path)
    _kt.set_seed(oracle, 5)
    assert _kt.next_seed(oracle) == 5
    oracle.random_values()  # One hyperparameter, one value.
    assert _kt.next_seed(oracle) == 7


def test_nonfixed_space_leaves_out_fixed_ones(tmp_path):
    """``BayesianOptimizationOracle._nonfixed_space``: the space without
    ``Fixed`` ones, in order; one entry per column of the process's data."""
    space = keras_tuner.HyperParameters()
    space.Float("b", 0.0, 1.0)
    space.Fixed("a", 3)
    space.Int("c", 1, 4)
    oracle = oracle_in(tmp_path, space)
    completed(oracle, "a", 0.5)
    assert [hp.name for hp in _kt.nonfixed_space(oracle)] == ["b", "c"]
    x, _ = oracle.vectorize_trials()
    assert x.shape == (1, 2)


def test_the_gaussian_process_reads_trials_through_vectorize_trials(tmp_path):
    """``BayesianOptimizationOracle._vectorize_trials``: called by
    ``populate_space``; by default one unit vector and score per trial."""
    oracle = fitted(tmp_path, Recording)
    x, y = oracle.vectorize_trials()
    assert x.shape == (3, 1) and ((0 <= x) & (x <= 1)).all()
    assert list(y) == pytest.approx([0.3, 0.1, 0.2])
    oracle.calls.clear()
    oracle.populate_space("3")
    assert oracle.calls.count("vectorize_trials") == 1


def test_the_gaussian_process_proposes_through_vector_to_values(tmp_path):
    """``BayesianOptimizationOracle._vector_to_values``: maps the process's
    optimum to values; by default ``prob_to_value`` of each, ``Fixed`` ones added."""
    oracle = fitted(tmp_path, Recording)
    oracle.calls.clear()
    response = oracle.populate_space("3")
    assert oracle.calls[-1] == "vector_to_values"
    assert 0.0 <= response["values"]["x"] <= 1.0
    space = x_space()
    space.Fixed("f", 2)
    oracle.update_space(space)
    assert oracle.vector_to_values([0.25]) == {"x": 0.25, "f": 2}


def test_initial_points_come_from_random_values(tmp_path):
    """``Oracle._random_values``: called by ``populate_space`` before the
    Gaussian process takes over; by default a value for each hyperparameter."""
    oracle = oracle_in(tmp_path, oracle_class=Recording, num_initial_points=3)
    oracle.calls.clear()
    response = oracle.populate_space("0")
    assert oracle.calls == ["random_values"]
    assert set(response["values"]) == {"x"}


# A tuner's state.

def test_wrapped_oracle_is_the_one_the_client_was_built_around(tmp_path, monkeypatch):
    """``OracleClient._oracle``: the worker's local oracle."""
    monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
    monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "9")
    monkeypatch.setenv("KERASTUNER_TUNER_ID", "worker0")
    oracle = oracle_in(tmp_path)
    client = _kt.oracle_client.OracleClient(oracle)
    assert _kt.wrapped_oracle(client) is oracle


class Reloads(_kt.BaseTuner):
    """A ``BaseTuner`` that records its reloads and initial populations."""

    def __init__(self, *args, **kwargs):
        self.calls = []
        super().__init__(*args, **kwargs)

    def reload(self):
        self.calls.append("reload")
        super().reload()

    def populate_initial_space(self):
        self.calls.append("populate_initial_space")
        super().populate_initial_space()


def new_tuner(folder):
    oracle = keras_tuner.oracles.RandomSearchOracle(
        objective=keras_tuner.Objective(OBJECTIVE, "min"), max_trials=2)
    return Reloads(oracle, directory=str(folder), project_name="search")


def test_a_tuner_reloads_only_when_its_tuner_file_exists(tmp_path):
    """``BaseTuner._get_tuner_fname``: ``<project_dir>/<tuner_id>.json``; the
    constructor reloads the search only when it exists."""
    tuner = new_tuner(tmp_path)
    assert _kt.tuner_file(tuner) == os.path.join(str(tmp_path), "search", "tuner0.json")
    assert "reload" not in tuner.calls
    tuner.save()
    assert os.path.exists(_kt.tuner_file(tuner))
    assert "reload" in new_tuner(tmp_path).calls


def test_only_a_fresh_search_populates_the_initial_space(tmp_path):
    """``BaseTuner._populate_initial_space``: called by the constructor of a
    fresh search, not of a reloaded one."""
    tuner = new_tuner(tmp_path)
    assert tuner.calls == ["populate_initial_space"]
    tuner.save()
    assert new_tuner(tmp_path).calls == ["reload"]


@pytest.mark.parametrize("tuner_id, worker", [(None, False), ("chief", False),
                                              ("worker0", True)])
def test_is_worker_follows_keras_tuners_variables(tmp_path, monkeypatch, tuner_id, worker):
    """``BaseTuner._is_worker``: a chief's address set and a tuner id without "chief"."""
    tuner = new_tuner(tmp_path)
    if tuner_id is not None:
        monkeypatch.setenv("KERASTUNER_ORACLE_IP", "127.0.0.1")
        monkeypatch.setenv("KERASTUNER_ORACLE_PORT", "9")
        monkeypatch.setenv("KERASTUNER_TUNER_ID", tuner_id)
    assert _kt.is_worker(tuner) is worker


# Hyperparameters.

def test_a_retrieved_hyperparameter_answers_later_declarations():
    """``HyperParameters._retrieve``: declares a hyperparameter unless its name
    is there; a later declaration of the name gets the first one's value."""
    hp = keras_tuner.HyperParameters()
    assert _kt.retrieve(hp, hp_module.Fixed("units", 8)) == 8
    assert _kt.retrieve(hp, hp_module.Fixed("units", 4)) == 8
    assert hp.Int("units", 1, 100) == 8
    assert [item.name for item in hp.space] == ["units"]


@pytest.mark.parametrize("hp, ends", [
    (hp_module.Int("n", 1, 10, step=4), (1, 9)),
    (hp_module.Float("f", 0.1, 0.5, step=0.15), (0.1, 0.4)),
    (hp_module.Int("n", 1, 100, step=3, sampling="log"), (1, 81)),
    (hp_module.Int("n", 1, 100, step=3, sampling="reverse_log"), (100, 20)),
])
def test_grid_ends_are_the_first_and_last_values_of_the_grid(hp, ends):
    """``Int``/``Float`` ``_get_value_by_index`` and ``_get_n_values``: the
    grid of a stepped hyperparameter, by index."""
    assert _kt.grid_ends(hp) == pytest.approx(ends)
    assert sorted(_kt.grid_ends(hp)) == pytest.approx([min(hp.values), max(hp.values)])


# tfmot.

def test_pruning_summaries_write_through_their_file_writer(tmp_path):
    """tfmot ``PruningSummaries._file_writer``: a summary writer opened at
    construction, writing under ``<log_dir>/metrics``."""
    callback = _keras.sparsity.PruningSummaries(log_dir=str(tmp_path))
    writer = _keras.pruning_summary_writer(callback)
    with writer.as_default():
        tf.summary.scalar("pinned", 1.0, step=0)
    writer.close()
    assert glob.glob(os.path.join(str(tmp_path), "metrics", "events.out.tfevents.*"))


# The door itself.

def private_names():
    """The private names of the keras-tuner and tfmot objects tuner_prune uses."""
    from keras_tuner.src.engine import base_tuner

    oracle = keras_tuner.oracles.BayesianOptimizationOracle(
        objective=keras_tuner.Objective(OBJECTIVE, "min"), max_trials=1)
    objects = [oracle, keras_tuner.HyperParameters(), base_tuner.BaseTuner,
               _kt.oracle_client.OracleClient, hp_module.Int, hp_module.Float,
               hp_module.Choice, hp_module.Boolean, hp_module.Fixed,
               _keras.sparsity.PruningSummaries]
    names = {"_oracle", "_file_writer"}  # Set by constructors that need a chief, a log dir.
    for item in objects:
        names |= set(dir(item))
    return {name for name in names if re.fullmatch(r"_[a-z]\w*", name)}


def test_only_the_door_modules_name_private_members():
    """No module but ``_kt.py`` (and ``_keras.py`` for tfmot) reads, calls or
    overrides a private member of keras-tuner's objects."""
    names = private_names()
    folder = os.path.join(REPO, "tuner_prune")
    found = []
    for module in sorted(os.path.relpath(os.path.join(root, name), folder)
                         for root, _, names in os.walk(folder) for name in names):
        if not module.endswith(".py") or os.path.basename(module) in ("_kt.py", "_keras.py"):
            continue
        with open(os.path.join(folder, module), encoding="utf-8") as file:
            text = file.read()
        found += [f"{module}: {match.group(0)}"
                  for match in re.finditer(r"(?:\.|def )(_[a-z]\w*)\b", text)
                  if match.group(1) in names]
    assert not found
