"""What a file can be mapped to: the plan's inputs (or the tenant's catalog) per upload kind.

Plan inputs come from the plans service (`plan_inputs`: the plan document's inputs that are
in the catalog) and each input's `validation` JSON (min, max, regex, allowed) from the
catalog service, by key.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from server.modules.catalog import service as catalog
from server.modules.plans import service as plans
from server.modules.uploads.models import MappingAlias

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
    aliases: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        return {"key": self.key, "label": self.label, "dtype": self.dtype, "scope": self.scope,
                "required": self.required}


def mapping_targets(session: Session, kind: str, plan_id: uuid.UUID | None) -> list[Target]:
    """The reference key(s) first, then the inputs of `plan_id` (or the whole catalog).

    employees files: `employee_ref`, `fund_ref` (optional), employee inputs, and fund inputs
    as optional (a plan may read them from the employees file); funds files: `fund_ref` and
    the fund inputs.
    """
    entries = {entry.key: entry for entry in catalog.list_inputs(session)}
    aliases: dict[str, list[str]] = {}
    for row in session.scalars(select(MappingAlias)):
        aliases.setdefault(row.input_key, []).append(row.alias)
    if plan_id is not None:
        inputs = plans.plan_inputs(session, plans.get_plan(session, plan_id))
    else:
        inputs = [{"key": e.key, "label": e.label, "dtype": e.dtype, "scope": e.scope,
                   "required": e.required, "default": e.default_value}
                  for e in entries.values()]
    if kind == "funds":
        targets = [Target("fund_ref", REFERENCE_LABELS["fund_ref"], "text", "fund")]
    else:
        targets = [Target("employee_ref", REFERENCE_LABELS["employee_ref"], "text"),
                   Target("fund_ref", REFERENCE_LABELS["fund_ref"], "text", required=False)]
    targets = [replace(t, aliases=tuple(aliases.get(t.key, ()))) for t in targets]
    for spec in inputs:
        scope = spec.get("scope") or "employee"
        if kind == "funds" and scope != "fund":
            continue
        required = bool(spec.get("required", True)) and (kind == "funds" or scope == "employee")
        entry = entries.get(spec["key"])
        targets.append(Target(
            key=spec["key"], label=spec.get("label") or (entry and entry.label) or spec["key"],
            dtype=spec["dtype"], scope=scope, required=required, default=spec.get("default"),
            validation=dict(entry.validation or {}) if entry else {},
            aliases=tuple(aliases.get(spec["key"], ())),
        ))
    return targets
