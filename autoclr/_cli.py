"""The ``autoclr`` command line: ``autoclr demo`` and ``autoclr suggest DATA``.

``autoclr demo`` runs the whole method on a bundled data set and writes a
picture of it; ``autoclr suggest`` runs the range test on a CSV or ``.npz``
file of the user's and prints the bounds. Errors in the input are reported
on one line with exit status 2; failures while running, with status 1.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import time
import warnings
import zipfile

import numpy as np

__all__ = ["main", "build_parser", "load_table", "EpochTestScore"]

#: a numeric target with at most this many distinct integer values is a class label
MAX_CLASSES_AUTO = 20
DATASETS = ("digits", "generated")
EXIT_USAGE, EXIT_FAILURE = 2, 1


class CLIError(Exception):
    """An error reported to the user on one line (exit status 2)."""


# ---------------------------------------------------------------- the parser
class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except the empty ones (None, False) that say nothing."""

    def _get_help_string(self, action):
        if action.default is None or action.default is False:
            return action.help
        return super()._get_help_string(action)


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``autoclr`` command (with its subcommands)."""
    from . import __version__
    from ._schedule import POLICIES

    fmt = _HelpFormatter
    parser = argparse.ArgumentParser(
        prog="autoclr",
        description="Cyclical learning rates for skorch nets, with the bounds found by "
                    "an LR range test (Smith, 2017).",
        epilog="Run 'autoclr COMMAND --help' for the options of a command.",
        formatter_class=fmt,
    )
    parser.add_argument("--version", action="version", version=f"autoclr {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                help="what to run (each has its own --help)")

    demo = sub.add_parser(
        "demo", formatter_class=fmt,
        help="range test, bounds, cyclical fit and a fixed-LR baseline on a bundled "
             "data set, with a PNG of what happened",
        description="Run AutoCLR end to end on a bundled data set: the LR range test "
                    "(with a progress bar), the bounds it picks and why, the cyclical fit, "
                    "and the test accuracy next to the same net trained with skorch's "
                    "default fixed lr=0.01. Writes a PNG with the range-test curve, the LR "
                    "schedule and the test accuracy per epoch of both.",
    )
    demo.add_argument("--dataset", choices=DATASETS, default="digits",
                      help="scikit-learn's 8x8 digits (1797 images, 10 classes) or a "
                           "generated 4-class problem (make_classification, 20 features)")
    demo.add_argument("--policy", choices=POLICIES, default="triangular2",
                      help="cyclical policy")
    demo.add_argument("--epochs", type=_positive_int, default=30,
                      help="epoch budget (the net's max_epochs); the cyclical fit ends at "
                           "the end of a cycle within it, the baseline trains as long")
    demo.add_argument("--device", default="auto",
                      help="'auto' (CUDA when available), 'cpu', 'cuda', 'cuda:1', ...")
    demo.add_argument("--output", "-o", default="autoclr_demo.png", metavar="PNG",
                      help="path of the PNG to write")
    demo.add_argument("--no-plot", action="store_true",
                      help="do not write the PNG (no matplotlib needed)")
    demo.add_argument("--seed", type=int, default=0,
                      help="random seed of the split, the range test and both fits")
    demo.add_argument("--quiet", "-q", action="store_true",
                      help="no progress bar and no per-epoch table, only the results")
    demo.set_defaults(func=run_demo)

    sug = sub.add_parser(
        "suggest", formatter_class=fmt,
        help="run the range test on your own CSV or .npz data and print the bounds",
        description="Run the LR range test with a default MLP on tabular data and print "
                    "the suggested base_lr, max_lr and step size (nothing is trained "
                    "beyond the range test). Features must be numeric; the target may be "
                    "class labels (any strings) or numbers.",
        epilog="CSV: a header row is optional (columns are then named by their index); "
               "the delimiter (',', ';' or tab) is detected. NPZ: arrays 'X' and 'y', or "
               "a single 2-D array whose --target column is the target. The bounds are "
               "for the data as the net sees it, standardised unless --no-scale: put a "
               "StandardScaler before AutoCLR in a Pipeline to use them.",
    )
    sug.add_argument("data", metavar="DATA", help="a .csv or .npz file")
    sug.add_argument("--target", "-t", default=None,
                     help="target column: a name from the CSV header, or a 0-based index "
                          "(negative counts from the end); an array name for .npz "
                          "(default: 'y' in .npz, else the last column)")
    sug.add_argument("--task", choices=("auto", "classification", "regression"),
                     default="auto",
                     help="'auto': classification when the target is non-numeric or has "
                          f"at most {MAX_CLASSES_AUTO} distinct integer values, else "
                          "regression")
    sug.add_argument("--policy", choices=POLICIES, default="triangular2",
                     help="cyclical policy the step size is planned for")
    sug.add_argument("--epochs", type=_positive_int, default=30,
                     help="epoch budget the step size is planned for (the net's "
                          "max_epochs)")
    sug.add_argument("--batch-size", type=_positive_int, default=None,
                     help="batch size (default: 64, lowered for small data so the range "
                          "test has at least 8 batches per epoch)")
    sug.add_argument("--hidden", type=_positive_int, default=64,
                     help="width of the default MLP's two hidden layers")
    sug.add_argument("--no-scale", action="store_true",
                     help="do not standardise the features (and a regression target)")
    sug.add_argument("--plot", metavar="PATH", default=None,
                     help="also write the range-test plot to this PNG")
    sug.add_argument("--device", default="auto",
                     help="'auto' (CUDA when available), 'cpu', 'cuda', ...")
    sug.add_argument("--seed", type=int, default=0, help="random seed of the range test")
    sug.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    sug.set_defaults(func=run_suggest)
    return parser


def _positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") \
            from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def main(argv=None) -> int:
    """Entry point of ``autoclr`` and ``python -m autoclr``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    with _one_line_warnings():
        try:
            return args.func(args)
        except CLIError as exc:
            print(f"autoclr {args.command}: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except KeyboardInterrupt:
            print(f"autoclr {args.command}: interrupted", file=sys.stderr)
            return 130


@contextlib.contextmanager
def _one_line_warnings():
    """Warnings printed as ``autoclr: warning: ...`` lines, without source lines."""
    old = warnings.formatwarning

    def fmt(message, category, *args, **kwargs):
        return f"autoclr: {category.__name__}: {message}\n"

    warnings.formatwarning = fmt
    try:
        yield
    finally:
        warnings.formatwarning = old


def _device(name):
    import torch

    from ._utils import resolve_device

    device = resolve_device(name)
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise CLIError(f"unknown device {name!r}; use 'auto', 'cpu' or 'cuda'") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise CLIError(f"device {name!r} was asked for but CUDA is not available; "
                       "use --device auto or cpu")
    return device


def _check_output(path):
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CLIError(f"cannot write {path}: folder {folder} does not exist")
    if not path.lower().endswith(".png"):
        raise CLIError(f"the plot is a PNG: give a path ending in .png, got {path!r}")


# ---------------------------------------------------------------------- demo
try:
    from skorch.callbacks import Callback as _Callback
except ImportError:  # pragma: no cover - skorch is a core dependency
    _Callback = object


class EpochTestScore(_Callback):
    """Record the accuracy on a held-out test set after every epoch.

    For demonstrations: the score lands in the history (and the per-epoch
    table) under ``name``. It is never used to choose anything.

    Parameters
    ----------
    X, y : ndarray
        Test features and class indices.
    name : str, default="test_acc"
        History key.
    """

    def __init__(self, X, y, name="test_acc"):
        self.X = X
        self.y = y
        self.name = name

    def on_epoch_end(self, net, **kwargs):
        accuracy = float(np.mean(net.predict(self.X) == self.y))
        net.history.record(self.name, accuracy)


def demo_data(name, seed):
    """Train/test split of a bundled data set, float32 features in a unit range."""
    from sklearn.datasets import load_digits, make_classification
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import StandardScaler

    if name == "digits":
        X, y = load_digits(return_X_y=True)
        X = X / 16.0
        label = "scikit-learn's digits (8x8 images, 10 classes)"
    elif name == "generated":
        X, y = make_classification(
            n_samples=2000, n_features=20, n_informative=10, n_redundant=4,
            n_classes=4, n_clusters_per_class=2, class_sep=1.0, random_state=seed)
        label = "a generated problem (make_classification: 20 features, 4 classes)"
    else:
        raise CLIError(f"unknown dataset {name!r}; choose from {DATASETS}")
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.3, random_state=seed, stratify=y)
    if name == "generated":
        scaler = StandardScaler().fit(X_train)
        X_train, X_test = scaler.transform(X_train), scaler.transform(X_test)
    return (X_train.astype(np.float32), X_test.astype(np.float32),
            y_train.astype(np.int64), y_test.astype(np.int64), label)


