"""Devices and tensors: where a net trains (``device="auto"``) and moving batches there."""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["resolve_device", "mps_available", "module_device", "to_device", "as_tensor"]

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
        return "mps" if mps_available() else "cpu"
    return device


def mps_available():
    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def module_device(net):
    """Where the initialised net's parameters live (``net.device`` is None under accelerate)."""
    for p in net.module_.parameters():
        return p.device
    return torch.device(net.device or "cpu")


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
