"""Real-data benchmark: AutoCLR against LR grids, LR finders and LR-free optimizers.

21 offline problems (``benchmarks/realdata_problems.py``), 5 seeds, the same
epoch budget for every contender. One command regenerates the block between
the ``realdata`` markers in ``docs/benchmarks.md``, the figure
``docs/realdata_ranks.png`` and the raw results::

    .venv/bin/pip install --no-deps -r benchmarks/requirements.txt
    .venv/bin/python benchmarks/realdata.py                 # everything, 5 seeds
    .venv/bin/python benchmarks/realdata.py --only autoclr  # AutoCLR alone, peers cached
    .venv/bin/python benchmarks/realdata.py --variant linear --autoclr-params '{"ramp": "linear"}'
    .venv/bin/python benchmarks/realdata.py --variant plateau \\
        --detector-constants '{"TOP_POSITION": 0}'
    .venv/bin/python benchmarks/realdata.py --quick         # smoke run, a few minutes
    .venv/bin/python benchmarks/realdata.py --group small   # the small-tables group

``--group small`` runs the small-tables group of issue 14 alone (15 tables under
1,000 rows, each with ``train_split=None`` and with skorch's default split; its
own cache, raw results ``docs/benchmarks_realdata_small.json`` and block between
the ``realdata-small`` markers, written by ``realdata_small.py``); its oracle
``grid_test`` is the LR with the best seed-mean test score, where the 21
problems keep the best LR of each seed.

Contenders (``CONTENDERS``):

- ``autoclr``: ``AutoCLR(net, random_state=seed)``, default options;
- ``grid_valid`` / ``grid_test``: 7 fixed LRs (half-decade steps; 1e-3 .. 1
  for SGD, 1e-4 .. 1e-1 for Adam), each trained fully; the one best on the
  net's validation split, and the one best on test (an oracle); both cost
  all 7 runs;
- ``prodigy``: ``prodigyopt.Prodigy`` with ``lr=1.0`` and its defaults;
- ``schedulefree``: ``schedulefree.AdamWScheduleFree`` with its defaults
  (``lr=0.0025``, no warmup), switched between train and eval mode by
  :class:`ScheduleFreeMode`;
- ``adam``: Adam at ``lr=1e-3``; ``sgd``: SGD with momentum 0.9 at skorch's
  ``lr=0.01`` (the grid's run when the grid uses that optimizer);
- ``lrfinder_clr``: torch-lr-finder's steepest-gradient suggestion ``s``,
  trained as ``AutoCLR(net, base_lr=s / 4, max_lr=s)``;
- ``valley_clr``: fastai's ``valley`` suggestion on fastai's ``lr_find``
  curve, trained the same way.

Every contender but AutoCLR is cached per run in
``benchmarks/results/realdata_peers.json`` (key: problem, seed, epochs and a
hash of the net config and data), so a detector change reruns AutoCLR alone.
Failed runs are recorded with their error (score NaN, ranked last), never
raised; they are cached too, and retried by the next run that asks for
their contender (not by ``--only autoclr``).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import os
import re
import sys
import time
import traceback
import warnings
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import accuracy_score, balanced_accuracy_score, r2_score, roc_auc_score
from skorch.callbacks import Callback

sys.path.insert(0, str(Path(__file__).resolve().parent))

from machine import machine_info  # noqa: E402
from realdata_problems import PROTOCOLS, describe, get_problems  # noqa: E402

from autoclr import AutoCLR  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
PEERS_FILE = "realdata_peers.json"
RAW_FILE = "benchmarks_realdata.json"
CURVES_FILE = "realdata_range_tests.json"
FIGURE = "realdata_ranks.png"
#: the small-tables group keeps its own files (the 21 problems' cache stays as it is)
SMALL_FILES = dict(peers="realdata_small_peers.json", raw="benchmarks_realdata_small.json",
                   curves="realdata_small_range_tests.json")
#: bump when a peer's protocol changes: old cache entries are then ignored
PEERS_VERSION = 1

CONTENDERS = ["autoclr", "grid_valid", "grid_test", "prodigy", "schedulefree", "adam", "sgd",
              "lrfinder_clr", "valley_clr"]
ORACLE = "grid_test"
GRID_SIZE = 7
GRIDS = {"SGD": (1e-3, 1.0), "Adam": (1e-4, 1e-1)}
SGD_LR = 0.01
ADAM_LR = 1e-3
PRODIGY_LR = 1.0
#: the LR finder runs as long as AutoCLR's default range test did when the peers were
#: cached: 16 epochs of its training split, clipped to [100, 400] iterations (since
#: issue 14 AutoCLR's test is also at most a quarter of the fit; the finder's is not)
FINDER_EPOCHS, FINDER_MIN_ITER, FINDER_MAX_ITER = 16, 100, 400
FINDER_RANGE = (1e-6, 1.0)
#: torch-lr-finder's plot(suggest_lr=True) trims these before its steepest-gradient rule
FINDER_SKIP_START, FINDER_SKIP_END = 10, 5
#: fastai's lr_find defaults
FASTAI_RANGE, FASTAI_ITER, FASTAI_BETA, FASTAI_STOP = (1e-7, 10.0), 100, 0.98, 4.0
#: the cyclical schedule's base_lr is max_lr / SHORTCUT for both LR finders
SHORTCUT = 4.0
#: targets of the issue
TOL_ORACLE = {"acc": 0.005, "r2": 0.01}
TOL_SGD = {"acc": 0.01, "r2": 0.01}
ORACLE_SHARE = 0.9
MAX_SPREAD = 2.0
MAX_COST = 0.25
QUICK_PROBLEMS = ["wine", "mortgage_denial", "diabetes"]
QUICK_SMALL = ["wine", "diabetes"]
QUICK_EPOCHS = 12
ABOUT = {
    "autoclr": "`AutoCLR(net, random_state=seed)`, default options (range test included "
               "in its cost)",
    "grid_valid": "7 fixed LRs (1e-3 .. 1 for SGD, 1e-4 .. 1e-1 for Adam, half-decade steps), "
                  "each trained fully; the best on the net's validation split, scored on "
                  "test; costs all 7 runs",
    "grid_test": "the same grid, the best on test: an oracle, an upper bound",
    "prodigy": "`prodigyopt.Prodigy`, lr=1.0 and its defaults",
    "schedulefree": "`schedulefree.AdamWScheduleFree`, its defaults (lr=0.0025, no warmup), "
                    "train/eval mode switched by a callback",
    "adam": "Adam at lr=1e-3 (the grid's run on Adam problems)",
    "sgd": "SGD, momentum 0.9, skorch's lr=0.01 (the grid's run on SGD problems)",
    "lrfinder_clr": "torch-lr-finder's steepest-gradient suggestion s (AutoCLR's range, 16 "
                    "epochs in [100, 400] iterations) as `AutoCLR(net, base_lr=s/4, "
                    "max_lr=s)`",
    "valley_clr": "fastai's `valley` on fastai's `lr_find` curve (1e-7 .. 10, 100 "
                  "iterations), trained the same way",
}
MARK_BEGIN = "<!-- realdata:begin (generated by benchmarks/realdata.py; edits are lost) -->"
MARK_END = "<!-- realdata:end -->"


# ------------------------------------------------------------------ scoring
def evaluate(model, data, classifier):
    """Test metrics: accuracy, balanced accuracy, ROC AUC (binary), or R^2.

    A regressor with non-finite predictions scores 0, the R^2 of a constant
    prediction; a classifier with non-finite probabilities gets AUC 0.5.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pred = np.asarray(model.predict(data.X_test))
        if not classifier:
            pred = pred.ravel()
            finite = bool(np.all(np.isfinite(pred)))
            score = float(r2_score(data.y_test.ravel(), pred)) if finite else 0.0
            return dict(score=score, diverged=not finite)
        out = dict(score=float(accuracy_score(data.y_test, pred)),
                   bal_acc=float(balanced_accuracy_score(data.y_test, pred)),
                   single_class=bool(len(np.unique(pred)) == 1))
        if len(data.classes) == 2:
            proba = np.asarray(model.predict_proba(data.X_test))[:, 1]
            finite = bool(np.all(np.isfinite(proba)))
            out["auc"] = float(roc_auc_score(data.y_test, proba)) if finite else 0.5
    return out


