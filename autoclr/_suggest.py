"""The suggestion pipeline: range test -> detection -> fallbacks -> plan.

:func:`suggest` is everything :class:`~autoclr.AutoCLR` does before its
cyclical fit, in one place, top to bottom:

1. the plan (step size and training length) first, since it needs no
   training and its errors should come before any;
2. the range test (:func:`~autoclr.range_test`), retried once from a lower
   LR when its loss diverges before it can be read;
3. the reading of the bounds (:func:`~autoclr._detect.read_bounds`): the chosen detector, then
   the loss rule, then the net's own ``lr`` as a last resort;
4. bounds the user gave are kept and the missing one is reconciled with them.

The detectors (:mod:`autoclr._detect`) are pure and return their notes; this
module alone decides what follows a curve they cannot read, and it alone
warns, once per note, through :func:`warnings.warn` (no global warning state
is changed, so fits in threads do not disturb one another).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from sklearn.base import is_classifier

from ._data import n_samples, train_batches
from ._detect import SHORTCUT_RATIO, Bounds, BoundsWarning, read_bounds
from ._groups import describe_groups, reference_lr
from ._range_test import (
    AUTO_EPOCHS,
    DIVERGENCE_FACTOR,
    MAX_VALID_SAMPLES,
    MIN_AUTO_ITER,
    N_EVAL,
    RangeTestResult,
    run_range_test,
)
from ._schedule import (
    MIN_CYCLES,
    ONE_CYCLE_FINAL_DIV_FACTOR,
    TINY_FIT_ITER,
    CyclePlan,
    plan_cycles,
)
from ._utils import warn, warn_notes

__all__ = ["Suggestion", "suggest"]

#: a range test that diverges within this fraction of its iterations started too high
EARLY_DIVERGENCE_FRACTION = 0.25
#: the automatic retry after a divergence starts this factor lower
RETRY_LOWER_BY = 1e3


@dataclass(frozen=True, eq=False)
class Suggestion:
    """The bounds and step size AutoCLR would use; its repr is the printed block.

    Attributes
    ----------
    base_lr, max_lr : float
        The bounds to use: the detected ones, or those given.
    plan : CyclePlan
        Step size, iterations per epoch, factor, cycles and epochs.
    range_test : RangeTestResult or None
        The range test, with its ``bounds`` (``None`` when both bounds were given).
    notes : tuple of str
        How the plan or the test was adapted to the data (small data sets).
    step_size : int
        ``plan.step_size``.
    policy : str
        ``plan.policy``.
    bounds : Bounds or None
        ``range_test.bounds``: the detection (``None`` when both bounds were given).
    """

    base_lr: float
    max_lr: float
    plan: CyclePlan
    range_test: RangeTestResult | None = None
    notes: tuple = ()

    @property
    def step_size(self) -> int:
        return self.plan.step_size

    @property
    def policy(self) -> str:
        return self.plan.policy

    @property
    def bounds(self) -> Bounds | None:
        return None if self.range_test is None else self.range_test.bounds

    def __repr__(self) -> str:
        p = self.plan
        lines = ["AutoCLR suggestion"]
        if p.policy == "one_cycle":
            lines += [
                f"  base_lr={self.base_lr:.2e}  max_lr={self.max_lr:.2e}  "
                f"policy={self.policy}",
                f"  training: 1 cycle over {p.n_iter} iterations ({p.n_epochs} epochs, "
                f"{p.iterations_per_epoch} iterations/epoch), from base_lr up to max_lr "
                f"in {p.step_size} and down to {self.base_lr / ONE_CYCLE_FINAL_DIV_FACTOR:.2e}",
            ]
        else:
            upto = "up to " if p.stop == "auto" else ""
            lines += [
                f"  base_lr={self.base_lr:.2e}  max_lr={self.max_lr:.2e}  "
                f"step_size={p.step_size} ({p.factor:g} x {p.iterations_per_epoch} "
                f"iterations/epoch)  policy={self.policy}",
                f"  training: {upto}{p.n_cycles} cycle(s), {p.n_epochs} epochs, "
                f"{p.n_iter} iterations",
            ]
            if p.stop == "auto":
                lines.append(
                    f"  stop: n_cycles='auto', at the first cycle end from cycle "
                    f"{MIN_CYCLES} on where the score no longer improves")
        if self.bounds is not None:
            lines.append(f"  why: {self.bounds.explanation}")
        else:
            lines.append("  why: base_lr and max_lr were given; no range test was run.")
        rt = self.range_test
        if rt is not None:
            lines.append(
                f"  range test: {len(rt.lrs)} iterations, {rt.ramp} ramp "
                f"{rt.lr_range[0]:.0e} -> {rt.lr_range[1]:.0e}, stop: {rt.stop_reason}"
                f", {rt.wall_time:.2f}s")
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    __str__ = __repr__


def _readable(result, method):
    try:
        return read_bounds(result, method)
    except ValueError:
        return None


def _diverged_early(result):
    """The range test's loss diverged within its first ``EARLY_DIVERGENCE_FRACTION``."""
    return (result.stop_reason != "completed"
            and len(result.lrs) < EARLY_DIVERGENCE_FRACTION * result.n_iter)


