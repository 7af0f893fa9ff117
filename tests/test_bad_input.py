"""Bad input: a clear error, naming the problem and the parameter, before any training.

"Before any training" is checked by counting the forward calls of the module
(the range test and the fit both go through ``forward``). The inputs that
must *work* (pandas, float64, tensors, a Dataset, image arrays) are at the end.
"""

import numpy as np
import pytest
import torch
from skorch import NeuralNetClassifier
from skorch.callbacks import LRScheduler
from skorch.dataset import ValidSplit
from torch import nn
from torch.utils.data import TensorDataset

from autoclr import AutoCLR
from autoclr.models import SmallCNN

N, D, K = 64, 8, 3


class CountingMLP(nn.Module):
    """A small MLP that counts its forward calls on the class."""

    forward_calls = 0

    def __init__(self, n_features=D, n_outputs=K, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(),
                                 nn.Linear(hidden, n_outputs))

    def forward(self, X):
        type(self).forward_calls += 1
        return self.net(X)


#: the nets of this file, for ``make_net`` (classifiers; regressors add
#: ``module__n_outputs=1``): the counting module, small batches, no validation split
COUNTING = dict(module=CountingMLP, batch_size=8, max_epochs=4, train_split=None)


@pytest.fixture
def data():
    rng = np.random.RandomState(0)
    X = rng.normal(size=(N, D)).astype(np.float32)
    y = np.arange(N) % K
    return X, y


@pytest.fixture(autouse=True)
def _count_forward_calls():
    CountingMLP.forward_calls = 0
    yield


def _set(X, index, value):
    X = X.copy()
    X[index] = value
    return X


def _y_float_nan(y):
    y = y.astype(float)
    y[3] = np.nan
    return y


