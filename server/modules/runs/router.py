"""Routes: start, list and read runs; results and tapes; progress events; reproduce,
compare and legacy parity. Approvals live in server.modules.approvals."""

from __future__ import annotations

import asyncio
import uuid

from fastapi import (
    APIRouter,
    Depends,
    File,
    Form,
    Header,
    Query,
    Request,
    Response,
    UploadFile,
    WebSocket,
    WebSocketDisconnect,
)
from fastapi.concurrency import run_in_threadpool

from server.db import session as db
from server.jsonbody import ExactNumberRoute
from server.modules.auth.dependencies import DbSession, Principal, require
from server.modules.auth.permissions import allowed
from server.modules.runs import history, service, visibility
from server.modules.runs.models import PlanRun
from server.modules.runs.schemas import (
    CompareOut,
    ParityOut,
    ReproduceOut,
    ResultRow,
    ResultsPage,
    RunAccepted,
    RunOut,
    RunPage,
    RunStart,
    TapeOut,
)

router = APIRouter(tags=["runs"], route_class=ExactNumberRoute)  # parameter overrides
MAX_LEGACY_BYTES = 64 * 1024 * 1024
TERMINAL_PHASES = ("done", "failed")


@router.post("/runs", status_code=202, response_model=RunAccepted)
def start_run(
    body: RunStart,
    request: Request,
    response: Response,
    principal: Principal = Depends(require("runs.create")),
    idempotency_key: str | None = Header(None, alias="Idempotency-Key", max_length=200),
) -> RunAccepted:
    """Queue a run of a locked plan over a ready employees upload (PRD §15.5).

    Repeating the request with the same `Idempotency-Key` returns the same run (200).
    """
    started = service.start_run(principal, body, idempotency_key, request.app.state.settings)
    if not started.created:
        response.status_code = 200
    response.headers["Location"] = f"/api/v1/runs/{started.run.id}"
    return RunAccepted(run_id=started.run.id, status=started.run.status,
                       snapshot_hash=started.run.snapshot_hash)


@router.get("/runs", response_model=RunPage)
def list_runs(
    db_session: DbSession,
    principal: Principal = Depends(require("runs.read")),
    status: str | None = Query(None, max_length=32),
    plan_id: uuid.UUID | None = None,
    scenario_name: str | None = Query(None, max_length=200),
    created_by: uuid.UUID | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=500),
) -> RunPage:
    """Newest first; pass `next_cursor` back as `cursor`. Totals are left out here."""
    filters = service.RunFilter(status, plan_id, scenario_name, created_by)
    runs, next_cursor = service.list_runs(db_session, filters, limit, cursor)
    people = history.people_of(db_session, runs)
    return RunPage(items=[service.run_out(db_session, run, with_totals=False,
                                          principal=principal, people=people)
                          for run in runs], next_cursor=next_cursor)


@router.get("/runs/{run_id}", response_model=RunOut)
def get_run(run_id: uuid.UUID, db_session: DbSession,
            principal: Principal = Depends(require("runs.read"))) -> Response:
    """Status, progress, totals, hashes and the approvals history."""
    return service.run_response(db_session, service.get_run(db_session, run_id), principal)


@router.get("/runs/{run_id}/results", response_model=ResultsPage | TapeOut)
def get_results(
    run_id: uuid.UUID,
    request: Request,
    db_session: DbSession,
    principal: Principal = Depends(require("pay.employees.read")),
    employee_ref: str | None = Query(None, max_length=200,
                                     description="return this employee's calculation tape"),
    with_diagnostics: bool = Query(False, description="only rows carrying diagnostics"),
    limit: int = Query(100, ge=1, le=1000),
    cursor: str | None = Query(None, max_length=500),
) -> ResultsPage | TapeOut:
    """Per-employee values and diagnostics by employee_ref, or one employee's tape; a
    manager gets their teams' employees only, readonly nobody (403)."""
    settings = request.app.state.settings
    if employee_ref is not None:
        return service.tape(db_session, settings, run_id, employee_ref, principal)
    refs = service.visible_refs(db_session, settings, principal, run_id)
    rows, next_cursor = service.result_rows(db_session, run_id, limit, cursor, with_diagnostics,
                                            refs)
    return ResultsPage(run_id=run_id, next_cursor=next_cursor, items=[
        ResultRow(employee_ref=r.employee_ref, values=r.values, diagnostics=r.diagnostics)
        for r in rows])


