"""Runs: start (idempotent), read, results and tapes, reproduce, compare, legacy parity.

Other modules use these functions (approvals: `run_for_update`, `run_out`; reports:
`get_run`, `result_rows`, `tape`). Execution itself lives in `execution.py` (the worker).
"""

from __future__ import annotations

import hashlib
import io
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl
from fastapi import Response
from sqlalchemy import Text, and_, cast, func, or_, select, text
from sqlalchemy.orm import Session

from engine import r10
from engine.backends import reference
from engine.hashing import results_csv
from engine.plan import CompiledPlan, PlanDocument
from server.db import session as db
from server.errors import Conflict, NotFound, ProblemError, UnprocessableEntity
from server.jsonbody import plain_json
from server.jsonresponse import model_response
from server.modules.audit.service import record_event
from server.modules.runs import execution, history, visibility
from server.modules.runs.inputs import (
    RunInputs,
    combined_data_hash,
    combined_mapping,
    locked_plan,
    ready_upload,
)
from server.modules.runs.models import PlanRun, RunResult, RunTotals
from server.modules.runs.schemas import (
    Approvals,
    CompareOut,
    EmployeeDelta,
    EmployeeDifference,
    ParityOut,
    ParityRow,
    ReproduceOut,
    RunOut,
    RunStart,
    TapeOut,
)
from server.modules.runs.snapshot import Snapshot, build_snapshot
from server.pagination import decode_cursor, encode_cursor
from server.principal import Principal
from server.settings import Settings
from server.worker import queue

COMPUTED = ("draft", "manager_approved", "hr_approved", "finance_approved", "finalized")
PARITY_TOLERANCE = Decimal("0.01")
MAX_DIFFERENCES = 100


# -- start ---------------------------------------------------------------------------------
def _fingerprint(body: RunStart) -> str:
    payload = body.model_dump(mode="json", exclude={"tenant_id"})
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class Started:
    run: PlanRun
    created: bool


def _existing_for_key(session: Session, key: str, fingerprint: str) -> PlanRun | None:
    session.execute(text("select pg_advisory_xact_lock(hashtextextended(:k, 0))"),
                    {"k": f"run-idempotency:{session.info['tenant_id']}:{key}"})
    run = session.scalar(select(PlanRun).where(PlanRun.idempotency_key == key))
    if run is not None and run.request_fingerprint != fingerprint:
        raise Conflict(f"Idempotency-Key '{key}' was already used for a different request")
    return run


def start_run(principal: Principal, body: RunStart, idempotency_key: str | None,
              settings: Settings) -> Started:
    """Create a queued run from a locked plan and ready upload(s), then enqueue it.

    The run row is committed before the task is queued, so a worker always finds it. The
    same Idempotency-Key with the same body returns the first run; with another body, 409.
    """
    if body.tenant_id is not None and body.tenant_id != principal.tenant_id:
        raise NotFound("tenant")
    # JSON numbers arrive as checked Decimals (ExactNumberRoute): keep them as exact text.
    body = body.model_copy(update={"parameters": plain_json(body.parameters)})
    fingerprint = _fingerprint(body)
    with db.tenant_session(principal.tenant_id) as session:
        if idempotency_key:
            existing = _existing_for_key(session, idempotency_key, fingerprint)
            if existing is not None:
                return Started(existing, created=False)
        plan = locked_plan(session, body.plan_id)
        employees = ready_upload(session, settings, body.upload_id, "employees")
        funds = (ready_upload(session, settings, body.funds_upload_id, "funds")
                 if body.funds_upload_id else None)
        snapshot = build_snapshot(plan, body.parameters, combined_mapping(employees, funds),
                                  combined_data_hash(employees, funds), employees, funds)
        run = PlanRun(
            plan_id=plan.id, upload_id=employees.id, funds_upload_id=snapshot.funds_upload_id,
            scenario_name=body.scenario_name, snapshot_hash=snapshot.hash,
            snapshot=snapshot.to_json(), parameters=snapshot.overrides, status="queued",
            progress={"phase": "queued", "rows_done": 0}, idempotency_key=idempotency_key,
            request_fingerprint=fingerprint, created_by=principal.user_id,
            approvals_state={"state": "draft", "history": []},
        )
        session.add(run)
        session.flush()
        record_event(session, principal_or_actor_id=principal, action="run.create",
                     entity="plan_run", entity_id=run.id,
                     after={"plan_id": plan.id, "plan_version": plan.version,
                            "upload_id": employees.id, "funds_upload_id": run.funds_upload_id,
                            "scenario_name": body.scenario_name, "parameters": body.parameters,
                            "snapshot_hash": run.snapshot_hash})
    enqueue(principal.tenant_id, run.id, settings)
    return Started(run, created=True)