def _check_first_loss(result):
    if result.stop_reason == "nan" and len(result.lrs) == 0:
        # the first loss is computed before any update: no LR can be blamed
        raise ValueError(
            "The training loss is not finite at the first iteration of the range test, "
            "before any update, so no learning rate can help. Check the criterion "
            "(NLLLoss expects log-probabilities; a module returning logits needs "
            "criterion=nn.CrossEntropyLoss), the module's output and the data (NaN or "
            "inf in X or y).")


def _retry_lower(net, X, y, rt, lr_range, test_params):
    """The range test again from ``RETRY_LOWER_BY`` lower, up to where it diverged."""
    lo = lr_range[0]
    retry = (lo / RETRY_LOWER_BY, max(rt.diverged_lr or lo, lo))
    why = (f"lr_range={lr_range} starts too high" if _diverged_early(rt) else
           f"before the curve could be read (lr_range={lr_range})")
    warn(f"The range test's loss diverged (stop: {rt.stop_reason}) after "
         f"{len(rt.lrs)} of {rt.n_iter} iterations, at lr={rt.diverged_lr:.3g}: {why}. "
         f"Retrying once with lr_range=({retry[0]:.3g}, {retry[1]:.3g}).", BoundsWarning)
    rt = run_range_test(net, X, y, lr_range=retry, **test_params)
    if _diverged_early(rt):
        raise ValueError(
            f"The range test's loss diverges from the first iterations (stop: "
            f"{rt.stop_reason} after {len(rt.lrs)} of {rt.n_iter} iterations, at "
            f"lr={rt.diverged_lr:.3g}), even after a retry from lr={retry[0]:.3g}. "
            "Start lr_range lower, or check the net and the data (unscaled inputs "
            "or targets, a wrong criterion).")
    return rt


def _test_and_read(net, X, y, *, lr_range, detection, **test_params):
    """The range test and its reading.

    A test whose loss diverged early, or before its curve could be read, is run
    once more from a lower LR; an early divergence then is an error. A curve
    that still cannot be read falls back to the net's own ``lr``.
    """
    rt = run_range_test(net, X, y, lr_range=lr_range, **test_params)
    _check_first_loss(rt)
    bounds = _readable(rt, detection)
    if rt.stop_reason != "completed" and (bounds is None or _diverged_early(rt)):
        rt = _retry_lower(net, X, y, rt, lr_range, test_params)
        bounds = _readable(rt, detection)
    if bounds is None:
        # neither the score nor the loss can be read: the net's own lr, said loudly
        bounds = read_bounds(rt, detection, net_lr=reference_lr(net))
    warn_notes(bounds.notes, BoundsWarning)
    return replace(rt, bounds=bounds)


