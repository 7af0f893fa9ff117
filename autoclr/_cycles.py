"""Executing the plan: the LR scheduler, cycle ends, stopping held to cycle ends.

:mod:`autoclr._schedule` plans the fit in numbers (a
:class:`~autoclr.CyclePlan`); this module carries a plan out on a skorch net,
and is the only one of the two that touches the net, torch or skorch. The
schedule itself is :class:`torch.optim.lr_scheduler.CyclicLR` (or
:class:`~torch.optim.lr_scheduler.OneCycleLR` for ``policy="one_cycle"``),
driven per batch by :class:`CycleScheduler`, skorch's ``LRScheduler``:
:func:`cyclic_lr_callback` and :func:`one_cycle_callback` build it. The
bounds are for the net's ``lr``: one scheduler per optimizer the net
initialises sets each param group to the schedule times the group's ratio to
the net's lr (:mod:`autoclr._groups`), so the ratios the user set stay.

The paper stops training at the end of a cycle, when the LR is back at its
minimum, after at least 3 cycles or when another cycle no longer helps. Three
callbacks make every way of stopping honour that:

- :class:`CycleScheduler` steps the schedule through the plan's whole cycles
  and then holds the LR where the last one ended (base_lr), so iterations
  left in the last epoch, when a cycle is not a whole number of epochs,
  train at base_lr; a warm start resumes the schedule at the next cycle.
- :class:`CycleEnd`, after the net's own callbacks, acts only at cycle ends
  (epoch ends where the iterations trained in this fit are a whole number of
  cycles): it records the monitored score, and stops training
  (``KeyboardInterrupt``, as skorch's ``EarlyStopping`` does; skorch's
  ``fit`` catches it) when a callback asked to stop during the cycle, or for
  ``n_cycles="auto"`` when the score improved by less than ``cycle_tol``
  over the best earlier cycle end, from the third cycle on.
- :class:`HeldStop` wraps each of the user's callbacks (on the fitted copy of
  the net; the user's objects are never touched): a ``KeyboardInterrupt``
  raised by its ``on_epoch_end`` becomes a request that :class:`CycleEnd`
  honours at the cycle's end.

:func:`run_cycles` trains a net with these callbacks and returns a
:class:`CycleReport` of what ran and why it stopped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from skorch.callbacks import Callback, LRScheduler
from torch.optim.lr_scheduler import CyclicLR, OneCycleLR

from ._distributed import broadcast_object
from ._groups import lr_ratios, net_optimizers, scale_lr
from ._keep import keeper, resolve_weights
from ._rng import exclusive_rng, seeded
from ._schedule import (
    MIN_CYCLES,
    ONE_CYCLE_ANNEAL,
    ONE_CYCLE_FINAL_DIV_FACTOR,
    ONE_CYCLE_PCT_START,
    exp_range_gamma,
    momentum_range,
)
from ._utils import is_int, warn
from ._validation import resolve_monitor

__all__ = ["CycleScheduler", "CycleEnd", "HeldStop", "CycleReport", "cyclic_lr_callback",
           "one_cycle_callback", "cycle_callbacks", "run_cycles", "hold_stops",
           "trained_iterations", "CYCLE_TOL", "SCHEDULER",
           "GATE"]

#: ``n_cycles="auto"``: smallest relative improvement of the monitored score,
#: over the best earlier cycle end, that earns another cycle
CYCLE_TOL = 0.01
#: names of AutoCLR's callbacks in the fitted net
SCHEDULER, GATE = "autoclr_cyclic_lr", "autoclr_cycle_end"


def trained_iterations(net) -> int:
    """Training batches in the net's history, a last interrupted epoch included."""
    total = 0
    for row in net.history:
        count = row.get("train_batch_count")
        if count is None:
            count = sum(1 for batch in row.get("batches", ()) if "train_loss" in batch)
        total += count
    return int(total)


