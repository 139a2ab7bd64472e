"""Canonical JSON and the plan, snapshot and results hashes (ENGINE.md §9)."""

from __future__ import annotations

import hashlib
import json
from datetime import date
from decimal import Decimal
from typing import Any

from engine import r10
from engine.catalog import CATALOG_VERSION
from engine.plan import PlanDocument

SEMANTICS_VERSION = "R10"


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return r10.text(value)
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not canonical-JSON serialisable: {type(value).__name__}")


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no whitespace, UTF-8, decimals as R10 strings, dates ISO."""
    return json.dumps(
        obj,
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=_json_default,
        allow_nan=False,
    ).encode("utf-8")


def canonical_plan(doc: PlanDocument, include_version: bool = True) -> dict[str, Any]:
    """The plan as a canonical dict: steps sorted by order (then name), inputs and
    parameters in declared order, typed values kept typed (decimals become R10 text)."""
    data = doc.model_dump(mode="python")
    data["steps"] = sorted(data["steps"], key=lambda step: (step["order"], step["name"]))
    if not include_version:
        data.pop("version")
    return data


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def plan_hash(doc: PlanDocument) -> str:
    """docs/engine.md §9: content hash of the plan, independent of its version number."""
    return _sha256(
        canonical_json(
            {
                "catalog_version": CATALOG_VERSION,
                "plan": canonical_plan(doc, include_version=False),
                "semantics": SEMANTICS_VERSION,
            }
        )
    )


def snapshot_hash(doc: PlanDocument, mapping: Any, data_sha256: str) -> str:
    """ENGINE.md §9: plan document, catalog and semantics versions, column mapping and the
    SHA-256 of the normalised input data."""
    return _sha256(
        canonical_json(
            {
                "catalog_version": CATALOG_VERSION,
                "data_sha256": data_sha256,
                "mapping": mapping,
                "plan": canonical_plan(doc),
                "semantics": SEMANTICS_VERSION,
            }
        )
    )
