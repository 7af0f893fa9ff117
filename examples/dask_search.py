"""A search over AutoCLR on a dask cluster, through joblib's dask backend.

The same ``RandomizedSearchCV`` as on one machine; only the
``joblib.parallel_config(backend="dask")`` block changes where the fits run.
Here a ``LocalCluster`` stands in for a real one: with a cluster made by
dask-jobqueue (SLURM, PBS, ...) or ``dask_kubernetes``, pass its address to
``Client`` instead (see the docs' scale-out page). Needs
``pip install "autoclr[dask]"``.

    python examples/dask_search.py
"""

import numpy as np
import torch
from joblib import parallel_config
from scipy.stats import loguniform
from sklearn.datasets import load_digits
from sklearn.model_selection import RandomizedSearchCV, train_test_split
from skorch import NeuralNetClassifier
from torch import nn

from autoclr import AutoCLR
from autoclr.models import MLP


def main(n_workers=2, processes=True, n_iter=6, max_epochs=24, cv=3, n_samples=None,
         random_state=0):
    """Run the search on a local dask cluster; returns the search and test accuracy."""
    from dask.distributed import Client, LocalCluster

    X, y = load_digits(return_X_y=True)
    X = (X / 16).astype(np.float32)
    X_train, X_test, y_train, y_test = train_test_split(
        X[:n_samples], y[:n_samples], test_size=0.3, random_state=random_state,
        stratify=y[:n_samples])
    net = NeuralNetClassifier(
        MLP, module__n_features=64, module__n_outputs=10,
        criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD,
        optimizer__momentum=0.9, batch_size=64, max_epochs=max_epochs, verbose=0)
    space = {
        "policy": ["triangular", "triangular2", "exp_range"],
        "net__module__hidden": [32, 64, 128],
        "net__optimizer__weight_decay": loguniform(1e-6, 1e-3),
    }
    search = RandomizedSearchCV(AutoCLR(net, random_state=random_state), space,
                                n_iter=n_iter, cv=cv, random_state=random_state)
    # one thread per worker: dask's worker processes also start with
    # OMP_NUM_THREADS=1, so torch does not oversubscribe the machine
    with LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=processes,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        print(f"dask cluster: {len(client.scheduler_info()['workers'])} workers")
        with parallel_config(backend="dask"):
            search.fit(X_train, y_train)
    accuracy = search.score(X_test, y_test)
    print(f"best of {n_iter}: {search.best_params_} (cv accuracy "
          f"{search.best_score_:.4f}); test accuracy {accuracy:.4f}")
    return search, accuracy


if __name__ == "__main__":
    main()
