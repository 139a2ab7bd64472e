"""The OpenID Connect protocol steps, with authlib: discovery, the authorization request
(code + PKCE S256 + nonce), the code exchange and the ID token checks.

Nothing here touches the database: `service.py` stores the pending sign-in and the user.
Every refusal is an `Unauthorized` naming what failed (the audience, the expiry, the
signature, the code...), never a bare 401.
"""

from __future__ import annotations

import secrets
import time
import warnings
from dataclasses import dataclass
from threading import Lock
from typing import Any

import httpx
from authlib.common.security import generate_token
from authlib.integrations.base_client.errors import OAuthError
from joserfc import errors as jose_errors
from joserfc import jwt
from joserfc.jwk import KeySet

from server.errors import ProblemError, Unauthorized, UnprocessableEntity

with warnings.catch_warnings():
    # authlib >= 1.7 announces a move of this integration to the `httpx2` package; the
    # integration works on httpx as it is, and the notice would land in every server log.
    warnings.simplefilter("ignore", DeprecationWarning)
    from authlib.integrations.httpx_client import OAuth2Client

DISCOVERY_PATH = "/.well-known/openid-configuration"
HTTP_TIMEOUT = httpx.Timeout(10.0)
METADATA_TTL_SECONDS = 300
# Clock difference tolerated between us and the provider when checking exp / iat.
LEEWAY_SECONDS = 60
# Signature algorithms accepted on ID tokens (never "none", never HMAC with a public key).
ID_TOKEN_ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
                       "ES256", "ES384", "ES512", "EdDSA"]


@dataclass(frozen=True)
class ProviderMetadata:
    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    end_session_endpoint: str | None


@dataclass(frozen=True)
class Client:
    """What the protocol needs of a tenant's settings."""

    issuer: str
    client_id: str
    client_secret: str | None
    scopes: str


_cache_lock = Lock()
_metadata_cache: dict[str, tuple[float, ProviderMetadata]] = {}
_jwks_cache: dict[str, KeySet] = {}


class ProviderUnavailable(ProblemError):
    """The provider's discovery document, keys or token endpoint cannot be used: 502."""

    def __init__(self, detail: str) -> None:
        super().__init__(502, "Bad Gateway", f"identity provider: {detail}")


def _get_json(url: str, what: str) -> dict[str, Any]:
    try:
        response = httpx.get(url, timeout=HTTP_TIMEOUT, follow_redirects=False)
        response.raise_for_status()
        body = response.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise ProviderUnavailable(f"{what} at {url} could not be read: {exc}") from exc
    if not isinstance(body, dict):
        raise ProviderUnavailable(f"{what} at {url} is not a JSON object")
    return body


def discover(issuer: str, *, refresh: bool = False) -> ProviderMetadata:
    """The issuer's metadata from `<issuer>/.well-known/openid-configuration` (cached 5 min).

    The document must name the same issuer (OpenID Connect Discovery §4.3), else a
    look-alike could hand out another provider's endpoints."""
    now = time.monotonic()
    with _cache_lock:
        cached = _metadata_cache.get(issuer)
    if cached and not refresh and now - cached[0] < METADATA_TTL_SECONDS:
        return cached[1]
    document = _get_json(issuer.rstrip("/") + DISCOVERY_PATH, "the discovery document")
    if document.get("issuer") != issuer:
        raise ProviderUnavailable(
            f"the discovery document names issuer {document.get('issuer')!r}, not {issuer!r}")
    missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri")
               if not isinstance(document.get(k), str)]
    if missing:
        raise ProviderUnavailable(f"the discovery document lacks {', '.join(missing)}")
    metadata = ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=document["authorization_endpoint"],
        token_endpoint=document["token_endpoint"],
        jwks_uri=document["jwks_uri"],
        end_session_endpoint=document.get("end_session_endpoint"),
    )
    with _cache_lock:
        _metadata_cache[issuer] = (now, metadata)
    return metadata


def _keys(metadata: ProviderMetadata, *, refresh: bool = False) -> KeySet:
    with _cache_lock:
        cached = _jwks_cache.get(metadata.jwks_uri)
    if cached is not None and not refresh:
        return cached
    keys = KeySet.import_key_set(_get_json(metadata.jwks_uri, "the provider's keys"))  # type: ignore[arg-type]
    with _cache_lock:
        _jwks_cache[metadata.jwks_uri] = keys
    return keys


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    code_verifier: str
    nonce: str


def _oauth(client: Client, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=client.client_id,
        client_secret=client.client_secret,
        scope=client.scopes,
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if client.client_secret else "none",
        timeout=HTTP_TIMEOUT,
    )


