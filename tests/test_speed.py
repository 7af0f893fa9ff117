"""Speed properties of the range test, and the GPU check's code path on CPU.

Timings are measured by ``benchmarks/speed.py``, never here: these tests check
the behaviour that makes the loop fast (one host sync per evaluation, a
bounded validation subset, batches pinned for CUDA) and that the benchmark
scripts run.
"""

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from autoclr import range_test
from autoclr._range_test import (
    MIN_SCORED,
    SCORE_BUDGET,
    _ArrayBatches,
    _n_scored,
    auto_n_iter,
)

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name):
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def gpu_check():
    return _load("gpu_check")


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 10, 3000)
    X = rng.standard_normal((10, 64))[y] + rng.standard_normal((3000, 64))
    return X.astype(np.float32), y.astype(np.int64)


def test_range_test_syncs_with_the_host_once_per_evaluation(gpu_check, blobs, make_net):
    X, y = blobs
    net = make_net()
    result, n_sync = gpu_check.count_host_syncs(
        lambda: range_test(net, X[:600], y[:600], n_iter=64, n_eval=8, random_state=0),
        "cpu")
    assert len(result.lrs) == 64 and len(result.scores) == 8
    # one read-back of the buffered losses per evaluation, and the final
    # copies of the loss and score buffers: nothing per iteration
    assert 8 <= n_sync <= 8 + 4


def test_count_host_syncs_sees_a_per_iteration_item(gpu_check):
    def loop():
        t = torch.ones(3)
        return [float(t.sum().item()) for _ in range(50)]

    _, n_sync = gpu_check.count_host_syncs(loop, "cpu")
    assert n_sync == 50  # one per .item(), nothing else counted


@pytest.mark.parametrize(
    ("n_iter", "n_eval", "expected"),
    [
        (100, 40, 200),  # the budget (56) is below the floor: MIN_SCORED
        (400, 10, 600),  # the budget (896) is above what is held out (600)
        (400, 40, 224),  # the budget: ceil(0.35 * 400 * 64 / 40)
    ],
)
def test_validation_subset_is_bounded_by_the_budget(blobs, n_iter, n_eval, expected, make_net):
    X, y = blobs
    result = range_test(make_net(), X, y, n_iter=n_iter, n_eval=n_eval,
                        random_state=0)
    assert result.n_valid == expected
    assert result.n_valid == _n_scored(600, 1000, n_iter, 64, n_eval)
    assert expected == min(600, max(MIN_SCORED, math.ceil(SCORE_BUDGET * n_iter * 64
                                                          / n_eval)))


def test_max_valid_samples_still_caps_the_subset(blobs, make_net):
    X, y = blobs
    result = range_test(make_net(), X, y, n_iter=400, n_eval=10,
                        max_valid_samples=150, random_state=0)
    assert result.n_valid == 150


def test_batches_are_gathered_by_index_from_the_training_rows():
    X = torch.arange(40.0).reshape(20, 2)
    y = torch.arange(20)
    loader = DataLoader(Subset(TensorDataset(X, y), np.arange(10, 20)), batch_size=4,
                        shuffle=True, generator=torch.Generator())
    source = _ArrayBatches(X, y, np.arange(10, 20), loader)
    seen = []
    # each iteration is one pass over the 10 training rows: 4 + 4 + 2
    for xb, yb in [*source, *list(source)[:2]]:
        assert not xb.is_pinned()  # pinning is for CUDA only
        np.testing.assert_array_equal(xb[:, 0].numpy(), 2 * yb.numpy())
        seen.append(yb)
    assert [len(b) for b in seen] == [4, 4, 2, 4, 4]
    assert sorted(torch.cat(seen[:3]).tolist()) == list(range(10, 20))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_batches_are_pinned_for_cuda():
    X = torch.randn(20, 2)
    loader = DataLoader(TensorDataset(X), batch_size=4, shuffle=True,
                        generator=torch.Generator())
    batches = iter(_ArrayBatches(X, None, np.arange(20), loader, pin=True))
    xb, _ = next(batches)
    assert xb.is_pinned()


