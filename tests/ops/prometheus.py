"""A real Prometheus server (Debian package `prometheus`) for tests: own config, own storage,
free port."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.uploads.server_process import free_port, stop_process, wait_http_ok


@contextmanager
def prometheus(workdir: Path, config: dict[str, Any]) -> Iterator[str]:
    """Run Prometheus with `config` (and storage) under `workdir`; yields its base URL."""
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: apt-get install prometheus (see .ci/run)"
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
    port = free_port()
    log = (workdir / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [binary, f"--config.file={workdir / 'prometheus.yml'}",
         f"--storage.tsdb.path={workdir / 'data'}", f"--web.listen-address=127.0.0.1:{port}",
         "--storage.tsdb.retention.time=30d"],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http_ok(f"{base}/-/ready", process, "Prometheus",
                     exit_detail=lambda: (workdir / "prometheus.log").read_text()[-3000:])
        yield base
    finally:
        stop_process(process)
        log.close()


def query(base: str, expr: str, at: float | None = None) -> dict[str, Any]:
    """The /api/v1/query answer (asserting HTTP 200 and status success)."""
    params = {"query": expr} | ({"time": str(at)} if at is not None else {})
    response = httpx.get(f"{base}/api/v1/query", params=params, timeout=30)
    body = response.json()
    assert response.status_code == 200 and body["status"] == "success", (expr, body)
    return body["data"]
