"""Training length: n_cycles, stops held to cycle ends, warm starts and policy="one_cycle"."""

import pickle
import warnings
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import Callback, EarlyStopping
from skorch.history import History
from torch.optim.lr_scheduler import OneCycleLR

import autoclr._suggest as suggest_module
from autoclr import AutoCLR, plan_cycles, plot_lr_schedule
from autoclr._cycles import CycleEnd
from autoclr._schedule import ONE_CYCLE_FINAL_DIV_FACTOR, ONE_CYCLE_PCT_START

BASE, TOP = 0.01, 0.1
#: 400 of small_digits' 500 samples are trained on (the net's ValidSplit), in
#: batches of 50: 8 iterations per epoch; step_size_factor=2 makes a cycle 4 epochs
IPE, CYCLE_EPOCHS = 8, 4


@pytest.fixture
def net(make_net):
    def build(**params):
        return make_net(**{"module__hidden": 16, "batch_size": 50, **params})

    return build


def fit_quietly(auto, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return auto.fit(X, y)


def batch_lrs(auto):
    return np.concatenate(auto.net_.history[:, "batches", :, "event_lr"])


def final_lr(auto):
    """The LR the optimizer holds after the last step: where the schedule ended."""
    return auto.net_.optimizer_.param_groups[0]["lr"]


def triangular(it, step):
    """Smith (2017)'s triangle, LR of iteration ``it``."""
    x = abs(it / step - 2 * np.floor(1 + it / (2 * step)) + 1)
    return BASE + (TOP - BASE) * max(0.0, 1 - x)


# ------------------------------------------------------------------ the plan
@pytest.mark.parametrize("n_cycles, factor, n_epochs", [(2, 5, 20), (4, 2, 16), (1, 10, 20)])
def test_int_n_cycles_trains_exactly_that_many(n_cycles, factor, n_epochs):
    plan = plan_cycles(1000, 100, 20, n_cycles=n_cycles)
    assert (plan.n_cycles, plan.factor, plan.n_epochs) == (n_cycles, factor, n_epochs)
    assert plan.stop == "n_cycles" and plan.n_iter == n_cycles * plan.cycle_iter


def test_int_n_cycles_that_do_not_fit_are_an_error():
    with pytest.raises(ValueError, match=r"n_cycles=6 needs 24 epochs .* max_epochs=20 "
                                         r"holds 5\. Raise the net's max_epochs"):
        plan_cycles(1000, 100, 20, n_cycles=6)


def test_auto_n_cycles_plans_the_budget_as_its_cap():
    budget = plan_cycles(1000, 100, 60)
    assert budget.stop == "max_epochs" and budget.n_cycles == 3
    # the shortest cycles (2 epochs up, 2 down): 15 cycle ends in 60 epochs to stop at
    auto = plan_cycles(1000, 100, 60, n_cycles="auto")
    assert auto == replace(budget, stop="auto", step_size=20, factor=2.0, n_cycles=15,
                           cycle_iter=40)
    # a factor given is kept
    assert plan_cycles(1000, 100, 60, n_cycles="auto", factor=10) == replace(
        budget, stop="auto")


def test_one_cycle_plan_spans_the_budget():
    plan = plan_cycles(1000, 100, 30, policy="one_cycle")
    assert (plan.n_cycles, plan.n_epochs, plan.n_iter, plan.cycle_iter) == (1, 30, 300, 300)
    assert plan.step_size == round(ONE_CYCLE_PCT_START * 300)


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
    auto = fit_quietly(AutoCLR(net(max_epochs=24), base_lr=BASE, max_lr=TOP,
                               step_size_factor=2, n_cycles="auto", cycle_tol=1e6,
                               policy="triangular", random_state=0), X, y)
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
    auto = fit_quietly(AutoCLR(net(max_epochs=16), base_lr=BASE, max_lr=TOP,
                               step_size_factor=2, n_cycles="auto", cycle_tol=0.0,
                               cycle_monitor="train_loss",
                               random_state=0), X, y)
    # train_loss of a 4-cycle fit on digits still falls at every cycle end
    assert auto.cycle_report_.monitor == "train_loss"
    assert (auto.n_cycles_run_, auto.stop_reason_) == (4, "max_epochs")
    assert len(auto.net_.history) == 16


def test_without_a_validation_split_the_training_loss_is_read(small_digits, net):
    X, y = small_digits
    auto = fit_quietly(AutoCLR(net(max_epochs=12, train_split=None), base_lr=BASE,
                               max_lr=TOP, step_size_factor=2, n_cycles="auto",
                               random_state=0), X, y)
    assert auto.cycle_report_.monitor == "train_loss"
    assert len(auto.cycle_report_.scores) == auto.n_cycles_run_ == 3


def test_suggestion_says_the_cap_and_the_rule(small_digits, net):
    X, y = small_digits
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
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
    auto = fit_quietly(AutoCLR(net(max_epochs=24, callbacks=[("stop", callback)]),
                               base_lr=BASE, max_lr=TOP, step_size_factor=2, policy=policy,
                               random_state=0), X, y)
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
    auto = fit_quietly(AutoCLR(net(max_epochs=12, callbacks=[EarlyStopping(patience=1)]),
                               base_lr=BASE, max_lr=TOP, step_size_factor=2,
                               random_state=0), X, y)
    held = dict(auto.net_.callbacks_)["EarlyStopping"]
    assert held.patience == 1 and held.best_epoch_ > 0  # read through the wrapper
    assert auto.net_.get_params()["callbacks__EarlyStopping__patience"] == 1
    restored = pickle.loads(pickle.dumps(auto))
    np.testing.assert_array_equal(restored.predict_proba(X), auto.predict_proba(X))
    assert restored.stop_reason_ == auto.stop_reason_


def test_ctrl_c_mid_cycle_still_warns(small_digits, net):
    class CtrlC(Callback):
        def on_batch_end(self, net, training=False, **kwargs):
            if training and len(net.history) == 2 and len(net.history[-1, "batches"]) == 3:
                raise KeyboardInterrupt

    X, y = small_digits
    with pytest.warns(UserWarning, match=r"Training stopped after 11 of 96 iterations, in "
                                         r"epoch 2 of 12 \(interrupted"):
        auto = AutoCLR(net(max_epochs=12, callbacks=[CtrlC()]), base_lr=BASE, max_lr=TOP,
                       step_size_factor=2, random_state=0).fit(X, y)
    assert auto.stop_reason_ == "interrupted" and auto.n_cycles_run_ == 0


# ------------------------------------------------------------------ warm starts
def test_warm_start_runs_no_range_test(small_digits, net, monkeypatch):
    X, y = small_digits
    auto = fit_quietly(AutoCLR(net(max_epochs=12), step_size_factor=2, range_test_iter=24,
                               warm_start=True, random_state=0), X, y)
    bounds, first = (auto.base_lr_, auto.max_lr_), auto.n_cycles_run_

    def no_range_test(*args, **kwargs):
        raise AssertionError("a warm start ran a range test")

    monkeypatch.setattr(suggest_module, "run_range_test", no_range_test)
    auto.set_params(net__max_epochs=8)  # the budget of the next fit
    fit_quietly(auto, X, y)
    assert (auto.base_lr_, auto.max_lr_) == bounds
    assert auto.n_cycles_run_ == first + 2 and len(auto.net_.history) == 20
    assert final_lr(auto) == pytest.approx(auto.base_lr_, rel=1e-9)
    # warm_start=False: a new fit, which needs a range test again
    with pytest.raises(AssertionError, match="ran a range test"):
        fit_quietly(auto.set_params(warm_start=False), X, y)


@pytest.mark.parametrize("policy", ["triangular", "triangular2", "exp_range"])
def test_n_cycles_then_n_more_is_one_fit_of_2n(small_digits, net, policy):
    X, y = small_digits
    params = dict(base_lr=BASE, max_lr=TOP, step_size_factor=2, policy=policy, gamma=0.999,
                  random_state=0)
    halves = AutoCLR(net(max_epochs=2 * CYCLE_EPOCHS), warm_start=True, **params)
    fit_quietly(halves, X, y)
    fit_quietly(halves, X, y)
    whole = fit_quietly(AutoCLR(net(max_epochs=4 * CYCLE_EPOCHS), **params), X, y)
    assert halves.n_cycles_run_ == whole.n_cycles_run_ == 4
    np.testing.assert_allclose(batch_lrs(halves), batch_lrs(whole), rtol=1e-12)
    if policy == "triangular":
        expected = [triangular(it, 2 * IPE) for it in range(4 * CYCLE_EPOCHS * IPE)]
        np.testing.assert_allclose(batch_lrs(halves), expected, rtol=1e-9)


def test_warm_start_with_an_int_n_cycles(small_digits, net):
    X, y = small_digits
    auto = fit_quietly(AutoCLR(net(max_epochs=24), base_lr=BASE, max_lr=TOP,
                               step_size_factor=2, n_cycles=1, warm_start=True,
                               random_state=0), X, y)
    assert (auto.n_cycles_run_, len(auto.net_.history)) == (1, 4)
    fit_quietly(auto, X, y)
    assert (auto.n_cycles_run_, len(auto.net_.history)) == (2, 8)
    assert auto.stop_reason_ == "n_cycles"


def test_warm_start_keeps_the_schedule_features_and_classes(small_digits, net):
    X, y = small_digits
    auto = fit_quietly(AutoCLR(net(max_epochs=8), base_lr=BASE, max_lr=TOP,
                               step_size_factor=2, warm_start=True, random_state=0), X, y)
    history = len(auto.net_.history)
    with pytest.raises(ValueError, match=r"warm_start=True continues the fitted schedule, "
                                         r"but policy changed from 'triangular2' to "
                                         r"'triangular'"):
        auto.set_params(policy="triangular").fit(X, y)
    auto.set_params(policy="triangular2")
    with pytest.raises(ValueError, match=r"X has 60 features, but AutoCLR is expecting 64"):
        auto.fit(X[:, :60], y)
    with pytest.raises(ValueError, match=r"y has labels not seen in the first fit: \[10\]"):
        auto.fit(X, np.where(y == 9, 10, y))
    assert len(auto.net_.history) == history  # nothing was trained
    # a subset of the classes is fine
    fit_quietly(auto, X[y < 5], y[y < 5])
    assert len(auto.net_.history) > history


# ------------------------------------------------------------------ policy="one_cycle"
def one_cycle_by_hand(n_iter):
    """A fresh OneCycleLR with the documented arguments, stepped by hand."""
    param = torch.zeros(1, requires_grad=True)
    optimizer = torch.optim.SGD([param], lr=BASE)
    scheduler = OneCycleLR(optimizer, max_lr=TOP, total_steps=n_iter, div_factor=TOP / BASE,
                           final_div_factor=ONE_CYCLE_FINAL_DIV_FACTOR, cycle_momentum=False)
    lrs = []
    for _ in range(n_iter):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return np.array(lrs)


def test_one_cycle_follows_onecyclelr_at_every_iteration(small_digits, net):
    X, y = small_digits
    auto = fit_quietly(AutoCLR(net(max_epochs=10), base_lr=BASE, max_lr=TOP,
                               policy="one_cycle", random_state=0), X, y)
    n_iter = 10 * IPE
    assert auto.cycle_plan_.n_iter == n_iter and auto.n_cycles_run_ == 1
    lrs = batch_lrs(auto)
    np.testing.assert_allclose(lrs, one_cycle_by_hand(n_iter), rtol=1e-9)
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
    auto = fit_quietly(AutoCLR(net(max_epochs=4, optimizer=optimizer, **params),
                               base_lr=BASE, max_lr=TOP, policy="one_cycle",
                               random_state=0), X, y)
    assert auto.net_.optimizer_.param_groups[0][key] == value
    asked = fit_quietly(AutoCLR(net(max_epochs=4, optimizer=optimizer, **params),
                                base_lr=BASE, max_lr=TOP, policy="one_cycle",
                                cycle_momentum=True, random_state=0), X, y)
    # OneCycleLR moves the momentum down to 0.85 m at the peak and back up to m
    momentum = asked.net_.optimizer_.param_groups[0][key]
    momentum = momentum[0] if key == "betas" else momentum
    assert 0.85 * 0.9 < momentum < 0.9


def test_one_cycle_warm_start_runs_a_new_cycle(small_digits, net):
    X, y = small_digits
    auto = fit_quietly(AutoCLR(net(max_epochs=4), base_lr=BASE, max_lr=TOP,
                               policy="one_cycle", warm_start=True, random_state=0), X, y)
    fit_quietly(auto.set_params(net__max_epochs=6), X, y)
    lrs = batch_lrs(auto)
    assert auto.n_cycles_run_ == 2 and len(lrs) == 10 * IPE
    np.testing.assert_allclose(lrs[:4 * IPE], one_cycle_by_hand(4 * IPE), rtol=1e-9)
    np.testing.assert_allclose(lrs[4 * IPE:], one_cycle_by_hand(6 * IPE), rtol=1e-9)


def test_one_cycle_plot(small_digits, net):
    pytest.importorskip("matplotlib")
    X, y = small_digits
    auto = fit_quietly(AutoCLR(net(max_epochs=4), base_lr=BASE, max_lr=TOP,
                               policy="one_cycle", random_state=0), X, y)
    ax = plot_lr_schedule(auto)
    assert ax.get_title().startswith("one_cycle schedule: 1 cycle(s) over 32 iterations")
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), batch_lrs(auto))


def test_cyclic_plot_says_why_it_stopped(small_digits, net):
    pytest.importorskip("matplotlib")
    X, y = small_digits
    auto = fit_quietly(AutoCLR(net(max_epochs=24, callbacks=[AlwaysStop()]), base_lr=BASE,
                               max_lr=TOP, step_size_factor=2, random_state=0), X, y)
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
