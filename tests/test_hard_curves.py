"""Hard range-test curves: divergence, flat and noisy scores, collapse; detector properties.

The detector's constants are tuned separately, so the property tests state
properties of any sensible onset/plateau rule (inside the range, ordered,
near the true onset, scale-equivariant), never exact constants.
"""

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_digits
from torch import nn

import autoclr._suggest as suggest_module
from autoclr import AutoCLR, BoundsWarning, RangeTestResult, accuracy_bounds, detect_bounds

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def digits400():
    X, y = load_digits(return_X_y=True)
    return (X[:400] / 16).astype(np.float32), y[:400]


#: the nets of this file: batches of 32, 4 epochs, the final fit on all the data
HARD = dict(batch_size=32, max_epochs=4, train_split=None)
#: what 4 epochs of these nets are told (one cycle fits, the method wants 3)
FEW_CYCLES = r"max_epochs=4 of the net leaves room for 1 cycle\(s\)"


def few_cycles():
    """Expect the warning that the budget of ``HARD`` holds one cycle."""
    return pytest.warns(UserWarning, match=FEW_CYCLES)


# ------------------------------------------------------------ divergence
def test_divergence_at_the_start_retries_once_lower(digits400, make_net):
    """lr_range=(20, 2e4) diverges before its curve can be read (after 26 of 60
    iterations): one retry 1000x lower, with a warning that says so."""
    X, y = digits400
    with few_cycles(), pytest.warns(
            BoundsWarning, match=r"diverged .* after 26 of 60 iterations, at lr=420: before "
                                 r"the curve could be read \(lr_range=\(20.0, 20000.0\)\)\. "
                                 r"Retrying once"):
        auto = AutoCLR(make_net(**HARD), lr_range=(20.0, 2e4), range_test_iter=60,
                       random_state=0).fit(X, y)
    rt = auto.range_test_
    assert rt.lr_range[0] == pytest.approx(20.0 / 1e3)
    # ends where the first test diverged, within its first half (from lr=20, x1.12 a step)
    assert 20.0 < rt.lr_range[1] < 20.0 * 1.124 ** 30
    assert rt.lr_range[0] <= auto.base_lr_ < auto.max_lr_ <= rt.lr_range[1]
    assert auto.score(X, y) > 0.5  # the retried bounds train


class NaNModule(nn.Module):
    """Its loss is NaN from the first iteration, whatever the LR."""

    calls = 0

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)

    def forward(self, X):
        type(self).calls += 1
        return self.lin(X) * float("nan")


def test_a_loss_not_finite_before_any_update_is_an_error_at_once(digits400, make_net):
    """The first loss comes before any update: no LR is to blame, so no retry."""
    X, y = digits400
    NaNModule.calls = 0
    auto = AutoCLR(make_net(module=NaNModule, **HARD), range_test_iter=40, random_state=0)
    with few_cycles(), warnings.catch_warnings():
        warnings.simplefilter("error", BoundsWarning)  # no retry warning
        with pytest.raises(ValueError, match=r"not finite at the first iteration.*before "
                                             r"any update.*Check the criterion"):
            auto.fit(X, y)
    assert not hasattr(auto, "net_")
    # one range test, stopped at its first evaluation
    assert NaNModule.calls < 20