def _ipe(net, data):
    """Iterations per epoch of the net's training split."""
    ds_train, _ = net.get_split_datasets(data.X_train, data.y_train)
    return math.ceil(len(ds_train) / net.batch_size)


def _valid_score(net, classifier):
    """Last epoch's validation accuracy, or minus the validation loss (None without a split)."""
    if net.train_split is None:
        return None
    value = net.history[-1, "valid_acc"] if classifier else -net.history[-1, "valid_loss"]
    return float(value) if np.isfinite(value) else -math.inf


# ---------------------------------------------------------------- contenders
class ScheduleFreeMode(Callback):
    """Switch a schedule-free optimizer to train mode for training batches, else eval.

    Validation batches and everything after training (``predict``) then use
    the averaged weights, as the schedulefree README asks.
    """

    def on_batch_begin(self, net, batch=None, training=None, **kwargs):
        if training:
            net.optimizer_.train()
        else:
            net.optimizer_.eval()

    def on_train_end(self, net, **kwargs):
        net.optimizer_.eval()


def _seeded_net(problem, seed, **params):
    net = problem.make_net(iterator_train__generator=torch.Generator().manual_seed(seed),
                           **params)
    torch.manual_seed(seed)
    net.initialize()
    return net


def run_fixed(problem, seed, optimizer=None, lr=SGD_LR, callbacks=()):
    """One fit at a fixed LR (or an LR-free optimizer)."""
    data = problem.data()
    net = _seeded_net(problem, seed, optimizer=optimizer, lr=lr, callbacks=list(callbacks))
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        net.partial_fit(data.X_train, data.y_train)
    wall = time.perf_counter() - t
    return dict(evaluate(net, data, problem.classifier), lr=lr, wall=wall,
                iterations=len(net.history) * _ipe(net, data),
                valid_score=_valid_score(net, problem.classifier))


def _retried_iterations(messages):
    """Iterations of a range test AutoCLR threw away before its one retry."""
    found = [re.search(r"after (\d+) of \d+ iterations", m) for m in messages]
    return sum(int(m.group(1)) for m in found if m and "Retrying" in m.string)


def _rounded(values, digits=4):
    return [float(f"{v:.{digits}g}") if np.isfinite(v) else None for v in np.asarray(values)]


def run_autoclr(problem, seed, params=None):
    """``AutoCLR(net, random_state=seed, **params)``: scores, bounds, warnings, curves."""
    data = problem.data()
    t = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        auto = AutoCLR(problem.make_net(), random_state=seed, **(params or {}))
        auto.fit(data.X_train, data.y_train)
    wall = time.perf_counter() - t
    messages = sorted({f"{w.category.__name__}: {w.message}" for w in caught
                       if "target size" not in str(w.message)})
    plan, rt = auto.cycle_plan_, auto.range_test_
    rec = dict(evaluate(auto, data, problem.classifier), wall=wall,
               base_lr=auto.base_lr_, max_lr=auto.max_lr_, step_size=auto.step_size_,
               factor=plan.factor, n_cycles=plan.n_cycles, n_epochs=plan.n_epochs,
               kept_cycle=auto.cycle_report_.kept_cycle, kept=auto.cycle_report_.weights,
               warnings=[m[:400] for m in messages])
    iterations = fit_iter = len(auto.net_.history) * plan.iterations_per_epoch
    if rt is not None:
        b = rt.bounds
        iterations += len(rt.lrs) + _retried_iterations(messages)
        rec.update(
            method=b.method, fallback=bool(b.fallback), explanation=b.explanation,
            onset_lr=b.onset_lr, plateau_lr=b.plateau_lr, peak_lr=b.peak_lr,
            fall_lr=b.fall_lr, rt_stop=rt.stop_reason, rt_iter=len(rt.lrs),
            rt_planned=rt.n_iter, rt_range=list(rt.lr_range), rt_wall=rt.wall_time,
            diverged_lr=rt.diverged_lr,
            curves=dict(eval_lrs=_rounded(rt.eval_lrs), scores=_rounded(rt.scores),
                        lrs=_rounded(rt.lrs), losses=_rounded(rt.losses),
                        smoothed_lrs=_rounded(b.smoothed_lrs),
                        smoothed=_rounded(b.smoothed)))
    rec["iterations"] = iterations
    rec["fit_iter"] = fit_iter  # the final fit's alone
    rec["epochs_run"] = len(auto.net_.history)
    return rec


def _cyclic_from(problem, seed, max_lr, finder):
    """Train the finder's suggestion as AutoCLR's cyclical schedule (no range test)."""
    data = problem.data()
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        auto = AutoCLR(problem.make_net(), base_lr=max_lr / SHORTCUT, max_lr=max_lr,
                       random_state=seed).fit(data.X_train, data.y_train)
    wall = time.perf_counter() - t
    train_iter = len(auto.net_.history) * auto.cycle_plan_.iterations_per_epoch
    return dict(evaluate(auto, data, problem.classifier), max_lr=max_lr,
                base_lr=max_lr / SHORTCUT, finder_iter=finder["n_iter"],
                iterations=train_iter + finder["n_iter"], wall=wall + finder["wall"],
                finder_wall=finder["wall"])


def _train_loader(net, data, seed):
    from torch.utils.data import DataLoader

    ds_train, _ = net.get_split_datasets(data.X_train, data.y_train)
    return DataLoader(ds_train, batch_size=net.batch_size, shuffle=True,
                      generator=torch.Generator().manual_seed(seed))


def torch_lr_finder(problem, seed):
    """torch-lr-finder 0.2.2 over 1e-6 .. 1; suggestion as its ``plot(suggest_lr=True)``.

    The suggestion (steepest descent of its smoothed loss, after trimming 10
    points at the start and 5 at the end) is computed here from its history,
    without drawing the plot.
    """
    from torch_lr_finder import LRFinder

    data = problem.data()
    net = _seeded_net(problem, seed)
    loader = _train_loader(net, data, seed)
    n_iter = int(np.clip(FINDER_EPOCHS * len(loader), FINDER_MIN_ITER, FINDER_MAX_ITER))
    t = time.perf_counter()
    finder = LRFinder(net.module_, net.optimizer_, net.criterion_, device="cpu")
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        finder.range_test(loader, start_lr=FINDER_RANGE[0], end_lr=FINDER_RANGE[1],
                          num_iter=n_iter)
    lrs, losses = finder.history["lr"], finder.history["loss"]
    if len(lrs) < FINDER_SKIP_START + FINDER_SKIP_END + 2:
        raise RuntimeError(f"torch-lr-finder stopped after {len(lrs)} iterations: too few "
                           "to suggest an LR.")
    lrs = lrs[FINDER_SKIP_START:-FINDER_SKIP_END]
    losses = np.array(losses[FINDER_SKIP_START:-FINDER_SKIP_END])
    lr = float(lrs[int(np.gradient(losses).argmin())])
    return dict(lr=lr, n_iter=len(finder.history["lr"]), wall=time.perf_counter() - t)


