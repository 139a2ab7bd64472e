"""Every role against every route of this module: allowed exactly when PERMISSIONS says so.

Modules add rows to ROUTES: (permission, method, path template, body factory, setup). The
template may use {tenant} and {readonly} (that user's id); `setup(tenant, owner_conn)` may
create objects in the tenant and return more template values, e.g. {"plan": "<plan id>"}.
"""

from __future__ import annotations

import uuid

import pytest

from server.modules.auth.permissions import PERMISSIONS, Role


def _identity_provider(tenant, owner_conn) -> dict[str, object]:
    owner_conn.execute(
        "insert into comp.oidc_providers (tenant_id, display_name, issuer, client_id) "
        "values (%s, 'SSO', 'https://idp.example.com', 'paysheet')",
        (tenant.id,),
    )
    return {}


ROUTES = [
    ("users.read", "GET", "/api/v1/tenants/{tenant}/users", None, None),
    (
        "users.write",
        "POST",
        "/api/v1/tenants/{tenant}/users",
        lambda: {"email": f"{uuid.uuid4().hex[:8]}@matrix.example.com", "role": "readonly"},
        None,
    ),
    ("users.write", "PATCH", "/api/v1/users/{readonly}", lambda: {"display_name": "R. O."}, None),
    ("audit.read", "GET", "/api/v1/audit", None, None),
    ("audit.read", "GET", "/api/v1/audit/verify", None, None),
    ("me.read", "GET", "/api/v1/me", None, None),
    ("me.read", "GET", "/api/v1/tenants/{tenant}", None, None),
    ("me.read", "POST", "/api/v1/auth/logout", None, None),
    ("me.read", "POST", "/api/v1/auth/oidc/logout", None, None),
    ("users.read", "GET", "/api/v1/tenants/{tenant}/identity-provider", None, _identity_provider),
    (
        "users.write",
        "DELETE",
        "/api/v1/tenants/{tenant}/identity-provider",
        None,
        _identity_provider,
    ),
]


@pytest.mark.parametrize("role", [r.value for r in Role])
@pytest.mark.parametrize(("permission", "method", "template", "body", "setup"), ROUTES)
def test_role_matrix(
    client, make_tenant, owner_conn, role, permission, method, template, body, setup
) -> None:
    tenant = make_tenant()
    values = {"tenant": tenant.id, "readonly": tenant.users["readonly"].id}
    values |= setup(tenant, owner_conn) if setup else {}
    path = template.format(**values)
    response = client.request(
        method, path, headers=tenant.users[role].headers, json=body() if body else None
    )
    if Role(role) in PERMISSIONS[permission]:
        assert response.status_code in (200, 201, 204), response.text
    else:
        assert response.status_code == 403, response.text
        assert permission in response.json()["detail"]
