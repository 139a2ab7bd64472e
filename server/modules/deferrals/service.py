"""Deferrals: fund NAVs, deferred awards written at finalize, schedules and the liability.

Other areas call `on_finalize` (approvals, inside the finalize transaction: a failure here
rolls the finalize back, so a run is never finalized without its ledger, nor the other way
round) and `award_corrections` (adjustment runs). Vesting runs live in `vesting.py`, malus,
clawback and leavers in `actions.py`; the router reaches all of them through this module.
"""

from __future__ import annotations

import csv
import io
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from engine import r10
from engine.deferral import DeferralPolicy, award_parts, value_of
from engine.safe_cells import safe_text
from server.errors import Conflict, NotFound, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.auth.dependencies import Principal
from server.modules.deferrals import ledger
from server.modules.deferrals.models import DeferralAward, FundNav
from server.modules.runs import service as runs

ZERO = Decimal(0)


# -- NAVs ----------------------------------------------------------------------------------
def add_navs(session: Session, principal: Principal, rows: list[dict[str, Any]]) -> int:
    """Store NAVs (fund_ref, nav_date, nav, currency). A NAV already stored for the same fund
    and date must be identical (it is evidence and never changes): a different one is 409."""
    for index, row in enumerate(rows):
        if row["nav"] <= 0:
            raise UnprocessableEntity([{"loc": ["body", index, "nav"],
                                        "msg": f"row {index}: NAV must be positive"}])
    changed = 0
    for index, row in enumerate(rows):
        existing = session.scalar(select(FundNav).where(FundNav.fund_ref == row["fund_ref"],
                                                        FundNav.nav_date == row["nav_date"]))
        if existing is not None:
            if existing.nav != row["nav"] or existing.currency != row["currency"]:
                raise Conflict(f"row {index}: fund '{row['fund_ref']}' already has NAV "
                               f"{r10.text(existing.nav)} {existing.currency} on "
                               f"{row['nav_date']}; NAVs are never changed")
            continue
        session.execute(pg_insert(FundNav).values(
            tenant_id=session.info["tenant_id"], created_by=principal.user_id,
            source=row.get("source", "api"), fund_ref=row["fund_ref"],
            nav_date=row["nav_date"], nav=row["nav"], currency=row["currency"]))
        changed += 1
    if changed:
        record_event(session, principal_or_actor_id=principal, action="fund_nav.add",
                     entity="fund_nav", entity_id=uuid.uuid4(),
                     after={"rows": rows})
    return changed


def parse_nav_csv(payload: bytes) -> list[dict[str, Any]]:
    """NAV CSV (fund_ref,nav_date,nav,currency) → rows; errors name line and column."""
    try:
        text = payload.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise UnprocessableEntity([{"loc": ["body", "file"], "msg": "not UTF-8 text"}]) from None
    reader = csv.DictReader(io.StringIO(text))
    missing = {"fund_ref", "nav_date", "nav", "currency"} - set(reader.fieldnames or [])
    if missing:
        raise UnprocessableEntity([{"loc": ["body", "file", "header"],
                                    "msg": f"missing column(s): {', '.join(sorted(missing))}"}])
    rows, errors = [], []
    for line, raw in enumerate(reader, start=2):
        try:
            nav = Decimal((raw["nav"] or "").strip())
            if not nav.is_finite() or r10.r10(nav) != nav:
                raise ValueError
        except (ArithmeticError, ValueError):
            errors.append({"loc": ["body", "file", line, "nav"],
                           "msg": f"line {line}: {raw['nav']!r} is not a decimal NAV"})
            continue
        try:
            when = date.fromisoformat((raw["nav_date"] or "").strip())
        except ValueError:
            errors.append({"loc": ["body", "file", line, "nav_date"],
                           "msg": f"line {line}: {raw['nav_date']!r} is not an ISO date"})
            continue
        rows.append({"fund_ref": raw["fund_ref"].strip(), "nav_date": when, "nav": nav,
                     "currency": (raw["currency"] or "").strip().upper(), "source": "upload"})
    if errors:
        raise UnprocessableEntity(errors)
    return rows


