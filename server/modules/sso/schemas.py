"""Bodies of the identity provider settings and the OIDC sign-in routes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator

from server.principal import Role

TeamCode = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
GroupName = Annotated[str, StringConstraints(min_length=1, max_length=255)]
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


class ProviderSettingsIn(BaseModel):
    """PUT body. `client_secret` omitted (or null) keeps the stored one; it is never returned."""

    model_config = ConfigDict(extra="forbid")

    display_name: str = Field(min_length=1, max_length=80, examples=["Contoso Entra ID"])
    issuer: str = Field(max_length=2048, examples=["https://login.example.com/tenant/v2.0"])
    client_id: str = Field(min_length=1, max_length=255)
    client_secret: SecretStr | None = Field(default=None, max_length=1024)
    scopes: str = Field(default="openid email profile", max_length=1024)
    enabled: bool = True
    jit_provisioning: bool = Field(
        default=True, description="create a Paysheet user on first sign-in (else only existing)")
    groups_claim: str = Field(default="groups", min_length=1, max_length=255)
    role_mapping: dict[GroupName, Role] = Field(
        default_factory=dict, description="group (claim value) → role; the highest role wins")
    team_mapping: dict[GroupName, TeamCode] = Field(
        default_factory=dict, description="group (claim value) → manager team code")
    default_role: Role | None = Field(
        default=None, description="role of users none of whose groups is mapped; null refuses")

    @field_validator("issuer")
    @classmethod
    def _issuer(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("https", "http") or not parts.hostname or parts.query \
                or parts.fragment:
            raise ValueError("the issuer is an https URL without query or fragment")
        if parts.scheme == "http" and parts.hostname not in LOOPBACK:
            raise ValueError("the issuer must use https (plain http only on this machine)")
        return value

    @field_validator("scopes")
    @classmethod
    def _scopes(cls, value: str) -> str:
        scopes = value.split()
        if "openid" not in scopes:
            raise ValueError("the scopes must include 'openid'")
        return " ".join(dict.fromkeys(scopes))


class ProviderSettingsOut(BaseModel):
    display_name: str
    issuer: str
    client_id: str
    client_secret_set: bool
    scopes: str
    enabled: bool
    jit_provisioning: bool
    groups_claim: str
    role_mapping: dict[str, Role]
    team_mapping: dict[str, str]
    default_role: Role | None
    redirect_uri: str = Field(description="register this redirect URI at the provider")
    updated_at: datetime


class PublicProvider(BaseModel):
    """What a sign-in page needs to offer 'Sign in with <provider>'."""

    display_name: str
    login_url: str


class SignOutResponse(BaseModel):
    end_session_url: str | None = Field(
        description="the provider's RP-initiated logout URL to open, when it offers one")
