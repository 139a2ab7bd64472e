"""Routes: tus 1.0 + multipart uploads, preview, mapping, presets, validation, events."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Body, Depends, Query, Request, WebSocket
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile
from starlette.websockets import WebSocketDisconnect

from server.db.session import tenant_session
from server.errors import ProblemError, UnprocessableEntity
from server.modules.auth.dependencies import DbSession, Principal, require
from server.modules.auth.permissions import allowed
from server.modules.uploads import jobs, metrics, reading, rows, sealing, service, tus
from server.modules.uploads.models import Upload
from server.modules.uploads.schemas import (
    PresetOut,
    PresetRename,
    PreviewOut,
    ReadingIn,
    SuggestionsOut,
    UploadOut,
    UploadPage,
    ValidationOut,
)
from server.settings import Settings

router = APIRouter(tags=["uploads"])
COPY_CHUNK = 1024 * 1024
WS_AUTH_SECONDS = 10


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def upload_out(upload: Upload, settings: Settings) -> UploadOut:
    meta = upload.metadata_ or {}
    return UploadOut(
        id=upload.id, filename=upload.filename, kind=upload.kind, status=upload.status,
        phase=meta.get("phase"), file_size=upload.file_size,
        received_bytes=service.received_bytes(settings, upload), sha256=upload.sha256,
        error=upload.error, scan=meta.get("scan"),
        format=sealing.readable_format(upload, settings),
        mapping=upload.mapping, plan_id=upload.plan_id,
        summary=sealing.readable_summary(upload, settings),
        parquet_sha256=(meta.get("parquet") or {}).get("sha256"), timings=meta.get("timings"),
        rows=meta.get("rows"),
        created_at=upload.created_at, updated_at=upload.updated_at,
    )


@router.options("/uploads", include_in_schema=False)
@router.options("/uploads/{upload_id}", include_in_schema=False)
def tus_options(request: Request) -> Response:
    """tus discovery: version, extensions, default size limit, checksum algorithms."""
    return Response(status_code=204, headers={
        "Tus-Resumable": tus.TUS_VERSION, "Tus-Version": tus.TUS_VERSION,
        "Tus-Extension": tus.TUS_EXTENSIONS,
        "Tus-Max-Size": str(_settings(request).max_upload_bytes),
        "Tus-Checksum-Algorithm": ",".join(tus.CHECKSUM_ALGORITHMS)})


@router.post("/uploads", status_code=201, response_model=UploadOut,
             responses={413: {"description": "over the tenant's size limit"}})
async def create_upload(
    request: Request, principal: Principal = Depends(require("uploads.write")),
) -> Response:
    """tus creation (`Tus-Resumable`, `Upload-Length`, `Upload-Metadata: filename, kind,
    sheet`) answering 201 + Location; or a multipart form (`file`, `kind`, `sheet`) for
    small files, answering the upload once scanned and parsed."""
    settings = _settings(request)
    if request.headers.get("tus-resumable") is not None:
        return await _tus_create(request, principal, settings)
    return await _multipart_create(request, principal, settings)


async def _tus_create(request: Request, principal: Principal, settings: Settings) -> Response:
    tus.require_tus_version(request.headers.get("tus-resumable"))
    length = tus.non_negative_int(request.headers.get("upload-length"), "Upload-Length")
    meta = tus.parse_metadata(request.headers.get("upload-metadata"))
    kind = service.check_kind(meta.get("kind"), ["header", "Upload-Metadata", "kind"])

    def create() -> tuple[UploadOut, bool]:
        with tenant_session(principal.tenant_id) as session:
            upload, created = service.create_upload(
                session, principal, settings, filename=meta.get("filename", ""), kind=kind,
                length=length, sheet=meta.get("sheet") or None, protocol="tus",
                idempotency_key=request.headers.get("idempotency-key"))
            return upload_out(upload, settings), created

    out, created = await run_in_threadpool(create)
    location = f"{request.url.path.rstrip('/')}/{out.id}"
    return JSONResponse(out.model_dump(mode="json"), status_code=201 if created else 200,
                        headers=tus.tus_headers(Location=location))


async def _multipart_create(request: Request, principal: Principal, settings: Settings
                            ) -> Response:
    declared = request.headers.get("content-length")
    if declared is None or not declared.isdigit():
        raise ProblemError(411, "Length Required", "send Content-Length with a multipart upload")

    def check() -> None:
        with tenant_session(principal.tenant_id) as session:
            service.check_size(session, settings, principal.tenant_id, int(declared))

    await run_in_threadpool(check)
    form = await request.form()
    file = form.get("file")
    if not isinstance(file, UploadFile):
        raise UnprocessableEntity([{"loc": ["body", "file"], "msg": "a file part is required",
                                    "type": "missing"}])
    kind = service.check_kind(str(form.get("kind") or "employees"), ["body", "kind"])
    sheet = str(form.get("sheet") or "") or None
    size = file.size if file.size is not None else 0

    def create() -> uuid.UUID:
        with tenant_session(principal.tenant_id) as session:
            upload, _ = service.create_upload(
                session, principal, settings, filename=file.filename or "", kind=kind,
                length=size, sheet=sheet, protocol="multipart",
                idempotency_key=request.headers.get("idempotency-key"))
            return upload.id

    upload_id = await run_in_threadpool(create)
    path = service.file_path(settings, principal.tenant_id, upload_id)

    async def body() -> Any:
        while chunk := await file.read(COPY_CHUNK):
            yield chunk

    await tus.append(upload_id, path, 0, size, body(), None, lambda _: None)
    sha256, seconds = _timed_sha256(upload_id, path)
    upload = await run_in_threadpool(service.complete_upload, settings, principal, upload_id,
                                     sha256, seconds)
    return JSONResponse(upload_out(upload, settings).model_dump(mode="json"), status_code=201,
                        headers={"Location": f"{request.url.path.rstrip('/')}/{upload_id}"})


def _timed_sha256(upload_id: uuid.UUID, path: Any) -> tuple[str, float]:
    started = time.perf_counter()
    sha256 = tus.final_sha256(upload_id, path)
    return sha256, time.perf_counter() - started


def _load(principal: Principal, upload_id: uuid.UUID) -> Upload:
    with tenant_session(principal.tenant_id) as session:
        return service.get_upload(session, upload_id)


@router.head("/uploads/{upload_id}", include_in_schema=False)
async def tus_head(request: Request, upload_id: uuid.UUID,
                   principal: Principal = Depends(require("uploads.write"))) -> Response:
    """tus: the current offset (bytes stored) and length."""
    upload = await run_in_threadpool(_load, principal, upload_id)
    offset = service.received_bytes(_settings(request), upload)
    return Response(status_code=200, headers=tus.tus_headers(**{
        "Upload-Offset": str(offset), "Upload-Length": str(upload.file_size or 0),
        "Upload-Metadata": "filename " + base64.b64encode(upload.filename.encode()).decode()
        + ",kind " + base64.b64encode(upload.kind.encode()).decode()}))


@router.patch("/uploads/{upload_id}", status_code=204, include_in_schema=True,
              responses={409: {"description": "wrong Upload-Offset"},
                         460: {"description": "checksum mismatch"}})
async def tus_patch(request: Request, upload_id: uuid.UUID,
                    principal: Principal = Depends(require("uploads.write"))) -> Response:
    """tus: append the body (`application/offset+octet-stream`) at `Upload-Offset`."""
    settings = _settings(request)
    tus.require_tus_version(request.headers.get("tus-resumable"))
    if request.headers.get("content-type", "").split(";")[0].strip() != tus.OFFSET_CONTENT_TYPE:
        raise ProblemError(415, "Unsupported Media Type",
                           f"Content-Type must be {tus.OFFSET_CONTENT_TYPE}",
                           headers=tus.tus_headers())
    offset = tus.non_negative_int(request.headers.get("upload-offset"), "Upload-Offset")
    checksum = tus.parse_checksum(request.headers.get("upload-checksum"))
    upload = await run_in_threadpool(_load, principal, upload_id)
    if upload.metadata_.get("phase") != "uploading":
        raise ProblemError(409, "Conflict", "the upload is already complete",
                           headers=tus.tus_headers(**{"Upload-Offset": str(upload.file_size)}))
    length = upload.file_size or 0
    path = service.file_path(settings, principal.tenant_id, upload_id)

    def progress(received: int) -> None:
        service.publish(settings, upload_id, type="progress", stage="receiving",
                        bytes_received=received, upload_length=length)

    started = time.perf_counter()
    result = await tus.append(upload_id, path, offset, length, request.stream(), checksum,
                              progress)
    metrics.observe_received(result.offset - offset, time.perf_counter() - started)
    if result.disconnected:
        return Response(status_code=400)  # nobody is listening; the bytes are kept
    if result.offset == length:
        sha256, seconds = await run_in_threadpool(_timed_sha256, upload_id, path)
        await run_in_threadpool(service.complete_upload, settings, principal, upload_id, sha256,
                                seconds)
    return Response(status_code=204,
                    headers=tus.tus_headers(**{"Upload-Offset": str(result.offset)}))


@router.delete("/uploads/{upload_id}", status_code=204)
def delete_upload(request: Request, upload_id: uuid.UUID, db: DbSession,
                  principal: Principal = Depends(require("uploads.write"))) -> Response:
    """tus termination: the file, its typed data and its rows are deleted."""
    service.delete_upload(db, principal, _settings(request), upload_id)
    tus.forget(upload_id)
    return Response(status_code=204, headers=tus.tus_headers())


@router.get("/uploads", response_model=UploadPage)
def list_uploads(request: Request, db: DbSession,
                 principal: Principal = Depends(require("uploads.read")),
                 limit: int = Query(50, ge=1, le=200),
                 cursor: str | None = Query(None, max_length=64)) -> UploadPage:
    """Newest first; pass `next_cursor` back as `cursor`."""
    try:
        before = datetime.fromisoformat(cursor) if cursor else None
    except ValueError:
        raise UnprocessableEntity([{"loc": ["query", "cursor"], "msg": "invalid cursor",
                                    "type": "value_error"}]) from None
    rows = service.list_uploads(db, limit, before)
    settings = _settings(request)
    next_cursor = rows[limit - 1].created_at.isoformat() if len(rows) > limit else None
    return UploadPage(items=[upload_out(u, settings) for u in rows[:limit]],
                      next_cursor=next_cursor)


@router.get("/uploads/{upload_id}", response_model=UploadOut)
def get_upload(request: Request, upload_id: uuid.UUID, db: DbSession,
               principal: Principal = Depends(require("uploads.read"))) -> UploadOut:
    return upload_out(service.get_upload(db, upload_id), _settings(request))


@router.get("/uploads/{upload_id}/preview", response_model=PreviewOut)
def preview(request: Request, upload_id: uuid.UUID, db: DbSession,
            principal: Principal = Depends(require("uploads.read"))) -> dict[str, Any]:
    """The first 100 data rows, each column's inferred type and what reading will do to
    its values (`read_as`), or why a value will not load."""
    return reading.preview(db, _settings(request), upload_id)


@router.put("/uploads/{upload_id}/reading", response_model=UploadOut)
def change_reading(request: Request, upload_id: uuid.UUID, body: ReadingIn, db: DbSession,
                   principal: Principal = Depends(require("uploads.write"))) -> UploadOut:
    """Read the file again with another sheet, header row or encoding, and/or confirm the
    reading profile (decimal, thousands, date_order); not while validating or once ready."""
    settings = _settings(request)
    upload = reading.change_reading(db, principal, settings, upload_id,
                                    body.model_dump(exclude_unset=True))
    return upload_out(upload, settings)


@router.get("/mapping-aliases", response_model=dict[str, list[str]])
def list_aliases(db: DbSession, principal: Principal = Depends(require("uploads.read"))
                 ) -> dict[str, list[str]]:
    """The tenant's own header aliases per input key (built-in HR synonyms come on top)."""
    return reading.list_aliases(db)


