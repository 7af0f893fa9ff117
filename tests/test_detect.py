"""Bound detection on synthetic curves (no torch involved)."""

import warnings
from dataclasses import replace

import numpy as np
import pytest

from autoclr import (
    Bounds,
    BoundsWarning,
    CurveError,
    RangeTestResult,
    accuracy_bounds,
    detect_bounds,
    loss_bounds,
)
from autoclr._detect import MAX_RATIO, MIN_RATIO, length_factor, read_bounds

LRS = np.geomspace(1e-6, 1.0, 60)


def sigmoid_curve(lrs, onset, plateau, low=0.1, high=0.95):
    """Accuracy that rises (on log lr) from ``onset`` and levels off at ``plateau``."""
    x = np.log10(lrs)
    mid = (np.log10(onset) + np.log10(plateau)) / 2
    width = (np.log10(plateau) - np.log10(onset)) / 4.4  # 10% .. 90% of the rise
    return low + (high - low) / (1 + np.exp(-(x - mid) / width))


def loss_curve(lrs):
    """Training loss: flat, falls between 1e-3 and 1e-1, then explodes."""
    x = np.log10(lrs)
    return 2.3 - 2.0 / (1 + np.exp(-(x + 2) * 3)) + np.exp(np.clip(x + 0.5, None, 5) * 4)


def test_onset_and_plateau_of_a_clean_sigmoid():
    scores = sigmoid_curve(LRS, onset=1e-3, plateau=1e-1)
    b = accuracy_bounds(LRS, scores, score_name="accuracy")
    assert isinstance(b, Bounds) and not b.fallback
    # within a factor 2.5 (about 2 grid steps of the 60-point log grid and the smoothing)
    assert 1e-3 / 2.5 < b.onset_lr < 1e-3 * 2.5
    assert 1e-1 / 2.5 < b.plateau_lr < 1e-1 * 2.5
    assert b.max_lr == b.plateau_lr
    assert b.base_lr < b.max_lr
    assert "accuracy" in b.explanation and "rise" in b.explanation
    assert b.smoothed.shape == LRS.shape


def test_max_lr_stays_below_a_collapse():
    scores = sigmoid_curve(LRS, onset=1e-4, plateau=1e-2)
    collapse = LRS > 3e-2
    scores[collapse] = 0.1  # accuracy falls to chance past 3e-2
    b = accuracy_bounds(LRS, scores)
    assert b.max_lr < 3e-2
    assert b.peak_lr < 3e-2


def test_an_early_onset_is_pulled_up_to_max_ratio():
    wide = accuracy_bounds(LRS, sigmoid_curve(LRS, onset=1e-6 * 1.5, plateau=1e-1))
    assert wide.max_lr / wide.onset_lr > MAX_RATIO  # the branch's condition holds
    assert wide.max_lr / wide.base_lr == pytest.approx(MAX_RATIO)
    assert wide.base_lr > wide.onset_lr
    assert f"is more than {MAX_RATIO:g}x below; base_lr = max_lr / {MAX_RATIO:g}" in (
        wide.explanation)


def test_an_onset_close_to_the_plateau_is_pushed_down_to_min_ratio():
    # a steep rise read on a fine grid (20 points over one decade): onset and plateau
    # come out about 1.5x apart
    lrs = np.geomspace(1e-3, 1e-2, 20)
    steep = accuracy_bounds(lrs, sigmoid_curve(lrs, onset=3e-3, plateau=3.6e-3))
    assert steep.max_lr == steep.plateau_lr  # no fall: max_lr at the plateau
    assert steep.max_lr / steep.onset_lr < MIN_RATIO  # the branch's condition holds
    assert steep.max_lr / steep.base_lr == MIN_RATIO
    assert steep.base_lr < steep.onset_lr
    assert (f"onset is less than {MIN_RATIO:g}x below; base_lr = max_lr / {MIN_RATIO:g}"
            in steep.explanation)


def test_bounds_scale_with_the_lrs():
    scores = sigmoid_curve(LRS, onset=1e-4, plateau=1e-2)
    b1 = accuracy_bounds(LRS, scores)
    b2 = accuracy_bounds(LRS * 7.0, scores)
    assert b2.base_lr == pytest.approx(7 * b1.base_lr)
    assert b2.max_lr == pytest.approx(7 * b1.max_lr)


