"""The steps API of a draft (PRD §15.2): add, change, delete and reorder single steps.

Each change is checked against the plan's other steps and declared names (422 per field),
then the stored document is re-derived from the step rows and the change is audited.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.errors import NotFound, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.plans import checks
from server.modules.plans.models import BonusPlan, PlanStep
from server.modules.plans.store import (
    ENTITY,
    default_text,
    document_of,
    editable,
    list_steps,
    payout_of,
    refresh_document,
    step_snapshot,
)
from server.principal import Principal

# --- steps ------------------------------------------------------------------------------


def _step_fields(step: PlanStep) -> dict[str, Any]:
    return {
        "name": step.name,
        "step_order": step.step_order,
        "expr": step.expr,
        "condition_expr": step.condition_expr,
        "default": step.default_value,
    }


def _declared_names(plan: BonusPlan) -> set[str]:
    doc = document_of(plan)
    return {s["key"] for s in doc.get("inputs") or []} | {
        p["key"] for p in doc.get("parameters") or []
    }


def _validated_step(plan: BonusPlan, fields: dict[str, Any], others: list[PlanStep]) -> None:
    errors = checks.step_errors(fields, [_step_fields(o) for o in others], _declared_names(plan))
    if errors:
        raise UnprocessableEntity(errors)


def get_step(session: Session, plan_id: uuid.UUID, step_id: uuid.UUID) -> PlanStep:
    step = session.scalar(
        select(PlanStep).where(PlanStep.id == step_id, PlanStep.plan_id == plan_id)
    )
    if step is None:
        raise NotFound("step")
    return step


def add_step(
    session: Session, principal: Principal, plan_id: uuid.UUID, fields: Mapping[str, Any]
) -> PlanStep:
    """PRD §15.2: add one step to a draft (422 per field when it does not pass)."""
    plan = editable(session, principal, plan_id, "plan.step.add")
    values = dict(fields) | {"default": default_text(fields.get("default"))}
    _validated_step(plan, values, list_steps(session, plan.id))
    step = PlanStep(
        plan_id=plan.id,
        step_order=values["step_order"],
        name=values["name"],
        expr=values["expr"],
        condition_expr=values.get("condition_expr") or None,
        outputs=[values["name"]],
        default_value=values["default"],
        notes=values.get("notes"),
    )
    session.add(step)
    refresh_document(session, plan)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.step.add",
        entity=ENTITY,
        entity_id=plan.id,
        after=step_snapshot(step),
    )
    return step


def update_step(
    session: Session,
    principal: Principal,
    plan_id: uuid.UUID,
    step_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> PlanStep:
    plan = editable(session, principal, plan_id, "plan.step.update")
    step = get_step(session, plan.id, step_id)
    before = step_snapshot(step)
    values = _step_fields(step) | dict(changes)
    if "default" in changes:
        values["default"] = default_text(changes["default"])
    if "outputs" not in changes:
        values.pop("outputs", None)
    others = [s for s in list_steps(session, plan.id) if s.id != step.id]
    _validated_step(plan, values, others)
    renamed = values["name"] != step.name
    step.name, step.step_order, step.expr = values["name"], values["step_order"], values["expr"]
    step.condition_expr = values.get("condition_expr") or None
    step.default_value, step.outputs = values["default"], [values["name"]]
    if "notes" in changes:
        step.notes = changes["notes"]
    payout = {"payout": step.name} if renamed and payout_of(plan) == before["name"] else {}
    refresh_document(session, plan, **payout)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.step.update",
        entity=ENTITY,
        entity_id=plan.id,
        before=before,
        after=step_snapshot(step),
    )
    return step


def delete_step(
    session: Session, principal: Principal, plan_id: uuid.UUID, step_id: uuid.UUID
) -> None:
    plan = editable(session, principal, plan_id, "plan.step.delete")
    step = get_step(session, plan.id, step_id)
    before = step_snapshot(step)
    session.delete(step)
    refresh_document(session, plan)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.step.delete",
        entity=ENTITY,
        entity_id=plan.id,
        before=before,
    )


def reorder_steps(
    session: Session, principal: Principal, plan_id: uuid.UUID, step_ids: list[uuid.UUID]
) -> list[PlanStep]:
    """New display order: every step id exactly once; orders become 10, 20, 30, ..."""
    plan = editable(session, principal, plan_id, "plan.step.reorder")
    steps = {step.id: step for step in list_steps(session, plan.id)}
    errors = []
    if len(set(step_ids)) != len(step_ids):
        errors.append(
            {"loc": ["body", "step_ids"], "msg": "a step id appears twice", "type": "value_error"}
        )
    unknown = [i for i, step_id in enumerate(step_ids) if step_id not in steps]
    errors += [
        {"loc": ["body", "step_ids", i], "msg": "not a step of this plan", "type": "value_error"}
        for i in unknown
    ]
    missing = set(steps) - set(step_ids)
    if missing:
        errors.append(
            {
                "loc": ["body", "step_ids"],
                "type": "value_error",
                "msg": "every step must be listed; missing: "
                + ", ".join(sorted(steps[m].name for m in missing)),
            }
        )
    if errors:
        raise UnprocessableEntity(errors)
    before = [steps[i].name for i in sorted(steps, key=lambda i: steps[i].step_order)]
    for position, step_id in enumerate(step_ids, start=1):
        steps[step_id].step_order = 10 * position
    refresh_document(session, plan)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.step.reorder",
        entity=ENTITY,
        entity_id=plan.id,
        before={"order": before},
        after={"order": [steps[i].name for i in step_ids]},
    )
    return list_steps(session, plan.id)