@pytest.mark.skipif(torch.cuda.is_available(), reason="there is a GPU here")
def test_gpu_check_without_cuda_says_so(gpu_check):
    with pytest.raises(SystemExit, match="no CUDA device.*--cpu-tiny"):
        gpu_check.main([])


def test_gpu_check_runs_its_code_path_on_a_tiny_cpu_problem(gpu_check, capsys):
    results, memory, syncs = gpu_check.main(["--cpu-tiny", "--no-memory"])
    (result,) = results
    # 256 samples, 51 held out, batches of 32: the range test's automatic length, for
    # a fit of max_epochs over those 205 rows
    assert result["fit_iter"] == result["problem"]["max_epochs"] * 7
    assert result["n_iter_planned"] == auto_n_iter(256 - 51, 32, fit_iter=result["fit_iter"])
    # the test ran its planned length exactly when it did not stop early
    completed = result["n_iter"] == result["n_iter_planned"]
    assert (result["stop_reason"] == "completed") == completed
    # one repeat: each ratio is the ratio of the two timings it names
    times = {key: summary["median"] for key, summary in result["times"].items()}
    for key, num, den in (("rt_bare", "rt", "bare"), ("rt_train_bare", "steps", "bare"),
                          ("score_share", "score", "rt"), ("phase_plain", "phase", "plain"),
                          ("full_plain", "full", "plain")):
        assert result[key]["median"] == pytest.approx(times[num] / times[den]), key
    # the range test's setup, steps and scoring add up to it, scoring is a part of it
    assert times["setup"] + times["steps"] + times["score"] == pytest.approx(times["rt"])
    assert 0 < result["score_share"]["median"] < 1
    # the fit phase trains exactly the epochs of the plain fit (checked inside),
    # and the whole fit includes a range test (timed within it) the phase does not run
    assert 0 < times["full_rt"] < times["full"]
    n_sync, n_iter, n_eval = syncs["cnn-tiny-256"]
    assert n_sync <= n_eval + 4 < n_iter
    assert memory == {}
    out = capsys.readouterr().out
    assert "(3) cyclical fit phase / plain skorch fit" in out


def test_memory_child_measures_both_fits_in_process(gpu_check):
    speed = gpu_check.speed
    p = speed.Problem("mlp-tiny", "mlp", 256, batch_size=32, max_epochs=4, hidden=16)
    plain = speed.memory_child("plain", p)
    auto = speed.memory_child("autoclr", p)
    assert (plain["mode"], auto["mode"]) == ("plain", "autoclr")
    for m in (plain, auto):
        # bytes, not kB: the baseline holds torch, well over 100 MiB
        assert m["peak_rss"] >= m["baseline_rss"] > 100 * 2**20


def test_report_shows_cuda_memory_when_measured(gpu_check):
    speed = gpu_check.speed
    mib = 2**20
    side = {"baseline_rss": 400 * mib, "cuda_after_del": 0, "cuda_module_bytes": 1 * mib}
    memory = {"cnn32-10k": {
        "plain": dict(side, peak_rss=420 * mib, cuda_peak=100 * mib, cuda_after_fit=2 * mib),
        "autoclr": dict(side, peak_rss=424 * mib, cuda_peak=105 * mib,
                        cuda_after_fit=2 * mib),
        "rss_ratio": 424 / 420, "rss_extra_mb": 4.0, "cuda_ratio": 1.05, "x_mib": 117.2,
    }}
    machine = {"cpu": "x", "cores": 16, "torch": "2", "torch_threads": 1, "python": "3",
               "device": "cuda", "gpu": "H200", "load_avg": (0.0,), "date": "now",
               "clock": "wall"}
    report = speed.format_report([], machine, "cmd", memory)
    assert "| 100.0 (2.0 / 0.0) | 105.0 (2.0 / 0.0) | +5.0 | 1.050 |" in report
    assert "(H200)" in report and "wall time" in report


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_range_test_on_cuda_takes_data_already_on_the_device(blobs, make_net):
    X, y = blobs
    # X already on the GPU is indexed there, not gathered into pinned memory
    result = range_test(make_net(), torch.as_tensor(X[:600]).cuda(), y[:600],
                        n_iter=16, device="cuda", random_state=0)
    assert len(result.lrs) == 16 and np.all(np.isfinite(result.losses))
