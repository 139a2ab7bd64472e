"""Malus, clawback and leavers: the later changes to deferred awards, each a ledger batch.

Malus reduces unvested tranche parts, clawback recovers vested ones, both by a fraction
(0 < f <= 1) with a reason and an evidence note. HR (or an admin) proposes; it takes effect
only once a SECOND person (hr or admin, not the proposer) and FINANCE (a third person) have
approved; either may reject it with a reason. A leaver event applies the award's own leaver
treatment at once: `forfeit_unvested` writes `forfeit` entries for every part vesting after
the exit date, `keep_schedule` leaves the schedule untouched (both are audited).
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.deferral import DeferralPolicy
from server.errors import Conflict, Forbidden, NotFound, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import Role
from server.modules.deferrals import ledger
from server.modules.deferrals.models import DeferralAction, DeferralAward
from server.modules.deferrals.service import awards_of, get_award

ENTITY = "deferral_action"
PROPOSERS = {Role.HR, Role.ADMIN}
SECOND = {Role.HR, Role.ADMIN}


def _policy(award: DeferralAward) -> DeferralPolicy:
    return DeferralPolicy.model_validate(award.policy)


def _targets(session: Session, award: DeferralAward, kind: str,
             tranche: int | None) -> list[ledger.Position]:
    parts = [p for p in ledger.positions(ledger.entries(session, award_ids=[award.id]))
             if tranche is None or p.tranche == tranche]
    if kind == "malus":
        return [p for p in parts if p.unvested > 0]
    return [p for p in parts if p.vested > 0]


def propose(session: Session, principal: Principal, kind: str, award_id: uuid.UUID,
            tranche: int | None, fraction: Decimal, reason: str, evidence: str,
            effective_date: date) -> DeferralAction:
    if principal.role not in PROPOSERS:
        raise Forbidden(f"role '{principal.role}' cannot propose a {kind}")
    award = get_award(session, award_id)
    if not _targets(session, award, kind, tranche):
        what = "unvested" if kind == "malus" else "vested"
        where = f"tranche {tranche}" if tranche else "any tranche"
        raise Conflict(f"award {award_id} has nothing {what} in {where}: no {kind} possible")
    action = DeferralAction(kind=kind, award_id=award.id, employee_ref=award.employee_ref,
                            tranche=tranche, fraction=fraction, effective_date=effective_date,
                            reason=reason, evidence=evidence, status="proposed", approvals=[],
                            proposed_by=principal.user_id)
    session.add(action)
    session.flush()
    record_event(session, principal_or_actor_id=principal, action=f"{kind}.propose",
                 entity=ENTITY, entity_id=action.id, after=action_out(action))
    return action


def get(session: Session, action_id: uuid.UUID, kind: str | None = None,
        for_update: bool = False) -> DeferralAction:
    query = select(DeferralAction).where(DeferralAction.id == action_id)
    action = session.scalar(query.with_for_update() if for_update else query)
    if action is None or (kind is not None and action.kind != kind):
        raise NotFound(kind or "deferral action")
    return action


def list_actions(session: Session, kind: str) -> list[DeferralAction]:
    return list(session.scalars(select(DeferralAction).where(DeferralAction.kind == kind)
                                .order_by(DeferralAction.created_at.desc())))


def _slot(action: DeferralAction, principal: Principal) -> str:
    """Which approval `principal` gives: 'finance' or 'second'; refuses four-eyes breaches."""
    if action.proposed_by == principal.user_id:
        raise Forbidden(f"four-eyes: you proposed this {action.kind}; a second person and "
                        "finance must approve it")
    if any(a["actor_user_id"] == str(principal.user_id) for a in action.approvals):
        raise Forbidden(f"four-eyes: you already approved this {action.kind}")
    if principal.role is Role.FINANCE:
        slot = "finance"
    elif principal.role in SECOND:
        slot = "second"
    else:
        raise Forbidden(f"role '{principal.role}' cannot approve a {action.kind}")
    if any(a["slot"] == slot for a in action.approvals):
        raise Conflict(f"this {action.kind} already has its {slot} approval")
    return slot


def decide(session: Session, principal: Principal, kind: str, action_id: uuid.UUID,
           approve: bool, comment: str | None) -> DeferralAction:
    """Approve (second person or finance) or reject a proposed malus/clawback."""
    action = get(session, action_id, kind, for_update=True)
    if action.status != "proposed":
        raise Conflict(f"this {kind} is {action.status}: no more decisions")
    slot = _slot(action, principal)
    if not approve and not (comment or "").strip():
        raise UnprocessableEntity([{"loc": ["body", "comment"],
                                    "msg": "a rejection needs a comment giving the reason"}])
    before = action.status
    action.approvals = [*action.approvals, {
        "slot": slot, "approve": approve, "actor_user_id": str(principal.user_id),
        "actor_role": str(principal.role), "comment": comment,
        "at": datetime.now(UTC).isoformat()}]
    if not approve:
        action.status = "rejected"
    elif {a["slot"] for a in action.approvals} == {"second", "finance"}:
        _apply(session, principal, action)
        action.status = "applied"
    session.flush()
    record_event(session, principal_or_actor_id=principal,
                 action=f"{kind}.{'approve' if approve else 'reject'}", entity=ENTITY,
                 entity_id=action.id, before={"status": before}, after=action_out(action))
    return action


def _quantise(value: Decimal, places: int) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN)


def _apply(session: Session, principal: Principal, action: DeferralAction) -> None:
    award = get_award(session, action.award_id)
    policy = _policy(award)
    fraction = action.fraction
    rows = []
    for p in _targets(session, award, action.kind, action.tranche):
        held, held_amount = ((p.unvested, p.unvested_amount) if action.kind == "malus"
                             else (p.vested, p.vested_amount))
        if p.instrument == "units":
            units = _quantise(held * fraction, policy.unit_decimals)
            amount = _quantise(held_amount * units / held, 2)
        else:
            units, amount = None, _quantise(held * fraction, 2)
        rows.append({"award_id": award.id, "employee_ref": award.employee_ref,
                     "tranche": p.tranche, "kind": action.kind, "instrument": p.instrument,
                     "fund_ref": p.fund_ref, "amount": -amount,
                     "units": -units if units is not None else None,
                     "nav": p.award_nav if action.kind == "malus" else None,
                     "currency": p.currency, "vest_date": p.vest_date,
                     "retention_until": p.retention_until,
                     "effective_date": action.effective_date,
                     "note": f"{action.reason} | evidence: {action.evidence or '-'}"})
    if not rows:
        raise Conflict(f"nothing left to apply this {action.kind} to (the ledger changed)")
    ledger.append(session, principal, f"deferral.{action.kind}", rows, action.kind, action.id)


def leaver(session: Session, principal: Principal, employee_ref: str, exit_date: date,
           leaver_kind: str, reason: str, evidence: str | None) -> dict[str, Any]:
    """Apply each award's leaver treatment for an exit on `exit_date`."""
    if principal.role not in PROPOSERS:
        raise Forbidden(f"role '{principal.role}' cannot record a leaver")
    awards = awards_of(session, employee_ref=employee_ref)
    if not awards:
        raise NotFound("deferral schedule", f"employee '{employee_ref}' has no deferred awards")
    action = DeferralAction(kind="leaver", employee_ref=employee_ref, leaver_kind=leaver_kind,
                            effective_date=exit_date, reason=reason, evidence=evidence,
                            status="applied", approvals=[], proposed_by=principal.user_id)
    session.add(action)
    session.flush()
    rows = []
    for award in awards:
        treatment = getattr(_policy(award).leaver, leaver_kind)
        if treatment != "forfeit_unvested":
            continue
        for p in ledger.positions(ledger.entries(session, award_ids=[award.id])):
            if p.vest_date <= exit_date or p.unvested <= 0:
                continue
            rows.append({"award_id": award.id, "employee_ref": employee_ref,
                         "tranche": p.tranche, "kind": "forfeit", "instrument": p.instrument,
                         "fund_ref": p.fund_ref, "amount": -_quantise(p.unvested_amount, 2),
                         "units": -p.unvested if p.instrument == "units" else None,
                         "nav": p.award_nav, "currency": p.currency,
                         "vest_date": p.vest_date, "retention_until": p.retention_until,
                         "effective_date": exit_date,
                         "note": f"{leaver_kind} leaver: {reason}"})
    batch = ledger.append(session, principal, "deferral.leaver", rows, "leaver", action.id)
    record_event(session, principal_or_actor_id=principal, action="deferral.leaver",
                 entity=ENTITY, entity_id=action.id,
                 after=action_out(action) | {"forfeited_entries": len(rows), "batch": batch})
    return action_out(action) | {"forfeited_entries": len(rows)}


def action_out(action: DeferralAction) -> dict[str, Any]:
    return {"id": action.id, "kind": action.kind, "award_id": action.award_id,
            "employee_ref": action.employee_ref, "tranche": action.tranche,
            "fraction": None if action.fraction is None else format(action.fraction, "f"),
            "leaver_kind": action.leaver_kind, "effective_date": action.effective_date,
            "reason": action.reason, "evidence": action.evidence, "status": action.status,
            "approvals": action.approvals, "proposed_by": action.proposed_by}
