"""The plan in numbers (autoclr._schedule): step size, cycles, epochs, stop rule; no training."""

from dataclasses import replace

import pytest

from autoclr import CyclePlan, plan_cycles
from autoclr._schedule import (
    ONE_CYCLE_PCT_START,
    STOP_RULES,
    exp_range_gamma,
    momentum_range,
    plan_more,
)


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


@pytest.mark.parametrize("max_epochs, cycle_iter, n_iter", [(1, 8, 9), (2, 18, 18), (3, 26, 27)])
def test_one_cycle_over_an_odd_budget_leaves_its_last_iteration_to_base_lr(
        max_epochs, cycle_iter, n_iter):
    # 1,125 rows, the net's 20 % split: 900 trained on, 9 batches of 100 an epoch
    with pytest.warns(UserWarning, match="leaves room for 1 cycle"):
        plan = plan_cycles(900, 100, max_epochs)
    assert (plan.n_cycles, plan.cycle_iter, plan.n_epochs, plan.n_iter) == (
        1, cycle_iter, max_epochs, n_iter)
    # the schedule steps through the whole cycle; what is left trains at base_lr
    assert plan.schedule_iter == cycle_iter and n_iter - cycle_iter < plan.iterations_per_epoch


def test_an_int_step_size_off_the_epochs_schedules_whole_cycles_only():
    plan = plan_cycles(900, 100, 3, step_size=4)
    assert (plan.n_cycles, plan.n_epochs, plan.n_iter, plan.schedule_iter) == (3, 3, 27, 24)


def test_a_budget_of_one_iteration_holds_no_cycle_and_no_extra_epoch():
    # was: one cycle of 2 iterations, in 2 epochs where max_epochs is 1
    with pytest.warns(UserWarning, match="leaves room for 0 cycle"):
        plan = plan_cycles(29, 100, 1)
    assert (plan.n_cycles, plan.n_epochs, plan.n_iter, plan.schedule_iter) == (0, 1, 1, 0)
    with pytest.raises(ValueError, match=r"n_cycles=1 needs 2 epochs .* holds 0"):
        plan_cycles(29, 100, 1, n_cycles=1)


@pytest.mark.parametrize("n_cycles, stop", [(None, "max_epochs"), (2, "n_cycles"),
                                            ("auto", "auto")])
def test_the_stop_rule_is_one_of_stop_rules(n_cycles, stop):
    plan = plan_cycles(1000, 100, 30, n_cycles=n_cycles)
    assert plan.stop == stop
    assert set(STOP_RULES) == {"max_epochs", "n_cycles", "auto"}
    with pytest.raises(ValueError, match=r"stop must be one of \('max_epochs', 'n_cycles', "
                                         r"'auto'\), got 'never'"):
        replace(plan, stop="never")
    with pytest.raises(ValueError, match="stop must be one of"):
        CyclePlan(step_size=10, iterations_per_epoch=10, factor=1.0, n_cycles=1, n_epochs=2,
                  n_iter=20, stop="early")


def test_warm_start_plan_asks_no_minimum_of_cycles():
    # 2 cycles of the fitted step size: fewer than the paper's 3, and no warning
    plan = plan_more(1000, 100, 8, step_size=20, n_cycles=None, policy="triangular2")
    assert (plan.n_cycles, plan.n_epochs, plan.step_size) == (2, 8, 20)


def test_exp_range_gamma_shrinks_the_amplitude_to_a_tenth():
    assert exp_range_gamma(300) ** 300 == pytest.approx(0.1)
    assert exp_range_gamma(0) == pytest.approx(0.1)


@pytest.mark.parametrize("settings", [{"momentum": 0.9}, {"betas": (0.9, 0.999)},
                                      {"momentum": 0.9, "betas": (0.5, 0.999)}])
def test_momentum_range_is_085_m_to_m(settings):
    assert momentum_range(settings) == {"base_momentum": 0.85 * 0.9, "max_momentum": 0.9}


@pytest.mark.parametrize("settings, match", [({"lr_decay": 0}, "momentum or betas; Adagrad"),
                                             ({"momentum": 0.0}, "momentum is 0")])
def test_momentum_range_needs_a_momentum(settings, match):
    with pytest.raises(ValueError, match=match):
        momentum_range(settings, "Adagrad")


@pytest.mark.parametrize("n_train, batch_size, max_epochs, n_iter, policy", [
    (120, 128, 30, 30, "triangular"),      # iris at skorch's defaults: 1 batch an epoch
    (400, 64, 12, 84, "triangular"),       # 7 batches x 12 epochs
    (400, 64, 18, 126, "triangular2"),     # 7 x 18: at least 100 iterations
    (1600, 64, 30, 750, "triangular2"),
])
def test_auto_policy_is_triangular_for_a_classifier_under_100_iterations(
        n_train, batch_size, max_epochs, n_iter, policy):
    auto = plan_cycles(n_train, batch_size, max_epochs, policy="auto")
    halving = plan_cycles(n_train, batch_size, max_epochs, policy="triangular2")
    assert auto.n_iter == n_iter and auto.policy == policy
    # the same cycles as any cyclical policy's plan: only the name differs
    assert replace(auto, policy="triangular2") == halving
    # a regressor keeps triangular2 whatever the fit's length
    assert plan_cycles(n_train, batch_size, max_epochs, policy="auto",
                       classifier=False) == halving
