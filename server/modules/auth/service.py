"""Passwords (argon2), opaque bearer tokens (SHA-256 at rest), login and logout.

Login and token resolution happen before a tenant is known, so they call the SECURITY
DEFINER functions `comp.auth_login_candidates` / `comp.auth_resolve_token` (migration 0001),
which return only what authentication needs; RLS stays on for everything else.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select, text, update
from sqlalchemy.orm import Session

from server.db.session import get_engine, system_session, tenant_session
from server.errors import ProblemError, Unauthorized, UnprocessableEntity
from server.modules.audit.service import record_event
from server.modules.auth.models import ApiToken
from server.modules.auth.permissions import Role
from server.modules.auth.session_cache import SessionCache, notify_on_commit
from server.modules.auth.sessions import SessionStore, drop_after_commit, token_tenant
from server.modules.auth.throttle import (
    MemoryThrottle,
    RedisThrottle,
    ThrottlePolicy,
    build_throttle,
)
from server.principal import Principal
from server.settings import Settings


class LoginLocked(ProblemError):
    """429 while failed logins lock the account or the client address (Retry-After)."""

    def __init__(self, retry_after_seconds: int, what: str) -> None:
        super().__init__(429, "Too Many Requests",
                         f"too many failed logins for this {what}; retry in "
                         f"{retry_after_seconds} s", headers={"Retry-After":
                                                              str(retry_after_seconds)})


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
    token = f"{uuid.UUID(str(session.info['tenant_id'])).hex}.{secrets.token_urlsafe(32)}"
    row = ApiToken(
        user_id=user_id, token_hash=hash_token(token), expires_at=datetime.now(UTC) + ttl
    )
    session.add(row)
    session.flush()
    return IssuedToken(token, row.id, user_id, session.info["tenant_id"], row.expires_at)


@dataclass
class LoginPolicy:
    """Lockout and one-time password rules (settings; tests use their own)."""

    lockout_threshold: int = 5
    lockout_base_seconds: int = 30
    lockout_cap_seconds: int = 3600
    one_time_password_hours: int = 72
    addresses: MemoryThrottle | RedisThrottle = field(
        default_factory=lambda: MemoryThrottle(ThrottlePolicy()))


_policy = LoginPolicy()


def configure_login_policy(settings: Settings) -> None:
    """Read the account settings; per-address counters go to Redis when it is configured."""
    global _policy
    _policy = LoginPolicy(
        settings.login_lockout_threshold, settings.login_lockout_base_seconds,
        settings.login_lockout_cap_seconds, settings.one_time_password_hours,
        build_throttle(settings.redis_url, ThrottlePolicy(
            settings.login_address_threshold, settings.login_address_window_seconds,
            settings.login_lockout_base_seconds, settings.login_lockout_cap_seconds)))


def one_time_password_expiry() -> datetime:
    """When a one-time password issued now stops working."""
    return datetime.now(UTC) + timedelta(hours=_policy.one_time_password_hours)


@dataclass(frozen=True)
class IssuedLogin(IssuedToken):
    password_change_required: bool = False


def _candidates(email: str, tenant_id: uuid.UUID | None) -> list[Any]:
    with system_session() as session:
        rows = session.execute(text("select * from comp.auth_login_state(:e)"),
                               {"e": email.strip().lower()}).all()
    return [row for row in rows if tenant_id is None or row.tenant_id == tenant_id]


def _refuse_locked(rows: list[Any], now: datetime) -> list[Any]:
    """The candidates not locked; 429 when every one is (no hash computed for them)."""
    unlocked = [row for row in rows if not (row.locked_until and row.locked_until > now)]
    if rows and not unlocked:
        until = min(row.locked_until for row in rows)
        raise LoginLocked(max(1, math.ceil((until - now).total_seconds())), "account")
    return unlocked


def _failed(rows: list[Any], client: str) -> None:
    _policy.addresses.failed(client)
    if not rows:
        return
    with system_session() as session:
        for row in rows:
            session.execute(text("select comp.auth_login_failed(:u, :t, :b, :c)"),
                            {"u": row.user_id, "t": _policy.lockout_threshold,
                             "b": _policy.lockout_base_seconds,
                             "c": _policy.lockout_cap_seconds})


def login(
    email: str, password: str, ttl: timedelta, tenant_id: uuid.UUID | None = None,
    client: str = "unknown",
) -> IssuedLogin:
    """Email + password → token. With the same email in several tenants, `tenant_id` picks one.

    Refused with 429 while the client address or every matching account is locked; a wrong
    password counts against both. A one-time password works once and before its expiry."""
    wait = _policy.addresses.wait(client)
    if wait > 0:
        raise LoginLocked(max(1, math.ceil(wait)), "client address")
    now = datetime.now(UTC)
    rows = _refuse_locked(_candidates(email, tenant_id), now)
    matches = [row for row in rows if verify_password(row.password_hash, password)]
    if not rows:
        verify_password(_hashing_state.dummy_hash, password)
    if not matches:
        _failed(rows, client)
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
    match = matches[0]
    if match.is_temporary and match.expires_at is not None and match.expires_at <= now:
        raise Unauthorized("this one-time password has expired; ask an admin for a reset")
    with system_session() as session:
        won = session.scalar(text("select comp.auth_login_succeeded(:u, :h)"),
                             {"u": match.user_id, "h": match.password_hash})
    if not won:  # a concurrent login consumed the one-time password first
        raise Unauthorized("email or password is wrong")
    with tenant_session(match.tenant_id) as session:
        issued = issue_token(session, match.user_id, ttl)
        record_event(
            session,
            principal_or_actor_id=match.user_id,
            action="auth.login",
            entity="user",
            entity_id=match.user_id,
            after={"one_time_password": True} if match.is_temporary else None,
        )
    if _sessions.store is not None:
        resolve_token(issued.token)  # the session goes to Redis now, not on first use
    return IssuedLogin(**vars(issued), password_change_required=bool(match.is_temporary))


_RESOLVE_SESSION = text("select * from comp.auth_resolve_session(:h)")


@dataclass
class _Sessions:
    store: SessionStore | None = None
    cache: SessionCache | None = None


_sessions = _Sessions()


def configure_sessions(settings: Settings) -> None:
    """Sessions in Redis when REDIS_URL is set (else every request reads Postgres), and an
    in-process cache of resolved tokens unless SESSION_CACHE_SECONDS is 0."""
    _sessions.store = (SessionStore(settings.redis_url, settings.session_recheck_seconds)
                       if settings.redis_url else None)
    if _sessions.cache is not None:
        _sessions.cache.stop()
    _sessions.cache = (SessionCache(settings.database_url, settings.session_cache_seconds)
                       if settings.database_url and settings.session_cache_seconds > 0
                       else None)


def stop_sessions() -> None:
    """App shutdown: end the session cache's LISTEN connection (and serve nothing from it)."""
    if _sessions.cache is not None:
        _sessions.cache.stop()


