"""Small builders for plan documents and input frames used across the engine tests."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from engine.plan import CompiledPlan, PlanDocument, compile_plan, validate_document

POLARS_DTYPES = {
    "decimal": pl.Decimal(38, 10),
    "int": pl.Decimal(38, 10),
    "bool": pl.Boolean,
    "text": pl.String,
    "date": pl.Date,
}


def document(
    steps: list[dict[str, Any]] | dict[str, str],
    inputs: dict[str, str] | None = None,
    parameters: list[dict[str, Any]] | None = None,
    payout: str | None = None,
) -> PlanDocument:
    """A plan document; `steps` may be {name: expr} (orders 10, 20, ...)."""
    if isinstance(steps, dict):
        steps = [
            {"order": 10 * (i + 1), "name": name, "expr": expr}
            for i, (name, expr) in enumerate(steps.items())
        ]
    return validate_document(
        {
            "name": "test plan",
            "version": 1,
            "effective_from": "2025-01-01",
            "currency": "USD",
            "inputs": [{"key": k, "dtype": t} for k, t in (inputs or {}).items()],
            "parameters": parameters or [],
            "steps": steps,
            "payout": payout or steps[-1]["name"],
        }
    )


def plan(steps, inputs=None, parameters=None, payout=None) -> CompiledPlan:
    return compile_plan(document(steps, inputs, parameters, payout))


def frame(inputs: dict[str, str], rows: list[dict[str, Any]]) -> pl.DataFrame:
    """An input frame typed like engine.data produces: decimals as Decimal(38,10)."""
    refs = [row.get("employee_ref", f"E{i + 1}") for i, row in enumerate(rows)]
    data: dict[str, Any] = {"employee_ref": pl.Series(refs, dtype=pl.String)}
    if any("fund_ref" in row for row in rows):
        data["fund_ref"] = pl.Series([row.get("fund_ref") for row in rows], dtype=pl.String)
    for key, dtype in inputs.items():
        values = [_typed(row.get(key), dtype) for row in rows]
        data[key] = pl.Series(values, dtype=POLARS_DTYPES[dtype])
    return pl.DataFrame(data)


def _typed(value: Any, dtype: str) -> Any:
    if value is None:
        return None
    if dtype in ("decimal", "int"):
        return Decimal(str(value))
    if dtype == "date":
        return date.fromisoformat(value) if isinstance(value, str) else value
    return value
