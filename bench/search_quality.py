"""Search quality: test MSE of the tuned model against four baselines, per seed.

Baselines, all on the built-in workload and the same split:
  dense    the same network trained without pruning (final sparsity 0);
  article  the article's own configuration with bare tfmot: 0 -> 0.75 sparsity,
           steps 1000 -> 5000, 200 epochs, batch 1024 (it reaches only ~29 %);
  manual   the best point (by validation MSE) of a final-sparsity sweep;
  random   keras-tuner's RandomSearch over the same space, same trials and epochs.
Usage:

    python bench/search_quality.py [--seeds 0,1,2] [--epochs 40] [--trials 8]
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras_tuner  # noqa: E402

from tuner_prune import schedule as schedule_lib  # noqa: E402
from tuner_prune.hypermodel import PruningHyperModel  # noqa: E402
from tuner_prune.plan import resolve_sweep  # noqa: E402
from tuner_prune.sweep import SweepConfig, scaled_mse, train_one  # noqa: E402
from tuner_prune.measure import measure_sparsity  # noqa: E402
from tuner_prune.tuner import OBJECTIVE, PruningTuner  # noqa: E402

MANUAL_SPARSITIES = (0.5, 0.8, 0.9, 0.95, 0.98)
BATCH = 1024


def article_config(dataset):
    """The article's script, verbatim in substance, with bare tfmot."""
    from tuner_prune._keras import keras, sparsity
    from tuner_prune.models import article_mlp

    model = sparsity.prune_low_magnitude(
        article_mlp(None, dataset.n_features),
        pruning_schedule=sparsity.PolynomialDecay(0.0, 0.75, 1000, 5000))
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=0.001))
    model.fit(*dataset.scaled("train"), epochs=200, batch_size=BATCH, verbose=0,
              callbacks=[sparsity.UpdatePruningStep()])
    return scaled_mse(model, dataset, "test"), measure_sparsity(model)["sparsity"]


def searched(dataset, epochs, trials, seed, oracle_class):
    per_epoch = schedule_lib.steps_per_epoch(len(dataset.x_train), BATCH)
    hypermodel = PruningHyperModel(n_features=dataset.n_features, epochs=epochs,
                                   steps_per_epoch=per_epoch)
    oracle = None
    if oracle_class is not None:
        oracle = oracle_class(objective=keras_tuner.Objective(OBJECTIVE, "min"),
                              max_trials=trials, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        tuner = PruningTuner(hypermodel, max_trials=trials, seed=seed, directory=folder,
                             oracle=oracle, verbose=False)
        tuner.search(*dataset.scaled("train"), validation_data=dataset.scaled("val"),
                     batch_size=BATCH, target_scale=dataset.y_scale)
        trial = tuner.best_trial()
        model = tuner.load_model(trial)
        return scaled_mse(model, dataset, "test"), trial.hyperparameters.values


def one_seed(seed, epochs, trials):
    plan = resolve_sweep(SweepConfig(epochs=epochs, batch_size=BATCH, seed=seed,
                                     out=tempfile.mkdtemp()))
    dataset = plan.dataset
    results = {}
    started = time.time()
    dense = train_one(plan, 0.0, 0)
    results["dense"] = dense["test_mse"]
    results["article"], article_sparsity = article_config(dataset)
    sweep = [train_one(plan, s, 0)
             for s in MANUAL_SPARSITIES]
    best_manual = min(sweep, key=lambda row: row["val_mse"])
    results["manual"] = best_manual["test_mse"]
    results["random"], _ = searched(dataset, epochs, trials, seed,
                                    keras_tuner.oracles.RandomSearchOracle)
    results["tuned"], tuned_hp = searched(dataset, epochs, trials, seed, None)
    print(f"seed {seed} ({time.time() - started:.0f} s): " + ", ".join(
        f"{k} {v:.3g}" for k, v in results.items()), flush=True)
    print(f"  article reached sparsity {article_sparsity:.3f}; manual best at "
          f"{best_manual['final_sparsity']}; tuned: " + ", ".join(
              f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
              for k, v in tuned_hp.items()), flush=True)
    return results


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--trials", type=int, default=8)
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"epochs {args.epochs}, trials {args.trials}, batch {BATCH}, seeds {seeds}")
    runs = [one_seed(seed, args.epochs, args.trials) for seed in seeds]
    print("\n| method | " + " | ".join(f"seed {s}" for s in seeds) +
          " | mean test MSE | tuned / method |")
    print("|---" * (len(seeds) + 3) + "|")
    mean_tuned = statistics.mean(run["tuned"] for run in runs)
    for method in runs[0]:
        values = [run[method] for run in runs]
        mean = statistics.mean(values)
        print(f"| {method} | " + " | ".join(f"{v:.3g}" for v in values) +
              f" | {mean:.3g} | {mean_tuned / mean:.2f} |")


if __name__ == "__main__":
    main()
