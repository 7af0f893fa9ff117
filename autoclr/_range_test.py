"""The LR range test and its result.

The test trains a fresh copy of a skorch net while the learning rate rises
from a low to a high bound, records the training loss at every iteration and
the validation score (and loss) at evenly spaced points, and stops early when
the loss diverges.

Every step is the net's own ``train_step``, so the test trains the way
``net.fit`` does: gradient hooks (``on_grad_computed``: ``GradientNormClipping``),
optimizer closures, several optimizers, ``AccelerateMixin`` and ``fit_params``
all act. Each of the net's callbacks sees a whole lifecycle or none:

- callbacks that change the training run, from ``initialize`` and
  ``on_train_begin`` (``InputShapeSetter``, ``LoadInitState``) through
  ``on_epoch_begin`` and ``on_epoch_end`` at each pass over the test's
  training split (``Freezer``, ``Unfreezer``, ``Initializer`` and other
  ``ParamMapper`` callbacks), ``on_batch_begin``, ``on_grad_computed``
  (``GradientNormClipping``) and ``on_batch_end``, to ``on_train_end``; so do
  callbacks of the user's own classes, which the test cannot tell apart;
- skorch's callbacks that report on a fit or stop it (``REPORTING``: loggers
  such as ``PrintLog``, ``ProgressBar`` and ``TensorBoard``, the scorers, the
  checkpoints, ``EarlyStopping``, ``EpochTimer``) are left out of the test's
  copy of the net: not even initialised (no log file or writer is opened),
  since the range test is a throwaway run whose copy of the net is
  discarded, and none of them should record it.

Batches come from the net's ``get_iterator`` (its ``iterator_train__*``
settings, ``collate_fn``, its ``dataset``). For in-memory arrays with the
default ``DataLoader`` and ``Dataset`` a faster path gathers the very same
batches by index (the same shuffled order for the same generator), without
the per-sample collation of a ``DataLoader`` (``benchmarks/speed.py``).

The test does not go through skorch's ``fit`` loop, which swallows
``KeyboardInterrupt`` and scores only at epoch ends.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import torch
from sklearn.base import is_classifier
from sklearn.model_selection import train_test_split
from skorch import callbacks as skorch_callbacks
from skorch.classifier import NeuralNetBinaryClassifier
from skorch.dataset import Dataset as SkorchDataset
from skorch.net import NeuralNet
from torch.utils.data import DataLoader, Dataset, Subset

from ._data import batches_per_pass, iterations_per_epoch, n_samples
from ._detect import Bounds, BoundsWarning, read_bounds
from ._device import as_tensor, module_device, resolve_device, to_device
from ._distributed import broadcast_object
from ._groups import set_lrs
from ._progress import progress_bar
from ._rng import draw_seed, seeded
from ._utils import fresh_net, is_int, user_callbacks, warn_notes
from ._validation import RAMPS, check_data_size, check_net, check_params

__all__ = ["RangeTestResult", "range_test", "run_range_test", "DivergenceWatch"]

#: range-test length in epochs when ``n_iter="auto"``, and its bounds in iterations
# 16 epochs: the detected bounds varied at most 2x across seeds on every problem of
# the tuning suite, against up to 3x after 8 (docs/benchmarks.md, "Range-test length";
# measured before the quarter cap below, which shortens those problems' tests)
AUTO_EPOCHS, MIN_AUTO_ITER, MAX_AUTO_ITER = 16, 100, 400
#: ... and at most this share of the iterations of the fit it serves (never below
#: ``MIN_AUTO_ITER``); ``None``: no such cap. A quarter keeps ``AutoCLR.fit`` within
#: 1.25x a plain fit on benchmarks/speed.py (30 epochs: the test was half the fit) at
#: the same scores; it costs steadiness of max_lr over seeds (docs/benchmarks.md,
#: "The range test at most a quarter of the fit")
MAX_FIT_SHARE = 0.25
#: validation budget: all evaluations together score at most this many samples per
#: sample trained on (a forward pass costs about a third of a training step, so
#: scoring stays near 15 % of the test) ...
SCORE_BUDGET = 0.35
#: ... but each evaluation scores at least this many (when held out)
MIN_SCORED = 200
#: scoring runs through the held-out subset in chunks of this many samples (on CPU:
#: large batches of activations fall out of the cache)
SCORE_CHUNK = 256
#: divergence is judged from this iteration on, against the smallest of the median of
#: the losses before it and the smoothed loss since: a few lucky or unlucky small
#: batches at the start (a loss of 0, then 16) are no baseline
WARMUP_ITER = 6
#: defaults of :func:`range_test` (and AutoCLR's range test): evaluations, scored
#: samples per evaluation at most, and the divergence factor
N_EVAL, MAX_VALID_SAMPLES, DIVERGENCE_FACTOR = 40, 1000, 5.0
#: skorch's callbacks that report on a fit or stop it: left out of the range test
REPORTING = tuple(getattr(skorch_callbacks, name) for name in (
    "PrintLog", "ProgressBar", "EpochTimer", "EpochScoring", "BatchScoring",
    "PassthroughScoring", "Checkpoint", "TrainEndCheckpoint", "EarlyStopping", "TensorBoard",
    "NeptuneLogger", "WandbLogger", "SacredLogger", "MlflowLogger")
    if hasattr(skorch_callbacks, name))
#: ``iterator_train__*`` settings under which the array path gives the DataLoader's batches
_ARRAY_PATH_SETTINGS = {"shuffle", "batch_size", "generator", "pin_memory", "num_workers"}


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
    valid_losses : ndarray of shape (n_evals,)
        Validation loss (the net's criterion) at those points.
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
    baseline_score : float or None
        Classifiers: the accuracy of always predicting the most frequent class
        of the scored samples, which a net that learned only the class prior
        reaches; ``None`` for regressors.
    baseline_loss : float or None
        Classifiers trained with ``CrossEntropyLoss`` or ``NLLLoss``: the
        validation loss of predicting the class frequencies (their entropy),
        which that net reaches; ``None`` otherwise.
    fit_iter : int or None
        Iterations of the fit the test serves: AutoCLR's plan; for
        :func:`range_test`, ``max_epochs`` epochs of the test's own training
        split (at ``valid_size=0.2``, as many rows as skorch's default split
        trains on). The reading is scaled down to that of a test as long as
        the fit (:func:`~autoclr._detect.length_factor`); ``None``: not scaled.
    timings : dict
        Seconds by phase: ``"setup"`` (cloning, split, initialisation),
        ``"train"`` (the training steps), ``"score"`` (the evaluations) and
        ``"total"`` (= ``wall_time``). Host-side clocks: on CUDA, where
        kernels run asynchronously, the split between ``"train"`` and
        ``"score"`` is approximate (``benchmarks/gpu_check.py`` synchronises).
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
    valid_losses: np.ndarray = field(default_factory=lambda: np.empty(0), repr=False)
    baseline_score: float | None = None
    baseline_loss: float | None = None
    fit_iter: int | None = None
    timings: dict = field(default_factory=dict, repr=False)
    bounds: Bounds | None = field(default=None)

    def with_bounds(self, method: str = "accuracy") -> RangeTestResult:
        """A copy of this result with ``bounds`` read by ``method``.

        The same reading :class:`~autoclr.AutoCLR` makes: the rule, then the
        documented fallbacks, each note emitted as a :class:`~autoclr.BoundsWarning`.
        """
        bounds = read_bounds(self, method)
        warn_notes(bounds.notes, BoundsWarning)
        return replace(self, bounds=bounds)

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


def auto_n_iter(n_train, batch_size, batches=None, fit_iter=None):
    """Default length: ``AUTO_EPOCHS`` epochs, clipped to [100, 400] iterations.

    ``batches``: batches per epoch as the training iterator yields them; ``None``:
    ``ceil(n_train / batch_size)``. ``fit_iter``: iterations of the fit the test
    serves; the test is then at most ``MAX_FIT_SHARE`` of them (at least 100).
    """
    ipe = iterations_per_epoch(n_train, batch_size) if batches is None else batches
    n_iter = min(max(AUTO_EPOCHS * ipe, MIN_AUTO_ITER), MAX_AUTO_ITER)
    if fit_iter is not None and MAX_FIT_SHARE is not None:
        n_iter = min(n_iter, max(int(MAX_FIT_SHARE * fit_iter), MIN_AUTO_ITER))
    return int(n_iter)


def _split(n, y, valid_size, classifier, seed):
    """Training and held-out indices (sizes checked by ``check_data_size``)."""
    n_valid = int(round(valid_size * n))
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
    """The batches of a ``DataLoader`` over in-memory tensors, gathered by index.

    The loader's own batch sampler draws the indices (so shuffling,
    ``batch_size`` and ``drop_last`` are the loader's, and a pass consumes its
    generator exactly as iterating the loader does: one base-seed draw, then
    the sampler's); each batch is then gathered by index from the full
    tensors, which are never copied, instead of item by item through the
    default collation. With ``pin=True`` (training on CUDA) the batch is
    gathered straight into page-locked memory, so that its copy to the
    device can run asynchronously (``non_blocking=True``).
    """

    def __init__(self, X, y, idx, loader, pin=False):
        self.X, self.y = X, y
        self.idx = torch.as_tensor(idx)
        self.loader = loader
        self.pin = pin

    def _gather(self, t, sel):
        if not self.pin or t.device.type != "cpu":
            return t[sel]
        out = torch.empty((len(sel), *t.shape[1:]), dtype=t.dtype, pin_memory=True)
        return torch.index_select(t, 0, sel, out=out)

    def __iter__(self):
        """One pass, the batches the loader would give."""
        # what iter(DataLoader) draws before its first batch
        torch.empty((), dtype=torch.int64).random_(generator=self.loader.generator)
        for batch in self.loader.batch_sampler:
            sel = self.idx[torch.as_tensor(batch)]
            yield self._gather(self.X, sel), (
                None if self.y is None else self._gather(self.y, sel))


def _n_scored(n_held_out, max_valid_samples, n_iter, batch_size, n_eval):
    """Samples scored at each evaluation: the held-out ones, within the budgets."""
    budget = math.ceil(SCORE_BUDGET * n_iter * batch_size / n_eval)
    return int(min(n_held_out, max_valid_samples, max(MIN_SCORED, budget)))


def _array_path(net, X, y):
    """In-memory arrays that the net would batch with its default DataLoader."""
    arrays = all(isinstance(a, (np.ndarray, torch.Tensor)) for a in (X, y) if a is not None)
    return (arrays and net.dataset is SkorchDataset and net.iterator_train is DataLoader
            and net.iterator_valid is DataLoader
            and type(net).get_iterator is NeuralNet.get_iterator
            and set(net.get_params_for("iterator_train")) <= _ARRAY_PATH_SETTINGS
            and set(net.get_params_for("iterator_valid")) <= _ARRAY_PATH_SETTINGS)


def _reports(callback):
    """A callback (or callback class, possibly named) of skorch's ``REPORTING`` kinds."""
    callback = callback[1] if isinstance(callback, tuple) else callback
    kind = callback if isinstance(callback, type) else type(callback)
    return issubclass(kind, REPORTING)


