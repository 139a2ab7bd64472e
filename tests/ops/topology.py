"""The production shape with real processes: API processes (uvicorn, each its own port, as
behind a load balancer) and `paysheet worker` consumers on RedisHuey, all on the machine's
PostgreSQL and Redis, sharing one data directory."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.uploads.server_process import ROOT, free_port, uvicorn_command, wait_http_ok


def wait_until(condition, what: str, deadline_seconds: float = 120.0, pause: float = 0.1):
    """Poll `condition()` until it returns a truthy value (bounded); returns that value."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        value = condition()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(pause)


@dataclass
class Process:
    """A child process in its own session (so a kill takes its children too)."""

    command: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.popen = subprocess.Popen(self.command, cwd=ROOT, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)

    @property
    def pid(self) -> int:
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.alive():
            os.killpg(self.pid, sig)
            self.popen.wait(timeout=60)

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""


@dataclass
class Api(Process):
    port: int = field(default_factory=free_port)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        super().start()
        wait_http_ok(f"{self.url}/readyz", self.popen, f"API on {self.url}",
                     exit_detail=self.tail)


@dataclass
class Worker(Process):
    metrics_port: int = field(default_factory=free_port)

    def start(self) -> None:
        super().start()
        wait_http_ok(f"http://127.0.0.1:{self.metrics_port}/metrics", self.popen,
                     "worker metrics", exit_detail=self.tail)

    def owns(self, pid: int) -> bool:
        """True when `pid` (a Huey worker process) belongs to this consumer."""
        try:
            return os.getpgid(pid) == self.pid
        except ProcessLookupError:
            return False


def api(env: dict[str, str], logs: Path, name: str) -> Api:
    port = free_port()
    return Api(uvicorn_command(port), env, logs / f"{name}.log", port=port)


def worker(env: dict[str, str], logs: Path, name: str) -> Worker:
    port = free_port()
    command = [sys.executable, "-m", "server.cli", "worker", "--processes", "1",
               "--metrics-port", str(port)]
    return Worker(command, env, logs / f"{name}.log", metrics_port=port)
