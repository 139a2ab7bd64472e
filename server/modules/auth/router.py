"""Routes: POST /auth/token, POST /auth/logout, GET /me."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, Request, Response

from server.modules.auth import service
from server.modules.auth.dependencies import DbSession, Principal, require
from server.modules.auth.permissions import PERMISSIONS
from server.modules.auth.schemas import MeResponse, TokenRequest, TokenResponse
from server.modules.tenants import service as tenants

router = APIRouter(tags=["auth"])


@router.post("/auth/token", response_model=TokenResponse)
def issue_token(body: TokenRequest, request: Request) -> TokenResponse:
    """Exchange email + password for an opaque bearer token (expires; revoke with logout).

    A one-time password works once: set a new one with `PUT /me/password` using this token.
    Wrong passwords lock the account and the client address with a growing delay (429)."""
    ttl = timedelta(hours=request.app.state.settings.token_ttl_hours)
    client = request.client.host if request.client else "unknown"
    issued = service.login(body.email, body.password, ttl, body.tenant_id, client)
    return TokenResponse(
        access_token=issued.token,
        expires_at=issued.expires_at,
        tenant_id=issued.tenant_id,
        user_id=issued.user_id,
        password_change_required=issued.password_change_required,
    )


@router.post("/auth/logout", status_code=204, response_class=Response)
def logout(db: DbSession, principal: Principal = Depends(require("me.read"))) -> Response:
    """Revoke the bearer token used for this request."""
    service.logout(db, principal)
    return Response(status_code=204)


@router.get("/me", response_model=MeResponse)
def me(db: DbSession, principal: Principal = Depends(require("me.read"))) -> MeResponse:
    """Who the caller is, what they may do, and the tenant's separation-of-duties rule."""
    return MeResponse(
        user_id=principal.user_id,
        tenant_id=principal.tenant_id,
        email=principal.email,
        display_name=principal.display_name,
        role=principal.role.value,
        teams=list(principal.teams),
        permissions=sorted(p for p, roles in PERMISSIONS.items() if principal.role in roles),
        separation_of_duties=tenants.separation_of_duties(db, principal.tenant_id),
    )
