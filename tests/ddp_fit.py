"""One AutoCLR fit of an accelerate net, run by ``tests/test_distributed.py`` under torchrun.

``torchrun --nproc_per_node 2 tests/ddp_fit.py OUT_DIR [split|shard] [WEIGHTS]`` trains
the same small MLP on the same digits in two processes (DDP on CPU, gloo); each process
writes what it used and what it ended with to ``OUT_DIR/rank<k>.json``. ``split``:
``batch_size`` is the global batch, split across the processes; ``shard``
(accelerate's default): each process draws batches of ``batch_size`` from its share.
``WEIGHTS``: ``cycle_weights`` (default ``"auto"``, the last weights of a classifier).
"""

import hashlib
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration
from sklearn.datasets import load_digits
from skorch import NeuralNetClassifier
from skorch.callbacks import EarlyStopping
from skorch.hf import AccelerateMixin
from skorch.utils import noop
from torch import nn

from autoclr import AutoCLR, DDPCriterionMixin
from autoclr.models import MLP


class DDPNet(DDPCriterionMixin, AccelerateMixin, NeuralNetClassifier):
    """A skorch classifier trained through accelerate, DDP-ready on CPU."""


def checksum(module):
    """sha256 of the parameters' bytes, and their sum (to read)."""
    digest, total = hashlib.sha256(), 0.0
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
        total += float(tensor.double().sum())
    return digest.hexdigest(), total


def main(out_dir, batches="split", weights="auto"):
    torch.set_num_threads(1)
    X, y = load_digits(return_X_y=True)
    X, y = (X[:600] / 16).astype(np.float32), y[:600]
    # either way the plan counts the batches each process runs (its prepared iterator)
    accelerator = Accelerator(cpu=True, dataloader_config=DataLoaderConfiguration(
        split_batches=batches == "split"))
    net = DDPNet(MLP, module__n_features=64, module__n_outputs=10, module__hidden=32,
                 criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD,
                 optimizer__momentum=0.9, batch_size=32, max_epochs=16, verbose=0,
                 callbacks=[EarlyStopping(patience=3)], callbacks__print_log__sink=noop,
                 accelerator=accelerator)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # a seed of its own in each process (as random_state=None draws): the range
        # test must still split and shuffle as the main process does
        auto = AutoCLR(net, n_cycles="auto", range_test_iter=80, cycle_weights=weights,
                       random_state=accelerator.process_index).fit(X, y)
    digest, total = checksum(auto.net_.module_)
    record = {
        "rank": accelerator.process_index,
        "world_size": accelerator.num_processes,
        "base_lr": auto.base_lr_, "max_lr": auto.max_lr_, "step_size": auto.step_size_,
        "plan": repr(auto.cycle_plan_), "report": repr(auto.cycle_report_),
        "iterations_per_epoch": auto.cycle_plan_.iterations_per_epoch,
        "trained_batches": [sum("train_loss" in b for b in row["batches"])
                            for row in auto.net_.history],
        "scores": list(auto.cycle_report_.scores),
        "weights": auto.cycle_report_.weights,
        "range_test_losses": auto.range_test_.losses.tolist(),
        "sha256": digest, "param_sum": total,
    }
    path = Path(out_dir) / f"rank{accelerator.process_index}.json"
    path.write_text(json.dumps(record))
    accelerator.wait_for_everyone()
    torch.distributed.destroy_process_group()  # a clean exit for gloo on both ranks


if __name__ == "__main__":
    main(*sys.argv[1:])
