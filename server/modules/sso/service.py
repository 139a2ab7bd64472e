"""OIDC sign-in for a tenant: its provider settings, the sign-in itself and the sign-out.

A sign-in is two requests. `start_sign_in` stores a pending row (state hash → PKCE verifier,
nonce) and sends the browser to the provider. `finish_sign_in` consumes that row (so a state,
and the code that came with it, is used once), exchanges the code, checks the ID token,
finds or creates the user, applies the group mapping and issues the same opaque bearer token
as the local login. The state carries the tenant id in clear (`<tenant>.<random>`): one
redirect URI serves every tenant, and the random part is checked against the stored hash.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from server.db.session import tenant_session
from server.errors import NotFound, ProblemError, Unauthorized
from server.modules.audit.service import record_event, record_refusal
from server.modules.auth import service as auth
from server.modules.auth.permissions import ROLE_RANK
from server.modules.reports.service import master_secret
from server.modules.sso import protocol
from server.modules.sso.models import OidcLogin, OidcProvider, OidcSession
from server.modules.sso.schemas import ProviderSettingsIn, ProviderSettingsOut
from server.modules.tenants import service as tenants
from server.principal import Principal, Role
from server.settings import Settings

LOGIN_TTL = timedelta(minutes=10)
SECRET_SALT = b"paysheet/oidc-client-secret/v1"


def _secret_key(settings: Settings, tenant_id: uuid.UUID) -> AESGCM:
    derived = HKDF(hashes.SHA256(), 32, SECRET_SALT, f"tenant:{tenant_id}".encode()).derive(
        master_secret(settings))
    return AESGCM(derived)


def _decrypt_secret(settings: Settings, row: OidcProvider) -> str | None:
    if row.client_secret_ciphertext is None or row.client_secret_nonce is None:
        return None
    try:
        plain = _secret_key(settings, row.tenant_id).decrypt(
            row.client_secret_nonce, row.client_secret_ciphertext, row.client_id.encode())
    except InvalidTag:
        raise ProblemError(500, "Internal Server Error", (
            "the identity provider's stored client secret does not decrypt under this "
            "server's secret (SIGNING_KEY_SECRET or <DATA_DIR>/signing-key.secret changed, "
            "or differs between API processes); an admin must PUT the client_secret again"
        )) from None
    return plain.decode()


def _client(settings: Settings, row: OidcProvider) -> protocol.Client:
    return protocol.Client(row.issuer, row.client_id, _decrypt_secret(settings, row), row.scopes)


def _provider(session: Session) -> OidcProvider | None:
    return session.scalar(select(OidcProvider))


def settings_view(row: OidcProvider, redirect_uri: str) -> ProviderSettingsOut:
    return ProviderSettingsOut(
        display_name=row.display_name, issuer=row.issuer, client_id=row.client_id,
        client_secret_set=row.client_secret_ciphertext is not None, scopes=row.scopes,
        enabled=row.enabled, jit_provisioning=row.jit_provisioning,
        groups_claim=row.groups_claim, role_mapping=row.role_mapping,
        team_mapping=row.team_mapping,
        default_role=Role(row.default_role) if row.default_role else None,
        redirect_uri=redirect_uri, updated_at=row.updated_at)


def get_provider(session: Session) -> OidcProvider:
    row = _provider(session)
    if row is None:
        raise NotFound("identity provider")
    return row


def _audit_view(row: OidcProvider) -> dict[str, Any]:
    """The settings as the audit log records them (whether a secret is set, never which)."""
    return {"display_name": row.display_name, "issuer": row.issuer, "client_id": row.client_id,
            "client_secret_set": row.client_secret_ciphertext is not None,
            "scopes": row.scopes, "enabled": row.enabled,
            "jit_provisioning": row.jit_provisioning, "groups_claim": row.groups_claim,
            "role_mapping": row.role_mapping, "team_mapping": row.team_mapping,
            "default_role": row.default_role}


def put_provider(session: Session, actor: Principal, body: ProviderSettingsIn,
                 settings: Settings) -> OidcProvider:
    """Create or replace the tenant's provider once its discovery document answers."""
    protocol.check_reachable(body.issuer)
    row = _provider(session)
    before = _audit_view(row) if row else None
    if row is None:
        row = OidcProvider(tenant_id=session.info["tenant_id"])
        session.add(row)
    client_changed = row.client_id != body.client_id
    row.display_name, row.issuer, row.client_id = body.display_name, body.issuer, body.client_id
    row.scopes, row.enabled, row.jit_provisioning = body.scopes, body.enabled, \
        body.jit_provisioning
    row.groups_claim = body.groups_claim
    row.role_mapping = {group: role.value for group, role in body.role_mapping.items()}
    row.team_mapping = dict(body.team_mapping)
    row.default_role = body.default_role.value if body.default_role else None
    row.updated_at = datetime.now(UTC)
    if body.client_secret is not None:
        nonce = os.urandom(12)
        row.client_secret_nonce = nonce
        row.client_secret_ciphertext = _secret_key(settings, row.tenant_id).encrypt(
            nonce, body.client_secret.get_secret_value().encode(), body.client_id.encode())
    elif client_changed:  # the stored secret belongs to the old client id: drop it
        row.client_secret_nonce = row.client_secret_ciphertext = None
    session.flush()
    record_event(session, principal_or_actor_id=actor, action="identity_provider.update",
                 entity="tenant", entity_id=row.tenant_id, before=before,
                 after=_audit_view(row))
    return row


