"""POST /auth/token, POST /auth/logout, GET /me: happy paths and every error path."""

from __future__ import annotations

from datetime import timedelta

from server.db import session as db
from server.modules.auth.permissions import PERMISSIONS, Role
from server.modules.auth.service import issue_token
from server.modules.tenants import service as tenants

PROBLEM = "application/problem+json"


def _login(client, email, password, **extra):
    return client.post("/api/v1/auth/token", json={"email": email, "password": password, **extra})


def test_login_issues_a_token_that_identifies_the_user(client, make_tenant) -> None:
    tenant = make_tenant()
    hr = tenant.users["hr"]
    response = _login(client, hr.email.upper(), hr.password)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer" and body["tenant_id"] == str(tenant.id)
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["email"] == hr.email and me.json()["role"] == "hr"
    assert me.json()["permissions"] == sorted(p for p, r in PERMISSIONS.items() if Role.HR in r)


def test_token_is_stored_only_as_its_hash(client, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    admin = tenant.users["admin"]
    token = _login(client, admin.email, admin.password).json()["access_token"]
    stored = [
        r[0]
        for r in owner_conn.execute(
            "select token_hash from comp.api_tokens where user_id = %s", (admin.id,)
        )
    ]
    assert token not in stored and all(len(h) == 64 for h in stored)


def test_wrong_password_and_unknown_email_answer_401(client, make_tenant) -> None:
    tenant = make_tenant()
    for email, password in (
        (tenant.users["admin"].email, "wrong"),
        ("nobody@nowhere.example.com", "x"),
    ):
        response = _login(client, email, password)
        assert response.status_code == 401
        assert response.headers["content-type"] == PROBLEM
        assert response.headers["www-authenticate"] == "Bearer"
        assert response.json()["title"] == "Unauthorized"


def test_login_validation_names_the_missing_field(client) -> None:
    response = client.post("/api/v1/auth/token", json={"email": "a@b.example.com"})
    assert response.status_code == 422
    body = response.json()
    assert response.headers["content-type"] == PROBLEM
    assert body["errors"][0]["loc"] == ["body", "password"]
    assert "password" in body["detail"]


def test_me_requires_a_valid_token(client) -> None:
    assert client.get("/api/v1/me").status_code == 401
    bad = client.get("/api/v1/me", headers={"Authorization": "Bearer not-a-token"})
    assert bad.status_code == 401 and bad.json()["status"] == 401
    basic = client.get("/api/v1/me", headers={"Authorization": "Basic YTpi"})
    assert basic.status_code == 401


def test_logout_revokes_the_token(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["readonly"].headers
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 401
    # the other users' tokens are untouched
    assert client.get("/api/v1/me", headers=tenant.users["admin"].headers).status_code == 200


def test_expired_token_is_refused(client, make_tenant) -> None:
    tenant = make_tenant()
    with db.tenant_session(tenant.id) as session:
        token = issue_token(session, tenant.users["hr"].id, timedelta(seconds=-1)).token
    response = client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_same_email_in_two_tenants_needs_tenant_id(client, make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    email, password = "shared@people.example.com", "correct horse battery staple"
    for tenant in (a, b):
        with db.tenant_session(tenant.id) as session:
            tenants.add_user(session, None, email=email, role=Role.HR, password=password)
    ambiguous = _login(client, email, password)
    assert ambiguous.status_code == 422
    assert ambiguous.json()["errors"][0]["loc"] == ["body", "tenant_id"]
    chosen = _login(client, email, password, tenant_id=str(b.id))
    assert chosen.status_code == 200 and chosen.json()["tenant_id"] == str(b.id)


def test_login_is_audited(client, make_tenant) -> None:
    tenant = make_tenant()
    auditor = tenant.users["auditor"]
    assert _login(client, auditor.email, auditor.password).status_code == 200
    events = client.get(
        "/api/v1/audit",
        params={"entity": "user", "entity_id": str(auditor.id)},
        headers=auditor.headers,
    ).json()["items"]
    assert [e["action"] for e in events][:1] == ["auth.login"]
    assert events[0]["actor_user_id"] == str(auditor.id)