def _valid_batches(net, dataset, X, y, idx, array_path, device):
    """The scored held-out samples: gathered once on the device, or the net's iterator."""
    if not array_path:
        return net.get_iterator(Subset(dataset, idx), training=False)
    sel = torch.as_tensor(idx)
    Xv = to_device(as_tensor(X)[sel], device)
    yv = None if y is None else to_device(as_tensor(y)[sel], device)
    if device.type == "cuda":
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
    n_eval=N_EVAL,
    valid_size=0.2,
    max_valid_samples=MAX_VALID_SAMPLES,
    divergence_factor=DIVERGENCE_FACTOR,
    random_state=None,
    device=None,
    verbose=0,
    fit_params=None,
):
    """Run an LR range test on a fresh copy of ``net``.

    Parameters
    ----------
    net : skorch.NeuralNet
        The net to test; it is cloned and never modified.
    X : array-like, torch.Tensor, dict or torch.utils.data.Dataset
        Training data, as ``net.fit`` takes it (float32 for skorch). A
        ``Dataset`` must yield ``(X, y)`` pairs; then ``y`` is ``None``.
    y : array-like or None
        Targets (int64 class indices for classifiers).
    lr_range : tuple of float, default=(1e-6, 1.0)
        Low and high bound of the ramp.
    ramp : {"exp", "linear"}, default="exp"
        Log-spaced or linear rise of the LR.
    n_iter : int or "auto", default="auto"
        Iterations. ``"auto"``: 16 epochs of the training split, at most a
        quarter of the fit's iterations (``max_epochs`` epochs of that split),
        clipped to [100, 400].
    n_eval : int, default=40
        Evenly spaced validation evaluations (at least 5, at most ``n_iter``).
    valid_size : float, default=0.2
        Held-out fraction for scoring, shuffled and stratified for
        classifiers.
    max_valid_samples : int, default=1000
        At most this many held-out samples are scored at each evaluation.
        Fewer when scoring would outgrow the training: all evaluations
        together score at most ``SCORE_BUDGET = 0.35`` samples per sample
        trained on (``n_iter * batch_size``), but at least ``MIN_SCORED =
        200`` per evaluation when that many are held out.
    divergence_factor : float, default=5.0
        Stop when the smoothed loss exceeds this multiple of its best (from
        the 7th iteration on; the best starts at the median of the first six
        losses), or when a loss is not finite.
    random_state : int, RandomState or None
        Seeds the split, the shuffling and the weight initialisation without
        touching torch's global RNG state.
    device : str or None
        Device to train on; ``None`` keeps the net's, ``"auto"`` picks CUDA
        when available.
    verbose : int, default=0
        ``>= 1`` shows a progress bar on stderr (tqdm when installed, else
        one line per quarter of the test).
    fit_params : dict or None
        Passed to every ``train_step`` (and so to the module's ``forward``),
        as ``net.fit(X, y, **fit_params)`` passes them.

    Returns
    -------
    RangeTestResult
        Without ``bounds``; call :meth:`RangeTestResult.with_bounds`, which reads
        them as AutoCLR does, scaled to a fit of ``net.max_epochs`` epochs
        (``RangeTestResult.fit_iter``).
    """
    start_time = time.perf_counter()
    check_net(net)
    check_params(dict(lr_range=lr_range, ramp=ramp, n_iter=n_iter, n_eval=n_eval,
                      valid_size=valid_size, max_valid_samples=max_valid_samples,
                      divergence_factor=divergence_factor, random_state=random_state,
                      device=device, verbose=verbose))
    check_data_size(n_samples(X), valid_size, needs_range_test=True)
    return run_range_test(
        net, X, y, lr_range=lr_range, ramp=ramp, n_iter=n_iter, n_eval=n_eval,
        valid_size=valid_size, max_valid_samples=max_valid_samples,
        divergence_factor=divergence_factor, random_state=random_state, device=device,
        verbose=verbose, fit_params=fit_params, start_time=start_time)


