"""Request and response bodies of the tenant and user routes."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field, model_validator

from server.modules.auth.permissions import Role


class TenantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    name: str
    is_active: bool
    created_at: datetime
    separation_of_duties: bool = True


class TenantSettingsUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    separation_of_duties: bool = Field(
        description="no user performs two approval stages of a run, or approves and "
        "finalizes the same run (on by default)")


class UserOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: uuid.UUID
    tenant_id: uuid.UUID
    email: str
    display_name: str | None
    role: Role
    teams: list[str]
    is_active: bool
    created_at: datetime


class UserCreated(UserOut):
    one_time_password: str = Field(description="Shown once; the user should change it")


class UserList(BaseModel):
    items: list[UserOut]


class UserCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    email: str = Field(min_length=3, max_length=320)
    role: Role
    display_name: str | None = Field(default=None, max_length=200)
    teams: list[str] = Field(default_factory=list, max_length=200)


class UserUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Role | None = None
    display_name: str | None = Field(default=None, max_length=200)
    teams: list[str] | None = Field(default=None, max_length=200)
    is_active: bool | None = None

    @model_validator(mode="after")
    def _something_to_change(self) -> UserUpdate:
        if not self.model_fields_set:
            raise ValueError("give at least one of role, display_name, teams, is_active")
        return self


class PasswordChange(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current_password: str | None = Field(
        default=None, max_length=1024,
        description="required unless you signed in with a one-time password")
    new_password: str = Field(min_length=1, max_length=1024)


class PasswordReset(BaseModel):
    user_id: uuid.UUID
    one_time_password: str
    expires_at: datetime


class SessionsRevoked(BaseModel):
    revoked: int
