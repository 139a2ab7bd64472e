"""Append-only audit log with a per-tenant hash chain.

Each event's signature is SHA-256 over the previous event's signature and the canonical JSON
of the event itself, so changing, removing or reordering any event breaks every signature
after it and `verify_chain` names the first broken one. Appends for a tenant are serialised
with a transaction-scoped advisory lock, so concurrent writers never fork the chain.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from server.db.session import tenant_session
from server.modules.audit.models import AuditEvent
from server.pagination import decode_cursor, encode_cursor
from server.principal import Principal

REFUSED_SUFFIX = ".refused"
REFUSAL_LOCK_TIMEOUT = "10s"


def to_jsonable(value: Any) -> Any:
    """Plain JSON values that survive a jsonb round trip unchanged (no floats, no Decimals)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Enum):
        return to_jsonable(value.value)
    if isinstance(value, Decimal | float | uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [to_jsonable(v) for v in value]
    raise TypeError(f"cannot put {type(value).__name__} in an audit event")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _canonical_time(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="microseconds")


def event_signature(event: AuditEvent) -> str:
    """SHA-256 over the previous signature and the canonical form of `event`."""
    payload = {
        "tenant_id": str(event.tenant_id),
        "actor_user_id": str(event.actor_user_id) if event.actor_user_id else None,
        "action": event.action,
        "entity": event.entity,
        "entity_id": str(event.entity_id),
        "before": event.before,
        "after": event.after,
        "at": _canonical_time(event.at),
        "request_id": event.request_id,
        "prev_signature": event.prev_signature,
    }
    material = (event.prev_signature or "") + canonical_json(payload)
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def _lock_chain(session: Session, tenant_id: uuid.UUID) -> None:
    session.execute(
        text("select pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"audit:{tenant_id}"},
    )


def record_event(
    session: Session,
    *,
    principal_or_actor_id: Principal | uuid.UUID | None,
    action: str,
    entity: str,
    entity_id: uuid.UUID,
    before: Any = None,
    after: Any = None,
) -> AuditEvent:
    """Append one event in the caller's transaction (it is lost if the caller rolls back)."""
    tenant_id = session.info["tenant_id"]
    if isinstance(principal_or_actor_id, Principal):
        actor_id: uuid.UUID | None = principal_or_actor_id.user_id
    else:
        actor_id = principal_or_actor_id
    _lock_chain(session, tenant_id)
    previous = session.scalar(select(AuditEvent.signature).order_by(AuditEvent.id.desc()).limit(1))
    event = AuditEvent(
        tenant_id=tenant_id,
        actor_user_id=actor_id,
        action=action,
        entity=entity,
        entity_id=uuid.UUID(str(entity_id)),
        before=to_jsonable(before),
        after=to_jsonable(after),
        at=datetime.now(UTC),
        request_id=structlog.contextvars.get_contextvars().get("request_id"),
        prev_signature=previous,
    )
    event.signature = event_signature(event)
    session.add(event)
    session.flush()
    return event


def record_refusal(
    tenant_id: uuid.UUID,
    actor_id: uuid.UUID | None,
    action: str,
    entity: str,
    entity_id: uuid.UUID,
    detail: str,
) -> AuditEvent:
    """Audit a refused mutation in its OWN committed transaction (the request will fail).

    The action is stored as `<action>.refused` with `after = {"refused": detail}`. Call it
    before the request's own session has appended audit events (it waits on the chain lock).
    """
    name = action if action.endswith(REFUSED_SUFFIX) else action + REFUSED_SUFFIX
    with tenant_session(tenant_id) as session:
        # A caller that already appended in its own open transaction holds the chain lock:
        # fail after a bounded wait rather than deadlock with ourselves.
        session.execute(
            text("select set_config('lock_timeout', :t, true)"), {"t": REFUSAL_LOCK_TIMEOUT}
        )
        return record_event(
            session,
            principal_or_actor_id=actor_id,
            action=name,
            entity=entity,
            entity_id=entity_id,
            after={"refused": detail},
        )


@dataclass(frozen=True)
class ChainReport:
    ok: bool
    checked: int
    broken_event_id: int | None = None
    reason: str | None = None


def check_chain(events: Iterable[AuditEvent]) -> ChainReport:
    """Walk events in id order; report the first whose link or signature does not hold."""
    previous: str | None = None
    checked = 0
    for event in events:
        if event.prev_signature != previous:
            return ChainReport(False, checked, event.id, "prev_signature does not link")
        if event.signature != event_signature(event):
            return ChainReport(False, checked, event.id, "signature does not match the event")
        previous = event.signature
        checked += 1
    return ChainReport(True, checked)


def verify_chain(session: Session) -> ChainReport:
    """Recompute the session tenant's whole chain, streaming the events in id order."""
    query = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000)
    return check_chain(session.scalars(query))


@dataclass(frozen=True)
class AuditFilter:
    since: datetime | None = None
    until: datetime | None = None
    actor: uuid.UUID | None = None
    entity: str | None = None
    entity_id: uuid.UUID | None = None


def list_events(
    session: Session, filters: AuditFilter, limit: int, cursor: str | None
) -> tuple[list[AuditEvent], str | None]:
    """Newest first; `cursor` continues after the last event of the previous page."""
    query = select(AuditEvent).order_by(AuditEvent.id.desc()).limit(limit + 1)
    if cursor:
        query = query.where(AuditEvent.id < decode_cursor(cursor, int)[0])
    if filters.since:
        query = query.where(AuditEvent.at >= filters.since)
    if filters.until:
        query = query.where(AuditEvent.at < filters.until)
    if filters.actor:
        query = query.where(AuditEvent.actor_user_id == filters.actor)
    if filters.entity:
        query = query.where(AuditEvent.entity == filters.entity)
    if filters.entity_id:
        query = query.where(AuditEvent.entity_id == filters.entity_id)
    rows = list(session.scalars(query))
    next_cursor = encode_cursor(rows[limit - 1].id) if len(rows) > limit else None
    return rows[:limit], next_cursor