def valley(lrs, losses):
    """fastai's ``valley`` rule: 1/3 + 1/6 into the longest decreasing run of the loss.

    The longest decreasing subsequence is found by fastai's O(n^2) dynamic
    programme; the suggestion sits ``int(s) + int(s / 2)`` points after its
    start, with ``s`` a third of its length.
    """
    n = len(losses)
    longest = [1] * n
    start = end = 0
    for i in range(1, n):
        for j in range(i):
            if losses[i] < losses[j] and longest[i] < longest[j] + 1:
                longest[i] = longest[j] + 1
            if longest[end] < longest[i]:
                end = i
                start = end - longest[end]
    third = (end - start) / 3
    return float(lrs[start + int(third) + int(third / 2)])


def fastai_lr_find(problem, seed):
    """fastai's ``lr_find`` re-implemented: 100 iterations, LR exponential 1e-7 .. 10.

    The loss is smoothed by a debiased moving average (beta 0.98); the test
    stops when it exceeds 4 x its minimum. As fastai, the first tenth and the
    last 5 points are trimmed and the curve is cut at the first NaN before
    :func:`valley` reads it.
    """
    data = problem.data()
    net = _seeded_net(problem, seed)
    loader = _train_loader(net, data, seed)
    lo, hi = FASTAI_RANGE
    lrs, losses = [], []
    avg, best, it = 0.0, math.inf, 0
    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        while it < FASTAI_ITER:
            for Xi, yi in loader:
                lr = lo * (hi / lo) ** (it / FASTAI_ITER)
                for group in net.optimizer_.param_groups:
                    group["lr"] = lr
                loss = float(net.train_step((Xi, yi))["loss"])
                avg = FASTAI_BETA * avg + (1 - FASTAI_BETA) * loss
                smooth = avg / (1 - FASTAI_BETA ** (it + 1))
                lrs.append(lr)
                losses.append(smooth)
                it += 1
                best = min(best, smooth)
                if smooth > FASTAI_STOP * best or it >= FASTAI_ITER:
                    break
            else:
                continue
            break
    n_iter = len(lrs)
    lrs, losses = lrs[FASTAI_ITER // 10:-5], losses[FASTAI_ITER // 10:-5]
    nan = [i for i, v in enumerate(losses) if not np.isfinite(v)]
    if nan:
        lrs, losses = lrs[:nan[0]], losses[:nan[0]]
    if not lrs:
        raise RuntimeError(f"fastai's lr_find stopped after {n_iter} iterations: nothing "
                           "left to read after trimming.")
    return dict(lr=valley(lrs, losses), n_iter=n_iter, wall=time.perf_counter() - t)


# ------------------------------------------------------------------- plan
def grid_lrs(problem):
    lo, hi = GRIDS[problem.optimizer]
    return [float(lr) for lr in np.geomspace(lo, hi, GRID_SIZE)]


def _grid_id(lr):
    return f"grid:{lr:.3g}"


def peer_runs(problem):
    """Runs the peers need, and which run each single-run contender reads.

    ``sgd`` and ``adam`` read the grid's run when the grid uses their
    optimizer and LR.
    """
    runs = [_grid_id(lr) for lr in grid_lrs(problem)]
    alias = {}
    for name, opt, lr in (("sgd", "SGD", SGD_LR), ("adam", "Adam", ADAM_LR)):
        hit = [g for g in grid_lrs(problem) if math.isclose(g, lr)]
        if problem.optimizer == opt and hit:
            alias[name] = _grid_id(hit[0])
        else:
            alias[name] = name
            runs.append(name)
    for name in ("prodigy", "schedulefree", "lrfinder_clr", "valley_clr"):
        alias[name] = name
        runs.append(name)
    return runs, alias


#: the problems this worker process has already trained on (``_warm_up``)
_WARMED = set()


def _warm_up(problem, seed):
    """One untimed plain fit, the first time this worker meets ``problem``.

    The first fit in a process pays for loading kernels and allocating caches;
    the small group's cost column is AutoCLR's wall time over a plain fit timed
    right after it, so without this the first table each worker runs would
    charge that start-up to AutoCLR alone.
    """
    if problem.name not in _WARMED:
        run_fixed(problem, seed)
        _WARMED.add(problem.name)


def run_one(name, seed, run_id, epochs=None, params=None, constants=None, group="main"):
    """One run in a worker: ``(name, seed, run_id, record)``; errors are recorded.

    ``constants`` overrides module constants of ``autoclr._detect`` in this
    worker (``--detector-constants``), for a study of a detector rule. In the
    small group an AutoCLR run also times one plain fit of the same net and
    epochs at lr=0.01 (``plain_wall``), for its cost column.
    """
    torch.set_num_threads(1)
    if constants:
        import importlib

        for key, value in constants.items():
            # NAME is a constant of autoclr._detect; MODULE.NAME one of autoclr.MODULE
            module, _, attr = key.rpartition(".")
            module = importlib.import_module(f"autoclr.{module or '_detect'}")
            if not hasattr(module, attr):
                raise SystemExit(f"--detector-constants: {module.__name__} has no {attr}")
            setattr(module, attr, value)
    problem = get_problems([name], max_epochs=epochs, group=group)[0]
    t = time.perf_counter()
    try:
        if run_id.startswith("autoclr"):
            if group == "small":
                _warm_up(problem, seed)
            rec = run_autoclr(problem, seed, params)
            if group == "small":
                # the cost's denominator, timed in the same worker right after AutoCLR
                rec["plain_wall"] = run_fixed(problem, seed)["wall"]
        elif run_id.startswith("grid:"):
            lr = [g for g in grid_lrs(problem) if _grid_id(g) == run_id][0]
            rec = run_fixed(problem, seed, lr=lr)
        elif run_id == "sgd":
            rec = run_fixed(problem, seed, optimizer=torch.optim.SGD, lr=SGD_LR)
        elif run_id == "adam":
            rec = run_fixed(problem, seed, optimizer=torch.optim.Adam, lr=ADAM_LR)
        elif run_id == "prodigy":
            from prodigyopt import Prodigy

            rec = run_fixed(problem, seed, optimizer=Prodigy, lr=PRODIGY_LR)
        elif run_id == "schedulefree":
            from schedulefree import AdamWScheduleFree

            lr = AdamWScheduleFree.__init__.__defaults__[0]
            rec = run_fixed(problem, seed, optimizer=AdamWScheduleFree, lr=lr,
                            callbacks=[("schedulefree_mode", ScheduleFreeMode())])
        elif run_id == "lrfinder_clr":
            finder = torch_lr_finder(problem, seed)
            rec = _cyclic_from(problem, seed, finder["lr"], finder)
        elif run_id == "valley_clr":
            finder = fastai_lr_find(problem, seed)
            rec = _cyclic_from(problem, seed, finder["lr"], finder)
        else:
            raise ValueError(f"unknown run {run_id!r}")
    except Exception as exc:
        last = traceback.format_exception_only(type(exc), exc)[-1].strip()
        rec = dict(score=None, error=last[:500], wall=time.perf_counter() - t)
    return name, seed, run_id, rec


def _jsonable(obj):
    """Non-finite floats become None; numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {k: _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        return float(obj) if np.isfinite(obj) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _cache_key(problem, seed, run_id):
    return f"{problem.name}|{seed}|{problem.max_epochs}|{problem.config_hash()}|{run_id}"


def _load_json(path, default):
    return json.loads(path.read_text()) if path.exists() else default


def _write_json(path, obj, indent=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(_jsonable(obj), indent=indent, sort_keys=True) + "\n")
    tmp.replace(path)


# ------------------------------------------------------------------ assembly
def seed_mean_oracle(problem, seeds, runs):
    """The grid's run id with the best mean test score over ``seeds`` (None if all failed).

    A run id with a failed seed has no mean and is never chosen.
    """
    means = {}
    for lr in grid_lrs(problem):
        rid = _grid_id(lr)
        scores = [runs[(problem.name, seed, rid)].get("score") for seed in seeds]
        if all(sc is not None for sc in scores):
            means[rid] = float(np.mean(scores))
    return max(means, key=means.get) if means else None


def assemble(problem, seed, runs, autoclr, oracle_run=None):
    """The contenders' records of one problem and seed, from runs by id.

    ``grid_test`` is the seed's best grid run on test, or the grid run
    ``oracle_run`` when it is given (the small-tables group's seed-mean
    oracle). A net with ``train_split=None`` has no ``grid_valid``: there is
    no validation score to choose on.
    """
    _, alias = peer_runs(problem)
    out = {c: rec for c, rec in autoclr.items()}
    grid = [runs[_grid_id(lr)] for lr in grid_lrs(problem)]
    cost = dict(iterations=sum(g.get("iterations") or 0 for g in grid),
                wall=sum(g.get("wall") or 0 for g in grid))
    ok = [g for g in grid if g.get("score") is not None]
    if ok:
        # a diverged run's validation score is stored as null (JSON has no -inf)
        by_valid = max(ok, key=lambda g: -math.inf if g.get("valid_score") is None
                       else g["valid_score"])
        by_test = max(ok, key=lambda g: g["score"]) if oracle_run is None else runs[oracle_run]
        out["grid_valid"] = dict(by_valid, **cost)
        out["grid_test"] = dict(by_test, **cost)
    else:
        out["grid_valid"] = out["grid_test"] = dict(score=None, error=grid[0].get("error"),
                                                    **cost)
    if problem.protocol == "none":
        del out["grid_valid"]
    for name, run_id in alias.items():
        out[name] = runs[run_id]
    return out


# ------------------------------------------------------------------- summary
def _scores(results, contender, problem, key="score"):
    """Per-seed values (NaN for failed runs or missing metrics)."""
    recs = results.get(contender, {}).get(problem, {})
    return np.array([np.nan if recs[s].get(key) is None else recs[s][key]
                     for s in sorted(recs, key=int)], dtype=float)


def mean_scores(results, problems, contenders, key="score"):
    """problem -> contender -> mean over seeds (NaN when any seed failed)."""
    return {p: {c: float(np.mean(_scores(results, c, p, key))) if len(
        _scores(results, c, p, key)) else math.nan for c in contenders} for p in problems}


def ranks(means, contenders):
    """problem -> contender -> rank of the mean score (1 = best; ties averaged; NaN last)."""
    import pandas as pd

    out = {}
    for p, row in means.items():
        s = pd.Series({c: row[c] for c in contenders})
        out[p] = s.rank(ascending=False, method="average", na_option="bottom").to_dict()
    return out


def _spread(values):
    v = np.asarray(values, dtype=float)
    if not len(v) or not np.all(np.isfinite(v)):
        return math.nan
    return float(v.max() / v.min())


def _tag(info, tag):
    return tag in info["tags"]


def summarize(results, infos, contenders, auto="autoclr"):
    """Means, ranks and targets for one AutoCLR contender (``auto``) among the peers."""
    problems = [p for p in infos if all(p in results.get(c, {}) for c in contenders)]
    field = [auto if c == "autoclr" else c for c in contenders]
    means = mean_scores(results, problems, field)
    rk = ranks(means, field)
    rk_no_valid = ranks(means, [c for c in field if c != "grid_valid"])
    s = dict(problems=problems, contenders=field, means=means, ranks=rk,
             ranks_no_valid=rk_no_valid,
             mean_rank={c: float(np.mean([rk[p][c] for p in problems])) for c in field},
             mean_rank_no_valid={c: float(np.mean([rk_no_valid[p][c] for p in problems]))
                                 for c in field if c != "grid_valid"})
    s["targets"] = targets(results, infos, s, auto)
    return s


def targets(results, infos, s, auto):
    """The issue's targets, each ``(name, passed, detail)``, computed from the data."""
    problems, means = s["problems"], s["means"]
    out = []
    others = [c for c in s["contenders"] if c not in (auto, ORACLE)]
    best_other = min(others, key=lambda c: s["mean_rank"][c])
    r_auto, r_other = s["mean_rank"][auto], s["mean_rank"][best_other]
    others_nv = [c for c in others if c != "grid_valid"]
    best_nv = min(others_nv, key=lambda c: s["mean_rank_no_valid"][c])
    ok_nv = s["mean_rank_no_valid"][auto] < s["mean_rank_no_valid"][best_nv]
    out.append(("AutoCLR's mean rank is the best of all non-oracle contenders",
                r_auto < r_other,
                f"AutoCLR {r_auto:.2f}, best other {best_other} {r_other:.2f}; without "
                f"grid_valid in the field: AutoCLR {s['mean_rank_no_valid'][auto]:.2f}, "
                f"best other {best_nv} {s['mean_rank_no_valid'][best_nv]:.2f} "
                f"({'pass' if ok_nv else 'fail'})"))
    close, below_sgd = [], []
    for p in problems:
        kind = "acc" if infos[p]["task"] != "regression" else "r2"
        gap = means[p][auto] - means[p][ORACLE]
        if gap >= -TOL_ORACLE[kind]:
            close.append(p)
        if not means[p][auto] - means[p]["sgd"] >= -TOL_SGD[kind]:
            below_sgd.append(f"{p} ({_fmt_gap(means[p][auto] - means[p]['sgd'], kind)})")
    share = len(close) / len(problems)
    out.append((f"Within 0.5 pp accuracy / 0.01 R^2 of grid_test on >= "
                f"{ORACLE_SHARE:.0%} of problems", share >= ORACLE_SHARE,
                f"{len(close)}/{len(problems)} ({share:.0%}); not within: "
                + (", ".join(p for p in problems if p not in close) or "none")))
    out.append(("Never more than 1 pp accuracy / 0.01 R^2 below sgd", not below_sgd,
                "below: " + (", ".join(below_sgd) or "none")))
    imb = [p for p in problems if _tag(infos[p], "imbalanced")]
    worse = []
    for p in imb:
        for key, label in (("auc", "AUC"), ("bal_acc", "balanced accuracy")):
            a = np.mean(_scores(results, auto, p, key))
            b = np.mean(_scores(results, "sgd", p, key))
            if not a >= b:
                worse.append(f"{p} {label} {a:.3f} < {b:.3f}")
    out.append(("Imbalanced binary problems: ROC AUC and balanced accuracy not below sgd",
                not worse, "; ".join(worse) or f"all {len(imb)} problems"))
    stuck = []
    for p in imb:
        recs = results[auto][p]
        for seed, rec in recs.items():
            if not rec.get("single_class"):
                continue
            better = [c for c in s["contenders"] if c != auto
                      and (results[c][p][seed].get("bal_acc") or 0) > 0.5]
            if better:
                stuck.append(f"{p} seed {seed} (beaten by {', '.join(better)})")
    out.append(("No AutoCLR seed predicts only the majority class where another "
                "contender does better", not stuck, "; ".join(stuck) or "none"))
    spreads = {p: _spread(_scores(results, auto, p, "max_lr")) for p in problems}
    wide = [f"{p} ({v:.2f}x)" if np.isfinite(v) else f"{p} (failed seeds)"
            for p, v in spreads.items() if not v <= MAX_SPREAD]
    out.append((f"max_lr spread <= {MAX_SPREAD:g}x over the seeds on every problem",
                not wide, "over: " + (", ".join(wide) or "none")))
    costs = {p: cost_ratio(results, auto, p) for p in problems}
    dear = [f"{p} ({v:.0%})" if np.isfinite(v) else f"{p} (failed)"
            for p, v in costs.items() if not v <= MAX_COST]
    finite = [v for v in costs.values() if np.isfinite(v)]
    out.append((f"AutoCLR's cost <= {MAX_COST:.0%} of the grid's (iterations, range test "
                "included)", not dear,
                f"median {np.median(finite):.0%}, max {max(finite):.0%}; over: "
                + (", ".join(dear) or "none")))
    return out


def cost_ratio(results, auto, problem, key="iterations"):
    """Mean AutoCLR cost over the grid's (all 7 runs), NaN when a seed failed."""
    a = _scores(results, auto, problem, key)
    g = _scores(results, "grid_valid", problem, key)
    a = np.where(np.isnan(_scores(results, auto, problem)), np.nan, a)
    return float(np.mean(a) / np.mean(g))


def _fmt_gap(gap, kind):
    return f"{gap * 100:+.2f} pp" if kind == "acc" else f"{gap:+.3f} R^2"


# -------------------------------------------------------------------- report
def _cell(values, digits=3):
    v = np.asarray(values, dtype=float)
    if not len(v):
        return ""
    bad = int(np.isnan(v).sum())
    if bad == len(v):
        return f"failed ({bad}/{len(v)})"
    txt = f"{np.nanmean(v):.{digits}f} ± {np.nanstd(v, ddof=1) if len(v) > 1 else 0:.{digits}f}"
    return txt + (f" ({bad} failed)" if bad else "")


def _table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x) for x in row) + " |" for row in rows]
    return lines


