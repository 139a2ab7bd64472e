"""Bonus plans: drafts, steps, plan documents, validation, lock, versions, diff, test vectors.

Storage: `bonus_plans.document` always holds the version's full ENGINE.md §1 document;
`plan_steps` and `plan_inputs` mirror its steps and inputs (stable step ids for the steps
API; catalog links; database guards once locked). Every write path changes one side and
then re-derives the other, so the two never drift.

Only drafts change. A change aimed at a locked (or archived) plan is refused with 409 and
the refusal is audited in its own transaction (`record_refusal`); the database trigger
refuses the same change even if a code path forgot to ask.
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, select, tuple_
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from engine.check import did_you_mean
from engine.hashing import plan_hash
from engine.plan import CompiledPlan, PlanDocument, coerce_value
from server.errors import Conflict, NotFound, ProblemError, UnprocessableEntity
from server.jsonbody import plain_json
from server.modules.audit.service import record_event, record_refusal
from server.modules.auth.dependencies import Principal
from server.modules.catalog import service as catalog
from server.modules.plans import checks, vectors
from server.modules.plans.diff import diff_documents
from server.modules.plans.models import BonusPlan, PlanInput, PlanStep
from server.pagination import decode_cursor, encode_cursor

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


def plans_using_input(session: Session, input_id: uuid.UUID) -> list[str]:
    """'name vN' of every plan declaring catalog input `input_id` (for the catalog's 409)."""
    rows = session.execute(
        select(BonusPlan.name, BonusPlan.version)
        .join(PlanInput, PlanInput.plan_id == BonusPlan.id)
        .where(PlanInput.input_id == input_id)
        .order_by(BonusPlan.name, BonusPlan.version)
    )
    return [f"'{name}' v{version}" for name, version in rows]


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
) -> tuple[list[BonusPlan], str | None]:
    """Newest first; `name` matches case-insensitively anywhere in the name."""
    query: Select[tuple[BonusPlan]] = (
        select(BonusPlan)
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
    rows = list(session.scalars(query))
    if len(rows) <= limit:
        return rows, None
    last = rows[limit - 1]
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


def _step_snapshot(step: PlanStep) -> dict[str, Any]:
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


def _refresh_document(session: Session, plan: BonusPlan, **changes: Any) -> None:
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
    return {
        "order": step.step_order,
        "name": step.name,
        "expr": step.expr,
        "condition": step.condition_expr,
        "default": step.default_value,
        "notes": step.notes or "",
    }


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


def _editable(
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


def _flush(session: Session, what: str) -> None:
    """Flush, turning unique violations into 409 and database guard refusals into 409."""
    try:
        session.flush()
    except IntegrityError as error:
        raise Conflict(f"{what}: {error.orig.diag.message_primary}") from None  # type: ignore
    except DBAPIError as error:
        if getattr(error.orig, "sqlstate", None) == IMMUTABLE_SQLSTATE:
            raise Conflict(str(error.orig.diag.message_primary)) from None  # type: ignore
        raise


def _check_period(start: date | None, end: date | None, loc: list[str]) -> None:
    if start is not None and end is not None and end < start:
        raise UnprocessableEntity(
            [{"loc": loc, "msg": "effective_to is before effective_from", "type": "value_error"}]
        )


# --- plans ------------------------------------------------------------------------------


def create_plan(
    session: Session,
    principal: Principal | None,
    fields: Mapping[str, Any],
    document: Mapping[str, Any] | None = None,
) -> BonusPlan:
    """A new draft. `fields` (PRD §15.1 + currency, payout) win over `document`'s."""
    doc = dict(document or {})
    header = {
        key: fields.get(key) if fields.get(key) is not None else doc.get(key)
        for key in ("effective_from", "effective_to", "currency")
    }
    _check_period(header["effective_from"], header["effective_to"], ["body", "effective_to"])
    plan = BonusPlan(
        name=fields["name"],
        version=fields.get("version") or 1,
        status="draft",
        notes=fields.get("notes"),
        metadata_={},
        document=None,
        created_by=principal.user_id if principal else None,
        **header,
    )
    session.add(plan)
    _flush(session, f"plan '{plan.name}' v{plan.version} already exists")
    payout = fields.get("payout") if fields.get("payout") is not None else doc.get("payout")
    if doc:
        _apply_content(session, principal, plan, doc, ["body", "document"])
    _refresh_document(session, plan, payout=payout)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.create",
        entity=ENTITY,
        entity_id=plan.id,
        after=snapshot(plan) | {"document": plan.document},
    )
    return plan


def create_plan_from_document(
    session: Session, principal: Principal | None, doc: PlanDocument | Mapping[str, Any]
) -> BonusPlan:
    """A draft plan holding `doc` (an engine PlanDocument or its JSON form): used to seed
    the sample plan. Validity is not required; use `diagnostics_for` to check it."""
    from server.modules.plans.schemas import PlanDocumentIn

    data = doc.model_dump(mode="json") if isinstance(doc, PlanDocument) else dict(doc)
    parsed = PlanDocumentIn.model_validate(data).model_dump()
    if not parsed.get("name"):
        raise UnprocessableEntity(
            [{"loc": ["document", "name"], "msg": "a plan needs a name", "type": "missing"}]
        )
    return create_plan(
        session, principal, {"name": parsed["name"], "version": parsed.get("version") or 1}, parsed
    )


def update_plan(
    session: Session, principal: Principal, plan_id: uuid.UUID, changes: Mapping[str, Any]
) -> BonusPlan:
    """PATCH of a draft's header fields and payout."""
    plan = _editable(session, principal, plan_id, "plan.update")
    before = snapshot(plan)
    if changes.get("name"):
        _rename(session, plan, changes["name"])
    for key in HEADER_FIELDS[1:]:
        if key in changes and (changes[key] is not None or key in ("effective_to", "notes")):
            setattr(plan, key, changes[key])
    _check_period(plan.effective_from, plan.effective_to, ["body", "effective_to"])
    _flush(session, f"plan '{plan.name}' v{plan.version} already exists")
    extra = {"payout": changes["payout"]} if "payout" in changes else {}
    _refresh_document(session, plan, **extra)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.update",
        entity=ENTITY,
        entity_id=plan.id,
        before=before,
        after=snapshot(plan),
    )
    return plan


