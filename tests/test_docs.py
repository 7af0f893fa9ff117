"""The docs site builds with ``mkdocs build --strict``: any warning fails the test."""

import os
import re
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
#: pages in the nav that other parts of the project write (the benchmark reports)
WRITTEN_ELSEWHERE = {
    "benchmarks.md": "benchmarks/quality.py",
    "benchmarks_speed.md": "benchmarks/speed.py",
}


def _require(name):
    """Import a docs dependency; in CI (CI=true) it must be installed."""
    if os.environ.get("CI"):
        return __import__(name)
    return pytest.importorskip(name, reason='the docs need pip install -e ".[docs]"')


def test_docs_build_strict(tmp_path):
    for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        _require(name)
    shutil.copytree(DOCS, tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    for page, script in WRITTEN_ELSEWHERE.items():
        if not (DOCS / page).exists():
            # not merged into this branch yet: a placeholder keeps the nav buildable
            warnings.warn(f"docs/{page} is missing; built with a placeholder", UserWarning,
                          stacklevel=1)
            (tmp_path / "docs" / page).write_text(
                f"# {page[:-3]}\n\nWritten by `{script}`.\n")
    site = tmp_path / "site"
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f",
         str(tmp_path / "mkdocs.yml"), "-d", str(site)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))
    assert out.returncode == 0, out.stdout + out.stderr
    api = (site / "api" / "index.html").read_text()
    # the reference is generated from the docstrings: parameters and their text
    for text in ("AutoCLR", "step_size_factor", "plot_range_test", "plan_cycles",
                 "The net to train, not initialised or fitted by AutoCLR"):
        assert text in api, text
    # docs/griffe_numpydoc.py: Sphinx roles become code, and the default stated after
    # a {choices} set is the one shown (griffe alone would show the first choice)
    assert ":class:" not in api and ":func:" not in api
    row = re.sub(r"<[^>]+>", " ", api[api.index("<code>policy</code>"):][:3000])
    assert "&#34;triangular2&#34;" in row.split("every iteration.")[1][:200] or \
        '"triangular2"' in row.split("every iteration.")[1][:200]
    for page in ("quickstart", "detection", "user-guide", "scale-out"):
        assert (site / page / "index.html").exists()
    assert (site / "img" / "range_test_accuracy.png").exists()


def test_every_figure_is_used_and_every_used_figure_exists():
    pages = {p: p.read_text() for p in DOCS.glob("*.md")}
    links = (m for text in pages.values()
             for m in re.findall(r"\]\((?:\./)?(img/[^)\s]+)", text))
    used = set(links)
    on_disk = {f"img/{p.name}" for p in (DOCS / "img").glob("*.png")}
    assert used and used <= on_disk, used - on_disk
    assert on_disk <= used, on_disk - used