def _demo_net(n_features, n_classes, epochs, X_test, y_test, **params):
    import torch
    from skorch import NeuralNetClassifier
    from torch import nn

    from .models import MLP

    return NeuralNetClassifier(
        MLP, module__n_features=n_features, module__n_outputs=n_classes,
        module__hidden=64, criterion=nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD, optimizer__momentum=0.9, batch_size=64,
        max_epochs=epochs, callbacks=[("test_acc", EpochTestScore(X_test, y_test))],
        **params)


def run_demo(args):
    """``autoclr demo``: see the subcommand's ``--help``."""
    import torch

    # the demo's nets are tiny: on a CPU one thread beats several (thread start-up
    # and synchronisation cost more than the matrix products they share)
    threads = torch.get_num_threads()
    if _device(args.device) == "cpu":
        torch.set_num_threads(1)
    try:
        return _run_demo(args)
    finally:
        torch.set_num_threads(threads)


def _run_demo(args):
    import torch

    from ._estimator import AutoCLR
    from ._utils import draw_seed, seeded

    device = _device(args.device)
    if not args.no_plot:
        _check_output(args.output)
        _require_matplotlib()
    start = time.perf_counter()
    X_train, X_test, y_train, y_test, label = demo_data(args.dataset, args.seed)
    n_classes = int(y_train.max()) + 1
    verbose = 0 if args.quiet else 1
    print(f"autoclr demo on {label}: {len(X_train)} training and {len(X_test)} test "
          f"samples; MLP with two hidden layers of 64, SGD with momentum 0.9, batch size "
          f"64, {args.epochs} epochs at most, device {device}.", flush=True)
    print("1. LR range test: the LR rises from 1e-6 to 1 while the validation accuracy "
          "is recorded.", flush=True)
    net = _demo_net(X_train.shape[1], n_classes, args.epochs, X_test, y_test)
    auto = AutoCLR(net, policy=args.policy, random_state=args.seed, device=device,
                   verbose=verbose)
    if not verbose:
        auto.fit(X_train, y_train)
        print("2. The bounds and why; the cyclical fit ran with them:", flush=True)
        print(auto.suggestion_, flush=True)
    else:
        print("2. The bounds and why, then the cyclical fit (one line per epoch):",
              flush=True)
        auto.fit(X_train, y_train)
    plan = auto.cycle_plan_
    clr_acc = auto.score(X_test, y_test)

    print(f"3. Baseline: the same net with skorch's default fixed lr=0.01 for the same "
          f"{plan.n_epochs} epochs.", flush=True)
    seed = draw_seed(args.seed)
    baseline = _demo_net(X_train.shape[1], n_classes, plan.n_epochs, X_test, y_test,
                         lr=0.01, device=device, verbose=0,
                         iterator_train__generator=torch.Generator().manual_seed(seed))
    with seeded(seed, device):
        baseline.fit(X_train, y_train)
    base_acc = float(np.mean(baseline.predict(X_test) == y_test))

    width = 44
    clr_name = f"cyclical LR, {args.policy} {auto.base_lr_:.2g} .. {auto.max_lr_:.2g}"
    print(f"\nTest accuracy after {plan.n_epochs} epochs ({plan.n_cycles} cycles):")
    print(f"  {clr_name:<{width}} {clr_acc:.4f}")
    print(f"  {'fixed LR 0.01 (skorch default)':<{width}} {base_acc:.4f}")
    if not args.no_plot:
        demo_figure(auto, baseline, args.output, title=label)
        print(f"Plot: {args.output} (range test with the chosen bounds, the LR schedule, "
              "test accuracy per epoch of both).")
    print(f"Done in {time.perf_counter() - start:.1f}s.", flush=True)
    return 0


