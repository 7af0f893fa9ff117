"""Executing the plan (autoclr._cycles): the LR schedule, checked against the paper's
formula, cycle ends, n_cycles, stops held to cycle ends, warm starts and one_cycle."""

import math
import pickle
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback, EarlyStopping
from skorch.history import History

import autoclr._suggest as suggest_module
from autoclr import AutoCLR, BoundsWarning, cyclic_lr_callback, one_cycle_callback, plot_lr_schedule
from autoclr._cycles import GATE, SCHEDULER, CycleEnd
from autoclr._schedule import CYCLIC_POLICIES, ONE_CYCLE_FINAL_DIV_FACTOR, ONE_CYCLE_PCT_START

BASE, TOP = 0.01, 0.1
#: 400 of small_digits' 500 samples are trained on (the net's ValidSplit), in
#: batches of 50: 8 iterations per epoch; step_size_factor=2 makes a cycle 4 epochs
IPE, CYCLE_EPOCHS = 8, 4


@pytest.fixture
def net(make_net):
    def build(**params):
        return make_net(**{"module__hidden": 16, "batch_size": 50, **params})

    return build


def fit_short(auto, X, y):
    """Fit with a budget of fewer than 3 cycles, which AutoCLR warns about."""
    with pytest.warns(UserWarning, match="leaves room for"):
        return auto.fit(X, y)


def batch_lrs(auto):
    return np.concatenate(auto.net_.history[:, "batches", :, "event_lr"])


def final_lr(auto):
    """The LR the optimizer holds after the last step: where the schedule ended."""
    return auto.net_.optimizer_.param_groups[0]["lr"]


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


def triangular(it, step):
    """Smith (2017)'s triangle between BASE and TOP, LR of iteration ``it``."""
    return paper_lr(it, BASE, TOP, step, "triangular")


# ------------------------------------------------------------------ the LR schedule
@pytest.mark.parametrize("policy, gamma", [
    ("triangular", 1.0), ("triangular2", 1.0), ("exp_range", 0.99)])
