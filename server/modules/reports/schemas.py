"""Request and response bodies of the reports API."""

from __future__ import annotations

import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SigningKeyOut(BaseModel):
    """A tenant's public export-signing key (verify bundles with `paysheet verify-bundle`)."""

    tenant_id: str
    key_id: str
    algorithm: str
    public_key: str
    public_key_pem: str
    created_at: str | None


class StatementRequest(BaseModel):
    """`POST /reports/individual-statement`."""

    model_config = ConfigDict(extra="forbid")

    run_id: uuid.UUID
    employee_ref: str = Field(min_length=1, max_length=200)
    format: Literal["pdf", "xlsx", "html"] = "pdf"
