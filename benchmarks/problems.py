"""The benchmark problems: small, offline data sets and the nets that train on them.

Every problem builds its data once (a fixed train/test split: the seeds of the
benchmark vary the weights, the shuffling and the range test's split, not the
data) and makes an unfitted skorch net with the problem's epoch budget. The
net keeps skorch's default ``train_split`` (a stratified 80/20 validation
split), which is what every contender trains and validates on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification, make_friedman1
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from autoclr.models import MLP, SmallCNN

__all__ = ["Problem", "PROBLEMS", "get_problems"]


@dataclass
class Problem:
    """A data set, a net factory and an epoch budget.

    Attributes
    ----------
    name : str
        Short identifier used in tables and file names.
    description : str
        One line for the docs.
    load : callable
        ``load() -> (X_train, X_test, y_train, y_test)``, float32 X.
    make_net : callable
        ``make_net(**params) -> skorch net`` (unfitted, ``verbose=0``).
    max_epochs : int
        Epoch budget of every contender.
    classifier : bool
        Accuracy (True) or R^2 (False) is the score.
    """

    name: str
    description: str
    load: Callable
    make_net: Callable
    max_epochs: int
    classifier: bool = True
    _data: tuple | None = field(default=None, repr=False)

    def data(self):
        if self._data is None:
            self._data = self.load()
        return self._data


# ---------------------------------------------------------------- data sets
def _digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


class FlatImageCNN(SmallCNN):
    """:class:`~autoclr.models.SmallCNN` fed flat rows, viewed as 1x8x8 images.

    AutoCLR validates array input as 2-d (scikit-learn's ``validate_data``
    without ``allow_nd``), so the images travel flat and are reshaped here.
    """

    def forward(self, X):
        return super().forward(X.view(-1, 1, 8, 8))


def _split_scaled(X, y, stratify):
    """70/30 split (seed 0), features standardised on the training part, float32."""
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=0, stratify=y if stratify else None)
    scaler = StandardScaler().fit(X_train)
    return (scaler.transform(X_train).astype(np.float32),
            scaler.transform(X_test).astype(np.float32), y_train, y_test)


def _hard_classification():
    # 10 classes, few informative features, low separation and 5 % label noise
    X, y = make_classification(
        n_samples=3000, n_features=30, n_informative=12, n_redundant=6,
        n_classes=10, n_clusters_per_class=2, class_sep=0.9, flip_y=0.05,
        random_state=0,
    )
    return _split_scaled(X, y, stratify=True)


def _friedman():
    X, y = make_friedman1(n_samples=2000, n_features=10, noise=1.0, random_state=0)
    X_train, X_test, y_train, y_test = _split_scaled(X, y, stratify=False)
    mu, sd = y_train.mean(), y_train.std()
    return (X_train, X_test, ((y_train - mu) / sd).astype(np.float32),
            ((y_test - mu) / sd).astype(np.float32))


def _tabular():
    # 4 classes, moderately separated, for the Adam problem
    X, y = make_classification(
        n_samples=2500, n_features=20, n_informative=8, n_redundant=4,
        n_classes=4, n_clusters_per_class=3, class_sep=1.0, flip_y=0.02,
        random_state=1,
    )
    return _split_scaled(X, y, stratify=True)


# --------------------------------------------------------------------- nets
def _classifier(module, max_epochs, optimizer=torch.optim.SGD, **params):
    base = dict(
        module=module,
        criterion=nn.CrossEntropyLoss,
        optimizer=optimizer,
        batch_size=64,
        max_epochs=max_epochs,
        verbose=0,
    )
    if optimizer is torch.optim.SGD:
        base["optimizer__momentum"] = 0.9
    base.update(params)
    return NeuralNetClassifier(**base)


def _regressor(module, max_epochs, **params):
    base = dict(
        module=module,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        batch_size=64,
        max_epochs=max_epochs,
        verbose=0,
    )
    base.update(params)
    return NeuralNetRegressor(**base)


def _net_factory(kind, module, max_epochs, **fixed):
    def make_net(**params):
        merged = {**fixed, **params}
        merged.setdefault("max_epochs", max_epochs)
        if kind == "classifier":
            return _classifier(module, **merged)
        return _regressor(module, **merged)

    return make_net


def _problems(max_epochs=30):
    return [
        Problem(
            "digits_mlp", "digits (1257 train / 540 test), MLP 64-64, SGD momentum 0.9",
            _digits,
            _net_factory("classifier", MLP, max_epochs, module__n_features=64,
                         module__n_outputs=10),
            max_epochs,
        ),
        Problem(
            "digits_cnn", "digits as 1x8x8 images, SmallCNN(16/32 filters), "
            "SGD momentum 0.9",
            _digits,
            _net_factory("classifier", FlatImageCNN, max_epochs, module__n_outputs=10),
            max_epochs,
        ),
        Problem(
            "hard_10class", "generated, 10 classes, 12/30 informative, class_sep 0.9, "
            "5 % label noise (2100 / 900), MLP 128-128, SGD momentum 0.9",
            _hard_classification,
            _net_factory("classifier", MLP, max_epochs, module__n_features=30,
                         module__n_outputs=10, module__hidden=128),
            max_epochs,
        ),
        Problem(
            "friedman_reg", "Friedman #1 regression, noise 1 (1400 / 600), "
            "MLP 64-64, MSE, SGD momentum 0.9",
            _friedman,
            _net_factory("regressor", MLP, max_epochs, module__n_features=10,
                         module__n_outputs=1),
            max_epochs,
            classifier=False,
        ),
        Problem(
            "tabular_adam", "generated, 4 classes x 3 clusters (1750 / 750), "
            "MLP 64-64, Adam",
            _tabular,
            _net_factory("classifier", MLP, max_epochs, optimizer=torch.optim.Adam,
                         module__n_features=20, module__n_outputs=4),
            max_epochs,
        ),
    ]


#: all problems by name, with the default epoch budget
PROBLEMS = {p.name: p for p in _problems()}


def get_problems(names=None, max_epochs=30):
    """Fresh :class:`Problem` objects, optionally only ``names``, with a budget."""
    problems = _problems(max_epochs)
    if names:
        unknown = set(names) - {p.name for p in problems}
        if unknown:
            raise ValueError(f"unknown problems {sorted(unknown)}; "
                             f"choose from {[p.name for p in problems]}.")
        problems = [p for p in problems if p.name in names]
    return problems
