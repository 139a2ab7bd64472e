"""The worked example of docs/deferrals.md, every figure computed by hand below.

Employee E1 has variable pay 300,000.00 EUR, above the 100,000 threshold, so the plan defers
40% = 120,000.00 and pays 180,000.00 now. E2 (50,000.00) is below the threshold: nothing
deferred. The award date is 2026-03-01; fund F1's NAV that day is 100.

Deferred 120,000.00 pro rata over 3 years = 3 tranches of 40,000.00, vesting 2027-03-01,
2028-03-01 and 2029-03-01 (first vesting 12 months after the award). Each tranche is 50% in
units of F1: 20,000.00 / 100 = 200.0000 units (value 20,000.00), and 20,000.00 cash. Units
are retained 6 months after vesting (2027-09-01, 2028-09-01, 2029-09-01).

Year 1 (vesting run 2027-03-01, NAV 110): tranche 1 vests: cash 20,000.00 and 200 units worth
200 x 110 = 22,000.00.
Malus of 50% on tranche 2 (reason + evidence; HR proposes, admin and finance approve):
cash -10,000.00; units -100.0000, valued at the award NAV 100: -10,000.00.
Year 2 (vesting run 2028-03-01, NAV 120): tranche 2's remainder vests: cash 10,000.00 and
100 units worth 12,000.00.
Bad-leaver exit on 2028-06-30, before year 3: tranche 3 is forfeited: cash -20,000.00 and
units -200.0000 (award value -20,000.00).

Liability (outstanding unvested, units at the latest NAV):
- on 2026-03-01 (NAV 100): per year 20,000.00 cash + 200 units worth 20,000.00; total
  120,000.00.
- on 2027-03-01 (NAV 110): years 2028 and 2029, 20,000.00 cash + 200 units worth 22,000.00
  each; total 84,000.00.
- after the malus (NAV 110): 2028: 10,000.00 cash + 100 units worth 11,000.00; 2029:
  20,000.00 + 22,000.00; total 63,000.00.
- after the exit: nothing outstanding.
"""

from __future__ import annotations

from server.db import session as db
from server.modules.auth.permissions import Role
from server.modules.auth.service import forget_sessions
from server.modules.tenants import service as tenants
from tests.runs.deferral_support import (
    API,
    add_nav,
    approve_to_finance,
    computed_run,
    deferral_setup,
    extra_user,
    finalize,
)


def money(text: str) -> str:
    """'20000.00' -> '20000.0000000000' (R10 text)."""
    whole, _, cents = text.partition(".")
    return f"{whole}.{(cents or '').ljust(10, '0')}"


def entry(kind, tranche, instrument, amount, units=None, nav=None, effective="2026-03-01"):
    vest = {1: "2027-03-01", 2: "2028-03-01", 3: "2029-03-01"}[tranche]
    retained = {1: "2027-09-01", 2: "2028-09-01", 3: "2029-09-01"}[tranche]
    return {"kind": kind, "tranche": tranche, "instrument": instrument,
            "fund_ref": "F1" if instrument == "units" else None, "amount": money(amount),
            "units": money(units) if units else None, "nav": money(nav) if nav else None,
            "vest_date": vest,
            "retention_until": retained if instrument == "units" else vest,
            "effective_date": effective}


AWARD = [entry("award", t, i, "20000.00", "200" if i == "units" else None,
               "100" if i == "units" else None)
         for t in (1, 2, 3) for i in ("units", "cash")]
YEAR1 = [entry("vest", 1, "cash", "20000.00", effective="2027-03-01"),
         entry("vest", 1, "units", "22000.00", "200", "110", "2027-03-01")]
MALUS = [entry("malus", 2, "units", "-10000.00", "-100", "100", "2027-06-01"),
         entry("malus", 2, "cash", "-10000.00", effective="2027-06-01")]
YEAR2 = [entry("vest", 2, "cash", "10000.00", effective="2028-03-01"),
         entry("vest", 2, "units", "12000.00", "100", "120", "2028-03-01")]
