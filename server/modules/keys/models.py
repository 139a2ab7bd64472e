"""ORM model of the per-tenant data-encryption keys (table from migration 0130)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped


class TenantDataKey(TenantScoped, Base):
    """One version of a tenant's 256-bit data key, stored only wrapped by a KMS KEK. The
    highest version encrypts; every version decrypts what it encrypted."""

    __tablename__ = "tenant_data_keys"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    version: Mapped[int] = mapped_column(primary_key=True)
    kek_id: Mapped[str]
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    rewrapped_at: Mapped[datetime | None]
