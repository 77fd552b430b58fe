"""Reports: notebooks record their key numbers; the runner executes notebooks into reports/.

``record()`` runs inside a notebook. ``run_reports()`` executes ``notebooks/NN_*.ipynb`` with
papermill, exports offline HTML with nbconvert and writes ``index.html``, ``summary.md`` and
``manifest.json`` next to the reports.
"""
from __future__ import annotations

import ast
import contextlib
import html
import json
import math
import multiprocessing
import os
import re
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .fileio import atomic_write

RECORD_MIME = "application/vnd.recsys-lab.record+json"


def _jsonable(v):
    if hasattr(v, "item"):  # numpy scalar
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (bool, int, float, str)) or v is None:
        return v
    raise TypeError(f"record() takes numbers and strings, got {type(v).__name__}")


def record(**values) -> None:
    """Record a notebook's key numbers for the report summary and the tests.

    Emits one display output with a private MIME type (plus a plain-text echo), which the
    report runner and tests read back from the executed notebook.
    """
    data = {k: _jsonable(v) for k, v in values.items()}
    try:
        from IPython.display import display
        display({RECORD_MIME: data, "text/plain": json.dumps(data, indent=1)}, raw=True)
    except ImportError:  # pragma: no cover - outside IPython
        pass


# --------------------------------------------------------------------------------------------
# The report runner: papermill executes each notebook, nbconvert exports offline HTML, and
# reports/ gets index.html, summary.md and manifest.json (merged across partial runs).
# --------------------------------------------------------------------------------------------

PROFILES = ("quick", "full")
TEMPLATES = Path(__file__).resolve().parent / "templates"
HTML_TEMPLATE = "recsys_lab_html"  # templates/recsys_lab_html: lab/index.html.j2 minus CDN scripts
KERNEL_ENV = {"PLOTLY_RENDERER": "plotly_mimetype+notebook"}  # plotly.js inlined once per report
MANIFEST, INDEX, SUMMARY = "manifest.json", "index.html", "summary.md"
NOTEBOOK_GLOB = "[0-9][0-9]_*.ipynb"


class ReportError(ValueError):
    """Bad input to the runner (unknown notebook, unknown parameter, bad profile)."""


@dataclass
class ReportResult:
    """The outcome of one notebook: ``status`` is "ok" or "failed".

    ``error`` (failures only) holds ``cell`` (0-based index into the notebook's own cells),
    ``execution_count``, ``ename`` and ``evalue``.
    """

    name: str
    status: str
    seconds: float
    profile: str
    timestamp: str
    parameters: dict = field(default_factory=dict)
    records: dict = field(default_factory=dict)
    error: dict | None = None
    html: str | None = None  # file name inside the output dir (the last good one for failures)
    executed: str | None = None  # the executed .ipynb in the output dir (NN_name.failed.ipynb)

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def message(self) -> str:
        """``ok in 12.3 s`` or ``failed in 3.1 s at cell 3 (In [3]): ValueError: boom``."""
        if self.ok:
            return f"ok in {self.seconds:.1f} s"
        where = _where(self.error)
        return (f"failed in {self.seconds:.1f} s{' at ' + where if where else ''}: "
                f"{self.error.get('ename')}: {self.error.get('evalue')}")

    def describe(self) -> str:
        return f"{self.name}: {self.message()}"


def _where(error: dict | None) -> str:
    """``cell 3 (In [4])``, or "" when the failure is not tied to a cell (e.g. a dead kernel)."""
    e = error or {}
    if e.get("cell") is None:
        return ""
    count = e.get("execution_count")
    return f"cell {e['cell']}" + ("" if count is None else f" (In [{count}])")


# ---- files -------------------------------------------------------------------------------


def read_records(executed_nb_path) -> dict:
    """The values a notebook passed to :func:`record`, read from its executed ``.ipynb``.

    Several ``record()`` calls are merged in cell order (a later key wins).
    """
    import nbformat

    nb = nbformat.read(str(executed_nb_path), as_version=4)
    out = {}
    for cell in nb.cells:
        for o in cell.get("outputs", []):
            data = o.get("data", {})
            if RECORD_MIME in data:
                rec = data[RECORD_MIME]
                out.update(json.loads(rec) if isinstance(rec, str) else dict(rec))
    return out


# ---- selection and parameters ------------------------------------------------------------


