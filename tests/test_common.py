"""scikit-learn's common estimator checks on AutoCLR-wrapped classifier and regressor nets.

The checks fit on arrays of many widths and class counts, so the nets size
their module from the data: an ``nn.LazyLinear`` input layer, and a callback
that sets ``module__n_outputs`` from ``y`` in ``on_train_begin`` (skorch's
documented idiom; the range test calls it too). Tiny nets and short runs keep
the file fast on two cores.
"""

import numpy as np
import torch
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks
from skorch import NeuralNetClassifier, NeuralNetRegressor
from skorch.callbacks import Callback
from torch import nn

from autoclr import AutoCLR


class LazyMLP(nn.Module):
    """One hidden layer; the input width is read from the first batch.

    The checks also fit on integer X, which AutoCLR passes on as skorch does
    (integer arrays keep their dtype, for token ids): this module casts it.
    """

    def __init__(self, n_outputs=2, hidden=16):
        super().__init__()
        self.net = nn.Sequential(nn.LazyLinear(hidden), nn.ReLU(), nn.Linear(hidden, n_outputs))

    def forward(self, X):
        return self.net(X.float())


class SizeOutputs(Callback):
    """Set ``module__n_outputs`` from y: classes for classifiers, columns for regressors."""

    def on_train_begin(self, net, X=None, y=None, **kwargs):
        y = np.asarray(y)
        if isinstance(net, NeuralNetClassifier):
            n_outputs = int(y.max()) + 1  # AutoCLR passes y encoded as 0..n_classes-1
        else:
            n_outputs = 1 if y.ndim == 1 else y.shape[1]
        if net.module__n_outputs != n_outputs:
            net.set_params(module__n_outputs=n_outputs)


# These nets are built here, not with conftest's ``make_net`` fixture: scikit-learn's
# ``parametrize_with_checks`` needs the estimators at import time, to generate the test
# ids, and fixtures do not exist before the tests run. They also need what no other
# test does: a lazy input layer and the output-sizing callback above.
def _net_params():
    return dict(
        module=LazyMLP,
        module__n_outputs=2,
        optimizer=torch.optim.SGD,
        optimizer__momentum=0.9,
        batch_size=4,
        max_epochs=10,
        train_split=None,  # the checks fit on as few as 10 samples
        verbose=0,
        callbacks=[("size_outputs", SizeOutputs())],
    )


def _classifier():
    net = NeuralNetClassifier(criterion=nn.CrossEntropyLoss, **_net_params())
    return AutoCLR(net, range_test_iter=16, step_size=8, random_state=0)


def _regressor():
    return AutoCLR(NeuralNetRegressor(**_net_params()), range_test_iter=16, step_size=8,
                   random_state=0)


#: every check that does not apply, with its reason.
#: (``check_array_api_input`` is skipped by scikit-learn itself unless
#: SCIPY_ARRAY_API=1 and array-api-compat are installed; AutoCLR does not
#: claim array-API support, the net converts its input to torch anyway.)
EXPECTED_FAILED_CHECKS = {
    "regressor": {
        "check_methods_subset_invariance": (
            "float32 nets: a row's prediction can depend on the other rows of its "
            "batch in the last bits (BLAS blocking), 2e-7 relative, above the check's "
            "1e-7; whether it shows depends on the weights. The classifier's labels "
            "are invariant"),
    },
}


def expected_failed_checks(estimator):
    return EXPECTED_FAILED_CHECKS.get(get_tags(estimator).estimator_type, {})


@parametrize_with_checks([_classifier(), _regressor()],
                         expected_failed_checks=expected_failed_checks)
def test_sklearn_compatible_estimator(estimator, check):
    torch.set_num_threads(1)
    check(estimator)
