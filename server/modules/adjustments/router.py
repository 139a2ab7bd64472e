"""Routes: /adjustment-runs (start, deltas, statements); approvals go through /runs/{id}."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from server.modules.adjustments import service
from server.modules.adjustments.schemas import AdjustmentIn
from server.modules.auth.dependencies import DbSession, Principal, require

router = APIRouter(tags=["adjustment runs"])


@router.post("/adjustment-runs", status_code=202)
async def create(body: AdjustmentIn, request: Request,
                 principal: Principal = Depends(require("adjustments.create"))
                 ) -> dict[str, Any]:
    """Queue the corrected run, linked to the finalized one; poll GET /runs/{run_id}."""
    link = await run_in_threadpool(
        service.create, principal, request.app.state.settings, body.original_run_id,
        body.upload_id, body.funds_upload_id, body.plan_id, body.reason)
    return {"run_id": link.run_id, "original_run_id": link.original_run_id,
            "reason": link.reason}


@router.get("/adjustment-runs/{run_id}")
def deltas(run_id: uuid.UUID, db_session: DbSession,
           _: Principal = Depends(require("reports.export"))) -> dict[str, Any]:
    """Per-employee differences to the finalized run: what this adjustment pays."""
    return service.deltas(db_session, run_id)


@router.get("/adjustment-runs/{run_id}/statements/{employee_ref}")
def statement(run_id: uuid.UUID, employee_ref: str, request: Request, db_session: DbSession,
              principal: Principal = Depends(require("reports.read"))) -> dict[str, Any]:
    """The employee's adjustment statement (managers: their teams only)."""
    return service.statement(db_session, request.app.state.settings, principal, run_id,
                             employee_ref)
