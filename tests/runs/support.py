"""Test builders for runs, through the real APIs: a locked plan, ready uploads, polling."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient

from tests.uploads.waiting import settled

SAMPLE_PLAN = Path(__file__).resolve().parents[2] / "samples" / "plans" / "fund_bonus.json"
API = "/api/v1"
FINISHED = ("draft", "failed")


def sample_document() -> dict[str, Any]:
    return json.loads(SAMPLE_PLAN.read_text(), parse_float=Decimal)


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
