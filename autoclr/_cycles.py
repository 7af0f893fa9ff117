"""Training length: cycle ends, when to stop, and stopping callbacks held to cycle ends.

The paper stops training at the end of a cycle, when the LR is back at its
minimum, after at least 3 cycles or when another cycle no longer helps. Two
skorch callbacks make every way of stopping honour that:

- :class:`CycleEnd`, after the net's own callbacks, acts only at cycle ends
  (epoch ends where the iterations trained are a whole number of cycles): it
  records the monitored score, and stops training (``KeyboardInterrupt``, as
  skorch's ``EarlyStopping`` does; skorch's ``fit`` catches it) when a
  callback asked to stop during the cycle, or for ``n_cycles="auto"`` when
  the score improved by less than ``cycle_tol`` over the best earlier cycle
  end, from the third cycle on.
- :class:`HeldStop` wraps each of the user's callbacks (on the fitted copy of
  the net; the user's objects are never touched): a ``KeyboardInterrupt``
  raised by its ``on_epoch_end`` becomes a request that :class:`CycleEnd`
  honours at the cycle's end.

:func:`run_cycles` trains a net with these callbacks and returns a
:class:`CycleReport` of what ran and why it stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

from sklearn.base import is_classifier
from skorch.callbacks import Callback

from ._distributed import broadcast_object
from ._schedule import (
    MIN_CYCLES,
    cyclic_lr_callback,
    exp_range_gamma,
    momentum_bounds,
    one_cycle_callback,
    plan_cycles,
    trained_iterations,
)
from ._utils import n_train_samples, seeded, warn

__all__ = ["CycleEnd", "HeldStop", "CycleReport", "cycle_callbacks", "run_cycles",
           "plan_more", "hold_stops", "resolve_monitor", "MONITORS", "CYCLE_TOL", "SCHEDULER",
           "GATE"]

#: ``n_cycles="auto"``: smallest relative improvement of the monitored score,
#: over the best earlier cycle end, that earns another cycle
CYCLE_TOL = 0.01
#: what ``cycle_monitor`` may name ("auto": valid_loss, or train_loss without a
#: validation split)
MONITORS = ("auto", "valid_loss", "valid_acc", "train_loss")
#: names of AutoCLR's callbacks in the fitted net
SCHEDULER, GATE = "autoclr_cyclic_lr", "autoclr_cycle_end"


def resolve_monitor(net, monitor="auto"):
    """The history key read at cycle ends; ``ValueError`` when the net cannot record it."""
    if monitor == "auto":
        return "valid_loss" if net.train_split is not None else "train_loss"
    if monitor.startswith("valid_") and net.train_split is None:
        raise ValueError(
            f"cycle_monitor={monitor!r} needs a validation split, but the net has "
            "train_split=None. Give the net a train_split (e.g. skorch's ValidSplit(5)) "
            "or use cycle_monitor='train_loss' (or 'auto').")
    if monitor == "valid_acc" and not is_classifier(net):
        raise ValueError(
            "cycle_monitor='valid_acc' needs a classifier; the net is a "
            f"{type(net).__name__}. Use 'valid_loss' (or 'auto').")
    return monitor


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
    """

    n_cycles: int
    n_epochs: int
    n_iter: int
    stop_reason: str
    explanation: str
    monitor: str
    scores: tuple = ()
    cycle_ends: tuple = ()

    def __repr__(self) -> str:
        return (f"trained {self.n_cycles} cycle(s), {self.n_epochs} epochs, {self.n_iter} "
                f"iterations; stop: {self.stop_reason} ({self.explanation})")

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

    Parameters
    ----------
    monitor : str
        History key read at each cycle end.
    lower_is_better : bool
        Direction of ``monitor``.
    auto : bool
        ``n_cycles="auto"``: stop at the first cycle end, from cycle
        ``min_cycles`` on, where ``monitor`` improved by less than ``tol``
        (relative) over the best earlier cycle end.
    tol : float
    min_cycles : int
    restart : bool
        Cycles are counted from each fit's start (``OneCycleLR``: one cycle
        per fit) instead of from the net's first iteration.
    cycle_iter : int
        Iterations of one cycle; set before each fit by :func:`run_cycles`.
    """

    def __init__(self, monitor="valid_loss", lower_is_better=True, auto=False,
                 tol=CYCLE_TOL, min_cycles=MIN_CYCLES, restart=False, cycle_iter=1):
        self.monitor = monitor
        self.lower_is_better = lower_is_better
        self.auto = auto
        self.tol = tol
        self.min_cycles = min_cycles
        self.restart = restart
        self.cycle_iter = cycle_iter

    def initialize(self):
        self.scores_, self.cycle_ends_ = [], []
        self.origin_ = self.cycles_before_ = 0
        self.stop_reason_ = self.explanation_ = None
        return self

    def begin(self, net, plan, monitor="auto", tol=CYCLE_TOL):
        """Before each fit: this fit's cycle length and stopping rule."""
        if self.restart:  # one_cycle: a new cycle, counted from here
            self.cycles_before_ = self.n_cycles(net)
            self.origin_ = trained_iterations(net)
        monitor = resolve_monitor(net, monitor)
        if monitor != self.monitor:
            self.scores_, self.cycle_ends_ = [], []
        self.monitor, self.lower_is_better = monitor, monitor.endswith("loss")
        self.cycle_iter, self.auto, self.tol = plan.cycle_iter, plan.stop == "auto", tol

    def on_train_begin(self, net, **kwargs):
        self.stop_reason_ = self.explanation_ = None

    def n_cycles(self, net):
        """Whole cycles trained by the net."""
        done = trained_iterations(net) - self.origin_
        return self.cycles_before_ + done // self.cycle_iter

    def on_epoch_end(self, net, **kwargs):
        done = trained_iterations(net) - self.origin_
        if done <= 0 or done % self.cycle_iter:
            return
        cycle = self.n_cycles(net)
        self.scores_.append(broadcast_object(float(net.history[-1, self.monitor]), net))
        self.cycle_ends_.append(trained_iterations(net))
        asked = {name: cb.requested_ for name, cb in net.callbacks_
                 if isinstance(cb, HeldStop) and getattr(cb, "requested_", None) is not None}
        asked = broadcast_object(asked, net)  # the main process's decision, everywhere
        if asked:
            first = min(asked.values())
            self._stop("callback", (
                f"{', '.join(asked)} asked to stop in epoch {first}; held to the end of "
                f"cycle {cycle}, epoch {len(net.history)}"))
        if self.auto and cycle >= self.min_cycles and len(self.scores_) >= 2:
            gain, best = _gain(self.scores_, self.lower_is_better)
            if gain < self.tol:
                self._stop("no_improvement", (
                    f"{self.monitor}={self.scores_[-1]:.4g} at the end of cycle {cycle} "
                    f"improved by {gain:.2%} on the best earlier cycle end ({best:.4g}), "
                    f"less than cycle_tol={self.tol:g}"))

    def _stop(self, reason, explanation):
        self.stop_reason_, self.explanation_ = reason, explanation
        raise KeyboardInterrupt

    def report(self, net, plan, start) -> CycleReport:
        """What the fit that started at iteration ``start`` ran, and why it stopped."""
        total = trained_iterations(net)
        done = total - start
        if self.stop_reason_ is not None:
            reason, why = self.stop_reason_, self.explanation_
        elif done >= plan.n_iter:
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
            stop_reason=reason, explanation=why, monitor=self.monitor,
            scores=tuple(self.scores_), cycle_ends=tuple(self.cycle_ends_))