# (id, AutoCLR kwargs, net kwargs, net kind, data transform, exception, message regex)
CASES = [
    ("X-nan", {}, {}, "classifier", lambda X, y: (_set(X, (0, 0), np.nan), y),
     ValueError, r"Input X contains NaN"),
    ("X-inf", {}, {}, "classifier", lambda X, y: (_set(X, (1, 2), np.inf), y),
     ValueError, r"Input X contains infinity"),
    ("y-nan-classifier", {}, {}, "classifier", lambda X, y: (X, _y_float_nan(y)),
     ValueError, r"Input y contains NaN"),
    ("y-nan-regressor", {}, {}, "regressor", lambda X, y: (X, _y_float_nan(y)),
     ValueError, r"Input y contains NaN"),
    ("X-y-lengths", {}, {}, "classifier", lambda X, y: (X, y[:-1]),
     ValueError, r"X and y have different lengths: X has 64 samples, y has 63"),
    ("y-single-class", {}, {}, "classifier", lambda X, y: (X, np.zeros_like(y)),
     ValueError, r"y has only one class \(0\)"),
    ("y-continuous-classifier", {}, {}, "classifier", lambda X, y: (X, X[:, 0]),
     ValueError, r"Unknown label type: continuous"),
    ("y-2d-classifier", {}, {}, "classifier", lambda X, y: (X, np.c_[y, y]),
     ValueError, r"y must be 1-d class labels for a classifier, got shape \(64, 2\)"),
    ("y-none", {}, {}, "classifier", lambda X, y: (X, None),
     ValueError, r"requires y to be passed, but the target y is None"),
    ("X-1d", {}, {}, "classifier", lambda X, y: (X[:, 0], y),
     ValueError, r"Expected 2D array, got 1D array"),
    ("X-empty", {}, {}, "classifier", lambda X, y: (X[:0], y[:0]),
     ValueError, r"Found array with 0 sample\(s\)"),
    ("n_samples-below-any-split", {}, {}, "classifier", lambda X, y: (X[:6], y[:6]),
     ValueError, r"n_samples=6 is too small: AutoCLR needs at least 10 samples"),
    ("too-few-for-valid-split", {"valid_size": 0.005}, {}, "classifier", None,
     ValueError, r"valid_size=0.005 leaves 0 of n_samples=64 samples"),
    ("valid_size-above-1", {"valid_size": 1.5}, {}, "classifier", None,
     ValueError, r"valid_size must be in \(0, 1\), got 1.5"),
    ("lr_range-reversed", {"lr_range": (1.0, 1e-3)}, {}, "classifier", None,
     ValueError, r"lr_range must be a pair \(low, high\) with 0 < low < high, got \(1.0, 0.001\)"),
    ("lr_range-not-positive", {"lr_range": (0.0, 1.0)}, {}, "classifier", None,
     ValueError, r"lr_range must be a pair \(low, high\) with 0 < low < high, got \(0.0, 1.0\)"),
    ("lr_range-not-a-pair", {"lr_range": (1e-5,)}, {}, "classifier", None,
     ValueError, r"lr_range must be a pair \(low, high\)"),
    ("step_size_factor-below-2", {"step_size_factor": 1}, {}, "classifier", None,
     ValueError, r"step_size_factor must be 'auto' or an int in \[2, 10\], got 1\."),
    ("step_size_factor-above-10", {"step_size_factor": 11}, {}, "classifier", None,
     ValueError, r"step_size_factor must be 'auto' or an int in \[2, 10\], got 11\."),
    ("step_size-zero", {"step_size": 0}, {}, "classifier", None,
     ValueError, r"step_size must be 'auto' or a positive int, got 0\."),
    ("step_size-negative", {"step_size": -4}, {}, "classifier", None,
     ValueError, r"step_size must be 'auto' or a positive int, got -4\."),
    ("n_cycles-zero", {"n_cycles": 0}, {}, "classifier", None,
     ValueError, r"n_cycles must be 'auto' or a positive int or None, got 0\."),
    ("n_cycles-float", {"n_cycles": 2.5}, {}, "classifier", None,
     ValueError, r"n_cycles must be 'auto' or a positive int or None, got 2\.5\."),
    ("n_cycles-string", {"n_cycles": "max"}, {}, "classifier", None,
     ValueError, r"n_cycles must be 'auto' or a positive int or None, got 'max'\."),
    ("n_cycles-does-not-fit", {"n_cycles": 5}, {}, "classifier", None,
     ValueError, r"n_cycles=5 needs 20 epochs .* max_epochs=4 holds 1\."),
    ("cycle_tol-negative", {"cycle_tol": -0.1}, {}, "classifier", None,
     ValueError, r"cycle_tol must be a float >= 0, got -0\.1\."),
    ("cycle_monitor-unknown", {"cycle_monitor": "valid_accuracy"}, {}, "classifier", None,
     ValueError, r"cycle_monitor must be one of .*got 'valid_accuracy'\. Did you mean "
                 r"'valid_acc'\?"),
    ("cycle_monitor-valid-without-split", {"cycle_monitor": "valid_loss"}, {}, "classifier", None,
     ValueError, r"cycle_monitor='valid_loss' needs a validation split, but the net has "
                 r"train_split=None"),
    ("cycle_monitor-valid_acc-regressor", {"cycle_monitor": "valid_acc"},
     {"train_split": ValidSplit(5)}, "regressor", None,
     ValueError, r"cycle_monitor='valid_acc' needs a classifier; the net is a "
                 r"NeuralNetRegressor"),
    ("warm_start-not-bool", {"warm_start": 1}, {}, "classifier", None,
     ValueError, r"warm_start must be True or False, got 1\."),
    ("one_cycle-with-step_size", {"policy": "one_cycle", "step_size": 8}, {}, "classifier", None,
     ValueError, r"step_size=8 does not apply to policy='one_cycle'"),
    ("one_cycle-with-step_size_factor", {"policy": "one_cycle", "step_size_factor": 2}, {},
     "classifier", None, ValueError, r"step_size_factor=2 does not apply to policy='one_cycle'"),
    ("one_cycle-with-auto-n_cycles", {"policy": "one_cycle", "n_cycles": "auto"}, {}, "classifier",
     None, ValueError, r"n_cycles='auto' does not apply to policy='one_cycle'"),
    ("policy-unknown", {"policy": "triangle"}, {}, "classifier", None,
     ValueError, r"policy must be one of .*got 'triangle'\. Did you mean 'triangular'\?"),
    ("detection-unknown", {"detection": "acc"}, {}, "classifier", None,
     ValueError, r"detection must be one of \('accuracy', 'valid_loss', 'loss'\), got 'acc'"),
    ("ramp-unknown", {"ramp": "log"}, {}, "classifier", None,
     ValueError, r"ramp must be one of \('exp', 'linear'\), got 'log'"),
    ("gamma-zero", {"policy": "exp_range", "gamma": 0}, {}, "classifier", None,
     ValueError, r"gamma must be 'auto' or in \(0, 1\], got 0"),
    ("gamma-above-1", {"policy": "exp_range", "gamma": 1.5}, {}, "classifier", None,
     ValueError, r"gamma must be 'auto' or in \(0, 1\], got 1.5"),
    ("base_lr-above-max_lr", {"base_lr": 0.1, "max_lr": 0.01}, {}, "classifier", None,
     ValueError, r"base_lr must be below max_lr, got base_lr=0.1 and max_lr=0.01"),
    ("base_lr-equals-max_lr", {"base_lr": 0.1, "max_lr": 0.1}, {}, "classifier", None,
     ValueError, r"base_lr must be below max_lr"),
    ("base_lr-negative", {"base_lr": -0.1}, {}, "classifier", None,
     ValueError, r"base_lr must be a positive float or None, got -0.1"),
    ("max_lr-nan", {"max_lr": float("nan")}, {}, "classifier", None,
     ValueError, r"max_lr must be a positive float or None, got nan"),
    ("max_lr-string", {"max_lr": "0.1"}, {}, "classifier", None,
     ValueError, r"max_lr must be a positive float or None, got '0.1'"),
    ("optimizer-without-momentum", {"cycle_momentum": True},
     {"optimizer": torch.optim.Adagrad}, "classifier", None,
     ValueError, r"cycle_momentum=True needs an optimizer with momentum or betas; "
                 r"Adagrad has neither"),
    ("momentum-zero", {"cycle_momentum": True}, {"optimizer__momentum": 0.0}, "classifier", None,
     ValueError, r"cycle_momentum=True, but the optimizer's momentum is 0"),
    ("cycle_momentum-not-bool", {"cycle_momentum": "yes"}, {}, "classifier", None,
     ValueError, r"cycle_momentum must be True or False, got 'yes'"),
    ("lr-scheduler-in-callbacks", {},
     {"callbacks": [("sched", LRScheduler(policy="StepLR", step_size=1))]}, "classifier", None,
     ValueError, r"net.callbacks holds an LR scheduler \('sched'\)"),
    ("range_test_iter-too-small", {"range_test_iter": 4}, {}, "classifier", None,
     ValueError, r"range_test_iter must be 'auto' or an int >= 8, got 4"),
    ("random_state-string", {"random_state": "abc"}, {}, "classifier", None,
     ValueError, r"random_state must be None, an int or a numpy RandomState, got 'abc'"),
    ("verbose-negative", {"verbose": -1}, {}, "classifier", None,
     ValueError, r"verbose must be an int >= 0, got -1"),
    ("net-prefix-typo", {}, {"modul__hidden": 4}, "classifier", None,
     ValueError, r"unexpected argument\(s\) modul__hidden\. Either you made a typo"),
]


