"""API latency benchmark (`make bench`): P95 of non-run endpoints under 50 concurrent clients.

Sets up a throw-away database (BENCH_DATABASE_URL, default the local server as `postgres`), a
tenant with the sample plan locked, 1,000 generated employees uploaded and mapped, and one
finished run (executed by a `paysheet worker`), so every read endpoint has real data behind
it. Then starts the API as its own process (`paysheet serve`, uvicorn, no in-process worker)
and sends requests from 50 concurrent clients over real HTTP for a fixed number of requests:

- the baseline: `GET /healthz` alone (no database, no auth) at the same concurrency, measured
  in the same run, so the ratio says what our auth + database + serialisation cost;
- the mix: the signed-in read endpoints an HR admin, the add-in and the approvals screen call
  (me, plan list/detail/steps, input catalog, audit page, uploads, validation, runs, a run,
  a results page, pool vs target).

Prints P50/P95/P99 per endpoint and over the mix. Budget (ARCHITECTURE.md): P95 ≤ 100 ms.
Not a test: it never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from bench.runs import FUNDS, _tenant, _upload, _wait, _worker, bench_database  # noqa: E402
from samples.generate import employees, fund_table  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import session as db  # noqa: E402
from server.modules.auth.permissions import Role  # noqa: E402
from server.modules.auth.service import issue_token  # noqa: E402
from server.modules.tenants import service as tenants  # noqa: E402
from server.settings import Settings  # noqa: E402
from tests.runs.support import create_locked_plan, sample_document  # noqa: E402

API = "/api/v1"
CLIENTS = 50
BUDGET_MS = 100.0


def _seed(settings: Settings, employee_count: int) -> tuple[dict[str, str], dict[str, str]]:
    """A tenant with a locked plan, uploads and one finished run; returns headers and ids."""
    with TestClient(create_app(settings)) as client:
        tenant = _tenant()
        headers = tenant.users["hr"].headers
        plan_id = create_locked_plan(client, tenant, sample_document())
        people, funds = employees(employee_count, FUNDS, 7), fund_table(FUNDS, 7)
        upload_id = _upload(client, tenant, people.write_csv().encode(), "employees", plan_id,
                            people.columns)
        funds_id = _upload(client, tenant, funds.write_csv().encode(), "funds", plan_id,
                           funds.columns)
        worker = _worker(settings)
        try:
            run_id = client.post(f"{API}/runs", headers=headers, json={
                "plan_id": plan_id, "upload_id": upload_id, "funds_upload_id": funds_id,
            }).json()["run_id"]
            _wait(client, headers, run_id)
        finally:
            os.killpg(worker.pid, signal.SIGINT)
            worker.wait(timeout=60)
    ids = {"tenant": str(tenant.id), "plan": plan_id, "upload": upload_id, "run": run_id}
    return _admin_headers(tenant.id), ids


def _admin_headers(tenant_id: uuid.UUID) -> dict[str, str]:
    """An admin's token: the one role that may read every endpoint of the mix (audit too)."""
    with db.tenant_session(tenant_id) as session:
        admin = tenants.add_user(session, None, email=f"admin@{uuid.uuid4().hex[:8]}.bench",
                                 role=Role.ADMIN, display_name="Admin", teams=[])
        token = issue_token(session, admin.user.id, timedelta(hours=4)).token
    return {"Authorization": f"Bearer {token}"}


def _endpoints(ids: dict[str, str]) -> dict[str, str]:
    return {
        "me": f"{API}/me",
        "plans": f"{API}/tenants/{ids['tenant']}/bonus-plans",
        "plan": f"{API}/bonus-plans/{ids['plan']}",
        "plan steps": f"{API}/bonus-plans/{ids['plan']}/steps",
        "input catalog": f"{API}/tenants/{ids['tenant']}/input-catalog",
        "audit page": f"{API}/audit?limit=50",
        "uploads": f"{API}/uploads",
        "upload": f"{API}/uploads/{ids['upload']}",
        "validation": f"{API}/uploads/{ids['upload']}/validation",
        "runs": f"{API}/runs",
        "run": f"{API}/runs/{ids['run']}",
        "results page": f"{API}/runs/{ids['run']}/results?limit=100",
        "pool vs target": f"{API}/reports/pool-vs-target?run_id={ids['run']}",
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve(settings: Settings, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k != "REDIS_URL"}
    env.update(DATABASE_URL=settings.database_url, DATA_DIR=str(settings.data_dir),
               LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT), EMBEDDED_WORKERS="0",
               RATE_LIMIT_PER_MINUTE="1000000", RATE_LIMIT_BURST="1000000",
               QUEUE_NAME=settings.queue_name)
    log = (settings.data_dir / "server.log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "server.cli", "serve", "--port", str(port)],
                            env=env, cwd=ROOT, start_new_session=True,
                            stdout=log, stderr=subprocess.STDOUT)


