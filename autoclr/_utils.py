"""Small helpers shared by the range test and the estimator: seeding, devices, nets."""

from __future__ import annotations

import math
import numbers
import os
import sys
import threading
import warnings
from collections.abc import Mapping
from contextlib import contextmanager

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import clone
from sklearn.utils import check_random_state

# torch's global RNG is shared by all threads of a process. This lock guards the
# seeding and restoring of it, and the whole of a block that must draw from it
# alone (weight initialisation); training holds it only to seed and to restore, so
# that fits in threads (GridSearchCV's threading backend, dask with
# processes=False) train at the same time. See :func:`seeded`.
_RNG_LOCK = threading.RLock()


def draw_seed(random_state) -> int:
    """An int seed for torch from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def resolve_device(device, net=None):
    """``"auto"`` -> ``"cuda"`` when available, else ``"mps"`` (Apple's GPUs) when
    available, else ``"cpu"``; other values pass.

    A net built with skorch's ``AccelerateMixin`` places itself (its
    ``accelerator`` does, and it requires ``device=None``): ``"auto"`` then
    gives ``None``, which leaves the net's device as it is.
    """
    if device == "auto":
        if getattr(net, "accelerator", None) is not None:
            return None
        if torch.cuda.is_available():
            return "cuda"
        return "mps" if _mps_available() else "cpu"
    return device


def _mps_available():
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn(message, category=UserWarning):
    """``warnings.warn`` pointing at the first caller outside autoclr (the user's line)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def warn_notes(notes, category=UserWarning):
    """Emit each note as one warning of ``category`` (see :func:`warn`)."""
    for note in notes:
        warn(note, category)


def _accelerators(device):
    """The generators besides the CPU's that a block on ``device`` draws from."""
    if device is None:
        return []
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return [("cuda", dev.index if dev.index is not None else torch.cuda.current_device())]
    if dev.type == "mps" and _mps_available():
        return [("mps", None)]
    return []


def _seed_global(seed, accelerators):
    """Seed torch's generators (CPU and ``accelerators``); their states before."""
    saved = [torch.random.default_generator.get_state()]
    # only the generators the block uses: ``torch.manual_seed`` would also reseed
    # every CUDA device (lazily, recording a stack trace each time, about 0.5 ms on
    # CPU-only machines)
    torch.random.default_generator.manual_seed(seed)
    for kind, index in accelerators:
        if kind == "cuda":
            saved.append(torch.cuda.get_rng_state(index))
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        else:
            saved.append(torch.mps.get_rng_state())
            torch.mps.manual_seed(seed)
    return saved


def _restore_global(saved, accelerators):
    torch.random.default_generator.set_state(saved[0])
    for (kind, index), state in zip(accelerators, saved[1:]):
        if kind == "cuda":
            torch.cuda.set_rng_state(state, index)
        else:
            torch.mps.set_rng_state(state)


def exclusive_rng():
    """The lock of :func:`seeded`: inside a non-exclusive block, a part that draws
    from torch's global RNG alone (a weight initialisation)."""
    return _RNG_LOCK


@contextmanager
def seeded(seed: int, device=None, *, exclusive=True):
    """Seed torch inside the block and restore the global RNG state after it.

    Other code keeps its own random stream: nothing outside the block sees the
    seed, and the global state is as before when the block ends, in a process
    where nothing else draws from it meanwhile.

    torch's global RNG is shared by the threads of a process. ``exclusive=True``
    (weight initialisation) holds a process-wide lock for the whole block, so
    that no other seeded block seeds or restores the RNG meanwhile;
    ``exclusive=False`` (training) holds it only to seed and to restore, so fits
    in threads train at the same time. What that leaves reproducible in threads:
    the initial weights (and so the whole fit) as long as no fit in another
    thread draws from torch's global RNG while it trains (dropout, random
    augmentation); such draws interleave with the other thread's, and the RNG
    state restored at a block's end is then that of its own start.
    """
    accelerators = _accelerators(device)
    with _RNG_LOCK:
        saved = _seed_global(seed, accelerators)
        if not exclusive:
            _RNG_LOCK.release()
        try:
            yield
        finally:
            if not exclusive:
                _RNG_LOCK.acquire()
            _restore_global(saved, accelerators)


def fresh_net(net, **params):
    """An unfitted copy of ``net`` with ``params`` set; ``net`` is not touched.

    ``sklearn.base.clone`` deep-copies the arguments that are not estimators,
    so a module (or criterion) given as an *instance* is never shared between
    the user's net, the range test and the final fit: each starts from a copy
    of the same initial weights.
    """
    new = clone(net)
    params = {k: v for k, v in params.items() if not (k == "device" and v is None)}
    if params:
        new.set_params(**params)
    return new


def user_callbacks(net):
    """The net's own callbacks, as a new list (the user's list is never extended)."""
    return list(net.callbacks or [])


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


def n_train_samples(net, X, y):
    """Samples the final fit trains on, after the net's own ``train_split``."""
    # building the dataset and splitting it read the net, never change it
    if net.train_split is None:
        return n_samples(X)
    train, _ = net.train_split(net.get_dataset(X, y), y)
    return len(train)


def is_int(value) -> bool:
    """An integer, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def iterations_per_epoch(n_samples: int, batch_size) -> int:
    """Batches in one epoch; ``batch_size`` -1 or None means the whole data set."""
    bs = n_samples if batch_size in (-1, None) else int(batch_size)
    return max(1, math.ceil(n_samples / max(bs, 1)))


def to_device(x, device):
    """Move a batch (tensor, or dict/tuple/list of tensors) to ``device``."""
    if isinstance(x, torch.Tensor):
        return x.to(device, non_blocking=True)
    if isinstance(x, dict):
        return {k: to_device(v, device) for k, v in x.items()}
    if isinstance(x, (tuple, list)):
        return type(x)(to_device(v, device) for v in x)
    return x


def as_tensor(a):
    """A torch tensor view of an array, without copying when it can be avoided."""
    if isinstance(a, torch.Tensor):
        return a
    return torch.as_tensor(np.asarray(a))
