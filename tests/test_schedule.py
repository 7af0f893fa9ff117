"""Cycle planning and the CyclicLR callback, checked against the paper's formula."""

import math

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback

from autoclr import AutoCLR, cyclic_lr_callback, plan_cycles


def paper_lr(it, base_lr, max_lr, step_size, policy, gamma=1.0):
    """LR of iteration ``it`` as written in Smith (2017), section 3.1."""
    cycle = math.floor(1 + it / (2 * step_size))
    x = abs(it / step_size - 2 * cycle + 1)
    amplitude = (max_lr - base_lr) * max(0.0, 1 - x)
    if policy == "triangular2":
        amplitude /= 2 ** (cycle - 1)
    elif policy == "exp_range":
        amplitude *= gamma**it
    return base_lr + amplitude


@pytest.mark.parametrize(
    "max_epochs, factor, n_cycles, n_epochs",
    [(30, 5, 3, 30), (100, 10, 5, 100), (60, 10, 3, 60), (20, 3, 3, 18), (13, 2, 3, 12)],
)
def test_auto_factor_fits_three_cycles_into_max_epochs(max_epochs, factor, n_cycles, n_epochs):
    plan = plan_cycles(1000, 100, max_epochs)
    assert plan.iterations_per_epoch == 10
    assert plan.factor == factor
    assert plan.step_size == factor * 10
    assert (plan.n_cycles, plan.n_epochs) == (n_cycles, n_epochs)
    assert plan.n_iter == plan.n_cycles * 2 * plan.step_size  # ends at a cycle's end
    assert plan.n_epochs <= max_epochs


def test_explicit_factor_and_partial_last_batch():
    plan = plan_cycles(1001, 100, 30, factor=4)
    assert plan.iterations_per_epoch == 11  # the last, partial batch counts
    assert plan.step_size == 44
    assert (plan.n_cycles, plan.n_epochs) == (3, 24)


def test_too_few_epochs_for_three_cycles_warns():
    with pytest.warns(UserWarning, match="at least 3"):
        plan = plan_cycles(1000, 100, 10)
    assert plan.factor == 2 and plan.n_cycles == 2 and plan.n_epochs == 8


def test_integer_step_size_is_used_as_is():
    plan = plan_cycles(1000, 100, 30, step_size=25)
    assert plan.step_size == 25 and plan.factor == 2.5
    assert plan.n_cycles == 6 and plan.n_epochs == 30


@pytest.mark.parametrize("max_epochs", [1, 2, 3])
def test_tiny_budget_is_never_exceeded(max_epochs):
    with pytest.warns(UserWarning, match="1 cycle"):
        plan = plan_cycles(1000, 100, max_epochs)
    assert plan.n_cycles == 1
    assert plan.n_epochs <= max_epochs
    assert plan.n_iter == 2 * plan.step_size == max_epochs * 10 - (max_epochs * 10) % 2


def test_integer_step_size_that_does_not_fit_is_an_error():
    with pytest.raises(ValueError, match="step_size=200 needs 400 iterations"):
        plan_cycles(1000, 100, 30, step_size=200)


def test_full_batch():
    plan = plan_cycles(500, -1, 30)
    assert plan.iterations_per_epoch == 1 and plan.step_size == 5


