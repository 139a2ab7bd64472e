"""The ledger in the database: written atomically with finalize, append-only for the app role,
isolated by tenant; and the lock-time policy check through the plans API."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import func, select

from server.modules.deferrals import ledger
from server.modules.deferrals.models import LedgerEntry
from server.principal import Role
from tests.runs.deferral_support import (
    API,
    add_nav,
    approve_to_finance,
    computed_run,
    deferral_document,
    deferral_setup,
    extra_user,
    finalize,
)


def _finance_approved(rc, make_tenant):
    tenant, starter, plan_id, upload_id = deferral_setup(rc, make_tenant,
                                                         [("E1", "300000.00", "T1")])
    run_id = computed_run(rc, tenant, starter, plan_id, upload_id)
    approve_to_finance(rc, tenant, run_id)
    return tenant, run_id


def _status(rc, tenant, run_id):
    return rc.get(f"{API}/runs/{run_id}", headers=tenant.users["finance"].headers).json()["status"]


def _awards(rc, tenant, run_id):
    response = rc.get(f"{API}/deferrals", params={"run_id": run_id},
                      headers=tenant.users["finance"].headers)
    assert response.status_code == 200, response.text
    return response.json()


def test_a_missing_nav_refuses_the_finalize_and_writes_nothing(rc, consumer, make_tenant):
    tenant, run_id = _finance_approved(rc, make_tenant)
    refused = finalize(rc, tenant, run_id)
    assert refused.status_code == 409
    assert "no NAV for fund 'F1' on or before 2026-03-01" in refused.json()["detail"]
    assert _status(rc, tenant, run_id) == "finance_approved"
    assert _awards(rc, tenant, run_id) == []
    add_nav(rc, tenant, "F1", "2026-02-27", "100")  # the latest NAV before the award date
    assert finalize(rc, tenant, run_id).status_code == 200
    (award,) = _awards(rc, tenant, run_id)
    assert award["deferred"] == "120000.0000000000"


def test_a_crash_after_the_ledger_rows_leaves_neither_run_nor_ledger(
        rc, consumer, make_tenant, monkeypatch):
    tenant, run_id = _finance_approved(rc, make_tenant)
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    written = []

    def crash(session, *args, **kwargs):
        written.append(session.scalar(select(func.count()).select_from(LedgerEntry)))
        raise RuntimeError("simulated crash between the ledger and the finalize commit")

    monkeypatch.setattr(ledger, "record_event", crash)
    try:
        response = finalize(rc, tenant, run_id)
        assert response.status_code == 500
    except RuntimeError:
        pass
    monkeypatch.undo()
    assert written == [6]  # the rows were in the transaction when it crashed
    assert _status(rc, tenant, run_id) == "finance_approved"
    assert _awards(rc, tenant, run_id) == []
    assert finalize(rc, tenant, run_id).status_code == 200
    assert len(_awards(rc, tenant, run_id)) == 1


def test_the_app_role_cannot_update_or_delete_the_ledger(
        rc, consumer, make_tenant, app_conn, owner_conn):
    tenant, run_id = _finance_approved(rc, make_tenant)
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    assert finalize(rc, tenant, run_id).status_code == 200
    app_conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
    assert app_conn.execute("select count(*) from comp.deferral_ledger").fetchone()[0] == 6
    for statement in ("update comp.deferral_ledger set amount = 0",
                      "delete from comp.deferral_ledger",
                      "update comp.fund_navs set nav = 1",
                      "delete from comp.deferral_awards"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app_conn.execute(statement)
        app_conn.rollback()
        app_conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
    # even the owner (migrations' role) is refused by the trigger
    with pytest.raises(psycopg.Error) as refused:
        owner_conn.execute("update comp.deferral_ledger set amount = 0 where tenant_id = %s",
                           (tenant.id,))
    assert refused.value.sqlstate == "PS409"
    # another tenant sees none of it (RLS)
    app_conn.execute("select set_config('app.tenant_id', %s, false)",
                     ("00000000-0000-0000-0000-000000000001",))
    assert app_conn.execute("select count(*) from comp.deferral_ledger").fetchone()[0] == 0


def test_other_tenants_ids_answer_404(rc, consumer, make_tenant):
    tenant, run_id = _finance_approved(rc, make_tenant)
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    assert finalize(rc, tenant, run_id).status_code == 200
    add_nav(rc, tenant, "F1", "2027-03-01", "110")
    vesting_id = rc.post(f"{API}/vesting-runs", headers=tenant.users["admin"].headers,
                         json={"vest_date": "2027-03-01"}).json()["id"]
    (award,) = _awards(rc, tenant, run_id)
    malus = rc.post(f"{API}/malus", headers=tenant.users["hr"].headers, json={
        "award_id": award["id"], "tranche": 2, "fraction": "0.25", "reason": "r",
        "evidence": "e", "effective_date": "2026-06-01"})
    assert malus.status_code == 201, malus.text
    other = make_tenant()
    headers = other.users["admin"].headers
    for method, path, body in (
            ("get", f"/vesting-runs/{vesting_id}", None),
            ("post", f"/vesting-runs/{vesting_id}/transition", {"action": "hr_approve"}),
            ("get", f"/malus/{malus.json()['id']}", None),
            ("post", f"/malus/{malus.json()['id']}/decision", {"approve": True}),
            ("post", "/malus", {"award_id": award["id"], "tranche": 2, "fraction": "0.5",
                                "reason": "r", "evidence": "e",
                                "effective_date": "2026-06-01"}),
            ("get", f"/deferrals/payroll/{run_id}", None),
            ("get", "/deferrals/employees/E1/schedule", None)):
        response = getattr(rc, method)(f"{API}{path}", headers=headers,
                                       **({"json": body} if body else {}))
        assert response.status_code == 404, (path, response.text)
    # malus needs a second person AND finance: the proposer cannot approve it
    own = rc.post(f"{API}/malus/{malus.json()['id']}/decision",
                  headers=tenant.users["hr"].headers, json={"approve": True})
    assert own.status_code == 403


def test_lock_refuses_a_policy_that_vests_before_12_months(rc, make_tenant):
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    document = deferral_document(schedule={"kind": "pro_rata", "years": 3,
                                           "first_vesting_months": 6})
    created = rc.post(f"{API}/tenants/{tenant.id}/bonus-plans", headers=headers,
                      json={"name": document["name"], "document": document})
    assert created.status_code == 201, created.text
    locked = rc.post(f"{API}/bonus-plans/{created.json()['id']}/lock", headers=headers)
    assert locked.status_code == 409
    fields = {e.get("field") for e in locked.json()["errors"]}
    assert "deferral.schedule.first_vesting_months" in fields


def test_clawback_recovers_vested_parts_after_second_person_and_finance(rc, consumer,
                                                                        make_tenant):
    tenant, run_id = _finance_approved(rc, make_tenant)
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    assert finalize(rc, tenant, run_id).status_code == 200
    (award,) = _awards(rc, tenant, run_id)
    body = {"award_id": award["id"], "tranche": 1, "fraction": "0.25", "reason": "misconduct",
            "evidence": "HR case 42", "effective_date": "2027-04-01"}
    hr = tenant.users["hr"].headers
    # nothing vested yet: no clawback possible
    assert rc.post(f"{API}/clawbacks", headers=hr, json=body).status_code == 409
    add_nav(rc, tenant, "F1", "2027-03-01", "110")
    vesting = rc.post(f"{API}/vesting-runs", headers=tenant.users["admin"].headers,
                      json={"vest_date": "2027-03-01"}).json()["id"]
    # separation of duties: the finance approver does not finalize; a second finance user does
    finance2 = extra_user(tenant, Role.FINANCE)
    for headers, action in ((hr, "hr_approve"), (tenant.users["finance"].headers,
                                                 "finance_approve"), (finance2, "finalize")):
        assert rc.post(f"{API}/vesting-runs/{vesting}/transition", json={"action": action},
                       headers=headers).status_code == 200
    rejected = rc.post(f"{API}/clawbacks", headers=hr, json=body).json()["id"]
    no_reason = rc.post(f"{API}/clawbacks/{rejected}/decision",
                        headers=tenant.users["finance"].headers, json={"approve": False})
    assert no_reason.status_code == 422
    assert rc.post(f"{API}/clawbacks/{rejected}/decision", headers=tenant.users["finance"].headers,
                   json={"approve": False, "comment": "evidence insufficient"}
                   ).json()["status"] == "rejected"
    claw = rc.post(f"{API}/clawbacks", headers=hr, json=body).json()["id"]
    first = rc.post(f"{API}/clawbacks/{claw}/decision", headers=tenant.users["admin"].headers,
                    json={"approve": True})
    assert first.json()["status"] == "proposed"  # finance has not approved yet
    done = rc.post(f"{API}/clawbacks/{claw}/decision", headers=tenant.users["finance"].headers,
                   json={"approve": True})
    assert done.json()["status"] == "applied", done.text
    # 25% of 200 vested units = 50 units, of their vested value 22,000.00 = 5,500.00;
    # 25% of 20,000.00 vested cash = 5,000.00
    schedule = rc.get(f"{API}/deferrals/employees/E1/schedule", headers=hr).json()
    claws = [(e["instrument"], e["units"], e["amount"]) for e in schedule["entries"]
             if e["kind"] == "clawback"]
    assert claws == [("units", "-50.0000000000", "-5500.0000000000"),
                     ("cash", None, "-5000.0000000000")]
    tranche = {(t["tranche"], t["instrument"]): t for t in schedule["awards"][0]["tranches"]}
    assert tranche[(1, "units")]["vested"] == "150.0000000000"
    assert tranche[(1, "cash")]["vested_amount"] == "15000.0000000000"


def test_a_workbook_sync_without_a_policy_keeps_it_and_null_removes_it(rc, make_tenant):
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    document = deferral_document()
    created = rc.post(f"{API}/tenants/{tenant.id}/bonus-plans", headers=headers,
                      json={"name": document["name"], "document": document})
    path = f"{API}/bonus-plans/{created.json()['id']}/document"
    assert rc.get(path, headers=headers).json()["deferral"]["deferred_step"] == "deferred"
    without = {k: v for k, v in document.items() if k != "deferral"}
    assert rc.put(path, headers=headers, json=without).status_code == 200
    kept = rc.get(path, headers=headers).json()
    assert kept["deferral"]["schedule"]["years"] == 3
    assert rc.put(path, headers=headers, json=without | {"deferral": None}).status_code == 200
    assert "deferral" not in rc.get(path, headers=headers).json()
