"""What one notebook run produced (:class:`ReportResult`) and the runner's two ways to stop early."""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone


class ReportError(ValueError):
    """Bad input to the runner (unknown notebook, parameter or profile; unwritable output)."""


class ReportsInterrupted(Exception):
    """SIGINT or SIGTERM stopped the run: ``kept`` were committed before the signal, ``dropped``
    were running or queued and left no trace (their previous pages, if any, are untouched)."""

    def __init__(self, signal_name: str, kept: list, dropped: list[str], output):
        self.signal_name, self.kept, self.dropped, self.output = signal_name, kept, dropped, output
        super().__init__(self.line())

    def line(self) -> str:
        """One line saying what was kept."""
        kept = ", ".join(r.name for r in self.kept)
        dropped = ", ".join(self.dropped)
        return (f"interrupted by {self.signal_name}: kept {len(self.kept)} report(s) finished "
                f"before the signal{f' ({kept})' if kept else ''}; stopped "
                f"{len(self.dropped)} unfinished{f' ({dropped})' if dropped else ''}; "
                f"{self.output}/index.html lists exactly the pages on disk")


@dataclass
class ReportResult:
    """The outcome of one notebook: ``status`` is "ok" or "failed".

    ``error`` (failures only) holds ``cell`` (0-based index into the notebook's own cells; for a
    dead kernel the cell that was running), ``execution_count``, ``ename`` and ``evalue``.
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
    html_sha256: str | None = None  # of the page ``html`` names, as committed

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def message(self) -> str:
        """``ok in 12.3 s`` or ``failed in 3.1 s at cell 3 (In [3]): ValueError: boom``."""
        if self.ok:
            return f"ok in {self.seconds:.1f} s"
        where = cell_location(self.error)
        return (f"failed in {self.seconds:.1f} s{' at ' + where if where else ''}: "
                f"{self.error.get('ename')}: {self.error.get('evalue')}")

    def describe(self) -> str:
        return f"{self.name}: {self.message()}"


def cell_location(error: dict | None) -> str:
    """``cell 3 (In [4])``, or "" when the failure is not tied to a cell."""
    e = error or {}
    if e.get("cell") is None:
        return ""
    count = e.get("execution_count")
    return f"cell {e['cell']}" + ("" if count is None else f" (In [{count}])")


def error_outside_cell(e: BaseException) -> dict:
    """A failure that happened outside any cell."""
    return {"cell": None, "execution_count": None, "ename": type(e).__name__, "evalue": str(e)}


def utc_now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