def cached_principal(token: str) -> Principal | None:
    """The principal of a token this process resolved moments ago, from memory (no I/O, so
    fit for the event loop), or None: then `resolve_token` decides."""
    cache = _sessions.cache
    return cache.get(hash_token(token)) if cache is not None else None


def resolve_token(token: str) -> Principal | None:
    """The principal behind a live token, or None (unknown, expired, revoked, inactive).

    A token this process resolved moments ago answers from memory (session_cache.py); with
    Redis, a live session key answers without touching Postgres (sessions.py). Else it is
    one statement on a pooled connection in autocommit (no ORM session, no BEGIN/COMMIT
    round trips): a read of the definer function only."""
    token_hash = hash_token(token)
    cache, since = _sessions.cache, time.monotonic()
    if cache is not None:
        principal = cache.get(token_hash)
        if principal is not None:
            return principal
    principal, expires_at = _lookup(token, token_hash)
    if principal is not None and cache is not None:
        cache.put(token_hash, principal, expires_at, since)
    return principal


def _lookup(token: str, token_hash: str) -> tuple[Principal | None, datetime | None]:
    """The principal from Redis, else PostgreSQL (refilling Redis), with the token's expiry."""
    store, tenant_id = _sessions.store, token_tenant(token)
    if store is not None and tenant_id is not None:
        cached = store.get(tenant_id, token_hash)
        if cached is not None:
            return cached
    with get_engine().connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        row = connection.execute(_RESOLVE_SESSION, {"h": token_hash}).first()
    if row is None or (tenant_id is not None and row.tenant_id != tenant_id):
        return None, None
    principal = _principal(row)
    if store is not None and tenant_id is not None:
        store.put(principal, token_hash, row.expires_at)
    return principal, row.expires_at


def _principal(row: Any) -> Principal:
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
    notify_on_commit(session, _sessions.cache, principal.tenant_id, principal.user_id)
    if _sessions.store is not None:
        drop_after_commit(session, _sessions.store, principal.tenant_id, principal.user_id,
                          only=principal.token_id)
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


def revoke_user_tokens(session: Session, user_id: uuid.UUID,
                       keep: uuid.UUID | None = None) -> int:
    """Revoke every live token of a user but `keep` (deactivation, password change or
    reset, sign-out everywhere); returns how many were revoked."""
    query = select(ApiToken.id).where(ApiToken.user_id == user_id, ApiToken.revoked_at.is_(None))
    if keep is not None:
        query = query.where(ApiToken.id != keep)
    ids = session.scalars(query).all()
    forget_sessions(session, user_id, keep)
    if ids:
        session.execute(
            update(ApiToken).where(ApiToken.id.in_(ids)).values(revoked_at=datetime.now(UTC))
        )
    return len(ids)


def forget_sessions(session: Session, user_id: uuid.UUID, keep: uuid.UUID | None = None) -> None:
    """Drop the user's sessions (all but `keep`) from Redis and, once the transaction
    commits, from every API process's cache: their tokens are revoked, or their role, teams
    or state changed and the next request must read Postgres."""
    notify_on_commit(session, _sessions.cache, session.info["tenant_id"], user_id)
    if _sessions.store is not None:
        drop_after_commit(session, _sessions.store, session.info["tenant_id"], user_id,
                          keep=keep)
