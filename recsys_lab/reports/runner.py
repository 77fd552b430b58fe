"""The report runner: notebooks into offline HTML pages, committed one notebook at a time.

Each notebook runs in its own worker process (:mod:`.worker`) that writes into a staging folder
inside the output directory; the runner alone moves finished pages into place and rewrites
``manifest.json``, ``index.html`` and ``summary.md`` right after, so the index always describes
the pages on disk. SIGINT or SIGTERM stops the run: nothing is committed after the signal, the
workers and their kernels are terminated, and :class:`ReportsInterrupted` says what was kept.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from ..fileio import atomic_write
from .index import load_manifest, merge, reconcile, sha256_of, write_index
from .result import ReportError, ReportResult, ReportsInterrupted, utc_now
from .selection import NOTEBOOK_GLOB, check_parameters, list_notebooks, select_notebooks
from .worker import KERNEL_ENV, descendants, kill_tree, result_path

PROFILES = ("quick", "full")
STAGING_PREFIX, LOCK = ".recsys-lab-staging-", ".lock"
POLL_S = 0.1  # how often the runner looks at its workers (and at a pending signal)
GRACE_S = 3.0  # SIGTERM to a worker, then SIGKILL for anything of its tree still alive


def default_jobs() -> int:
    """Notebooks run at once by default: one per core (notebooks train with one thread), at most 4."""
    return max(1, min(4, os.cpu_count() or 1))


def thread_env(jobs: int) -> dict[str, str]:
    """BLAS/OpenMP threads per kernel so that ``jobs`` kernels share the cores without spinning."""
    n = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    return {k: n for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")}


# ---- the output directory -----------------------------------------------------------------------


def prepare_output(output) -> Path:
    """Create ``output`` and check that files can be written there, before anything runs."""
    out = Path(output).resolve()
    if out.exists() and not out.is_dir():
        raise ReportError(f"output {output} is a file, not a directory")
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ReportError(f"cannot create the output directory {output}: {e.strerror}") from None
    try:
        fd, probe = tempfile.mkstemp(dir=out, prefix=".recsys-lab-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ReportError(f"the output directory {output} is not writable: {e.strerror}") from None
    return out


def remove_stale_staging(output) -> list[Path]:
    """Remove staging folders of runs that died (their lock is free); return them."""
    removed = []
    for d in Path(output).glob(STAGING_PREFIX + "*"):
        try:
            f = open(d / LOCK, "rb")  # noqa: SIM115
        except FileNotFoundError:
            if time.time() - d.stat().st_mtime < 60:  # being created by a run right now
                continue
        except OSError:
            continue
        else:
            with f:
                try:
                    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:  # a live run, or one of its workers, holds it
                    continue
        shutil.rmtree(d, ignore_errors=True)
        removed.append(d)
    return removed


@contextlib.contextmanager
def staging_dir(output):
    """A fresh staging folder inside ``output`` (same file system: commits are renames), locked
    (shared) while this run lives and removed when it ends."""
    d = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=output))
    lock = open(d / LOCK, "wb")  # noqa: SIM115
    fcntl.flock(lock, fcntl.LOCK_SH)
    try:
        yield d
    finally:
        lock.close()
        shutil.rmtree(d, ignore_errors=True)


class StopSignals:
    """While active (main thread only), SIGINT and SIGTERM only set ``signum``: the runner stops
    at its next look, never in the middle of a commit."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self):
        self.signum, self._old = None, {}
        if threading.current_thread() is threading.main_thread():
            self._old = {s: signal.signal(s, self._handle) for s in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        self.signum = self.signum or signum

    def __exit__(self, *exc):
        for s, handler in self._old.items():
            signal.signal(s, handler)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


# ---- workers ------------------------------------------------------------------------------------


def _start(nb: Path, staging: Path, profile: str, params: dict, env: dict) -> subprocess.Popen:
    job = {"notebook": str(nb), "staging": str(staging), "profile": profile, "params": params,
           "parent": os.getpid(), "lock": str(staging / LOCK)}
    path = atomic_write(staging / f"{nb.stem}.job.json", json.dumps(job))
    with open(staging / f"{nb.stem}.log", "wb") as log:
        return subprocess.Popen([sys.executable, "-m", "recsys_lab.reports.worker", str(path)],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=env, close_fds=True)


def _collect(nb: Path, proc: subprocess.Popen, staging: Path, profile: str,
             params: dict) -> ReportResult:
    """The worker's result, or a failure naming how the worker itself died."""
    try:
        return ReportResult(**json.loads(result_path(staging, nb.stem).read_text()))
    except (FileNotFoundError, ValueError, TypeError):
        log = (staging / f"{nb.stem}.log").read_text(errors="replace").strip().splitlines()
        return ReportResult(
            name=nb.stem, status="failed", seconds=0.0, profile=profile, timestamp=utc_now(),
            parameters=params, error={
                "cell": None, "execution_count": None, "ename": "WorkerDied",
                "evalue": f"the worker running {nb.stem} exited with status {proc.returncode} "
                          f"before reporting{': ' + log[-1] if log else ''}"})


def _commit(res: ReportResult, output: Path, staging: Path) -> ReportResult:
    """Move a finished notebook's files from staging into ``output`` (renames on one file system).

    Success: ``NN.html`` and ``NN.ipynb`` replace the old ones and ``NN.failed.ipynb`` goes;
    failure: only ``NN.failed.ipynb`` is written, the last good page stays.
    """
    name = res.name
    if res.ok:
        os.replace(staging / res.html, output / f"{name}.html")
        os.replace(staging / res.executed, output / f"{name}.ipynb")
        with contextlib.suppress(FileNotFoundError):
            os.unlink(output / f"{name}.failed.ipynb")
        res.html, res.executed = f"{name}.html", f"{name}.ipynb"
    else:
        if res.executed:
            os.replace(staging / res.executed, output / f"{name}.failed.ipynb")
            res.executed = f"{name}.failed.ipynb"
        res.html = f"{name}.html" if (output / f"{name}.html").exists() else None
    res.html_sha256 = sha256_of(output / res.html) if res.html else None
    return res


def _stop(procs) -> None:
    """Terminate workers and everything below them (kernels, their pools), SIGKILL after GRACE_S."""
    import psutil

    tree = []
    for p in procs:
        with contextlib.suppress(psutil.Error):
            tree += [psutil.Process(p.pid), *descendants(p.pid)]
    kill_tree(tree, grace=GRACE_S)  # a worker's SIGTERM handler takes its kernel down first
    for p in procs:
        p.wait()


# ---- the run ------------------------------------------------------------------------------------


def run_reports(notebooks_dir="notebooks", output="reports", profile="quick", only=None,
                params=None, progress=True, jobs=1) -> list[ReportResult]:
    """Execute every ``notebooks_dir/NN_*.ipynb`` (or those named in ``only``) into ``output``.

    Each notebook runs with papermill in a worker process (kernel ``python3``, cwd =
    ``notebooks_dir``, parameters ``PROFILE=profile, INTERACTIVE=False, **params``); its offline
    HTML and executed notebook replace ``output/NN_name.{html,ipynb}`` only on success. A failure
    is recorded (cell, error; for a dead kernel the cell that was running) and the other notebooks
    still run. ``index.html``, ``summary.md`` and ``manifest.json`` are rewritten after each
    notebook, keeping the entries of notebooks not run this time. ``jobs`` kernels run at once
    (longest notebook first, by its last recorded run time), each with ``cores // jobs`` BLAS
    threads; latencies measured beside another notebook are a little pessimistic, so ``jobs=1``
    gives the quietest numbers.

    Bad input (profile, notebook name, parameter, jobs, an output that is a file or not
    writable) raises :class:`ReportError` before anything runs. SIGINT/SIGTERM raise
    :class:`ReportsInterrupted` once the workers are gone; staging folders left by a killed run
    are removed by the next one.
    """
    if profile not in PROFILES:
        raise ReportError(f"unknown profile {profile!r}; choose one of {', '.join(PROFILES)}")
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise ReportError(f"jobs must be a positive integer, got {jobs!r}")
    params = dict(params or {})
    all_nbs = list_notebooks(notebooks_dir)
    if not all_nbs:
        raise ReportError(f"no notebooks matching {NOTEBOOK_GLOB} in {notebooks_dir}")
    chosen = [p.resolve() for p in select_notebooks(all_nbs, only)]
    check_parameters(chosen, params)
    output = prepare_output(output)
    remove_stale_staging(output)

    entries, names = reconcile(load_manifest(output), output), [p.stem for p in all_nbs]
    # longest first (last known time for this profile) keeps every worker busy to the end
    last = {n: e.get("seconds", 0.0) for n, e in entries.items() if e.get("profile") == profile}
    order = sorted(chosen, key=lambda p: -last.get(p.stem, 0.0)) if jobs > 1 else chosen
    env = {**os.environ, **KERNEL_ENV, **(thread_env(jobs) if jobs > 1 else {})}
    results: list[ReportResult] = []
    # signals stay deferred until the staging folder is gone: a second Ctrl-C cannot cut the end
    with StopSignals() as stop, staging_dir(output) as staging:
        pending, running = list(order), {}
        try:
            while (pending or running) and not stop.signum:
                while pending and len(running) < jobs:
                    nb = pending.pop(0)
                    running[nb] = _start(nb, staging, profile, params, env)
                finished = [nb for nb, proc in running.items() if proc.poll() is not None]
                for nb in finished:
                    if stop.signum:  # a notebook that ends after the signal is not committed
                        break
                    res = _commit(_collect(nb, running.pop(nb), staging, profile, params),
                                  output, staging)
                    results.append(res)
                    merge(entries, res)
                    write_index(output, entries, names)
                    if progress:
                        print(f"[{len(results)}/{len(chosen)}] {res.describe()}",
                              file=sys.stderr, flush=True)
                if not finished:
                    time.sleep(POLL_S)
        finally:
            _stop(list(running.values()))  # interrupted or failed: no worker outlives the run
    if stop.signum:
        done = {r.name for r in results}
        raise ReportsInterrupted(stop.name, results, [p.stem for p in order if p.stem not in done],
                                 output)
    rank = {p.stem: i for i, p in enumerate(chosen)}
    return sorted(results, key=lambda r: rank[r.name])
