"""Request and response bodies of the auth routes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class TokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    password: str = Field(min_length=1, max_length=1024)
    tenant_id: uuid.UUID | None = Field(
        default=None, description="Only needed when the email exists in several tenants"
    )


class TokenResponse(BaseModel):
    access_token: str
    token_type: str = "bearer"
    expires_at: datetime
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    password_change_required: bool = Field(
        default=False, description="signed in with a one-time password: set a new one "
        "(PUT /me/password) before this token expires")


class MeResponse(BaseModel):
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    display_name: str | None
    role: str
    teams: list[str]
    permissions: list[str]
    separation_of_duties: bool = Field(
        True, description="whether the tenant enforces separation of duties on approvals "
                          "(nobody approves two stages of a round, nor finalizes what they "
                          "approved): clients use it to offer only what the server allows")
