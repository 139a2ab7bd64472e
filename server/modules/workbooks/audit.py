"""The frozen audit workbook of a run (`GET /runs/{runId}/workbook`).

The inputs and results are the ones the engine saw and stored (rebuilt by
`runs.stored.load_stored_run`, which checks them against the run's results hash); the
workbook itself is written by `engine.backends.excel_audit.build_audit_workbook`. The cover
sheet carries the run's identity, hashes, status, totals and every approval decision, so
an auditor can tie the file to the run without the server.
"""

from __future__ import annotations

import hashlib
import io
import uuid
import zipfile
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from engine.backends.excel_audit import build_audit_workbook
from server.modules.audit.service import record_event
from server.modules.runs.service import totals_of
from server.modules.runs.stored import StoredRun, load_stored_run
from server.modules.tenants import service as tenants
from server.principal import Principal
from server.settings import Settings


def _people(session: Session, history: list[dict[str, Any]]) -> dict[str, str]:
    """user id → "Display Name <email>" for the approvals' actors (the tenant's users)."""
    ids = {uuid.UUID(entry["actor_user_id"]) for entry in history if entry.get("actor_user_id")}
    return {user_id: f"{p.display_name} <{p.email}>" if p.display_name else p.email
            for user_id, p in tenants.people(session, ids).items()}


def approval_lines(session: Session, history: list[dict[str, Any]]) -> dict[str, str]:
    """One cover line per approvals decision, oldest first: who, role, decision, when."""
    people = _people(session, history)
    lines: dict[str, str] = {}
    for number, entry in enumerate(history, start=1):
        actor = people.get(entry.get("actor_user_id") or "", entry.get("actor_user_id") or "?")
        text = (f"{entry['action']} ({entry.get('from_state')} → {entry.get('to_state')}) by "
                f"{actor}, role {entry.get('actor_role')}, at {entry.get('at')}")
        if entry.get("comment"):
            text += f"; comment: {entry['comment']}"
        lines[f"approval {number}"] = text
    return lines


def cover_lines(session: Session, stored: StoredRun) -> dict[str, Any]:
    """The cover sheet's lines after plan name, version and hash (written by the builder)."""
    run = stored.run
    totals = totals_of(session, run.id) or {}
    history = (run.approvals_state or {}).get("history", [])
    lines: dict[str, Any] = {
        "run id": str(run.id),
        "plan id": str(run.plan_id),
        "scenario": run.scenario_name or "",
        "status": run.status,
        "snapshot hash": run.snapshot_hash,
        "input data hash": stored.snapshot.data_sha256,
        "employees upload": str(stored.snapshot.upload_id),
        "funds upload": str(stored.snapshot.funds_upload_id or ""),
        "parameter overrides": stored.snapshot.overrides,
        "results hash": run.results_hash,
        "finished at": run.finished_at.isoformat() if run.finished_at else "",
        "headcount": totals.get("headcount", stored.frame.height),
        "payout step": stored.plan.payout,
        "total payout": totals.get("total_payout") or "",
        "currency": totals.get("currency") or stored.plan.document.currency or "",
        "null payouts": totals.get("null_payouts", 0),
        "approvals": f"{len(history)} decision(s); state {run.status}",
    }
    return lines | approval_lines(session, history)


def stamped_xlsx(payload: bytes, stamp: datetime) -> bytes:
    """The workbook's bytes with every zip entry dated `stamp` (its document properties
    already are), so the same run in the same state always gives the same file and the
    audited SHA-256 identifies its content."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(payload)) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for entry in source.infolist():
            target.writestr(zipfile.ZipInfo(entry.filename, stamp.timetuple()[:6]),
                            source.read(entry.filename), zipfile.ZIP_DEFLATED)
    return out.getvalue()


def frozen_workbook(session: Session, settings: Settings, run_id: uuid.UUID
                    ) -> tuple[StoredRun, bytes]:
    """The run and its audit workbook's bytes (the same bytes for the same run and state)."""
    stored = load_stored_run(session, settings, run_id)
    when = (stored.run.finished_at or stored.run.started_at).astimezone(UTC)
    stamp = when.replace(tzinfo=None, microsecond=0)
    payload = stamped_xlsx(build_audit_workbook(stored.plan, stored.frame, stored.result,
                                                cover_lines(session, stored), created=stamp),
                           stamp)
    return stored, payload


def audit_workbook(session: Session, settings: Settings, principal: Principal,
                   run_id: uuid.UUID) -> tuple[str, bytes]:
    """(file name, .xlsx bytes) of the run's audit workbook; the download is audited."""
    stored, payload = frozen_workbook(session, settings, run_id)
    record_event(session, principal_or_actor_id=principal, action="run.workbook",
                 entity="plan_run", entity_id=run_id,
                 after={"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload),
                        "results_hash": stored.run.results_hash,
                        "status": stored.run.status})
    return f"run-{run_id}-audit.xlsx", payload
