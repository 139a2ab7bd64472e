"""Uploads service: storage, lifecycle, preview, mapping, presets, validation, events.

Lifecycle (`uploads.status`, with `metadata.phase`):
  received/uploading → received/uploaded (scanned, format detected)
                     → failed (empty, unreadable, infected: the file is deleted)
  received/uploaded --POST map--> processing → ready (zero errors: typed Parquet written)
                                             → failed/validated (report lists every problem;
                                               mapping again is allowed)
A ready upload can be run at once (runs read the Parquet). Its `employee_rows` are filled
afterwards from a spool of the validated rows (`metadata.rows.status`: queued → filling →
filled | failed; see `rows.py`); the upload's final event comes when that has settled.
Files live under `<data_dir>/uploads/<tenant>/<upload>.bin`; validation writes the typed
data as `<upload>.parquet`, then files it by content under `objects/<sha256>.parquet`
(read-only; `metadata.parquet.sha256`, `metadata.parquet.object`: what runs read and
snapshot hashes name), and the rows spool as `<upload>.rows.arrows` (Arrow IPC stream)
until the rows are filled. Files are evidence (see `evidence.py`): they are removed only
after the database change that releases them has committed, and an upload that any run
references cannot be deleted.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import delete, func, insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import flag_modified

from server.db.session import tenant_session
from server.errors import Conflict, NotFound, ProblemError, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.keys import service as keys
from server.modules.tenants import service as tenants
from server.modules.uploads import evidence, metrics, sealing, storage
from server.modules.uploads import mapping as suggestions_engine
from server.modules.uploads.batches import data_batches
from server.modules.uploads.detection import detect
from server.modules.uploads.evidence import FileMissing
from server.modules.uploads.models import MappingPreset, Upload, UploadProblem
from server.modules.uploads.parsing import FileFormat, FileRejected
from server.modules.uploads.scanning import scanner_from_settings
from server.modules.uploads.storage import file_path as file_path
from server.modules.uploads.storage import object_path as object_path
from server.modules.uploads.storage import original_path as original_path
from server.modules.uploads.storage import parquet_path as parquet_path
from server.modules.uploads.storage import read_typed_bytes as read_typed_bytes
from server.modules.uploads.storage import rows_spool_path as rows_spool_path
from server.modules.uploads.storage import typed_data_path as typed_data_path
from server.modules.uploads.storage import upload_dir as upload_dir
from server.modules.uploads.targets import Target, mapping_targets
from server.modules.uploads.validation import Normaliser, Report, mapped_columns
from server.principal import Principal
from server.progress import get_hub
from server.settings import Settings

log = structlog.get_logger(__name__)
KINDS = ("employees", "funds")
PREVIEW_ROWS = 100
HISTORY_UPLOADS = 50
# A `processing` upload untouched this long lost its worker (a restart): it may be deleted.
STALE_AFTER = timedelta(hours=1)


def channel(upload_id: uuid.UUID) -> str:
    return f"upload:{upload_id}"


def publish(settings: Settings, upload_id: uuid.UUID, **event: Any) -> None:
    """Progress event on the upload's channel; never lets a hub failure break the work."""
    try:
        get_hub(settings.redis_url).publish(channel(upload_id),
                                            {"upload_id": str(upload_id), **event})
    except Exception:  # progress is best effort; the upload's status is the truth
        log.warning("progress_publish_failed", upload_id=str(upload_id), exc_info=True)


ROWS_PENDING = ("queued", "filling")


def rows_status(upload: Upload) -> str | None:
    """`employee_rows` of a ready upload: queued, filling, filled or failed."""
    return (upload.metadata_.get("rows") or {}).get("status")


def status_event(upload: Upload) -> dict[str, Any]:
    """Final once nothing more will happen by itself: failed, or ready with its rows
    filled or failed."""
    settled = upload.status == "failed" or (
        upload.status == "ready" and rows_status(upload) not in ROWS_PENDING)
    return {"type": "status", "status": upload.status, "phase": upload.metadata_.get("phase"),
            "error": upload.error, "rows": upload.metadata_.get("rows"),
            "final": settled and upload.metadata_.get("phase") != "uploading"}


def size_limit(session: Session, settings: Settings, tenant_id: uuid.UUID) -> int:
    """The tenant's own limit (`tenants.metadata.upload_limit_bytes`) or the default."""
    tenant = tenants.get_tenant(session, tenant_id)
    value = (tenant.metadata_ or {}).get("upload_limit_bytes")
    return int(value) if isinstance(value, int) and value > 0 else settings.max_upload_bytes


