"""The ``autoclr`` command line: ``autoclr demo`` and ``autoclr suggest DATA``.

``demo`` runs the whole method on a bundled data set and draws it; ``suggest``
reads the user's table with pandas, encodes it with scikit-learn and prints the
bounds of a range test. Errors in the input are reported on one line with exit
status 2; failures while running, with status 1. The demo itself is in ``_demo``,
what both share in ``_cli_common``.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import json
import os
import sys
import warnings

import numpy as np
from sklearn.base import is_classifier
from sklearn.compose import make_column_transformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from sklearn.utils.multiclass import type_of_target
from skorch import NeuralNet

from . import __version__
from ._cli_common import CLIError, check_png, checked_device, mlp_net
from ._demo import run_demo
from ._estimator import AutoCLR
from ._validation import POLICIES

__all__ = ["main", "build_parser", "load_table"]

EXIT_USAGE, EXIT_FAILURE = 2, 1
#: what ``type_of_target`` says -> the task; any other answer needs --task
TASKS = {"binary": "classification", "multiclass": "classification",
         "continuous": "regression"}
MLP_CAVEAT = ("Note: these bounds are for autoclr's built-in MLP (autoclr.models.MLP) and "
              "may not carry over to your own net (its architecture, optimizer and batch "
              "size move them): pass --net module:factory to test yours.")
DEMO_HELP = ("Run AutoCLR end to end on a bundled data set: the LR range test (with a "
             "progress bar), the bounds it picks and why, the cyclical fit, and the test "
             "accuracy next to the same net trained with skorch's default fixed lr=0.01; "
             "writes a PNG of the range test, the LR schedule and both test accuracies.")
SUGGEST_HELP = ("Run the LR range test on your own table with autoclr's built-in MLP, or "
                "your skorch net (--net), and print base_lr, max_lr and the step size with "
                "the reasons. Nothing is trained beyond the range test.")
SUGGEST_EPILOG = (
    "DATA: a CSV with a header row (read by pandas.read_csv), a .parquet file "
    "(needs pyarrow) or an .npz with arrays X and y. Numeric columns are standardised, a "
    "missing value replaced by the column's median; text, category and bool columns are "
    "one-hot encoded (missing: a category of its own). Rows without a target are refused. "
    "--task auto: sklearn's type_of_target continuous -> regression (the target is "
    "standardised), binary or multiclass (integers too) -> classification. The bounds "
    "hold for the data so encoded. --net MODULE:FACTORY imports MODULE as 'python -m' "
    "would (the current directory first) and calls FACTORY(n_features=..., "
    "n_outputs=...), which must return an unfitted skorch net mapping n_features inputs "
    "to n_outputs values (the number of classes, 1 for regression): a "
    "NeuralNetClassifier for classification, else a NeuralNetRegressor.")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``autoclr`` command (with its subcommands)."""
    parser = argparse.ArgumentParser(
        prog="autoclr", epilog="Run 'autoclr COMMAND --help' for the options of a command.",
        description="Cyclical learning rates for skorch nets, with the bounds found by an "
                    "LR range test (Smith, 2017).")
    parser.add_argument("--version", action="version", version=f"autoclr {__version__}",
                        help="print the version and exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND",
                                help="what to run (each has its own --help)")
    _add_shared_options(_add_demo_parser(sub), run_demo)
    _add_shared_options(_add_suggest_parser(sub), run_suggest)
    return parser


def _add_demo_parser(sub):
    """``autoclr demo`` and its own options."""
    demo = sub.add_parser("demo", help=DEMO_HELP, description=DEMO_HELP)
    demo.add_argument("--dataset", choices=("digits", "generated"), default="digits",
                      help="scikit-learn's 8x8 digits (10 classes) or a generated 4-class "
                           "problem with 20 features (default: %(default)s)")
    demo.add_argument("--epochs", type=_positive_int, default=30,
                      help="epoch budget (default: %(default)s)")
    demo.add_argument("--output", "-o", default="autoclr_demo.png", metavar="PNG",
                      help="the PNG to write (default: %(default)s)")
    demo.add_argument("--no-plot", action="store_true", help="write no PNG")
    return demo


def _add_suggest_parser(sub):
    """``autoclr suggest DATA`` and its own options."""
    sug = sub.add_parser("suggest", help=SUGGEST_HELP, description=SUGGEST_HELP,
                         epilog=SUGGEST_EPILOG)
    sug.add_argument("data", metavar="DATA", help="a .csv, .parquet or .npz file")
    sug.add_argument("--target", "-t", metavar="NAME",
                     help="target column (default: the last one)")
    sug.add_argument("--sep", default=",", help="CSV delimiter (default: %(default)s)")
    sug.add_argument("--task", choices=("auto", "classification", "regression"),
                     default="auto", help="default: %(default)s, see below")
    sug.add_argument("--net", metavar="MODULE:FACTORY", help="your skorch net (see below) "
                     "instead of autoclr.models.MLP with two hidden layers of 64")
    sug.add_argument("--epochs", type=_positive_int, help="epoch budget the step size is "
                     "planned for (default: 30, or the max_epochs of a --net)")
    sug.add_argument("--batch-size", type=_positive_int, help="default: 64, lowered to "
                     "leave 8 batches per epoch (or the batch_size of a --net)")
    sug.add_argument("--plot", metavar="PNG", help="also write the range-test plot")
    sug.add_argument("--json", action="store_true",
                     help="the suggestion as JSON on stdout (everything else on stderr)")
    return sug


