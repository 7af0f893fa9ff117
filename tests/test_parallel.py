"""AutoCLR inside scikit-learn: pipelines, loky searches, dask and ray back-ends."""

import os

import numpy as np
import pytest
import torch
from joblib import cpu_count, parallel_config
from sklearn.model_selection import GridSearchCV, RandomizedSearchCV, cross_validate
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from skorch.callbacks import Callback

from autoclr import AutoCLR


class Spy(Callback):
    """Remembers what the final fit saw: its X and torch's thread count."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        self.X_ = X
        self.threads_ = torch.get_num_threads()
        self.pid_ = os.getpid()


def _spy(auto):
    return dict(auto.net_.callbacks_)["spy"]


def _require(name):
    """Import an optional package; in CI (CI=true) it must be installed."""
    if os.environ.get("CI"):
        return __import__(name)
    return pytest.importorskip(name)


FAST = dict(range_test_iter=60, step_size_factor=2, random_state=0)


# ---------------------------------------------------------------- pipelines
def test_pipeline_with_float64_input(small_digits, make_net):
    X, y = small_digits
    X64 = X.astype(np.float64) * 16  # raw pixel scale; the scaler brings it back
    net = make_net(max_epochs=12, callbacks=[("spy", Spy())])
    pipe = Pipeline([("scale", StandardScaler()), ("clr", AutoCLR(net, **FAST))])
    pipe.fit(X64, y)
    seen = _spy(pipe.named_steps["clr"]).X_
    assert seen.dtype == np.float32 and seen.shape == X64.shape
    np.testing.assert_allclose(seen, StandardScaler().fit_transform(X64), rtol=1e-5,
                               atol=1e-6)
    assert pipe.score(X64, y) > 0.8
    assert pipe.predict(X64[:7]).shape == (7,)


def test_float32_input_reaches_the_net_without_a_copy(small_digits, make_net):
    X, y = small_digits
    assert X.dtype == np.float32 and X.flags.c_contiguous
    net = make_net(max_epochs=12, callbacks=[("spy", Spy())])
    auto = AutoCLR(net, **FAST).fit(X, y)
    seen = _spy(auto).X_
    assert np.shares_memory(seen, X)
    # float64 input is cast (a copy is unavoidable there)
    auto = AutoCLR(net, **FAST).fit(X.astype(np.float64), y)
    assert _spy(auto).X_.dtype == np.float32


# -------------------------------------------------------------------- loky
def test_loky_workers_limit_torch_threads_and_match_serial(small_digits, make_net):
    X, y = small_digits
    net = make_net(max_epochs=12, callbacks=[("spy", Spy())])
    serial = cross_validate(AutoCLR(net, **FAST), X, y, cv=2, n_jobs=1)
    par = cross_validate(AutoCLR(net, **FAST), X, y, cv=2, n_jobs=2, return_estimator=True)
    # joblib's loky backend starts each worker with OMP_NUM_THREADS = cores // n_jobs,
    # which torch follows: 2 workers never run more threads than there are cores
    expected = max(1, cpu_count() // 2)
    spies = [_spy(est) for est in par["estimator"]]
    assert {s.threads_ for s in spies} == {expected}
    assert all(s.pid_ != os.getpid() for s in spies)
    np.testing.assert_array_equal(par["test_score"], serial["test_score"])


# -------------------------------------------------------------------- dask
SEARCH_SPACE = {"policy": ["triangular", "triangular2", "exp_range"],
                "net__module__hidden": [8, 16, 32], "step_size_factor": [2, 3]}


def _search(make_net, X, y, backend=None):
    net = make_net(max_epochs=12, batch_size=16)  # enough batches to learn
    search = RandomizedSearchCV(AutoCLR(net, random_state=0),
                                SEARCH_SPACE, n_iter=4, cv=2, random_state=0, n_jobs=2)
    if backend is None:
        search.set_params(n_jobs=1)
        return search.fit(X, y)
    with parallel_config(backend=backend):
        return search.fit(X, y)


@pytest.fixture(scope="module")
def serial_search(small_digits, make_net):
    X, y = small_digits
    return _search(make_net, X[:300], y[:300])


def test_dask_search_matches_serial(small_digits, serial_search, make_net):
    distributed = _require("distributed")
    X, y = small_digits
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        with distributed.get_task_stream(client) as stream:
            search = _search(make_net, X[:300], y[:300], backend="dask")
        workers = set(client.scheduler_info()["workers"])
    # the 4 candidates x 2 folds really ran as tasks on the cluster (joblib batches
    # several fits into one task)
    assert len(stream.data) >= 2
    assert {task["worker"] for task in stream.data} <= workers and len(workers) == 2
    assert search.best_params_ == serial_search.best_params_
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  serial_search.cv_results_["mean_test_score"])
    assert search.best_estimator_.base_lr_ == serial_search.best_estimator_.base_lr_
    # the scores differ between candidates: "same best" is not a tie
    assert len(set(serial_search.cv_results_["mean_test_score"])) > 1


def test_threading_search_matches_serial(small_digits, serial_search, make_net):
    # fits in threads of one process, as on dask with processes=False: one fit's
    # predict must not draw from torch's global RNG while another fit is seeding it
    X, y = small_digits
    search = _search(make_net, X[:300], y[:300], backend="threading")
    assert search.best_params_ == serial_search.best_params_
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  serial_search.cv_results_["mean_test_score"])


def test_predict_leaves_torch_global_rng_alone(small_digits, make_net):
    X, y = small_digits
    auto = AutoCLR(make_net(max_epochs=12), **FAST).fit(X, y)
    state = torch.get_rng_state()
    auto.predict(X)
    auto.predict_proba(X[:10])
    auto.score(X, y)
    assert torch.equal(torch.get_rng_state(), state)


def test_loky_search_matches_serial(small_digits, serial_search, make_net):
    X, y = small_digits
    search = _search(make_net, X[:300], y[:300], backend="loky")  # n_jobs=2 worker processes
    assert search.best_params_ == serial_search.best_params_
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  serial_search.cv_results_["mean_test_score"])


def test_ray_search_matches_serial(small_digits, serial_search, make_net):
    ray = pytest.importorskip("ray", reason="ray is an optional extra (autoclr[ray])")
    from ray.util.joblib import register_ray

    X, y = small_digits
    register_ray()
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        search = _search(make_net, X[:300], y[:300], backend="ray")
    finally:
        ray.shutdown()
    assert search.best_params_ == serial_search.best_params_
    np.testing.assert_array_equal(search.cv_results_["mean_test_score"],
                                  serial_search.cv_results_["mean_test_score"])


def test_grid_search_over_net_params_refits_the_best(small_digits, make_net):
    X, y = small_digits
    net = make_net(max_epochs=12)
    grid = GridSearchCV(AutoCLR(net, **FAST), {"net__module__hidden": [4, 32]}, cv=2)
    grid.fit(X[:300], y[:300])
    assert grid.best_estimator_.net_.module_.net[0].out_features == \
        grid.best_params_["net__module__hidden"]
    assert net.module__hidden == 32 and not net.initialized_  # the user's net untouched


class Overlap(Callback):
    """Counts, for each training batch of the fit ``name`` (range test and final fit),
    whether the fit named ``other`` was training then: between its first batch and
    the end of its final fit. Class-level records: the net's callbacks are copied."""

    training = {}
    batches = {}

    def __init__(self, name="a", other="b"):
        self.name, self.other = name, other

    def on_batch_begin(self, net, training=False, **kwargs):
        if not training:
            return
        type(self).training[self.name] = True
        total, during = type(self).batches.get(self.name, (0, 0))
        type(self).batches[self.name] = (total + 1,
                                         during + bool(type(self).training.get(self.other)))

    def on_train_end(self, net, **kwargs):
        type(self).training[self.name] = False