def plot_ranks(s, infos, path):
    """Heatmap of each contender's rank on each problem."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems, cs = s["problems"], s["contenders"]
    R = np.array([[s["ranks"][p][c] for c in cs] for p in problems])
    fig, ax = plt.subplots(figsize=(1.0 * len(cs) + 2.5, 0.32 * len(problems) + 1.8))
    im = ax.imshow(R, cmap="viridis_r", aspect="auto", vmin=1, vmax=len(cs))
    for i, p in enumerate(problems):
        for j, c in enumerate(cs):
            failed = np.isnan(s["means"][p][c])
            ax.text(j, i, "x" if failed else f"{R[i, j]:g}", ha="center", va="center",
                    fontsize=7, color="w" if R[i, j] > len(cs) / 2 else "k")
    ax.set_xticks(range(len(cs)), [f"{c}\n{s['mean_rank'][c]:.2f}" for c in cs],
                  fontsize=7, rotation=30, ha="right")
    ax.set_yticks(range(len(problems)),
                  [f"{p} ({infos[p]['task'].split(',')[0]})" for p in problems], fontsize=7)
    fig.colorbar(im, ax=ax, label="rank (1 = best)", shrink=0.6)
    ax.set_title("Rank of the mean test score over seeds (x: a seed failed, ranked last);"
                 "\nunder each contender: its mean rank", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def report(raw, curves_note, figure):
    """The markdown block between the realdata markers."""
    results, infos, meta = raw["results"], raw["problems"], raw["meta"]
    infos = {p: infos[p] for p in [q.name for q in get_problems()] if p in infos}
    s = summarize(results, infos, CONTENDERS)
    problems, cs = s["problems"], s["contenders"]
    plot_ranks(s, infos, figure)
    L = [MARK_BEGIN, ""]
    for label, key in (("Full run (all contenders)", "full"),
                       ("AutoCLR-only rerun (peers from the cache)", "autoclr_only")):
        t = meta.get("timings", {}).get(key)
        if t:
            L.append(f"{label}: `{t['command']}`, {t['date']}, {t['runs']} runs in "
                     f"{t['wall'] / 60:.1f} min wall with {t['jobs']} process(es).  ")
    seeds = sorted({int(k) for p in problems for k in results["autoclr"][p]})
    L.append(f"Machine: {meta.get('machine', '?')}.  ")
    L.append(f"Seeds {seeds[0]}-{seeds[-1]} ({len(seeds)}); each problem's epoch budget as "
             f"listed; AutoCLR's range-test curves: {curves_note}. Wall times are noisy: "
             "other jobs shared the 2 cores.")
    L.append("")
    L += _table(["contender", "what it is"], [[f"`{c}`", d] for c, d in ABOUT.items()])
    L.append("")
    L.append("### Problems")
    L.append("")
    rows = []
    for p in problems:
        i = infos[p]
        rows.append([f"`{p}`", i["source"], f"{i['rows']:,} ({i['train']:,} / {i['test']:,})",
                     f"{i['columns']} -> {i['features']}", i["task"],
                     f"{i['optimizer']}, batch {i['batch_size']}, {i['max_epochs']} ep",
                     i["what"]])
    L += _table(["problem", "source", "rows (train / test)", "columns -> features", "task",
                 "net", "what was done"], rows)
    L.append("")
    cover = {t: [p for p in problems if _tag(infos[p], t)]
             for t in ("imbalanced", "10+ classes", "small", "large", "regression", "image")}
    L.append("Coverage: " + "; ".join(f"{t} {len(v)}" for t, v in cover.items())
             + f" (of {len(problems)}). Every net is `autoclr.models.MLP` (2 hidden layers, "
             "64 units, 32 on the small problems) but `digits_cnn`'s SmallCNN.")
    L.append("")
    L.append("### Mean rank over the problems (1 = best)")
    L.append("")
    rows = []
    for c in sorted(cs, key=lambda c: s["mean_rank"][c]):
        won = sum(1 for p in problems if s["ranks"][p][c] == min(s["ranks"][p].values()))
        failed = sum(1 for p in problems if np.isnan(s["means"][p][c]))
        nv = s["mean_rank_no_valid"].get(c)
        rows.append([c + (" (oracle)" if c == ORACLE else ""), f"{s['mean_rank'][c]:.2f}",
                     "" if nv is None else f"{nv:.2f}", won, failed])
    L += _table(["contender", "mean rank", "mean rank without grid_valid",
                 "problems ranked first", "problems with a failed seed"], rows)
    L.append("")
    L.append(f"![ranks per problem]({Path(figure).name})")
    L.append("")
    L.append("### Targets")
    L.append("")
    L += _table(["target", "result", "detail"],
                [[n, "pass" if ok else "**fail**", d] for n, ok, d in s["targets"]])
    L.append("")
    L += _variants_section(results, infos)
    L.append("### Test score per problem")
    L.append("")
    L.append("Accuracy (R^2 for regressions), mean ± sd over seeds; a failed seed makes the "
             "mean NaN for ranking. Last column: AutoCLR's rank among the "
             f"{len(cs)} contenders.")
    L.append("")
    rows = [[f"`{p}`"] + [_cell(_scores(results, c, p)) for c in cs]
            + [f"{s['ranks'][p]['autoclr']:g}"] for p in problems]
    L += _table(["problem"] + cs + ["AutoCLR rank"], rows)
    L.append("")
    L += _classifier_tables(results, infos, problems, cs)
    L += _autoclr_table(results, infos, problems)
    L += _notes(results, problems)
    L.append(MARK_END)
    return "\n".join(L), s


def _classifier_tables(results, infos, problems, cs):
    L = ["### Classifiers: balanced accuracy and ROC AUC", ""]
    clf = [p for p in problems if infos[p]["task"] != "regression"]
    rows = [[f"`{p}`"] + [_cell(_scores(results, c, p, "bal_acc")) for c in cs] for p in clf]
    L.append("Balanced accuracy, mean ± sd over seeds:")
    L.append("")
    L += _table(["problem"] + cs, rows)
    L.append("")
    binary = [p for p in clf if infos[p]["task"].startswith("binary")]
    rows = [[f"`{p}`" + (" (imbalanced)" if _tag(infos[p], "imbalanced") else "")]
            + [_cell(_scores(results, c, p, "auc")) for c in cs] for p in binary]
    L.append("ROC AUC (binary problems, `predict_proba[:, 1]`):")
    L.append("")
    L += _table(["problem"] + cs, rows)
    L.append("")
    rows = []
    for p in clf:
        counts = {c: int(np.nansum(_scores(results, c, p, "single_class"))) for c in cs}
        if any(counts.values()):
            rows.append([f"`{p}`"] + [counts[c] for c in cs])
    L.append("Seeds whose test predictions are all one class"
             + (":" if rows else ": none, for every contender."))
    L.append("")
    if rows:
        L += _table(["problem"] + cs, rows)
        L.append("")
    return L


def _autoclr_table(results, infos, problems):
    L = ["### AutoCLR's bounds and cost", ""]
    L.append("Bounds and the grid's chosen LRs: median over seeds; spread: max / min over "
             "seeds. Cost: mean "
             "iterations (range test included; the grid: all 7 runs) and wall time "
             "relative to the grid's. Method: the detector that set the bounds, with "
             "fallbacks counted.")
    L.append("")
    rows = []
    for p in problems:
        recs = [results["autoclr"][p][k] for k in sorted(results["autoclr"][p], key=int)]
        ok = [r for r in recs if r.get("score") is not None]
        if not ok:
            rows.append([f"`{p}`", "failed"] + [""] * 7)
            continue
        methods = sorted({r.get("method", "given") for r in ok})
        fallbacks = sum(bool(r.get("fallback")) for r in ok)
        mx = [r["max_lr"] for r in ok]
        grid = [np.median([results[g][p][k]["lr"] for k in results[g][p]
                           if results[g][p][k].get("lr")]) for g in ("grid_valid", "grid_test")]
        rows.append([
            f"`{p}`", f"{np.median([r['base_lr'] for r in ok]):.2g}", f"{np.median(mx):.2g}",
            f"{_spread(mx):.2f}x", f"{grid[0]:.2g} / {grid[1]:.2g}",
            f"{ok[0]['factor']:g} x {ok[0]['n_cycles']} cycles, "
            f"{ok[0]['n_epochs']} ep", ", ".join(methods) + (f" ({fallbacks} fallback)"
                                                            if fallbacks else ""),
            f"{cost_ratio(results, 'autoclr', p):.0%} / "
            f"{cost_ratio(results, 'autoclr', p, 'wall'):.0%}",
            f"{sum(len(r.get('warnings', [])) for r in ok)}"])
    L += _table(["problem", "base_lr", "max_lr", "max_lr spread",
                 "grid's LR (valid / test)", "half cycle x cycles",
                 "method", "cost vs grid (iterations / wall)", "warnings"], rows)
    L.append("")
    return L


def _notes(results, problems):
    """Failures and warnings, grouped by message."""
    L = []
    errors = {}
    for c in CONTENDERS:
        for p in problems:
            for seed, rec in results.get(c, {}).get(p, {}).items():
                if rec.get("error"):
                    errors.setdefault((c, p, rec["error"]), []).append(seed)
    if errors:
        L += ["### Failed runs", ""]
        for (c, p, err), seeds in errors.items():
            L.append(f"- `{c}` on `{p}`, seeds {', '.join(sorted(seeds))}: {err}")
        L.append("")
    warned = {}
    for p in problems:
        for seed, rec in results.get("autoclr", {}).get(p, {}).items():
            for w in rec.get("warnings", []):
                short = re.sub(r"[-+]?\d[\d.e+-]*", "#", w)[:160]
                warned.setdefault((p, short), (w, []))[1].append(seed)
    if warned:
        L += ["### Warnings AutoCLR raised (default options)", "",
              "Grouped by message up to its numbers; the numbers shown are the first "
              "seed's.", ""]
        for (p, _), (w, seeds) in warned.items():
            L.append(f"- `{p}`, seeds {', '.join(sorted(seeds))}: {w[:300]}")
        L.append("")
    return L


def _variants_section(results, infos):
    variants = sorted(c for c in results if c.startswith("autoclr["))
    if not variants:
        return []
    L = ["### AutoCLR variants", "",
         "Each variant ranked in place of `autoclr` against the same peers (its own targets "
         "passed out of 7), and its mean score against the default's.", ""]
    rows = []
    base = summarize(results, infos, CONTENDERS)
    for v in ["autoclr"] + variants:
        sv = summarize(results, infos, CONTENDERS, auto=v)
        common = [p for p in sv["problems"] if p in base["problems"]]
        diff = np.nanmean([sv["means"][p][v] - base["means"][p]["autoclr"] for p in common])
        rows.append([f"`{v}`", len(sv["problems"]), f"{sv['mean_rank'][v]:.2f}",
                     f"{sum(ok for _, ok, _ in sv['targets'])}/{len(sv['targets'])}",
                     f"{diff:+.4f}"])
    L += _table(["contender", "problems", "mean rank", "targets passed",
                 "mean score - autoclr's"], rows)
    L += ["", "Per problem: mean test score over seeds (accuracy, R^2 for regressions), "
          "the difference to the default's, and the epochs the final fit ran (mean over "
          "seeds; the range test not counted) as a share of the default's.", ""]
    rows = []
    for p in base["problems"]:
        ref = base["means"][p]["autoclr"]
        ref_epochs = _mean_key(results, "autoclr", p, "epochs_run")
        row = [f"`{p}`", f"{ref:.4f}"]
        for v in variants:
            sc = _scores(results, v, p)
            m = float(np.mean(sc)) if len(sc) else math.nan
            ep = _mean_key(results, v, p, "epochs_run")
            share = f"{ep / ref_epochs:.0%}" if ref_epochs and ep else "n/a"
            row.append(f"{m:.4f} ({m - ref:+.4f}), {share}")
        rows.append(row)
    L += _table(["problem", "autoclr"] + [f"`{v}`: score (diff), epochs" for v in variants],
                rows)
    L.append("")
    return L


def _mean_key(results, contender, problem, key):
    values = [r.get(key) for r in results.get(contender, {}).get(problem, {}).values()
              if r.get(key) is not None]
    return float(np.mean(values)) if values else None


def write_doc(path, block, marks=(MARK_BEGIN, MARK_END), heading="Real data (20+ problems)"):
    """Replace the block between the markers (or append a new section)."""
    begin, end = marks
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        text = head + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + f"\n\n## {heading}\n\n" + block + "\n"
    path.write_text(text)


def publish(block, marks, heading, raw=None, runs=None, indent=None):
    """A one-block script's output: ``block`` into docs/benchmarks.md (``write_doc``)
    and, given ``raw``, its ``runs`` with the machine beside it (``_write_json``)."""
    doc = ROOT / "docs" / "benchmarks.md"
    write_doc(doc, block, marks=marks, heading=heading)
    written = [doc]
    if raw is not None:
        _write_json(raw, dict(machine=machine_info(), results=runs), indent=indent)
        written.append(raw)
    print("wrote " + ", ".join(str(p.relative_to(ROOT)) for p in written))


def block_args(doc, argv=None, jobs=True, extra=()):
    """The options of a one-block script: ``--no-doc``, and ``--jobs`` (default 2)
    when it runs in parallel; ``extra``: ``(name, kwargs)`` of more options."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--no-doc", action="store_true", help="print, do not write the doc")
    if jobs:
        parser.add_argument("--jobs", type=int, default=2)
    for name, kwargs in extra:
        parser.add_argument(name, **kwargs)
    return parser.parse_args(argv)


