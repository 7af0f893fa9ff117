"""The schedule: step size, training length and the skorch LR callback.

The schedule itself is :class:`torch.optim.lr_scheduler.CyclicLR` (or
:class:`~torch.optim.lr_scheduler.OneCycleLR` for ``policy="one_cycle"``),
driven per batch by :class:`skorch.callbacks.LRScheduler`; this module only
picks its arguments, and makes the schedule resume where the previous fit of
the same net ended (a warm start continues the cycles).
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass, field

from skorch.callbacks import LRScheduler
from torch.optim.lr_scheduler import CyclicLR, OneCycleLR

from ._utils import is_int, iterations_per_epoch, warn

__all__ = ["CyclePlan", "plan_cycles", "cyclic_lr_callback", "one_cycle_callback",
           "CycleScheduler", "momentum_bounds", "user_callbacks", "trained_iterations",
           "POLICIES", "CYCLIC_POLICIES"]

#: CyclicLR's modes
CYCLIC_POLICIES = ("triangular", "triangular2", "exp_range")
#: every policy: CyclicLR's modes and a single OneCycleLR cycle over the budget
POLICIES = (*CYCLIC_POLICIES, "one_cycle")
#: ``policy="one_cycle"``: fraction of the iterations spent rising to max_lr
#: (OneCycleLR's own default)
ONE_CYCLE_PCT_START = 0.3
#: ``policy="one_cycle"``: the last LR is ``base_lr / ONE_CYCLE_FINAL_DIV_FACTOR``.
#: OneCycleLR's own default, 1e4: the final phase anneals to several orders of
#: magnitude below where the range test saw learning start (Smith's
#: "annihilation"); fastai uses 1e5.
ONE_CYCLE_FINAL_DIV_FACTOR = 1e4
#: ``policy="one_cycle"``: the shape of both phases (OneCycleLR's own default)
ONE_CYCLE_ANNEAL = "cos"
#: how ``n_cycles`` ends training: "max_epochs" (``None``: as many whole cycles
#: as fit), "n_cycles" (an int), "auto" (when another cycle no longer helps)
STOP_RULES = ("max_epochs", "n_cycles", "auto")
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
    stop : {"max_epochs", "n_cycles", "auto"}
        How training ends: after the budget's whole cycles, after
        ``n_cycles`` (an int), or at the first cycle end where another cycle
        no longer helps (``n_cycles="auto"``; ``n_cycles`` is then the cap).
    cycle_iter : int
        Iterations of one cycle: ``2 * step_size``; ``n_iter`` for
        ``policy="one_cycle"``, whose single cycle spans the whole fit.
    policy : str
        The policy planned for.
    """

    step_size: int
    iterations_per_epoch: int
    factor: float
    n_cycles: int
    n_epochs: int
    n_iter: int
    stop: str = "max_epochs"
    cycle_iter: int = field(default=0)
    policy: str = "triangular2"

    def __post_init__(self):
        if not self.cycle_iter:
            object.__setattr__(self, "cycle_iter", 2 * self.step_size)


