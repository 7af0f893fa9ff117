"""DDP through skorch's AccelerateMixin: one reading, one plan, one stop, the same weights."""

import json
import os
import pickle
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from sklearn.base import clone
from skorch import NeuralNetClassifier
from skorch.hf import AccelerateMixin
from torch import nn

import autoclr
from autoclr import AutoCLR, DDPCriterionMixin
from autoclr._distributed import broadcast_object, is_distributed
from autoclr.models import MLP

SCRIPT = Path(__file__).with_name("ddp_fit.py")


class DDPNet(DDPCriterionMixin, AccelerateMixin, NeuralNetClassifier):
    """Module level, so that it pickles."""


def _require(name):
    """Import an optional package; in CI (CI=true) it must be installed."""
    if os.environ.get("CI"):
        return __import__(name)
    return pytest.importorskip(name)


class _Recorder:
    """A stand-in accelerator of a multi-process CPU run that records what it prepares."""

    distributed_type = "MULTI_CPU"
    device_placement = False
    num_processes = 1  # no process group here: broadcast_object stays the identity

    def __init__(self):
        self.prepared = []

    def prepare(self, obj):
        self.prepared.append(obj)
        return obj


def test_outside_a_process_group_nothing_is_communicated(make_net):
    obj = {"lr": 0.1}
    assert not is_distributed(make_net())
    assert broadcast_object(obj, make_net()) is obj


def test_the_mixin_leaves_a_parameterless_criterion_unprepared():
    recorder = _Recorder()
    net = DDPNet(MLP, criterion=nn.CrossEntropyLoss, accelerator=recorder).initialize()
    prepared = {type(obj) for obj in recorder.prepared}
    assert MLP in prepared and torch.optim.SGD in prepared
    assert nn.CrossEntropyLoss not in prepared  # DDP would refuse it
    assert net._criteria == ["criterion"]  # hidden only while preparing


@pytest.mark.filterwarnings("ignore::skorch.exceptions.DeviceWarning")  # device=None
def test_a_net_with_the_mixin_clones_and_pickles():
    accelerate = _require("accelerate")
    auto = AutoCLR(DDPNet(MLP, accelerator=accelerate.Accelerator(cpu=True)), random_state=0)
    for copy in (clone(auto), pickle.loads(pickle.dumps(auto))):
        assert type(copy.net) is DDPNet
        assert copy.get_params()["net__module"] is MLP


def _torchrun(out_dir, batches="split", weights="auto", timeout=120):
    """``torchrun --nproc_per_node 2 ddp_fit.py OUT`` on this autoclr; its output on failure."""
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join(filter(None, [
                   str(Path(autoclr.__file__).parents[1]), os.environ.get("PYTHONPATH")])))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone",
           "--nproc_per_node", "2", str(SCRIPT), str(out_dir), batches, weights]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True)
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # torchrun and both workers
        output, _ = proc.communicate()
        pytest.fail(f"torchrun did not finish in {timeout}s (a rank waiting on the "
                    f"other?):\n{output[-3000:]}")
    assert proc.returncode == 0, output[-3000:]
    return [json.loads((out_dir / f"rank{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.parametrize("batches, per_epoch, weights", [("split", 15, "auto"),
                                                         ("shard", 8, "best")])
def test_two_processes_agree_on_bounds_plan_stops_and_weights(tmp_path, batches, per_epoch,
                                                              weights):
    """480 training rows in batches of 32: 15 an epoch split across the processes,
    or ceil(15 / 2) = 8 in each process's own share (accelerate's default). With
    ``cycle_weights="best"`` both keep the cycle end rank 0's scores chose."""
    _require("accelerate")
    if not (torch.distributed.is_available() and torch.distributed.is_gloo_available()):
        pytest.skip("torch.distributed with gloo is not available")
    rank0, rank1 = _torchrun(tmp_path, batches, weights)
    for rank in (rank0, rank1):  # the plan counts the batches each process runs
        assert rank["iterations_per_epoch"] == per_epoch
        assert rank["trained_batches"] == [per_epoch] * len(rank["trained_batches"])
    assert (rank0["rank"], rank1["rank"]) == (0, 1) and rank0["world_size"] == 2
    # each rank trained on its own shard and scored its own; all read rank 0's
    assert rank0["range_test_losses"] == rank1["range_test_losses"]
    for key in ("base_lr", "max_lr", "step_size", "plan"):
        assert rank0[key] == rank1[key], key
    assert 0 < rank0["base_lr"] < rank0["max_lr"]
    # the cycle ends' scores and stop decisions are rank 0's on both
    assert rank0["scores"] == rank1["scores"] and rank0["report"] == rank1["report"]
    assert rank0["weights"].startswith("best:" if weights == "best" else "last")
    assert len(rank0["scores"]) >= 2  # at least two cycle ends were decided on
    assert rank0["sha256"] == rank1["sha256"]
    assert rank0["param_sum"] == rank1["param_sum"]