def _add_shared_options(command, func):
    """The options both subcommands take, and the function that runs ``command``."""
    command.add_argument("--policy", choices=POLICIES, default="auto",
                         help="cyclical policy (default: %(default)s: triangular2, or "
                         "triangular for a classifier's fit under 100 iterations)")
    command.add_argument("--device", default="auto", help="'auto' (CUDA when "
                         "available), 'cpu', 'cuda:1', ... (default: %(default)s)")
    command.add_argument("--seed", type=int, default=0,
                         help="random seed (default: %(default)s)")
    command.add_argument("--quiet", "-q", action="store_true",
                         help="no progress bar (nor, in demo, per-epoch table)")
    command.set_defaults(func=func)


def _positive_int(text):
    """argparse type: a positive integer (``--epochs``, ``--batch-size``)."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def main(argv=None) -> int:
    """Entry point of ``autoclr`` and ``python -m autoclr``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    old, warnings.formatwarning = warnings.formatwarning, _warning_line
    try:
        return args.func(args)
    except (CLIError, ValueError) as exc:  # a ValueError: the range test failed
        print(f"autoclr {args.command}: error: {' '.join(str(exc).split())}",
              file=sys.stderr)
        return EXIT_USAGE if isinstance(exc, CLIError) else EXIT_FAILURE
    except KeyboardInterrupt:
        print(f"autoclr {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        warnings.formatwarning = old


def _warning_line(message, category, *args, **kwargs):
    """A warning on one line, ``autoclr: Category: message`` (no source line)."""
    return f"autoclr: {category.__name__}: {message}\n"


# ------------------------------------------------------------------- suggest
def load_table(path, target=None, sep=","):
    """Features (DataFrame) and target (Series, default the last column) of a table.

    ``path`` is a ``.parquet`` file, an ``.npz`` (arrays ``X`` and ``y``, read as
    columns ``x0, x1, ...`` and ``y``) or a CSV with a header row, read by
    ``pd.read_csv(path, sep=sep)``. Raises ``CLIError`` with a one-line message.
    """
    try:
        import pandas as pd
    except ImportError:
        raise CLIError("autoclr suggest reads tables with pandas: pip install pandas") \
            from None
    kind = os.path.splitext(path)[1].lower()
    try:
        if kind == ".parquet":
            frame = pd.read_parquet(path)
        elif kind == ".npz":
            with np.load(path) as arrays:
                frame = pd.DataFrame(arrays["X"]).add_prefix("x").assign(y=arrays["y"])
        else:
            frame = pd.read_csv(path, sep=sep)
    except ImportError:
        raise CLIError(f"reading {path} needs pyarrow: pip install pyarrow") from None
    except (OSError, ValueError, KeyError, csv.Error) as exc:
        raise CLIError(f"cannot read {path}: {exc}") from None
    target = frame.columns[-1] if target is None else target
    if target not in frame.columns:
        raise CLIError(f"target column {target!r} not found in {path}; the columns are: "
                       f"{', '.join(map(str, frame.columns))}")
    if frame.shape[1] < 2 or len(frame) == 0:
        raise CLIError(f"{path} has {frame.shape[1]} column(s) and {len(frame)} rows; it "
                       "needs feature columns, a target column and data rows (--sep?)")
    if frame[target].isna().any():
        raise CLIError(f"target column {target!r} has {frame[target].isna().sum()} missing "
                       "value(s); drop those rows first")
    return frame.drop(columns=target), frame[target]


def load_net(spec, n_features, n_outputs):
    """``--net module:factory``: the skorch net ``factory(n_features=, n_outputs=)``."""
    module, _, name = spec.partition(":")
    if not module or not name:
        raise CLIError(f"--net takes MODULE:FACTORY (e.g. mynets:make_net), got {spec!r}")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())  # as 'python -m' does
    call = f"{name}(n_features={n_features}, n_outputs={n_outputs})"
    try:  # ImportError, AttributeError, TypeError, or any error of the user's code
        net = getattr(importlib.import_module(module), name)(
            n_features=n_features, n_outputs=n_outputs)
    except Exception as exc:
        raise CLIError(f"--net {spec}: {call} failed: {type(exc).__name__}: {exc}") from None
    if not isinstance(net, NeuralNet):
        raise CLIError(f"--net {spec}: {call} returned {type(net).__name__}, not a skorch "
                       "net (NeuralNetClassifier, NeuralNetRegressor, ...)")
    return net


