"""Reports service: who may see which statements, and the composite report jobs.

The composite jobs take plain run data (compiled plan, typed input frame, result rows, run
facts); `load_run` and `history_of` fetch that data through the runs and tenants services.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

import polars as pl
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from engine.plan import CompiledPlan
from server.db.session import tenant_session
from server.errors import Conflict, Forbidden, NotFound, UnprocessableEntity
from server.modules.audit import service as audit
from server.modules.auth.access import TEAM_INPUT, aggregate_scope, pay_scope
from server.modules.reports.bulk import Format, render_statement, render_statements
from server.modules.reports.bundle import build_bundle
from server.modules.reports.export import ResultRow, export_files, manifest_run
from server.modules.reports.history import GROUP_INPUTS, History, PeriodPayouts, payout_history
from server.modules.reports.models import ReportJob
from server.modules.reports.pool import PoolLine, from_totals, pool_vs_target
from server.modules.reports.signing import master_secret as master_secret  # used by sso
from server.modules.reports.statement import FINAL_STATE, Branding, RunInfo
from server.modules.reports.tapes import explain_all
from server.modules.runs import service as runs
from server.modules.runs.snapshot import Snapshot
from server.modules.runs.stored import load_stored_run
from server.modules.tenants import service as tenants
from server.principal import Principal, Role
from server.settings import Settings
from server.worker import queue

log = structlog.get_logger("paysheet.reports")
SENDERS = frozenset({Role.ADMIN, Role.HR, Role.FINANCE})
RESULT_PAGE = 5000
# Exports are audited on the run too; leaving them out keeps a re-export byte-identical.
FINALIZE_ACTION = "run.finalize"
EXPORT_ACTIONS = frozenset({"run.export", "run.export.done", "run.statements",
                            "reports.statement", "run.delivery",
                            "run.delivery.download"})
MEDIA_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def visible_refs(principal: Principal, frame: pl.DataFrame) -> set[str] | None:
    """Employees of `frame` whose pay `principal` may see (None: all); the rule itself is
    `auth.access.pay_scope` (managers: their teams; readonly: 403)."""
    scope = pay_scope(principal)
    if scope.everyone:
        return None
    teams = (frame[TEAM_INPUT].cast(pl.String).to_list() if TEAM_INPUT in frame.columns
             else [None] * frame.height)
    return scope.visible(zip(frame["employee_ref"].cast(pl.String).to_list(), teams,
                             strict=True))


def large_groups(principal: Principal, lines: list[PoolLine]) -> list[PoolLine]:
    """Pool lines the caller may see: below the scope's minimum headcount a group's total
    is (nearly) one employee's pay; the Total line stays."""
    least = aggregate_scope(principal).min_group
    return [line for line in lines if line.headcount >= least or line.group == "Total"]


def large_history(principal: Principal, result: History) -> History:
    """History cells of groups the caller may see (as `large_groups`)."""
    least = aggregate_scope(principal).min_group
    if least <= 1:
        return result
    return dataclasses.replace(result, cells=tuple(c for c in result.cells
                                                   if c.headcount >= least))


def ensure_visible(principal: Principal, frame: pl.DataFrame, employee_ref: str) -> None:
    """404 (never 403: no existence leak) unless `principal` may see this employee."""
    refs = visible_refs(principal, frame)
    present = employee_ref in set(frame["employee_ref"].cast(pl.String).to_list())
    if not present or (refs is not None and employee_ref not in refs):
        raise NotFound("employee", f"employee '{employee_ref}' not found in this run")


def employee_inputs(frame: pl.DataFrame, refs: Sequence[str] | None = None
                    ) -> dict[str, dict[str, Any]]:
    """employee_ref -> typed input values (Decimal, date, ...) for statements."""
    rows = frame if refs is None else frame.filter(pl.col("employee_ref").is_in(list(refs)))
    return {str(row["employee_ref"]): row for row in rows.iter_rows(named=True)}


def individual_statement(plan: CompiledPlan, frame: pl.DataFrame, employee_ref: str,
                         run: RunInfo, branding: Branding, fmt: Format) -> bytes:
    """One employee's statement (callers check visibility first)."""
    tape = explain_all(plan, frame, [employee_ref])[employee_ref]
    return render_statement(plan, tape, employee_inputs(frame, [employee_ref])[employee_ref],
                            run, branding, fmt)


