"""Plots of the range test and the schedule: what is drawn where, and lazy matplotlib."""

import sys

import numpy as np
import pytest

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from autoclr import (  # noqa: E402
    AutoCLR,
    BoundsWarning,
    RangeTestResult,
    plot_lr_schedule,
    plot_range_test,
)
from autoclr._plotting import schedule_lrs  # noqa: E402


def _synthetic_result(score_name="accuracy", diverged=False, n_iter=200, n_eval=40):
    """A range test with a logistic accuracy rise around lr=1e-2, no training needed."""
    rng = np.random.default_rng(0)
    lrs = np.geomspace(1e-6, 1.0, n_iter)
    losses = 2.3 - 1.5 / (1 + np.exp(-3 * (np.log10(lrs) + 2))) + rng.normal(0, .02, n_iter)
    eval_it = np.linspace(0, n_iter, n_eval + 1)[1:].astype(int) - 1
    x = np.log10(lrs[eval_it])
    scores = 0.1 + 0.8 / (1 + np.exp(-4 * (x + 2))) - 0.6 * (x > -0.5) * (x + 0.5)
    scores = scores + rng.normal(0, 0.01, n_eval)
    stop = n_iter
    if diverged:
        stop = int(0.9 * n_iter)
        losses[stop - 5:stop] = [5, 20, 80, 300, 1e4]
    if score_name == "neg_loss":
        scores = scores - 1.0
        scores[-3:] = -1e4  # a regression net blowing up at the end
    keep = eval_it < stop
    result = RangeTestResult(
        lrs=lrs[:stop], losses=losses[:stop], eval_iterations=eval_it[keep],
        eval_lrs=lrs[eval_it[keep]], scores=scores[keep], score_name=score_name,
        lr_range=(1e-6, 1.0), ramp="exp", n_iter=n_iter, n_train=800, n_valid=200,
        stop_reason="diverged" if diverged else "completed",
        diverged_lr=float(lrs[stop]) if diverged else None)
    return result


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _line(ax, label_start):
    lines = [line for line in ax.get_lines() if line.get_label().startswith(label_start)]
    assert len(lines) == 1, [line.get_label() for line in ax.get_lines()]
    return lines[0]


def test_range_test_plot_draws_curves_markers_and_bounds(tmp_path):
    result = _synthetic_result(diverged=True).with_bounds("accuracy")
    b = result.bounds
    ax = plot_range_test(result)
    assert ax.get_xscale() == "log"
    assert ax.get_xlim() == pytest.approx(result.lr_range)
    raw = _line(ax, "validation accuracy")
    np.testing.assert_array_equal(raw.get_xdata(), result.eval_lrs)
    np.testing.assert_array_equal(raw.get_ydata(), result.scores)
    smooth = _line(ax, "smoothed score")
    np.testing.assert_array_equal(smooth.get_ydata(), b.smoothed)
    np.testing.assert_array_equal(smooth.get_xdata(), b.smoothed_lrs)
    # onset and plateau markers sit on the smoothed curve at the detected LRs
    for name, lr in (("onset", b.onset_lr), ("plateau", b.plateau_lr), ("peak", b.peak_lr)):
        mark = _line(ax, name)
        assert mark.get_xdata()[0] == pytest.approx(lr)
        expected = np.interp(np.log(lr), np.log(b.smoothed_lrs), b.smoothed)
        assert mark.get_ydata()[0] == pytest.approx(expected)
        assert f"lr={lr:.2g}" in mark.get_label()
    # the chosen bounds: a shaded band and two vertical lines
    band = [p for p in ax.patches if p.get_label().startswith("chosen bounds")]
    assert len(band) == 1
    x0, width = band[0].get_x(), band[0].get_width()
    assert x0 == pytest.approx(b.base_lr) and x0 + width == pytest.approx(b.max_lr)
    vlines = {round(float(line.get_xdata()[0]), 12) for line in ax.get_lines()
              if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2}
    assert {round(b.base_lr, 12), round(b.max_lr, 12)} <= vlines
    stop = _line(ax, "stopped (diverged)")
    assert stop.get_xdata()[0] == pytest.approx(result.diverged_lr)
    # the loss is on the twin axis, its diverged tail clipped out of view
    loss = _line(ax.right_ax, "training loss")
    np.testing.assert_array_equal(loss.get_ydata(), result.losses)
    assert ax.right_ax.get_ylim()[1] < 10 < result.losses.max()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any(t.startswith("training loss") for t in labels)  # both axes in one legend
    ax.figure.savefig(tmp_path / "rt.png")
    assert (tmp_path / "rt.png").stat().st_size > 20_000


