"""Checks of parameters and input, shared by :class:`~autoclr.AutoCLR` and
:func:`~autoclr.range_test`.

One table, :data:`PARAMS`, says what each parameter accepts and which stage
of the fit reads it; both public entry points check their arguments against
it before any training, so a parameter is described (and its error worded)
in one place, and the lists of what the suggestion and the schedule take are
derived from it. The options themselves (policies, ramps, detectors,
monitors) are defined here too, at the bottom of the package, so that the
modules they configure import them from here and never the reverse.
Messages name the parameter, the value received and what is allowed, with a
"did you mean" hint for a mistyped option. Input arrays are validated with
scikit-learn's ``validate_data``.
"""

from __future__ import annotations

import difflib
import inspect
import math
import numbers

import numpy as np
import scipy.sparse as sp
import torch
from sklearn.base import is_classifier
from sklearn.exceptions import DataConversionWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import validate_data
from skorch.callbacks import LRScheduler
from skorch.classifier import NeuralNetBinaryClassifier
from skorch.net import NeuralNet
from torch.utils.data import Dataset

from ._data import is_multi_input, n_samples
from ._device import resolve_device
from ._utils import is_int, user_callbacks, warn

__all__ = ["PARAMS", "RAMPS", "POLICIES", "CYCLIC_POLICIES", "FACTOR_RANGE", "MONITORS",
           "DETECTION_METHODS", "CYCLE_WEIGHTS", "AUTOCLR_PARAMS", "SUGGEST_PARAMS",
           "SCHEDULE_PARAMS",
           "check_params", "check_combinations", "check_net", "check_param_names",
           "net_param_hint", "validate_input", "encode_target", "check_data_size",
           "check_warm_start", "check_fit", "resolve_monitor", "momentum_of",
           "optimizer_momentum"]

#: how the LR rises during the range test
RAMPS = ("exp", "linear")
#: CyclicLR's modes
CYCLIC_POLICIES = ("triangular", "triangular2", "exp_range")
#: every policy: CyclicLR's modes and a single OneCycleLR cycle over the budget
POLICIES = ("auto", *CYCLIC_POLICIES, "one_cycle")
#: allowed range of step_size / iterations per epoch
FACTOR_RANGE = (2, 10)
#: what ``cycle_monitor`` may name ("auto": valid_loss, or train_loss without a
#: validation split)
MONITORS = ("auto", "valid_loss", "valid_acc", "train_loss")
#: the weights a fit ends with (``cycle_weights``; ``autoclr._keep``)
CYCLE_WEIGHTS = ("auto", "last", "best", "average")
#: the bound detectors (``autoclr._detect.DETECTORS`` implements one per name)
DETECTION_METHODS = ("accuracy", "valid_loss", "loss")
#: fewest samples AutoCLR trains on: the range test holds out a fifth to score
MIN_SAMPLES = 10


