"""Plans API: drafts, list, steps, inputs, documents, validate, diff, test vectors,
role matrix, cross-tenant 404s and the service entry points other modules use."""

from __future__ import annotations

import uuid

import pytest

from server.db import session as db
from server.errors import Conflict
from server.modules.auth.permissions import PERMISSIONS, Role
from server.modules.plans import service as plans
from server.modules.plans.schemas import MAX_VECTOR_ROWS
from tests.api.plan_helpers import (
    add_catalog_input,
    audit_actions,
    create_document_plan,
    create_plan,
    plans_url,
    sample_document,
)


def _plan_url(plan_id, suffix: str = "") -> str:
    return f"/api/v1/bonus-plans/{plan_id}{suffix}"


# --- create, get, list, patch -------------------------------------------------------------


def test_create_plan_per_prd_15_1(client, make_tenant) -> None:
    tenant = make_tenant()
    response = client.post(
        plans_url(tenant.id),
        headers=tenant.users["hr"].headers,
        json={
            "name": "2025 Analyst Bonus Plan",
            "version": 1,
            "effective_from": "2025-01-01",
            "notes": "initial",
        },
    )
    assert response.status_code == 201, response.text
    plan = response.json()
    assert (plan["status"], plan["version"], plan["notes"]) == ("draft", 1, "initial")
    assert plan["created_by"] == str(tenant.users["hr"].id)
    fetched = client.get(_plan_url(plan["id"]), headers=tenant.users["readonly"].headers)
    assert fetched.status_code == 200 and fetched.json() == plan
    assert audit_actions(client, tenant, plan["id"]) == ["plan.create"]
    again = client.post(
        plans_url(tenant.id),
        headers=tenant.users["hr"].headers,
        json={"name": "2025 Analyst Bonus Plan", "version": 1},
    )
    assert again.status_code == 409


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ["body", "name"]),
        ({"name": ""}, ["body", "name"]),
        ({"name": "p", "version": 0}, ["body", "version"]),
        ({"name": "p", "currency": "usd"}, ["body", "currency"]),
        ({"name": "p", "effective_from": "2025-13-01"}, ["body", "effective_from"]),
        (
            {"name": "p", "effective_from": "2025-02-01", "effective_to": "2025-01-01"},
            ["body", "effective_to"],
        ),
        ({"name": "p", "status": "locked"}, ["body", "status"]),
        (
            {"name": "p", "document": {"inputs": [{"key": "x", "dtype": "money"}]}},
            ["body", "document", "inputs", 0, "dtype"],
        ),
    ],
)
def test_create_validation_names_the_field(client, make_tenant, body, loc) -> None:
    tenant = make_tenant()
    response = client.post(plans_url(tenant.id), headers=tenant.users["hr"].headers, json=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc


def test_create_with_a_document_stores_it_and_fills_the_catalog(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_document_plan(client, tenant)
    headers = tenant.users["hr"].headers
    assert (plan["currency"], plan["effective_from"], plan["payout"]) == (
        "USD",
        "2025-01-01",
        "bonus",
    )
    doc = client.get(_plan_url(plan["id"], "/document"), headers=headers).json()
    assert [s["name"] for s in doc["steps"]] == ["perf_multiplier", "bonus"]
    assert doc["parameters"] == [{"key": "target_pct", "dtype": "decimal", "value": "0.15"}]
    catalog = client.get(f"/api/v1/tenants/{tenant.id}/input-catalog", headers=headers).json()
    assert {(i["key"], i["dtype"]) for i in catalog["items"]} == {
        ("employee_score", "decimal"),
        ("base_salary", "decimal"),
        ("fund_return", "decimal"),
    }
    declared = client.get(_plan_url(plan["id"], "/inputs"), headers=headers).json()["items"]
    assert [(i["key"], i["scope"]) for i in declared] == [
        ("employee_score", "employee"),
        ("base_salary", "employee"),
        ("fund_return", "fund"),
    ]
    assert client.post(_plan_url(plan["id"], "/validate"), headers=headers).json()["valid"]


def test_list_filters_and_cursor_pagination(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["auditor"].headers
    made = [
        create_plan(
            client,
            tenant,
            name=f"Alpha {i}",
            effective_from="2025-01-01",
            effective_to="2025-12-31",
        )
        for i in range(3)
    ]
    other = create_plan(client, tenant, name="Beta", effective_from="2026-01-01")
    seen, cursor = [], None
    while True:
        page = client.get(
            plans_url(tenant.id),
            headers=headers,
            params={"limit": 2} | ({"cursor": cursor} if cursor else {}),
        ).json()
        seen += [p["id"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == [p["id"] for p in reversed([*made, other])]
    by_name = client.get(plans_url(tenant.id), headers=headers, params={"name": "alp"}).json()
    assert {p["name"] for p in by_name["items"]} == {"Alpha 0", "Alpha 1", "Alpha 2"}
    on_date = client.get(
        plans_url(tenant.id), headers=headers, params={"effective_on": "2026-03-01"}
    ).json()
    assert [p["name"] for p in on_date["items"]] == ["Beta"]
    locked = client.get(plans_url(tenant.id), headers=headers, params={"status": "locked"})
    assert locked.json()["items"] == []
    bad = client.get(plans_url(tenant.id), headers=headers, params={"cursor": "nonsense"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "cursor"]
    wrong_status = client.get(plans_url(tenant.id), headers=headers, params={"status": "x"})
    assert wrong_status.status_code == 422


def test_patch_draft_header(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant, effective_from="2025-01-01")
    headers = tenant.users["hr"].headers
    response = client.patch(
        _plan_url(plan["id"]),
        headers=headers,
        json={"name": "Renamed plan", "currency": "EUR", "effective_to": "2025-12-31"},
    )
    assert response.status_code == 200, response.text
    assert (response.json()["name"], response.json()["currency"]) == ("Renamed plan", "EUR")
    doc = client.get(_plan_url(plan["id"], "/document"), headers=headers).json()
    assert (doc["name"], doc["currency"], doc["effective_to"]) == (
        "Renamed plan",
        "EUR",
        "2025-12-31",
    )
    assert audit_actions(client, tenant, plan["id"]) == ["plan.create", "plan.update"]
    backwards = client.patch(
        _plan_url(plan["id"]), headers=headers, json={"effective_to": "2024-01-01"}
    )
    assert backwards.status_code == 422
    assert backwards.json()["errors"][0]["loc"] == ["body", "effective_to"]
    assert client.patch(_plan_url(plan["id"]), headers=headers, json={}).status_code == 422
    taken = create_plan(client, tenant)
    clash = client.patch(_plan_url(plan["id"]), headers=headers, json={"name": taken["name"]})
    assert clash.status_code == 409


# --- steps --------------------------------------------------------------------------------


def _add(client, tenant, plan_id, **step):
    step = {"step_order": 10, "name": "bonus", "expr": "1000"} | step
    return client.post(_plan_url(plan_id, "/steps"), json=step, headers=tenant.users["hr"].headers)


def test_add_update_delete_and_reorder_steps(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    headers = tenant.users["hr"].headers
    first = _add(
        client,
        tenant,
        plan["id"],
        step_order=10,
        name="base",
        expr="1000",
        condition_expr="true",
        default=0,
        notes="n",
    ).json()
    assert first["outputs"] == ["base"] and first["default"] == "0"
    second = _add(client, tenant, plan["id"], step_order=20, name="bonus", expr="base *\n 2").json()
    patched = client.patch(
        _plan_url(plan["id"], f"/steps/{second['id']}"),
        headers=headers,
        json={"expr": "base * 3", "name": "total"},
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["outputs"]) == ("total", ["total"])
    reordered = client.post(
        _plan_url(plan["id"], "/steps/reorder"),
        headers=headers,
        json={"step_ids": [second["id"], first["id"]]},
    )
    assert reordered.status_code == 200, reordered.text
    assert [(s["name"], s["step_order"]) for s in reordered.json()["items"]] == [
        ("total", 10),
        ("base", 20),
    ]
    doc = client.get(_plan_url(plan["id"], "/document"), headers=headers).json()
    assert [(s["order"], s["name"], s["expr"]) for s in doc["steps"]] == [
        (10, "total", "base * 3"),
        (20, "base", "1000"),
    ]
    deleted = client.delete(_plan_url(plan["id"], f"/steps/{first['id']}"), headers=headers)
    assert deleted.status_code == 204
    remaining = client.get(_plan_url(plan["id"], "/steps"), headers=headers).json()["items"]
    assert [s["name"] for s in remaining] == ["total"]
    assert (
        client.delete(_plan_url(plan["id"], f"/steps/{first['id']}"), headers=headers).status_code
        == 404
    )
    assert audit_actions(client, tenant, plan["id"]) == [
        "plan.create",
        "plan.step.add",
        "plan.step.add",
        "plan.step.update",
        "plan.step.reorder",
        "plan.step.delete",
    ]


@pytest.mark.parametrize(
    ("step", "loc", "code"),
    [
        ({"name": "Bonus Amount"}, ["body", "name"], "invalid_name"),
        ({"name": "round2"}, ["body", "name"], "invalid_name"),
        ({"name": "employee_ref"}, ["body", "name"], "invalid_name"),
        ({"name": "base"}, ["body", "name"], "duplicate_step"),
        ({"step_order": 10}, ["body", "step_order"], "duplicate_order"),
        ({"outputs": ["bonus", "other"]}, ["body", "outputs"], "outputs"),
        ({"expr": "1 +"}, ["body", "expr"], "syntax"),
        ({"condition_expr": "a >"}, ["body", "condition_expr"], "syntax"),
        ({"expr": "1.12345678901"}, ["body", "expr"], "literal_scale"),
        ({"default": "1 +"}, ["body", "default"], "syntax"),
        ({"name": "salary"}, ["body", "name"], "shadowing"),
        ({"expr": ""}, ["body", "expr"], "string_too_short"),
        ({"step_order": "ten"}, ["body", "step_order"], "int_parsing"),
    ],
)
def test_step_validation_is_reported_per_field(client, make_tenant, step, loc, code) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    client.put(
        _plan_url(plan["id"], "/inputs"), headers=tenant.users["hr"].headers, json={"inputs": []}
    )
    add_catalog_input(client, tenant, "salary", "Salary", "decimal")
    client.put(
        _plan_url(plan["id"], "/inputs"),
        headers=tenant.users["hr"].headers,
        json={"inputs": [{"key": "salary"}]},
    )
    assert _add(client, tenant, plan["id"], name="base").status_code == 201
    response = _add(client, tenant, plan["id"], **({"step_order": 20, "name": "bonus"} | step))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    error = response.json()["errors"][0]
    assert (error["loc"], error["type"]) == (loc, code)


def test_expression_errors_carry_line_and_column(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    response = _add(client, tenant, plan["id"], expr="1 +\n  * 2")
    error = response.json()["errors"][0]
    assert (error["loc"], error["line"], error["column"]) == (["body", "expr"], 2, 3)
    assert "^" in error["msg"]


def test_a_step_closing_a_cycle_is_refused(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    assert (
        _add(client, tenant, plan["id"], step_order=10, name="a", expr="b + 1").status_code == 201
    )
    response = _add(client, tenant, plan["id"], step_order=20, name="b", expr="a * 2")
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert error["type"] == "cycle" and error["loc"] == ["body", "expr"]
    assert "b -> a -> b" in error["msg"]
    ok = _add(client, tenant, plan["id"], step_order=20, name="b", expr="2")
    assert ok.status_code == 201
    step_a = client.get(_plan_url(plan["id"], "/steps"), headers=tenant.users["hr"].headers).json()[
        "items"
    ][0]
    cyclic_patch = client.patch(
        _plan_url(plan["id"], f"/steps/{ok.json()['id']}"),
        json={"expr": "a"},
        headers=tenant.users["hr"].headers,
    )
    assert cyclic_patch.status_code == 422 and step_a["name"] == "a"


def test_reorder_must_list_every_step_once(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    one = _add(client, tenant, plan["id"], step_order=10, name="a").json()
    _add(client, tenant, plan["id"], step_order=20, name="b")
    url, headers = _plan_url(plan["id"], "/steps/reorder"), tenant.users["hr"].headers
    missing = client.post(url, headers=headers, json={"step_ids": [one["id"]]})
    assert missing.status_code == 422 and "missing: b" in missing.json()["errors"][0]["msg"]
    stranger = client.post(url, headers=headers, json={"step_ids": [str(uuid.uuid4())]})
    assert stranger.json()["errors"][0]["loc"] == ["body", "step_ids", 0]


def test_unknown_step_or_plan_is_404(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    headers = tenant.users["hr"].headers
    assert (
        client.patch(
            _plan_url(plan["id"], f"/steps/{uuid.uuid4()}"), headers=headers, json={"expr": "1"}
        ).status_code
        == 404
    )
    assert client.get(_plan_url(uuid.uuid4()), headers=headers).status_code == 404
    assert client.get(_plan_url("not-a-uuid"), headers=headers).status_code == 422


# --- declared inputs ----------------------------------------------------------------------


def test_declare_catalog_inputs(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    add_catalog_input(client, tenant, "salary", "Salary", "decimal")
    plan = create_plan(client, tenant)
    response = client.put(
        _plan_url(plan["id"], "/inputs"),
        headers=headers,
        json={"inputs": [{"key": "salary", "required": False, "default": 0}]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["items"][0] | {"input_id": None} == {
        "input_id": None,
        "key": "salary",
        "label": "Salary",
        "dtype": "decimal",
        "scope": "employee",
        "required": False,
        "default": "0.0000000000",
    }
    unknown = client.put(
        _plan_url(plan["id"], "/inputs"), headers=headers, json={"inputs": [{"key": "salery"}]}
    )
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["loc"] == ["body", "inputs", 0, "key"]
    assert "did you mean 'salary'" in unknown.json()["errors"][0]["msg"]
    bad_default = client.put(
        _plan_url(plan["id"], "/inputs"),
        headers=headers,
        json={"inputs": [{"key": "salary", "default": "lots"}]},
    )
    assert bad_default.json()["errors"][0]["loc"] == ["body", "inputs", 0, "default"]


# --- the plan document --------------------------------------------------------------------


def test_put_document_valid(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    headers = tenant.users["hr"].headers
    doc = sample_document(name=plan["name"])
    response = client.put(_plan_url(plan["id"], "/document"), headers=headers, json=doc)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["valid"] is True and body["diagnostics"] == []
    assert len(body["plan_hash"]) == 64 and body["plan"]["payout"] == "bonus"
    stored = client.get(_plan_url(plan["id"], "/document"), headers=headers).json()
    assert stored["steps"][0]["condition"] == "fund_return >= 0.0"
    assert stored["inputs"][0]["label"] == "Score"
    assert audit_actions(client, tenant, plan["id"])[-1] == "plan.document.replace"


def test_put_document_invalid_is_saved_with_diagnostics(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_document_plan(client, tenant)
    headers = tenant.users["hr"].headers
    step_ids = {
        s["name"]: s["id"]
        for s in client.get(_plan_url(plan["id"], "/steps"), headers=headers).json()["items"]
    }
    doc = sample_document(name=plan["name"], currency=None, payout="bonus")
    doc["steps"][1]["expr"] = "round2(base_salary * target_pc)"
    doc["steps"].append({"order": 30, "name": "broken", "expr": "1 +\n  (2"})
    response = client.put(_plan_url(plan["id"], "/document"), headers=headers, json=doc)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["valid"] is False and body["plan_hash"] is None
    found = {(d["step"], d["field"], d["code"]): d for d in body["diagnostics"]}
    assert found[(None, "currency", "missing")]["message"].startswith("the plan needs a currency")
    unknown = found[("bonus", "expr", "unknown_name")]
    assert (unknown["line"], unknown["column"]) == (1, 22)
    assert "did you mean 'target_pct'" in unknown["message"]
    assert found[("broken", "expr", "syntax")]["line"] == 2
    stored = client.get(_plan_url(plan["id"], "/document"), headers=headers).json()
    assert stored["steps"][2]["expr"] == "1 +\n  (2" and stored["currency"] is None
    after_ids = {
        s["name"]: s["id"]
        for s in client.get(_plan_url(plan["id"], "/steps"), headers=headers).json()["items"]
    }
    assert after_ids["bonus"] == step_ids["bonus"]  # a step keeps its id across documents
    locked = client.post(_plan_url(plan["id"], "/lock"), headers=headers)
    assert locked.status_code == 409 and len(locked.json()["errors"]) == len(found)


def test_put_document_drops_removed_inputs_and_steps(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_document_plan(client, tenant)
    headers = tenant.users["hr"].headers
    doc = sample_document(name=plan["name"], payout="perf_multiplier")
    doc["inputs"] = [i for i in doc["inputs"] if i["key"] != "base_salary"]
    doc["steps"] = doc["steps"][:1]
    body = client.put(_plan_url(plan["id"], "/document"), headers=headers, json=doc).json()
    assert body["valid"] is True
    declared = client.get(_plan_url(plan["id"], "/inputs"), headers=headers).json()["items"]
    assert [i["key"] for i in declared] == ["employee_score", "fund_return"]
    steps = client.get(_plan_url(plan["id"], "/steps"), headers=headers).json()["items"]
    assert [s["name"] for s in steps] == ["perf_multiplier"]
    catalog = client.get(f"/api/v1/tenants/{tenant.id}/input-catalog", headers=headers).json()
    salary = next(i for i in catalog["items"] if i["key"] == "base_salary")
    assert (
        client.delete(f"/api/v1/input-catalog/{salary['id']}", headers=headers).status_code == 204
    )


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        (lambda d: d["inputs"][0].update(dtype="text"), ["body", "inputs", 0, "dtype"]),
        (lambda d: d["inputs"][1].update(key="employee_score"), ["body", "inputs", 1, "key"]),
        (lambda d: d["inputs"][1].update(key="Base Salary"), ["body", "inputs", 1, "key"]),
        (lambda d: d["steps"][1].update(name="perf_multiplier"), ["body", "steps", 1, "name"]),
        (lambda d: d["steps"][1].update(order=10), ["body", "steps", 1, "order"]),
        (lambda d: d["steps"][0].pop("expr"), ["body", "steps", 0, "expr"]),
        (lambda d: d.update(effective_to="2024-01-01"), ["body", "effective_to"]),
    ],
)
def test_put_document_unstorable_is_422(client, make_tenant, change, loc) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    add_catalog_input(client, tenant, "employee_score", "Score", "decimal")
    plan = create_plan(client, tenant)
    doc = sample_document(name=plan["name"])
    change(doc)
    response = client.put(_plan_url(plan["id"], "/document"), headers=headers, json=doc)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc
    assert client.get(_plan_url(plan["id"], "/steps"), headers=headers).json()["items"] == []


def test_dtype_conflict_names_the_input(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    add_catalog_input(client, tenant, "base_salary", "Salary", "text")
    plan = create_plan(client, tenant)
    response = client.put(
        _plan_url(plan["id"], "/document"), headers=headers, json=sample_document(name=plan["name"])
    )
    error = response.json()["errors"][0]
    assert response.status_code == 422 and error["type"] == "dtype_conflict"
    assert "base_salary" in error["msg"] and error["loc"] == ["body", "inputs", 1, "dtype"]


def test_validate_changes_nothing(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    headers = tenant.users["hr"].headers
    result = client.post(_plan_url(plan["id"], "/validate"), headers=headers).json()
    assert result["valid"] is False
    assert {d["code"] for d in result["diagnostics"]} >= {"missing"}
    assert {d["field"] for d in result["diagnostics"]} >= {"steps", "currency", "effective_from"}
    assert audit_actions(client, tenant, plan["id"]) == ["plan.create"]
    assert client.get(_plan_url(plan["id"]), headers=headers).json() == plan


def test_diff_reports_inputs_parameters_payout_and_steps(client, make_tenant) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    v1 = create_document_plan(client, tenant)
    client.post(_plan_url(v1["id"], "/lock"), headers=headers)
    v2 = client.post(_plan_url(v1["id"], "/versions"), headers=headers).json()
    doc = sample_document(name=v1["name"], payout="total")
    doc["parameters"][0]["value"] = "0.2"
    doc["inputs"].append({"key": "tenure", "dtype": "int"})
    doc["steps"].append({"order": 30, "name": "total", "expr": "bonus + tenure"})
    doc["steps"] = [s for s in doc["steps"] if s["name"] != "perf_multiplier"]
    doc["steps"][0]["expr"] = "round2(base_salary * target_pct)"
    client.put(_plan_url(v2["id"], "/document"), headers=headers, json=doc)
    diff = client.get(
        _plan_url(v2["id"], "/diff"), params={"against": v1["id"]}, headers=headers
    ).json()
    assert [s["name"] for s in diff["steps"]["added"]] == ["total"]
    assert [s["name"] for s in diff["steps"]["removed"]] == ["perf_multiplier"]
    assert [c["name"] for c in diff["steps"]["changed"]] == ["bonus"]
    assert [i["key"] for i in diff["inputs"]["added"]] == ["tenure"]
    assert diff["parameters"]["changed"] == [
        {"name": "target_pct", "fields": {"value": {"before": "0.15", "after": "0.2"}}}
    ]
    assert diff["payout"] == {"before": "bonus", "after": "total"}
    same = client.get(
        _plan_url(v1["id"], "/diff"), params={"against": v1["id"]}, headers=headers
    ).json()
    assert same["identical"] is True
    missing = client.get(
        _plan_url(v1["id"], "/diff"), params={"against": str(uuid.uuid4())}, headers=headers
    )
    assert missing.status_code == 404
    assert client.get(_plan_url(v1["id"], "/diff"), headers=headers).status_code == 422


# --- test vectors -------------------------------------------------------------------------


ROWS = [
    {"employee_ref": "E1", "employee_score": "0.9", "base_salary": "100000", "fund_return": 0.05},
    {"employee_ref": "E2", "employee_score": 0.5, "base_salary": 80000, "fund_return": "-0.1"},
]


def test_evaluate_test_vectors(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_document_plan(client, tenant)
    response = client.post(
        _plan_url(plan["id"], "/evaluate"),
        headers=tenant.users["readonly"].headers,
        json={"rows": ROWS},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["payout_step"] == "bonus" and len(body["plan_hash"]) == 64
    first, second = body["rows"]
    assert first["values"] == {"perf_multiplier": "1.2000000000", "bonus": "18000.0000000000"}
    assert second["values"] == {"perf_multiplier": "0.0000000000", "bonus": "0.0000000000"}
    tape = first["tape"]["steps"][0]
    assert tape["condition_value"] is True
    assert tape["bindings"]["employee_score"] == "0.9000000000"
    assert second["tape"]["steps"][0]["condition_value"] is False
    overridden = client.post(
        _plan_url(plan["id"], "/evaluate"),
        headers=tenant.users["hr"].headers,
        json={"rows": ROWS[:1], "parameters": {"target_pct": "0.1"}},
    )
    assert overridden.json()["rows"][0]["payout"] == "12000.0000000000"
    assert audit_actions(client, tenant, plan["id"]) == ["plan.create"]


def test_evaluate_many_rows_and_the_row_cap(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_document_plan(client, tenant)
    rows = [dict(ROWS[0], employee_ref=f"E{i:04d}") for i in range(MAX_VECTOR_ROWS)]
    body = client.post(
        _plan_url(plan["id"], "/evaluate"), headers=tenant.users["hr"].headers, json={"rows": rows}
    ).json()
    assert [row["employee_ref"] for row in body["rows"]] == [r["employee_ref"] for r in rows]
    assert all(row["tape"]["employee_ref"] == row["employee_ref"] for row in body["rows"])
    too_many = client.post(
        _plan_url(plan["id"], "/evaluate"),
        headers=tenant.users["hr"].headers,
        json={"rows": [*rows, dict(ROWS[0], employee_ref="E9999")]},
    )
    assert too_many.status_code == 422
    assert too_many.json()["errors"][0]["loc"][:2] == ["body", "rows"]


def test_evaluate_reports_division_by_zero_as_a_diagnostic(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(
        client,
        tenant,
        document=sample_document(
            steps=[{"order": 10, "name": "bonus", "expr": "base_salary / employee_score"}]
        ),
    )
    rows = [{"employee_score": 0, "base_salary": 1, "fund_return": 0}]
    body = client.post(
        _plan_url(plan["id"], "/evaluate"), headers=tenant.users["hr"].headers, json={"rows": rows}
    ).json()
    assert body["rows"][0]["payout"] is None
    assert [d["code"] for d in body["rows"][0]["diagnostics"]] == [
        "division_by_zero",
        "null_payout",
    ]


@pytest.mark.parametrize(
    ("rows", "parameters", "loc"),
    [
        (
            [{"employee_score": "high", "base_salary": 1, "fund_return": 0}],
            {},
            ["body", "rows", 0, "employee_score"],
        ),
        (
            [ROWS[0], {"employee_score": 1, "fund_return": 0}],
            {},
            ["body", "rows", 1, "base_salary"],
        ),
        ([ROWS[0] | {"bonus_pct": 1}], {}, ["body", "rows", 0, "bonus_pct"]),
        ([ROWS[0], ROWS[0]], {}, ["body", "rows", 0, "employee_ref"]),
        ([ROWS[0] | {"base_salary": "1.00000000001"}], {}, ["body", "rows", 0, "base_salary"]),
        (ROWS, {"target": "1"}, ["body", "parameters", "target"]),
        (ROWS, {"target_pct": "abc"}, ["body", "parameters", "target_pct"]),
        ([], {}, ["body", "rows"]),
    ],
)
def test_evaluate_bad_values_name_row_and_key(client, make_tenant, rows, parameters, loc) -> None:
    tenant = make_tenant()
    plan = create_document_plan(client, tenant)
    response = client.post(
        _plan_url(plan["id"], "/evaluate"),
        headers=tenant.users["hr"].headers,
        json={"rows": rows, "parameters": parameters},
    )
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == loc


def test_evaluate_an_invalid_plan_is_422_with_its_diagnostics(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    response = client.post(
        _plan_url(plan["id"], "/evaluate"), headers=tenant.users["hr"].headers, json={"rows": [{}]}
    )
    assert response.status_code == 422
    assert "not valid" in response.json()["detail"]


# --- auth: 401, role matrix, other tenants ------------------------------------------------


def test_every_plan_route_needs_a_token(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    for method, path in [
        ("GET", plans_url(tenant.id)),
        ("POST", plans_url(tenant.id)),
        ("GET", _plan_url(plan["id"])),
        ("PATCH", _plan_url(plan["id"])),
        ("POST", _plan_url(plan["id"], "/lock")),
        ("PUT", _plan_url(plan["id"], "/document")),
        ("POST", _plan_url(plan["id"], "/evaluate")),
    ]:
        assert client.request(method, path, json={}).status_code == 401, path


def _write_routes(tenant, plan_id, step_id, locked_id):
    """(permission, method, path, body, expected success status) for every write route."""
    return [
        ("plans.write", "POST", plans_url(tenant.id), {"name": f"P {uuid.uuid4().hex}"}, 201),
        ("plans.write", "PATCH", _plan_url(plan_id), {"notes": "x"}, 200),
        ("plans.write", "POST", _plan_url(plan_id, "/steps/reorder"), {"step_ids": [step_id]}, 200),
        (
            "plans.write",
            "POST",
            _plan_url(plan_id, "/steps"),
            {"step_order": 99, "name": "extra", "expr": "1"},
            201,
        ),
        ("plans.write", "PATCH", _plan_url(plan_id, f"/steps/{step_id}"), {"notes": "n"}, 200),
        ("plans.write", "PUT", _plan_url(plan_id, "/inputs"), {"inputs": []}, 200),
        ("plans.write", "DELETE", _plan_url(plan_id, f"/steps/{step_id}"), None, 204),
        ("plans.write", "PUT", _plan_url(plan_id, "/document"), {"steps": []}, 200),
        ("plans.write", "POST", _plan_url(locked_id, "/versions"), None, 201),
        ("plans.lock", "POST", _plan_url(plan_id, "/lock"), None, 409),  # allowed: empty plan
    ]


@pytest.mark.parametrize("role", [r.value for r in Role])
def test_role_matrix_over_write_routes(client, make_tenant, role) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    step = _add(client, tenant, plan["id"]).json()
    locked = create_document_plan(client, tenant)
    client.post(_plan_url(locked["id"], "/lock"), headers=tenant.users["admin"].headers)
    for permission, method, path, body, ok in _write_routes(
        tenant, plan["id"], step["id"], locked["id"]
    ):
        response = client.request(method, path, json=body, headers=tenant.users[role].headers)
        if Role(role) in PERMISSIONS[permission]:
            assert response.status_code == ok, (method, path, response.text)
        else:
            assert response.status_code == 403, (method, path, response.text)
            assert permission in response.json()["detail"]
    assert client.get(_plan_url(plan["id"]), headers=tenant.users[role].headers).status_code == 200


def test_another_tenants_plan_ids_are_404(client, make_tenant) -> None:
    a, b = make_tenant(), make_tenant()
    b_plan = create_document_plan(client, b)
    b_step = client.get(_plan_url(b_plan["id"], "/steps"), headers=b.users["hr"].headers).json()[
        "items"
    ][0]
    a_plan = create_document_plan(client, a)
    routes = [("GET", plans_url(b.id), None), ("POST", plans_url(b.id), {"name": "x"})]
    routes += [
        (m, _plan_url(b_plan["id"], s), body)
        for m, s, body in [
            ("GET", "", None),
            ("PATCH", "", {"notes": "x"}),
            ("GET", "/steps", None),
            ("POST", "/steps", {"step_order": 99, "name": "x", "expr": "1"}),
            ("PATCH", f"/steps/{b_step['id']}", {"expr": "2"}),
            ("DELETE", f"/steps/{b_step['id']}", None),
            ("POST", "/steps/reorder", {"step_ids": [b_step["id"]]}),
            ("GET", "/inputs", None),
            ("PUT", "/inputs", {"inputs": []}),
            ("GET", "/document", None),
            ("PUT", "/document", {"steps": []}),
            ("POST", "/validate", None),
            ("POST", "/lock", None),
            ("POST", "/versions", None),
            ("GET", f"/diff?against={a_plan['id']}", None),
            ("POST", "/evaluate", {"rows": ROWS}),
        ]
    ]
    routes.append(("GET", _plan_url(a_plan["id"], f"/diff?against={b_plan['id']}"), None))
    routes.append(("PATCH", _plan_url(a_plan["id"], f"/steps/{b_step['id']}"), {"expr": "2"}))
    for method, path, body in routes:
        response = client.request(method, path, json=body, headers=a.users["admin"].headers)
        assert response.status_code == 404, (method, path, response.text)
    assert client.get(_plan_url(b_plan["id"]), headers=b.users["hr"].headers).json() == b_plan


# --- service entry points for other modules -----------------------------------------------


def test_create_plan_from_document_and_get_locked_plan(make_tenant) -> None:
    from engine.plan import validate_document

    tenant = make_tenant()
    doc = validate_document(sample_document())
    with db.tenant_session(tenant.id) as session:
        plan = plans.create_plan_from_document(session, None, doc)
        plan_id = plan.id
        assert plans.diagnostics_for(plan)[1] == []
        with pytest.raises(Conflict):
            plans.get_locked_plan(session, plan_id)
    with db.tenant_session(tenant.id) as session:
        principal = _principal(tenant)
        plans.lock_plan(session, principal, plan_id)
    with db.tenant_session(tenant.id) as session:
        row, compiled = plans.get_locked_plan(session, plan_id)
        assert row.plan_hash == compiled.plan_hash
        assert compiled.payout == "bonus" and [s.name for s in compiled.steps] == [
            "perf_multiplier",
            "bonus",
        ]
        assert plans.get_locked_plan(session, plan_id)[1] is compiled  # cached by hash


def _principal(tenant):
    from server.modules.auth.dependencies import Principal

    hr = tenant.users["hr"]
    return Principal(
        user_id=hr.id,
        tenant_id=tenant.id,
        role=Role.HR,
        email=hr.email,
        display_name="Hr",
        teams=(),
    )


def test_document_shape_problems_do_not_hide_expression_problems(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    doc = sample_document(name=plan["name"], payout=None, effective_from=None)
    doc["parameters"][0]["value"] = "fifteen percent"
    doc["inputs"][1]["default"] = "n/a"
    doc["steps"][1]["expr"] = "base_salary * target_pct * perf"
    body = client.put(
        _plan_url(plan["id"], "/document"), headers=tenant.users["hr"].headers, json=doc
    ).json()
    found = {(d["step"], d["field"], d["code"]) for d in body["diagnostics"]}
    assert found == {
        (None, "payout", "missing"),
        (None, "effective_from", "missing"),
        (None, "parameters", "invalid_document"),
        (None, "inputs", "invalid_document"),
        ("bonus", "expr", "unknown_name"),
    }
    parameter = next(d for d in body["diagnostics"] if d["field"] == "parameters")
    assert "fifteen percent" in parameter["message"]


def test_seeding_from_parsed_json_keeps_numbers_as_written(make_tenant) -> None:
    """The seed reads the sample with json.loads (floats); they are stored by their repr."""
    tenant = make_tenant()
    doc = sample_document()
    doc["parameters"][0]["value"] = 0.15
    with db.tenant_session(tenant.id) as session:
        plan = plans.create_plan_from_document(session, None, doc)
        assert plan.document["parameters"][0]["value"] == "0.15"
        assert plans.diagnostics_for(plan)[1] == []
        assert [s.name for s in plans.list_steps(session, plan.id)] == ["perf_multiplier", "bonus"]


def test_get_locked_plan_keeps_each_versions_own_document(client, make_tenant) -> None:
    """v1 and v2 with identical content share a plan hash but not a version number."""
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    v1 = create_document_plan(client, tenant)
    client.post(_plan_url(v1["id"], "/lock"), headers=headers)
    v2 = client.post(_plan_url(v1["id"], "/versions"), headers=headers).json()
    assert client.post(_plan_url(v2["id"], "/lock"), headers=headers).status_code == 200
    with db.tenant_session(tenant.id) as session:
        first = plans.get_locked_plan(session, uuid.UUID(v1["id"]))[1]
        second = plans.get_locked_plan(session, uuid.UUID(v2["id"]))[1]
    assert first.plan_hash == second.plan_hash
    assert (first.document.version, second.document.version) == (1, 2)
