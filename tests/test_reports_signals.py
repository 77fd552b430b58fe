"""`recsys-lab reports` is one transaction: SIGINT/SIGTERM/SIGKILL of the runner leave no process
behind and an index that describes exactly the pages on disk (issue 14).

Tiny purpose-made notebooks: one finishes at once, the others sleep (each kernel first drops a
marker file named after its pid, so the test knows when they run and which processes they are).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

SLEEP_S = 60  # far longer than the test waits: a sleeping notebook can only finish if not stopped
SETUP_TIMEOUT_S = 240  # kernels start slowly on a loaded 2-core machine


def sleepy(name):
    return ("import os, time\n"
            f"open(os.path.join(os.environ['MARKERS'], '{name}.' + str(os.getpid())), 'w').close()\n"
            f"for _ in range({SLEEP_S * 10}):\n    time.sleep(0.1)")


QUICK = "from recsys_lab.reports import record\nrecord(answer=42);"


@pytest.fixture
def project(tmp_path, make_notebook):
    nbs, out, markers = tmp_path / "notebooks", tmp_path / "reports", tmp_path / "markers"
    markers.mkdir()
    make_notebook(nbs / "00_quick.ipynb", QUICK)
    for name in ("01_sleepy", "02_sleepy", "03_queued"):
        make_notebook(nbs / f"{name}.ipynb", sleepy(name))
    return nbs, out, markers


# runs its arguments as a child under PR_SET_CHILD_SUBREAPER, as CI sandboxes and container inits
# do: orphans reparent to it, not to pid 1 (so a kernel's own ppid == 1 check never fires)
SUBREAPER = ("import ctypes, os, subprocess, sys\n"
             "ctypes.CDLL(None).prctl(36, 1, 0, 0, 0)\n"
             "rc = subprocess.call(sys.argv[1:])\n"
             "while True:\n"
             "    try:\n        os.wait()\n"
             "    except ChildProcessError:\n        sys.exit(rc)\n")


def start_runner(nbs, out, markers, *extra, wrapper=()):
    env = {**os.environ, "MARKERS": str(markers), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([*wrapper, sys.executable, "-m", "recsys_lab", "reports", "--notebooks", str(nbs),
                             "--output", str(out), "-j", "2", *extra],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(predicate, timeout, what, runner=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if runner is not None and runner.poll() is not None:
            pytest.fail(f"runner exited ({runner.returncode}) before {what}: {runner.stderr.read()}")
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}")


def kernel_pids(markers, name):
    return [int(p.suffix[1:]) for p in markers.glob(f"{name}.*")]


def living(procs):
    """Those of ``procs`` still running (a zombie waiting for its reaper has stopped)."""
    out = []
    for p in procs:
        try:
            if p.status() != psutil.STATUS_ZOMBIE:
                out.append(p)
        except psutil.NoSuchProcess:
            pass
    return out


def snapshot(out):
    """Every file in the output directory (staging folders excepted): sha256 and mtime."""
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in out.iterdir() if p.is_file()}


def assert_index_matches_pages(out):
    manifest = json.loads((out / "manifest.json").read_text())["reports"]
    pages = {p.name for p in out.glob("*.html")} - {"index.html"}
    linked = {e["html"] for e in manifest.values() if e.get("html")}
    assert linked == pages, "manifest links and pages on disk differ"
    for e in manifest.values():
        if e.get("html"):
            assert hashlib.sha256((out / e["html"]).read_bytes()).hexdigest() == e["html_sha256"]
        if e.get("executed"):
            assert (out / e["executed"]).exists()
    index = (out / "index.html").read_text()
    assert set(re.findall(r"href='([^']+\.html)'", index)) == linked
    summary = (out / "summary.md").read_text()
    rows = set(re.findall(r"^\| (\d\d_\w+) \| (?:ok|failed) \|", summary, re.M))
    assert rows == set(manifest)
    return manifest


def run_until_sleeping(project, wrapper=()):
    """Start the runner; return it once 00_quick is committed and 01/02 sleep in their kernels."""
    nbs, out, markers = project
    runner = start_runner(nbs, out, markers, wrapper=wrapper)
    wait_for(lambda: (out / "00_quick.html").exists() and (out / "manifest.json").exists()
             and kernel_pids(markers, "01_sleepy") and kernel_pids(markers, "02_sleepy"),
             SETUP_TIMEOUT_S, "00_quick committed and two sleeping kernels", runner)
    time.sleep(0.5)  # let the index write that follows 00_quick's commit finish
    tree = [psutil.Process(runner.pid), *psutil.Process(runner.pid).children(recursive=True)]
    kernels = {pid for name in ("01_sleepy", "02_sleepy") for pid in kernel_pids(markers, name)}
    assert kernels <= {p.pid for p in tree}, "the kernels run below the runner"
    return runner, tree


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_run_and_keeps_index_true(project, signum):
    nbs, out, markers = project
    runner, tree = run_until_sleeping(project)
    before = snapshot(out)
    t0 = time.monotonic()
    runner.send_signal(signum)
    try:
        runner.wait(timeout=10)
    except subprocess.TimeoutExpired:
        psutil.Process(runner.pid).kill()
        pytest.fail(f"the runner still ran 10 s after {signum.name}")
    psutil.wait_procs(living(tree), timeout=max(0.1, 10 - (time.monotonic() - t0)))
    assert living(tree) == [], f"processes alive 10 s after {signum.name}"
    stderr = runner.stderr.read()
    assert runner.returncode == 130, stderr
    last = stderr.strip().splitlines()[-1]
    assert re.search(rf"interrupted by {signum.name}: kept 1 report\(s\) .*\(00_quick\); stopped 3 "
                     r"unfinished \(01_sleepy, 02_sleepy, 03_queued\)", last), last
    time.sleep(2)  # anything still running would write now
    assert snapshot(out) == before, "a file in the output changed after the signal"
    assert not kernel_pids(markers, "03_queued"), "a queued notebook started after the signal"
    manifest = assert_index_matches_pages(out)
    assert set(manifest) == {"00_quick"} and manifest["00_quick"]["records"] == {"answer": 42}
    assert not list(out.glob(".recsys-lab-staging-*")), "the staging folder is removed"


@pytest.mark.slow
@pytest.mark.parametrize("reaper", ["init", "subreaper"])
def test_sigkill_of_runner_takes_workers_and_kernels_down(project, reaper):
    nbs, out, markers = project
    wrapper = (sys.executable, "-c", SUBREAPER) if reaper == "subreaper" else ()
    launched, tree = run_until_sleeping(project, wrapper)
    runner = psutil.Process(launched.pid).children()[0] if wrapper else launched
    tree = [p for p in tree if p.pid != launched.pid or not wrapper]  # the subreaper lives on
    before = snapshot(out)
    runner.kill()
    runner.wait(timeout=10)
    psutil.wait_procs(living(tree), timeout=5)
    survivors = [(p.pid, " ".join(p.cmdline()[1:3])) for p in living(tree)]
    assert survivors == [], "workers or kernels survived their runner by more than 5 s"
    if wrapper:
        launched.wait(timeout=10)  # its orphans are gone: it exits
    time.sleep(2)
    assert snapshot(out) == before
    assert_index_matches_pages(out)
    assert list(out.glob(".recsys-lab-staging-*")), "a killed runner cannot clean up after itself"

    # the next run removes the stale staging folder and merges into the same index
    again = start_runner(nbs, out, markers, "--only", "00_quick")
    _, err = again.communicate(timeout=SETUP_TIMEOUT_S)
    assert again.returncode == 0, err
    assert not list(out.glob(".recsys-lab-staging-*"))
    assert set(assert_index_matches_pages(out)) == {"00_quick"}


NESTED_SIGTERM = """
import os, signal, subprocess, sys, time
from recsys_lab.reports import worker
kernel = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
print(kernel.pid, flush=True)
real, sent = worker.kill_tree, []
def kill_tree_hit_again(procs, grace=2.0):  # a second SIGTERM lands while the first is handled
    if not sent:
        sent.append(1)
        os.kill(os.getpid(), signal.SIGTERM)
    real(procs, grace)
worker.kill_tree = kill_tree_hit_again
signal.signal(signal.SIGTERM, lambda signum, frame: worker._die(128 + signum))
os.kill(os.getpid(), signal.SIGTERM)
time.sleep(60)
"""


def test_a_second_sigterm_during_the_exit_does_not_hang_the_worker():
    """Linux repeats the parent-death signal as each thread of a dying runner exits: the
    handler interrupted inside its own exit must still take the kernel down and exit."""
    proc = subprocess.Popen([sys.executable, "-c", NESTED_SIGTERM], stdout=subprocess.PIPE,
                            text=True)
    kernel = psutil.Process(int(proc.stdout.readline()))
    try:
        assert proc.wait(timeout=20) == 128 + signal.SIGTERM
        kernel.wait(timeout=5)
    finally:
        for p in (proc, kernel):
            with __import__("contextlib").suppress(Exception):
                p.kill()
