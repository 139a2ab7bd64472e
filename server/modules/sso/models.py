"""ORM models of OIDC sign-in (tables from migration 0120)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from server.db.base import Base, TenantScoped


class OidcProvider(TenantScoped, Base):
    """The tenant's identity provider: one per tenant, the secret stored encrypted only."""

    __tablename__ = "oidc_providers"

    tenant_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    display_name: Mapped[str]
    issuer: Mapped[str]
    client_id: Mapped[str]
    client_secret_ciphertext: Mapped[bytes | None]
    client_secret_nonce: Mapped[bytes | None]
    scopes: Mapped[str]
    enabled: Mapped[bool]
    jit_provisioning: Mapped[bool]
    groups_claim: Mapped[str]
    role_mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    team_mapping: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    default_role: Mapped[str | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class OidcLogin(TenantScoped, Base):
    """A sign-in under way: the callback's `state` (hashed) → PKCE verifier and nonce."""

    __tablename__ = "oidc_logins"

    state_hash: Mapped[str] = mapped_column(primary_key=True)
    code_verifier: Mapped[str]
    nonce: Mapped[str]
    return_to: Mapped[str | None]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    expires_at: Mapped[datetime]


class OidcSession(TenantScoped, Base):
    """The ID token behind a bearer token, kept as the `id_token_hint` of the sign-out."""

    __tablename__ = "oidc_sessions"

    token_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    id_token: Mapped[str]
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
