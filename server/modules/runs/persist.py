"""Turning an evaluation into stored rows: one row per employee, values and diagnostics.

`values` maps each step (display order) to its value: decimals as R10 strings, booleans as
JSON booleans, dates ISO, text as is, null as null. `diagnostics` is the row's list of
`{step, code, message}` in evaluation order. Both are built as JSON text by Polars, written
with COPY (see server.db.bulk) and read back by the results endpoints.
"""

from __future__ import annotations

import io
import uuid

import polars as pl
from sqlalchemy.orm import Session

from engine.backends.base import EvalResult
from engine.plan import CompiledPlan
from server.db.bulk import insert_staged, staged_copy

RESULT_COLUMNS = (("employee_ref", "text"), ("values", "jsonb"), ("diagnostics", "jsonb"))
STAGE = "_run_results_in"
COPY_CHUNK = 1 << 20


def _json_ready(name: str, dtype: pl.DataType) -> pl.Expr:
    column = pl.col(name)
    if isinstance(dtype, pl.Decimal):
        return column.cast(pl.Decimal(38, 10)).cast(pl.String).alias(name)
    if dtype == pl.Date:
        return column.dt.to_string("%Y-%m-%d").alias(name)
    return column


def _diagnostics_json() -> pl.Expr:
    element = pl.element().struct
    encoded = pl.col("diagnostics").list.eval(
        pl.struct(element.field("step"), element.field("code"), element.field("message"))
        .struct.json_encode()
    ).list.join(",")
    return pl.concat_str(pl.lit("["), encoded, pl.lit("]")).alias("diagnostics")


def result_rows_csv(plan: CompiledPlan, result: EvalResult) -> bytes:
    """COPY-ready CSV (no header): employee_ref, values JSON, diagnostics JSON."""
    frame = result.frame
    values = pl.struct(*(_json_ready(name, frame.schema[name]) for name in plan.display_order))
    rows = frame.select(
        pl.col("employee_ref"),
        values.struct.json_encode().alias("values"),
        _diagnostics_json(),
    )
    buffer = io.BytesIO()
    rows.write_csv(buffer, include_header=False, line_terminator="\n")
    return buffer.getvalue()


def store_results(session: Session, run_id: uuid.UUID, plan: CompiledPlan,
                  result: EvalResult) -> int:
    """Insert every employee's row of `run_id` in the session's transaction."""
    payload = result_rows_csv(plan, result)
    with staged_copy(session, STAGE, RESULT_COLUMNS) as copy:
        for start in range(0, len(payload), COPY_CHUNK):
            copy.write(payload[start:start + COPY_CHUNK])
    return insert_staged(session, STAGE, "run_results", [name for name, _ in RESULT_COLUMNS],
                         {"run_id": run_id})