EXIT = [entry("forfeit", 3, "units", "-20000.00", "-200", "100", "2028-06-30"),
        entry("forfeit", 3, "cash", "-20000.00", effective="2028-06-30")]
KEYS = ("kind", "tranche", "instrument", "fund_ref", "amount", "units", "nav", "vest_date",
        "retention_until", "effective_date")


def ledger_of(rc, tenant, employee_ref="E1"):
    response = rc.get(f"{API}/deferrals/employees/{employee_ref}/schedule",
                      headers=tenant.users["hr"].headers)
    assert response.status_code == 200, response.text
    return response.json()


def projected(schedule):
    return [{k: e[k] for k in KEYS} for e in schedule["entries"]]


def liability(rc, tenant, as_of):
    response = rc.get(f"{API}/deferrals/liability", params={"as_of": as_of},
                      headers=tenant.users["finance"].headers)
    assert response.status_code == 200, response.text
    body = response.json()
    return {(x["vest_year"], x["instrument"]): (x["units"], x["value"]) for x in body["lines"]}, \
        body["totals"]


def vest(rc, tenant, starter, when):
    created = rc.post(f"{API}/vesting-runs", headers=starter, json={"vest_date": when})
    assert created.status_code == 201, created.text
    run_id = created.json()["id"]
    for role, action in (("hr", "hr_approve"), ("finance", "finance_approve"),
                         ("admin", "finalize")):
        response = rc.post(f"{API}/vesting-runs/{run_id}/transition",
                           headers=tenant.users[role].headers, json={"action": action})
        assert response.status_code == 200, response.text
    return created.json()


