"""A CNN on images: AutoCLR with ``autoclr.models.SmallCNN`` on the 8x8 digits.

The images keep their shape (n, 1, 8, 8); nothing else changes: AutoCLR
takes any skorch net and any input the net takes. Runs on the GPU when
there is one (``device="auto"``).

    python examples/cnn_digits.py
"""

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from autoclr import AutoCLR
from autoclr.models import SmallCNN


def main(max_epochs=24, width=16, n_samples=None, random_state=0, verbose=1,
         device="auto"):
    """Fit and score; returns the fitted AutoCLR and its test accuracy."""
    X, y = load_digits(return_X_y=True)
    X, y = X[:n_samples], y[:n_samples]
    X = (X / 16).astype(np.float32).reshape(-1, 1, 8, 8)  # (n, channels, height, width)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=random_state, stratify=y)
    net = NeuralNetClassifier(
        SmallCNN,
        module__n_outputs=10,
        module__channels=1,
        module__side=8,
        module__width=width,
        criterion=nn.CrossEntropyLoss,  # SmallCNN returns logits
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        batch_size=64,
        max_epochs=max_epochs,
        verbose=0,
    )
    auto = AutoCLR(net, random_state=random_state, verbose=verbose, device=device)
    auto.fit(X_train, y_train)
    accuracy = auto.score(X_test, y_test)
    print(f"SmallCNN on digits: test accuracy {accuracy:.4f} "
          f"(lr {auto.base_lr_:.2g} .. {auto.max_lr_:.2g}, {auto.cycle_plan_.n_epochs} "
          f"epochs, device {auto.net_.device})")
    return auto, accuracy


if __name__ == "__main__":
    main()
