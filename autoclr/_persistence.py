"""Pickling of nets whose classes live in the ``__main__`` script.

pickle stores a class by name, and ``__main__.MyModule`` does not exist in
another program or a worker process. :func:`dump_state` stores such nets with
cloudpickle, which copies the classes by value, so unfitted estimators reach
process-based workers (joblib, dask, ray). A *fitted* skorch net stores its
``module_`` with ``torch.save``, by class name: loading it still needs the
class, and :func:`load_state` says so in plain words.
"""

from __future__ import annotations

import pickle

__all__ = ["dump_state", "load_state"]


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


def dump_state(state: dict, keys=("net", "net_")) -> dict:
    """``state`` with the nets under ``keys`` stored by value when they need it."""
    state = dict(state)  # a copy: never touch the estimator's __dict__
    main = sorted({name for key in keys for name in _main_classes(state.get(key))})
    if not main:
        return state
    try:
        dumps = _cloudpickle().dumps
        for key in keys:
            if key in state:
                state[key] = _PickledByValue(dumps(state[key]), main)
    except Exception as exc:
        raise pickle.PicklingError(
            f"AutoCLR's net uses {', '.join(main)} defined in the __main__ script, "
            "which pickle stores by name only, so other programs and worker processes "
            f"cannot load it; storing it by value failed too ({exc}). Define these "
            "classes in an importable module (e.g. mymodels.py) and import them from "
            "there.") from exc
    return state


def load_state(state: dict) -> dict:
    """The inverse of :func:`dump_state`."""
    return {key: value.load() if isinstance(value, _PickledByValue) else value
            for key, value in state.items()}
