"""The tenant's input catalog: the keys plans may declare as inputs, with their types.

An entry can be changed or removed only while no plan declares it (the plans module owns
that knowledge; it is asked through its service). Plan documents add missing keys here
through `ensure_inputs`, and a key declared with another dtype than the catalog's is refused.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from engine.check import name_problem as engine_name_problem
from engine.plan import RESERVED_INPUTS, coerce_value
from server.errors import Conflict, NotFound, UnprocessableEntity
from server.jsonbody import plain_json
from server.modules.audit.service import record_event
from server.modules.catalog.models import CatalogInput
from server.modules.plans.queries import plans_using_input
from server.principal import Principal

ENTITY = "input_catalog"
# Migration 0130 applies the same rule to existing entries.
SENSITIVE = re.compile(r"salary|salaries|base.pay|wage|compensation|remuneration|name|birth|"
                       r"address|email|phone|national.id|passport|iban|tax.id|ssn")


def default_sensitive(key: str, label: str | None, dtype: str) -> bool:
    """Whether a new input is personal data to encrypt when nobody said: dates, and keys
    or labels naming pay, names or contact details."""
    return dtype == "date" or any(SENSITIVE.search((text or "").lower())
                                  for text in (key, label))


def sensitive_keys(session: Session) -> set[str]:
    """The tenant's input keys whose values are encrypted wherever they are stored."""
    return set(session.scalars(select(CatalogInput.key).where(CatalogInput.sensitive)))


def name_problem(name: str) -> str | None:
    """Why `name` cannot name an input, parameter or step (engine rules), or None."""
    if name in RESERVED_INPUTS:
        return f"'{name}' is reserved (always available as a text input)"
    return engine_name_problem(name)


def typed_default(dtype: str, raw: Any, loc: list[str | int]) -> Any:
    """`raw` checked against `dtype` and stored in canonical JSON form (None stays None)."""
    if raw is None:
        return None
    try:
        value = coerce_value(dtype, raw)
    except ValueError as error:
        problem = {"loc": loc, "msg": str(error), "type": "value_error"}
        raise UnprocessableEntity([problem]) from None
    return value.isoformat() if isinstance(value, date) else plain_json(value)


def snapshot(entry: CatalogInput) -> dict[str, Any]:
    """What the audit log records about an entry."""
    return {
        "key": entry.key,
        "label": entry.label,
        "dtype": entry.dtype,
        "scope": entry.scope,
        "required": entry.required,
        "default_value": entry.default_value,
        "validation": entry.validation,
        "sensitive": entry.sensitive,
    }


def list_inputs(session: Session) -> list[CatalogInput]:
    return list(session.scalars(select(CatalogInput).order_by(CatalogInput.key)))


def get_input(session: Session, input_id: uuid.UUID, *, for_update: bool = False) -> CatalogInput:
    query = select(CatalogInput).where(CatalogInput.id == input_id)
    entry = session.scalar(query.with_for_update() if for_update else query)
    if entry is None:
        raise NotFound("input")
    return entry


def inputs_by_key(session: Session, keys: Iterable[str]) -> dict[str, CatalogInput]:
    wanted = list(set(keys))
    if not wanted:
        return {}
    rows = session.scalars(select(CatalogInput).where(CatalogInput.key.in_(wanted)))
    return {row.key: row for row in rows}


def create_input(
    session: Session, actor: Principal | None, fields: Mapping[str, Any]
) -> CatalogInput:
    """Add an entry; the key must be a legal DSL name and new to the tenant (else 409)."""
    problem = name_problem(fields["key"])
    if problem:
        raise UnprocessableEntity([{"loc": ["body", "key"], "msg": problem, "type": "value_error"}])
    default = typed_default(fields["dtype"], fields.get("default_value"), ["body", "default_value"])
    entry = CatalogInput(
        key=fields["key"],
        label=fields["label"],
        dtype=fields["dtype"],
        scope=fields.get("scope", "employee"),
        required=bool(fields.get("required", False)),
        default_value=default,
        validation=plain_json(dict(fields.get("validation") or {})),
        sensitive=(fields["sensitive"] if fields.get("sensitive") is not None else
                   default_sensitive(fields["key"], fields.get("label"), fields["dtype"])),
    )
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        raise Conflict(f"input '{fields['key']}' already exists in the catalog") from None
    record_event(
        session,
        principal_or_actor_id=actor,
        action="catalog.input.create",
        entity=ENTITY,
        entity_id=entry.id,
        after=snapshot(entry),
    )
    return entry


