"""Executing a run on a worker: claim → load → compute → persist (one transaction) → done.

Guarantees:
- **All or nothing.** Result rows, totals, the results hash and the `draft` status are
  written in ONE transaction, so readers see every row of a run or none; a worker that dies
  before the commit leaves no row behind (PostgreSQL rolls the transaction back).
- **One executor per run.** The executing worker holds a session-level advisory lock on its
  own connection for the whole run. The lock dies with the worker's connection, which is how
  `recover_interrupted_runs` tells a dead worker from a slow one: a `running` run whose lock
  can be taken has lost its worker, and is queued again (up to `run_max_attempts`) or failed
  with the reason.
- **Failures are explained.** Bad data fails the run listing the problems; an overflow names
  the step and the first employee; anything unexpected is failed with its type and message.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import polars as pl
import psycopg
import structlog
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from engine.backends import polars as polars_backend
from engine.backends.base import EvalResult, ValueOverflow
from engine.data import DataError
from engine.hashing import results_csv
from engine.plan import CompiledPlan
from server.db import session as db
from server.errors import ProblemError
from server.modules.audit.service import record_event
from server.modules.runs import metrics
from server.modules.runs.inputs import RunInputs, align_inputs, combined_data_hash, ready_upload
from server.modules.runs.models import PlanRun, RunTotals
from server.modules.runs.persist import store_results
from server.modules.runs.snapshot import Snapshot
from server.modules.runs.totals import compute_totals
from server.settings import Settings, get_settings

log = structlog.get_logger("paysheet.runs")
TERMINAL = ("draft", "manager_approved", "hr_approved", "finance_approved", "finalized",
            "failed")


class RunFailed(Exception):
    """The run cannot produce results; `reason` is shown to the user as the run's error."""

    def __init__(self, reason: str, step: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.step = step


@dataclass
class Timings:
    phases: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.phases[name] = round(time.perf_counter() - started, 4)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _lock_key(run_id: uuid.UUID) -> str:
    return f"run:{run_id}"


def _raw_url(settings: Settings) -> str:
    if not settings.database_url:
        raise RuntimeError("DATABASE_URL is not set")
    return settings.database_url


@contextmanager
def execution_lock(run_id: uuid.UUID, settings: Settings) -> Iterator[bool]:
    """Hold the run's advisory lock on a dedicated connection; yields False if taken."""
    with psycopg.connect(_raw_url(settings), autocommit=True,
                         application_name=f"paysheet-run-{run_id}") as conn:
        held = conn.execute("select pg_try_advisory_lock(hashtextextended(%s, 0))",
                            (_lock_key(run_id),)).fetchone()[0]
        try:
            yield bool(held)
        finally:
            if held:
                conn.execute("select pg_advisory_unlock(hashtextextended(%s, 0))",
                             (_lock_key(run_id),))


def set_progress(tenant_id: uuid.UUID, run_id: uuid.UUID, **progress: Any) -> None:
    """Record the run's phase and counters in its own short transaction (read by the
    WebSocket and GET /runs/{id})."""
    with db.tenant_session(tenant_id) as session:
        run = session.get(PlanRun, run_id)
        if run is not None and run.status == "running":
            run.progress = {**run.progress, **progress}


def _claim(tenant_id: uuid.UUID, run_id: uuid.UUID) -> Snapshot | None:
    """queued → running (attempt + 1), or None when the run is not queued any more."""
    with db.tenant_session(tenant_id) as session:
        run = session.scalar(select(PlanRun).where(PlanRun.id == run_id).with_for_update())
        if run is None or run.status != "queued":
            return None
        run.status = "running"
        run.attempts += 1
        run.worker = worker_name()
        run.execution_started_at = datetime.now(UTC)
        run.progress = {"phase": "load", "rows_done": 0, "attempt": run.attempts,
                        "worker": run.worker}
        record_event(session, principal_or_actor_id=None, action="run.started",
                     entity="plan_run", entity_id=run.id,
                     after={"attempt": run.attempts, "worker": run.worker})
        return Snapshot.from_json(run.snapshot)


def load_inputs(session: Session, snapshot: Snapshot, plan: CompiledPlan,
                settings: Settings) -> RunInputs:
    """The snapshot's data, aligned to the plan; the data must still hash the same."""
    employees = ready_upload(session, settings, snapshot.upload_id, "employees")
    funds = (ready_upload(session, settings, snapshot.funds_upload_id, "funds")
             if snapshot.funds_upload_id else None)
    if combined_data_hash(employees, funds) != snapshot.data_sha256:
        raise RunFailed("input data changed since the run was started (hash differs)")
    frame = align_inputs(plan, employees.read_frame(),
                         funds.read_frame() if funds else None)
    return RunInputs(frame, snapshot.data_sha256, snapshot.mapping)


def evaluate(plan: CompiledPlan, frame: pl.DataFrame) -> EvalResult:
    """The Polars backend, with overflow turned into a run failure naming step and row."""
    try:
        return polars_backend.evaluate(plan, frame)
    except ValueOverflow as error:
        raise RunFailed(str(error), step=error.step) from None


def _load(tenant_id: uuid.UUID, snapshot: Snapshot,
          settings: Settings) -> tuple[CompiledPlan, RunInputs]:
    plan = snapshot.compiled()
    try:
        with db.tenant_session(tenant_id) as session:
            return plan, load_inputs(session, snapshot, plan, settings)
    except DataError as error:
        raise RunFailed(str(error)) from None
    except ProblemError as error:
        raise RunFailed(error.detail or error.title) from None


def _persist(tenant_id: uuid.UUID, run_id: uuid.UUID, plan: CompiledPlan, inputs: RunInputs,
             result: EvalResult, timings: Timings) -> None:
    """Rows, totals, hash and status in one transaction: visible together or not at all."""
    with timings.phase("hash"):
        digest = _sha256(results_csv(plan, result))
    with timings.phase("totals"):
        totals = compute_totals(plan, inputs.frame, result,
                                polars_backend.parameter_values(plan, {}))
    with db.tenant_session(tenant_id) as session:
        run = session.scalar(select(PlanRun).where(PlanRun.id == run_id).with_for_update())
        if run is None or run.status != "running":
            raise RunFailed("run was changed by someone else while executing")
        with timings.phase("persist"):
            stored = store_results(session, run_id, plan, result)
            session.add(RunTotals(run_id=run_id, totals={**totals, "timings": timings.phases}))
            session.flush()
        run.status = "draft"
        run.results_hash = digest
        run.finished_at = datetime.now(UTC)
        run.error = None
        run.progress = {**run.progress, "phase": "done", "rows_done": stored,
                        "rows_total": stored, "timings": timings.phases}
        record_event(session, principal_or_actor_id=None, action="run.completed",
                     entity="plan_run", entity_id=run_id,
                     after={"status": "draft", "results_hash": digest, "headcount": stored,
                            "total_payout": totals["total_payout"],
                            "null_payouts": totals["null_payouts"]})


def _sha256(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


def fail_run(tenant_id: uuid.UUID, run_id: uuid.UUID, reason: str,
             step: str | None = None) -> None:
    """running/queued → failed with `reason` (audited); other states are left alone."""
    with db.tenant_session(tenant_id) as session:
        run = session.scalar(select(PlanRun).where(PlanRun.id == run_id).with_for_update())
        if run is None or run.status not in ("queued", "running"):
            return
        run.status = "failed"
        run.error = reason
        run.finished_at = datetime.now(UTC)
        run.progress = {**run.progress, "phase": "failed"}
        record_event(session, principal_or_actor_id=None, action="run.failed",
                     entity="plan_run", entity_id=run_id,
                     after={"error": reason, "step": step, "attempt": run.attempts})
    metrics.RUNS_FINISHED.labels("failed").inc()
    if step:
        metrics.STEP_FAILURES.labels(step).inc()


def execute_run(tenant_id: uuid.UUID, run_id: uuid.UUID,
                settings: Settings | None = None) -> str | None:
    """Execute one queued run; returns its final status, or None if not ours to run."""
    settings = settings or get_settings()
    tenant_id, run_id = uuid.UUID(str(tenant_id)), uuid.UUID(str(run_id))
    with execution_lock(run_id, settings) as held:
        if not held:
            return None
        snapshot = _claim(tenant_id, run_id)
        if snapshot is None:
            return None
        return _execute_claimed(tenant_id, run_id, snapshot, settings)


def _execute_claimed(tenant_id: uuid.UUID, run_id: uuid.UUID, snapshot: Snapshot,
                     settings: Settings) -> str:
    timings = Timings()
    started = time.perf_counter()
    bound = structlog.contextvars.bound_contextvars(run_id=str(run_id),
                                                    tenant_id=str(tenant_id))
    with bound:
        try:
            with timings.phase("load"):
                plan, inputs = _load(tenant_id, snapshot, settings)
            rows = inputs.frame.height
            set_progress(tenant_id, run_id, phase="compute", rows_total=rows, rows_done=0)
            with timings.phase("compute"):
                result = evaluate(plan, inputs.frame)
            set_progress(tenant_id, run_id, phase="persist", rows_total=rows, rows_done=0)
            _persist(tenant_id, run_id, plan, inputs, result, timings)
        except RunFailed as failure:
            log.warning("run_failed", reason=failure.reason, step=failure.step)
            fail_run(tenant_id, run_id, failure.reason, failure.step)
            return "failed"
        except Exception as error:
            log.exception("run_crashed")
            fail_run(tenant_id, run_id, f"internal error: {type(error).__name__}: {error}")
            return "failed"
        elapsed = time.perf_counter() - started
        metrics.observe_completed(rows, elapsed)
        log.info("run_completed", rows=rows, seconds=round(elapsed, 3), **timings.phases)
        return "draft"


def recover_interrupted_runs(enqueue: Callable[[uuid.UUID, uuid.UUID], None],
                             settings: Settings | None = None) -> list[uuid.UUID]:
    """Runs left `running` by a dead worker: queued again (and enqueued) while attempts
    remain, else failed with the reason. Returns the ids that were handled."""
    settings = settings or get_settings()
    with db.system_session() as session:
        rows = session.execute(text(
            "select tenant_id, run_id, status, attempts from comp.runs_in_flight() "
            "where status = 'running'")).all()
    handled = []
    for row in rows:
        with execution_lock(row.run_id, settings) as free:
            if not free:
                continue  # a live worker holds it
            outcome = _requeue_or_fail(row.tenant_id, row.run_id, settings.run_max_attempts)
        if outcome == "queued":
            enqueue(row.tenant_id, row.run_id)
        if outcome is not None:
            handled.append(row.run_id)
    return handled


def _requeue_or_fail(tenant_id: uuid.UUID, run_id: uuid.UUID, max_attempts: int) -> str | None:
    with db.tenant_session(tenant_id) as session:
        run = session.scalar(select(PlanRun).where(PlanRun.id == run_id).with_for_update())
        if run is None or run.status != "running":
            return None
        reason = (f"worker {run.worker} stopped during attempt {run.attempts} of "
                  f"{max_attempts}")
        if run.attempts < max_attempts:
            run.status = "queued"
            run.error = reason + "; queued again"
            run.progress = {"phase": "queued", "rows_done": 0, "retry_of": run.attempts}
            record_event(session, principal_or_actor_id=None, action="run.requeued",
                         entity="plan_run", entity_id=run_id, after={"reason": reason})
            return "queued"
    fail_run(tenant_id, run_id, reason + "; no attempts left")
    return "failed"