def authorization_request(client: Client, redirect_uri: str, state_prefix: str
                          ) -> AuthorizationRequest:
    """The provider URL the browser goes to, with a fresh state, PKCE verifier and nonce."""
    metadata = discover(client.issuer)
    state = f"{state_prefix}.{secrets.token_urlsafe(32)}"
    verifier = generate_token(64)
    nonce = secrets.token_urlsafe(24)
    with _oauth(client, redirect_uri) as oauth:
        url, _ = oauth.create_authorization_url(
            metadata.authorization_endpoint, state=state, code_verifier=verifier, nonce=nonce)
    return AuthorizationRequest(url, state, verifier, nonce)


def exchange_code(client: Client, redirect_uri: str, code: str, code_verifier: str
                  ) -> dict[str, Any]:
    """Code + PKCE verifier → the token response (the provider refuses a used code)."""
    metadata = discover(client.issuer)
    try:
        with _oauth(client, redirect_uri) as oauth:
            token = oauth.fetch_token(
                metadata.token_endpoint, grant_type="authorization_code", code=code,
                code_verifier=code_verifier)
    except OAuthError as exc:
        raise Unauthorized(
            f"the identity provider refused the authorization code ({exc.error}: "
            f"{exc.description or 'no description'}); a code is valid once and briefly"
        ) from exc
    except httpx.HTTPError as exc:
        raise ProviderUnavailable(f"the token endpoint could not be reached: {exc}") from exc
    if not isinstance(token.get("id_token"), str):
        raise Unauthorized("the identity provider returned no ID token (is 'openid' a scope?)")
    return dict(token)


def _refusal(exc: jose_errors.JoseError, claims: dict[str, Any], client: Client) -> str:
    if isinstance(exc, jose_errors.BadSignatureError):
        return "its signature does not verify against the provider's keys (tampered?)"
    if isinstance(exc, jose_errors.ExpiredTokenError):
        return f"it expired (exp {claims.get('exp')}, allowed clock skew {LEEWAY_SECONDS} s)"
    if isinstance(exc, jose_errors.InvalidClaimError | jose_errors.MissingClaimError):
        claim = getattr(exc, "claim", "?")
        if claim == "aud":
            return (f"its audience {claims.get('aud')!r} is not this client "
                    f"({client.client_id!r})")
        return f"claim '{claim}' is wrong or missing ({exc.description})"
    return f"{type(exc).__name__}: {exc.description}"


def verify_id_token(client: Client, id_token: str, nonce: str, *, now: int | None = None
                    ) -> dict[str, Any]:
    """The ID token's claims once its signature, issuer, audience, times and nonce hold.

    A key id the cached key set lacks refetches the keys once (the provider rotated)."""
    metadata = discover(client.issuer)
    claims: dict[str, Any] = {}
    try:
        try:
            token = jwt.decode(id_token, _keys(metadata), algorithms=ID_TOKEN_ALGORITHMS)
        except (jose_errors.MissingKeyError, jose_errors.InvalidKeyIdError, ValueError):
            token = jwt.decode(id_token, _keys(metadata, refresh=True),
                               algorithms=ID_TOKEN_ALGORITHMS)
        claims = dict(token.claims)
        registry = jwt.JWTClaimsRegistry(
            now=now, leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": client.issuer},
            aud={"essential": True, "value": client.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        registry.validate(claims)
    except jose_errors.JoseError as exc:
        raise Unauthorized(f"ID token refused: {_refusal(exc, claims, client)}") from exc
    azp = claims.get("azp")
    if isinstance(claims.get("aud"), list) and len(claims["aud"]) > 1 and azp != client.client_id:
        raise Unauthorized(f"ID token refused: authorized party {azp!r} is not this client")
    return claims


def end_session_url(client: Client, id_token: str | None, post_logout_redirect_uri: str | None
                    ) -> str | None:
    """RP-initiated logout URL when the provider offers it (else None)."""
    try:
        metadata = discover(client.issuer)
    except ProviderUnavailable:
        return None
    if not metadata.end_session_endpoint:
        return None
    params = {"client_id": client.client_id}
    if id_token:
        params["id_token_hint"] = id_token
    if post_logout_redirect_uri:
        params["post_logout_redirect_uri"] = post_logout_redirect_uri
    return str(httpx.URL(metadata.end_session_endpoint, params=params))


def check_reachable(issuer: str) -> None:
    """422 unless the issuer's discovery document and keys can be read now."""
    try:
        _keys(discover(issuer, refresh=True), refresh=True)
    except ProviderUnavailable as exc:
        raise UnprocessableEntity(
            [{"loc": ["body", "issuer"], "msg": exc.detail, "type": "value_error"}],
            "the identity provider's discovery document could not be used") from exc