def test_worked_example_to_the_cent(rc, consumer, make_tenant):
    tenant, starter, plan_id, upload_id = deferral_setup(
        rc, make_tenant, [("E1", "300000.00", "T1"), ("E2", "50000.00", "T1")])
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    run_id = computed_run(rc, tenant, starter, plan_id, upload_id)
    approve_to_finance(rc, tenant, run_id)
    assert finalize(rc, tenant, run_id).status_code == 200

    # the award: 6 entries, E2 has none
    schedule = ledger_of(rc, tenant)
    assert schedule["awards"][0]["deferred"] == money("120000.00")
    assert schedule["awards"][0]["variable_pay"] == money("300000.00")
    assert projected(schedule) == AWARD
    assert rc.get(f"{API}/deferrals/employees/E2/schedule",
                  headers=tenant.users["hr"].headers).status_code == 404
    lines, totals = liability(rc, tenant, "2026-03-01")
    for year in (2027, 2028, 2029):
        assert lines[(year, "units")] == (money("200"), money("20000.00"))
        assert lines[(year, "cash")] == (None, money("20000.00"))
    assert totals == {"EUR": money("120000.00")}

    # the run's payroll file: cash now and deferred
    payroll = rc.get(f"{API}/deferrals/payroll/{run_id}", headers=tenant.users["finance"].headers)
    figures = {x["employee_ref"]: (x["cash_now"], x["deferred"]) for x in payroll.json()["lines"]}
    assert figures == {"E1": (money("180000.00"), money("120000.00")),
                       "E2": (money("50000.00"), money("0"))}
    assert payroll.json()["totals"]["EUR"]["cash_now"] == money("230000.00")

    # year 1 at NAV 110
    add_nav(rc, tenant, "F1", "2027-03-01", "110")
    vesting = vest(rc, tenant, starter, "2027-03-01")
    assert projected(ledger_of(rc, tenant)) == AWARD + YEAR1
    csv_text = rc.get(f"{API}/deferrals/payroll/{vesting['id']}", params={"format": "csv"},
                      headers=tenant.users["finance"].headers).text
    assert csv_text.splitlines() == [
        "employee_ref,currency,fund_ref,cash_now,deferred,vested_cash,vested_units,"
        "vested_units_value",
        f"E1,EUR,,{money('0')},{money('0')},{money('20000.00')},{money('0')},{money('0')}",
        f"E1,EUR,F1,{money('0')},{money('0')},{money('0')},{money('200')},"
        f"{money('22000.00')}"]
    text = rc.get(f"{API}/vesting-runs/{vesting['id']}/statements/E1",
                  headers=tenant.users["hr"].headers).json()["text"]
    assert ("tranche 1 (due 2027-03-01): cash 20,000.00 EUR; tranche 1 (due 2027-03-01): "
            "200 units of F1 at NAV 110 (2027-03-01) = 22,000.00 EUR, retained until "
            "2027-09-01") in text
    lines, totals = liability(rc, tenant, "2027-03-01")
    assert lines == {(2028, "units"): (money("200"), money("22000.00")),
                     (2028, "cash"): (None, money("20000.00")),
                     (2029, "units"): (money("200"), money("22000.00")),
                     (2029, "cash"): (None, money("20000.00"))}
    assert totals == {"EUR": money("84000.00")}

    # malus 50% on tranche 2: HR proposes, a second person and finance approve
    award_id = schedule["awards"][0]["id"]
    proposed = rc.post(f"{API}/malus", headers=tenant.users["hr"].headers, json={
        "award_id": award_id, "tranche": 2, "fraction": "0.5", "effective_date": "2027-06-01",
        "reason": "risk event in F1", "evidence": "board minutes 2027-05-20, item 4"})
    assert proposed.status_code == 201, proposed.text
    malus_id = proposed.json()["id"]
    for role in ("admin", "finance"):
        decided = rc.post(f"{API}/malus/{malus_id}/decision", headers=tenant.users[role].headers,
                          json={"approve": True})
        assert decided.status_code == 200, decided.text
    assert decided.json()["status"] == "applied"
    assert projected(ledger_of(rc, tenant)) == AWARD + YEAR1 + MALUS
    lines, totals = liability(rc, tenant, "2027-06-01")
    assert lines[(2028, "units")] == (money("100"), money("11000.00"))
    assert lines[(2028, "cash")] == (None, money("10000.00"))
    assert totals == {"EUR": money("63000.00")}

    # year 2 at NAV 120, then a bad-leaver exit before year 3
    add_nav(rc, tenant, "F1", "2028-03-01", "120")
    vest(rc, tenant, starter, "2028-03-01")
    exit_ = rc.post(f"{API}/deferrals/leavers", headers=tenant.users["hr"].headers, json={
        "employee_ref": "E1", "exit_date": "2028-06-30", "leaver_kind": "bad",
        "reason": "dismissed for cause"})
    assert exit_.status_code == 201, exit_.text
    final = ledger_of(rc, tenant)
    assert projected(final) == AWARD + YEAR1 + MALUS + YEAR2 + EXIT
    tranches = {(t["tranche"], t["instrument"]): t for t in final["awards"][0]["tranches"]}
    assert tranches[(1, "units")]["vested_amount"] == money("22000.00")
    assert tranches[(1, "units")]["unvested_amount"] == money("0")
    assert tranches[(1, "units")]["awarded_amount"] == money("20000.00")
    assert tranches[(2, "units")]["vested"] == money("100")
    assert tranches[(2, "cash")]["malus"] == money("-10000.00")
    assert tranches[(3, "units")]["unvested"] == money("0")
    assert tranches[(3, "cash")]["forfeited"] == money("-20000.00")
    assert liability(rc, tenant, "2028-07-01") == ({}, {})

    # nothing more to vest; the ledger and the audit chain agree
    assert rc.post(f"{API}/vesting-runs", headers=starter,
                   json={"vest_date": "2029-03-01"}).status_code == 409
    check = rc.get(f"{API}/deferrals/verify", headers=tenant.users["admin"].headers).json()
    assert check["ok"] and check["entries"] == 14, check
    chain = rc.get(f"{API}/audit/verify", headers=tenant.users["admin"].headers)
    assert chain.status_code == 200 and chain.json()["ok"], chain.text


