"""Canonical JSON and the plan, snapshot and results hashes (ENGINE.md §9)."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from engine import r10
from engine.backends.base import EvalResult
from engine.catalog import CATALOG_VERSION
from engine.model import PRESENTATION_FIELDS, CompiledPlan, PlanDocument

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
    # Presentation fields (plan.PRESENTATION_FIELDS) say how a statement reads, not what is
    # computed: leaving them out keeps every hash made before they existed.
    for item in data["inputs"]:
        item.pop("format", None)
    for item in (*data["parameters"], *data["steps"]):
        for name in PRESENTATION_FIELDS:
            item.pop(name, None)
    data["steps"] = sorted(data["steps"], key=lambda step: (step["order"], step["name"]))
    if not include_version:
        data.pop("version")
    if data.get("deferral") is None:
        data.pop("deferral", None)  # plans without a policy keep the hash they always had
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


def _text_column(name: str, dtype: pl.DataType) -> pl.Expr:
    """One result column as its canonical CSV text (docs/engine.md §10)."""
    column = pl.col(name)
    if isinstance(dtype, pl.Decimal):
        # Polars decimals are scaled integers: exactly 10 decimals, and no negative zero.
        return column.cast(pl.Decimal(38, 10)).cast(pl.String)
    if dtype == pl.Boolean:
        return pl.when(column).then(pl.lit("true")).when(~column).then(pl.lit("false"))
    if dtype == pl.Date:
        return column.dt.to_string("%Y-%m-%d")
    return column.cast(pl.String)


def _diagnostics_text() -> pl.Expr:
    """Diagnostics as compact JSON with sorted keys, or null (empty) when there are none."""
    element = pl.element().struct
    encoded = (
        pl.col("diagnostics")
        .list.eval(
            pl.struct(
                element.field("code"), element.field("message"), element.field("step")
            ).struct.json_encode()
        )
        .list.join(",")
    )
    return (
        pl.when(pl.col("diagnostics").list.len() > 0)
        .then(pl.concat_str(pl.lit("["), encoded, pl.lit("]")))
        .otherwise(None)
        .alias("diagnostics")
    )


def results_csv(plan: CompiledPlan, result: EvalResult) -> bytes:
    """The canonical results CSV: employee_ref, steps in display order, diagnostics; rows by
    employee_ref; R10 decimals, true/false, ISO dates, null empty; UTF-8, "\\n" endings."""
    frame = result.frame
    if not frame["employee_ref"].is_sorted():
        frame = frame.sort("employee_ref", maintain_order=True)
    columns = ["employee_ref", *plan.display_order]
    text = frame.select(
        *(_text_column(name, frame.schema[name]).alias(name) for name in columns),
        _diagnostics_text(),
    )
    buffer = io.BytesIO()
    text.write_csv(buffer, line_terminator="\n", null_value="", include_header=True)
    return buffer.getvalue()


def results_hash(plan: CompiledPlan, result: EvalResult) -> str:
    """SHA-256 of the canonical results CSV; a re-run of a snapshot must reproduce it."""
    return _sha256(results_csv(plan, result))
