"""Small helpers of the language level: integers, warnings that point at the user's line,
and copies of the user's net."""

from __future__ import annotations

import numbers
import os
import sys
import warnings

from sklearn.base import clone

__all__ = ["is_int", "warn", "warn_notes", "fresh_net", "user_callbacks"]

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def warn(message, category=UserWarning):
    """``warnings.warn`` pointing at the first caller outside autoclr (the user's line)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def warn_notes(notes, category=UserWarning):
    """Emit each note as one warning of ``category`` (see :func:`warn`)."""
    for note in notes:
        warn(note, category)


def fresh_net(net, **params):
    """An unfitted copy of ``net`` with ``params`` set; ``net`` is not touched.

    ``sklearn.base.clone`` deep-copies the arguments that are not estimators,
    so a module (or criterion) given as an *instance* is never shared between
    the user's net, the range test and the final fit: each starts from a copy
    of the same initial weights.
    """
    new = clone(net)
    params = {k: v for k, v in params.items() if not (k == "device" and v is None)}
    if params:
        new.set_params(**params)
    return new


def user_callbacks(net):
    """The net's own callbacks, as a new list (the user's list is never extended)."""
    return list(net.callbacks or [])


def is_int(value) -> bool:
    """An integer, and not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)
