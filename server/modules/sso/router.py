"""Routes: the tenant's identity provider settings (admin) and the OIDC sign-in itself.

`/auth/oidc/{tenantId}/provider`, `/login` and `/callback` are public (the caller has no
token yet); the callback answers the same opaque bearer token as `POST /auth/token`, as JSON,
or for the add-in as a redirect to its callback page with the token in the URL fragment
(never sent to a server, never in an access log).
"""

from __future__ import annotations

import math
import uuid
from typing import Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import RedirectResponse

from server.errors import ProblemError, TooManyRequests
from server.modules.auth.dependencies import DbSession, Principal, require, same_tenant
from server.modules.auth.schemas import TokenResponse
from server.modules.sso import service
from server.modules.sso.schemas import (
    ProviderSettingsIn,
    ProviderSettingsOut,
    PublicProvider,
    SignOutResponse,
)
from server.observability.ratelimit import client_key
from server.settings import Settings

router = APIRouter(tags=["sso"])
ADDIN_CALLBACK_PAGE = "/addin/oidc-callback.html"


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _public_url(request: Request, path: str) -> str:
    """An absolute URL of this server (PUBLIC_BASE_URL behind a proxy, else the request's)."""
    base = _settings(request).public_base_url or str(request.base_url)
    return base.rstrip("/") + path


def redirect_uri(request: Request) -> str:
    return _public_url(request, request.app.url_path_for("oidc_callback"))


def sign_in_rate_limit(request: Request) -> None:
    """One token per sign-in request from the bucket of the connection's client address (the
    socket peer, or the proxy's forwarded address uvicorn was told to trust; never a header
    the client sets): bounds how fast one address makes us call the provider."""
    wait = request.app.state.sign_in_buckets.take(client_key(request.scope))
    if wait > 0:
        raise TooManyRequests(max(1, math.ceil(wait)), "sign-in")


@router.get("/tenants/{tenantId}/identity-provider", response_model=ProviderSettingsOut)
def get_identity_provider(tenantId: uuid.UUID, request: Request, db: DbSession,
                          principal: Principal = Depends(require("users.read"))
                          ) -> ProviderSettingsOut:
    """The tenant's OIDC provider settings (the client secret only as `client_secret_set`)."""
    same_tenant(tenantId, principal)
    return service.settings_view(service.get_provider(db), redirect_uri(request))


@router.put("/tenants/{tenantId}/identity-provider", response_model=ProviderSettingsOut)
def put_identity_provider(tenantId: uuid.UUID, body: ProviderSettingsIn, request: Request,
                          db: DbSession, principal: Principal = Depends(require("users.write"))
                          ) -> ProviderSettingsOut:
    """Set the provider; its discovery document must answer (else 422 naming the issuer)."""
    same_tenant(tenantId, principal)
    row = service.put_provider(db, principal, body, _settings(request))
    return service.settings_view(row, redirect_uri(request))


@router.delete("/tenants/{tenantId}/identity-provider", status_code=204,
               response_class=Response)
def delete_identity_provider(tenantId: uuid.UUID, db: DbSession,
                             principal: Principal = Depends(require("users.write"))
                             ) -> Response:
    """Remove the provider: OIDC sign-in stops, local accounts keep working."""
    same_tenant(tenantId, principal)
    service.delete_provider(db, principal)
    return Response(status_code=204)


@router.get("/auth/oidc/{tenantId}/provider", response_model=PublicProvider)
def oidc_provider(tenantId: uuid.UUID, request: Request) -> PublicProvider:
    """Whether the tenant signs in with a provider (404 if not): the add-in's button."""
    name = service.public_provider(tenantId)
    path = request.app.url_path_for("oidc_login", tenantId=str(tenantId))
    return PublicProvider(display_name=name, login_url=_public_url(request, path))


@router.get("/auth/oidc/{tenantId}/login", name="oidc_login", response_class=RedirectResponse,
            status_code=302, dependencies=[Depends(sign_in_rate_limit)])
def oidc_login(tenantId: uuid.UUID, request: Request,
               return_to: Literal["addin"] | None = Query(default=None)) -> RedirectResponse:
    """Start a sign-in: redirect to the provider (authorization code, PKCE S256, nonce)."""
    url = service.start_sign_in(tenantId, redirect_uri(request), return_to, _settings(request))
    return RedirectResponse(url, status_code=302)


def _to_addin(request: Request, fragment: dict[str, str]) -> RedirectResponse:
    return RedirectResponse(f"{_public_url(request, ADDIN_CALLBACK_PAGE)}#{urlencode(fragment)}",
                            status_code=303)


@router.get("/auth/oidc/callback", name="oidc_callback", response_model=TokenResponse,
            dependencies=[Depends(sign_in_rate_limit)])
def oidc_callback(request: Request, state: str = Query(max_length=512),
                  code: str | None = Query(default=None, max_length=4096),
                  error: str | None = Query(default=None, max_length=255),
                  error_description: str | None = Query(default=None, max_length=2048),
                  ) -> TokenResponse | RedirectResponse:
    """The provider's redirect back: the bearer token, or a problem naming the refusal."""
    try:
        if error or not code:
            service.refuse_provider_error(state, error or "no_code", error_description)
        signed_in = service.finish_sign_in(state, code or "", redirect_uri(request),
                                           _settings(request))
    except ProblemError as problem:
        if getattr(problem, "return_to", None) == "addin":
            return _to_addin(request, {"error": problem.detail or problem.title})
        raise
    issued = signed_in.issued
    body = TokenResponse(access_token=issued.token, expires_at=issued.expires_at,
                         tenant_id=issued.tenant_id, user_id=issued.user_id)
    if signed_in.return_to == "addin":
        return _to_addin(request, {k: str(v) for k, v in body.model_dump().items()})
    return body


@router.post("/auth/oidc/logout", response_model=SignOutResponse)
def oidc_logout(request: Request, db: DbSession,
                principal: Principal = Depends(require("me.read"))) -> SignOutResponse:
    """Revoke this bearer token; `end_session_url` signs out at the provider too."""
    return SignOutResponse(end_session_url=service.sign_out(db, principal, _settings(request)))
