"""What the ``autoclr`` subcommands share: the input error, the checks run before
any training, and the built-in MLP net.

Below both :mod:`autoclr._cli` (the parser, ``suggest``) and
:mod:`autoclr._demo` (``demo``), so that neither imports the other's internals.
"""

from __future__ import annotations

import os

import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor

from ._device import resolve_device
from ._validation import check_net, check_params
from .models import MLP

__all__ = ["CLIError", "checked_device", "check_png", "mlp_net"]


class CLIError(Exception):
    """An error in the input, reported on one line (exit status 2)."""


def checked_device(auto):
    """The device ``auto`` will use, after AutoCLR's own checks of its options.

    Raises :class:`CLIError` with AutoCLR's message when a check fails.
    """
    try:
        check_net(auto.net)
        check_params(auto.get_params(deep=False))
    except (TypeError, ValueError) as exc:
        raise CLIError(str(exc)) from None
    return resolve_device(auto.device, auto.net)


def check_png(path):
    """Raise :class:`CLIError` unless a PNG can be written at ``path`` (matplotlib too)."""
    folder = os.path.dirname(os.path.abspath(path))
    if not path.lower().endswith(".png"):
        raise CLIError(f"the plot is a PNG: give a path ending in .png, got {path!r}")
    if not os.path.isdir(folder):
        raise CLIError(f"cannot write {path}: folder {folder} does not exist")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError('plotting needs matplotlib: pip install "autoclr[plot]"') from None


def mlp_net(classifier, n_features, n_outputs, **params):
    """autoclr's MLP (two hidden layers of 64) in a skorch net: SGD, momentum 0.9.

    A :class:`~skorch.NeuralNetClassifier` with ``CrossEntropyLoss`` when
    ``classifier``, else a :class:`~skorch.NeuralNetRegressor`; ``params``
    go to the net.
    """
    if classifier:
        params["criterion"] = torch.nn.CrossEntropyLoss
    return (NeuralNetClassifier if classifier else NeuralNetRegressor)(
        MLP, module__n_features=n_features, module__n_outputs=n_outputs, module__hidden=64,
        optimizer=torch.optim.SGD, optimizer__momentum=0.9, **params)
