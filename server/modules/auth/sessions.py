"""Sessions in Redis (PRD §11): one key per live token under its tenant's namespace, with
the token's remaining lifetime as TTL, so a request resolves its caller without a database
round trip.

    paysheet:tenant:<tenant>:session:<sha256(token)>   the principal (JSON), TTL = expiry
    paysheet:tenant:<tenant>:user:<user>:sessions      set of "<token id>:<sha256(token)>"

Postgres (`comp.api_tokens`) stays the durable record and the authority: a miss, a record
older than `session_recheck_seconds` or a Redis outage falls back to it (and refills the
key), so a change made outside the API (a tenant deactivated in SQL) is seen within that
bound. Logout, sign-out everywhere, password change/reset, deactivation and any user change
drop the keys, again after their transaction commits (a request racing the commit cannot
leave a stale session behind). Tokens carry their tenant (`<tenant hex>.<secret>`) so the
namespace is known before the lookup; older tokens simply use Postgres.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime

import redis
import structlog
from sqlalchemy import event
from sqlalchemy.orm import Session

from server.modules.auth.permissions import Role
from server.principal import Principal

log = structlog.get_logger(__name__)
PREFIX = "paysheet:tenant:"


def token_tenant(token: str) -> uuid.UUID | None:
    """The tenant a token names (None for tokens from before the prefix)."""
    head, dot, _ = token.partition(".")
    if not dot or len(head) != 32:
        return None
    try:
        return uuid.UUID(hex=head)
    except ValueError:
        return None


class SessionStore:
    def __init__(self, url: str, recheck_seconds: int) -> None:
        self.client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self.recheck_seconds = recheck_seconds

    @staticmethod
    def session_key(tenant_id: uuid.UUID, token_hash: str) -> str:
        return f"{PREFIX}{tenant_id}:session:{token_hash}"

    @staticmethod
    def user_key(tenant_id: uuid.UUID, user_id: uuid.UUID) -> str:
        return f"{PREFIX}{tenant_id}:user:{user_id}:sessions"

    def put(self, principal: Principal, token_hash: str, expires_at: datetime) -> None:
        ttl = int((expires_at - datetime.now(UTC)).total_seconds())
        if ttl <= 0:
            return
        record = {"user_id": str(principal.user_id), "role": principal.role.value,
                  "email": principal.email, "display_name": principal.display_name,
                  "teams": list(principal.teams), "token_id": str(principal.token_id),
                  "checked_at": time.time(), "expires_at": expires_at.timestamp()}
        users = self.user_key(principal.tenant_id, principal.user_id)
        try:
            with self.client.pipeline() as pipe:
                pipe.set(self.session_key(principal.tenant_id, token_hash), json.dumps(record),
                         ex=ttl)
                pipe.sadd(users, f"{principal.token_id}:{token_hash}")
                pipe.expire(users, ttl, gt=True)
                pipe.expire(users, ttl, nx=True)
                pipe.execute()
        except redis.RedisError as exc:
            log.warning("session_store_unavailable", error=str(exc))

    def get(self, tenant_id: uuid.UUID, token_hash: str
            ) -> tuple[Principal, datetime | None] | None:
        """The cached principal and the token's expiry, or None (missing, due for a recheck,
        or Redis down)."""
        try:
            raw = self.client.get(self.session_key(tenant_id, token_hash))
        except redis.RedisError as exc:
            log.warning("session_store_unavailable", error=str(exc))
            return None
        if raw is None:
            return None
        record = json.loads(raw)
        if time.time() - record["checked_at"] > self.recheck_seconds:
            return None
        expires = record.get("expires_at")
        return Principal(user_id=uuid.UUID(record["user_id"]), tenant_id=tenant_id,
                         role=Role(record["role"]), email=record["email"],
                         display_name=record["display_name"], teams=tuple(record["teams"]),
                         token_id=uuid.UUID(record["token_id"])), (
            datetime.fromtimestamp(expires, UTC) if expires is not None else None)

    def drop_user(self, tenant_id: uuid.UUID, user_id: uuid.UUID,
                  only: uuid.UUID | None = None, keep: uuid.UUID | None = None) -> None:
        """Drop the user's session keys (`only` one token, or all but `keep`)."""
        users = self.user_key(tenant_id, user_id)
        try:
            members = [m.decode() for m in self.client.smembers(users)]
            chosen = [m for m in members
                      if (only is None or m.startswith(f"{only}:"))
                      and (keep is None or not m.startswith(f"{keep}:"))]
            if chosen:
                self.client.delete(*(self.session_key(tenant_id, m.split(":", 1)[1])
                                     for m in chosen))
                self.client.srem(users, *chosen)
        except redis.RedisError as exc:
            log.warning("session_store_unavailable", error=str(exc))

    def drop_tenant(self, tenant_id: uuid.UUID) -> int:
        """Every session key of the tenant (deactivation, incident response)."""
        keys = list(self.client.scan_iter(match=f"{PREFIX}{tenant_id}:*", count=500))
        if keys:
            self.client.delete(*keys)
        return len(keys)


def drop_after_commit(session: Session, store: SessionStore, tenant_id: uuid.UUID,
                      user_id: uuid.UUID, only: uuid.UUID | None = None,
                      keep: uuid.UUID | None = None) -> None:
    """Drop now and once more when `session` commits."""
    store.drop_user(tenant_id, user_id, only, keep)
    event.listen(session, "after_commit",
                 lambda _s: store.drop_user(tenant_id, user_id, only, keep), once=True)
