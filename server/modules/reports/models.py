"""ORM model of the reports module (table from migration 0030)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import LargeBinary, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
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


class ReportJob(TenantScoped, Base):
    """A bulk statement job run on the worker; the zip lives under the data directory."""

    __tablename__ = "report_jobs"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), nullable=False)
    run_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    kind: Mapped[str] = mapped_column(default="statements")
    status: Mapped[str] = mapped_column(default="queued")
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    progress: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    result_path: Mapped[str | None]
    result_sha256: Mapped[str | None]
    error: Mapped[str | None]
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
