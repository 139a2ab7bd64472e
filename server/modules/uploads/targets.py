"""What a file can be mapped to: the plan's inputs (or the tenant's catalog) per upload kind.

Until the plans module offers a service for it, plan inputs are read here, read-only, from
`comp.bonus_plans.document` (the stored plan document) or else `comp.plan_inputs` joined to
`comp.input_catalog`; the catalog's `validation` JSON (min, max, regex, allowed) is attached
by key. `mapping_targets` is the one function to swap for the plans service later.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import column, select, table
from sqlalchemy.orm import Session

from server.errors import NotFound

_catalog = table(
    "input_catalog", column("tenant_id"), column("id"), column("key"), column("label"),
    column("dtype"), column("scope"), column("required"), column("default_value"),
    column("validation"), schema="comp",
)
_plans = table("bonus_plans", column("tenant_id"), column("id"), column("document"),
               schema="comp")
_plan_inputs = table("plan_inputs", column("tenant_id"), column("plan_id"), column("input_id"),
                     column("scope"), column("required"), column("default_value"),
                     column("position"), schema="comp")

REFERENCE_LABELS = {"employee_ref": "Employee ID", "fund_ref": "Fund code"}


@dataclass(frozen=True)
class Target:
    """One input a column can be mapped to."""

    key: str
    label: str
    dtype: str
    scope: str = "employee"
    required: bool = True
    default: Any = None
    validation: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "dtype": self.dtype, "scope": self.scope,
                "required": self.required}


def _catalog_rows(session: Session, tenant_id: uuid.UUID) -> dict[str, Any]:
    rows = session.execute(select(_catalog).where(_catalog.c.tenant_id == tenant_id)).mappings()
    return {row["key"]: row for row in rows}


def _plan_inputs(session: Session, tenant_id: uuid.UUID, plan_id: uuid.UUID,
                 catalog: dict[str, Any]) -> list[dict[str, Any]]:
    document = session.execute(
        select(_plans.c.document).where(_plans.c.tenant_id == tenant_id, _plans.c.id == plan_id)
    ).first()
    if document is None:
        raise NotFound("bonus_plan")
    if document[0] and document[0].get("inputs"):
        return list(document[0]["inputs"])
    by_id = {row["id"]: row for row in catalog.values()}
    rows = session.execute(
        select(_plan_inputs).where(_plan_inputs.c.tenant_id == tenant_id,
                                   _plan_inputs.c.plan_id == plan_id)
        .order_by(_plan_inputs.c.position)
    ).mappings()
    inputs = []
    for row in rows:
        entry = by_id[row["input_id"]]
        inputs.append({"key": entry["key"], "label": entry["label"], "dtype": entry["dtype"],
                       "scope": row["scope"], "required": row["required"],
                       "default": row["default_value"]})
    return inputs


def _catalog_inputs(catalog: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": r["key"], "label": r["label"], "dtype": r["dtype"], "scope": r["scope"],
             "required": r["required"], "default": r["default_value"]}
            for r in catalog.values()]


def mapping_targets(session: Session, tenant_id: uuid.UUID, kind: str,
                    plan_id: uuid.UUID | None) -> list[Target]:
    """The reference key(s) first, then the inputs of `plan_id` (or the whole catalog).

    employees files: `employee_ref`, `fund_ref` (optional), employee inputs, and fund inputs
    as optional (a plan may read them from the employees file); funds files: `fund_ref` and
    the fund inputs.
    """
    catalog = _catalog_rows(session, tenant_id)
    inputs = (_plan_inputs(session, tenant_id, plan_id, catalog) if plan_id
              else _catalog_inputs(catalog))
    if kind == "funds":
        targets = [Target("fund_ref", REFERENCE_LABELS["fund_ref"], "text", "fund")]
    else:
        targets = [Target("employee_ref", REFERENCE_LABELS["employee_ref"], "text"),
                   Target("fund_ref", REFERENCE_LABELS["fund_ref"], "text", required=False)]
    for spec in inputs:
        scope = spec.get("scope") or "employee"
        if kind == "funds" and scope != "fund":
            continue
        required = bool(spec.get("required", True)) and (kind == "funds" or scope == "employee")
        entry = catalog.get(spec["key"])
        targets.append(Target(
            key=spec["key"], label=spec.get("label") or (entry and entry["label"]) or spec["key"],
            dtype=spec["dtype"], scope=scope, required=required, default=spec.get("default"),
            validation=dict(entry["validation"] or {}) if entry else {},
        ))
    return targets
