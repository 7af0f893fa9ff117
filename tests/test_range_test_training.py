"""The range test trains as ``net.fit`` does: the net's own step, hooks, batches and params."""

import threading
import warnings

import numpy as np
import pytest
import torch
from skorch.callbacks import (
    Callback,
    Checkpoint,
    EarlyStopping,
    Freezer,
    GradientNormClipping,
    PrintLog,
)
from skorch.dataset import Dataset as SkorchDataset
from torch.utils.data import DataLoader, Subset

from autoclr import AutoCLR, BoundsWarning, range_test
from autoclr._range_test import _ArrayBatches
from autoclr.models import MLP


class Recorder(Callback):
    """Records which hooks the range test calls, and the largest gradient norm seen."""

    def initialize(self):
        self.calls_ = {}
        self.max_norm_ = 0.0
        return self

    def _count(self, name):
        self.calls_[name] = self.calls_.get(name, 0) + 1

    def on_train_begin(self, net, **kwargs):
        self._count("on_train_begin")

    def on_epoch_begin(self, net, **kwargs):
        self._count("on_epoch_begin")

    def on_batch_begin(self, net, **kwargs):
        self._count("on_batch_begin")

    def on_batch_end(self, net, **kwargs):
        self._count("on_batch_end")

    def on_epoch_end(self, net, **kwargs):
        self._count("on_epoch_end")

    def on_train_end(self, net, **kwargs):
        self._count("on_train_end")

    def on_grad_computed(self, net, named_parameters, **kwargs):
        self._count("on_grad_computed")
        grads = [p.grad for _, p in named_parameters if p.grad is not None]
        norm = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g)
                                                     for g in grads]))
        self.max_norm_ = max(self.max_norm_, float(norm))


class ReportingLog(PrintLog):
    """A logger (a PrintLog): it would open its sink in ``initialize``."""

    initialized = 0

    def initialize(self):
        type(self).initialized += 1
        return super().initialize()


def _recorder(rt_net):
    return dict(rt_net.callbacks_)["rec"]


def test_callbacks_see_a_whole_lifecycle_and_reporting_ones_none(
        small_digits, make_net, monkeypatch):
    X, y = small_digits
    seen = []
    real_train_step = type(make_net()).train_step

    def spy(self, batch, **fit_params):
        seen.append(self)
        return real_train_step(self, batch, **fit_params)

    monkeypatch.setattr(type(make_net()), "train_step", spy)
    net = make_net(callbacks=[("rec", Recorder()), ("log", ReportingLog()),
                              ("stop", EarlyStopping(patience=1))])
    ReportingLog.initialized = 0
    result = range_test(net, X, y, n_iter=20, n_eval=5, random_state=0)
    rec = _recorder(seen[0])
    # 400 training rows in batches of 64: 7 batches a pass, 20 iterations = 3 passes,
    # two of them whole; then the end of the run
    assert rec.calls_ == {"on_train_begin": 1, "on_epoch_begin": 3, "on_batch_begin": 20,
                         "on_grad_computed": 20, "on_batch_end": 20, "on_epoch_end": 2,
                         "on_train_end": 1}
    assert len(seen) == 20 and len(result.lrs) == 20
    assert not hasattr(dict(net.callbacks)["rec"], "calls_")  # the user's is untouched
    # skorch's reporting callbacks (loggers, scorers, checkpoints, stopping) and the
    # defaults are left out of the test's net, not even initialised
    assert ReportingLog.initialized == 0
    assert [name for name, _ in seen[0].callbacks_] == ["rec"]


