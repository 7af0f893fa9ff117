"""The AutoCLR estimator: end to end, scikit-learn contract, the traps of issue 2."""

import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV, StratifiedKFold, check_cv
from skorch.callbacks import Callback
from torch import nn

import autoclr._suggest as suggest_module
from autoclr import AutoCLR, Bounds, RangeTestResult, Suggestion, range_test
from autoclr._detect import read_bounds
from autoclr.models import MLP


def net_state(net):
    """Everything a user could notice about a net object."""
    return pickle.dumps(net), set(vars(net))


@pytest.fixture(scope="module")
def fitted_digits(digits, make_net):
    """AutoCLR with default options on digits (70/30), as in the issue's target."""
    X_train, X_test, y_train, y_test = digits
    net = make_net(module__hidden=64, max_epochs=30)
    before = net_state(net)
    auto = AutoCLR(net, random_state=0).fit(X_train, y_train)
    return auto, net, before, X_test, y_test


def test_digits_reaches_the_target_accuracy(fitted_digits):
    auto, _, _, X_test, y_test = fitted_digits
    assert auto.score(X_test, y_test) >= 0.96
    assert 0 < auto.base_lr_ < auto.max_lr_ <= 1.0
    assert isinstance(auto.range_test_, RangeTestResult)
    bounds = auto.range_test_.bounds
    assert isinstance(bounds, Bounds)
    # read by the accuracy rule itself, no fallback, and used as read
    assert bounds.method == "accuracy" and not bounds.fallback
    assert (bounds.base_lr, bounds.max_lr) == (auto.base_lr_, auto.max_lr_)


def test_user_net_is_unchanged(fitted_digits):
    auto, net, before, _, _ = fitted_digits
    assert net_state(net) == before
    assert not net.initialized_
    assert auto.net_ is not net and auto.net_.initialized_


def test_fitted_attributes_and_predictions(fitted_digits):
    auto, _, _, X_test, y_test = fitted_digits
    plan = auto.cycle_plan_
    # 1257 samples; the net's ValidSplit(5) trains on 1005 -> 16 batches of 64
    assert plan.iterations_per_epoch == 16
    assert plan.factor == 5 and auto.step_size_ == 80  # max_epochs=30 -> 3 cycles of 10
    assert len(auto.net_.history) == plan.n_epochs == 30
    np.testing.assert_array_equal(auto.classes_, np.arange(10))
    proba = auto.predict_proba(X_test)
    assert proba.shape == (len(X_test), 10)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-5)
    np.testing.assert_array_equal(auto.predict(X_test), proba.argmax(1))
    assert auto.n_features_in_ == 64


def test_classifier_with_string_labels(small_digits, make_net):
    X, y = small_digits
    labels = np.array([f"digit-{d}" for d in range(10)])
    auto = AutoCLR(make_net(), base_lr=0.01, max_lr=0.1, random_state=0)
    auto.fit(X, labels[y])
    assert set(auto.predict(X[:20])) <= set(labels)
    assert auto.score(X, labels[y]) > 0.5


def test_regressor_end_to_end(regression_data, make_net):
    X, y = regression_data
    net = make_net("regressor", max_epochs=12)
    auto = AutoCLR(net, random_state=0).fit(X[:300], y[:300])
    assert is_regressor(auto) and not is_classifier(auto)
    assert auto.range_test_.score_name == "neg_loss"
    pred = auto.predict(X[300:])
    assert pred.shape == (100,)
    assert auto.score(X[300:], y[300:]) > 0.8  # R^2
    assert not hasattr(auto, "predict_proba")


def test_estimator_type_follows_the_net(make_net):
    assert is_classifier(AutoCLR(make_net()))
    assert is_regressor(AutoCLR(make_net("regressor")))
    # GridSearchCV stratifies for a classifier
    cv = check_cv(3, np.arange(30) % 3, classifier=is_classifier(AutoCLR(make_net())))
    assert isinstance(cv, StratifiedKFold)


def test_not_fitted_error(small_digits, make_net):
    X, _ = small_digits
    auto = AutoCLR(make_net())
    with pytest.raises(NotFittedError):
        auto.predict(X)
    with pytest.raises(NotFittedError):
        auto.predict_proba(X)