def check_size(session: Session, settings: Settings, tenant_id: uuid.UUID, size: int) -> None:
    limit = size_limit(session, settings, tenant_id)
    if size > limit:
        raise ProblemError(413, "Content Too Large",
                           f"the file is {size} bytes; this tenant's limit is {limit} bytes",
                           [{"loc": ["header", "Upload-Length"], "msg": "over the size limit"}],
                           headers={"Tus-Resumable": "1.0.0", "Tus-Max-Size": str(limit)})


def clean_filename(name: str | None) -> str:
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    base = "".join(ch for ch in base if ch.isprintable())[:255]
    return base or "upload.csv"


def check_kind(kind: str | None, loc: list[str]) -> str:
    kind = kind or "employees"
    if kind not in KINDS:
        raise UnprocessableEntity([{"loc": loc, "msg": f"kind must be one of {', '.join(KINDS)}",
                                    "type": "value_error"}])
    return kind


def get_upload(session: Session, upload_id: uuid.UUID, *, lock: bool = False) -> Upload:
    query = select(Upload).where(Upload.id == upload_id)
    upload = session.scalar(query.with_for_update() if lock else query)
    if upload is None:
        raise NotFound("upload")
    return upload


def received_bytes(settings: Settings, upload: Upload) -> int:
    path = file_path(settings, upload.tenant_id, upload.id)
    return path.stat().st_size if path.exists() else 0


def create_upload(session: Session, principal: Principal, settings: Settings, *, filename: str,
                  kind: str, length: int, sheet: str | None, protocol: str,
                  idempotency_key: str | None) -> tuple[Upload, bool]:
    """A new upload with an empty file; (upload, created) — an Idempotency-Key repeat
    returns the first upload instead of making another."""
    if idempotency_key:
        existing = session.scalar(select(Upload).where(
            Upload.created_by == principal.user_id,
            Upload.metadata_["idempotency_key"].astext == idempotency_key))
        if existing is not None:
            return existing, False
    if length == 0:
        raise UnprocessableEntity([{"loc": ["header", "Upload-Length"],
                                    "msg": "the file is empty", "type": "value_error"}])
    check_size(session, settings, principal.tenant_id, length)
    upload = Upload(
        id=uuid.uuid4(), tenant_id=principal.tenant_id, created_by=principal.user_id,
        filename=clean_filename(filename), kind=kind, status="received", file_size=length,
        metadata_={"phase": "uploading", "protocol": protocol, "sheet": sheet,
                   "idempotency_key": idempotency_key},
    )
    session.add(upload)
    session.flush()
    file_path(settings, principal.tenant_id, upload.id).touch()
    record_event(session, principal_or_actor_id=principal, action="upload.create",
                 entity="upload", entity_id=upload.id,
                 after={"filename": upload.filename, "kind": kind, "size": length,
                        "protocol": protocol})
    return upload, True


def _fail(session: Session, upload: Upload, error: str, phase: str) -> None:
    upload.status, upload.error = "failed", error
    upload.metadata_ = {**upload.metadata_, "phase": phase}


