"""The :class:`AutoCLR` estimator: range test, bounds, step size and cyclical fit."""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import numbers
import pickle
import warnings
from dataclasses import dataclass

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.exceptions import DataConversionWarning
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import check_random_state, get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted, validate_data
from skorch.callbacks import LRScheduler
from skorch.net import NeuralNet
from torch.utils.data import Dataset

from ._detect import DETECTORS, SHORTCUT_RATIO, Bounds, BoundsWarning
from ._range_test import RAMPS, range_test
from ._schedule import FACTOR_RANGE, POLICIES, CyclePlan, cyclic_lr_callback, plan_cycles
from ._utils import draw_seed, fresh_net, is_int, resolve_device, seeded

__all__ = ["AutoCLR", "Suggestion"]

#: ``gamma="auto"`` makes exp_range's amplitude shrink to this fraction by the end
EXP_RANGE_FINAL_AMPLITUDE = 0.1
#: a range test that diverges within this fraction of its iterations started too high
EARLY_DIVERGENCE_FRACTION = 0.25
#: the automatic retry after an early divergence starts this factor lower
RETRY_LOWER_BY = 1e3


@dataclass(frozen=True, eq=False)
class Suggestion:
    """The bounds and step size AutoCLR would use; its repr is the printed block.

    Attributes
    ----------
    base_lr, max_lr : float
    step_size : int
    plan : CyclePlan
        Step size, iterations per epoch, factor, cycles and epochs.
    policy : str
    bounds : Bounds or None
        The detection (``None`` when both bounds were given).
    range_test : RangeTestResult or None
    """

    base_lr: float
    max_lr: float
    step_size: int
    plan: CyclePlan
    policy: str
    bounds: Bounds | None
    range_test: object | None

    def __repr__(self) -> str:
        p = self.plan
        lines = [
            "AutoCLR suggestion",
            f"  base_lr={self.base_lr:.2e}  max_lr={self.max_lr:.2e}  "
            f"step_size={p.step_size} ({p.factor:g} x {p.iterations_per_epoch} "
            f"iterations/epoch)  policy={self.policy}",
            f"  training: {p.n_cycles} cycle(s), {p.n_epochs} epochs, "
            f"{p.n_iter} iterations",
        ]
        if self.bounds is not None:
            lines.append(f"  why: {self.bounds.explanation}")
        else:
            lines.append("  why: base_lr and max_lr were given; no range test was run.")
        rt = self.range_test
        if rt is not None:
            lines.append(
                f"  range test: {len(rt.lrs)} iterations, {rt.ramp} ramp "
                f"{rt.lr_range[0]:.0e} -> {rt.lr_range[1]:.0e}, stop: {rt.stop_reason}"
                f", {rt.wall_time:.2f}s"
            )
        return "\n".join(lines)

    __str__ = __repr__


def _is_classifier_net(self):
    return is_classifier(self.net)


