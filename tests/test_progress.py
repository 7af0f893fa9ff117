"""Progress output of the range test with verbose >= 1 (tqdm, or the plain fallback)."""

import io
import sys

import pytest

from autoclr import AutoCLR, range_test
from autoclr._progress import progress_bar


def test_range_test_is_silent_by_default(small_digits, capsys, make_net):
    X, y = small_digits
    range_test(make_net(), X, y, n_iter=24, random_state=0)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""


def test_range_test_shows_a_tqdm_bar_with_verbose(small_digits, capsys, make_net):
    pytest.importorskip("tqdm")
    X, y = small_digits
    result = range_test(make_net(), X, y, n_iter=24, random_state=0,
                        verbose=1)
    err = capsys.readouterr().err
    assert "range test" in err and f"{len(result.lrs)}/24" in err
    assert "lr=1.00e+00" in err  # the postfix shows the current LR


def test_plain_fallback_prints_a_line_per_quarter(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    stream = io.StringIO()
    bar = progress_bar(100, file=stream)
    for i in range(1, 101):
        bar.update_to(i, lr=0.5)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" iterations")[0] for line in lines] == [
        "range test: 25/100", "range test: 50/100", "range test: 75/100",
        "range test: 100/100"]
    assert all("lr=5.00e-01" in line for line in lines)


def test_plain_fallback_reports_an_early_stop(monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    stream = io.StringIO()
    bar = progress_bar(40, file=stream)
    for i in (10, 20, 27):  # updates come at evaluation points only
        bar.update_to(i)
    bar.close()
    lines = stream.getvalue().splitlines()
    assert [line.split(" iterations")[0] for line in lines] == [
        "range test: 10/40", "range test: 20/40", "range test: 27/40"]


def test_estimator_verbose_shows_progress_and_keeps_the_epoch_table(small_digits,
                                                                    capsys, make_net):
    X, y = small_digits
    net = make_net(max_epochs=12, verbose=1)
    AutoCLR(net, step_size_factor=2, range_test_iter=20, random_state=0,
            verbose=1).fit(X, y)
    captured = capsys.readouterr()
    assert "range test" in captured.err
    assert "AutoCLR suggestion" in captured.out
    assert "epoch" in captured.out and "train_loss" in captured.out
    table_rows = [line for line in captured.out.splitlines()
                  if line.strip().split(" ")[0].isdigit()]
    assert len(table_rows) == 12
    # verbose=0 silences everything
    AutoCLR(net, step_size_factor=2, range_test_iter=20, random_state=0).fit(X, y)
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""
