"""Who is calling, and their tenant session: the FastAPI dependencies every router uses.

`current_principal` resolves the bearer token, `require(permission)` guards a route, and
`DbSession` is a transaction bound to the caller's tenant. They live here, above both the db
layer and the auth service, so `server.db` never imports an area. `Principal` itself is
defined in `server.principal` and re-exported here.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Annotated

import structlog
from anyio import CancelScope, CapacityLimiter, to_thread
from anyio.lowlevel import RunVar
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from server.db.session import get_engine, tenant_session
from server.errors import Forbidden, NotFound, TooManyRequests, Unauthorized
from server.modules.auth.permissions import PERMISSIONS
from server.modules.auth.service import cached_principal, resolve_token
from server.observability.ratelimit import WRITE_METHODS, account_key
from server.principal import Principal

__all__ = ["DbSession", "Principal", "current_principal", "get_db", "require", "same_tenant"]

bearer_scheme = HTTPBearer(auto_error=False, description="Token from POST /api/v1/auth/token")


async def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(bearer_scheme),
) -> Principal:
    """Resolve the bearer token (401 when missing, unknown, expired, revoked or inactive).

    Async so the ids it binds for logging live in the request's own context (the access log
    line and the endpoint's logs carry them). A token resolved moments ago answers from the
    process's cache on the event loop; otherwise the lookup runs in the thread pool.
    """
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthorized()
    principal = cached_principal(credentials.credentials) or await run_in_threadpool(
        resolve_token, credentials.credentials)
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

    async def guard(principal: Principal = Depends(current_principal)) -> Principal:
        # async: a table look-up, not worth a trip to the thread pool
        if principal.role not in roles:
            raise Forbidden(f"role '{principal.role}' lacks permission '{permission}'")
        return principal

    guard.__name__ = f"require_{permission.replace('.', '_')}"
    return guard


def same_tenant(path_tenant_id: uuid.UUID, principal: Principal) -> None:
    """A `{tenantId}` in a path must be the caller's own tenant; any other answers 404."""
    if path_tenant_id != principal.tenant_id:
        raise NotFound("tenant")


async def get_db(principal: Principal = Depends(current_principal)) -> AsyncIterator[Session]:
    """FastAPI dependency: a tenant session for the caller's tenant (commit or rollback).

    Use it through `DbSession` (function scope), so the commit happens before the response
    is sent and a failed commit becomes an error response rather than a silent loss.
    Opening the session costs no I/O (it connects at its first statement, in the endpoint's
    thread), so only the commit or rollback goes to the thread pool: shielded from
    cancellation and outside the pool's capacity limit, like FastAPI's own sync generator
    dependencies, so a full pool cannot keep a connection from being returned.
    """
    async with _session_slots():
        manager = tenant_session(principal.tenant_id)
        session = manager.__enter__()
        session.info["principal"] = principal
        try:
            yield session
        except BaseException as error:
            with CancelScope(shield=True):
                await to_thread.run_sync(manager.__exit__, type(error), error,
                                         error.__traceback__, limiter=CapacityLimiter(1))
            raise
        with CancelScope(shield=True):
            await to_thread.run_sync(manager.__exit__, None, None, None,
                                     limiter=CapacityLimiter(1))


_slots: RunVar[CapacityLimiter] = RunVar("paysheet_session_slots")


def _session_slots() -> CapacityLimiter:
    """At most DB_POOL_SIZE request sessions at once per process; more requests wait on
    the event loop, not for a connection. Without it, each request beyond the pool opens
    an overflow connection that the pool closes again on return: under 50 connections that
    was a new PostgreSQL backend every few requests, its start-up costing more than the
    query. (Overflow still serves code that needs a second connection.)"""
    try:
        return _slots.get()
    except LookupError:
        _slots.set(CapacityLimiter(get_engine().pool.size()))  # type: ignore[attr-defined]
        return _slots.get()


DbSession = Annotated[Session, Depends(get_db, scope="function")]
