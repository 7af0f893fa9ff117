"""The :class:`AutoCLR` estimator: range test, bounds, step size and cyclical fit.

What ``fit`` does before training lives in the suggestion pipeline
(:mod:`autoclr._suggest`); parameter and input checks in
:mod:`autoclr._validation`; pickling of ``__main__`` classes in
:mod:`autoclr._persistence`. This class validates, clones, fits and predicts.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.metrics import accuracy_score, r2_score
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if
from sklearn.utils.validation import check_is_fitted

from ._persistence import dump_state, load_state
from ._schedule import cyclic_lr_callback, exp_range_gamma, momentum_bounds, user_callbacks
from ._suggest import Suggestion, suggest
from ._utils import draw_seed, fresh_net, resolve_device, seeded
from ._validation import (
    check_data_size,
    check_net,
    check_param_names,
    check_params,
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

    **Small data.** A data set smaller than two batches trains as skorch
    would train it (an epoch is then one or two batches, the last one
    smaller), and the range test and the cycles are counted in those
    batches; the suggestion's notes say so. Fewer than 10 samples is an
    error.

    **The range test trains as** ``net.fit`` **does** (the net's
    ``train_step``, its iterator settings, ``fit_params``, ``Freezer``,
    gradient clipping; see :func:`~autoclr.range_test` for which callback
    hooks run).

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
      labels, or on imbalanced data no rise above the majority class): a
      :class:`~autoclr.BoundsWarning` says no onset was found and the
      validation loss is read instead, then the loss rule
      (``range_test_.bounds.fallback`` is True). For classifiers a rise must
      exceed the sampling noise of an accuracy measured on the validation
      split.
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
        check_net(self.net)
        params = self.get_params(deep=False)
        check_params(params)
        if (self.base_lr is not None and self.max_lr is not None
                and self.base_lr >= self.max_lr):
            raise ValueError(
                f"base_lr must be below max_lr, got base_lr={self.base_lr!r} and "
                f"max_lr={self.max_lr!r}.")
        if (self.base_lr is not None and self.max_lr is None
                and self.base_lr >= self.lr_range[1]):
            raise ValueError(
                f"base_lr={self.base_lr!r} is given without max_lr, but the range test "
                f"only reaches lr_range[1]={self.lr_range[1]!r}, so it cannot find a "
                "max_lr above it. Raise lr_range's high bound, or give max_lr too.")
        if self.cycle_momentum:
            momentum_bounds(self.net)  # raises now, before any training
        X, y = validate_input(self, X, y, reset=True)
        self._y_1d = y is not None and np.ndim(y) == 1
        y_enc = encode_target(self, y)
        check_data_size(len(X), self.valid_size, self.base_lr is None or self.max_lr is None)
        return resolve_device(self.device, self.net), X, y_enc

    def _suggest(self, X, y_enc, device, seed, fit_params):
        own = {k: v for k, v in self.get_params(deep=False).items()
               if k not in ("net", "gamma", "cycle_momentum", "random_state")}
        return suggest(self.net, X, y_enc, **own, seed=seed, fit_params=fit_params)

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
        suggestion = self._suggest(X, y_enc, device, seed, fit_params)
        if self.verbose:
            print(suggestion, flush=True)
        plan = suggestion.plan
        gamma = exp_range_gamma(plan.n_iter) if self.gamma == "auto" else self.gamma
        net = fresh_net(self.net, device=device, max_epochs=plan.n_epochs)
        momentum = momentum_bounds(net) if self.cycle_momentum else {}
        callback = cyclic_lr_callback(
            suggestion.base_lr, suggestion.max_lr, plan.step_size, policy=self.policy,
            gamma=gamma, cycle_momentum=bool(self.cycle_momentum), **momentum)
        net.set_params(
            callbacks=user_callbacks(net) + [("autoclr_cyclic_lr", callback)],
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
                "the net as it stopped.", UserWarning, stacklevel=3)
        self.net_ = net
        self.suggestion_ = suggestion
        self.range_test_ = suggestion.range_test
        self.base_lr_, self.max_lr_ = suggestion.base_lr, suggestion.max_lr
        self.step_size_ = plan.step_size
        self.cycle_plan_ = plan
        return self

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
        return self.net_.predict_proba(X)

    def score(self, X, y, sample_weight=None):
        """Accuracy for classifiers, R^2 for regressors (as scikit-learn's mixins)."""
        y_pred = self.predict(X)
        if is_classifier(self.net):
            return accuracy_score(y, y_pred, sample_weight=sample_weight)
        return r2_score(y, y_pred, sample_weight=sample_weight)
