"""Append-only audit log with a per-tenant hash chain, keyed and anchored.

Each event's signature is SHA-256 over the previous event's signature and the canonical JSON
of the event itself, so changing, removing or reordering any event breaks every signature
after it. A hash alone can be recomputed by anyone who can write rows, so each event also
carries `mac`: HMAC-SHA256 of (tenant, seq, signature) under a key only the server holds
(`keys.py`; the database roles never see it). A forged append (app role) or a rewrite with
re-hashing (owner role) fails at its first event's MAC. Removing the newest events leaves a
consistent shorter chain, so every `audit_checkpoint_every` events (and on demand) a signed
checkpoint records the chain's length and head; `verify_chain` checks the checkpoints too and
names the first bad event or checkpoint. Appends for a tenant are serialised with a
transaction-scoped advisory lock, so concurrent writers never fork the chain.
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
from server.modules.audit import keys
from server.modules.audit.models import AuditCheckpoint, AuditEvent
from server.pagination import decode_cursor, encode_cursor
from server.principal import Principal
from server.settings import Settings, get_settings

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


@dataclass
class _KeyState:
    keyring: keys.Keyring | None = None
    checkpoint_every: int = 100


_key_state = _KeyState()


def configure_audit_keys(settings: Settings, keyring: keys.Keyring | None = None) -> None:
    """Use `keyring` (default: from `settings`) for new MACs and verification."""
    _key_state.keyring = keyring or keys.keyring_from_settings(settings)
    _key_state.checkpoint_every = max(1, settings.audit_checkpoint_every)


def keyring() -> keys.Keyring:
    """The configured keyring (worker processes: from the environment on first use)."""
    if _key_state.keyring is None:
        configure_audit_keys(get_settings())
    assert _key_state.keyring is not None
    return _key_state.keyring


def event_material(tenant_id: uuid.UUID, seq: int, signature: str) -> str:
    return f"event|{tenant_id}|{seq}|{signature}"


def _checkpoint_material(row: AuditCheckpoint) -> str:
    return "checkpoint|" + canonical_json({
        "tenant_id": str(row.tenant_id), "seq": row.seq, "event_count": row.event_count,
        "last_event_id": row.last_event_id, "head_signature": row.head_signature,
        "at": _canonical_time(row.at), "prev_mac": row.prev_mac})


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
    head = session.execute(select(AuditEvent.signature, AuditEvent.seq)
                           .order_by(AuditEvent.id.desc()).limit(1)).first()
    previous, seq = (head.signature, head.seq + 1) if head else (None, 1)
    ring = keyring()
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
        seq=seq,
        key_id=ring.active_key_id,
    )
    event.signature = event_signature(event)
    event.mac = keys.mac(ring, ring.active_key_id, event_material(tenant_id, seq,
                                                                   event.signature))
    session.add(event)
    session.flush()
    if seq % _key_state.checkpoint_every == 0:
        _append_checkpoint(session, tenant_id, seq, event.id, event.signature)
    return event


def _append_checkpoint(session: Session, tenant_id: uuid.UUID, count: int,
                       last_id: int | None, head: str | None) -> AuditCheckpoint:
    """Anchor (count, last event, head signature) in a signed checkpoint (chain lock held)."""
    previous = session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq.desc())
                               .limit(1)).first()
    ring = keyring()
    row = AuditCheckpoint(tenant_id=tenant_id, seq=previous.seq + 1 if previous else 1,
                          event_count=count, last_event_id=last_id, head_signature=head,
                          at=datetime.now(UTC), key_id=ring.active_key_id,
                          prev_mac=previous.mac if previous else None)
    row.mac = keys.mac(ring, ring.active_key_id, _checkpoint_material(row))
    session.add(row)
    session.flush()
    return row


def write_checkpoint(session: Session) -> AuditCheckpoint:
    """Anchor the session tenant's current chain head now (CLI, tests, after verify)."""
    tenant_id = session.info["tenant_id"]
    _lock_chain(session, tenant_id)
    head = session.execute(select(AuditEvent.id, AuditEvent.signature, AuditEvent.seq)
                           .order_by(AuditEvent.id.desc()).limit(1)).first()
    if head is None:
        return _append_checkpoint(session, tenant_id, 0, None, None)
    return _append_checkpoint(session, tenant_id, head.seq, head.id, head.signature)


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
    broken_checkpoint: int | None = None
    checkpoints: int = 0
    legacy_unkeyed: int = 0