def test_params_are_stored_unchanged_and_net_params_are_exposed(make_net):
    net = make_net()
    auto = AutoCLR(net, policy="triangular", lr_range=(1e-5, 10.0))
    params = auto.get_params(deep=True)
    assert params["net"] is net
    assert params["lr_range"] == (1e-5, 10.0)
    assert params["net__module__hidden"] == 32
    assert params["net__batch_size"] == 64
    auto.set_params(net__module__hidden=16, policy="exp_range")
    assert auto.net.module__hidden == 16 and auto.policy == "exp_range"


def test_clone_and_pickle(small_digits, make_net):
    X, y = small_digits
    auto = AutoCLR(make_net(), random_state=0, base_lr=0.01, max_lr=0.1)
    unfitted = pickle.loads(pickle.dumps(auto))
    assert unfitted.get_params()["policy"] == "auto"
    auto.fit(X, y)
    twin = clone(auto)
    assert not hasattr(twin, "net_")
    restored = pickle.loads(pickle.dumps(auto))
    np.testing.assert_array_equal(restored.predict_proba(X), auto.predict_proba(X))


def test_given_bounds_skip_the_range_test(small_digits, monkeypatch, make_net):
    def boom(*args, **kwargs):
        raise AssertionError("the range test must not run")

    monkeypatch.setattr(suggest_module, "run_range_test", boom)
    X, y = small_digits
    auto = AutoCLR(make_net(), base_lr=0.002, max_lr=0.02).fit(X, y)
    assert (auto.base_lr_, auto.max_lr_) == (0.002, 0.02)
    assert auto.range_test_ is None


def test_only_max_lr_given_detects_base_lr(small_digits, make_net):
    X, y = small_digits
    auto = AutoCLR(make_net(), max_lr=0.05, random_state=0).fit(X, y)
    assert auto.max_lr_ == 0.05
    # the detected base_lr (below the given max_lr here), not the max_lr / 4 fallback
    detected = auto.range_test_.bounds.base_lr
    assert detected < 0.05 and auto.base_lr_ == detected != 0.05 / 4


