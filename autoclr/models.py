"""Small ready-made torch modules for tabular data and 8x8 images.

They serve the demo, the command line, the examples and the benchmarks, and
are defined at module level so that nets using them pickle and run in
process pools.
"""

from __future__ import annotations

from torch import nn

__all__ = ["MLP", "SmallCNN"]


class MLP(nn.Module):
    """A multi-layer perceptron returning logits (pair with ``CrossEntropyLoss``).

    Parameters
    ----------
    n_features : int, default=64
        Input features.
    n_outputs : int, default=10
        Classes (logits) or regression targets.
    hidden : int, default=64
        Width of each hidden layer.
    n_layers : int, default=2
        Hidden layers.
    dropout : float, default=0.0
        Dropout after each hidden layer.
    """

    def __init__(self, n_features=64, n_outputs=10, hidden=64, n_layers=2, dropout=0.0):
        super().__init__()
        layers, width = [], n_features
        for _ in range(n_layers):
            layers += [nn.Linear(width, hidden), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = hidden
        layers.append(nn.Linear(width, n_outputs))
        self.net = nn.Sequential(*layers)

    def forward(self, X):
        return self.net(X)


class SmallCNN(nn.Module):
    """A two-block CNN for small images of shape (channels, side, side), returning logits.

    Parameters
    ----------
    n_outputs : int, default=10
        Classes.
    channels : int, default=1
        Input channels.
    side : int, default=8
        Height and width of the images (a multiple of 4).
    width : int, default=16
        Filters of the first block (the second has twice as many).
    """

    def __init__(self, n_outputs=10, channels=1, side=8, width=16):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(channels, width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(2 * width * (side // 4) ** 2, n_outputs)

    def forward(self, X):
        return self.head(self.features(X).flatten(1))
