"""The ``autoclr`` command line: help, demo, suggest and its one-line errors."""

import os
import re
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.datasets import load_iris, make_regression

from autoclr._cli import build_parser, detect_task, load_table, main

# one torch thread in child processes too: the machine's cores are shared
ENV = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
SUGGEST_LINE = re.compile(r"base_lr=([0-9.e+-]+)\s+max_lr=([0-9.e+-]+)\s+step_size=(\d+)")


def _png_size(path):
    data = Path(path).read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG file"
    return struct.unpack(">II", data[16:24])


def _subparsers(parser):
    for action in parser._actions:
        if action.__class__.__name__ == "_SubParsersAction":
            return dict(action.choices)
    return {}


# ------------------------------------------------------------------------ help
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
    if not command:
        assert "demo" in out and "suggest" in out
    else:
        assert target.description.split()[0] in out


def test_help_shows_the_real_defaults(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert "(default: digits)" in out and "(default: 30)" in out
    assert "(default: autoclr_demo.png)" in out and "(default: triangular2)" in out
    assert "(default: None)" not in out and "(default: False)" not in out


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
    fixed = float(fixed)
    assert clr > 0.85  # an MLP on digits, 12 epochs
    assert 0.1 < fixed <= 1.0
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
    assert "range test: 100%" in out.stderr or "range test: 1" in out.stderr  # progress
    assert " 12 " in out.stdout  # the per-epoch table reached epoch 12
    assert not list(tmp_path.iterdir())  # --no-plot wrote nothing


def test_demo_without_matplotlib_says_how_to_install(monkeypatch, capsys, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    assert main(["demo", "-o", str(tmp_path / "x.png")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and 'pip install "autoclr[plot]"' in err


@pytest.mark.parametrize("args, message", [
    (["--output", "/no/such/folder/x.png"], "folder /no/such/folder does not exist"),
    (["--output", "demo.jpg"], "ending in .png"),
    (["--device", "tpu9"], "unknown device 'tpu9'"),
])
def test_demo_bad_options_fail_on_one_line(args, message, capsys):
    assert main(["demo"] + args) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err
    assert err.startswith("autoclr demo: error: ")


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_demo_cuda_without_cuda_fails_on_one_line(capsys):
    assert main(["demo", "--device", "cuda"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


# --------------------------------------------------------------------- suggest
@pytest.fixture(scope="module")
def iris_csv(tmp_path_factory):
    X, y = load_iris(return_X_y=True)
    names = np.array(["setosa", "versicolor", "virginica"])[y]
    path = tmp_path_factory.mktemp("data") / "iris.csv"
    lines = ["sepal length;sepal width;species;petal length;petal width"]
    lines += [f"{a};{b};{s};{c};{d}" for (a, b, c, d), s in zip(X, names)]
    path.write_text("\n".join(lines) + "\n")
    return path


def test_suggest_csv_with_named_string_target(iris_csv, tmp_path, capsys):
    png = tmp_path / "rt.png"
    rc = main(["suggest", str(iris_csv), "--target", "species", "--plot", str(png), "-q"])
    assert rc == 0
    out = capsys.readouterr().out
    assert "150 rows, 4 features, target 'species': classification (detected), " \
           "3 classes" in out
    base_lr, max_lr, step = SUGGEST_LINE.search(out).groups()
    assert 0 < float(base_lr) < float(max_lr) < 1
    # batch size 150 * 0.8 // 8 = 15; skorch's 80 % train split: 120 rows -> 8 batches
    # per epoch; 30 epochs -> factor 5
    assert "batch size 15" in out and int(step) == 40
    assert _png_size(png) == (720, 450)


def test_suggest_npz_regression_detected_and_chosen(tmp_path, capsys):
    X, y = make_regression(n_samples=200, n_features=5, noise=1.0, random_state=0)
    path = tmp_path / "reg.npz"
    np.savez(path, X=X, y=y)
    assert main(["suggest", str(path), "-q", "--epochs", "12"]) == 0
    out = capsys.readouterr().out
    assert "target 'y': regression (detected" in out and "(and the target)" in out
    assert "training: 3 cycle(s), 12 epochs" in out
    # integer targets with few values look like classes; --task overrides
    np.savez(path, X=X, y=np.round(y / 100))
    assert detect_task(load_table(str(path))[1]) == "classification"
    assert main(["suggest", str(path), "-q", "--task", "regression", "--epochs",
                 "12"]) == 0
    assert "regression (chosen)" in capsys.readouterr().out


def test_suggest_single_array_npz_and_headerless_csv(tmp_path):
    rng = np.random.default_rng(0)
    table = np.column_stack([rng.normal(size=(60, 3)), rng.integers(0, 2, 60)])
    np.savez(tmp_path / "one.npz", table)
    X, y, name, _ = load_table(str(tmp_path / "one.npz"), target="-1")
    np.testing.assert_array_equal(X, table[:, :3])
    np.testing.assert_array_equal(y, table[:, 3])
    assert name == "column 3"
    np.savetxt(tmp_path / "plain.csv", table, delimiter=",")
    X, y, name, names = load_table(str(tmp_path / "plain.csv"), target="0")
    np.testing.assert_allclose(X, table[:, 1:])
    np.testing.assert_allclose(y, table[:, 0])
    assert name == "0" and names == ["1", "2", "3"]


def _write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


GOOD_ROWS = "".join(f"{i},{i % 3},{i % 2}\n" for i in range(30))


@pytest.mark.parametrize("name, content, extra, message", [
    ("missing.csv", None, [], "missing.csv: no such file"),
    ("data.xlsx", "a,b\n1,2\n", [], "unsupported file type '.xlsx'"),
    ("empty.csv", "", [], "empty.csv is empty"),
    ("header.csv", "a,b,c\n", [], "has a header but no data rows"),
    ("text.csv", "a,b,c\n1,2,0\n4,x,1\n" + GOOD_ROWS, [],
     "feature column 'b' is not numeric: line 3 holds 'x'"),
    ("hole.csv", "a,b,c\n1,,0\n" + GOOD_ROWS, [], "feature column 'b' is not numeric: "
     "line 2 is empty"),
    ("ragged.csv", "a,b,c\n1,2,0\n1,2\n" + GOOD_ROWS, [],
     "line 3 has 2 fields, expected 3"),
    ("cols.csv", "a,b,c\n" + GOOD_ROWS, ["--target", "label"],
     "column 'label' not found; the columns are: a, b, c"),
    ("index.csv", "a,b,c\n" + GOOD_ROWS, ["--target", "7"],
     "column index 7 is out of range"),
    ("nan.csv", "a,b,c\n1,nan,0\n" + GOOD_ROWS, [],
     "feature column 'b' has a missing or infinite value (data row 1)"),
    ("short.csv", "a,b,c\n1,2,0\n2,3,1\n", [], "has 2 rows; the range test needs at least"),
    ("one.csv", "a,b,c\n" + "".join(f"{i},{i},1\n" for i in range(30)), [],
     "target 'c' has a single value"),
    ("labels.csv", "a,b,c\n" + "".join(f"{i},{i},x{i % 2}\n" for i in range(30)),
     ["--task", "regression"], "target 'c' is not numeric"),
    ("garbage.npz", "not a zip", [], "not a valid .npz file"),
])
def test_suggest_bad_input_fails_on_one_line(tmp_path, capsys, name, content, extra,
                                             message):
    path = tmp_path / name if content is None else _write(tmp_path, name, content)
    assert main(["suggest", str(path)] + extra) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.count("\n") == 0, err
    assert err.startswith("autoclr suggest: error: ")
    assert message in err
    assert "Traceback" not in captured.out + captured.err


@pytest.mark.parametrize("arrays, message", [
    ({"a": np.zeros((30, 2)), "b": np.zeros(30), "c": np.zeros(30)}, "expected arrays 'X'"),
    ({"X": np.zeros((30, 2)), "y": np.zeros(29)}, "one value per row"),
    ({"X": np.array([["a", "b"]] * 30), "y": np.arange(30) % 2}, "not numeric"),
    ({"X": np.array([{"a": 1}] * 30, dtype=object), "y": np.arange(30)},
     "object arrays are not supported"),
])
def test_suggest_bad_npz_fails_on_one_line(tmp_path, capsys, arrays, message):
    path = tmp_path / "d.npz"
    np.savez(path, **arrays)
    assert main(["suggest", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and message in err, err


def test_suggest_bad_option_value_is_a_usage_error(capsys, iris_csv):
    with pytest.raises(SystemExit) as exc:
        main(["suggest", str(iris_csv), "--epochs", "zero"])
    assert exc.value.code == 2
    assert "expected a positive integer, got 'zero'" in capsys.readouterr().err