def test_simulated_schedule_matches_the_paper(policy, gamma):
    cb = cyclic_lr_callback(0.01, 0.1, 7, policy=policy, gamma=gamma)
    lrs = cb.simulate(60, 0.01)
    expected = [paper_lr(i, 0.01, 0.1, 7, policy, gamma) for i in range(60)]
    np.testing.assert_allclose(lrs, expected, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("policy", CYCLIC_POLICIES)
def test_fitted_lr_matches_the_paper_at_every_iteration(small_digits, policy, make_net):
    X, y = small_digits
    # 400 training samples / 50 = 8 batches per epoch; step 8 -> a cycle is 2 epochs
    net = make_net(batch_size=50, max_epochs=6)
    auto = AutoCLR(net, base_lr=0.01, max_lr=0.1, step_size=8, policy=policy,
                   gamma=0.99 if policy == "exp_range" else "auto", random_state=0)
    auto.fit(X, y)
    lrs = batch_lrs(auto)
    assert len(lrs) == 6 * 8
    gamma = 0.99 if policy == "exp_range" else 1.0
    expected = [paper_lr(i, 0.01, 0.1, 8, policy, gamma) for i in range(len(lrs))]
    np.testing.assert_allclose(lrs, expected, rtol=1e-9)
    # the LR changes every batch, not once per epoch (skorch's default)
    assert len(np.unique(lrs[:8])) == 8
    # training ends at the end of a cycle: the optimizer holds base_lr again
    assert final_lr(auto) == pytest.approx(0.01, rel=1e-9)


def test_exp_range_auto_gamma_shrinks_the_amplitude_to_a_tenth(small_digits, make_net):
    X, y = small_digits
    net = make_net(batch_size=50, max_epochs=12)
    auto = AutoCLR(net, base_lr=0.01, max_lr=0.1, policy="exp_range", random_state=0).fit(X, y)
    n_iter = auto.cycle_plan_.n_iter
    gamma = 0.1 ** (1 / n_iter)
    expected = [paper_lr(i, 0.01, 0.1, auto.step_size_, "exp_range", gamma)
                for i in range(n_iter)]
    np.testing.assert_allclose(batch_lrs(auto), expected, rtol=1e-9)


#: (rows, the net's max_epochs, step_size, whole cycles, iterations left after them).
#: In batches of 100, after the net's 20 % split: 1,125 rows -> 900 trained on, 9
#: iterations an epoch; 37 rows -> 29, 1 iteration an epoch.
BUDGETS = [
    (1125, 1, "auto", 1, 1),  # one cycle of 2 x 4 in 9 iterations
    (1125, 2, "auto", 1, 0),  # 2 x 9 in 18: aligned
    (1125, 3, "auto", 1, 1),  # 2 x 13 in 27 (was: 27 steps, LR 0.095 for base_lr 0.074)
    (37, 1, "auto", 0, 1),    # a single iteration: no cycle, base_lr throughout
    (37, 2, "auto", 1, 0),
    (37, 3, "auto", 1, 0),    # 2 x 1 in 2 of the 3 epochs
    (1125, 1, 4, 1, 1),       # a user's step_size: cycles of 8 in epochs of 9
    (1125, 2, 4, 2, 2),
    (1125, 3, 4, 3, 3),
]


@pytest.mark.parametrize("policy", CYCLIC_POLICIES)
@pytest.mark.parametrize("n_rows, max_epochs, step_size, n_cycles, left", BUDGETS)
def test_the_fit_ends_at_base_lr_for_every_budget(make_net, policy, n_rows, max_epochs,
                                                  step_size, n_cycles, left):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, 8)).astype(np.float32)
    y = (X @ rng.normal(size=8)).astype(np.float32)
    auto = AutoCLR(make_net("regressor", batch_size=100, max_epochs=max_epochs),
                   base_lr=BASE, max_lr=TOP, step_size=step_size, policy=policy,
                   random_state=0)
    if n_cycles < 3:
        fit_short(auto, X, y)
    else:
        auto.fit(X, y)
    plan = auto.cycle_plan_
    assert (plan.n_cycles, plan.n_iter - plan.schedule_iter) == (n_cycles, left)
    assert len(auto.net_.history) == plan.n_epochs <= max_epochs
    lrs = batch_lrs(auto)
    assert len(lrs) == plan.n_iter
    gamma = 0.1 ** (1 / plan.n_iter) if policy == "exp_range" else 1.0
    expected = [paper_lr(it, BASE, TOP, plan.step_size, policy, gamma)
                for it in range(plan.schedule_iter)]
    np.testing.assert_allclose(lrs[:plan.schedule_iter], expected, rtol=1e-9)
    # the whole cycles ran; what is left of the last epoch trains at base_lr
    np.testing.assert_allclose(lrs[plan.schedule_iter:], BASE, rtol=1e-9)
    if left:  # the last batch trained at base_lr, after the last cycle's end
        assert lrs[-1] == pytest.approx(BASE, rel=1e-9)
    assert final_lr(auto) == pytest.approx(BASE, rel=1e-9)
    assert (auto.n_cycles_run_, auto.stop_reason_) == (n_cycles, "max_epochs")


def test_a_warm_start_after_a_partial_last_epoch_starts_the_next_cycle(make_net):
    X = np.random.default_rng(0).normal(size=(1125, 8)).astype(np.float32)
    y = X.sum(axis=1)
    auto = fit_short(AutoCLR(make_net("regressor", batch_size=100, max_epochs=3),
                             base_lr=BASE, max_lr=TOP, policy="triangular",
                             warm_start=True, random_state=0), X, y)
    auto.fit(X, y)  # one more cycle of 2 x 13 in 27 iterations
    lrs = batch_lrs(auto)
    assert auto.n_cycles_run_ == 2 and len(lrs) == 54
    expected = [triangular(it, 13) for it in range(26)]
    np.testing.assert_allclose(lrs[:26], expected, rtol=1e-9)
    np.testing.assert_allclose(lrs[27:53], expected, rtol=1e-9)  # from base_lr again
    assert lrs[26] == lrs[53] == pytest.approx(BASE, rel=1e-9)
    assert final_lr(auto) == pytest.approx(BASE, rel=1e-9)


