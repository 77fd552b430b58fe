"""`make lab` starts JupyterLab headless (as root too), on 127.0.0.1 with a token, serves /lab,
and its kernel imports recsys_lab."""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

websocket = pytest.importorskip("websocket")  # websocket-client


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, token: str, body: dict | None = None):
    req = urllib.request.Request(url, method=method, headers={"Authorization": f"token {token}"},
                                 data=None if body is None else json.dumps(body).encode())
    with urllib.request.urlopen(req, timeout=10) as r:
        raw = r.read()
        return r.status, (json.loads(raw) if raw and "json" in r.headers.get("Content-Type", "")
                          else raw)


def wait_ready(url: str, token: str, server: subprocess.Popen, timeout=60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"jupyter lab exited with {server.returncode}")
        try:
            if http("GET", url, token)[0] == 200:
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"{url} not ready after {timeout} s")


def execute(ws, code: str, timeout=60.0) -> tuple[str, dict]:
    """Send an execute_request on the kernel's websocket; return (stdout, execute_reply)."""
    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    ws.send(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "session": session,
                   "username": "test", "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False,
                    "user_expressions": {}, "allow_stdin": False, "stop_on_error": True}}))
    stdout, reply, idle = [], None, False
    deadline = time.monotonic() + timeout
    while not (reply and idle):
        assert time.monotonic() < deadline, "no execute_reply from the kernel"
        msg = json.loads(ws.recv())
        if msg.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "stream" and msg["content"]["name"] == "stdout":
            stdout.append(msg["content"]["text"])
        elif kind == "execute_reply":
            reply = msg["content"]
        elif kind == "status" and msg["content"]["execution_state"] == "idle":
            idle = True
    return "".join(stdout), reply


def listening_addresses(pid: int, port: int) -> set[str]:
    """IP addresses the process tree of ``pid`` listens on at ``port``."""
    import psutil

    procs = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return {c.laddr.ip for p in procs for c in p.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.laddr.port == port}


@pytest.mark.slow
def test_make_lab_serves_and_kernel_imports_package(tmp_path):
    """``make lab`` itself (as root here, the container case: it must add --allow-root)."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    port, token = free_port(), uuid.uuid4().hex
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    # -o setup: use the installed environment as it is (no pip run from a test)
    server = subprocess.Popen(
        ["make", "--no-print-directory", "-o", "setup", "lab", f"LAB_PORT={port}",
         f"LAB_TOKEN={token}", "LAB_ARGS=--no-browser --ServerApp.port_retries=0"],
        cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"),
        start_new_session=True)
    kernel_id = None
    try:
        wait_ready(f"{base}/lab?token={token}", token, server)
        status, page = http("GET", f"{base}/lab?token={token}", token)
        assert status == 200 and b"JupyterLab" in page
        assert listening_addresses(server.pid, port) == {"127.0.0.1"}  # loopback only
        with pytest.raises(urllib.error.HTTPError) as denied:  # and nothing without the token
            urllib.request.urlopen(f"{base}/api/kernels", timeout=10)
        assert denied.value.code == 403

        status, kernel = http("POST", f"{base}/api/kernels", token, {"name": "python3"})
        assert status == 201 and kernel["name"] == "python3"
        kernel_id = kernel["id"]
        ws = websocket.create_connection(
            f"ws://127.0.0.1:{port}/api/kernels/{kernel_id}/channels?token={token}", timeout=60)
        try:
            out, reply = execute(ws, "import recsys_lab; print(recsys_lab.__file__)")
        finally:
            ws.close()
        assert reply["status"] == "ok", reply
        assert out.strip().endswith("__init__.py")
        assert "recsys_lab" in out and str(REPO / "recsys_lab") in out  # this checkout's package
    except Exception:
        print((tmp_path / "lab.log").read_text()[-3000:])
        raise
    finally:
        if kernel_id is not None and server.poll() is None:
            try:
                assert http("DELETE", f"{base}/api/kernels/{kernel_id}", token)[0] == 204
            except Exception:  # the server is stopped below anyway
                pass
        with contextlib.suppress(ProcessLookupError):  # make and the jupyter server it started
            os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