def cycle_callbacks(net, suggestion, *, gamma="auto", cycle_momentum=False):
    """AutoCLR's two callbacks for the fitted net: the LR schedule and :class:`CycleEnd`."""
    plan = suggestion.plan
    momentum = momentum_bounds(net) if cycle_momentum else {}
    if plan.policy == "one_cycle":
        scheduler = one_cycle_callback(suggestion.base_lr, suggestion.max_lr, plan.n_iter,
                                       cycle_momentum=bool(cycle_momentum), **momentum)
    else:
        gamma = exp_range_gamma(plan.n_iter) if gamma == "auto" else gamma
        scheduler = cyclic_lr_callback(
            suggestion.base_lr, suggestion.max_lr, plan.step_size, policy=plan.policy,
            gamma=gamma, cycle_momentum=bool(cycle_momentum), **momentum)
    return [(SCHEDULER, scheduler), (GATE, CycleEnd(restart=plan.policy == "one_cycle"))]


def plan_more(net, X, y, max_epochs, *, step_size, n_cycles, policy):
    """The plan of a warm start: more cycles of the fitted step size on a fitted net.

    ``max_epochs`` (the user's net's, now) is the budget of this fit; the
    paper's minimum of cycles is not asked of it, since cycles were trained
    before.
    """
    return plan_cycles(n_train_samples(net, X, y), net.batch_size, max_epochs,
                       step_size=step_size,
                       n_cycles=n_cycles, policy=policy, min_cycles=1)


def run_cycles(net, X, y, plan, *, seed, device=None, monitor="auto", tol=CYCLE_TOL,
               fit_params=None) -> CycleReport:
    """Train ``net`` (first fit or warm start) for ``plan``; what ran and why it stopped.

    The net carries :func:`cycle_callbacks`. It is initialised if it is not,
    its user callbacks are held to cycle ends (:func:`hold_stops`), and it is
    trained with ``partial_fit`` (so a fitted net trains further, its
    schedule resuming) for ``plan.n_epochs`` epochs at most. A fit that ends
    elsewhere than at a cycle end (Ctrl-C) warns.
    """
    net.set_params(max_epochs=plan.n_epochs)
    with seeded(seed, device):
        if not net.initialized_:
            net.initialize()
        callbacks = dict(net.callbacks_)
        scheduler, gate = callbacks[SCHEDULER], callbacks[GATE]
        if plan.policy == "one_cycle":
            scheduler.total_steps = plan.n_iter  # a new cycle over this fit's budget
        gate.begin(net, plan, monitor, tol)
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
