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


#: what every test net gets unless a test says otherwise
_DEFAULTS = dict(optimizer=torch.optim.SGD, optimizer__momentum=0.9, max_epochs=12, verbose=0)
#: per kind: the data it fits (classifiers the digits, regressors ``regression_data``)
_KINDS = {
    "classifier": (NeuralNetClassifier, dict(criterion=nn.CrossEntropyLoss, batch_size=64),
                   dict(module__n_features=64, module__n_outputs=10, module__hidden=32)),
    "regressor": (NeuralNetRegressor, dict(batch_size=32),
                  dict(module__n_features=8, module__n_outputs=1, module__hidden=32)),
}


def _build_net(kind="classifier", module=MLP, **params):
    if isinstance(kind, type) and issubclass(kind, (NeuralNetClassifier, NeuralNetRegressor)):
        cls, kind = kind, ("classifier" if issubclass(kind, NeuralNetClassifier)
                           else "regressor")
    elif kind in _KINDS:
        cls = _KINDS[kind][0]
    else:
        raise ValueError(f"kind must be 'classifier', 'regressor' or a skorch net class, "
                         f"got {kind!r}.")
    _, kind_defaults, mlp_defaults = _KINDS[kind]
    net_params = dict(module=module, **_DEFAULTS, **kind_defaults)
    if module is MLP:
        net_params.update(mlp_defaults)
    if params.get("optimizer", torch.optim.SGD) is not torch.optim.SGD:
        del net_params["optimizer__momentum"]
    net_params.update(params)
    return cls(**net_params)


@pytest.fixture(scope="session")
def one_cycle_by_hand():
    """``one_cycle_by_hand(base_lr, max_lr, n_iter)``: the LRs of a fresh ``OneCycleLR``
    with AutoCLR's documented arguments, stepped by hand on one SGD parameter."""
    from torch.optim.lr_scheduler import OneCycleLR

    from autoclr._schedule import ONE_CYCLE_FINAL_DIV_FACTOR

    def lrs(base_lr, max_lr, n_iter):
        param = torch.zeros(1, requires_grad=True)
        optimizer = torch.optim.SGD([param], lr=base_lr)
        scheduler = OneCycleLR(optimizer, max_lr=max_lr, total_steps=n_iter,
                               div_factor=max_lr / base_lr,
                               final_div_factor=ONE_CYCLE_FINAL_DIV_FACTOR,
                               cycle_momentum=False)
        out = []
        for _ in range(n_iter):
            out.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            scheduler.step()
        return np.array(out)

    return lrs


@pytest.fixture(scope="session")
def make_net():
    """The one net factory of the tests: ``make_net(**params)`` builds a classifier.

    ``make_net("regressor", **params)`` a regressor; ``make_net(NetClass, **params)``
    a subclass of either (e.g. with ``AccelerateMixin``). Classifiers fit the digits
    (64 features, 10 classes, ``CrossEntropyLoss``, batches of 64), regressors
    ``regression_data`` (8 features, batches of 32); both train with SGD and
    momentum 0.9 (dropped for another optimizer) for 12 epochs, silently. The
    ``module__*`` defaults apply to ``MLP`` only (hidden 32). ``params`` override
    everything: ``module=``, ``train_split=None``, ``batch_size=``, ``callbacks=``.
    Session-scoped (it holds no state), so module-scoped fixtures can use it.
    """
    return _build_net