def enqueue(tenant_id: uuid.UUID, run_id: uuid.UUID, settings: Settings) -> None:
    """Queue the run; if the queue is unreachable, the run fails saying so (503)."""
    try:
        queue.get_queue(settings).enqueue(queue.EXECUTE_RUN, tenant_id, run_id)
    except Exception as error:
        reason = f"could not queue the run: {type(error).__name__}: {error}"
        execution.fail_run(tenant_id, run_id, reason)
        raise ProblemError(503, "Service Unavailable", reason) from error


# -- read ----------------------------------------------------------------------------------
def get_run(session: Session, run_id: uuid.UUID) -> PlanRun:
    run = session.get(PlanRun, run_id)
    if run is None:
        raise NotFound("run")
    return run


def run_for_update(session: Session, run_id: uuid.UUID) -> PlanRun:
    """The run, row-locked for a state change (approvals)."""
    run = session.scalar(select(PlanRun).where(PlanRun.id == run_id).with_for_update())
    if run is None:
        raise NotFound("run")
    return run


def totals_of(session: Session, run_id: uuid.UUID) -> dict[str, Any] | None:
    row = session.get(RunTotals, run_id)
    return row.totals if row is not None else None


def run_response(session: Session, run: PlanRun, principal: Principal) -> Response:
    """GET /runs/{id}: a caller who sees every group gets the stored totals spliced in as
    stored (a 10k-employee run's totals are a megabyte of JSON: parsing and re-writing it
    was most of the request); the others get them filtered by `run_out`."""
    if not visibility.sees_all_groups(principal):
        return model_response(run_out(session, run, principal=principal))
    totals = session.scalar(select(cast(RunTotals.totals, Text))
                            .where(RunTotals.run_id == run.id))
    return model_response(run_out(session, run, with_totals=False, principal=principal),
                          totals=totals)


def run_out(session: Session, run: PlanRun, with_totals: bool = True,
            principal: Principal | None = None, people: history.People | None = None) -> RunOut:
    """The run as `principal` may see it (totals' small groups hidden from managers and
    readonly; without a principal: everything, for internal callers), approvers named
    (`people` from `history.people_of` when listing many runs, else looked up here)."""
    totals = totals_of(session, run.id) if with_totals else None
    if principal is not None:
        totals = visibility.aggregate_view(totals, principal)
    state = run.approvals_state or {"state": run.status, "history": []}
    named = history.named_history(run, people if people is not None
                                  else history.people_of(session, [run]))
    return RunOut(
        id=run.id, plan_id=run.plan_id, upload_id=run.upload_id,
        funds_upload_id=run.funds_upload_id, scenario_name=run.scenario_name,
        status=run.status, parameters=run.parameters or {}, snapshot_hash=run.snapshot_hash,
        results_hash=run.results_hash, error=visibility.error_view(run.error, principal),
        progress=run.progress or {},
        attempts=run.attempts, created_by=run.created_by, started_at=run.started_at,
        finished_at=run.finished_at,
        approvals=Approvals(state=state.get("state", run.status),
                            history=named),
        totals=totals,
    )