def _require_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise CLIError('plotting needs matplotlib: pip install "autoclr[plot]", or pass '
                       "--no-plot") from None


def demo_figure(auto, baseline, path, title=""):
    """Write the demo's three-panel PNG: range test, LR schedule, test accuracy."""
    from matplotlib.figure import Figure

    from ._plotting import BOUNDS, plot_lr_schedule, plot_range_test

    fig = Figure(figsize=(18, 5), layout="constrained")
    ax_rt, ax_lr, ax_acc = fig.subplots(1, 3, width_ratios=[1.25, 1, 1])
    plot_range_test(auto.range_test_, ax=ax_rt)
    plot_lr_schedule(auto, ax=ax_lr)
    ipe = auto.cycle_plan_.iterations_per_epoch
    ax_lr.axhline(0.01, color="grey", lw=1.5, alpha=0.8, label="fixed lr 0.01 (baseline)")
    ax_lr.legend(loc="upper right", fontsize=8, framealpha=0.9)
    ax_lr.set_xlabel(f"training iteration (batch; {ipe} per epoch)")
    clr = auto.net_.history[:, "test_acc"]
    fixed = baseline.history[:, "test_acc"]
    ax_acc.plot(np.arange(1, len(clr) + 1), clr, "o-", color=BOUNDS, ms=3,
                label=f"cyclical LR ({auto.policy}): {clr[-1]:.3f}")
    ax_acc.plot(np.arange(1, len(fixed) + 1), fixed, "s-", color="grey", ms=3,
                label=f"fixed lr 0.01: {fixed[-1]:.3f}")
    plan = auto.cycle_plan_
    epochs_per_cycle = 2 * plan.step_size / plan.iterations_per_epoch
    for k in range(1, plan.n_cycles + 1):
        ax_acc.axvline(k * epochs_per_cycle, color="grey", alpha=0.3, lw=0.8)
    ax_acc.set_xlabel("epoch (grey lines: ends of cycles)")
    ax_acc.set_ylabel("test accuracy")
    ax_acc.set_title("test accuracy per epoch", fontsize=11)
    low = min(np.min(clr), np.min(fixed))
    ax_acc.set_ylim(max(0.0, low - 0.05), 1.0)
    ax_acc.legend(loc="lower right", fontsize=9)
    ax_acc.grid(True, alpha=0.3)
    if title:
        fig.suptitle(f"autoclr demo: {title}", fontsize=13)
    fig.savefig(path, dpi=90)
    return fig