@pytest.mark.parametrize("auto_kw, net_kw, kind, transform, exc, match",
                         [pytest.param(*case[1:], id=case[0]) for case in CASES])
def test_bad_input_is_rejected_before_training(data, auto_kw, net_kw, kind, transform, exc,
                                               match, make_net):
    X, y = data if transform is None else transform(*data)
    if kind == "regressor":
        y = None if y is None else np.asarray(y, dtype=float)
        net_kw = {"module__n_outputs": 1, **net_kw}
    net = make_net(kind, **{**COUNTING, **net_kw})
    auto = AutoCLR(net, **{"range_test_iter": 16, "random_state": 0, **auto_kw})
    with pytest.raises(exc, match=match):
        auto.fit(X, y)
    assert CountingMLP.forward_calls == 0, "the error came after training had started"
    assert not hasattr(auto, "net_") and not hasattr(auto, "n_features_in_")
    assert not hasattr(auto, "classes_")
    # suggest() validates the same way
    with pytest.raises(exc, match=match):
        auto.suggest(X, y)
    assert CountingMLP.forward_calls == 0


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_is_rejected_before_training(data, make_net):
    auto = AutoCLR(make_net(**COUNTING), device="cuda", random_state=0)
    with pytest.raises(ValueError, match=r"device='cuda' was asked for but CUDA is not "
                                         r"available; use device='auto' or 'cpu'"):
        auto.fit(*data)
    assert CountingMLP.forward_calls == 0


@pytest.mark.parametrize("net, got", [
    (NeuralNetClassifier, "the class NeuralNetClassifier"),
    (CountingMLP(), "CountingMLP"),
    (None, "NoneType"),
], ids=["a-class", "a-torch-module", "None"])
def test_net_must_be_a_skorch_net_instance(data, net, got):
    with pytest.raises(TypeError, match=rf"net must be a skorch net instance such as "
                                        rf"NeuralNetClassifier\(MyModule, \.\.\.\), got {got}"):
        AutoCLR(net).fit(*data)
    assert CountingMLP.forward_calls == 0


def test_predict_with_the_wrong_number_of_features(data, make_net):
    X, y = data
    auto = AutoCLR(make_net(**COUNTING), base_lr=0.01, max_lr=0.1, random_state=0).fit(X, y)
    with pytest.raises(ValueError, match=r"X has 5 features, but AutoCLR is expecting 8"):
        auto.predict(X[:, :5])


@pytest.mark.parametrize("key, invalid, suggestion", [
    ("polcy", "polcy", "policy"),
    ("step_size_factr", "step_size_factr", "step_size_factor"),
    ("nett__lr", "nett", "net__lr"),
    ("net__lrr", "net__lrr", "net__lr"),
    ("net__max_epoch", "net__max_epoch", "net__max_epochs"),
])
def test_set_params_typo_suggests_the_closest_name(key, invalid, suggestion, make_net):
    auto = AutoCLR(make_net(**COUNTING))
    with pytest.raises(ValueError, match=rf"Invalid parameter '{invalid}'.*"
                                         rf"Did you mean '{suggestion}'\?"):
        auto.set_params(**{key: 1})
    assert auto.get_params()["policy"] == "auto"  # nothing was set