def test_verbose_prints_the_suggestion(small_digits, capsys, make_net):
    X, y = small_digits
    AutoCLR(make_net(), random_state=0, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "base_lr=" in out and "max_lr=" in out and "step_size=" in out
    # 12 epochs of 7 batches: a tiny budget, so policy="auto" is triangular, and says why
    assert "iterations/epoch" in out and "policy=triangular\n" in out
    assert "84 iterations" in out
    assert ("note: policy='auto': 'triangular' for a classifier's fit of 84 iterations "
            "(under 100)" in out)
    # the range test (a quarter of the fit, raised to the floor) is longer than this
    # fit: said, with a way
    assert ("note: the range test ran 100 iterations, more than the fit's 84 "
            "(range_test_iter='auto': 16 epochs or a quarter of the fit, at least 100 "
            "iterations" in out)
    assert "pass base_lr_ and max_lr_ as base_lr and max_lr" in out
    assert "why:" in out
    AutoCLR(make_net(max_epochs=24), random_state=0, verbose=1).fit(X, y)
    out = capsys.readouterr().out
    assert "policy=triangular2" in out and "168 iterations" in out
    assert "policy='auto'" not in out and "more than the fit's" not in out


def test_suggest_returns_the_block_and_leaves_the_estimator_unfitted(small_digits, make_net):
    X, y = small_digits
    auto = AutoCLR(make_net(), random_state=0)
    s = auto.suggest(X, y)
    assert isinstance(s, Suggestion)
    assert s.base_lr < s.max_lr
    assert s.plan.iterations_per_epoch == 7  # 400 of 500 samples in batches of 64
    text = repr(s)
    assert f"base_lr={s.base_lr:.2e}" in text and "why:" in text
    assert not hasattr(auto, "net_") and not hasattr(auto, "classes_")
    # the same seed gives the same suggestion as fit uses
    fitted = AutoCLR(make_net(), random_state=0).fit(X, y)
    assert (fitted.base_lr_, fitted.max_lr_) == (s.base_lr, s.max_lr)


def test_step_size_is_computed_from_the_data_given(digits, make_net):
    X, _, y, _ = digits
    net = make_net(train_split=None, max_epochs=12)
    small = AutoCLR(net, base_lr=0.01, max_lr=0.1).fit(X[:640], y[:640])
    large = AutoCLR(net, base_lr=0.01, max_lr=0.1).fit(X[:1280], y[:1280])
    assert small.cycle_plan_.iterations_per_epoch == 10
    assert large.cycle_plan_.iterations_per_epoch == 20
    assert large.step_size_ == 2 * small.step_size_


def test_grid_search_over_autoclr_and_net_params(small_digits, make_net):
    X, y = small_digits
    net = make_net(max_epochs=6)
    search = GridSearchCV(
        AutoCLR(net, random_state=0),
        {"policy": ["triangular", "triangular2"], "net__module__hidden": [16, 32]},
        cv=2,
    )
    with pytest.warns(UserWarning, match="cycle"):
        search.fit(X, y)
    assert len(search.cv_results_["params"]) == 4
    assert search.best_estimator_.net_.module_.net[0].out_features == (
        search.best_params_["net__module__hidden"])
    assert search.score(X, y) > 0.5
    assert not net.initialized_


class StartWeights(Callback):
    """Records the module's weights when each training run begins (in a class
    attribute: the net's callbacks are copied with the net)."""

    seen = []

    def on_train_begin(self, net, **kwargs):
        type(self).seen.append({k: v.clone() for k, v in net.module_.state_dict().items()})


@pytest.mark.parametrize("instance", [True, False], ids=["module instance", "module class"])
def test_both_phases_start_from_the_same_weights(small_digits, make_net, instance):
    """The range test and the final fit start from the same weights: the user's
    module instance's (left untouched), or the same seeded initialisation."""
    X, y = small_digits
    module = MLP(n_features=64, n_outputs=10, hidden=16) if instance else MLP
    initial = ({k: v.clone() for k, v in module.state_dict().items()} if instance
               else None)
    StartWeights.seen = []
    params = {} if instance else dict(module__hidden=16)
    net = make_net(module=module, callbacks=[("start", StartWeights())], **params)
    auto = AutoCLR(net, random_state=0).fit(X, y)
    assert len(StartWeights.seen) == 2  # the range test's start, then the final fit's
    range_test_start, fit_start = StartWeights.seen
    for k, v in range_test_start.items():
        assert torch.equal(fit_start[k], v)
        if instance:  # the user's weights, untouched
            assert torch.equal(v, initial[k])
            assert torch.equal(module.state_dict()[k], initial[k])
    # and the final fit trained away from them
    trained = auto.net_.module_.state_dict()
    assert any(not torch.equal(trained[k], v) for k, v in fit_start.items())
    if instance:
        assert auto.net_.module_ is not module


def test_keyboard_interrupt_in_the_range_test_propagates(small_digits, monkeypatch, make_net):
    class Interrupting(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(64, 10)
            self.calls = 0

        def forward(self, X):
            self.calls += 1
            if self.calls == 5:
                raise KeyboardInterrupt
            return self.lin(X)

    X, y = small_digits
    auto = AutoCLR(make_net(module=Interrupting), random_state=0)
    with pytest.raises(KeyboardInterrupt):
        auto.fit(X, y)
    assert not hasattr(auto, "net_")


def test_user_lr_scheduler_is_rejected(small_digits, make_net):
    from skorch.callbacks import LRScheduler

    X, y = small_digits
    net = make_net(callbacks=[("sched", LRScheduler(policy="StepLR", step_size=1))])
    with pytest.raises(ValueError, match="LR scheduler.*'sched'"):
        AutoCLR(net).fit(X, y)


def test_user_callbacks_are_kept(small_digits, make_net):
    from skorch.callbacks import EpochScoring

    X, y = small_digits
    net = make_net(callbacks=[("train_acc", EpochScoring(
        "accuracy", on_train=True, name="train_acc"))])
    auto = AutoCLR(net, base_lr=0.01, max_lr=0.1).fit(X, y)
    assert "train_acc" in auto.net_.history[-1]
    assert len(net.callbacks) == 1  # the user's list is not extended


def test_device_auto_is_cpu_without_cuda(small_digits, make_net):
    X, y = small_digits
    auto = AutoCLR(make_net(), base_lr=0.01, max_lr=0.1).fit(X, y)
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert auto.net_.device == expected
    assert next(auto.net_.module_.parameters()).device.type == expected


def test_same_seed_same_fit_and_global_rng_untouched(small_digits, make_net):
    X, y = small_digits
    torch.manual_seed(5)
    state = torch.get_rng_state()
    a = AutoCLR(make_net(), random_state=3).fit(X, y)
    assert torch.equal(torch.get_rng_state(), state)
    b = AutoCLR(make_net(), random_state=3).fit(X, y)
    assert (a.base_lr_, a.max_lr_) == (b.base_lr_, b.max_lr_)
    np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


class RecordingMLP(MLP):
    """Remembers the initial first-layer weights of every instance built."""

    initial = []

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        RecordingMLP.initial.append(self.net[0].weight.detach().clone())


def test_module_class_both_phases_start_from_the_same_weights(small_digits, make_net):
    X, y = small_digits
    RecordingMLP.initial = []
    AutoCLR(make_net(module=RecordingMLP, module__n_features=64, module__n_outputs=10),
            random_state=4).fit(X, y)
    range_test_weights, fit_weights = RecordingMLP.initial  # one module per phase
    assert torch.equal(range_test_weights, fit_weights)


@pytest.mark.parametrize("bad, match", [
    ({"callbacks": "disable"}, "turns off every callback"),
])
def test_net_settings_that_cannot_work_fail_before_training(small_digits, monkeypatch,
                                                            bad, match, make_net):
    monkeypatch.setattr(suggest_module, "run_range_test", None)  # never reached
    X, y = small_digits
    with pytest.raises(ValueError, match=match):
        AutoCLR(make_net(**bad)).fit(X, y)


def test_base_lr_alone_above_the_tested_range_fails_before_training(small_digits,
                                                                   monkeypatch, make_net):
    monkeypatch.setattr(suggest_module, "run_range_test", None)  # never reached
    X, y = small_digits
    with pytest.raises(ValueError, match=r"base_lr=2\.0 is given without max_lr"):
        AutoCLR(make_net(), base_lr=2.0).fit(X, y)


def test_target_shape_does_not_leak_between_fits(regression_data, make_net):
    X, y = regression_data
    auto = AutoCLR(make_net("regressor"), base_lr=1e-3, max_lr=1e-2, random_state=0)
    assert auto.fit(X, y).predict(X).shape == (len(X),)
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X),
                                             torch.from_numpy(y.reshape(-1, 1)))
    # a Dataset's targets are (n, 1): predictions keep the net's (n, 1) shape
    assert auto.fit(dataset, None).predict(X).shape == (len(X), 1)


