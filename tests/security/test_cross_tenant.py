"""With tenant A's token, every route that takes an id answers 404 for tenant B's ids.

Modules add their id routes to ID_ROUTES: (method, path template, json body); the template
may use {tenant}, {user} (a B user) and {other} (a B-owned id of the route's own entity).
"""

from __future__ import annotations

import pytest

ID_ROUTES: list[tuple[str, str, dict | None]] = [
    ("GET", "/api/v1/tenants/{tenant}", None),
    ("GET", "/api/v1/tenants/{tenant}/users", None),
    ("POST", "/api/v1/tenants/{tenant}/users", {"email": "x@cross.example.com", "role": "hr"}),
    ("PATCH", "/api/v1/users/{user}", {"role": "readonly"}),
    ("PATCH", "/api/v1/users/{user}", {"is_active": False}),
]


@pytest.mark.parametrize(("method", "template", "body"), ID_ROUTES)
def test_tenant_a_gets_404_for_tenant_b_ids(client, make_tenant, method, template, body):
    a, b = make_tenant(), make_tenant()
    path = template.format(tenant=b.id, user=b.users["hr"].id)
    response = client.request(method, path, headers=a.users["admin"].headers, json=body)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    # B's data is untouched and still visible to B
    me = client.get("/api/v1/me", headers=b.users["hr"].headers).json()
    assert me["role"] == "hr"


def test_audit_of_a_never_shows_b(client, make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    items = client.get("/api/v1/audit", params={"entity_id": str(b.users["hr"].id)},
                       headers=a.users["admin"].headers).json()["items"]
    assert items == []
    all_items = client.get("/api/v1/audit", params={"limit": 500},
                           headers=a.users["admin"].headers).json()["items"]
    b_ids = {str(u.id) for u in b.users.values()} | {str(b.id)}
    assert not {e["entity_id"] for e in all_items} & b_ids


def test_token_of_a_deactivated_tenant_stops_working(client, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    owner_conn.execute("update comp.tenants set is_active = false where id = %s", (tenant.id,))
    assert client.get("/api/v1/me", headers=tenant.users["admin"].headers).status_code == 401
