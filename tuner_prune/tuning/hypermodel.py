"""``PruningHyperModel``: a base model plus a searched tfmot pruning schedule."""

import functools
import math

import keras_tuner

from tuner_prune.space import models, overrides, bounds as space_lib
from tuner_prune.tuning import keras3
from tuner_prune.core._keras import keras, sparsity
from tuner_prune.core.errors import InputError

MSE = "mse"  # The compiled metric; Keras logs it as ``mse`` and ``val_mse``.
LEARNING_RATE = "learning_rate"  # A model's hyperparameter the compile uses.


class PruningHyperModel(keras_tuner.HyperModel):
    """Wraps a base-model builder with ``prune_low_magnitude``.

    Declares ``final_sparsity``, ``power`` (α), ``begin_step`` and ``end_step``,
    bounded by the training length so that every schedule reaches its final
    sparsity before training ends, and ``frequency`` when the space fixes or
    bounds it (each trial snaps it to a divisor of ``end_step - begin_step``).
    A base model that declares ``learning_rate`` is compiled with it.

    The training length and the row shape come from the data:
    ``PruningTuner.search`` calls ``configure`` with the rows' shape, its
    ``epochs`` and the steps per epoch of its ``batch_size`` before the first
    trial, and resolves the schedule space against that training length.

    Args:
        build_model: ``f(hp)`` returning a tf_keras model, or a Keras 3
            (``import keras``) Sequential or functional model of stock layers,
            which is copied into tf_keras (``keras3``); its compile settings
            are not used. ``None`` builds ``models.builtin_model``, which
            searches its own size (from a linear model to the article's MLP),
            over ``n_features`` inputs (after a ``Flatten`` for N-d rows).
        n_features: Input width of flat rows; optional, as ``input_shape``.
        input_shape: Shape of one row, for example ``(8, 8, 1)`` for images;
            by default the shape of the rows given to ``search``. Used by the
            default builder and to build models that do not declare their input.
        epochs: Epochs of one trial; optional, ``search(epochs=...)`` rules.
        steps_per_epoch: Optimizer steps per epoch; optional, the data and
            ``search``'s ``batch_size`` rule.
        space: A ``ScheduleSpace`` fixing or narrowing hyperparameters; one
            already resolved for this training length (a ``Plan``'s) is used
            as it is.
        initial_sparsity: Sparsity at ``begin_step``.
        learning_rate: Adam learning rate of a model that declares none.
        block_size: tfmot's ``block_size``: ``(rows, columns)`` of the blocks
            of each 2-D kernel that are pruned together. A Dense kernel is
            ``(inputs, units)``, so ``(16, 1)`` prunes runs of 16 inputs of one
            unit: the 1x16 blocks of TFLite's sparse int8 fully-connected kernel
            (``(4, 1)``: its float32 1x4 kernel). A kernel with a dimension of 1
            (a ``Dense(1)`` output) is left dense, other kernels are pruned
            unstructured (tfmot pools blocks of 2-D kernels only).
        hyperparameters: ``{name: value or space.Bound}`` fixing or bounding
            hyperparameters the base model declares (``--hp``); checked
            against them by building the base model once.
        widest_units: The built-in model's widest layer (``models.widest_units``
            of the table, the CLI's); ``None``, or a ``units`` among
            ``hyperparameters``, leaves it ``models.UNITS``'s.

    Raises:
        InputError: A bad ``space`` for the training length given, or a
            ``hyperparameters`` name the base model does not declare (or a
            value of the wrong type).
    """

    def __init__(self, build_model=None, *, n_features=None, input_shape=None,
                 epochs=None, steps_per_epoch=None, space=None, initial_sparsity=0.0,
                 learning_rate=1e-3, block_size=(1, 1), hyperparameters=None,
                 widest_units=None, name="pruning_hypermodel"):
        super().__init__(name=name)
        self.build_model = build_model
        self.input_shape = None
        self.n_features = None
        self.epochs = epochs
        self.steps_per_epoch = steps_per_epoch
        self.space = space
        self.initial_sparsity = initial_sparsity
        self.learning_rate = learning_rate
        self.block_size = block_size
        self.bounds = None
        self.hyperparameters = dict(hyperparameters or {})
        self.widest_units = None if "units" in self.hyperparameters else widest_units
        self.overrides = None
        shape = input_shape if input_shape is not None else (
            None if n_features is None else (n_features,))
        self.configure(shape, epochs, steps_per_epoch)

    def configure(self, input_shape=None, epochs=None, steps_per_epoch=None):
        """Sets the row shape and the training length, and resolves the space.

        ``None`` keeps what is set. The schedule space is resolved once both
        ``epochs`` and ``steps_per_epoch`` are known; the ``hyperparameters``
        are checked once the base model can be built.

        Raises:
            InputError: As the constructor.
        """
        if input_shape is not None:
            self.input_shape = tuple(input_shape)
            self.n_features = math.prod(self.input_shape)
        self.epochs = epochs if epochs is not None else self.epochs
        self.steps_per_epoch = (steps_per_epoch if steps_per_epoch is not None
                                else self.steps_per_epoch)
        if self.epochs is not None and self.steps_per_epoch is not None:
            self.bounds = (self.space or space_lib.ScheduleSpace()).resolve(
                self.total_steps, self.steps_per_epoch)
        if self.overrides is None and (self.input_shape is not None or self.build_model):
            self.overrides = (overrides.prepare(self.hyperparameters, self.model_space())
                              if self.hyperparameters else [])

    @property
    def configured(self):
        """Whether the row shape and the training length are known (trials can run)."""
        return self.bounds is not None and self.input_shape is not None

    @property
    def total_steps(self):
        return self.epochs * self.steps_per_epoch

    def model_space(self):
        """``{name: hyperparameter}`` the base model declares; ``None`` if it raises."""
        hp = keras_tuner.HyperParameters()
        schedule_names = (set(self.declare_schedule(hp)) if self.bounds is not None
                          else set(space_lib.SCHEDULE_HYPERPARAMETERS))
        try:
            self.build_base(hp)
        except Exception:  # A builder that raises fails its trials instead.
            return None
        return {p.name: p for p in hp.space if p.name not in schedule_names}

    def declare(self, hp):
        """Declares the schedule, then the ``hyperparameters`` overrides; the schedule's values."""
        values = self.declare_schedule(hp)
        overrides.declare(hp, self.overrides or [])
        return values

    def declare_schedule(self, hp):
        """Declares the schedule hyperparameters (``ScheduleSpace.declare``); their values."""
        return self.bounds.declare(hp)

    def schedule(self, hp):
        """The ``PruningSchedule`` a trial with ``hp`` trains with (``bounds.schedule_of``)."""
        return space_lib.schedule_of(self.declare(hp), self.total_steps, self.initial_sparsity)

    def build_base(self, hp):
        """The user's (or the default) base model, checked and built.

        A Keras 3 model is copied into tf_keras (``keras3.to_tf_keras``).
        """
        builder = self.build_model or self.default_model
        model = builder(hp)
        if keras3.is_keras3_model(model):
            model = keras3.to_tf_keras(model, self.input_shape)
        model = models.check_model(model, "model builder")
        if not model.built and self.input_shape is not None:
            model.build((None, *self.input_shape))
        return model

    def check_builder(self):
        """Refuses, before any training, a Keras 3 model that cannot be copied.

        The builder is called once with the default hyperparameters; a builder
        that raises is left to fail its trials, as before.

        Raises:
            models.BuilderError: The Keras 3 model's layer that cannot be copied.
        """
        if self.build_model is None:
            return
        hp = keras_tuner.HyperParameters()
        self.declare(hp)
        try:
            model = self.build_model(hp)
        except Exception:  # Reported by each trial instead.
            return
        if keras3.is_keras3_model(model):
            keras3.to_tf_keras(model, self.input_shape)

    def user_model(self, hp, pruned):
        """The builder's own Keras 3 model for ``hp`` with ``pruned``'s weights, stripped
        (``keras3.user_model``); ``None`` when the builder returns a tf_keras model."""
        return keras3.user_model(self.build_model, hp, pruned)

    def default_model(self, hp):
        """The built-in model over the rows (``models.builtin_for_rows``)."""
        return models.builtin_for_rows(hp, self.input_shape, self.block_size, self.widest_units)

    def build(self, hp):
        """A compiled, pruning-wrapped tf_keras model for ``hp``.

        Its loss is the MSE plus any penalty of the base model (regularizers,
        ``add_loss``); the ``mse`` metric is the MSE alone, the trial's score.
        """
        pruning = self.schedule(hp)  # Declared first: the overrides reach the builder.
        model = prune(self.build_base(hp), pruning, self.block_size)
        learning_rate = float(hp.values.get(LEARNING_RATE, self.learning_rate))
        model.compile(optimizer=keras.optimizers.Adam(learning_rate),
                      loss="mse", metrics=[keras.metrics.MeanSquaredError(name=MSE)])
        return model

    def fit(self, hp, model, *args, **kwargs):
        """Trains ``model``: ``model.fit(*args, **kwargs)``, as keras-tuner's default.

        ``PruningTuner`` calls it with the scaled training data,
        ``validation_data``, ``epochs``, ``batch_size``, ``verbose=0`` and
        ``callbacks``. An override must pass those ``callbacks`` to
        ``model.fit``: they update the pruning masks (``UpdatePruningStep``)
        and score the trial at its final sparsity. Whatever it returns, the
        trial is scored by the tuner's callback.
        """
        return model.fit(*args, **kwargs)