def test_data_smaller_than_two_batches_trains_and_says_so(make_net):
    """Iris with skorch's default batch_size=128: one batch per epoch, not an error."""
    from sklearn.datasets import load_iris

    X, y = load_iris(return_X_y=True)
    X = ((X - X.mean(0)) / X.std(0)).astype(np.float32)
    net = make_net(module__n_features=4, module__n_outputs=3, batch_size=128, max_epochs=30)
    auto = AutoCLR(net, random_state=0).fit(X, y)
    plan = auto.cycle_plan_
    assert plan.iterations_per_epoch == 1  # 120 training samples < 128
    assert plan.n_epochs == 30 and plan.n_iter == 30
    assert auto.range_test_.n_iter == 100  # the automatic minimum, in full batches
    assert any("n_samples=150 is small for batch_size=128" in note
               for note in auto.suggestion_.notes)
    assert "note: n_samples=150" in repr(auto.suggestion_)
    assert auto.score(X, y) > 0.8


# ------------------------------------------------------------ one parameter table
def test_autoclr_parameters_are_listed_once_and_the_stage_lists_derive_from_it():
    import inspect

    from autoclr._detect import DETECTORS
    from autoclr._suggest import suggest
    from autoclr._validation import (
        AUTOCLR_PARAMS,
        DETECTION_METHODS,
        PARAMS,
        SCHEDULE_PARAMS,
        SUGGEST_PARAMS,
    )

    signature = [p for p in inspect.signature(AutoCLR).parameters if p != "net"]
    assert list(AUTOCLR_PARAMS) == signature
    # suggest takes exactly the suggestion stage's parameters, plus what fit resolves
    taken = set(inspect.signature(suggest).parameters) - {"net", "X", "y", "device", "seed",
                                                          "classes", "fit_params"}
    assert taken == set(SUGGEST_PARAMS)
    assert set(SCHEDULE_PARAMS) == {"policy", "base_lr", "max_lr", "step_size",
                                    "step_size_factor", "gamma", "cycle_momentum"}
    assert set(SCHEDULE_PARAMS) | set(SUGGEST_PARAMS) <= set(PARAMS)
    assert tuple(DETECTORS) == DETECTION_METHODS


