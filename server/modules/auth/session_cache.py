"""Resolved tokens cached in the API process for a few seconds (`SESSION_CACHE_SECONDS`).

Resolving a bearer token costs a Redis read or a PostgreSQL query (and a pool checkout) on
every request, a third of a cheap read's CPU. This cache answers a repeated token from
memory instead. What keeps it honest:

- Every change that must reach sessions (logout, sign-out everywhere, password change or
  reset, deactivation, role or team change) goes through `auth.service`, which sends
  `NOTIFY paysheet_sessions, '<tenant>:<user>'` in its own transaction. PostgreSQL delivers
  it on commit to every API process, each of which LISTENs on one dedicated connection (a
  daemon thread) and drops that user's entries. The process that made the change drops them
  itself right after its commit too, so its next request already sees the change. For
  `QUIET` seconds after a drop that user's sessions are not cached again (a lookup racing
  the change, or another process's Redis copy lagging its commit, cannot refill it).
- Entries are served only while the listener is connected: while it reconnects (database
  restart), every request resolves through Redis or PostgreSQL again, and the cache is
  emptied before serving resumes.
- An entry lives at most `SESSION_CACHE_SECONDS` (and never past the token's expiry). That
  is the bound for changes made outside the API (SQL by hand), on top of the Redis
  session's `SESSION_RECHECK_SECONDS` when Redis is used, and for a notification lost on a
  connection that broke before the listener noticed.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg
import structlog
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from server.principal import Principal

CHANNEL = "paysheet_sessions"
MAX_ENTRIES = 20_000
QUIET = 2.0  # seconds after a user's drop during which their sessions are not cached
log = structlog.get_logger(__name__)
_NOTIFY = text(f"select pg_notify('{CHANNEL}', :payload)")


@dataclass(frozen=True)
class _Entry:
    principal: Principal
    until: float  # time.monotonic() after which the entry is not served


class SessionCache:
    """token hash -> principal, with a LISTEN thread that drops users' entries on notice."""

    def __init__(self, database_url: str, seconds: float) -> None:
        self.database_url = database_url
        self.seconds = seconds
        self._entries: dict[str, _Entry] = {}
        self._dropped: dict[tuple[uuid.UUID, uuid.UUID], float] = {}  # user -> when
        self._cleared_at = -1.0
        self._lock = threading.Lock()
        self._listening = threading.Event()
        self._stopped = threading.Event()
        self._thread: threading.Thread | None = None

    def get(self, token_hash: str) -> Principal | None:
        """The cached principal, or None (missing, stale, or the listener is not connected)."""
        if not self._listening.is_set():
            self._start()
            return None
        entry = self._entries.get(token_hash)
        if entry is None or entry.until < time.monotonic():
            return None
        return entry.principal

    def put(self, token_hash: str, principal: Principal, expires_at: datetime | None,
            since: float) -> None:
        """Cache a principal that a lookup started at `since` (time.monotonic()) resolved from
        Redis or PostgreSQL; not when the user's sessions were dropped since (or just before:
        another process's Redis copy may lag its commit by a moment), nor past expiry."""
        now = time.monotonic()
        until = now + self.seconds
        if expires_at is not None:
            until = min(until, now + (expires_at - datetime.now(UTC)).total_seconds())
        user = (principal.tenant_id, principal.user_id)
        with self._lock:
            if (not self._listening.is_set() or self._cleared_at >= since
                    or self._dropped.get(user, -math.inf) >= since - QUIET):
                return
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()  # a burst of distinct tokens: start over, never grow
            self._entries[token_hash] = _Entry(principal, until)

    def drop_user(self, tenant_id: uuid.UUID, user_id: uuid.UUID) -> None:
        now = time.monotonic()
        with self._lock:
            self._dropped = {u: at for u, at in self._dropped.items() if at > now - QUIET}
            self._dropped[(tenant_id, user_id)] = now
            self._entries = {h: e for h, e in self._entries.items()
                             if not (e.principal.user_id == user_id
                                     and e.principal.tenant_id == tenant_id)}

    def clear(self) -> None:
        with self._lock:
            self._cleared_at = time.monotonic()
            self._entries = {}

    def stop(self) -> None:
        """End the listener (reconfiguration, tests); the cache then serves nothing."""
        self._stopped.set()
        self._listening.clear()
        self.clear()

    def _start(self) -> None:
        with self._lock:
            if self._thread is not None or self._stopped.is_set():
                return
            self._thread = threading.Thread(target=self._listen, name="session-cache",
                                            daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        while not self._stopped.is_set():
            try:
                with psycopg.connect(self.database_url, autocommit=True,
                                     connect_timeout=5) as connection:
                    connection.execute(f"LISTEN {CHANNEL}")
                    self.clear()  # whatever was missed while not listening
                    self._listening.set()
                    while not self._stopped.is_set():
                        for notice in connection.notifies(timeout=1.0):
                            self._on_notice(notice.payload)
            except psycopg.Error as exc:
                log.warning("session_cache_listener_down", error=str(exc))
            finally:
                self._listening.clear()
                self.clear()
            self._stopped.wait(1.0)

    def _on_notice(self, payload: str) -> None:
        tenant, _, user = payload.partition(":")
        try:
            self.drop_user(uuid.UUID(tenant), uuid.UUID(user))
        except ValueError:
            self.clear()


def notify_on_commit(session: Session, cache: SessionCache | None, tenant_id: uuid.UUID,
                     user_id: uuid.UUID) -> None:
    """Tell every API process, when `session` commits, to drop the user's cached sessions;
    this process drops them now and again right after the commit."""
    session.execute(_NOTIFY, {"payload": f"{tenant_id}:{user_id}"})
    if cache is None:
        return
    cache.drop_user(tenant_id, user_id)
    event.listen(session, "after_commit", lambda _s: cache.drop_user(tenant_id, user_id),
                 once=True)
