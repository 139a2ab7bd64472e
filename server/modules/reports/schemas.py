"""Request and response bodies of the reports API."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

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


class StatementsJobRequest(BaseModel):
    """`POST /runs/{runId}/statements`: everyone (default), a list, or one team."""

    model_config = ConfigDict(extra="forbid")

    employee_refs: list[str] | None = Field(None, min_length=1, max_length=10_000)
    team: str | None = Field(None, min_length=1, max_length=200)
    format: Literal["pdf", "xlsx", "html"] = "pdf"


class JobOut(BaseModel):
    """A bulk statement job: `progress = {done, total}`; download when `status` is done."""

    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    run_id: uuid.UUID
    kind: str
    status: str
    progress: dict[str, Any]
    error: str | None
    result_sha256: str | None
    created_at: datetime | None
    finished_at: datetime | None
