"""The sweep's Ray backend on a Ray head the test starts (127.0.0.1, token auth) and stops.

``recsys-lab bench --backend ray --ray-address HOST:PORT`` runs the grid on that head and must give
the process backend's numbers. The sweep runs in a subprocess because Ray reads the settings that
keep it on the loopback interface (and its token) once, at import.
"""
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("ray")

from recsys_lab.eval.sweep import run_spec  # noqa: E402

RAY = Path(sys.executable).with_name("ray")
SPEC = {"data": {"name": "synthetic", "n_users": 100, "n_items": 60, "n_events": 1500, "seed": 2},
        "split": {"method": "random", "seed": 0},
        "eval": {"batch_sizes": [1, 4], "n_requests": 8, "warmup": 1},
        "grid": [{"model": "Popularity"}, {"model": "EASE", "params": {"reg": [10.0, 100.0]}},
                 {"model": "PureSVD", "params": {"embedding_size": 8},
                  "accelerators": [None, {"name": "Quantized", "params": {"dtype": "int8"}}]}]}
SAME = ["ndcg@10", "recall@10", "precision@10", "hit@10", "mrr@10", "coverage", "serving_mb"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(head: subprocess.Popen, grace_s: float = 5.0) -> bool:
    """SIGTERM, then SIGKILL, to the process group of ``head`` (the head this test started, by its
    id); True once no process of the group is left."""
    for sig, wait in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        try:
            os.killpg(head.pid, sig)
        except ProcessLookupError:
            return True
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            head.poll()                                          # reap the leader: no zombie in the group
            try:
                os.killpg(head.pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
    return False


def start_head(root: Path, env: dict, timeout_s: float = 240.0):
    """``ray start --head --block`` on 127.0.0.1 in its own session; (process, address) once it
    reports ready, or (None, log text) when it exits or times out (it is then stopped)."""
    port, log = free_port(), root / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen([str(RAY), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
                                 f"--port={port}", "--num-cpus=2", "--include-dashboard=false",
                                 "--disable-usage-stats", f"--temp-dir={root}"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while "Ray runtime started" not in log.read_text():
        if head.poll() is not None or time.monotonic() > deadline:
            text = log.read_text()
            assert stop_group(head), "a Ray process of a failed head start survived"
            return None, text
        time.sleep(0.5)
    return head, f"127.0.0.1:{port}"


@pytest.fixture(scope="module")
def ray_head():
    if not RAY.exists():
        pytest.skip(f"no ray command beside {sys.executable}")
    root = Path(tempfile.mkdtemp(prefix="ray", dir="/tmp"))    # short: Ray's socket paths stay < 108 bytes
    token = root / "token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
           "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",           # every Ray address stays 127.0.0.1
           "RAY_USAGE_STATS_ENABLED": "0", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    head, logs = None, []
    try:
        for _ in range(3):          # Ray gives its raylet 30 s to register: a loaded machine can miss it
            head, address = start_head(root, env)
            if head is not None:
                break
            logs.append(address)
        else:
            pytest.fail("no Ray head in 3 tries; last log:\n" + logs[-1][-3000:])
        yield {"address": address, "env": env, "process": head, "root": root}
    finally:
        gone = head is None or stop_group(head)
        shutil.rmtree(root, ignore_errors=True)
        assert gone, "a Ray process of the test's head outlived the test"


def test_bench_on_a_ray_head_gives_the_process_backend_numbers(ray_head, tmp_path):
    grid, out = tmp_path / "grid.json", tmp_path / "out"
    grid.write_text(json.dumps(SPEC))
    cmd = [sys.executable, "-m", "recsys_lab", "bench", "--grid", str(grid), "--out", str(out),
           "--backend", "ray", "--ray-address", ray_head["address"], "--n-jobs", "2"]
    p = subprocess.run(cmd, env=ray_head["env"], capture_output=True, text=True, timeout=400)
    assert p.returncode == 0, p.stderr[-3000:]
    got = pd.read_csv(out / "bench.csv")
    ref = run_spec(SPEC, backend="process", n_jobs=2, threads=1, cache_dir=None)   # Ray's one thread a task
    assert list(got["label"]) == list(ref["label"]) and len(got) == 5 * 2
    for col in SAME:
        np.testing.assert_allclose(got[col], ref[col], rtol=1e-12, err_msg=col)
    assert not got["cached"].any() and (got["threads"] == 1).all()
    workers = list(ray_head["root"].glob("session_*/logs/worker-*"))
    assert workers, "the configurations ran on the test's head, not on a new local instance"
    assert ray_head["process"].poll() is None, "the cluster outlives the sweep that used it"
    assert len(list((out / "cache").glob("*.json"))) == 5, "results are cached by the driver"
    assert not list((out / "cache").glob("models/*.npz")), "no model files from cluster nodes"
    again = subprocess.run(cmd, env=ray_head["env"], capture_output=True, text=True, timeout=400)
    assert again.returncode == 0 and "(10 from cache)" in again.stdout, again.stderr[-3000:]