# ------------------------------------------------------------------ momentum
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
    """Records the LR and the momentum (or beta1) every training batch runs with."""

    def initialize(self):
        self.seen_ = []
        return self

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            group = net.optimizer_.param_groups[0]
            momentum = group["momentum"] if "momentum" in group else group["betas"][0]
            self.seen_.append((group["lr"], momentum))


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


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam])
@pytest.mark.parametrize("build", ["cyclic", "one_cycle"])
def test_exported_builders_cycle_momentum_as_autoclr_does(small_digits, make_net, build,
                                                          optimizer):
    # a plain skorch net with an exported builder: 0.85 m at max_lr, m at base_lr, m being
    # the optimizer's own (SGD's momentum=0.9 here, Adam's default beta1 0.9); the
    # builders' defaults were 0.8 / 0.9 (CyclicLR) and 0.85 / 0.95 (OneCycleLR)
    X, y = small_digits
    # 400 rows trained on in batches of 64: 7 iterations an epoch, 28 in 4 epochs; the
    # one cycle of 30 iterations peaks at the 9th
    scheduler = (cyclic_lr_callback(BASE, TOP, 7, policy="triangular", cycle_momentum=True)
                 if build == "cyclic" else
                 one_cycle_callback(BASE, TOP, 30, cycle_momentum=True))
    params = {"optimizer__momentum": 0.9} if optimizer is torch.optim.SGD else {}
    net = make_net(optimizer=optimizer, max_epochs=4, **params,
                   callbacks=[("lr", scheduler), ("rec", LRAndMomentum())]).fit(X, y)
    lrs, momenta = np.array(dict(net.callbacks_)["rec"].seen_).T
    assert lrs.max() == pytest.approx(TOP, rel=1e-9)
    assert momenta[np.argmax(lrs)] == pytest.approx(0.85 * 0.9, rel=1e-9)
    assert momenta[0] == momenta.max() == pytest.approx(0.9, rel=1e-9)
    # the parameters stay as given
    assert (scheduler.base_momentum, scheduler.max_momentum) == (None, None)
    assert dict(net.callbacks_)["lr"].get_params()["base_momentum"] is None


def test_momentum_bounds_given_to_a_builder_are_used(small_digits, make_net):
    X, y = small_digits
    scheduler = cyclic_lr_callback(BASE, TOP, 7, policy="triangular", cycle_momentum=True,
                                   base_momentum=0.5, max_momentum=0.6)
    # given bounds need no momentum of the optimizer's own
    net = make_net(max_epochs=2, optimizer__momentum=0.0,
                   callbacks=[("lr", scheduler), ("rec", LRAndMomentum())])
    _, momenta = np.array(dict(net.fit(X, y).callbacks_)["rec"].seen_).T
    assert momenta.min() == pytest.approx(0.5) and momenta.max() == pytest.approx(0.6)


# ------------------------------------------------------------------ n_cycles="auto"
def gate_run(scores, tol, *, lower_is_better=True, cycle_iter=10):
    """Feed ``scores`` to a CycleEnd as cycle-end epochs; the cycle it stopped at."""
    history = History()
    fake = SimpleNamespace(history=history, callbacks_=[])
    gate = CycleEnd(monitor="score", lower_is_better=lower_is_better, auto=True, tol=tol,
                    cycle_iter=cycle_iter).initialize()
    for k, score in enumerate(scores, start=1):
        history.new_epoch()
        history.record("train_batch_count", cycle_iter)
        history.record("score", score)
        try:
            gate.on_epoch_end(fake)
        except KeyboardInterrupt:
            return k, gate
    return None, gate


@pytest.mark.parametrize("scores, tol, stop_at", [
    ([1.0, 0.8, 0.79, 0.5], 0.05, 3),   # 1.25 % better than 0.8 at cycle 3: done
    ([1.0, 0.8, 0.6, 0.59], 0.05, 4),   # 25 % at cycle 3, then 1.7 %
    ([1.0, 0.8, 0.85, 0.7], 0.05, 3),   # worse than the best earlier cycle end
    ([1.0, 0.99, 0.5, 0.4], 0.05, None),  # no stop before the paper's 3 cycles
    ([1.0, 0.8, 0.6, 0.45], 0.05, None),  # improving by more than tol: runs to the cap
    ([1.0, 0.8, 0.6, 0.45], 0.3, 3),    # 25 % is not enough for tol=0.3
])
def test_auto_rule_stops_at_the_first_cycle_end_without_enough_gain(scores, tol, stop_at):
    stopped, gate = gate_run(scores, tol)
    assert stopped == stop_at
    if stop_at is not None:
        assert gate.stop_reason_ == "no_improvement"
        assert f"cycle {stop_at}" in gate.explanation_
    assert gate.scores_ == scores[:stop_at]


def test_auto_rule_reads_accuracy_upwards():
    assert gate_run([0.5, 0.8, 0.805, 0.9], 0.01, lower_is_better=False)[0] == 3
    assert gate_run([0.5, 0.8, 0.9, 0.95], 0.01, lower_is_better=False)[0] is None


