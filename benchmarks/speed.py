"""Speed benchmark: AutoCLR side by side with its physical limit and its peers.

For each problem (a model and a data size) and each repeat, the contenders
run one after the other in the same process, in an order that rotates from
repeat to repeat, and each ratio is taken within the repeat; the report gives
the median ratio over the repeats and its spread (min - max):

1. range test / bare PyTorch loop, per iteration (same model, batch size and
   iterations; the bare loop is tensors, ``randperm``, slicing, forward,
   backward, step). Also split into setup, training steps (the loop minus its
   validation scoring) and the share of the range test spent scoring.
2. our range test / ``torch_lr_finder.LRFinder.range_test``, same iterations
   and LRs (skipped when torch-lr-finder is not installed).
3. the cyclical fit phase (``AutoCLR`` with both bounds given, so no range
   test) / a plain skorch ``fit`` of the same net and epochs, no scheduler.
4. the whole ``AutoCLR.fit`` with default options / the plain skorch ``fit``.
5. peak memory (RSS; CUDA memory when present) of ``AutoCLR.fit`` / the plain
   skorch ``fit``, each in a fresh subprocess.

Run from the repository root (about 5 minutes on 2 busy CPU cores)::

    python benchmarks/speed.py                # writes docs/benchmarks_speed.md
    python benchmarks/speed.py --quick        # a 2-minute smoke run, no file

``benchmarks/gpu_check.py`` reuses these functions on a mid-size CNN on CUDA.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import io
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass, replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # torch-lr-finder's progress bar

import numpy as np  # noqa: E402
import torch  # noqa: E402
from skorch import NeuralNetClassifier  # noqa: E402
from torch import nn  # noqa: E402

from autoclr import AutoCLR, range_test  # noqa: E402
from autoclr._device import resolve_device  # noqa: E402
from autoclr.models import MLP, SmallCNN  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks_speed.md"
BEGIN, END = "<!-- speed-results:begin -->", "<!-- speed-results:end -->"

#: ratio name -> (target, description)
TARGETS = {
    "rt_bare": (None, "(1) range test / bare loop, per iteration, all in"),
    "rt_train_bare": (1.10, "(1) range-test training steps / bare loop (no setup, "
                      "no scoring)"),
    "score_share": (0.15, "(1) validation scoring / range test"),
    "rt_peer": (1.00, "(2) range test / torch-lr-finder"),
    "rt_noscore_peer": (None, "(2) range test without its scoring / torch-lr-finder"),
    "phase_plain": (1.03, "(3) cyclical fit phase / plain skorch fit"),
    "full_plain": (1.25, "(4) AutoCLR.fit / plain skorch fit"),  # issue 14
    "rss_ratio": (1.10, "(5) peak RSS, AutoCLR.fit / plain fit"),
    "cuda_ratio": (1.10, "(5) peak CUDA memory, AutoCLR.fit / plain fit"),
}


@dataclass(frozen=True)
class Problem:
    """A model, a generated data set and the training settings of one benchmark."""

    name: str
    model: str  # "mlp" (tabular) or "cnn" (images)
    n_samples: int
    batch_size: int = 64
    max_epochs: int = 30
    n_classes: int = 10
    n_features: int = 64  # mlp
    hidden: int = 64  # mlp
    channels: int = 1  # cnn
    side: int = 8  # cnn
    width: int = 16  # cnn


def default_problems(quick=False):
    """Two models at two data sizes (4x apart, to show linear scaling)."""
    if quick:
        sizes, epochs = (600, 1200), 12
    else:
        sizes, epochs = (2000, 8000), 30
    return [
        Problem(f"{model}-{n}", model, n, max_epochs=epochs)
        for model in ("mlp", "cnn") for n in sizes
    ]


# ------------------------------------------------------------------- problems
def make_data(p: Problem, seed=0):
    """Learnable generated data: ``X`` float32, ``y`` int64 class indices."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, p.n_classes, p.n_samples)
    if p.model == "mlp":
        centers = rng.standard_normal((p.n_classes, p.n_features)) * 0.6
        X = centers[y] + rng.standard_normal((p.n_samples, p.n_features))
    else:
        # class templates plus pixel noise, shape (n, channels, side, side)
        shape = (p.channels, p.side, p.side)
        templates = rng.standard_normal((p.n_classes, *shape)) * 0.8
        X = templates[y] + rng.standard_normal((p.n_samples, *shape))
    return X.astype(np.float32), y.astype(np.int64)