# --- the plan document ------------------------------------------------------------------


def _document_shape_errors(doc: Mapping[str, Any], loc: list[str | int]) -> list[dict[str, Any]]:
    """What a document must get right to be storable at all: legal, unique input keys (they
    go into the catalog) and unique step names and orders (the database keys steps by them)."""
    errors: list[dict[str, Any]] = []

    def error(path: list[str | int], msg: str, code: str) -> None:
        errors.append({"loc": [*loc, *path], "msg": msg, "type": code})

    seen_keys: set[str] = set()
    for index, spec in enumerate(doc.get("inputs") or []):
        problem = catalog.name_problem(spec["key"])
        if problem:
            error(["inputs", index, "key"], problem, "invalid_name")
        elif spec["key"] in seen_keys:
            error(
                ["inputs", index, "key"],
                f"input '{spec['key']}' is declared twice",
                "duplicate_name",
            )
        seen_keys.add(spec["key"])
    names: set[str] = set()
    orders: set[int] = set()
    for index, step in enumerate(doc.get("steps") or []):
        if step["name"] in names:
            error(
                ["steps", index, "name"], f"duplicate step name '{step['name']}'", "duplicate_step"
            )
        if step["order"] in orders:
            error(
                ["steps", index, "order"],
                f"two steps have order {step['order']}",
                "duplicate_order",
            )
        if not isinstance(step.get("default"), str | int | Decimal | None):
            error(
                ["steps", index, "default"], "must be a number, true/false or text", "value_error"
            )
        names.add(step["name"])
        orders.add(step["order"])
    return errors


