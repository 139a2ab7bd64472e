"""Signed export bundle through the API, end to end (`make bench`; not a test).

    python bench/export_api.py [--export 2000,10000]

What a finance user does (docs/reports.md), on real processes: a throw-away database on the
local PostgreSQL (BENCH_DATABASE_URL, default the local server as `postgres`), a tenant with
the sample plan, N generated employees uploaded and run, approved by manager, HR and
finance and finalized by a second finance user (set-up, not timed). Then `paysheet serve`
(its own processes) and one `paysheet worker --processes 2` (PostgresHuey), and the timed
path: POST /runs/{id}/export (202 + Location) → follow the job's WebSocket until it is
final → GET the download → `paysheet verify-bundle` on the file (also timed: it is part of
"ready and checked"). Then (not timed) one byte of a statement in the downloaded file is
changed, and verify-bundle must refuse it naming that file.

Prints per size: wall seconds, the ratio to the budget (2,000 ≤ 30 s, 10,000 ≤ 120 s; a ratio
above 1 is within budget), the worker tree's CPU seconds (the job process and its render
processes) and the API's, the job's phases as the worker saw them, and the load average
before it started: on a machine shared with other work the CPU seconds are the figure to
compare, wall time depends on who else uses the cores.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402

from bench.api import _free_port, _ready, _serve, tree_cpu  # noqa: E402
from bench.runs import (  # noqa: E402
    FUNDS,
    Tenant,
    _tenant,
    _upload,
    _wait,
    _worker,
    bench_database,
    stop,
)
from samples.generate import employees, fund_table  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import session as db  # noqa: E402
from server.modules.auth.permissions import Role  # noqa: E402
from server.modules.auth.service import issue_token  # noqa: E402
from server.modules.tenants import service as tenants  # noqa: E402
from server.settings import Settings  # noqa: E402
from tests.runs.support import create_locked_plan, sample_document  # noqa: E402

API = "/api/v1"
BUDGETS = {2000: 30.0, 10000: 120.0}


def _headers(tenant_id: Any, role: Role, name: str) -> dict[str, str]:
    with db.tenant_session(tenant_id) as session:
        user = tenants.add_user(session, None, email=f"{name}@{os.getpid()}.bench", role=role,
                                display_name=name.title(), teams=[])
        token = issue_token(session, user.user.id, timedelta(hours=4))
    return {"Authorization": f"Bearer {token.token}"}


def _document() -> dict:
    """The sample plan with defaults on its guarded pool steps (no null payout blocks the
    approval of a generated population)."""
    document = sample_document()
    for step in document["steps"]:
        if step["name"] in ("points", "pool_share"):
            step["default"] = "0"
    return document


def _finalized_run(client: TestClient, tenant: Tenant, users: dict[str, dict[str, str]],
                   plan_id: str, count: int) -> str:
    """Upload `count` employees, run, approve at every stage and finalize."""
    people, funds = employees(count, FUNDS, 7), fund_table(FUNDS, 7)
    upload_id = _upload(client, tenant, people.write_csv().encode(), "employees", plan_id,
                        people.columns)
    funds_id = _upload(client, tenant, funds.write_csv().encode(), "funds", plan_id,
                       funds.columns)
    started = client.post(f"{API}/runs", headers=users["admin"], json={
        "plan_id": plan_id, "upload_id": upload_id, "funds_upload_id": funds_id})
    assert started.status_code == 202, started.text
    run_id = started.json()["run_id"]
    _wait(client, users["admin"], run_id)
    for role, action in (("manager", "manager_approve"), ("hr", "hr_approve"),
                         ("finance", "finance_approve")):
        answer = client.post(f"{API}/runs/{run_id}/approve", headers=users[role],
                             json={"action": action})
        assert answer.status_code == 200, answer.text
    final = client.post(f"{API}/runs/{run_id}/finalize", headers=users["finance2"], json={})
    assert final.status_code == 200, final.text
    return run_id


def _seed(settings: Settings, sizes: list[int]) -> tuple[str, dict[str, str], dict[int, str]]:
    """A tenant, its users, and one finalized run per size; returns tenant id, the admin's
    headers and the run ids."""
    with TestClient(create_app(settings)) as client:
        tenant = _tenant()
        users = {"hr": tenant.users["hr"].headers}
        for role, name in ((Role.ADMIN, "admin"), (Role.MANAGER, "manager"),
                           (Role.FINANCE, "finance"), (Role.FINANCE, "finance2")):
            users[name] = _headers(tenant.id, role, name)
        plan_id = create_locked_plan(client, tenant, _document())
        worker = _worker(settings)
        try:
            runs = {}
            for count in sizes:
                started = time.perf_counter()
                runs[count] = _finalized_run(client, tenant, users, plan_id, count)
                print(f"set-up (not timed): {count:,} employees uploaded, run, approved and "
                      f"finalized in {time.perf_counter() - started:.0f} s")
        finally:
            stop(worker, timeout=60)
    return str(tenant.id), users["admin"], runs


async def _follow(base: str, token: str, job_id: str) -> dict[str, Any]:
    """The job's WebSocket until a final state; returns that state."""
    import websockets

    url = base.replace("http", "ws", 1) + f"{API}/reports/jobs/{job_id}/events?token={token}"
    async with websockets.connect(url, max_size=None) as socket:
        while True:
            state = json.loads(await socket.recv())
            if state["final"]:
                return state


