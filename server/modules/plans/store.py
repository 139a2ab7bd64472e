"""Where a plan lives: reading plans and steps, the stored document, and the draft guards.

Storage: `bonus_plans.document` always holds the version's full ENGINE.md §1 document;
`plan_steps` and `plan_inputs` mirror its steps and inputs (stable step ids for the steps
API; catalog links; database guards once locked). Every write path changes one side and
then re-derives the other with `refresh_document`, so the two never drift.

Only drafts change: `editable` row-locks a draft, and refuses a locked (or archived) plan
with 409, audited in its own transaction (`record_refusal`); the database trigger refuses the
same change even if a code path forgot to ask (`flush` turns that refusal into 409).
The other modules of this area build on these helpers; other areas call `service`.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session, defer

from engine.plan import CompiledPlan
from server.errors import Conflict, NotFound, UnprocessableEntity
from server.jsonbody import plain_json
from server.modules.audit.service import record_refusal
from server.modules.plans import checks
from server.modules.plans.models import BonusPlan, PlanStep
from server.pagination import decode_cursor, encode_cursor
from server.principal import Principal

ENTITY = "bonus_plan"
IMMUTABLE_SQLSTATE = "PS409"
HEADER_FIELDS = ("name", "effective_from", "effective_to", "currency", "notes")


# --- reading ----------------------------------------------------------------------------


def get_plan(session: Session, plan_id: uuid.UUID, *, for_update: bool = False) -> BonusPlan:
    """The caller's plan (another tenant's id is simply not found)."""
    query = select(BonusPlan).where(BonusPlan.id == plan_id)
    plan = session.scalar(query.with_for_update() if for_update else query)
    if plan is None:
        raise NotFound("plan")
    return plan


def payout_of(plan: BonusPlan) -> str | None:
    return plan.payout


def document_of(plan: BonusPlan) -> dict[str, Any]:
    return dict(plan.document or _empty_document(plan))


def list_steps(session: Session, plan_id: uuid.UUID) -> list[PlanStep]:
    return list(
        session.scalars(
            select(PlanStep)
            .where(PlanStep.plan_id == plan_id)
            .order_by(PlanStep.step_order, PlanStep.name)
        )
    )


def list_plans(
    session: Session,
    *,
    status: str | None,
    name: str | None,
    effective_on: date | None,
    limit: int,
    cursor: str | None,
) -> tuple[list[tuple[BonusPlan, str | None]], str | None]:
    """Newest first, each plan with its payout step; `name` matches case-insensitively
    anywhere in the name. The documents stay in the database (a list shows headers: each
    document is kilobytes of JSON to fetch and parse), only their payout is read."""
    query: Select[tuple[BonusPlan, str | None]] = (
        select(BonusPlan, BonusPlan.document["payout"].astext)
        .options(defer(BonusPlan.document), defer(BonusPlan.metadata_))
        .order_by(BonusPlan.created_at.desc(), BonusPlan.id.desc())
        .limit(limit + 1)
    )
    if cursor:
        after = decode_cursor(cursor, datetime.fromisoformat, uuid.UUID)
        query = query.where(tuple_(BonusPlan.created_at, BonusPlan.id) < after)
    if status:
        query = query.where(BonusPlan.status == status)
    if name:
        escaped = name.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        query = query.where(BonusPlan.name.ilike(f"%{escaped}%", escape="\\"))
    if effective_on:
        query = query.where(
            BonusPlan.effective_from <= effective_on,
            (BonusPlan.effective_to.is_(None)) | (BonusPlan.effective_to >= effective_on),
        )
    rows = [(plan, payout) for plan, payout in session.execute(query)]
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1][0]
    return rows[:limit], encode_cursor(last.created_at.isoformat(), str(last.id))


# --- snapshots and the stored document --------------------------------------------------


def snapshot(plan: BonusPlan) -> dict[str, Any]:
    """What the audit log records about a plan's header."""
    return {
        "name": plan.name,
        "version": plan.version,
        "status": plan.status,
        "currency": plan.currency,
        "effective_from": plan.effective_from,
        "effective_to": plan.effective_to,
        "notes": plan.notes,
        "payout": payout_of(plan),
        "plan_hash": plan.plan_hash,
    }