def test_frozen_layer_is_bitwise_unchanged(small_digits, make_net, monkeypatch):
    X, y = small_digits
    nets = []
    real = type(make_net()).initialize

    def keep(self):
        out = real(self)
        nets.append((self, {k: v.clone() for k, v in self.module_.state_dict().items()}))
        return out

    monkeypatch.setattr(type(make_net()), "initialize", keep)
    range_test(make_net(callbacks=[Freezer("net.0.*")]), X, y, n_iter=30, n_eval=5,
               random_state=0)
    rt_net, before = nets[-1]
    after = rt_net.module_.state_dict()
    assert torch.equal(after["net.0.weight"], before["net.0.weight"])
    assert torch.equal(after["net.0.bias"], before["net.0.bias"])
    assert not torch.equal(after["net.2.weight"], before["net.2.weight"])


def test_clipped_gradients_never_exceed_the_clip_value(small_digits, make_net, monkeypatch):
    X, y = small_digits
    recs = []
    real = Recorder.on_train_begin

    def keep(self, net, **kwargs):
        recs.append(self)
        return real(self, net, **kwargs)

    monkeypatch.setattr(Recorder, "on_train_begin", keep)
    net = make_net(callbacks=[("clip", GradientNormClipping(gradient_clip_value=0.05)),
                              ("rec", Recorder())])
    range_test(net, X, y, n_iter=40, n_eval=5, random_state=0)
    assert recs and 0 < recs[-1].max_norm_ <= 0.05 + 1e-6
    unclipped = make_net(callbacks=[("rec", Recorder())])
    range_test(unclipped, X, y, n_iter=40, n_eval=5, random_state=0)
    assert recs[-1].max_norm_ > 0.05  # without clipping the norm goes above it


class ScaledMLP(MLP):
    """An MLP whose forward takes a fit parameter."""

    def forward(self, X, scale=1.0):
        return super().forward(X) * scale


def test_fit_params_reach_every_range_test_step(small_digits, make_net):
    X, y = small_digits
    net = make_net(module=ScaledMLP, module__n_features=64, module__n_outputs=10)
    plain = range_test(net, X, y, n_iter=20, n_eval=5, random_state=0)
    scaled = range_test(net, X, y, n_iter=20, n_eval=5, random_state=0,
                        fit_params={"scale": 0.0})
    # logits times 0: every class equally likely, loss log(10) at every step
    np.testing.assert_allclose(scaled.losses, np.log(10), rtol=1e-5)
    assert not np.allclose(plain.losses, np.log(10), rtol=1e-3)


def test_autoclr_passes_fit_params_to_the_range_test(small_digits, make_net):
    X, y = small_digits
    # skorch passes fit_params to the train_split too: ValidSplit takes none
    net = make_net(module=ScaledMLP, module__n_features=64, module__n_outputs=10,
                   max_epochs=4, train_split=None)
    # a constant loss: nothing to read, the net's lr is the fallback, said loudly
    with pytest.warns(BoundsWarning, match="Using the net's lr"):
        auto = AutoCLR(net, range_test_iter=20, random_state=0).fit(X, y, scale=0.0)
    np.testing.assert_allclose(auto.range_test_.losses, np.log(10), rtol=1e-5)


def test_the_nets_iterator_settings_shape_the_range_test_batches(small_digits, make_net):
    X, y = small_digits
    sizes = []

    def collate(batch):
        sizes.append(len(batch))
        Xb = torch.as_tensor(np.stack([b[0] for b in batch]))
        yb = torch.as_tensor(np.stack([b[1] for b in batch]))
        return Xb, yb

    net = make_net(iterator_train__collate_fn=collate, batch_size=50)
    result = range_test(net, X, y, n_iter=12, n_eval=4, random_state=0)
    # the training split holds 400 rows: 8 batches of 50 per pass, through the collate_fn
    assert sizes[:12] == [50] * 12
    assert len(result.lrs) == 12


