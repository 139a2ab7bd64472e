"""Real server processes for tests that need real sockets: a free port, waiting until a
process answers over HTTP, stopping it, and an API server (uvicorn)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def uvicorn_command(port: int) -> list[str]:
    """The API as one uvicorn process on 127.0.0.1:`port`."""
    return [sys.executable, "-m", "uvicorn", "--factory", "server.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]


def wait_http_ok(url: str, process: subprocess.Popen, what: str,
                 deadline_seconds: float = 120.0,
                 exit_detail: Callable[[], str] = lambda: "") -> None:
    """Poll GET `url` until it answers 200 (bounded by a deadline); fail at once, with
    `exit_detail()` (its log's tail, say), when `process` exits first."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        if process.poll() is not None:
            raise AssertionError(f"{what} exited with {process.returncode}: {exit_detail()}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert time.monotonic() < deadline, f"{what} did not become ready"
        time.sleep(0.1)


def stop_process(process: subprocess.Popen, timeout: float = 30) -> None:
    """SIGTERM, then SIGKILL if `process` has not exited after `timeout` seconds."""
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def api_server(env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen]]:
    """`uvicorn --factory server.app:create_app` on a free port; yields (base URL, process)."""
    port = free_port()
    process = subprocess.Popen(uvicorn_command(port), cwd=ROOT, env={**os.environ, **env},
                               stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/healthz", process, "API server")
        yield base, process
    finally:
        stop_process(process)