def step_snapshot(step: PlanStep) -> dict[str, Any]:
    return {
        "id": step.id,
        "step_order": step.step_order,
        "name": step.name,
        "expr": step.expr,
        "condition_expr": step.condition_expr,
        "default": step.default_value,
        "notes": step.notes,
    }


def _empty_document(plan: BonusPlan) -> dict[str, Any]:
    return {"inputs": [], "parameters": [], "steps": [], "payout": None}


def refresh_document(session: Session, plan: BonusPlan, **changes: Any) -> None:
    """Re-derive the stored document from the header and the step rows (plus `changes`)."""
    session.flush()
    doc = document_of(plan) | changes
    doc.update(
        name=plan.name,
        version=plan.version,
        currency=plan.currency,
        effective_from=plan.effective_from.isoformat() if plan.effective_from else None,
        effective_to=plan.effective_to.isoformat() if plan.effective_to else None,
        steps=[_document_step(step) for step in list_steps(session, plan.id)],
    )
    plan.document = plain_json(doc)
    plan.updated_at = datetime.now(UTC)


def _document_step(step: PlanStep) -> dict[str, Any]:
    document = {
        "order": step.step_order,
        "name": step.name,
        "expr": step.expr,
        "condition": step.condition_expr,
        "default": step.default_value,
        "notes": step.notes or "",
    }
    if step.label:  # statement presentation: only when set, so older documents read the same
        document["label"] = step.label
    if step.display_format:
        document["format"] = step.display_format
    return document


def default_text(value: Any, loc: tuple[str | int, ...] = ("body", "default")) -> str | None:
    """A step default as DSL literal text (JSON numbers and booleans accepted)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | Decimal):
        return format(value, "f") if isinstance(value, Decimal) else str(value)
    if isinstance(value, str):
        return value if value.strip() else None
    raise UnprocessableEntity(
        [{"loc": list(loc), "msg": "must be a number, true/false or text", "type": "value_error"}]
    )


# --- guards -----------------------------------------------------------------------------


def editable(
    session: Session, principal: Principal | None, plan_id: uuid.UUID, action: str
) -> BonusPlan:
    """The draft plan, row-locked for this transaction; 409 (audited) when it is frozen."""
    plan = get_plan(session, plan_id, for_update=True)
    if plan.status != "draft":
        detail = (
            f"plan '{plan.name}' v{plan.version} is {plan.status}: it cannot change; "
            "create a new version (POST /bonus-plans/{id}/versions) to edit it"
        )
        record_refusal(
            plan.tenant_id,
            principal.user_id if principal else None,
            action,
            ENTITY,
            plan.id,
            detail,
        )
        raise Conflict(detail)
    return plan


def flush(session: Session, what: str) -> None:
    """Flush, turning unique violations into 409 and database guard refusals into 409."""
    try:
        session.flush()
    except IntegrityError as error:
        raise Conflict(f"{what}: {error.orig.diag.message_primary}") from None  # type: ignore
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == IMMUTABLE_SQLSTATE:
            raise Conflict(str(error.orig.diag.message_primary)) from None  # type: ignore
        raise


def check_period(start: date | None, end: date | None, loc: list[str]) -> None:
    if start is not None and end is not None and end < start:
        raise UnprocessableEntity(
            [{"loc": loc, "msg": "effective_to is before effective_from", "type": "value_error"}]
        )


# --- diagnostics ------------------------------------------------------------------------


def diagnostics_for(plan: BonusPlan) -> tuple[CompiledPlan | None, list[dict[str, Any]]]:
    """(compiled plan or None, diagnostics) of the plan's stored document."""
    return checks.diagnose(document_of(plan))


def as_error(found: Mapping[str, Any]) -> dict[str, Any]:
    """A diagnostic as a problem+json error entry (loc: document, step, field)."""
    loc = [
        "document",
        *(["steps", found["step"]] if found["step"] else []),
        *([found["field"]] if found["field"] else []),
    ]
    return {"loc": loc, "msg": found["message"], "type": found["code"]} | {
        k: found[k] for k in ("step", "field", "line", "column")
    }
