"""Run benchmark (`make bench`): POST /runs → run finished and persisted, end to end.

Sets up a throw-away database (PostgreSQL at BENCH_DATABASE_URL, default the local server as
`postgres`), a tenant, the sample plan locked through the API, and generated employees and
funds uploaded, mapped and validated through the API (upload time is printed apart, it is
not part of a run). Then, with one `paysheet worker --processes 2` (PostgresHuey, or RedisHuey
with --redis):

- 10k and 100k employees: wall time from the POST to the moment GET /runs/{id} reports
  `draft` (queue + load + compute + persist + totals), with the worker's phase breakdown;
- 4 concurrent 10k runs on the 2 worker processes: wall time until all four are done.

Budgets (ARCHITECTURE.md): 10k ≤ 3 s, 100k ≤ 30 s. Not a test: it never fails on time.
`--quick` uses 1k / 10k employees.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from samples.generate import employees, fund_table  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import session as db  # noqa: E402
from server.db.bootstrap import bootstrap, drop_database  # noqa: E402
from server.modules.auth.permissions import Role  # noqa: E402
from server.modules.auth.service import issue_token  # noqa: E402
from server.modules.tenants import service as tenants  # noqa: E402
from server.settings import Settings  # noqa: E402
from tests.runs.support import create_locked_plan, sample_document  # noqa: E402

API = "/api/v1"
FUNDS = 40


class Tenant:
    """Just what tests.runs.support needs: an id and users with auth headers."""

    def __init__(self, tenant_id: uuid.UUID, users: dict[str, dict[str, str]]) -> None:
        self.id = tenant_id
        self.users = {role: type("User", (), {"headers": headers})
                      for role, headers in users.items()}


def _tenant() -> Tenant:
    created = tenants.create_tenant("Bench Capital", f"admin@{uuid.uuid4().hex[:8]}.bench", "A")
    users = {}
    with db.tenant_session(created.tenant.id) as session:
        hr = tenants.add_user(session, None, email=f"hr@{uuid.uuid4().hex[:8]}.bench",
                              role=Role.HR, display_name="HR", teams=[])
        token = issue_token(session, hr.user.id, timedelta(hours=4)).token
        users["hr"] = {"Authorization": f"Bearer {token}"}
    return Tenant(created.tenant.id, users)


def _upload(client: TestClient, tenant: Tenant, data: bytes, kind: str, plan_id: str,
            columns: list[str]) -> str:
    headers = tenant.users["hr"].headers
    upload_id = client.post(f"{API}/uploads", headers=headers, data={"kind": kind},
                            files={"file": (f"{kind}.csv", data, "text/csv")}).json()["id"]
    mapped = client.post(f"{API}/uploads/{upload_id}/map", headers=headers,
                         json={c: c for c in columns}, params={"plan_id": plan_id})
    assert mapped.status_code == 202, mapped.text
    deadline = time.monotonic() + 600  # validation is a queue task: poll until it settles
    while (status := client.get(f"{API}/uploads/{upload_id}", headers=headers
                                ).json()["status"]) == "processing":
        assert time.monotonic() < deadline, f"upload {upload_id} still processing"
        time.sleep(0.05)
    assert status == "ready", f"upload {upload_id} is {status}"
    return upload_id


def _wait(client: TestClient, headers: dict[str, str], run_id: str) -> dict:
    deadline = time.monotonic() + 600
    while True:
        run = client.get(f"{API}/runs/{run_id}", headers=headers).json()
        if run["status"] in ("draft", "failed"):
            if run["status"] == "failed":
                raise SystemExit(f"run {run_id} failed: {run['error']}")
            return run
        if time.monotonic() > deadline:
            raise SystemExit(f"run {run_id} still {run['status']} after 600 s")
        time.sleep(0.01)


def _timed_run(client: TestClient, headers: dict[str, str], body: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    run_id = client.post(f"{API}/runs", json=body, headers=headers).json()["run_id"]
    run = _wait(client, headers, run_id)
    return time.perf_counter() - started, run


def _phases(run: dict) -> str:
    timings = run["progress"].get("timings", {})
    return "  ".join(f"{name} {seconds * 1000:.0f} ms" for name, seconds in timings.items())


def stop(process: subprocess.Popen, timeout: float = 30) -> None:
    """Ctrl-C to a started process group (a clean stop), SIGKILL after `timeout` seconds."""
    os.killpg(process.pid, signal.SIGINT)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _worker(settings: Settings) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=settings.database_url, QUEUE_NAME=settings.queue_name,
               DATA_DIR=str(settings.data_dir), LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT))
    if settings.redis_url:
        env["REDIS_URL"] = settings.redis_url
    return subprocess.Popen([sys.executable, "-m", "server.cli", "worker", "--processes", "2"],
                            env=env, cwd=ROOT, start_new_session=True)


def _prepare(client: TestClient, tenant: Tenant, plan_id: str, count: int) -> dict:
    people, funds = employees(count, FUNDS, 7), fund_table(FUNDS, 7)
    started = time.perf_counter()
    upload_id = _upload(client, tenant, people.write_csv().encode(), "employees", plan_id,
                        people.columns)
    funds_id = _upload(client, tenant, funds.write_csv().encode(), "funds", plan_id,
                       funds.columns)
    print(f"  upload + validation of {count:>7,} employees: "
          f"{time.perf_counter() - started:6.2f} s (not part of the run)")
    return {"plan_id": plan_id, "upload_id": upload_id, "funds_upload_id": funds_id}


def bench(settings: Settings, sizes: tuple[int, int]) -> None:
    with TestClient(create_app(settings)) as client:
        tenant = _tenant()
        headers = tenant.users["hr"].headers
        plan_id = create_locked_plan(client, tenant, sample_document())
        worker = _worker(settings)  # validates the uploads too (queue tasks)
        try:
            bodies = {count: _prepare(client, tenant, plan_id, count) for count in sizes}
            _timed_run(client, headers, bodies[sizes[0]])  # warm-up: worker imports, cache
            budgets = {sizes[0]: 3.0, sizes[1]: 30.0}
            for count in sizes:
                seconds, run = _timed_run(client, headers, bodies[count])
                print(f"run of {count:>7,} employees: {seconds:6.2f} s end to end "
                      f"(budget {budgets[count]:.0f} s for {'10k' if count == sizes[0] else '100k'}"
                      f" scale, ratio {seconds / budgets[count]:.2f})  "
                      f"{count / seconds:,.0f} rows/s")
                print(f"    worker phases: {_phases(run)}")
            started = time.perf_counter()
            run_ids = [client.post(f"{API}/runs", json=bodies[sizes[0]], headers=headers)
                       .json()["run_id"] for _ in range(4)]
            runs = [_wait(client, headers, run_id) for run_id in run_ids]
            total = time.perf_counter() - started
            hashes = {run["results_hash"] for run in runs}
            print(f"4 concurrent runs of {sizes[0]:,} on 2 worker processes: {total:.2f} s "
                  f"until all persisted ({len(hashes)} distinct results hash)")
        finally:
            stop(worker)


@contextmanager
def bench_database(label: str, **overrides: Any) -> Iterator[Settings]:
    """Settings on a throw-away migrated database (BENCH_DATABASE_URL, default the local
    server as `postgres`) and data directory, both removed afterwards (BENCH_KEEP=1 keeps
    the directory). Shared by the benches that need a server."""
    admin = os.environ.get("BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"paysheet_bench_{label}{os.getpid()}"
    data_dir = Path(tempfile.mkdtemp(prefix=f"paysheet-bench-{label}"))
    urls = bootstrap(admin, name, "paysheet-bench")
    settings = Settings(
        database_url=urls.app, migration_database_url=urls.migrate, data_dir=data_dir,
        queue_name=f"bench-{uuid.uuid4().hex[:8]}", embedded_workers=0,
        rate_limit_per_minute=1_000_000, rate_limit_burst=1_000_000, log_level="WARNING",
        argon2_time_cost=1, argon2_memory_kib=1024, argon2_parallelism=1, **overrides,
    )
    print(f"database {name}")
    try:
        yield settings
    finally:
        db.release_connections()
        drop_database(admin, name)
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {data_dir}")
        else:
            shutil.rmtree(data_dir, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="1k / 10k employees")
    parser.add_argument("--redis", action="store_true", help="RedisHuey (REDIS_URL or local)")
    args = parser.parse_args()
    redis_url = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0") if args.redis else None
    with bench_database("", redis_url=redis_url, max_upload_bytes=2 * 1024**3) as settings:
        print(f"queue: {'RedisHuey' if args.redis else 'PostgresHuey'}")
        bench(settings, (1_000, 10_000) if args.quick else (10_000, 100_000))


if __name__ == "__main__":
    main()
