"""The LR range test and its result.

The test trains a fresh copy of a skorch net while the learning rate rises
from a low to a high bound, records the training loss at every iteration and
the validation score at evenly spaced points, and stops early when the loss
diverges. It runs its own short loop over the net's ``module_``,
``criterion_`` and ``optimizer_`` (the net's ``infer`` and ``get_loss`` are
used, and the callbacks' ``on_train_begin`` is called once, so customised
nets behave as in training) because a range test is thrown away afterwards
and must not go through skorch's ``fit``, which swallows
``KeyboardInterrupt``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split
from torch.utils.data import DataLoader, Dataset, Subset

from ._detect import Bounds, detect_bounds
from ._progress import progress_bar
from ._utils import (
    as_tensor,
    draw_seed,
    fresh_net,
    is_int,
    iterations_per_epoch,
    resolve_device,
    seeded,
    to_device,
)

__all__ = ["RangeTestResult", "range_test", "RAMPS"]

RAMPS = ("exp", "linear")
#: range-test length in epochs when ``n_iter="auto"``, and its bounds in iterations
# 16 epochs: the detected bounds vary at most 2x across seeds on every benchmark
# problem, against up to 3x after 8 (docs/benchmarks.md, "Range-test length")
AUTO_EPOCHS, MIN_AUTO_ITER, MAX_AUTO_ITER = 16, 100, 400
#: validation budget: all evaluations together score at most this many samples per
#: sample trained on (a forward pass costs about a third of a training step, so
#: scoring stays near 15 % of the test) ...
SCORE_BUDGET = 0.35
#: ... but each evaluation scores at least this many (when held out)
MIN_SCORED = 200
#: scoring runs through the held-out subset in chunks of this many samples (on CPU:
#: large batches of activations fall out of the cache)
SCORE_CHUNK = 256


@dataclass(frozen=True, eq=False)
class RangeTestResult:
    """What an LR range test recorded.

    Attributes
    ----------
    lrs, losses : ndarray of shape (n_done,)
        Learning rate and training loss of every iteration run (up to the
        divergence point when the test stopped early).
    eval_iterations : ndarray of shape (n_evals,)
        Iteration after which each validation score was measured.
    eval_lrs, scores : ndarray of shape (n_evals,)
        Learning rate and validation score at those points.
    score_name : str
        ``"accuracy"`` (classifiers) or ``"neg_loss"`` (negative validation
        loss, regressors).
    lr_range : tuple of float
        The low and high bound of the ramp.
    ramp : str
        ``"exp"`` or ``"linear"``.
    n_iter : int
        Planned iterations.
    n_train, n_valid : int
        Samples trained on and samples scored.
    stop_reason : str
        ``"completed"``, ``"diverged"`` (loss above ``divergence_factor``
        times its best) or ``"nan"`` (a non-finite loss).
    diverged_lr : float or None
        LR at which the test stopped early.
    wall_time : float
        Seconds the test took.
    bounds : Bounds or None
        The detection, set by :class:`~autoclr.AutoCLR` (or
        :meth:`with_bounds`); its ``smoothed`` holds the smoothed curve.
    """

    lrs: np.ndarray
    losses: np.ndarray
    eval_iterations: np.ndarray
    eval_lrs: np.ndarray
    scores: np.ndarray
    score_name: str
    lr_range: tuple
    ramp: str
    n_iter: int
    n_train: int
    n_valid: int
    stop_reason: str = "completed"
    diverged_lr: float | None = None
    wall_time: float = 0.0
    bounds: Bounds | None = field(default=None)

    def with_bounds(self, method: str = "accuracy") -> RangeTestResult:
        """A copy of this result with ``bounds`` detected by ``method``."""
        return replace(self, bounds=detect_bounds(self, method=method))

    def plot(self, ax=None, **kwargs):
        """Draw the score and loss against the LR; see :func:`autoclr.plot_range_test`."""
        from ._plotting import plot_range_test

        return plot_range_test(self, ax=ax, **kwargs)

    def __repr__(self) -> str:
        lo, hi = self.lr_range
        s = (
            f"RangeTestResult({len(self.lrs)}/{self.n_iter} iterations, {self.ramp} "
            f"ramp {lo:.3g} -> {hi:.3g}, {len(self.scores)} {self.score_name} "
            f"evaluations, stop_reason={self.stop_reason!r}"
        )
        if self.diverged_lr is not None:
            s += f", diverged at lr={self.diverged_lr:.3g}"
        if self.bounds is not None:
            s += f", {self.bounds!r}"
        return s + ")"


def lr_ramp(lr_range, n_iter, ramp="exp"):
    """The LR of each range-test iteration: log-spaced (``"exp"``) or linear."""
    lo, hi = lr_range
    if ramp == "exp":
        return np.geomspace(lo, hi, n_iter)
    if ramp == "linear":
        return np.linspace(lo, hi, n_iter)
    raise ValueError(f"ramp must be one of {RAMPS}, got {ramp!r}.")


def auto_n_iter(n_train, batch_size):
    """Default length: ``AUTO_EPOCHS`` epochs, clipped to [100, 400] iterations."""
    ipe = iterations_per_epoch(n_train, batch_size)
    return int(min(max(AUTO_EPOCHS * ipe, MIN_AUTO_ITER), MAX_AUTO_ITER))


def _split(n, y, valid_size, classifier, seed):
    n_valid = int(round(valid_size * n)) if valid_size < 1 else int(valid_size)
    if not 1 <= n_valid < n:
        raise ValueError(
            f"valid_size={valid_size!r} leaves {n_valid} of {n} samples for validation; "
            "the range test needs at least one validation and one training sample."
        )
    idx = np.arange(n)
    stratify = None
    if classifier and y is not None:
        y_np = np.asarray(y)
        _, counts = np.unique(y_np, return_counts=True)
        if y_np.ndim == 1 and counts.min() >= 2 and n_valid >= len(counts):
            stratify = y_np
    train_idx, valid_idx = train_test_split(
        idx, test_size=n_valid, stratify=stratify, random_state=seed
    )
    return train_idx, valid_idx


class _ArrayBatches:
    """Shuffled mini-batches gathered from in-memory tensors, no DataLoader.

    Each batch is gathered by index from the full tensors, which are never
    copied. With ``pin=True`` (training on CUDA) the batch is gathered
    straight into page-locked memory, so that its copy to the device can run
    asynchronously (``non_blocking=True``).
    """

    def __init__(self, X, y, idx, batch_size, generator, pin=False):
        self.X, self.y = X, y
        self.idx = torch.as_tensor(idx)
        self.batch_size = batch_size
        self.generator = generator
        self.pin = pin

    def _gather(self, t, sel):
        if not self.pin or t.device.type != "cpu":
            return t[sel]
        out = torch.empty((len(sel), *t.shape[1:]), dtype=t.dtype, pin_memory=True)
        return torch.index_select(t, 0, sel, out=out)

    def __iter__(self):
        while True:
            perm = self.idx[torch.randperm(len(self.idx), generator=self.generator)]
            for start in range(0, len(perm), self.batch_size):
                sel = perm[start : start + self.batch_size]
                yield self._gather(self.X, sel), (
                    None if self.y is None else self._gather(self.y, sel))


class _LoaderBatches:
    """Shuffled mini-batches of a torch ``Dataset`` through a ``DataLoader``."""

    def __init__(self, dataset, idx, batch_size, generator, pin=False):
        self.loader = DataLoader(
            Subset(dataset, idx), batch_size=batch_size, shuffle=True,
            generator=generator, pin_memory=pin,
        )

    def __iter__(self):
        while True:
            for batch in self.loader:
                yield batch[0], batch[1]


def _n_scored(n_held_out, max_valid_samples, n_iter, batch_size, n_eval):
    """Samples scored at each evaluation: the held-out ones, within the budgets."""
    budget = math.ceil(SCORE_BUDGET * n_iter * batch_size / n_eval)
    return int(min(n_held_out, max_valid_samples, max(MIN_SCORED, budget)))


def _valid_batches(X, y, idx, batch_size, device, is_dataset):
    if is_dataset:
        return DataLoader(Subset(X, idx), batch_size=max(batch_size, SCORE_CHUNK))
    # only the bounded validation subset is gathered, once, and kept on the device
    sel = torch.as_tensor(idx)
    Xv = to_device(X[sel], device)
    yv = None if y is None else to_device(y[sel], device)
    if torch.device(device).type == "cuda":
        return [(Xv, yv)]
    return [(Xv[i : i + SCORE_CHUNK], None if yv is None else yv[i : i + SCORE_CHUNK])
            for i in range(0, len(sel), SCORE_CHUNK)]


def range_test(
    net,
    X,
    y=None,
    *,
    lr_range=(1e-6, 1.0),
    ramp="exp",
    n_iter="auto",
    n_eval=40,
    valid_size=0.2,
    max_valid_samples=1000,
    divergence_factor=5.0,
    random_state=None,
    device=None,
    verbose=0,
):
    """Run an LR range test on a fresh copy of ``net``.

    Parameters
    ----------
    net : skorch.NeuralNet
        The net to test; it is cloned and never modified.
    X : array-like, torch.Tensor or torch.utils.data.Dataset
        Training data (float32 for skorch). A ``Dataset`` must yield
        ``(X, y)`` pairs; then ``y`` is ``None``.
    y : array-like or None
        Targets (int64 class indices for classifiers).
    lr_range : tuple of float, default=(1e-6, 1.0)
        Low and high bound of the ramp.
    ramp : {"exp", "linear"}, default="exp"
        Log-spaced or linear rise of the LR.
    n_iter : int or "auto", default="auto"
        Iterations. ``"auto"``: 16 epochs of the training split, clipped to
        [100, 400].
    n_eval : int, default=40
        Evenly spaced validation evaluations.
    valid_size : float or int, default=0.2
        Held-out fraction (or count) for scoring, shuffled and stratified
        for classifiers.
    max_valid_samples : int, default=1000
        At most this many held-out samples are scored at each evaluation.
        Fewer when scoring would outgrow the training: all evaluations
        together score at most ``SCORE_BUDGET = 0.35`` samples per sample
        trained on (``n_iter * batch_size``), but at least ``MIN_SCORED =
        200`` per evaluation when that many are held out.
    divergence_factor : float, default=5.0
        Stop when the smoothed loss exceeds this multiple of its best, or is
        not finite.
    random_state : int, RandomState or None
        Seeds the split, the shuffling and the weight initialisation without
        touching torch's global RNG state.
    device : str or None
        Device to train on; ``None`` keeps the net's, ``"auto"`` picks CUDA
        when available.
    verbose : int, default=0
        ``>= 1`` shows a progress bar on stderr (tqdm when installed, else
        one line per quarter of the test).

    Returns
    -------
    RangeTestResult
        Without ``bounds``; call :meth:`RangeTestResult.with_bounds`.
    """
    start_time = time.perf_counter()
    if ramp not in RAMPS:
        raise ValueError(f"ramp must be one of {RAMPS}, got {ramp!r}.")
    # an int seed is used as is, so that AutoCLR's final fit, seeded with the same
    # int, starts from the very weights this test starts from
    seed = random_state if is_int(random_state) and 0 <= random_state < 2**31 else (
        draw_seed(random_state))
    is_dataset = isinstance(X, Dataset)
    n = len(X)
    classifier = is_classifier(net)
    train_idx, valid_idx = _split(n, y, valid_size, classifier, seed)
    bs = len(train_idx) if net.batch_size in (-1, None) else int(net.batch_size)
    if n_iter == "auto":
        n_iter = auto_n_iter(len(train_idx), bs)
    elif not is_int(n_iter) or n_iter < 8:
        raise ValueError(f"n_iter must be 'auto' or an int >= 8, got {n_iter!r}.")
    n_iter = int(n_iter)
    n_eval = int(min(max(n_eval, 5), n_iter))
    valid_idx = valid_idx[: _n_scored(len(valid_idx), max_valid_samples, n_iter, bs, n_eval)]
    lrs = lr_ramp(lr_range, n_iter, ramp)
    eval_at = np.unique(np.round(np.linspace(0, n_iter, n_eval + 1)[1:]).astype(int) - 1)

    params = {} if device is None else {"device": resolve_device(device)}
    rt_net = fresh_net(net, **params)
    dev = rt_net.device
    pin = torch.device(dev).type == "cuda"
    move = torch.device(dev).type != "cpu"  # batches are gathered on the CPU
    generator = torch.Generator().manual_seed(seed)
    if is_dataset:
        batches = _LoaderBatches(X, train_idx, bs, generator, pin=pin)
    else:
        X_t = as_tensor(X)
        y_t = None if y is None else as_tensor(y)
        batches = _ArrayBatches(X_t, y_t, train_idx, bs, generator, pin=pin)
    valid = _valid_batches(
        X if is_dataset else X_t, None if is_dataset else y_t, valid_idx, bs, dev,
        is_dataset)

    with seeded(seed, dev):
        rt_net.initialize()
        # as skorch's fit does: callbacks may size the module from the data
        # (``net.set_params(module__n_features=X.shape[1])``, skorch's FAQ idiom)
        rt_net.notify("on_train_begin", X=X, y=y)
    module, optimizer = rt_net.module_, rt_net.optimizer_
    # the loop stays on the device: losses and scores are buffered there and
    # read back once per evaluation, never per iteration
    loss_buf = torch.empty(n_iter, device=dev)
    score_buf = torch.empty(len(eval_at), device=dev)
    lr_list = lrs.tolist()
    eval_list = eval_at.tolist()
    ema, best, beta = 0.0, math.inf, 0.98
    stop_at, stop_reason, n_checked, k_eval = n_iter, "completed", 0, 0
    next_eval = eval_list[0]
    batch_iter = iter(batches)
    bar = progress_bar(n_iter, enabled=verbose >= 1)
    module.train()  # _score switches back to train mode after each evaluation
    with seeded(seed + 1, dev):
        for i in range(n_iter):
            Xi, yi = next(batch_iter)
            if move:
                Xi, yi = to_device(Xi, dev), to_device(yi, dev)
            lr = lr_list[i]
            for group in optimizer.param_groups:
                group["lr"] = lr
            optimizer.zero_grad(set_to_none=True)
            y_pred = rt_net.infer(Xi)
            loss = rt_net.get_loss(y_pred, yi, X=Xi, training=True)
            loss.backward()
            optimizer.step()
            loss_buf[i] = loss.detach()
            if i != next_eval:
                continue
            score_buf[k_eval] = _score(rt_net, valid, classifier, dev)
            k_eval += 1
            next_eval = eval_list[k_eval] if k_eval < len(eval_list) else -1
            # one host sync per evaluation: check the new losses for divergence
            for j, value in enumerate(loss_buf[n_checked : i + 1].tolist(), n_checked):
                if not math.isfinite(value):
                    stop_at, stop_reason = j, "nan"
                    break
                ema = beta * ema + (1 - beta) * value
                smooth = ema / (1 - beta ** (j + 1))
                best = min(best, smooth)
                if j > 5 and smooth > divergence_factor * best:
                    stop_at, stop_reason = j, "diverged"
                    break
            n_checked = i + 1
            bar.update_to(i + 1, lr=float(lrs[i]), loss=ema / (1 - beta ** (i + 1)))
            if stop_reason != "completed":
                break
    bar.close()
    losses = loss_buf[:stop_at].cpu().numpy().astype(float)
    scores = score_buf[:k_eval].cpu().numpy().astype(float)
    keep = eval_at[:k_eval] < stop_at
    return RangeTestResult(
        lrs=lrs[:stop_at].copy(),
        losses=losses,
        eval_iterations=eval_at[:k_eval][keep],
        eval_lrs=lrs[eval_at[:k_eval][keep]],
        scores=scores[keep],
        score_name="accuracy" if classifier else "neg_loss",
        lr_range=(float(lr_range[0]), float(lr_range[1])),
        ramp=ramp,
        n_iter=n_iter,
        n_train=len(train_idx),
        n_valid=len(valid_idx),
        stop_reason=stop_reason,
        diverged_lr=None if stop_reason == "completed" else float(lrs[stop_at]),
        wall_time=time.perf_counter() - start_time,
    )


@torch.no_grad()
def _score(net, valid, classifier, device):
    """Accuracy (classifiers) or negative loss on the held-out batches, on device."""
    net.module_.eval()
    total = torch.zeros((), device=device)
    count = 0
    for Xv, yv in valid:
        Xv, yv = to_device(Xv, device), to_device(yv, device)
        y_pred = net.infer(Xv)
        if classifier:
            labels = (y_pred > 0).long() if y_pred.ndim == 1 else y_pred.argmax(1)
            total += (labels == yv).sum()
        else:
            total += net.get_loss(y_pred, yv, X=Xv, training=False) * len(yv)
        count += len(yv)
    net.module_.train()
    return total / count if classifier else -total / count
