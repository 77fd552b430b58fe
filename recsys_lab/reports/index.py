"""``manifest.json``, ``index.html`` and ``summary.md``: what the output directory holds.

The manifest keeps one entry per notebook (merged across partial runs) with the sha256 of the
page it links, so a reader (or the next run) can check that the index describes the pages on disk.
"""
from __future__ import annotations

import hashlib
import html
import json
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

from ..fileio import atomic_write
from .records import read_records
from .result import ReportResult, cell_location, utc_now

MANIFEST, INDEX, SUMMARY = "manifest.json", "index.html", "summary.md"


def sha256_of(path) -> str | None:
    """Hex sha256 of a file, None if it does not exist."""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except FileNotFoundError:
        return None


def load_manifest(output) -> dict:
    """``{name: entry}`` from ``output/manifest.json`` ({} if absent or unreadable)."""
    p = Path(output) / MANIFEST
    try:
        return dict(json.loads(p.read_text())["reports"])
    except (FileNotFoundError, ValueError, KeyError, TypeError):
        return {}


def reconcile(entries: dict, output) -> dict:
    """Make ``entries`` describe the pages on disk again after a run cut short by SIGKILL.

    A linked page that is gone loses its link; a page whose sha256 differs from its entry was
    committed by a run killed before it rewrote the manifest, and its entry is rebuilt from the
    executed notebook beside it. Entries written before pages carried hashes get the hash.
    """
    output = Path(output)
    for name, e in entries.items():
        page = e.get("html")
        digest = sha256_of(output / page) if page else None
        if page and digest is None:
            e["html"], e["html_sha256"] = None, None
        elif page and e.get("html_sha256") is None:
            e["html_sha256"] = digest
        elif page and digest != e["html_sha256"]:
            executed = output / f"{name}.ipynb"
            mtime = (output / page).stat().st_mtime
            e.update(status="ok", error=None, html_sha256=digest,
                     records=read_records(executed) if executed.exists() else {},
                     executed=executed.name if executed.exists() else None,
                     timestamp=datetime.fromtimestamp(mtime, timezone.utc).isoformat(
                         timespec="seconds"), note="recovered after an interrupted commit")
            e["last_ok"] = {k: e.get(k) for k in ("timestamp", "seconds", "profile", "records")}
    return entries


def merge(entries: dict, res: ReportResult) -> None:
    """Put ``res`` into ``entries``; a failure keeps the records of the last good run."""
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


def _error_detail(e: dict) -> str:
    esc = html.escape
    err = e.get("error") or {}
    where = cell_location(err)
    detail = (f"{esc(where) + ': ' if where else ''}<code>{esc(str(err.get('ename')))}: "
              f"{esc(str(err.get('evalue')))}</code>")
    notes = []
    if e.get("executed"):
        notes.append(f"<a href='{esc(e['executed'])}'>executed notebook</a>")
    if e.get("html") and e.get("last_ok"):
        notes.append(f"the link shows the last good run ({esc(str(e['last_ok']['timestamp']))})")
    return detail + (("<br>" + "; ".join(notes)) if notes else "")


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
        detail = "" if e["status"] == "ok" else _error_detail(e)
        rows.append(f"<tr><td>{link}</td><td class='{esc(e['status'])}'>{esc(e['status'])}</td>"
                    f"<td class='num'>{e['seconds']:.1f} s</td><td>{esc(e['profile'])}</td>"
                    f"<td>{esc(str(e['timestamp']))}</td><td>{detail}</td></tr>")
    return ("<!DOCTYPE html>\n<html lang='en'><head><meta charset='utf-8'>"
            f"<title>recsys_lab reports</title><style>{_CSS}</style></head><body>\n"
            "<h1>recsys_lab reports</h1>\n<p>Notebooks executed with papermill; each report is a "
            "self-contained HTML page that works offline. Numbers: "
            "<a href='summary.md'>summary.md</a>.</p>\n<table><thead><tr><th>report</th>"
            "<th>status</th><th>run time</th><th>profile</th><th>run at (UTC)</th><th>error</th>"
            "</tr></thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>\n"
            f"<p class='none'>Generated {esc(utc_now())} by <code>recsys-lab reports</code>.</p>"
            "\n</body></html>\n")


def write_index(output, entries: dict, names: list[str]) -> None:
    """Write manifest.json, index.html and summary.md atomically."""
    output = Path(output)
    entries = {n: entries[n] for n in sorted(entries) if n in set(names)}
    atomic_write(output / MANIFEST, json.dumps({"version": 1, "reports": entries}, indent=1))
    atomic_write(output / INDEX, render_index(entries, names))
    atomic_write(output / SUMMARY, render_summary(entries))
