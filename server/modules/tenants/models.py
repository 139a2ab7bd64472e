"""ORM models for tenants and their users (tables from migration 0001)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, String, func
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped, uuid_pk


class Tenant(Base):
    """A customer. Its RLS policy is on `id`, so only the current tenant's row is visible."""

    __tablename__ = "tenants"

    id: Mapped[uuid.UUID] = uuid_pk()
    name: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    is_active: Mapped[bool] = mapped_column(default=True)
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, default=dict)


class User(TenantScoped, Base):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = uuid_pk()
    tenant_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("comp.tenants.id"), nullable=False
    )
    email: Mapped[str]
    display_name: Mapped[str | None]
    role: Mapped[str]
    password_hash: Mapped[str | None]
    is_active: Mapped[bool] = mapped_column(default=True)
    teams: Mapped[list[str]] = mapped_column(ARRAY(String), default=list)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    # The identity provider's `sub` this user signs in as (migration 0120); None: local only.
    oidc_subject: Mapped[str | None] = mapped_column(default=None)
    # Migration 0081: one-time passwords and lockout (kept by comp.auth_login_* functions).
    password_is_temporary: Mapped[bool] = mapped_column(default=False)
    password_expires_at: Mapped[datetime | None]
    failed_logins: Mapped[int] = mapped_column(default=0)
    locked_until: Mapped[datetime | None]
