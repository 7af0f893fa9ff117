"""The cyclical schedule: step size, training length and the skorch callback.

The schedule itself is :class:`torch.optim.lr_scheduler.CyclicLR`, driven
per batch by :class:`skorch.callbacks.LRScheduler`; this module only picks
its arguments.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass

from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import CyclicLR

from ._utils import is_int, iterations_per_epoch, warn

__all__ = ["CyclePlan", "plan_cycles", "cyclic_lr_callback", "momentum_bounds",
           "user_callbacks", "POLICIES"]

POLICIES = ("triangular", "triangular2", "exp_range")
#: cycles the paper asks for at least
MIN_CYCLES = 3
#: allowed range of step_size / iterations per epoch
FACTOR_RANGE = (2, 10)


@dataclass(frozen=True)
class CyclePlan:
    """How long the cyclical fit runs.

    Attributes
    ----------
    step_size : int
        Iterations of half a cycle.
    iterations_per_epoch : int
        Batches per training epoch, counted on the samples actually trained on.
    factor : float
        ``step_size / iterations_per_epoch``.
    n_cycles : int
        Whole cycles trained.
    n_epochs : int
        Epochs trained (``max_epochs`` of the fitted net).
    n_iter : int
        Iterations trained, ``n_epochs * iterations_per_epoch``.
    """

    step_size: int
    iterations_per_epoch: int
    factor: float
    n_cycles: int
    n_epochs: int
    n_iter: int


def plan_cycles(n_train, batch_size, max_epochs, *, step_size="auto", factor="auto"):
    """Choose the step size and a training length that ends at the end of a cycle.

    Parameters
    ----------
    n_train : int
        Samples trained on per epoch (after the net's validation split).
    batch_size : int
        Batch size of the net; ``-1`` means the whole data set.
    max_epochs : int
        The net's ``max_epochs``: the epoch budget, never exceeded.
    step_size : "auto" or int, default="auto"
        ``"auto"``: ``factor * iterations_per_epoch``. An int is used as is.
    factor : "auto" or int, default="auto"
        Step size in epochs, in [2, 10]. ``"auto"`` takes the largest factor
        that still fits three whole cycles into ``max_epochs``
        (``max_epochs // 6``, clipped to [2, 10]).

    Returns
    -------
    CyclePlan
        With ``step_size="auto"`` a cycle is ``2 * factor`` whole epochs and
        training runs ``n_cycles = max_epochs // (2 * factor)`` cycles, so it
        ends exactly at a cycle's end (LR back at base_lr). A warning is
        emitted when fewer than 3 cycles fit in ``max_epochs``; when not even
        one cycle of ``2 * factor`` epochs fits, a single cycle spans the
        whole budget (``step_size = max_epochs * iterations_per_epoch // 2``).
        ``n_epochs`` never exceeds ``max_epochs``. With an int
        ``step_size`` the number of epochs is the smallest that holds the whole
        cycles; the LR ends back at base_lr only when ``2 * step_size`` is a
        multiple of the iterations per epoch. A ``step_size`` whose cycle does
        not fit in ``max_epochs`` raises a ``ValueError``.
    """
    ipe = iterations_per_epoch(n_train, batch_size)
    if step_size == "auto":
        if factor == "auto":
            factor = int(min(max(max_epochs // (2 * MIN_CYCLES), FACTOR_RANGE[0]),
                             FACTOR_RANGE[1]))
        if 2 * factor <= max_epochs:
            step = int(factor * ipe)
            n_cycles = max_epochs // (2 * factor)
            n_epochs = int(n_cycles * 2 * factor)
        else:
            # not even one cycle of 2 x factor epochs fits: one cycle over the
            # whole budget (a warning follows), never more epochs than max_epochs
            step = max(1, (max_epochs * ipe) // 2)
            factor = step / ipe
            n_cycles = 1
            n_epochs = math.ceil(2 * step / ipe)
    else:
        step = int(step_size)
        factor = step / ipe
        n_cycles = (max_epochs * ipe) // (2 * step)
        if n_cycles < 1:
            raise ValueError(
                f"step_size={step} needs {2 * step} iterations for one cycle, but the "
                f"net's max_epochs={max_epochs} allows {max_epochs * ipe} "
                f"({ipe} per epoch). Lower step_size or raise max_epochs.")
        n_epochs = math.ceil(n_cycles * 2 * step / ipe)
    if n_cycles < MIN_CYCLES:
        warn(
            f"max_epochs={max_epochs} of the net leaves room for {n_cycles} cycle(s) of "
            f"step_size={step} ({factor:g} x {ipe} iterations per epoch); the method "
            f"needs at least {MIN_CYCLES}. Raise the net's max_epochs to at least "
            f"{math.ceil(MIN_CYCLES * 2 * step / ipe)} or lower the step size.")
    return CyclePlan(
        step_size=step,
        iterations_per_epoch=ipe,
        factor=float(factor),
        n_cycles=int(n_cycles),
        n_epochs=int(n_epochs),
        n_iter=int(n_epochs * ipe),
    )


def cyclic_lr_callback(
    base_lr,
    max_lr,
    step_size,
    *,
    policy="triangular2",
    gamma=1.0,
    cycle_momentum=False,
    base_momentum=0.8,
    max_momentum=0.9,
):
    """Build the skorch callback that runs ``CyclicLR`` once per batch.

    Parameters
    ----------
    base_lr, max_lr : float
        Bounds of the cycle.
    step_size : int
        Iterations of half a cycle (``CyclicLR``'s ``step_size_up``).
    policy : {"triangular", "triangular2", "exp_range"}, default="triangular2"
        ``CyclicLR``'s ``mode``.
    gamma : float, default=1.0
        Per-iteration amplitude decay of ``exp_range``.
    cycle_momentum : bool, default=False
        Passed to ``CyclicLR``. Off by default so that the optimizer's
        momentum is never changed without being asked.
    base_momentum, max_momentum : float
        Momentum bounds when ``cycle_momentum=True``.

    Returns
    -------
    skorch.callbacks.LRScheduler
        Records the LR of each batch in the history under ``"event_lr"``.
    """
    if not is_int(step_size):
        raise TypeError(f"step_size must be an int, got {step_size!r}.")
    return LRScheduler(
        policy=CyclicLR,
        step_every="batch",
        base_lr=float(base_lr),
        max_lr=float(max_lr),
        step_size_up=int(step_size),
        mode=policy,
        gamma=float(gamma),
        cycle_momentum=bool(cycle_momentum),
        base_momentum=base_momentum,
        max_momentum=max_momentum,
    )


def momentum_bounds(net):
    """Momentum bounds for ``cycle_momentum=True``: from 0.85 m to the user's m."""
    optimizer = net.optimizer
    kwargs = net.get_params_for("optimizer")
    params = inspect.signature(optimizer).parameters
    if "momentum" in params:
        m = kwargs.get("momentum", params["momentum"].default)
    elif "betas" in params:
        m = kwargs.get("betas", params["betas"].default)[0]
    else:
        raise ValueError(
            "cycle_momentum=True needs an optimizer with momentum or betas; "
            f"{getattr(optimizer, '__name__', optimizer)} has neither.")
    if not m:
        raise ValueError(
            "cycle_momentum=True, but the optimizer's momentum is 0; set "
            "net__optimizer__momentum (e.g. 0.9) or leave cycle_momentum=False.")
    return {"base_momentum": 0.85 * m, "max_momentum": m}


def user_callbacks(net):
    """The net's own callbacks, as a new list (the user's list is never extended)."""
    return list(net.callbacks or [])


#: ``gamma="auto"`` makes exp_range's amplitude shrink to this fraction by the end
EXP_RANGE_FINAL_AMPLITUDE = 0.1


def exp_range_gamma(n_iter):
    """Per-iteration decay that shrinks exp_range's amplitude to 10 % over ``n_iter``."""
    return EXP_RANGE_FINAL_AMPLITUDE ** (1 / max(n_iter, 1))
