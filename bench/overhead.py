"""Pruning and plugin overhead on the article's MLP, measured side by side.

  pruning overhead: median time per training step, pruned (tfmot wrapper and
                    schedule) against the same network dense;
  plugin overhead:  wall time of one tuner_prune trial (PruningTuner, fixed
                    schedule) against a bare tfmot fit of the same schedule
                    with the same validation data; and, of the difference, the
                    time the trial spends converting the model to TFLite to
                    record its size (timed again on the trial's model).
Runs alternate (dense, pruned, dense, ...) so that load on the machine hits
both sides alike. The default length is that of a trial of ``search`` (80
epochs); the trial's extra cost is mostly fixed, so shorter trials show a
larger ratio. Usage:

    python bench/overhead.py [--epochs 80] [--repeats 3]
    python bench/overhead.py --epochs 3 --repeats 1 --n-samples 300 --n-features 20 \\
        --n-informative 10 --model MODULE:FUNCTION     # a tiny run
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import _workload  # noqa: E402
from tuner_prune.data import dataset as data_lib  # noqa: E402
from tuner_prune.space import schedule as schedule_lib  # noqa: E402
from tuner_prune.settings.config import SearchConfig  # noqa: E402
from tuner_prune.export.measure import trial_tflite_bytes  # noqa: E402
from tuner_prune.core._keras import keras, sparsity  # noqa: E402
from tuner_prune.tuning.hypermodel import PruningHyperModel  # noqa: E402
from tuner_prune.space.bounds import ScheduleSpace  # noqa: E402
from tuner_prune.reporting.sweep import default_steps  # noqa: E402
from tuner_prune.tuning.tuner import PruningTuner  # noqa: E402

BATCH = 1024
FINAL = 0.9


class StepTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_begin(self, batch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        self.times.append(time.perf_counter() - self._start)


def fit(builder, dataset, epochs, pruned, begin, end, timer=None):
    """Bare tf_keras / tfmot training; returns wall seconds."""
    keras.backend.clear_session()
    model = _workload.base_model(builder, dataset.n_features)
    callbacks = [timer] if timer else []
    if pruned:
        pruning = schedule_lib.PruningSchedule(FINAL, 3.0, begin, end, total_steps=end)
        model = sparsity.prune_low_magnitude(model, pruning_schedule=sparsity.PolynomialDecay(
            0.0, FINAL, begin, end, power=3.0, frequency=pruning.frequency))
        callbacks.insert(0, sparsity.UpdatePruningStep())
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(1e-3))
    start = time.perf_counter()
    model.fit(*dataset.scaled("train"), validation_data=dataset.scaled("val"),
              epochs=epochs, batch_size=BATCH, verbose=0, callbacks=callbacks)
    return time.perf_counter() - start


def tuner_trial(builder, dataset, epochs, begin, end):
    """One tuner_prune trial with the same schedule.

    Returns:
        Wall seconds of ``search()``, and of recording the trained model's
        TFLite size again as the trial did.
    """
    per_epoch = schedule_lib.steps_per_epoch(len(dataset.x_train), BATCH)
    space = ScheduleSpace.from_text(final_sparsity=str(FINAL), power="3",
                                    begin_step=str(begin), end_step=str(end))
    hypermodel = PruningHyperModel(builder, n_features=dataset.n_features, epochs=epochs,
                                   steps_per_epoch=per_epoch, space=space)
    with tempfile.TemporaryDirectory() as folder:
        tuner = PruningTuner(hypermodel, max_trials=1, directory=folder, verbose=False)
        start = time.perf_counter()
        tuner.search(dataset.x_train, dataset.y_train,
                     validation_data=(dataset.x_val, dataset.y_val), epochs=epochs,
                     batch_size=BATCH)
        trial_seconds = time.perf_counter() - start
        model = tuner.load_model(tuner.best_trial())
        start = time.perf_counter()
        trial_tflite_bytes(model, np.ones(dataset.n_features, np.float32), dataset.y_scale)
        return trial_seconds, time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=SearchConfig.epochs)
    parser.add_argument("--repeats", type=int, default=3)
    _workload.add_flags(parser)
    args = parser.parse_args(argv)
    dataset = data_lib.load_dataset(n_samples=args.n_samples, n_features=args.n_features,
                                    n_informative=args.n_informative)
    builder = _workload.builder(args)
    per_epoch = schedule_lib.steps_per_epoch(len(dataset.x_train), BATCH)
    begin, end = default_steps(args.epochs * per_epoch)
    fit(builder, dataset, 2, True, 1, 9)  # warm-up: graph building, thread pools
    steps = {False: [], True: []}
    walls = {"bare": [], "tuner": [], "size": []}
    for _ in range(args.repeats):
        for pruned in (False, True):
            timer = StepTimer()
            fit(builder, dataset, args.epochs, pruned, begin, end, timer)
            steps[pruned].append(statistics.median(timer.times[per_epoch:]))
        walls["bare"].append(fit(builder, dataset, args.epochs, True, begin, end))
        trial_seconds, size_seconds = tuner_trial(builder, dataset, args.epochs, begin, end)
        walls["tuner"].append(trial_seconds)
        walls["size"].append(size_seconds)
    dense_ms, pruned_ms = (statistics.median(steps[k]) * 1e3 for k in (False, True))
    bare_s, tuner_s, size_s = (statistics.median(walls[k]) for k in ("bare", "tuner", "size"))
    print(f"{args.epochs} epochs x {per_epoch} steps, batch {BATCH}, schedule "
          f"{begin}->{end} to {FINAL}, {args.repeats} alternating repeats (medians)")
    print("| step time dense | step time pruned | pruned / dense |")
    print(f"| {dense_ms:.1f} ms | {pruned_ms:.1f} ms | {pruned_ms / dense_ms:.3f} |")
    print("| bare tfmot fit | tuner_prune trial | trial / bare | of the extra: TFLite size record |")
    print(f"| {bare_s:.1f} s | {tuner_s:.1f} s | {tuner_s / bare_s:.3f} | {size_s:.1f} s "
          f"({size_s / bare_s:.3f} of the bare fit) |")


if __name__ == "__main__":
    main()
