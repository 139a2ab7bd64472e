"""ORM model of the reports module (table from migration 0030)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import LargeBinary, func
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped, uuid_pk


class TenantSigningKey(TenantScoped, Base):
    """A tenant's Ed25519 key: public key raw, private key only as AES-GCM ciphertext."""

    __tablename__ = "tenant_signing_keys"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    key_id: Mapped[str]
    algorithm: Mapped[str] = mapped_column(default="Ed25519")
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    private_key_ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    private_key_nonce: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    retired_at: Mapped[datetime | None]
