"""A keras-tuner user's own code: Keras 3 models, plain build functions, tf.data,
validation_split, weighted validation data and callbacks per trial (issue 31).

The translation of Keras 3 configs into tf_keras's is pinned to the Keras
version of pyproject.toml: a Keras release that changes its configs fails
``test_the_translation_is_pinned_to_the_keras_of_pyproject`` or the exact
config below rather than a user's search.
"""

import os
import re
import tomllib

import keras
import keras_tuner
import numpy as np
import pytest
import tensorflow as tf

from conftest import REPO, run_main
from tuner_prune import PruningHyperModel, PruningTuner
from tuner_prune.data import dataset as data_lib
from tuner_prune.tuning import fit_inputs, keras3, search_data
from tuner_prune.core._keras import keras as tf_keras, sparsity
from tuner_prune.core.errors import InputError
from tuner_prune.space.models import BuilderError


def rows(count, seed, shape=(8,)):
    """Raw rows around 50 and a linear target of them."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(0, 100, size=(count, *shape)).astype(np.float32)
    weights = np.random.default_rng(99).normal(size=int(np.prod(shape)))
    return x, (x.reshape(count, -1) @ weights).astype(np.float32)


def conv_sequential(hp=None):
    return keras.Sequential([
        keras.Input(shape=(8, 8, 1)), keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.BatchNormalization(), keras.layers.Dropout(0.2),
        keras.layers.Flatten(), keras.layers.Dense(1)])


def residual_functional(hp=None):
    inputs = keras.Input(shape=(10, 3))
    conv = keras.layers.Conv1D(3, 3, padding="same")(inputs)
    added = keras.layers.Add()([inputs, conv])
    sequence = keras.layers.LSTM(4, return_sequences=True)(added)
    return keras.Model(inputs, keras.layers.Dense(1)(keras.layers.GRU(4)(sequence)))


def dense_functional(hp):
    units = hp.Choice("units", [8, 16])
    inputs = keras.Input(shape=(8,))
    hidden = keras.layers.Dense(units, activation="relu")(inputs)
    return keras.Model(inputs, keras.layers.Dense(1)(hidden))


class Doubler(keras.layers.Layer):
    def call(self, inputs):
        return inputs * 2


class Subclassed(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(1)

    def call(self, inputs):
        return self.dense(inputs)


def custom_layer(hp):
    return keras.Sequential([keras.Input(shape=(8,)), Doubler(name="doubler"),
                             keras.layers.Dense(1)])


def with_ops(hp):
    inputs = keras.Input(shape=(8,))
    return keras.Model(inputs, keras.layers.Dense(1)(keras.ops.add(inputs, inputs)))


def layer_norm(hp):
    return keras.Sequential([keras.Input(shape=(8,)),
                             keras.layers.LayerNormalization(name="norm"),
                             keras.layers.Dense(1)])


def nested_in_functional(hp):
    inputs = keras.Input(shape=(8,))
    inner = keras.Sequential([keras.layers.Dense(4), keras.layers.Dense(1)], name="head")
    return keras.Model(inputs, inner(inputs))


# ---- The copy into tf_keras and back.

def test_the_translation_is_pinned_to_the_keras_of_pyproject():
    with open(os.path.join(REPO, "pyproject.toml"), "rb") as handle:
        dependencies = tomllib.load(handle)["project"]["dependencies"]
    [pin] = [d for d in dependencies if re.match(r"keras\s*==", d)]
    assert pin.split("==")[1].strip() == keras.__version__


def test_a_dense_layers_config_translates_exactly():
    """Pinned: the keys a Keras release adds or renames fail here."""
    layer = keras.layers.Dense(3, name="d")
    layer.build((None, 2))
    assert keras3.translate(layer.get_config()) == {
        "name": "d", "trainable": True, "dtype": "float32", "units": 3,
        "activation": "linear", "use_bias": True,
        "kernel_initializer": {"module": "keras.initializers",
                               "class_name": "GlorotUniform",
                               "config": {"seed": None}, "registered_name": None},
        "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros",
                             "config": {}, "registered_name": None},
        "kernel_regularizer": None, "bias_regularizer": None,
        "kernel_constraint": None, "bias_constraint": None}
    assert keras3.translate(keras.layers.InputLayer(shape=(4,), name="i").get_config()) \
        == {"batch_input_shape": (None, 4), "dtype": "float32", "sparse": False,
            "ragged": False, "name": "i"}


@pytest.mark.parametrize("build, shape", [(conv_sequential, (8, 8, 1)),
                                          (residual_functional, (10, 3))])
def test_stock_models_copy_into_tf_keras_exactly(build, shape):
    model = build()
    copy = keras3.to_tf_keras(model, shape)
    assert isinstance(copy, tf_keras.Model) and not isinstance(copy, keras.Model)
    batch = np.random.default_rng(1).normal(size=(32, *shape)).astype(np.float32)
    np.testing.assert_allclose(copy(batch, training=False),
                               model(batch, training=False), atol=1e-5)
    assert [type(layer).__name__ for layer in copy.layers if
            type(layer).__name__ != "InputLayer"] == [
        type(layer).__name__ for layer in model.layers if
        type(layer).__name__ != "InputLayer"]


def test_a_model_of_an_embedding_copies_and_its_check_does_not_raise():
    """The check's rows are in [-1, 1), as the search's scaled rows: an Embedding
    takes them, where normal rows gave an InvalidArgumentError out of search."""
    model = keras.Sequential([keras.Input(shape=(4,)), keras.layers.Embedding(10, 3),
                              keras.layers.Flatten(), keras.layers.Dense(1)])
    copy = keras3.to_tf_keras(model, (4,))
    rows = np.array([[0.0, 0.5, -0.9, 0.99]], np.float32)
    np.testing.assert_allclose(copy(rows).numpy(), model(rows).numpy(), atol=1e-6)


def test_a_pruned_copys_weights_go_back_into_the_keras3_model():
    model = conv_sequential()
    pruned = sparsity.prune_low_magnitude(keras3.to_tf_keras(model, (8, 8, 1)))
    stripped = sparsity.strip_pruning(pruned)
    kernel = stripped.layers[-1].kernel
    kernel.assign(np.where(np.arange(kernel.shape[0])[:, None] % 2, 0.0, kernel.numpy()))
    back = keras3.copy_weights_back(stripped, conv_sequential())
    batch = np.random.default_rng(2).normal(size=(16, 8, 8, 1)).astype(np.float32)
    np.testing.assert_allclose(back(batch, training=False),
                               stripped(batch, training=False), atol=1e-5)
    assert np.count_nonzero(back.layers[-1].kernel.numpy()) == kernel.shape[0] // 2


@pytest.mark.parametrize("build, named", [
    (custom_layer, r"the layer 'doubler' of class test_keras3\.Doubler; write it with "
                   r"tf_keras \(`import tf_keras as keras`\)"),
    (lambda hp: Subclassed(), r"a subclassed model of class test_keras3\.Subclassed"),
    (with_ops, r"the keras\.ops call 'add\w*' in a functional graph; use a layer "
               r"instead"),
    (layer_norm, r"the layer 'norm' of class LayerNormalization, whose Keras 3 "
                 r"config tf_keras does not take"),
    (nested_in_functional, r"the model 'head' \(Sequential\) nested in a functional "
                           r"model; put its layers in the outer model, or write it"),
])
def test_a_model_that_cannot_be_copied_is_refused_before_training(tmp_path, build,
                                                                   named):
    tuner = PruningTuner(build, max_trials=1, directory=str(tmp_path), verbose=False)
    with pytest.raises(BuilderError, match=named) as refused:
        tuner.search(*rows(60, 0), validation_data=rows(20, 1), epochs=2, batch_size=10)
    assert "\n" not in str(refused.value)
    assert "TF_USE_LEGACY_KERAS" not in str(refused.value)
    assert not os.path.exists(search_data.path(tuner.project_dir))
    assert not list((tmp_path / "search").glob("trial_*"))


# ---- A search of a Keras 3 functional model on tf.data, with callbacks per trial.

@pytest.fixture(scope="module")
def dataset_search(tmp_path_factory):
    root = tmp_path_factory.mktemp("keras3")
    (x, y), (x_val, y_val) = rows(200, 0), rows(40, 1)
    train = tf.data.Dataset.from_tensor_slices((x, y)).batch(20)
    val = tf.data.Dataset.from_tensor_slices((x_val, y_val)).batch(20)
    tuner = PruningTuner(dense_functional, max_trials=2, directory=str(root),
                         verbose=False, fit_baseline=False)
    board = keras.callbacks.TensorBoard(str(root / "board"))
    tuner.search(train, validation_data=val, epochs=2, callbacks=[board])
    return {"root": root, "tuner": tuner, "x_val": x_val, "board": board}


def test_a_keras3_functional_model_is_searched_on_datasets(dataset_search):
    tuner = dataset_search["tuner"]
    stored = tuner.search_data
    assert (stored.batch_size, stored.steps_per_epoch) == (20, 10)  # The dataset's.
    np.testing.assert_array_equal(stored.x_val, dataset_search["x_val"])
    trials = tuner.oracle.get_best_trials(2)
    assert [trial.status for trial in trials] == ["COMPLETED"] * 2


def test_get_best_models_gives_back_a_stripped_keras3_model(dataset_search):
    tuner = dataset_search["tuner"]
    best = tuner.get_best_models(1)[0]
    assert isinstance(best, keras.Model) and not isinstance(best, tf_keras.Model)
    serving = sparsity.strip_pruning(tuner.load_model(tuner.best_trial()))
    assert not any("prune" in type(layer).__name__.lower() for layer in best.layers)
    x_val = dataset_search["x_val"][:8]
    data = tuner.search_data
    expected = serving(x_val / data.x_scale).numpy() * data.y_scale
    np.testing.assert_allclose(best.predict(x_val, verbose=0), expected, rtol=1e-4,
                               atol=1e-3)
    kernels = [w for w in best.weights if "kernel" in w.path]
    trial = tuner.best_trial()
    assert np.mean([np.mean(k.numpy() == 0) for k in kernels]) > 0 or \
        trial.hyperparameters.get("final_sparsity") < 0.05


def test_a_keras3_tensorboard_callback_logs_each_trial_apart(dataset_search):
    board_dir = dataset_search["root"] / "board"
    assert sorted(os.listdir(board_dir)) == ["0", "1"]
    for trial in ("0", "1"):
        assert list((board_dir / trial / "train").glob("events.out.tfevents.*"))
    assert dataset_search["board"].log_dir == str(board_dir)  # The user's is untouched.


def test_a_search_exports_a_keras3_model_as_today(dataset_search, tmp_path):
    manifest = dataset_search["tuner"].export(str(tmp_path / "export"))
    assert (tmp_path / "export" / "model.tflite").is_file()
    assert manifest["tflite"]["variant"]


# ---- What search takes, as keras-tuner's search (model.fit) takes it.

class RecordingHyperModel(PruningHyperModel):
    """Records what reaches ``fit``, then fails the trial without training."""

    calls = []

    def fit(self, hp, model, *args, **kwargs):
        self.calls.append((args, kwargs))
        raise RuntimeError("recorded, not trained")


def recorded_search(tmp_path, x, y=None, **kwargs):
    RecordingHyperModel.calls.clear()
    tuner = PruningTuner(RecordingHyperModel(tf_build), max_trials=1,
                         directory=str(tmp_path), verbose=False, fit_baseline=False)
    tuner.search(x, y, epochs=2, **kwargs)
    [(args, fit_kwargs)] = RecordingHyperModel.calls
    return tuner, args, fit_kwargs


def tf_build(hp):
    return tf_keras.Sequential([tf_keras.Input(shape=(8,)), tf_keras.layers.Dense(1)])


def test_a_plain_build_function_is_taken_as_keras_tuner_takes_it(tmp_path):
    tuner = PruningTuner(tf_build, max_trials=1, directory=str(tmp_path), verbose=False)
    assert isinstance(tuner.hypermodel, PruningHyperModel)
    assert tuner.hypermodel.build_model is tf_build


def test_validation_split_takes_the_last_rows_as_fit_does(tmp_path):
    x, y = rows(100, 0)
    weights = np.linspace(1, 2, 100).astype(np.float32)
    tuner, (x_fit, _), kwargs = recorded_search(tmp_path, x, y, validation_split=0.2,
                                                batch_size=10, sample_weight=weights)
    from keras.src.trainers.data_adapters.array_slicing import train_validation_split

    (x_train, _, w_train), (x_val, _, _) = train_validation_split(
        (x, y, weights), validation_split=0.2)  # What Keras 3's fit does.
    np.testing.assert_array_equal(tuner.search_data.x_val, x_val)
    np.testing.assert_allclose(x_fit * tuner.search_data.x_scale, x_train, rtol=1e-6)
    np.testing.assert_array_equal(kwargs["sample_weight"], w_train)


def test_weighted_validation_data_reaches_fit(tmp_path):
    (x, y), (x_val, y_val) = rows(100, 0), rows(20, 1)
    weights = np.arange(20, dtype=np.float32)
    _, _, kwargs = recorded_search(tmp_path, x, y, batch_size=10,
                                   validation_data=(x_val, y_val, weights))
    assert len(kwargs["validation_data"]) == 3
    np.testing.assert_array_equal(kwargs["validation_data"][2], weights)


@pytest.mark.parametrize("make, message", [
    (lambda x, y: tf.data.Dataset.from_tensor_slices((x, y)).batch(10).repeat(),
     r"^Expected training data as a finite tf\.data\.Dataset \(the scaling and the "
     r"baseline read all its rows\), received an infinite one; pass a finite dataset "
     r"\(without \.repeat\(\)\) of \(x, y\) batches, or numpy arrays x and y\.$"),
    (lambda x, y: tf.data.Dataset.from_tensor_slices({"x": x, "y": y}).batch(10),
     r"^Expected training data as a tf\.data\.Dataset of \(x, y\) or \(x, y, "
     r"sample_weight\) batches of tensors, received elements of dict;"),
    (lambda x, y: tf.data.Dataset.from_tensor_slices((x, y)),  # Not batched.
     r"^Expected training data as a tf\.data\.Dataset of batches, received single rows "
     r"\(a target of shape \(\)\); batch it first, for example dataset\.batch\(32\)\.$"),
])
def test_a_dataset_that_cannot_be_read_whole_is_refused(tmp_path, make, message):
    tuner = PruningTuner(tf_build, max_trials=1, directory=str(tmp_path), verbose=False)
    with pytest.raises(InputError, match=message):
        tuner.search(make(*rows(50, 0)), validation_data=rows(20, 1), epochs=2)


def test_a_constant_target_is_refused_by_the_api_as_by_the_cli(tmp_path):
    x, _ = rows(100, 0)
    y = np.full(100, 4.0, np.float32)
    tuner = PruningTuner(tf_build, max_trials=1, directory=str(tmp_path), verbose=False)
    with pytest.raises(InputError) as api:
        tuner.search(x, y, validation_data=rows(20, 1), epochs=2)
    with pytest.raises(InputError) as cli:
        data_lib.split_dataset(x, y, source="training data")
    assert str(api.value) == str(cli.value) == (
        "training data: Expected a target that varies, received the same value 4 in "
        "all 100 rows.")


def test_dataframes_and_validation_split_still_work(tmp_path):
    pandas = pytest.importorskip("pandas")
    x, y = rows(100, 0)
    frame = pandas.DataFrame(x, columns=[f"f{i}" for i in range(8)])
    tuner, _, _ = recorded_search(tmp_path, frame, pandas.Series(y),
                                  validation_split=0.25, batch_size=10)
    np.testing.assert_array_equal(tuner.search_data.x_val, x[75:])


def test_a_dataframe_with_text_and_missing_cells_takes_validation_split(tmp_path):
    pandas = pytest.importorskip("pandas")
    x, y = rows(100, 0)
    frame = pandas.DataFrame(x[:, :7], columns=[f"f{i}" for i in range(7)])
    frame["kind"] = np.array(["a", "b", "c", "d"])[np.arange(100) % 4]
    frame.loc[3, "f0"] = np.nan
    RecordingHyperModel.calls.clear()
    tuner = PruningTuner(RecordingHyperModel(), max_trials=1, directory=str(tmp_path),
                         verbose=False, fit_baseline=False)
    tuner.search(frame, y, validation_split=0.25, epochs=2, batch_size=10)
    [(args, _)] = RecordingHyperModel.calls
    assert len(args[0]) == 75 and len(tuner.search_data.x_val) == 25
    assert np.all(np.isfinite(tuner.search_data.x_val))


def test_fit_inputs_take_a_datasets_own_batch_size():
    x, y = rows(50, 0)
    inputs = fit_inputs.resolve(tf.data.Dataset.from_tensor_slices((x, y)).batch(16),
                                validation_data=rows(10, 1))
    assert inputs.batch_size == 16 and len(inputs.x) == 50
    np.testing.assert_array_equal(inputs.y, y)


def test_sample_weights_of_rows_without_a_target_are_dropped_with_the_rows():
    """A DataFrame's row without a target is dropped; its weight went on to fit,
    and every trial failed with "Data cardinality is ambiguous"."""
    import pandas as pd

    x = pd.DataFrame({"a": np.arange(12.0), "c": ["p", "q"] * 6})
    y = pd.Series(np.arange(12.0)).where(np.arange(12) != 3)
    weights = np.arange(12.0) + 1
    inputs = fit_inputs.resolve(x, y, validation_data=(x, y, weights),
                                sample_weight=weights)
    expected = np.delete(weights, 3)
    np.testing.assert_array_equal(inputs.sample_weight, expected)
    np.testing.assert_array_equal(inputs.validation_weight, expected)
    assert fit_inputs.resolve(x, y, validation_data=(x, y, None)).validation_weight is None
    with pytest.raises(InputError, match=r"^Expected sample_weight with one value per "
                                         r"row of x \(12 rows\), received 5 values\.$"):
        fit_inputs.resolve(x, y, validation_data=(x, y), sample_weight=weights[:5])


def test_a_keras_tuner_objective_naming_the_validation_loss_is_taken(tmp_path):
    """A notebook's BayesianOptimization(build, objective="val_loss", ...) swapped
    to PruningTuner died with "unexpected keyword argument 'objective'"."""
    for objective in ("val_loss", "val_mse", keras_tuner.Objective("val_loss", "min")):
        PruningTuner(tf_build, objective=objective, max_trials=1,
                     directory=str(tmp_path), verbose=False)
    with pytest.raises(InputError, match=r"^Expected objective 'val_mse' or 'val_loss' "
                                         r"\(the trials are scored on the validation MSE, "
                                         r"the loss\), received 'val_accuracy'\.$"):
        PruningTuner(tf_build, objective="val_accuracy", directory=str(tmp_path))


def test_the_cli_refuses_a_keras3_custom_layer_naming_it(tmp_path):
    (tmp_path / "k3_custom_model.py").write_text(
        "import keras\n\n\n"
        "class Scaler(keras.layers.Layer):\n"
        "    def call(self, inputs):\n"
        "        return inputs * 3\n\n\n"
        "def build(hp):\n"
        "    return keras.Sequential([keras.Input(shape=(4,)), Scaler(name='scaler'),\n"
        "                             keras.layers.Dense(1)])\n")
    result = run_main("search", "--n-samples", "100", "--n-features", "4",
                      "--n-informative", "4", "--model", "k3_custom_model:build",
                      "--directory", tmp_path / "logs", "--export-dir",
                      tmp_path / "export", cwd=tmp_path,
                      env={"PYTHONPATH": str(tmp_path)})
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip().splitlines()[-1] == (
        "tuner_prune: error: --model k3_custom_model:build: Expected a Keras 3 "
        "Sequential or functional model of stock layers (tuner_prune copies it into tf_keras for "
        "tfmot), received the layer 'scaler' of class k3_custom_model.Scaler; write it "
        "with tf_keras (`import tf_keras as keras`) and have the builder return a "
        "tf_keras model.")
    assert not (tmp_path / "export").exists()


class UsersHyperModel(keras_tuner.HyperModel):
    """A keras-tuner user's HyperModel: its build and its fit override."""

    fits = []

    def build(self, hp):
        return dense_functional(hp)

    def fit(self, hp, model, *args, **kwargs):
        UsersHyperModel.fits.append(kwargs["batch_size"])
        raise RuntimeError("recorded, not trained")


def test_a_keras_tuner_hypermodel_gives_its_build_and_fit(tmp_path):
    UsersHyperModel.fits.clear()
    tuner = PruningTuner(UsersHyperModel(), max_trials=1, directory=str(tmp_path),
                         verbose=False, fit_baseline=False)
    tuner.search(*rows(100, 0), validation_data=rows(20, 1), epochs=2, batch_size=10)
    assert UsersHyperModel.fits == [10]
    assert "units" in tuner.oracle.get_space().values