def _is_real(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


class _Options:
    def __init__(self, options):
        self.options = tuple(options)

    def check(self, name, value):
        if isinstance(value, str) and value in self.options:
            return
        msg = f"{name} must be one of {self.options}, got {value!r}."
        if isinstance(value, str):
            close = difflib.get_close_matches(value, self.options, n=1)
            if close:
                msg += f" Did you mean {close[0]!r}?"
        raise ValueError(msg)


class _Number:
    """An int (``integer=True``, bools refused) or a real in an interval."""

    def __init__(self, low=None, high=None, *, integer=False, closed="both",
                 auto=False, none=False):
        self.low, self.high, self.integer = low, high, integer
        self.closed, self.auto, self.none = closed, auto, none

    def _ok(self, value):
        if not (is_int(value) if self.integer else _is_real(value)):
            return False
        if not math.isfinite(value):
            return False
        lo_ok = self.low is None or (
            value >= self.low if self.closed in ("both", "left") else value > self.low)
        hi_ok = self.high is None or (
            value <= self.high if self.closed in ("both", "right") else value < self.high)
        return lo_ok and hi_ok

    def describe(self):
        left_closed = self.closed in ("both", "left")
        if self.low is not None and self.high is not None:
            left = "[" if left_closed else "("
            right = "]" if self.closed in ("both", "right") else ")"
            text = f"{'an int ' if self.integer else ''}in {left}{self.low:g}, {self.high:g}{right}"
        elif self.low == (1 if self.integer else 0) and left_closed == self.integer:
            text = "a positive int" if self.integer else "a positive float"
        elif self.low is not None:
            text = f"{'an int' if self.integer else 'a float'} {'>=' if left_closed else '>'} "
            text += f"{self.low:g}"
        else:
            text = "an int" if self.integer else "a float"
        if self.auto:
            text = f"'auto' or {text}"
        if self.none:
            text = f"{text} or None"
        return text

    def check(self, name, value):
        if (self.auto and value == "auto" and isinstance(value, str)) or (
                self.none and value is None) or self._ok(value):
            return
        raise ValueError(f"{name} must be {self.describe()}, got {value!r}.")


class _Bool:
    def check(self, name, value):
        if not isinstance(value, (bool, np.bool_)):
            raise ValueError(f"{name} must be True or False, got {value!r}.")


class _LRRange:
    def check(self, name, value):
        try:
            lo, hi = value
            ok = _is_real(lo) and _is_real(hi) and 0 < lo < hi and math.isfinite(hi)
        except (TypeError, ValueError):
            ok = False
        if not ok:
            raise ValueError(
                f"{name} must be a pair (low, high) with 0 < low < high, got {value!r}.")


class _RandomState:
    def check(self, name, value):
        if isinstance(value, bool):
            ok = False
        else:
            try:
                check_random_state(value)
                ok = True
            except ValueError:
                ok = False
        if not ok:
            raise ValueError(
                f"{name} must be None, an int or a numpy RandomState, got {value!r}.")


class _Device:
    def check(self, name, value):
        if value is None:
            return
        device = resolve_device(value)
        try:
            kind = torch.device(device).type
        except (RuntimeError, TypeError):
            raise ValueError(
                f"{name} must be 'auto', 'cpu', 'cuda', 'cuda:N' or another torch "
                f"device, got {value!r}.") from None
        if kind == "cuda" and not torch.cuda.is_available():
            raise ValueError(
                f"{name}={value!r} was asked for but CUDA is not available; use "
                "device='auto' or 'cpu'.")
        if kind == "mps" and not (torch.backends.mps.is_available()):
            raise ValueError(
                f"{name}={value!r} was asked for but Apple's MPS is not available; use "
                "device='auto' or 'cpu'.")


_RATE = _Number(0, None, closed="right", none=True)
_ITER = _Number(8, None, integer=True, auto=True)

# The stages that read a parameter: what the suggestion (plan, range test,
# reading) takes, what shapes the fitted schedule (a warm start keeps it), what
# only the cyclical fit reads, and range_test's own parameters (not AutoCLR's).
SUGGEST, SCHEDULE, FIT, RANGE_TEST = "suggest", "schedule", "fit", "range_test"

#: what each parameter of AutoCLR and range_test accepts, and the stages that read
#: it (``n_iter`` is ``range_test``'s name for ``range_test_iter``)
PARAMS = {
    "policy": (_Options(POLICIES), {SUGGEST, SCHEDULE}),
    "base_lr": (_RATE, {SUGGEST, SCHEDULE}),
    "max_lr": (_RATE, {SUGGEST, SCHEDULE}),
    "step_size": (_Number(1, None, integer=True, auto=True), {SUGGEST, SCHEDULE}),
    "step_size_factor": (_Number(*FACTOR_RANGE, integer=True, auto=True),
                         {SUGGEST, SCHEDULE}),
    "n_cycles": (_Number(1, None, integer=True, auto=True, none=True), {SUGGEST, FIT}),
    "cycle_monitor": (_Options(MONITORS), {FIT}),
    "cycle_tol": (_Number(0, None), {FIT}),
    "cycle_weights": (_Options(CYCLE_WEIGHTS), {FIT}),
    "warm_start": (_Bool(), {FIT}),
    "gamma": (_Number(0, 1, closed="right", auto=True), {SCHEDULE}),
    "cycle_momentum": (_Bool(), {SCHEDULE}),
    "lr_range": (_LRRange(), {SUGGEST, RANGE_TEST}),
    "ramp": (_Options(RAMPS), {SUGGEST, RANGE_TEST}),
    "range_test_iter": (_ITER, {SUGGEST}),
    "n_iter": (_ITER, {RANGE_TEST}),
    "n_eval": (_Number(1, None, integer=True), {RANGE_TEST}),
    "valid_size": (_Number(0, 1, closed="neither"), {SUGGEST, RANGE_TEST}),
    "max_valid_samples": (_Number(1, None, integer=True), {RANGE_TEST}),
    "divergence_factor": (_Number(1, None, closed="neither"), {RANGE_TEST}),
    "detection": (_Options(DETECTION_METHODS), {SUGGEST}),
    "device": (_Device(), {FIT, RANGE_TEST}),
    "random_state": (_RandomState(), {FIT, RANGE_TEST}),
    "verbose": (_Number(0, None, integer=True), {SUGGEST, FIT, RANGE_TEST}),
}


def _stage(stage):
    return tuple(name for name, (_, stages) in PARAMS.items() if stage in stages)


#: AutoCLR's parameters besides ``net``, in the order of its signature
AUTOCLR_PARAMS = tuple(name for name, (_, stages) in PARAMS.items() if stages - {RANGE_TEST})
#: AutoCLR's parameters that :func:`~autoclr._suggest.suggest` takes
SUGGEST_PARAMS = _stage(SUGGEST)
#: AutoCLR's parameters that shape the fitted schedule: a warm start keeps them
SCHEDULE_PARAMS = _stage(SCHEDULE)


def check_params(params: dict) -> None:
    """Check every parameter of ``params`` that :data:`PARAMS` knows."""
    for name, value in params.items():
        if name in PARAMS:
            PARAMS[name][0].check(name, value)


def check_combinations(params: dict) -> None:
    """Checks of AutoCLR's parameters together, and against its net (already checked)."""
    base_lr, max_lr, policy = params["base_lr"], params["max_lr"], params["policy"]
    if base_lr is not None and max_lr is not None and base_lr >= max_lr:
        raise ValueError(
            f"base_lr must be below max_lr, got base_lr={base_lr!r} and max_lr={max_lr!r}.")
    if base_lr is not None and max_lr is None and base_lr >= params["lr_range"][1]:
        raise ValueError(
            f"base_lr={base_lr!r} is given without max_lr, but the range test only "
            f"reaches lr_range[1]={params['lr_range'][1]!r}, so it cannot find a max_lr "
            "above it. Raise lr_range's high bound, or give max_lr too.")
    if policy == "one_cycle":
        for name in ("step_size", "step_size_factor"):
            if params[name] != "auto":
                raise ValueError(
                    f"{name}={params[name]!r} does not apply to policy='one_cycle', whose "
                    "single cycle spans the net's max_epochs; leave it 'auto' and set "
                    "the length through net__max_epochs.")
        if params["n_cycles"] not in (None, 1):
            raise ValueError(
                f"n_cycles={params['n_cycles']!r} does not apply to policy='one_cycle', "
                "which trains one cycle over the net's max_epochs; use None (or a "
                "cyclical policy for several cycles).")
    resolve_monitor(params["net"], params["cycle_monitor"])
    if params["cycle_momentum"]:
        optimizer_momentum(params["net"])


def resolve_monitor(net, monitor="auto"):
    """The history key read at cycle ends; ``ValueError`` when the net cannot record it."""
    if monitor == "auto":
        return "valid_loss" if net.train_split is not None else "train_loss"
    if monitor.startswith("valid_") and net.train_split is None:
        raise ValueError(
            f"cycle_monitor={monitor!r} needs a validation split, but the net has "
            "train_split=None. Give the net a train_split (e.g. skorch's ValidSplit(5)) "
            "or use cycle_monitor='train_loss' (or 'auto').")
    if monitor == "valid_acc" and not is_classifier(net):
        raise ValueError(
            "cycle_monitor='valid_acc' needs a classifier; the net is a "
            f"{type(net).__name__}. Use 'valid_loss' (or 'auto').")
    return monitor


def momentum_of(settings, name="the optimizer"):
    """The momentum ``m`` in an optimizer's settings (``momentum``, else ``betas[0]``),
    which ``cycle_momentum=True`` cycles; a ``ValueError`` when there is none, or 0."""
    if "momentum" in settings:
        m = settings["momentum"]
    elif "betas" in settings:
        m = settings["betas"][0]
    else:
        raise ValueError(
            f"cycle_momentum=True needs an optimizer with momentum or betas; {name} has "
            "neither.")
    if not m:
        raise ValueError(
            "cycle_momentum=True, but the optimizer's momentum is 0; set "
            "net__optimizer__momentum (e.g. 0.9) or leave cycle_momentum=False.")
    return m


def optimizer_momentum(net):
    """:func:`momentum_of` the settings the net passes to its optimizer (its defaults
    where not set); the net is only read."""
    optimizer = net.optimizer
    kwargs = net.get_params_for("optimizer")
    params = inspect.signature(optimizer).parameters
    settings = {key: kwargs.get(key, params[key].default)
                for key in ("momentum", "betas") if key in params}
    return momentum_of(settings, getattr(optimizer, "__name__", optimizer))


def check_warm_start(params: dict, fitted: dict) -> None:
    """A warm start continues the fitted schedule: its parameters must be unchanged."""
    for name in SCHEDULE_PARAMS:
        if params[name] != fitted[name]:
            raise ValueError(
                f"warm_start=True continues the fitted schedule, but {name} changed from "
                f"{fitted[name]!r} to {params[name]!r} since that fit. Restore it, or set "
                "warm_start=False to fit anew (with a new range test).")


def check_net(net) -> None:
    """The net is a skorch net whose callbacks leave the LR schedule to AutoCLR."""
    if not isinstance(net, NeuralNet):
        got = (f"the class {net.__name__}" if isinstance(net, type)
               else type(net).__name__)
        raise TypeError(
            "net must be a skorch net instance such as "
            f"NeuralNetClassifier(MyModule, ...), got {got}.")
    if isinstance(net.callbacks, str):
        raise ValueError(
            f"net.callbacks={net.callbacks!r} turns off every callback, including the "
            "LR scheduler AutoCLR adds; pass callbacks=[] (or a list) to the net instead.")
    for cb in user_callbacks(net):
        name, cb = cb if isinstance(cb, tuple) else (type(cb).__name__, cb)
        if isinstance(cb, LRScheduler) or (
                isinstance(cb, type) and issubclass(cb, LRScheduler)):
            raise ValueError(
                f"net.callbacks holds an LR scheduler ({name!r}); AutoCLR sets the "
                "learning-rate schedule itself. Remove it from the net's callbacks.")


def check_param_names(estimator, params) -> None:
    """``set_params`` names of AutoCLR's own: a mistyped one gets the closest one."""
    own = estimator.get_params(deep=False)
    for key in params:
        top, sep, _ = key.partition("__")
        if top in own and (not sep or top == "net"):
            continue
        if sep and top in own:
            msg = f"Invalid parameter {key!r} for AutoCLR: {top!r} has no sub-parameters."
        else:
            msg = f"Invalid parameter {top!r} for AutoCLR."
        candidates = ([k for k in estimator.get_params(deep=True) if "__" in k] if sep
                      else list(own))
        close = difflib.get_close_matches(key, candidates, n=1, cutoff=0.6)
        if close:
            msg += f" Did you mean {close[0]!r}?"
        raise ValueError(f"{msg} Valid parameters are: {sorted(own)}.")


def net_param_hint(estimator, params):
    """For a ``net__*`` name the net rejected: "did you mean" its closest name."""
    if not hasattr(estimator.net, "get_params"):
        return None
    names = [f"net__{k}" for k in estimator.net.get_params(deep=True)]
    for key in sorted(k for k in params if k.startswith("net__")):
        if key not in names:
            close = difflib.get_close_matches(key, names, n=1, cutoff=0.6)
            if close:
                return (f"Invalid parameter {key!r} for AutoCLR's net. Did you mean "
                        f"{close[0]!r}?")
    return None


# ---------------------------------------------------------------------- input
def _x_dtype(X):
    """Floating-point input becomes float32 (skorch's modules are float32); integer
    arrays (token ids for an embedding) keep their dtype, as skorch keeps it."""
    dtype = getattr(X, "dtype", None)
    if isinstance(X, (np.ndarray, torch.Tensor)) or sp.issparse(X):
        if dtype is not None and np.issubdtype(np.dtype(str(dtype).replace("torch.", "")),
                                               np.integer):
            return None
    return np.float32


def validate_input(estimator, X, y=None, *, reset):
    """Input as skorch takes it, checked the scikit-learn way before any training.

    Arrays, tensors, pandas frames and scipy sparse matrices go through
    ``validate_data`` (``n_features_in_``, ``feature_names_in_``): floating-point
    ones become float32, integer ones keep their dtype, sparse ones stay sparse.
    A torch ``Dataset``, a dict or a list of arrays (several inputs of the
    module's ``forward``) pass as they are, their lengths checked. With
    ``reset=True`` (``fit``) ``y`` is required unless ``X`` is a ``Dataset``
    yielding ``(X, y)``; with ``reset=False`` and a ``y`` (a warm start) both are
    checked against the first fit.
    """
    if isinstance(X, Dataset) or isinstance(X, torch.Tensor) and not reset and y is None:
        return X, y
    if reset and y is None:
        raise ValueError(
            "AutoCLR requires y to be passed, but the target y is None: pass y, or a "
            "torch Dataset yielding (X, y) pairs as X.")
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    n_x, n_y = n_samples(X), n_samples(y)
    if n_x is not None and n_y is not None and n_x != n_y:
        raise ValueError(
            f"X and y have different lengths: X has {n_x} samples, y has {n_y}. Pass "
            "one target per sample.")
    if is_multi_input(X):
        return X, (None if y is None else np.asarray(y))
    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    # skorch's Dataset indexes sparse rows as CSR matrices (1 x n_features)
    kwargs = dict(reset=reset, dtype=_x_dtype(X), allow_nd=True, accept_sparse="csr")
    if not reset and y is None:
        return _as_csr_matrix(validate_data(estimator, X, **kwargs)), None
    X, y = validate_data(estimator, X, y, y_numeric=not is_classifier(estimator.net),
                         multi_output=True, **kwargs)
    return _as_csr_matrix(X), y


def _as_csr_matrix(X):
    """A sparse array (``csr_array``) as a ``csr_matrix``, whose rows stay 2-d."""
    return sp.csr_matrix(X) if sp.issparse(X) and not isinstance(X, sp.spmatrix) else X


def _binary_net(net) -> bool:
    return isinstance(net, NeuralNetBinaryClassifier)


def encode_target(estimator, y, *, reset=True):
    """What the net trains on: class indices for a classifier (setting ``classes_``;
    with ``reset=False`` those of the last fit), 0.0/1.0 for a
    ``NeuralNetBinaryClassifier`` (its ``BCEWithLogitsLoss`` takes float
    targets), or a float32 target column for a regressor.

    The classes are the net's ``classes`` when it has them (skorch's parameter:
    then ``y`` must hold no other label, and its labels are encoded in that
    order), else the sorted labels of ``y``.
    """
    if y is None:
        return None
    if not is_classifier(estimator.net):
        y = np.asarray(y, dtype=np.float32)
        return y.reshape(-1, 1) if y.ndim == 1 else y
    y = _class_labels(y)
    if reset:
        estimator.classes_ = _classes(estimator.net, y)
    classes = estimator.classes_
    unseen = np.setdiff1d(y, classes)
    if len(unseen):
        if not reset:
            raise ValueError(
                f"y has labels not seen in the first fit: {unseen[:5].tolist()!r}. A warm "
                "start trains the fitted net further and keeps its classes; set "
                "warm_start=False to fit anew.")
        raise ValueError(
            f"y has labels not in the classes {classes.tolist()!r} of the net's classes "
            f"parameter: {unseen[:5].tolist()!r}. List every label there, or leave it None.")
    order = np.argsort(classes, kind="stable")
    y_enc = order[np.searchsorted(classes, y, sorter=order)].astype(np.int64)
    return y_enc.astype(np.float32) if _binary_net(estimator.net) else y_enc


def _class_labels(y):
    check_classification_targets(y)
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        warn("A column-vector y was passed when a 1d array was expected; it is used as "
             "y.ravel().", DataConversionWarning)
        y = y.ravel()
    if y.ndim != 1:
        raise ValueError(f"y must be 1-d class labels for a classifier, got shape {y.shape}.")
    return y


def _classes(net, y):
    given = getattr(net, "classes", None)
    classes = np.unique(y) if given is None or not len(given) else np.asarray(given)
    if len(classes) < 2:
        raise ValueError(
            f"y has only one class ({classes[0].tolist()!r}); a classifier needs at "
            "least two.")
    if _binary_net(net) and len(classes) != 2:
        raise ValueError(
            f"{type(net).__name__} is a binary classifier, but y has {len(classes)} "
            f"classes ({classes[:5].tolist()!r}...). Use a NeuralNetClassifier.")
    return classes


def check_data_size(n, valid_size, needs_range_test):
    """Enough samples for the range test's split (and any training at all)."""
    if n < MIN_SAMPLES:
        raise ValueError(
            f"n_samples={n} is too small: AutoCLR needs at least {MIN_SAMPLES} samples "
            "(the range test holds out a fraction of them to score each learning rate, "
            "and the net's train_split another).")
    if needs_range_test:
        n_valid = int(round(valid_size * n))
        if not 1 <= n_valid < n:
            raise ValueError(
                f"valid_size={valid_size!r} leaves {n_valid} of n_samples={n} samples to "
                "score the range test; it needs at least one held-out and one training "
                "sample. Raise valid_size or pass more samples.")


def check_fit(estimator, X, y):
    """Everything ``AutoCLR.fit`` checks before any training: the net, the
    parameters alone and together, and the input (``X`` validated, ``y`` encoded)."""
    check_net(estimator.net)
    params = estimator.get_params(deep=False)
    check_params(params)
    check_combinations(params)
    X, y = validate_input(estimator, X, y, reset=True)
    estimator._y_1d = y is not None and np.ndim(y) == 1
    y_enc = encode_target(estimator, y)
    check_data_size(n_samples(X), params["valid_size"],
                    params["base_lr"] is None or params["max_lr"] is None)
    return X, y_enc