class AutoCLR(BaseEstimator):
    """Train a skorch net with a cyclical learning rate whose bounds it finds itself.

    ``fit(X, y)`` runs the LR range test of Smith (2017) on a fresh copy of
    ``net``, reads ``base_lr`` (where the validation score starts to rise) and
    ``max_lr`` (at the top of the curve, between where its rise slows and
    where it falls) off the smoothed curve, derives the step
    size from the data and batch size, and fits another fresh copy of ``net``
    with :class:`torch.optim.lr_scheduler.CyclicLR`, stepped every batch,
    ending at the end of a cycle. ``fit`` and ``suggest`` never modify the
    net passed in (``set_params(net__...)`` does, as in any scikit-learn
    meta-estimator).

    Parameters
    ----------
    net : skorch.NeuralNetClassifier or skorch.NeuralNetRegressor
        The net to train, not initialised or fitted by AutoCLR. Its
        ``max_epochs`` is the epoch budget: training runs the largest whole
        number of cycles that fits in it. Its parameters are reachable as
        ``net__*`` in ``get_params``/``set_params`` (and so in grid searches).
    policy : {"triangular", "triangular2", "exp_range"}, default="triangular2"
        Cyclical policy (``CyclicLR``'s ``mode``): constant amplitude, halved
        each cycle, or multiplied by ``gamma`` every iteration.
    base_lr, max_lr : float, default=None
        Bounds of the cycle. When both are given the range test is skipped.
        When only one is given the range test still runs and detects the
        other, and the given one is used as is; a detected ``base_lr`` that
        is not below the given ``max_lr`` is replaced by ``max_lr / 4`` (with
        a warning), and a detected ``max_lr`` not above the given ``base_lr``
        raises a ``ValueError``.
    step_size : "auto" or int, default="auto"
        Iterations of half a cycle. ``"auto"``:
        ``step_size_factor`` x iterations per epoch, counted on the samples the
        final fit actually trains on (after the net's ``train_split``).
    step_size_factor : "auto" or int, default="auto"
        Half a cycle in epochs, in [2, 10]. ``"auto"``: the largest factor
        that fits three cycles into the net's ``max_epochs``
        (``max_epochs // 6``, clipped to [2, 10]).
    gamma : float or "auto", default="auto"
        Per-iteration amplitude decay for ``policy="exp_range"``, in (0, 1].
        ``"auto"``: the amplitude shrinks to 10 % over the whole fit.
    cycle_momentum : bool, default=False
        Cycle the momentum inversely to the LR (``CyclicLR``'s
        ``cycle_momentum``) between ``0.85 * m`` and the optimizer's momentum
        ``m``. Off by default: the user's momentum is never changed unless
        asked. Requires an optimizer with a ``momentum`` (SGD, RMSprop) or
        ``betas`` (Adam) parameter.
    lr_range : tuple of float, default=(1e-6, 1.0)
        Low and high bound of the range test.
    ramp : {"exp", "linear"}, default="exp"
        How the LR rises during the range test. The exponential ramp spends
        as many iterations in each decade; a linear ramp over six decades
        spends 90 % of them in the top one (see the docs).
    range_test_iter : int or "auto", default="auto"
        Range-test iterations; ``"auto"``: 16 epochs of its training split,
        clipped to [100, 400].
    valid_size : float, default=0.2
        Fraction held out (shuffled, stratified for classifiers) to score the
        range test. The final fit uses the net's own ``train_split``.
    detection : {"accuracy", "loss"}, default="accuracy"
        Bound detector: onset and top of the validation score (the
        paper's rule), or steepest descent of the training loss (the rule of
        other LR finders, with ``base_lr = max_lr / 4``).
    device : str, default="auto"
        ``"auto"``: CUDA when available, else CPU. Any other value is passed
        to the net's ``device``.
    random_state : int, RandomState instance or None, default=None
        Seeds the range test's split and shuffling, the weight initialisation
        of both phases (which start from the same weights) and the shuffling
        of the final fit. torch's global RNG state is left as it was.
    verbose : int, default=0
        ``>= 1`` shows the range test's progress (on stderr), prints the
        suggestion block and keeps the net's own per-epoch output; ``0``
        silences the net's output during the fit.

    Attributes
    ----------
    base_lr_, max_lr_ : float
        Bounds used for the cyclical fit.
    step_size_ : int
        Half-cycle length in iterations.
    net_ : skorch net
        The fitted copy of ``net``.
    range_test_ : RangeTestResult or None
        The range test, with its ``bounds``; ``None`` when both bounds were given.
    suggestion_ : Suggestion
        Everything above in one object; printed when ``verbose >= 1``.
    cycle_plan_ : CyclePlan
        Step size, iterations per epoch, cycles and epochs of the fit.
    classes_ : ndarray
        Class labels (classifiers).
    n_features_in_ : int
        Features seen in ``fit`` (array input).

    Notes
    -----
    **Checks first.** Parameters and input are validated before any
    training; each error names the parameter, the value and what is allowed.

    **Hard range-test curves.**

    - The loss diverges at the first iterations (the range test stopped on a
      diverging or NaN loss within its first quarter, or too early to be
      read): ``lr_range`` starts too high. AutoCLR retries *once* with the
      range lowered 1000-fold (from ``low / 1000`` to the LR where it
      diverged), with a :class:`~autoclr.BoundsWarning`; ``range_test_``
      is the retried test. If that diverges too, ``fit`` raises a
      ``ValueError`` telling to start ``lr_range`` lower or to check the net
      and data.
    - No rise of the validation score (an untrainable problem, random
      labels): a :class:`~autoclr.BoundsWarning` says no onset was found and
      the loss rule is used instead (``range_test_.bounds.fallback`` is
      True). For classifiers a rise must exceed the sampling noise of an
      accuracy measured on the validation split.
    - Neither the score nor the loss can be read: a
      :class:`~autoclr.BoundsWarning`, and the net's own ``lr`` is used as
      ``max_lr`` with ``base_lr = lr / 4`` (``bounds.method == "net_lr"``).
    - A loss that is not finite at the very first iteration, before any
      update, does not depend on the LR: ``fit`` raises a ``ValueError`` at
      once (check the criterion, the module's output and the data).
    - Detected bounds (all but the ``"net_lr"`` fallback above) always lie
      inside the tested range, ``base_lr`` below
      ``max_lr``.

    **Interruptions.** See :meth:`fit`: Ctrl-C during the range test
    propagates and leaves the estimator unfitted; during the final fit skorch
    catches it and ``fit`` returns a fitted estimator with a warning.

    **Persistence.** Fitted estimators pickle (``pickle``, ``joblib.dump``)
    and predict identically when loaded. Nets whose classes are defined in
    the ``__main__`` script are stored by value (cloudpickle), so unfitted
    estimators reach process-based workers; a *fitted* one still needs the
    module class where it is loaded (skorch saves the module by class
    name), and loading it elsewhere fails with a message saying so: define
    such classes in an importable module.

    Examples
    --------
    >>> from autoclr import AutoCLR
    >>> auto = AutoCLR(net, random_state=0).fit(X_train, y_train)  # doctest: +SKIP
    >>> auto.base_lr_, auto.max_lr_, auto.step_size_                # doctest: +SKIP
    """

    def __init__(
        self,
        net,
        *,
        policy="triangular2",
        base_lr=None,
        max_lr=None,
        step_size="auto",
        step_size_factor="auto",
        gamma="auto",
        cycle_momentum=False,
        lr_range=(1e-6, 1.0),
        ramp="exp",
        range_test_iter="auto",
        valid_size=0.2,
        detection="accuracy",
        device="auto",
        random_state=None,
        verbose=0,
    ):
        self.net = net
        self.policy = policy
        self.base_lr = base_lr
        self.max_lr = max_lr
        self.step_size = step_size
        self.step_size_factor = step_size_factor
        self.gamma = gamma
        self.cycle_momentum = cycle_momentum
        self.lr_range = lr_range
        self.ramp = ramp
        self.range_test_iter = range_test_iter
        self.valid_size = valid_size
        self.detection = detection
        self.device = device
        self.random_state = random_state
        self.verbose = verbose

    # ------------------------------------------------------------------ tags
    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        net_tags = get_tags(self.net) if isinstance(self.net, BaseEstimator) else None
        if net_tags is not None:
            tags.estimator_type = net_tags.estimator_type
            tags.classifier_tags = net_tags.classifier_tags
            tags.regressor_tags = net_tags.regressor_tags
            # skorch regressors train on 2-d targets natively (a 1-d y becomes
            # a column); several columns need a module with as many outputs
            tags.target_tags.multi_output = net_tags.estimator_type == "regressor"
        tags.non_deterministic = self.random_state is None
        return tags

    def set_params(self, **params):
        """Set parameters; ``net__*`` ones are routed to the net.

        A mistyped name raises a ``ValueError`` that suggests the closest
        valid one (``polcy`` -> ``policy``, ``nett__lr`` -> ``net__lr``).
        """
        own = self.get_params(deep=False)
        for key in params:
            top, sep, rest = key.partition("__")
            if top in own and (not sep or top == "net"):
                continue
            if sep and top in own:
                msg = f"Invalid parameter {key!r} for AutoCLR: {top!r} has no sub-parameters."
            else:
                msg = f"Invalid parameter {top!r} for AutoCLR."
            if sep:
                candidates = [k for k in self.get_params(deep=True) if "__" in k]
            else:
                candidates = list(own)
            close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
            if close:
                msg += f" Did you mean {close[0]!r}?"
            raise ValueError(f"{msg} Valid parameters are: {sorted(own)}.")
        net_keys = {k for k in params if k.startswith("net__")}
        try:
            return super().set_params(**params)
        except ValueError as exc:
            if not net_keys or not hasattr(self.net, "get_params"):
                raise
            names = [f"net__{k}" for k in self.net.get_params(deep=True)]
            for key in sorted(net_keys):
                if key not in names:
                    close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
                    if close:
                        raise ValueError(
                            f"Invalid parameter {key!r} for AutoCLR's net. Did you "
                            f"mean {close[0]!r}?") from exc
            raise

    # ----------------------------------------------------------- persistence
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: never touch self.__dict__
        main = sorted({name for key in ("net", "net_") for name in _main_classes(
            state.get(key))})
        if main:
            # pickle stores classes by name, and "__main__.MyModule" does not exist
            # in another program or a worker: store the nets with cloudpickle, which
            # copies such classes by value (skorch stores a fitted net's module_
            # with torch.save, by name: that part still needs the class, and
            # loading says so)
            try:
                dumps = _cloudpickle().dumps
                for key in ("net", "net_"):
                    if key in state:
                        state[key] = _PickledByValue(dumps(state[key]), main)
            except Exception as exc:
                raise pickle.PicklingError(
                    f"AutoCLR's net uses {', '.join(main)} defined in the __main__ script, "
                    "which pickle stores by name only, so other programs and worker "
                    "processes cannot load it; storing it by value failed too "
                    f"({exc}). Define these classes in an importable module "
                    "(e.g. mymodels.py) and import them from there.") from exc
        return state

    def __setstate__(self, state):
        state = {key: value.load() if isinstance(value, _PickledByValue) else value
                 for key, value in state.items()}
        super().__setstate__(state)

    # ------------------------------------------------------------ validation
    def _check_params(self):
        if not isinstance(self.net, NeuralNet):
            got = (f"the class {self.net.__name__}" if isinstance(self.net, type)
                   else type(self.net).__name__)
            raise TypeError(
                "net must be a skorch net instance such as "
                f"NeuralNetClassifier(MyModule, ...), got {got}."
            )
        _check_option("policy", self.policy, POLICIES)
        _check_option("detection", self.detection, tuple(DETECTORS))
        _check_option("ramp", self.ramp, RAMPS)
        for name in ("base_lr", "max_lr"):
            value = getattr(self, name)
            if value is not None and not (_is_real(value) and value > 0
                                          and np.isfinite(value)):
                raise ValueError(f"{name} must be a positive float or None, got {value!r}.")
        if (self.base_lr is not None and self.max_lr is not None
                and self.base_lr >= self.max_lr):
            raise ValueError(
                f"base_lr must be below max_lr, got base_lr={self.base_lr!r} and "
                f"max_lr={self.max_lr!r}.")
        if self.step_size != "auto" and not (
                is_int(self.step_size) and self.step_size > 0):
            raise ValueError(
                f"step_size must be 'auto' or a positive int, got {self.step_size!r}.")
        lo, hi = FACTOR_RANGE
        if self.step_size_factor != "auto" and not (
                is_int(self.step_size_factor) and lo <= self.step_size_factor <= hi):
            raise ValueError(
                f"step_size_factor must be 'auto' or an int in [{lo}, {hi}], "
                f"got {self.step_size_factor!r}.")
        if self.gamma != "auto" and not (_is_real(self.gamma) and 0 < self.gamma <= 1):
            raise ValueError(f"gamma must be 'auto' or in (0, 1], got {self.gamma!r}.")
        try:
            lr_lo, lr_hi = self.lr_range
            ok = _is_real(lr_lo) and _is_real(lr_hi) and 0 < lr_lo < lr_hi
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                "lr_range must be a pair (low, high) with 0 < low < high, "
                f"got {self.lr_range!r}.")
        if self.range_test_iter != "auto" and not (
                is_int(self.range_test_iter) and self.range_test_iter >= 8):
            raise ValueError(
                "range_test_iter must be 'auto' or an int >= 8, "
                f"got {self.range_test_iter!r}.")
        if not (_is_real(self.valid_size) and 0 < self.valid_size < 1):
            raise ValueError(f"valid_size must be in (0, 1), got {self.valid_size!r}.")
        if not isinstance(self.cycle_momentum, (bool, np.bool_)):
            raise ValueError(
                f"cycle_momentum must be True or False, got {self.cycle_momentum!r}.")
        if self.cycle_momentum:
            self._momentum_bounds(self.net)  # raises now, before any training
        if not (is_int(self.verbose) and self.verbose >= 0):
            raise ValueError(f"verbose must be an int >= 0, got {self.verbose!r}.")
        try:
            check_random_state(self.random_state)
        except ValueError:
            raise ValueError(
                "random_state must be None, an int or a numpy RandomState, "
                f"got {self.random_state!r}.") from None
        device = resolve_device(self.device)
        if (isinstance(device, str) and device.startswith("cuda")
                and not torch.cuda.is_available()):
            raise ValueError(
                f"device={self.device!r} was asked for but CUDA is not available; "
                "use device='auto' or 'cpu'.")
        if (self.base_lr is not None and self.max_lr is None
                and self.base_lr >= self.lr_range[1]):
            raise ValueError(
                f"base_lr={self.base_lr!r} is given without max_lr, but the range test "
                f"only reaches lr_range[1]={self.lr_range[1]!r}, so it cannot find a "
                "max_lr above it. Raise lr_range's high bound, or give max_lr too.")
        if isinstance(self.net.callbacks, str):
            raise ValueError(
                f"net.callbacks={self.net.callbacks!r} turns off every callback, "
                "including the LR scheduler AutoCLR adds; pass callbacks=[] (or a "
                "list) to the net instead.")
        for cb in _user_callbacks(self.net):
            name, cb = cb if isinstance(cb, tuple) else (type(cb).__name__, cb)
            if isinstance(cb, LRScheduler) or (
                    isinstance(cb, type) and issubclass(cb, LRScheduler)):
                raise ValueError(
                    f"net.callbacks holds an LR scheduler ({name!r}); AutoCLR sets the "
                    "learning-rate schedule itself. Remove it from the net's callbacks.")
        return device

    def _validate_input(self, X, y, reset):
        """Arrays are validated the scikit-learn way; datasets and tensors pass."""
        if isinstance(X, Dataset) or isinstance(X, torch.Tensor) and not reset:
            return X, y
        if reset and y is None:
            raise ValueError(
                "AutoCLR requires y to be passed, but the target y is None: pass y, "
                "or a torch Dataset yielding (X, y) pairs as X.")
        if isinstance(X, torch.Tensor):
            X_np = X.detach().cpu().numpy()
        else:
            X_np = X
        if isinstance(y, torch.Tensor):
            y = y.detach().cpu().numpy()
        if reset:
            n_x, n_y = _n_samples(X_np), _n_samples(y)
            if n_x is not None and n_y is not None and n_x != n_y:
                raise ValueError(
                    f"X and y have different lengths: X has {n_x} samples, y has "
                    f"{n_y}. Pass one target per sample.")
            X_out, y_out = validate_data(
                self, X_np, y, reset=True, dtype=np.float32, allow_nd=True,
                y_numeric=not is_classifier(self.net), multi_output=True,
            )
            return X_out, y_out
        return validate_data(self, X_np, reset=False, dtype=np.float32,
                             allow_nd=True), None

    def _encode_y(self, y):
        self._y_1d = y is not None and np.ndim(y) == 1
        if y is None:
            return None
        if is_classifier(self.net):
            check_classification_targets(y)
            y = np.asarray(y)
            if y.ndim == 2 and y.shape[1] == 1:
                warnings.warn(
                    "A column-vector y was passed when a 1d array was expected; it is "
                    "used as y.ravel().", DataConversionWarning, stacklevel=4)
                y = y.ravel()
            if y.ndim != 1:
                raise ValueError(
                    f"y must be 1-d class labels for a classifier, got shape {y.shape}.")
            self.classes_, y_enc = np.unique(y, return_inverse=True)
            if len(self.classes_) < 2:
                raise ValueError(
                    f"y has only one class ({self.classes_[0].tolist()!r}); a classifier needs "
                    "at least two.")
            return y_enc.astype(np.int64)
        y = np.asarray(y, dtype=np.float32)
        return y.reshape(-1, 1) if y.ndim == 1 else y

    # ------------------------------------------------------------------- fit
    def _prepare(self, X, y):
        device = self._check_params()
        X, y = self._validate_input(X, y, reset=True)
        y_enc = self._encode_y(y)
        n = len(X)
        bs = self.net.batch_size
        if bs not in (-1, None) and n < 2 * bs:
            raise ValueError(
                f"n_samples={n} is too small for the net's batch_size={bs}: the "
                f"range test and the fit need at least {2 * bs} samples. Lower "
                "net__batch_size.")
        if self.base_lr is None or self.max_lr is None:
            n_valid = int(round(self.valid_size * n))
            if not 1 <= n_valid < n:
                raise ValueError(
                    f"valid_size={self.valid_size!r} leaves {n_valid} of n_samples={n} "
                    "samples to score the range test; it needs at least one held-out "
                    "and one training sample. Raise valid_size or pass more samples.")
        return device, X, y_enc

    def _n_train(self, X, y):
        """Samples the final fit trains on, after the net's own train_split."""
        # building the dataset and splitting it read the net, never change it
        if self.net.train_split is None:
            return len(X)
        dataset = self.net.get_dataset(X, y)
        train, _ = self.net.train_split(dataset, y)
        return len(train)

    def _run_range_test(self, X, y_enc, device, seed, lr_range):
        """One range test and its detection; detection errors are returned, not raised."""
        rt = range_test(
            self.net, X, y_enc,
            lr_range=lr_range, ramp=self.ramp,
            n_iter=self.range_test_iter, valid_size=self.valid_size,
            random_state=seed, device=device, verbose=self.verbose,
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                rt = rt.with_bounds(self.detection)
                error = None
            except ValueError as exc:
                error = exc
        return rt, error, caught

    def _detect(self, X, y_enc, device, seed):
        """Range test, one lower retry after an early divergence, and the fallbacks."""
        lr_range = tuple(float(v) for v in self.lr_range)
        rt, error, caught = self._run_range_test(X, y_enc, device, seed, lr_range)
        if rt.stop_reason == "nan" and len(rt.lrs) == 0:
            # the first loss is computed before any update: no LR can be blamed
            raise ValueError(
                "The training loss is not finite at the first iteration of the range "
                "test, before any update, so no learning rate can help. Check the "
                "criterion (NLLLoss expects log-probabilities; a module returning "
                "logits needs criterion=nn.CrossEntropyLoss), the module's output and "
                "the data (NaN or inf in X or y).")
        if _diverged_early(rt, error):
            lo = lr_range[0]
            retry_range = (lo / RETRY_LOWER_BY, max(rt.diverged_lr or lo, lo))
            warnings.warn(
                f"The range test's loss diverged (stop: {rt.stop_reason}) after "
                f"{len(rt.lrs)} of {rt.n_iter} iterations, at lr={rt.diverged_lr:.3g}: "
                f"lr_range={lr_range} starts too high. Retrying once with "
                f"lr_range=({retry_range[0]:.3g}, {retry_range[1]:.3g}).",
                BoundsWarning, stacklevel=4)
            rt, error, caught = self._run_range_test(X, y_enc, device, seed, retry_range)
            if _diverged_early(rt, error):
                raise ValueError(
                    f"The range test's loss diverges from the first iterations "
                    f"(stop: {rt.stop_reason} after {len(rt.lrs)} of {rt.n_iter} "
                    f"iterations, at lr={rt.diverged_lr:.3g}), even after a retry "
                    f"from lr={retry_range[0]:.3g}. Start lr_range lower, or check the "
                    "net and the data (unscaled inputs or targets, a wrong criterion)."
                ) from error
        for w in caught:
            warnings.warn(w.message, w.category, stacklevel=4)
        if error is None:
            return rt
        # the curve could not be read by either rule (flat score and flat loss):
        # last resort, the net's own lr, said loudly
        lr = float(self.net.lr)
        reason = str(error)
        warnings.warn(
            f"{reason} Using the net's lr={lr:.3g} as max_lr and lr / "
            f"{SHORTCUT_RATIO:g} as base_lr. The problem may not be learnable as "
            "posed (random labels?); check the range-test plot.",
            BoundsWarning, stacklevel=4)
        bounds = Bounds(
            base_lr=lr / SHORTCUT_RATIO, max_lr=lr, method="net_lr",
            explanation=(f"Fallback ({reason}): max_lr is the net's lr={lr:.3g}, "
                         f"base_lr = max_lr / {SHORTCUT_RATIO:g}."),
            fallback=True,
        )
        return dataclasses.replace(rt, bounds=bounds)

    def _suggest(self, X, y_enc, device, seed):
        rt = None
        bounds = None
        base_lr, max_lr = self.base_lr, self.max_lr
        # the plan needs no training: computed first, so its errors come first
        n_train = self._n_train(X, y_enc)
        plan = plan_cycles(
            n_train, self.net.batch_size, self.net.max_epochs,
            step_size=self.step_size, factor=self.step_size_factor,
        )
        if base_lr is None or max_lr is None:
            rt = self._detect(X, y_enc, device, seed)
            bounds = rt.bounds
            if base_lr is None and max_lr is None:
                base_lr, max_lr = bounds.base_lr, bounds.max_lr
            elif base_lr is None:
                base_lr = bounds.base_lr
                if base_lr >= max_lr:
                    warnings.warn(
                        f"The detected base_lr={base_lr:.3g} is not below the given "
                        f"max_lr={max_lr:.3g}; using max_lr / {SHORTCUT_RATIO:g}.",
                        UserWarning, stacklevel=3)
                    base_lr = max_lr / SHORTCUT_RATIO
            else:
                max_lr = bounds.max_lr
                if max_lr <= base_lr:
                    raise ValueError(
                        f"The range test found max_lr={max_lr:.3g}, not above the "
                        f"given base_lr={base_lr:.3g}. Lower base_lr or give max_lr too.")
        return Suggestion(
            base_lr=float(base_lr), max_lr=float(max_lr), step_size=plan.step_size,
            plan=plan, policy=self.policy, bounds=bounds, range_test=rt,
        )

    def suggest(self, X, y=None):
        """Run the range test only and return the suggested bounds and step size.

        The estimator itself stays unfitted.

        Returns
        -------
        Suggestion
            Its repr is the block ``fit`` prints with ``verbose >= 1``.
        """
        # an unfitted twin does the work, so this estimator is left as it was
        twin = clone(self)
        device, X, y_enc = twin._prepare(X, y)
        return twin._suggest(X, y_enc, device, draw_seed(self.random_state))

    def fit(self, X, y=None, **fit_params):
        """Run the range test, pick the bounds and fit the net with a cyclical LR.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...), torch.Tensor or Dataset
            Training data; arrays are cast to float32 (no copy when already
            float32).
        y : array-like of shape (n_samples,) or None
            Targets; ``None`` when ``X`` is a ``Dataset`` yielding ``(X, y)``.
        **fit_params
            Passed to the net's ``fit``.

        Returns
        -------
        self

        Notes
        -----
        Input and parameters are checked before any training. If ``fit``
        raises (a bad input, a range test that cannot be read, or
        ``KeyboardInterrupt`` / Ctrl-C during the range test, which
        propagates), the estimator is left unfitted, the net passed in is
        untouched and ``fit`` can simply be called again.

        Ctrl-C during the final cyclical fit is caught by skorch, which ends
        training there: ``fit`` then warns, returns normally and the estimator
        *is* fitted, with ``net_`` holding the net as it stopped (its
        ``history`` says how far it got, and the LR did not end at the end of
        a cycle). Call ``fit`` again to train from scratch.
        """
        self._reset_fitted()
        try:
            return self._fit(X, y, **fit_params)
        except BaseException:
            # nothing half-fitted stays behind (classes_, n_features_in_, ...)
            self._reset_fitted()
            raise

    def _reset_fitted(self):
        for key in [k for k in vars(self) if k.endswith("_") and not k.startswith("__")]:
            delattr(self, key)

    def _fit(self, X, y, **fit_params):
        device, X, y_enc = self._prepare(X, y)
        seed = draw_seed(self.random_state)
        suggestion = self._suggest(X, y_enc, device, seed)
        if self.verbose:
            print(suggestion, flush=True)
        plan = suggestion.plan
        gamma = self.gamma
        if gamma == "auto":
            gamma = EXP_RANGE_FINAL_AMPLITUDE ** (1 / max(plan.n_iter, 1))
        net = fresh_net(self.net, device=device, max_epochs=plan.n_epochs)
        momentum = {}
        if self.cycle_momentum:
            momentum = self._momentum_bounds(net)
        callback = cyclic_lr_callback(
            suggestion.base_lr, suggestion.max_lr, plan.step_size, policy=self.policy,
            gamma=gamma, cycle_momentum=bool(self.cycle_momentum), **momentum,
        )
        net.set_params(
            callbacks=_user_callbacks(net) + [("autoclr_cyclic_lr", callback)],
            lr=suggestion.base_lr,
            iterator_train__generator=torch.Generator().manual_seed(seed),
            # a DataLoader without a generator draws from torch's global RNG; in
            # threads (dask, joblib's threading backend) such a draw by one fit's
            # predict/score could land inside another fit's seeded block
            iterator_valid__generator=torch.Generator().manual_seed(seed),
        )
        if not self.verbose:
            net.set_params(verbose=0)
        with seeded(seed, device):
            net.initialize()
            net.partial_fit(X, y_enc, **fit_params)
        steps = getattr(dict(net.callbacks_)["autoclr_cyclic_lr"], "batch_idx_", 0)
        if steps < plan.n_iter:
            warnings.warn(
                f"Training stopped after {steps} of {plan.n_iter} iterations, in epoch "
                f"{len(net.history)} of {plan.n_epochs} (interrupted, or stopped early "
                "by a callback): the LR did not end at the end of a cycle. net_ holds "
                "the net as it stopped.",
                UserWarning, stacklevel=3)
        self.net_ = net
        self.suggestion_ = suggestion
        self.range_test_ = suggestion.range_test
        self.base_lr_ = suggestion.base_lr
        self.max_lr_ = suggestion.max_lr
        self.step_size_ = plan.step_size
        self.cycle_plan_ = plan
        return self

    @staticmethod
    def _momentum_bounds(net):
        """Momentum bounds for ``cycle_momentum=True``: from 0.85 m to the user's m."""
        optimizer = net.optimizer
        kwargs = net.get_params_for("optimizer")
        params = inspect.signature(optimizer).parameters
        if "momentum" in params:
            m = kwargs.get("momentum", params["momentum"].default)
        elif "betas" in params:
            m = kwargs.get("betas", params["betas"].default)[0]
        else:
            raise ValueError(
                "cycle_momentum=True needs an optimizer with momentum or betas; "
                f"{getattr(optimizer, '__name__', optimizer)} has neither.")
        if not m:
            raise ValueError(
                "cycle_momentum=True, but the optimizer's momentum is 0; set "
                "net__optimizer__momentum (e.g. 0.9) or leave cycle_momentum=False.")
        return {"base_momentum": 0.85 * m, "max_momentum": m}

    # ------------------------------------------------------------ prediction
    def predict(self, X):
        """Predict with the fitted net.

        Class labels for classifiers; float64 values for regressors (as
        scikit-learn's regressors), 1-d when ``y`` was 1-d in ``fit``.
        """
        check_is_fitted(self, "net_")
        X, _ = self._validate_input(X, None, reset=False)
        pred = self.net_.predict(X)
        if is_classifier(self.net):
            return self.classes_[pred] if hasattr(self, "classes_") else pred
        pred = np.asarray(pred, dtype=np.float64)
        if getattr(self, "_y_1d", False) and pred.ndim == 2 and pred.shape[1] == 1:
            return pred.ravel()
        return pred

    @available_if(_is_classifier_net)
    def predict_proba(self, X):
        """Class probabilities from the fitted net, columns in ``classes_`` order."""
        check_is_fitted(self, "net_")
        X, _ = self._validate_input(X, None, reset=False)
        return self.net_.predict_proba(X)

    def score(self, X, y, sample_weight=None):
        """Accuracy for classifiers, R^2 for regressors (as scikit-learn's mixins)."""
        y_pred = self.predict(X)
        if is_classifier(self.net):
            return accuracy_score(y, y_pred, sample_weight=sample_weight)
        return r2_score(y, y_pred, sample_weight=sample_weight)


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _user_callbacks(net):
    """The net's own callbacks, as a new list (the user's list is never extended)."""
    return list(net.callbacks or [])


def _diverged_early(rt, error):
    """The range test stopped on a diverging loss too early to be read."""
    if rt.stop_reason == "completed":
        return False
    return error is not None or len(rt.lrs) < EARLY_DIVERGENCE_FRACTION * rt.n_iter


def _n_samples(a):
    if a is None:
        return None
    shape = getattr(a, "shape", None)
    if shape is not None:
        return int(shape[0]) if len(shape) else None
    try:
        return len(a)
    except TypeError:
        return None


def _check_option(name, value, allowed):
    if isinstance(value, str) and value in allowed:
        return
    msg = f"{name} must be one of {tuple(allowed)}, got {value!r}."
    if isinstance(value, str):
        close = difflib.get_close_matches(value, allowed, n=1)
        if close:
            msg += f" Did you mean {close[0]!r}?"
    raise ValueError(msg)


def _cloudpickle():
    """cloudpickle: a dependency of joblib >= 1.5, vendored by older joblib."""
    try:
        import cloudpickle
    except ImportError:  # pragma: no cover
        from joblib.externals import cloudpickle
    return cloudpickle


class _PickledByValue:
    """A net pickled with cloudpickle, so classes from ``__main__`` travel by value."""

    def __init__(self, payload, main_classes):
        self.payload = payload
        self.main_classes = main_classes

    def load(self):
        try:
            return pickle.loads(self.payload)
        except AttributeError as exc:
            if "__main__" not in str(exc):
                raise
            names = ", ".join(self.main_classes)
            raise AttributeError(
                f"This AutoCLR was pickled by a program that defined {names} in its "
                "__main__ script; the fitted net refers to it by name, and this "
                f"program's __main__ has no such class ({exc}). Define {names} in an "
                "importable module (e.g. mymodels.py), import it from there in both "
                "programs, and fit and save again; or define it in this program's "
                "__main__ before loading.") from exc


def _main_classes(net):
    """Names of the classes defined in ``__main__`` that a net refers to."""
    if net is None:
        return set()
    values = list(vars(net).values())
    values += [v for value in list(values) if isinstance(value, (list, tuple))
               for v in value]
    values += [v for value in list(values) if isinstance(value, tuple) for v in value]
    names = set()
    for value in values:
        cls = value if isinstance(value, type) else type(value)
        if getattr(cls, "__module__", None) == "__main__":
            names.add(cls.__qualname__)
    return names
