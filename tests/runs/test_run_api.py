"""Runs through the API: start → worker → persisted results, tapes, totals, hashes."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from decimal import Decimal

import psycopg
import pytest
from starlette.websockets import WebSocketDisconnect

from tests.runs.support import wait_for_run

pytestmark = pytest.mark.usefixtures("consumer")


def _start(rc, headers, sample, **extra):
    return rc.post("/api/v1/runs", json=sample.body(**extra), headers=headers)


def _paysheet_eval(sample, engine: str = "polars") -> bytes:
    """The CLI's results CSV for the same plan and data files."""
    completed = subprocess.run(
        [sys.executable, "-m", "engine.cli", "eval", str(sample.plan_path),
         str(sample.employees_csv), "--funds", str(sample.funds_csv), "--engine", engine],
        capture_output=True, check=True)
    return completed.stdout


def _all_results(rc, run_id, headers, limit=70):
    rows, cursor = [], None
    while True:
        params = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        page = rc.get(f"/api/v1/runs/{run_id}/results", params=params, headers=headers)
        assert page.status_code == 200, page.text
        rows += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if cursor is None:
            return rows


def test_run_persists_every_employee_and_matches_paysheet_eval(rc, make_tenant,
                                                               sample_inputs):
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    sample = sample_inputs(tenant, count=230)
    started = _start(rc, hr, sample, scenario_name="Base")
    assert started.status_code == 202, started.text
    assert started.json()["status"] == "queued"
    run = wait_for_run(rc, started.json()["run_id"], hr)
    assert run["status"] == "draft", run["error"]

    expected_csv = _paysheet_eval(sample)
    assert run["results_hash"] == hashlib.sha256(expected_csv).hexdigest()
    rows = _all_results(rc, run["id"], hr)
    assert [r["employee_ref"] for r in rows] == sorted(r["employee_ref"] for r in rows)
    assert len(rows) == 230
    header, *lines = expected_csv.decode().splitlines()
    columns = header.split(",")
    bonus = columns.index("bonus")
    expected_bonus = {line.split(",")[0]: line.split(",")[bonus] for line in lines}
    assert {r["employee_ref"]: r["values"]["bonus"] or "" for r in rows} == expected_bonus

    totals = run["totals"]
    assert totals["headcount"] == 230
    paid = sum((Decimal(v) for v in expected_bonus.values() if v), Decimal(0))
    assert Decimal(totals["total_payout"]) == paid
    pool = totals["pools"][0]
    assert pool["step"] == "pool_share" and pool["key"] == "fund_ref"
    assert {g["key"] for g in pool["groups"]} <= {f"F00{i}" for i in range(1, 7)}
    for group in pool["groups"]:
        assert Decimal(group["allocated"]) <= Decimal(group["pool_amount"])
        assert "target_bonus" in group["targets"]
    assert sum(g["headcount"] for g in totals["breakdowns"]["level"]) == 230
    assert run["progress"]["phase"] == "done"
    assert set(run["progress"]["timings"]) >= {"load", "compute", "persist", "totals"}


def test_tape_is_the_reference_explanation_and_matches_stored_row(rc, make_tenant,
                                                                  sample_inputs):
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    sample = sample_inputs(tenant, count=40)
    run = wait_for_run(rc, _start(rc, hr, sample).json()["run_id"], hr)
    readonly = rc.get(f"/api/v1/runs/{run['id']}/results",
                      params={"employee_ref": "E0000007"}, headers=tenant.users["readonly"].headers)
    assert readonly.status_code == 403  # readonly sees aggregates only (issue 15)
    tape = rc.get(f"/api/v1/runs/{run['id']}/results", params={"employee_ref": "E0000007"},
                      headers=tenant.users["auditor"].headers)
    assert tape.status_code == 200, tape.text
    body = tape.json()
    assert body["matches_stored"] is True
    assert [s["step"] for s in body["steps"]][:3] == ["target_pct", "target_bonus",
                                                       "perf_multiplier"]
    assert body["payout"] == body["stored_values"]["bonus"]
    bonus_step = next(s for s in body["steps"] if s["step"] == "bonus")
    assert set(bonus_step["bindings"]) == {"pool_share", "level_cap"}
    missing = rc.get(f"/api/v1/runs/{run['id']}/results",
                         params={"employee_ref": "NOPE"}, headers=hr)
    assert missing.status_code == 404
    assert "NOPE" in missing.json()["detail"]


