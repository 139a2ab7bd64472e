"""`paysheet serve` with the embedded PostgreSQL, stopped by a signal as an operator (or
systemd, or Kubernetes) stops it: nothing of the database may outlive it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from tests.uploads.server_process import ROOT, free_port, wait_http_ok

STOP_DEADLINE = 20.0  # the acceptance bound: no PostgreSQL of the data dir after 20 s


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Not pytest's tmp_path: other pytest sessions on a shared machine prune its base
    directory, which would pull the data directory from under a running PostgreSQL."""
    with tempfile.TemporaryDirectory(prefix="paysheet-shutdown-") as path:
        yield Path(path) / "data"


def _serve(data_dir: Path, port: int) -> subprocess.Popen:
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "MIGRATION_DATABASE_URL", "REDIS_URL", "API_WORKERS")}
    env.update(DATA_DIR=str(data_dir), PORT=str(port), HOST="127.0.0.1", LOG_LEVEL="WARNING",
               ARGON2_TIME_COST="1", ARGON2_MEMORY_KIB="8192", ARGON2_PARALLELISM="1",
               SHUTDOWN_GRACE_SECONDS="5", PYTHONPATH=str(ROOT))
    return subprocess.Popen([sys.executable, "-m", "server.cli", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _wait_ready(process: subprocess.Popen, port: int) -> None:
    wait_http_ok(f"http://127.0.0.1:{port}/readyz", process, "serve", 240.0,
                 exit_detail=lambda: process.stderr.read().decode()[-3000:])


def _postgres_processes(pgdata: Path) -> list[psutil.Process]:
    """The postmaster of `pgdata` (from postmaster.pid) and its children, while they live."""
    pid_file = pgdata / "postmaster.pid"
    assert pid_file.exists(), "the embedded PostgreSQL is not running"
    postmaster = psutil.Process(int(pid_file.read_text().split()[0]))
    assert "postgres" in postmaster.name()
    return [postmaster, *postmaster.children(recursive=True)]


def _wait_gone(processes: list[psutil.Process]) -> list[psutil.Process]:
    deadline = time.monotonic() + STOP_DEADLINE
    while True:
        alive = [proc for proc in processes if proc.is_running()
                 and proc.status() != psutil.STATUS_ZOMBIE]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_serve_and_embedded_postgres(data_dir: Path, stop_signal: int) -> None:
    pgdata = data_dir / "pgdata"
    port = free_port()
    first = _serve(data_dir, port)
    try:
        _wait_ready(first, port)
        # A crash (SIGKILL) leaves PostgreSQL running and a dead pid in the handle list.
        first.kill()
        first.wait()
        handles = json.loads((pgdata / ".handle_pids.json").read_text())
        assert first.pid in handles
        survivors = _postgres_processes(pgdata)

        second = _serve(data_dir, port)
        try:
            _wait_ready(second, port)
            handles = json.loads((pgdata / ".handle_pids.json").read_text())
            assert first.pid not in handles and second.pid in handles, handles
            second.send_signal(stop_signal)
            second.wait(timeout=STOP_DEADLINE)
            assert second.returncode == 128 + stop_signal, second.stderr.read().decode()
        finally:
            if second.poll() is None:
                second.kill()
                second.wait()
        alive = _wait_gone(survivors)
        assert not alive, f"PostgreSQL processes of {pgdata} still alive: {alive}"
        assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
    finally:
        for proc in psutil.process_iter(["cmdline"]):  # never leave a server behind
            if str(pgdata) in " ".join(proc.info["cmdline"] or []):
                proc.kill()
