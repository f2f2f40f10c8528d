"""Search quality: test MSE of the tuned model against four baselines, per seed.

Baselines, all on the built-in workload and the same split:
  dense    the same network trained without pruning (final sparsity 0);
  article  the article's own configuration with bare tfmot: 0 -> 0.75 sparsity,
           steps 1000 -> 5000, 200 epochs, batch 1024 (it reaches only ~29 %);
  manual   the best point (by validation MSE) of a final-sparsity sweep;
  random   keras-tuner's RandomSearch over the same space, same trials and epochs.
Usage:

    python bench/search_quality.py [--seeds 0,1,2] [--epochs 60] [--trials 10]
    python bench/search_quality.py --seeds 0 --epochs 3 --trials 1 --article-epochs 2 \\
        --manual 0.5 --n-samples 300 --n-features 20 --n-informative 10 \\
        --model MODULE:FUNCTION                         # a tiny run
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

import _workload  # noqa: E402
from tuner_prune.core import _kt  # noqa: E402
from tuner_prune.tuning.hypermodel import PruningHyperModel  # noqa: E402
from tuner_prune.settings.plan import resolve_sweep  # noqa: E402
from tuner_prune.reporting.sweep import SweepConfig, scaled_mse, train_one  # noqa: E402
from tuner_prune.export.measure import measure_sparsity  # noqa: E402
from tuner_prune.tuning.trial_runner import OBJECTIVE  # noqa: E402
from tuner_prune.tuning.tuner import PruningTuner  # noqa: E402

MANUAL_SPARSITIES = "0.5,0.8,0.9,0.95,0.98"
BATCH = 1024


def article_config(plan, epochs):
    """The article's script, verbatim in substance, with bare tfmot (its own: 200 epochs)."""
    from tuner_prune.core._keras import keras, sparsity

    dataset = plan.dataset
    model = sparsity.prune_low_magnitude(
        _workload.base_model(plan.builder, dataset.n_features),
        pruning_schedule=sparsity.PolynomialDecay(0.0, 0.75, 1000, 5000))
    model.compile(loss="mse", optimizer=keras.optimizers.Adam(learning_rate=0.001))
    model.fit(*dataset.scaled("train"), epochs=epochs, batch_size=BATCH, verbose=0,
              callbacks=[sparsity.UpdatePruningStep()])
    return scaled_mse(model, dataset, "test"), measure_sparsity(model)["sparsity"]


def searched(plan, trials, seed, oracle_class):
    """Test MSE and hyperparameters of the best trial of a search over the whole space."""
    dataset = plan.dataset
    hypermodel = PruningHyperModel(plan.builder, n_features=dataset.n_features,
                                   epochs=plan.config.epochs,
                                   steps_per_epoch=plan.steps_per_epoch)
    oracle = None
    if oracle_class is not None:
        oracle = oracle_class(objective=keras_tuner.Objective(OBJECTIVE, "min"),
                              max_trials=trials, seed=seed)
        _kt.set_seed(oracle, seed)  # keras-tuner takes 0 for "no seed".
    with tempfile.TemporaryDirectory() as folder:
        tuner = PruningTuner(hypermodel, max_trials=trials, seed=seed, directory=folder,
                             oracle=oracle, verbose=False)
        tuner.search(dataset.x_train, dataset.y_train,
                     validation_data=(dataset.x_val, dataset.y_val),
                     epochs=plan.config.epochs, batch_size=BATCH)
        trial = tuner.best_trial()
        model = tuner.load_model(trial)
        return scaled_mse(model, dataset, "test"), trial.hyperparameters.values


def one_seed(seed, args):
    """The five methods' test MSEs on the workload drawn with ``seed``."""
    manual = [float(value) for value in args.manual.split(",")]
    with tempfile.TemporaryDirectory() as out:
        plan = resolve_sweep(SweepConfig(
            epochs=args.epochs, batch_size=BATCH, seed=seed, out=out,
            sparsities=(0.0, *manual), **_workload.settings(args)))
        results = {}
        started = time.time()
        results["dense"] = train_one(plan, 0.0, 0)["test_mse"]
        results["article"], article_sparsity = article_config(plan, args.article_epochs)
        best_manual = min((train_one(plan, s, 0) for s in manual),
                          key=lambda row: row["val_mse"])
    results["manual"] = best_manual["test_mse"]
    results["random"], _ = searched(plan, args.trials, seed,
                                    keras_tuner.oracles.RandomSearchOracle)
    results["tuned"], tuned_hp = searched(plan, args.trials, seed, None)
    print(f"seed {seed} ({time.time() - started:.0f} s): " + ", ".join(
        f"{k} {v:.3g}" for k, v in results.items()), flush=True)
    print(f"  article reached sparsity {article_sparsity:.3f}; manual best at "
          f"{best_manual['final_sparsity']}; tuned: " + ", ".join(
              f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
              for k, v in tuned_hp.items()), flush=True)
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--article-epochs", type=int, default=200,
                        help="epochs of the article's configuration (its own: 200)")
    parser.add_argument("--manual", default=MANUAL_SPARSITIES,
                        help="final sparsities of the manual sweep")
    _workload.add_flags(parser)
    args = parser.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    print(f"epochs {args.epochs}, trials {args.trials}, batch {BATCH}, seeds {seeds}")
    runs = [one_seed(seed, args) for seed in seeds]
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
