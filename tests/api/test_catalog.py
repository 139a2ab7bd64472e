"""GET/POST /tenants/{tenantId}/input-catalog, PATCH/DELETE /input-catalog/{inputId}."""

from __future__ import annotations

import uuid

import pytest

from server.modules.auth.permissions import PERMISSIONS, Role
from tests.api.plan_helpers import audit_events, create_document_plan


def _url(tenant_id) -> str:
    return f"/api/v1/tenants/{tenant_id}/input-catalog"


def _create(client, tenant, role="hr", **body):
    body = {"key": f"k_{uuid.uuid4().hex[:8]}", "label": "Some input", "dtype": "decimal"} | body
    return client.post(_url(tenant.id), json=body, headers=tenant.users[role].headers)


def test_create_then_list(client, make_tenant) -> None:
    tenant = make_tenant()
    created = _create(
        client,
        tenant,
        key="aum",
        label="Assets",
        dtype="decimal",
        scope="fund",
        required=True,
        default_value=1500.25,
        validation={"min": "0"},
    )
    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["key"], body["scope"], body["required"]) == ("aum", "fund", True)
    # a JSON number arrives exactly (never through a float) and is stored in R10 form
    assert body["default_value"] == "1500.2500000000"
    listed = client.get(_url(tenant.id), headers=tenant.users["readonly"].headers)
    assert listed.status_code == 200
    assert [item["key"] for item in listed.json()["items"]] == ["aum"]
    event = audit_events(client, tenant, body["id"])[-1]
    assert event["action"] == "catalog.input.create" and event["after"]["key"] == "aum"


def test_default_value_keeps_every_digit(client, make_tenant) -> None:
    tenant = make_tenant()
    raw = (
        '{"key": "big", "label": "Big", "dtype": "decimal", '
        '"default_value": 123456789012345678.0123456789}'
    )  # a float would lose digits
    created = client.post(
        _url(tenant.id),
        content=raw,
        headers=tenant.users["hr"].headers | {"Content-Type": "application/json"},
    )
    assert created.status_code == 201, created.text
    assert created.json()["default_value"] == "123456789012345678.0123456789"