def test_flat_curve_is_a_curve_error_and_the_rule_never_warns():
    rng = np.random.default_rng(0)
    scores = 0.1 + rng.normal(0, 0.01, len(LRS))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the rule is pure: a warning would raise here
        with pytest.raises(CurveError, match="no onset was found"):
            accuracy_bounds(LRS, scores)


def test_flat_curve_falls_back_to_the_loss_rule_with_a_note():
    it_lrs = np.geomspace(1e-6, 1.0, 300)
    rng = np.random.default_rng(0)
    result = _result(0.1 + rng.normal(0, 0.01, 60), loss_curve(it_lrs))
    b = read_bounds(result, "accuracy")  # pure: the note is returned, not warned
    assert b.fallback and b.method == "loss"
    assert b.base_lr == pytest.approx(b.max_lr / 4)
    assert 1e-3 < b.max_lr < 1e-1
    assert b.explanation.startswith("Fallback")
    assert len(b.notes) == 1 and "Falling back to the loss rule" in b.notes[0]
    with pytest.warns(BoundsWarning, match="no onset was found") as record:
        assert result.with_bounds("accuracy").bounds.max_lr == b.max_lr
    assert len(record) == 1  # one warning per note


def test_unreadable_curve_without_a_net_lr_is_an_error():
    result = _result(np.full(60, 0.1), np.full(300, 2.3))
    with pytest.raises(ValueError, match="Cannot read LR bounds"):
        read_bounds(result, "accuracy")
    b = read_bounds(result, "accuracy", net_lr=0.05)
    assert (b.method, b.max_lr, b.base_lr) == ("net_lr", 0.05, pytest.approx(0.0125))
    assert b.fallback and len(b.notes) == 1
    assert "Using the net's lr=0.05 as max_lr" in b.notes[0]