def test_auto_fit_stops_at_a_cycle_end_after_three_cycles(small_digits, net):
    X, y = small_digits
    # no improvement can reach cycle_tol=1e6: the rule stops at its first chance
    auto = AutoCLR(net(max_epochs=24), base_lr=BASE, max_lr=TOP,
                   step_size_factor=2, n_cycles="auto", cycle_tol=1e6,
                   policy="triangular", random_state=0).fit(X, y)
    assert auto.cycle_plan_.n_cycles == 6 and auto.cycle_plan_.stop == "auto"  # the cap
    assert (auto.n_cycles_run_, auto.stop_reason_) == (3, "no_improvement")
    assert len(auto.net_.history) == 3 * CYCLE_EPOCHS
    report = auto.cycle_report_
    assert report.monitor == "valid_loss" and len(report.scores) == 3
    np.testing.assert_allclose(report.scores, auto.net_.history[3::4, "valid_loss"])
    assert report.cycle_ends == (32, 64, 96)
    assert final_lr(auto) == pytest.approx(BASE, rel=1e-9)


def test_auto_fit_without_improvement_limit_runs_the_budget(small_digits, net):
    X, y = small_digits
    auto = AutoCLR(net(max_epochs=16), base_lr=BASE, max_lr=TOP,
                   step_size_factor=2, n_cycles="auto", cycle_tol=0.0,
                   cycle_monitor="train_loss",
                   random_state=0).fit(X, y)
    # train_loss of a 4-cycle fit on digits still falls at every cycle end
    assert auto.cycle_report_.monitor == "train_loss"
    assert (auto.n_cycles_run_, auto.stop_reason_) == (4, "max_epochs")
    assert len(auto.net_.history) == 16
    # the fit's rule is in CycleEnd's state; its parameters stay as built (begin()
    # used to overwrite monitor, lower_is_better, auto, tol and cycle_iter)
    gate = dict(auto.net_.callbacks_)[GATE]
    assert gate.get_params() == CycleEnd().get_params()
    assert (gate.monitor_, gate.lower_is_better_, gate.auto_, gate.tol_,
            gate.cycle_iter_) == ("train_loss", True, True, 0.0, 4 * IPE)


def test_without_a_validation_split_the_training_loss_is_read(small_digits, net):
    X, y = small_digits
    auto = AutoCLR(net(max_epochs=12, train_split=None), base_lr=BASE,
                   max_lr=TOP, step_size_factor=2, n_cycles="auto",
                   random_state=0).fit(X, y)
    assert auto.cycle_report_.monitor == "train_loss"
    assert len(auto.cycle_report_.scores) == auto.n_cycles_run_ == 3


def test_suggestion_says_the_cap_and_the_rule(small_digits, net):
    X, y = small_digits
    text = repr(AutoCLR(net(max_epochs=24), base_lr=BASE, max_lr=TOP,
                        n_cycles="auto").suggest(X, y))
    assert "training: up to 6 cycle(s), 24 epochs" in text
    assert "n_cycles='auto'" in text


# ------------------------------------------------------------------ stops held to cycle ends
class AlwaysStop(Callback):
    """Asks to stop at every epoch end, as skorch's EarlyStopping does."""

    def on_epoch_end(self, net, **kwargs):
        raise KeyboardInterrupt


@pytest.mark.parametrize("policy", ["triangular", "triangular2"])
@pytest.mark.parametrize("stopper", ["early_stopping", "always"])
def test_stopping_callbacks_act_only_at_cycle_ends(small_digits, net, policy, stopper):
    X, y = small_digits
    # an epoch improving valid_loss by less than 2 % is a miss (triangular2 ends its
    # cycles with small steps, so a plain patience=1 might never be reached)
    callback = (EarlyStopping(patience=1, threshold=0.02) if stopper == "early_stopping"
                else AlwaysStop())
    before = dict(vars(callback))
    auto = AutoCLR(net(max_epochs=24, callbacks=[("stop", callback)]),
                   base_lr=BASE, max_lr=TOP, step_size_factor=2, policy=policy,
                   random_state=0).fit(X, y)
    n_epochs = len(auto.net_.history)
    assert n_epochs % CYCLE_EPOCHS == 0 and n_epochs < 24
    assert auto.stop_reason_ == "callback" and "stop asked to stop" in str(auto.cycle_report_)
    lrs = batch_lrs(auto)
    assert len(lrs) == n_epochs * IPE == auto.n_cycles_run_ * 2 * 2 * IPE
    # the schedule ran whole cycles: the last batch is the last of a cycle, and the
    # LR the optimizer holds after it is back at base_lr
    assert lrs[-1] == pytest.approx(BASE + (TOP - BASE) / (2 * IPE) / (
        2 ** (auto.n_cycles_run_ - 1) if policy == "triangular2" else 1), rel=1e-9)
    assert final_lr(auto) == pytest.approx(BASE, rel=1e-9)
    if stopper == "always":  # asked at the first epoch, held to the first cycle end
        assert n_epochs == CYCLE_EPOCHS and "asked to stop in epoch 1" in str(auto.cycle_report_)
    assert vars(callback) == before  # the user's callback object was not used


