"""cycle_weights: the fitted net keeps its last weights, the best cycle end's, or their average."""

import numpy as np
import pytest
import torch
from skorch.callbacks import Callback
from torch import nn

from autoclr import AutoCLR
from autoclr._cycles import GATE


class EpochWeights(Callback):
    """Every epoch end's weights in the final fit (class-level: the net's callbacks are
    copied; the range test's passes are left out: its net has no cycle-end gate)."""

    seen = []

    def on_epoch_end(self, net, **kwargs):
        if GATE in dict(net.callbacks_):
            type(self).seen.append({k: v.detach().clone()
                                for k, v in net.module_.state_dict().items()})


def _fit(make_net, X, y, weights, **params):
    EpochWeights.seen = []
    net = make_net(max_epochs=12, callbacks=[("weights", EpochWeights())], **params)
    auto = AutoCLR(net, step_size_factor=2, cycle_weights=weights, random_state=0)
    return auto.fit(X, y), list(EpochWeights.seen)


def _cycle_end_weights(auto, epochs):
    plan = auto.cycle_plan_
    per_cycle = plan.cycle_iter // plan.iterations_per_epoch  # 4 epochs a cycle
    return [epochs[k * per_cycle - 1] for k in range(1, auto.n_cycles_run_ + 1)]


def test_best_keeps_the_cycle_end_with_the_best_validation_loss(small_digits, make_net):
    X, y = small_digits
    auto, epochs = _fit(make_net, X, y, "best")
    report = auto.cycle_report_
    assert auto.n_cycles_run_ == 3 and len(report.scores) == 3
    best = int(np.argmin(report.scores))
    assert report.kept_cycle == best + 1
    assert report.weights.startswith(f"best: the end of cycle {best + 1}")
    kept = _cycle_end_weights(auto, epochs)[best]
    for k, v in auto.net_.module_.state_dict().items():
        assert torch.equal(v, kept[k])
    # the scores are the history's valid_loss at the cycle ends
    losses = auto.net_.history[:, "valid_loss"]
    np.testing.assert_allclose(report.scores, [losses[3], losses[7], losses[11]])
    assert "weights: best" in repr(report)


def test_average_is_the_mean_of_the_cycle_end_weights(small_digits, make_net):
    X, y = small_digits
    auto, epochs = _fit(make_net, X, y, "average")
    ends = _cycle_end_weights(auto, epochs)
    assert len(ends) == 3
    for k, v in auto.net_.module_.state_dict().items():
        np.testing.assert_allclose(v.numpy(), torch.stack([e[k] for e in ends]).mean(0).numpy(),
                                   rtol=1e-5, atol=1e-7)
    assert auto.cycle_report_.weights == "average of the 3 cycle ends' weights"
    assert auto.score(X, y) > 0.8


class BNNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(64, 32), nn.BatchNorm1d(32), nn.ReLU(),
                                 nn.Linear(32, 10))

    def forward(self, X):
        return self.net(X)


def test_average_recomputes_batchnorm_statistics(small_digits, make_net):
    X, y = small_digits
    auto, _ = _fit(make_net, X, y, "average", module=BNNet)
    module = auto.net_.module_
    assert "BatchNorm statistics recomputed" in auto.cycle_report_.weights
    # the running mean is the mean over the training batches of the averaged first layer
    bn = module.net[1]
    train_idx = np.arange(len(X))  # recomputed on the net's training split: compare loosely
    with torch.no_grad():
        h = module.net[0](torch.as_tensor(X[train_idx]))
    np.testing.assert_allclose(bn.running_mean.numpy(), h.mean(0).numpy(), atol=0.05)
    assert bn.num_batches_tracked > 0


def test_last_keeps_the_last_weights(small_digits, make_net):
    X, y = small_digits
    auto, epochs = _fit(make_net, X, y, "last")
    assert auto.cycle_report_.weights == "last" and auto.cycle_report_.kept_cycle is None
    for k, v in auto.net_.module_.state_dict().items():
        assert torch.equal(v, epochs[-1][k])


@pytest.mark.parametrize("kind, split, weights, expected", [
    ("regressor", True, "auto", "best"),      # judged on the validation loss: its score
    ("classifier", True, "auto", "last"),     # cross-entropy also rewards calibration
    ("regressor", False, "auto", "last"),     # train_split=None: the training loss
    ("classifier", True, "best", "best"),     # any other value as given
    ("regressor", True, "average", "average"),
])
def test_auto_keeps_the_best_cycle_end_of_regressors_with_a_split(make_net, kind, split,
                                                                   weights, expected):
    from autoclr._keep import resolve_weights
    from autoclr._validation import resolve_monitor

    net = make_net(kind) if split else make_net(kind, train_split=None)
    assert resolve_weights(net, weights, resolve_monitor(net)) == expected


def test_auto_is_the_default(make_net):
    assert AutoCLR(make_net()).get_params()["cycle_weights"] == "auto"


