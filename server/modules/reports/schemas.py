"""Request and response bodies of the reports API."""

from __future__ import annotations

from pydantic import BaseModel


class SigningKeyOut(BaseModel):
    """A tenant's public export-signing key (verify bundles with `paysheet verify-bundle`)."""

    tenant_id: str
    key_id: str
    algorithm: str
    public_key: str
    public_key_pem: str
    created_at: str | None
