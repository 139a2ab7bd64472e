"""Routes: GET /audit (filtered, cursor-paginated) and GET /audit/verify."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import datetime

from fastapi import APIRouter, Depends, Query, Response

from server.jsonresponse import model_response
from server.modules.audit import service
from server.modules.audit.schemas import AuditEventOut, AuditPage, ChainVerification
from server.modules.auth.dependencies import DbSession, Principal, require

router = APIRouter(tags=["audit"])


@router.get("/audit", response_model=AuditPage)
def list_audit_events(
    db: DbSession,
    principal: Principal = Depends(require("audit.read")),
    since: datetime | None = Query(None, description="events at or after this time"),
    until: datetime | None = Query(None, description="events strictly before this time"),
    actor: uuid.UUID | None = Query(None, description="actor user id"),
    entity: str | None = Query(None, max_length=64),
    entity_id: uuid.UUID | None = None,
    limit: int = Query(50, ge=1, le=500),
    cursor: str | None = Query(None, max_length=200),
) -> Response:
    """Newest first. Pass `next_cursor` back as `cursor` for the next page."""
    filters = service.AuditFilter(since, until, actor, entity, entity_id)
    events, next_cursor = service.list_events(db, filters, limit, cursor)
    return model_response(AuditPage(
        items=[AuditEventOut.model_validate(e) for e in events], next_cursor=next_cursor
    ))


@router.get("/audit/verify", response_model=ChainVerification)
def verify_audit_chain(
    db: DbSession, principal: Principal = Depends(require("audit.read"))
) -> ChainVerification:
    """Recompute the tenant's hash chain, each event's MAC and the signed checkpoints;
    `broken_event_id` / `broken_checkpoint` name the first that fails."""
    report = service.verify_chain(db)
    return ChainVerification(**dataclasses.asdict(report))