def test_fitted_values_are_held_once(small_digits, make_net):
    X, y = small_digits
    auto = AutoCLR(make_net(max_epochs=4), range_test_iter=20, random_state=0)
    assert not hasattr(auto, "base_lr_") and not hasattr(auto, "step_size_")
    auto.fit(X, y)
    s = auto.suggestion_
    assert (auto.base_lr_, auto.max_lr_) == (s.base_lr, s.max_lr)
    assert auto.step_size_ == s.step_size == s.plan.step_size == auto.cycle_plan_.step_size
    assert auto.range_test_ is s.range_test and s.bounds is s.range_test.bounds
    assert (auto.n_cycles_run_, auto.stop_reason_) == (auto.cycle_report_.n_cycles,
                                                      auto.cycle_report_.stop_reason)
    assert "base_lr_" not in vars(auto) and "step_size_" not in vars(auto)


def test_device_auto_is_cuda_then_mps_then_cpu(small_digits, make_net, monkeypatch):
    """MPS can only be tested here by mocking its availability."""
    from autoclr._device import resolve_device

    X, y = small_digits
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert resolve_device("auto") == "mps"
    assert AutoCLR(make_net())._prepare(X, y)[0] == "mps"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert resolve_device("auto") == "cuda"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert resolve_device("auto") == "cpu"
    with pytest.raises(ValueError, match=r"device='mps' was asked for but Apple's MPS is "
                                         r"not available"):
        AutoCLR(make_net(), device="mps").fit(X, y)


def test_the_reading_is_scaled_to_a_test_as_long_as_the_fit(digits, make_net):
    X, _, y, _ = digits
    # 1,000 rows: the range test trains on 800 (13 batches of 64), 16 epochs = 208
    # iterations; the fit, 36 epochs of 800 rows under skorch's split, is 468
    # iterations, and the test at most a quarter of them: 117
    auto = AutoCLR(make_net(max_epochs=36), random_state=0).fit(X[:1000], y[:1000])
    rt, plan = auto.range_test_, auto.cycle_plan_
    assert rt.fit_iter == plan.n_iter == 468 and rt.n_iter == 117
    factor = (117 / 400) ** 0.5
    assert rt.bounds.length_factor == pytest.approx(factor)
    assert "Both scaled by 0.54" in repr(auto.suggestion_)
    public = range_test(make_net(max_epochs=36), X[:1000], y[:1000], random_state=0)
    assert public.fit_iter == 36 * 13  # max_epochs over the test's own training split
    assert public.n_iter == 117  # capped by the same quarter
    same = read_bounds(replace(rt, fit_iter=None), "accuracy")
    assert auto.max_lr_ == pytest.approx(factor * same.max_lr)
    assert auto.base_lr_ == pytest.approx(factor * same.base_lr)


def test_range_test_with_the_drawn_seed_is_autoclrs_test(small_digits, make_net):
    from sklearn.utils import check_random_state

    X, y = small_digits
    auto = AutoCLR(make_net(), random_state=0).fit(X, y)
    seed = int(check_random_state(0).randint(0, 2**31 - 1))  # as the docstring states
    same = range_test(make_net(), X, y, random_state=seed).with_bounds()
    np.testing.assert_array_equal(same.scores, auto.range_test_.scores)
    assert (same.bounds.base_lr, same.bounds.max_lr) == (auto.base_lr_, auto.max_lr_)
