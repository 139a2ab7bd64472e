"""The acceptance path through the API: upload → map → run → tape → approvals by four
different users → finalize → frozen; the stored results are byte for byte `paysheet eval`."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import polars as pl
import psycopg
import pytest

from server.modules.auth.permissions import Role
from tests.runs.support import wait_for_run
from tests.runs.test_approvals import act, extra_user

pytestmark = pytest.mark.usefixtures("consumer")


def stored_results_csv(rc, run_id: str, headers: dict[str, str], steps: list[str]) -> bytes:
    """The run's stored rows written as the canonical results CSV (docs/engine.md §10)."""
    rows, cursor = [], None
    while True:
        params = {"limit": 1000, **({"cursor": cursor} if cursor else {})}
        page = rc.get(f"/api/v1/runs/{run_id}/results", params=params, headers=headers).json()
        rows += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break

    def text(value):
        if value is None:
            return None
        if isinstance(value, bool):
            return "true" if value else "false"
        return str(value)

    def diagnostics(entries):
        if not entries:
            return None
        ordered = [{"code": e["code"], "message": e["message"], "step": e["step"]}
                   for e in entries]
        return json.dumps(ordered, separators=(",", ":"), ensure_ascii=False)

    frame = pl.DataFrame(
        {"employee_ref": [r["employee_ref"] for r in rows],
         **{step: [text(r["values"][step]) for r in rows] for step in steps},
         "diagnostics": [diagnostics(r["diagnostics"]) for r in rows]},
        schema={name: pl.String for name in ["employee_ref", *steps, "diagnostics"]})
    buffer = io.BytesIO()
    frame.write_csv(buffer, line_terminator="\n", null_value="", include_header=True)
    return buffer.getvalue()


def test_upload_map_run_tape_approve_finalize_frozen(rc, make_tenant, sample_inputs, database):
    tenant = make_tenant()
    sample = sample_inputs(tenant, count=250)  # plan locked, uploads mapped and ready via API
    starter = extra_user(tenant, Role.HR)
    started = rc.post("/api/v1/runs", json=sample.body(scenario_name="Base"), headers=starter)
    assert started.status_code == 202, started.text
    run = wait_for_run(rc, started.json()["run_id"], starter)
    assert run["status"] == "draft", run["error"]

    expected = subprocess.run(
        [sys.executable, "-m", "engine.cli", "eval", str(sample.plan_path),
         str(sample.employees_csv), "--funds", str(sample.funds_csv)],
        capture_output=True, check=True).stdout
    steps = expected.decode().split("\n", 1)[0].split(",")[1:-1]
    assert stored_results_csv(rc, run["id"], starter, steps) == expected

    tape = rc.get(f"/api/v1/runs/{run['id']}/results", params={"employee_ref": "E0000100"},
                  headers=tenant.users["auditor"].headers).json()
    assert tape["matches_stored"] is True and len(tape["steps"]) == len(steps)

    for user, action in (("manager", "manager_approve"), ("hr", "hr_approve"),
                         ("finance", "finance_approve"), ("admin", "finalize")):
        response = act(rc, run["id"], tenant.users[user].headers, action)
        assert response.status_code == 200, (user, action, response.text)
    final = rc.get(f"/api/v1/runs/{run['id']}", headers=starter).json()
    assert final["status"] == "finalized"
    actors = {entry["actor_user_id"] for entry in final["approvals"]["history"]}
    assert len(actors) == 4
    assert final["snapshot_hash"] == run["snapshot_hash"]
    assert final["results_hash"] == run["results_hash"]

    with psycopg.connect(database.app) as conn:
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("update comp.run_results set values = '{}' where run_id = %s",
                         (run["id"],))
        assert caught.value.sqlstate == "PS409"
    again = rc.post(f"/api/v1/runs/{run['id']}/approve", headers=tenant.users["manager"].headers,
                    json={"action": "reject", "comment": "too late"})
    assert again.status_code == 409
    assert rc.post(f"/api/v1/runs/{run['id']}/reproduce",
                   headers=starter).json()["identical"] is True
    audit = [e["action"] for e in rc.get("/api/v1/audit", params={"entity_id": run["id"]},
                                         headers=tenant.users["auditor"].headers).json()["items"]]
    for action in ("run.create", "run.started", "run.completed", "run.manager_approve",
                   "run.hr_approve", "run.finance_approve", "run.finalize",
                   "run.reject.refused"):
        assert action in audit
    metrics = rc.get("/metrics").text
    assert "paysheet_run_duration_seconds_count" in metrics
    assert "paysheet_run_queue_depth" in metrics
