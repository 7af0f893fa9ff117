"""Seeding: torch's global RNG seeded for a block and restored after it, safely in threads."""

from __future__ import annotations

import threading
from contextlib import contextmanager

import torch
from sklearn.utils import check_random_state

from ._device import mps_available

__all__ = ["draw_seed", "seeded", "exclusive_rng"]

# torch's global RNG is shared by all threads of a process. This lock guards the
# seeding and restoring of it, and the whole of a block that must draw from it
# alone (weight initialisation); training holds it only to seed and to restore, so
# that fits in threads (GridSearchCV's threading backend, dask with
# processes=False) train at the same time. See :func:`seeded`.
_RNG_LOCK = threading.RLock()


def draw_seed(random_state) -> int:
    """An int seed for torch from a scikit-learn ``random_state``."""
    return int(check_random_state(random_state).randint(0, 2**31 - 1))


def _accelerators(device):
    """The generators besides the CPU's that a block on ``device`` draws from."""
    if device is None:
        return []
    dev = torch.device(device)
    if dev.type == "cuda" and torch.cuda.is_available():
        return [("cuda", dev.index if dev.index is not None else torch.cuda.current_device())]
    if dev.type == "mps" and mps_available():
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
