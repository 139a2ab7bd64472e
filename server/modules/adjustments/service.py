"""Adjustment runs: after a finalize, pay only the per-employee difference of a corrected run.

An adjustment run is an ordinary run (same plan or a new version of it for the same period,
corrected data) linked to the finalized run it corrects. It goes through the normal run
approvals; what it pays and reports is the delta per employee (payout, cash now, deferred),
and its finalize writes ledger corrections for the change of the deferred part instead of
new awards (`on_finalize`, called by approvals for every finalize).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from engine import r10
from server.db import session as db
from server.errors import Conflict, NotFound, UnprocessableEntity
from server.modules.adjustments.models import AdjustmentRun
from server.modules.audit.service import record_event
from server.modules.auth.access import TEAM_INPUT, pay_scope
from server.modules.auth.dependencies import Principal
from server.modules.deferrals import service as deferrals
from server.modules.plans import service as plans
from server.modules.runs import service as runs
from server.settings import Settings

ENTITY = "adjustment_run"
ZERO = Decimal(0)


def create(principal: Principal, settings: Settings, original_run_id: uuid.UUID,
           upload_id: uuid.UUID, funds_upload_id: uuid.UUID | None,
           plan_id: uuid.UUID | None, reason: str) -> AdjustmentRun:
    """Start the corrected run (queued like any run) and link it to the original. Everything
    is checked before the run starts: a finalized original, a locked plan of the same
    period."""
    with db.tenant_session(principal.tenant_id) as session:
        original = runs.get_run(session, original_run_id)
        if original.status != "finalized":
            raise Conflict(f"run {original_run_id} is {original.status}: only a finalized "
                           "run gets an adjustment run")
        period = _period(runs.run_document(original))
        plan_id = plan_id or original.plan_id
        _, compiled = plans.get_locked_plan(session, plan_id)
        if _period(compiled.document) != period:
            raise UnprocessableEntity([{"loc": ["body", "plan_id"],
                                        "msg": f"the plan's period {_period(compiled.document)}"
                                               f" is not the original run's {period}"}])
    started = runs.start_linked_run(principal, settings, plan_id, upload_id, funds_upload_id,
                                    f"adjustment of {original_run_id}")
    with db.tenant_session(principal.tenant_id) as session:
        link = AdjustmentRun(run_id=started.id, original_run_id=original_run_id,
                             reason=reason, created_by=principal.user_id)
        session.add(link)
        session.flush()
        record_event(session, principal_or_actor_id=principal, action="adjustment_run.create",
                     entity=ENTITY, entity_id=link.run_id,
                     after={"original_run_id": original_run_id, "reason": reason,
                            "plan_id": plan_id, "upload_id": upload_id})
    return link


def _period(document: Any) -> tuple[str, str | None]:
    end = document.effective_to.isoformat() if document.effective_to else None
    return document.effective_from.isoformat(), end


def get(session: Session, run_id: uuid.UUID) -> AdjustmentRun:
    link = session.get(AdjustmentRun, run_id)
    if link is None:
        raise NotFound("adjustment run")
    return link


def on_finalize(session: Session, principal: Principal, run_id: uuid.UUID) -> int:
    """Ledger writes of a finalize: corrections for an adjustment run, awards otherwise."""
    link = session.get(AdjustmentRun, run_id)
    if link is None:
        return deferrals.on_finalize(session, principal, run_id)
    return deferrals.on_finalize_adjustment(session, principal, run_id, link.original_run_id)


def _figures(session: Session, run_id: uuid.UUID) -> dict[str, dict[str, Decimal]]:
    """employee_ref -> payout, deferred and cash now of a computed run."""
    run = runs.computed_run(session, run_id)
    document = runs.run_document(run)
    deferred_step = document.deferral.deferred_step if document.deferral else None
    steps = [document.payout] + ([deferred_step] if deferred_step else [])
    out = {}
    for ref, found in runs.step_values(session, run_id, steps).items():
        payout = Decimal(found[document.payout] or 0)
        deferred = max(Decimal(found[deferred_step] or 0), ZERO) if deferred_step else ZERO
        out[ref] = {"payout": payout, "deferred": deferred, "cash_now": payout - deferred}
    return out


def deltas(session: Session, run_id: uuid.UUID) -> dict[str, Any]:
    """Per employee whose pay changed: before, after and the difference to pay."""
    link = get(session, run_id)
    before = _figures(session, link.original_run_id)
    after = _figures(session, run_id)
    zero = {"payout": ZERO, "deferred": ZERO, "cash_now": ZERO}
    lines = []
    totals = dict.fromkeys(zero, ZERO)
    for ref in sorted(set(before) | set(after)):
        old, new = before.get(ref, zero), after.get(ref, zero)
        delta = {key: new[key] - old[key] for key in zero}
        if all(value == 0 for value in delta.values()):
            continue
        for key in zero:
            totals[key] += delta[key]
        lines.append({"employee_ref": ref,
                      "before": {k: r10.text(v) for k, v in old.items()},
                      "after": {k: r10.text(v) for k, v in new.items()},
                      "delta": {k: r10.text(v) for k, v in delta.items()}})
    run = runs.get_run(session, run_id)
    return {"run_id": run_id, "original_run_id": link.original_run_id, "reason": link.reason,
            "status": run.status, "currency": runs.run_document(run).currency,
            "lines": lines, "totals": {k: r10.text(v) for k, v in totals.items()}}


def payroll(session: Session, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """Payroll lines of an adjustment run: only the deltas."""
    found = deltas(session, run_id)
    return [{"employee_ref": line["employee_ref"], "currency": found["currency"],
             "fund_ref": "", "cash_now": Decimal(line["delta"]["cash_now"]),
             "deferred": Decimal(line["delta"]["deferred"]), "vested_cash": ZERO,
             "vested_units": ZERO, "vested_units_value": ZERO} for line in found["lines"]]


def statement(session: Session, settings: Settings, principal: Principal, run_id: uuid.UUID,
              employee_ref: str) -> dict[str, Any]:
    """The employee's adjustment statement: what was paid, what is due now, the difference."""
    found = deltas(session, run_id)
    line = next((x for x in found["lines"] if x["employee_ref"] == employee_ref), None)
    scope = pay_scope(principal)  # the one access rule: 403 for readonly, teams for managers
    if line is not None and not scope.everyone:
        run = runs.get_run(session, run_id)
        if not scope.admits(runs.employee_field(session, settings, run, TEAM_INPUT,
                                                employee_ref)):
            line = None
    if line is None:
        raise NotFound("employee", f"employee '{employee_ref}' has no adjustment in this run")
    cur = found["currency"]
    text = (f"Adjustment statement for {employee_ref}. This adjustment run corrects the "
            f"finalized run {found['original_run_id']} ({found['reason']}) and pays only the "
            f"difference. Previously: payout {_money(line['before']['payout'])} {cur} (cash "
            f"{_money(line['before']['cash_now'])}, deferred "
            f"{_money(line['before']['deferred'])}). Now: payout "
            f"{_money(line['after']['payout'])} {cur}. Difference paid by this adjustment: "
            f"cash {_money(line['delta']['cash_now'], True)} {cur}, deferred "
            f"{_money(line['delta']['deferred'], True)} {cur}.")
    return {"run_id": run_id, "original_run_id": found["original_run_id"],
            "employee_ref": employee_ref, "currency": cur, **line, "text": text}


def _money(text: str, signed: bool = False) -> str:
    """Amount for people: 2 decimals, thousands separators, a sign on differences."""
    value = Decimal(text).quantize(Decimal("0.01"))
    return f"{value:+,.2f}" if signed else f"{value:,.2f}"
