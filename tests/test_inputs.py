"""What skorch takes, AutoCLR takes: every net class and input, with the same meaning.

Each case trains the same net under plain skorch (SGD at lr=0.1) and under
AutoCLR, on the same data, and asserts that AutoCLR trains it as well, with
the shapes, dtypes and labels skorch gives.
"""

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.preprocessing import StandardScaler
from skorch import NeuralNetBinaryClassifier, NeuralNetClassifier
from torch import nn

from autoclr import AutoCLR
from autoclr.models import MLP

COMMON = dict(criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD,
              optimizer__momentum=0.9, batch_size=32, max_epochs=12, verbose=0)


@pytest.fixture(scope="module")
def digits600():
    X, y = load_digits(return_X_y=True)
    return (X[:600] / 16).astype(np.float32), y[:600]


def _plain(net, X, y):
    """The same net under plain skorch, at a fixed lr=0.1, seeded."""
    torch.manual_seed(0)
    return net.set_params(lr=0.1).fit(X, y)


def test_binary_classifier_with_float_targets_and_its_threshold():
    X, y = load_breast_cancer(return_X_y=True)
    X = StandardScaler().fit_transform(X).astype(np.float32)
    labels = np.where(y == 1, "benign", "malignant")

    class Logit(nn.Module):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.Linear(30, 16), nn.ReLU(), nn.Linear(16, 1))

        def forward(self, X):
            return self.net(X).squeeze(-1)

    net = NeuralNetBinaryClassifier(Logit, optimizer=torch.optim.SGD, optimizer__momentum=0.9,
                                    batch_size=32, max_epochs=12, verbose=0)
    auto = AutoCLR(net, random_state=0).fit(X, labels)
    assert auto.classes_.tolist() == ["benign", "malignant"]
    proba = auto.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(1), 1, rtol=1e-6)
    assert set(auto.predict(X)) <= {"benign", "malignant"}
    plain = _plain(net, X, (y == 0).astype(np.float32))  # skorch's own encoding: 1 = 2nd class
    assert auto.score(X, labels) >= plain.score(X, (y == 0).astype(np.float32)) - 0.01
    assert auto.score(X, labels) > 0.95
    # the threshold is the net's: at 0.99 almost nothing is the second class
    strict = AutoCLR(net.set_params(threshold=0.99), base_lr=auto.base_lr_,
                     max_lr=auto.max_lr_, random_state=0).fit(X, labels)
    assert (strict.predict(X) == "malignant").sum() < (auto.predict(X) == "malignant").sum()
    with pytest.raises(ValueError, match="binary classifier, but y has 3 classes"):
        AutoCLR(net).fit(X, np.arange(len(X)) % 3)


class TwoInputs(nn.Module):
    def __init__(self, n_outputs=10):
        super().__init__()
        self.left, self.right = nn.Linear(32, 32), nn.Linear(32, 32)
        self.out = nn.Linear(64, n_outputs)

    def forward(self, left, right):
        return self.out(torch.relu(torch.cat([self.left(left), self.right(right)], 1)))


def test_a_dict_of_named_inputs_reaches_forward(digits600):
    X, y = digits600
    Xd = {"left": X[:, :32], "right": X[:, 32:]}
    net = NeuralNetClassifier(TwoInputs, **COMMON)
    auto = AutoCLR(net, random_state=0).fit(Xd, y)
    assert auto.predict_proba(Xd).shape == (len(y), 10)
    assert auto.score(Xd, y) >= _plain(net, Xd, y).score(Xd, y) - 0.02
    assert not hasattr(auto, "n_features_in_")
    with pytest.raises(ValueError, match="inputs in X have different lengths"):
        AutoCLR(net).fit({"left": X[:, :32], "right": X[:-1, 32:]}, y)
    with pytest.raises(ValueError, match="X has 600 samples, y has 599"):
        AutoCLR(net).fit(Xd, y[:-1])


class WeightedNet(NeuralNetClassifier):
    """skorch's documented way to sample weights: in a dict X, read by get_loss."""

    def get_loss(self, y_pred, y_true, X=None, training=False):
        loss = nn.functional.cross_entropy(y_pred, y_true.long(), reduction="none")
        return (loss * X["weight"]).mean()


class Features(nn.Module):
    def __init__(self):
        super().__init__()
        self.mlp = MLP(n_features=64, n_outputs=10, hidden=32)

    def forward(self, data, weight):
        return self.mlp(data)


def test_sample_weights_in_a_dict_reach_get_loss(digits600):
    X, y = digits600
    no_threes = (y != 3).astype(np.float32)  # the 3s weigh nothing
    Xd = {"data": X, "weight": no_threes}
    net = WeightedNet(Features, **COMMON)
    auto = AutoCLR(net, random_state=0).fit(Xd, y)
    plain = AutoCLR(net, random_state=0).fit({"data": X, "weight": np.ones_like(no_threes)}, y)
    recall = [np.mean(a.predict(Xd)[y == 3] == 3) for a in (auto, plain)]
    assert recall[0] < 0.2 < 0.9 < recall[1]  # the weights reached every step
    assert np.mean(auto.predict(Xd)[y != 3] == y[y != 3]) > 0.9