def module_params(p: Problem):
    if p.model == "mlp":
        return MLP, dict(n_features=p.n_features, n_outputs=p.n_classes, hidden=p.hidden)
    return SmallCNN, dict(n_outputs=p.n_classes, channels=p.channels, side=p.side,
                          width=p.width)


def make_module(p: Problem):
    cls, kwargs = module_params(p)
    return cls(**kwargs)


def make_net(p: Problem, device="cpu", **kwargs):
    cls, mkw = module_params(p)
    params = dict(
        module=cls, criterion=nn.CrossEntropyLoss, optimizer=torch.optim.SGD,
        optimizer__momentum=0.9, lr=0.01, batch_size=p.batch_size,
        max_epochs=p.max_epochs, device=device, verbose=0,
        **{f"module__{k}": v for k, v in mkw.items()},
    )
    params.update(kwargs)
    return NeuralNetClassifier(**params)


# ------------------------------------------------------------------ contenders
#: the clock of all timings: see :func:`set_clock`
_now = time.perf_counter


def set_clock(kind):
    """``"wall"``: ``time.perf_counter``; ``"cpu"``: this process's CPU time.

    On a CPU shared with other jobs the CPU time of a one-thread process
    is far less disturbed than its wall time (it does not count the time
    the process waits for a core); on CUDA only wall time is meaningful.
    """
    global _now
    _now = {"wall": time.perf_counter, "cpu": time.process_time}[kind]


def _sync(device):
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


class _Clock:
    """Wall time of a block, synchronised with the device at both ends."""

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        _sync(self.device)
        self.start = _now()
        return self

    def __exit__(self, *exc):
        _sync(self.device)
        self.seconds = _now() - self.start


def _gather(t, sel, pin):
    if not pin:
        return t[sel]
    out = torch.empty((len(sel), *t.shape[1:]), dtype=t.dtype, pin_memory=True)
    return torch.index_select(t, 0, sel, out=out)


def bare_loop(p: Problem, X, y, n_iter, device="cpu", seed=0):
    """Seconds for ``n_iter`` steps of the plainest PyTorch training loop.

    Tensors over the arrays, a ``randperm`` per epoch, slicing, forward,
    backward, step; batches go to the device per step (gathered into pinned
    memory on CUDA, as the range test does).
    """
    pin = torch.device(device).type == "cuda"
    with _Clock(device) as clock:
        torch.manual_seed(seed)
        module = make_module(p).to(device)
        optimizer = torch.optim.SGD(module.parameters(), lr=1e-3, momentum=0.9)
        criterion = nn.CrossEntropyLoss()
        Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
        generator = torch.Generator().manual_seed(seed)
        done = 0
        while done < n_iter:
            perm = torch.randperm(len(Xt), generator=generator)
            for start in range(0, len(perm), p.batch_size):
                sel = perm[start : start + p.batch_size]
                xb = _gather(Xt, sel, pin).to(device, non_blocking=True)
                yb = _gather(yt, sel, pin).to(device, non_blocking=True)
                optimizer.zero_grad(set_to_none=True)
                loss = criterion(module(xb), yb)
                loss.backward()
                optimizer.step()
                done += 1
                if done == n_iter:
                    break
    return clock.seconds


def our_range_test(p: Problem, X, y, device="cpu", seed=0):
    """``autoclr.range_test`` with default options: (seconds, phases, result).

    The phases are the ones the range test records itself
    (``RangeTestResult.timings``: setup, training steps, scoring).
    """
    net = make_net(p, device=device)
    with _Clock(device) as clock:
        result = range_test(net, X, y, random_state=seed, device=device)
    return clock.seconds, result.timings, result


def peer_available():
    try:
        import torch_lr_finder  # noqa: F401
    except ImportError:
        return False
    return True