def test_held_callbacks_stay_reachable_and_pickle(small_digits, net):
    X, y = small_digits
    auto = AutoCLR(net(max_epochs=12, callbacks=[EarlyStopping(patience=1)]),
                   base_lr=BASE, max_lr=TOP, step_size_factor=2,
                   random_state=0).fit(X, y)
    held = dict(auto.net_.callbacks_)["EarlyStopping"]
    assert held.patience == 1 and held.best_epoch_ > 0  # read through the wrapper
    assert auto.net_.get_params()["callbacks__EarlyStopping__patience"] == 1
    restored = pickle.loads(pickle.dumps(auto))
    np.testing.assert_array_equal(restored.predict_proba(X), auto.predict_proba(X))
    assert restored.stop_reason_ == auto.stop_reason_


class CtrlC(Callback):
    """Ctrl-C after the 3rd batch of the net's 2nd epoch: 11 iterations in."""

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == 2 and len(net.history[-1, "batches"]) == 3:
            raise KeyboardInterrupt


def test_ctrl_c_mid_cycle_still_warns(small_digits, net):
    X, y = small_digits
    with pytest.warns(UserWarning, match=r"Training stopped after 11 of 96 iterations, in "
                                         r"epoch 2 of 12 \(interrupted"):
        auto = AutoCLR(net(max_epochs=12, callbacks=[CtrlC()]), base_lr=BASE, max_lr=TOP,
                       step_size_factor=2, random_state=0).fit(X, y)
    assert auto.stop_reason_ == "interrupted" and auto.n_cycles_run_ == 0


def test_a_warm_start_after_ctrl_c_runs_whole_cycles_from_base_lr(small_digits, net):
    X, y = small_digits
    auto = AutoCLR(net(max_epochs=12, callbacks=[CtrlC()]), base_lr=BASE, max_lr=TOP,
                   step_size_factor=2, policy="triangular", warm_start=True, random_state=0)
    with pytest.warns(UserWarning, match="Training stopped after 11 of 96 iterations"):
        auto.fit(X, y)
    auto.fit(X, y)  # 3 cycles more; the history is past its 2nd epoch, no Ctrl-C
    lrs = np.concatenate(auto.net_.history[2:, "batches", :, "event_lr"])
    # the interrupted cycle is not resumed in its middle (was: from iteration 11 on,
    # ending 11 iterations into a cycle): the warm start runs 3 whole cycles
    np.testing.assert_allclose(lrs, [triangular(it, 2 * IPE) for it in range(96)],
                               rtol=1e-9)
    assert (auto.n_cycles_run_, auto.stop_reason_) == (3, "max_epochs")
    assert auto.cycle_report_.cycle_ends == (11 + 32, 11 + 64, 11 + 96)
    assert final_lr(auto) == pytest.approx(BASE, rel=1e-9)


# ------------------------------------------------------------------ warm starts
def test_warm_start_runs_no_range_test(small_digits, net, monkeypatch):
    X, y = small_digits
    # a range test of 24 iterations is too short to read cleanly
    with pytest.warns(BoundsWarning):
        auto = AutoCLR(net(max_epochs=12), step_size_factor=2, range_test_iter=24,
                       warm_start=True, random_state=0).fit(X, y)
    bounds, first = (auto.base_lr_, auto.max_lr_), auto.n_cycles_run_

    def no_range_test(*args, **kwargs):
        raise AssertionError("a warm start ran a range test")

    monkeypatch.setattr(suggest_module, "run_range_test", no_range_test)
    auto.set_params(net__max_epochs=8)  # the budget of the next fit
    auto.fit(X, y)
    assert (auto.base_lr_, auto.max_lr_) == bounds
    assert auto.n_cycles_run_ == first + 2 and len(auto.net_.history) == 20
    assert final_lr(auto) == pytest.approx(auto.base_lr_, rel=1e-9)
    # warm_start=False: a new fit, which needs a range test again
    with pytest.warns(UserWarning, match="leaves room for"):
        with pytest.raises(AssertionError, match="ran a range test"):
            auto.set_params(warm_start=False).fit(X, y)


