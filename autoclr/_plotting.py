"""Plots of a range test and of a fitted schedule (matplotlib, imported lazily).

matplotlib is an optional dependency (``pip install "autoclr[plot]"``); it is
imported only when a plot is drawn.
"""

from __future__ import annotations

import numpy as np

from ._schedule import ONE_CYCLE_FINAL_DIV_FACTOR

__all__ = ["plot_range_test", "plot_lr_schedule", "schedule_lrs"]

_INSTALL_HINT = (
    "Plotting needs matplotlib, which is an optional dependency of autoclr: "
    'pip install "autoclr[plot]" (or pip install matplotlib).'
)

# colours of the Tableau palette, named once so that every plot agrees
SCORE, LOSS, BOUNDS, ONSET, PLATEAU, DIVERGED = (
    "tab:blue", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:red")


_RULE_NAMES = {"valid_loss": "validation loss", "loss": "loss rule", "net_lr": "net's lr"}


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - exercised by monkeypatching
        raise ImportError(_INSTALL_HINT) from exc
    return plt


def _new_axes(ax, figsize):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize, layout="constrained")
    return ax


def _interp_log(x, xs, ys):
    """``ys`` at ``x``, interpolated on log(lr)."""
    return float(np.interp(np.log(x), np.log(xs), ys))