def test_integer_token_ids_keep_their_dtype_for_an_embedding(digits600):
    X, y = digits600
    tokens = (X * 16).astype(np.int64)

    class Bag(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed, self.out = nn.EmbeddingBag(17, 16), nn.Linear(16, 10)
            self.dtypes = set()

        def forward(self, X):
            self.dtypes.add(X.dtype)
            return self.out(self.embed(X))

    net = NeuralNetClassifier(Bag, **COMMON)
    auto = AutoCLR(net, random_state=0).fit(tokens, y)
    assert auto.net_.module_.dtypes == {torch.int64}
    assert auto.n_features_in_ == 64
    assert auto.score(tokens, y) >= _plain(net, tokens, y).score(tokens, y) - 0.05


def test_scipy_sparse_input_stays_sparse_and_trains(digits600):
    X, y = digits600
    Xs = sp.csr_matrix(X)
    net = NeuralNetClassifier(MLP, module__n_features=64, module__hidden=32, **COMMON)
    auto = AutoCLR(net, random_state=0).fit(Xs, y)
    assert auto.score(Xs, y) >= _plain(net, Xs, y).score(Xs, y) - 0.02
    np.testing.assert_allclose(auto.predict_proba(Xs), auto.predict_proba(X), rtol=1e-5)


def test_a_class_absent_from_y_is_an_error_or_listed_in_the_nets_classes(digits600):
    X, y = digits600
    keep = y != 4
    net = NeuralNetClassifier(MLP, module__n_features=64, module__hidden=32, **COMMON)
    with pytest.raises(ValueError, match=r"module returns 10 outputs per sample, but there are "
                                         r"9 classes: \[0, 1, 2, 3, 5, 6, 7, 8, 9\]"):
        AutoCLR(net, random_state=0).fit(X[keep], y[keep])
    auto = AutoCLR(net.set_params(classes=list(range(10))), random_state=0).fit(X[keep],
                                                                               y[keep])
    assert auto.classes_.tolist() == list(range(10))
    proba = auto.predict_proba(X)
    assert proba.shape == (len(X), 10)
    np.testing.assert_array_equal(auto.classes_[proba.argmax(1)], auto.predict(X))
    assert auto.score(X[keep], y[keep]) > 0.9
    # labels not in the net's classes are refused before training
    with pytest.raises(ValueError, match=r"y has labels not in the classes"):
        AutoCLR(net.set_params(classes=[0, 1, 2])).fit(X, y)


def test_the_nets_classes_order_is_kept(digits600):
    X, y = digits600
    keep = y < 3
    order = [2, 0, 1]
    net = NeuralNetClassifier(MLP, module__n_features=64, module__n_outputs=3,
                              module__hidden=32, classes=order, **COMMON)
    auto = AutoCLR(net, random_state=0).fit(X[keep], y[keep])
    assert auto.classes_.tolist() == order
    np.testing.assert_array_equal(auto.classes_[auto.predict_proba(X[keep]).argmax(1)],
                                  auto.predict(X[keep]))
    assert auto.score(X[keep], y[keep]) > 0.95


# ------------------------------------------------------------ the real batch count
@pytest.mark.parametrize("drop_last", [False, True])
def test_cycles_are_counted_in_the_batches_skorch_iterates(digits600, drop_last):
    """iterator_train__batch_size (and drop_last) set the batches of an epoch, not
    batch_size: 480 training rows in batches of 16 are 30 iterations an epoch."""
    X, y = digits600
    net = NeuralNetClassifier(MLP, module__n_features=64, module__hidden=32,
                              **{**COMMON, "batch_size": 128, "max_epochs": 20},
                              iterator_train__batch_size=16,
                              iterator_train__drop_last=drop_last)
    auto = AutoCLR(net, n_cycles=1, step_size_factor=10, random_state=0).fit(X, y)
    per_epoch = 30  # 600 rows, skorch's 20 % split: 480 (a whole number of batches)
    assert auto.cycle_plan_.iterations_per_epoch == per_epoch
    assert auto.step_size_ == 10 * per_epoch
    batches = [len([b for b in epoch["batches"] if "train_loss" in b])
               for epoch in auto.net_.history]
    assert batches == [per_epoch] * len(batches)
    assert auto.n_cycles_run_ == 1 and len(batches) == 20
    # 16 epochs of its own 480-row split in batches of 16 is 480, over both the 400
    # iterations at most and a quarter of the fit's 600: 150 (in batches of 128 it
    # would be 16 x 4 = 64, raised to the floor of 100)
    assert auto.range_test_.n_iter == 150


def test_drop_last_counts_only_whole_batches(digits600):
    X, y = digits600
    net = NeuralNetClassifier(MLP, module__n_features=64, module__hidden=32,
                              **{**COMMON, "batch_size": 50, "max_epochs": 8},
                              iterator_train__drop_last=True)
    auto = AutoCLR(net, step_size_factor=2, random_state=0).fit(X, y)
    assert auto.cycle_plan_.iterations_per_epoch == 9  # 480 rows: 9 whole batches of 50
    assert auto.cycle_report_.n_iter == 8 * 9
    assert auto.net_.optimizer_.param_groups[0]["lr"] == pytest.approx(auto.base_lr_)
