"""The LR range test: ramp, recording, early stop, splitting and seeding."""

import numpy as np
import pytest
import torch
from torch import nn

import autoclr._range_test as range_test_module
from autoclr import AutoCLR, RangeTestResult, range_test
from autoclr._range_test import WARMUP_ITER, DivergenceWatch, _split, auto_n_iter, lr_ramp


def test_records_losses_and_scores_along_an_exponential_ramp(small_digits, make_net):
    X, y = small_digits
    net = make_net()
    result = range_test(net, X, y, n_iter=120, n_eval=20, random_state=0)
    assert isinstance(result, RangeTestResult)
    assert result.stop_reason == "completed"
    assert len(result.lrs) == len(result.losses) == 120
    np.testing.assert_allclose(result.lrs, np.geomspace(1e-6, 1.0, 120))
    assert len(result.scores) == 20
    np.testing.assert_array_equal(result.eval_lrs, result.lrs[result.eval_iterations])
    assert result.eval_iterations[-1] == 119
    assert result.score_name == "accuracy"
    assert np.all((result.scores >= 0) & (result.scores <= 1))
    # it learns: accuracy near the end of the ramp is far above chance (0.1)
    assert result.scores.max() > 0.3
    assert result.n_train == 400 and result.n_valid == 100
    assert not net.initialized_


def test_linear_ramp():
    np.testing.assert_allclose(lr_ramp((0.0, 1.0), 5, "linear"), [0, 0.25, 0.5, 0.75, 1])
    with pytest.raises(ValueError, match="ramp must be one of"):
        lr_ramp((1e-3, 1.0), 5, "cosine")


def test_auto_length_is_a_few_epochs_within_bounds():
    assert auto_n_iter(200, 64) == 100  # 16 epochs of 4 batches = 64 -> at least 100
    assert auto_n_iter(400, 64) == 112  # 16 epochs of 7 batches
    assert auto_n_iter(2000, 64) == 400  # 16 epochs of 32 batches = 512 -> at most 400
    assert auto_n_iter(10**6, 64) == 400  # capped for large data


def test_auto_length_is_at_most_a_quarter_of_the_fit():
    # speed.py's 2,000 rows: 16 epochs of 25 batches, for a 30-epoch fit of 750
    assert auto_n_iter(1600, 64) == 400
    assert auto_n_iter(1600, 64, fit_iter=750) == 187
    assert auto_n_iter(1600, 64, fit_iter=1600) == 400  # a quarter is 400: no change
    assert auto_n_iter(200, 64, fit_iter=60) == 100  # never under the floor
    assert auto_n_iter(400, 64, fit_iter=300) == 100  # 112 for the epochs, 75 a quarter


def test_divergence_stops_the_test_early(small_digits, make_net):
    X, y = small_digits
    net = make_net()
    result = range_test(net, X, y, lr_range=(1e-3, 1e4), n_iter=200, random_state=0)
    assert result.stop_reason == "diverged"  # the loss grew past 5x its best, finite
    assert len(result.lrs) < 200
    # the LR at which it stopped: the ramp's next one
    assert result.diverged_lr == np.geomspace(1e-3, 1e4, 200)[len(result.lrs)]
    assert np.all(np.isfinite(result.losses))
    assert np.all(result.eval_iterations < len(result.lrs))


class NaNAfter(nn.Module):
    """Outputs NaN once it has seen ``n`` training batches."""

    def __init__(self, n=30):
        super().__init__()
        self.n = n
        self.calls = 0
        self.lin = nn.Linear(64, 10)

    def forward(self, X):
        out = self.lin(X)
        if self.training:
            self.calls += 1
            if self.calls > self.n:
                return out * float("nan")
        return out


def test_a_nan_loss_stops_the_test(small_digits, make_net):
    X, y = small_digits
    net = make_net(module=NaNAfter, module__n=30)
    result = range_test(net, X, y, n_iter=100, n_eval=50, random_state=0)
    assert result.stop_reason == "nan"
    assert len(result.losses) == 30
    assert np.all(np.isfinite(result.losses))


def test_regressor_scores_negative_loss(regression_data, make_net):
    X, y = regression_data
    result = range_test(make_net("regressor"), X, y.reshape(-1, 1), n_iter=100,
                        random_state=0)
    assert result.score_name == "neg_loss"
    np.testing.assert_array_equal(result.scores, -result.valid_losses)
    assert np.all(result.scores <= 0)
    assert result.scores.max() > result.scores[0]