def run_range_test(net, X, y, *, lr_range, ramp, n_iter, n_eval, valid_size,
                   max_valid_samples, divergence_factor, random_state, device, verbose,
                   fit_params, classes=None, fit_iter=None,
                   start_time=None) -> RangeTestResult:
    """:func:`range_test` on arguments already checked (as ``AutoCLR.fit`` checks them).

    ``classes`` (a classifier's ``classes_``, which ``y`` indexes): checked against
    the module's outputs at the first evaluation, after a few steps. ``fit_iter``:
    iterations of the fit the test serves (``RangeTestResult.fit_iter``); ``None``:
    ``net.max_epochs`` epochs of the test's own training split.
    """
    start_time = time.perf_counter() if start_time is None else start_time
    fit_params = dict(fit_params or {})
    # an int seed is used as is, so that AutoCLR's final fit, seeded with the same
    # int, starts from the very weights this test starts from
    seed = random_state if is_int(random_state) and 0 <= random_state < 2**31 else (
        draw_seed(random_state))
    seed = broadcast_object(seed, net)  # one split and one shuffle in every process
    classifier = is_classifier(net)
    train_idx, valid_idx = _split(n_samples(X), y, valid_size, classifier, seed)
    run = _Run.start(net, X, y, train_idx, seed, device, classifier, classes)
    # the batches the net's training iterator yields (iterator_train__batch_size, ...)
    bs, batches = run.batch_size, run.batches_per_pass
    if fit_iter is None:  # max_epochs over the test's own training split
        fit_iter = net.max_epochs * batches
    if n_iter == "auto":
        n_iter = auto_n_iter(len(train_idx), bs, batches=batches, fit_iter=fit_iter)
    n_eval = int(min(max(n_eval, 5), n_iter))
    run.score_on(valid_idx[: _n_scored(len(valid_idx), max_valid_samples, n_iter, bs, n_eval)])
    lrs = lr_ramp(lr_range, n_iter, ramp)
    eval_at = np.unique(np.round(np.linspace(0, n_iter, n_eval + 1)[1:]).astype(int) - 1)
    loop_start = time.perf_counter()
    with seeded(seed + 1, run.net.device, exclusive=False):
        record = run.train(lrs, eval_at, DivergenceWatch(divergence_factor), fit_params,
                           verbose)
    end_time = time.perf_counter()
    keep = record.eval_at < record.stop_at
    result = RangeTestResult(
        lrs=lrs[: record.stop_at].copy(),
        losses=record.losses,
        eval_iterations=record.eval_at[keep],
        eval_lrs=lrs[record.eval_at[keep]],
        scores=record.scores[keep],
        score_name="accuracy" if classifier else "neg_loss",
        lr_range=(float(lr_range[0]), float(lr_range[1])),
        ramp=ramp,
        n_iter=n_iter,
        n_train=len(train_idx),
        n_valid=run.n_valid,
        stop_reason=record.stop_reason,
        diverged_lr=(None if record.stop_reason == "completed"
                     else float(lrs[record.stop_at])),
        wall_time=end_time - start_time,
        valid_losses=record.valid_losses[keep],
        baseline_score=run.baseline_score,
        baseline_loss=run.baseline_loss,
        fit_iter=int(fit_iter),
        timings={"setup": loop_start - start_time,
                 "train": end_time - loop_start - record.score_time,
                 "score": record.score_time, "total": end_time - start_time},
    )
    return broadcast_object(result, run.net)  # the main process's curve, everywhere