def plan_cycles(n_train, batch_size, max_epochs, *, step_size="auto", factor="auto",
                n_cycles=None, policy="triangular2", min_cycles=MIN_CYCLES):
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
        (``max_epochs // 6``, clipped to [2, 10]), or ``n_cycles`` of them
        when that is an int; with ``n_cycles="auto"`` it takes 2, the
        shortest cycles, so that the stopping rule has the most cycle ends.
    n_cycles : None, "auto" or int, default=None
        ``None``: as many whole cycles as fit in ``max_epochs``. An int:
        exactly that many (a ``ValueError`` when they do not fit). ``"auto"``:
        as ``None``, and the plan's ``stop`` says that training may end at an
        earlier cycle end (``n_cycles`` is then the cap).
    policy : str, default="triangular2"
        ``"one_cycle"`` plans a single cycle over the whole budget
        (``max_epochs`` epochs; ``step_size`` is then the rising part,
        ``ONE_CYCLE_PCT_START`` of the iterations); the other policies plan
        cycles of ``2 * step_size`` iterations.
    min_cycles : int, default=3
        Warn when the budget leaves room for fewer cycles than this (the
        paper's minimum); not for an int ``n_cycles``, which is the user's
        choice.

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
    if policy == "one_cycle":
        n_iter = int(max_epochs * ipe)
        step = max(1, round(ONE_CYCLE_PCT_START * n_iter))
        return CyclePlan(step_size=step, iterations_per_epoch=ipe, factor=step / ipe,
                         n_cycles=1, n_epochs=int(max_epochs), n_iter=n_iter,
                         stop="max_epochs", cycle_iter=n_iter, policy=policy)
    exact, auto = is_int(n_cycles), n_cycles == "auto"
    if step_size == "auto":
        if factor == "auto" and auto:
            # the shortest cycles the paper allows: the most cycle ends to stop at
            factor = FACTOR_RANGE[0]
        elif factor == "auto":
            wanted = n_cycles if exact else MIN_CYCLES
            factor = int(min(max(max_epochs // (2 * wanted), FACTOR_RANGE[0]),
                             FACTOR_RANGE[1]))
        if 2 * factor <= max_epochs:
            step = int(factor * ipe)
            fit = max_epochs // (2 * factor)
        else:
            # not even one cycle of 2 x factor epochs fits: one cycle over the
            # whole budget (a warning follows), never more epochs than max_epochs
            step = max(1, (max_epochs * ipe) // 2)
            factor = step / ipe
            fit = 1
    else:
        step = int(step_size)
        factor = step / ipe
        fit = (max_epochs * ipe) // (2 * step)
        if fit < 1:
            raise ValueError(
                f"step_size={step} needs {2 * step} iterations for one cycle, but the "
                f"net's max_epochs={max_epochs} allows {max_epochs * ipe} "
                f"({ipe} per epoch). Lower step_size or raise max_epochs.")
    if exact and n_cycles > fit:
        raise ValueError(
            f"n_cycles={n_cycles} needs {math.ceil(n_cycles * 2 * step / ipe)} epochs "
            f"(cycles of 2 x {step} iterations, {ipe} per epoch), but the net's "
            f"max_epochs={max_epochs} holds {fit}. Raise the net's max_epochs or lower "
            "n_cycles.")
    stop = "n_cycles" if exact else "auto" if auto else "max_epochs"
    n_cycles = n_cycles if exact else fit
    if not exact and n_cycles < min_cycles:
        warn(
            f"max_epochs={max_epochs} of the net leaves room for {n_cycles} cycle(s) of "
            f"step_size={step} ({factor:g} x {ipe} iterations per epoch); the method "
            f"needs at least {min_cycles}. Raise the net's max_epochs to at least "
            f"{math.ceil(min_cycles * 2 * step / ipe)} or lower the step size.")
    n_epochs = math.ceil(n_cycles * 2 * step / ipe)
    return CyclePlan(
        step_size=step,
        iterations_per_epoch=ipe,
        factor=float(factor),
        n_cycles=int(n_cycles),
        n_epochs=int(n_epochs),
        n_iter=int(n_epochs * ipe),
        stop=stop,
        policy=policy,
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
    CycleScheduler
        skorch's ``LRScheduler``, stepped every batch; records the LR of each
        batch in the history under ``"event_lr"``; a further fit of the same
        net continues the cycles where the last one ended.
    """
    if not is_int(step_size):
        raise TypeError(f"step_size must be an int, got {step_size!r}.")
    return CycleScheduler(
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


def one_cycle_callback(base_lr, max_lr, total_steps, *, cycle_momentum=False,
                       base_momentum=0.85, max_momentum=0.95):
    """Build the skorch callback that runs one ``OneCycleLR`` cycle per fit, per batch.

    The LR starts at ``base_lr`` (``div_factor = max_lr / base_lr``), rises to
    ``max_lr`` over ``ONE_CYCLE_PCT_START`` of the ``total_steps`` and anneals
    to ``base_lr / ONE_CYCLE_FINAL_DIV_FACTOR`` at the last iteration, both
    phases ``ONE_CYCLE_ANNEAL`` shaped.

    Parameters
    ----------
    base_lr, max_lr : float
        Start and peak of the cycle.
    total_steps : int
        Iterations of the cycle: the whole fit.
    cycle_momentum : bool, default=False
        Passed to ``OneCycleLR`` explicitly (its own default is True), so the
        optimizer's momentum is never changed without being asked.
    base_momentum, max_momentum : float
        Momentum bounds when ``cycle_momentum=True``.

    Returns
    -------
    CycleScheduler
    """
    if not is_int(total_steps):
        raise TypeError(f"total_steps must be an int, got {total_steps!r}.")
    return CycleScheduler(
        policy=OneCycleLR,
        step_every="batch",
        max_lr=float(max_lr),
        total_steps=int(total_steps),
        pct_start=ONE_CYCLE_PCT_START,
        anneal_strategy=ONE_CYCLE_ANNEAL,
        div_factor=float(max_lr) / float(base_lr),
        final_div_factor=ONE_CYCLE_FINAL_DIV_FACTOR,
        three_phase=False,
        cycle_momentum=bool(cycle_momentum),
        base_momentum=base_momentum,
        max_momentum=max_momentum,
    )


class CycleScheduler(LRScheduler):
    """skorch's ``LRScheduler`` whose schedule resumes where the net's last fit ended.

    skorch positions a resumed scheduler at the number of *epochs* trained;
    stepped every batch, it must resume at the number of *batches* trained.
    A ``CyclicLR`` schedule continues (a warm start runs the next cycles of the
    same schedule); a ``OneCycleLR`` one starts a new cycle with each fit.
    """

    def on_train_begin(self, net, **kwargs):
        self.batch_idx_ = trained_iterations(net)
        restart = self.policy_ is OneCycleLR or self.batch_idx_ == 0
        self.lr_scheduler_ = self.policy_(
            net.optimizer_, **self.kwargs, last_epoch=-1 if restart else self.batch_idx_ - 1)


def trained_iterations(net) -> int:
    """Training batches in the net's history, a last interrupted epoch included."""
    total = 0
    for row in net.history:
        count = row.get("train_batch_count")
        if count is None:
            count = sum(1 for batch in row.get("batches", ()) if "train_loss" in batch)
        total += count
    return int(total)


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