def tolerance(classifier):
    """The benchmarks' tolerance on a score: 0.5 pp accuracy, or 0.01 R^2."""
    return TOL_ORACLE["acc" if classifier else "r2"]


def change_cell(diff, tol):
    """A change of score for a table cell, **bold** beyond the tolerance."""
    cell = f"{diff:+.3f}"
    return f"**{cell}**" if abs(diff) > tol else cell


def beyond(diffs, tols):
    """How many changes exceed their tolerance upwards and downwards."""
    return (sum(d > t for d, t in zip(diffs, tols)),
            sum(-d > t for d, t in zip(diffs, tols)))


def block_head(script, seconds):
    """The first lines of a one-block script's block: its command, when, how long, and
    the machine."""
    return [f"Command: `python benchmarks/{script}`, "
            f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, {seconds / 60:.1f} min.  ",
            f"Machine: {machine_info()}.", ""]


def nest(runs):
    """``(key, ..., seed, record)`` rows as ``results[key]...[str(seed)] = record``."""
    results = {}
    for *keys, seed, rec in runs:
        level = results
        for key in keys:
            level = level.setdefault(key, {})
        level[str(seed)] = rec
    return results


def finish(args, block, marks, heading, **publish_kwargs):
    """Print a one-block script's block, and publish it unless ``--no-doc``."""
    print(block)
    if not args.no_doc:
        publish(block, marks, heading, **publish_kwargs)
    return 0


