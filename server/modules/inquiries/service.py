"""Inquiries: a question on one line of a draft run, answered and resolved before approval.

    open ─answer→ answered ─resolve (with the corrected re-run)→ resolved
    open|answered ─reject (with a reason)→ rejected

A manager (for an employee of their teams) or HR raises an inquiry on an employee, optionally
naming a step or an input of the tape, while the run is a draft. HR (or an admin) answers,
then resolves it by correcting the data and re-running (the inquiry links the original and
the corrected run, which must be a computed run of the same plan) or rejects it with a
reason. Open (or answered but unresolved) inquiries block the run's finalize unless finance
overrides them with a reason (`check_finalize` / `record_override`, called by approvals).
Every step is appended to the inquiry's history and to the audit chain.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import Conflict, Forbidden, NotFound, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.auth.access import TEAM_INPUT, pay_scope
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import Role
from server.modules.inquiries.models import Inquiry
from server.modules.runs import service as runs
from server.settings import Settings

ENTITY = "inquiry"
UNRESOLVED = ("open", "answered")
HANDLERS = {Role.HR, Role.ADMIN}
RAISERS = {Role.HR, Role.ADMIN, Role.MANAGER}


def _log(session: Session, principal: Principal, inquiry: Inquiry, action: str,
         before: str | None, note: str | None) -> None:
    inquiry.history = [*inquiry.history, {
        "action": action, "from": before, "to": inquiry.status, "note": note,
        "actor_user_id": str(principal.user_id), "actor_role": str(principal.role),
        "at": datetime.now(UTC).isoformat()}]
    session.flush()
    record_event(session, principal_or_actor_id=principal, action=f"inquiry.{action}",
                 entity=ENTITY, entity_id=inquiry.id, before={"status": before},
                 after=out(inquiry) | {"note": note})


def raise_inquiry(session: Session, settings: Settings, principal: Principal,
                  run_id: uuid.UUID, employee_ref: str, question: str, step: str | None,
                  input_key: str | None) -> Inquiry:
    if principal.role not in RAISERS:
        raise Forbidden(f"role '{principal.role}' cannot raise inquiries")
    run = runs.get_run(session, run_id)
    if run.status != "draft":
        raise Conflict(f"run {run_id} is {run.status}: inquiries are raised on draft runs")
    document = runs.run_document(run)
    if employee_ref not in runs.step_values(session, run_id, [document.payout]):
        raise NotFound("employee", f"employee '{employee_ref}' is not in run {run_id}")
    scope = pay_scope(principal)  # the one access rule: a manager raises on their teams only
    if not scope.everyone and not scope.admits(
            runs.employee_field(session, settings, run, TEAM_INPUT, employee_ref)):
        raise NotFound("employee", f"employee '{employee_ref}' is not in run {run_id}")
    errors = []
    if step is not None and step not in {s.name for s in document.steps}:
        errors.append({"loc": ["body", "step"], "msg": f"the plan has no step '{step}'"})
    if input_key is not None and input_key not in {i.key for i in document.inputs}:
        errors.append({"loc": ["body", "input_key"], "msg": f"the plan has no input "
                       f"'{input_key}'"})
    if errors:
        raise UnprocessableEntity(errors)
    inquiry = Inquiry(run_id=run_id, employee_ref=employee_ref, step=step, input_key=input_key,
                      question=question, status="open", raised_by=principal.user_id,
                      history=[])
    session.add(inquiry)
    session.flush()
    _log(session, principal, inquiry, "raise", None, question)
    return inquiry


def get(session: Session, principal: Principal, inquiry_id: uuid.UUID,
        for_update: bool = False) -> Inquiry:
    """The inquiry; a manager sees only the ones they raised (others answer 404)."""
    query = select(Inquiry).where(Inquiry.id == inquiry_id)
    inquiry = session.scalar(query.with_for_update() if for_update else query)
    if inquiry is None or (principal.role is Role.MANAGER
                           and inquiry.raised_by != principal.user_id):
        raise NotFound("inquiry")
    return inquiry


def list_for(session: Session, principal: Principal, run_id: uuid.UUID | None,
             status: str | None) -> list[Inquiry]:
    query = select(Inquiry).order_by(Inquiry.created_at)
    if run_id is not None:
        query = query.where(Inquiry.run_id == run_id)
    if status is not None:
        query = query.where(Inquiry.status == status)
    if principal.role is Role.MANAGER:
        query = query.where(Inquiry.raised_by == principal.user_id)
    return list(session.scalars(query))


def _handler(principal: Principal) -> None:
    if principal.role not in HANDLERS:
        raise Forbidden(f"role '{principal.role}' cannot handle inquiries")


def _open_for_handling(session: Session, principal: Principal, inquiry_id: uuid.UUID
                       ) -> Inquiry:
    """The unresolved inquiry, locked, for a handler (403 for others, 409 once settled)."""
    _handler(principal)
    inquiry = get(session, principal, inquiry_id, for_update=True)
    if inquiry.status not in UNRESOLVED:
        raise Conflict(f"inquiry {inquiry_id} is {inquiry.status}")
    return inquiry


def answer(session: Session, principal: Principal, inquiry_id: uuid.UUID,
           text: str) -> Inquiry:
    inquiry = _open_for_handling(session, principal, inquiry_id)
    before, inquiry.status, inquiry.answer = inquiry.status, "answered", text
    _log(session, principal, inquiry, "answer", before, text)
    return inquiry


def resolve(session: Session, principal: Principal, inquiry_id: uuid.UUID, resolution: str,
            corrected_run_id: uuid.UUID) -> Inquiry:
    """Resolved by a corrected re-run of the same plan, which the inquiry links to."""
    inquiry = _open_for_handling(session, principal, inquiry_id)
    original = runs.get_run(session, inquiry.run_id)
    corrected = runs.computed_run(session, corrected_run_id)
    if corrected.id == original.id or corrected.plan_id != original.plan_id:
        raise UnprocessableEntity([{"loc": ["body", "corrected_run_id"],
                                    "msg": "the corrected run must be another computed run "
                                           "of the same plan"}])
    before = inquiry.status
    inquiry.status, inquiry.resolution, inquiry.resolved_run_id = ("resolved", resolution,
                                                                  corrected.id)
    _log(session, principal, inquiry, "resolve", before,
         f"{resolution} (corrected run {corrected.id})")
    return inquiry


def reject(session: Session, principal: Principal, inquiry_id: uuid.UUID,
           reason: str) -> Inquiry:
    inquiry = _open_for_handling(session, principal, inquiry_id)
    before, inquiry.status, inquiry.resolution = inquiry.status, "rejected", reason
    _log(session, principal, inquiry, "reject", before, reason)
    return inquiry


def unresolved(session: Session, run_id: uuid.UUID) -> list[Inquiry]:
    return list(session.scalars(select(Inquiry).where(Inquiry.run_id == run_id,
                                                      Inquiry.status.in_(UNRESOLVED))))


def check_finalize(session: Session, run_id: uuid.UUID, override_reason: str | None
                   ) -> list[uuid.UUID]:
    """Called by approvals before a finalize: 409 while inquiries are unresolved, unless an
    override reason is given; returns the ids being overridden."""
    pending = unresolved(session, run_id)
    if pending and not (override_reason or "").strip():
        raise Conflict(f"run {run_id} has {len(pending)} unresolved inquiry(ies); resolve or "
                       "reject them, or finalize with an override reason",
                       errors=[{"loc": ["inquiries", str(i.id)], "msg": i.status}
                               for i in pending])
    return [i.id for i in pending]


def record_override(session: Session, principal: Principal, run_id: uuid.UUID,
                    overridden: list[uuid.UUID], reason: str | None) -> None:
    """Audit each overridden inquiry (after the finalize's own checks passed)."""
    for inquiry_id in overridden:
        inquiry = session.get(Inquiry, inquiry_id)
        if inquiry is None:
            continue
        inquiry.history = [*inquiry.history, {
            "action": "override", "from": inquiry.status, "to": inquiry.status,
            "note": reason, "actor_user_id": str(principal.user_id),
            "actor_role": str(principal.role), "at": datetime.now(UTC).isoformat()}]
        session.flush()
        record_event(session, principal_or_actor_id=principal, action="inquiry.override",
                     entity=ENTITY, entity_id=inquiry_id,
                     after={"run_id": run_id, "reason": reason, "status": inquiry.status})


def out(inquiry: Inquiry) -> dict[str, Any]:
    return {"id": inquiry.id, "run_id": inquiry.run_id, "employee_ref": inquiry.employee_ref,
            "step": inquiry.step, "input_key": inquiry.input_key,
            "question": inquiry.question, "status": inquiry.status, "answer": inquiry.answer,
            "resolution": inquiry.resolution, "resolved_run_id": inquiry.resolved_run_id,
            "raised_by": inquiry.raised_by, "created_at": inquiry.created_at,
            "history": inquiry.history}