def run_audit_events(session: Session, run_id: uuid.UUID) -> list[dict[str, Any]]:
    """The run's audit events, oldest first, up to and including its finalisation and
    without export events: what the bundle proves, and the same on every re-export."""
    events = []
    cursor = None
    while True:
        page, cursor = audit.list_events(session, audit.AuditFilter(entity_id=run_id), 500,
                                         cursor)
        events.extend(page)
        if cursor is None:
            break
    events.sort(key=lambda e: e.id)
    finalized = [i for i, e in enumerate(events) if e.action == FINALIZE_ACTION]
    if finalized:
        events = events[: finalized[-1] + 1]
    return [
        {"id": e.id, "action": e.action, "entity": e.entity, "entity_id": str(e.entity_id),
         "actor_user_id": None if e.actor_user_id is None else str(e.actor_user_id),
         "before": e.before, "after": e.after,
         "at": e.at.astimezone(UTC).isoformat(), "request_id": e.request_id,
         "prev_signature": e.prev_signature, "signature": e.signature}
        for e in events if e.action not in EXPORT_ACTIONS
    ]


def export_bundle(
    plan: CompiledPlan,
    run: RunInfo,
    tenant_id: str,
    rows: Sequence[ResultRow],
    frame: pl.DataFrame,
    audit_events: Sequence[Mapping[str, Any]],
    branding: Branding,
    private_key: Ed25519PrivateKey,
    processes: int = 2,
    audit_workbook: bytes | None = None,
) -> bytes:
    """The signed bundle of a finalized run: results, every statement, audit events."""
    if not run.finalized:
        raise ValueError(f"run {run.run_id} is {run.status}: only finalized runs are exported")
    refs = [str(row["employee_ref"]) for row in rows]
    tapes = explain_all(plan, frame, refs)
    statements = render_statements(plan, tapes, run, branding, "pdf",
                                   inputs=employee_inputs(frame, refs), processes=processes)
    files = export_files(plan, rows, statements, audit_events, audit_workbook)
    return build_bundle(files, manifest_run(run, plan, tenant_id, files), private_key)


# --- run-backed reports (data through the runs, tenants and audit services) ----------------


@dataclass(frozen=True)
class RunData:
    """Everything a report needs from one computed run of the caller's tenant."""

    info: RunInfo
    plan: CompiledPlan
    frame: pl.DataFrame
    rows: list[dict[str, Any]]
    period: str


def user_names(session: Session) -> dict[str, str]:
    """user id -> the name a statement prints for an approver (display name, else e-mail)."""
    return {str(user.id): user.display_name or user.email
            for user in tenants.list_users(session)}


def run_info_of(run: Any, names: Mapping[str, str] | None = None) -> RunInfo:
    return RunInfo.from_dict({
        "id": run.id, "status": run.status, "snapshot_hash": run.snapshot_hash,
        "results_hash": run.results_hash, "scenario_name": run.scenario_name,
        "approvals_state": run.approvals_state or {},
    }, names)


def all_result_rows(session: Session, run_id: uuid.UUID) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = runs.result_rows(session, run_id, RESULT_PAGE, cursor)
        rows.extend({"employee_ref": r.employee_ref, "values": r.values,
                     "diagnostics": r.diagnostics or []} for r in page)
        if cursor is None:
            return rows


def deliver_after_finalize(principal: Principal, settings: Settings, run_id: uuid.UUID
                           ) -> None:
    """After a run's finalisation is committed: queue the delivery of its statements to
    managers when e-mail is configured (SMTP_HOST, DELIVER_ON_FINALIZE). Never fails the
    finalisation: a problem is logged (the delivery can be started again on demand)."""
    if not settings.smtp_host or not settings.deliver_on_finalize:
        return
    try:
        create_delivery_job(principal, settings, run_id)
    except Exception as error:  # the finalisation stands; the delivery can be started again
        log.warning("delivery_not_queued", run_id=str(run_id), error=str(error))