def run_parallel(run_one, tasks, jobs):
    """``run_one(*task)`` for every task in ``jobs`` processes: the returns, and the
    seconds they took."""
    from joblib import Parallel, delayed

    t = time.perf_counter()
    out = Parallel(n_jobs=jobs)(delayed(run_one)(*task) for task in tasks)
    return out, time.perf_counter() - t


# ---------------------------------------------------------------------- main
def _contender_name(args):
    if args.variant:
        return f"autoclr[{args.variant}]"
    if args.autoclr_params:
        params = json.loads(args.autoclr_params)
        return "autoclr[" + ",".join(f"{k}={v}" for k, v in sorted(params.items())) + "]"
    return "autoclr"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--group", choices=["main", "small"], default="main",
                        help="main: the 21 problems; small: the small-tables group (each "
                             "table under both protocols; own cache, raw file and block)")
    parser.add_argument("--problems", default=None,
                        help="comma-separated names (in the small group, a name without "
                             "@none / @valid means both protocols)")
    parser.add_argument("--seeds", type=int, default=None, help="number of seeds (5)")
    parser.add_argument("--quick", action="store_true",
                        help=f"smoke run: {', '.join(QUICK_PROBLEMS)}, 2 seeds, "
                             f"{QUICK_EPOCHS} epochs; written to benchmarks/results-quick/")
    parser.add_argument("--jobs", type=int, default=2, help="processes (1 torch thread each)")
    parser.add_argument("--only", default=None,
                        help="comma-separated contenders to run; the others are read from "
                             "the cache (e.g. --only autoclr)")
    parser.add_argument("--autoclr-params", default=None,
                        help="JSON dict of extra AutoCLR keyword arguments")
    parser.add_argument("--variant", default=None,
                        help="store AutoCLR's results as autoclr[VARIANT]")
    parser.add_argument("--detector-constants", default=None,
                        help="JSON dict overriding constants of autoclr._detect (NAME) or of "
                             "another module (MODULE.NAME, e.g. _range_test.MIN_AUTO_ITER) "
                             "in the AutoCLR runs (with --variant), e.g. "
                             "'{\"TOP_POSITION\": 0}'")
    parser.add_argument("--refresh-peers", action="store_true",
                        help="rerun the cached contenders too")
    parser.add_argument("--report-only", action="store_true",
                        help="rebuild the report from the saved raw results")
    args = parser.parse_args(argv)

    quick = args.quick
    outdir = ROOT / "benchmarks" / "results-quick" if quick else ROOT / "docs"
    resdir = ROOT / "benchmarks" / "results-quick" if quick else RESULTS
    files = (dict(raw=RAW_FILE, peers=PEERS_FILE, curves=CURVES_FILE) if args.group == "main"
             else SMALL_FILES)
    raw_path, peers_path = outdir / files["raw"], resdir / files["peers"]
    curves_path = resdir / files["curves"]
    raw = _load_json(raw_path, {"meta": {}, "problems": {}, "results": {}})
    if not args.report_only:
        run(args, raw, peers_path, curves_path)
        _write_json(raw_path, raw)
    note = f"`{curves_path.relative_to(ROOT)}`"
    doc = outdir / "benchmarks.md"
    if args.group == "small":
        import realdata_small

        block, targets_by_protocol = realdata_small.report(raw, note)
        write_doc(doc, block, marks=(realdata_small.MARK_BEGIN, realdata_small.MARK_END),
                  heading="Small tables (under 1,000 rows)")
        for protocol, found in targets_by_protocol.items():
            for name, ok, detail in found:
                print(f"[{'pass' if ok else 'FAIL'}] {protocol}: {name}: {detail}")
        print(f"wrote {doc}, {raw_path}")
        return 0
    block, s = report(raw, note, outdir / FIGURE)
    write_doc(doc, block)
    for name, ok, detail in s["targets"]:
        print(f"[{'pass' if ok else 'FAIL'}] {name}: {detail}")
    print("mean ranks: " + ", ".join(f"{c} {r:.2f}" for c, r in
                                     sorted(s["mean_rank"].items(), key=lambda x: x[1])))
    print(f"wrote {doc}, {raw_path}")
    return 0