def test_a_regressor_goes_straight_to_the_loss_rule():
    """A regressor's score is the negative validation loss: no second reading of it."""
    it_lrs = np.geomspace(1e-6, 1.0, 300)
    flat = -1.0 + np.random.default_rng(0).normal(0, 0.01, 60)
    result = replace(_result(flat, loss_curve(it_lrs)), score_name="neg_loss",
                     valid_losses=-flat)
    with pytest.raises(CurveError, match="neg_loss did not rise"):
        detect_bounds(result, "accuracy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pure: the notes are returned, never warned
        b = read_bounds(result, "accuracy")
    assert (b.method, b.fallback) == ("loss", True)
    assert b.max_lr == detect_bounds(result, "loss").max_lr
    for text in (b.explanation, *b.notes):
        assert "valid_loss" not in text and "failed too" not in text
    assert len(b.notes) == 1 and "Falling back to the loss rule" in b.notes[0]
    # a classifier with the same curves still tries its validation loss first
    classifier = replace(result, score_name="accuracy", scores=flat + 1.1)
    assert "the valid_loss fallback failed too" in read_bounds(classifier).explanation


def test_still_rising_at_the_end_is_a_note():
    scores = sigmoid_curve(LRS, onset=1e-2, plateau=1e1)
    b = accuracy_bounds(LRS, scores)
    assert len(b.notes) == 1 and "still rising" in b.notes[0]
    assert b.max_lr <= LRS[-1]


def test_non_finite_scores_end_the_curve():
    scores = sigmoid_curve(LRS, onset=1e-4, plateau=1e-2)
    scores[45:] = np.nan
    b = accuracy_bounds(LRS, scores)
    assert b.max_lr <= LRS[44]
    # the curve read is the 45 finite scores
    np.testing.assert_array_equal(b.smoothed_lrs, LRS[:45])
    assert np.all(np.isfinite(b.smoothed))


def test_loss_rule_finds_the_steepest_descent():
    lrs = np.geomspace(1e-6, 1.0, 300)
    b = loss_bounds(lrs, loss_curve(lrs))
    # the synthetic loss falls fastest at 1e-2
    assert 1e-2 / 2 < b.max_lr < 1e-2 * 2
    assert b.base_lr == pytest.approx(b.max_lr / 4)
    assert b.method == "loss" and "steepest" in b.explanation


def test_loss_rule_rejects_a_loss_rising_from_the_start():
    lrs = np.geomspace(1e-1, 10, 50)
    with pytest.raises(CurveError, match="too high"):
        loss_bounds(lrs, np.linspace(1, 50, 50))


@pytest.mark.parametrize(
    "lrs, values, match",
    [
        (np.array([1e-3, 1e-2]), np.array([0.1]), "same length"),
        (np.array([1e-3, -1.0, 1e-1]), np.zeros(3), "positive"),
        (np.array([1e-2, 1e-3, 1e-1]), np.zeros(3), "increasing"),
    ],
)
def test_bad_curves_are_rejected(lrs, values, match):
    with pytest.raises(ValueError, match=match):
        accuracy_bounds(lrs, values)


def _result(scores, losses):
    it_lrs = np.geomspace(1e-6, 1.0, len(losses))
    idx = np.linspace(0, len(losses) - 1, len(scores)).astype(int)
    return RangeTestResult(
        lrs=it_lrs, losses=losses, eval_iterations=idx, eval_lrs=it_lrs[idx],
        scores=scores, score_name="accuracy", lr_range=(1e-6, 1.0), ramp="exp",
        n_iter=len(losses), n_train=100, n_valid=20,
    )


def test_detect_bounds_dispatches_by_name():
    it_lrs = np.geomspace(1e-6, 1.0, 300)
    result = _result(sigmoid_curve(it_lrs[::5], 1e-4, 1e-2), loss_curve(it_lrs))
    acc = detect_bounds(result, method="accuracy")
    loss = detect_bounds(result, method="loss")
    assert acc.method == "accuracy" and loss.method == "loss"
    assert acc.max_lr != loss.max_lr
    with_bounds = result.with_bounds("accuracy")
    assert with_bounds.bounds.max_lr == acc.max_lr
    assert result.bounds is None  # frozen: with_bounds returns a copy
    with pytest.raises(ValueError, match="method must be one of"):
        detect_bounds(result, method="valley")


# ------------------------------------------------ imbalanced classes: the prior
def two_stage_curve(lrs, prior=0.85, top=0.87):
    """Accuracy that learns the class prior (0.5 -> 0.85 by 1e-3), then the features."""
    return (sigmoid_curve(lrs, 1e-5, 1e-3, low=0.5, high=prior)
            + sigmoid_curve(lrs, 3e-2, 3e-1, low=0.0, high=top - prior))


def test_a_rise_up_to_the_prior_is_not_the_rise():
    scores = two_stage_curve(LRS)
    naive = accuracy_bounds(LRS, scores)
    aware = accuracy_bounds(LRS, scores, baseline=0.85)
    # read from its start, the curve's main rise is the prior being learned ...
    assert naive.plateau_lr < 3e-3
    # ... read from the prior's accuracy, onset and plateau are those of the features
    assert 1e-2 < aware.onset_lr < 6e-2
    assert 1.5e-1 < aware.plateau_lr < 6e-1
    assert "measured from the majority-class score" in aware.explanation


def test_a_curve_that_never_beats_the_prior_is_a_curve_error():
    scores = sigmoid_curve(LRS, 1e-5, 1e-3, low=0.5, high=0.85)  # the prior, nothing more
    with pytest.raises(CurveError, match=r"above the majority-class score 0\.85"):
        accuracy_bounds(LRS, scores, baseline=0.85, score_name="score")
    assert accuracy_bounds(LRS, scores).plateau_lr < 3e-3  # without the prior: readable


def _imbalanced_result(valid_losses, scores, baseline_loss=0.42):
    it_lrs = np.geomspace(1e-6, 1.0, 300)
    idx = np.linspace(0, 299, len(scores)).astype(int)
    return RangeTestResult(
        lrs=it_lrs, losses=loss_curve(it_lrs), eval_iterations=idx, eval_lrs=it_lrs[idx],
        scores=scores, score_name="accuracy", lr_range=(1e-6, 1.0), ramp="exp",
        n_iter=300, n_train=800, n_valid=200, valid_losses=valid_losses,
        baseline_score=0.85, baseline_loss=baseline_loss)


def test_flat_accuracy_at_the_prior_falls_back_to_the_validation_loss():
    lrs = np.geomspace(1e-6, 1.0, 300)[np.linspace(0, 299, 60).astype(int)]
    scores = sigmoid_curve(lrs, 1e-5, 1e-3, low=0.5, high=0.85)
    # the loss learns the prior (0.69 -> 0.42 = its entropy), then falls on to 0.40
    valid_losses = (0.69 - sigmoid_curve(lrs, 1e-5, 1e-3, low=0.0, high=0.27)
                    - sigmoid_curve(lrs, 1e-2, 2e-1, low=0.0, high=0.02))
    b = read_bounds(_imbalanced_result(valid_losses, scores), "accuracy")
    assert b.method == "valid_loss" and b.fallback
    assert "majority-class" in b.notes[0] and "validation loss" in b.notes[0]
    assert 1e-1 < b.max_lr < 4e-1  # the features' drop, not the prior's (1e-3)
    # without the prior's loss the same reading stops where the prior is learned
    unaware = read_bounds(_imbalanced_result(valid_losses, scores, None), "valid_loss")
    assert unaware.max_lr < 1e-2


# ------------------------------------------------ the test's length
def _length_result(n_iter, fit_iter, lr_range=(1e-6, 1.0), ramp="exp"):
    it_lrs = np.geomspace(*lr_range, n_iter)
    idx = np.linspace(0, n_iter - 1, 40).astype(int)
    return RangeTestResult(
        lrs=it_lrs, losses=loss_curve(it_lrs), eval_iterations=idx, eval_lrs=it_lrs[idx],
        scores=sigmoid_curve(it_lrs[idx], 1e-4, 1e-2), score_name="accuracy",
        lr_range=lr_range, ramp=ramp, n_iter=n_iter, n_train=100, n_valid=200,
        fit_iter=fit_iter)


@pytest.mark.parametrize(
    ("n_iter", "fit_iter", "lr_range", "ramp", "factor"),
    [
        (100, 600, (1e-6, 1.0), "exp", 0.5),  # (100 / 400) ** 0.5: the reference is 400
        (100, 240, (1e-6, 1.0), "exp", (100 / 240) ** 0.5),  # a fit under 400: the fit
        (128, 10_000, (1e-6, 1.0), "exp", (128 / 400) ** 0.5),
        (400, 10_000, (1e-6, 1.0), "exp", 1.0),  # as fast as the reference
        (100, 60, (1e-6, 1.0), "exp", 1.0),  # a fit shorter than its test: never up
        (1000, 10_000, (1e-6, 1.0), "exp", 1.0),  # a slower test: never up
        (100, 10_000, (1e-4, 1.0), "exp", (25 / (400 / 6)) ** 0.5),  # per decade: 4 of them
        (100, 600, (1e-6, 1.0), "linear", 1.0),  # not measured on a linear ramp
        (100, None, (1e-6, 1.0), "exp", 1.0),  # the fit is not known
    ],
)
def test_length_factor_scales_to_a_test_as_long_as_the_fit(n_iter, fit_iter, lr_range, ramp,
                                                          factor):
    assert length_factor(_length_result(n_iter, fit_iter, lr_range, ramp)) == pytest.approx(
        factor)


def test_read_bounds_scales_both_bounds_down_and_says_so():
    fast, slow = _length_result(100, 600), _length_result(100, None)
    scaled, unscaled = read_bounds(fast), read_bounds(slow)
    assert scaled.length_factor == pytest.approx(0.5) and unscaled.length_factor == 1.0
    assert scaled.max_lr == pytest.approx(0.5 * unscaled.max_lr)
    assert scaled.base_lr == pytest.approx(0.5 * unscaled.base_lr)  # the ratio is kept
    assert scaled.plateau_lr == unscaled.plateau_lr  # the curve's own points are as read
    assert "Both scaled by 0.50" in scaled.explanation
    assert "400 iterations over 6 decades; this one: 100 over 6.0" in scaled.explanation
    assert "scaled" not in unscaled.explanation


def test_the_nets_own_lr_is_not_scaled():
    flat = _length_result(100, 600)
    flat = RangeTestResult(**{**flat.__dict__, "scores": np.full(40, 0.1),
                              "losses": np.full(100, 2.3)})
    b = read_bounds(flat, net_lr=0.05)
    assert b.method == "net_lr" and (b.base_lr, b.max_lr) == (0.05 / 4, 0.05)
    assert b.length_factor == 1.0


def test_scaled_bounds_stay_inside_the_tested_range():
    # a curve whose top sits just above the range's low end (1e-6): scaled by 0.5 its
    # base_lr would fall below the range, and max_lr near it
    result = _length_result(100, 600, lr_range=(1e-6, 1.0))
    result = RangeTestResult(**{**result.__dict__, "scores": sigmoid_curve(
        result.eval_lrs, 1.5e-6, 4e-6)})
    unscaled = read_bounds(RangeTestResult(**{**result.__dict__, "fit_iter": None}))
    b = read_bounds(result)
    assert b.base_lr >= 1e-6 and b.max_lr >= 2e-6 and b.base_lr < b.max_lr
    assert b.length_factor < 1.0 and b.max_lr == pytest.approx(b.length_factor * unscaled.max_lr)
