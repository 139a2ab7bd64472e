"""Reports service: who may see which statements, and the composite report jobs.

Everything here takes plain run data (compiled plan, typed input frame, result rows, run
facts) so the routers only fetch those through the runs/plans services and call in.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC
from typing import Any

import polars as pl
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy.orm import Session

from engine.plan import CompiledPlan
from server.errors import Forbidden, NotFound
from server.modules.audit import service as audit
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import Role, allowed
from server.modules.reports.bulk import Format, render_statement, render_statements
from server.modules.reports.bundle import build_bundle
from server.modules.reports.export import ResultRow, export_files, manifest_run
from server.modules.reports.statement import Branding, RunInfo
from server.modules.reports.tapes import explain_all

TEAM_INPUT = "team"
# Exports are audited on the run too; leaving them out keeps a re-export byte-identical.
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
    """The run's audit events, oldest first, without export events (see EXPORT_ACTIONS)."""
    events = []
    cursor = None
    while True:
        page, cursor = audit.list_events(session, audit.AuditFilter(entity_id=run_id), 500,
                                         cursor)
        events.extend(page)
        if cursor is None:
            break
    return [
        {"id": e.id, "action": e.action, "entity": e.entity, "entity_id": str(e.entity_id),
         "actor_user_id": None if e.actor_user_id is None else str(e.actor_user_id),
         "before": e.before, "after": e.after,
         "at": e.at.astimezone(UTC).isoformat(), "request_id": e.request_id,
         "prev_signature": e.prev_signature, "signature": e.signature}
        for e in sorted(events, key=lambda e: e.id) if e.action not in EXPORT_ACTIONS
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
