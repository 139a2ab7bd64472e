"""The lock/version flow end to end, and the database guard under it."""

from __future__ import annotations

import psycopg
import pytest

from engine.hashing import plan_hash
from engine.plan import validate_document
from tests.api.plan_helpers import audit_actions, audit_events, create_plan, sample_document

STEPS = [
    {"step_order": 10, "name": "base", "expr": "1000"},
    {"step_order": 20, "name": "bonus", "expr": "base * 1.5", "outputs": ["bonus"]},
]


def _built_plan(client, tenant) -> dict:
    """create (§15.1) -> currency and payout -> two steps (§15.2)."""
    plan = create_plan(
        client, tenant, version=1, effective_from="2025-01-01", notes="initial", currency="USD"
    )
    headers = tenant.users["hr"].headers
    for step in STEPS:
        response = client.post(
            f"/api/v1/bonus-plans/{plan['id']}/steps", json=step, headers=headers
        )
        assert response.status_code == 201, response.text
    response = client.patch(
        f"/api/v1/bonus-plans/{plan['id']}", json={"payout": "bonus"}, headers=headers
    )
    assert response.status_code == 200, response.text
    return response.json()


def test_create_steps_lock_refuse_version_diff_hash(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    plan = _built_plan(client, tenant)
    assert plan["status"] == "draft" and plan["plan_hash"] is None

    locked = client.post(f"/api/v1/bonus-plans/{plan['id']}/lock", headers=headers)
    assert locked.status_code == 200, locked.text
    locked = locked.json()
    assert locked["status"] == "locked"
    assert len(locked["plan_hash"]) == 64
    assert locked["locked_by"] == str(tenant.users["hr"].id) and locked["locked_at"]

    steps = client.get(f"/api/v1/bonus-plans/{plan['id']}/steps", headers=headers).json()
    bonus_step = next(s for s in steps["items"] if s["name"] == "bonus")
    refused = client.patch(
        f"/api/v1/bonus-plans/{plan['id']}/steps/{bonus_step['id']}",
        json={"expr": "base * 2"},
        headers=headers,
    )
    assert refused.status_code == 409
    assert "locked" in refused.json()["detail"]
    assert audit_actions(client, tenant, plan["id"])[-1] == "plan.step.update.refused"
    refusal = audit_events(client, tenant, plan["id"])[-1]
    assert refusal["actor_user_id"] == str(tenant.users["hr"].id)
    unchanged = client.get(f"/api/v1/bonus-plans/{plan['id']}/steps", headers=headers).json()
    assert unchanged == steps

    version = client.post(f"/api/v1/bonus-plans/{plan['id']}/versions", headers=headers)
    assert version.status_code == 201, version.text
    v2 = version.json()
    assert (v2["name"], v2["version"], v2["status"]) == (plan["name"], 2, "draft")
    assert v2["previous_version_id"] == plan["id"] and v2["plan_hash"] is None

    # same content as v1 -> same plan hash (the version number is not part of it)
    same = client.post(f"/api/v1/bonus-plans/{v2['id']}/validate", headers=headers).json()
    assert same["valid"] and same["plan_hash"] == locked["plan_hash"]

    v2_steps = client.get(f"/api/v1/bonus-plans/{v2['id']}/steps", headers=headers).json()
    v2_bonus = next(s for s in v2_steps["items"] if s["name"] == "bonus")
    assert v2_bonus["id"] != bonus_step["id"]
    edited = client.patch(
        f"/api/v1/bonus-plans/{v2['id']}/steps/{v2_bonus['id']}",
        json={"expr": "base * 2"},
        headers=headers,
    )
    assert edited.status_code == 200, edited.text

    diff = client.get(
        f"/api/v1/bonus-plans/{v2['id']}/diff", params={"against": plan["id"]}, headers=headers
    )
    assert diff.status_code == 200, diff.text
    diff = diff.json()
    assert diff["steps"]["changed"] == [
        {"name": "bonus", "fields": {"expr": {"before": "base * 1.5", "after": "base * 2"}}}
    ]
    assert diff["steps"]["added"] == [] and diff["steps"]["removed"] == []
    assert diff["identical"] is False

    v2_locked = client.post(f"/api/v1/bonus-plans/{v2['id']}/lock", headers=headers).json()
    assert v2_locked["plan_hash"] != locked["plan_hash"]
    actions = audit_actions(client, tenant, v2["id"])
    assert actions == ["plan.version", "plan.step.update", "plan.lock"]


def test_same_content_gives_the_same_plan_hash_in_any_tenant(client, make_tenant) -> None:
    doc = sample_document()
    hashes = []
    for tenant in (make_tenant(), make_tenant()):
        plan = create_plan(client, tenant, name=doc["name"], document=doc)
        locked = client.post(
            f"/api/v1/bonus-plans/{plan['id']}/lock", headers=tenant.users["hr"].headers
        )
        assert locked.status_code == 200, locked.text
        hashes.append(locked.json()["plan_hash"])
    assert hashes[0] == hashes[1] == plan_hash(validate_document(doc))


@pytest.mark.parametrize(
    "path_suffix,method,body",
    [
        ("", "PATCH", {"notes": "late change"}),
        ("/steps", "POST", {"step_order": 30, "name": "extra", "expr": "1"}),
        ("/document", "PUT", {"steps": []}),
        ("/inputs", "PUT", {"inputs": []}),
        ("/lock", "POST", None),
    ],
)
def test_every_change_to_a_locked_plan_is_409_and_audited(
    client, make_tenant, path_suffix, method, body
) -> None:
    tenant = make_tenant()
    plan = _built_plan(client, tenant)
    headers = tenant.users["admin"].headers
    assert client.post(f"/api/v1/bonus-plans/{plan['id']}/lock", headers=headers).status_code == 200
    response = client.request(
        method, f"/api/v1/bonus-plans/{plan['id']}{path_suffix}", json=body, headers=headers
    )
    assert response.status_code == 409, response.text
    assert response.headers["content-type"] == "application/problem+json"
    last = audit_events(client, tenant, plan["id"])[-1]
    assert last["action"].endswith(".refused") and "locked" in last["after"]["refused"]


def test_step_delete_and_reorder_on_a_locked_plan_are_409(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = _built_plan(client, tenant)
    headers = tenant.users["hr"].headers
    steps = client.get(f"/api/v1/bonus-plans/{plan['id']}/steps", headers=headers).json()
    client.post(f"/api/v1/bonus-plans/{plan['id']}/lock", headers=headers)
    ids = [s["id"] for s in steps["items"]]
    delete = client.delete(f"/api/v1/bonus-plans/{plan['id']}/steps/{ids[0]}", headers=headers)
    reorder = client.post(
        f"/api/v1/bonus-plans/{plan['id']}/steps/reorder",
        json={"step_ids": ids[::-1]},
        headers=headers,
    )
    assert (delete.status_code, reorder.status_code) == (409, 409)
    assert audit_actions(client, tenant, plan["id"])[-2:] == [
        "plan.step.delete.refused",
        "plan.step.reorder.refused",
    ]


def test_lock_is_refused_with_diagnostics_while_invalid(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    plan = create_plan(client, tenant, effective_from="2025-01-01", currency="USD", payout="bonus")
    client.post(
        f"/api/v1/bonus-plans/{plan['id']}/steps",
        headers=headers,
        json={"step_order": 10, "name": "bonus", "expr": "salary * 2"},
    )
    response = client.post(f"/api/v1/bonus-plans/{plan['id']}/lock", headers=headers)
    assert response.status_code == 409
    errors = response.json()["errors"]
    assert errors[0]["type"] == "unknown_name" and errors[0]["step"] == "bonus"
    assert errors[0]["loc"] == ["document", "steps", "bonus", "expr"]
    assert (errors[0]["line"], errors[0]["column"]) == (1, 1)
    after = client.get(f"/api/v1/bonus-plans/{plan['id']}", headers=headers).json()
    assert after["status"] == "draft" and after["plan_hash"] is None


def test_new_version_needs_a_locked_plan_and_a_free_version(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    plan = _built_plan(client, tenant)
    draft = client.post(f"/api/v1/bonus-plans/{plan['id']}/versions", headers=headers)
    assert draft.status_code == 409
    client.post(f"/api/v1/bonus-plans/{plan['id']}/lock", headers=headers)
    assert (
        client.post(f"/api/v1/bonus-plans/{plan['id']}/versions", headers=headers).status_code
        == 201
    )
    again = client.post(f"/api/v1/bonus-plans/{plan['id']}/versions", headers=headers)
    assert again.status_code == 409 and "v2 already exists" in again.json()["detail"]


def test_database_refuses_changing_a_locked_plans_step_as_app_role(
    client, make_tenant, app_conn
) -> None:
    tenant = make_tenant()
    plan = _built_plan(client, tenant)
    client.post(f"/api/v1/bonus-plans/{plan['id']}/lock", headers=tenant.users["hr"].headers)
    app_conn.execute("select set_config('app.tenant_id', %s, true)", (str(tenant.id),))
    with pytest.raises(psycopg.Error) as caught:
        app_conn.execute("update comp.plan_steps set expr = '2' where plan_id = %s", (plan["id"],))
    assert caught.value.sqlstate == "PS409"