def _event_problem(event: AuditEvent, previous: str | None, position: int, keyed: bool,
                   ring: keys.Keyring) -> str | None:
    """Why `event` (the `position`-th of its chain) does not hold, or None."""
    if event.prev_signature != previous:
        return "prev_signature does not link"
    if event.signature != event_signature(event):
        return "signature does not match the event"
    if event.seq != position:
        return f"sequence number {event.seq} where {position} was expected"
    if event.mac is None:
        return "event carries no MAC after keyed events (forged append?)" if keyed else None
    try:
        good = keys.mac_matches(ring, event.key_id or "",
                                event_material(event.tenant_id, event.seq, event.signature),
                                event.mac)
    except keys.UnknownAuditKey:
        return f"MAC key '{event.key_id}' is unknown to this server"
    return None if good else "MAC does not match (written without the audit key)"


def _checkpoint_problem(row: AuditCheckpoint, previous: AuditCheckpoint | None,
                        ring: keys.Keyring) -> str | None:
    if row.seq != (previous.seq + 1 if previous else 1):
        return "checkpoint sequence has a gap"
    if row.prev_mac != (previous.mac if previous else None):
        return "checkpoint does not link to the previous one"
    try:
        good = keys.mac_matches(ring, row.key_id, _checkpoint_material(row), row.mac)
    except keys.UnknownAuditKey:
        return f"checkpoint MAC key '{row.key_id}' is unknown to this server"
    return None if good else "checkpoint MAC does not match"


def check_chain(events: Iterable[AuditEvent], checkpoints: Iterable[AuditCheckpoint] = (),
                ring: keys.Keyring | None = None) -> ChainReport:
    """Walk events in id order and checkpoints in sequence order; report the first event
    whose link, signature, position or MAC does not hold, else the first checkpoint that
    is unsigned or that the chain does not reach (events removed from the tail)."""
    ring = ring or keyring()
    anchors: dict[int, AuditCheckpoint] = {}
    previous_checkpoint = None
    for row in checkpoints:
        problem = _checkpoint_problem(row, previous_checkpoint, ring)
        if problem:
            return ChainReport(False, 0, None, problem, broken_checkpoint=row.seq)
        anchors.setdefault(row.event_count, row)
        previous_checkpoint = row
    previous: str | None = None
    checked = legacy = 0
    keyed = False
    for event in events:
        problem = _event_problem(event, previous, checked + 1, keyed, ring)
        if problem:
            return ChainReport(False, checked, event.id, problem, legacy_unkeyed=legacy)
        keyed = keyed or event.mac is not None
        legacy += event.mac is None
        previous = event.signature
        checked += 1
        anchor = anchors.pop(checked, None)
        if anchor and (anchor.last_event_id, anchor.head_signature) != (event.id, previous):
            return ChainReport(False, checked, event.id,
                               f"checkpoint {anchor.seq} anchors another head at event "
                               f"{checked}", broken_checkpoint=anchor.seq)
    if anchors:
        missing = min(anchors.values(), key=lambda row: row.seq)
        return ChainReport(False, checked, missing.last_event_id,
                           f"checkpoint {missing.seq} counts {missing.event_count} events but "
                           f"the chain has {checked} (events removed from the tail)",
                           broken_checkpoint=missing.seq)
    return ChainReport(True, checked, checkpoints=previous_checkpoint.seq
                       if previous_checkpoint else 0, legacy_unkeyed=legacy)


def verify_chain(session: Session) -> ChainReport:
    """Recompute the session tenant's whole chain and check its checkpoints."""
    checkpoints = list(session.scalars(select(AuditCheckpoint).order_by(AuditCheckpoint.seq)))
    query = select(AuditEvent).order_by(AuditEvent.id).execution_options(yield_per=1000)
    return check_chain(session.scalars(query), checkpoints)


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
