"""The plan of the cyclical fit, in numbers: step size, cycles, epochs and stop rule.

Pure: nothing here trains, builds a callback or imports torch or skorch.
:func:`plan_cycles` turns the data size, batch size and epoch budget into a
:class:`CyclePlan` (and :func:`plan_more` does the same for a warm start);
:func:`exp_range_gamma` and :func:`momentum_range` give the schedule's other
numbers. The options (policies, the factor range) are defined with the parameter
table in :mod:`autoclr._validation`, below every module that reads them.
:mod:`autoclr._cycles` executes a plan with skorch callbacks; it imports this
module, never the reverse.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from ._data import iterations_per_epoch
from ._utils import is_int, warn
from ._validation import CYCLIC_POLICIES, FACTOR_RANGE, POLICIES, momentum_of

__all__ = ["CyclePlan", "plan_cycles", "plan_more", "exp_range_gamma", "momentum_range",
           "auto_policy", "POLICIES", "CYCLIC_POLICIES", "STOP_RULES", "TINY_FIT_ITER"]

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
#: how ``n_cycles`` ends training (:attr:`CyclePlan.stop`): "max_epochs" (``None``:
#: as many whole cycles as fit), "n_cycles" (an int), "auto" (when another cycle
#: no longer helps)
STOP_RULES = ("max_epochs", "n_cycles", "auto")
#: cycles the paper asks for at least
MIN_CYCLES = 3
#: ``policy="auto"``: a classifier's whole fit of fewer iterations than this (a tiny
#: budget, issue 14's "under about 100 iterations") trains with ``triangular``, every
#: cycle rising to max_lr; a longer one, and every regressor's, with ``triangular2``,
#: the amplitude halved each cycle. In a tiny fit the three cycles last 10 to 33
#: iterations, and triangular2's third would reach a quarter of max_lr: too little
#: training for a classifier; a small regression overfits on the extra training
#: (docs/benchmarks.md, "Tiny budgets" and "The new defaults on tables no benchmark
#: had used")
TINY_FIT_ITER = 100
#: ``gamma="auto"`` makes exp_range's amplitude shrink to this fraction by the end
EXP_RANGE_FINAL_AMPLITUDE = 0.1
#: ``cycle_momentum=True``: the momentum falls to this fraction of the optimizer's
#: own momentum ``m`` at max_lr, and is back at ``m`` at base_lr
BASE_MOMENTUM_RATIO = 0.85


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
        How training ends (one of ``STOP_RULES``): after the budget's whole
        cycles, after ``n_cycles`` (an int), or at the first cycle end where
        another cycle no longer helps (``n_cycles="auto"``; ``n_cycles`` is
        then the cap). Any other value is a ``ValueError``.
    cycle_iter : int
        Iterations of one cycle: ``2 * step_size``; ``n_iter`` for
        ``policy="one_cycle"``, whose single cycle spans the whole fit.
    policy : str
        The policy planned for.
    schedule_iter : int
        Read-only: iterations the schedule steps through, ``n_cycles *
        cycle_iter``. When a cycle is not a whole number of epochs, the
        ``n_iter - schedule_iter`` iterations left in the last epoch (fewer
        than one epoch) train at base_lr, where the last cycle ended.
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
        if self.stop not in STOP_RULES:
            raise ValueError(f"stop must be one of {STOP_RULES}, got {self.stop!r}.")
        if not self.cycle_iter:
            object.__setattr__(self, "cycle_iter", 2 * self.step_size)

    @property
    def schedule_iter(self) -> int:
        return self.n_cycles * self.cycle_iter


def plan_cycles(n_train, batch_size, max_epochs, *, step_size="auto", factor="auto",
                n_cycles=None, policy="triangular2", min_cycles=MIN_CYCLES, batches=None,
                classifier=True):
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
        ``"auto"`` plans the cycles of a cyclical policy and names the policy
        :func:`auto_policy` picks for the fit's length and the net's kind
        (``classifier``). ``"one_cycle"`` plans a
        single cycle over the whole budget
        (``max_epochs`` epochs; ``step_size`` is then the rising part,
        ``ONE_CYCLE_PCT_START`` of the iterations); the other policies plan
        cycles of ``2 * step_size`` iterations.
    min_cycles : int, default=3
        Warn when the budget leaves room for fewer cycles than this (the
        paper's minimum); not for an int ``n_cycles``, which is the user's
        choice.
    batches : int, default=None
        Batches per epoch as the net's training iterator yields them (AutoCLR
        counts them: ``iterator_train__batch_size``, ``drop_last``, a sampler);
        ``None``: ``ceil(n_train / batch_size)``.
    classifier : bool, default=True
        ``policy="auto"`` only: whether the net is a classifier.

    Returns
    -------
    CyclePlan
        With ``step_size="auto"`` a cycle is ``2 * factor`` whole epochs and
        training runs ``n_cycles = max_epochs // (2 * factor)`` cycles, so it
        ends exactly at a cycle's end (LR back at base_lr). A warning is
        emitted when fewer than ``min_cycles`` fit in ``max_epochs``; when
        not even one cycle of ``2 * factor`` epochs fits, a single cycle
        spans the whole budget (``step_size = max_epochs *
        iterations_per_epoch // 2``; none when the budget is one iteration).
        ``n_epochs`` never exceeds ``max_epochs``. With an int ``step_size``
        the number of epochs is the smallest that holds the whole cycles. The
        schedule steps through the whole cycles only (``schedule_iter``);
        iterations left in the last epoch train at base_lr. A ``step_size``
        whose cycle does not fit in ``max_epochs`` raises a ``ValueError``.
    """
    if policy == "auto":  # the cycles are those of any cyclical policy; then its name
        plan = plan_cycles(n_train, batch_size, max_epochs, step_size=step_size,
                           factor=factor, n_cycles=n_cycles, policy="triangular2",
                           min_cycles=min_cycles, batches=batches)
        return replace(plan, policy=auto_policy(plan.n_iter, classifier))
    ipe = iterations_per_epoch(n_train, batch_size) if batches is None else int(batches)
    if policy == "one_cycle":
        return _one_cycle_plan(ipe, max_epochs)
    if step_size == "auto":
        step, factor, fit = _auto_step(ipe, max_epochs, factor, n_cycles)
    else:
        step, factor, fit = _given_step(int(step_size), ipe, max_epochs)
    if is_int(n_cycles):
        _check_cycles_fit(n_cycles, fit, step, ipe, max_epochs)
        stop = "n_cycles"
    else:
        if fit < min_cycles:
            _warn_few_cycles(fit, step, factor, ipe, max_epochs, min_cycles)
        n_cycles, stop = fit, "auto" if n_cycles == "auto" else "max_epochs"
    n_epochs = max(1, math.ceil(n_cycles * 2 * step / ipe))
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