def test_validation_split_is_shuffled_and_stratified():
    # a regressor's rows sorted by target: skorch's ValidSplit would take the first 20 %
    train, valid = _split(100, None, 0.2, classifier=False, seed=0)
    assert len(valid) == 20 and len(train) == 80
    assert valid.max() > 30  # not the first rows
    y = np.repeat([0, 1, 2, 3], 25)
    train, valid = _split(100, y, 0.2, classifier=True, seed=0)
    np.testing.assert_array_equal(np.bincount(y[valid]), [5, 5, 5, 5])
    assert not np.array_equal(_split(100, y, 0.2, True, 1)[1], valid)


def test_same_seed_same_result_and_global_rng_untouched(small_digits, make_net):
    X, y = small_digits
    net = make_net()
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = range_test(net, X, y, n_iter=100, random_state=7)
    assert torch.equal(torch.get_rng_state(), state)
    b = range_test(net, X, y, n_iter=100, random_state=7)
    np.testing.assert_array_equal(a.losses, b.losses)
    np.testing.assert_array_equal(a.scores, b.scores)
    c = range_test(net, X, y, n_iter=100, random_state=8)
    assert not np.array_equal(a.losses, c.losses)


def test_works_on_a_torch_dataset(small_digits, make_net):
    X, y = small_digits
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    result = range_test(make_net(), dataset, None, n_iter=100, random_state=0)
    assert result.stop_reason == "completed"
    assert len(result.scores) == 40
    assert result.scores.max() > 0.3


def test_module_instance_is_not_trained(small_digits, make_net):
    X, y = small_digits
    module = nn.Sequential(nn.Linear(64, 10))
    before = {k: v.clone() for k, v in module.state_dict().items()}
    net = make_net(module=module)
    range_test(net, X, y, n_iter=100, random_state=0)
    for k, v in module.state_dict().items():
        assert torch.equal(v, before[k])


def test_bad_arguments(small_digits, make_net):
    X, y = small_digits
    with pytest.raises(ValueError, match="n_iter"):
        range_test(make_net(), X, y, n_iter=3)
    with pytest.raises(ValueError, match="valid_size"):
        range_test(make_net(), X, y, valid_size=0.0)


def test_range_test_checks_its_split_with_autoclrs_check(small_digits, make_net):
    X, y = small_digits
    with pytest.raises(ValueError, match=r"valid_size=0\.005 leaves 0 of n_samples=64 samples"):
        range_test(make_net(), X[:64], y[:64], valid_size=0.005, random_state=0)
    with pytest.raises(ValueError, match=r"n_samples=6 is too small"):
        range_test(make_net(), X[:6], y[:6], random_state=0)


# ------------------------------------------------------------ divergence watch
def test_divergence_watch_is_pure_and_stops_at_the_first_factor_over_the_best():
    watch = DivergenceWatch(divergence_factor=5.0)
    # a lucky start (a loss of 0) is no baseline: the median of the first losses is
    assert not watch.update([0.0, 16.0, 2.0, 2.0, 2.0, 2.0])
    assert not watch.update([1.0] * 50)  # falls: the best follows the smoothed loss
    best = watch.smoothed
    assert watch.stop_at is None and watch.stop_reason == "completed"
    k = 0
    while not watch.update([100.0]):
        k += 1
    assert watch.stop_reason == "diverged" and watch.stop_at == 56 + k
    assert watch.smoothed > 5.0 * best
    assert watch.update([1.0])  # it stays diverged


def test_divergence_watch_stops_at_a_non_finite_loss_even_in_the_warm_up():
    watch = DivergenceWatch()
    assert watch.update([2.0, 2.1, float("nan"), 2.0])
    assert (watch.stop_at, watch.stop_reason) == (2, "nan")
    assert WARMUP_ITER > 2


def test_autoclr_checks_once_the_range_test_does_not_check_again(small_digits, make_net,
                                                                 monkeypatch):
    """range_test checks its arguments; AutoCLR, having checked its own, runs the
    test without a second check of the net and the parameters."""
    calls = []
    for name in ("check_net", "check_params", "check_data_size"):
        real = getattr(range_test_module, name)
        monkeypatch.setattr(range_test_module, name,
                            lambda *a, _real=real, _name=name, **k: (calls.append(_name),
                                                                      _real(*a, **k))[1])
    X, y = small_digits
    range_test(make_net(), X, y, n_iter=20, random_state=0)
    assert sorted(calls) == ["check_data_size", "check_net", "check_params"]
    calls.clear()
    AutoCLR(make_net(max_epochs=4), range_test_iter=20, random_state=0).suggest(X, y)
    assert calls == []