def test_auto_on_a_regressor_keeps_the_best_cycle_end(small_digits, make_net):
    """A regressor with skorch's split that overfits (120 noisy rows, 6 cycles), default
    cycle_weights: the fitted net holds the weights of the cycle end with the lowest
    validation loss, an earlier one than the last; a classifier keeps its last."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 8)).astype(np.float32)
    y = (X[:, 0] + 2.0 * rng.normal(size=120)).astype(np.float32)
    EpochWeights.seen = []
    net = make_net("regressor", module__hidden=128, max_epochs=24,
                   callbacks=[("weights", EpochWeights())])
    auto = AutoCLR(net, step_size_factor=2, random_state=0).fit(X, y)
    report = auto.cycle_report_
    assert len(report.scores) == auto.n_cycles_run_ == 6
    best = int(np.argmin(report.scores)) + 1
    assert report.kept_cycle == best < 6
    assert report.weights.startswith(f"best: the end of cycle {best}")
    assert report.weights.endswith("(cycle_weights='auto': a regressor keeps its best "
                                   "cycle end)")
    ends = _cycle_end_weights(auto, list(EpochWeights.seen))
    for k, v in auto.net_.module_.state_dict().items():
        assert torch.equal(v, ends[best - 1][k])
    auto, _ = _fit(make_net, *small_digits, "auto")
    assert auto.cycle_report_.weights == "last" and auto.cycle_report_.kept_cycle is None


def test_an_unknown_choice_is_refused_before_training(small_digits, make_net):
    X, y = small_digits
    with pytest.raises(ValueError, match=r"cycle_weights must be one of \('auto', 'last', "
                                         r"'best', 'average'\), got 'bset'\. Did you mean "
                                         r"'best'\?"):
        AutoCLR(make_net(), cycle_weights="bset").fit(X, y)


def _net_at(value):
    from types import SimpleNamespace

    module = nn.Linear(1, 1)
    with torch.no_grad():
        module.weight.fill_(value)
    return SimpleNamespace(module_=module)


@pytest.mark.parametrize("scores, tol, kept, weight", [
    ((1.0, 0.5, 0.52), 0.01, 2, 2.0),    # cycle 2 better than the last by 4 %: restored
    ((1.0, 0.5, 0.502), 0.01, 3, 3.0),   # by 0.4 %, within cycle_tol: the last stays
    ((1.0, 0.5, 0.502), 0.0, 2, 2.0),    # tol 0: any improvement counts
    ((1.0, 0.6, 0.5), 0.01, 3, 3.0),     # the last is the best
])
def test_best_keeps_an_earlier_cycle_end_only_beyond_the_tolerance(scores, tol, kept, weight):
    text, cycle, held = _keep_best(scores, tol)
    assert cycle == kept
    assert held == weight
    assert text.startswith("best:")


def _keep_best(scores, tol):
    """Offer cycle ends 1, 2, ... (a one-weight net holding the cycle's number) with
    ``scores`` to a ``"best"`` keeper; what it said, its cycle, the weight it left."""
    from autoclr._keep import keeper

    keep = keeper("best", lower_is_better=True, tol=tol)
    net = _net_at(0.0)
    for cycle, score in enumerate(scores, 1):
        with torch.no_grad():
            net.module_.weight.fill_(float(cycle))
        keep.offer(net, score, cycle)
    text, cycle = keep.finish(net, None, None)
    return text, cycle, float(net.module_.weight.detach())


@pytest.mark.parametrize("scores, kept, weight, says", [
    ((float("nan"), 0.5, 0.6), 2, 2.0, "best: the end of cycle 2 (0.5)"),  # nan never wins
    ((0.5, 0.6, float("inf")), 1, 1.0, "the last cycle end (cycle 3) scored inf"),
    ((float("nan"),) * 3, None, 3.0, "last"),  # nothing finite to keep
])
def test_best_never_keeps_a_cycle_end_whose_loss_is_not_finite(scores, kept, weight, says):
    text, cycle, held = _keep_best(scores, tol=0.01)
    assert cycle == kept and held == weight
    assert says in text


def test_a_cycle_that_ends_inside_the_last_epoch_is_a_candidate(small_digits, make_net):
    """400 training rows in batches of 64 (7 an epoch), 3 epochs: one cycle of 20
    iterations, ending inside the third epoch (its last iteration at base_lr). No epoch
    end is a cycle end; the fit's end stands for it."""
    X, y = small_digits
    auto = AutoCLR(make_net(max_epochs=3), cycle_weights="best", random_state=0)
    with pytest.warns(UserWarning, match="leaves room for 1 cycle"):
        auto.fit(X, y)
    report = auto.cycle_report_
    assert auto.cycle_plan_.cycle_iter == 20 and report.n_iter == 21
    assert report.scores == () and report.kept_cycle == 1
    assert report.weights.startswith("best: the end of cycle 1, the last")


def test_a_warm_start_keeps_the_best_of_its_own_cycle_ends(regression_data, make_net):
    """A regressor's default "best" after a warm start: chosen among the continued fit's
    cycle ends (numbered on from the first fit's), not the first fit's."""
    X, y = regression_data
    auto = AutoCLR(make_net("regressor"), step_size_factor=2, warm_start=True,
                   random_state=0).fit(X, y)
    assert auto.cycle_report_.weights.startswith("best:") and auto.n_cycles_run_ == 3
    auto.fit(X, y)
    report = auto.cycle_report_
    assert report.weights.startswith("best:") and report.kept_cycle in (4, 5, 6)
    assert auto.n_cycles_run_ == 6
