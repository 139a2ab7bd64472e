"""Real worker processes (`paysheet worker`, Huey process workers) on RedisHuey and
PostgresHuey, and the crash test: a worker killed mid-run leaves no partial results, and the
run completes on retry or fails with the reason."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import psycopg
import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.modules.keys.kms import key_file_path
from server.settings import Settings
from tests.runs.support import wait_for_run

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(params=["redis", "postgres"])
def queue_settings(request, runs_settings: Settings, redis_url: str) -> Settings:
    """Settings of an app and its workers on their own queue: RedisHuey or PostgresHuey."""
    return runs_settings.model_copy(update={
        "redis_url": redis_url if request.param == "redis" else None,
        "queue_name": f"runs-worker-{request.param}-{uuid.uuid4().hex[:8]}",
    })


@pytest.fixture
def api(queue_settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(queue_settings)) as client:
        yield client


@contextmanager
def worker(settings: Settings, max_attempts: int = 2,
           metrics_port: int | None = None) -> Iterator[subprocess.Popen]:
    """A `paysheet worker` consumer (one process worker) for `settings`."""
    env = {key: value for key, value in os.environ.items() if key != "REDIS_URL"}
    env.update(DATABASE_URL=settings.database_url, QUEUE_NAME=settings.queue_name,
               DATA_DIR=str(settings.data_dir), PII_KEY_FILE=str(key_file_path(settings)),
               RUN_MAX_ATTEMPTS=str(max_attempts),
               LOG_LEVEL="WARNING", PYTHONPATH=ROOT)
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    command = [sys.executable, "-m", "server.cli", "worker", "--processes", "1"]
    if metrics_port is not None:
        command += ["--metrics-port", str(metrics_port)]
    process = subprocess.Popen(command,
                               env=env, cwd=ROOT, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _superuser(database) -> psycopg.Connection:
    return psycopg.connect(database.migrate)


def _result_count(database, run_id: str) -> int:
    with _superuser(database) as conn:
        return conn.execute("select count(*) from comp.run_results where run_id = %s",
                            (run_id,)).fetchone()[0]


def _blocked_backend(database, deadline_seconds: float = 60.0) -> int:
    """Poll until a backend waits on the run_totals lock; returns its pid."""
    deadline = time.monotonic() + deadline_seconds
    with psycopg.connect(database.migrate, autocommit=True) as conn:
        while True:
            row = conn.execute(
                "select pid from pg_stat_activity where wait_event_type = 'Lock' "
                "and datname = current_database() "
                "and query ilike 'insert into comp.run_totals%'").fetchone()
            if row:
                return row[0]
            assert time.monotonic() < deadline, "no worker reached the persist transaction"
            time.sleep(0.05)


def _backend_gone(database, pid: int, deadline_seconds: float = 60.0) -> None:
    deadline = time.monotonic() + deadline_seconds
    with psycopg.connect(database.migrate, autocommit=True) as conn:
        while conn.execute("select 1 from pg_stat_activity where pid = %s", (pid,)).fetchone():
            assert time.monotonic() < deadline, f"backend {pid} still alive"
            time.sleep(0.05)


def test_worker_process_executes_runs(api, queue_settings, make_tenant, sample_inputs):
    tenant = make_tenant()
    sample = sample_inputs(tenant, count=150)
    hr = tenant.users["hr"].headers
    port = _free_port()
    with worker(queue_settings, metrics_port=port):
        run_ids = [api.post("/api/v1/runs", json=sample.body(), headers=hr).json()["run_id"]
                   for _ in range(2)]
        runs = [wait_for_run(api, run_id, hr) for run_id in run_ids]
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    assert 'paysheet_runs_finished_total{outcome="completed"} 2.0' in metrics
    assert "paysheet_run_duration_seconds_count 2.0" in metrics
    assert [run["status"] for run in runs] == ["draft", "draft"], runs
    assert runs[0]["results_hash"] == runs[1]["results_hash"]
    assert all(run["progress"]["worker"].split(":")[1].isdigit() for run in runs)


@pytest.mark.parametrize("max_attempts, outcome", [(2, "draft"), (1, "failed")])
def test_killed_worker_leaves_no_partial_results(api, queue_settings, database, make_tenant,
                                                sample_inputs, max_attempts, outcome):
    tenant = make_tenant()
    sample = sample_inputs(tenant, count=300)
    hr = tenant.users["hr"].headers
    with worker(queue_settings, max_attempts) as first:
        with _superuser(database) as blocker:
            blocker.execute("lock table comp.run_totals in share mode")
            run_id = api.post("/api/v1/runs", json=sample.body(), headers=hr).json()["run_id"]
            backend = _blocked_backend(database)
            running = api.get(f"/api/v1/runs/{run_id}", headers=hr).json()
            assert running["status"] == "running" and running["attempts"] == 1
            os.killpg(first.pid, signal.SIGKILL)  # the whole worker, as a machine would die
            first.wait()
            blocker.rollback()
        _backend_gone(database, backend)
    assert _result_count(database, run_id) == 0
    stuck = api.get(f"/api/v1/runs/{run_id}", headers=hr).json()
    assert stuck["status"] == "running"
    with worker(queue_settings, max_attempts):  # its start-up recovery finds the orphan
        run = wait_for_run(api, run_id, hr)
    assert run["status"] == outcome
    audit = [event["action"] for event in api.get(
        "/api/v1/audit", params={"entity_id": run_id},
        headers=tenant.users["admin"].headers).json()["items"]]
    if outcome == "draft":
        assert run["attempts"] == 2
        assert _result_count(database, run_id) == 300
        assert "run.requeued" in audit
    else:
        assert "stopped during attempt 1 of 1; no attempts left" in run["error"]
        assert _result_count(database, run_id) == 0
        assert "run.failed" in audit