@pytest.mark.parametrize("policy, gamma", [
    ("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.99)])
def test_simulated_schedule_matches_the_paper(policy, gamma):
    cb = cyclic_lr_callback(0.01, 0.1, 7, policy=policy, gamma=gamma)
    lrs = cb.simulate(60, 0.01)
    expected = [paper_lr(i, 0.01, 0.1, 7, policy, gamma) for i in range(60)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("policy", ["triangular", "triangular2", "exp_range"])
def test_fitted_lr_matches_the_paper_at_every_iteration(small_digits, policy, make_net):
    X, y = small_digits
    # 400 training samples / 50 = 8 batches per epoch; step 8 -> a cycle is 2 epochs
    net = make_net(batch_size=50, max_epochs=6)
    auto = AutoCLR(net, base_lr=0.01, max_lr=0.1, step_size=8, policy=policy,
                   gamma=0.99 if policy == "exp_range" else "auto", random_state=0)
    auto.fit(X, y)
    lrs = np.concatenate(auto.net_.history[:, "batches", :, "event_lr"])
    assert len(lrs) == 6 * 8
    gamma = 0.99 if policy == "exp_range" else 1.0
    expected = [paper_lr(i, 0.01, 0.1, 8, policy, gamma) for i in range(len(lrs))]
    np.testing.assert_allclose(lrs, expected, rtol=1e-9)
    # the LR changes every batch, not once per epoch (skorch's default)
    assert len(np.unique(lrs[:8])) == 8
    # training ends at the end of a cycle: the next LR would be base_lr again
    assert paper_lr(len(lrs), 0.01, 0.1, 8, policy, gamma) == pytest.approx(0.01)


def test_exp_range_auto_gamma_shrinks_the_amplitude_to_a_tenth(small_digits, make_net):
    X, y = small_digits
    net = make_net(batch_size=50, max_epochs=12)
    auto = AutoCLR(net, base_lr=0.01, max_lr=0.1, policy="exp_range", random_state=0).fit(X, y)
    n_iter = auto.cycle_plan_.n_iter
    gamma = 0.1 ** (1 / n_iter)
    lrs = np.concatenate(auto.net_.history[:, "batches", :, "event_lr"])
    expected = [paper_lr(i, 0.01, 0.1, auto.step_size_, "exp_range", gamma)
                for i in range(n_iter)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-9)


@pytest.mark.parametrize("optimizer, kwargs, key, value", [
    (torch.optim.SGD, {"optimizer__momentum": 0.0}, "momentum", 0.0),
    (torch.optim.SGD, {"optimizer__momentum": 0.9}, "momentum", 0.9),
    (torch.optim.Adam, {}, "betas", (0.9, 0.999)),
    (torch.optim.Adagrad, {}, "lr_decay", 0),
])
def test_momentum_is_never_changed_by_default(small_digits, optimizer, kwargs, key, value,
                                              make_net):
    # CyclicLR's own default (cycle_momentum=True) would set SGD's momentum to
    # 0.8..0.9 even when it is 0, cycle Adam's beta1 and raise for Adagrad.
    X, y = small_digits
    net = make_net(optimizer=optimizer, **kwargs)
    auto = AutoCLR(net, base_lr=1e-3, max_lr=1e-2, random_state=0).fit(X, y)
    assert auto.net_.optimizer_.param_groups[0][key] == value


class LRAndMomentum(Callback):
    """Records the LR and the momentum every training batch runs with."""

    def initialize(self):
        self.seen_ = []
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            group = net.optimizer_.param_groups[0]
            self.seen_.append((group["lr"], group["momentum"]))


def test_cycle_momentum_on_request(small_digits, make_net):
    X, y = small_digits
    net = make_net(optimizer__momentum=0.9, callbacks=[("rec", LRAndMomentum())])
    auto = AutoCLR(net, base_lr=1e-3, max_lr=1e-2, step_size=3, cycle_momentum=True,
                   random_state=0).fit(X, y)
    lrs, momenta = np.array(dict(auto.net_.callbacks_)["rec"].seen_).T
    assert len(lrs) == auto.cycle_plan_.n_iter
    # the momentum cycles against the LR, from m = 0.9 at base_lr to 0.85 m at max_lr
    expected = 0.9 - (0.9 - 0.85 * 0.9) * (lrs - 1e-3) / (1e-2 - 1e-3)
    np.testing.assert_allclose(momenta, expected, rtol=1e-9)
    assert momenta.min() == pytest.approx(0.85 * 0.9) and momenta.max() == pytest.approx(0.9)


def test_cycle_momentum_needs_momentum(small_digits, make_net):
    X, y = small_digits
    net = make_net(optimizer__momentum=0.0)
    with pytest.raises(ValueError, match="momentum is 0"):
        AutoCLR(net, base_lr=1e-3, max_lr=1e-2, cycle_momentum=True).fit(X, y)
    with pytest.raises(ValueError, match="momentum or betas"):
        AutoCLR(make_net(optimizer=torch.optim.Adagrad),
                base_lr=1e-3, max_lr=1e-2, cycle_momentum=True).fit(X, y)