def test_the_run_creator_cannot_approve_their_vesting_run(rc, consumer, make_tenant):
    tenant, starter, plan_id, upload_id = deferral_setup(rc, make_tenant,
                                                         [("E1", "300000.00", "T1")])
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    run_id = computed_run(rc, tenant, starter, plan_id, upload_id)
    approve_to_finance(rc, tenant, run_id)
    assert finalize(rc, tenant, run_id).status_code == 200
    add_nav(rc, tenant, "F1", "2027-03-01", "110")
    hr2 = extra_user(tenant, Role.HR)
    created = rc.post(f"{API}/vesting-runs", headers=hr2, json={"vest_date": "2027-03-01"})
    run = created.json()["id"]
    refused = rc.post(f"{API}/vesting-runs/{run}/transition", headers=hr2,
                      json={"action": "hr_approve"})
    assert refused.status_code == 403 and "four-eyes" in refused.json()["detail"]
    ok = rc.post(f"{API}/vesting-runs/{run}/transition", headers=tenant.users["hr"].headers,
                 json={"action": "hr_approve"})
    assert ok.status_code == 200
    twice = rc.post(f"{API}/vesting-runs/{run}/transition", headers=tenant.users["hr"].headers,
                    json={"action": "finance_approve"})
    assert twice.status_code == 403


def _vesting_step(rc, run: str, headers: dict[str, str], action: str):
    return rc.post(f"{API}/vesting-runs/{run}/transition", headers=headers,
                   json={"action": action})


def test_separation_of_duties_on_vesting_runs(rc, consumer, make_tenant):
    """On by default: nobody approves two stages of a vesting run (an hr approver made finance
    meanwhile), nor approves and then finalizes it; the tenant's switch turns it off as for
    runs, four-eyes on the creator stays."""
    tenant, starter, plan_id, upload_id = deferral_setup(rc, make_tenant,
                                                         [("E1", "300000.00", "T1")])
    add_nav(rc, tenant, "F1", "2026-03-01", "100")
    run_id = computed_run(rc, tenant, starter, plan_id, upload_id)
    approve_to_finance(rc, tenant, run_id)
    assert finalize(rc, tenant, run_id).status_code == 200
    add_nav(rc, tenant, "F1", "2027-03-01", "110")
    run = rc.post(f"{API}/vesting-runs", headers=starter,
                  json={"vest_date": "2027-03-01"}).json()["id"]
    admin, finance = tenant.users["admin"].headers, tenant.users["finance"].headers
    hr = tenant.users["hr"]
    assert _vesting_step(rc, run, hr.headers, "hr_approve").status_code == 200
    with db.tenant_session(tenant.id) as session:
        session.get(tenants.User, hr.id).role = "finance"
        forget_sessions(session, hr.id)  # as the users API does on a role change
    twice = _vesting_step(rc, run, hr.headers, "finance_approve")
    assert twice.status_code == 403
    assert "separation of duties: nobody approves two stages" in twice.json()["detail"]
    assert _vesting_step(rc, run, finance, "finance_approve").status_code == 200
    refused = _vesting_step(rc, run, finance, "finalize")
    assert refused.status_code == 403, refused.text
    assert (f"separation of duties: you did finance_approve on vesting run {run}, so you "
            "cannot finalize it") == refused.json()["detail"]
    events = rc.get("/api/v1/audit", params={"entity": "vesting_run"},
                    headers=tenant.users["auditor"].headers).json()["items"]
    assert {e["action"] for e in events} >= {"vesting_run.finalize.refused",
                                             "vesting_run.finance_approve.refused"}
    status = rc.get(f"{API}/vesting-runs/{run}", headers=finance).json()["status"]
    assert status == "finance_approved"  # the refusal changed nothing

    turned = rc.patch(f"{API}/tenants/{tenant.id}/settings", headers=admin,
                      json={"separation_of_duties": False})
    assert turned.status_code == 200, turned.text
    assert _vesting_step(rc, run, starter, "finalize").status_code == 403  # still the creator
    done = _vesting_step(rc, run, finance, "finalize")
    assert done.status_code == 200 and done.json()["status"] == "finalized", done.text