# ------------------------------------------------------------------- suggest
def _parse_float(text):
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        return None


def _read_csv(path):
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            sample = f.read(64 * 1024)
            f.seek(0)
            try:
                dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
            except csv.Error:
                dialect = csv.excel
            rows = [row for row in csv.reader(f, dialect) if any(c.strip() for c in row)]
    except UnicodeDecodeError:
        raise CLIError(f"cannot read {path}: not a text (UTF-8) CSV file") from None
    except csv.Error as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None
    if not rows:
        raise CLIError(f"{path} is empty")
    first = rows[0]
    has_header = any(_parse_float(c) is None for c in first)
    if has_header:
        header, rows = [c.strip() for c in first], rows[1:]
    else:
        header = [str(i) for i in range(len(first))]
    if not rows:
        raise CLIError(f"{path} has a header but no data rows")
    for r, row in enumerate(rows):
        if len(row) != len(header):
            raise CLIError(f"{path}: line {r + 1 + has_header} has {len(row)} fields, "
                           f"expected {len(header)} (as in the first line)")
    return header, rows, int(has_header)


def _column_index(target, names, what="column"):
    if target is None:
        return len(names) - 1
    if target in names:
        return names.index(target)
    try:
        index = int(target)
    except ValueError:
        raise CLIError(f"{what} {target!r} not found; the {what}s are: "
                       f"{', '.join(names)}") from None
    if not -len(names) <= index < len(names):
        raise CLIError(f"{what} index {index} is out of range for {len(names)} {what}s")
    return index % len(names)


