"""The SavedModel's front end for a CSV table: raw cells in, the model's inputs out.

A search on a CSV whose columns need encoding (text, missing cells) ships a
SavedModel whose ``serving_default`` signature takes one string tensor
``cells`` of shape ``(batch, columns)``: each row's raw cells as the CSV holds
them (numbers as text, ``""``, ``NA`` or ``NaN`` where missing), in the order
of the manifest's ``inputs.columns``. Its ``RawColumns`` layer applies the
fitted ``encoding.Encoding`` in TensorFlow, as ``encoding.encode_rows`` does in
numpy for the ``.tflite``, which takes the encoded numbers.
"""

import contextlib
import io
import os
import tempfile

import tensorflow as tf

from tuner_prune.data import table as table_lib
from tuner_prune.core._keras import keras

INPUT = "cells"


class RawColumns(keras.layers.Layer):
    """String cells ``(batch, columns)`` to float32 inputs ``(batch, width)``."""

    def __init__(self, inputs, **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.inputs_mapping = inputs

    def call(self, cells):
        parts = []
        for position, spec in enumerate(self.inputs_mapping["columns"]):
            cell = tf.strings.strip(cells[:, position])
            missing = tf.reduce_any(tf.equal(tf.strings.lower(cell)[:, None],
                                             sorted(table_lib.MISSING)), axis=1)
            if spec["kind"] == table_lib.NUMERIC:
                parts += _numeric(spec, cell, missing)
            else:
                parts += _categorical(spec, tf.where(missing, "", cell))
        parts.sort(key=lambda part: part[0])
        return tf.concat([tensor for _, tensor in parts], axis=1)


def _numeric(spec, cell, missing):
    """``[(index, (batch, 1) tensor)]``: the filled value, then the indicator."""
    value = tf.strings.to_number(tf.where(missing, "0", cell), tf.float32)
    filled = tf.where(missing, tf.constant(spec["fill"], tf.float32), value)
    parts = [(spec["index"], filled[:, None])]
    if spec["missing_index"] is not None:
        parts.append((spec["missing_index"], tf.cast(missing, tf.float32)[:, None]))
    return parts


def _categorical(spec, level):
    equal = tf.equal(level[:, None], tf.constant(spec["levels"], tf.string))
    found = tf.reduce_any(equal, axis=1)
    if spec["encoding"] == "one_hot":
        one_hot = tf.cast(equal, tf.float32)
        other = 1.0 - tf.cast(found, tf.float32)[:, None]
        return [(spec["indices"][0], tf.concat([one_hot, other], axis=1))]
    values = tf.constant(spec["values"], tf.float32)
    value = tf.where(found, tf.gather(values, tf.argmax(tf.cast(equal, tf.int32), axis=1)),
                     tf.constant(spec["other_value"], tf.float32))
    return [(spec["index"], value[:, None])]


def raw_model(model, encoding):
    """``model`` (float32 inputs) behind ``RawColumns``: a model taking ``cells``."""
    cells = keras.Input(shape=(len(encoding.raw_columns),), dtype=tf.string, name=INPUT)
    encoded = RawColumns(encoding.manifest(), name="raw_columns")(cells)
    return keras.Model(cells, model(encoded), name="tuner_prune_raw_model")


def takes_raw_cells(dataset):
    """Whether the shipped SavedModel of ``dataset`` takes raw cells."""
    return dataset.encoding is not None and not dataset.encoding.is_identity()


@contextlib.contextmanager
def saved_models(model, dataset, saved_model_dir):
    """Writes the shipped SavedModel; yields the one the TFLite variants convert.

    Those are the same folder unless the SavedModel takes raw cells: then the
    float32 model is written to a temporary folder, removed afterwards.
    """
    if not takes_raw_cells(dataset):
        _export(model, saved_model_dir)
        yield saved_model_dir
        return
    _export(raw_model(model, dataset.encoding), saved_model_dir)
    with tempfile.TemporaryDirectory() as folder:
        numeric = os.path.join(folder, "saved_model")
        _export(model, numeric)
        yield numeric


def _export(model, folder):
    with contextlib.redirect_stdout(io.StringIO()):  # export() prints its signature.
        model.export(folder)