class DivergenceWatch:
    """When the range test's loss diverges: pure Python, fed the losses in order.

    The training loss is smoothed with a bias-corrected exponential moving
    average (``beta = 0.98``). From iteration ``WARMUP_ITER`` on, the smoothed
    loss is compared with the best seen, which starts at the median of the first
    ``WARMUP_ITER`` losses; the test has diverged when it exceeds
    ``divergence_factor`` times that best, or at the first non-finite loss.

    Attributes
    ----------
    stop_at : int or None
        Iteration of the divergence (``None`` while none was seen).
    stop_reason : {"completed", "diverged", "nan"}
    smoothed : float
        The smoothed loss after the last value fed.
    """

    BETA = 0.98

    def __init__(self, divergence_factor=DIVERGENCE_FACTOR):
        self.divergence_factor = divergence_factor
        self.stop_at, self.stop_reason = None, "completed"
        self.smoothed = 0.0
        self._ema, self._best, self._head, self._seen = 0.0, math.inf, [], 0

    def update(self, values) -> bool:
        """Feed the next losses; True when the loss has diverged (it stays so)."""
        for value in values:
            j, self._seen = self._seen, self._seen + 1
            if not math.isfinite(value):
                self.stop_at, self.stop_reason = j, "nan"
                return True
            self._ema = self.BETA * self._ema + (1 - self.BETA) * value
            self.smoothed = self._ema / (1 - self.BETA ** (j + 1))
            if j < WARMUP_ITER:
                self._head.append(value)
                continue
            if j == WARMUP_ITER:  # the loss at the start: robust to lucky batches
                self._best = float(np.median(self._head))
            self._best = min(self._best, self.smoothed)
            if self.smoothed > self.divergence_factor * self._best:
                self.stop_at, self.stop_reason = j, "diverged"
                return True
        return False


