"""Param groups and several optimizers (autoclr._groups): every group follows the net's lr
at its own ratio, in the range test and in the schedule; a group at lr=0 stays frozen."""

import math

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import Callback
from torch import nn

from autoclr import AutoCLR, cyclic_lr_callback, one_cycle_callback, range_test
from autoclr._groups import RATIO_KEY, describe_groups
from autoclr._schedule import ONE_CYCLE_FINAL_DIV_FACTOR

#: the net's lr and its head's, 10x
LR, HEAD_LR = 0.01, 0.1
HEAD_FIRST = [("head.*", {"lr": HEAD_LR})]  # skorch puts the matched group first
BASE, TOP = 0.01, 0.1
#: small_digits: 400 of 500 samples trained on (ValidSplit) in batches of 50
IPE = 8
PRETRAINED_SEED = 1234


class Backbone(nn.Module):
    """A 'pretrained' body (the same weights whatever the seed) and a fresh head."""

    def __init__(self, hidden=16):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(64, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, 10)
        generator = torch.Generator().manual_seed(PRETRAINED_SEED)
        with torch.no_grad():
            for p in self.body.parameters():
                p.copy_(0.3 * torch.randn(p.shape, generator=generator))

    def forward(self, X):
        return self.head(self.body(X))


class TwoOptimizers(NeuralNetClassifier):
    """skorch's documented pattern: ``optimizer_`` for the body, ``optimizer2_`` for the head."""

    def initialize_optimizer(self, *args, **kwargs):
        args, kw = self.get_params_for_optimizer("optimizer", self.module_.body.named_parameters())
        self.optimizer_ = self.optimizer(*args, **kw)
        args, kw = self.get_params_for_optimizer("optimizer2", self.module_.head.named_parameters())
        self.optimizer2_ = torch.optim.SGD(*args, **kw)
        return self


class GroupLRs(Callback):
    """Records, every training batch, the LR of each group of each optimizer (and momentum)."""

    def initialize(self):
        self.lrs_, self.momenta_ = [], []
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            groups = [g for name in net._optimizers for g in getattr(net, name + "_").param_groups]
            self.lrs_.append([g["lr"] for g in groups])
            self.momenta_.append([g["momentum"] for g in groups])


@pytest.fixture
def group_net(make_net):
    def build(param_groups=HEAD_FIRST, cls=NeuralNetClassifier, **params):
        return make_net(cls, **{"module": Backbone, "lr": LR, "batch_size": 50,
                                "max_epochs": 6, "optimizer__param_groups": param_groups,
                                "callbacks": [("rec", GroupLRs())], **params})

    return build


@pytest.fixture
def spy_steps(monkeypatch):
    """Every ``train_step`` of any classifier: the net and its groups' LRs before the step."""
    seen = []
    train_step = NeuralNetClassifier.train_step

    def spy(self, batch, **fit_params):
        seen.append((self, [g["lr"] for g in self.optimizer_.param_groups]))
        return train_step(self, batch, **fit_params)

    monkeypatch.setattr(NeuralNetClassifier, "train_step", spy)
    return seen


def triangle(it, step):
    """CyclicLR's triangular LR (Smith 2017) between BASE and TOP at iteration ``it``."""
    x = abs(it / step - 2 * math.floor(1 + it / (2 * step)) + 1)
    return BASE + (TOP - BASE) * max(0.0, 1 - x)


def recorded(auto):
    return np.array(dict(auto.net_.callbacks_)["rec"].lrs_)


def event_lrs(net):
    return np.concatenate(net.history[:, "batches", :, "event_lr"])


# ------------------------------------------------------------------ the schedule
def test_the_head_stays_at_ten_times_the_body_through_the_fit(small_digits, group_net):
    X, y = small_digits
    auto = AutoCLR(group_net(), base_lr=BASE, max_lr=TOP, step_size=IPE, policy="triangular",
                   random_state=0).fit(X, y)
    lrs = recorded(auto)  # columns: head, body
    assert lrs.shape == (6 * IPE, 2)
    np.testing.assert_allclose(lrs[:, 0] / lrs[:, 1], 10.0, rtol=1e-12)
    # the body (ratio 1) is the schedule itself, exactly; the history records it
    np.testing.assert_array_equal(lrs[:, 1], event_lrs(auto.net_))
    np.testing.assert_allclose(lrs[:, 1], [triangle(i, IPE) for i in range(6 * IPE)],
                               rtol=1e-12)
    assert lrs[IPE, 0] == pytest.approx(10 * TOP, rel=1e-12)  # the head's peak
    head, body = auto.net_.optimizer_.param_groups
    assert head["lr"] / body["lr"] == pytest.approx(10.0, rel=1e-12)
    assert body["lr"] == pytest.approx(BASE, rel=1e-12)  # the fit ends at base_lr
    assert (head[RATIO_KEY], body[RATIO_KEY]) == (10.0, 1.0)
    assert auto.net_.lr == LR  # the net's lr is left as given


