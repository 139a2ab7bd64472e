"""Sessions in Redis under a tenant namespace with the token's TTL (PRD §11): login writes
the session, requests read it, logout / sign-out everywhere / user changes drop it, and a
change made in Postgres behind the API's back is seen within the recheck bound."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from fastapi.testclient import TestClient

from server.app import create_app
from server.modules.auth.service import configure_login_policy, configure_sessions

API = "/api/v1"


@pytest.fixture
def redis_client(settings, redis_url) -> Iterator[tuple[TestClient, redis.Redis]]:
    with_redis = settings.model_copy(update={"redis_url": redis_url,
                                             "session_recheck_seconds": 3600})
    try:
        with TestClient(create_app(with_redis)) as client:
            yield client, redis.Redis.from_url(redis_url)
    finally:  # sessions and login policy are process state: back to the shared app's
        configure_sessions(settings)
        configure_login_policy(settings)


def _login(client, user) -> str:
    answer = client.post(f"{API}/auth/token", json={"email": user.email,
                                                    "password": user.password})
    assert answer.status_code == 200, answer.text
    return answer.json()["access_token"]


def _keys(store: redis.Redis, tenant) -> list[str]:
    return sorted(k.decode() for k in store.scan_iter(
        match=f"paysheet:tenant:{tenant.id}:session:*"))


def test_session_lives_in_the_tenant_namespace_with_the_token_ttl(redis_client, make_tenant,
                                                                  settings) -> None:
    client, store = redis_client
    tenant = make_tenant()
    token = _login(client, tenant.users["hr"])
    assert token.startswith(tenant.id.hex + ".")
    keys = _keys(store, tenant)
    assert len(keys) == 1
    ttl = store.ttl(keys[0])
    assert settings.token_ttl_hours * 3600 - 60 < ttl <= settings.token_ttl_hours * 3600
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"{API}/me", headers=headers).json()["role"] == "hr"
    assert client.post(f"{API}/auth/logout", headers=headers).status_code == 204
    assert _keys(store, tenant) == []
    assert client.get(f"{API}/me", headers=headers).status_code == 401


def test_revoke_all_and_role_change_drop_cached_sessions(redis_client, make_tenant) -> None:
    client, store = redis_client
    tenant = make_tenant()
    token = _login(client, tenant.users["finance"])
    headers = {"Authorization": f"Bearer {token}"}
    client.get(f"{API}/me", headers=tenant.users["auditor"].headers)  # cached via request
    assert len(_keys(store, tenant)) == 2
    changed = client.patch(f"{API}/users/{tenant.users['finance'].id}",
                           headers=tenant.users["admin"].headers, json={"role": "auditor"})
    assert changed.status_code == 200
    assert client.get(f"{API}/me", headers=headers).json()["role"] == "auditor"
    revoked = client.post(f"{API}/users/{tenant.users['auditor'].id}/sessions/revoke",
                          headers=tenant.users["admin"].headers)
    assert revoked.json()["revoked"] == 1
    assert client.get(f"{API}/me", headers=tenant.users["auditor"].headers).status_code == 401
    remaining = _keys(store, tenant)
    assert all(tenant.users["auditor"].token not in key for key in remaining)


def test_postgres_stays_the_authority_after_the_recheck(redis_client, make_tenant, owner_conn,
                                                        settings, redis_url) -> None:
    client, _store = redis_client
    tenant = make_tenant()
    token = _login(client, tenant.users["hr"])
    headers = {"Authorization": f"Bearer {token}"}
    owner_conn.execute("update comp.tenants set is_active = false where id = %s", (tenant.id,))
    assert client.get(f"{API}/me", headers=headers).status_code == 200  # cached session
    configure_sessions(settings.model_copy(update={"redis_url": redis_url,
                                                   "session_recheck_seconds": 0}))
    assert client.get(f"{API}/me", headers=headers).status_code == 401