class NaNAfterFirstStep(nn.Module):
    """A finite first loss, then NaN after the first update, whatever the LR."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(64, 10)
        self.calls = 0

    def forward(self, X):
        self.calls += 1
        out = self.lin(X)
        return out if self.calls == 1 else out * float("nan")


def test_divergence_also_after_the_retry_is_an_error(digits400, make_net):
    X, y = digits400
    auto = AutoCLR(make_net(module=NaNAfterFirstStep, **HARD), range_test_iter=40, random_state=0)
    with few_cycles(), pytest.warns(BoundsWarning, match="Retrying once"):
        with pytest.raises(ValueError, match=r"diverges from the first iterations.*even after "
                                             r"a retry from lr=1e-09\. Start lr_range lower"):
            auto.fit(X, y)
    assert not hasattr(auto, "net_")


def _late_divergence(lr_range, n_iter=60):
    """A flat, unreadable curve whose loss diverges after 40 of ``n_iter`` iterations."""
    r = _flat_result(n_iter, lr_range)
    stop = 40
    keep = r.eval_iterations < stop
    return RangeTestResult(
        lrs=r.lrs[:stop], losses=r.losses[:stop], eval_iterations=r.eval_iterations[keep],
        eval_lrs=r.eval_lrs[keep], scores=r.scores[keep], score_name="accuracy",
        lr_range=lr_range, ramp="exp", n_iter=n_iter, n_train=100, n_valid=20,
        stop_reason="diverged", diverged_lr=float(r.lrs[stop]))


def test_a_late_divergence_on_an_unreadable_curve_is_retried_then_falls_back(
        digits400, monkeypatch, make_net):
    """Diverging after two thirds of the ramp, before the curve could be read: one
    retry lower; still unreadable (and diverging late again), the net's lr is the
    fallback. Not the error for a loss that diverges from the first iterations."""
    calls = []

    def late(net, X, y, *, lr_range, **kwargs):
        calls.append(lr_range)
        return _late_divergence(lr_range)

    monkeypatch.setattr(suggest_module, "run_range_test", late)
    X, y = digits400
    with pytest.warns(BoundsWarning) as record:
        auto = AutoCLR(make_net(lr=0.03, **HARD), random_state=0).fit(X, y)
    messages = [str(w.message) for w in record if w.category is BoundsWarning]
    assert any("after 40 of 60 iterations" in m and "before the curve could be read" in m
               and "Retrying once" in m for m in messages)
    assert any("Using the net's lr=0.03 as max_lr" in m for m in messages)
    assert len(calls) == 2 and calls[1][0] == pytest.approx(1e-9)
    assert auto.range_test_.bounds.method == "net_lr"
    assert (auto.base_lr_, auto.max_lr_) == (pytest.approx(0.03 / 4), 0.03)


# ------------------------------------------------------------ flat curves
def test_random_labels_warn_and_fall_back(digits400, make_net):
    X, _ = digits400
    y = np.random.RandomState(0).randint(0, 10, len(X))
    with few_cycles(), pytest.warns(BoundsWarning, match="no onset was found"):
        auto = AutoCLR(make_net(**HARD), range_test_iter=60, random_state=0).fit(X, y)
    bounds = auto.range_test_.bounds
    # the training loss still falls (the net memorises): the loss rule reads it
    assert bounds.fallback and bounds.method == "loss"
    assert bounds.explanation.startswith("Fallback (the smoothed accuracy did not rise")
    assert (auto.base_lr_, auto.max_lr_) == (bounds.base_lr, bounds.max_lr)
    assert auto.base_lr_ == pytest.approx(auto.max_lr_ / 4)  # the paper's shortcut


def _flat_result(n_iter=60, lr_range=(1e-6, 1.0)):
    lrs = np.geomspace(*lr_range, n_iter)
    evals = np.arange(4, n_iter, 5)
    return RangeTestResult(
        lrs=lrs, losses=np.full(n_iter, 2.3), eval_iterations=evals, eval_lrs=lrs[evals],
        scores=np.full(len(evals), 0.1), score_name="accuracy", lr_range=lr_range,
        ramp="exp", n_iter=n_iter, n_train=100, n_valid=20)


def test_unreadable_curve_uses_the_nets_lr_loudly(digits400, monkeypatch, make_net):
    """Flat score and flat loss: neither rule reads anything; the net's lr is the last resort."""
    monkeypatch.setattr(suggest_module, "run_range_test", lambda *a, **k: _flat_result())
    X, y = digits400
    with few_cycles(), pytest.warns(BoundsWarning, match=r"Using the net's lr=0\.03 as max_lr"):
        auto = AutoCLR(make_net(lr=0.03, **HARD), random_state=0).fit(X, y)
    assert (auto.base_lr_, auto.max_lr_) == (pytest.approx(0.03 / 4), 0.03)
    assert auto.range_test_.bounds.fallback and auto.range_test_.bounds.method == "net_lr"


