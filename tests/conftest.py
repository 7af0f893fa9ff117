"""Shared fixtures: seeded tiny nets and small data sets, cheap enough for 2 cores."""

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits, make_regression
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from autoclr.models import MLP

torch.set_num_threads(1)


@pytest.fixture
def seed_torch():
    """Seed torch's global RNG for tests that build modules outside AutoCLR."""
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def digits():
    """Digits scaled to [0, 1], float32, split 70/30 stratified."""
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


@pytest.fixture(scope="session")
def small_digits(digits):
    """A 500-sample subset of the digits training split."""
    X_train, _, y_train, _ = digits
    return X_train[:500], y_train[:500]


@pytest.fixture(scope="session")
def regression_data():
    X, y = make_regression(n_samples=400, n_features=8, noise=5.0, random_state=0)
    X = X.astype(np.float32)
    y = (y / np.std(y)).astype(np.float32)
    return X, y


def make_classifier_net(module=MLP, **kwargs):
    """A small digits classifier; ``module__*`` defaults apply to ``MLP`` only."""
    params = dict(
        module=module,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        batch_size=64,
        max_epochs=12,
        verbose=0,
    )
    if module is MLP:
        params.update(module__n_features=64, module__n_outputs=10, module__hidden=32)
    if kwargs.get("optimizer", torch.optim.SGD) is not torch.optim.SGD:
        del params["optimizer__momentum"]
    params.update(kwargs)
    return NeuralNetClassifier(**params)


def make_regressor_net(module=MLP, **kwargs):
    """A small regressor for ``regression_data``; ``module__*`` defaults apply to ``MLP``."""
    params = dict(
        module=module,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        batch_size=32,
        max_epochs=12,
        verbose=0,
    )
    if module is MLP:
        params.update(module__n_features=8, module__n_outputs=1, module__hidden=32)
    params.update(kwargs)
    return NeuralNetRegressor(**params)


@pytest.fixture
def classifier_net():
    return make_classifier_net()


@pytest.fixture
def regressor_net():
    return make_regressor_net()


@pytest.fixture
def make_net():
    """The net factory: ``make_net(**params)`` a classifier, ``make_net("regressor")``.

    Classifiers fit the digits (64 features, 10 classes), regressors
    ``regression_data`` (8 features); ``module__*`` defaults apply to ``MLP`` only.
    """

    def factory(kind="classifier", module=MLP, **params):
        if kind == "classifier":
            return make_classifier_net(module, **params)
        if kind == "regressor":
            return make_regressor_net(module, **params)
        raise ValueError(f"kind must be 'classifier' or 'regressor', got {kind!r}.")

    return factory