def _size_notes(n, n_train, batch_size, plan):
    if batch_size in (-1, None) or n_train >= 2 * batch_size:
        return ()
    return (f"n_samples={n} is small for batch_size={batch_size}: the net trains on "
            f"{n_train} samples, {plan.iterations_per_epoch} batch(es) per epoch; the "
            "range test and the cycles are counted in those batches.",)


def suggest(net, X, y, *, policy, base_lr, max_lr, step_size, step_size_factor, n_cycles,
            lr_range, ramp, range_test_iter, valid_size, detection, verbose, device, seed,
            classes=None, fit_params=None) -> Suggestion:
    """Range test, detection, fallbacks and plan: the bounds and step size to use.

    The parameters are :class:`~autoclr.AutoCLR`'s, already checked
    (``device`` resolved); ``X`` and ``y`` are validated and ``y`` encoded;
    ``seed`` is an int; ``classes`` a classifier's ``classes_``.
    """
    # the plan needs no training: computed first, so its errors come first
    n_train, batches = train_batches(net, X, y)
    plan = plan_cycles(n_train, net.batch_size, net.max_epochs, step_size=step_size,
                       factor=step_size_factor, n_cycles=n_cycles, policy=policy,
                       batches=batches, classifier=is_classifier(net))
    notes = _size_notes(n_samples(X), n_train, net.batch_size, plan)
    if policy == "auto" and plan.policy != "triangular2":
        notes += (f"policy='auto': {plan.policy!r} for a classifier's fit of {plan.n_iter} "
                  f"iterations (under {TINY_FIT_ITER}), every cycle rising to max_lr; "
                  "triangular2 would halve the amplitude each cycle, leaving the last ones "
                  "too little training.",)
    groups = describe_groups(net)  # how param groups and other optimizers follow the lr
    notes += (groups,) if groups else ()
    rt = None
    if base_lr is None or max_lr is None:
        rt = _test_and_read(
            net, X, y, lr_range=tuple(float(v) for v in lr_range), detection=detection,
            ramp=ramp, n_iter=range_test_iter, n_eval=N_EVAL, valid_size=valid_size,
            max_valid_samples=MAX_VALID_SAMPLES, divergence_factor=DIVERGENCE_FACTOR,
            random_state=seed, device=device, verbose=verbose, fit_params=fit_params,
            classes=classes, fit_iter=plan.n_iter)
        base_lr, max_lr = _reconcile(rt.bounds, base_lr, max_lr)
        if len(rt.lrs) > plan.n_iter:
            floor = (f" (range_test_iter='auto': {AUTO_EPOCHS} epochs or a quarter of the "
                     f"fit, at least {MIN_AUTO_ITER} iterations, to have a curve to read)"
                     if range_test_iter == "auto" else "")
            notes += (f"the range test ran {len(rt.lrs)} iterations, more than the fit's "
                      f"{plan.n_iter}{floor}; to fit again on such data without a new test, "
                      "as in a grid search, pass base_lr_ and max_lr_ as base_lr and "
                      "max_lr.",)
    return Suggestion(base_lr=float(base_lr), max_lr=float(max_lr), plan=plan,
                      range_test=rt, notes=notes)


def _reconcile(bounds, base_lr, max_lr):
    """The detected bounds, with a bound the user gave kept as given."""
    if base_lr is None and max_lr is None:
        return bounds.base_lr, bounds.max_lr
    if base_lr is None:
        base_lr = bounds.base_lr
        if base_lr >= max_lr:
            warn(f"The detected base_lr={base_lr:.3g} is not below the given "
                 f"max_lr={max_lr:.3g}; using max_lr / {SHORTCUT_RATIO:g}.")
            base_lr = max_lr / SHORTCUT_RATIO
        return base_lr, max_lr
    if bounds.max_lr <= base_lr:
        raise ValueError(
            f"The range test found max_lr={bounds.max_lr:.3g}, not above the given "
            f"base_lr={base_lr:.3g}. Lower base_lr or give max_lr too.")
    return base_lr, bounds.max_lr
