"""A computed run as the engine saw it, rebuilt from what is stored: the typed input frame
(from the snapshot's Parquet inputs) and the results (from `run_results`) as an EvalResult.

The rebuilt results are checked against the run's results hash, so whatever is built from
them (the audit workbook) holds exactly the values that were hashed when the run finished;
a stored row changed behind the API's back is refused rather than shown.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import polars as pl
from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.backends.base import DIAGNOSTIC_DTYPE, POLARS_TYPES, EvalResult
from engine.dsl.ast import Type
from engine.hashing import results_hash
from engine.plan import CompiledPlan
from server.errors import Conflict
from server.modules.runs import service
from server.modules.runs.models import PlanRun, RunResult
from server.modules.runs.snapshot import Snapshot
from server.settings import Settings


@dataclass(frozen=True)
class StoredRun:
    """A computed run: the row, its snapshot, compiled plan, input frame and results."""

    run: PlanRun
    snapshot: Snapshot
    plan: CompiledPlan
    frame: pl.DataFrame
    result: EvalResult


def _typed(kind: Type, value: Any) -> Any:
    """A stored JSON value (R10 string, boolean, ISO date, text) as the engine's value."""
    if value is None:
        return None
    if kind is Type.DECIMAL:
        return Decimal(str(value))
    if kind is Type.DATE:
        return date.fromisoformat(value)
    return value


def stored_result(session: Session, run_id: uuid.UUID, plan: CompiledPlan) -> EvalResult:
    """The run's stored rows as an EvalResult: steps in display order, typed by step type,
    rows by employee_ref."""
    rows = session.execute(
        select(RunResult.employee_ref, RunResult.values, RunResult.diagnostics)
        .where(RunResult.run_id == run_id).order_by(RunResult.employee_ref)).all()
    kinds = {step.name: step.type for step in plan.steps}
    columns: dict[str, pl.Series] = {
        "employee_ref": pl.Series("employee_ref", [r.employee_ref for r in rows], pl.String)}
    for name in plan.display_order:
        columns[name] = pl.Series(name, [_typed(kinds[name], (r.values or {}).get(name))
                                         for r in rows], POLARS_TYPES[kinds[name]])
    columns["diagnostics"] = pl.Series(
        "diagnostics",
        [[{"step": d.get("step"), "code": d.get("code"), "message": d.get("message")}
          for d in (r.diagnostics or [])] for r in rows],
        DIAGNOSTIC_DTYPE)
    return EvalResult(pl.DataFrame(columns))


def load_stored_run(session: Session, settings: Settings, run_id: uuid.UUID) -> StoredRun:
    """The computed run (404 unknown or another tenant's, 409 without results) with its
    inputs and stored results; 409 when the stored rows no longer hash to the run's
    results hash, or the input data no longer matches the snapshot."""
    run = service.computed_run(session, run_id)
    snapshot, plan, inputs = service.snapshot_inputs(session, run, settings)
    result = stored_result(session, run_id, plan)
    if results_hash(plan, result) != run.results_hash:
        raise Conflict(f"run {run_id}: the stored results do not match the run's results "
                       "hash; they were changed after the run finished")
    return StoredRun(run, snapshot, plan, inputs.frame, result)
