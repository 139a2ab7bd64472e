"""Drafts and their documents: create, edit the header, replace the whole document (the
add-in's PUT), and the catalog inputs a plan declares.

`replace_document` stores the add-in's document even when it does not pass the engine's
checks (the diagnostics go back to the sheet); only what the database needs to store it at
all (legal, unique input keys and unique step names and orders) is refused up front.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.check import did_you_mean
from engine.plan import CompiledPlan, PlanDocument
from server.errors import Conflict, UnprocessableEntity
from server.jsonbody import plain_json
from server.modules.audit.service import record_event
from server.modules.catalog import service as catalog
from server.modules.plans.models import BonusPlan, PlanInput, PlanStep
from server.modules.plans.store import (
    ENTITY,
    HEADER_FIELDS,
    check_period,
    default_text,
    diagnostics_for,
    document_of,
    editable,
    flush,
    list_steps,
    refresh_document,
    snapshot,
)
from server.principal import Principal

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
    check_period(header["effective_from"], header["effective_to"], ["body", "effective_to"])
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
    flush(session, f"plan '{plan.name}' v{plan.version} already exists")
    payout = fields.get("payout") if fields.get("payout") is not None else doc.get("payout")
    if doc:
        _apply_content(session, principal, plan, doc, ["body", "document"])
    refresh_document(session, plan, payout=payout)
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
    plan = editable(session, principal, plan_id, "plan.update")
    before = snapshot(plan)
    if changes.get("name"):
        _rename(session, plan, changes["name"])
    for key in HEADER_FIELDS[1:]:
        if key in changes and (changes[key] is not None or key in ("effective_to", "notes")):
            setattr(plan, key, changes[key])
    check_period(plan.effective_from, plan.effective_to, ["body", "effective_to"])
    flush(session, f"plan '{plan.name}' v{plan.version} already exists")
    extra = {"payout": changes["payout"]} if "payout" in changes else {}
    refresh_document(session, plan, **extra)
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
        # no `deferral` key (an add-in sync) keeps the stored policy; null removes it
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
        row.label = spec.get("label") or None
        row.display_format = spec.get("format") or None
    for row in existing.values():
        session.delete(row)


def replace_document(
    session: Session, principal: Principal, plan_id: uuid.UUID, doc: Mapping[str, Any]
) -> tuple[BonusPlan, CompiledPlan | None, list[dict[str, Any]]]:
    """PUT …/document: store the add-in's document (even if invalid) and diagnose it."""
    plan = editable(session, principal, plan_id, "plan.document.replace")
    before = snapshot(plan) | {"document": plan.document}
    if doc.get("name"):
        _rename(session, plan, doc["name"])
    for key in ("effective_from", "effective_to", "currency"):
        setattr(plan, key, doc.get(key))
    check_period(plan.effective_from, plan.effective_to, ["body", "effective_to"])
    _apply_content(session, principal, plan, doc, ["body"])
    flush(session, f"plan '{plan.name}' v{plan.version} already exists")
    refresh_document(session, plan)
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
    plan = editable(session, principal, plan_id, "plan.inputs.replace")
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
    refresh_document(session, plan, inputs=specs)
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