def complete_upload(settings: Settings, principal: Principal, upload_id: uuid.UUID,
                    sha256: str, sha256_seconds: float = 0.0) -> Upload:
    """All bytes are in: scan, then detect the format. A refused file is deleted, the upload
    ends `failed`, and the request gets 422 naming the reason."""
    path = file_path(settings, principal.tenant_id, upload_id)
    with tenant_session(principal.tenant_id) as session:
        upload = get_upload(session, upload_id)
        sheet, kind = upload.metadata_.get("sheet"), upload.kind
    publish(settings, upload_id, type="progress", stage="scanning")
    started = time.perf_counter()
    result = scanner_from_settings(settings.clamd_socket, settings.clamd_timeout_seconds
                                   ).scan(path)
    scanned = time.perf_counter()
    refusal: str | None = None
    fmt: FileFormat | None = None
    if result.verdict == "infected":
        refusal = f"the file is infected ({result.signature}); it was deleted"
    elif result.verdict == "error":
        refusal = f"the file could not be virus-scanned ({result.detail}); it was deleted"
    else:
        try:
            with tenant_session(principal.tenant_id) as session:
                fmt = detect(session, path, kind, sheet)
        except FileRejected as rejected:
            refusal = str(rejected)
    timings = {"sha256": round(sha256_seconds, 2), "scan": round(scanned - started, 2),
               "sniff": round(time.perf_counter() - scanned, 2)}
    with tenant_session(principal.tenant_id) as session:
        upload = get_upload(session, upload_id, lock=True)
        upload.sha256 = sha256
        upload.metadata_ = {**upload.metadata_, "scan": result.as_json(), "timings": timings}
        if refusal is not None:
            evidence.remove_after_commit(session, [path])
            _fail(session, upload, refusal, "rejected")
            action = "upload.infected" if result.verdict == "infected" else "upload.rejected"
            record_event(session, principal_or_actor_id=principal, action=action,
                         entity="upload", entity_id=upload.id,
                         after={"error": refusal, "scan": result.as_json(), "sha256": sha256})
        else:
            assert fmt is not None
            evidence.make_read_only(path)  # complete: the bytes as received, never rewritten
            upload.metadata_ = {**upload.metadata_, "phase": "uploaded"}
            store_format(upload, fmt, keys.cipher(session, settings))
            record_event(session, principal_or_actor_id=principal, action="upload.complete",
                         entity="upload", entity_id=upload.id,
                         after={"sha256": sha256, "size": upload.file_size,
                                "scan": result.verdict, "columns": fmt.columns})
        session.flush()
        session.refresh(upload)
    publish(settings, upload_id, **status_event(upload))
    if refusal is not None:
        raise ProblemError(422, "Upload refused", refusal,
                           [{"loc": ["file"], "msg": refusal}],
                           headers={"Tus-Resumable": "1.0.0",
                                    "Upload-Offset": str(upload.file_size)})
    return upload


def _check_idle(upload: Upload) -> None:
    """409 while validation or the rows fill works on the upload (unless it went stale:
    a worker lost to a restart)."""
    if upload.updated_at <= datetime.now(UTC) - STALE_AFTER:
        return
    if upload.status == "processing":
        raise Conflict("the upload is being validated; delete it when that has finished")
    if upload.status == "ready" and rows_status(upload) in ROWS_PENDING:
        raise Conflict("the upload's rows are being stored; delete it when that has finished")


def delete_upload(session: Session, principal: Principal, settings: Settings,
                  upload_id: uuid.UUID) -> None:
    """Delete the row (409 while a run references the upload: nothing is touched), then,
    once that has committed, its files."""
    _check_idle(get_upload(session, upload_id))  # before locking: the fill holds a lock
    upload = get_upload(session, upload_id, lock=True)
    _check_idle(upload)
    before = {"filename": upload.filename, "status": upload.status, "sha256": upload.sha256}
    paths = storage.stored_paths(settings, upload)
    release = storage.release_object(settings, upload)
    try:
        with session.begin_nested():
            session.delete(upload)
            session.flush()
    except IntegrityError as error:
        if getattr(error.orig, "sqlstate", None) != "23503":
            raise
        raise Conflict(
            f"upload {upload_id} ('{before['filename']}') is an input of a run: a run's "
            "inputs are kept as evidence, so it cannot be deleted; nothing was removed",
            [{"loc": ["path", "upload_id"], "msg": "referenced by a run",
              "type": "referenced"}]) from None
    record_event(session, principal_or_actor_id=principal, action="upload.delete",
                 entity="upload", entity_id=upload_id, before=before)
    evidence.remove_after_commit(session, paths)
    if release is not None:
        evidence.after_commit(session, release)


def list_uploads(session: Session, limit: int, before: Any | None) -> list[Upload]:
    query = select(Upload).order_by(Upload.created_at.desc(), Upload.id.desc()).limit(limit + 1)
    if before is not None:
        query = query.where(Upload.created_at < before)
    return list(session.scalars(query))


def stored_format(upload: Upload) -> FileFormat:
    """How the upload's file is read; 409 while uploading or after a refusal."""
    if upload.metadata_.get("phase") in (None, "uploading") or "format" not in upload.metadata_:
        detail = ("the upload is not complete yet" if upload.metadata_.get("phase") == "uploading"
                  else f"the file was refused: {upload.error}")
        raise Conflict(detail)
    return FileFormat.from_json(upload.metadata_["format"])


_format = stored_format