@pytest.mark.parametrize("policy", ["triangular", "triangular2", "exp_range"])
def test_n_cycles_then_n_more_is_one_fit_of_2n(small_digits, net, policy):
    X, y = small_digits
    params = dict(base_lr=BASE, max_lr=TOP, step_size_factor=2, policy=policy, gamma=0.999,
                  random_state=0)
    halves = fit_short(AutoCLR(net(max_epochs=2 * CYCLE_EPOCHS), warm_start=True, **params),
                       X, y)
    halves.fit(X, y)  # a warm start asks no minimum of cycles: no warning
    whole = AutoCLR(net(max_epochs=4 * CYCLE_EPOCHS), **params).fit(X, y)
    assert halves.n_cycles_run_ == whole.n_cycles_run_ == 4
    np.testing.assert_allclose(batch_lrs(halves), batch_lrs(whole), rtol=1e-12)
    if policy == "triangular":
        expected = [triangular(it, 2 * IPE) for it in range(4 * CYCLE_EPOCHS * IPE)]
        np.testing.assert_allclose(batch_lrs(halves), expected, rtol=1e-9)


def test_warm_start_with_an_int_n_cycles(small_digits, net):
    X, y = small_digits
    auto = AutoCLR(net(max_epochs=24), base_lr=BASE, max_lr=TOP,
                   step_size_factor=2, n_cycles=1, warm_start=True,
                   random_state=0).fit(X, y)
    assert (auto.n_cycles_run_, len(auto.net_.history)) == (1, 4)
    auto.fit(X, y)
    assert (auto.n_cycles_run_, len(auto.net_.history)) == (2, 8)
    assert auto.stop_reason_ == "n_cycles"


def test_warm_start_keeps_the_schedule_features_and_classes(small_digits, net):
    X, y = small_digits
    auto = fit_short(AutoCLR(net(max_epochs=8), base_lr=BASE, max_lr=TOP,
                             step_size_factor=2, warm_start=True, random_state=0), X, y)
    history = len(auto.net_.history)
    with pytest.raises(ValueError, match=r"warm_start=True continues the fitted schedule, "
                                         r"but policy changed from 'auto' to "
                                         r"'triangular'"):
        auto.set_params(policy="triangular").fit(X, y)
    auto.set_params(policy="auto")
    with pytest.raises(ValueError, match=r"X has 60 features, but AutoCLR is expecting 64"):
        auto.fit(X[:, :60], y)
    with pytest.raises(ValueError, match=r"y has labels not seen in the first fit: \[10\]"):
        auto.fit(X, np.where(y == 9, 10, y))
    assert len(auto.net_.history) == history  # nothing was trained
    # a subset of the classes is fine
    assert auto.cycle_plan_.policy == "triangular"  # "auto": 56 iterations, a tiny fit
    auto.set_params(net__max_epochs=24).fit(X[y < 5], y[y < 5])
    assert len(auto.net_.history) > history
    # the schedule continues with the policy "auto" chose first, though this fit is longer
    assert auto.cycle_plan_.policy == "triangular" and auto.cycle_plan_.n_iter >= 100


# ------------------------------------------------------------------ policy="one_cycle"
def test_one_cycle_follows_onecyclelr_at_every_iteration(small_digits, net, one_cycle_by_hand):
    X, y = small_digits
    auto = AutoCLR(net(max_epochs=10), base_lr=BASE, max_lr=TOP,
                   policy="one_cycle", random_state=0).fit(X, y)
    n_iter = 10 * IPE
    assert auto.cycle_plan_.n_iter == n_iter and auto.n_cycles_run_ == 1
    lrs = batch_lrs(auto)
    np.testing.assert_allclose(lrs, one_cycle_by_hand(BASE, TOP, n_iter), rtol=1e-9)
    assert lrs[0] == pytest.approx(BASE, rel=1e-9)
    assert lrs.max() == pytest.approx(TOP, rel=1e-9)
    assert int(np.argmax(lrs)) == round(ONE_CYCLE_PCT_START * n_iter) - 1
    assert lrs[-1] == pytest.approx(BASE / ONE_CYCLE_FINAL_DIV_FACTOR, rel=1e-6)
    text = repr(auto.suggestion_)
    assert "policy=one_cycle" in text and f"1 cycle over {n_iter} iterations" in text
    assert "down to 1.00e-06" in text


