"""A report opened in a real headless browser with no network draws its plotly chart."""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from recsys_lab.reports import run_reports

REPO = Path(__file__).resolve().parents[1]

QUICKSTART = REPO / "notebooks" / "00_quickstart.ipynb"
PLOT = ("import plotly.express as px\n"
        "px.scatter(x=[1, 2, 3], y=[3, 1, 2], title='offline check').show()")


def chromium() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None and Path("/usr/bin/chromium").exists():
        path = "/usr/bin/chromium"
    if path is None:
        msg = "chromium not installed (apt-get install chromium; .ci/run does it)"
        if os.environ.get("CI"):
            pytest.fail(msg + ": a missing browser must not pass CI")
        pytest.skip(msg)
    return path


def dump_dom(browser: str, page: Path, profile_dir: Path) -> str:
    """The DOM after scripts ran, in headless Chromium with every host unresolvable."""
    cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
           "--disable-background-networking", "--disable-component-update", "--no-first-run",
           "--disable-sync", f"--user-data-dir={profile_dir}",
           "--host-resolver-rules=MAP * ~NOTFOUND", "--virtual-time-budget=10000",
           "--dump-dom", page.resolve().as_uri()]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


@pytest.mark.slow
def test_report_renders_plotly_offline(tmp_path, make_notebook):
    browser = chromium()
    if QUICKSTART.exists():
        notebooks, name = QUICKSTART.parent, QUICKSTART.stem
    else:  # the real quick-start notebook is not there yet: a stand-in with a plotly figure
        notebooks, name = tmp_path / "notebooks", "00_plot"
        make_notebook(notebooks / f"{name}.ipynb", PLOT)
    out = tmp_path / "reports"
    [res] = run_reports(notebooks, out, only=[name], progress=False)
    assert res.ok, res.describe()

    dom = dump_dom(browser, out / f"{name}.html", tmp_path / "chromium-profile")
    assert "js-plotly-plot" in dom  # the figure's div, classed by plotly.js
    assert 'class="main-svg"' in dom  # plotly.js ran and drew the SVG

    index_dom = dump_dom(browser, out / "index.html", tmp_path / "chromium-profile")
    assert f'href="{name}.html"' in index_dom
