"""Passwords (argon2), opaque bearer tokens (SHA-256 at rest), login and logout.

Login and token resolution happen before a tenant is known, so they call the SECURITY
DEFINER functions `comp.auth_login_candidates` / `comp.auth_resolve_token` (migration 0001),
which return only what authentication needs; RLS stays on for everything else.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from server.db.session import get_engine, system_session, tenant_session
from server.errors import Unauthorized, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.auth.models import ApiToken
from server.modules.auth.permissions import Role
from server.principal import Principal


@dataclass
class _Hashing:
    hasher: PasswordHasher
    dummy_hash: str  # verified when the email is unknown: a miss costs as much as a bad password


def _hashing(time_cost: int = 3, memory_kib: int = 65536, parallelism: int = 4) -> _Hashing:
    hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism)
    return _Hashing(hasher, hasher.hash(secrets.token_urlsafe(16)))


_hashing_state = _hashing()


def configure_password_hashing(time_cost: int, memory_kib: int, parallelism: int) -> None:
    """Argon2 cost for new hashes (verification reads the cost stored in each hash)."""
    global _hashing_state
    _hashing_state = _hashing(time_cost, memory_kib, parallelism)


def hash_password(password: str) -> str:
    return _hashing_state.hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hashing_state.hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def new_password() -> str:
    """A one-time password: 16 random URL-safe characters."""
    return secrets.token_urlsafe(12)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    token: str
    token_id: uuid.UUID
    user_id: uuid.UUID
    tenant_id: uuid.UUID
    expires_at: datetime


def issue_token(session: Session, user_id: uuid.UUID, ttl: timedelta) -> IssuedToken:
    """Store a token for `user_id` in the session's tenant; its clear text is returned once."""
    token = secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user_id, token_hash=hash_token(token), expires_at=datetime.now(UTC) + ttl
    )
    session.add(row)
    session.flush()
    return IssuedToken(token, row.id, user_id, session.info["tenant_id"], row.expires_at)


def login(
    email: str, password: str, ttl: timedelta, tenant_id: uuid.UUID | None = None
) -> IssuedToken:
    """Email + password → token. With the same email in several tenants, `tenant_id` picks one."""
    with system_session() as session:
        rows = session.execute(
            text("select user_id, tenant_id, password_hash from comp.auth_login_candidates(:e)"),
            {"e": email.strip().lower()},
        ).all()
    if tenant_id is not None:
        rows = [row for row in rows if row.tenant_id == tenant_id]
    matches = [row for row in rows if verify_password(row.password_hash, password)]
    if not rows:
        verify_password(_hashing_state.dummy_hash, password)
    if not matches:
        raise Unauthorized("email or password is wrong")
    if len(matches) > 1:
        raise UnprocessableEntity(
            [
                {
                    "loc": ["body", "tenant_id"],
                    "msg": "this login exists in several tenants; give tenant_id",
                    "type": "missing",
                }
            ]
        )
    user_id, user_tenant = matches[0].user_id, matches[0].tenant_id
    with tenant_session(user_tenant) as session:
        issued = issue_token(session, user_id, ttl)
        record_event(
            session,
            principal_or_actor_id=user_id,
            action="auth.login",
            entity="user",
            entity_id=user_id,
        )
    return issued


_RESOLVE = text("select * from comp.auth_resolve_token(:h)")


def resolve_token(token: str) -> Principal | None:
    """The principal behind a live token, or None (unknown, expired, revoked, inactive).

    Every request pays for this, so it is one statement on a pooled connection in autocommit
    (no ORM session, no BEGIN/COMMIT round trips): a read of the definer function only."""
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = connection.execute(_RESOLVE, {"h": hash_token(token)}).first()
    if row is None:
        return None
    return Principal(
        user_id=row.user_id,
        tenant_id=row.tenant_id,
        role=Role(row.role),
        email=row.email,
        display_name=row.display_name,
        teams=tuple(row.teams or ()),
        token_id=row.token_id,
    )


def logout(session: Session, principal: Principal) -> None:
    """Revoke the token the caller used."""
    session.execute(
        update(ApiToken)
        .where(ApiToken.id == principal.token_id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    record_event(
        session,
        principal_or_actor_id=principal,
        action="auth.logout",
        entity="user",
        entity_id=principal.user_id,
    )


def revoke_user_tokens(session: Session, user_id: uuid.UUID) -> int:
    """Revoke every live token of a user (deactivation); returns how many were revoked."""
    ids = session.scalars(
        select(ApiToken.id).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    ).all()
    if ids:
        session.execute(
            update(ApiToken).where(ApiToken.id.in_(ids)).values(revoked_at=datetime.now(UTC))
        )
    return len(ids)