def store_format(upload: Upload, fmt: FileFormat, cipher: keys.TenantCipher) -> None:
    """The format in `metadata.format`, its first data rows in `metadata.sample` (the
    preview answers from them without reading the file again), sealed (`sealing`)."""
    upload.metadata_ = {**upload.metadata_, "format": sealing.sealed_format(fmt.as_json(), cipher),
                        "sample": sealing.sealed_sample(fmt.sample, cipher)}


def _memory(session: Session, kind: str) -> dict[str, list[suggestions_engine.Remembered]]:
    memory: dict[str, list[suggestions_engine.Remembered]] = defaultdict(list)
    for preset in session.scalars(select(MappingPreset).where(MappingPreset.kind == kind)):
        for key, column in preset.mapping.items():
            memory[suggestions_engine.remembered_key(column)].append(
                suggestions_engine.Remembered(key, f"preset:{preset.name}", 1.0))
    past = session.scalars(select(Upload.mapping).where(
        Upload.kind == kind, Upload.mapping.is_not(None)
    ).order_by(Upload.updated_at.desc()).limit(HISTORY_UPLOADS))
    for mapping in past:
        for key, column in (mapping or {}).items():
            memory[suggestions_engine.remembered_key(column)].append(
                suggestions_engine.Remembered(key, "history", 0.99))
    return memory


def mapping_suggestions(session: Session, upload_id: uuid.UUID, plan_id: uuid.UUID | None
                        ) -> dict[str, Any]:
    upload = get_upload(session, upload_id)
    fmt = _format(upload)
    targets = mapping_targets(session, upload.kind, plan_id)
    found = suggestions_engine.suggest(targets, fmt.columns, _memory(session, upload.kind))
    by_key = {t.key: t for t in targets}
    mapped = {s.column for s in found if s.column}
    return {
        "upload_id": upload.id, "plan_id": plan_id, "columns": fmt.columns,
        "suggestions": [{**by_key[s.key].as_json(), "column": s.column,
                         "confidence": s.confidence, "source": s.source,
                         "alternatives": [{"column": a.column, "confidence": a.confidence,
                                           "source": a.source} for a in s.alternatives]}
                        for s in found],
        "unmapped_columns": [c for c in fmt.columns if c not in mapped],
    }


def _check_mapping(mapping: dict[str, str], targets: list[Target], fmt: FileFormat,
                   kind: str) -> None:
    known = {t.key: t for t in targets}
    errors = []
    for key, column in mapping.items():
        if key not in known:
            errors.append({"loc": ["body", key], "msg": f"'{key}' is not an input of this "
                           f"{'plan' if targets else 'catalog'} for {kind} files",
                           "type": "value_error"})
        elif column not in fmt.columns:
            errors.append({"loc": ["body", key], "msg": f"the file has no column '{column}'",
                           "type": "value_error"})
    for target in targets:
        if target.required and target.default is None and target.key not in mapping:
            errors.append({"loc": ["body", target.key],
                           "msg": f"'{target.key}' ({target.label}) is required and not mapped",
                           "type": "missing"})
    if errors:
        raise UnprocessableEntity(errors)


def save_mapping(session: Session, principal: Principal, settings: Settings,
                 upload_id: uuid.UUID, mapping: dict[str, str], plan_id: uuid.UUID | None,
                 preset_name: str | None) -> Upload:
    """Store the mapping (and preset), then mark the upload `processing`."""
    upload = get_upload(session, upload_id, lock=True)
    fmt = _format(upload)
    if upload.status == "processing":
        raise Conflict("the upload is already being validated")
    if upload.status == "ready":
        raise Conflict("the upload is ready and immutable; upload the file again to remap it")
    original_path(settings, upload)
    targets = mapping_targets(session, upload.kind, plan_id)
    _check_mapping(mapping, targets, fmt, upload.kind)
    before = upload.mapping
    upload.mapping, upload.plan_id, upload.status, upload.error = mapping, plan_id, \
        "processing", None
    upload.metadata_ = {**upload.metadata_, "phase": "validating", "validation": {
        "user_id": str(principal.user_id), "role": str(principal.role), "attempts": 0}}
    record_event(session, principal_or_actor_id=principal, action="upload.map",
                 entity="upload", entity_id=upload.id, before={"mapping": before},
                 after={"mapping": mapping, "plan_id": plan_id, "preset": preset_name})
    if preset_name:
        save_preset(session, principal, preset_name, upload.kind, mapping, fmt.columns,
                    fmt.profile)
    return upload


