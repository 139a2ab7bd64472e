"""Inquiries block finalize until resolved or overridden (whole life audited); an adjustment
run after a corrected salary pays exactly the delta, says so, and corrects the ledger."""

from __future__ import annotations

from tests.runs.deferral_support import (
    API,
    add_nav,
    approve_to_finance,
    computed_run,
    deferral_setup,
    employees_upload,
    finalize,
)
from tests.runs.support import wait_for_run

ROWS = [("E1", "300000.00", "T1"), ("E2", "50000.00", "T2")]


def _audit_actions(rc, tenant, entity_id):
    response = rc.get(f"{API}/audit", params={"entity_id": entity_id, "limit": 100},
                      headers=tenant.users["admin"].headers)
    assert response.status_code == 200, response.text
    return [event["action"] for event in reversed(response.json()["items"])]


def test_an_inquiry_blocks_finalize_until_resolved_by_a_corrected_run(rc, consumer,
                                                                       make_tenant):
    tenant, starter, plan_id, upload_id = deferral_setup(rc, make_tenant, ROWS)
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    run_id = computed_run(rc, tenant, starter, plan_id, upload_id)
    manager = tenant.users["manager"].headers  # teams: T1
    question = {"run_id": run_id, "employee_ref": "E1", "step": "deferred",
                "input_key": "variable_pay", "question": "Is 300,000 the right variable pay?"}
    raised = rc.post(f"{API}/inquiries", headers=manager, json=question)
    assert raised.status_code == 201, raised.text
    inquiry = raised.json()["id"]
    # not their team: as if E2 did not exist; a step the plan lacks is named
    assert rc.post(f"{API}/inquiries", headers=manager,
                   json=question | {"employee_ref": "E2"}).status_code == 404
    bad = rc.post(f"{API}/inquiries", headers=tenant.users["hr"].headers,
                  json=question | {"step": "bonsu"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "step"]
    # visible to approvers
    listed = rc.get(f"{API}/inquiries", params={"run_id": run_id, "status": "open"},
                    headers=tenant.users["finance"].headers).json()
    assert [i["id"] for i in listed] == [inquiry]

    approve_to_finance(rc, tenant, run_id)
    blocked = finalize(rc, tenant, run_id)
    assert blocked.status_code == 409 and "1 unresolved inquiry" in blocked.json()["detail"]
    hr = tenant.users["hr"].headers
    assert rc.post(f"{API}/inquiries/{inquiry}/answer", headers=hr,
                   json={"answer": "checking the payroll extract"}).status_code == 200
    assert finalize(rc, tenant, run_id).status_code == 409  # answered is not resolved
    corrected = computed_run(rc, tenant, starter, plan_id, upload_id)
    resolved = rc.post(f"{API}/inquiries/{inquiry}/resolve", headers=hr, json={
        "resolution": "confirmed by payroll; re-run for the record",
        "corrected_run_id": corrected})
    assert resolved.status_code == 200, resolved.text
    assert resolved.json()["resolved_run_id"] == corrected
    assert finalize(rc, tenant, run_id).status_code == 200
    assert _audit_actions(rc, tenant, inquiry) == ["inquiry.raise", "inquiry.answer",
                                                   "inquiry.resolve"]
    assert [h["action"] for h in resolved.json()["history"]] == ["raise", "answer", "resolve"]


def test_an_inquiry_can_be_overridden_with_a_reason_which_is_audited(rc, consumer,
                                                                      make_tenant):
    tenant, starter, plan_id, upload_id = deferral_setup(rc, make_tenant, ROWS)
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    run_id = computed_run(rc, tenant, starter, plan_id, upload_id)
    raised = rc.post(f"{API}/inquiries", headers=tenant.users["hr"].headers, json={
        "run_id": run_id, "employee_ref": "E2", "question": "Why below the threshold?"})
    inquiry = raised.json()["id"]
    other = make_tenant().users["admin"].headers
    assert rc.get(f"{API}/inquiries/{inquiry}", headers=other).status_code == 404
    assert rc.post(f"{API}/inquiries/{inquiry}/answer", headers=other,
                   json={"answer": "x"}).status_code == 404
    assert rc.get(f"{API}/inquiries", params={"run_id": run_id}, headers=other).json() == []
    approve_to_finance(rc, tenant, run_id)
    done = finalize(rc, tenant, run_id, override_inquiries_reason="payroll cut-off today")
    assert done.status_code == 200, done.text
    assert _audit_actions(rc, tenant, inquiry) == ["inquiry.raise", "inquiry.override"]
    rejected = rc.post(f"{API}/inquiries/{inquiry}/reject", headers=tenant.users["hr"].headers,
                       json={"reason": "threshold is plan policy"})
    assert rejected.status_code == 200 and rejected.json()["status"] == "rejected"
    # raising on a finalized run is refused
    assert rc.post(f"{API}/inquiries", headers=tenant.users["hr"].headers, json={
        "run_id": run_id, "employee_ref": "E2", "question": "?"}).status_code == 409


def test_an_adjustment_run_pays_exactly_the_delta_and_corrects_the_ledger(rc, consumer,
                                                                          make_tenant):
    tenant, starter, plan_id, upload_id = deferral_setup(rc, make_tenant, ROWS)
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    run_id = computed_run(rc, tenant, starter, plan_id, upload_id)
    early = rc.post(f"{API}/adjustment-runs", headers=starter, json={
        "original_run_id": run_id, "upload_id": upload_id, "reason": "too early"})
    assert early.status_code == 409 and "only a finalized run" in early.json()["detail"]
    approve_to_finance(rc, tenant, run_id)
    assert finalize(rc, tenant, run_id).status_code == 200
    # E1's variable pay was 330,000.00, not 300,000.00: +30,000 payout, of which 40% =
    # +12,000.00 deferred and +18,000.00 cash now. E2 unchanged: not in the adjustment.
    corrected = employees_upload(rc, tenant, plan_id,
                                 [("E1", "330000.00", "T1"), ("E2", "50000.00", "T2")])
    started = rc.post(f"{API}/adjustment-runs", headers=starter, json={
        "original_run_id": run_id, "upload_id": corrected, "reason": "salary correction"})
    assert started.status_code == 202, started.text
    adjustment = started.json()["run_id"]
    assert wait_for_run(rc, adjustment, starter)["status"] == "draft"
    deltas = rc.get(f"{API}/adjustment-runs/{adjustment}",
                    headers=tenant.users["finance"].headers).json()
    assert [line["employee_ref"] for line in deltas["lines"]] == ["E1"]
    assert deltas["lines"][0]["delta"] == {"payout": "30000.0000000000",
                                           "deferred": "12000.0000000000",
                                           "cash_now": "18000.0000000000"}
    assert deltas["totals"]["cash_now"] == "18000.0000000000"
    statement = rc.get(f"{API}/adjustment-runs/{adjustment}/statements/E1",
                       headers=tenant.users["manager"].headers)
    assert statement.status_code == 200, statement.text
    assert "pays only the difference" in statement.json()["text"]
    assert ("Difference paid by this adjustment: cash +18,000.00 EUR, deferred "
            "+12,000.00 EUR") in statement.json()["text"]
    assert rc.get(f"{API}/adjustment-runs/{adjustment}/statements/E2",
                  headers=tenant.users["hr"].headers).status_code == 404

    approve_to_finance(rc, tenant, adjustment)
    assert finalize(rc, tenant, adjustment).status_code == 200
    payroll = rc.get(f"{API}/deferrals/payroll/{adjustment}",
                     headers=tenant.users["finance"].headers).json()
    assert [(x["employee_ref"], x["cash_now"], x["deferred"]) for x in payroll["lines"]] == [
        ("E1", "18000.0000000000", "12000.0000000000")]
    # ledger: +12,000 deferred = 3 x 4,000.00; half in units at the award NAV 100 = 20 units
    schedule = rc.get(f"{API}/deferrals/employees/E1/schedule",
                      headers=tenant.users["hr"].headers).json()
    corrections = [(e["tranche"], e["instrument"], e["amount"], e["units"])
                   for e in schedule["entries"] if e["kind"] == "adjustment"]
    assert corrections == [(t, i, "2000.0000000000", "20.0000000000" if i == "units" else None)
                           for t in (1, 2, 3) for i in ("units", "cash")]
    tranche = {(t["tranche"], t["instrument"]): t for t in schedule["awards"][0]["tranches"]}
    assert tranche[(1, "units")]["unvested"] == "220.0000000000"
    assert tranche[(3, "cash")]["unvested"] == "22000.0000000000"
