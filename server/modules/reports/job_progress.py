"""Job progress over a WebSocket: the job row is read every POLL seconds and each change sent.

Report jobs run on worker processes that may live on other machines; their progress is in
`comp.report_jobs`, so the socket reads it from there (one small indexed read per tick per
watcher) rather than needing a message bus. The socket closes after a final status; a client
that goes away changes nothing: the job finishes, or is cancelled through the API.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketDisconnect

from server.db.session import tenant_session
from server.errors import ProblemError
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import allowed
from server.modules.reports import jobs
from server.modules.reports.export_job import FINAL_STATES

POLL = 0.25
AUTH_SECONDS = 10.0


async def _principal(websocket: WebSocket) -> Principal | None:
    from server.modules.auth.service import resolve_token

    token = websocket.query_params.get("token")
    if not token:
        try:
            first = await asyncio.wait_for(websocket.receive_text(), AUTH_SECONDS)
            token = str(json.loads(first).get("token", ""))
        except (TimeoutError, ValueError, AttributeError, WebSocketDisconnect):
            return None
    return await run_in_threadpool(resolve_token, token) if token else None


def _snapshot(principal: Principal, job_id: uuid.UUID) -> dict[str, Any]:
    with tenant_session(principal.tenant_id) as session:
        job = jobs.get_job(session, principal, job_id)
        return {"job_id": str(job.id), "kind": job.kind, "status": job.status,
                "progress": dict(job.progress or {}), "error": job.error,
                "final": job.status in FINAL_STATES}


async def stream(websocket: WebSocket, job_id: uuid.UUID) -> None:
    """Send the job's state now and on every change until it is final."""
    await websocket.accept()
    principal = await _principal(websocket)
    if principal is None:
        await websocket.close(code=4401, reason="missing or invalid token")
        return
    if not allowed(principal.role, "reports.read"):
        await websocket.close(code=4403, reason="role lacks reports.read")
        return
    last: dict[str, Any] | None = None
    try:
        while True:
            try:
                state = await run_in_threadpool(_snapshot, principal, job_id)
            except ProblemError:
                await websocket.close(code=4404, reason="job not found")
                return
            if state != last:
                await websocket.send_json(state)
                last = state
            if state["final"]:
                await websocket.close(code=1000)
                return
            await asyncio.sleep(POLL)
    except WebSocketDisconnect:
        return