def test_fits_in_threads_train_at_the_same_time(small_digits, make_net):
    """No process-wide lock is held across a fit: two fits in two threads (a dask
    worker's threads, joblib's threading backend) each run most of their batches
    while the other one is training (with a lock held for each whole fit, 14 % did)."""
    import threading

    X, y = small_digits
    Overlap.training, Overlap.batches = {}, {}
    fits = {name: AutoCLR(make_net(max_epochs=12, callbacks=[("overlap", Overlap(name, other))]),
                          **FAST)
            for name, other in (("a", "b"), ("b", "a"))}
    threads = [threading.Thread(target=fit.fit, args=(X, y)) for fit in fits.values()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(hasattr(fit, "net_") for fit in fits.values())
    for name in "ab":
        total, during = Overlap.batches[name]
        fit = fits[name]
        assert total == len(fit.range_test_.lrs) + fit.cycle_report_.n_iter
        assert during / total > 0.5, (name, total, during)
    # and each fit is the one a serial fit gives: an MLP draws nothing from torch's
    # global RNG while it trains, and its initialisation is seeded under the lock
    serial = AutoCLR(make_net(max_epochs=12), **FAST).fit(X, y)
    for fit in fits.values():
        assert fit.max_lr_ == serial.max_lr_
        np.testing.assert_array_equal(fit.predict_proba(X), serial.predict_proba(X))