@router.put("/mapping-aliases/{input_key}", response_model=list[str])
def set_aliases(input_key: str, db: DbSession, aliases: list[str] = Body(...),
                principal: Principal = Depends(require("uploads.write"))) -> list[str]:
    """Replace the headers that feed `input_key` in mapping suggestions."""
    return reading.set_aliases(db, principal, input_key, aliases)


@router.get("/uploads/{upload_id}/mapping-suggestions", response_model=SuggestionsOut)
def mapping_suggestions(upload_id: uuid.UUID, db: DbSession,
                        principal: Principal = Depends(require("uploads.read")),
                        plan_id: uuid.UUID | None = None) -> dict[str, Any]:
    """Per plan input (or catalog input without `plan_id`): best column, confidence,
    source (exact, name, preset:<name>, history) and alternatives."""
    return service.mapping_suggestions(db, upload_id, plan_id)


@router.post("/uploads/{upload_id}/map", status_code=202, response_model=UploadOut)
def map_upload(request: Request, upload_id: uuid.UUID,
               mapping: dict[str, str] = Body(..., examples=[{
                   "employee_ref": "EMP_ID", "employee_score": "SCORE_2025"}]),
               principal: Principal = Depends(require("uploads.write")),
               plan_id: uuid.UUID | None = None,
               preset_name: str | None = Query(None, max_length=200)) -> UploadOut:
    """Save `{input_key: column}` (PRD §15.4), optionally as preset `preset_name`, and queue
    validation (a worker task); follow it on the events socket or GET
    /uploads/{id}/validation."""
    settings = _settings(request)
    with tenant_session(principal.tenant_id) as session:  # committed before it is queued
        upload = service.save_mapping(session, principal, settings, upload_id, mapping,
                                      plan_id, preset_name)
        out = upload_out(upload, settings)
    jobs.enqueue_validation(settings, principal, upload_id)
    return out