@router.post("/runs/{run_id}/reproduce", response_model=ReproduceOut)
def reproduce(run_id: uuid.UUID, request: Request, db_session: DbSession,
              principal: Principal = Depends(require("runs.create"))) -> ReproduceOut:
    """Re-execute the stored snapshot; says whether the results hash is identical."""
    return service.reproduce(db_session, request.app.state.settings, principal, run_id)


@router.get("/runs/{run_id}/compare/{other_run_id}", response_model=CompareOut)
def compare(
    run_id: uuid.UUID, other_run_id: uuid.UUID, request: Request, db_session: DbSession,
    principal: Principal = Depends(require("pay.employees.read")),
    limit: int = Query(500, ge=1, le=5000), cursor: str | None = Query(None, max_length=500),
) -> CompareOut:
    """Payout deltas (other minus this run) per employee and in total, over the employees
    the caller may see (managers: their teams)."""
    return service.compare(db_session, request.app.state.settings, principal, run_id,
                           other_run_id, limit, cursor)


@router.post("/runs/{run_id}/parity", response_model=ParityOut)
async def parity(
    run_id: uuid.UUID,
    file: UploadFile = File(..., description="legacy results CSV with employee_ref"),
    amount_column: str = Form(..., max_length=200),
    step: str | None = Form(None, max_length=200, description="default: the payout step"),
    principal: Principal = Depends(require("runs.create")),
) -> ParityOut:
    """Shadow mode: compare with a legacy engine's amounts (passes when |diff| ≤ 0.01)."""
    payload = await file.read(MAX_LEGACY_BYTES + 1)
    if len(payload) > MAX_LEGACY_BYTES:
        from server.errors import ProblemError

        raise ProblemError(413, "Content Too Large", "legacy CSV is over 64 MB")

    def check() -> ParityOut:
        with db.tenant_session(principal.tenant_id) as session:
            return service.parity(session, principal, run_id, payload, amount_column, step)

    return await run_in_threadpool(check)


def _websocket_principal(websocket: WebSocket) -> Principal | None:
    from server.modules.auth.service import resolve_token

    header = websocket.headers.get("authorization", "")
    token = header[7:] if header.lower().startswith("bearer ") else None
    token = token or websocket.query_params.get("token")
    return resolve_token(token) if token else None


def _progress(principal: Principal, run_id: uuid.UUID) -> dict | None:
    with db.tenant_session(principal.tenant_id) as session:
        run = session.get(PlanRun, run_id)
        if run is None:
            return None
        return {"run_id": str(run.id), "status": run.status,
                "error": visibility.error_view(run.error, principal),
                **(run.progress or {})}


@router.websocket("/runs/{run_id}/events")
async def run_events(websocket: WebSocket, run_id: uuid.UUID) -> None:
    """Progress messages `{status, phase, rows_done, rows_total, ...}` whenever they change,
    until the run is done or failed. Token: `Authorization: Bearer` or `?token=`."""
    principal = await run_in_threadpool(_websocket_principal, websocket)
    if principal is None or not allowed(principal.role, "runs.read"):
        await websocket.close(code=4401)
        return
    await websocket.accept()
    last = None
    try:
        while True:
            current = await run_in_threadpool(_progress, principal, run_id)
            if current is None:
                await websocket.send_json({"run_id": str(run_id), "error": "run not found"})
                await websocket.close(code=4404)
                return
            if current != last:
                await websocket.send_json(current)
                last = current
            if current["status"] not in ("queued", "running"):
                await websocket.close(code=1000)
                return
            await asyncio.sleep(0.2)  # the poll interval of the progress column
    except WebSocketDisconnect:
        return
