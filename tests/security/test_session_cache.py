"""The API process's cache of resolved tokens (auth/session_cache.py) never outlives a
revocation or a role change made through the API: in the process that made it at once, in
every other process when PostgreSQL delivers the NOTIFY sent by the change's transaction.
Real PostgreSQL (LISTEN/NOTIFY) and Redis; the "other process" is a second cache with its
own listener connection, as a second `uvicorn` worker has."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.modules.auth import service as auth
from server.modules.auth.service import configure_sessions, hash_token
from server.modules.auth.session_cache import SessionCache
from server.principal import Principal, Role

API = "/api/v1"
LISTEN_WAIT = 60.0  # a safety net against a hang, never a timing assertion


def _listening(cache: SessionCache) -> SessionCache:
    """Start the cache's listener (its first lookup does) and wait until it is connected."""
    cache.get("start")
    assert cache._listening.wait(LISTEN_WAIT), "the LISTEN connection never came up"
    return cache


def _me(client: TestClient, token: str) -> tuple[int, str | None]:
    answer = client.get(f"{API}/me", headers={"Authorization": f"Bearer {token}"})
    return answer.status_code, answer.json().get("role") if answer.status_code == 200 else None


@pytest.fixture(params=["postgres", "redis"])
def cached_client(request, settings, redis_url) -> Iterator[TestClient]:
    """The API with the session cache on, sessions in PostgreSQL only or also in Redis."""
    chosen = settings.model_copy(update={
        "session_cache_seconds": 3600.0,  # only an invalidation can end an entry here
        "redis_url": redis_url if request.param == "redis" else None})
    try:
        with TestClient(create_app(chosen)) as client:
            _listening(auth._sessions.cache)
            yield client
    finally:
        configure_sessions(settings)


def _cached(token: str) -> bool:
    return auth._sessions.cache.get(hash_token(token)) is not None


def test_logout_and_revoke_refuse_a_cached_token_at_once(cached_client, make_tenant) -> None:
    tenant = make_tenant()
    hr, finance = tenant.users["hr"], tenant.users["finance"]
    for user in (hr, finance):
        assert _me(cached_client, user.token) == (200, user.role.value)
        assert _cached(user.token)
    assert cached_client.post(f"{API}/auth/logout", headers=hr.headers).status_code == 204
    assert _me(cached_client, hr.token) == (401, None)
    revoked = cached_client.post(f"{API}/users/{finance.id}/sessions/revoke",
                                 headers=tenant.users["admin"].headers)
    assert revoked.status_code == 200 and revoked.json()["revoked"] == 1
    assert _me(cached_client, finance.token) == (401, None)


def test_role_change_and_deactivation_take_effect_at_once(cached_client, make_tenant) -> None:
    tenant = make_tenant()
    admin, finance = tenant.users["admin"].headers, tenant.users["finance"]
    assert _me(cached_client, finance.token) == (200, "finance")
    assert _cached(finance.token)
    changed = cached_client.patch(f"{API}/users/{finance.id}", headers=admin,
                                  json={"role": "auditor"})
    assert changed.status_code == 200, changed.text
    assert _me(cached_client, finance.token) == (200, "auditor")
    cached_client.patch(f"{API}/users/{finance.id}", headers=admin, json={"is_active": False})
    assert _me(cached_client, finance.token) == (401, None)


def test_another_process_drops_the_user_when_the_change_commits(cached_client,
                                                                make_tenant) -> None:
    """A second listener stands for a second API process: the revoke's NOTIFY reaches it."""
    tenant = make_tenant()
    finance = tenant.users["finance"]
    other = _listening(SessionCache(cached_client.app.state.settings.database_url, 3600.0))
    try:
        noticed = threading.Event()
        on_notice = other._on_notice

        def observed(payload: str) -> None:
            on_notice(payload)
            if payload == f"{tenant.id}:{finance.id}":
                noticed.set()

        other._on_notice = observed  # type: ignore[method-assign]
        status, _ = _me(cached_client, finance.token)
        principal = auth._sessions.cache.get(hash_token(finance.token))
        assert status == 200 and principal is not None
        other.put(hash_token(finance.token), principal, None, since=time.monotonic())
        assert other.get(hash_token(finance.token)) == principal
        revoked = cached_client.post(f"{API}/users/{finance.id}/sessions/revoke",
                                     headers=tenant.users["admin"].headers)
        assert revoked.json()["revoked"] == 1
        assert noticed.wait(LISTEN_WAIT), "the other process never heard of the revoke"
        assert other.get(hash_token(finance.token)) is None
    finally:
        other.stop()


def _principal(tenant_id: uuid.UUID, user_id: uuid.UUID) -> Principal:
    return Principal(user_id=user_id, tenant_id=tenant_id, role=Role.HR, email="x@y.z",
                     display_name=None, teams=(), token_id=uuid.uuid4())


def test_a_lookup_that_raced_a_drop_is_not_cached(settings) -> None:
    """A principal read before (or just before) the user's drop may be the old one."""
    cache = _listening(SessionCache(settings.database_url, 3600.0))
    try:
        tenant, user = uuid.uuid4(), uuid.uuid4()
        before_drop = time.monotonic()
        cache.drop_user(tenant, user)
        cache.put("h1", _principal(tenant, user), None, since=before_drop)
        assert cache.get("h1") is None
        cache.put("h2", _principal(tenant, user), None, since=time.monotonic())
        assert cache.get("h2") is None, "within the quiet spell after a drop"
        someone = _principal(tenant, uuid.uuid4())
        cache.put("h3", someone, None, since=time.monotonic())
        assert cache.get("h3") == someone
    finally:
        cache.stop()


def test_nothing_is_served_while_the_listener_is_down(settings) -> None:
    """Without its LISTEN connection a process could miss a drop: it serves nothing."""
    cache = _listening(SessionCache(settings.database_url, 3600.0))
    someone = _principal(uuid.uuid4(), uuid.uuid4())
    cache.put("h", someone, None, since=time.monotonic())
    assert cache.get("h") == someone
    cache.stop()
    assert cache.get("h") is None
    cache.put("h", someone, None, since=time.monotonic())
    assert cache.get("h") is None