def test_flat_scores_fall_back_to_the_loss_rule():
    lrs = np.geomspace(1e-5, 1, 200)
    x = np.log10(lrs)
    losses = 2.3 - 1.5 / (1 + np.exp(-(x + 2) / 0.3))  # steepest descent at lr=1e-2
    evals = np.arange(4, 200, 5)
    result = RangeTestResult(
        lrs=lrs, losses=losses, eval_iterations=evals, eval_lrs=lrs[evals],
        scores=np.full(len(evals), 0.1), score_name="accuracy", lr_range=(1e-5, 1),
        ramp="exp", n_iter=200, n_train=100, n_valid=20)
    with pytest.warns(BoundsWarning, match="no onset was found.*Falling back to the loss rule"):
        b = result.with_bounds().bounds
    assert b.fallback and b.method == "loss"
    assert b.max_lr == pytest.approx(1e-2, rel=0.15)
    assert b.base_lr < b.max_lr


# ------------------------------------------------------------ noisy curves
def test_tiny_validation_set_stays_in_range_and_is_reproducible(digits400, make_net):
    X, y = digits400
    fits = []
    for _ in range(2):
        # 12 validation samples: the accuracy is too coarse to read, its loss is read
        with few_cycles(), pytest.warns(
                BoundsWarning, match="no onset was found. Falling back to the validation loss"):
            auto = AutoCLR(make_net(**HARD), valid_size=0.03, range_test_iter=60,  # 12 samples
                           random_state=1).fit(X, y)
        fits.append(auto)
    a, b = fits
    assert a.range_test_.n_valid == 12
    lo, hi = a.range_test_.lr_range
    assert lo <= a.base_lr_ < a.max_lr_ <= hi
    assert (a.base_lr_, a.max_lr_) == (b.base_lr_, b.max_lr_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


# ------------------------------------------------------------ collapse
def test_score_that_rises_then_collapses_keeps_max_lr_below_the_collapse(digits400, make_net):
    """A real range test past the divergence point: accuracy rises, then collapses."""
    X, y = digits400
    with few_cycles() as record:
        auto = AutoCLR(make_net(**HARD), lr_range=(1e-3, 30.0), range_test_iter=120,
                       random_state=0).suggest(X, y)
    assert not [w for w in record if issubclass(w.category, BoundsWarning)]  # read at once
    rt = auto.range_test
    peak = int(np.argmax(rt.scores))
    after = np.flatnonzero(rt.scores[peak:] < 0.5 * rt.scores[peak])
    collapse_lr = rt.eval_lrs[peak + after[0]] if len(after) else rt.diverged_lr
    assert collapse_lr is not None  # it did collapse or diverge
    assert auto.max_lr < collapse_lr
    assert auto.base_lr < auto.max_lr


# ------------------------------------------------------------ properties
def noisy_sigmoid(seed, n, center, width, amp, noise, collapse=None, span=(-6.0, 0.0)):
    """Scores rising as a sigmoid in log10(lr), with Gaussian noise; optionally collapsing."""
    x = np.linspace(span[0], span[1], n)
    clean = 0.1 + amp / (1 + np.exp(-(x - center) / width))
    if collapse is not None:
        clean = np.where(x >= collapse, 0.1, clean)
    scores = clean + np.random.RandomState(seed).normal(0, noise, n)
    return 10.0 ** x, scores


curve_params = dict(
    seed=st.integers(0, 2**31 - 1),
    n=st.integers(30, 120),
    center=st.floats(-4.5, -2.0),
    width=st.floats(0.05, 0.3),
    amp=st.floats(0.3, 0.9),
    noise=st.floats(0.0, 0.02),
)


def _pure(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, failing on any warning: the rules never warn."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn(*args, **kwargs)


@settings(max_examples=60, deadline=None)
@given(**curve_params)
def test_property_bounds_ordered_and_inside_the_range(seed, n, center, width, amp, noise):
    lrs, scores = noisy_sigmoid(seed, n, center, width, amp, noise)
    b = _pure(accuracy_bounds, lrs, scores)
    assert lrs[0] <= b.base_lr < b.max_lr <= lrs[-1]
    assert not b.fallback  # a rise well above the noise is read by the main rule


@settings(max_examples=60, deadline=None)
@given(**curve_params)
def test_property_onset_is_near_the_true_onset(seed, n, center, width, amp, noise):
    lrs, scores = noisy_sigmoid(seed, n, center, width, amp, noise)
    b = _pure(accuracy_bounds, lrs, scores)
    onset = np.log10(b.onset_lr if b.onset_lr is not None else b.base_lr)
    true_start = center - 4.6 * width  # the sigmoid has 1 % of its rise here
    # "starts to rise": after the flat part has started to move, before the midpoint;
    # a smoothing of up to half a decade may pull it a little earlier
    assert true_start - 0.5 <= onset <= center + 0.1
    assert np.log10(b.max_lr) >= onset


@settings(max_examples=60, deadline=None)
@given(scale=st.floats(-3.0, 3.0), **curve_params)
def test_property_scaling_the_lrs_scales_the_bounds(scale, seed, n, center, width, amp,
                                                    noise):
    c = 10.0 ** scale
    lrs, scores = noisy_sigmoid(seed, n, center, width, amp, noise)
    b = _pure(accuracy_bounds, lrs, scores)
    bc = _pure(accuracy_bounds, lrs * c, scores)
    assert bc.base_lr == pytest.approx(c * b.base_lr, rel=1e-9)
    assert bc.max_lr == pytest.approx(c * b.max_lr, rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(scale=st.floats(-3.0, 3.0), seed=st.integers(0, 2**31 - 1), center=st.floats(-4, -1))
def test_property_scaling_holds_for_the_loss_rule_too(scale, seed, center):
    c = 10.0 ** scale
    x = np.linspace(-6, 0, 150)
    losses = 2.3 - 1.5 / (1 + np.exp(-(x - center) / 0.3))
    losses = losses + np.random.RandomState(seed).normal(0, 0.02, len(x))
    result = RangeTestResult(
        lrs=10.0 ** x, losses=losses, eval_iterations=np.arange(len(x)), eval_lrs=10.0 ** x,
        scores=np.full(len(x), 0.1), score_name="accuracy", lr_range=(1e-6, 1.0),
        ramp="exp", n_iter=len(x), n_train=1, n_valid=1)
    b = _pure(detect_bounds, result, "loss")
    scaled = RangeTestResult(**{**result.__dict__, "lrs": result.lrs * c})
    bc = _pure(detect_bounds, scaled, "loss")
    assert bc.max_lr == pytest.approx(c * b.max_lr, rel=1e-9)
    assert bc.base_lr == pytest.approx(c * b.base_lr, rel=1e-9)
    assert 1e-6 * (1 - 1e-9) <= b.base_lr < b.max_lr <= 1.0


@settings(max_examples=60, deadline=None)
@given(gap=st.floats(0.5, 2.0), **curve_params)
def test_property_max_lr_stays_below_a_collapse(gap, seed, n, center, width, amp, noise):
    collapse = center + 4.6 * width + gap  # after the rise has (nearly) finished
    lrs, scores = noisy_sigmoid(seed, n, center, width, amp, noise, collapse=collapse)
    b = _pure(accuracy_bounds, lrs, scores)
    assert b.max_lr < 10.0 ** collapse
    assert lrs[0] <= b.base_lr < b.max_lr