def run(args, raw, peers_path, curves_path):
    """Run what is asked, fill ``raw`` in place, update the peers' cache and curves."""
    quick = args.quick
    group = args.group
    names = args.problems.split(",") if args.problems else None
    if quick and not names:
        names = QUICK_PROBLEMS if group == "main" else QUICK_SMALL
    if group == "small" and names:
        names = [n for name in names for n in (
            [name] if "@" in name else [f"{name}@{protocol}" for protocol in PROTOCOLS])]
    problems = get_problems(names, max_epochs=QUICK_EPOCHS if quick else None, group=group)
    seeds = list(range(args.seeds or (2 if quick else 5)))
    auto_name = _contender_name(args)
    params = json.loads(args.autoclr_params) if args.autoclr_params else None
    constants = json.loads(args.detector_constants) if args.detector_constants else None
    if constants and not args.variant:
        raise SystemExit("--detector-constants needs --variant NAME (the default's results "
                         "must stay the default's)")
    only = set(args.only.split(",")) if args.only else None
    if only and only - set(CONTENDERS):
        raise SystemExit(f"--only: unknown contenders {sorted(only - set(CONTENDERS))}")
    if auto_name != "autoclr" and only is None:
        only = {"autoclr"}
    cache = _load_json(peers_path, {"version": PEERS_VERSION, "runs": {}})
    if cache.get("version") != PEERS_VERSION:
        cache = {"version": PEERS_VERSION, "runs": {}}
    if not names:
        # a run over the whole suite drops entries of configs that no longer exist
        current = {f"{p.name}|{p.max_epochs}|{p.config_hash()}" for p in problems}
        cache["runs"] = {k: v for k, v in cache["runs"].items()
                         if "|".join(k.split("|")[i] for i in (0, 2, 3)) in current}
    tasks, runs = [], {}
    for p in problems:
        needed, alias = peer_runs(p)
        wanted = set(needed) if only is None else {
            alias.get(c, c) for c in only if c not in ("autoclr",)} | (
            {_grid_id(lr) for lr in grid_lrs(p)} if only & {"grid_valid", "grid_test"}
            else set())
        for seed in seeds:
            if only is None or "autoclr" in only:
                tasks.append((p, seed, auto_name))
            for run_id in needed:
                key = _cache_key(p, seed, run_id)
                hit = cache["runs"].get(key)
                # a cached failure is retried by a run that asks for this contender
                stale = hit is None or (only is None and hit.get("error"))
                if run_id in wanted and (args.refresh_peers or stale):
                    tasks.append((p, seed, run_id))
                elif hit is not None:
                    runs[(p.name, seed, run_id)] = hit
                else:
                    raise SystemExit(
                        f"{run_id} on {p.name} seed {seed} is not in {peers_path}; run "
                        "without --only first.")
    # the largest problems first, so that the two workers finish together
    tasks.sort(key=lambda t: -(describe(t[0])["train"] * t[0].max_epochs))
    print(f"{len(tasks)} runs to do, {len(runs)} read from the cache", flush=True)
    t0 = time.perf_counter()
    auto_recs, curves = {}, _load_json(curves_path, {})
    from joblib import Parallel, delayed

    # worker processes import realdata_problems from this folder
    here = str(Path(__file__).resolve().parent)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [here] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])

    jobs = Parallel(n_jobs=args.jobs, return_as="generator_unordered")(
        delayed(run_one)(p.name, seed, run_id, p.max_epochs, params, constants, group)
        for p, seed, run_id in tasks)
    for done, (name, seed, run_id, rec) in enumerate(jobs, 1):
        score = rec.get("score")
        print(f"[{done}/{len(tasks)} {time.perf_counter() - t0:6.0f}s] {name} seed {seed} "
              f"{run_id}: " + (f"{score:.4f}" if score is not None else rec.get("error"))
              + f" ({rec['wall']:.1f}s)", flush=True)
        if run_id.startswith("autoclr"):
            curve = rec.pop("curves", None)
            if curve:
                curves.setdefault(run_id, {}).setdefault(name, {})[str(seed)] = curve
            auto_recs[(name, seed)] = rec
            continue
        runs[(name, seed, run_id)] = rec
        p = next(q for q in problems if q.name == name)
        cache["runs"][_cache_key(p, seed, run_id)] = _jsonable(rec)
        if done % 10 == 0:
            _write_json(peers_path, cache)
    wall = time.perf_counter() - t0
    _write_json(peers_path, cache)
    if curves:
        _write_json(curves_path, curves)
    results = raw["results"]
    if not names:
        # a run over the whole group drops the results of problems no longer in it
        current = {p.name for p in problems}
        raw["problems"] = {k: v for k, v in raw["problems"].items() if k in current}
        for c in results:
            results[c] = {k: v for k, v in results[c].items() if k in current}
    for p in problems:
        raw["problems"][p.name] = dict(describe(p), source=p.source, what=p.what,
                                       optimizer=p.optimizer, batch_size=p.batch_size,
                                       max_epochs=p.max_epochs)
        if group == "small":
            # every grid LR's test score per seed, for the report's hindsight check
            raw["problems"][p.name].update(
                protocol=p.protocol, hidden=p.module_params["hidden"],
                grid_scores={_grid_id(lr): [runs[(p.name, seed, _grid_id(lr))].get("score")
                                            for seed in seeds] for lr in grid_lrs(p)})
        # the small group's oracle: the grid LR with the best mean test score over the seeds
        oracle_run = seed_mean_oracle(p, seeds, runs) if group == "small" else None
        for seed in seeds:
            prun = {rid: runs[(p.name, seed, rid)] for rid in peer_runs(p)[0]}
            autoclr = {}
            if (p.name, seed) in auto_recs:
                autoclr[auto_name] = auto_recs[(p.name, seed)]
            for c, rec in assemble(p, seed, prun, autoclr, oracle_run).items():
                results.setdefault(c, {}).setdefault(p.name, {})[str(seed)] = rec
    kind = "autoclr_only" if only == {"autoclr"} else "full" if only is None else "partial"
    if args.problems or args.seeds or auto_name != "autoclr":
        kind += "_subset" if auto_name == "autoclr" else f"_{auto_name}"
    cmd = "python benchmarks/realdata.py" + "".join(f" {a}" for a in sys.argv[1:])
    raw["meta"].update(machine=machine_info(), seeds=seeds)
    raw["meta"].setdefault("timings", {})[kind] = dict(
        command=cmd, date=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), wall=wall,
        runs=len(tasks), jobs=args.jobs, problems=len(problems))
    print(f"{len(tasks)} runs in {wall / 60:.1f} min", flush=True)


if __name__ == "__main__":
    sys.exit(main())