def _table_from_csv(path, target):
    header, rows, line0 = _read_csv(path)
    line0 += 1  # line number of the first data row
    if len(header) < 2:
        raise CLIError(f"{path} has a single column; it needs features and a target")
    t = _column_index(target, header)
    X = np.empty((len(rows), len(header) - 1), dtype=np.float64)
    feature_cols = [j for j in range(len(header)) if j != t]
    for r, row in enumerate(rows):
        for k, j in enumerate(feature_cols):
            value = _parse_float(row[j])
            if value is None:
                what = "is empty" if not row[j].strip() else f"holds {row[j].strip()!r}"
                raise CLIError(
                    f"feature column {header[j]!r} is not numeric: line {line0 + r} "
                    f"{what}; autoclr suggest needs numeric features (encode categories "
                    "first)")
            X[r, k] = value
    raw_y = [row[t].strip() for row in rows]
    numbers = [_parse_float(v) for v in raw_y]
    if all(v is not None for v in numbers):
        y = np.asarray(numbers, dtype=np.float64)
    else:
        if any(not v for v in raw_y):
            raise CLIError(f"target column {header[t]!r} has empty values")
        y = np.asarray(raw_y, dtype=object)
    return X, y, header[t], [header[j] for j in feature_cols]


def _table_from_npz(path, target):
    if not zipfile.is_zipfile(path):
        raise CLIError(f"cannot read {path}: not a valid .npz file (not a zip archive)")
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
    except (zipfile.BadZipFile, OSError, EOFError):
        raise CLIError(f"cannot read {path}: not a valid .npz file") from None
    except ValueError as exc:
        raise CLIError(f"cannot read {path}: {exc} (object arrays are not supported)") \
            from None
    keys = sorted(arrays)
    if not keys:
        raise CLIError(f"{path} holds no arrays")
    y_key = target if target in arrays else ("y" if target is None and "y" in arrays
                                             else None)
    if y_key is not None:
        others = [k for k in keys if k != y_key]
        x_key = "X" if "X" in others else (others[0] if len(others) == 1 else None)
        if x_key is None:
            raise CLIError(f"{path}: cannot tell the features from arrays {keys}; "
                           "name them 'X' and 'y'")
        X, y = arrays[x_key], arrays[y_key]
        target_name, feature_names = y_key, None
    elif len(keys) == 1 and arrays[keys[0]].ndim == 2:
        table = arrays[keys[0]]
        names = [str(i) for i in range(table.shape[1])]
        t = _column_index(target, names)
        X, y = np.delete(table, t, axis=1), table[:, t]
        target_name, feature_names = f"column {t}", None
    else:
        raise CLIError(f"{path}: expected arrays 'X' and 'y' (or one 2-D array); found "
                       f"{keys}" + (f"; no array named {target!r}" if target else ""))
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    if X.ndim != 2:
        raise CLIError(f"{path}: the features must be a 2-D array, got shape {X.shape}")
    if y.ndim != 1 or len(y) != len(X):
        raise CLIError(f"{path}: the target must be 1-D with one value per row of the "
                       f"features; got shapes {X.shape} and {y.shape}")
    if not np.issubdtype(X.dtype, np.number) or np.issubdtype(X.dtype, np.complexfloating):
        raise CLIError(f"{path}: the features are not numeric (dtype {X.dtype})")
    if not np.issubdtype(y.dtype, np.number):
        y = y.astype(str).astype(object)
    return X.astype(np.float64), y, target_name, feature_names


def load_table(path, target=None):
    """Read features and target from a CSV or ``.npz`` file.

    Parameters
    ----------
    path : str
        A ``.csv`` file (header optional) or a ``.npz`` file (arrays ``X``
        and ``y``, or one 2-D array).
    target : str or None
        Target column (name or index) or array name; ``None``: ``y`` in an
        ``.npz``, else the last column.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features), float64
    y : ndarray of shape (n_samples,), float64 or object (labels)
    target_name : str
    feature_names : list of str or None

    Raises
    ------
    CLIError
        With a one-line message naming the file, the column and the problem.
    """
    if not os.path.exists(path):
        raise CLIError(f"{path}: no such file")
    if os.path.isdir(path):
        raise CLIError(f"{path} is a folder, not a data file")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".csv":
        X, y, target_name, names = _table_from_csv(path, target)
    elif ext == ".npz":
        X, y, target_name, names = _table_from_npz(path, target)
    else:
        raise CLIError(f"{path}: unsupported file type {ext or '(none)'!r}; use .csv or "
                       ".npz")
    if not np.all(np.isfinite(X)):
        bad = np.argwhere(~np.isfinite(X))[0]
        column = names[bad[1]] if names else str(bad[1])
        raise CLIError(f"feature column {column!r} has a missing or infinite value "
                       f"(data row {bad[0] + 1}); remove or impute it first")
    if y.dtype != object and not np.all(np.isfinite(y)):
        raise CLIError(f"target {target_name!r} has missing or infinite values")
    if len(X) < 20:
        raise CLIError(f"{path} has {len(X)} rows; the range test needs at least 20")
    return X, y, target_name, names


