"""Param groups and several optimizers: one LR, every group following at its own ratio.

The range test ramps, and the schedule cycles, one learning rate: the net's
``lr`` (its ``optimizer__lr`` when that is set, the LR skorch gives the
optimizer's groups by default). Every param group of every optimizer the net
initialises (``net._optimizers``: ``optimizer_``, and any other an overridden
``initialize_optimizer`` registers) trains at that LR times its *ratio*,
the group's own initial LR over the net's: a head given ``lr=0.1`` in a net with
``lr=0.01`` stays at 10x the body's, a group at ``lr=0`` stays frozen, and a
net without groups has ratio 1 everywhere (its LR is the schedule's, exactly).

The ratios are read from each optimizer's groups the first time training
begins and kept in the group itself under ``RATIO_KEY``, as torch's schedulers
keep ``initial_lr``: a warm start, whose groups hold the schedule's last LRs,
reads the ratios of the first fit; a re-initialised optimizer reads them anew.
"""

from __future__ import annotations

import math

from skorch.net import NeuralNet

__all__ = ["RATIO_KEY", "reference_lr", "net_optimizers", "lr_ratios", "set_lrs",
           "scale_lr", "describe_groups"]

#: key of a param group holding its ratio to the net's lr
RATIO_KEY = "autoclr_lr_ratio"


def reference_lr(net) -> float:
    """The net's lr: ``optimizer__lr`` when set, else ``lr`` (what skorch gives the groups)."""
    return float(net.get_params_for("optimizer").get("lr", net.lr))


def net_optimizers(net) -> dict:
    """Every optimizer of the initialised net, by name: ``{"optimizer": net.optimizer_}``."""
    names = list(net._optimizers) or ["optimizer"]
    return {name: getattr(net, name + "_") for name in names}


def _ratio(group_lr, net_lr):
    group_lr = float(group_lr)
    if group_lr == net_lr:  # exactly 1: the group's LR is the schedule's, bit for bit
        return 1.0
    if not (math.isfinite(net_lr) and net_lr > 0):
        raise ValueError(
            f"A param group has lr={group_lr:g} while the net's lr is {net_lr:g}: each "
            "group trains at the net's lr times (its lr / the net's lr), which needs a net "
            "lr > 0. Give the net an lr > 0 and each group the lr it should have relative "
            "to it (0 keeps a group frozen).")
    return group_lr / net_lr


def lr_ratios(net, optimizer) -> list:
    """Each of ``optimizer``'s groups' ratio to the net's lr, read once and kept in the group."""
    groups = optimizer.param_groups
    if any(RATIO_KEY not in group for group in groups):
        net_lr = reference_lr(net)
        for group in groups:
            group.setdefault(RATIO_KEY, _ratio(group["lr"], net_lr))
    return [group[RATIO_KEY] for group in groups]


def scale_lr(value, ratios) -> list:
    """Per-group values of an LR given for the net's lr (a float, or a list per group)."""
    if isinstance(value, (list, tuple)):
        if len(value) != len(ratios):
            raise ValueError(f"{len(value)} LRs given for {len(ratios)} param groups.")
        return [float(v) * r for v, r in zip(value, ratios)]
    return [float(value) * r for r in ratios]


def set_lrs(net, lr):
    """Set every group of every optimizer of ``net`` to ``lr`` times its ratio."""
    for optimizer in net_optimizers(net).values():
        for group, ratio in zip(optimizer.param_groups, lr_ratios(net, optimizer)):
            group["lr"] = lr * ratio


def _fmt(lr, net_lr):
    if lr == 0:
        return "frozen (lr=0)"
    if lr == net_lr or net_lr <= 0:
        return "x1" if lr == net_lr else f"at lr={lr:g} (an error: the net's lr is 0)"
    return f"x{lr / net_lr:.3g}"


def describe_groups(net) -> str | None:
    """One line saying how the param groups follow the net's lr; ``None`` for a plain net.

    Read from the net's parameters (``optimizer__param_groups``, ``lr``), so it
    needs no initialised net; a net that overrides ``initialize_optimizer``
    (several optimizers) is described in words.

    Examples
    --------
    With ``lr=0.01`` and ``optimizer__param_groups=[("head.*", {"lr": 0.1})]``::

        the bounds are for the net's lr (0.01); each param group follows at its
        lr / 0.01: 'head.*' x10, the other parameters x1
    """
    groups = net.get_params_for("optimizer").get("param_groups") or []
    custom = type(net).initialize_optimizer is not NeuralNet.initialize_optimizer
    if not groups and not custom:
        return None
    net_lr = reference_lr(net)
    line = (f"the bounds are for the net's lr ({net_lr:.3g}); each param group follows "
            f"at its lr / {net_lr:.3g}")
    if groups:
        line += ": " + ", ".join(
            f"{pattern!r} {_fmt(float(options.get('lr', net_lr)), net_lr)}"
            for pattern, options in groups) + ", the other parameters x1"
    if custom:
        line += ("; every optimizer the net's initialize_optimizer registers follows the "
                 "same way")
    return line
