"""Validation and the employee_rows fill as Huey tasks, not work inside the API process.

`POST /uploads/{id}/map` commits the mapping (`processing`), then queues
`uploads.validate`; `POST /uploads/{id}/rows` queues `uploads.fill_rows` (names in
`server/worker/queue.py`, bound in `server/worker/tasks.py`). A task carries the tenant
and upload ids only; who asked (for the audit trail) is `metadata.validation.user_id`,
recorded at map time. The database says what is left to do, so a task that finds nothing
to do does nothing, and running one twice is harmless.

Each task holds the upload's advisory lock (`upload:<id>`, on its own connection) while it
works. `metadata.validation` records the attempt and worker. An API restart loses nothing
(the task is in the queue: Redis or PostgreSQL); a worker that dies mid-task leaves the
upload `processing` (or its rows `filling`) with its lock free, and
`recover_interrupted_uploads` (at consumer start and every minute) queues it again, up to
`MAX_ATTEMPTS` validations, then fails it with the reason.

Progress goes to the upload's events channel (`service.publish`): the in-process hub for
the embedded consumer of `paysheet serve`, Redis for separate worker processes.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.orm.attributes import flag_modified

from server.db import session as db
from server.errors import NotFound
from server.modules.audit.service import record_event
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import Role
from server.modules.uploads import rows, service
from server.settings import Settings
from server.worker import queue

log = structlog.get_logger(__name__)
MAX_ATTEMPTS = 3
# A queued task not yet claimed is left alone this long before recovery queues it again
# (its enqueue may have been lost with the process that made it).
UNCLAIMED_GRACE = timedelta(minutes=10)


def _principal(tenant_id: str, user_id: str, role: str) -> Principal:
    """The caller as far as the work needs one: its tenant and, for audit, its user."""
    return Principal(user_id=uuid.UUID(user_id), tenant_id=uuid.UUID(tenant_id),
                     role=Role(role), email="", display_name=None, teams=())


def enqueue_validation(settings: Settings, principal: Principal, upload_id: uuid.UUID) -> None:
    """Queue the validation of a committed `processing` upload; if the queue refuses, the
    upload fails with that reason (mapping again retries) rather than stay `processing`."""
    try:
        queue.get_queue(settings).enqueue(queue.VALIDATE_UPLOAD, principal.tenant_id,
                                          upload_id)
    except Exception as error:
        log.exception("upload_enqueue_failed", upload_id=str(upload_id))
        with db.tenant_session(principal.tenant_id) as session:
            upload = service.get_upload(session, upload_id, lock=True)
            if upload.status == "processing":
                upload.status, upload.error = "failed", (
                    f"validation could not be queued ({type(error).__name__}); map again")
                upload.metadata_ = {**upload.metadata_, "phase": "validated"}
        raise


def enqueue_fill(settings: Settings, tenant_id: uuid.UUID, upload_id: uuid.UUID) -> None:
    queue.get_queue(settings).enqueue(queue.FILL_UPLOAD_ROWS, tenant_id, upload_id)


def _lock_key(upload_id: uuid.UUID) -> str:
    return f"upload:{upload_id}"


@contextmanager
def upload_lock(settings: Settings, upload_id: uuid.UUID) -> Iterator[bool]:
    """Hold the upload's advisory lock on a pooled connection of its own (not a new one:
    connections are scarce); yields False if taken. Unlocked before the connection goes
    back to the pool."""
    key = {"key": _lock_key(upload_id)}
    with db.get_engine().connect() as conn:
        held = bool(conn.execute(text(
            "select pg_try_advisory_lock(hashtextextended(:key, 0))"), key).scalar())
        conn.commit()
        try:
            yield held
        finally:
            if held:
                conn.execute(text("select pg_advisory_unlock(hashtextextended(:key, 0))"),
                             key)
                conn.commit()


def _actor(upload: Any) -> Principal:
    """Who asked for the work (recorded at map time), for the audit trail."""
    who = upload.metadata_.get("validation") or {}
    return _principal(str(upload.tenant_id), who.get("user_id") or str(upload.created_by),
                      who.get("role") or Role.HR.value)


def _claim(tenant_id: uuid.UUID, upload_id: uuid.UUID) -> Principal | None:
    """processing → claimed by this worker (attempt + 1); None when nothing is to do."""
    with db.tenant_session(tenant_id) as session:
        try:
            upload = service.get_upload(session, upload_id, lock=True)
        except NotFound:
            return None  # deleted while the task waited
        if upload.status != "processing":
            return None
        previous = upload.metadata_.get("validation") or {}
        upload.metadata_ = {**upload.metadata_, "validation": {
            **previous, "attempts": int(previous.get("attempts") or 0) + 1,
            "worker": f"{socket.gethostname()}:{os.getpid()}",
            "started_at": datetime.now(UTC).isoformat()}}
        flag_modified(upload, "metadata_")
        return _actor(upload)


def validate_upload(tenant_id: uuid.UUID, upload_id: uuid.UUID, settings: Settings) -> None:
    """The `uploads.validate` task: validate, then queue the rows fill if it became ready."""
    with upload_lock(settings, upload_id) as free:
        principal = _claim(tenant_id, upload_id) if free else None
        if principal is None:
            return
        service.process_upload(settings, principal, upload_id)
    with db.tenant_session(tenant_id) as session:
        pending = service.rows_status(service.get_upload(session, upload_id)) == "queued"
    if pending:
        enqueue_fill(settings, tenant_id, upload_id)


def fill_upload_rows(tenant_id: uuid.UUID, upload_id: uuid.UUID, settings: Settings) -> None:
    """The `uploads.fill_rows` task (a no-op unless the rows are `queued`)."""
    with upload_lock(settings, upload_id) as free, contextlib.suppress(NotFound):
        if free:  # NotFound: deleted while the task waited
            with db.tenant_session(tenant_id) as session:
                principal = _actor(service.get_upload(session, upload_id))
            rows.fill_rows(settings, principal, upload_id)


def recover_interrupted_uploads(settings: Settings) -> list[uuid.UUID]:
    """Uploads whose worker died: validation queued again (or failed after MAX_ATTEMPTS),
    rows left `filling` set back to `queued` and queued. Returns the ids handled."""
    with db.system_session() as session:
        found = session.execute(text("select * from comp.uploads_in_flight()")).all()
    handled = []
    for row in found:
        with upload_lock(settings, row.upload_id) as free:
            if not free:
                continue  # a live worker holds it
            action = _recover_one(row)
        if action is not None:
            action(settings)
            handled.append(row.upload_id)
    if handled:
        log.info("uploads_recovered", uploads=[str(upload_id) for upload_id in handled])
    return handled


def _recover_one(row: Any) -> Callable[[Settings], None] | None:
    """Decide (and record) what to do with one in-flight upload nobody works on."""
    waiting = (row.status == "processing" and not row.claimed) or row.rows_status == "queued"
    if waiting and row.updated_at > datetime.now(UTC) - UNCLAIMED_GRACE:
        return None  # still waiting in the queue
    with db.tenant_session(row.tenant_id) as session:
        upload = service.get_upload(session, row.upload_id, lock=True)
        who = upload.metadata_.get("validation") or {}
        principal = _actor(upload)
        if upload.status == "processing":
            if int(who.get("attempts") or 0) >= MAX_ATTEMPTS:
                reason = (f"validation was interrupted {who.get('attempts')} times (last "
                          f"worker {who.get('worker')}); map the file again")
                upload.status, upload.error = "failed", reason
                upload.metadata_ = {**upload.metadata_, "phase": "validated"}
                record_event(session, principal_or_actor_id=None, action="upload.failed",
                             entity="upload", entity_id=upload.id, after={"error": reason})
                return None
            record_event(session, principal_or_actor_id=None, action="upload.requeued",
                         entity="upload", entity_id=upload.id,
                         after={"worker": who.get("worker"), "attempts": who.get("attempts")})
            upload.metadata_ = {**upload.metadata_, "validation": {**who, "worker": None}}
            flag_modified(upload, "metadata_")
            return lambda settings: enqueue_validation(settings, principal, upload.id)
        if upload.status == "ready" and service.rows_status(upload) in service.ROWS_PENDING:
            upload.metadata_ = {**upload.metadata_, "rows": {
                **(upload.metadata_.get("rows") or {}), "status": "queued"}}
            flag_modified(upload, "metadata_")
            return lambda settings: enqueue_fill(settings, upload.tenant_id, upload.id)
    return None