def prune(base, pruning, block_size=(1, 1)):
    """``base`` wrapped by tfmot's ``prune_low_magnitude`` on the ``PruningSchedule``
    ``pruning`` (tfmot's ``PolynomialDecay``), in blocks of ``block_size`` or not."""
    tfmot_schedule = sparsity.PolynomialDecay(
        initial_sparsity=pruning.initial_sparsity, final_sparsity=pruning.final_sparsity,
        begin_step=pruning.begin_step, end_step=pruning.end_step, power=pruning.power,
        frequency=pruning.frequency)
    if tuple(block_size) == (1, 1):
        return sparsity.prune_low_magnitude(base, pruning_schedule=tfmot_schedule)
    return keras.models.clone_model(base, clone_function=functools.partial(
        _prune_in_blocks, schedule=tfmot_schedule, block_size=tuple(block_size)))


def _prune_in_blocks(layer, schedule, block_size):
    """``layer`` wrapped for block pruning, for unstructured pruning or not at all.

    tfmot's block pooling fails on a 2-D kernel with a dimension of 1, and
    TFLite could only densify such a kernel at run time: it stays dense.
    """
    kernel = getattr(layer, "kernel", None)
    is_matrix = kernel is not None and kernel.shape.rank == 2
    if is_matrix and min(kernel.shape) == 1:
        return layer
    return sparsity.prune_low_magnitude(
        layer, pruning_schedule=schedule, block_size=block_size if is_matrix else (1, 1))


