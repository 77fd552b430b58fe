"""The report runner: papermill execution, offline HTML, index/summary/manifest, failures."""
from __future__ import annotations

import json
import os
import re
from types import SimpleNamespace

import nbformat
import pytest

from recsys_lab import cli
from recsys_lab.reports import (RECORD_MIME, ReportError, math_to_mathml, parse_value,
                                read_records, run_reports)

GOOD_PARAMS = 'PROFILE = "quick"\nINTERACTIVE = False\nN = 3'
GOOD_PLOT = ("import plotly.graph_objects as go\n"
             "fig = go.Figure(go.Bar(x=list(range(N)), y=[i * i for i in range(N)]))\n"
             "fig.show()")
GOOD_RECORD = ("import os\nfrom recsys_lab.reports import record\n"
               "record(n=N, squares=sum(i * i for i in range(N)), profile=PROFILE,\n"
               "       interactive=INTERACTIVE, cwd=os.path.basename(os.getcwd()),\n"
               "       renderer=os.environ.get('PLOTLY_RENDERER'),\n"
               "       blas=os.environ.get('OPENBLAS_NUM_THREADS'));")
PREVIOUS_HTML = b"<html><body>previous good report of 01_bad</body></html>\n"
CDN_SCRIPT = re.compile(r"""<script[^>]*\bsrc=["']?(https?:)?//""", re.I)


def leftovers(directory):
    """Temp files an interrupted or failed atomic write would leave behind."""
    return [p.name for p in directory.iterdir() if p.name.startswith(".") or p.suffix == ".tmp"]


@pytest.fixture(scope="module")
def run(tmp_path_factory, make_notebook):
    root = tmp_path_factory.mktemp("run")
    nbs, out = root / "notebooks", root / "reports"
    make_notebook(nbs / "00_good.ipynb", GOOD_PLOT, GOOD_RECORD, parameters=GOOD_PARAMS)
    make_notebook(nbs / "01_bad.ipynb", "x = 1", "raise ValueError('boom')", "y = 2",
                  parameters=GOOD_PARAMS)
    make_notebook(nbs / "02_dies.ipynb", "import os\nos._exit(1)", parameters=GOOD_PARAMS)
    make_notebook(nbs / "03_after.ipynb", "from recsys_lab.reports import record\nrecord(after=N);",
                  parameters=GOOD_PARAMS)
    out.mkdir()
    (out / "01_bad.html").write_bytes(PREVIOUS_HTML)  # a good report from an earlier run
    # two kernels at once (the parallel path, with its per-kernel thread environment), from
    # relative paths as `make reports` passes them: papermill's chdir must not break the others
    cwd = os.getcwd()
    os.chdir(root)
    try:
        results = run_reports("notebooks", "reports", profile="quick", params={"N": 4},
                              progress=False, jobs=2)
    finally:
        os.chdir(cwd)
    assert [r.name for r in results] == ["00_good", "01_bad", "02_dies", "03_after"]
    return SimpleNamespace(nbs=nbs, out=out, results={r.name: r for r in results})


@pytest.mark.slow
def test_good_notebook_exported_offline(run):
    res = run.results["00_good"]
    assert res.ok, res.describe()
    page = (run.out / "00_good.html").read_text()
    assert "js-plotly-plot" in page and "Plotly.newPlot" in page  # figure + inlined plotly.js
    assert CDN_SCRIPT.search(page) is None  # nothing to fetch: works offline
    assert "import(\"http" not in page and "require.js" not in page
    assert (run.out / "00_good.ipynb").exists()