def nav_on(session: Session, fund_ref: str, when: date) -> FundNav:
    """The fund's NAV on `when`, else its latest one before it; 409 when there is none."""
    nav = session.scalar(select(FundNav).where(FundNav.fund_ref == fund_ref,
                                               FundNav.nav_date <= when)
                         .order_by(FundNav.nav_date.desc()).limit(1))
    if nav is None:
        raise Conflict(f"no NAV for fund '{fund_ref}' on or before {when}: add it first "
                       "(POST /api/v1/fund-navs)",
                       errors=[{"loc": ["fund_navs", fund_ref], "msg": str(when)}])
    return nav


def list_navs(session: Session, fund_ref: str | None) -> list[FundNav]:
    query = select(FundNav).order_by(FundNav.fund_ref, FundNav.nav_date)
    if fund_ref:
        query = query.where(FundNav.fund_ref == fund_ref)
    return list(session.scalars(query))


# -- awards at finalize -----------------------------------------------------------------------
def _amount(raw: str | None, employee_ref: str, step: str) -> Decimal:
    if raw is None:
        raise Conflict(f"employee '{employee_ref}': step '{step}' is null, so the deferred "
                       "award cannot be written; fix the data and re-run")
    return Decimal(raw)


def check_finalize(session: Session, run_id: uuid.UUID) -> None:
    """Before a finalize (nothing written yet): 409 when an award NAV is missing."""
    run = runs.get_run(session, run_id)
    document = runs.run_document(run)
    if document.deferral is not None:
        award_date = document.deferral.effective_award_date(document.effective_to)
        for instrument in document.deferral.instruments:
            nav_on(session, instrument.fund_ref, award_date)


def on_finalize(session: Session, principal: Principal, run_id: uuid.UUID) -> int:
    """Write the run's deferred awards to the ledger (call inside the finalize transaction).
    Returns the number of awards; 0 when the plan has no deferral policy."""
    run = runs.get_run(session, run_id)
    document = runs.run_document(run)
    policy = document.deferral
    if policy is None:
        return 0
    award_date = policy.effective_award_date(document.effective_to)
    navs = {i.fund_ref: nav_on(session, i.fund_ref, award_date) for i in policy.instruments}
    values = runs.step_values(session, run_id, [policy.variable_pay_step, policy.deferred_step])
    rows, awards = [], []
    policy_json = policy.model_dump(mode="json")
    for employee_ref, found in values.items():
        deferred = _amount(found[policy.deferred_step], employee_ref, policy.deferred_step)
        if deferred <= 0:
            continue
        pay = _amount(found[policy.variable_pay_step], employee_ref, policy.variable_pay_step)
        award = {"id": uuid.uuid4(), "tenant_id": session.info["tenant_id"], "run_id": run_id,
                 "plan_id": run.plan_id, "employee_ref": employee_ref,
                 "award_date": award_date, "currency": document.currency,
                 "variable_pay": pay, "deferred": deferred, "policy": policy_json}
        awards.append(award)
        rows += award_entries(DeferralAward(**award), policy, deferred, navs, "award")
    if awards:  # bulk: a 10k-employee finalize must not flush 10k ORM objects one by one
        ledger.copy_rows(session, DeferralAward.__table__, awards, "award_stage")
    ledger.append(session, principal, "deferral.award", rows, "run", run_id)
    return len(awards)


def on_finalize_adjustment(session: Session, principal: Principal, run_id: uuid.UUID,
                           original_run_id: uuid.UUID) -> int:
    """An adjustment run's finalize: ledger corrections for the change of each employee's
    deferred amount against the original run's awards (a new award where there was none).
    A correction of an award that has started vesting is refused (use a clawback)."""
    run = runs.get_run(session, run_id)
    document = runs.run_document(run)
    policy = document.deferral
    if policy is None:
        return 0
    values = runs.step_values(session, run_id, [policy.variable_pay_step, policy.deferred_step])
    awards = {a.employee_ref: a for a in awards_of(session, run_id=original_run_id)}
    balances = defaultdict(lambda: ZERO)
    vested: set[uuid.UUID] = set()
    for entry in ledger.entries(session, award_ids=[a.id for a in awards.values()]):
        if entry.kind in ("award", "adjustment"):
            balances[entry.award_id] += entry.amount
        elif entry.kind in ("vest", "malus", "forfeit", "clawback"):
            vested.add(entry.award_id)
    rows, touched = [], 0
    for employee_ref, found in values.items():
        deferred = max(_amount(found[policy.deferred_step], employee_ref, policy.deferred_step),
                       ZERO)
        award = awards.get(employee_ref)
        delta = deferred - (balances[award.id] if award else ZERO)
        if delta == 0:
            continue
        if award is not None and award.id in vested:
            raise Conflict(f"employee '{employee_ref}': the award of run {original_run_id} has "
                           "already vested, been reduced or forfeited in part; correct it "
                           "with a malus or clawback instead")
        kind = "adjustment"
        if award is None:
            pay = _amount(found[policy.variable_pay_step], employee_ref,
                          policy.variable_pay_step)
            award = DeferralAward(id=uuid.uuid4(), run_id=run_id, plan_id=run.plan_id,
                                  employee_ref=employee_ref,
                                  award_date=policy.effective_award_date(document.effective_to),
                                  currency=document.currency, variable_pay=pay,
                                  deferred=deferred, policy=policy.model_dump(mode="json"))
            session.add(award)
            kind = "award"
        award_policy = DeferralPolicy.model_validate(award.policy)
        navs = {i.fund_ref: nav_on(session, i.fund_ref, award.award_date)
                for i in award_policy.instruments}
        rows += award_entries(award, award_policy, delta, navs, kind)
        touched += 1
    session.flush()
    ledger.append(session, principal, "deferral.adjustment", rows, "adjustment_run", run_id)
    return touched