def _export(base: str, headers: dict[str, str], run_id: str, target: Path,
            key: Path) -> dict[str, Any]:
    """The timed path; returns wall seconds per phase and the job's final state."""
    started = time.perf_counter()
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client:
        queued = client.post(f"{API}/runs/{run_id}/export")
        assert queued.status_code == 202, queued.text
        location = queued.headers["location"]
        token = headers["Authorization"].removeprefix("Bearer ")
        state = asyncio.run(_follow(base, token, queued.json()["id"]))
        if state["status"] != "done":
            raise SystemExit(f"export job {state['job_id']} is {state['status']}: "
                             f"{state['error']}")
        ready = time.perf_counter() - started
        with client.stream("GET", f"{location}/download") as answer, target.open("wb") as out:
            assert answer.status_code == 200, answer.read()
            for block in answer.iter_bytes(1 << 20):
                out.write(block)
    downloaded = time.perf_counter() - started
    verified = subprocess.run([sys.executable, "-m", "server.cli", "verify-bundle", str(target),
                               "--public-key", str(key)], cwd=ROOT, capture_output=True,
                              text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if verified.returncode != 0:
        raise SystemExit(f"verify-bundle failed:\n{verified.stdout}{verified.stderr}")
    return {"ready": ready, "downloaded": downloaded, "total": time.perf_counter() - started,
            "verify": verified.stdout.strip(), "state": state}


def _tampered_fails(target: Path, key: Path) -> str:
    """Change one byte of the first statement in the downloaded bundle: verify-bundle must
    fail and name that file (not timed)."""
    with zipfile.ZipFile(target) as archive:
        entry = next(i for i in archive.infolist() if i.filename.startswith("statements/"))
    with target.open("r+b") as handle:
        handle.seek(entry.header_offset + 26)
        name_length, extra_length = struct.unpack("<HH", handle.read(4))
        handle.seek(entry.header_offset + 30 + name_length + extra_length + 100)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    checked = subprocess.run([sys.executable, "-m", "server.cli", "verify-bundle", str(target),
                              "--public-key", str(key)], cwd=ROOT, capture_output=True,
                             text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    if checked.returncode != 1 or entry.filename not in checked.stderr:
        raise SystemExit(f"a tampered bundle was not refused naming {entry.filename}:\n"
                         f"{checked.stdout}{checked.stderr}")
    return next(line.strip() for line in checked.stderr.splitlines() if entry.filename in line)


def _public_key(base: str, headers: dict[str, str], tenant_id: str, folder: Path) -> Path:
    answer = httpx.get(f"{base}{API}/tenants/{tenant_id}/signing-key", headers=headers)
    assert answer.status_code == 200, answer.text
    path = folder / "tenant-key.pem"
    path.write_text(answer.json()["public_key_pem"])
    return path


def measure(settings: Settings, sizes: list[int]) -> None:
    tenant_id, headers, runs = _seed(settings, sizes)
    db.release_connections()
    port = _free_port()
    server, worker = _serve(settings, port), _worker(settings)
    try:
        base = f"http://127.0.0.1:{port}"
        asyncio.run(_ready(base, server))
        key = _public_key(base, headers, tenant_id, settings.data_dir)
        for count in sizes:
            load = os.getloadavg()[0]
            worker_cpu, api_cpu = tree_cpu(worker.pid), tree_cpu(server.pid)
            result = _export(base, headers, runs[count], settings.data_dir / f"{count}.zip", key)
            worker_cpu = tree_cpu(worker.pid) - worker_cpu
            api_cpu = tree_cpu(server.pid) - api_cpu
            budget = BUDGETS.get(count, 30.0 * count / 2000)
            size = (settings.data_dir / f"{count}.zip").stat().st_size
            print(f"export via API, {count:,} employees: {result['total']:.1f} s wall "
                  f"(budget {budget:.0f} s; ratio {budget / result['total']:.2f}); ready "
                  f"{result['ready']:.1f} s, downloaded {result['downloaded']:.1f} s, "
                  f"verified; worker CPU {worker_cpu:.1f} s ({worker_cpu / count * 1000:.1f} "
                  f"ms/employee), API CPU {api_cpu:.1f} s; {size / 1e6:.0f} MB; load average "
                  f"at start {load:.2f} on {os.cpu_count()} CPUs")
            progress = result["state"]["progress"]
            for label, field in (("job phases, wall", "timings"), ("job CPU", "cpu")):
                figures = progress.get(field) or {}
                print(f"    {label}: " + ", ".join(f"{name} {value:.1f} s"
                                                for name, value in figures.items()))
            print(f"    {result['verify']}")
            print(f"    tampered copy refused: "
                  f"{_tampered_fails(settings.data_dir / f'{count}.zip', key)}")
    finally:
        stop(worker, timeout=60)
        stop(server, timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--export", default="2000,10000",
                        help="employee counts, comma-separated (default 2000,10000)")
    args = parser.parse_args()
    sizes = [int(n) for n in args.export.split(",") if n.strip()]
    with bench_database("export_", max_upload_bytes=2 * 1024**3) as settings:
        measure(settings, sizes)


if __name__ == "__main__":
    main()
