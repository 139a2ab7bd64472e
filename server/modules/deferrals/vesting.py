"""Vesting runs: the tranches due on a date, converted at that date's NAV, approved like runs.

    draft ─hr_approve→ hr_approved ─finance_approve→ finance_approved ─finalize→ finalized
    reject: from draft, hr_approved or finance_approved back to draft (a reason is required)

The gates are the run permissions of the same stages (`runs.approve.hr`, `...finance`,
`runs.finalize`); there is no manager stage because a vesting run only converts awards whose
runs managers already approved. Four-eyes as for runs: whoever created the vesting run does
not approve or finalize it; with separation of duties (per tenant, on by default, the same
`separation_of_duties` setting as runs) nobody approves two stages of one round and nobody
who approved the vesting run finalizes it. The lines are
computed when the vesting run is created and re-computed at finalize; if the ledger changed
in between (a malus, a leaver, another vesting run) the finalize is refused with 409, so a
vesting run never pays what the ledger no longer holds. Finalize writes one `vest` entry per
line, in the same transaction as the state change.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import r10
from engine.deferral import value_of
from server.errors import Conflict, Forbidden, NotFound, UnprocessableEntity
from server.modules.audit.service import record_event, record_refusal
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import allowed
from server.modules.deferrals import ledger
from server.modules.deferrals.models import VestingRun
from server.modules.deferrals.service import nav_on
from server.modules.tenants import service as tenants

TRANSITIONS = {
    "hr_approve": ("draft", "hr_approved", "runs.approve.hr"),
    "finance_approve": ("hr_approved", "finance_approved", "runs.approve.finance"),
    "finalize": ("finance_approved", "finalized", "runs.finalize"),
}
REJECT_GATES = {"draft": "runs.approve.hr", "hr_approved": "runs.approve.finance",
                "finance_approved": "runs.finalize"}
ENTITY = "vesting_run"


def due_lines(session: Session, vest_date: date) -> list[dict[str, Any]]:
    """Every unvested tranche part due on or before `vest_date`, valued at that date's NAV."""
    lines = []
    for p in ledger.positions(ledger.entries(session)):
        if p.vest_date > vest_date or p.unvested <= 0:
            continue
        line = {"award_id": str(p.award_id), "employee_ref": p.employee_ref,
                "tranche": p.tranche, "instrument": p.instrument, "fund_ref": p.fund_ref,
                "currency": p.currency, "vest_date": p.vest_date.isoformat(),
                "retention_until": p.retention_until.isoformat(), "units": None,
                "nav": None, "nav_date": None, "amount": r10.text(p.unvested)}
        if p.instrument == "units":
            nav = nav_on(session, p.fund_ref, vest_date)
            line.update(units=r10.text(p.unvested), nav=r10.text(nav.nav),
                        nav_date=nav.nav_date.isoformat(),
                        amount=r10.text(value_of(p.unvested, nav.nav)))
        lines.append(line)
    return sorted(lines, key=lambda x: (x["employee_ref"], x["tranche"], x["instrument"],
                                        x["fund_ref"] or ""))


def create(session: Session, principal: Principal, vest_date: date) -> VestingRun:
    lines = due_lines(session, vest_date)
    if not lines:
        raise Conflict(f"no unvested tranche is due on or before {vest_date}")
    run = VestingRun(vest_date=vest_date, status="draft", lines=lines,
                     created_by=principal.user_id, approvals_state={"history": []})
    session.add(run)
    session.flush()
    record_event(session, principal_or_actor_id=principal, action="vesting_run.create",
                 entity=ENTITY, entity_id=run.id,
                 after={"vest_date": vest_date, "lines": len(lines)})
    return run


def get(session: Session, run_id: uuid.UUID, for_update: bool = False) -> VestingRun:
    query = select(VestingRun).where(VestingRun.id == run_id)
    run = session.scalar(query.with_for_update() if for_update else query)
    if run is None:
        raise NotFound("vesting run")
    return run


def list_runs(session: Session) -> list[VestingRun]:
    return list(session.scalars(select(VestingRun).order_by(VestingRun.created_at.desc())))


def _round(run: VestingRun) -> list[dict[str, Any]]:
    history = run.approvals_state.get("history", [])
    rejects = [i for i, e in enumerate(history) if e["action"] == "reject"]
    return history[rejects[-1] + 1:] if rejects else history


def _check_duties(session: Session, run: VestingRun, principal: Principal, action: str
                  ) -> None:
    """Four-eyes always; separation of duties unless the tenant turned it off."""
    if run.created_by == principal.user_id:
        raise Forbidden(f"four-eyes: you created vesting run {run.id}, so you cannot {action} it")
    if not tenants.separation_of_duties(session, principal.tenant_id):
        return
    me = str(principal.user_id)
    if action == "finalize":
        approved = [e["action"] for e in run.approvals_state.get("history", [])
                    if e["actor_user_id"] == me and e["action"] in TRANSITIONS]
        if approved:
            raise Forbidden(f"separation of duties: you did {approved[-1]} on vesting run "
                            f"{run.id}, so you cannot finalize it")
    elif any(e["actor_user_id"] == me for e in _round(run)):
        raise Forbidden("separation of duties: nobody approves two stages of one vesting run")