@router.post("/uploads/{upload_id}/rows", status_code=202, response_model=UploadOut,
             responses={409: {"description": "not ready, rows filled or being filled"}})
def retry_rows(request: Request, upload_id: uuid.UUID,
               principal: Principal = Depends(require("uploads.write"))) -> UploadOut:
    """Store a ready upload's `employee_rows` again after `rows.status` says `failed`."""
    settings = _settings(request)
    upload = rows.retry(settings, principal, upload_id)
    jobs.enqueue_fill(settings, principal.tenant_id, upload_id)
    return upload_out(upload, settings)


@router.get("/uploads/{upload_id}/validation", response_model=ValidationOut)
def validation(request: Request, upload_id: uuid.UUID, db: DbSession,
               principal: Principal = Depends(require("uploads.read")),
               limit: int = Query(500, ge=1, le=5000),
               cursor: str | None = Query(None, pattern=r"^\d{1,9}$")) -> dict[str, Any]:
    """Summary counts and one entry per problem (paged by `cursor`)."""
    return service.validation_report(db, _settings(request), upload_id, limit,
                                     int(cursor) if cursor else 0)


@router.get("/mapping-presets", response_model=list[PresetOut])
def list_presets(db: DbSession, principal: Principal = Depends(require("uploads.read")),
                 kind: str | None = Query(None, pattern="^(employees|funds)$")
                 ) -> list[PresetOut]:
    return [PresetOut.model_validate(p) for p in service.list_presets(db, kind)]


