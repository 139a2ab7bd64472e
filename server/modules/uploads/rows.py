"""Filling `comp.employee_rows` of a ready upload, after it is ready.

Nothing a run needs is in `employee_rows` (runs read the upload's typed Parquet), so the
upload becomes `ready` as soon as validation and the Parquet are done, and its rows are
loaded afterwards from the spool validation wrote (`<upload>.rows.arrows`, an Arrow IPC
stream of file row, reference and the mapped cells as text, read one batch at a time).
`metadata.rows` tells where that is:

    queued → filling → filled {count}        (the spool is deleted)
                     → failed {error}        (nothing stored, the spool is kept:
                                              POST /uploads/{id}/rows tries again)

All rows and the `filled` status commit in one transaction, so a failure stores no row.
Rows go through `server.db.bulk.StagedInserter` (COPY into a temp table, INSERT ... SELECT
into the RLS table); each row's `raw` JSON is built here with Polars, so the database only
parses it.
"""

from __future__ import annotations

import io
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import polars as pl
import pyarrow as pa
import structlog
from psycopg import sql
from sqlalchemy import delete
from sqlalchemy.orm.attributes import flag_modified

from server.db.bulk import StagedInserter
from server.db.session import tenant_session
from server.errors import Conflict
from server.modules.audit.service import record_event
from server.modules.keys import service as keys_area
from server.modules.uploads import sealing, service
from server.modules.uploads.models import EmployeeRow, Upload
from server.modules.uploads.validation import SPOOL_REF, SPOOL_ROW
from server.principal import Principal
from server.settings import Settings

log = structlog.get_logger(__name__)
STAGE = "upload_rows_stage"
STAGE_COLUMNS = [("file_row", "int"), ("ref", "text"), ("raw", "jsonb")]


def process_and_fill(settings: Settings, principal: Principal, upload_id: uuid.UUID) -> None:
    """The map request's background work: validate, then (if ready) fill the rows."""
    service.process_upload(settings, principal, upload_id)
    fill_rows(settings, principal, upload_id)


def fill_rows(settings: Settings, principal: Principal, upload_id: uuid.UUID) -> None:
    """Load the spool into employee_rows; never raises (the outcome is in metadata.rows)."""
    if not _start(settings, principal, upload_id):
        return
    started = time.perf_counter()
    try:
        _load(settings, principal, upload_id, started)
    except Exception as error:
        log.exception("upload_rows_failed", upload_id=str(upload_id))
        _settle(settings, principal, upload_id, {
            "status": "failed", "error": f"storing the rows failed ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else 'no detail'}); nothing was "
            "stored, retry with POST /uploads/{id}/rows"})
        return
    service.rows_spool_path(settings, principal.tenant_id, upload_id).unlink(missing_ok=True)
    with tenant_session(principal.tenant_id) as session:
        service.publish(settings, upload_id,
                        **service.status_event(service.get_upload(session, upload_id)))


def retry(settings: Settings, principal: Principal, upload_id: uuid.UUID) -> Upload:
    """Queue the fill again after a failure (or a worker lost while filling)."""
    with tenant_session(principal.tenant_id) as session:
        upload = service.get_upload(session, upload_id, lock=True)
        rows = upload.metadata_.get("rows") or {}
        if upload.status != "ready" or rows.get("status") == "filled":
            raise Conflict(f"the upload's rows cannot be stored again: the upload is "
                           f"{upload.status}, its rows {rows.get('status') or 'not pending'}")
        if rows.get("status") in service.ROWS_PENDING and not _stale(upload):
            raise Conflict("the upload's rows are being stored already")
        if not service.rows_spool_path(settings, upload.tenant_id, upload.id).exists():
            raise Conflict("the validated rows are gone; upload the file again")
        _set_rows(upload, {**rows, "status": "queued", "error": None})
        session.flush()
        session.refresh(upload)
        return upload


def _stale(upload: Upload) -> bool:
    return upload.updated_at <= datetime.now(UTC) - service.STALE_AFTER


def _set_rows(upload: Upload, rows: dict[str, Any]) -> None:
    upload.metadata_ = {**upload.metadata_, "rows": rows}
    flag_modified(upload, "metadata_")