def save_preset(session: Session, principal: Principal, name: str, kind: str,
                mapping: dict[str, str], headers: list[str],
                profile: dict[str, Any] | None = None) -> MappingPreset:
    name = name.strip()
    if not name or len(name) > 200:
        raise UnprocessableEntity([{"loc": ["query", "preset_name"],
                                    "msg": "a preset name has 1 to 200 characters",
                                    "type": "value_error"}])
    preset = session.scalar(select(MappingPreset).where(MappingPreset.name == name))
    if preset is None:
        preset = MappingPreset(id=uuid.uuid4(), tenant_id=principal.tenant_id, name=name,
                               kind=kind, mapping=mapping, headers=headers,
                               profile=profile or {}, created_by=principal.user_id)
        session.add(preset)
        session.flush()
        action, before = "preset.create", None
    else:
        before = {"mapping": preset.mapping, "kind": preset.kind}
        preset.mapping, preset.kind, preset.headers = mapping, kind, headers
        preset.profile = profile or {}
        action = "preset.update"
    record_event(session, principal_or_actor_id=principal, action=action,
                 entity="mapping_preset", entity_id=preset.id, before=before,
                 after={"name": name, "kind": kind, "mapping": mapping})
    return preset


def list_presets(session: Session, kind: str | None) -> list[MappingPreset]:
    query = select(MappingPreset).order_by(MappingPreset.name)
    if kind:
        query = query.where(MappingPreset.kind == kind)
    return list(session.scalars(query))


def _preset(session: Session, preset_id: uuid.UUID) -> MappingPreset:
    preset = session.scalar(select(MappingPreset).where(MappingPreset.id == preset_id)
                            .with_for_update())
    if preset is None:
        raise NotFound("mapping_preset")
    return preset


def rename_preset(session: Session, principal: Principal, preset_id: uuid.UUID,
                  name: str) -> MappingPreset:
    preset = _preset(session, preset_id)
    name = name.strip()
    taken = session.scalar(select(func.count()).select_from(MappingPreset).where(
        MappingPreset.name == name, MappingPreset.id != preset_id))
    if taken:
        raise Conflict(f"a preset named '{name}' already exists")
    before = preset.name
    preset.name = name
    record_event(session, principal_or_actor_id=principal, action="preset.rename",
                 entity="mapping_preset", entity_id=preset.id, before={"name": before},
                 after={"name": name})
    return preset


def delete_preset(session: Session, principal: Principal, preset_id: uuid.UUID) -> None:
    preset = _preset(session, preset_id)
    record_event(session, principal_or_actor_id=principal, action="preset.delete",
                 entity="mapping_preset", entity_id=preset.id,
                 before={"name": preset.name, "mapping": preset.mapping})
    session.delete(preset)


def process_upload(settings: Settings, principal: Principal, upload_id: uuid.UUID) -> None:
    """Validate the mapped file; with zero errors write the typed Parquet (`ready`) and the
    rows spool (`metadata.rows.status` queued: `rows.fill_rows` loads employee_rows).

    Any unexpected failure leaves the upload `failed` with a message rather than
    `processing`."""
    tenant_id = principal.tenant_id
    try:
        _validate_and_store(settings, principal, upload_id)
    except Exception as error:
        reason = (error.detail if isinstance(error, FileMissing) and error.detail
                  else "internal error while validating; try again")
        if not isinstance(error, FileMissing):
            log.exception("upload_processing_failed", upload_id=str(upload_id))
        with tenant_session(tenant_id) as session:
            upload = get_upload(session, upload_id, lock=True)
            _fail(session, upload, reason, "validated")
            evidence.remove_after_commit(session, [rows_spool_path(settings, tenant_id,
                                                                   upload_id)])
    with tenant_session(tenant_id) as session:
        publish(settings, upload_id, **status_event(get_upload(session, upload_id)))