def peer_range_test(p: Problem, X, y, n_iter, lr_range, device="cpu", seed=0):
    """Seconds for torch-lr-finder's ``range_test`` over the same LRs and iterations.

    Used as documented: a ``DataLoader`` over a ``TensorDataset``, exponential
    ramp, no validation loader (it would score the whole loader every
    iteration); the divergence stop is disabled so that it runs exactly
    ``n_iter`` iterations.
    """
    from torch.utils.data import DataLoader, TensorDataset
    from torch_lr_finder import LRFinder

    pin = torch.device(device).type == "cuda"
    with _Clock(device) as clock, contextlib.redirect_stdout(io.StringIO()):
        torch.manual_seed(seed)
        module = make_module(p).to(device)
        optimizer = torch.optim.SGD(module.parameters(), lr=lr_range[0], momentum=0.9)
        loader = DataLoader(TensorDataset(torch.as_tensor(X), torch.as_tensor(y)),
                            batch_size=p.batch_size, shuffle=True, pin_memory=pin)
        finder = LRFinder(module, optimizer, nn.CrossEntropyLoss(), device=device)
        finder.range_test(loader, end_lr=lr_range[1], num_iter=n_iter, step_mode="exp",
                          diverge_th=float("inf"))
    return clock.seconds


def plain_fit(p: Problem, X, y, device="cpu", seed=0):
    """Seconds for a plain skorch ``fit``: same net and epochs, no scheduler."""
    net = make_net(p, device=device)
    with _Clock(device) as clock:
        torch.manual_seed(seed)
        net.fit(X, y)
    return clock.seconds


def autoclr_fit(p: Problem, X, y, device="cpu", seed=0, bounds=None):
    """``AutoCLR.fit``: (seconds, fitted estimator, seconds of its range test).

    With ``bounds`` given there is no range test: the cyclical fit phase only.
    """
    base_lr, max_lr = bounds if bounds is not None else (None, None)
    auto = AutoCLR(make_net(p), base_lr=base_lr, max_lr=max_lr, device=device,
                   random_state=seed)
    with _Clock(device) as clock, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto.fit(X, y)
    rt = auto.range_test_

    if auto.cycle_plan_.n_epochs != p.max_epochs:
        raise RuntimeError(
            f"AutoCLR trained {auto.cycle_plan_.n_epochs} epochs, the plain fit "
            f"{p.max_epochs}: choose max_epochs as a multiple of 2 * step_size_factor.")
    return clock.seconds, auto, 0.0 if rt is None else rt.timings["total"]


