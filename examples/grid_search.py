"""Grid search over AutoCLR: policy and the net's width, each fit with its own bounds.

Every candidate runs its own range test, so the bounds follow the net being
tried. ``net__*`` parameters reach the skorch net (and through it the
module: ``net__module__hidden``). With ``n_jobs > 1`` joblib's default loky
backend gives each worker ``cores // n_jobs`` torch threads, so the search
does not oversubscribe the CPU.

    python examples/grid_search.py
"""

import pandas as pd
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier
from torch import nn

from autoclr import AutoCLR
from autoclr.models import MLP


def main(max_epochs=24, hidden=(32, 64), policies=("triangular", "triangular2"), cv=3,
         n_jobs=-1, n_samples=None, random_state=0):
    """Run the search; returns the fitted GridSearchCV and the test accuracy."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X[:n_samples], y[:n_samples], test_size=0.3, random_state=random_state,
        stratify=y[:n_samples])
    net = NeuralNetClassifier(
        MLP, module__n_features=64, module__n_outputs=10,
        criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD,
        optimizer__momentum=0.9, batch_size=64, max_epochs=max_epochs, verbose=0)
    pipe = Pipeline([
        ("scale", StandardScaler()),  # float64 in; AutoCLR casts to float32 for skorch
        ("clr", AutoCLR(net, random_state=random_state)),
    ])
    grid = {"clr__policy": list(policies), "clr__net__module__hidden": list(hidden)}
    search = GridSearchCV(pipe, grid, cv=cv, n_jobs=n_jobs).fit(X_train, y_train)
    table = pd.DataFrame(search.cv_results_)[
        ["param_clr__policy", "param_clr__net__module__hidden", "mean_test_score",
         "std_test_score", "rank_test_score"]]
    print(table.to_string(index=False))
    accuracy = search.score(X_test, y_test)
    best = search.best_estimator_[-1]
    print(f"best: {search.best_params_}, bounds {best.base_lr_:.2g} .. {best.max_lr_:.2g}"
          f"; test accuracy {accuracy:.4f}")
    return search, accuracy


if __name__ == "__main__":
    main()