def create_delivery_job(principal: Principal, settings: Settings, run_id: uuid.UUID
                        ) -> ReportJob:
    """Record and queue a delivery of a finalized run's statements (admin, hr, finance)."""
    if principal.role not in SENDERS:
        raise Forbidden(f"role '{principal.role}' cannot deliver statements")
    with tenant_session(principal.tenant_id) as session:
        info = run_header(session, run_id)
        if not info.finalized:
            raise Conflict(f"run {run_id} is {info.status}: statements are delivered once "
                           "it is finalized")
        job = ReportJob(run_id=run_id, kind="delivery", status="queued", params={},
                        progress={"done": 0, "total": None}, created_by=principal.user_id)
        session.add(job)
        session.flush()
        session.refresh(job)
    queue.get_queue(settings).enqueue(queue.DELIVER_STATEMENTS, principal.tenant_id, job.id)
    return job


def run_header(session: Session, run_id: uuid.UUID) -> RunInfo:
    """The run's facts without its data (404 for other tenants, 409 without results)."""
    return run_info_of(runs.computed_run(session, run_id), user_names(session))


def load_run(session: Session, settings: Settings, run_id: uuid.UUID, with_rows: bool = True
             ) -> RunData:
    """The run (404 for other tenants, 409 while it has no results), its compiled plan,
    typed inputs and (unless `with_rows` is false) its result rows."""
    run = runs.computed_run(session, run_id)
    _, plan, inputs = runs.snapshot_inputs(session, run, settings)
    rows = all_result_rows(session, run_id) if with_rows else []
    return RunData(run_info_of(run, user_names(session)), plan, inputs.frame, rows,
                   plan.document.effective_from.isoformat())


@dataclass(frozen=True)
class PoolReport:
    info: RunInfo
    plan: CompiledPlan
    lines: list[PoolLine]


def pool_report(session: Session, settings: Settings, run_id: uuid.UUID, target_step: str
                ) -> PoolReport:
    """Pool vs target of a computed run. Results are immutable, so the figures stored with
    the run's totals answer it without reading inputs or result rows; a target step they do
    not carry is recomputed from the stored results (checked against the results hash).
    ValueError: the plan cannot be shown this way (names the step)."""
    run = runs.computed_run(session, run_id)
    plan = Snapshot.from_json(run.snapshot).compiled()
    lines = from_totals(plan, runs.totals_of(session, run_id), target_step)
    if lines is None:
        stored = load_stored_run(session, settings, run_id)
        lines = pool_vs_target(plan, stored.frame, stored.result, target_step)
    return PoolReport(run_info_of(run), plan, lines)


def branding(session: Session, tenant_id: uuid.UUID) -> Branding:
    tenant = tenants.get_tenant(session, tenant_id)
    return Branding.from_tenant(tenant.name, tenant.metadata_)


def finalized_run_ids(session: Session) -> list[uuid.UUID]:
    ids: list[uuid.UUID] = []
    cursor = None
    while True:
        page, cursor = runs.list_runs(session, runs.RunFilter(status=FINAL_STATE), 500, cursor)
        ids.extend(run.id for run in page)
        if cursor is None:
            return ids


def history_of(session: Session, settings: Settings, group_by: str, since: str | None,
               until: str | None) -> History:
    """Payout history over the tenant's finalized runs whose plan period starts in
    [since, until] (ISO dates, inclusive; either may be open)."""
    key = GROUP_INPUTS.get(group_by)
    if key is None:
        raise UnprocessableEntity([{"loc": ["query", "group_by"],
                                    "msg": "must be fund, team or role"}])
    periods = []
    for run_id in finalized_run_ids(session):
        data = load_run(session, settings, run_id)
        if (since and data.period < since) or (until and data.period > until):
            continue
        groups = dict(zip(data.frame["employee_ref"].cast(pl.String).to_list(),
                          data.frame[key].cast(pl.String).to_list()
                          if key in data.frame.columns else [None] * data.frame.height,
                          strict=True))
        periods.append(PeriodPayouts(data.period, data.info.run_id, [
            (groups.get(str(row["employee_ref"])),
             None if row["values"].get(data.plan.payout) is None
             else Decimal(str(row["values"][data.plan.payout])))
            for row in data.rows
        ]))
    return payout_history(periods, group_by)