# ---------------------------------------------------------------------- memory
def _status_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss():
    """Reset the kernel's RSS high-water mark (Linux >= 4.0); False if not allowed."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        return False
    return True


def memory_child(mode, p: Problem, device="cpu"):
    """Peak memory of one fit in this process: run in a fresh subprocess.

    The baseline is taken after the imports, the data and a first optimizer
    (which imports ``torch._dynamo``), so the increase above it is what the
    fit itself needs.
    """
    torch.set_num_threads(1)
    X, y = make_data(p)
    torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    gc.collect()
    cuda = torch.device(device).type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    baseline = _status_bytes("VmRSS")
    # the imports peak above the baseline and would hide the fits' peaks
    reset = _reset_peak_rss()
    if mode == "plain":
        net = make_net(p, device=device).fit(X, y)
        fitted = net
    else:
        fitted = autoclr_fit(p, X, y, device=device)[1]
        net = fitted.net_
    gc.collect()
    out = {
        "mode": mode,
        "baseline_rss": baseline,
        "peak_rss": _status_bytes("VmHWM") if reset
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
        "peak_reset": reset,
    }
    if cuda:
        n_bytes = sum(t.numel() * t.element_size() for t in net.module_.state_dict().values())
        out.update(
            cuda_peak=torch.cuda.max_memory_allocated(),
            cuda_after_fit=torch.cuda.memory_allocated(),
            cuda_module_bytes=n_bytes,
        )
        del fitted, net
        gc.collect()
        out["cuda_after_del"] = torch.cuda.memory_allocated()
    return out


def measure_memory(p: Problem, device="cpu", timeout=600):
    """Run :func:`memory_child` for the plain fit and AutoCLR in fresh subprocesses."""
    result = {}
    for mode in ("plain", "autoclr"):
        proc = subprocess.run(
            [sys.executable, __file__, "--memory-child", mode, json.dumps(asdict(p)),
             "--device", device],
            capture_output=True, text=True, timeout=timeout, cwd=ROOT,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"memory child failed:\n{proc.stderr[-2000:]}")
        result[mode] = json.loads(proc.stdout.strip().splitlines()[-1])
    plain, auto = result["plain"], result["autoclr"]
    result["rss_ratio"] = auto["peak_rss"] / plain["peak_rss"]
    result["rss_extra_mb"] = (auto["peak_rss"] - plain["peak_rss"]) / 2**20
    if "cuda_peak" in plain:
        result["cuda_ratio"] = auto["cuda_peak"] / max(plain["cuda_peak"], 1)
    return result


# ------------------------------------------------------------------- the runs
def _summary(values):
    values = [v for v in values if v is not None]
    if not values:
        return None
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}


def run_problem(p: Problem, device="cpu", repeats=5, seed=0, peer=None, log=print):
    """Time all contenders on one problem; ratios per repeat, then their medians."""
    peer = peer_available() if peer is None else peer
    X, y = make_data(p, seed)
    # warm-up: first calls pay one-off costs (torch._dynamo import, allocator)
    t_rt, _, result = our_range_test(p, X, y, device, seed)
    n_done = len(result.lrs)
    lr_path = (float(result.lrs[0]), float(result.lrs[-1]))
    bare_loop(p, X, y, min(n_done, 20), device, seed)
    _, auto, _ = autoclr_fit(replace(p, max_epochs=min(p.max_epochs, 12)), X, y, device, seed)
    bounds = (auto.base_lr_, auto.max_lr_)
    if peer:
        peer_range_test(p, X, y, min(n_done, 20), lr_path, device, seed)

    contenders = ["bare", "rt", "plain", "phase", "full"] + (["peer"] if peer else [])
    rows = []
    for r in range(repeats):
        order = contenders[r % len(contenders):] + contenders[: r % len(contenders)]
        t = {}
        for name in order:
            gc.collect()
            if name == "bare":
                t["bare"] = bare_loop(p, X, y, n_done, device, seed)
            elif name == "rt":
                t["rt"], phases, res = our_range_test(p, X, y, device, seed)
                # the phases come from the test's own (wall) clock: shares are
                # taken within it, whatever clock times the contenders
                share = t["rt"] / phases["total"]
                t["score"] = phases["score"] * share
                t["steps"] = phases["train"] * share
                t["setup"] = phases["setup"] * share
                if len(res.lrs) != n_done:
                    raise RuntimeError("the range test is not deterministic")
            elif name == "peer":
                t["peer"] = peer_range_test(p, X, y, n_done, lr_path, device, seed)
            elif name == "plain":
                t["plain"] = plain_fit(p, X, y, device, seed)
            elif name == "phase":
                t["phase"] = autoclr_fit(p, X, y, device, seed, bounds=bounds)[0]
            elif name == "full":
                t["full"], _, t["full_rt"] = autoclr_fit(p, X, y, device, seed)
        rows.append(t)
        log(f"  {p.name} repeat {r + 1}/{repeats}: " + ", ".join(
            f"{k}={v:.3f}s" for k, v in t.items()))

    def ratios(f):
        return _summary([f(t) for t in rows])

    return {
        "problem": asdict(p),
        "n_iter": n_done,
        "n_iter_planned": result.n_iter,
        "fit_iter": result.fit_iter,
        "n_train": result.n_train,
        "n_valid": result.n_valid,
        "n_eval": len(result.scores),
        "stop_reason": result.stop_reason,
        "bounds": bounds,
        "times": {k: _summary([t[k] for t in rows if k in t]) for k in rows[0]},
        "rt_bare": ratios(lambda t: t["rt"] / t["bare"]),
        "rt_train_bare": ratios(lambda t: t["steps"] / t["bare"]),
        "score_share": ratios(lambda t: t["score"] / t["rt"]),
        "rt_peer": ratios(lambda t: t["rt"] / t["peer"] if "peer" in t else None),
        "rt_noscore_peer": ratios(
            lambda t: (t["rt"] - t["score"]) / t["peer"] if "peer" in t else None),
        "phase_plain": ratios(lambda t: t["phase"] / t["plain"]),
        "full_plain": ratios(lambda t: t["full"] / t["plain"]),
        "bare_cv": statistics.pstdev([t["bare"] for t in rows])
        / statistics.mean([t["bare"] for t in rows]),
    }


def machine_info(device):
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    info = {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "load_avg": os.getloadavg(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if torch.device(device).type == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


# ------------------------------------------------------------------ reporting
def _fmt(s, target=None):
    if s is None:
        return "n/a"
    text = f"{s['median']:.3f} ({s['min']:.2f}-{s['max']:.2f})"
    if target is not None:
        text += " ok" if s["median"] <= target else " MISS"
    return text


def _single(value, target=None):
    if value is None:
        return "n/a"
    return f"{value:.3f}" + ("" if target is None else
                             (" ok" if value <= target else " MISS"))


def format_report(results, machine, command, memory=None):
    """Markdown tables of the ratios, the scaling and the memory."""
    lines = [
        f"Command: `{command}`",
        "",
        f"Machine: {machine['cpu']}, {machine['cores']} cores, "
        f"torch {machine['torch']} ({machine['torch_threads']} thread), "
        f"Python {machine['python']}, device `{machine['device']}`"
        + (f" ({machine['gpu']})" if "gpu" in machine else "")
        + f"; load average at start {machine['load_avg'][0]:.2f}; {machine['date']}.",
        "",
        "Ratios: median over the repeats (min-max in brackets); `ok` / `MISS` against"
        " the target. Clock: "
        + ("process CPU time (one torch thread; robust to other jobs on the machine)"
           if machine.get("clock") == "cpu" else "wall time") + ".",
        "",
        "| ratio | target | " + " | ".join(r["problem"]["name"] for r in results) + " |",
        "|---|---|" + "---|" * len(results),
    ]
    for key, (target, label) in TARGETS.items():
        if key in ("rss_ratio", "cuda_ratio"):
            if not memory:
                continue
            vals = [memory.get(r["problem"]["name"], {}).get(key) for r in results]
            if all(v is None for v in vals):
                continue
            cells = [_single(v, target) for v in vals]
        else:
            cells = [_fmt(r[key], target) for r in results]
        lines.append(f"| {label} | {'-' if target is None else f'<= {target:.2f}'} | "
                     + " | ".join(cells) + " |")
    lines += [
        "",
        "Noise: coefficient of variation of the bare-loop time over the repeats: "
        + ", ".join(f"{r['problem']['name']} {r['bare_cv']:.1%}" for r in results) + ".",
        "",
        "Median seconds per run, and the range test's shape:",
        "",
        "| problem | samples | epochs | range-test iterations (train / scored) "
        "| bare loop | range test: all = setup + steps + scoring | torch-lr-finder "
        "| plain fit | fit phase | AutoCLR.fit (its range test) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        t, p = r["times"], r["problem"]

        def sec(k, t=t):
            return "n/a" if t.get(k) is None else f"{t[k]['median']:.3f}"

        lines.append(
            f"| {p['name']} | {p['n_samples']} | {p['max_epochs']} | {r['n_iter']} "
            f"({r['n_train']} / {r['n_valid']} x {r['n_eval']}) | {sec('bare')} "
            f"| {sec('rt')} = {sec('setup')} + {sec('steps')} + {sec('score')} "
            f"| {sec('peer')} | {sec('plain')} | {sec('phase')} "
            f"| {sec('full')} ({sec('full_rt')}) |")
    by_model = {}
    for r in results:
        by_model.setdefault(r["problem"]["model"], []).append(r)
    by_model = {m: sorted(rs, key=lambda r: r["problem"]["n_samples"])
                for m, rs in by_model.items() if len(rs) >= 2}
    if by_model:
        lines += ["", "Scaling with the number of samples (larger / smaller size):", "",
                  "| model | samples | plain fit | fit phase | AutoCLR.fit | range test "
                  "| range-test iterations |", "|---|---|---|---|---|---|---|"]
    for model, rs in by_model.items():
        a, b = rs[0], rs[-1]

        def grow(k, a=a, b=b):
            return f"{b['times'][k]['median'] / a['times'][k]['median']:.2f}x"

        lines.append(
            f"| {model} | {a['problem']['n_samples']} -> {b['problem']['n_samples']} "
            f"({b['problem']['n_samples'] / a['problem']['n_samples']:.0f}x) "
            f"| {grow('plain')} | {grow('phase')} | {grow('full')} | {grow('rt')} "
            f"| {a['n_iter']} -> {b['n_iter']} |")
    if memory:
        lines += ["", "Peak memory, each fit in a fresh process (MiB; the baseline is "
                  "the process after imports and data):", "",
                  "| problem | X MiB | baseline | plain fit peak | AutoCLR.fit peak "
                  "| extra | ratio |", "|---|---|---|---|---|---|---|"]
        for name, m in memory.items():
            pl, au = m["plain"], m["autoclr"]
            lines.append(
                f"| {name} | {m['x_mib']:.1f} | {pl['baseline_rss'] / 2**20:.0f} "
                f"| {pl['peak_rss'] / 2**20:.0f} (+{(pl['peak_rss'] - pl['baseline_rss']) / 2**20:.0f}) "  # noqa: E501
                f"| {au['peak_rss'] / 2**20:.0f} (+{(au['peak_rss'] - au['baseline_rss']) / 2**20:.0f}) "  # noqa: E501
                f"| {m['rss_extra_mb']:+.1f} | {m['rss_ratio']:.3f} |")
            if "cuda_ratio" in m:
                lines.append(
                    f"| {name} (CUDA peak; allocated after fit / after del, module "
                    f"{au['cuda_module_bytes'] / 2**20:.1f}) | | "
                    f"| {pl['cuda_peak'] / 2**20:.1f} ({pl['cuda_after_fit'] / 2**20:.1f}"
                    f" / {pl['cuda_after_del'] / 2**20:.1f}) "
                    f"| {au['cuda_peak'] / 2**20:.1f} ({au['cuda_after_fit'] / 2**20:.1f}"
                    f" / {au['cuda_after_del'] / 2**20:.1f}) "
                    f"| {(au['cuda_peak'] - pl['cuda_peak']) / 2**20:+.1f} "
                    f"| {m['cuda_ratio']:.3f} |")
    return "\n".join(lines)


def write_doc(report, path=DOC):
    """Replace the generated block of ``path`` (between the markers) by ``report``."""
    block = f"{BEGIN}\n{report}\n{END}"
    text = path.read_text() if path.exists() else f"# Speed benchmark\n\n{BEGIN}\n{END}\n"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + block + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def memory_problems(problems, quick=False):
    """The timing problems with fewer epochs (peaks do not grow with epochs), and a
    large tabular set where a copy of X would show."""
    extra = Problem("mlp-large-X", "mlp", 20_000 if quick else 200_000, batch_size=256,
                    max_epochs=4)
    return [replace(p, max_epochs=12) for p in problems] + [extra]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--quick", action="store_true",
                        help="small problems, 2 repeats, no file written")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--clock", choices=("auto", "cpu", "wall"), default="auto",
                        help="'auto': process CPU time on CPU (robust on a shared "
                        "machine), wall time on CUDA")
    parser.add_argument("--no-memory", action="store_true")
    parser.add_argument("--only", help="comma-separated problem names")
    parser.add_argument("--out", default=None,
                        help=f"markdown file to update (default {DOC.relative_to(ROOT)}; "
                        "'-' for none)")
    parser.add_argument("--json", help="also dump the raw results here")
    parser.add_argument("--memory-child", nargs=2, metavar=("MODE", "PROBLEM"),
                        help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    device = resolve_device(args.device)
    if args.memory_child:
        mode, problem = args.memory_child
        print(json.dumps(memory_child(mode, Problem(**json.loads(problem)), device)))
        return None
    torch.set_num_threads(1)
    clock = args.clock
    if clock == "auto":
        clock = "wall" if torch.device(device).type == "cuda" else "cpu"
    set_clock(clock)
    repeats = 2 if args.quick and args.repeats == 5 else args.repeats
    problems = default_problems(args.quick)
    if args.only:
        keep = set(args.only.split(","))
        problems = [p for p in problems if p.name in keep]
    machine = machine_info(device)
    machine["clock"] = clock
    start = time.perf_counter()
    results = []
    for p in problems:
        print(f"{p.name}: {p.model}, {p.n_samples} samples, {p.max_epochs} epochs",
              flush=True)
        results.append(run_problem(p, device, repeats))
    memory = {}
    if not args.no_memory:
        for p in memory_problems(problems, args.quick):
            print(f"memory: {p.name}", flush=True)
            m = measure_memory(p, device)
            m["x_mib"] = make_data(replace(p, n_samples=1))[0].nbytes * p.n_samples / 2**20
            memory[p.name] = m
    machine["load_avg_end"] = os.getloadavg()
    machine["seconds"] = time.perf_counter() - start
    command = "python benchmarks/speed.py" + ("" if argv is None and len(sys.argv) == 1
                                              else " " + " ".join(argv or sys.argv[1:]))
    report = format_report(results, machine, command, memory)
    report += (f"\n\nLoad average at the end {machine['load_avg_end'][0]:.2f}; the whole "
               f"run took {machine['seconds']:.0f} s.")
    print()
    print(report)
    out = args.out if args.out is not None else ("-" if args.quick else str(DOC))
    if out != "-":
        write_doc(report, Path(out))
        print(f"\nwrote {out}")
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": machine, "results": results, "memory": memory}, indent=1,
            default=float))
    return results, memory


if __name__ == "__main__":
    main()