def test_set_params_sub_parameter_of_a_plain_parameter(make_net):
    with pytest.raises(ValueError, match=r"'policy' has no sub-parameters"):
        AutoCLR(make_net(**COUNTING)).set_params(policy__mode="x")


# ------------------------------------------------------------------ must work
def _fit_predict(auto, X, y, X_pred):
    auto.fit(X, y)
    pred = auto.predict(X_pred)
    assert len(pred) == len(X_pred)
    # the counting module did all the work: every step of the range test, at least
    # one batch per evaluation, every step of the fit and the prediction's batches
    rt, batch_size = auto.range_test_, auto.net_.batch_size
    least = (len(rt.lrs) + len(rt.scores) + auto.cycle_plan_.n_iter
             + -(-len(X_pred) // batch_size))
    assert CountingMLP.forward_calls >= least
    return pred


def test_only_one_bound_given_detects_the_other(data, make_net):
    X, y = data
    auto = AutoCLR(make_net(**COUNTING), base_lr=1e-4, range_test_iter=32, random_state=0)
    auto.fit(X, y)
    assert auto.base_lr_ == 1e-4 and auto.max_lr_ > 1e-4
    assert auto.range_test_ is not None and auto.max_lr_ == auto.range_test_.bounds.max_lr


def test_pandas_dataframe_and_series(data, make_net):
    pd = pytest.importorskip("pandas")
    X, y = data
    columns = [f"f{i}" for i in range(D)]
    Xdf = pd.DataFrame(X, columns=columns)
    labels = pd.Series(np.array(["a", "b", "c"])[y])
    auto = AutoCLR(make_net(**COUNTING), range_test_iter=16, random_state=0)
    pred = _fit_predict(auto, Xdf, labels, Xdf)
    assert set(pred) <= {"a", "b", "c"}
    np.testing.assert_array_equal(auto.feature_names_in_, columns)
    np.testing.assert_array_equal(auto.predict(X), pred)  # same numbers as an array


def test_float64_arrays(data, make_net):
    X, y = data
    auto = AutoCLR(make_net(**COUNTING), range_test_iter=16, random_state=0)
    pred64 = _fit_predict(auto, X.astype(np.float64), y, X.astype(np.float64))
    auto32 = AutoCLR(make_net(**COUNTING), range_test_iter=16, random_state=0)
    pred32 = auto32.fit(X, y).predict(X)
    np.testing.assert_array_equal(pred64, pred32)  # cast to float32: the same fit


def test_torch_tensors(data, make_net):
    X, y = data
    auto = AutoCLR(make_net(**COUNTING), range_test_iter=16, random_state=0)
    pred = _fit_predict(auto, torch.from_numpy(X), torch.from_numpy(y), torch.from_numpy(X))
    ref = AutoCLR(make_net(**COUNTING), range_test_iter=16, random_state=0)
    ref = ref.fit(X, y).predict(X)
    np.testing.assert_array_equal(pred, ref)


def test_regressor_with_float64_targets(data, make_net):
    X, y = data
    target = (X[:, 0] + 0.5 * X[:, 1]).astype(np.float64)
    net = make_net("regressor", module__n_outputs=1, **COUNTING)
    auto = AutoCLR(net, range_test_iter=16, random_state=0)
    pred = _fit_predict(auto, X, target, X)
    assert pred.shape == (N,) and pred.dtype == np.float64


def test_torch_dataset_with_y_none(data, make_net):
    X, y = data
    dataset = TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    auto = AutoCLR(make_net(**COUNTING), range_test_iter=16, random_state=0)
    pred = _fit_predict(auto, dataset, None, X)
    assert set(np.unique(pred)) <= set(range(K))
    assert auto.range_test_.n_train + auto.range_test_.n_valid == N


def test_image_arrays_with_a_cnn(make_net):
    rng = np.random.RandomState(0)
    X = rng.normal(size=(48, 1, 8, 8)).astype(np.float32)
    y = np.arange(48) % 2
    # skorch's default optimizer: SGD without momentum
    net = make_net(module=SmallCNN, module__n_outputs=2, module__width=4, batch_size=8,
                   max_epochs=2, train_split=None, optimizer__momentum=0.0)
    auto = AutoCLR(net, range_test_iter=16, step_size=6, random_state=0).fit(X, y)
    assert auto.predict(X).shape == (48,)
    assert auto.predict_proba(X).shape == (48, 2)