def test_range_test_plot_uses_the_given_axes_and_works_without_bounds():
    fig, axes = plt.subplots(1, 2)
    result = _synthetic_result()
    assert result.plot(ax=axes[1], show_loss=False) is axes[1]
    assert not axes[0].get_lines()
    assert not hasattr(axes[1], "right_ax")
    assert not axes[1].patches  # no bounds, no band
    assert [line.get_label() for line in axes[1].get_lines()] == ["validation accuracy"]


def test_regression_plot_clips_the_blown_up_scores():
    result = _synthetic_result("neg_loss").with_bounds("loss")
    ax = plot_range_test(result)
    assert ax.get_ylabel() == "validation loss (negated)"
    assert ax.get_ylim()[0] > -10 > result.scores.min()
    # the loss rule's smoothed curve is a loss: drawn on the loss axis
    smooth = _line(ax.right_ax, "smoothed loss")
    np.testing.assert_array_equal(smooth.get_ydata(), result.bounds.smoothed)
    assert not [line for line in ax.get_lines() if line.get_label() == "smoothed score"]


def test_regression_plot_of_scores_none_finite_keeps_the_default_limits():
    """No finite score to set the limits from (this raised a ValueError): matplotlib's."""
    from dataclasses import replace

    result = _synthetic_result("neg_loss")
    ax = plot_range_test(replace(result, scores=np.full(len(result.scores), np.nan)))
    assert np.all(np.isfinite(ax.get_ylim()))
    assert np.all(np.isnan(_line(ax, "validation loss (negated)").get_ydata()))


@pytest.fixture(scope="module")
def fitted(small_digits, make_net):
    X, y = small_digits
    net = make_net(max_epochs=12)
    # 30 iterations of range test: the accuracy is not read, its loss is (still falling)
    with pytest.warns(BoundsWarning) as record:
        fitted = AutoCLR(net, step_size_factor=2, range_test_iter=30,
                         random_state=0).fit(X, y)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2, messages
    assert "was still rising at the end of the range test" in messages[0]
    assert "no onset was found. Falling back to the validation loss" in messages[1]
    return fitted


def test_schedule_plot_shows_every_batch_lr(fitted):
    lrs = schedule_lrs(fitted)
    plan = fitted.cycle_plan_
    assert len(lrs) == plan.n_iter
    assert lrs.max() == pytest.approx(fitted.max_lr_, rel=1e-6)
    assert lrs.min() == pytest.approx(fitted.base_lr_, rel=1e-6)
    assert lrs[plan.step_size] == pytest.approx(fitted.max_lr_, rel=1e-6)  # first peak
    ax = plot_lr_schedule(fitted)
    line = _line(ax, "learning rate")
    np.testing.assert_array_equal(line.get_ydata(), lrs)
    np.testing.assert_array_equal(line.get_xdata(), np.arange(1, plan.n_iter + 1))
    assert _line(ax, "base_lr").get_ydata()[0] == fitted.base_lr_
    assert _line(ax, "max_lr").get_ydata()[0] == fitted.max_lr_
    assert f"{plan.n_cycles} cycle(s) of 2 x {plan.step_size}" in ax.get_title()
    assert schedule_lrs(fitted.net_) == pytest.approx(lrs)  # a bare skorch net works too


def test_schedule_of_an_unfitted_estimator_is_an_error(make_net):
    with pytest.raises(ValueError, match="not fitted"):
        schedule_lrs(AutoCLR(make_net()))


def test_missing_matplotlib_gives_an_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r'pip install "autoclr\[plot\]"'):
        plot_range_test(_synthetic_result())
    # with axes given, nothing needs pyplot
    monkeypatch.undo()
    _, ax = plt.subplots()
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    assert plot_range_test(_synthetic_result(), ax=ax) is ax


def test_the_band_names_the_rule_a_fallback_used():
    from dataclasses import replace

    result = _synthetic_result()
    # an accuracy flat at the prior's 0.9 cannot be read; the validation loss can
    flat = replace(result, scores=np.full(len(result.scores), 0.9), baseline_score=0.9,
                   valid_losses=1.0 - (result.scores - 0.1))
    with pytest.warns(UserWarning, match="Falling back to the validation loss"):
        read = flat.with_bounds("accuracy")
    assert read.bounds.method == "valid_loss" and read.bounds.fallback
    band = [p for p in plot_range_test(read).patches if "chosen bounds" in p.get_label()]
    assert len(band) == 1 and band[0].get_label().endswith("(fallback: validation loss)")