def award_entries(award: DeferralAward, policy: DeferralPolicy, deferred: Decimal,
                  navs: dict[str, FundNav], kind: str) -> list[dict[str, Any]]:
    """Ledger rows for `deferred` split per the policy at the award date's NAVs."""
    parts = award_parts(policy, award.award_date, deferred,
                        {fund: nav.nav for fund, nav in navs.items()})
    return [{"award_id": award.id, "employee_ref": award.employee_ref, "tranche": p.tranche,
             "kind": kind, "instrument": p.instrument, "fund_ref": p.fund_ref,
             "amount": p.amount, "units": p.units, "nav": p.nav,
             "nav_date": navs[p.fund_ref].nav_date if p.fund_ref else None,
             "currency": award.currency, "vest_date": p.vest_date,
             "retention_until": p.retention_until, "effective_date": award.award_date}
            for p in parts]


def awards_of(session: Session, run_id: uuid.UUID | None = None,
              employee_ref: str | None = None) -> list[DeferralAward]:
    query = select(DeferralAward).order_by(DeferralAward.employee_ref, DeferralAward.award_date)
    if run_id is not None:
        query = query.where(DeferralAward.run_id == run_id)
    if employee_ref is not None:
        query = query.where(DeferralAward.employee_ref == employee_ref)
    return list(session.scalars(query))


def get_award(session: Session, award_id: uuid.UUID) -> DeferralAward:
    award = session.get(DeferralAward, award_id)
    if award is None:
        raise NotFound("deferral award")
    return award


# -- reports ---------------------------------------------------------------------------------
def r10_text(value: Decimal | None) -> str | None:
    return None if value is None else r10.text(r10.r10(value))


def schedule(session: Session, employee_ref: str) -> dict[str, Any]:
    """The employee's awards, each tranche part's balances and every ledger entry."""
    awards = awards_of(session, employee_ref=employee_ref)
    if not awards:
        raise NotFound("deferral schedule", f"employee '{employee_ref}' has no deferred awards")
    rows = ledger.entries(session, employee_ref=employee_ref)
    parts = ledger.positions(rows)
    return {
        "employee_ref": employee_ref,
        "awards": [{
            "id": a.id, "run_id": a.run_id, "award_date": a.award_date,
            "currency": a.currency, "variable_pay": r10_text(a.variable_pay),
            "deferred": r10_text(a.deferred),
            "tranches": [position_out(p) for p in parts if p.award_id == a.id],
        } for a in awards],
        "entries": [entry_out(e) for e in rows],
    }


def position_out(p: ledger.Position) -> dict[str, Any]:
    return {"tranche": p.tranche, "instrument": p.instrument, "fund_ref": p.fund_ref,
            "vest_date": p.vest_date, "retention_until": p.retention_until,
            "award_nav": r10_text(p.award_nav), "awarded": r10_text(p.awarded),
            "awarded_amount": r10_text(p.awarded_amount), "unvested": r10_text(p.unvested),
            "unvested_amount": r10_text(p.unvested_amount), "vested": r10_text(p.vested),
            "vested_amount": r10_text(p.vested_amount),
            "malus": r10_text(p.by_kind["malus"]), "forfeited": r10_text(p.by_kind["forfeit"]),
            "clawed_back": r10_text(p.by_kind["clawback"])}


