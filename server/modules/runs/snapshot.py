"""The run snapshot: everything that determines a run's results, stored with the run.

A snapshot is the effective plan document (the locked plan with the run's parameter
overrides applied), the column mapping and the SHA-256 of the normalised input data, plus
the catalog and semantics versions. Its hash is ENGINE.md §9's snapshot hash, so an override
is part of it (a different pool gives a different hash) and an override equal to the plan's
own value changes nothing. Execution and `reproduce` evaluate the stored document, never the
plan row, so a run can always be re-executed exactly.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from engine.catalog import CATALOG_VERSION
from engine.check import check_plan
from engine.hashing import SEMANTICS_VERSION, plan_hash, snapshot_hash
from engine.plan import CompiledPlan, PlanDocument, coerce_value, validate_document
from server.errors import UnprocessableEntity
from server.modules.runs.inputs import PLAN_CACHE, LockedPlan, UploadData


@dataclass(frozen=True)
class Snapshot:
    document: PlanDocument
    mapping: dict[str, Any]
    data_sha256: str
    overrides: dict[str, Any]
    plan_id: uuid.UUID
    upload_id: uuid.UUID
    funds_upload_id: uuid.UUID | None

    @property
    def hash(self) -> str:
        return snapshot_hash(self.document, self.mapping, self.data_sha256)

    def to_json(self) -> dict[str, Any]:
        return {
            "plan_id": str(self.plan_id),
            "upload_id": str(self.upload_id),
            "funds_upload_id": str(self.funds_upload_id) if self.funds_upload_id else None,
            "document": self.document.model_dump(mode="json"),
            "mapping": self.mapping,
            "data_sha256": self.data_sha256,
            "overrides": self.overrides,
            "catalog_version": CATALOG_VERSION,
            "semantics": SEMANTICS_VERSION,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Snapshot:
        funds = data.get("funds_upload_id")
        return cls(
            document=validate_document(data["document"], "run snapshot"),
            mapping=data["mapping"],
            data_sha256=data["data_sha256"],
            overrides=data.get("overrides") or {},
            plan_id=uuid.UUID(data["plan_id"]),
            upload_id=uuid.UUID(data["upload_id"]),
            funds_upload_id=uuid.UUID(funds) if funds else None,
        )

    def compiled(self) -> CompiledPlan:
        """The compiled effective plan, from the cache keyed by its plan hash and version."""
        return PLAN_CACHE.get(self.document, plan_hash(self.document))


def effective_document(plan: LockedPlan, overrides: dict[str, Any]) -> PlanDocument:
    """The locked document with `overrides` as parameter values (422 naming each bad one)."""
    _, problems = check_plan(plan.document, overrides)
    if problems:
        raise UnprocessableEntity([
            {"loc": ["body", "parameters"], "msg": str(p), "type": p.code} for p in problems
        ])
    parameters = []
    for spec in plan.document.parameters:
        if spec.key in overrides:
            spec = spec.model_copy(update={"value": coerce_value(spec.dtype, overrides[spec.key])})
        parameters.append(spec)
    return plan.document.model_copy(update={"parameters": parameters})


def build_snapshot(plan: LockedPlan, overrides: dict[str, Any], mapping: dict[str, Any],
                   data_sha256: str, employees: UploadData,
                   funds: UploadData | None) -> Snapshot:
    return Snapshot(effective_document(plan, overrides), mapping, data_sha256,
                    dict(overrides), plan.id, employees.id, funds.id if funds else None)