def test_same_idempotency_key_gives_the_same_run(rc, make_tenant, sample_inputs):
    tenant = make_tenant()
    hr = {**tenant.users["hr"].headers, "Idempotency-Key": "run-2025-q4"}
    sample = sample_inputs(tenant, count=20)
    first = _start(rc, hr, sample)
    second = _start(rc, hr, sample)
    assert (first.status_code, second.status_code) == (202, 200)
    assert first.json()["run_id"] == second.json()["run_id"]
    other_body = _start(rc, hr, sample, scenario_name="different")
    assert other_body.status_code == 409
    assert "Idempotency-Key" in other_body.json()["detail"]
    listed = rc.get("/api/v1/runs", headers=tenant.users["hr"].headers).json()
    assert len(listed["items"]) == 1
    wait_for_run(rc, first.json()["run_id"], hr)


def test_same_snapshot_same_hashes_and_overrides_change_the_snapshot(rc, make_tenant,
                                                                     sample_inputs):
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    sample = sample_inputs(tenant, count=120)
    runs = [wait_for_run(rc, _start(rc, hr, sample).json()["run_id"], hr)
            for _ in range(2)]
    assert runs[0]["snapshot_hash"] == runs[1]["snapshot_hash"]
    assert runs[0]["results_hash"] == runs[1]["results_hash"]
    what_if = wait_for_run(rc, _start(rc, hr, sample, scenario_name="stricter",
                                          parameters={"min_score": "3.5"}).json()["run_id"],
                           hr)
    assert what_if["status"] == "draft", what_if["error"]
    assert what_if["parameters"] == {"min_score": "3.5"}
    assert what_if["snapshot_hash"] != runs[0]["snapshot_hash"]
    assert what_if["results_hash"] != runs[0]["results_hash"]
    same_value = _start(rc, hr, sample, parameters={"min_score": "2"}).json()
    assert same_value["snapshot_hash"] == runs[0]["snapshot_hash"]
    wait_for_run(rc, same_value["run_id"], hr)

    compare = rc.get(f"/api/v1/runs/{runs[0]['id']}/compare/{what_if['id']}", headers=hr)
    assert compare.status_code == 200, compare.text
    body = compare.json()
    assert Decimal(body["total_delta"]) == Decimal(body["other_total"]) - Decimal(
        body["base_total"])
    assert body["changed"] > 0
    assert sum(Decimal(e["delta"]) for e in body["employees"] if e["delta"]) == Decimal(
        body["total_delta"])


def test_bad_requests_name_the_problem(rc, make_tenant, sample_inputs):
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    sample = sample_inputs(tenant, count=5)
    bad_parameter = _start(rc, hr, sample, parameters={"no_such": "1"})
    assert bad_parameter.status_code == 422
    assert "no_such" in bad_parameter.json()["detail"]
    assert _start(rc, tenant.users["readonly"].headers, sample).status_code == 403
    assert _start(rc, tenant.users["manager"].headers, sample).status_code == 403
    unmapped = rc.post("/api/v1/uploads", headers=hr, data={"kind": "employees"},
                       files={"file": ("e.csv", sample.employees_csv.read_bytes(), "text/csv")})
    not_ready = rc.post("/api/v1/runs", headers=hr, json={
        "plan_id": sample.plan_id, "upload_id": unmapped.json()["id"]})
    assert not_ready.status_code == 409 and "received" in not_ready.json()["detail"]
    other = make_tenant()
    assert _start(rc, other.users["hr"].headers, sample).status_code == 404
    swapped = rc.post("/api/v1/runs", headers=hr, json={
        "plan_id": str(sample.plan_id), "upload_id": str(sample.funds_upload_id)})
    assert swapped.status_code == 409 and "funds" in swapped.json()["detail"]


def test_other_tenants_runs_answer_404(rc, make_tenant, sample_inputs):
    tenant, other = make_tenant(), make_tenant()
    sample = sample_inputs(tenant, count=5)
    run_id = _start(rc, tenant.users["hr"].headers, sample).json()["run_id"]
    wait_for_run(rc, run_id, tenant.users["hr"].headers)
    foreign = other.users["admin"].headers
    for path in ("", "/results", f"/compare/{run_id}"):
        assert rc.get(f"/api/v1/runs/{run_id}{path}", headers=foreign).status_code == 404
    assert rc.post(f"/api/v1/runs/{run_id}/approve", json={"action": "manager_approve"},
                       headers=other.users["manager"].headers).status_code == 404
    assert rc.get("/api/v1/runs", headers=foreign).json()["items"] == []


def test_results_are_refused_while_running_and_invisible_until_commit(
        rc, make_tenant, sample_inputs, database):
    """A run blocked before its commit shows no rows at all to any reader."""
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    sample = sample_inputs(tenant, count=50)
    with psycopg.connect(database.admin.rsplit("/", 1)[0] + "/" + database.name) as blocker:
        blocker.execute("lock table comp.run_totals in share mode")
        run_id = _start(rc, hr, sample).json()["run_id"]
        wait_for_run(rc, run_id, hr, done=lambda run: run["progress"].get("phase")
                     == "persist")
        refused = rc.get(f"/api/v1/runs/{run_id}/results", headers=hr)
        assert refused.status_code == 409 and "running" in refused.json()["detail"]
        blocker.rollback()
    run = wait_for_run(rc, run_id, hr)
    assert run["status"] == "draft"