def list_notebooks(notebooks_dir="notebooks") -> list[Path]:
    """The report notebooks ``NN_*.ipynb`` of ``notebooks_dir``, sorted by name."""
    d = Path(notebooks_dir)
    if not d.is_dir():
        raise ReportError(f"notebooks directory not found: {d}")
    return sorted(d.glob(NOTEBOOK_GLOB))


def select_notebooks(notebooks: list[Path], only=None) -> list[Path]:
    """Keep the notebooks named in ``only`` (file name or stem), in sorted order."""
    if only is None:
        return list(notebooks)
    only = [only] if isinstance(only, str) else list(only)
    by_name = {**{p.stem: p for p in notebooks}, **{p.name: p for p in notebooks}}
    unknown = [n for n in only if n not in by_name]
    if unknown:
        known = ", ".join(p.stem for p in notebooks) or "(none)"
        raise ReportError(f"unknown notebook(s) {', '.join(map(repr, unknown))}; "
                          f"available: {known}")
    wanted = {by_name[n] for n in only}
    return [p for p in notebooks if p in wanted]


def parse_value(text: str):
    """A ``-p KEY VALUE`` value: a Python literal (``10``, ``0.5``, ``False``), else the string."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return text


def notebook_parameters(notebook) -> list[str]:
    """Names assigned in the notebook's cell tagged ``parameters`` (papermill's own parser)."""
    import nbformat
    from papermill.translators import PythonTranslator

    nb = nbformat.read(str(notebook), as_version=4)
    for cell in nb.cells:
        if "parameters" in cell.metadata.get("tags", []):
            return [p.name for p in PythonTranslator.inspect(cell)]
    return []


def check_parameters(notebooks: list[Path], params: dict) -> None:
    """Raise :class:`ReportError` if a notebook's ``parameters`` cell lacks one of ``params``."""
    problems = []
    for nb in notebooks:
        declared = notebook_parameters(nb)
        unknown = sorted(set(params) - set(declared))
        if unknown:
            problems.append(f"{nb.stem} has no parameter(s) {', '.join(unknown)} "
                            f"(declared: {', '.join(declared) or 'none'})")
    if problems:
        raise ReportError("unknown parameter(s): " + "; ".join(problems))


# ---- execution and export -----------------------------------------------------------------


@contextlib.contextmanager
def _environ(**env):
    """Set environment variables (inherited by the kernel) for the duration of the block.

    Keys that already hold their value are left alone (the report runner sets them once for
    all its workers).
    """
    env = {k: v for k, v in env.items() if os.environ.get(k) != v}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute_notebook(notebook, executed_path, parameters: dict, cwd) -> None:
    """Run ``notebook`` with papermill into ``executed_path``; raises PapermillExecutionError."""
    import papermill

    with _environ(**KERNEL_ENV):
        papermill.execute_notebook(
            str(notebook), str(executed_path), parameters=parameters, kernel_name="python3",
            language="python", cwd=str(cwd), progress_bar=False, log_output=False,
            request_save_on_cell_execute=False, store_widget_state=False,
            # CRITICAL: no TCP-transport warning, and no "KeyboardInterrupt caught in kernel" when
            # jupyter_client interrupts a kernel before shutting it down (cell errors reach us anyway)
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])


# <script src="http..."></script> in outputs, e.g. the MathJax CDN tag plotly adds to every figure
_CDN_SCRIPT = re.compile(r"""<script\b[^>]*\bsrc=["']?(?:https?:)?//[^>]*>\s*</script>""", re.I)


# LaTeX in markdown: $$display$$ and $inline$ (pandoc's rule: no space inside the delimiters,
# no digit after the closing $); fenced code and `code spans` are left alone.
_CODE = re.compile(r"(```.*?```|~~~.*?~~~|`[^`\n]*`)", re.S)
_MATH = re.compile(r"\$\$(.+?)\$\$|(?<![\\$])\$(?=\S)([^$\n]+?)(?<=\S)\$(?!\d)", re.S)
_MD_SPECIAL = str.maketrans({c: f"&#{ord(c)};" for c in "*_\\`|$~[]"})


