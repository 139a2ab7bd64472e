"""Deferral benchmark: finalize of a 10k-employee run writing its ledger, then the reports.

Sets up a throw-away database (as bench/runs.py), the sample plan with a deferral policy
(40% above 100,000 deferred over 3 years, half in units of F001) locked through the API,
10k generated employees, one run computed by a worker, the approvals, and then times:

- POST /runs/{id}/finalize: the finalize AND the ledger (awards, tranche entries, audit of
  the batch) in one transaction; budget 5 s for 10k employees;
- GET /deferrals/liability and GET /deferrals/verify over that ledger.

Not a test: it prints figures and ratios, never fails on time. `--employees N` changes 10k.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from fastapi.testclient import TestClient  # noqa: E402

from bench.runs import _prepare, _tenant, _wait, _worker, bench_database, stop  # noqa: E402
from server.app import create_app  # noqa: E402
from server.db import session as db  # noqa: E402
from server.modules.auth.permissions import Role  # noqa: E402
from server.modules.auth.service import issue_token  # noqa: E402
from server.modules.tenants import service as tenants  # noqa: E402
from tests.runs.support import create_locked_plan, sample_document  # noqa: E402

API = "/api/v1"
FINALIZE_BUDGET = 5.0
POLICY = {"variable_pay_step": "bonus", "deferred_step": "deferred",
          "award_date": "2026-03-01", "instruments": [{"fund_ref": "F001", "share": "0.5"}],
          "schedule": {"kind": "pro_rata", "years": 3, "first_vesting_months": 12},
          "retention_months": 12, "unit_decimals": 4}


def _user(tenant_id: uuid.UUID, role: Role) -> dict[str, str]:
    with db.tenant_session(tenant_id) as session:
        created = tenants.add_user(session, None, email=f"{uuid.uuid4().hex[:8]}@bench.example",
                                   role=role, display_name=role.value, teams=[])
        token = issue_token(session, created.user.id, timedelta(hours=4)).token
    return {"Authorization": f"Bearer {token}"}


def _timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    response = call()
    assert response.status_code == 200, response.text
    return time.perf_counter() - started, response.json()


def _profile_finalize(headers: dict[str, str], run_id: str) -> None:
    """BENCH_PROFILE=1: the finalize under cProfile in this thread, rolled back afterwards."""
    import cProfile
    import pstats

    from server.modules.approvals import service as approvals
    from server.modules.auth.service import resolve_token

    principal = resolve_token(headers["Authorization"].split()[1])
    profile = cProfile.Profile()
    session_cm = db.tenant_session(principal.tenant_id)
    session = session_cm.__enter__()
    try:
        profile.enable()
        approvals.transition(session, principal, uuid.UUID(run_id), "finalize", None)
        profile.disable()
    finally:
        session.rollback()
        session_cm.__exit__(None, None, None)
    pstats.Stats(profile).sort_stats("cumulative").print_stats(25)


def bench(client: TestClient, settings, count: int) -> None:
    tenant = _tenant()
    hr = tenant.users["hr"].headers
    others = {role: _user(tenant.id, role) for role in (Role.MANAGER, Role.HR, Role.FINANCE)}
    plan_id = create_locked_plan(client, tenant, sample_document() | {"deferral": POLICY})
    worker = _worker(settings)  # validates the uploads too (queue tasks), then runs
    try:
        body = _prepare(client, tenant, plan_id, count)
        nav = client.post(f"{API}/fund-navs", headers=others[Role.FINANCE], json={"navs": [
            {"fund_ref": "F001", "nav_date": "2026-03-01", "nav": "123.4567",
             "currency": "USD"}]})
        assert nav.status_code == 201, nav.text
        run_id = client.post(f"{API}/runs", json=body, headers=hr).json()["run_id"]
        _wait(client, hr, run_id)
    finally:
        stop(worker)
    for role, action in ((Role.MANAGER, "manager_approve"), (Role.HR, "hr_approve"),
                         (Role.FINANCE, "finance_approve")):
        answer = client.post(f"{API}/runs/{run_id}/approve", headers=others[role],
                             json={"action": action})
        assert answer.status_code == 200, answer.text
    finaliser = _user(tenant.id, Role.FINANCE)  # separation of duties: not the approver
    if os.environ.get("BENCH_PROFILE"):
        _profile_finalize(finaliser, run_id)
    seconds, _ = _timed(lambda: client.post(f"{API}/runs/{run_id}/finalize",
                                            headers=finaliser, json={}))
    awards = client.get(f"{API}/deferrals", params={"run_id": run_id},
                        headers=others[Role.FINANCE]).json()
    print(f"finalize of {count:,} employees with {len(awards):,} deferred awards "
          f"({len(awards) * 6:,} ledger entries): {seconds:.2f} s "
          f"(budget {FINALIZE_BUDGET:.0f} s, ratio {seconds / FINALIZE_BUDGET:.2f})")
    seconds, report = _timed(lambda: client.get(f"{API}/deferrals/liability",
                                                params={"as_of": "2026-03-01"},
                                                headers=others[Role.FINANCE]))
    print(f"liability report: {seconds:.2f} s, total {report['totals']}")
    admin = _user(tenant.id, Role.ADMIN)
    seconds, check = _timed(lambda: client.get(f"{API}/deferrals/verify", headers=admin))
    print(f"ledger verification: {seconds:.2f} s ({check})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--employees", type=int, default=10_000)
    args = parser.parse_args()
    with bench_database("deferrals") as settings, TestClient(create_app(settings)) as client:
        bench(client, settings, args.employees)


if __name__ == "__main__":
    try:
        main()
    except subprocess.TimeoutExpired as error:
        raise SystemExit(f"worker did not stop: {error}") from None