def test_progress_events_over_websocket(rc, make_tenant, sample_inputs):
    tenant = make_tenant()
    hr = tenant.users["hr"]
    sample = sample_inputs(tenant, count=60)
    run_id = _start(rc, hr.headers, sample).json()["run_id"]
    with rc.websocket_connect(f"/api/v1/runs/{run_id}/events?token={hr.token}") as socket:
        messages = []
        while not messages or messages[-1]["status"] in ("queued", "running"):
            messages.append(socket.receive_json())
    assert messages[-1]["status"] == "draft" and messages[-1]["phase"] == "done"
    assert messages[-1]["rows_done"] == 60
    phases = [m.get("phase") for m in messages]
    assert phases == sorted(set(phases), key=phases.index), "phases only move forward"
    with pytest.raises(WebSocketDisconnect) as refused, rc.websocket_connect(
            f"/api/v1/runs/{run_id}/events?token=wrong") as socket:
        socket.receive_json()
    assert refused.value.code == 4401
    other = make_tenant().users["hr"].token
    with rc.websocket_connect(f"/api/v1/runs/{run_id}/events?token={other}") as socket:
        assert socket.receive_json()["error"] == "run not found"


def test_reproduce_says_identical_and_names_differences(rc, make_tenant, sample_inputs,
                                                        database):
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    sample = sample_inputs(tenant, count=80)
    run = wait_for_run(rc, _start(rc, hr, sample).json()["run_id"], hr)
    same = rc.post(f"/api/v1/runs/{run['id']}/reproduce", headers=hr)
    assert same.status_code == 200, same.text
    assert same.json()["identical"] is True
    assert same.json()["reproduced_results_hash"] == run["results_hash"]
    with psycopg.connect(database.migrate) as conn:  # a superuser tampers, triggers off
        conn.execute("set session_replication_role = replica")
        conn.execute("update comp.run_results set values = jsonb_set(values, '{bonus}', "
                     "'\"1.0000000000\"') where run_id = %s and employee_ref = 'E0000003'",
                     (run["id"],))
    changed = rc.post(f"/api/v1/runs/{run['id']}/reproduce", headers=hr).json()
    assert changed["identical"] is False and changed["differing_employees"] == 1
    assert changed["differences"][0]["employee_ref"] == "E0000003"
    assert changed["differences"][0]["steps"]["bonus"]["stored"] == "1.0000000000"


def test_legacy_parity(rc, make_tenant, sample_inputs):
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    sample = sample_inputs(tenant, count=30)
    run = wait_for_run(rc, _start(rc, hr, sample).json()["run_id"], hr)
    rows = _all_results(rc, run["id"], hr)
    legacy = "employee_ref,Bonus Paid\n" + "".join(
        f"{r['employee_ref']},{Decimal(r['values']['bonus'] or 0) + Decimal('0.01'):.2f}\n"
        for r in rows)

    def parity(text: str):
        return rc.post(f"/api/v1/runs/{run['id']}/parity", headers=hr,
                       files={"file": ("legacy.csv", text.encode(), "text/csv")},
                       data={"amount_column": "Bonus Paid"})

    passed = parity(legacy)
    assert passed.status_code == 200, passed.text
    assert passed.json()["passed"] is True and passed.json()["compared"] == 30
    first = rows[0]["employee_ref"]
    off = legacy.replace(f"{first},", f"{first},9", 1)
    failed = parity(off).json()
    assert failed["passed"] is False and failed["failures"] == 1
    assert failed["failing_rows"][0]["employee_ref"] == first
    missing = parity("employee_ref,Other\nE1,1\n")
    assert missing.status_code == 422 and "Bonus Paid" in missing.json()["detail"]


def test_data_that_does_not_fit_fails_the_run_naming_rows(rc, make_tenant, sample_inputs):
    tenant = make_tenant()
    hr = tenant.users["hr"].headers
    sample = sample_inputs(tenant, count=40, funds=6,
                           edit_funds=lambda funds: funds.filter(funds["fund_ref"] != "F003"))
    run = wait_for_run(rc, _start(rc, hr, sample).json()["run_id"], hr)
    assert run["status"] == "failed"
    assert "unknown fund_ref (not in the funds file)" in run["error"]
    assert "employees, line " in run["error"] and "'F003'" in run["error"]
    assert rc.get(f"/api/v1/runs/{run['id']}/results", headers=hr).status_code == 409