def _apply_content(
    session: Session,
    principal: Principal | None,
    plan: BonusPlan,
    doc: Mapping[str, Any],
    loc: list[str | int],
) -> None:
    """Replace the plan's inputs, parameters and steps by `doc`'s (a PlanDocumentIn dump)."""
    errors = _document_shape_errors(doc, loc)
    if errors:
        raise UnprocessableEntity(errors)
    inputs = [dict(spec) for spec in doc.get("inputs") or []]
    entries = catalog.ensure_inputs(
        session,
        principal,
        [
            catalog.DeclaredInput(s["key"], s.get("label"), s["dtype"], s.get("scope", "employee"))
            for s in inputs
        ],
        [*loc, "inputs"],
    )
    _sync_plan_inputs(session, plan, [(entries[s["key"]], s) for s in inputs])
    _sync_steps(session, plan, doc.get("steps") or [])
    content = document_of(plan) | {
        "inputs": inputs,
        "parameters": [dict(p) for p in doc.get("parameters") or []],
        "payout": doc.get("payout"),
        "deferral": doc["deferral"] if "deferral" in doc else document_of(plan).get("deferral"),
    }
    if content["deferral"] is None:
        content.pop("deferral")  # plans without a deferral policy keep their old shape
    plan.document = plain_json(content)


def _sync_plan_inputs(
    session: Session,
    plan: BonusPlan,
    declared: list[tuple[catalog.CatalogInput, Mapping[str, Any]]],
) -> None:
    existing = {
        row.input_id: row
        for row in session.scalars(select(PlanInput).where(PlanInput.plan_id == plan.id))
    }
    for position, (entry, spec) in enumerate(declared):
        row = existing.pop(entry.id, None)
        if row is None:
            row = PlanInput(plan_id=plan.id, input_id=entry.id, source_mapping={})
            session.add(row)
        row.scope = spec.get("scope") or entry.scope
        row.required = bool(spec.get("required", True))
        row.default_value = plain_json(spec.get("default"))
        row.position = position
    for row in existing.values():
        session.delete(row)


def _sync_steps(session: Session, plan: BonusPlan, steps: list[Mapping[str, Any]]) -> None:
    """Step rows matching `steps`; a step keeps its id while its name stays the same."""
    existing = {row.name: row for row in list_steps(session, plan.id)}
    for spec in steps:
        row = existing.pop(spec["name"], None)
        if row is None:
            row = PlanStep(plan_id=plan.id, name=spec["name"])
            session.add(row)
        row.step_order = spec["order"]
        row.expr = spec["expr"]
        row.condition_expr = (
            spec.get("condition") if (spec.get("condition") or "").strip() else None
        )
        row.outputs = [spec["name"]]
        row.default_value = default_text(spec.get("default"))
        row.notes = spec.get("notes") or ""
    for row in existing.values():
        session.delete(row)


def replace_document(
    session: Session, principal: Principal, plan_id: uuid.UUID, doc: Mapping[str, Any]
) -> tuple[BonusPlan, CompiledPlan | None, list[dict[str, Any]]]:
    """PUT …/document: store the add-in's document (even if invalid) and diagnose it."""
    plan = _editable(session, principal, plan_id, "plan.document.replace")
    before = snapshot(plan) | {"document": plan.document}
    if doc.get("name"):
        _rename(session, plan, doc["name"])
    for key in ("effective_from", "effective_to", "currency"):
        setattr(plan, key, doc.get(key))
    _check_period(plan.effective_from, plan.effective_to, ["body", "effective_to"])
    _apply_content(session, principal, plan, doc, ["body"])
    _flush(session, f"plan '{plan.name}' v{plan.version} already exists")
    _refresh_document(session, plan)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.document.replace",
        entity=ENTITY,
        entity_id=plan.id,
        before=before,
        after=snapshot(plan) | {"document": plan.document},
    )
    return plan, *diagnostics_for(plan)


def diagnostics_for(plan: BonusPlan) -> tuple[CompiledPlan | None, list[dict[str, Any]]]:
    """(compiled plan or None, diagnostics) of the plan's stored document."""
    return checks.diagnose(document_of(plan))


# --- declared inputs --------------------------------------------------------------------


def plan_inputs(session: Session, plan: BonusPlan) -> list[dict[str, Any]]:
    """The declared inputs in document order, with their catalog ids."""
    specs = document_of(plan).get("inputs") or []
    entries = catalog.inputs_by_key(session, (s["key"] for s in specs))
    return [
        {
            "input_id": entries[s["key"]].id,
            "key": s["key"],
            "label": s.get("label"),
            "dtype": s["dtype"],
            "scope": s.get("scope", "employee"),
            "required": s.get("required", True),
            "default": s.get("default"),
        }
        for s in specs
        if s["key"] in entries
    ]


