"""Faults and state: Ctrl-C, the user's net, determinism, persistence, global state, parallel."""

import io
import pickle
import subprocess
import sys
import textwrap
import warnings

import joblib
import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import EpochScoring
from torch import nn

from autoclr import AutoCLR
from autoclr.models import MLP

torch.set_num_threads(1)


class InterruptAfter(nn.Module):
    """An MLP whose forward raises KeyboardInterrupt (Ctrl-C) on its ``stop_at``-th call."""

    calls = 0
    stop_at = None

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10))

    def forward(self, X):
        cls = type(self)
        cls.calls += 1
        if cls.stop_at is not None and cls.calls == cls.stop_at:
            raise KeyboardInterrupt
        return self.net(X)


@pytest.fixture
def interrupt_after():
    def arm(n):
        InterruptAfter.calls, InterruptAfter.stop_at = 0, n

    yield arm
    InterruptAfter.calls, InterruptAfter.stop_at = 0, None


#: a small, quick net: batches of 32, 4 epochs, no validation split
SMALL = dict(module__hidden=16, batch_size=32, max_epochs=4, train_split=None)


def net_state(net):
    """Everything a user could notice about a net object."""
    return pickle.dumps(net), set(vars(net))


@pytest.fixture
def data(small_digits):
    X, y = small_digits
    return X[:320], y[:320]


# ------------------------------------------------------------ Ctrl-C
def test_ctrl_c_in_the_range_test_propagates_and_leaves_nothing(data, interrupt_after,
                                                                make_net):
    X, y = data
    net = make_net(module=InterruptAfter, batch_size=32, max_epochs=4,
                   train_split=None)
    before = net_state(net)
    auto = AutoCLR(net, range_test_iter=40, random_state=0)
    interrupt_after(10)  # inside the range test (40 iterations)
    with pytest.raises(KeyboardInterrupt):
        auto.fit(X, y)
    assert InterruptAfter.calls == 10
    assert net_state(net) == before and not net.initialized_
    with pytest.raises(NotFittedError):
        check_is_fitted(auto)  # no half-set classes_ / n_features_in_ either
    with pytest.raises(NotFittedError):
        auto.predict(X)
    # a second fit works
    interrupt_after(None)
    auto.fit(X, y)
    assert auto.predict(X).shape == (len(X),)
    assert net_state(net) == before


