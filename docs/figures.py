"""Render the figures of the docs into docs/img/ from real range tests and fits.

    python docs/figures.py            # about a minute on a laptop CPU

Every figure comes from running autoclr: nothing is drawn by hand. Seeds are
fixed, so a re-run gives the same pictures (up to torch's CPU kernels).
"""

from pathlib import Path

import numpy as np
import torch
from matplotlib.figure import Figure
from sklearn.datasets import load_digits, make_friedman1
from sklearn.model_selection import train_test_split
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

from autoclr import cyclic_lr_callback, one_cycle_callback, range_test
from autoclr._cli import main as cli_main
from autoclr.models import MLP

IMG = Path(__file__).resolve().parent / "img"


def digits():
    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def digits_net(**params):
    return NeuralNetClassifier(
        MLP, module__n_features=64, module__n_outputs=10, criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD, optimizer__momentum=0.9, batch_size=64,
        max_epochs=30, verbose=0, **params)


def save(fig, name):
    fig.savefig(IMG / name, dpi=90)
    print("wrote", IMG / name)


def range_test_figures():
    X_train, _, y_train, _ = digits()
    y_train = y_train.astype(np.int64)
    result = range_test(digits_net(), X_train, y_train, random_state=0)
    for method, name in (("accuracy", "range_test_accuracy.png"),
                         ("loss", "range_test_loss_rule.png")):
        fig = Figure(figsize=(8, 5), layout="constrained")
        result.with_bounds(method).plot(ax=fig.subplots())
        save(fig, name)
    # exponential against linear ramp, same net and data
    fig = Figure(figsize=(14, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    for ax, ramp in zip(axes, ("exp", "linear")):
        r = range_test(digits_net(), X_train, y_train, ramp=ramp, random_state=0)
        r.with_bounds("accuracy").plot(ax=ax)
        ax.set_title(f"{ramp} ramp: {len(r.lrs)} iterations, "
                     f"{np.mean(r.lrs >= 0.1):.0%} of them above lr=0.1", fontsize=11,
                     pad=16)
    save(fig, "range_test_ramps.png")
    # a regression net: the score is the negated validation loss
    X, y = make_friedman1(n_samples=1500, noise=1.0, random_state=0)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    y = ((y - y.mean()) / y.std()).astype(np.float32).reshape(-1, 1)
    net = NeuralNetRegressor(MLP, module__n_features=10, module__n_outputs=1,
                             optimizer=torch.optim.SGD, optimizer__momentum=0.9,
                             batch_size=32, max_epochs=30, verbose=0)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = range_test(net, X, y, random_state=0).with_bounds("accuracy")
    fig = Figure(figsize=(8, 5), layout="constrained")
    r.plot(ax=fig.subplots())
    save(fig, "range_test_regression.png")


def policy_figure():
    fig = Figure(figsize=(12, 3.6), layout="constrained")
    ax = fig.subplots()
    step, n = 100, 600
    optimizer_lr = 1e-3
    for policy, style in (("triangular", "-"), ("triangular2", "--"), ("exp_range", ":")):
        gamma = 0.1 ** (1 / n) if policy == "exp_range" else 1.0
        cb = cyclic_lr_callback(1e-3, 6e-3, step, policy=policy, gamma=gamma)
        lrs = cb.simulate(n, optimizer_lr)
        ax.plot(np.arange(n), lrs, style, lw=2, label=policy)
    lrs = one_cycle_callback(1e-3, 6e-3, n).simulate(n, optimizer_lr)
    ax.plot(np.arange(n), lrs, "-.", lw=2, label="one_cycle (OneCycleLR)")
    ax.set_xlabel("iteration (step_size = 100)")
    ax.set_ylabel("learning rate")
    ax.set_title("Policies between base_lr=1e-3 and max_lr=6e-3 over 600 iterations: "
                 "3 CyclicLR cycles, or one OneCycleLR cycle", fontsize=11)
    ax.legend()
    ax.grid(alpha=0.3)
    save(fig, "policies.png")


def demo_figure():
    cli_main(["demo", "--quiet", "--output", str(IMG / "demo.png")])


if __name__ == "__main__":
    torch.set_num_threads(1)
    IMG.mkdir(exist_ok=True)
    range_test_figures()
    policy_figure()
    demo_figure()
