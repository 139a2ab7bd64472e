"""ORM models of the append-only, hash-chained, keyed audit log and its checkpoints."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped


class AuditEvent(TenantScoped, Base):
    __tablename__ = "audit_events"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    actor_user_id: Mapped[uuid.UUID | None]
    action: Mapped[str]
    entity: Mapped[str]
    entity_id: Mapped[uuid.UUID]
    before: Mapped[Any | None] = mapped_column(JSONB)
    after: Mapped[Any | None] = mapped_column(JSONB)
    at: Mapped[datetime]
    request_id: Mapped[str | None]
    prev_signature: Mapped[str | None]
    signature: Mapped[str]
    # Migration 0080: position in the tenant's chain, and the HMAC under a server-held key.
    seq: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str | None]
    mac: Mapped[str | None]


class AuditCheckpoint(TenantScoped, Base):
    """A signed anchor of a tenant's chain head: how many events, the last one and its
    signature (migration 0080). Tail truncation leaves one counting events that are gone."""

    __tablename__ = "audit_checkpoints"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    seq: Mapped[int] = mapped_column(BigInteger)
    event_count: Mapped[int] = mapped_column(BigInteger)
    last_event_id: Mapped[int | None] = mapped_column(BigInteger)
    head_signature: Mapped[str | None]
    at: Mapped[datetime]
    key_id: Mapped[str]
    prev_mac: Mapped[str | None]
    mac: Mapped[str]
