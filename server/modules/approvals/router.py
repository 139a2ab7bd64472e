"""Routes: POST /runs/{runId}/approve and POST /runs/{runId}/finalize (PRD §15.6, §15.7)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, BackgroundTasks, Depends, Request

from server.modules.approvals import service
from server.modules.approvals.schemas import ApproveIn, FinalizeIn
from server.modules.auth.dependencies import DbSession, Principal, require
from server.modules.reports import service as reports
from server.modules.runs.schemas import RunOut

router = APIRouter(tags=["approvals"])


@router.post("/runs/{run_id}/approve", response_model=RunOut)
def approve(run_id: uuid.UUID, body: ApproveIn, db: DbSession,
            principal: Principal = Depends(require("runs.read"))) -> RunOut:
    """Advance (or reject) the run's approval state; role-gated, four-eyes."""
    return service.transition(db, principal, run_id, body.action, body.comment)


@router.post("/runs/{run_id}/finalize", response_model=RunOut)
def finalize(run_id: uuid.UUID, db: DbSession, request: Request, background: BackgroundTasks,
             body: FinalizeIn | None = None,
             principal: Principal = Depends(require("runs.read"))) -> RunOut:
    """Freeze a finance-approved run (finance or admin); its results can never change. With
    SMTP configured, managers then get their teams' statements (a queued delivery job,
    created once the finalisation is committed)."""
    run = service.transition(db, principal, run_id, "finalize", body.comment if body else None,
                             body.override_inquiries_reason if body else None)
    background.add_task(reports.deliver_after_finalize, principal, request.app.state.settings,
                        run_id)
    return run
