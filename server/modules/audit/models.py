"""ORM model for the append-only, hash-chained audit log."""

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