def test_a_warm_start_keeps_the_ratio_and_continues_the_triangle(small_digits, group_net):
    X, y = small_digits
    auto = AutoCLR(group_net(), base_lr=BASE, max_lr=TOP, step_size=IPE,
                   policy="triangular", warm_start=True, random_state=0)
    auto.fit(X, y).fit(X, y)
    lrs = recorded(auto)
    assert len(lrs) == 12 * IPE  # both fits, recorded by the same callback
    np.testing.assert_allclose(lrs[:, 0] / lrs[:, 1], 10.0, rtol=1e-12)
    np.testing.assert_allclose(lrs[:, 1], [triangle(i, IPE) for i in range(12 * IPE)],
                               rtol=1e-12)


def test_cycle_momentum_cycles_every_group_and_keeps_the_ratio(small_digits, group_net):
    X, y = small_digits
    auto = AutoCLR(group_net(), base_lr=BASE, max_lr=TOP, step_size=IPE, policy="triangular",
                   cycle_momentum=True, random_state=0).fit(X, y)
    lrs, momenta = recorded(auto), np.array(dict(auto.net_.callbacks_)["rec"].momenta_)
    np.testing.assert_allclose(lrs[:, 0] / lrs[:, 1], 10.0, rtol=1e-12)
    # both groups: m = 0.9 at base_lr, 0.85 m at max_lr, against the net's lr
    expected = 0.9 - (0.9 - 0.85 * 0.9) * (lrs[:, 1] - BASE) / (TOP - BASE)
    np.testing.assert_allclose(momenta, np.column_stack([expected, expected]), rtol=1e-9)


def test_one_cycle_scales_every_group_from_start_to_end(small_digits, group_net,
                                                       one_cycle_by_hand):
    X, y = small_digits
    auto = AutoCLR(group_net(), base_lr=BASE, max_lr=TOP, policy="one_cycle",
                   random_state=0).fit(X, y)
    lrs = recorded(auto)
    n_iter = 6 * IPE
    # the body follows OneCycleLR on the net's bounds, stepped by hand
    expected = one_cycle_by_hand(BASE, TOP, n_iter)
    np.testing.assert_allclose(lrs[:, 1], expected, rtol=1e-9)
    # the head at 10x from the first iteration (div_factor per group) to the last
    np.testing.assert_allclose(lrs[:, 0], 10 * np.array(expected), rtol=1e-9)
    assert lrs[0, 0] == pytest.approx(10 * BASE, rel=1e-9)
    assert lrs[:, 0].max() > 9 * TOP  # 48 iterations: the peak falls between two
    assert lrs[-1, 0] == pytest.approx(10 * BASE / ONE_CYCLE_FINAL_DIV_FACTOR, rel=1e-6)


@pytest.mark.parametrize("build", ["cyclic", "one_cycle"])
def test_the_exported_builders_keep_the_groups_in_a_plain_skorch_net(small_digits, group_net,
                                                                     build):
    X, y = small_digits
    scheduler = (cyclic_lr_callback(BASE, TOP, IPE, policy="triangular") if build == "cyclic"
                 else one_cycle_callback(BASE, TOP, 4 * IPE))
    net = group_net(max_epochs=4, callbacks=[("lr", scheduler), ("rec", GroupLRs())])
    lrs = np.array(dict(net.fit(X, y).callbacks_)["rec"].lrs_)
    np.testing.assert_allclose(lrs[:, 0] / lrs[:, 1], 10.0, rtol=1e-12)
    assert lrs[0, 1] == pytest.approx(BASE, rel=1e-9)
    assert lrs[:, 1].max() > 0.99 * TOP  # the one cycle's 32 steps peak between two
    np.testing.assert_array_equal(lrs[:, 1], event_lrs(net))
    # a second partial_fit continues with the ratios of the first (the groups hold the
    # schedule's LRs by then, not the ones the user gave)
    net.partial_fit(X, y)
    lrs = np.array(dict(net.callbacks_)["rec"].lrs_)
    assert len(lrs) == 8 * IPE
    np.testing.assert_allclose(lrs[:, 0] / lrs[:, 1], 10.0, rtol=1e-12)


def test_two_optimizers_follow_the_same_triangle(small_digits, group_net):
    X, y = small_digits
    # the body's optimizer at the net's lr, the head's at twice it (optimizer2__lr)
    net = group_net(cls=TwoOptimizers, param_groups=[], optimizer2__lr=2 * LR)
    auto = AutoCLR(net, base_lr=BASE, max_lr=TOP, step_size=IPE, policy="triangular",
                   random_state=0).fit(X, y)
    lrs = recorded(auto)  # columns: optimizer_, optimizer2_
    expected = [triangle(i, IPE) for i in range(6 * IPE)]
    np.testing.assert_allclose(lrs[:, 0], expected, rtol=1e-12)
    np.testing.assert_allclose(lrs[:, 1], 2 * np.array(expected), rtol=1e-12)
    scheduler = dict(auto.net_.callbacks_)["autoclr_cyclic_lr"]
    assert set(scheduler.lr_schedulers_) == {"optimizer", "optimizer2"}
    assert auto.net_.optimizer2_.param_groups[0]["lr"] == pytest.approx(2 * BASE, rel=1e-12)