def entry_out(e: Any) -> dict[str, Any]:
    return {"seq": e.seq, "id": e.id, "batch_id": e.batch_id, "award_id": e.award_id,
            "employee_ref": e.employee_ref, "tranche": e.tranche, "kind": e.kind,
            "instrument": e.instrument, "fund_ref": e.fund_ref, "amount": r10_text(e.amount),
            "units": r10_text(e.units), "nav": r10_text(e.nav), "nav_date": e.nav_date,
            "currency": e.currency, "vest_date": e.vest_date,
            "retention_until": e.retention_until, "effective_date": e.effective_date,
            "source": e.source, "source_id": e.source_id, "note": e.note}


@dataclass
class _Bucket:
    units: Decimal = ZERO
    amount: Decimal = ZERO
    value: Decimal = ZERO


def liability(session: Session, as_of: date) -> dict[str, Any]:
    """Outstanding (unvested) deferred pay by fund, vesting year and instrument: cash at its
    amount, units at the latest NAV on or before `as_of` (finance's accrual)."""
    buckets: dict[tuple, _Bucket] = defaultdict(_Bucket)
    navs: dict[str, FundNav] = {}
    for p in ledger.positions(ledger.entries(session)):
        if p.unvested == 0:
            continue
        bucket = buckets[(p.fund_ref or "", p.vest_date.year, p.instrument, p.currency)]
        if p.instrument == "units":
            nav = navs.get(p.fund_ref) or navs.setdefault(p.fund_ref,
                                                          nav_on(session, p.fund_ref, as_of))
            bucket.units += p.unvested
            bucket.value += value_of(p.unvested, nav.nav)
        else:
            bucket.value += p.unvested
        bucket.amount += p.unvested_amount
    lines = [{"fund_ref": fund or None, "vest_year": year, "instrument": instrument,
              "currency": currency, "units": r10_text(b.units) if instrument == "units" else None,
              "nav": r10_text(navs[fund].nav) if instrument == "units" else None,
              "nav_date": navs[fund].nav_date if instrument == "units" else None,
              "award_value": r10_text(b.amount), "value": r10_text(b.value)}
             for (fund, year, instrument, currency), b in sorted(buckets.items())]
    totals: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for (_, _, _, currency), b in buckets.items():
        totals[currency] += b.value
    return {"as_of": as_of, "lines": lines,
            "totals": {currency: r10_text(total) for currency, total in sorted(totals.items())}}


PAYROLL_COLUMNS = ("employee_ref", "currency", "fund_ref", "cash_now", "deferred", "vested_cash",
                   "vested_units", "vested_units_value")


def run_payroll(session: Session, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """Payroll lines of a plan run: cash paid now and the deferred part (nothing vests)."""
    run = runs.computed_run(session, run_id)
    document = runs.run_document(run)
    policy = document.deferral
    steps = [document.payout] if policy is None else [policy.variable_pay_step,
                                                       policy.deferred_step]
    lines = []
    for ref, found in runs.step_values(session, run_id, steps).items():
        pay = Decimal(found[steps[0]] or 0)
        deferred = Decimal(found[steps[1]] or 0) if policy else ZERO
        deferred = max(deferred, ZERO)
        lines.append({"employee_ref": ref, "currency": document.currency, "fund_ref": "",
                      "cash_now": pay - deferred, "deferred": deferred, "vested_cash": ZERO,
                      "vested_units": ZERO, "vested_units_value": ZERO})
    return lines


def payroll_totals(lines: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    for line in lines:
        for column in PAYROLL_COLUMNS[3:]:
            totals[line["currency"]][column] += line[column]
    return {cur: {k: r10_text(v) for k, v in cols.items()} for cur, cols in sorted(totals.items())}


def payroll_csv(lines: list[dict[str, Any]]) -> bytes:
    """Payroll lines as CSV (R10 amounts; text cells neutralised against formula injection)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(PAYROLL_COLUMNS)
    for line in lines:
        writer.writerow([safe_text(str(line[c])) if c in ("employee_ref", "currency", "fund_ref")
                         else r10_text(line[c]) for c in PAYROLL_COLUMNS])
    return out.getvalue().encode("utf-8")