def replace_inputs(
    session: Session, principal: Principal, plan_id: uuid.UUID, declared: list[Mapping[str, Any]]
) -> BonusPlan:
    """Declare catalog inputs (by key) for a draft, replacing its previous declarations."""
    plan = _editable(session, principal, plan_id, "plan.inputs.replace")
    entries = catalog.inputs_by_key(session, (d["key"] for d in declared))
    errors, specs, seen = [], [], set()
    for index, item in enumerate(declared):
        loc: list[str | int] = ["body", "inputs", index]
        entry = entries.get(item["key"])
        if entry is None:
            errors.append(
                {
                    "loc": [*loc, "key"],
                    "type": "unknown_input",
                    "msg": f"'{item['key']}' is not in the input catalog"
                    f"{did_you_mean(item['key'], catalog_keys(session))}",
                }
            )
            continue
        if entry.key in seen:
            errors.append(
                {
                    "loc": [*loc, "key"],
                    "msg": f"'{entry.key}' is declared twice",
                    "type": "duplicate_name",
                }
            )
        seen.add(entry.key)
        default = catalog.typed_default(entry.dtype, item.get("default"), [*loc, "default"])
        specs.append(
            {
                "key": entry.key,
                "label": entry.label,
                "dtype": entry.dtype,
                "scope": item.get("scope") or entry.scope,
                "required": item.get("required", True),
                "default": default,
            }
        )
    if errors:
        raise UnprocessableEntity(errors)
    before = document_of(plan).get("inputs")
    _sync_plan_inputs(session, plan, [(entries[s["key"]], s) for s in specs])
    _refresh_document(session, plan, inputs=specs)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.inputs.replace",
        entity=ENTITY,
        entity_id=plan.id,
        before={"inputs": before},
        after={"inputs": plan.document["inputs"]},
    )
    return plan


def catalog_keys(session: Session) -> list[str]:
    return [entry.key for entry in catalog.list_inputs(session)]


def _rename(session: Session, plan: BonusPlan, name: str) -> None:
    """Give a draft another name, unless that name already has this version number."""
    if name == plan.name:
        return
    taken = session.scalar(
        select(BonusPlan.id).where(
            BonusPlan.name == name, BonusPlan.version == plan.version, BonusPlan.id != plan.id
        )
    )
    if taken is not None:
        raise Conflict(f"plan '{name}' v{plan.version} already exists")
    plan.name = name


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
    plan = _editable(session, principal, plan_id, "plan.step.add")
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
    _refresh_document(session, plan)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.step.add",
        entity=ENTITY,
        entity_id=plan.id,
        after=_step_snapshot(step),
    )
    return step


def update_step(
    session: Session,
    principal: Principal,
    plan_id: uuid.UUID,
    step_id: uuid.UUID,
    changes: Mapping[str, Any],
) -> PlanStep:
    plan = _editable(session, principal, plan_id, "plan.step.update")
    step = get_step(session, plan.id, step_id)
    before = _step_snapshot(step)
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
    _refresh_document(session, plan, **payout)
    record_event(
        session,
        principal_or_actor_id=principal,
        action="plan.step.update",
        entity=ENTITY,
        entity_id=plan.id,
        before=before,
        after=_step_snapshot(step),
    )
    return step


def delete_step(
    session: Session, principal: Principal, plan_id: uuid.UUID, step_id: uuid.UUID
) -> None:
    plan = _editable(session, principal, plan_id, "plan.step.delete")
    step = get_step(session, plan.id, step_id)
    before = _step_snapshot(step)
    session.delete(step)
    _refresh_document(session, plan)
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
    plan = _editable(session, principal, plan_id, "plan.step.reorder")
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
    _refresh_document(session, plan)
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


# --- lock, versions, diff ---------------------------------------------------------------