# ------------------------------------------------------------------ the range test
def test_the_range_test_ramps_every_group_at_its_ratio(small_digits, group_net, spy_steps):
    X, y = small_digits
    rt = range_test(group_net(), X, y, lr_range=(1e-5, 0.05), n_iter=30, random_state=0)
    assert len(spy_steps) == len(rt.lrs) == 30
    lrs = np.array([group_lrs for _, group_lrs in spy_steps])  # head, body
    np.testing.assert_array_equal(lrs[:, 1], rt.lrs)  # the net's lr is the ramp itself
    np.testing.assert_allclose(lrs[:, 0], 10 * rt.lrs, rtol=1e-12)


def test_the_range_test_schedules_every_optimizer(small_digits, group_net, monkeypatch):
    X, y = small_digits
    seen = []
    train_step = TwoOptimizers.train_step

    def spy(self, batch, **fit_params):
        seen.append((self.optimizer_.param_groups[0]["lr"],
                     self.optimizer2_.param_groups[0]["lr"]))
        return train_step(self, batch, **fit_params)

    monkeypatch.setattr(TwoOptimizers, "train_step", spy)
    net = group_net(cls=TwoOptimizers, param_groups=[], optimizer2__lr=2 * LR)
    rt = range_test(net, X, y, lr_range=(1e-5, 0.05), n_iter=20, random_state=0)
    lrs = np.array(seen)
    np.testing.assert_array_equal(lrs[:, 0], rt.lrs)
    np.testing.assert_allclose(lrs[:, 1], 2 * rt.lrs, rtol=1e-12)


def test_a_group_at_lr_0_stays_frozen_in_range_test_and_fit(small_digits, group_net,
                                                            spy_steps):
    X, y = small_digits
    pretrained = Backbone().state_dict()
    net = group_net(param_groups=[("body.*", {"lr": 0.0})])
    auto = AutoCLR(net, step_size=IPE, lr_range=(1e-4, 1.0), range_test_iter=40,
                   random_state=0).fit(X, y)
    rt_net = spy_steps[0][0]
    assert rt_net is not auto.net_ and len(auto.range_test_.lrs) > 0
    for trained in (rt_net, auto.net_):
        state = trained.module_.state_dict()
        for key in ("body.0.weight", "body.0.bias"):
            assert torch.equal(state[key], pretrained[key]), key
        assert not torch.equal(state["head.weight"], Backbone().state_dict()["head.weight"])
    # the body's LR was 0 at every step of both, the head's the schedule's
    assert all(lrs[0] == 0.0 for _, lrs in spy_steps)
    assert recorded(auto)[:, 1].max() == pytest.approx(auto.max_lr_, rel=1e-9)
    assert auto.score(X, y) > 0.5  # the head learned on the frozen features


def test_a_net_lr_of_0_with_a_group_above_it_is_an_error(small_digits, group_net):
    X, y = small_digits
    with pytest.raises(ValueError, match="needs a net lr > 0"):
        AutoCLR(group_net(lr=0.0), base_lr=BASE, max_lr=TOP, step_size=IPE).fit(X, y)


# ------------------------------------------------------------------ the description
def test_describe_groups_says_how_each_group_follows(group_net, make_net):
    assert describe_groups(make_net()) is None  # a plain net: nothing to say
    line = describe_groups(group_net(param_groups=HEAD_FIRST + [("body.0.bias", {"lr": 0})]))
    assert line == (
        "the bounds are for the net's lr (0.01); each param group follows at its lr / 0.01: "
        "'head.*' x10, 'body.0.bias' frozen (lr=0), the other parameters x1")
    line = describe_groups(group_net(cls=TwoOptimizers, param_groups=[]))
    assert line.endswith("every optimizer the net's initialize_optimizer registers follows "
                         "the same way")


def test_the_printed_suggestion_says_how_the_groups_follow(small_digits, make_net):
    X, y = small_digits
    net = make_net(max_epochs=4, optimizer__param_groups=[("net.4.*", {"lr": 0.1})])
    suggestion = AutoCLR(net, range_test_iter=20, random_state=0).suggest(X, y)
    assert any("the bounds are for the net's lr (0.01)" in note and "x10" in note
               for note in suggestion.notes)
    assert "note: the bounds are for the net's lr" in repr(suggestion)
    plain = AutoCLR(make_net(max_epochs=4), range_test_iter=20, random_state=0).suggest(X, y)
    assert not any("param group" in note for note in plain.notes)
