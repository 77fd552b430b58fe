"""JupyterLab starts headless, serves /lab, and its kernel imports recsys_lab."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
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


@pytest.mark.slow
def test_lab_serves_and_kernel_imports_package(tmp_path):
    port, token = free_port(), uuid.uuid4().hex
    base = f"http://127.0.0.1:{port}"
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip", "127.0.0.1",
         "--port", str(port), f"--IdentityProvider.token={token}",
         f"--ServerApp.root_dir={REPO / 'notebooks'}", "--ServerApp.port_retries=0",
         f"--ServerApp.allow_root={os.geteuid() == 0}"],
        env=env, stdout=subprocess.DEVNULL, stderr=open(tmp_path / "lab.log", "w"))
    kernel_id = None
    try:
        wait_ready(f"{base}/lab?token={token}", token, server)
        status, page = http("GET", f"{base}/lab?token={token}", token)
        assert status == 200 and b"JupyterLab" in page

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
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
