"""Regression: AutoCLR with a NeuralNetRegressor on Friedman's #1 problem.

For regressors the range test records the negated validation loss (higher is
better) and reads the bounds off it as for accuracy. Features and target are
standardised: the features by a ``Pipeline``, the target by
``TransformedTargetRegressor``, so predictions come back in the original
units. The target is non-linear in the features (``10 sin(pi x0 x1) +
20 (x2 - 0.5)^2 + 10 x3 + 5 x4`` plus noise), so a linear model is printed
for scale.

    python examples/regression.py
"""

import numpy as np
import torch
from sklearn.compose import TransformedTargetRegressor
from sklearn.datasets import make_friedman1
from sklearn.linear_model import RidgeCV
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetRegressor

from autoclr import AutoCLR
from autoclr.models import MLP


def main(max_epochs=60, hidden=64, n_samples=1500, random_state=0, verbose=1):
    """Fit and score; returns the fitted model and its test R^2."""
    X, y = make_friedman1(n_samples=n_samples, noise=1.0, random_state=random_state)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=random_state)
    net = NeuralNetRegressor(
        MLP,
        module__n_features=X.shape[1],
        module__n_outputs=1,
        module__hidden=hidden,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        batch_size=32,
        max_epochs=max_epochs,
        verbose=0,
    )
    model = TransformedTargetRegressor(
        regressor=make_pipeline(StandardScaler(),
                                AutoCLR(net, random_state=random_state, verbose=verbose)),
        transformer=StandardScaler(),
    )
    model.fit(X_train, y_train)
    r2 = model.score(X_test, y_test)
    ridge = make_pipeline(StandardScaler(), RidgeCV(alphas=np.logspace(-3, 3, 13)))
    ridge_r2 = ridge.fit(X_train, y_train).score(X_test, y_test)
    auto = model.regressor_[-1]
    print(f"bounds: base_lr={auto.base_lr_:.3g} max_lr={auto.max_lr_:.3g}, "
          f"step_size={auto.step_size_}")
    print(f"test R^2: AutoCLR MLP {r2:.3f}, linear (ridge) {ridge_r2:.3f}")
    return model, r2


if __name__ == "__main__":
    main()