def test_ctrl_c_in_the_final_fit_is_swallowed_by_skorch_and_documented(data, interrupt_after,
                                                                        make_net):
    X, y = data
    net = make_net(module=InterruptAfter, batch_size=32, max_epochs=4,
                   train_split=None)
    before = net_state(net)
    auto = AutoCLR(net, range_test_iter=40, step_size=10, random_state=0)
    # count the range test's forward calls (suggest runs the same range test),
    # then stop the fit (10 batches per epoch) at its 25th batch, in epoch 3
    interrupt_after(None)
    auto.suggest(X, y)
    range_test_calls = InterruptAfter.calls
    assert range_test_calls >= 40
    interrupt_after(range_test_calls + 25)
    with pytest.warns(UserWarning, match=r"Training stopped after 24 of 40 iterations, in "
                                         r"epoch 3 of 4 \(interrupted"):
        auto.fit(X, y)
    # the documented state: fitted, net_ as it stopped
    check_is_fitted(auto)
    assert len(auto.net_.history) == 3
    assert "train_loss" not in auto.net_.history[-1]  # the third epoch never ended
    assert auto.predict(X).shape == (len(X),)
    assert net_state(net) == before
    # fit again trains from scratch, to the end
    interrupt_after(None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto.fit(X, y)
    assert not [w for w in caught if "Training stopped" in str(w.message)]
    assert len(auto.net_.history) == 4


# ------------------------------------------------------------ the user's net
@pytest.mark.parametrize("failing", [False, True], ids=["success", "failure"])
@pytest.mark.parametrize("method", ["fit", "suggest"])
def test_user_net_is_bit_for_bit_unchanged(data, method, failing, make_net):
    X, y = data
    module = MLP(n_features=64, n_outputs=10, hidden=16)
    callback = EpochScoring("accuracy", on_train=True, name="train_acc")
    net = make_net(module=module, batch_size=32, max_epochs=4, train_split=None,
                   callbacks=[("train_acc", callback)])
    before = net_state(net)
    weights = {k: v.clone() for k, v in module.state_dict().items()}
    cb_vars = dict(vars(callback))
    auto = AutoCLR(net, range_test_iter=16, random_state=0)
    if failing:
        with pytest.raises(ValueError):
            getattr(auto, method)(X, np.where(np.isin(y, [0]), np.nan, y))
    else:
        with pytest.warns(UserWarning, match="leaves room for"):  # 4 epochs: 1 cycle
            getattr(auto, method)(X, y)
    assert net_state(net) == before
    assert not net.initialized_ and not hasattr(net, "module_")
    for k, v in module.state_dict().items():
        assert torch.equal(v, weights[k])
    assert vars(callback).keys() == cb_vars.keys()
    assert net.callbacks == [("train_acc", callback)]


# ------------------------------------------------------------ determinism and persistence
@pytest.fixture(scope="module")
def fitted(small_digits, make_net):
    X, y = small_digits
    with pytest.warns(UserWarning, match="leaves room for"):  # SMALL's 4 epochs: 1 cycle
        return AutoCLR(make_net(**SMALL), range_test_iter=40, random_state=7).fit(X, y), X, y


def test_same_random_state_same_bounds_and_predictions(fitted, make_net):
    first, X, y = fitted
    with pytest.warns(UserWarning, match="leaves room for"):
        second = AutoCLR(make_net(**SMALL), range_test_iter=40, random_state=7).fit(X, y)
    with pytest.warns(UserWarning, match="leaves room for"):
        other = AutoCLR(make_net(**SMALL), range_test_iter=40, random_state=8).fit(X, y)
    assert (first.base_lr_, first.max_lr_) == (second.base_lr_, second.max_lr_)
    np.testing.assert_array_equal(first.predict_proba(X), second.predict_proba(X))
    assert not np.array_equal(first.predict_proba(X), other.predict_proba(X))


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_round_trip_predicts_identically(fitted, dump):
    auto, X, _ = fitted
    if dump == "pickle":
        restored = pickle.loads(pickle.dumps(auto))
    else:
        buffer = io.BytesIO()
        joblib.dump(auto, buffer)
        buffer.seek(0)
        restored = joblib.load(buffer)
    np.testing.assert_array_equal(restored.predict(X), auto.predict(X))
    np.testing.assert_array_equal(restored.predict_proba(X), auto.predict_proba(X))
    assert (restored.base_lr_, restored.max_lr_) == (auto.base_lr_, auto.max_lr_)


def test_clone_of_a_fitted_one_is_unfitted(fitted):
    auto, X, _ = fitted
    twin = clone(auto)
    with pytest.raises(NotFittedError):
        check_is_fitted(twin)
    with pytest.raises(NotFittedError):
        twin.predict(X)
    assert twin.get_params()["random_state"] == 7


def test_fit_leaves_torch_global_state_as_it_was(data, make_net):
    X, y = data
    torch.manual_seed(123)
    rng_state = torch.get_rng_state()
    threads = torch.get_num_threads()
    dtype = torch.get_default_dtype()
    with pytest.warns(UserWarning, match="leaves room for"):
        AutoCLR(make_net(**SMALL), range_test_iter=16, random_state=0).fit(X, y)
    assert torch.equal(torch.get_rng_state(), rng_state)
    assert torch.get_num_threads() == threads
    assert torch.get_default_dtype() == dtype
    # also with a random_state=None fit, which draws its seed from numpy
    with pytest.warns(UserWarning, match="leaves room for"):
        AutoCLR(make_net(**SMALL), range_test_iter=16).fit(X, y)
    assert torch.equal(torch.get_rng_state(), rng_state)


# ------------------------------------------------------------ parallel runs
@pytest.fixture(scope="module")
def grid_results(small_digits, make_net):
    X, y = small_digits
    X, y = X[:240], y[:240]

    def run(n_jobs, backend=None):
        search = GridSearchCV(
            AutoCLR(make_net(**{**SMALL, "max_epochs": 2}), range_test_iter=16, step_size=4,
                    random_state=0),
            {"policy": ["triangular", "triangular2"]}, cv=2, n_jobs=n_jobs,
            error_score="raise")
        # 2 epochs: 1 cycle; scikit-learn re-emits the workers' warnings in the caller
        with pytest.warns(UserWarning, match="leaves room for"):
            if backend is None:
                search.fit(X, y)
            else:
                with joblib.parallel_backend(backend, n_jobs=n_jobs):
                    search.fit(X, y)
        return search.cv_results_["mean_test_score"], search.cv_results_["split0_test_score"]

    return run, run(1)


@pytest.mark.parametrize("backend", ["loky", "threading"])
def test_grid_search_in_parallel_matches_sequential(grid_results, backend):
    run, sequential = grid_results
    parallel = run(2, backend)
    np.testing.assert_array_equal(parallel[0], sequential[0])
    np.testing.assert_array_equal(parallel[1], sequential[1])


MAIN_SCRIPT = textwrap.dedent("""
    import pickle, sys
    import numpy as np, torch
    from torch import nn
    from skorch import NeuralNetClassifier
    from autoclr import AutoCLR

    class MyModule(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 2)

        def forward(self, X):
            return self.lin(X)

    if __name__ == "__main__":
        X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
        y = np.arange(40) % 2
        net = NeuralNetClassifier(MyModule, criterion=nn.CrossEntropyLoss, batch_size=8,
                                  max_epochs=2, train_split=None, verbose=0)
""")


LOADER = textwrap.dedent("""
    import pickle, sys
    import numpy as np
    X = np.random.RandomState(0).rand(40, 4).astype(np.float32)
    auto = pickle.load(open(sys.argv[1], "rb")).fit(X, np.arange(40) % 2)
    print(type(auto.net_.module_).__name__, auto.base_lr_, auto.max_lr_, auto.step_size_,
          len(auto.net_.history), len(auto.predict(X)))
    try:
        pickle.load(open(sys.argv[2], "rb"))
    except AttributeError as exc:
        print(exc)
""")


def test_module_class_from_main_in_another_program(tmp_path):
    """A module class defined in the script's ``__main__`` is stored by name by pickle.

    An unfitted AutoCLR (what GridSearchCV's process workers receive) travels by
    value and works in another program; a fitted one cannot (skorch stores the
    module with torch.save, by name) and the error says so and what to do.
    """
    script = tmp_path / "train.py"
    script.write_text(MAIN_SCRIPT + textwrap.indent(textwrap.dedent("""
        auto = AutoCLR(net, base_lr=0.01, max_lr=0.1, step_size=5)
        pickle.dump(auto, open(sys.argv[1], "wb"))
        pickle.dump(auto.fit(X, y), open(sys.argv[2], "wb"))
    """), "    "))
    unfitted, fitted = tmp_path / "unfitted.pkl", tmp_path / "fitted.pkl"
    subprocess.run([sys.executable, str(script), str(unfitted), str(fitted)],
                   check=True, timeout=120)
    load = subprocess.run([sys.executable, "-c", LOADER, str(unfitted),
                           str(fitted)], capture_output=True, timeout=120)
    assert load.returncode == 0, load.stderr.decode()[-2000:]
    fit, message = load.stdout.decode().split("\n", 1)
    # the unfitted one, with its __main__ module class and its parameters, fitted and
    # predicted there: 40 samples in batches of 8 -> step_size 5, one cycle in 2 epochs
    assert fit == "MyModule 0.01 0.1 5 2 40"
    assert "defined MyModule in its __main__ script" in message
    assert "Define MyModule in an importable module" in message


def test_module_class_from_main_that_cannot_travel_says_what_to_do(small_digits, monkeypatch,
                                                                   make_net):
    """When even the by-value copy fails, the error names the class and the fix."""
    import autoclr._persistence as persistence_module

    class Refusing:
        @staticmethod
        def dumps(obj):
            raise TypeError("cannot pickle '_thread.lock' object")

    class MainModule(MLP):
        pass

    MainModule.__module__ = "__main__"
    monkeypatch.setattr(persistence_module, "_cloudpickle", lambda: Refusing)
    auto = AutoCLR(make_net(module=MainModule, module__n_features=64, module__n_outputs=10))
    with pytest.raises(pickle.PicklingError, match=r"MainModule defined in the __main__ "
                                                   r"script.*importable module"):
        pickle.dumps(auto)


def test_pickling_a_main_module_net_leaves_the_estimator_as_it_was(make_net):
    class MainModule(MLP):
        pass

    MainModule.__module__ = "__main__"  # as if defined in the user's script
    net = make_net(module=MainModule, module__n_features=64, module__n_outputs=10)
    auto = AutoCLR(net, policy="triangular")
    payload = pickle.dumps(auto)
    assert auto.net is net  # nothing in the estimator was replaced
    restored = pickle.loads(payload)  # by value: no lookup of __main__.MainModule
    assert restored.net.module.__name__ == "MainModule"
    assert restored.get_params()["policy"] == "triangular"
