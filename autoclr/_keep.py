"""Which weights a cyclical fit ends with: the last, the best cycle end's, or their average.

A cyclical schedule's cycle ends are where the LR is back at ``base_lr`` and the
weights most settled. ``cycle_weights`` (an AutoCLR parameter) chooses what the
fitted net keeps; :class:`~autoclr._cycles.CycleEnd` offers each cycle end's
weights to a keeper and asks it to finish when training ends:

- ``"auto"`` (AutoCLR's default): ``"best"`` for a regressor judged on its
  validation loss (a ``train_split``), whose loss is the score it is judged
  by; ``"last"`` otherwise (:func:`resolve_weights`);
- ``"last"``: the weights the fit ends with (nothing kept);
- ``"best"``: the weights of the cycle end with the best ``cycle_monitor`` (the
  validation loss on the net's own ``train_split``; the training loss without
  one), restored when training ends, as RealMLP, TabM or skorch's
  ``Checkpoint(load_best=True)`` restore the best epoch, but at cycle ends only;
- ``"average"``: the average of the weights at every cycle end,
  ``torch.optim.swa_utils.AveragedModel`` (stochastic weight averaging along the
  cyclical path, Izmailov et al. 2018), with BatchNorm statistics recomputed by
  ``swa_utils.update_bn`` on the training data.

Why ``"auto"`` keeps the best cycle end of regressors only: a regressor's
validation loss is the quantity its score (R^2, the mean squared error) ranks
by, and on small tables a cyclical fit of many epochs overfits it, so the best
cycle end is often an early one that scores better on new data. A
classifier's validation loss (cross-entropy) also rewards calibration: later
cycle ends, more confident, often have a higher loss and a higher accuracy
(on the benchmark's small tables the cycle end kept by the loss scored up to
2.6 pp less). Measured in docs/benchmarks.md ("The weights kept at cycle ends").
"""

from __future__ import annotations

import math

import torch
from sklearn.base import is_regressor
from torch.optim.swa_utils import AveragedModel, update_bn

from ._data import train_dataset
from ._device import module_device

__all__ = ["keeper", "resolve_weights"]


class _Last:
    """Keeps nothing: the fit ends with the weights it trained last."""

    def offer(self, net, score, cycle):
        pass

    def finish(self, net, X, y):
        return "last", None


class _Best:
    """The weights of the cycle end with the best score, restored at the end, when it
    beats the last cycle end's by more than ``tol`` (relative); else the last. A score
    that is not finite (the loss blew up) is never the best, and a last cycle end
    with one gives way to the best finite one."""

    def __init__(self, lower_is_better, tol=0.0):
        self.lower_is_better, self.tol = lower_is_better, tol
        self.score = self.cycle = self.state = self.last = None

    def offer(self, net, score, cycle):
        self.last = (score, cycle)
        if not math.isfinite(score):  # a cycle end whose loss blew up is never the best
            return
        better = self.score is None or (
            score < self.score if self.lower_is_better else score > self.score)
        if better:
            self.score, self.cycle = score, cycle
            self.state = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}

    def finish(self, net, X, y):
        if self.state is None or self.cycle == self.last[1]:
            return ("last", None) if self.state is None else (
                f"best: the end of cycle {self.cycle}, the last ({self.score:.4g})",
                self.cycle)
        last_score, last_cycle = self.last
        if not math.isfinite(last_score):  # the last blew up: the best finite one
            net.module_.load_state_dict(self.state)
            return (f"best: the end of cycle {self.cycle} ({self.score:.4g}); the last "
                    f"cycle end (cycle {last_cycle}) scored {last_score:.4g}"), self.cycle
        gain = (last_score - self.score) if self.lower_is_better else (
            self.score - last_score)
        if gain <= self.tol * (abs(last_score) or 1.0):  # within noise of the last
            return (f"best: the last cycle end (cycle {last_cycle}, {last_score:.4g}); "
                    f"cycle {self.cycle}'s {self.score:.4g} is not better by more than "
                    f"cycle_tol={self.tol:g}"), last_cycle
        net.module_.load_state_dict(self.state)
        return f"best: the end of cycle {self.cycle} ({self.score:.4g})", self.cycle


class _Average:
    """The average of the cycle ends' weights (``AveragedModel``), BatchNorm recomputed."""

    def __init__(self):
        self.model, self.cycles = None, []

    def offer(self, net, score, cycle):
        if self.model is None:
            self.model = AveragedModel(net.module_)
        self.model.update_parameters(net.module_)
        self.cycles.append(cycle)

    def finish(self, net, X, y):
        if self.model is None:
            return "last", None
        with torch.no_grad():
            for mine, averaged in zip(net.module_.parameters(), self.model.module.parameters()):
                mine.copy_(averaged)
        bn = any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm)
                 for m in net.module_.modules())
        if bn:
            _recompute_batchnorm(net, X, y)
        return (f"average of the {len(self.cycles)} cycle ends' weights"
                + (" (BatchNorm statistics recomputed)" if bn else "")), None


def _recompute_batchnorm(net, X, y):
    """``swa_utils.update_bn`` over one pass of the net's training batches."""
    batches = net.get_iterator(train_dataset(net, X, y), training=True)
    update_bn((Xi for Xi, _ in batches), net.module_, device=module_device(net))


def keeper(kind, lower_is_better, tol=0.0):
    """The keeper of ``cycle_weights=kind``: ``offer`` at each cycle end, ``finish`` at the end.

    ``"best"`` keeps an earlier cycle end only when its score beats the last one's by
    more than ``tol`` (relative): the last cycle end is the most trained, at the
    smallest amplitude, and a small validation split is a noisy judge.
    """
    if kind == "best":
        return _Best(lower_is_better, tol)
    if kind == "average":
        return _Average()
    return _Last()


def resolve_weights(net, weights, monitor):
    """``cycle_weights`` for this fit: ``"auto"`` is ``"best"`` for a regressor whose
    monitor is the validation loss (its net has a ``train_split``), else ``"last"``;
    any other value as given."""
    if weights != "auto":
        return weights
    return "best" if monitor == "valid_loss" and is_regressor(net) else "last"
