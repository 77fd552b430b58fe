"""Reports: notebooks record their key numbers; the runner executes notebooks into reports/.

``record()`` runs inside a notebook (:mod:`.records`). ``run_reports()`` (:mod:`.runner`) executes
``notebooks/NN_*.ipynb`` with papermill in worker processes (:mod:`.worker`), exports offline HTML
(:mod:`.export`) and writes ``index.html``, ``summary.md`` and ``manifest.json`` (:mod:`.index`).
Recorded numbers are checked against committed values by :mod:`.expected`.
"""
from .export import export_html, math_to_mathml
from .index import INDEX, MANIFEST, SUMMARY, load_manifest, render_index, render_summary
from .records import RECORD_MIME, read_records, record, records_in
from .result import ReportError, ReportResult, ReportsInterrupted
from .runner import PROFILES, default_jobs, run_reports, thread_env
from .selection import check_parameters, list_notebooks, parse_value, select_notebooks

__all__ = ["INDEX", "MANIFEST", "PROFILES", "RECORD_MIME", "SUMMARY", "ReportError",
           "ReportResult", "ReportsInterrupted", "check_parameters", "default_jobs", "export_html",
           "list_notebooks", "load_manifest", "math_to_mathml", "parse_value", "read_records",
           "record", "records_in", "render_index", "render_summary", "run_reports",
           "select_notebooks", "thread_env"]
