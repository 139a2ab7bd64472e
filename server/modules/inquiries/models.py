"""ORM model of inquiries (table from migration 0110)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped, uuid_pk


class Inquiry(TenantScoped, Base):
    __tablename__ = "inquiries"

    id: Mapped[uuid.UUID] = uuid_pk()
    run_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    employee_ref: Mapped[str]
    step: Mapped[str | None]
    input_key: Mapped[str | None]
    question: Mapped[str]
    status: Mapped[str]
    answer: Mapped[str | None]
    resolution: Mapped[str | None]
    resolved_run_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    raised_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    history: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
