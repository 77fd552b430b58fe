"""One notebook in its own process: papermill into the staging folder, offline HTML, a result.

    python -m recsys_lab.reports.worker JOB.json

A worker writes only inside the run's staging folder (the runner commits pages), leaves SIGINT to
the runner, and dies with it: ``PR_SET_PDEATHSIG`` on Linux plus a poll of the parent pid
everywhere. Dying (SIGTERM, or its runner gone) it takes its kernel and the kernel's own
children down first.
"""
from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path

from ..fileio import atomic_write
from .export import export_html
from .records import read_records
from .result import ReportResult, error_outside_cell, utc_now

KERNEL_ENV = {"PLOTLY_RENDERER": "plotly_mimetype+notebook"}  # plotly.js inlined once per report
PARENT_POLL_S = 0.5
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>


# ---- processes --------------------------------------------------------------------------------


def descendants(pid: int | None = None) -> list:
    """Every process below ``pid`` (default: this one), as psutil handles."""
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        return []


def kill_tree(procs: list, grace: float = 2.0) -> None:
    """SIGTERM each of ``procs``; SIGKILL those still alive after ``grace`` seconds."""
    import psutil

    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(procs, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(alive, timeout=grace)


# re-entrant: a second SIGTERM can land in the handler's own thread while it waits on the kernel
# (Linux sends the parent-death signal again as each thread of a dying runner exits); the nested
# call then finishes the exit itself instead of waiting on the call it interrupted
_dying = threading.RLock()


def _die(code: int) -> None:
    """Take the kernel (and what it started) down, then exit at once; safe from any thread."""
    if _dying.acquire(blocking=False):
        kill_tree(descendants())
        os._exit(code)
    while True:  # another thread is already on its way out
        time.sleep(1)


def die_with_parent(parent_pid: int) -> None:
    """Exit (with the kernel) as soon as the runner ``parent_pid`` is gone."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)

    def poll():  # also covers a runner that died before prctl, and systems without it
        while os.getppid() == parent_pid:
            time.sleep(PARENT_POLL_S)
        _die(128 + signal.SIGTERM)

    threading.Thread(target=poll, name="parent-poll", daemon=True).start()


# ---- one notebook -----------------------------------------------------------------------------


@contextlib.contextmanager
def _environ(**env):
    """Set environment variables (inherited by the kernel) for the duration of the block."""
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
            # saved as each cell starts and ends: a dead kernel still leaves the notebook, with
            # the cell it was running (local staging disk, a fraction of a second per report)
            request_save_on_cell_execute=True, store_widget_state=False,
            # CRITICAL: no TCP-transport warning, and no "KeyboardInterrupt caught in kernel" when
            # jupyter_client interrupts a kernel before shutting it down (cell errors reach us anyway)
            extra_arguments=["--IPKernelApp.log_level=CRITICAL"])


def _source_cells(executed_nb_path) -> list:
    """The executed notebook's cells minus papermill's error markers (its own cell numbering)."""
    import nbformat

    cells = nbformat.read(str(executed_nb_path), as_version=4).cells
    return [c for c in cells if "papermill-error-cell-tag" not in c.metadata.get("tags", [])]


def _source_cell_index(cells: list, index: int) -> int:
    """Map a cell index of the papermill output back to the input notebook (drop injected cells)."""
    injected = ["injected-parameters" in c.metadata.get("tags", []) for c in cells]
    return index - sum(injected[:index])


def running_cell(executed_nb_path) -> tuple[int | None, int | None]:
    """(source cell index, execution count) of the cell that was running when the kernel died:
    the last cell papermill started (cells after it have no start time)."""
    with contextlib.suppress(Exception):
        cells = _source_cells(executed_nb_path)
        started = [i for i, c in enumerate(cells)
                   if (c.metadata.get("papermill") or {}).get("start_time")]
        if started:
            i = started[-1]
            counts = [c.get("execution_count") or 0 for c in cells[:i] if c.cell_type == "code"]
            return _source_cell_index(cells, i), max(counts, default=0) + 1
    return None, None


def run_one(notebook, staging, profile="quick", params=None) -> ReportResult:
    """Execute one notebook into ``staging``: ``NN_name.ipynb`` always, ``NN_name.html`` on success.

    Nothing outside ``staging`` is written; ``html`` and ``executed`` name files in ``staging``.
    """
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    notebook, staging = Path(notebook), Path(staging)
    name = notebook.stem
    parameters = {"PROFILE": profile, "INTERACTIVE": False, **(params or {})}
    executed = staging / notebook.name
    t0 = time.perf_counter()
    res = ReportResult(name=name, status="ok", seconds=0.0, profile=profile, timestamp=utc_now(),
                       parameters=parameters)
    try:
        execute_notebook(notebook, executed, parameters, cwd=notebook.parent)
        page = export_html(executed, title=name)
        res.records = read_records(executed)
        res.html = atomic_write(staging / f"{name}.html", page).name
    except PapermillExecutionError as e:
        res.status = "failed"
        res.error = {"cell": _source_cell_index(_source_cells(executed), e.cell_index),
                     "execution_count": e.exec_count, "ename": e.ename, "evalue": e.evalue}
    except DeadKernelError as e:
        cell, count = running_cell(executed)
        res.status = "failed"
        res.error = {"cell": cell, "execution_count": count, "ename": "DeadKernelError",
                     "evalue": f"the kernel of {name} died while running cell {cell} ({e})"}
    except Exception as e:  # export failure, ...: still run the other notebooks
        res.status, res.error = "failed", error_outside_cell(e)
    res.seconds = round(time.perf_counter() - t0, 2)
    res.executed = executed.name if executed.exists() else None
    return res


def result_path(staging, name: str) -> Path:
    return Path(staging) / f"{name}.result.json"


def main(argv=None) -> int:
    """Run the job described by the JSON file ``argv[0]`` (written by the runner)."""
    job = json.loads(Path((argv or sys.argv[1:])[0]).read_text())
    die_with_parent(job["parent"])
    signal.signal(signal.SIGTERM, lambda signum, frame: _die(128 + signum))
    # Ctrl-C reaches the whole process group: the runner stops the workers itself. (A Python
    # handler, not SIG_IGN, so that the kernel does not inherit an ignored SIGINT.)
    signal.signal(signal.SIGINT, lambda signum, frame: None)
    lock = open(job["lock"], "rb")  # noqa: SIM115 - held (shared) while this worker lives
    fcntl.flock(lock, fcntl.LOCK_SH)
    res = run_one(job["notebook"], job["staging"], job["profile"], job["params"])
    atomic_write(result_path(job["staging"], res.name), json.dumps(asdict(res)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
