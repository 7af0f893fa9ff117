"""Bound detection: read ``base_lr`` and ``max_lr`` off an LR range test curve.

Pure numpy/scipy, no torch, so every rule is testable on synthetic curves.
The rules are plain functions of arrays (:func:`accuracy_bounds`,
:func:`loss_bounds`); the registry ``DETECTORS`` maps each name to a
detector of one signature, ``(RangeTestResult) -> Bounds``, chosen through
:func:`detect_bounds`.

The rules are pure: they never warn and never fall back to one another. A
curve a rule cannot read raises :class:`CurveError`; what the user should
hear about a curve it did read is in ``Bounds.notes``. What happens next is
decided in one place, :func:`read_bounds`: the chosen rule, the fallbacks of
``FALLBACKS``, then the net's own ``lr``; it is pure too, and returns its
notes. The warnings belong to the suggestion pipeline, :mod:`autoclr._suggest`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import NamedTuple

import numpy as np
from scipy.ndimage import gaussian_filter1d

__all__ = ["Bounds", "BoundsWarning", "CurveError", "detect_bounds", "read_bounds", "DETECTORS",
           "FALLBACKS", "length_factor"]

#: fraction of the total rise of the smoothed score that marks the onset
ONSET_FRACTION = 0.10
#: fraction of the total rise of the smoothed score that marks the plateau
PLATEAU_FRACTION = 0.90
#: where max_lr sits on the top of the curve, from where the rise slows (0) to where
#: the score falls back (1), on the log scale
TOP_POSITION = 0.5
#: base_lr is never further than this factor below max_lr
MAX_RATIO = 20.0
#: base_lr is at least this factor below max_lr
MIN_RATIO = 2.0
#: the score is "still rising" when its last tenth gains more than this fraction of the rise
STILL_RISING_FRACTION = 0.2
#: ratio max_lr / base_lr of the paper's shortcut, used by the loss rule and fallbacks
SHORTCUT_RATIO = 4.0
#: a rise counts when it exceeds this many times the noise of the curve
NOISE_MULTIPLE = 4.0
#: the noise is estimated on at least this many points of the curve
MIN_NOISE_POINTS = 10
#: the score rule needs at least this many finite scores
MIN_SCORES = 5
#: the Gaussian smoothing of the score has one point of sigma per this many points
#: of the curve (and at least one)
POINTS_PER_SIGMA = 25
#: a median absolute deviation times this is a standard deviation (normal noise)
_MAD_TO_SD = 1.4826
#: an exponential range test reads lower LRs the slower its ramp: at a given LR the
#: net has trained about ``lr`` times the iterations per e-fold of the ramp. Over the
#: benchmark's small tables, a 400-iteration test reads ``max_lr`` lower than the
#: default 95-224-iteration one by about the square root of their length ratio
#: (docs/detection.md, "Test length"). Every reading off the curve is scaled by
#: ``(pace / reference pace) ** LENGTH_EXPONENT``, the pace in iterations per decade
#: and the reference a test of ``LENGTH_REFERENCE`` iterations over
#: ``REFERENCE_DECADES`` (the defaults' longest test), or as long as the fit it
#: serves when the fit is shorter; never above 1
LENGTH_EXPONENT = 0.5
LENGTH_REFERENCE, REFERENCE_DECADES = 400, 6.0


class BoundsWarning(UserWarning):
    """A caveat about the bounds: a fallback was used, the score was still rising, a retry."""


class CurveError(ValueError):
    """A detection rule cannot read this curve; the message says why."""


@dataclass(frozen=True, eq=False)
class Bounds:
    """Learning-rate bounds read off a range test.

    Attributes
    ----------
    base_lr, max_lr : float
        The suggested lower and upper bounds of the cyclical schedule.
    method : str
        Name of the rule that produced them: ``"accuracy"`` (the validation
        score; for classifiers averaged with the reading of the validation
        loss where it can be read), ``"valid_loss"`` (the same rule on the
        negative validation loss), ``"loss"`` (steepest descent of the
        training loss) or ``"net_lr"`` (:func:`read_bounds`' last resort:
        the net's own ``lr``).
    explanation : str
        Which rule fired at which LR, in a sentence or a few; after a
        fallback, why the rules before it could not read the curve.
    onset_lr, plateau_lr, peak_lr : float or None
        Where the smoothed score started to rise, where its rise slowed and
        where it peaked (``None`` for ``"loss"`` and ``"net_lr"``).
    fall_lr : float or None
        Where the smoothed score fell back below the plateau level after its
        peak (``None`` when it never did, and for ``"loss"`` and
        ``"net_lr"``). The score rule puts ``max_lr`` at ``TOP_POSITION`` of
        the way from ``plateau_lr`` to ``fall_lr`` on the log scale (at
        ``plateau_lr`` when the score never falls back); with ``"accuracy"``
        the bounds may then be averaged with the validation loss's reading,
        so ``max_lr`` need not lie between the two.
    length_factor : float
        The factor (at most 1) the reading was scaled by to the pace of a test
        as long as the fit (:func:`length_factor`; 1.0 when not scaled).
    fallback : bool
        True when the chosen rule could not read the curve and
        :func:`read_bounds` used a documented fallback; a note says so.
    notes : tuple of str
        What the user should be told about this reading (a score still rising
        at the end of the range, a fallback); the rules only return them, and
        the suggestion pipeline (:class:`~autoclr.AutoCLR`,
        :meth:`~autoclr.RangeTestResult.with_bounds`) emits each as one
        :class:`BoundsWarning`.
    smoothed : ndarray
        The smoothed curve the rule was applied to (scores for
        ``"accuracy"``, negative validation losses for ``"valid_loss"``,
        training losses for ``"loss"``; empty for ``"net_lr"``), aligned
        with ``smoothed_lrs``.
    smoothed_lrs : ndarray
        Learning rates of ``smoothed``.
    """

    base_lr: float
    max_lr: float
    method: str
    explanation: str
    onset_lr: float | None = None
    plateau_lr: float | None = None
    peak_lr: float | None = None
    fall_lr: float | None = None
    length_factor: float = 1.0
    fallback: bool = False
    notes: tuple = ()
    smoothed: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    smoothed_lrs: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)

    def __repr__(self) -> str:
        return (
            f"Bounds(base_lr={self.base_lr:.3g}, max_lr={self.max_lr:.3g}, "
            f"method={self.method!r}, fallback={self.fallback})"
        )


def _smooth(values: np.ndarray, sigma: float) -> np.ndarray:
    """A Gaussian smooth of ``values`` (unchanged, as floats, when too short or sigma is 0)."""
    if len(values) < 3 or sigma <= 0:
        return values.astype(float)
    return gaussian_filter1d(values.astype(float), sigma=sigma, mode="nearest")


def _check_curve(lrs, values, name):
    """``lrs`` and ``values`` as float arrays, checked, cut at the first non-finite value."""
    lrs = np.asarray(lrs, dtype=float)
    values = np.asarray(values, dtype=float)
    if lrs.ndim != 1 or lrs.shape != values.shape:
        raise ValueError(
            f"lrs and {name} must be 1-d arrays of the same length, got shapes "
            f"{lrs.shape} and {values.shape}."
        )
    if len(lrs) and (not np.all(np.isfinite(lrs)) or np.any(lrs <= 0)):
        raise ValueError("lrs must be finite and positive.")
    if len(lrs) > 1 and np.any(np.diff(lrs) <= 0):
        raise ValueError("lrs must be strictly increasing.")
    # a non-finite value ends the readable part of the curve
    bad = np.flatnonzero(~np.isfinite(values))
    stop = bad[0] if len(bad) else len(values)
    return lrs[:stop], values[:stop]


def _log_position(lrs, index):
    """LR at a fractional index, interpolated on the log scale."""
    return float(np.exp(np.interp(index, np.arange(len(lrs)), np.log(lrs))))


def _crossing(curve, level, last=False):
    """Fractional index where ``curve`` reaches ``level``.

    The first point at or above ``level`` or, with ``last=True``, the point
    after the last one below it (the crossing of the final rise), linearly
    interpolated with the point before, so that bounds are not quantised to
    the evaluation grid (one step of a 40-point log grid over six decades is
    1.4x).
    """
    above = curve >= level
    if last:
        below = np.flatnonzero(~above)
        k = int(below[-1]) + 1 if len(below) else 0
    else:
        k = int(np.argmax(above))
    if k == 0 or k >= len(curve):
        return float(min(k, len(curve) - 1))
    lo, hi = curve[k - 1], curve[k]
    return k - 1 + float(np.clip((level - lo) / (hi - lo), 0.0, 1.0))


def loss_bounds(loss_lrs, losses, *, skip_start=0.1):
    """Steepest descent of the smoothed training loss (the rule of other LR finders).

    ``max_lr`` is the LR where the smoothed loss falls fastest against
    ``log(lr)``, up to the loss minimum (the diverged tail is ignored);
    ``base_lr = max_lr / SHORTCUT_RATIO`` (4, the paper's shortcut). Both are
    kept inside the tested range.

    Parameters
    ----------
    loss_lrs, losses : array-like of shape (n_iter,)
        Learning rate and training loss of each range-test iteration.
    skip_start : float, default=0.1
        Fraction of the iterations dropped at the start, where the loss is
        dominated by the initialisation.

    Returns
    -------
    Bounds

    Raises
    ------
    CurveError
        When the curve has fewer than 8 points before its first non-finite
        loss, or the loss rises from the first iterations (the range starts
        too high).
    ValueError
        When ``loss_lrs`` and ``losses`` are not 1-d of one length, or the
        LRs are not positive and strictly increasing.
    """
    lrs, losses = _check_curve(loss_lrs, losses, "losses")
    if len(lrs) < 8:
        raise CurveError(
            f"The loss curve has {len(lrs)} finite points; at least 8 are needed to "
            "read a steepest descent. Run the range test longer or start it lower."
        )
    # ignore the diverged tail: past the loss minimum everything is too high
    smoothed = _smooth(losses, sigma=max(1.0, len(losses) / 50))
    end = int(np.argmin(smoothed)) + 1
    start = min(int(skip_start * len(lrs)), max(end - 3, 0))
    lrs_w, sm_w = lrs[start:end], smoothed[start:end]
    if len(lrs_w) < 3:
        raise CurveError(
            "The training loss rises from the first iterations: the range test's low "
            f"bound ({lrs[0]:.3g}) is already too high. Start the range lower."
        )
    grad = np.gradient(sm_w, np.log(lrs_w))
    k = int(np.argmin(grad))
    max_lr = float(lrs_w[k])
    base_lr = max_lr / SHORTCUT_RATIO
    explanation = (
        f"max_lr: the smoothed training loss falls fastest at lr={max_lr:.3g} "
        f"(steepest descent); base_lr = max_lr / {SHORTCUT_RATIO:g}."
    )
    base_lr, max_lr, note = _inside_range(lrs, base_lr, max_lr)
    if note:
        explanation = explanation[:-1] + f"; {note}."
    return Bounds(
        base_lr=base_lr,
        max_lr=max_lr,
        method="loss",
        explanation=explanation,
        smoothed=smoothed,
        smoothed_lrs=lrs,
    )


def accuracy_bounds(
    lrs,
    scores,
    *,
    onset_fraction: float = ONSET_FRACTION,
    plateau_fraction: float = PLATEAU_FRACTION,
    min_rise: float | None = None,
    score_noise: float = 0.0,
    score_name: str = "score",
    baseline: float | None = None,
) -> Bounds:
    """Onset and top of the smoothed validation score (the paper's rule).

    The score curve (accuracy for classifiers, negative loss for regressors)
    is floored at its starting level and smoothed with a Gaussian filter.
    With ``s0`` the starting level (the median of the first tenth of the
    curve, or ``baseline`` when that is higher) and ``top`` the highest point
    of the smoothed curve, its peak:

    - ``base_lr`` is the onset: where the rise that leads to the peak crosses
      ``s0 + onset_fraction * (top - s0)`` (an earlier crossing in the flat
      part, a blip of noise, does not count);
    - the plateau is the first LR where the smoothed score reaches
      ``plateau_fraction`` of the rise, i.e. where the rise slows; the fall
      is the first LR past the peak where it drops back below that level;
    - ``max_lr`` lies on this top of the curve, at ``TOP_POSITION`` (0.5:
      the middle) of the way from plateau to fall on the log scale: between
      where the rise slows and where the score starts to fall, the two
      readings the paper allows, so a score that rises then collapses keeps
      ``max_lr`` below the collapse. A score that never falls back keeps
      ``max_lr`` at the plateau.

    ``max_lr / base_lr`` is kept within [``MIN_RATIO``, ``MAX_RATIO``]
    (2 and 20): a very early onset is pulled up to ``max_lr / MAX_RATIO``,
    and an onset too close to the plateau is pushed down to
    ``max_lr / MIN_RATIO``; the explanation says so. Both bounds are then
    kept inside the tested range, which takes precedence over the ratio when
    the curve peaks at its very first points.

    If the rise is not clearly above the noise (flat curve: untrainable
    problem, random labels, or a range that starts too high), or the curve
    peaks at its first point, a :class:`CurveError` is raised; this rule
    does not fall back (:func:`read_bounds` decides what follows).

    Parameters
    ----------
    lrs, scores : array-like of shape (n_eval,)
        Learning rate and validation score at each evaluation point. A
        non-finite score ends the curve read.
    onset_fraction, plateau_fraction : float
        Fractions of the total rise marking onset and plateau.
    min_rise : float, default=None
        Smallest rise that counts as a rise. ``None``: ``NOISE_MULTIPLE``
        (four) times the noise of the curve (the median absolute deviation
        of the score around its smooth up to the peak, scaled to a standard
        deviation).
    score_noise : float, default=0.0
        Known measurement noise of each score, such as the sampling error
        ``sqrt(p (1 - p) / n_valid)`` of an accuracy measured on ``n_valid``
        samples. The noise level used is the larger of this and the one
        estimated from the curve, so that a few lucky validation samples on
        a flat curve (random labels) do not count as a rise.
    score_name : str, default="score"
        Name of the score for the explanation.
    baseline : float, default=None
        The score a model reaches by learning nothing but the class prior
        (the accuracy of always predicting the most frequent class). A rise
        up to it is the net learning the prior, not the features: the rise
        is measured from ``max(start, baseline)``, so on imbalanced data
        the onset and the plateau are those of the rise above the prior. A
        curve that never rises clearly above it raises :class:`CurveError`.

    Returns
    -------
    Bounds
        With ``notes`` holding the warning for a score still rising at the
        end of the range, if it was.

    Raises
    ------
    CurveError
        When fewer than ``MIN_SCORES`` scores precede the first non-finite
        one, or the score does not rise clearly (see above).
    ValueError
        When ``lrs`` and ``scores`` are not 1-d of one length, or the LRs are
        not positive and strictly increasing.
    """
    lrs, scores = _check_curve(lrs, scores, "scores")
    n = len(scores)
    if n < MIN_SCORES:
        raise CurveError(
            f"only {n} finite validation scores were recorded (at least {MIN_SCORES} are "
            "needed)")
    head = _head(n)
    s0, floored, smoothed = _smooth_scores(scores, head)
    k_peak = int(np.argmax(smoothed))
    noise = max(_noise_level(floored, smoothed, k_peak), float(score_noise))
    # a rise up to the prior's score is the net learning the prior: not counted
    prior = baseline is not None and baseline > s0
    rise = _Rise(float(baseline) if prior else s0, float(smoothed[k_peak]), k_peak, prior)
    threshold = NOISE_MULTIPLE * noise if min_rise is None else min_rise
    _require_rise(rise, noise, threshold, score_name)
    top = _top_of_curve(lrs, smoothed, k_peak, rise.level(onset_fraction),
                        rise.level(plateau_fraction))
    max_lr = _max_lr_on_top(top)
    base_lr, ratio_note = _clamp_ratio(top.onset_lr, max_lr)
    base_lr, max_lr, range_note = _inside_range(lrs, base_lr, max_lr)
    still_rising = _still_rising(smoothed, head, rise, score_name, lrs[-1])
    rising_note = "the score was still rising at the end of the range" if still_rising else ""
    notes = [note for note in (rising_note, ratio_note, range_note) if note]
    explanation = _explanation(score_name, rise, top, onset_fraction, plateau_fraction)
    return Bounds(
        base_lr=float(base_lr),
        max_lr=float(max_lr),
        method="accuracy",
        explanation="; ".join([explanation, *notes]) + ".",
        **top._asdict(),
        notes=(still_rising,) if still_rising else (),
        smoothed=smoothed,
        smoothed_lrs=lrs,
    )


def _head(n):
    """How many points at the start of a curve give its starting level: a tenth, at least 2."""
    return max(2, n // 10)


def _smooth_scores(scores, head):
    """The starting level of a score curve, the curve floored there, and its smooth.

    A score far below its start (a regressor's exploding loss) only means
    "worse than at the start": it is floored there so that it cannot drag
    the smooth. Pure: numbers in, numbers out.
    """
    s0 = float(np.median(scores[:head]))
    floored = np.maximum(scores, min(float(np.min(scores[:head])), s0))
    return s0, floored, _smooth(floored, sigma=max(1.0, len(scores) / POINTS_PER_SIGMA))


def _noise_level(floored, smoothed, k_peak):
    """Robust noise of a curve: the scaled median absolute deviation of its residuals.

    Up to the peak only (at least ``MIN_NOISE_POINTS``): past it a diverging
    run is ragged, and that is the signal, not noise. Pure.
    """
    residuals = (floored - smoothed)[: max(k_peak + 1, MIN_NOISE_POINTS)]
    return float(_MAD_TO_SD * np.median(np.abs(residuals - np.median(residuals))))


class _Rise(NamedTuple):
    """The rise of a smoothed score: from ``start`` to ``peak``, reached at index ``k_peak``."""

    start: float
    peak: float
    k_peak: int
    #: the rise is measured from the class prior's score, not from the curve's start
    prior: bool

    @property
    def size(self) -> float:
        return self.peak - self.start

    def level(self, fraction: float) -> float:
        """The score at ``fraction`` of the rise."""
        return self.start + fraction * self.size


def _require_rise(rise, noise, threshold, score_name):
    """Raise :class:`CurveError` unless the rise exceeds ``threshold`` after the first point."""
    if rise.size <= threshold or rise.k_peak == 0:
        above = (f"above the majority-class {score_name} {rise.start:.3g}" if rise.prior
                 else "above its noise")
        raise CurveError(
            f"the smoothed {score_name} did not rise clearly {above} "
            f"(rise {rise.size:.3g}, noise {noise:.3g}): no onset was found")


class _Top(NamedTuple):
    """Where the smoothed score starts to rise, slows, peaks and falls back (LRs)."""

    onset_lr: float
    plateau_lr: float
    peak_lr: float
    fall_lr: float | None


def _top_of_curve(lrs, smoothed, k_peak, onset_level, plateau_level):
    """The onset, plateau, peak and fall of a smoothed curve that peaks at ``k_peak``.

    The onset is that of the rise that leads to the peak: a noise blip
    crossing ``onset_level`` earlier, in the flat part, is not the start of
    the rise. The fall is where the curve, past its peak, drops back below
    ``plateau_level`` (``None`` when it never does).
    """
    rising = smoothed[: k_peak + 1]
    x_onset = _crossing(rising, onset_level, last=True)
    x_plateau = max(_crossing(rising, plateau_level), x_onset)
    fall_lr = None
    if np.any(smoothed[k_peak:] < plateau_level):
        x_fall = k_peak + _crossing(plateau_level - smoothed[k_peak:], 0.0)
        fall_lr = _log_position(lrs, x_fall)
    return _Top(_log_position(lrs, x_onset), _log_position(lrs, x_plateau),
                float(lrs[k_peak]), fall_lr)


def _max_lr_on_top(top):
    """``max_lr`` at ``TOP_POSITION`` from plateau to fall (log scale), else the plateau.

    The paper reads max_lr where the rise slows *or* where the score starts
    to fall. The smoothed score stays within ``1 - plateau_fraction`` of its
    peak from the plateau up to where it falls back below that level; a
    point between two level crossings varies less across seeds than the
    plateau alone, and scores better on the benchmark suite
    (docs/benchmarks.md). A score that never falls back keeps max_lr at the
    plateau.
    """
    if top.fall_lr is None:
        return top.plateau_lr
    return float(top.plateau_lr * (top.fall_lr / top.plateau_lr) ** TOP_POSITION)


def _still_rising(smoothed, head, rise, score_name, last_lr):
    """The warning for a score still rising at the end of the range, or ``None``."""
    tail_gain = smoothed[-1] - smoothed[-1 - head]
    if rise.k_peak >= len(smoothed) - 2 and tail_gain > STILL_RISING_FRACTION * rise.size:
        return (f"The {score_name} was still rising at the end of the range test "
                f"(lr={last_lr:.3g}); max_lr may be too low. Raise the range's high bound.")
    return None


def _clamp_ratio(onset_lr, max_lr):
    """``base_lr``: the onset, kept ``MIN_RATIO`` to ``MAX_RATIO`` below max_lr; a note if moved."""
    if max_lr / onset_lr > MAX_RATIO:
        return max_lr / MAX_RATIO, (f"onset at {onset_lr:.3g} is more than {MAX_RATIO:g}x "
                                    f"below; base_lr = max_lr / {MAX_RATIO:g}")
    if max_lr / onset_lr < MIN_RATIO:
        return max_lr / MIN_RATIO, (f"onset is less than {MIN_RATIO:g}x below; "
                                    f"base_lr = max_lr / {MIN_RATIO:g}")
    return onset_lr, None


def _explanation(score_name, rise, top, onset_fraction, plateau_fraction):
    """Which readings of the curve gave base_lr and max_lr, in one sentence."""
    base = (f"base_lr: the smoothed {score_name} starts to rise at lr={top.onset_lr:.3g} "
            f"({onset_fraction:.0%} of its rise {rise.start:.3g} -> {rise.peak:.3g}"
            + (", measured from the majority-class score" if rise.prior else "") + ")")
    if top.fall_lr is None:
        return (f"{base}; max_lr: its rise slows at lr={top.plateau_lr:.3g} "
                f"({plateau_fraction:.0%} of the rise; peak at lr={top.peak_lr:.3g})")
    return (f"{base}; max_lr: the middle (log scale) of the top of the curve, from where its "
            f"rise slows at lr={top.plateau_lr:.3g} ({plateau_fraction:.0%} of the rise) to "
            f"where it falls back below that level at lr={top.fall_lr:.3g} "
            f"(peak at lr={top.peak_lr:.3g})")


def _inside_range(lrs, base_lr, max_lr):
    """Keep both bounds inside the tested range, base_lr below max_lr."""
    if base_lr >= lrs[0]:
        return base_lr, max_lr, ""
    if max_lr <= lrs[0]:
        max_lr = float(lrs[1])
    return float(lrs[0]), max_lr, (
        f"base_lr raised to the range's low bound {lrs[0]:.3g} (the curve moves from "
        "the start: a lower start may find a lower base_lr)")


def _accuracy_rule(result):
    """The score rule on a range test; for classifiers, with the validation loss's reading.

    The accuracy's noise is at least its binomial sampling error on
    ``n_valid`` samples, and its rise is measured above the class prior's
    accuracy; where the validation loss can be read too, the bounds are the
    geometric means of the two readings.
    """
    score_noise = 0.0
    n_valid = getattr(result, "n_valid", 0)
    baseline = getattr(result, "baseline_score", None)
    if result.score_name == "accuracy" and n_valid and len(result.scores):
        # binomial sampling error of an accuracy at the curve's starting level
        start = float(np.median(result.scores[: _head(len(result.scores))]))
        p = float(np.clip(max(start, baseline or 0.0), 1 / n_valid, 1 - 1 / n_valid))
        score_noise = float(np.sqrt(p * (1 - p) / n_valid))
    b = accuracy_bounds(
        result.eval_lrs,
        result.scores,
        score_noise=score_noise,
        score_name=result.score_name,
        baseline=baseline if result.score_name == "accuracy" else None,
    )
    if result.score_name != "accuracy":
        return b
    # the validation loss of the same test is a second, less noisy reading: where
    # both can be read, the bounds are their geometric means (docs/detection.md)
    try:
        v = _valid_loss_rule(result)
    except CurveError:
        return b
    base_lr, max_lr = float(np.sqrt(b.base_lr * v.base_lr)), float(np.sqrt(b.max_lr * v.max_lr))
    return replace(b, base_lr=base_lr, max_lr=max_lr, explanation=(
        f"{b.explanation[:-1]}. Read with the validation loss of the same test "
        f"(base_lr={v.base_lr:.3g}, max_lr={v.max_lr:.3g}): the bounds are the "
        f"geometric means of the two readings, {base_lr:.3g} and {max_lr:.3g}."))


def _valid_loss_rule(result):
    """The score rule on the negative validation loss, its rise below the prior's loss."""
    valid_losses = getattr(result, "valid_losses", None)
    if valid_losses is None or len(valid_losses) != len(result.eval_lrs):
        raise CurveError("no validation losses were recorded")
    prior_loss = getattr(result, "baseline_loss", None)
    return replace(
        accuracy_bounds(result.eval_lrs, -np.asarray(valid_losses, dtype=float),
                        score_name="neg_valid_loss",
                        baseline=None if prior_loss is None else -prior_loss),
        method="valid_loss")


def _loss_rule(result):
    """The loss rule on the training loss of every iteration."""
    return loss_bounds(result.lrs, result.losses)


#: detectors by name; each takes a :class:`~autoclr.RangeTestResult`
DETECTORS = {"accuracy": _accuracy_rule, "valid_loss": _valid_loss_rule, "loss": _loss_rule}


def detect_bounds(result, method: str = "accuracy") -> Bounds:
    """Detect ``base_lr`` and ``max_lr`` from a range test.

    Parameters
    ----------
    result : RangeTestResult
        The range test to read (any object with ``lrs``, ``losses``,
        ``eval_lrs``, ``scores`` and ``score_name``; ``n_valid``,
        ``valid_losses``, ``baseline_score`` and ``baseline_loss`` are used
        where present).
    method : {"accuracy", "valid_loss", "loss"}, default="accuracy"
        ``"accuracy"``: onset and top of the smoothed validation score
        (:func:`accuracy_bounds`, the paper's rule); for classifiers the rise
        is measured above the accuracy of the class prior
        (``result.baseline_score``) and, where the validation loss can be
        read too, the bounds are the geometric means of both readings.
        ``"valid_loss"``: the same rule on the negative validation loss,
        its rise measured below the loss of the class prior
        (``result.baseline_loss``). ``"loss"``: steepest descent of the
        training loss (:func:`loss_bounds`, the rule of other LR finders).

    Returns
    -------
    Bounds

    Raises
    ------
    CurveError
        When the rule cannot read the curve (no fallback is tried here:
        :func:`read_bounds` tries them).
    ValueError
        For an unknown ``method``.
    """
    try:
        rule = DETECTORS[method]
    except (KeyError, TypeError):
        raise ValueError(
            f"method must be one of {sorted(DETECTORS)}, got {method!r}."
        ) from None
    return rule(result)


#: what each detector falls back to, in order, when it cannot read the curve
FALLBACKS = {"accuracy": ("valid_loss", "loss"), "valid_loss": ("loss",), "loss": ()}
_FALLBACK_WHY = {
    "valid_loss": "the validation loss, which keeps falling while the features are learned",
    "loss": "the loss rule (steepest descent of the training loss, base_lr = max_lr / 4)",
}


def read_bounds(result, method: str = "accuracy", net_lr: float | None = None) -> Bounds:
    """Read the bounds off a range test: the rule, then the fallbacks.

    1. ``method``'s detector (:func:`detect_bounds`);
    2. if it cannot read the curve, the next in ``FALLBACKS[method]``, each
       with ``fallback=True``: after ``"accuracy"`` the same reading of the
       validation loss (for classifiers only: a regressor's score already is
       the negative validation loss), then the loss rule (steepest descent of
       the training loss, ``base_lr = max_lr / SHORTCUT_RATIO``);
    3. if none can and ``net_lr`` is given: ``max_lr = net_lr`` and
       ``base_lr = net_lr / SHORTCUT_RATIO`` (``method="net_lr"``).

    Pure: it never warns; what the user should hear is in the returned
    ``Bounds.notes`` (the suggestion pipeline emits each as one
    :class:`BoundsWarning`).

    Parameters
    ----------
    result : RangeTestResult
        The range test to read; see :func:`detect_bounds`.
    method : {"accuracy", "valid_loss", "loss"}, default="accuracy"
        The rule tried first.
    net_lr : float, default=None
        The net's own ``lr``, the last resort.

    Returns
    -------
    Bounds

    Raises
    ------
    ValueError
        When no rule can read the curve and ``net_lr`` is ``None``, or for an
        unknown ``method``.
    """
    try:
        return _to_length(detect_bounds(result, method), result)
    except CurveError as exc:
        reason = str(exc)
    for fallback in _fallbacks(result, method):
        try:
            b = _to_length(detect_bounds(result, fallback), result)
        except CurveError as exc:
            reason = f"{reason}; the {fallback} fallback failed too: {exc}"
            continue
        note = (f"{reason[0].upper()}{reason[1:]}. Falling back to "
                f"{_FALLBACK_WHY[fallback]}: base_lr={b.base_lr:.3g}, "
                f"max_lr={b.max_lr:.3g}. Check the range-test plot.")
        return replace(b, explanation=f"Fallback ({reason}). {b.explanation}",
                       fallback=True, notes=(*b.notes, note))
    if net_lr is None:
        raise ValueError(f"Cannot read LR bounds from the range test: {reason}.")
    return Bounds(
        base_lr=net_lr / SHORTCUT_RATIO, max_lr=net_lr, method="net_lr",
        explanation=(f"Fallback (cannot read LR bounds from the range test: {reason}): "
                     f"max_lr is the net's lr={net_lr:.3g}, base_lr = max_lr / "
                     f"{SHORTCUT_RATIO:g}."),
        fallback=True,
        notes=(f"Cannot read LR bounds from the range test: {reason}. Using the net's "
               f"lr={net_lr:.3g} as max_lr and lr / {SHORTCUT_RATIO:g} as base_lr. The "
               "problem may not be learnable as posed (random labels?); check the "
               "range-test plot.",),
    )


def length_factor(result) -> float:
    """The factor that scales a reading to the pace of a test as long as the fit.

    ``(pace / reference) ** LENGTH_EXPONENT``: ``pace`` is the test's iterations
    per decade of its exponential ramp (``n_iter / log10(hi / lo)``), the
    reference ``min(LENGTH_REFERENCE, fit_iter) / REFERENCE_DECADES``. Below 1
    for a test faster than the reference (it reads too high); never above 1 (a
    fit shorter than its test, or a test slower than the reference, keeps its
    reading). 1.0 for a linear ramp, or when ``fit_iter`` (the fit the test
    serves) is not known.
    """
    terms = _length_terms(result)
    if terms is None:
        return 1.0
    decades, reference = terms
    pace = result.n_iter / decades
    # never up: the higher LRs a faster test reads for a fit shorter than the test
    # collapsed small digits nets (docs/detection.md, "Test length")
    return float(min(1.0, (pace / (reference / REFERENCE_DECADES)) ** LENGTH_EXPONENT))


def _length_terms(result):
    """The decades of the test's exponential ramp and the reference length in
    iterations (``min(LENGTH_REFERENCE, fit_iter)``); ``None`` when the reading is
    not scaled (a linear ramp, no ``fit_iter``, the scaling off)."""
    fit_iter = getattr(result, "fit_iter", None)
    lr_range = getattr(result, "lr_range", None)
    if (not fit_iter or not LENGTH_EXPONENT or getattr(result, "ramp", "exp") != "exp"
            or lr_range is None or not lr_range[1] > lr_range[0] > 0):
        return None
    return float(np.log10(lr_range[1] / lr_range[0])), min(LENGTH_REFERENCE, fit_iter)


def _to_length(b, result):
    """A reading scaled down by :func:`length_factor`, both bounds kept inside the
    tested range (max_lr at least ``MIN_RATIO`` times its low end)."""
    f = length_factor(result)
    if f == 1.0:
        return b
    lowest = float(result.lrs[0]) if len(result.lrs) else float(result.lr_range[0])
    f = min(1.0, max(f, MIN_RATIO * lowest / b.max_lr))
    decades, reference = _length_terms(result)
    return replace(b, base_lr=max(float(b.base_lr * f), lowest), max_lr=float(b.max_lr * f),
                   length_factor=f, explanation=(
                       f"{b.explanation.rstrip('.')}. Both scaled by {f:.2f} to the "
                       f"reading of a test as long as the fit ({reference} iterations over "
                       f"{REFERENCE_DECADES:g} decades; this one: {result.n_iter} over "
                       f"{decades:.1f}), since a faster ramp reads higher LRs "
                       "(docs/detection.md, \"Test length\")."))


def _fallbacks(result, method):
    """``FALLBACKS[method]``, less the validation loss where it is the score already.

    A regressor's score (``score_name != "accuracy"``) is the negative
    validation loss: the ``"valid_loss"`` reading would read the same curve
    again, and fail the same way.
    """
    chain = FALLBACKS[method]
    if result.score_name != "accuracy":
        chain = tuple(name for name in chain if name != "valid_loss")
    return chain