def test_duplicate_key_is_409(client, make_tenant) -> None:
    tenant = make_tenant()
    assert _create(client, tenant, key="aum").status_code == 201
    again = _create(client, tenant, key="aum", dtype="text")
    assert again.status_code == 409 and "aum" in again.json()["detail"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"key": "Bad Key"}, ["body", "key"]),
        ({"key": "employee_ref"}, ["body", "key"]),
        ({"key": "round2"}, ["body", "key"]),
        ({"key": "if"}, ["body", "key"]),
        ({"dtype": "money"}, ["body", "dtype"]),
        ({"scope": "team"}, ["body", "scope"]),
        ({"label": ""}, ["body", "label"]),
        ({"dtype": "date", "default_value": "31/01/2025"}, ["body", "default_value"]),
        ({"dtype": "int", "default_value": 1.5}, ["body", "default_value"]),
        ({"surprise": True}, ["body", "surprise"]),
    ],
)
def test_create_validation_names_the_field(client, make_tenant, body, loc) -> None:
    tenant = make_tenant()
    response = _create(client, tenant, **body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc


def test_patch_and_delete_an_unused_input(client, make_tenant) -> None:
    tenant = make_tenant()
    entry = _create(client, tenant, dtype="decimal").json()
    headers = tenant.users["admin"].headers
    patched = client.patch(
        f"/api/v1/input-catalog/{entry['id']}",
        headers=headers,
        json={"label": "Renamed", "dtype": "int", "default_value": 3},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["label"], patched.json()["dtype"]) == ("Renamed", "int")
    assert patched.json()["default_value"] == "3.0000000000"
    bad = client.patch(
        f"/api/v1/input-catalog/{entry['id']}", headers=headers, json={"dtype": "bool"}
    )
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["body", "default_value"]
    empty = client.patch(f"/api/v1/input-catalog/{entry['id']}", headers=headers, json={})
    assert empty.status_code == 422
    deleted = client.delete(f"/api/v1/input-catalog/{entry['id']}", headers=headers)
    assert deleted.status_code == 204
    assert client.get(_url(tenant.id), headers=headers).json()["items"] == []
    actions = [e["action"] for e in audit_events(client, tenant, entry["id"])]
    assert actions == ["catalog.input.create", "catalog.input.update", "catalog.input.delete"]
    assert client.delete(f"/api/v1/input-catalog/{entry['id']}", headers=headers).status_code == 404


def test_an_input_used_by_a_plan_cannot_change_or_go(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_document_plan(client, tenant)
    headers = tenant.users["hr"].headers
    items = client.get(_url(tenant.id), headers=headers).json()["items"]
    score = next(item for item in items if item["key"] == "employee_score")
    for method, body in (("PATCH", {"label": "x"}), ("DELETE", None)):
        response = client.request(
            method, f"/api/v1/input-catalog/{score['id']}", json=body, headers=headers
        )
        assert response.status_code == 409
        assert f"'{plan['name']}' v1" in response.json()["detail"]
    still = client.get(_url(tenant.id), headers=headers).json()["items"]
    assert next(i for i in still if i["key"] == "employee_score")["label"] == "Score"


def test_another_tenants_catalog_is_404(client, make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    entry = _create(client, b).json()
    headers = a.users["admin"].headers
    assert client.get(_url(b.id), headers=headers).status_code == 404
    assert _create(client, a, role="admin").status_code == 201
    assert (
        client.post(
            _url(b.id), headers=headers, json={"key": "x", "label": "x", "dtype": "text"}
        ).status_code
        == 404
    )
    assert (
        client.patch(
            f"/api/v1/input-catalog/{entry['id']}", json={"label": "mine"}, headers=headers
        ).status_code
        == 404
    )
    assert client.delete(f"/api/v1/input-catalog/{entry['id']}", headers=headers).status_code == 404
    assert (
        client.get(_url(b.id), headers=b.users["admin"].headers).json()["items"][0]["label"]
        == "Some input"
    )


def test_without_a_token_is_401(client, make_tenant) -> None:
    tenant = make_tenant()
    assert client.get(_url(tenant.id)).status_code == 401
    assert client.post(_url(tenant.id), json={}).status_code == 401
    assert client.delete(f"/api/v1/input-catalog/{uuid.uuid4()}").status_code == 401


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_matrix(client, make_tenant, role) -> None:
    tenant = make_tenant()
    allowed = Role(role) in PERMISSIONS["catalog.write"]
    created = _create(client, tenant, role=role)
    assert created.status_code == (201 if allowed else 403), created.text
    entry = _create(client, tenant, role="admin").json()
    patched = client.patch(
        f"/api/v1/input-catalog/{entry['id']}",
        json={"label": "x"},
        headers=tenant.users[role].headers,
    )
    deleted = client.delete(
        f"/api/v1/input-catalog/{entry['id']}", headers=tenant.users[role].headers
    )
    assert (patched.status_code, deleted.status_code) == ((200, 204) if allowed else (403, 403))
    if not allowed:
        assert "catalog.write" in created.json()["detail"]
    assert client.get(_url(tenant.id), headers=tenant.users[role].headers).status_code == 200


@pytest.mark.parametrize(
    "raw",
    [
        '{"key": "x", "label": "x", "dtype": "decimal", "default_value": NaN}',
        '{"key": "x", "label": "x",',
        "not json",
    ],
)
def test_malformed_json_is_422(client, make_tenant, raw) -> None:
    tenant = make_tenant()
    response = client.post(
        _url(tenant.id),
        content=raw,
        headers=tenant.users["hr"].headers | {"Content-Type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["type"] == "json_invalid"
    assert client.get(_url(tenant.id), headers=tenant.users["hr"].headers).json()["items"] == []


def test_sensitive_defaults_explicit_value_and_change_while_used(client, make_tenant) -> None:
    tenant = make_tenant()
    defaults = {key: _create(client, tenant, key=key, label=label, dtype=dtype).json()
                for key, label, dtype in (("base_salary", "Base salary", "decimal"),
                                          ("hire", "Hire", "date"),
                                          ("display", "Employee name", "text"),
                                          ("level", "Level", "text"))}
    assert {k: v["sensitive"] for k, v in defaults.items()} == {
        "base_salary": True, "hire": True, "display": True, "level": False}
    chosen = _create(client, tenant, key="bonus_points", dtype="decimal", sensitive=True)
    assert chosen.status_code == 201 and chosen.json()["sensitive"] is True
    plan = create_document_plan(client, tenant)
    listed = client.get(_url(tenant.id), headers=tenant.users["hr"].headers).json()["items"]
    used = next(item for item in listed if item["key"] == "employee_score")
    hr = tenant.users["hr"].headers
    flipped = client.patch(f"/api/v1/input-catalog/{used['id']}", json={"sensitive": True},
                           headers=hr)
    assert flipped.status_code == 200 and flipped.json()["sensitive"] is True, flipped.text
    refused = client.patch(f"/api/v1/input-catalog/{used['id']}", json={"label": "Grade"},
                           headers=hr)
    assert refused.status_code == 409 and plan["id"]
    event = audit_events(client, tenant, used["id"])[-1]
    assert event["action"] == "catalog.input.update"
    assert event["before"]["sensitive"] is False and event["after"]["sensitive"] is True