def delete_provider(session: Session, actor: Principal) -> None:
    row = get_provider(session)
    before = _audit_view(row)
    session.delete(row)
    record_event(session, principal_or_actor_id=actor, action="identity_provider.delete",
                 entity="tenant", entity_id=row.tenant_id, before=before)


def _enabled_provider(session: Session) -> OidcProvider:
    row = _provider(session)
    if row is None or not row.enabled:
        raise NotFound("identity provider")
    return row


def public_provider(tenant_id: uuid.UUID) -> str:
    """The display name of the tenant's enabled provider (404 when it has none)."""
    with tenant_session(tenant_id) as session:
        return _enabled_provider(session).display_name


def _state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


def start_sign_in(tenant_id: uuid.UUID, redirect_uri: str, return_to: str | None,
                  settings: Settings) -> str:
    """Store a pending sign-in and return the provider's authorization URL."""
    with tenant_session(tenant_id) as session:
        row = _enabled_provider(session)
        request = protocol.authorization_request(_client(settings, row), redirect_uri,
                                                 str(tenant_id))
        session.execute(delete(OidcLogin).where(OidcLogin.expires_at < datetime.now(UTC)))
        session.add(OidcLogin(state_hash=_state_hash(request.state),
                              code_verifier=request.code_verifier, nonce=request.nonce,
                              return_to=return_to,
                              expires_at=datetime.now(UTC) + LOGIN_TTL))
    return request.url


@dataclass(frozen=True)
class SignIn:
    issued: auth.IssuedToken
    return_to: str | None


def _tenant_of(state: str) -> uuid.UUID:
    try:
        return uuid.UUID(state.split(".", 1)[0])
    except ValueError:
        raise Unauthorized("unknown sign-in state (not one this server issued)") from None


def _refused(tenant_id: uuid.UUID, issuer: str, problem: ProblemError) -> None:
    """Audit a refused sign-in (`auth.login.refused`, in its own transaction): the request
    fails, the record stays. No user is named: a refusal proves no identity."""
    record_refusal(tenant_id, None, "auth.login", "tenant", tenant_id,
                   f"OIDC sign-in through {issuer}: {problem.detail or problem.title}")


def _consume(tenant_id: uuid.UUID, state: str, settings: Settings
             ) -> tuple[OidcLogin, OidcProvider, protocol.Client]:
    """The pending sign-in of `state`, deleted in its own committed transaction (single use)."""
    with tenant_session(tenant_id) as session:
        pending = session.scalar(
            delete(OidcLogin).where(OidcLogin.state_hash == _state_hash(state))
            .returning(OidcLogin))
        row = _provider(session)
        for found in (pending, row):
            if found is not None:
                session.expunge(found)
    if row is None or not row.enabled:  # no provider (or no tenant): nothing to audit into
        raise Unauthorized("unknown sign-in state (not one this server issued)")
    refusal = None
    if pending is None:
        refusal = Unauthorized("unknown, expired or already used sign-in state (a replayed "
                               "callback?); start the sign-in again")
    elif pending.expires_at < datetime.now(UTC):
        refusal = Unauthorized("the sign-in took longer than 10 minutes; start it again")
    if refusal is not None:
        _refused(tenant_id, row.issuer, refusal)
        raise refusal
    return pending, row, _client(settings, row)