def _validate_and_store(settings: Settings, principal: Principal, upload_id: uuid.UUID
                        ) -> None:
    def progress(stage: str, rows: int) -> None:
        publish(settings, upload_id, type="progress", stage=stage, rows=rows)

    started = time.perf_counter()
    with tenant_session(principal.tenant_id) as session:
        upload = get_upload(session, upload_id, lock=True)
        fmt = FileFormat.from_json(upload.metadata_["format"])
        targets = mapping_targets(session, upload.kind, upload.plan_id)
        columns = mapped_columns(fmt, dict(upload.mapping or {}), targets)
        report = Report()
        source = original_path(settings, upload)
        batches = data_batches(source, fmt, columns, report, progress)
        session.execute(delete(UploadProblem).where(UploadProblem.upload_id == upload.id))
        normaliser = Normaliser(columns, upload.kind,
                                parquet_path(settings, upload.tenant_id, upload.id),
                                rows_spool_path(settings, upload.tenant_id, upload.id),
                                report, progress, lambda: data_batches(
                                    source, fmt, columns, Report(), lambda *_: None),
                                cipher := keys.cipher(session, settings))
        normaliser.run(batches)
        timings = {**upload.metadata_.get("timings", {}),
                   **{k: round(v, 2) for k, v in normaliser.timings.items()},
                   "validation": round(time.perf_counter() - started, 2)}
        if report.rows == 0:
            report.add_file_problem("the file has no data rows", "Add rows below the header")
        metrics.observe_validation(report.ok, report.rows, report.errors)
        sensitive = sealing.sensitive_keys(session)
        summary = sealing.sealed_summary(report.summary(), cipher, sensitive)
        if report.ok:
            storage.file_typed_data(session, settings, upload, report.parquet_sha256)
            upload.status = "ready"
            upload.metadata_ = {**upload.metadata_, "phase": "validated",
                                "summary": summary, "timings": timings,
                                "rows": {"status": "queued", "expected": report.rows},
                                "parquet": {"sha256": report.parquet_sha256,
                                            "bytes": report.parquet_bytes, "object": True}}
        else:
            evidence.remove_after_commit(
                session, [rows_spool_path(settings, upload.tenant_id, upload.id)])
            report.sort(fmt.columns)
            _store_problems(session, upload, report, cipher, sensitive)
            _fail(session, upload, f"validation found {report.errors} problem(s)", "validated")
            upload.metadata_ = {**upload.metadata_, "summary": summary,
                                "timings": timings}
        flag_modified(upload, "metadata_")
        record_event(session, principal_or_actor_id=principal, action="upload.validate",
                     entity="upload", entity_id=upload.id,
                     after={"status": upload.status, "summary": summary,
                            "parquet_sha256": report.parquet_sha256})


def _store_problems(session: Session, upload: Upload, report: Report,
                    cipher: keys.TenantCipher, sensitive: set[str]) -> None:
    """The listed problems; a sensitive input's cell value sealed (`sealing`)."""
    rows = [{"upload_id": upload.id, "tenant_id": upload.tenant_id, "seq": seq,
             "file_row": p.row, "column_name": p.column, "input_key": p.input_key,
             "value": sealing.problem_value(_storable(p.value), p.input_key, cipher,
                                            sensitive), "rule": p.rule, "message": p.message,
             "hint": p.hint}
            for seq, p in enumerate(report.problems, start=1)]
    if rows:
        session.execute(insert(UploadProblem), rows)


def _storable(value: str | None) -> str | None:
    """PostgreSQL text cannot hold NUL: the report shows it as the four characters \\x00."""
    return value.replace("\x00", "\\x00") if value else value


def validation_report(session: Session, settings: Settings, upload_id: uuid.UUID,
                      limit: int, after: int) -> dict[str, Any]:
    upload = get_upload(session, upload_id)
    if upload.mapping is None:
        raise Conflict("the upload has no mapping yet: POST /uploads/{id}/map first")
    problems = list(session.scalars(
        select(UploadProblem).where(UploadProblem.upload_id == upload.id,
                                    UploadProblem.seq > after)
        .order_by(UploadProblem.seq).limit(limit + 1)))
    more = len(problems) > limit
    problems = problems[:limit]
    cipher = (keys.cipher(session, settings) if any(keys.is_sealed(p.value) for p in problems)
              else None)

    def opened(value: str | None) -> str | None:
        return cipher.open(keys.PROBLEM_VALUE, value) if cipher and keys.is_sealed(value) \
            else value

    return {
        "upload_id": upload.id, "status": upload.status, "mapping": upload.mapping,
        "summary": sealing.readable_summary(upload, settings),
        "problems": [{"row": p.file_row, "column": p.column_name, "input_key": p.input_key,
                      "value": opened(p.value),
                      "rule": p.rule, "message": p.message,
             "hint": p.hint}
                     for p in problems],
        "next_cursor": str(problems[-1].seq) if more and problems else None,
    }