@router.patch("/mapping-presets/{preset_id}", response_model=PresetOut)
def rename_preset(preset_id: uuid.UUID, body: PresetRename, db: DbSession,
                  principal: Principal = Depends(require("uploads.write"))) -> PresetOut:
    return PresetOut.model_validate(service.rename_preset(db, principal, preset_id, body.name))


@router.delete("/mapping-presets/{preset_id}", status_code=204)
def delete_preset(preset_id: uuid.UUID, db: DbSession,
                  principal: Principal = Depends(require("uploads.write"))) -> Response:
    service.delete_preset(db, principal, preset_id)
    return Response(status_code=204)


async def _ws_principal(websocket: WebSocket) -> Principal | None:
    from server.modules.auth.service import resolve_token

    token = websocket.query_params.get("token")
    if not token:
        try:
            first = await asyncio.wait_for(websocket.receive_text(), WS_AUTH_SECONDS)
            token = str(json.loads(first).get("token", ""))
        except (TimeoutError, ValueError, AttributeError, WebSocketDisconnect):
            return None
    return await run_in_threadpool(resolve_token, token) if token else None


@router.websocket("/uploads/{upload_id}/events")
async def upload_events(websocket: WebSocket, upload_id: uuid.UUID) -> None:
    """Progress of one upload: bytes received, rows parsed/validated, then the final status.

    Authenticate with `?token=` or a first message `{"token": "..."}`. Closes with 4401
    (bad token), 4403 (role) or 4404 (not your upload), and 1000 after a final status.
    """
    await websocket.accept()
    principal = await _ws_principal(websocket)
    if principal is None:
        await websocket.close(code=4401, reason="missing or invalid token")
        return
    if not allowed(principal.role, "uploads.read"):
        await websocket.close(code=4403, reason="role lacks uploads.read")
        return
    try:
        upload = await run_in_threadpool(_load, principal, upload_id)
    except ProblemError:
        await websocket.close(code=4404, reason="upload not found")
        return
    settings: Settings = websocket.app.state.settings
    await websocket.send_json({"upload_id": str(upload_id),
                               "received_bytes": service.received_bytes(settings, upload),
                               **service.status_event(upload)})
    if service.status_event(upload)["final"]:
        await websocket.close(code=1000)
        return
    events = service.get_hub(settings.redis_url).subscribe(service.channel(upload_id))
    try:
        async for event in events:
            await websocket.send_json(event)
            if event.get("type") == "status" and event.get("final"):
                break
        await websocket.close(code=1000)
    except WebSocketDisconnect:
        pass
    finally:
        await events.aclose()  # type: ignore[attr-defined]
