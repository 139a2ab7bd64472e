"""Conventions every module's routes must keep (checked over the app's router list).

- The tenant session (`get_db`) is a function-scoped dependency (`DbSession`), so the commit
  happens before the response is sent.
- Every route under /api/v1 except login is guarded by `require(permission)`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from server.app import API_ROUTERS
from server.modules.auth.dependencies import get_db

# Login, and tus discovery (OPTIONS answers the protocol's capabilities, no tenant data; CORS
# preflights carry no credentials).
PUBLIC = {
    ("POST", "/auth/token"),
    ("GET", "/auth/oidc/{tenantId}/provider"),
    ("GET", "/auth/oidc/{tenantId}/login"),
    ("GET", "/auth/oidc/callback"),
    ("OPTIONS", "/uploads"),
    ("OPTIONS", "/uploads/{upload_id}"),
}


def _routes() -> list[APIRoute]:
    return [r for router in API_ROUTERS for r in router.routes if isinstance(r, APIRoute)]


def _walk(dependant: Dependant) -> Iterator[Dependant]:
    for child in dependant.dependencies:
        yield child
        yield from _walk(child)


def _route_id(route: APIRoute) -> str:
    return f"{sorted(route.methods)} {route.path}"


@pytest.mark.parametrize("route", _routes(), ids=_route_id)
def test_db_session_is_function_scoped(route: APIRoute) -> None:
    for dependency in _walk(route.dependant):
        if dependency.call is get_db:
            assert dependency.scope == "function", "use server.modules.auth.dependencies.DbSession"


@pytest.mark.parametrize("route", _routes(), ids=_route_id)
def test_every_route_requires_a_permission(route: APIRoute) -> None:
    if any((method, route.path) in PUBLIC for method in route.methods):
        return
    guards = [d.call for d in _walk(route.dependant) if d.call is not None]
    assert any(getattr(g, "__name__", "").startswith("require_") for g in guards), (
        "guard the route with Depends(require('<permission>'))"
    )
