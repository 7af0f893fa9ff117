"""The ``autoclr`` command line: help, demo, suggest on real tables, --net, one-line errors."""

import json
import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from autoclr._cli import MLP_CAVEAT, build_parser, load_table, main

# one torch thread in child processes too: the machine's cores are shared
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
SUGGEST_LINE = re.compile(r"base_lr=([0-9.e+-]+)\s+max_lr=([0-9.e+-]+)\s+step_size=(\d+)")
NETS_MODULE = '''
import torch
from skorch import NeuralNetClassifier, NeuralNetRegressor
from torch import nn

CALLS = []


class Tiny(nn.Module):
    def __init__(self, n_features, n_outputs, hidden=11, broken=False):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, hidden), nn.ReLU(),
                                  nn.Linear(hidden, n_outputs))
        self.broken = broken

    def forward(self, X):
        out = self.body(X)
        return out * float("nan") if self.broken else out


def _net(cls, n_features, n_outputs, **params):
    CALLS.append((cls.__name__, n_features, n_outputs))
    return cls(Tiny, module__n_features=n_features, module__n_outputs=n_outputs,
               optimizer=torch.optim.SGD, optimizer__momentum=0.9, batch_size=16,
               max_epochs=12, verbose=0, **params)


def classifier(n_features, n_outputs):
    return _net(NeuralNetClassifier, n_features, n_outputs, criterion=nn.CrossEntropyLoss)


def regressor(n_features, n_outputs):
    return _net(NeuralNetRegressor, n_features, n_outputs)


def broken(n_features, n_outputs):
    return _net(NeuralNetRegressor, n_features, n_outputs, module__broken=True)


def not_a_net(n_features, n_outputs):
    return "a string"


def old_signature(n_in, n_out):
    return None
'''


def _png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


def _one_line_error(capsys, command):
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith(f"autoclr {command}: error: ")
    assert "Traceback" not in captured.out + captured.err
    return err


