"""A finalized run of a plan with a deferral policy: the statement's instalments are the
ones the deferral ledger holds (the same dates and amounts, to the cent), in the tenant's
locale; an employee with nothing deferred has no deferral section."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal

from babel.dates import format_date
from babel.numbers import format_currency

from tests.reports.conftest import pdf_words
from tests.runs.conftest import consumer, rc  # noqa: F401
from tests.runs.deferral_support import (
    API,
    add_nav,
    approve_to_finance,
    computed_run,
    deferral_setup,
    finalize,
)


def _statement_words(rc, tenant, run_id: str, ref: str) -> str:  # noqa: F811
    answer = rc.post(f"{API}/reports/individual-statement", headers=tenant.users["hr"].headers,
                     json={"run_id": run_id, "employee_ref": ref, "format": "pdf"})
    assert answer.status_code == 200, answer.text
    return pdf_words(answer.content)


def _ledger_instalments(rc, tenant, ref: str) -> dict[date, Decimal]:  # noqa: F811
    schedule = rc.get(f"{API}/deferrals/employees/{ref}/schedule",
                      headers=tenant.users["hr"].headers)
    assert schedule.status_code == 200, schedule.text
    [award] = schedule.json()["awards"]
    totals: dict[date, Decimal] = defaultdict(Decimal)
    for part in award["tranches"]:  # unit parts at award NAV plus the cash rest
        totals[date.fromisoformat(part["vest_date"])] += Decimal(part["awarded_amount"])
    return dict(totals)


def test_the_statement_shows_the_ledgers_instalments(rc, consumer, make_tenant) -> None:  # noqa: F811
    tenant, starter, plan_id, upload_id = deferral_setup(
        rc, make_tenant, [("E1", "300000.01", "T1"), ("E2", "50000.00", "T1")])
    add_nav(rc, tenant, "F1", "2026-03-01", "97.3")
    run_id = computed_run(rc, tenant, starter, plan_id, upload_id)
    approve_to_finance(rc, tenant, run_id)
    assert finalize(rc, tenant, run_id).status_code == 200

    ledger = _ledger_instalments(rc, tenant, "E1")
    assert len(ledger) == 3 and sum(ledger.values()) == Decimal("120000.00")
    words = _statement_words(rc, tenant, run_id, "E1")
    money = lambda value: format_currency(value, "EUR", locale="en_GB")  # noqa: E731
    assert f"Deferred: {money(Decimal('120000.00'))}" in words
    assert f"Paid now: {money(Decimal('180000.01'))}" in words
    assert "Awarded on 1 March 2026. It vests in 3 yearly instalments:" in words
    for when, amount in sorted(ledger.items()):
        held = format_date(date(when.year, when.month + 6, when.day), "long", locale="en_GB")
        assert (f"Vests on {format_date(when, 'long', locale='en_GB')} held until {held} "
                f"{money(amount)}") in words, (when, amount)
    assert "50% of each instalment is paid in units of fund F1" in words

    nothing = _statement_words(rc, tenant, run_id, "E2")
    assert "Deferred part and its schedule" not in nothing and "Deferred:" not in nothing
