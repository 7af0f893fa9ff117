"""Distributed training: one range test reading, one plan, one stopping decision.

Under ``torchrun`` (or ``accelerate launch``) a net with skorch's
``AccelerateMixin`` trains in several processes: DDP averages the gradients,
and every process must also step with the same learning rate and stop at the
same epoch. Each process sees its own shard of every batch, so each would
read its own range test and score its own cycle ends. :func:`broadcast_object`
hands every process the main process's value instead; the shared modules call
it where a value must agree (the range test's stop and result, the scores
and stop requests read at cycle ends). Outside a multi-process accelerate
run it returns its argument and communicates nothing.

:class:`DDPCriterionMixin` lets such a net train on CPU (gloo): accelerate
wraps every prepared module in ``DistributedDataParallel`` there, and DDP
refuses a criterion without trainable parameters.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["DDPCriterionMixin", "broadcast_object", "is_distributed"]


def is_distributed(net) -> bool:
    """``net`` trains in several processes: an accelerate net, a process group of two or more."""
    accelerator = getattr(net, "accelerator", None)
    return (getattr(accelerator, "num_processes", 1) > 1 and dist.is_available()
            and dist.is_initialized() and dist.get_world_size() > 1)


def broadcast_object(obj, net):
    """``obj`` as the main process (rank 0) holds it, on every process of ``net``'s training.

    Every process must call it at the same point (it is a collective).
    Without a multi-process accelerate run, ``obj`` itself.
    """
    if not is_distributed(net):
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def _trainable(criterion) -> bool:
    return isinstance(criterion, torch.nn.Module) and any(
        p.requires_grad for p in criterion.parameters())


class DDPCriterionMixin:
    """Lets an ``AccelerateMixin`` net train with DDP on CPU: plain criteria stay unprepared.

    On a multi-process CPU run (``DistributedType.MULTI_CPU``: ``torchrun`` with
    gloo) accelerate wraps every module it prepares in
    ``DistributedDataParallel``, which refuses one without trainable
    parameters; skorch 1.4 prepares the criterion too, so ``initialize``
    fails with "DistributedDataParallel is not needed when a module doesn't
    have any parameter that requires a gradient". This mixin hides such
    criteria from ``accelerator.prepare`` there, as accelerate itself does
    on GPUs; elsewhere it changes nothing. It goes before ``AccelerateMixin``
    in the net's bases. See the user guide's page on scale-out.

    Examples
    --------
    >>> from skorch import NeuralNetClassifier
    >>> from skorch.hf import AccelerateMixin
    >>> class Net(DDPCriterionMixin, AccelerateMixin, NeuralNetClassifier):
    ...     pass
    """

    def _initialize_accelerator(self):
        if getattr(self.accelerator, "distributed_type", None) != "MULTI_CPU":
            return super()._initialize_accelerator()
        criteria = self._criteria
        self._criteria = [name for name in criteria if _trainable(getattr(self, name + "_"))]
        try:
            return super()._initialize_accelerator()
        finally:
            self._criteria = criteria