@dataclass(frozen=True)
class RunFilter:
    status: str | None = None
    plan_id: uuid.UUID | None = None
    scenario_name: str | None = None
    created_by: uuid.UUID | None = None


def list_runs(session: Session, filters: RunFilter, limit: int,
              cursor: str | None) -> tuple[list[PlanRun], str | None]:
    """Newest first; `next_cursor` continues after the last item."""
    query = select(PlanRun)
    if filters.status:
        query = query.where(PlanRun.status == filters.status)
    if filters.plan_id:
        query = query.where(PlanRun.plan_id == filters.plan_id)
    if filters.scenario_name:
        query = query.where(PlanRun.scenario_name == filters.scenario_name)
    if filters.created_by:
        query = query.where(PlanRun.created_by == filters.created_by)
    if cursor:
        started, last_id = decode_cursor(cursor, datetime.fromisoformat, uuid.UUID)
        query = query.where(or_(
            PlanRun.started_at < started,
            and_(PlanRun.started_at == started, PlanRun.id < last_id)))
    runs = list(session.scalars(
        query.order_by(PlanRun.started_at.desc(), PlanRun.id.desc()).limit(limit + 1)))
    next_cursor = None
    if len(runs) > limit:
        runs = runs[:limit]
        next_cursor = encode_cursor(runs[-1].started_at.isoformat(), str(runs[-1].id))
    return runs, next_cursor


def computed_run(session: Session, run_id: uuid.UUID) -> PlanRun:
    """A run whose results exist (409 while queued/running, or when it failed)."""
    run = get_run(session, run_id)
    if run.status not in COMPUTED:
        detail = f": {run.error}" if run.error else ""
        raise Conflict(f"run {run_id} is {run.status}; it has no results{detail}")
    return run


def result_rows(session: Session, run_id: uuid.UUID, limit: int, cursor: str | None,
                with_diagnostics: bool = False, refs: set[str] | None = None,
                ) -> tuple[list[RunResult], str | None]:
    """Rows by employee_ref; `with_diagnostics` keeps only rows that carry any; `refs`
    (from `visible_refs`) keeps only those employees (None: all)."""
    computed_run(session, run_id)
    query = select(RunResult).where(RunResult.run_id == run_id)
    if refs is not None:
        query = query.where(RunResult.employee_ref.in_(sorted(refs)))
    if with_diagnostics:
        query = query.where(func.jsonb_array_length(RunResult.diagnostics) > 0)
    if cursor:
        (after,) = decode_cursor(cursor, str)
        query = query.where(RunResult.employee_ref > str(after))
    rows = list(session.scalars(query.order_by(RunResult.employee_ref).limit(limit + 1)))
    next_cursor = None
    if len(rows) > limit:
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].employee_ref)
    return rows, next_cursor


def _stored_row(session: Session, run_id: uuid.UUID, employee_ref: str) -> RunResult:
    row = session.get(RunResult, (run_id, employee_ref))
    if row is None:
        raise NotFound("employee", f"employee '{employee_ref}' is not in run {run_id}")
    return row


def snapshot_inputs(session: Session, run: PlanRun, settings: Settings
                    ) -> tuple[Snapshot, CompiledPlan, RunInputs]:
    """A computed run's snapshot, its compiled plan and the input data it ran over (409 when
    the stored data no longer hashes as the snapshot recorded). Reports, the audit workbook
    and tapes all start here."""
    snapshot = Snapshot.from_json(run.snapshot)
    plan = snapshot.compiled()
    try:
        inputs = execution.load_inputs(session, snapshot, plan, settings)
    except execution.RunFailed as error:
        raise Conflict(error.reason) from None
    return snapshot, plan, inputs