def run_suggest(args):
    """``autoclr suggest DATA``: see the subcommand's ``--help``."""
    out = sys.stderr if args.json else sys.stdout
    if args.plot is not None:
        check_png(args.plot)
    X, y = load_table(args.data, args.target, args.sep)
    task, n_outputs, y_fit, how = _target(y, args.task)
    X_fit, features = _encode_features(X)
    print(f"{args.data}: {len(X)} rows; target {y.name!r}: {task} ({how})\nfeatures: "
          f"{features}", file=out, flush=True)
    net, name = _suggest_net(args, task, X_fit.shape[1], n_outputs, len(X))
    print(f"net: {name}, batch size {net.batch_size}, {net.max_epochs} epochs", file=out)
    auto = AutoCLR(net, policy=args.policy, random_state=args.seed, device=args.device,
                   verbose=int(not args.quiet))
    checked_device(auto)
    suggestion = auto.suggest(X_fit, y_fit)
    print(suggestion, file=out)
    if not args.net:
        print(MLP_CAVEAT, file=out)
    if args.plot is not None:
        _write_plot(suggestion.range_test, args.plot)
        print(f"Plot: {args.plot}", file=out)
    if args.json:
        plan = suggestion.plan
        print(json.dumps(dict(
            base_lr=suggestion.base_lr, max_lr=suggestion.max_lr, step_size=plan.step_size,
            iterations_per_epoch=plan.iterations_per_epoch, n_epochs=plan.n_epochs,
            policy=plan.policy, task=task, net=args.net or "autoclr.models.MLP",
            why=suggestion.bounds.explanation), indent=2))
    return 0


def _target(y, task):
    """The task, the net's number of outputs, the target to fit, and how the task was chosen.

    ``task`` is ``--task``: ``"auto"`` asks ``type_of_target``. A regression
    target is standardised (float32); a classification target is kept as is.
    """
    kind = type_of_target(y)
    chosen = TASKS.get(kind) if task == "auto" else task
    if chosen is None:
        raise CLIError(f"target {y.name!r} is {kind} for type_of_target; pass --task")
    how = f"type_of_target: {kind}" if task == "auto" else "--task"
    if chosen == "classification":
        n_outputs, y_fit = y.nunique(), y.to_numpy()
        if n_outputs < 2 or kind == "continuous":
            raise CLIError(f"target {y.name!r} cannot be classified: it has a single value "
                           "or is continuous (type_of_target)")
        how += f", {n_outputs} classes" + ("; --task overrides" if task == "auto" else "")
        return chosen, n_outputs, y_fit, how
    try:
        values = y.to_numpy(np.float64)
    except (TypeError, ValueError):
        raise CLIError(f"target {y.name!r} is not numeric: it can only be classified") \
            from None
    mean, std = values.mean(), values.std()
    y_fit = ((values - mean) / (std or 1.0)).astype(np.float32)
    how += f"; standardised for the range test: mean {mean:.4g}, std {std:.4g}"
    return chosen, 1, y_fit, how


def _encode_features(X):
    """The features encoded (float32) and what was done, in words.

    Numeric columns: a missing value -> the column's median, then
    standardised; the other columns one-hot encoded.
    """
    numeric = list(X.select_dtypes("number").columns)
    categorical = [c for c in X.columns if c not in numeric]
    encoder = make_column_transformer(
        (make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), numeric),
        (OneHotEncoder(handle_unknown="ignore", sparse_output=False), categorical),
        sparse_threshold=0.0)
    X_fit = encoder.fit_transform(X).astype(np.float32)
    counts = [f"{c!r}: {len(v)}" for c, v in zip(categorical, getattr(
        encoder.named_transformers_["onehotencoder"], "categories_", []))]
    return X_fit, (
        f"{len(numeric)} numeric (standardised, a missing value -> median), {len(counts)} "
        "one-hot encoded" + (f" ({', '.join(counts)} values)" if counts else "")
        + f" -> {X_fit.shape[1]} inputs")


def _suggest_net(args, task, n_features, n_outputs, n_rows):
    """The net to test, ``--net``'s or the built-in MLP, sized by the options; its name."""
    sizes = {k: v for k, v in (("batch_size", args.batch_size), ("max_epochs", args.epochs))
             if v is not None}
    if args.net:
        net = load_net(args.net, n_features, n_outputs).set_params(**sizes)
        if is_classifier(net) != (task == "classification"):
            raise CLIError(f"--net {args.net} returned a {type(net).__name__} for a {task} "
                           "target (--task chooses the task)")
        module = getattr(net.module, "__name__", type(net.module).__name__)
        return net, f"{args.net} -> {type(net).__name__}({module})"
    # 64 a batch, fewer where that would leave less than 8 batches an epoch
    sizes = {"max_epochs": 30, "batch_size": min(64, max(1, int(0.8 * n_rows) // 8)),
             **sizes}
    net = mlp_net(task == "classification", n_features, n_outputs, **sizes)
    return net, f"built-in MLP {n_features} -> 64 -> 64 -> {n_outputs}, SGD momentum 0.9"


def _write_plot(range_test, path):
    """The range-test plot as a PNG at ``path``."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(8, 5), layout="constrained")
    range_test.plot(ax=fig.subplots())
    fig.savefig(path, dpi=90)
