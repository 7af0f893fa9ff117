"""GPU check: the speed ratios of ``benchmarks/speed.py`` on a mid-size CNN, on CUDA.

    python benchmarks/gpu_check.py              # needs a CUDA GPU; under 5 minutes
    python benchmarks/gpu_check.py --cpu-tiny   # the same code path, tiny, on CPU

On CUDA it times, side by side and with wall time synchronised with the
device, the bare PyTorch loop, ``autoclr.range_test``, torch-lr-finder (when
installed), a plain skorch ``fit``, the cyclical fit phase and the whole
``AutoCLR.fit`` (``device="auto"``) on a CNN (3 x 32 x 32 generated images,
64 and 128 filters) at two data sizes, measures peak CUDA memory and what stays
allocated after the fit (each fit in a fresh process), and counts the host
synchronisations of the range test with ``torch.cuda.set_sync_debug_mode``.
Without CUDA it exits with a message, unless ``--cpu-tiny`` asks for a tiny
CPU run of the same functions (used by the test suite).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import speed  # noqa: E402

#: the mid-size CNN of the check, at two data sizes
GPU_PROBLEMS = [
    speed.Problem("cnn32-10k", "cnn", 10_000, batch_size=128, max_epochs=12,
                  channels=3, side=32, width=64),
    speed.Problem("cnn32-20k", "cnn", 20_000, batch_size=128, max_epochs=12,
                  channels=3, side=32, width=64),
]
#: the same code path on a CPU, in a few seconds
TINY_PROBLEMS = [
    speed.Problem("cnn-tiny-256", "cnn", 256, batch_size=32, max_epochs=4, width=4),
]


def count_host_syncs(fn, device):
    """Run ``fn()`` and count the host synchronisations it makes.

    On CUDA: the warnings of ``torch.cuda.set_sync_debug_mode("warn")``,
    which flags every synchronising CUDA call. On CPU (a proxy): calls of the
    tensor methods that would synchronise on a GPU (``item``, ``tolist``,
    ``cpu``, ``numpy``, ``__bool__``, ``__float__``, ``__int__``).
    Returns ``(result of fn, count)``.
    """
    if torch.device(device).type == "cuda":
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                out = fn()
            finally:
                torch.cuda.set_sync_debug_mode("default")
        return out, sum("synchroniz" in str(w.message) for w in caught)
    names = ("item", "tolist", "cpu", "numpy", "__bool__", "__float__", "__int__")
    originals = {name: getattr(torch.Tensor, name) for name in names}
    count = [0]

    def counting(original):
        def method(self, *args, **kwargs):
            count[0] += 1
            return original(self, *args, **kwargs)

        return method

    for name, original in originals.items():
        setattr(torch.Tensor, name, counting(original))
    try:
        out = fn()
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)
    return out, count[0]


def run(problems, device, repeats, memory=True, log=print):
    """The speed ratios, memory and host-sync count for each problem."""
    results, mem, syncs = [], {}, {}
    for p in problems:
        log(f"{p.name}: {p.n_samples} images {p.channels}x{p.side}x{p.side}, "
            f"batch {p.batch_size}, {p.max_epochs} epochs, device {device}")
        results.append(speed.run_problem(p, device, repeats, log=log))
        X, y = speed.make_data(p)
        result, n_sync = count_host_syncs(
            lambda p=p, X=X, y=y: speed.range_test(speed.make_net(p, device=device), X, y,
                                                   random_state=0, device=device),
            device)
        syncs[p.name] = (n_sync, len(result.lrs), len(result.scores))
        if memory:
            m = speed.measure_memory(replace(p, max_epochs=4), device)
            m["x_mib"] = X.nbytes / 2**20
            mem[p.name] = m
    return results, mem, syncs


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cpu-tiny", action="store_true",
                        help="run a tiny version of the check on the CPU")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true")
    args = parser.parse_args(argv)
    if args.cpu_tiny:
        device, problems, repeats = "cpu", TINY_PROBLEMS, 1
    elif not torch.cuda.is_available():
        sys.exit("gpu_check: no CUDA device is available, so there is nothing to "
                 "check here. Run it on a machine with a CUDA GPU, or pass --cpu-tiny "
                 "to run the same code path on a tiny CPU problem.")
    else:
        device, problems, repeats = speed.resolve_device("auto"), GPU_PROBLEMS, args.repeats
    torch.set_num_threads(1)
    speed.set_clock("wall")
    start = time.perf_counter()
    machine = speed.machine_info(device)
    machine["clock"] = "wall"
    results, mem, syncs = run(problems, device, repeats, memory=not args.no_memory)
    command = "python benchmarks/gpu_check.py" + (
        " " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()
    report = speed.format_report(results, machine, command, mem)
    report += "\n\nHost synchronisations during one range test: " + ", ".join(
        f"{name} {n} for {it} iterations and {ev} evaluations"
        for name, (n, it, ev) in syncs.items()) + "."
    report += f"\n\nThe check took {time.perf_counter() - start:.0f} s."
    print()
    print(report)
    return results, mem, syncs


if __name__ == "__main__":
    main()