def _check(session: Session, run: VestingRun, principal: Principal, action: str,
           comment: str | None) -> str:
    if action == "reject":
        gate = REJECT_GATES.get(run.status)
        if gate is None:
            raise Conflict(f"vesting run {run.id} is {run.status}: it cannot be rejected")
        if not allowed(principal.role, gate):
            raise Forbidden(f"role '{principal.role}' cannot reject a {run.status} vesting run")
        if not (comment or "").strip():
            raise UnprocessableEntity([{"loc": ["body", "comment"],
                                        "msg": "a reject needs a comment giving the reason"}])
        return "draft"
    source, target, permission = TRANSITIONS[action]
    if not allowed(principal.role, permission):
        raise Forbidden(f"role '{principal.role}' lacks permission '{permission}'")
    if run.status != source:
        raise Conflict(f"vesting run {run.id} is {run.status}: {action} needs {source}")
    _check_duties(session, run, principal, action)
    return target


def transition(session: Session, principal: Principal, run_id: uuid.UUID, action: str,
               comment: str | None) -> VestingRun:
    run = get(session, run_id, for_update=True)
    before = run.status
    try:
        target = _check(session, run, principal, action, comment)
        if action == "finalize":
            _finalize(session, principal, run)
    except (Forbidden, Conflict) as error:
        record_refusal(principal.tenant_id, principal.user_id, f"vesting_run.{action}", ENTITY,
                       run_id, error.detail or error.title)
        raise
    entry = {"action": action, "from_state": before, "to_state": target,
             "actor_user_id": str(principal.user_id), "actor_role": str(principal.role),
             "at": datetime.now(UTC).isoformat(), "comment": comment}
    run.approvals_state = {"history": [*run.approvals_state.get("history", []), entry]}
    run.status = target
    if target == "finalized":
        run.finalized_at = datetime.now(UTC)
    session.flush()
    record_event(session, principal_or_actor_id=principal, action=f"vesting_run.{action}",
                 entity=ENTITY, entity_id=run.id, before={"status": before},
                 after={"status": target, "comment": comment})
    return run


def _finalize(session: Session, principal: Principal, run: VestingRun) -> None:
    if due_lines(session, run.vest_date) != run.lines:
        raise Conflict(f"the ledger changed since vesting run {run.id} was computed (a malus, "
                       "a leaver or another vesting run); reject it and create a new one")
    rows = [{"award_id": uuid.UUID(x["award_id"]), "employee_ref": x["employee_ref"],
             "tranche": x["tranche"], "kind": "vest", "instrument": x["instrument"],
             "fund_ref": x["fund_ref"], "amount": Decimal(x["amount"]),
             "units": Decimal(x["units"]) if x["units"] else None,
             "nav": Decimal(x["nav"]) if x["nav"] else None,
             "nav_date": date.fromisoformat(x["nav_date"]) if x["nav_date"] else None,
             "currency": x["currency"], "vest_date": date.fromisoformat(x["vest_date"]),
             "retention_until": date.fromisoformat(x["retention_until"]),
             "effective_date": run.vest_date} for x in run.lines]
    ledger.append(session, principal, "deferral.vest", rows, "vesting_run", run.id)


def payroll(run: VestingRun) -> list[dict[str, Any]]:
    """Payroll lines of a vesting run: per employee and fund, the cash and units vesting."""
    zero = Decimal(0)
    found: dict[tuple, dict[str, Any]] = {}
    for x in run.lines:
        key = (x["employee_ref"], x["currency"], x["fund_ref"] or "")
        line = found.setdefault(key, {"employee_ref": key[0], "currency": key[1],
                                      "fund_ref": key[2], "cash_now": zero, "deferred": zero,
                                      "vested_cash": zero, "vested_units": zero,
                                      "vested_units_value": zero})
        if x["instrument"] == "cash":
            line["vested_cash"] += Decimal(x["amount"])
        else:
            line["vested_units"] += Decimal(x["units"])
            line["vested_units_value"] += Decimal(x["amount"])
    return [found[key] for key in sorted(found)]


def _plain(text: str) -> str:
    """An R10 number for people: trailing zeros dropped, never exponent notation."""
    return format(Decimal(text).normalize(), "f")


def statement(run: VestingRun, employee_ref: str) -> dict[str, Any]:
    """The employee's vesting statement: each part vesting, its NAV, value and retention."""
    lines = [x for x in run.lines if x["employee_ref"] == employee_ref]
    if not lines:
        raise NotFound("employee", f"employee '{employee_ref}' has nothing vesting in this run")
    parts = []
    for x in lines:
        money = f"{Decimal(x['amount']):,.2f} {x['currency']}"
        what = (f"{_plain(x['units'])} units of {x['fund_ref']} at NAV {_plain(x['nav'])} "
                f"({x['nav_date']}) = {money}, retained until {x['retention_until']}"
                if x["instrument"] == "units" else f"cash {money}")
        parts.append(f"tranche {x['tranche']} (due {x['vest_date']}): {what}")
    text = (f"Vesting statement for {employee_ref}, vesting run of {run.vest_date} "
            f"({run.status}): " + "; ".join(parts) + ".")
    return {"vesting_run_id": run.id, "employee_ref": employee_ref, "status": run.status,
            "lines": lines, "text": text}


def out(run: VestingRun) -> dict[str, Any]:
    return {"id": run.id, "vest_date": run.vest_date, "status": run.status,
            "created_by": run.created_by, "created_at": run.created_at,
            "finalized_at": run.finalized_at, "lines": run.lines,
            "approvals": run.approvals_state.get("history", [])}
