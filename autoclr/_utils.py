"""Small helpers shared by the range test and the estimator: seeding, devices, nets."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils import check_random_state

# torch's global RNG is shared by all threads: weight initialisation happens
# under this lock so that fits in threads (GridSearchCV's threading backend)
# each see their own seed.
_RNG_LOCK = threading.RLock()


def draw_seed(random_state) -> int:
    """An int seed for torch from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def resolve_device(device) -> str:
    """``"auto"`` -> ``"cuda"`` when available, else ``"cpu"``; other values pass."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return device


def _cuda_devices(device):
    if device is None or not torch.cuda.is_available():
        return []
    dev = torch.device(device)
    if dev.type != "cuda":
        return []
    return [dev.index if dev.index is not None else torch.cuda.current_device()]


@contextmanager
def seeded(seed: int, device=None):
    """Seed torch inside the block and restore the global RNG state after it.

    Other code keeps its own random stream: nothing outside the block sees
    the seed, and the global state is as before when the block ends.
    """
    devices = _cuda_devices(device)
    with _RNG_LOCK, torch.random.fork_rng(devices=devices):
        # only the generators the block uses, and restores: ``torch.manual_seed``
        # would also reseed every CUDA device (lazily, recording a stack trace
        # each time, about 0.5 ms on CPU-only machines)
        torch.random.default_generator.manual_seed(seed)
        for index in devices:
            with torch.cuda.device(index):
                torch.cuda.manual_seed(seed)
        yield


def fresh_net(net, **params):
    """An unfitted copy of ``net`` with ``params`` set; ``net`` is not touched.

    ``sklearn.base.clone`` deep-copies module, criterion and optimizer
    arguments given as instances, so a module *instance* is never shared
    between the user's net, the range test and the final fit: each starts
    from a copy of the same initial weights.
    """
    new = clone(net)
    for name in ("module", "criterion"):
        value = getattr(net, name, None)
        if isinstance(value, torch.nn.Module) and getattr(new, name) is value:
            new.set_params(**{name: _deepcopy(value)})
    if params:
        new.set_params(**params)
    return new


def _deepcopy(value):
    import copy

    return copy.deepcopy(value)


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