def tape(session: Session, settings: Settings, run_id: uuid.UUID,
         employee_ref: str, principal: Principal) -> TapeOut:
    """The employee's calculation tape from the reference engine (ENGINE.md §8), over the
    run's own snapshot, with a check that it agrees with the stored results (404 for an
    employee outside the caller's pay scope)."""
    run = computed_run(session, run_id)
    visibility.ensure_visible(principal, run, employee_ref,
                              _frame_loader(session, settings, run))
    stored = _stored_row(session, run_id, employee_ref)
    _, plan, inputs = snapshot_inputs(session, run, settings)
    explained = reference.explain(plan, inputs.frame, employee_ref).to_dict()
    results = {entry["step"]: entry["result"] for entry in explained["steps"]}
    return TapeOut(run_id=run_id, employee_ref=employee_ref, plan_name=explained["plan_name"],
                   plan_hash=explained["plan_hash"], payout_step=explained["payout_step"],
                   payout=explained["payout"], steps=explained["steps"],
                   stored_values=stored.values,
                   matches_stored=stored.values == results)


def _frame_loader(session: Session, settings: Settings, run: PlanRun
                  ) -> Callable[[], pl.DataFrame]:
    """Reads the run's input frame when the visibility cache misses."""
    return lambda: snapshot_inputs(session, run, settings)[2].frame


def visible_refs(session: Session, settings: Settings, principal: Principal,
                 run_id: uuid.UUID) -> set[str] | None:
    """The employees of a computed run whose pay the caller may see (None: all of them)."""
    run = computed_run(session, run_id)
    return visibility.visible_refs(principal, run, _frame_loader(session, settings, run))


# -- reproduce -----------------------------------------------------------------------------
def reproduce(session: Session, settings: Settings, principal: Principal,
              run_id: uuid.UUID) -> ReproduceOut:
    """Re-execute the stored snapshot now; identical when the results hash is the run's and
    every stored row equals the recomputed one (else the differing employees, by step)."""
    run = computed_run(session, run_id)
    _, plan, inputs = snapshot_inputs(session, run, settings)
    try:
        result = execution.evaluate(plan, inputs.frame)
    except execution.RunFailed as error:
        raise Conflict(f"re-execution failed: {error.reason}") from None
    digest = hashlib.sha256(results_csv(plan, result)).hexdigest()
    differing, differences = _differences(session, run_id, plan, result)
    identical = digest == run.results_hash and differing == 0
    record_event(session, principal_or_actor_id=principal, action="run.reproduce",
                 entity="plan_run", entity_id=run_id,
                 after={"identical": identical, "results_hash": digest,
                        "differing_employees": differing})
    return ReproduceOut(run_id=run_id, snapshot_hash=run.snapshot_hash,
                        stored_results_hash=run.results_hash, reproduced_results_hash=digest,
                        identical=identical, differences=differences,
                        differing_employees=differing)


def _differences(session: Session, run_id: uuid.UUID, plan, result) -> tuple[int, list]:
    from server.modules.runs.persist import result_rows_csv

    fresh = pl.read_csv(io.BytesIO(result_rows_csv(plan, result)), has_header=False,
                        new_columns=["employee_ref", "values", "diagnostics"],
                        schema_overrides={"column_1": pl.String})
    fresh_values = {ref: json.loads(values) for ref, values, _ in fresh.iter_rows()}
    stored = dict(session.execute(
        select(RunResult.employee_ref, RunResult.values).where(RunResult.run_id == run_id)).all())
    refs = sorted(set(fresh_values) | set(stored))
    listed: list[EmployeeDifference] = []
    count = 0
    for ref in refs:
        before, after = stored.get(ref) or {}, fresh_values.get(ref) or {}
        changed = {step: {"stored": before.get(step), "reproduced": after.get(step)}
                   for step in sorted(set(before) | set(after))
                   if before.get(step) != after.get(step)}
        if changed or (ref in stored) != (ref in fresh_values):
            count += 1
            if len(listed) < MAX_DIFFERENCES:
                listed.append(EmployeeDifference(employee_ref=ref, steps=changed))
    return count, listed


# -- compare -------------------------------------------------------------------------------
def _in_scope(ref: str, scopes: list[set[str] | None]) -> bool:
    """Visible in at least one of the runs (None: everyone)."""
    return any(scope is None or ref in scope for scope in scopes)


