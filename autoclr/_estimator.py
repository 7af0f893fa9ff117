"""The :class:`AutoCLR` estimator: range test, bounds, step size and cyclical fit.

What ``fit`` does before training lives in the suggestion pipeline
(:mod:`autoclr._suggest`); parameter and input checks in
:mod:`autoclr._validation`; pickling of ``__main__`` classes in
:mod:`autoclr._persistence`. This class validates, clones, fits and predicts.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._cycles import CYCLE_TOL, cycle_callbacks, run_cycles
from ._data import train_batches
from ._device import resolve_device
from ._persistence import dump_state, load_state
from ._rng import draw_seed
from ._schedule import plan_more
from ._suggest import Suggestion, suggest
from ._utils import fresh_net, user_callbacks
from ._validation import (
    SCHEDULE_PARAMS,
    SUGGEST_PARAMS,
    check_combinations,
    check_fit,
    check_param_names,
    check_params,
    check_warm_start,
    encode_target,
    net_param_hint,
    validate_input,
)

__all__ = ["AutoCLR", "Suggestion"]


def _is_classifier_net(self):
    return is_classifier(self.net)


class AutoCLR(BaseEstimator):
    """Train a skorch net with a cyclical learning rate whose bounds it finds itself.

    ``fit(X, y)`` runs the LR range test of Smith (2017) on a fresh copy of
    ``net``, reads ``base_lr`` (where the validation score starts to rise) and
    ``max_lr`` (at the top of the smoothed curve), derives the step size from
    the data and batch size, and fits another fresh copy of ``net`` with
    :class:`torch.optim.lr_scheduler.CyclicLR` (or one ``OneCycleLR`` cycle),
    stepped every batch, ending at the end of a cycle. The net passed in is
    never modified (``set_params(net__...)`` does, as in any meta-estimator).

    Parameters
    ----------
    net : skorch.NeuralNetClassifier or skorch.NeuralNetRegressor
        The net to train, not initialised or fitted by AutoCLR. Its
        ``max_epochs`` is the epoch budget (see ``n_cycles``). Its parameters
        are reachable as ``net__*`` in ``get_params``/``set_params`` (and so
        in grid searches).
    policy : {"auto", "triangular", "triangular2", "exp_range", "one_cycle"}, default="auto"
        ``"one_cycle"``: one cycle over the whole budget with ``OneCycleLR``,
        from ``base_lr`` up to ``max_lr`` and down to ``base_lr / 1e4`` (see
        the user guide). The others are ``CyclicLR``'s ``mode``: constant
        amplitude, halved each cycle, or multiplied by ``gamma`` every iteration.
        ``"auto"``: ``"triangular2"``, or ``"triangular"`` for a classifier's
        whole fit of fewer than 100 iterations (a tiny budget, where halving
        the amplitude leaves the last cycles too little training; a small
        regression overfits on the extra training instead);
        ``cycle_plan_.policy`` and the suggestion's notes say which.
    base_lr, max_lr : float, default=None
        Bounds of the cycle. When both are given the range test is skipped.
        When only one is given the range test still runs and detects the
        other, and the given one is used as is; a detected ``base_lr`` that
        is not below the given ``max_lr`` is replaced by ``max_lr / 4`` (with
        a warning), and a detected ``max_lr`` not above the given ``base_lr``
        raises a ``ValueError``.
    step_size : "auto" or int, default="auto"
        Iterations of half a cycle. ``"auto"``: ``step_size_factor`` x
        iterations per epoch of the net's training split.
    step_size_factor : "auto" or int, default="auto"
        Half a cycle in epochs, in [2, 10]. ``"auto"``: the largest factor
        that fits three cycles into the net's ``max_epochs``
        (``max_epochs // 6``, clipped to [2, 10]).
    n_cycles : None, "auto" or int, default=None
        Training length. ``None``: as many whole cycles as fit in the net's
        ``max_epochs``. An int: that many (an error if they do not fit).
        ``"auto"``: stop at the first cycle end, from the third on, where
        ``cycle_monitor`` improved by less than ``cycle_tol`` on the best
        earlier cycle end; ``max_epochs`` is the cap (``step_size_factor="auto"``
        is then 2, the shortest cycles, for the most cycle ends).
    cycle_monitor : {"auto", "valid_loss", "valid_acc", "train_loss"}, default="auto"
        Score read at cycle ends. ``"auto"``: ``valid_loss`` on the net's own
        ``train_split``, or ``train_loss`` when it is ``None``.
    cycle_tol : float, default=0.01
        Relative improvement of ``cycle_monitor`` that earns another cycle
        under ``n_cycles="auto"``.
    cycle_weights : {"auto", "last", "best", "average"}, default="auto"
        The weights the fitted net keeps: those trained last; those of the
        cycle end with the best ``cycle_monitor``, restored at the end; or the
        average of every cycle end's weights (``torch.optim.swa_utils``,
        BatchNorm statistics recomputed). Without a validation split the
        monitor is the training loss. ``"auto"``: ``"best"`` for a regressor
        (``NeuralNetRegressor`` or a subclass) with a validation split (its
        validation loss is what its score ranks by), ``"last"`` otherwise (a
        classifier's cross-entropy also rewards calibration, and later, more
        confident cycle ends often score higher though their loss is higher).
        ``cycle_report_.weights`` says which.
    warm_start : bool, default=False
        When fitted, ``fit`` trains ``net_`` further (``n_cycles`` and the
        net's ``max_epochs`` again) at the same bounds and step size, the
        schedule continuing, without a new range test.
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
        at most a quarter of the fit's iterations, clipped to [100, 400].
    valid_size : float, default=0.2
        Fraction held out (shuffled, stratified for classifiers) to score the
        range test. The final fit uses the net's own ``train_split``.
    detection : {"accuracy", "valid_loss", "loss"}, default="accuracy"
        Bound detector. ``"accuracy"``: onset and top of the smoothed
        validation score (the paper's rule; the negative validation loss for
        regressors); for classifiers the rise counts only above what
        predicting the class prior scores, and the bounds are averaged (on
        the log scale) with the same reading of the validation loss.
        ``"valid_loss"``: that second reading alone. ``"loss"``: steepest
        descent of the training loss (the rule of other LR finders, with
        ``base_lr = max_lr / 4``). See :func:`~autoclr.detect_bounds`.
    device : str, default="auto"
        ``"auto"``: CUDA when available, else CPU (a net with skorch's
        ``AccelerateMixin`` keeps ``device=None`` and lets its accelerator
        place it). Any other value is passed to the net's ``device``.
    random_state : int, RandomState instance or None, default=None
        Seeds the range test's split and shuffling, the weight initialisation
        of both phases (which start from the same weights) and the shuffling
        of the final fit. torch's global RNG state is left as it was. One int
        seed is drawn from it, as scikit-learn estimators draw theirs
        (``check_random_state(random_state).randint(2**31 - 1)``), so
        ``range_test(net, X, y, random_state=0)`` runs another split and
        initialisation than ``AutoCLR(net, random_state=0)``; with that
        drawn seed it runs the same test.
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
        Step size, iterations per epoch, cycles and epochs planned (the cap
        for ``n_cycles="auto"``) for the last fit.
    n_cycles_run_, stop_reason_ : int, str
        Whole cycles trained and why training stopped (``cycle_report_``).
    cycle_report_ : CycleReport
        Those, the scores at cycle ends and the reason in words.
    classes_ : ndarray
        Class labels (classifiers).
    n_features_in_ : int
        Features seen in ``fit`` (array input).

    Notes
    -----
    **Checks first.** Parameters and input are validated before any
    training; each error names the parameter, the value and what is allowed.

    **Small data.** A data set smaller than two batches trains as skorch
    would train it (an epoch is then one or two batches, the last one
    smaller), and the range test and the cycles are counted in those
    batches; the suggestion's notes say so. Fewer than 10 samples is an
    error.

    **The range test trains as** ``net.fit`` **does** (the net's
    ``train_step``, its iterator settings, ``fit_params``, ``Freezer``,
    gradient clipping; see :func:`~autoclr.range_test` for which callback
    hooks run).

    **Hard range-test curves** (a loss diverging at once: one retry from a
    1000-fold lower range; no rise of the score, or none above the class
    prior: the validation loss, then the loss rule; none readable: the net's
    ``lr``; a non-finite first loss: an error) are
    handled as the user guide describes, with a :class:`~autoclr.BoundsWarning`.
    Bounds read off the curve lie inside the tested range, ``base_lr`` below ``max_lr``.

    **Param groups and several optimizers.** The bounds are for the net's
    ``lr``; every param group of every optimizer the net initialises follows
    the range test's ramp and the schedule at its own lr / the net's lr, so
    the ratios set with ``optimizer__param_groups`` stay (a group at
    ``lr=0`` stays frozen). See the user guide, "Param groups and fine-tuning
    a pretrained backbone".

    **Stopping at cycle ends.** A callback of the net that stops training
    from ``on_epoch_end`` (skorch's ``EarlyStopping``) is held to the end of
    the cycle, so the LR always ends at its minimum (``stop_reason_ ==
    "callback"``); the net's callback objects are not changed.

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
        policy="auto",
        base_lr=None,
        max_lr=None,
        step_size="auto",
        step_size_factor="auto",
        n_cycles=None,
        cycle_monitor="auto",
        cycle_tol=CYCLE_TOL,
        cycle_weights="auto",
        warm_start=False,
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
        self.n_cycles = n_cycles
        self.cycle_monitor = cycle_monitor
        self.cycle_tol = cycle_tol
        self.cycle_weights = cycle_weights
        self.warm_start = warm_start
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

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        if isinstance(self.net, BaseEstimator):
            net_tags = get_tags(self.net)
            tags.estimator_type = net_tags.estimator_type
            tags.classifier_tags = net_tags.classifier_tags
            tags.regressor_tags = net_tags.regressor_tags
            # skorch regressors train on 2-d targets natively (a 1-d y becomes
            # a column); several columns need a module with as many outputs
            tags.target_tags.multi_output = net_tags.estimator_type == "regressor"
        tags.non_deterministic = self.random_state is None
        tags.input_tags.sparse = True  # skorch takes scipy sparse X (as CSR rows)
        return tags

    def set_params(self, **params):
        """Set parameters; ``net__*`` ones are routed to the net.

        A mistyped name raises a ``ValueError`` that suggests the closest
        valid one (``polcy`` -> ``policy``, ``nett__lr`` -> ``net__lr``).
        """
        check_param_names(self, params)
        try:
            return super().set_params(**params)
        except ValueError as exc:
            hint = net_param_hint(self, params)
            if hint is None:
                raise
            raise ValueError(hint) from exc

    def __getstate__(self):
        return dump_state(super().__getstate__())

    def __setstate__(self, state):
        super().__setstate__(load_state(state))

    # ------------------------------------------------------------------- fit
    def _prepare(self, X, y):
        """Check parameters and input before any training; the device to use."""
        X, y_enc = check_fit(self, X, y)
        return resolve_device(self.device, self.net), X, y_enc

    def _suggest(self, X, y_enc, device, seed, fit_params):
        own = {k: getattr(self, k) for k in SUGGEST_PARAMS}
        return suggest(self.net, X, y_enc, **own, device=device, seed=seed,
                       classes=getattr(self, "classes_", None), fit_params=fit_params)

    def suggest(self, X, y=None, **fit_params):
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
        return twin._suggest(X, y_enc, device, draw_seed(self.random_state), fit_params)

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
            Passed to the net's ``fit`` and to every step of the range test.

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

        With ``warm_start=True`` a fitted estimator trains ``net_`` further
        instead, on ``X`` and ``y`` with the features and classes of its first fit.
        """
        if self.warm_start and hasattr(self, "net_"):
            return self._fit_more(X, y, **fit_params)
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
        suggestion = self._suggest(X, y_enc, device, seed, fit_params)
        if self.verbose:
            print(suggestion, flush=True)
        net = fresh_net(self.net, device=device, max_epochs=suggestion.plan.n_epochs)
        net.set_params(
            callbacks=user_callbacks(net) + cycle_callbacks(
                suggestion, gamma=self.gamma, cycle_momentum=self.cycle_momentum),
            # the net's lr stays the user's: each param group follows the schedule at its
            # lr / the net's lr (autoclr._groups), and the schedule sets every LR itself
            iterator_train__generator=torch.Generator().manual_seed(seed),
            # a DataLoader without a generator draws from torch's global RNG; in
            # threads (dask, joblib's threading backend) such a draw by one fit's
            # predict/score could land inside another fit's seeded block
            iterator_valid__generator=torch.Generator().manual_seed(seed),
        )
        if not self.verbose:
            net.set_params(verbose=0)
        self.suggestion_ = suggestion
        self._schedule_params = {k: getattr(self, k) for k in SCHEDULE_PARAMS}
        return self._train(net, X, y_enc, suggestion.plan, seed, device, fit_params)

    def _fit_more(self, X, y, **fit_params):
        """``warm_start``: more cycles of the fitted schedule on ``net_``, no range test."""
        params = self.get_params(deep=False)
        check_params(params)
        check_combinations(params)
        check_warm_start(params, self._schedule_params)
        X, y = validate_input(self, X, y, reset=False)
        y_enc = encode_target(self, y, reset=False)
        n_train, batches = train_batches(self.net_, X, y_enc)
        # the schedule continues: "auto" keeps the policy the first fit chose
        policy = self.cycle_plan_.policy if self.policy == "auto" else self.policy
        plan = plan_more(n_train, self.net_.batch_size,
                         self.net.max_epochs, step_size=self.step_size_,
                         n_cycles=self.n_cycles, policy=policy, batches=batches)
        return self._train(self.net_, X, y_enc, plan, draw_seed(self.random_state),
                           self.net_.device, fit_params)

    def _train(self, net, X, y_enc, plan, seed, device, fit_params):
        report = run_cycles(net, X, y_enc, plan, seed=seed, device=device,
                            monitor=self.cycle_monitor, tol=self.cycle_tol,
                            weights=self.cycle_weights, fit_params=fit_params)
        if self.verbose:
            print(f"AutoCLR: {report}", flush=True)
        self.net_, self.cycle_plan_, self.cycle_report_ = net, plan, report
        return self

    # fitted values held once, in suggestion_ and cycle_report_ (Attributes above)
    base_lr_ = property(attrgetter("suggestion_.base_lr"))
    max_lr_ = property(attrgetter("suggestion_.max_lr"))
    step_size_ = property(attrgetter("suggestion_.step_size"))
    range_test_ = property(attrgetter("suggestion_.range_test"))
    n_cycles_run_ = property(attrgetter("cycle_report_.n_cycles"))
    stop_reason_ = property(attrgetter("cycle_report_.stop_reason"))

    # ------------------------------------------------------------ prediction
    def predict(self, X):
        """Predict with the fitted net.

        Class labels for classifiers; float64 values for regressors (as
        scikit-learn's regressors), 1-d when ``y`` was 1-d in ``fit``.
        """
        check_is_fitted(self, "net_")
        X, _ = validate_input(self, X, reset=False)
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
        X, _ = validate_input(self, X, reset=False)
        proba = self.net_.predict_proba(X)
        if proba.ndim != 2 or proba.shape[1] != len(self.classes_):
            raise ValueError(
                f"The net's module gives {proba.shape[1:]} outputs per sample for the "
                f"{len(self.classes_)} classes_ {self.classes_.tolist()!r}: columns and "
                "labels would be out of line. Give the module one output per class, or "
                "list every class in the net's classes parameter.")
        return proba

    def score(self, X, y, sample_weight=None):
        """Accuracy for classifiers, R^2 for regressors (as scikit-learn's mixins)."""
        y_pred = self.predict(X)
        if is_classifier(self.net):
            return accuracy_score(y, y_pred, sample_weight=sample_weight)
        return r2_score(y, y_pred, sample_weight=sample_weight)
