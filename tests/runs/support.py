"""Test builders for runs, through the real APIs: a locked plan, ready uploads, polling, extra
users, and a small sample run taken through approvals to finalized."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from server.db import session as db
from server.modules.auth.permissions import Role
from server.modules.auth.service import issue_token
from server.modules.tenants import service as tenants
from tests.uploads.waiting import settled

SAMPLE_PLAN = Path(__file__).resolve().parents[2] / "samples" / "plans" / "fund_bonus.json"
API = "/api/v1"
FINISHED = ("draft", "failed")


def sample_document() -> dict[str, Any]:
    return json.loads(SAMPLE_PLAN.read_text(), parse_float=Decimal)


def guarded_document() -> dict[str, Any]:
    """The sample plan with defaults on its guarded pool steps (`points`, `pool_share`): no
    null payouts, which would block approval."""
    document = sample_document()
    for step in document["steps"]:
        if step["name"] in ("points", "pool_share"):
            step["default"] = "0"
    return document


def extra_user(tenant: Any, role: Role, display_name: str = "extra") -> dict[str, str]:
    """Another user of `tenant` with `role` (four eyes: one who neither started nor approved
    a run); returns auth headers."""
    with db.tenant_session(tenant.id) as session:
        created = tenants.add_user(session, None, email=f"{uuid.uuid4().hex[:8]}@x.example.com",
                                   role=role, display_name=display_name, teams=[])
        token = issue_token(session, created.user.id, timedelta(hours=1)).token
    return {"Authorization": f"Bearer {token}"}


def create_locked_plan(client: TestClient, tenant: Any, document: dict[str, Any]) -> str:
    """POST the plan with its document, then lock it (as hr); returns the plan id."""
    headers = tenant.users["hr"].headers
    document = json.loads(json.dumps(document, default=str))
    document["name"] = f"{document['name']} {uuid.uuid4().hex[:6]}"
    created = client.post(f"{API}/tenants/{tenant.id}/bonus-plans", headers=headers,
                          json={"name": document["name"], "document": document})
    assert created.status_code == 201, created.text
    plan_id = created.json()["id"]
    locked = client.post(f"{API}/bonus-plans/{plan_id}/lock", headers=headers)
    assert locked.status_code == 200, locked.text
    return plan_id


def ready_upload(client: TestClient, tenant: Any, data: bytes, kind: str, plan_id: str,
                 mapping: dict[str, str]) -> str:
    """Multipart upload → map (validation is a queue task: needs a running consumer) →
    ready; returns the upload id."""
    headers = tenant.users["hr"].headers
    uploaded = client.post(f"{API}/uploads", headers=headers, data={"kind": kind},
                           files={"file": (f"{kind}.csv", data, "text/csv")})
    assert uploaded.status_code == 201, uploaded.text
    upload_id = uploaded.json()["id"]
    mapped = client.post(f"{API}/uploads/{upload_id}/map", headers=headers, json=mapping,
                         params={"plan_id": plan_id})
    assert mapped.status_code == 202, mapped.text
    upload = settled(client, headers, upload_id)
    if upload["status"] != "ready":
        report = client.get(f"{API}/uploads/{upload_id}/validation", headers=headers).json()
        raise AssertionError(f"upload {upload_id} is {upload['status']}: {report}")
    return upload_id


def wait_for_run(client: TestClient, run_id: str, headers: dict[str, str],
                 deadline_seconds: float = 120.0,
                 done: Callable[[dict], bool] = lambda run: run["status"] in FINISHED) -> dict:
    """Poll GET /runs/{id} until `done` holds (bounded by a deadline, not a sleep)."""
    deadline = time.monotonic() + deadline_seconds
    while True:
        response = client.get(f"{API}/runs/{run_id}", headers=headers)
        assert response.status_code == 200, response.text
        run = response.json()
        if done(run):
            return run
        assert time.monotonic() < deadline, f"run {run_id} still {run['status']}: {run}"
        time.sleep(0.05)


def start_draft_run(client: TestClient, tenant: Any, sample: Any, **body: Any) -> str:
    """POST /runs as admin over `sample`'s plan and uploads (`body` adds to or overrides
    them); waits until the run is computed and asserts it is a draft; returns its id."""
    headers = tenant.users["admin"].headers
    started = client.post(f"{API}/runs", headers=headers, json=sample.body(**body))
    assert started.status_code == 202, started.text
    run = wait_for_run(client, started.json()["run_id"], headers)
    assert run["status"] == "draft", run
    return run["id"]


@dataclass(frozen=True)
class TenantRun:
    """A computed run of the sample plan in its own tenant, its uploads, and the headers of
    a finance user ("Finance 2") who neither started nor approved it: the one who may
    finalize it."""

    tenant: Any
    run_id: str
    upload_id: str
    funds_upload_id: str
    finaliser: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return self.tenant.users[role].headers


def small_draft_run(client: TestClient, tenant: Any, sample_inputs: Callable[..., Any],
                    **inputs: Any) -> TenantRun:
    """A draft run over 6 employees and 2 funds of `guarded_document()` (`inputs` go to the
    `sample_inputs` fixture's factory, e.g. `edit_employees`)."""
    sample = sample_inputs(tenant, count=6, funds=2, document=guarded_document(), **inputs)
    run_id = start_draft_run(client, tenant, sample)
    finaliser = extra_user(tenant, Role.FINANCE, display_name="Finance 2")
    return TenantRun(tenant, run_id, sample.upload_id, sample.funds_upload_id, finaliser)


def finalize_run(client: TestClient, run: TenantRun) -> None:
    """manager, hr and finance approve (the tenant's users of those roles), then the run's
    finaliser finalizes."""
    for role, action in (("manager", "manager_approve"), ("hr", "hr_approve"),
                         ("finance", "finance_approve")):
        answer = client.post(f"{API}/runs/{run.run_id}/approve", headers=run.headers(role),
                             json={"action": action})
        assert answer.status_code == 200, answer.text
    final = client.post(f"{API}/runs/{run.run_id}/finalize", headers=run.finaliser, json={})
    assert final.status_code == 200, final.text
