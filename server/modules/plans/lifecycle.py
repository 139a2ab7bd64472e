"""A plan's lifecycle: lock a valid draft (plan hash), copy a locked plan into a new draft
version, and diff two versions.

A locked plan never changes again (the database trigger agrees); editing one means
`new_version`, a draft copy with `previous_version_id` pointing back.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.hashing import plan_hash
from server.errors import Conflict, NotFound, ProblemError
from server.modules.audit.service import record_event
from server.modules.plans.diff import diff_documents
from server.modules.plans.models import BonusPlan, PlanInput, PlanStep
from server.modules.plans.store import (
    ENTITY,
    as_error,
    diagnostics_for,
    document_of,
    editable,
    flush,
    get_plan,
    list_steps,
    refresh_document,
    snapshot,
)
from server.principal import Principal

# --- lock, versions, diff ---------------------------------------------------------------


def lock_plan(session: Session, principal: Principal, plan_id: uuid.UUID) -> BonusPlan:
    """Freeze a valid draft: status locked, who and when, and the engine's plan hash."""
    plan = editable(session, principal, plan_id, "plan.lock")
    compiled, found = diagnostics_for(plan)
    if compiled is None:
        raise ProblemError(
            409,
            "Conflict",
            f"plan has {len(found)} problem(s); fix them before locking",
            [as_error(d) for d in found],
        )
    before = snapshot(plan)
    plan.status = "locked"
    plan.locked_by = principal.user_id
    plan.locked_at = datetime.now(UTC)
    plan.plan_hash = plan_hash(compiled.document)
    flush(session, "lock")
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.lock",
        entity=ENTITY,
        entity_id=plan.id,
        before=before,
        after=snapshot(plan),
    )
    return plan


def new_version(session: Session, principal: Principal, plan_id: uuid.UUID) -> BonusPlan:
    """A draft copy of a locked plan: same name, version + 1, `previous_version_id` set."""
    source = get_plan(session, plan_id, for_update=True)
    if source.status not in ("locked", "archived"):
        raise Conflict(
            f"plan '{source.name}' v{source.version} is a {source.status}; edit it "
            "directly (only locked plans get new versions)"
        )
    version = source.version + 1
    existing = session.scalar(
        select(BonusPlan.id).where(BonusPlan.name == source.name, BonusPlan.version == version)
    )
    if existing is not None:
        raise Conflict(f"plan '{source.name}' v{version} already exists (id {existing})")
    plan = BonusPlan(
        name=source.name,
        version=version,
        status="draft",
        currency=source.currency,
        effective_from=source.effective_from,
        effective_to=source.effective_to,
        notes=source.notes,
        metadata_=dict(source.metadata_ or {}),
        document=dict(source.document or {}) | {"version": version},
        previous_version_id=source.id,
        created_by=principal.user_id,
    )
    session.add(plan)
    flush(session, f"plan '{source.name}' v{version} already exists")
    for row in session.scalars(select(PlanInput).where(PlanInput.plan_id == source.id)):
        session.add(
            PlanInput(
                plan_id=plan.id,
                input_id=row.input_id,
                scope=row.scope,
                required=row.required,
                default_value=row.default_value,
                position=row.position,
                source_mapping=dict(row.source_mapping),
            )
        )
    for step in list_steps(session, source.id):
        session.add(
            PlanStep(
                plan_id=plan.id,
                step_order=step.step_order,
                name=step.name,
                expr=step.expr,
                condition_expr=step.condition_expr,
                outputs=list(step.outputs),
                default_value=step.default_value,
                notes=step.notes,
                label=step.label,
                display_format=step.display_format,
            )
        )
    refresh_document(session, plan)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.version",
        entity=ENTITY,
        entity_id=plan.id,
        before={"from": source.id, "version": source.version},
        after=snapshot(plan),
    )
    return plan


def diff_plans(session: Session, plan_id: uuid.UUID, against_id: uuid.UUID) -> dict[str, Any]:
    """What changed from plan `against_id` to plan `plan_id` (both the caller's)."""
    after = get_plan(session, plan_id)
    try:
        before = get_plan(session, against_id)
    except NotFound:
        raise NotFound("plan", f"plan {against_id} (against) not found") from None
    return {"plan_id": after.id, "against": before.id} | diff_documents(
        document_of(before), document_of(after)
    )