@pytest.mark.parametrize("optimizer, key, value", [
    (torch.optim.SGD, "momentum", 0.9), (torch.optim.Adam, "betas", (0.9, 0.999))])
def test_one_cycle_leaves_momentum_alone_unless_asked(small_digits, net, optimizer, key,
                                                      value):
    X, y = small_digits
    params = {"optimizer__momentum": 0.9} if optimizer is torch.optim.SGD else {}
    auto = AutoCLR(net(max_epochs=4, optimizer=optimizer, **params),
                   base_lr=BASE, max_lr=TOP, policy="one_cycle",
                   random_state=0).fit(X, y)
    assert auto.net_.optimizer_.param_groups[0][key] == value
    asked = AutoCLR(net(max_epochs=4, optimizer=optimizer, **params),
                    base_lr=BASE, max_lr=TOP, policy="one_cycle",
                    cycle_momentum=True, random_state=0).fit(X, y)
    # OneCycleLR moves the momentum down to 0.85 m at the peak and back up to m
    momentum = asked.net_.optimizer_.param_groups[0][key]
    momentum = momentum[0] if key == "betas" else momentum
    assert 0.85 * 0.9 < momentum < 0.9


def test_one_cycle_warm_start_runs_a_new_cycle(small_digits, net, one_cycle_by_hand):
    X, y = small_digits
    auto = AutoCLR(net(max_epochs=4), base_lr=BASE, max_lr=TOP,
                   policy="one_cycle", warm_start=True, random_state=0).fit(X, y)
    auto.set_params(net__max_epochs=6).fit(X, y)
    lrs = batch_lrs(auto)
    assert auto.n_cycles_run_ == 2 and len(lrs) == 10 * IPE
    np.testing.assert_allclose(lrs[:4 * IPE], one_cycle_by_hand(BASE, TOP, 4 * IPE), rtol=1e-9)
    np.testing.assert_allclose(lrs[4 * IPE:], one_cycle_by_hand(BASE, TOP, 6 * IPE), rtol=1e-9)
    # the second cycle's length was the fit's, not a rewritten parameter
    assert dict(auto.net_.callbacks_)[SCHEDULER].total_steps == 4 * IPE


def test_one_cycle_plot(small_digits, net):
    pytest.importorskip("matplotlib")
    X, y = small_digits
    auto = AutoCLR(net(max_epochs=4), base_lr=BASE, max_lr=TOP,
                   policy="one_cycle", random_state=0).fit(X, y)
    ax = plot_lr_schedule(auto)
    assert ax.get_title().startswith("one_cycle schedule: 1 cycle(s) over 32 iterations")
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), batch_lrs(auto))


def test_cyclic_plot_says_why_it_stopped(small_digits, net):
    pytest.importorskip("matplotlib")
    X, y = small_digits
    auto = AutoCLR(net(max_epochs=24, callbacks=[AlwaysStop()]), base_lr=BASE,
                   max_lr=TOP, step_size_factor=2, random_state=0).fit(X, y)
    title = plot_lr_schedule(auto).get_title()
    assert "1 cycle(s) of 2 x 16 iterations, 4 epochs, stopped early (callback)" in title


# ------------------------------------------------------------------ parameters
def test_new_parameters_clone_and_pickle(net):
    auto = AutoCLR(net(), n_cycles="auto", cycle_monitor="valid_acc", cycle_tol=0.05,
                   warm_start=True, policy="one_cycle")
    for twin in (clone(auto), pickle.loads(pickle.dumps(auto))):
        params = twin.get_params(deep=False)
        assert (params["n_cycles"], params["cycle_monitor"], params["cycle_tol"],
                params["warm_start"], params["policy"]) == ("auto", "valid_acc", 0.05, True,
                                                            "one_cycle")
    auto.set_params(n_cycles=4, cycle_tol=0.0, warm_start=False)
    assert (auto.n_cycles, auto.cycle_tol, auto.warm_start) == (4, 0.0, False)
