"""With tenant A's token, every route that takes an id answers 404 for tenant B's ids.

Modules add their id routes to ID_ROUTES: (method, path template, json body, setup). The
template may use {tenant} (B's id) and {user} (a B user's id); `setup(b, owner_conn)` may
create B-owned objects and return more template values, e.g. {"plan": "<B plan id>"}.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

Setup = Callable[..., dict[str, object]] | None

ID_ROUTES: list[tuple[str, str, dict | None, Setup]] = [
    ("GET", "/api/v1/tenants/{tenant}", None, None),
    ("GET", "/api/v1/tenants/{tenant}/users", None, None),
    (
        "POST",
        "/api/v1/tenants/{tenant}/users",
        {"email": "x@cross.example.com", "role": "hr"},
        None,
    ),
    ("PATCH", "/api/v1/users/{user}", {"role": "readonly"}, None),
    ("PATCH", "/api/v1/users/{user}", {"is_active": False}, None),
    ("GET", "/api/v1/tenants/{tenant}/identity-provider", None, None),
    (
        "PUT",
        "/api/v1/tenants/{tenant}/identity-provider",
        {"display_name": "X", "issuer": "http://127.0.0.1:9", "client_id": "x"},
        None,
    ),
    ("DELETE", "/api/v1/tenants/{tenant}/identity-provider", None, None),
]


@pytest.mark.parametrize(("method", "template", "body", "setup"), ID_ROUTES)
def test_tenant_a_gets_404_for_tenant_b_ids(
    client, make_tenant, owner_conn, method, template, body, setup
):
    a, b = make_tenant(), make_tenant()
    values = {"tenant": b.id, "user": b.users["hr"].id}
    values |= setup(b, owner_conn) if setup else {}
    path = template.format(**values)
    response = client.request(method, path, headers=a.users["admin"].headers, json=body)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"] == "application/problem+json"
    # B's data is untouched and still visible to B
    me = client.get("/api/v1/me", headers=b.users["hr"].headers).json()
    assert me["role"] == "hr"


def test_audit_of_a_never_shows_b(client, make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    items = client.get(
        "/api/v1/audit",
        params={"entity_id": str(b.users["hr"].id)},
        headers=a.users["admin"].headers,
    ).json()["items"]
    assert items == []
    all_items = client.get(
        "/api/v1/audit", params={"limit": 500}, headers=a.users["admin"].headers
    ).json()["items"]
    b_ids = {str(u.id) for u in b.users.values()} | {str(b.id)}
    assert not {e["entity_id"] for e in all_items} & b_ids


def test_token_of_a_deactivated_tenant_stops_working(client, make_tenant, owner_conn) -> None:
    tenant = make_tenant()
    owner_conn.execute("update comp.tenants set is_active = false where id = %s", (tenant.id,))
    assert client.get("/api/v1/me", headers=tenant.users["admin"].headers).status_code == 401