def math_to_mathml(markdown: str) -> str:
    """Replace LaTeX math in markdown by MathML, which browsers draw with no script or network.

    Uses ``latex2mathml`` when installed (else returns ``markdown`` unchanged); an expression
    it cannot convert stays as LaTeX source.
    """
    try:
        from latex2mathml.converter import convert
    except ImportError:
        return markdown

    def one(m):
        display = m.group(1) is not None
        try:
            mathml = convert((m.group(1) if display else m.group(2)).strip(),
                             display="block" if display else "inline")
        except Exception:
            return m.group(0)
        # markdown must not re-read the text nodes (x_i, a*b, |T_u|) as emphasis or tables
        return re.sub(r">([^<]+)<", lambda t: ">" + t.group(1).translate(_MD_SPECIAL) + "<",
                      mathml)

    parts = _CODE.split(markdown)  # odd indices are code
    return "".join(p if i % 2 else _MATH.sub(one, p) for i, p in enumerate(parts))


def export_html(executed_nb_path, title: str | None = None) -> str:
    """Self-contained HTML of an executed notebook: no CDN scripts, plotly.js inline.

    The template drops nbconvert's require.js/MathJax/mermaid tags; CDN ``<script src>`` tags
    inside outputs (plotly's MathJax for LaTeX axis labels) are removed too, as offline they
    cannot load. LaTeX in markdown becomes MathML (:func:`math_to_mathml`).
    """
    import nbformat
    from nbconvert import HTMLExporter

    nb = nbformat.read(str(executed_nb_path), as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = math_to_mathml(cell.source)
        for out in cell.get("outputs", []):
            if isinstance(out.get("data", {}).get("text/html"), str):
                out["data"]["text/html"] = _CDN_SCRIPT.sub("", out["data"]["text/html"])
    exporter = HTMLExporter(template_name=HTML_TEMPLATE, extra_template_basedirs=[str(TEMPLATES)])
    body, _ = exporter.from_notebook_node(
        nb, resources={"metadata": {"name": title or Path(executed_nb_path).stem}})
    return body


def _source_cell_index(executed_nb_path, index: int) -> int:
    """Map a cell index of the papermill output back to the input notebook (drop injected cells)."""
    import nbformat

    with contextlib.suppress(Exception):
        cells = nbformat.read(str(executed_nb_path), as_version=4).cells
        # papermill's error markers are inserted after it computed ``index``; skip them first
        cells = [c for c in cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]
        injected = ["injected-parameters" in c.metadata.get("tags", []) for c in cells]
        return index - sum(injected[:index])
    return index


def _error(e: BaseException) -> dict:
    """A failure that happened outside any cell."""
    return {"cell": None, "execution_count": None, "ename": type(e).__name__, "evalue": str(e)}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def run_one(notebook, output, staging, profile="quick", params=None) -> ReportResult:
    """Execute one notebook and, if it succeeds, move its HTML and executed .ipynb into ``output``.

    On failure nothing in ``output`` is replaced except ``NN_name.failed.ipynb`` (the executed
    notebook with the traceback, for inspection).
    """
    from papermill.exceptions import PapermillExecutionError

    notebook, output, staging = Path(notebook), Path(output), Path(staging)
    name = notebook.stem
    parameters = {"PROFILE": profile, "INTERACTIVE": False, **(params or {})}
    executed = staging / notebook.name
    t0, stamp = time.perf_counter(), _now()
    res = ReportResult(name=name, status="ok", seconds=0.0, profile=profile, timestamp=stamp,
                       parameters=parameters)
    try:
        execute_notebook(notebook, executed, parameters, cwd=notebook.parent)
        page = export_html(executed, title=name)
        res.records = read_records(executed)
        res.html = atomic_write(output / f"{name}.html", page).name
        res.executed = atomic_write(output / f"{name}.ipynb", executed.read_bytes()).name
        with contextlib.suppress(FileNotFoundError):
            os.unlink(output / f"{name}.failed.ipynb")
    except PapermillExecutionError as e:
        res.status = "failed"
        res.error = {"cell": _source_cell_index(executed, e.cell_index),
                     "execution_count": e.exec_count, "ename": e.ename, "evalue": e.evalue}
    except Exception as e:  # dead kernel, export failure, ...: still run the other notebooks
        res.status, res.error = "failed", _error(e)
    res.seconds = round(time.perf_counter() - t0, 2)
    if not res.ok:
        if executed.exists():
            res.executed = atomic_write(output / f"{name}.failed.ipynb", executed.read_bytes()).name
        if (output / f"{name}.html").exists():
            res.html = f"{name}.html"  # the previous good report, left untouched
    return res


# ---- manifest, index, summary --------------------------------------------------------------


def load_manifest(output) -> dict:
    """``{name: entry}`` from ``output/manifest.json`` ({} if absent or unreadable)."""
    p = Path(output) / MANIFEST
    try:
        return dict(json.loads(p.read_text())["reports"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return {}


def _merge(entries: dict, res: ReportResult) -> None:
    entry = asdict(res)
    prev = entries.get(res.name, {})
    if res.ok:
        entry["last_ok"] = {k: entry[k] for k in ("timestamp", "seconds", "profile", "records")}
    else:
        entry["last_ok"] = prev.get("last_ok")
        if entry["last_ok"]:
            entry["records"] = entry["last_ok"]["records"]
    entries[res.name] = entry


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else str(v)


def render_summary(entries: dict) -> str:
    """Markdown: one status table, then every recorded number as ``| notebook | key | value |``."""
    lines = ["# Report summary", "", "| notebook | status | seconds | profile | run at |",
             "|---|---|---|---|---|"]
    for name, e in entries.items():
        lines.append(f"| {name} | {e['status']} | {e['seconds']:.1f} | {e['profile']} "
                     f"| {e['timestamp']} |")
    lines += ["", "## Recorded numbers", "", "| notebook | key | value |", "|---|---|---|"]
    for name, e in entries.items():
        last = e.get("last_ok") or {}
        stale = "" if e["status"] == "ok" else f" (last good run {last.get('timestamp')})"
        for k, v in (e.get("records") or {}).items():
            lines.append(f"| {name}{stale} | {k} | {_fmt(v).replace('|', chr(92) + '|')} |")
    return "\n".join(lines) + "\n"


_CSS = """body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:72rem;color:#222}
table{border-collapse:collapse;width:100%}th,td{border-bottom:1px solid #ddd;padding:.4rem .6rem;
text-align:left;vertical-align:top}th{background:#f4f4f4}.ok{color:#1a7f37;font-weight:600}
.failed{color:#cf222e;font-weight:600}.none{color:#888}code{font-size:.9em}
td.num{text-align:right}"""


def render_index(entries: dict, names: list[str]) -> str:
    """Self-contained HTML index (inline CSS, no scripts) of the reports in ``names`` order."""
    esc = html.escape
    rows = []
    for name in names:
        e = entries.get(name)
        if e is None:
            rows.append(f"<tr><td>{esc(name)}</td><td class='none'>not run</td>"
                        "<td></td><td></td><td></td><td></td></tr>")
            continue
        link = f"<a href='{esc(e['html'])}'>{esc(name)}</a>" if e.get("html") else esc(name)
        detail = ""
        if e["status"] != "ok":
            err = e.get("error") or {}
            where = _where(err)
            detail = (f"{esc(where) + ': ' if where else ''}<code>{esc(str(err.get('ename')))}: "
                      f"{esc(str(err.get('evalue')))}</code>")
            notes = []
            if e.get("executed"):
                notes.append(f"<a href='{esc(e['executed'])}'>executed notebook</a>")
            if e.get("html") and e.get("last_ok"):
                notes.append(f"the link shows the last good run ({esc(e['last_ok']['timestamp'])})")
            detail += ("<br>" + "; ".join(notes)) if notes else ""
        rows.append(f"<tr><td>{link}</td><td class='{esc(e['status'])}'>{esc(e['status'])}</td>"
                    f"<td class='num'>{e['seconds']:.1f} s</td><td>{esc(e['profile'])}</td>"
                    f"<td>{esc(e['timestamp'])}</td><td>{detail}</td></tr>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>recsys_lab reports</title><style>{_CSS}</style></head><body>\n"
            "<h1>recsys_lab reports</h1>\n<p>Notebooks executed with papermill; each report is a "
            "self-contained HTML page that works offline. Numbers: "
            "<a href='summary.md'>summary.md</a>.</p>\n<table><thead><tr><th>report</th>"
            "<th>status</th><th>run time</th><th>profile</th><th>run at (UTC)</th><th>error</th>"
            "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
            f"<p class='none'>Generated {esc(_now())} by <code>recsys-lab reports</code>.</p>"
            "\n</body></html>\n")


def write_index(output, entries: dict, names: list[str]) -> None:
    """Write manifest.json, index.html and summary.md atomically."""
    output = Path(output)
    entries = {n: entries[n] for n in sorted(entries) if n in set(names)}
    atomic_write(output / MANIFEST, json.dumps({"version": 1, "reports": entries}, indent=1))
    atomic_write(output / INDEX, render_index(entries, names))
    atomic_write(output / SUMMARY, render_summary(entries))


# ---- the runner ---------------------------------------------------------------------------


def default_jobs() -> int:
    """Notebooks run at once by default: one per core (notebooks train with one thread), at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def thread_env(jobs: int) -> dict[str, str]:
    """BLAS/OpenMP threads per kernel so that ``jobs`` kernels share the cores without spinning."""
    n = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    return {k: n for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


def run_reports(notebooks_dir="notebooks", output="reports", profile="quick", only=None,
                params=None, progress=True, jobs=1) -> list[ReportResult]:
    """Execute every ``notebooks_dir/NN_*.ipynb`` (or those named in ``only``) into ``output``.

    Each notebook runs with papermill (kernel ``python3``, cwd = ``notebooks_dir``, parameters
    ``PROFILE=profile, INTERACTIVE=False, **params``); its offline HTML and executed notebook
    replace ``output/NN_name.{html,ipynb}`` only on success. A failure is recorded (cell, error)
    and the other notebooks still run. ``index.html``, ``summary.md`` and ``manifest.json`` are
    rewritten after each notebook, keeping the entries of notebooks not run this time.
    ``jobs`` kernels run at once (longest notebook first, by its last recorded run time), each
    with ``cores // jobs`` BLAS threads; latencies measured beside another notebook are a little
    pessimistic, so ``jobs=1`` gives the quietest numbers.
    Bad input (profile, notebook name, parameter name, jobs) raises :class:`ReportError` before
    anything runs or is written.
    """
    if profile not in PROFILES:
        raise ReportError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if not isinstance(jobs, int) or jobs < 1:
        raise ReportError(f"jobs must be a positive integer, got {jobs!r}")
    params = dict(params or {})
    all_nbs = list_notebooks(notebooks_dir)
    if not all_nbs:
        raise ReportError(f"no notebooks matching {NOTEBOOK_GLOB} in {notebooks_dir}")
    chosen = select_notebooks(all_nbs, only)
    check_parameters(chosen, params)

    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    entries, names = load_manifest(output), [p.stem for p in all_nbs]
    # longest first (last known time for this profile) keeps every worker busy to the end
    last = {n: e.get("seconds", 0.0) for n, e in entries.items() if e.get("profile") == profile}
    order = sorted(chosen, key=lambda p: -last.get(p.stem, 0.0)) if jobs > 1 else chosen
    results = []

    def done(res: ReportResult) -> None:
        results.append(res)
        _merge(entries, res)
        write_index(output, entries, names)
        if progress:
            print(f"[{len(results)}/{len(chosen)}] {res.describe()}", file=sys.stderr, flush=True)

    env = {**KERNEL_ENV, **(thread_env(jobs) if jobs > 1 else {})}
    with tempfile.TemporaryDirectory(prefix="recsys-lab-reports-") as staging, _environ(**env):
        if jobs == 1:
            for nb in order:
                done(run_one(nb.resolve(), output, staging, profile=profile, params=params))
        else:
            # one process per notebook at a time: papermill changes the process's working
            # directory while it runs a notebook, so two notebooks must not share a process
            ctx = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(max_workers=jobs, mp_context=ctx) as pool:
                futures = {pool.submit(run_one, nb.resolve(), output, staging, profile, params): nb
                           for nb in order}
                for fut in as_completed(futures):
                    try:
                        res = fut.result()
                    except Exception as e:  # the worker process itself died
                        nb = futures[fut]
                        res = ReportResult(name=nb.stem, status="failed", seconds=0.0, profile=profile,
                                           timestamp=_now(), parameters=params, error=_error(e))
                        if (output / f"{nb.stem}.html").exists():
                            res.html = f"{nb.stem}.html"
                    done(res)
    rank = {p.stem: i for i, p in enumerate(chosen)}
    return sorted(results, key=lambda r: rank[r.name])