def _dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _text(value: Decimal | None) -> str | None:
    return None if value is None else r10.text(r10.r10(value))


def compare(session: Session, settings: Settings, principal: Principal, run_id: uuid.UUID,
            other_id: uuid.UUID, limit: int, cursor: str | None) -> CompareOut:
    """Per-employee and total payout deltas, other minus base (scenario comparison), over
    the employees the caller may see in either run (totals too)."""
    base, other = computed_run(session, run_id), computed_run(session, other_id)
    seen = [visibility.visible_refs(principal, run, _frame_loader(session, settings, run))
            for run in (base, other)]
    payout = Snapshot.from_json(base.snapshot).document.payout
    other_payout = Snapshot.from_json(other.snapshot).document.payout

    def payouts(rid: uuid.UUID, step: str) -> dict[str, Decimal | None]:
        rows = session.execute(select(RunResult.employee_ref, RunResult.values[step].astext)
                               .where(RunResult.run_id == rid)).all()
        return {ref: _dec(value) for ref, value in rows if _in_scope(ref, seen)}

    left, right = payouts(run_id, payout), payouts(other_id, other_payout)
    refs = sorted(set(left) | set(right))
    deltas: list[EmployeeDelta] = []
    changed = 0
    for ref in refs:
        a, b = left.get(ref), right.get(ref)
        status = "both" if ref in left and ref in right else (
            "only_base" if ref in left else "only_other")
        delta = (b - a) if a is not None and b is not None else None
        if status != "both" or delta != 0:
            changed += 1
        deltas.append(EmployeeDelta(employee_ref=ref, base=_text(a), other=_text(b),
                                    delta=_text(delta), status=status))
    start = 0
    if cursor:
        (after,) = decode_cursor(cursor, str)
        start = next((i for i, d in enumerate(deltas) if d.employee_ref > str(after)),
                     len(deltas))
    page = deltas[start:start + limit]
    next_cursor = encode_cursor(page[-1].employee_ref) if start + limit < len(deltas) else None
    base_total = sum((v for v in left.values() if v is not None), Decimal(0))
    other_total = sum((v for v in right.values() if v is not None), Decimal(0))
    return CompareOut(run_id=run_id, other_run_id=other_id, payout_step=payout,
                      base_total=_text(base_total), other_total=_text(other_total),
                      total_delta=_text(other_total - base_total), changed=changed,
                      employees=page, next_cursor=next_cursor)


# -- legacy parity -------------------------------------------------------------------------
def _legacy_amounts(payload: bytes, amount_column: str) -> dict[str, Decimal | None]:
    try:
        frame = pl.read_csv(io.BytesIO(payload), infer_schema=False)
    except (pl.exceptions.PolarsError, OSError) as error:
        raise UnprocessableEntity([{"loc": ["body", "file"],
                                    "msg": f"cannot read the legacy CSV: {error}"}]) from None
    problems = [{"loc": ["body", "file"], "msg": f"column '{name}' is missing"}
                for name in ("employee_ref", amount_column) if name not in frame.columns]
    if problems:
        raise UnprocessableEntity(problems)
    amounts: dict[str, Decimal | None] = {}
    for line, (ref, raw) in enumerate(frame.select("employee_ref", amount_column).iter_rows(),
                                      start=2):
        if ref is None or ref in amounts:
            raise UnprocessableEntity([{"loc": ["body", "file", line, "employee_ref"],
                                        "msg": f"line {line}: empty or duplicate employee_ref"}])
        try:
            amounts[ref] = None if raw is None or not raw.strip() else Decimal(raw.strip())
        except InvalidOperation:
            raise UnprocessableEntity([{"loc": ["body", "file", line, amount_column],
                                        "msg": f"line {line}: {raw!r} is not a number"}]) from None
    return amounts


