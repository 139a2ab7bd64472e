"""Test vectors: evaluate a few inline rows with the reference backend, storing nothing.

Each row is a JSON object of input values keyed by input key (plus optional `employee_ref`
and `fund_ref`). Values are typed by the plan's declared dtypes; a bad value is a 422 naming
the row index and the key, never a silent null.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl

from engine.backends import reference
from engine.backends.base import ValueOverflow
from engine.plan import RESERVED_INPUTS, CompiledPlan, coerce_value
from server.errors import UnprocessableEntity

POLARS_DTYPES: dict[str, pl.DataType] = {
    "decimal": pl.Decimal(38, 10),
    "int": pl.Decimal(38, 10),
    "bool": pl.Boolean(),
    "text": pl.String(),
    "date": pl.Date(),
}


def _bad(row: int, key: str, message: str) -> dict[str, Any]:
    return {"loc": ["body", "rows", row, key], "msg": message, "type": "value_error"}


def _reference(row_index: int, raw: Any) -> str:
    if raw is None:
        return f"row{row_index + 1}"
    if not isinstance(raw, str) or not raw.strip():
        raise UnprocessableEntity([_bad(row_index, "employee_ref", "must be non-empty text")])
    return raw


def build_frame(plan: CompiledPlan, rows: list[dict[str, Any]]) -> pl.DataFrame:
    """The typed input frame of `rows`; every problem is collected and reported at once."""
    specs = {spec.key: spec for spec in plan.document.inputs}
    errors: list[dict[str, Any]] = []
    columns: dict[str, list[Any]] = {key: [] for key in specs}
    refs: list[str] = []
    funds: list[Any] = []
    for index, row in enumerate(rows):
        for key in row:
            if key not in specs and key not in RESERVED_INPUTS:
                errors.append(_bad(index, key, f"'{key}' is not an input of this plan"))
        refs.append(_reference(index, row.get("employee_ref")))
        fund = row.get("fund_ref")
        if fund is not None and not isinstance(fund, str):
            errors.append(_bad(index, "fund_ref", "must be text"))
        funds.append(fund)
        for key, spec in specs.items():
            columns[key].append(_cell(index, key, spec, row.get(key), errors))
    duplicates = sorted({ref for ref in refs if refs.count(ref) > 1})
    for ref in duplicates:
        errors.append(_bad(refs.index(ref), "employee_ref", f"employee_ref '{ref}' repeats"))
    if errors:
        raise UnprocessableEntity(errors)
    data = {
        "employee_ref": pl.Series(refs, dtype=pl.String),
        "fund_ref": pl.Series(funds, dtype=pl.String),
    }
    for key, spec in specs.items():
        data[key] = pl.Series(columns[key], dtype=POLARS_DTYPES[spec.dtype])
    return pl.DataFrame(data)


def _cell(index: int, key: str, spec: Any, raw: Any, errors: list[dict[str, Any]]) -> Any:
    if raw is None or (isinstance(raw, str) and not raw.strip() and spec.dtype != "text"):
        if spec.default is not None:
            return spec.default
        if spec.required:
            errors.append(_bad(index, key, f"required input '{key}' is missing"))
        return None
    try:
        value = coerce_value(spec.dtype, raw)
    except ValueError as error:
        errors.append(_bad(index, key, str(error)))
        return None
    return value


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date):
        return value.isoformat()
    return value


def evaluate_rows(
    plan: CompiledPlan, rows: list[dict[str, Any]], parameters: dict[str, Any]
) -> list[dict[str, Any]]:
    """Values (display order), payout, diagnostics and tape of every row."""
    frame = build_frame(plan, rows)
    try:
        result = reference.evaluate(plan, frame, parameters)
    except ValueOverflow as error:
        row = frame["employee_ref"].to_list().index(error.employee_ref)
        raise UnprocessableEntity(
            [
                {
                    "loc": ["body", "rows", row],
                    "msg": str(error),
                    "type": "overflow",
                    "step": error.step,
                }
            ]
        ) from None
    tapes = reference.explain_many(plan, frame, parameters=parameters)
    out = []
    for record in result.frame.iter_rows(named=True):
        ref = record["employee_ref"]
        tape = tapes[ref].to_dict()
        out.append(
            {
                "employee_ref": ref,
                "values": {name: _json(record[name]) for name in plan.display_order},
                "payout": _json(record[plan.payout]),
                "diagnostics": [dict(d) for d in record["diagnostics"]],
                "tape": tape,
            }
        )
    return out