# ------------------------------------------------------------------------ help
def _subparsers(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    return {}


@pytest.mark.parametrize("command", [[], ["demo"], ["suggest"]])
def test_help_lists_every_option_with_a_description(command, capsys):
    parser = build_parser()
    target = parser if not command else _subparsers(parser)[command[0]]
    with pytest.raises(SystemExit) as exc:
        main(command + ["--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith(f"usage: autoclr{' ' + command[0] if command else ''}")
    for action in target._actions:
        assert action.help, f"option {action.option_strings or action.dest} has no help"
        for flag in action.option_strings:
            assert flag in out
    text = " ".join(out.split())
    if not command:
        assert "demo" in text and "suggest" in text
    elif command == ["demo"]:
        assert "(default: digits)" in text and "(default: 30)" in text
        assert "(default: autoclr_demo.png)" in text and "(default: auto: triangular2, or" in text
    else:  # the contract of --net and the preprocessing are in the help
        assert "FACTORY(n_features=..., n_outputs=...)" in text
        assert "median" in text and "one-hot" in text and "type_of_target" in text
    assert "(default: None)" not in text and "(default: False)" not in text


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: autoclr" in capsys.readouterr().err


def test_console_script_is_declared():
    from importlib.metadata import entry_points

    (script,) = entry_points(group="console_scripts", name="autoclr")
    assert script.value == "autoclr.__main__:main"
    assert script.load() is main


# ------------------------------------------------------------------------ demo
def test_demo_prints_bounds_accuracies_and_writes_the_png(tmp_path, capsys):
    png = tmp_path / "demo.png"
    torch.set_num_threads(2)
    try:
        assert main(["demo", "--epochs", "12", "--seed", "1", "-o", str(png), "-q"]) == 0
        assert torch.get_num_threads() == 2  # the demo's one thread is given back
    finally:
        torch.set_num_threads(1)
    out = capsys.readouterr().out
    base_lr, max_lr, step = SUGGEST_LINE.search(out).groups()
    assert 0 < float(base_lr) < float(max_lr) < 1
    # 12 epochs -> factor 2; skorch's 80 % train split of 1257 -> 16 batches of 64
    assert int(step) == 2 * 16 and "(2 x 16 iterations/epoch)" in out
    assert "why: " in out
    clr = float(re.search(r"cyclical LR, triangular2 .*?\s(0\.\d{4})\n", out).group(1))
    fixed = re.search(r"fixed LR 0\.01 \(skorch default\)\s+(0\.\d{4})", out).group(1)
    assert clr > 0.85  # an MLP on digits, 12 epochs
    assert 0.1 < float(fixed) <= 1.0
    assert _png_size(png) == (1620, 450)
    assert png.stat().st_size > 40_000


def test_python_m_autoclr_demo_on_generated_data(tmp_path):
    # runpy.run_module is what "python -m autoclr" does; the same child process also
    # checks that importing autoclr leaves matplotlib alone (--no-plot never needs it)
    code = (
        "import runpy, sys, autoclr\n"
        "print('matplotlib imported:', 'matplotlib' in sys.modules)\n"
        "sys.argv = ['autoclr', 'demo', '--dataset', 'generated', '--epochs', '12',\n"
        "            '--policy', 'triangular', '--no-plot', '--device', 'cpu']\n"
        "runpy.run_module('autoclr', run_name='__main__')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, cwd=tmp_path, env=ENV)
    assert out.returncode == 0, out.stderr
    assert "matplotlib imported: False" in out.stdout
    assert "generated problem" in out.stdout
    assert "cyclical LR, triangular " in out.stdout
    assert "range test: 100%" in out.stderr  # the progress bar
    assert re.search(r"^\s+12\s", out.stdout, re.M)  # the per-epoch table reached epoch 12
    assert not list(tmp_path.iterdir())  # --no-plot wrote nothing


def test_demo_without_matplotlib_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["demo", "-o", str(tmp_path / "x.png")]) == 2
    assert 'pip install "autoclr[plot]"' in _one_line_error(capsys, "demo")


@pytest.mark.parametrize("args, message", [
    (["--output", "/no/such/folder/x.png"], "folder /no/such/folder does not exist"),
    (["--output", "demo.jpg"], "ending in .png"),
    (["--device", "tpu9"], "'tpu9'"),
])
def test_demo_bad_options_fail_on_one_line(args, message, capsys):
    assert main(["demo"] + args) == 2
    assert message in _one_line_error(capsys, "demo")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_demo_cuda_without_cuda_fails_on_one_line(capsys):
    assert main(["demo", "--device", "cuda"]) == 2
    assert "CUDA is not available" in _one_line_error(capsys, "demo")


# --------------------------------------------------------------------- suggest
def _table(n=240, seed=0):
    """Two numeric columns (one value missing), a region code, a 3-class label."""
    rng = np.random.default_rng(seed)
    region = rng.choice(["N", "S", "E", "W"], n)
    x1, x2 = rng.normal(size=(2, n))
    score = x1 + np.select([region == "N", region == "S"], [2.0, -2.0], 0.0)
    frame = pd.DataFrame({"x1": x1, "region": region, "x2": x2 * 10 + 3,
                          "label": np.where(score > 1, "high",
                                            np.where(score < -1, "low", "mid")),
                          "price": 3 * score + 100 + rng.normal(scale=0.3, size=n)})
    frame.loc[5, "x2"] = np.nan
    return frame


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    folder = tmp_path_factory.mktemp("tables")
    frame = _table()
    frame.drop(columns="price").to_csv(folder / "regions.csv", index=False)
    frame.drop(columns="label").to_csv(folder / "prices.csv", index=False)
    return folder


@pytest.fixture
def nets(tmp_path, monkeypatch):
    """A module ``clinets`` in the current directory, imported fresh by each test."""
    (tmp_path / "clinets.py").write_text(NETS_MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", list(sys.path))  # --net adds the current directory
    monkeypatch.delitem(sys.modules, "clinets", raising=False)
    yield tmp_path
    sys.modules.pop("clinets", None)


def test_suggest_csv_with_a_categorical_column(tables, tmp_path, capsys):
    png = tmp_path / "rt.png"
    assert main(["suggest", str(tables / "regions.csv"), "--target", "label", "--plot",
                 str(png), "-q"]) == 0
    out = capsys.readouterr().out
    assert "240 rows; target 'label': classification (type_of_target: multiclass, " \
           "3 classes" in out
    # 3 numeric columns would be 3 inputs: the region code is one-hot encoded
    assert "1 one-hot encoded ('region': 4 values) -> 6 inputs" in out
    assert "built-in MLP 6 -> 64 -> 64 -> 3" in out
    base_lr, max_lr, step = SUGGEST_LINE.search(out).groups()
    assert 0 < float(base_lr) < float(max_lr) < 1
    # batch size 240 * 0.8 // 8 = 24; skorch's 80 % train split: 192 rows -> 8 batches
    # per epoch; 30 epochs -> factor 5
    assert "batch size 24" in out and int(step) == 40
    assert " ".join(MLP_CAVEAT.split()) in " ".join(out.split())
    assert _png_size(png) == (720, 450)


def test_suggest_regression_csv_standardises_the_target_and_prints_json(tables, capsys):
    # the target is the last column; the region code is a feature again
    assert main(["suggest", str(tables / "prices.csv"), "--json", "-q", "--epochs",
                 "12"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)  # stdout holds the JSON and nothing else
    assert result["task"] == "regression" and result["net"] == "autoclr.models.MLP"
    assert 0 < result["base_lr"] < result["max_lr"] < 1
    # batch size 240 * 0.8 // 8 = 24; skorch's 80 % train split: 192 rows -> 8 batches
    # per epoch; 12 epochs -> factor 2
    assert result["n_epochs"] == 12 and result["iterations_per_epoch"] == 8
    # 12 epochs of 8 batches, 96 iterations: policy "auto" keeps a regressor's
    # triangular2 even so (triangular is for a classifier's tiny fit)
    assert result["step_size"] == 16 and result["policy"] == "triangular2"
    assert "target 'price': regression (type_of_target: continuous; standardised for " \
           "the range test" in captured.err
    assert "AutoCLR suggestion" in captured.err and "Note: these bounds" in captured.err
    # the JSON holds the suggestion printed on stderr
    assert (f"base_lr={result['base_lr']:.2e}  max_lr={result['max_lr']:.2e}  "
            "step_size=16 (2 x 8 iterations/epoch)") in captured.err
    assert f"why: {result['why']}" in captured.err


def test_suggest_task_option_overrides_type_of_target(tmp_path, capsys):
    # small integers look like classes to type_of_target; --task regression says otherwise
    rng = np.random.default_rng(0)
    frame = pd.DataFrame({"a": rng.normal(size=200), "b": rng.normal(size=200)})
    frame["count"] = np.round(2 * frame.a - frame.b + 5).astype(int)
    frame.to_csv(tmp_path / "counts.csv", index=False)
    X, y = load_table(str(tmp_path / "counts.csv"))
    assert list(X.columns) == ["a", "b"] and y.name == "count"
    assert main(["suggest", str(tmp_path / "counts.csv"), "-q", "--task", "regression",
                 "--epochs", "12"]) == 0
    out = capsys.readouterr().out
    assert "target 'count': regression (--task; standardised" in out
    assert "-> 64 -> 1," in out and SUGGEST_LINE.search(out)


@pytest.mark.parametrize("target, factory, outputs", [
    ("label", "classifier", 3), ("price", "regressor", 1)])
def test_suggest_with_your_own_net(nets, tables, capsys, target, factory, outputs):
    frame = _table()
    path = tables / ("regions.csv" if target == "label" else "prices.csv")
    assert main(["suggest", str(path), "--target", target, "--net", f"clinets:{factory}",
                 "-q"]) == 0
    out = capsys.readouterr().out
    # the factory was called with the encoded width and the classes (or 1) ...
    name = "NeuralNetClassifier" if outputs > 1 else "NeuralNetRegressor"
    assert sys.modules["clinets"].CALLS == [(name, 6, outputs)]
    # ... and its net ran the range test: its batch size (16) sets the iterations
    n_train = int(0.8 * len(frame))
    assert f"net: clinets:{factory} -> {name}(Tiny), batch size 16, 12 epochs" in out
    assert f"x {-(-n_train // 16)} iterations/epoch" in out
    assert SUGGEST_LINE.search(out)
    assert "built-in MLP" not in out and "Note: these bounds" not in out


@pytest.mark.parametrize("spec, message", [
    ("clinets", "--net takes MODULE:FACTORY"),
    ("no_such_module:make", "ModuleNotFoundError: No module named 'no_such_module'"),
    ("clinets:missing", "AttributeError"),
    ("clinets:old_signature", "old_signature(n_features=6, n_outputs=3) failed: TypeError"),
    ("clinets:not_a_net", "returned str, not a skorch net"),
    ("clinets:regressor", "returned a NeuralNetRegressor for a classification target"),
])
def test_suggest_net_errors_fail_on_one_line(nets, tables, capsys, spec, message):
    assert main(["suggest", str(tables / "regions.csv"), "-t", "label", "--net", spec]) == 2
    assert message in _one_line_error(capsys, "suggest")


def test_suggest_range_test_failure_exits_with_status_1(nets, tables, capsys):
    # input and options are fine; the range test cannot run (the net returns NaN)
    assert main(["suggest", str(tables / "prices.csv"), "--net", "clinets:broken",
                 "-q"]) == 1
    assert "not finite at the first iteration" in _one_line_error(capsys, "suggest")


def test_suggest_missing_target_column_names_it(tables, capsys):
    assert main(["suggest", str(tables / "regions.csv"), "--target", "lable"]) == 2
    err = _one_line_error(capsys, "suggest")
    assert "target column 'lable' not found" in err
    assert "the columns are: x1, region, x2, label" in err


def test_suggest_reads_other_delimiters_parquet_and_npz(tmp_path):
    frame = _table().drop(columns="price")
    frame.to_csv(tmp_path / "semicolons.csv", sep=";", index=False)
    X, y = load_table(str(tmp_path / "semicolons.csv"), "label", sep=";")
    pd.testing.assert_frame_equal(X, frame.drop(columns="label"), check_dtype=False)
    assert list(y) == list(frame.label)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "arrays.npz", X=rng.normal(size=(30, 2)), y=np.arange(30) % 2)
    X, y = load_table(str(tmp_path / "arrays.npz"))
    assert list(X.columns) == ["x0", "x1"] and y.name == "y" and y.sum() == 15
    pytest.importorskip("pyarrow")
    frame.to_parquet(tmp_path / "t.parquet")
    X, y = load_table(str(tmp_path / "t.parquet"), "label")
    pd.testing.assert_frame_equal(X, frame.drop(columns="label"))


def test_parquet_without_an_engine_says_what_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "fastparquet", None)
    (tmp_path / "t.parquet").write_bytes(b"PAR1")
    assert main(["suggest", str(tmp_path / "t.parquet")]) == 2
    assert "pip install pyarrow" in _one_line_error(capsys, "suggest")


ROWS = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30))


@pytest.mark.parametrize("name, content, extra, message", [
    ("missing.csv", None, [], "cannot read"),
    ("empty.csv", "", [], "cannot read"),
    ("header.csv", "a,b,c\n", [], "0 rows"),
    ("one.csv", "a\n" + "".join(f"{i}\n" for i in range(30)), [], "1 column(s)"),
    ("semi.csv", "a;b;c\n" + ROWS.replace(",", ";"), [], "1 column(s) and 30 rows; it "
     "needs feature columns, a target column and data rows (--sep?)"),
    ("hole.csv", "a,b,c\n1,2,\n" + ROWS, [], "target column 'c' has 1 missing value"),
    ("single.csv", "a,b,c\n" + "".join(f"{i},{i},1\n" for i in range(30)), [],
     "target 'c' cannot be classified"),
    ("floats.csv", "a,b,c\n" + "".join(f"{i},{i},{i / 7}\n" for i in range(30)),
     ["--task", "classification"], "target 'c' cannot be classified"),
    ("labels.csv", "a,b,c\n" + "".join(f"{i},{i},x{i % 2}\n" for i in range(30)),
     ["--task", "regression"], "target 'c' is not numeric"),
    ("ok.csv", "a,b,c\n" + ROWS, ["--plot", "/no/such/folder/rt.png"], "does not exist"),
    ("ok.csv", "a,b,c\n" + ROWS, ["--device", "tpu9"], "'tpu9'"),
])
def test_suggest_bad_input_fails_on_one_line(tmp_path, capsys, name, content, extra,
                                             message):
    path = tmp_path / name
    if content is not None:
        path.write_text(content)
    assert main(["suggest", str(path)] + extra) == 2
    assert message in _one_line_error(capsys, "suggest")


def test_suggest_bad_option_value_is_a_usage_error(capsys, tables):
    with pytest.raises(SystemExit) as exc:
        main(["suggest", str(tables / "regions.csv"), "--epochs", "zero"])
    assert exc.value.code == 2
    assert "expected a positive integer, got 'zero'" in capsys.readouterr().err