@dataclass(frozen=True)
class _Record:
    """What the training loop recorded, read back from the device once."""

    losses: np.ndarray
    scores: np.ndarray
    valid_losses: np.ndarray
    eval_at: np.ndarray
    stop_at: int
    stop_reason: str
    score_time: float


@dataclass
class _Run:
    """The range test's fresh net, its batches and the class-prior scores."""

    net: NeuralNet
    train_pass: object
    batch_size: int
    batches_per_pass: int
    device: torch.device
    classifier: bool
    classes: np.ndarray | None
    X: object
    y: object
    dataset: Dataset  # the net's dataset of X and y
    array_path: bool  # in-memory arrays, batched by index (:class:`_ArrayBatches`)
    valid: object = None
    n_valid: int = 0
    baseline_score: float | None = None
    baseline_loss: float | None = None

    @classmethod
    def start(cls, net, X, y, train_idx, seed, device, classifier, classes=None):
        """A fresh, initialised copy of ``net`` (its ``REPORTING`` callbacks left out)
        and its training batches."""
        params = {"iterator_train__generator": torch.Generator().manual_seed(seed)}
        if device is not None:
            params["device"] = resolve_device(device, net)
        rt_net = fresh_net(net, **params)
        # the copy's own callbacks (the user's objects are never touched)
        # (an attribute, not set_params: skorch's would initialise every callback now)
        rt_net.callbacks = [cb for cb in user_callbacks(rt_net) if not _reports(cb)]
        with seeded(seed, rt_net.device):
            rt_net.initialize()
            # skorch's default callbacks (timer, scorers, PrintLog) report too
            rt_net.callbacks_ = [(n, cb) for n, cb in rt_net.callbacks_ if not _reports(cb)]
            # as skorch's fit does: callbacks may size the module from the data
            # (``net.set_params(module__n_features=X.shape[1])``, skorch's FAQ idiom)
            rt_net.notify("on_train_begin", X=X, y=y)
        dev = module_device(rt_net)
        array_path = not isinstance(X, Dataset) and _array_path(rt_net, X, y)
        dataset = rt_net.get_dataset(X, y)
        loader = rt_net.get_iterator(Subset(dataset, train_idx), training=True)
        bs = getattr(loader, "batch_size", None) or (
            len(train_idx) if net.batch_size in (-1, None) else int(net.batch_size))
        batches = batches_per_pass(loader, len(train_idx), bs)
        train_pass = loader
        if array_path:
            train_pass = _ArrayBatches(as_tensor(X), None if y is None else as_tensor(y),
                                       train_idx, loader, pin=dev.type == "cuda")
        return cls(rt_net, train_pass, bs, batches, dev, classifier, classes,
                   X, y, dataset, array_path)

    def score_on(self, valid_idx):
        """The held-out samples scored at each evaluation, and the class prior's scores."""
        self.valid = _valid_batches(self.net, self.dataset, self.X, self.y, valid_idx,
                                    self.array_path, self.device)
        self.n_valid = len(valid_idx)
        if self.classifier:
            self.baseline_score, self.baseline_loss = _prior_scores(self.net, self.valid,
                                                                    self.y, valid_idx)

    def batches(self):
        """Passes over the training split, without end (``on_epoch_begin`` before each,
        ``on_epoch_end`` after)."""
        while True:
            self.net.notify("on_epoch_begin", dataset_train=None, dataset_valid=None)
            yield from self.train_pass
            self.net.notify("on_epoch_end", dataset_train=None, dataset_valid=None)

    def step(self, batch, lr, fit_params):
        """One training step at ``lr`` through the net's own ``train_step``.

        ``lr`` is the net's: every param group of every optimizer trains at ``lr``
        times its ratio to the net's lr (:mod:`autoclr._groups`).
        """
        net = self.net
        set_lrs(net, lr)
        net.notify("on_batch_begin", batch=batch, training=True)
        step = net.train_step(batch, **fit_params)
        net.notify("on_batch_end", batch=batch, training=True, **step)
        return step["loss"].detach()

    def train(self, lrs, eval_at, watch, fit_params, verbose) -> _Record:
        """The ramp: a step per LR, scored at ``eval_at``, until the loss diverges.

        The loop stays on the device: losses and scores are buffered there and
        read back once per evaluation (for the divergence watch), never per step.
        """
        n_iter, dev = len(lrs), self.device
        loss_buf = torch.empty(n_iter, device=dev)
        score_buf = torch.empty(len(eval_at), device=dev)
        vloss_buf = torch.empty(len(eval_at), device=dev)
        lr_list, eval_list = lrs.tolist(), eval_at.tolist()
        n_checked = k_eval = 0
        next_eval, score_time = eval_list[0], 0.0
        batch_iter = self.batches()
        bar = progress_bar(n_iter, enabled=verbose >= 1)
        for i in range(n_iter):
            loss_buf[i] = self.step(next(batch_iter), lr_list[i], fit_params)
            if i != next_eval:
                continue
            t_score = time.perf_counter()
            # the first evaluation also checks the module's outputs against the classes
            score_buf[k_eval], vloss_buf[k_eval] = _score(
                self.net, self.valid, self.classifier, dev, fit_params,
                classes=self.classes if k_eval == 0 else None)
            score_time += time.perf_counter() - t_score
            k_eval += 1
            next_eval = eval_list[k_eval] if k_eval < len(eval_list) else -1
            # one host sync per evaluation: check the new losses for divergence
            watch.update(loss_buf[n_checked : i + 1].tolist())
            # under DDP every process stops where the main process's loss diverged
            watch.stop_at, watch.stop_reason = broadcast_object(
                (watch.stop_at, watch.stop_reason), self.net)
            diverged = watch.stop_at is not None
            n_checked = i + 1
            bar.update_to(i + 1, lr=float(lrs[i]), loss=watch.smoothed)
            if diverged:
                break
        bar.close()
        self.net.notify("on_train_end", X=None, y=None)
        stop_at = n_iter if watch.stop_at is None else watch.stop_at
        # one read-back of everything recorded
        record = torch.cat([loss_buf[:stop_at], score_buf[:k_eval], vloss_buf[:k_eval]])
        losses, scores, valid_losses = np.split(record.cpu().numpy().astype(float),
                                                [stop_at, stop_at + k_eval])
        return _Record(losses, scores, valid_losses, eval_at[:k_eval], stop_at,
                       watch.stop_reason, score_time)


