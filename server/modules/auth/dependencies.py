"""Who is calling: `Principal`, `current_principal` and the `require(permission)` guard.

This module must not import the db layer at import time (server.db.session depends on it);
token resolution is imported lazily from the auth service.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from dataclasses import dataclass

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from server.errors import Forbidden, NotFound, TooManyRequests, Unauthorized
from server.modules.auth.permissions import PERMISSIONS, Role
from server.observability.ratelimit import WRITE_METHODS, account_key

bearer_scheme = HTTPBearer(auto_error=False, description="Token from POST /api/v1/auth/token")


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


async def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> Principal:
    """Resolve the bearer token (401 when missing, unknown, expired, revoked or inactive).

    Async so the ids it binds for logging live in the request's own context (the access log
    line and the endpoint's logs carry them); the database lookup runs in the thread pool.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    from server.modules.auth.service import resolve_token

    principal = await run_in_threadpool(resolve_token, credentials.credentials)
    if principal is None:
        raise Unauthorized()
    structlog.contextvars.bind_contextvars(
        user_id=str(principal.user_id), tenant_id=str(principal.tenant_id)
    )
    request.state.principal = principal
    _take_account_token(request, principal)
    return principal


def _take_account_token(request: Request, principal: Principal) -> None:
    """Writes also spend from the account's own bucket (one more in-memory or Redis call,
    writes only), so spreading requests over many addresses does not lift the limit."""
    buckets = getattr(request.app.state, "rate_buckets", None)
    if buckets is None or request.method not in WRITE_METHODS:
        return
    wait = buckets.take(account_key(principal.user_id))
    if wait > 0:
        raise TooManyRequests(max(1, math.ceil(wait)))


def require(permission: str) -> Callable[..., Principal]:
    """Dependency factory: the caller if their role holds `permission`, else 403."""
    roles = PERMISSIONS[permission]

    def guard(principal: Principal = Depends(current_principal)) -> Principal:
        if principal.role not in roles:
            raise Forbidden(f"role '{principal.role}' lacks permission '{permission}'")
        return principal

    guard.__name__ = f"require_{permission.replace('.', '_')}"
    return guard


def same_tenant(path_tenant_id: uuid.UUID, principal: Principal) -> None:
    """A `{tenantId}` in a path must be the caller's own tenant; any other answers 404."""
    if path_tenant_id != principal.tenant_id:
        raise NotFound("tenant")