def lock_plan(session: Session, principal: Principal, plan_id: uuid.UUID) -> BonusPlan:
    """Freeze a valid draft: status locked, who and when, and the engine's plan hash."""
    plan = _editable(session, principal, plan_id, "plan.lock")
    compiled, found = diagnostics_for(plan)
    if compiled is None:
        raise ProblemError(
            409,
            "Conflict",
            f"plan has {len(found)} problem(s); fix them before locking",
            [_as_error(d) for d in found],
        )
    before = snapshot(plan)
    plan.status = "locked"
    plan.locked_by = principal.user_id
    plan.locked_at = datetime.now(UTC)
    plan.plan_hash = plan_hash(compiled.document)
    _flush(session, "lock")
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


def _as_error(found: Mapping[str, Any]) -> dict[str, Any]:
    """A diagnostic as a problem+json error entry (loc: document, step, field)."""
    loc = [
        "document",
        *(["steps", found["step"]] if found["step"] else []),
        *([found["field"]] if found["field"] else []),
    ]
    return {"loc": loc, "msg": found["message"], "type": found["code"]} | {
        k: found[k] for k in ("step", "field", "line", "column")
    }


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
    _flush(session, f"plan '{source.name}' v{version} already exists")
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
            )
        )
    _refresh_document(session, plan)
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


# --- evaluation -------------------------------------------------------------------------


def _overrides(compiled: CompiledPlan, raw: Mapping[str, Any]) -> dict[str, Any]:
    dtypes = {spec.key: spec.dtype for spec in compiled.document.parameters}
    errors = []
    for key, value in raw.items():
        loc = ["body", "parameters", key]
        if key not in dtypes:
            errors.append(
                {
                    "loc": loc,
                    "type": "unknown_parameter",
                    "msg": f"'{key}' is not a parameter of this plan{did_you_mean(key, dtypes)}",
                }
            )
            continue
        try:
            coerce_value(dtypes[key], value)
        except ValueError as error:
            errors.append({"loc": loc, "msg": str(error), "type": "value_error"})
    if errors:
        raise UnprocessableEntity(errors)
    return dict(raw)


def evaluate(
    session: Session, plan_id: uuid.UUID, rows: list[dict[str, Any]], parameters: Mapping[str, Any]
) -> dict[str, Any]:
    """Test vectors on any valid plan (draft or locked), nothing stored."""
    plan = get_plan(session, plan_id)
    compiled, found = diagnostics_for(plan)
    if compiled is None:
        raise UnprocessableEntity(
            [_as_error(d) for d in found], f"the plan is not valid yet ({len(found)} problem(s))"
        )
    results = vectors.evaluate_rows(compiled, rows, _overrides(compiled, parameters))
    return {"plan_hash": compiled.plan_hash, "payout_step": compiled.payout, "rows": results}


_COMPILED: OrderedDict[tuple[str, int], CompiledPlan] = OrderedDict()
_COMPILED_MAX = 64
_COMPILED_LOCK = threading.Lock()


def get_locked_plan(session: Session, plan_id: uuid.UUID) -> tuple[BonusPlan, CompiledPlan]:
    """A locked (or archived) plan and its compiled form, cached by plan hash (for runs).

    The cache key is (plan hash, version): the hash leaves the version number out, but the
    compiled document carries it (snapshot hashes include it). 409 when the plan is still a
    draft. The compiled plan's hash must equal the stored one: a mismatch means the stored
    document changed under a lock, which must never happen.
    """
    plan = get_plan(session, plan_id)
    if plan.status not in ("locked", "archived") or plan.plan_hash is None:
        raise Conflict(f"plan '{plan.name}' v{plan.version} is not locked; lock it first")
    key = (plan.plan_hash, plan.version)
    with _COMPILED_LOCK:
        compiled = _COMPILED.get(key)
        if compiled is not None:
            _COMPILED.move_to_end(key)
            return plan, compiled
    compiled, _ = diagnostics_for(plan)
    if compiled is None or compiled.plan_hash != plan.plan_hash:
        raise RuntimeError(f"locked plan {plan.id} no longer matches its plan hash")
    with _COMPILED_LOCK:
        _COMPILED[key] = compiled
        while len(_COMPILED) > _COMPILED_MAX:
            _COMPILED.popitem(last=False)
    return plan, compiled