def map_groups(row: OidcProvider, claims: dict[str, Any]) -> tuple[Role, list[str]]:
    """Role and teams from the groups claim: the highest mapped role, every mapped team."""
    raw = claims.get(row.groups_claim) or []
    groups = [raw] if isinstance(raw, str) else [g for g in raw if isinstance(g, str)]
    roles = [Role(row.role_mapping[g]) for g in groups if g in row.role_mapping]
    teams = sorted({row.team_mapping[g] for g in groups if g in row.team_mapping})
    if roles:
        return max(roles, key=ROLE_RANK.__getitem__), teams
    if row.default_role:
        return Role(row.default_role), teams
    named = ", ".join(groups) or f"no '{row.groups_claim}' claim"
    raise Unauthorized(f"none of your groups ({named}) maps to a Paysheet role; ask your "
                       "Paysheet admin to map one")


def _user_for(session: Session, row: OidcProvider, claims: dict[str, Any]) -> uuid.UUID:
    subject, email = str(claims["sub"]), claims.get("email")
    verified = claims.get("email_verified") is True
    role, teams = map_groups(row, claims)
    name = claims.get("name") if isinstance(claims.get("name"), str) else None
    user = tenants.find_sign_in_user(session, subject, email, verified)
    if user is None:
        if not row.jit_provisioning:
            raise Unauthorized("you have no Paysheet account in this tenant; ask an admin")
        if not (isinstance(email, str) and verified):
            raise Unauthorized("the provider gave no verified email, so no account can be "
                               "created (email and email_verified claims)")
        user = tenants.provision_sso_user(session, subject=subject, email=email,
                                          display_name=name, role=role, teams=teams)
    else:
        tenants.sync_sso_user(session, user, subject=subject, role=role, teams=teams,
                              display_name=name)
    return user.id


def finish_sign_in(state: str, code: str, redirect_uri: str, settings: Settings) -> SignIn:
    """The callback: consume the state, exchange the code, check the ID token, issue a token.

    A refusal after the state is consumed carries `return_to` (the add-in shows it)."""
    tenant_id = _tenant_of(state)
    pending, row, client = _consume(tenant_id, state, settings)
    try:
        token = protocol.exchange_code(client, redirect_uri, code, pending.code_verifier)
        claims = protocol.verify_id_token(client, token["id_token"], pending.nonce)
        ttl = timedelta(hours=settings.token_ttl_hours)
        with tenant_session(tenant_id) as session:
            user_id = _user_for(session, row, claims)
            issued = auth.issue_token(session, user_id, ttl)
            session.add(OidcSession(token_id=issued.token_id, id_token=token["id_token"]))
            record_event(session, principal_or_actor_id=user_id, action="auth.login",
                         entity="user", entity_id=user_id,
                         after={"method": "oidc", "issuer": row.issuer,
                                "subject": claims["sub"]})
    except ProblemError as problem:
        _refused(tenant_id, row.issuer, problem)
        problem.return_to = pending.return_to  # type: ignore[attr-defined]
        raise
    return SignIn(issued, pending.return_to)


def refuse_provider_error(state: str, error: str, description: str | None) -> None:
    """The provider sent the browser back with an error: consume the state and say why."""
    tenant_id = _tenant_of(state)
    with tenant_session(tenant_id) as session:
        return_to = session.scalar(
            delete(OidcLogin).where(OidcLogin.state_hash == _state_hash(state))
            .returning(OidcLogin.return_to))
        row = _provider(session)
        issuer = row.issuer if row is not None else None
    refusal = Unauthorized(f"the identity provider refused the sign-in ({error}: "
                           f"{description or 'no description'})")
    if issuer is not None:
        _refused(tenant_id, issuer, refusal)
    refusal.return_to = return_to  # type: ignore[attr-defined]
    raise refusal


def sign_out(session: Session, principal: Principal, settings: Settings) -> str | None:
    """Revoke the caller's token; the provider's logout URL when it was an OIDC sign-in."""
    oidc = session.scalar(select(OidcSession).where(OidcSession.token_id == principal.token_id))
    row = _provider(session)
    auth.logout(session, principal)
    if oidc is None or row is None:
        return None
    return protocol.end_session_url(_client(settings, row), oidc.id_token, None)