def _refuse_if_used(session: Session, entry: CatalogInput, verb: str) -> None:
    users = plans_using_input(session, entry.id)
    if users:
        names = ", ".join(users)
        raise Conflict(
            f"input '{entry.key}' is used by plan(s) {names}; it cannot be {verb}",
            [
                {"loc": ["path", "inputId"], "msg": f"used by {name}", "type": "in_use"}
                for name in users
            ],
        )


def update_input(
    session: Session, actor: Principal, input_id: uuid.UUID, changes: Mapping[str, Any]
) -> CatalogInput:
    """Change an entry that no plan declares yet (409 naming the plans otherwise); only
    `sensitive` may change while plans use it (it decides how data stored from now on is
    kept, not what any value means)."""
    entry = get_input(session, input_id, for_update=True)
    if any(changes.get(f) is not None for f in ("label", "dtype", "scope", "required",
                                                 "validation")) or "default_value" in changes:
        _refuse_if_used(session, entry, "changed")
    before = snapshot(entry)
    if changes.get("sensitive") is not None:
        entry.sensitive = bool(changes["sensitive"])
    for field in ("label", "dtype", "scope", "required"):
        if changes.get(field) is not None:
            setattr(entry, field, changes[field])
    if "validation" in changes and changes["validation"] is not None:
        entry.validation = plain_json(dict(changes["validation"]))
    if "default_value" in changes:
        entry.default_value = changes["default_value"]
    entry.default_value = typed_default(entry.dtype, entry.default_value, ["body", "default_value"])
    session.flush()
    record_event(
        session,
        principal_or_actor_id=actor,
        action="catalog.input.update",
        entity=ENTITY,
        entity_id=entry.id,
        before=before,
        after=snapshot(entry),
    )
    return entry


def delete_input(session: Session, actor: Principal, input_id: uuid.UUID) -> None:
    entry = get_input(session, input_id, for_update=True)
    _refuse_if_used(session, entry, "deleted")
    before = snapshot(entry)
    session.delete(entry)
    session.flush()
    record_event(
        session,
        principal_or_actor_id=actor,
        action="catalog.input.delete",
        entity=ENTITY,
        entity_id=input_id,
        before=before,
    )


@dataclass(frozen=True)
class DeclaredInput:
    """An input as a plan document declares it (what `ensure_inputs` needs)."""

    key: str
    label: str | None
    dtype: str
    scope: str


def ensure_inputs(
    session: Session,
    actor: Principal | None,
    declared: list[DeclaredInput],
    loc_prefix: list[str | int],
) -> dict[str, CatalogInput]:
    """Catalog entries for every declared key, creating the missing ones.

    A key already in the catalog with another dtype is a 422 naming the input's position
    (`loc_prefix + [index, "dtype"]`): the catalog is the tenant's single meaning of a key.
    """
    existing = inputs_by_key(session, (d.key for d in declared))
    errors = [
        {
            "loc": [*loc_prefix, index, "dtype"],
            "msg": (
                f"input '{d.key}' is '{existing[d.key].dtype}' in the tenant's input "
                f"catalog, not '{d.dtype}'"
            ),
            "type": "dtype_conflict",
        }
        for index, d in enumerate(declared)
        if d.key in existing and existing[d.key].dtype != d.dtype
    ]
    if errors:
        raise UnprocessableEntity(errors)
    for d in declared:
        if d.key not in existing:
            existing[d.key] = create_input(
                session,
                actor,
                {"key": d.key, "label": d.label or d.key, "dtype": d.dtype, "scope": d.scope},
            )
    return existing