SCORED_ON = ("val_mse", "val_loss")  # The loss is the MSE: both name the score.


def check_objective(objective):
    """Takes a keras-tuner user's ``objective`` when it names what trials are scored on.

    Raises:
        InputError: Another objective: the trials are scored on the validation MSE.
    """
    if objective is None:
        return
    name = getattr(objective, "name", objective)
    direction = getattr(objective, "direction", "min")
    if name in SCORED_ON and direction == "min":
        return
    shown = name if direction == "min" else f"{name} ({direction})"
    raise InputError(f"Expected objective 'val_mse' or 'val_loss' (the trials are scored "
                     f"on the validation MSE, the loss), received {shown!r}.")


def as_pruning_hypermodel(hypermodel):
    """``hypermodel``, or what keras-tuner takes as one in a ``PruningHyperModel``.

    A plain ``build(hp)`` function is the builder; a keras-tuner ``HyperModel``
    gives its ``build`` and, when it overrides it, its ``fit``.

    Raises:
        InputError: Neither.
    """
    if isinstance(hypermodel, PruningHyperModel):
        return hypermodel
    if isinstance(hypermodel, keras_tuner.HyperModel):
        wrapped = PruningHyperModel(hypermodel.build)
        if type(hypermodel).fit is not keras_tuner.HyperModel.fit:
            wrapped.fit = hypermodel.fit
        return wrapped
    if callable(hypermodel):
        return PruningHyperModel(hypermodel)
    raise InputError(f"Expected a PruningHyperModel, a keras-tuner HyperModel or a "
                     f"build(hp) function, received {type(hypermodel).__name__}.")