def _start(settings: Settings, principal: Principal, upload_id: uuid.UUID) -> bool:
    with tenant_session(principal.tenant_id) as session:
        upload = service.get_upload(session, upload_id, lock=True)
        rows = upload.metadata_.get("rows") or {}
        if upload.status != "ready" or rows.get("status") != "queued":
            return False
        _set_rows(upload, {**rows, "status": "filling"})
    service.publish(settings, upload_id, type="progress", stage="storing_rows", rows=0)
    return True


def _load(settings: Settings, principal: Principal, upload_id: uuid.UUID,
          started: float) -> None:
    path = service.rows_spool_path(settings, principal.tenant_id, upload_id)
    with tenant_session(principal.tenant_id) as session, open(path, "rb") as handle:
        cipher = keys_area.cipher(session, settings)
        sensitive = sealing.sensitive_keys(session)
        spool = pa.ipc.open_stream(cipher.reader(handle, keys_area.ROWS_SPOOL))
        keys = [n for n in spool.schema.names if n not in (SPOOL_ROW, SPOOL_REF)]
        session.execute(delete(EmployeeRow).where(EmployeeRow.upload_id == upload_id))
        inserter = StagedInserter(session, "employee_rows", STAGE_COLUMNS, {
            "upload_id": sql.Literal(str(upload_id)) + sql.SQL("::uuid"),
            "file_row": sql.Identifier("file_row"), "employee_ref": sql.Identifier("ref"),
            "raw": sql.Identifier("raw")}, stage=STAGE)
        done = 0
        try:
            for batch in spool:
                inserter.submit(_csv(pl.from_arrow(batch), keys, sensitive, cipher,
                                     upload_id))
                done += batch.num_rows
                service.publish(settings, upload_id, type="progress", stage="storing_rows",
                                rows=done)
        except BaseException:
            inserter.abandon()
            raise
        count = inserter.finish()
        upload = service.get_upload(session, upload_id, lock=True)
        expected = (upload.metadata_.get("rows") or {}).get("expected")
        if count != expected:
            raise RuntimeError(f"stored {count} rows, validation counted {expected}")
        _set_rows(upload, {"status": "filled", "expected": expected, "count": count,
                           "seconds": round(time.perf_counter() - started, 2),
                           "copy_seconds": round(inserter.copy_seconds, 2),
                           "insert_seconds": round(inserter.insert_seconds, 2)})
        record_event(session, principal_or_actor_id=principal, action="upload.rows",
                     entity="upload", entity_id=upload_id, after={"rows": count})


def _csv(frame: Any, keys: list[str], sensitive: set[str], cipher: keys_area.TenantCipher,
         upload_id: uuid.UUID) -> bytes:
    """COPY input `file_row, ref, raw`: raw is the mapped cells as a JSON object (built
    here: PostgreSQL's jsonb_build_object costs ~1.4x parsing the same JSON text), with
    the sensitive inputs' cells sealed together (`sealing.seal_rows`)."""
    buffer = io.BytesIO()
    secret = [k for k in keys if k in sensitive]
    raw = (sealing.seal_rows(frame, SPOOL_ROW, [k for k in keys if k not in sensitive],
                             secret, cipher, upload_id).alias("raw") if secret
           else pl.struct(keys).struct.json_encode())
    frame.select(pl.col(SPOOL_ROW), pl.col(SPOOL_REF), raw
                 ).write_csv(buffer, include_header=False)
    return buffer.getvalue()


def _settle(settings: Settings, principal: Principal, upload_id: uuid.UUID,
            rows: dict[str, Any]) -> None:
    with tenant_session(principal.tenant_id) as session:
        upload = service.get_upload(session, upload_id, lock=True)
        _set_rows(upload, {**(upload.metadata_.get("rows") or {}), **rows})
        record_event(session, principal_or_actor_id=principal, action="upload.rows_failed",
                     entity="upload", entity_id=upload_id, after={"error": rows.get("error")})
        session.flush()
        session.refresh(upload)
        event = service.status_event(upload)
    service.publish(settings, upload_id, **event)