def _first_output(y_pred):
    return y_pred[0] if isinstance(y_pred, (tuple, list)) else y_pred


def _labels(y_pred, threshold=0.0):
    """Predicted class indices: the argmax, or for one output (a binary net's logit)
    whether it exceeds ``threshold``."""
    y_pred = _first_output(y_pred)
    if y_pred.ndim == 1 or y_pred.shape[1] == 1:
        return (y_pred.ravel() > threshold).long()
    return y_pred.argmax(1)


def _logit_threshold(net):
    """A binary net's decision threshold on its logit (its ``threshold`` on the
    probability, 0.5 by default); 0 for other nets."""
    t = float(getattr(net, "threshold", 0.5))
    return math.log(t / (1 - t)) if 0 < t < 1 else (math.inf if t >= 1 else -math.inf)


def _check_outputs(net, y_pred, classes):
    """The module gives one output per class (a binary net: one logit)."""
    if isinstance(net, NeuralNetBinaryClassifier):
        return
    y_pred = _first_output(y_pred)
    n_out = 1 if y_pred.ndim == 1 else int(y_pred.shape[1])
    if n_out != len(classes):
        shown = classes.tolist() if len(classes) <= 12 else f"{classes[:12].tolist()}..."
        raise ValueError(
            f"The net's module returns {n_out} outputs per sample, but there are "
            f"{len(classes)} classes: {shown}. Each output is the score of one class, in "
            "the order of classes_: give the module as many outputs as classes, or, when "
            "y lacks some of the module's classes, list all of them in the net's classes "
            "parameter (skorch's NeuralNetClassifier(..., classes=[...])).")


