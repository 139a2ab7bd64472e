"""JSON numbers are checked as text before any Decimal or int is built: a number with too
many digits or too large an exponent is a 422 naming the field, and nothing is stored."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from server.jsonbody import MAX_DIGITS, MAX_EXPONENT, exact_loads, number_problem
from tests.api.plan_helpers import create_plan, sample_document

JSON = {"Content-Type": "application/json"}


def _plan_url(plan_id: str, suffix: str = "") -> str:
    return f"/api/v1/bonus-plans/{plan_id}{suffix}"


def _document_with_value(name: str, literal: str) -> str:
    """The sample document as JSON text with the parameter's value the raw `literal`."""
    doc = sample_document(name=name)
    doc["parameters"][0]["value"] = "__VALUE__"
    return json.dumps(doc).replace('"__VALUE__"', literal)


@pytest.mark.parametrize("literal", [
    "1e9999999", "1e999999", "-1E+61", "1e-61", "1e100000000000000000000001",
    "1" * (MAX_DIGITS + 1), "0." + "1" * (MAX_DIGITS + 1), "9" * 5000,
])
def test_huge_numbers_in_a_plan_parameter_are_422_naming_the_field(client, make_tenant,
                                                                   literal) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    plan = create_plan(client, tenant)
    before = client.get(_plan_url(plan["id"], "/document"), headers=headers).json()
    response = client.put(_plan_url(plan["id"], "/document"), headers={**headers, **JSON},
                          content=_document_with_value(plan["name"], literal))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    error = response.json()["errors"][0]
    assert error["loc"] == ["body", "parameters", 0, "value"]
    assert error["type"] == "number_limit"
    assert client.get(_plan_url(plan["id"], "/document"), headers=headers).json() == before


@pytest.mark.parametrize("literal", ["0.15", "1.5E-1", "15e-2", f"0.{'0' * 10}15e{10}"])
def test_ordinary_numbers_still_store_exactly(client, make_tenant, literal) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    plan = create_plan(client, tenant)
    response = client.put(_plan_url(plan["id"], "/document"), headers={**headers, **JSON},
                          content=_document_with_value(plan["name"], literal))
    assert response.status_code == 200, response.text
    stored = client.get(_plan_url(plan["id"], "/document"), headers=headers).json()
    assert Decimal(stored["parameters"][0]["value"]) == Decimal("0.15")


def test_huge_number_in_evaluate_parameters_names_the_key(client, make_tenant) -> None:
    tenant = make_tenant()
    doc = sample_document()
    plan = create_plan(client, tenant, name=doc["name"], document=doc)
    body = ('{"rows": [{"employee_ref": "E1", "employee_score": "0.9", "base_salary": "100",'
            ' "fund_return": "0.1"}], "parameters": {"target_pct": 1e9999999}}')
    response = client.post(_plan_url(plan["id"], "/evaluate"),
                           headers={**tenant.users["hr"].headers, **JSON}, content=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "parameters", "target_pct"]


def test_huge_integer_in_the_catalog_is_422_not_400(client, make_tenant) -> None:
    tenant = make_tenant()
    body = ('{"key": "headcount", "label": "Headcount", "dtype": "decimal", '
            '"validation": {"min": ' + "7" * 5000 + "}}")
    response = client.post(f"/api/v1/tenants/{tenant.id}/input-catalog",
                           headers={**tenant.users["admin"].headers, **JSON}, content=body)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "validation", "min"]


def test_malformed_json_is_still_fastapis_422(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_plan(client, tenant)
    response = client.put(_plan_url(plan["id"], "/document"),
                          headers={**tenant.users["hr"].headers, **JSON}, content=b'{"name": ')
    assert response.status_code == 422
    assert response.json()["errors"][0]["type"] == "json_invalid"


def test_number_problem_checks_text_only() -> None:
    assert number_problem("123.456") is None
    assert number_problem("-0") is None
    assert number_problem(f"1e{MAX_EXPONENT}") is None
    assert number_problem(f"1e-{MAX_EXPONENT}") is None
    assert "exponent" in (number_problem(f"1e{MAX_EXPONENT + 1}") or "")
    assert "digits" in (number_problem("1" * (MAX_DIGITS + 1)) or "")
    assert number_problem("0" * 500 + "1") is None  # leading zeros are not digits of value
    assert "exponent" in (number_problem("1e" + "9" * 100_000) or "")


def test_exact_loads_types() -> None:
    value = exact_loads(b'{"a": 2500000.10, "b": [3, 1e2], "c": "x", "d": true}')
    assert value == {"a": Decimal("2500000.10"), "b": [3, Decimal("1e2")], "c": "x",
                     "d": True}
    assert type(value["b"][0]) is int and type(value["a"]) is Decimal
    assert type(value["c"]) is str
