"""``autoclr demo``: AutoCLR end to end on a bundled data set, drawn.

Loads scikit-learn's digits or a generated problem, runs the LR range test and the
cyclical fit with autoclr's MLP, trains the same net with skorch's default fixed
lr=0.01 for comparison, and writes a PNG of the range test, the LR schedule and
both test accuracies per epoch. Its options are parsed in ``_cli``, which calls
``run_demo`` and reports its errors; what the two share is in ``_cli_common``.
"""

from __future__ import annotations

import time

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from ._cli_common import check_png, checked_device, mlp_net
from ._estimator import AutoCLR
from ._plotting import BOUNDS, plot_lr_schedule, plot_range_test
from ._rng import draw_seed, seeded

__all__ = ["run_demo", "demo_data", "demo_figure", "EpochTestScore"]


class EpochTestScore(Callback):
    """Record the accuracy on test data ``X, y`` in the history as ``name`` each epoch.

    For demonstrations only: it is never used to choose anything.
    """

    def __init__(self, X, y, name="test_acc"):
        self.X = X
        self.y = y
        self.name = name

    def on_epoch_end(self, net, **kwargs):
        net.history.record(self.name, float(np.mean(net.predict(self.X) == self.y)))


def demo_data(name, seed):
    """A 70/30 split of a bundled data set (float32 features, int64 labels), its label."""
    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X, label = X / 16.0, "scikit-learn's digits (8x8 images, 10 classes)"
    else:
        X, y = make_classification(n_samples=2000, n_features=20, n_informative=10,
                                   n_redundant=4, n_classes=4, random_state=seed)
        label = "a generated problem (make_classification: 20 features, 4 classes)"
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=seed, stratify=y)
    if name != "digits":
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    return (X_train.astype(np.float32), X_test.astype(np.float32),
            y_train.astype(np.int64), y_test.astype(np.int64), label)


def run_demo(args):
    """``autoclr demo``: see the subcommand's ``--help``."""
    start = time.perf_counter()
    if not args.no_plot:
        check_png(args.output)
    X_train, X_test, y_train, y_test, label = demo_data(args.dataset, args.seed)

    def net(epochs, **params):
        return mlp_net(True, X_train.shape[1], int(y_train.max()) + 1, batch_size=64,
                        max_epochs=epochs, **params,
                        callbacks=[("test_acc", EpochTestScore(X_test, y_test))])

    auto = AutoCLR(net(args.epochs), policy=args.policy, random_state=args.seed,
                   device=args.device, verbose=int(not args.quiet))
    device, threads = checked_device(auto), torch.get_num_threads()
    print(f"autoclr demo on {label}: {len(X_train)} training and {len(X_test)} test "
          "samples; MLP with two hidden layers of 64, SGD with momentum 0.9, batch size 64, "
          f"{args.epochs} epochs at most, device {device}.\n1. LR range test: the LR rises "
          "from 1e-6 to 1 while the validation accuracy is recorded.\n2. The bounds and "
          "why, then the cyclical fit" + ("" if args.quiet else " (one line per epoch)")
          + ":", flush=True)
    if device == "cpu":  # tiny nets: one thread beats several (their start-up costs more)
        torch.set_num_threads(1)
    try:
        auto.fit(X_train, y_train)
        if args.quiet:
            print(auto.suggestion_, flush=True)
        plan, seed = auto.cycle_plan_, draw_seed(args.seed)
        print(f"3. Baseline: the same net with skorch's default fixed lr=0.01 for the same "
              f"{plan.n_epochs} epochs.", flush=True)
        baseline = net(plan.n_epochs, lr=0.01, device=device, verbose=0,
                       iterator_train__generator=torch.Generator().manual_seed(seed))
        with seeded(seed, device):
            baseline.fit(X_train, y_train)
    finally:
        torch.set_num_threads(threads)
    clr = f"cyclical LR, {auto.cycle_plan_.policy} {auto.base_lr_:.2g} .. {auto.max_lr_:.2g}"
    print(f"\nTest accuracy after {plan.n_epochs} epochs ({plan.n_cycles} cycles):\n"
          f"  {clr:<44} {auto.net_.history[-1, 'test_acc']:.4f}\n"
          f"  {'fixed LR 0.01 (skorch default)':<44} {baseline.history[-1, 'test_acc']:.4f}")
    if not args.no_plot:
        demo_figure(auto, baseline, args.output, title=label)
        print(f"Plot: {args.output} (range test with the chosen bounds, the LR schedule, "
              "test accuracy per epoch of both).")
    print(f"Done in {time.perf_counter() - start:.1f}s.", flush=True)
    return 0


def demo_figure(auto, baseline, path, title):
    """Write the demo's three-panel PNG: range test, LR schedule, test accuracy."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(18, 5), layout="constrained")
    ax_rt, ax_lr, ax_acc = fig.subplots(1, 3, width_ratios=[1.25, 1, 1])
    fig.suptitle(f"autoclr demo: {title}", fontsize=13)
    plot_range_test(auto.range_test_, ax=ax_rt)
    plot_lr_schedule(auto, ax=ax_lr)
    plan = auto.cycle_plan_
    ax_lr.axhline(0.01, color="grey", lw=1.5, alpha=0.8, label="fixed lr 0.01 (baseline)")
    ax_lr.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax_lr.set_xlabel(f"training iteration (batch; {plan.iterations_per_epoch} per epoch)")
    accs = auto.net_.history[:, "test_acc"], baseline.history[:, "test_acc"]
    for acc, style, color, name in zip(accs, ("o-", "s-"), (BOUNDS, "grey"), (
            f"cyclical LR ({auto.cycle_plan_.policy})", "fixed lr 0.01")):
        ax_acc.plot(np.arange(1, len(acc) + 1), acc, style, color=color, ms=3,
                    label=f"{name}: {acc[-1]:.3f}")
    for k in range(1, plan.n_cycles + 1):  # a cycle is 2 * step_size iterations (one_cycle: all)
        ax_acc.axvline(k * plan.cycle_iter / plan.iterations_per_epoch, color="grey",
                       alpha=0.3, lw=0.8)
    ax_acc.set(xlabel="epoch (grey lines: ends of cycles)", ylabel="test accuracy",
               ylim=(max(0.0, min(map(min, accs)) - 0.05), 1.0))
    ax_acc.set_title("test accuracy per epoch", fontsize=11)
    ax_acc.legend(loc="lower right", fontsize=9)
    ax_acc.grid(True, alpha=0.3)
    fig.savefig(path, dpi=90)
    return fig