def _loss_limits(losses):
    """Loss axis limits that keep the interesting part readable.

    The last iterations before divergence can reach losses many times the
    initial one; the axis stops at twice the initial loss level.
    """
    finite = losses[np.isfinite(losses)]
    if len(finite) == 0:
        return None
    start = float(np.median(finite[: max(1, len(finite) // 10)]))
    lo, hi = float(finite.min()), float(min(finite.max(), 2 * max(start, finite.min())))
    pad = 0.05 * (hi - lo) if hi > lo else 0.5 * abs(hi) + 1e-12
    return lo - pad, hi + pad


def plot_range_test(result, ax=None, *, show_loss=True):
    """Draw an LR range test: score and loss against the LR, with the bounds.

    Parameters
    ----------
    result : RangeTestResult
        A range test; when it carries ``bounds`` (as ``AutoCLR.range_test_``
        does, or after :meth:`~autoclr.RangeTestResult.with_bounds`) the
        chosen bounds are shaded and, when the score rule read them
        (``bounds.method == "accuracy"``), the smoothed score with its onset,
        plateau, peak and fall is drawn; the loss rule's smoothed loss goes
        on the loss axis.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw the score into; a new figure is made when ``None``. The
        training loss goes on a twin axis on the right.
    show_loss : bool, default=True
        Draw the training loss (per iteration) on a second y axis.

    Returns
    -------
    matplotlib.axes.Axes
        The axes of the score (the loss axes is ``ax.right_ax`` when drawn).
    """
    ax = _new_axes(ax, (7.5, 4.6))
    bounds = result.bounds
    smooth_score = bounds is not None and bounds.method == "accuracy" and len(
        bounds.smoothed) > 0
    ax.set_xscale("log")
    handles = _score_panel(ax, result, bounds if smooth_score else None)
    if show_loss and len(result.losses):
        handles += _loss_panel(ax, result, bounds)
    if bounds is not None:
        handles += _bounds_band(ax, bounds)
        if smooth_score:
            handles += _reading_marks(ax, bounds)
    if result.diverged_lr is not None:
        handles.append(ax.axvline(
            result.diverged_lr, color=DIVERGED, ls="--", lw=1.2,
            label=f"stopped ({result.stop_reason}) at lr={result.diverged_lr:.2g}"))
    lo, hi = result.lr_range
    ax.set_xlim(lo, hi)
    ax.set_title(f"LR range test: {len(result.lrs)} of {result.n_iter} iterations, "
                 f"{result.ramp} ramp", fontsize=11, pad=16)
    ax.legend(handles=handles, loc="upper left", fontsize=8, framealpha=0.9)
    ax.grid(True, which="major", alpha=0.3)
    return ax


def _score_panel(ax, result, score_bounds):
    """The validation scores, and the smoothed curve of the score rule's ``Bounds``; handles."""
    accuracy = result.score_name == "accuracy"
    score_label = "validation accuracy" if accuracy else "validation loss (negated)"
    (h,) = ax.plot(result.eval_lrs, result.scores, "o", ms=3.5, color=SCORE, alpha=0.5,
                   label=score_label)
    handles = [h]
    if score_bounds is not None:
        (h,) = ax.plot(score_bounds.smoothed_lrs, score_bounds.smoothed, "-", color=SCORE,
                       lw=2, label="smoothed score")
        handles.append(h)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel(score_label, color=SCORE)
    ax.tick_params(axis="y", colors=SCORE)
    limits = None if accuracy else _negated_loss_limits(result.scores)
    if limits is not None:
        ax.set_ylim(*limits)
    return handles


def _negated_loss_limits(scores):
    """Score axis limits for a negated loss: from half the rise below the start to the top.

    The negated loss can end far below the interesting part (a net blowing up).
    ``None`` when no score is finite.
    """
    scores = scores[np.isfinite(scores)]
    if len(scores) == 0:
        return None
    start = float(np.median(scores[: max(2, len(scores) // 10)]))
    hi = float(np.max(scores))
    rise = hi - start if hi > start else max(abs(start), 1e-3)
    lo = max(float(np.min(scores)), start - 0.5 * rise)
    return lo - 0.05 * rise, hi + 0.05 * rise


def _loss_panel(ax, result, bounds):
    """The training loss on a twin axis, ``ax.right_ax`` (and the loss rule's smooth); handles."""
    ax2 = ax.twinx()
    (h,) = ax2.plot(result.lrs, result.losses, "-", color=LOSS, lw=0.8, alpha=0.55,
                    label="training loss (per batch)")
    handles = [h]
    if bounds is not None and bounds.method == "loss" and len(bounds.smoothed):
        (h,) = ax2.plot(bounds.smoothed_lrs, bounds.smoothed, "-", color=LOSS, lw=2,
                        label="smoothed loss")
        handles.append(h)
    limits = _loss_limits(result.losses)
    if limits is not None:
        ax2.set_ylim(*limits)
    ax2.set_ylabel("training loss", color=LOSS)
    ax2.tick_params(axis="y", colors=LOSS)
    # the score stays in front of the loss
    ax.set_zorder(ax2.get_zorder() + 1)
    ax.patch.set_visible(False)
    ax.right_ax = ax2
    return handles


def _bounds_band(ax, bounds):
    """The chosen bounds: a shaded band, two vertical lines and their names; the band."""
    band = ax.axvspan(
        bounds.base_lr, bounds.max_lr, color=BOUNDS, alpha=0.15, lw=0,
        label=f"chosen bounds {bounds.base_lr:.2g} .. {bounds.max_lr:.2g}"
              + (f" (fallback: {_RULE_NAMES.get(bounds.method, bounds.method)})"
                 if bounds.fallback else ""))
    for lr in (bounds.base_lr, bounds.max_lr):
        ax.axvline(lr, color=BOUNDS, lw=1.5)
    for lr, name, ha in ((bounds.base_lr, "base_lr", "right"),
                         (bounds.max_lr, "max_lr", "left")):
        ax.annotate(f" {name} " if ha == "left" else f"{name} ", (lr, 1.0),
                    xycoords=("data", "axes fraction"), ha=ha, va="bottom",
                    color=BOUNDS, fontsize=9, fontweight="bold")
    return [band]


def _reading_marks(ax, bounds):
    """Onset, plateau, peak and fall of the score rule, on its smoothed curve; the handles."""
    marks = ((bounds.onset_lr, "v", ONSET, "onset (score starts to rise)"),
             (bounds.plateau_lr, "s", PLATEAU, "plateau (rise slows)"),
             (bounds.peak_lr, "*", SCORE, "peak"),
             (bounds.fall_lr, "^", PLATEAU, "fall (drops below the plateau)"))
    handles = []
    for lr, marker, color, label in marks:
        if lr is None:
            continue
        y = _interp_log(lr, bounds.smoothed_lrs, bounds.smoothed)
        size = 10 if marker == "*" else 8
        (h,) = ax.plot([lr], [y], marker, color=color, ms=size, mec="black", mew=0.6,
                       zorder=5, label=f"{label}: lr={lr:.2g}")
        handles.append(h)
    return handles


def schedule_lrs(estimator):
    """The learning rate of every training batch of a fitted net, in order.

    Parameters
    ----------
    estimator : AutoCLR or skorch.NeuralNet
        A fitted :class:`~autoclr.AutoCLR` (its ``net_`` is read) or a
        fitted skorch net whose history records ``"event_lr"`` per batch
        (skorch's ``LRScheduler`` with ``step_every="batch"`` does).

    Returns
    -------
    ndarray of shape (n_batches,)
    """
    net = getattr(estimator, "net_", estimator)
    history = getattr(net, "history", None)
    if history is None or len(history) == 0:
        raise ValueError("The estimator is not fitted: it has no training history.")
    try:
        per_epoch = history[:, "batches", :, "event_lr"]
    except KeyError:
        raise ValueError(
            "The net's history holds no per-batch 'event_lr'; it was not trained with "
            "a per-batch LR scheduler (fit it through AutoCLR).") from None
    return np.asarray([lr for epoch in per_epoch for lr in epoch], dtype=float)


def _schedule_title(estimator, plan, n_iter):
    """The schedule plot's title and the iterations where a cycle ends inside it."""
    report = getattr(estimator, "cycle_report_", None)
    n_cycles = plan.n_cycles if report is None else report.n_cycles
    n_epochs = plan.n_epochs if report is None else report.n_epochs
    stopped = ""
    if report is not None and report.stop_reason in ("no_improvement", "callback"):
        stopped = f", stopped early ({report.stop_reason})"
    if plan.policy == "one_cycle":
        ends = report.cycle_ends if report is not None else ()
        end_lr = getattr(estimator, "base_lr_", 0.0) / ONE_CYCLE_FINAL_DIV_FACTOR
        title = (f"one_cycle schedule: {n_cycles} cycle(s) over {n_iter} iterations, "
                 f"{n_epochs} epochs, down to {end_lr:.2g}")
    else:
        ends = range(plan.cycle_iter, n_iter + 1, plan.cycle_iter)
        title = (f"{plan.policy} schedule: {n_cycles} cycle(s) of 2 x {plan.step_size} "
                 f"iterations, {n_epochs} epochs{stopped}")
    return title, [end for end in ends if end < n_iter]


def plot_lr_schedule(estimator, ax=None):
    """Draw the learning rate of every batch of a fitted AutoCLR.

    Any policy, ``"one_cycle"`` included: the LRs are those the fit recorded.
    Thin grey lines mark the cycle ends inside the run; the title says the
    cycles and epochs trained and, for the cyclic policies, when
    ``n_cycles="auto"`` or a callback stopped training early (the
    ``cycle_report_``'s ``"no_improvement"`` or ``"callback"``).

    Parameters
    ----------
    estimator : AutoCLR or skorch.NeuralNet
        Fitted; see :func:`schedule_lrs`.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure is made when ``None``.

    Returns
    -------
    matplotlib.axes.Axes
    """
    lrs = schedule_lrs(estimator)
    ax = _new_axes(ax, (7.5, 3.6))
    iterations = np.arange(1, len(lrs) + 1)
    ax.plot(iterations, lrs, "-", color=BOUNDS, lw=1.5, label="learning rate")
    base, top = getattr(estimator, "base_lr_", None), getattr(estimator, "max_lr_", None)
    plan = getattr(estimator, "cycle_plan_", None)
    if base is not None and top is not None:
        ax.axhline(base, color="grey", ls=":", lw=1, label=f"base_lr {base:.2g}")
        ax.axhline(top, color="grey", ls="--", lw=1, label=f"max_lr {top:.2g}")
    title = "cyclical learning rate"
    if plan is not None:
        title, ends = _schedule_title(estimator, plan, len(lrs))
        for end in ends:
            ax.axvline(end, color="grey", alpha=0.3, lw=0.8)
    ax.set_xlim(0, len(lrs) + 1)
    ax.set_xlabel("training iteration (batch)")
    ax.set_ylabel("learning rate")
    ax.set_title(title, fontsize=11)
    ax.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax.grid(True, alpha=0.3)
    return ax