def _prior_scores(net, valid, y, idx):
    """What a net that learned only the class prior scores on the scored samples.

    The accuracy of always predicting the most frequent class, and the
    cross-entropy of predicting the class frequencies (their entropy), the
    latter only for the criteria whose loss that is (``CrossEntropyLoss``,
    ``NLLLoss``, ``BCEWithLogitsLoss``, unweighted and without label smoothing);
    else ``None``.
    """
    if y is not None:  # from the host copy of the labels: no device sync
        labels = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)[idx]
    else:
        labels = np.concatenate([np.asarray(torch.as_tensor(yv).cpu()).ravel()
                                 for _, yv in valid])
    counts = np.unique(labels.ravel(), return_counts=True)[1]
    freq = counts / counts.sum()
    criterion = net.criterion_
    plain = (isinstance(criterion, (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss,
                                    torch.nn.BCEWithLogitsLoss))
             and criterion.weight is None and criterion.reduction == "mean"
             and getattr(criterion, "label_smoothing", 0.0) == 0.0
             and getattr(criterion, "pos_weight", None) is None)
    entropy = float(-(freq * np.log(freq)).sum()) if plain else None
    return float(freq.max()), entropy


@torch.no_grad()
def _score(net, valid, classifier, device, fit_params, classes=None):
    """Accuracy (classifiers) or negative loss, and the loss, on the held-out batches
    (with ``classes``, first checked against the module's outputs)."""
    net._set_training(False)
    correct = torch.zeros((), device=device)
    loss_sum = torch.zeros((), device=device)
    threshold = _logit_threshold(net)
    count = 0
    for Xv, yv in valid:
        yv = to_device(torch.as_tensor(yv), device)
        y_pred = net.infer(Xv, **fit_params)
        if classes is not None:
            _check_outputs(net, y_pred, classes)
            classes = None
        loss_sum += net.get_loss(y_pred, yv, X=Xv, training=False) * len(yv)
        if classifier:
            correct += (_labels(y_pred, threshold) == yv.ravel()).sum()
        count += len(yv)
    net._set_training(True)
    loss = loss_sum / count
    return (correct / count if classifier else -loss), loss
