"""Accounts (issue 15): one-time passwords work once and expire, password change and reset,
lockout with backoff per account and per client address, sign-out everywhere, and rate
limits keyed by client address and account rather than by a header the client invents."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from server.app import create_app
from server.modules.auth.service import configure_login_policy

API = "/api/v1"
GOOD = "a long enough passphrase 42"


def _login(client, email: str, password: str):
    return client.post(f"{API}/auth/token", json={"email": email, "password": password})


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _new_user(client, tenant, role: str = "finance") -> dict:
    created = client.post(f"{API}/tenants/{tenant.id}/users", headers=tenant.users["admin"].headers,
                          json={"email": f"{uuid.uuid4().hex[:8]}@acct.example.com",
                                "role": role})
    assert created.status_code == 201, created.text
    return created.json()


def test_one_time_password_works_once_then_a_new_password(client, make_tenant) -> None:
    tenant = make_tenant()
    user = _new_user(client, tenant)
    first = _login(client, user["email"], user["one_time_password"])
    assert first.status_code == 200 and first.json()["password_change_required"] is True
    again = _login(client, user["email"], user["one_time_password"])
    assert again.status_code == 401  # single use
    token = first.json()["access_token"]
    short = client.put(f"{API}/me/password", headers=_bearer(token),
                       json={"new_password": "short"})
    assert short.status_code == 422 and short.json()["errors"][0]["loc"] == [
        "body", "new_password"]
    assert client.put(f"{API}/me/password", headers=_bearer(token),
                      json={"new_password": GOOD}).status_code == 204
    relogin = _login(client, user["email"], GOOD)
    assert relogin.status_code == 200 and relogin.json()["password_change_required"] is False
    assert client.get(f"{API}/me", headers=_bearer(token)).status_code == 200  # kept


def test_expired_one_time_password_is_refused(client, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    user = _new_user(client, tenant)
    owner_conn.execute("update comp.users set password_expires_at = now() - interval '1 s' "
                       "where id = %s", (user["id"],))
    refused = _login(client, user["email"], user["one_time_password"])
    assert refused.status_code == 401 and "expired" in refused.json()["detail"]


def test_password_change_needs_the_current_one_and_signs_out_elsewhere(client, make_tenant):
    tenant = make_tenant()
    user = _new_user(client, tenant)
    first = _login(client, user["email"], user["one_time_password"]).json()["access_token"]
    client.put(f"{API}/me/password", headers=_bearer(first), json={"new_password": GOOD})
    other = _login(client, user["email"], GOOD).json()["access_token"]
    wrong = client.put(f"{API}/me/password", headers=_bearer(first),
                       json={"current_password": "nope", "new_password": GOOD + "!"})
    assert wrong.status_code == 403
    changed = client.put(f"{API}/me/password", headers=_bearer(first),
                         json={"current_password": GOOD, "new_password": GOOD + "!"})
    assert changed.status_code == 204
    assert client.get(f"{API}/me", headers=_bearer(other)).status_code == 401
    assert client.get(f"{API}/me", headers=_bearer(first)).status_code == 200


def test_admin_reset_gives_a_one_time_password_and_revokes(client, make_tenant) -> None:
    tenant, elsewhere = make_tenant(), make_tenant()
    victim = tenant.users["hr"]
    path = f"{API}/users/{victim.id}/password-reset"
    assert client.post(path, headers=tenant.users["hr"].headers).status_code == 403
    assert client.post(path, headers=elsewhere.users["admin"].headers).status_code == 404
    reset = client.post(path, headers=tenant.users["admin"].headers)
    assert reset.status_code == 200, reset.text
    assert client.get(f"{API}/me", headers=victim.headers).status_code == 401
    assert _login(client, victim.email, victim.password).status_code == 401  # old password
    fresh = _login(client, victim.email, reset.json()["one_time_password"])
    assert fresh.status_code == 200 and fresh.json()["password_change_required"] is True
    events = client.get(f"{API}/audit", params={"entity_id": str(victim.id)},
                        headers=tenant.users["auditor"].headers).json()["items"]
    assert "user.password_reset" in [e["action"] for e in events]
    assert all(reset.json()["one_time_password"] not in str(e) for e in events)


def test_sign_out_everywhere(client, make_tenant) -> None:
    tenant = make_tenant()
    user = _new_user(client, tenant)
    token = _login(client, user["email"], user["one_time_password"]).json()["access_token"]
    client.put(f"{API}/me/password", headers=_bearer(token), json={"new_password": GOOD})
    second = _login(client, user["email"], GOOD).json()["access_token"]
    revoked = client.post(f"{API}/me/sessions/revoke", headers=_bearer(second))
    assert revoked.json() == {"revoked": 2}
    assert client.get(f"{API}/me", headers=_bearer(token)).status_code == 401
    admin = client.post(f"{API}/users/{tenant.users['auditor'].id}/sessions/revoke",
                        headers=tenant.users["admin"].headers)
    assert admin.json() == {"revoked": 1}
    assert client.get(f"{API}/me", headers=tenant.users["auditor"].headers).status_code == 401


def test_account_lockout_with_backoff(client, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    user = _new_user(client, tenant)
    token = _login(client, user["email"], user["one_time_password"]).json()["access_token"]
    client.put(f"{API}/me/password", headers=_bearer(token), json={"new_password": GOOD})
    assert [_login(client, user["email"], f"wrong{i}").status_code for i in range(5)] == [401] * 5
    locked = _login(client, user["email"], GOOD)  # the right password, but locked
    assert locked.status_code == 429 and "account" in locked.json()["detail"]
    assert int(locked.headers["Retry-After"]) > 0

    def lock_seconds() -> float:
        return float(owner_conn.execute(
            "select extract(epoch from locked_until - now()) from comp.users where id = %s",
            (user["id"],)).fetchone()[0])

    first = lock_seconds()
    owner_conn.execute("update comp.users set locked_until = now() - interval '1 s' "
                       "where id = %s", (user["id"],))
    assert _login(client, user["email"], "wrong again").status_code == 401
    assert lock_seconds() > first * 1.5  # the sixth failure doubles the delay
    reset = client.post(f"{API}/users/{user['id']}/password-reset",
                        headers=tenant.users["admin"].headers).json()
    assert _login(client, user["email"], reset["one_time_password"]).status_code == 200


@pytest.fixture
def strict_app(settings) -> Iterator[TestClient]:
    """An app with tight address limits; the login policy is process state: restore it."""
    strict = settings.model_copy(update={"login_address_threshold": 3})
    with TestClient(create_app(strict), client=("198.51.100.7", 4000)) as test_client:
        yield test_client
    configure_login_policy(settings)


def test_client_address_lockout(strict_app, make_tenant) -> None:
    tenant = make_tenant()
    for index in range(3):  # one address guessing several accounts
        assert _login(strict_app, f"nobody{index}@x.example.com", "guess").status_code == 401
    blocked = _login(strict_app, tenant.users["hr"].email, tenant.users["hr"].password)
    assert blocked.status_code == 429 and "client address" in blocked.json()["detail"]


def test_made_up_bearer_tokens_share_the_address_bucket(settings) -> None:
    # One token a minute: four requests never earn a refill, however loaded the machine.
    limited = settings.model_copy(update={"rate_limit_per_minute": 1, "rate_limit_burst": 3})
    try:
        with TestClient(create_app(limited), client=("198.51.100.8", 4000)) as test_client:
            answers = [test_client.post(f"{API}/auth/logout",
                                        headers=_bearer(uuid.uuid4().hex)).status_code
                       for _ in range(4)]
    finally:
        configure_login_policy(settings)
    assert answers[:3] == [401, 401, 401] and answers[3] == 429


def test_one_account_is_limited_across_addresses(settings, make_tenant) -> None:
    # One token a minute: four requests never earn a refill, however loaded the machine.
    limited = settings.model_copy(update={"rate_limit_per_minute": 1, "rate_limit_burst": 3})
    tenant = make_tenant()
    app = create_app(limited)
    answers = []
    try:
        for index in range(4):  # a fresh address each time: only the account bucket bites
            with TestClient(app, client=(f"203.0.113.{index}", 4000)) as test_client:
                answers.append(test_client.post(
                    f"{API}/tenants/{tenant.id}/users", headers=tenant.users["admin"].headers,
                    json={"email": f"{uuid.uuid4().hex[:6]}@x.example.com",
                          "role": "readonly"}).status_code)
    finally:
        configure_login_policy(settings)
    assert answers == [201, 201, 201, 429]
