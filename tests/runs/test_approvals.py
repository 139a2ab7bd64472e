"""Approvals: every role x action x state, four-eyes, reject, null payouts, finalize freezes."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

import psycopg
import pytest

from server.db import session as db
from server.modules.auth.permissions import Role
from server.modules.auth.service import forget_sessions, issue_token
from server.modules.tenants import service as tenants
from tests.runs.support import sample_document, wait_for_run

pytestmark = pytest.mark.usefixtures("consumer")

ROLES = [role.value for role in Role]
ACTIONS = ["manager_approve", "hr_approve", "finance_approve", "reject", "finalize"]
STATES = ["draft", "manager_approved", "hr_approved", "finance_approved", "finalized",
          "failed"]
PATH_TO = {  # the (role, action) steps that bring a fresh run to each state
    "draft": [],
    "manager_approved": [("manager", "manager_approve")],
    "hr_approved": [("manager", "manager_approve"), ("hr", "hr_approve")],
    "finance_approved": [("manager", "manager_approve"), ("hr", "hr_approve"),
                         ("finance", "finance_approve")],
    "finalized": [("manager", "manager_approve"), ("hr", "hr_approve"),
                  ("finance", "finance_approve"), ("admin", "finalize")],
}
GATES = {"manager_approve": ("draft", {"manager"}), "hr_approve": ("manager_approved", {"hr"}),
         "finance_approve": ("hr_approved", {"finance"}),
         "finalize": ("finance_approved", {"finance", "admin"})}
REJECT_GATES = {"draft": {"manager"}, "manager_approved": {"hr"}, "hr_approved": {"finance"},
                "finance_approved": {"finance", "admin"}}


def expected_status(role: str, action: str, state: str) -> int:
    """The rule of server.modules.approvals.service, written out independently."""
    if action == "reject":
        if role not in {"manager", "hr", "finance", "admin"}:
            return 403
        if state not in REJECT_GATES:
            return 409
        return 200 if role in REJECT_GATES[state] else 403
    source, roles = GATES[action]
    if role not in roles:
        return 403
    if state != source:
        return 409
    # Separation of duties: the matrix's finance user did finance_approve on the way here.
    return 403 if (action, role) == ("finalize", "finance") else 200


def act(rc, run_id, headers, action, comment="ok"):
    if action == "finalize":
        return rc.post(f"/api/v1/runs/{run_id}/finalize", headers=headers,
                       json={"comment": comment})
    return rc.post(f"/api/v1/runs/{run_id}/approve", headers=headers,
                   json={"action": action, "comment": comment})


def extra_user(tenant, role: Role) -> dict[str, str]:
    """Another user of `tenant` with `role`; returns auth headers."""
    with db.tenant_session(tenant.id) as session:
        created = tenants.add_user(session, None, email=f"{uuid.uuid4().hex[:8]}@x.example.com",
                                   role=role, display_name="extra", teams=[])
        token = issue_token(session, created.user.id, timedelta(hours=1)).token
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def run_in_state(rc, make_tenant, sample_inputs):
    """Factory: a fresh computed run of one tenant brought to `state` through the API;
    the run is started by a separate hr user (so no matrix user started it)."""
    tenant = make_tenant()
    sample = sample_inputs(tenant, count=8)
    starter = extra_user(tenant, Role.HR)
    failing = sample.body(parameters={"deferral_threshold": "0",
                                      "deferral_percent": "9000000000000000000000000000"})

    def factory(state: str) -> str:
        body = failing if state == "failed" else sample.body()
        run_id = rc.post("/api/v1/runs", json=body, headers=starter).json()["run_id"]
        run = wait_for_run(rc, run_id, starter)
        assert run["status"] == ("failed" if state == "failed" else "draft"), run
        for role, action in PATH_TO.get(state, []):
            response = act(rc, run_id, tenant.users[role].headers, action)
            assert response.status_code == 200, response.text
        return run_id

    factory.tenant = tenant
    factory.starter = starter
    return factory


def test_every_role_action_and_state(rc, run_in_state):
    tenant = run_in_state.tenant
    for state in STATES:
        shared = run_in_state(state)
        outcomes = {(role, action): expected_status(role, action, state)
                    for role, action in itertools.product(ROLES, ACTIONS)}
        for (role, action), status in outcomes.items():
            run_id = run_in_state(state) if status == 200 else shared
            response = act(rc, run_id, tenant.users[role].headers, action)
            assert response.status_code == status, (role, action, state, response.text)
            after = rc.get(f"/api/v1/runs/{run_id}", headers=tenant.users["auditor"].headers)
            history = after.json()["approvals"]["history"]
            if status == 200:
                target = "draft" if action == "reject" else {
                    "manager_approve": "manager_approved", "hr_approve": "hr_approved",
                    "finance_approve": "finance_approved", "finalize": "finalized"}[action]
                assert after.json()["status"] == target
                assert history[-1]["action"] == action
                assert history[-1]["actor_role"] == role
            else:
                assert after.json()["status"] == state


def test_four_eyes(rc, run_in_state):
    tenant = run_in_state.tenant
    run_id = run_in_state("draft")
    manager = tenant.users["manager"]
    assert act(rc, run_id, manager.headers, "manager_approve").status_code == 200
    with db.tenant_session(tenant.id) as session:  # the manager becomes hr...
        session.get(tenants.User, manager.id).role = "hr"
        forget_sessions(session, manager.id)  # as the users API does on a role change
    refused = act(rc, run_id, manager.headers, "hr_approve")  # ...and may not approve twice
    assert refused.status_code == 403 and "two stages" in refused.json()["detail"]
    assert act(rc, run_id, extra_user(tenant, Role.HR), "hr_approve").status_code == 200

    finance_starter = extra_user(tenant, Role.FINANCE)
    body = _body_of(rc, run_id, finance_starter)
    finance_run = rc.post("/api/v1/runs", json=body, headers=finance_starter).json()["run_id"]
    wait_for_run(rc, finance_run, finance_starter)
    assert act(rc, finance_run, extra_user(tenant, Role.MANAGER),
               "manager_approve").status_code == 200
    assert act(rc, finance_run, extra_user(tenant, Role.HR), "hr_approve").status_code == 200
    mine = act(rc, finance_run, finance_starter, "finance_approve")
    assert mine.status_code == 403 and "you started" in mine.json()["detail"]
    audit = rc.get("/api/v1/audit", params={"entity_id": finance_run},
                   headers=tenant.users["auditor"].headers).json()["items"]
    assert "run.finance_approve.refused" in [event["action"] for event in audit]
    assert act(rc, finance_run, tenant.users["finance"].headers,
               "finance_approve").status_code == 200


def _body_of(rc, run_id, headers):
    run = rc.get(f"/api/v1/runs/{run_id}", headers=headers).json()
    return {"plan_id": run["plan_id"], "upload_id": run["upload_id"],
            "funds_upload_id": run["funds_upload_id"]}


def test_reject_returns_to_draft_with_reason_and_starts_a_new_round(rc, run_in_state):
    tenant = run_in_state.tenant
    run_id = run_in_state("hr_approved")
    finance = tenant.users["finance"].headers
    no_reason = act(rc, run_id, finance, "reject", comment=" ")
    assert no_reason.status_code == 422 and no_reason.json()["errors"][0]["loc"][-1] == "comment"
    rejected = act(rc, run_id, finance, "reject", comment="fund F002 pool is wrong")
    assert rejected.status_code == 200
    body = rejected.json()
    assert body["status"] == "draft"
    assert body["approvals"]["history"][-1]["comment"] == "fund F002 pool is wrong"
    for role, action in PATH_TO["finalized"]:
        response = act(rc, run_id, tenant.users[role].headers, action)
        assert response.status_code == 200, response.text
    actions = [entry["action"] for entry in
               rc.get(f"/api/v1/runs/{run_id}", headers=finance).json()["approvals"]["history"]]
    assert actions == ["manager_approve", "hr_approve", "reject", "manager_approve",
                       "hr_approve", "finance_approve", "finalize"]


def test_finalize_freezes_results_and_snapshot_in_the_database(rc, run_in_state, database):
    run_id = run_in_state("finalized")
    tenant = run_in_state.tenant
    with psycopg.connect(database.app) as conn:
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
        for statement in (
            "update comp.run_results set values = '{}' where run_id = %s",
            "delete from comp.run_results where run_id = %s",
            "update comp.run_totals set totals = '{}' where run_id = %s",
            "update comp.plan_runs set results_hash = 'x' where id = %s",
            "update comp.plan_runs set status = 'draft' where id = %s",
        ):
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(statement, (run_id,))
            assert caught.value.sqlstate == "PS409"
            conn.rollback()
            conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))


def test_snapshot_is_frozen_from_the_first_approval(rc, run_in_state, database):
    run_id = run_in_state("manager_approved")
    tenant = run_in_state.tenant
    run = rc.get(f"/api/v1/runs/{run_id}", headers=tenant.users["hr"].headers).json()
    with psycopg.connect(database.app) as conn:
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
        for statement in ("update comp.plan_runs set snapshot_hash = 'x' where id = %s",
                          "delete from comp.run_results where run_id = %s"):
            with pytest.raises(psycopg.Error) as caught:
                conn.execute(statement, (run_id,))
            assert caught.value.sqlstate == "PS409"
            conn.rollback()
            conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
    assert run["approvals"]["state"] == "manager_approved"


def test_division_by_zero_is_counted_and_blocks_approval(rc, make_tenant, sample_inputs):
    tenant = make_tenant()
    document = sample_document()
    for step in document["steps"]:
        if step["name"] == "points":
            step["expr"] = ("target_bonus * perf_multiplier * fund_factor * service_share"
                            " / (performance_score - 2)")
    sample = sample_inputs(tenant, count=120, document=document)
    hr = tenant.users["hr"].headers
    run = wait_for_run(rc, rc.post("/api/v1/runs", json=sample.body(), headers=hr)
                       .json()["run_id"], hr)
    assert run["status"] == "draft"
    totals = run["totals"]
    zero_rows = [r for r in _all_rows(rc, run["id"], hr)
                 if any(d["code"] == "division_by_zero" for d in r["diagnostics"])]
    assert zero_rows, "the sample data has employees scoring exactly 2"
    assert totals["diagnostics"]["division_by_zero"] == len(zero_rows)
    assert totals["diagnostics_by_step"]["points"]["division_by_zero"] == len(zero_rows)
    assert totals["null_payouts"] == len(zero_rows)
    assert all(r["values"]["bonus"] is None for r in zero_rows)
    refused = act(rc, run["id"], tenant.users["manager"].headers, "manager_approve")
    assert refused.status_code == 409
    assert f"{len(zero_rows)} employee(s) with a null payout" in refused.json()["detail"]
    assert refused.json()["errors"][0]["count"] == len(zero_rows)


def _all_rows(rc, run_id, headers):
    page = rc.get(f"/api/v1/runs/{run_id}/results", params={"with_diagnostics": True,
                                                             "limit": 1000}, headers=headers)
    assert page.status_code == 200 and page.json()["next_cursor"] is None
    return page.json()["items"]


def test_overflow_fails_the_run_naming_step_and_employee(rc, run_in_state):
    tenant = run_in_state.tenant
    run_id = run_in_state("failed")
    run = rc.get(f"/api/v1/runs/{run_id}", headers=tenant.users["hr"].headers).json()
    assert run["status"] == "failed"
    assert "step 'deferred'" in run["error"] and "for employee 'E" in run["error"]
    results = rc.get(f"/api/v1/runs/{run_id}/results", headers=tenant.users["hr"].headers)
    assert results.status_code == 409
    # Who failed is per-employee: managers and readonly get the step, not the employee
    # (the run, the run list and the run's WebSocket alike).
    for role in ("manager", "readonly"):
        headers = tenant.users[role].headers
        seen = [rc.get(f"/api/v1/runs/{run_id}", headers=headers).json()["error"]]
        seen += [r["error"] for r in rc.get("/api/v1/runs", headers=headers).json()["items"]
                 if r["id"] == run_id]
        token = tenant.users[role].token
        with rc.websocket_connect(f"/api/v1/runs/{run_id}/events?token={token}") as ws:
            seen.append(ws.receive_json()["error"])
        assert len(seen) == 3 and all(
            "step 'deferred'" in e and "for one employee (named to HR and admins)" in e
            and "'E" not in e for e in seen), (role, seen)


def test_separation_of_duties_per_tenant(rc, run_in_state):
    tenant = run_in_state.tenant
    finance = tenant.users["finance"].headers
    run_id = run_in_state("finance_approved")  # the finance user approved it
    refused = act(rc, run_id, finance, "finalize")
    assert refused.status_code == 403 and "separation of duties" in refused.json()["detail"]
    settings = f"/api/v1/tenants/{tenant.id}/settings"
    me = rc.get("/api/v1/me", headers=finance).json()
    assert me["separation_of_duties"] is True  # the pane offers finalize by this rule
    assert rc.patch(settings, headers=tenant.users["hr"].headers,
                    json={"separation_of_duties": False}).status_code == 403
    turned = rc.patch(settings, headers=tenant.users["admin"].headers,
                      json={"separation_of_duties": False})
    assert turned.status_code == 200 and turned.json()["separation_of_duties"] is False
    assert rc.get("/api/v1/me", headers=finance).json()["separation_of_duties"] is False
    assert act(rc, run_id, finance, "finalize").status_code == 200
    events = rc.get("/api/v1/audit", params={"entity": "tenant"},
                    headers=tenant.users["auditor"].headers).json()["items"]
    assert [e["after"] for e in events if e["action"] == "tenant.settings"] == [
        {"separation_of_duties": False}]
    # Off also lets one user approve two stages; the starter still never approves.
    second = run_in_state("manager_approved")
    manager = tenant.users["manager"]
    with db.tenant_session(tenant.id) as session:
        session.get(tenants.User, manager.id).role = "hr"
        forget_sessions(session, manager.id)  # as the users API does on a role change
    assert act(rc, second, manager.headers, "hr_approve").status_code == 200
    other = rc.get(f"/api/v1/tenants/{tenant.id}", headers=tenant.users["readonly"].headers)
    assert other.json()["separation_of_duties"] is False


def test_history_names_each_approver_with_role_and_time(rc, run_in_state, make_tenant,
                                                        database):
    """The history says who decided by name (display name, else email), in the detail and
    in the list; a renamed user shows the current name; an id that is not a user of this
    tenant (another tenant's, planted in the stored history) is never named."""
    tenant = run_in_state.tenant
    run_id = run_in_state("finalized")
    with db.tenant_session(tenant.id) as session:
        tenants.get_user(session, tenant.users["finance"].id).display_name = "Jane Smith"
        tenants.get_user(session, tenant.users["admin"].id).display_name = None
    auditor = tenant.users["auditor"].headers
    run = rc.get(f"/api/v1/runs/{run_id}", headers=auditor).json()
    history = run["approvals"]["history"]
    assert [(h["action"], h["actor_role"], h["actor_name"]) for h in history] == [
        ("manager_approve", "manager", "Manager"), ("hr_approve", "hr", "Hr"),
        ("finance_approve", "finance", "Jane Smith"),
        ("finalize", "admin", tenant.users["admin"].email)]
    assert all(h["at"] >= run["started_at"] for h in history)
    listed = rc.get(f"/api/v1/runs?plan_id={run['plan_id']}", headers=auditor).json()["items"]
    assert [h["actor_name"] for h in next(r for r in listed if r["id"] == run_id)
            ["approvals"]["history"]] == [h["actor_name"] for h in history]

    other = make_tenant()
    pending = run_in_state("manager_approved")
    with psycopg.connect(database.app) as conn:
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
        conn.execute("update comp.plan_runs set approvals_state = jsonb_set(approvals_state, "
                     "'{history,0,actor_user_id}', to_jsonb(%s::text)) where id = %s",
                     (str(other.users["admin"].id), pending))
    planted = rc.get(f"/api/v1/runs/{pending}", headers=auditor).json()["approvals"]["history"]
    assert planted[0]["actor_user_id"] == str(other.users["admin"].id)
    assert planted[0]["actor_name"] is None
