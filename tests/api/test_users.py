"""GET/POST /tenants/{tenantId}/users and PATCH /users/{userId}."""

from __future__ import annotations

import uuid

import pytest

from server.db import session as db
from server.errors import Forbidden
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import Role
from server.modules.tenants import service as tenants


def _users_url(tenant_id) -> str:
    return f"/api/v1/tenants/{tenant_id}/users"


def test_admin_lists_the_tenants_users(client, make_tenant) -> None:
    tenant = make_tenant()
    response = client.get(_users_url(tenant.id), headers=tenant.users["admin"].headers)
    assert response.status_code == 200
    roles = sorted(u["role"] for u in response.json()["items"])
    assert roles == sorted(r.value for r in Role)
    assert all("password_hash" not in u for u in response.json()["items"])


def test_create_user_returns_a_one_time_password_that_logs_in(client, make_tenant) -> None:
    tenant = make_tenant()
    response = client.post(
        _users_url(tenant.id),
        headers=tenant.users["admin"].headers,
        json={
            "email": "New.Person@Example.com",
            "role": "manager",
            "display_name": "New Person",
            "teams": ["EQ", "FI"],
        },
    )
    assert response.status_code == 201
    created = response.json()
    assert created["email"] == "new.person@example.com" and created["teams"] == ["EQ", "FI"]
    login = client.post(
        "/api/v1/auth/token",
        json={"email": created["email"], "password": created["one_time_password"]},
    )
    assert login.status_code == 200
    listed = client.get(_users_url(tenant.id), headers=tenant.users["admin"].headers).json()
    assert all("one_time_password" not in u for u in listed["items"])
    event = client.get(
        "/api/v1/audit", params={"entity_id": created["id"]}, headers=tenant.users["admin"].headers
    ).json()["items"][-1]
    assert event["action"] == "user.create"
    assert event["after"]["role"] == "manager" and "password_hash" not in event["after"]


def test_create_duplicate_email_is_409(client, make_tenant) -> None:
    tenant = make_tenant()
    response = client.post(
        _users_url(tenant.id),
        headers=tenant.users["admin"].headers,
        json={"email": tenant.users["hr"].email, "role": "hr"},
    )
    assert response.status_code == 409
    assert response.json()["title"] == "Conflict"


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"email": "not-an-email", "role": "hr"}, ["body", "email"]),
        ({"email": "a@b.example.com", "role": "boss"}, ["body", "role"]),
        ({"role": "hr"}, ["body", "email"]),
        (
            {"email": "a@b.example.com", "role": "hr", "teams": ["ok", "bad team"]},
            ["body", "teams", 1],
        ),
        ({"email": "a@b.example.com", "role": "hr", "is_admin": True}, ["body", "is_admin"]),
    ],
)
def test_create_user_validation_names_the_field(client, make_tenant, body, loc) -> None:
    tenant = make_tenant()
    response = client.post(_users_url(tenant.id), headers=tenant.users["admin"].headers, json=body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["loc"] == loc


def test_tenant_in_path_must_be_the_callers(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["admin"].headers
    for tenant_id in (uuid.uuid4(), make_tenant().id):
        assert client.get(_users_url(tenant_id), headers=headers).status_code == 404
        assert (
            client.post(
                _users_url(tenant_id),
                headers=headers,
                json={"email": "x@y.example.com", "role": "hr"},
            ).status_code
            == 404
        )
    bad = client.get("/api/v1/tenants/not-a-uuid/users", headers=headers)
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["path", "tenantId"]


def test_get_own_tenant(client, make_tenant) -> None:
    tenant = make_tenant(name="Acme Funds")
    response = client.get(f"/api/v1/tenants/{tenant.id}", headers=tenant.users["readonly"].headers)
    assert response.status_code == 200 and response.json()["name"] == "Acme Funds"


def test_patch_user_changes_role_and_teams_and_is_audited(client, make_tenant) -> None:
    tenant = make_tenant()
    target = tenant.users["readonly"]
    response = client.patch(
        f"/api/v1/users/{target.id}",
        headers=tenant.users["admin"].headers,
        json={"role": "manager", "teams": ["EQ"], "display_name": "Mo"},
    )
    assert response.status_code == 200
    assert response.json()["role"] == "manager" and response.json()["teams"] == ["EQ"]
    me = client.get("/api/v1/me", headers=target.headers).json()
    assert me["role"] == "manager" and me["teams"] == ["EQ"]
    event = client.get(
        "/api/v1/audit", params={"entity_id": str(target.id)}, headers=tenant.users["admin"].headers
    ).json()["items"][0]
    assert event["action"] == "user.update"
    assert event["before"]["role"] == "readonly" and event["after"]["role"] == "manager"


def test_patch_validation_and_not_found(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["admin"].headers
    empty = client.patch(f"/api/v1/users/{tenant.users['hr'].id}", headers=headers, json={})
    assert empty.status_code == 422
    bad_role = client.patch(
        f"/api/v1/users/{tenant.users['hr'].id}", headers=headers, json={"role": "root"}
    )
    assert bad_role.json()["errors"][0]["loc"] == ["body", "role"]
    missing = client.patch(f"/api/v1/users/{uuid.uuid4()}", headers=headers, json={"role": "hr"})
    assert missing.status_code == 404


def test_deactivated_user_loses_access(client, make_tenant) -> None:
    tenant = make_tenant()
    finance = tenant.users["finance"]
    response = client.patch(
        f"/api/v1/users/{finance.id}",
        headers=tenant.users["admin"].headers,
        json={"is_active": False},
    )
    assert response.status_code == 200 and response.json()["is_active"] is False
    assert client.get("/api/v1/me", headers=finance.headers).status_code == 401
    login = client.post(
        "/api/v1/auth/token", json={"email": finance.email, "password": finance.password}
    )
    assert login.status_code == 401


def test_last_active_admin_cannot_be_demoted_or_deactivated(client, make_tenant) -> None:
    tenant = make_tenant()
    admin = tenant.users["admin"]
    url = f"/api/v1/users/{admin.id}"
    for change in ({"role": "hr"}, {"is_active": False}):
        response = client.patch(url, headers=admin.headers, json=change)
        assert response.status_code == 409
        assert "last active admin" in response.json()["detail"]
    promoted = client.patch(
        f"/api/v1/users/{tenant.users['hr'].id}", headers=admin.headers, json={"role": "admin"}
    )
    assert promoted.status_code == 200
    assert client.patch(url, headers=admin.headers, json={"role": "hr"}).status_code == 200


def test_nobody_raises_their_own_role(make_tenant) -> None:
    tenant = make_tenant()
    hr = tenant.users["hr"]
    principal = Principal(hr.id, tenant.id, Role.HR, hr.email, None, ())
    with pytest.raises(Forbidden, match="own role"), db.tenant_session(tenant.id) as session:
        tenants.update_user(session, principal, hr.id, {"role": "admin"})
    with db.tenant_session(tenant.id) as session:
        lowered = tenants.update_user(session, principal, hr.id, {"role": "readonly"})
        assert lowered.role == "readonly"