async def _ready(base: str, server: subprocess.Popen) -> None:
    async with httpx.AsyncClient(base_url=base) as client:
        while True:  # start-up readiness poll: /readyz answers once uvicorn listens
            if server.poll() is not None:
                raise SystemExit(f"the API process exited with {server.returncode}")
            try:
                if (await client.get("/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)


async def _load(base: str, headers: dict[str, str], paths: list[tuple[str, str]],
                rounds: int) -> dict[str, list[float]]:
    """`CLIENTS` clients, each on its own keep-alive connection sending every path `rounds`
    times, one request at a time (as a browser tab or the add-in does)."""
    latencies: dict[str, list[float]] = {name: [] for name, _ in paths}

    async def client_loop(offset: int) -> None:
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=120) as client:
            for index in range(rounds * len(paths)):
                name, path = paths[(index + offset) % len(paths)]
                started = time.perf_counter()
                response = await client.get(path)
                latencies[name].append((time.perf_counter() - started) * 1000)
                if response.status_code != 200:
                    raise SystemExit(f"GET {path} answered {response.status_code}: "
                                     f"{response.text}")

    await asyncio.gather(*(client_loop(i) for i in range(CLIENTS)))
    return latencies


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def _report(latencies: dict[str, list[float]], baseline_p95: float) -> None:
    for name, values in latencies.items():
        print(f"  {name:<16} n={len(values):>5}  P50 {_percentile(values, 0.50):7.1f} ms  "
              f"P95 {_percentile(values, 0.95):7.1f} ms  P99 {_percentile(values, 0.99):7.1f} ms")
    every = [value for values in latencies.values() for value in values]
    p95 = _percentile(every, 0.95)
    print(f"API P95 over the mix, {CLIENTS} concurrent clients: {p95:.1f} ms "
          f"(budget <= {BUDGET_MS:.0f} ms, ratio {p95 / BUDGET_MS:.2f}; "
          f"{p95 / baseline_p95:.1f}x the /healthz baseline)")


async def _measure(base: str, headers: dict[str, str], ids: dict[str, str],
                   rounds: int) -> None:
    paths = list(_endpoints(ids).items())
    await _load(base, headers, paths, 1)  # warm-up: connections, caches, imports
    started = time.perf_counter()
    baseline = await _load(base, {}, [("healthz", "/healthz")], rounds * len(paths))
    healthz = baseline["healthz"]
    baseline_p95 = _percentile(healthz, 0.95)
    print(f"baseline GET /healthz, {CLIENTS} concurrent clients: P50 "
          f"{_percentile(healthz, 0.5):.1f} ms  P95 {baseline_p95:.1f} ms  "
          f"({len(healthz) / (time.perf_counter() - started):,.0f} req/s)")
    started = time.perf_counter()
    latencies = await _load(base, headers, paths, rounds)
    count = sum(len(values) for values in latencies.values())
    print(f"mix of {len(paths)} read endpoints: {count:,} requests, "
          f"{count / (time.perf_counter() - started):,.0f} req/s")
    _report(latencies, baseline_p95)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4,
                        help="times each client sends each endpoint (default 4)")
    args = parser.parse_args()
    with bench_database("api_") as settings:
        headers, ids = _seed(settings, 1_000)
        db.release_connections()
        port = _free_port()
        server = _serve(settings, port)
        try:
            base = f"http://127.0.0.1:{port}"
            asyncio.run(_ready(base, server))
            asyncio.run(_measure(base, headers, ids, args.rounds))
        finally:
            os.killpg(server.pid, signal.SIGINT)
            server.wait(timeout=30)


if __name__ == "__main__":
    main()
