"""Quickstart: AutoCLR on scikit-learn's digits with a small MLP.

Runs the LR range test, prints the bounds it chose and why, trains with a
cyclical LR and reports the test accuracy. About ten seconds on a laptop CPU.

    python examples/quickstart.py
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from autoclr import AutoCLR
from autoclr.models import MLP


def main(max_epochs=30, random_state=0):
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=random_state, stratify=y
    )
    net = NeuralNetClassifier(
        MLP,
        module__n_features=64,
        module__n_outputs=10,
        criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        batch_size=64,
        max_epochs=max_epochs,
    )
    auto = AutoCLR(net, random_state=random_state, verbose=1).fit(X_train, y_train)
    accuracy = auto.score(X_test, y_test)
    print(f"test accuracy: {accuracy:.4f}")
    return auto, accuracy


if __name__ == "__main__":
    main()
