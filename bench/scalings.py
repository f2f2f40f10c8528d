"""Input scalings for small tables: max-abs (the search's) against standard,
quantile and signed-log scaling, by 5-fold cross-validation.

A quick screen of the issue's candidate "scaling that survives outliers and heavy
tails", on the real tables of ``real_tables.py`` (text columns one-hot, rows
without a target dropped: ``--encode``). The model is scikit-learn's
``MLPRegressor`` (two hidden layers of 64, its defaults otherwise, 300 epochs, the
target scaled by its largest absolute value), a stand-in for the search's MLP that
trains in seconds; beside it ridge (``RidgeCV`` on max-abs-scaled columns, the
search's ``alpha`` grid) and ``HistGradientBoostingRegressor`` (defaults). Every
MSE is printed as a multiple of ridge's, averaged over the 5 folds of the whole
table (no test split).

Usage:

    python bench/scalings.py Hitters star98 diabetes Housing
    python bench/scalings.py diabetes --max-rows 150 --epochs 20   # a tiny run
"""

import argparse
import os
import sys
import warnings

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "bench"))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402
from sklearn.ensemble import HistGradientBoostingRegressor  # noqa: E402
from sklearn.linear_model import RidgeCV  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402
from sklearn.neural_network import MLPRegressor  # noqa: E402
from sklearn.pipeline import make_pipeline  # noqa: E402
from sklearn.preprocessing import (FunctionTransformer, MaxAbsScaler,  # noqa: E402
                                   QuantileTransformer, StandardScaler)

import real_tables  # noqa: E402
from tuner_prune.data import baseline  # noqa: E402


def signed_log(x):
    return np.sign(x) * np.log1p(np.abs(x))


SCALINGS = {
    "max-abs": MaxAbsScaler,
    "standard": StandardScaler,
    "quantile": lambda: QuantileTransformer(output_distribution="normal", n_quantiles=200,
                                            random_state=0),
    "signed log, standard": lambda: make_pipeline(FunctionTransformer(signed_log),
                                                  StandardScaler()),
}


def arrays(name, max_rows=None):
    """``(x, y)`` of table ``name``, one-hot, missing cells filled with medians."""
    frame, target = real_tables.prepared(name, True, max_rows)
    y = frame[target].to_numpy(np.float64)
    x = frame.drop(columns=[target]).to_numpy(np.float64)
    medians = np.nanmedian(x, axis=0)
    return np.where(np.isnan(x), medians, x), y


def fold_mses(x, y, train, test, epochs):
    """``{model: test MSE}`` of one fold."""
    y_scale = np.abs(y[train]).max()
    found = {}
    for name, make in SCALINGS.items():
        scaling = make().fit(x[train])
        mlp = MLPRegressor(hidden_layer_sizes=(64, 64), max_iter=epochs, random_state=0)
        mlp.fit(scaling.transform(x[train]), y[train] / y_scale)
        found[f"MLP, {name}"] = np.mean(
            (mlp.predict(scaling.transform(x[test])) * y_scale - y[test]) ** 2)
    scaling = MaxAbsScaler().fit(x[train])
    ridge = RidgeCV(alphas=baseline.ALPHAS).fit(scaling.transform(x[train]), y[train])
    found["ridge"] = np.mean((ridge.predict(scaling.transform(x[test])) - y[test]) ** 2)
    boosting = HistGradientBoostingRegressor(random_state=0).fit(x[train], y[train])
    found["boosting"] = np.mean((boosting.predict(x[test]) - y[test]) ** 2)
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tables", nargs="*",
                        default=["Hitters", "star98", "diabetes", "Housing"])
    parser.add_argument("--max-rows", type=int, help="keep at most this many rows")
    parser.add_argument("--epochs", type=int, default=300, help="MLPRegressor's max_iter")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")  # MLPRegressor's "not converged" after its epochs.
    columns = [*(f"MLP, {name}" for name in SCALINGS), "boosting"]
    print("| table | rows | " + " | ".join(columns) + " |")
    print("| --- | --- | " + " | ".join("---" for _ in columns) + " |")
    for name in args.tables:
        x, y = arrays(name, args.max_rows)
        folds = [fold_mses(x, y, train, test, args.epochs) for train, test in
                 KFold(5, shuffle=True, random_state=0).split(x)]
        ridge = np.mean([fold["ridge"] for fold in folds])
        ratios = [np.mean([fold[column] for fold in folds]) / ridge for column in columns]
        print(f"| {name} | {len(y)} | " + " | ".join(f"{r:.3g}" for r in ratios) + " |",
              flush=True)


if __name__ == "__main__":
    main()