# ------------------------------------------------------------------ the LR schedule
def cyclic_lr_callback(
    base_lr,
    max_lr,
    step_size,
    *,
    policy="triangular2",
    gamma=1.0,
    cycle_momentum=False,
    base_momentum=None,
    max_momentum=None,
):
    """Build the skorch callback that runs ``CyclicLR`` once per batch.

    Parameters
    ----------
    base_lr, max_lr : float
        Bounds of the cycle, for the net's ``lr`` (its ``optimizer__lr`` when
        set). Each param group of each optimizer follows at its own initial
        LR / the net's lr, read when training first begins: with ``lr=0.01``
        and ``optimizer__param_groups=[("head.*", {"lr": 0.1})]`` the head
        cycles between 10 x ``base_lr`` and 10 x ``max_lr``; a group at
        ``lr=0`` stays frozen; every optimizer the net registers (a second
        one from an overridden ``initialize_optimizer``) is scheduled.
    step_size : int
        Iterations of half a cycle (``CyclicLR``'s ``step_size_up``).
    policy : {"triangular", "triangular2", "exp_range"}, default="triangular2"
        ``CyclicLR``'s ``mode``.
    gamma : float, default=1.0
        Per-iteration amplitude decay of ``exp_range``.
    cycle_momentum : bool, default=False
        Passed to ``CyclicLR``. Off by default so that the optimizer's
        momentum is never changed without being asked.
    base_momentum, max_momentum : float or None, default=None
        Momentum bounds when ``cycle_momentum=True`` (the momentum is
        ``base_momentum`` at ``max_lr`` and ``max_momentum`` at ``base_lr``).
        ``None``: 0.85 x and 1 x the optimizer's own momentum ``m`` (its
        ``momentum``, or ``betas[0]``), read from the optimizer when training
        begins, as :class:`~autoclr.AutoCLR` does.

    Returns
    -------
    CycleScheduler
        skorch's ``LRScheduler``, stepped every batch; records the LR of each
        batch (the net's lr, before the groups' ratios) in the history under
        ``"event_lr"``; a further fit of the same net continues the cycles
        where the last one ended, with the ratios of its first fit.
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
                       base_momentum=None, max_momentum=None):
    """Build the skorch callback that runs one ``OneCycleLR`` cycle per fit, per batch.

    The LR starts at ``base_lr`` (``div_factor = max_lr / base_lr``), rises to
    ``max_lr`` over ``ONE_CYCLE_PCT_START`` of the ``total_steps`` and anneals
    to ``base_lr / ONE_CYCLE_FINAL_DIV_FACTOR`` at the last iteration, both
    phases ``ONE_CYCLE_ANNEAL`` shaped.

    Parameters
    ----------
    base_lr, max_lr : float
        Start and peak of the cycle, for the net's ``lr``; each param group
        follows at its lr / the net's lr (see :func:`cyclic_lr_callback`):
        ``max_lr`` is given per group, ``div_factor`` is common, so each
        group starts at ``base_lr`` and ends at ``base_lr / 1e4`` times its
        ratio.
    total_steps : int
        Iterations of the cycle: the whole fit.
    cycle_momentum : bool, default=False
        Passed to ``OneCycleLR`` explicitly (its own default is True), so the
        optimizer's momentum is never changed without being asked.
    base_momentum, max_momentum : float or None, default=None
        Momentum bounds when ``cycle_momentum=True`` (``base_momentum`` at
        the peak, ``max_momentum`` at both ends). ``None``: 0.85 x and 1 x
        the optimizer's own momentum ``m`` (its ``momentum``, or
        ``betas[0]``), read from the optimizer when training begins, as
        :class:`~autoclr.AutoCLR` does.

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
    Momentum bounds left at ``None`` are read from the optimizer when
    training begins (see :func:`cyclic_lr_callback`).

    Every optimizer the net initialises (``net._optimizers``) gets a scheduler
    of its own, each param group at the LRs given times its ratio to the net's
    lr (:func:`autoclr._groups.lr_ratios`; 1 for a net without groups, whose
    schedule is then exactly skorch's).

    Before a fit, :meth:`begin` may set where the schedule resumes and how
    many steps it takes; after those it holds the LR (:func:`run_cycles`
    does this, so that a fit ends where its last whole cycle ended). The
    parameters are never changed.

    Attributes
    ----------
    start_, n_steps_ : int or None
        Set by :meth:`begin` for the next fit: the schedule's position at its
        start (``None``: the iterations in the net's history) and the steps
        it takes (``None``: one every batch). Cleared when training ends.
    steps_left_ : int or None
        Steps still to take in this fit.
    lr_schedulers_ : dict
        This fit's torch scheduler of each optimizer, by name (``"optimizer"``,
        ``"optimizer2"``...); ``lr_scheduler_`` is the one of ``optimizer_``.
    lr_ratios_ : dict
        Each optimizer's groups' ratios to the net's lr, by name.
    """

    def initialize(self):
        super().initialize()
        self.start_ = self.n_steps_ = self.steps_left_ = None
        self.lr_schedulers_, self.lr_ratios_ = {}, {}
        return self

    def begin(self, start, n_steps):
        """Before a fit: resume at iteration ``start``, step ``n_steps`` times, then hold."""
        self.start_, self.n_steps_ = int(start), int(n_steps)

    def on_train_begin(self, net, **kwargs):
        start = trained_iterations(net) if self.start_ is None else self.start_
        self.batch_idx_ = start
        restart = self.policy_ is OneCycleLR or start == 0
        # one scheduler per optimizer, each group at the schedule times its ratio
        self.lr_schedulers_, self.lr_ratios_ = {}, {}
        for name, optimizer in net_optimizers(net).items():
            self.lr_ratios_[name] = lr_ratios(net, optimizer)
            self.lr_schedulers_[name] = self.policy_(
                optimizer, **self._policy_kwargs(net, name, optimizer),
                last_epoch=-1 if restart else start - 1)
        # skorch's name: the scheduler of the net's optimizer_
        self.lr_scheduler_ = self.lr_schedulers_.get(
            "optimizer", next(iter(self.lr_schedulers_.values())))
        self.steps_left_ = self.n_steps_

    def _policy_kwargs(self, net, name, optimizer):
        """One optimizer's scheduler arguments: LRs per group, this fit's ``total_steps``,
        the momentum resolved."""
        kwargs = self.kwargs
        for key in ("base_lr", "max_lr"):  # OneCycleLR: max_lr, and div_factor as given
            if key in kwargs:
                kwargs[key] = scale_lr(kwargs[key], self.lr_ratios_[name])
        if self.policy_ is OneCycleLR and self.n_steps_ is not None:
            kwargs["total_steps"] = self.n_steps_  # a new cycle over this fit
        unset = [key for key in ("base_momentum", "max_momentum") if kwargs.get(key) is None]
        if kwargs.get("cycle_momentum") and unset:
            own = momentum_range(optimizer.defaults, type(optimizer).__name__)
            kwargs.update({key: own[key] for key in unset})
        return kwargs

    def schedule_lr(self) -> float:
        """The schedule's last LR for the net's lr (what the history records as ``event_lr``).

        Read off a group at ratio 1 (exactly), else off the first group not
        frozen; 0 when every group is frozen.
        """
        pairs = [(lr, ratio) for name, scheduler in self.lr_schedulers_.items()
                 for lr, ratio in zip(scheduler.get_last_lr(), self.lr_ratios_[name])]
        for lr, ratio in pairs:
            if ratio == 1.0:
                return lr
        return next((lr / ratio for lr, ratio in pairs if ratio), 0.0)

    def on_batch_end(self, net, training, **kwargs):
        if not training or self.step_every != "batch":
            return
        if self.event_name is not None:
            net.history.record_batch(self.event_name, self.schedule_lr())
        # after the planned whole cycles (steps_left_ == 0) the LR holds where they ended
        if self.steps_left_ != 0:
            for scheduler in self.lr_schedulers_.values():
                self._step(net, scheduler)
            if self.steps_left_ is not None:
                self.steps_left_ -= 1
        self.batch_idx_ += 1

    def on_train_end(self, net, **kwargs):
        self.start_ = self.n_steps_ = self.steps_left_ = None


# ------------------------------------------------------------------ cycle ends
def _gain(scores, lower_is_better):
    """Relative improvement of the last score over the best earlier one."""
    *earlier, last = scores
    best = min(earlier) if lower_is_better else max(earlier)
    gain = (best - last) if lower_is_better else (last - best)
    return gain / (abs(best) or 1.0), best


@dataclass(frozen=True)
class CycleReport:
    """What the cyclical fit ran and why it stopped; its repr is one line.

    Attributes
    ----------
    n_cycles : int
        Whole cycles trained by the net (warm starts included).
    n_epochs, n_iter : int
        Epochs and iterations (batches) in the net's history.
    stop_reason : str
        ``"max_epochs"`` (the budget's whole cycles ran), ``"n_cycles"`` (the
        number asked for), ``"no_improvement"`` (``n_cycles="auto"``),
        ``"callback"`` (a callback asked to stop; held to the cycle's end) or
        ``"interrupted"`` (Ctrl-C, or a callback stopping outside
        ``on_epoch_end``: the LR did not end at a cycle end).
    explanation : str
        The reason in words.
    monitor : str
        History key read at cycle ends.
    scores : tuple of float
        ``monitor`` at each cycle end seen.
    cycle_ends : tuple of int
        Iterations trained at each of those cycle ends.
    weights : str
        The weights the fitted net holds (``cycle_weights``): ``"last"``, or
        which cycle end's (``"best"``), or the average of how many.
    kept_cycle : int or None
        ``cycle_weights="best"``: the cycle whose end's weights were kept.
    """

    n_cycles: int
    n_epochs: int
    n_iter: int
    stop_reason: str
    explanation: str
    monitor: str
    scores: tuple = ()
    cycle_ends: tuple = ()
    weights: str = "last"
    kept_cycle: int | None = None

    def __repr__(self) -> str:
        weights = "" if self.weights == "last" else (
            f"; weights: {self.weights}; {self.monitor} at the cycle ends: "
            + ", ".join(f"{score:.4g}" for score in self.scores))
        return (f"trained {self.n_cycles} cycle(s), {self.n_epochs} epochs, {self.n_iter} "
                f"iterations; stop: {self.stop_reason} ({self.explanation}){weights}")

    __str__ = __repr__


class HeldStop(Callback):
    """One of the user's callbacks, whose stop requests wait for the cycle's end.

    Every hook is passed on; a ``KeyboardInterrupt`` from ``on_epoch_end`` (how
    skorch's ``EarlyStopping`` stops training) is recorded in ``requested_``
    instead, and :class:`CycleEnd` stops training at the cycle's end. Other
    attributes, ``get_params`` and ``set_params`` are those of the wrapped
    callback.

    Parameters
    ----------
    callback : skorch.callbacks.Callback
        An initialised callback of the fitted copy of the net (never the
        user's own object).

    Attributes
    ----------
    requested_ : int or None
        The epoch (numbered as in the net's history) in which the callback
        first asked to stop during this fit; ``None`` when it did not.
    """

    def __init__(self, callback):
        self.callback = callback

    def __getattr__(self, name):
        if name == "callback":  # not set yet (while unpickling)
            raise AttributeError(name)
        return getattr(self.callback, name)

    def get_params(self, deep=True):
        return self.callback.get_params(deep=deep)

    def set_params(self, **params):
        self.callback.set_params(**params)
        return self

    def initialize(self):
        self.callback.initialize()
        return self

    def on_train_begin(self, net, **kwargs):
        self.requested_ = None
        self.callback.on_train_begin(net, **kwargs)

    def on_epoch_end(self, net, **kwargs):
        try:
            self.callback.on_epoch_end(net, **kwargs)
        except KeyboardInterrupt:
            if getattr(self, "requested_", None) is None:
                self.requested_ = len(net.history)  # the epoch it first asked in

    def on_train_end(self, net, **kwargs):
        self.callback.on_train_end(net, **kwargs)

    def on_epoch_begin(self, net, **kwargs):
        self.callback.on_epoch_begin(net, **kwargs)

    def on_batch_begin(self, net, **kwargs):
        self.callback.on_batch_begin(net, **kwargs)

    def on_batch_end(self, net, **kwargs):
        self.callback.on_batch_end(net, **kwargs)

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self.callback.on_grad_computed(net, named_parameters, **kwargs)


def _stops_at_epoch_end(callback):
    return type(callback).on_epoch_end is not Callback.on_epoch_end


def hold_stops(net):
    """Wrap the user's callbacks in the (initialised) net's ``callbacks_`` in :class:`HeldStop`.

    Only the net's own list of initialised callbacks changes; callbacks that
    do not override ``on_epoch_end``, skorch's defaults and AutoCLR's own are
    left as they are. Wrapping twice (a warm start) wraps once.
    """
    skip = {name for name, _ in net.get_default_callbacks()} | {SCHEDULER, GATE}
    net.callbacks_ = [
        (name, cb if name in skip or isinstance(cb, HeldStop) or not _stops_at_epoch_end(cb)
         else HeldStop(cb))
        for name, cb in net.callbacks_]


class CycleEnd(Callback):
    """Acts at cycle ends only: records the score, stops training when asked or done.

    Cycles are counted from each fit's start (each fit's schedule starts a
    cycle: :func:`run_cycles`), on top of those trained before it.

    Parameters
    ----------
    monitor : str, default="valid_loss"
        History key read at each cycle end.
    lower_is_better : bool, default=True
        Direction of ``monitor``.
    auto : bool, default=False
        ``n_cycles="auto"``: stop at the first cycle end, from cycle
        ``min_cycles`` on, where ``monitor`` improved by less than ``tol``
        (relative) over the best earlier cycle end.
    tol : float, default=CYCLE_TOL
        Smallest relative improvement that earns another cycle.
    min_cycles : int, default=MIN_CYCLES
        Cycles trained before ``auto`` may stop.
    cycle_iter : int, default=1
        Iterations of one cycle.
    weights : {"auto", "last", "best", "average"}, default="last"
        The weights the net ends with (:mod:`autoclr._keep`): those trained
        last, those of the cycle end with the best ``monitor``, or the average
        of the cycle ends' weights; ``"auto"``: ``"best"`` for a regressor
        monitored on its validation loss, else ``"last"`` (resolved by
        :meth:`begin`).

    The parameters are the values of a callback used on its own; they are
    never changed. :meth:`begin` sets this fit's values, from the plan,
    in the attributes below, which the hooks read.

    Attributes
    ----------
    monitor_, lower_is_better_, auto_, tol_, cycle_iter_, weights_
        This fit's values: the parameters after ``initialize``, the plan's
        after :meth:`begin` (``weights_`` resolved from ``"auto"``).
    auto_weights_ : bool
        ``weights_`` was resolved from ``"auto"``; ``kept_`` then says so.
    kept_ : tuple
        What the fit's keeper of weights said when training ended.
    scores_, cycle_ends_ : list
        ``monitor_`` and the iterations trained at each cycle end seen (warm
        starts included, while the monitor stays the same).
    stop_reason_, explanation_ : str or None
        Why this callback stopped the fit, if it did.
    """

    def __init__(self, monitor="valid_loss", lower_is_better=True, auto=False,
                 tol=CYCLE_TOL, min_cycles=MIN_CYCLES, cycle_iter=1, weights="last"):
        self.monitor = monitor
        self.lower_is_better = lower_is_better
        self.auto = auto
        self.tol = tol
        self.min_cycles = min_cycles
        self.cycle_iter = cycle_iter
        self.weights = weights

    def initialize(self):
        self.monitor_, self.lower_is_better_ = self.monitor, self.lower_is_better
        self.auto_, self.tol_, self.cycle_iter_ = self.auto, self.tol, self.cycle_iter
        self.weights_, self.kept_ = self.weights, ("last", None)
        self.auto_weights_ = self.weights == "auto"
        self.keeper_ = keeper(self.weights_, self.lower_is_better_)
        self.schedule_iter_ = math.inf  # the plan's whole cycles: set by begin
        self.scores_, self.cycle_ends_ = [], []
        self.origin_ = self.cycles_before_ = 0
        self.stop_reason_ = self.explanation_ = None
        return self

    def begin(self, net, plan, monitor="auto", tol=CYCLE_TOL, weights="last") -> int:
        """Before each fit: this fit's cycle length and stopping rule.

        Returns the whole cycles trained before this fit; the fit's schedule
        starts the next one.
        """
        self.cycles_before_ = self.n_cycles(net)
        self.origin_ = trained_iterations(net)
        monitor = resolve_monitor(net, monitor)
        if monitor != self.monitor_:
            self.scores_, self.cycle_ends_ = [], []
        self.monitor_, self.lower_is_better_ = monitor, monitor.endswith("loss")
        self.cycle_iter_, self.auto_, self.tol_ = plan.cycle_iter, plan.stop == "auto", tol
        self.weights_ = resolve_weights(net, weights, monitor)
        self.auto_weights_ = weights == "auto"
        self.schedule_iter_ = plan.schedule_iter
        return self.cycles_before_

    def on_train_begin(self, net, **kwargs):
        self.stop_reason_ = self.explanation_ = None
        self.keeper_ = keeper(self.weights_, self.lower_is_better_, self.tol_)
        self.kept_ = ("last", None)

    def on_train_end(self, net, X=None, y=None, **kwargs):
        # the fit's last epoch stands for its last cycle end when that cycle ended
        # inside it (its remaining iterations trained at base_lr); not after Ctrl-C
        done = trained_iterations(net) - self.origin_
        if (self.weights_ != "last" and done % self.cycle_iter_ and self.stop_reason_ is None
                and done >= self.schedule_iter_ >= self.cycle_iter_):
            self.keeper_.offer(net, float(net.history[-1, self.monitor_]),
                               self.n_cycles(net))
        text, cycle = self.keeper_.finish(net, X, y)
        if self.auto_weights_ and self.weights_ == "best":
            text += " (cycle_weights='auto': a regressor keeps its best cycle end)"
        self.kept_ = (text, cycle)

    def n_cycles(self, net):
        """Whole cycles trained by the net."""
        done = trained_iterations(net) - self.origin_
        return self.cycles_before_ + done // self.cycle_iter_

    def on_epoch_end(self, net, **kwargs):
        done = trained_iterations(net) - self.origin_
        if done <= 0 or done % self.cycle_iter_:
            return
        cycle = self.n_cycles(net)
        # under DDP every process decides on the main process's scores and requests
        self.scores_.append(broadcast_object(float(net.history[-1, self.monitor_]), net))
        self.cycle_ends_.append(trained_iterations(net))
        self.keeper_.offer(net, self.scores_[-1], cycle)
        asked = {name: cb.requested_ for name, cb in net.callbacks_
                 if isinstance(cb, HeldStop) and getattr(cb, "requested_", None) is not None}
        asked = broadcast_object(asked, net)
        if asked:
            first = min(asked.values())
            self._stop("callback", (
                f"{', '.join(asked)} asked to stop in epoch {first}; held to the end of "
                f"cycle {cycle}, epoch {len(net.history)}"))
        if self.auto_ and cycle >= self.min_cycles and len(self.scores_) >= 2:
            gain, best = _gain(self.scores_, self.lower_is_better_)
            if gain < self.tol_:
                self._stop("no_improvement", (
                    f"{self.monitor_}={self.scores_[-1]:.4g} at the end of cycle {cycle} "
                    f"improved by {gain:.2%} on the best earlier cycle end ({best:.4g}), "
                    f"less than cycle_tol={self.tol_:g}"))

    def _stop(self, reason, explanation):
        self.stop_reason_, self.explanation_ = reason, explanation
        raise KeyboardInterrupt

    def report(self, net, plan, start) -> CycleReport:
        """What the fit that started at iteration ``start`` ran, and why it stopped."""
        total = trained_iterations(net)
        done = total - start
        if self.stop_reason_ is not None:
            reason, why = self.stop_reason_, self.explanation_
        elif done >= plan.schedule_iter:  # whole cycles; any iterations left at base_lr
            reason = "n_cycles" if plan.stop == "n_cycles" else "max_epochs"
            why = (f"the n_cycles={plan.n_cycles} asked for were trained"
                   if reason == "n_cycles" else
                   f"the budget, the net's max_epochs, held {plan.n_cycles} whole "
                   f"cycle(s) of {plan.cycle_iter} iterations")
        else:
            reason = "interrupted"
            why = (f"stopped after {done} of {plan.n_iter} iterations; the LR did not end "
                   "at the end of a cycle")
        return CycleReport(
            n_cycles=self.n_cycles(net), n_epochs=len(net.history), n_iter=total,
            stop_reason=reason, explanation=why, monitor=self.monitor_,
            scores=tuple(self.scores_), cycle_ends=tuple(self.cycle_ends_),
            weights=self.kept_[0], kept_cycle=self.kept_[1])


# ------------------------------------------------------------------ running a plan
def cycle_callbacks(suggestion, *, gamma="auto", cycle_momentum=False):
    """AutoCLR's two callbacks for the fitted net: the LR schedule and :class:`CycleEnd`.

    With ``cycle_momentum`` the momentum bounds are left to the scheduler,
    which reads 0.85 m and m from the net's optimizer when training begins.
    """
    plan = suggestion.plan
    if plan.policy == "one_cycle":
        scheduler = one_cycle_callback(suggestion.base_lr, suggestion.max_lr, plan.n_iter,
                                       cycle_momentum=bool(cycle_momentum))
    else:
        gamma = exp_range_gamma(plan.n_iter) if gamma == "auto" else gamma
        scheduler = cyclic_lr_callback(
            suggestion.base_lr, suggestion.max_lr, plan.step_size, policy=plan.policy,
            gamma=gamma, cycle_momentum=bool(cycle_momentum))
    return [(SCHEDULER, scheduler), (GATE, CycleEnd())]


def run_cycles(net, X, y, plan, *, seed, device=None, monitor="auto", tol=CYCLE_TOL,
               weights="last", fit_params=None) -> CycleReport:
    """Train ``net`` (first fit or warm start) for ``plan``; what ran and why it stopped.

    The net carries :func:`cycle_callbacks`. It is initialised if it is not,
    its user callbacks are held to cycle ends (:func:`hold_stops`), and it is
    trained with ``partial_fit`` (so a fitted net trains further, its
    schedule resuming at the start of the next whole cycle) for
    ``plan.n_epochs`` epochs at most; the schedule steps through the plan's
    ``schedule_iter`` iterations and holds base_lr for any left in the last
    epoch. A fit that ends elsewhere than at a cycle end (Ctrl-C) warns.
    ``weights`` is ``cycle_weights``: what the net ends with (:mod:`autoclr._keep`).
    """
    net.set_params(max_epochs=plan.n_epochs)
    with seeded(seed, device, exclusive=False):
        with exclusive_rng():
            if not net.initialized_:
                net.initialize()
        callbacks = dict(net.callbacks_)
        scheduler, gate = callbacks[SCHEDULER], callbacks[GATE]
        cycles_before = gate.begin(net, plan, monitor, tol, weights)
        resume = 0 if plan.policy == "one_cycle" else cycles_before * plan.cycle_iter
        scheduler.begin(resume, plan.schedule_iter)
        hold_stops(net)
        start, epochs = trained_iterations(net), len(net.history)
        net.partial_fit(X, y, **(fit_params or {}))
    report = gate.report(net, plan, start)
    if report.stop_reason == "interrupted":
        warn(f"Training stopped after {report.n_iter - start} of {plan.n_iter} iterations, "
             f"in epoch {report.n_epochs - epochs} of {plan.n_epochs} (interrupted, or "
             "stopped by a callback outside on_epoch_end): the LR did not end at the end "
             "of a cycle. net_ holds the net as it stopped.")
    return report