def test_array_path_gives_the_dataloaders_batches():
    X = np.arange(60, dtype=np.float32).reshape(30, 2)
    y = np.arange(30)
    idx = np.arange(5, 30)

    def loader():
        return DataLoader(Subset(SkorchDataset(X, y), idx), batch_size=8, shuffle=True,
                          generator=torch.Generator().manual_seed(3))

    fast, loader = _ArrayBatches(torch.as_tensor(X), torch.as_tensor(y), idx, loader()), loader()
    for _ in range(3):  # three passes, the generators advancing alike
        for (xa, ya), (xb, yb) in zip(fast, loader, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_reporting_and_stopping_callbacks_stay_out_of_the_throwaway_run(
        small_digits, make_net, tmp_path, capsys):
    X, y = small_digits
    stop = EarlyStopping(patience=1)
    net = make_net(callbacks=[Checkpoint(dirname=str(tmp_path)), stop], verbose=1)
    result = range_test(net, X, y, n_iter=20, n_eval=5, random_state=0)
    # EarlyStopping(patience=1) ends no range test: every iteration ran, to the end of
    # the ramp, and the curve was scored at every evaluation
    assert (result.stop_reason, len(result.lrs), result.n_iter) == ("completed", 20, 20)
    assert len(result.eval_lrs) == 5
    assert list(tmp_path.iterdir()) == []  # no checkpoint of the range test
    assert capsys.readouterr().out == ""  # no epoch table printed (PrintLog)
    assert not hasattr(stop, "best_score_")  # the user's callback was not used


def test_accelerate_net_works_end_to_end(small_digits, make_net):
    accelerate = pytest.importorskip("accelerate")
    from skorch import NeuralNetClassifier
    from skorch.hf import AccelerateMixin

    class AcceleratedNet(AccelerateMixin, NeuralNetClassifier):
        pass

    X, y = small_digits
    net = make_net(AcceleratedNet, module__hidden=64, max_epochs=6,
                   accelerator=accelerate.Accelerator(cpu=True))
    with pytest.warns(UserWarning, match="leaves room for 1 cycle"):
        auto = AutoCLR(net, range_test_iter=60, random_state=0).fit(X, y)
    assert auto.net_.device is None  # placement left to the accelerator
    assert 0 < auto.base_lr_ < auto.max_lr_
    lrs = auto.net_.history[:, "batches", :, "event_lr"]
    assert max(max(e) for e in lrs) == pytest.approx(auto.max_lr_, rel=0.2)
    assert auto.score(X, y) > 0.5


def test_warnings_of_fits_in_threads_reach_their_own_callers(small_digits, make_net):
    """No fit changes the process-wide warning filters (no catch_warnings in autoclr)."""
    X, y = small_digits
    before = list(warnings.filters)
    errors = []

    def fit():
        try:
            AutoCLR(make_net(max_epochs=4), range_test_iter=30, random_state=0).fit(X, y)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        filters = list(warnings.filters)
        threads = [threading.Thread(target=fit) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert warnings.filters == filters  # untouched while the fits ran
    assert not errors
    # each fit warned about its short budget (2 x 2-epoch half cycles in 4 epochs)
    short = [w for w in caught if "leaves room for" in str(w.message)]
    assert len(short) == 3
    assert all(w.filename.endswith("test_range_test_training.py") for w in short)
    assert warnings.filters == before


def test_the_scores_of_the_class_prior_are_recorded(make_net):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(500, 64)).astype(np.float32)
    y = np.r_[np.ones(50), np.zeros(450)].astype(np.int64)  # 10 % positives
    result = range_test(make_net(module__n_outputs=2), X, y, n_iter=20, random_state=0)
    # the held-out 100 are stratified: 90 negatives, 10 positives
    assert result.n_valid == 100
    assert result.baseline_score == pytest.approx(0.9)
    assert result.baseline_loss == pytest.approx(-(0.9 * np.log(0.9) + 0.1 * np.log(0.1)))
    weighted = make_net(module__n_outputs=2, criterion__weight=torch.tensor([1.0, 9.0]))
    assert range_test(weighted, X, y, n_iter=20, random_state=0).baseline_loss is None
    regressor = range_test(make_net("regressor"), X[:, :8], rng.normal(size=(500, 1)).astype(
        np.float32), n_iter=20, random_state=0)
    assert regressor.baseline_score is None and regressor.baseline_loss is None