def auto_policy(n_iter, classifier=True):
    """``policy="auto"`` for a fit of ``n_iter`` iterations: ``"triangular"`` for a
    classifier below ``TINY_FIT_ITER``, else ``"triangular2"``."""
    return "triangular" if classifier and n_iter < TINY_FIT_ITER else "triangular2"


def _one_cycle_plan(ipe, max_epochs):
    """``policy="one_cycle"``: one cycle over the whole budget, rising for 30 % of it."""
    n_iter = int(max_epochs * ipe)
    step = max(1, round(ONE_CYCLE_PCT_START * n_iter))
    return CyclePlan(step_size=step, iterations_per_epoch=ipe, factor=step / ipe,
                     n_cycles=1, n_epochs=int(max_epochs), n_iter=n_iter,
                     stop="max_epochs", cycle_iter=n_iter, policy="one_cycle")


def _auto_factor(max_epochs, n_cycles):
    """``factor="auto"``: the largest factor in FACTOR_RANGE that fits the cycles wanted."""
    if n_cycles == "auto":
        # the shortest cycles the paper allows: the most cycle ends to stop at
        return FACTOR_RANGE[0]
    wanted = n_cycles if is_int(n_cycles) else MIN_CYCLES
    return int(min(max(max_epochs // (2 * wanted), FACTOR_RANGE[0]), FACTOR_RANGE[1]))


def _auto_step(ipe, max_epochs, factor, n_cycles):
    """``step_size="auto"``: ``(step, factor, whole cycles that fit in max_epochs)``."""
    if factor == "auto":
        factor = _auto_factor(max_epochs, n_cycles)
    if 2 * factor <= max_epochs:
        return int(factor * ipe), factor, max_epochs // (2 * factor)
    # not even one cycle of 2 x factor epochs fits: one cycle over the whole
    # budget (a warning follows), never more epochs than max_epochs; a budget
    # of one iteration holds no cycle at all
    n_iter = max_epochs * ipe
    step = max(1, n_iter // 2)
    return step, step / ipe, n_iter // (2 * step)


def _given_step(step, ipe, max_epochs):
    """An int ``step_size``: ``(step, factor, whole cycles)``; an error if none fits."""
    fit = (max_epochs * ipe) // (2 * step)
    if fit < 1:
        raise ValueError(
            f"step_size={step} needs {2 * step} iterations for one cycle, but the "
            f"net's max_epochs={max_epochs} allows {max_epochs * ipe} "
            f"({ipe} per epoch). Lower step_size or raise max_epochs.")
    return step, step / ipe, fit


def _check_cycles_fit(n_cycles, fit, step, ipe, max_epochs):
    """An int ``n_cycles`` that does not fit in ``max_epochs`` is a ``ValueError``."""
    if n_cycles > fit:
        raise ValueError(
            f"n_cycles={n_cycles} needs {math.ceil(n_cycles * 2 * step / ipe)} epochs "
            f"(cycles of 2 x {step} iterations, {ipe} per epoch), but the net's "
            f"max_epochs={max_epochs} holds {fit}. Raise the net's max_epochs or lower "
            "n_cycles.")


def _warn_few_cycles(n_cycles, step, factor, ipe, max_epochs, min_cycles):
    warn(
        f"max_epochs={max_epochs} of the net leaves room for {n_cycles} cycle(s) of "
        f"step_size={step} ({factor:g} x {ipe} iterations per epoch); the method "
        f"needs at least {min_cycles}. Raise the net's max_epochs to at least "
        f"{math.ceil(min_cycles * 2 * step / ipe)} or lower the step size.")


def plan_more(n_train, batch_size, max_epochs, *, step_size, n_cycles, policy, batches=None):
    """The plan of a warm start: more cycles of the fitted step size.

    ``n_train`` and ``batch_size`` are those of the fitted net on this fit's
    data; ``max_epochs`` (the user's net's, now) is the budget of this fit.
    The paper's minimum of cycles is not asked of it, since cycles were
    trained before.
    """
    return plan_cycles(n_train, batch_size, max_epochs, step_size=step_size,
                       n_cycles=n_cycles, policy=policy, min_cycles=1, batches=batches)


def exp_range_gamma(n_iter):
    """Per-iteration decay that shrinks exp_range's amplitude to 10 % over ``n_iter``."""
    return EXP_RANGE_FINAL_AMPLITUDE ** (1 / max(n_iter, 1))


def momentum_range(settings, name="the optimizer"):
    """Momentum bounds for ``cycle_momentum=True``: from 0.85 m to m.

    Parameters
    ----------
    settings : mapping
        The optimizer's arguments: ``m`` is ``settings["momentum"]``, or
        ``settings["betas"][0]`` without a ``"momentum"``.
    name : str, default="the optimizer"
        How an error names the optimizer.

    Returns
    -------
    dict
        ``{"base_momentum": BASE_MOMENTUM_RATIO * m, "max_momentum": m}``; a
        ``ValueError`` when there is no momentum, or it is 0.
    """
    m = momentum_of(settings, name)
    return {"base_momentum": BASE_MOMENTUM_RATIO * m, "max_momentum": m}
