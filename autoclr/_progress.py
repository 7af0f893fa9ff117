"""Progress output of the range test: tqdm when installed, else a plain fallback.

The fit itself keeps skorch's per-epoch table. skorch's ``ProgressBar`` is not
added: it erases its bar at the end of every epoch, so outside a terminal (a log
file, CI) it leaves only fragments such as ``0/29`` and adds nothing.
"""

from __future__ import annotations

import sys
import time

__all__ = ["progress_bar"]


class _NoProgress:
    """Does nothing; used when ``verbose`` is 0."""

    def update_to(self, n, **postfix):
        pass

    def close(self):
        pass


class _TqdmProgress:
    def __init__(self, total, desc, file):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=total, desc=desc, unit="it", file=file, leave=True,
                        dynamic_ncols=True, mininterval=0.2)

    def update_to(self, n, **postfix):
        if postfix:
            self.bar.set_postfix(_format(postfix), refresh=False)
        self.bar.update(n - self.bar.n)

    def close(self):
        self.bar.close()


class _PlainProgress:
    """One line at each quarter of the way (fits logs and non-terminals)."""

    def __init__(self, total, desc, file):
        self.total, self.desc, self.file = total, desc, file
        self.next_mark, self.start, self.n = 0.25, time.perf_counter(), 0

    def update_to(self, n, **postfix):
        self.n = n
        if n / self.total + 1e-12 >= self.next_mark:
            while n / self.total + 1e-12 >= self.next_mark:
                self.next_mark += 0.25
            self._line(_format(postfix))

    def _line(self, postfix):
        extra = "".join(f", {k}={v}" for k, v in postfix.items())
        print(f"{self.desc}: {self.n}/{self.total} iterations "
              f"({time.perf_counter() - self.start:.1f}s{extra})",
              file=self.file, flush=True)

    def close(self):
        if self.n < self.total:  # stopped early: say where
            self._line({})


def _format(postfix):
    return {k: (f"{v:.2e}" if isinstance(v, float) else v) for k, v in postfix.items()}


def progress_bar(total, *, enabled=True, desc="range test", file=None):
    """A progress reporter with ``update_to(n, **postfix)`` and ``close()``.

    Parameters
    ----------
    total : int
        Iterations planned.
    enabled : bool, default=True
        ``False`` returns a reporter that prints nothing.
    desc : str, default="range test"
        Label in front of the bar.
    file : file-like, default=None
        Where to write; ``None`` is ``sys.stderr``.

    Returns
    -------
    object
        A tqdm bar when tqdm is installed, else a plain reporter that prints
        one line at each quarter of the way.
    """
    if not enabled:
        return _NoProgress()
    file = sys.stderr if file is None else file
    try:
        return _TqdmProgress(total, desc, file)
    except ImportError:
        return _PlainProgress(total, desc, file)
