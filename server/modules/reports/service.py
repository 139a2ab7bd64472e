"""Reports service: who may see which statements, and the composite report jobs.

The composite jobs take plain run data (compiled plan, typed input frame, result rows, run
facts); `load_run` and `history_of` fetch that data through the runs and tenants services.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC
from decimal import Decimal
from typing import Any

import polars as pl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from engine.plan import CompiledPlan
from server.errors import Forbidden, NotFound, UnprocessableEntity
from server.modules.audit import service as audit
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import Role, allowed
from server.modules.reports.bulk import Format, render_statement, render_statements
from server.modules.reports.bundle import build_bundle
from server.modules.reports.export import ResultRow, export_files, manifest_run
from server.modules.reports.history import GROUP_INPUTS, History, PeriodPayouts, payout_history
from server.modules.reports.pool import PoolLine, from_totals, pool_vs_target
from server.modules.reports.signing import master_secret as master_secret  # used by sso
from server.modules.reports.statement import FINAL_STATE, Branding, RunInfo
from server.modules.reports.tapes import explain_all
from server.modules.runs import service as runs
from server.modules.runs.snapshot import Snapshot
from server.modules.runs.stored import load_stored_run
from server.modules.tenants import service as tenants
from server.settings import Settings

TEAM_INPUT = "team"
RESULT_PAGE = 5000
# Exports are audited on the run too; leaving them out keeps a re-export byte-identical.
FINALIZE_ACTION = "run.finalize"
EXPORT_ACTIONS = frozenset({"run.export", "run.statements", "reports.statement"})
MEDIA_TYPES = {"pdf": "application/pdf", "html": "text/html; charset=utf-8",
               "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def visible_refs(principal: Principal, frame: pl.DataFrame) -> set[str] | None:
    """Employees whose statements `principal` may see: None means all of them.

    Managers see only employees whose `team` input is one of their user's teams (none when
    the plan has no `team` input); roles without `reports.read` see nobody."""
    if not allowed(principal.role, "reports.read"):
        raise Forbidden(f"role '{principal.role}' lacks permission 'reports.read'")
    if principal.role is not Role.MANAGER:
        return None
    if TEAM_INPUT not in frame.columns:
        return set()
    teams = list(principal.teams)
    mine = frame.filter(pl.col(TEAM_INPUT).is_in(teams))
    return {str(ref) for ref in mine["employee_ref"].to_list()}


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


def run_info_of(run: Any) -> RunInfo:
    return RunInfo.from_dict({
        "id": run.id, "status": run.status, "snapshot_hash": run.snapshot_hash,
        "results_hash": run.results_hash, "scenario_name": run.scenario_name,
        "approvals_state": run.approvals_state or {},
    })


def all_result_rows(session: Session, run_id: uuid.UUID) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        page, cursor = runs.result_rows(session, run_id, RESULT_PAGE, cursor)
        rows.extend({"employee_ref": r.employee_ref, "values": r.values,
                     "diagnostics": r.diagnostics or []} for r in page)
        if cursor is None:
            return rows


def load_run(session: Session, settings: Settings, run_id: uuid.UUID, with_rows: bool = True
             ) -> RunData:
    """The run (404 for other tenants, 409 while it has no results), its compiled plan,
    typed inputs and (unless `with_rows` is false) its result rows."""
    run = runs.computed_run(session, run_id)
    _, plan, inputs = runs.snapshot_inputs(session, run, settings)
    rows = all_result_rows(session, run_id) if with_rows else []
    return RunData(run_info_of(run), plan, inputs.frame, rows,
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