def detect_task(y):
    """``"classification"`` for labels or few distinct integers, else ``"regression"``."""
    if y.dtype == object:
        return "classification"
    values = np.unique(y)
    if np.all(values == np.round(values)) and len(values) <= MAX_CLASSES_AUTO:
        return "classification"
    return "regression"


def run_suggest(args):
    """``autoclr suggest DATA``: see the subcommand's ``--help``."""
    import torch
    from skorch import NeuralNetClassifier, NeuralNetRegressor
    from torch import nn

    from ._estimator import AutoCLR
    from .models import MLP

    device = _device(args.device)
    if args.plot is not None:
        _check_output(args.plot)
        _require_matplotlib()
    X, y, target_name, _ = load_table(args.data, args.target)
    task = detect_task(y) if args.task == "auto" else args.task
    if task == "regression" and y.dtype == object:
        raise CLIError(f"target {target_name!r} is not numeric; it can only be "
                       "classified (--task classification)")
    n = len(X)
    if task == "classification":
        classes, counts = np.unique(y, return_counts=True)
        if len(classes) < 2:
            raise CLIError(f"target {target_name!r} has a single value; a classifier "
                           "needs at least two classes")
        how = "chosen" if args.task != "auto" else "detected"
        print(f"{args.data}: {n} rows, {X.shape[1]} features, target {target_name!r}: "
              f"classification ({how}), {len(classes)} classes", flush=True)
    else:
        how = "chosen" if args.task != "auto" else "detected: not integer class labels"
        print(f"{args.data}: {n} rows, {X.shape[1]} features, target {target_name!r}: "
              f"regression ({how})", flush=True)
    if not args.no_scale:
        X = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
        if task == "regression":
            y = (y - y.mean()) / (y.std() if y.std() > 0 else 1.0)
        print("features standardised" + (" (and the target)" if task == "regression"
                                          else "") + "; use --no-scale to keep them as is",
              flush=True)
    X = X.astype(np.float32)
    batch_size = args.batch_size or int(min(64, max(1, int(0.8 * n) // 8)))
    common = dict(module=MLP, module__n_features=X.shape[1], module__hidden=args.hidden,
                  optimizer=torch.optim.SGD, optimizer__momentum=0.9,
                  batch_size=batch_size, max_epochs=args.epochs, verbose=0)
    if task == "classification":
        net = NeuralNetClassifier(module__n_outputs=len(classes),
                                  criterion=nn.CrossEntropyLoss, **common)
    else:
        net = NeuralNetRegressor(module__n_outputs=1, **common)
        y = y.astype(np.float32)
    print(f"default net: MLP({X.shape[1]} -> {args.hidden} -> {args.hidden} -> "
          f"{len(classes) if task == 'classification' else 1}), SGD momentum 0.9, "
          f"batch size {batch_size}", flush=True)
    auto = AutoCLR(net, policy=args.policy, random_state=args.seed, device=device,
                   verbose=0 if args.quiet else 1)
    try:
        suggestion = auto.suggest(X, y)
    except ValueError as exc:
        print(f"autoclr suggest: error: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    print(suggestion)
    if args.plot is not None:
        from matplotlib.figure import Figure

        from ._plotting import plot_range_test

        fig = Figure(figsize=(8, 5), layout="constrained")
        plot_range_test(suggestion.range_test, ax=fig.subplots())
        fig.savefig(args.plot, dpi=90)
        print(f"Plot: {args.plot}")
    return 0
