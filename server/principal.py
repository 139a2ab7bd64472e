"""Who is calling: the `Principal` and its `Role`, shared by every layer that acts for a caller.

It sits below the areas and the db layer and imports nothing first-party, so `auth` (which
resolves tokens into principals), `audit` (which records who acted) and every service can
use it without importing one another. The permission table stays in
`server.modules.auth.permissions`; resolving a bearer token is `server.modules.auth.dependencies`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    HR = "hr"
    MANAGER = "manager"
    FINANCE = "finance"
    AUDITOR = "auditor"
    READONLY = "readonly"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller; the tenant always comes from here, never from the request."""

    user_id: uuid.UUID
    tenant_id: uuid.UUID
    role: Role
    email: str
    display_name: str | None
    teams: tuple[str, ...]
    token_id: uuid.UUID | None = None