def parity(session: Session, principal: Principal, run_id: uuid.UUID, payload: bytes,
           amount_column: str, step: str | None) -> ParityOut:
    """Shadow-mode check: per employee, run value minus legacy amount; passes when every
    employee is in both and every |difference| <= 0.01."""
    run = computed_run(session, run_id)
    step = step or Snapshot.from_json(run.snapshot).document.payout
    legacy = _legacy_amounts(payload, amount_column)
    ours = {ref: _dec(value) for ref, value in session.execute(
        select(RunResult.employee_ref, RunResult.values[step].astext)
        .where(RunResult.run_id == run_id)).all()}
    if not any(step in (row or {}) for row in session.scalars(
            select(RunResult.values).where(RunResult.run_id == run_id).limit(1))):
        raise UnprocessableEntity([{"loc": ["query", "step"], "msg": f"no step '{step}'"}])
    rows, failures, worst = [], 0, Decimal(0)
    for ref in sorted(set(ours) & set(legacy)):
        a, b = ours[ref], legacy[ref]
        diff = a - b if a is not None and b is not None else None
        ok = (diff is not None and abs(diff) <= PARITY_TOLERANCE) or (a is None and b is None)
        if diff is not None:
            worst = max(worst, abs(diff))
        if not ok:
            failures += 1
        rows.append(ParityRow(employee_ref=ref, paysheet=_text(a), legacy=_text(b),
                              difference=_text(diff), within_tolerance=ok))
    only_run, only_legacy = sorted(set(ours) - set(legacy)), sorted(set(legacy) - set(ours))
    passed = failures == 0 and not only_run and not only_legacy
    record_event(session, principal_or_actor_id=principal, action="run.parity",
                 entity="plan_run", entity_id=run_id,
                 after={"passed": passed, "compared": len(rows), "failures": failures,
                        "amount_column": amount_column, "step": step})
    return ParityOut(run_id=run_id, amount_column=amount_column, step=step,
                     tolerance=str(PARITY_TOLERANCE), compared=len(rows), passed=passed,
                     failures=failures, max_abs_difference=_text(worst),
                     only_in_run=only_run[:MAX_DIFFERENCES],
                     only_in_legacy=only_legacy[:MAX_DIFFERENCES],
                     failing_rows=[r for r in rows if not r.within_tolerance][:MAX_DIFFERENCES])


# -- for other areas (deferrals, adjustments, inquiries) ---------------------------------
def start_linked_run(principal: Principal, settings: Settings, plan_id: uuid.UUID,
                     upload_id: uuid.UUID, funds_upload_id: uuid.UUID | None,
                     scenario_name: str) -> PlanRun:
    """Start a run on behalf of another area (e.g. an adjustment run); no idempotency key."""
    return start_run(principal, RunStart(plan_id=plan_id, upload_id=upload_id,
                                         funds_upload_id=funds_upload_id,
                                         scenario_name=scenario_name), None, settings).run


def run_document(run: PlanRun) -> PlanDocument:
    """The effective plan document a computed run was evaluated with (its snapshot's)."""
    return Snapshot.from_json(run.snapshot).document


def step_values(session: Session, run_id: uuid.UUID, steps: list[str]
                ) -> dict[str, dict[str, str | None]]:
    """employee_ref -> {step: R10 text or None} for the given steps of every employee."""
    columns = [RunResult.values[step].astext for step in steps]
    rows = session.execute(select(RunResult.employee_ref, *columns)
                           .where(RunResult.run_id == run_id)
                           .order_by(RunResult.employee_ref)).all()
    return {row[0]: dict(zip(steps, row[1:], strict=True)) for row in rows}


def employee_field(session: Session, settings: Settings, run: PlanRun, field: str,
                   employee_ref: str) -> Any:
    """One input value (e.g. `team`) of one employee of a computed run, or None."""
    _, _, inputs = snapshot_inputs(session, run, settings)
    frame = inputs.frame
    if field not in frame.columns:
        return None
    match = frame.filter(pl.col("employee_ref") == employee_ref)
    return match[field][0] if match.height else None