@pytest.mark.slow
def test_records_read_back(run):
    n = 4  # the -p override of N = 3
    expected = {"n": n, "squares": sum(i * i for i in range(n)), "profile": "quick",
                "interactive": False, "cwd": "notebooks", "renderer": "plotly_mimetype+notebook",
                "blas": str(max(1, (os.cpu_count() or 1) // 2))}
    assert read_records(run.out / "00_good.ipynb") == expected
    assert run.results["00_good"].records == expected
    manifest = json.loads((run.out / "manifest.json").read_text())["reports"]
    assert manifest["00_good"]["records"] == expected
    summary = (run.out / "summary.md").read_text()
    assert f"| 00_good | squares | {expected['squares']} |" in summary
    assert "| 01_bad | failed |" in summary


@pytest.mark.slow
def test_failure_recorded_and_previous_report_kept(run):
    res = run.results["01_bad"]
    assert res.status == "failed"
    assert res.error["ename"] == "ValueError" and res.error["evalue"] == "boom"
    source = nbformat.read(str(run.nbs / "01_bad.ipynb"), as_version=4)
    assert res.error["cell"] == 3
    assert "raise ValueError" in source.cells[res.error["cell"]].source
    assert (run.out / "01_bad.html").read_bytes() == PREVIOUS_HTML  # byte-for-byte untouched
    assert not (run.out / "01_bad.ipynb").exists()
    failed = nbformat.read(str(run.out / "01_bad.failed.ipynb"), as_version=4)
    assert any(o.get("ename") == "ValueError" for c in failed.cells for o in c.get("outputs", []))


@pytest.mark.slow
def test_dead_kernel_names_notebook_and_cell_and_run_continues(run):
    res = run.results["02_dies"]
    source = nbformat.read(str(run.nbs / "02_dies.ipynb"), as_version=4)
    assert res.status == "failed" and res.error["ename"] == "DeadKernelError"
    assert res.error["cell"] == 2 and "os._exit(1)" in source.cells[2].source
    assert res.describe().startswith("02_dies: failed") and "at cell 2" in res.describe()
    assert "kernel of 02_dies died while running cell 2" in res.error["evalue"]
    assert not (run.out / "02_dies.html").exists()
    assert run.results["03_after"].ok and run.results["03_after"].records == {"after": 4}
    assert list(run.results) == ["00_good", "01_bad", "02_dies", "03_after"]


@pytest.mark.slow
def test_index_lists_every_report(run):
    index = (run.out / "index.html").read_text()
    assert "href='00_good.html'" in index and "href='01_bad.html'" in index
    assert "cell 3" in index and "ValueError: boom" in index and "failed" in index
    assert "href='01_bad.failed.ipynb'" in index and "DeadKernelError" in index
    assert "href='03_after.html'" in index
    assert "<script" not in index and "http" not in index  # self-contained
    assert leftovers(run.out) == []


@pytest.mark.slow
def test_cli_partial_run_fails_and_merges(run, capsys):
    code = cli.main(["reports", "--notebooks", str(run.nbs), "--output", str(run.out),
                     "--only", "01_bad"])
    err = capsys.readouterr().err
    assert code == cli.EXIT_FAILED == 1
    assert "[1/1] 01_bad: failed" in err
    assert re.search(r"01_bad: failed .* at cell 3 \(In \[\d+\]\): ValueError: boom", err)
    assert (run.out / "01_bad.html").read_bytes() == PREVIOUS_HTML
    # the entries of 00_good, not run this time, are kept
    index, summary = (run.out / "index.html").read_text(), (run.out / "summary.md").read_text()
    assert "href='00_good.html'" in index and "| 00_good | ok |" in summary
    assert "| 00_good | squares | 14 |" in summary
    assert leftovers(run.out) == []


def test_unknown_parameter_fails_before_running(tmp_path, make_notebook):
    make_notebook(tmp_path / "nb" / "00_a.ipynb", "x = 1")
    out = tmp_path / "out"
    with pytest.raises(ReportError, match=r"00_a has no parameter\(s\) NOPE.*PROFILE"):
        run_reports(tmp_path / "nb", out, params={"NOPE": 1}, progress=False)
    assert not out.exists()
    with pytest.raises(SystemExit) as e:
        cli.main(["reports", "--notebooks", str(tmp_path / "nb"), "--output", str(out),
                  "-p", "NOPE", "1"])
    assert e.value.code == cli.EXIT_USAGE == 2
    assert not out.exists()


def test_unknown_notebook_and_profile(tmp_path, make_notebook):
    make_notebook(tmp_path / "nb" / "00_a.ipynb", "x = 1")
    make_notebook(tmp_path / "nb" / "01_b.ipynb", "x = 1")
    with pytest.raises(ReportError, match=r"unknown notebook\(s\) 'zz'; available: 00_a, 01_b"):
        run_reports(tmp_path / "nb", tmp_path / "out", only=["01_b", "zz"], progress=False)
    with pytest.raises(ReportError, match="unknown profile 'huge'"):
        run_reports(tmp_path / "nb", tmp_path / "out", profile="huge", progress=False)
    with pytest.raises(ReportError, match="jobs"):
        run_reports(tmp_path / "nb", tmp_path / "out", jobs=0, progress=False)
    with pytest.raises(ReportError, match="notebooks directory not found"):
        run_reports(tmp_path / "missing", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()


def test_read_records_merges_in_cell_order(tmp_path):
    v4 = nbformat.v4
    cells = [v4.new_code_cell("", outputs=[
                 v4.new_output("display_data", data={RECORD_MIME: {"a": 1, "b": 2},
                                                     "text/plain": "{}"})]),
             v4.new_code_cell("", outputs=[v4.new_output("stream", text="x")]),
             v4.new_code_cell("", outputs=[
                 v4.new_output("display_data", data={RECORD_MIME: {"b": 3, "c": "z"}})])]
    path = tmp_path / "x.ipynb"
    nbformat.write(v4.new_notebook(cells=cells), str(path))
    assert read_records(path) == {"a": 1, "b": 3, "c": "z"}


@pytest.mark.parametrize("text, value", [("10", 10), ("0.5", 0.5), ("False", False),
                                         ("None", None), ("online-retail", "online-retail"),
                                         ("[1, 2]", [1, 2]), ("a b", "a b")])
def test_parse_value(text, value):
    assert parse_value(text) == value


def test_math_to_mathml_converts_math_only():
    l2m = pytest.importorskip("latex2mathml.converter")
    md = ("Cost $5 and $10; `$x$` stays; $x_i^2$ inline and\n"
          "$$\\frac{a}{b}$$\n```\n$not math$\n```")
    html = math_to_mathml(md)
    assert html.startswith("Cost $5 and $10; `$x$` stays; <math")
    assert "```\n$not math$\n```" in html
    assert l2m.convert("x_i^2", display="inline") in html  # no markdown-special text inside
    assert l2m.convert("\\frac{a}{b}", display="block") in html
    assert html.count("<math") == 2
    assert math_to_mathml("a *b* $\\badmacro{$ c") == "a *b* $\\badmacro{$ c"  # left as source


def test_stale_staging_removed_live_one_kept(tmp_path):
    import fcntl

    from recsys_lab.reports.runner import remove_stale_staging, staging_dir

    dead = tmp_path / ".recsys-lab-staging-dead"
    dead.mkdir()
    (dead / ".lock").touch()
    (dead / "00_a.html").write_text("half a run")
    with staging_dir(tmp_path) as live:  # this run holds its lock
        assert remove_stale_staging(tmp_path) == [dead]
        assert live.exists() and not dead.exists()
        with open(live / ".lock", "rb") as f, pytest.raises(BlockingIOError):
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert not live.exists()


def test_reconcile_repairs_an_index_cut_short_by_sigkill(tmp_path):
    """SIGKILL between a page's rename and the manifest's: the next run's index tells the truth."""
    from recsys_lab.reports.index import reconcile, sha256_of

    v4 = nbformat.v4
    (tmp_path / "00_a.html").write_text("page of the run before")
    (tmp_path / "01_b.html").write_text("page of b")
    entries = {"00_a": {"status": "failed", "html": "00_a.html", "seconds": 1.0,
                        "html_sha256": sha256_of(tmp_path / "00_a.html"), "records": {}},
               "01_b": {"status": "ok", "html": "01_b.html", "seconds": 1.0, "records": {}},
               "02_c": {"status": "ok", "html": "02_c.html", "seconds": 1.0,
                        "html_sha256": "0" * 64, "records": {"x": 1}}}
    # the killed run had committed a new 00_a (page and executed notebook), not its manifest
    (tmp_path / "00_a.html").write_text("new page")
    nbformat.write(v4.new_notebook(cells=[v4.new_code_cell("", outputs=[v4.new_output(
        "display_data", data={RECORD_MIME: {"ndcg": 0.3}})])]), str(tmp_path / "00_a.ipynb"))
    fixed = reconcile(entries, tmp_path)
    assert fixed["00_a"]["status"] == "ok" and fixed["00_a"]["records"] == {"ndcg": 0.3}
    assert fixed["00_a"]["html_sha256"] == sha256_of(tmp_path / "00_a.html")
    assert fixed["01_b"]["html_sha256"] == sha256_of(tmp_path / "01_b.html")  # filled in
    assert fixed["02_c"]["html"] is None  # its page is gone: no link to nothing
