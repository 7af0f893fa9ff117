"""Counting samples and batches in any input skorch takes (arrays, sparse, dicts, Datasets)."""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import scipy.sparse as sp
import torch

__all__ = ["is_multi_input", "n_samples", "train_dataset", "train_batches", "batches_per_pass",
           "iterations_per_epoch"]

def is_multi_input(X) -> bool:
    """Several inputs as skorch takes them: a dict, or a list or tuple of arrays.

    (A list of lists or of numbers is one array-like, the scikit-learn way.)
    """
    if sp.issparse(X):  # a dok_matrix is a dict too
        return False
    if isinstance(X, Mapping):
        return True
    return (isinstance(X, (list, tuple)) and len(X) > 0
            and all(isinstance(a, (np.ndarray, torch.Tensor)) or sp.issparse(a) for a in X))


def n_samples(a):
    """Samples in an array, tensor, sparse matrix, dataset, dict or list of inputs;
    ``None`` when it has no length."""
    if a is None:
        return None
    if is_multi_input(a):
        lengths = {n_samples(v) for v in (a.values() if isinstance(a, Mapping) else a)}
        if len(lengths) != 1:
            raise ValueError(
                f"The inputs in X have different lengths: {sorted(lengths, key=str)}. Every "
                "input of a dict or list X needs one row per sample.")
        return lengths.pop()
    shape = getattr(a, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    try:
        return len(a)
    except TypeError:
        return None


def train_dataset(net, X, y):
    """The dataset a fit of ``net`` trains on: the net's dataset of ``X``, ``y``, less
    what its own ``train_split`` holds out."""
    dataset = net.get_dataset(X, y)
    if net.train_split is not None:
        dataset, _ = net.train_split(dataset, y)
    return dataset


def train_batches(net, X, y):
    """Samples and batches per epoch of a fit of ``net`` on ``X``, ``y``.

    The samples are those left by the net's own ``train_split``; the batches are
    what its training iterator yields over them (``iterator_train__batch_size``,
    ``drop_last``, a sampler), counted with ``len()`` of the iterator, or from the
    batch size for an iterator without a length. Building the dataset, splitting
    it and building the iterator read the net, never change it.
    """
    dataset = train_dataset(net, X, y)
    return len(dataset), batches_per_pass(net.get_iterator(dataset, training=True),
                                          len(dataset), net.batch_size)


def batches_per_pass(iterator, n_samples, batch_size):
    """``len(iterator)``: the batches of one pass; for an iterator without a length,
    :func:`iterations_per_epoch` of ``n_samples`` and ``batch_size``."""
    try:
        return max(1, len(iterator))
    except TypeError:
        return iterations_per_epoch(n_samples, getattr(iterator, "batch_size", batch_size))


def iterations_per_epoch(n_samples: int, batch_size) -> int:
    """Batches in one epoch; ``batch_size`` -1 or None means the whole data set."""
    bs = n_samples if batch_size in (-1, None) else int(batch_size)
    return max(1, math.ceil(n_samples / max(bs, 1)))
