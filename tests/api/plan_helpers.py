"""Builders shared by the catalog and plan API tests."""

from __future__ import annotations

import copy
import uuid
from typing import Any

SAMPLE_DOCUMENT: dict[str, Any] = {
    "name": "2025 Analyst Bonus Plan",
    "version": 1,
    "effective_from": "2025-01-01",
    "effective_to": None,
    "currency": "USD",
    "inputs": [
        {
            "key": "employee_score",
            "label": "Score",
            "dtype": "decimal",
            "scope": "employee",
            "required": True,
        },
        {"key": "base_salary", "dtype": "decimal", "scope": "employee", "required": True},
        {"key": "fund_return", "dtype": "decimal", "scope": "fund", "required": True},
    ],
    "parameters": [{"key": "target_pct", "dtype": "decimal", "value": "0.15"}],
    "steps": [
        {
            "order": 10,
            "name": "perf_multiplier",
            "expr": "if(employee_score >= 0.8) then 1.2 else 0.9",
            "condition": "fund_return >= 0.0",
            "default": "0",
            "notes": "",
        },
        {
            "order": 20,
            "name": "bonus",
            "expr": "round2(base_salary * target_pct * perf_multiplier)",
        },
    ],
    "payout": "bonus",
}


def sample_document(**changes: Any) -> dict[str, Any]:
    """A fresh copy of the valid sample plan, with a unique name unless given."""
    doc = copy.deepcopy(SAMPLE_DOCUMENT)
    doc["name"] = f"Plan {uuid.uuid4().hex[:8]}"
    doc.update(changes)
    return doc


def plans_url(tenant_id: Any) -> str:
    return f"/api/v1/tenants/{tenant_id}/bonus-plans"


def create_plan(client: Any, tenant: Any, role: str = "hr", **body: Any) -> dict[str, Any]:
    body.setdefault("name", f"Plan {uuid.uuid4().hex[:8]}")
    response = client.post(plans_url(tenant.id), headers=tenant.users[role].headers, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def add_catalog_input(client: Any, tenant: Any, key: str, label: str, dtype: str,
                      role: str = "hr") -> dict[str, Any]:
    """Define `key` in the tenant's input catalog (201 asserted); returns the entry."""
    response = client.post(f"/api/v1/tenants/{tenant.id}/input-catalog",
                           headers=tenant.users[role].headers,
                           json={"key": key, "label": label, "dtype": dtype})
    assert response.status_code == 201, response.text
    return response.json()


def create_document_plan(client: Any, tenant: Any, **changes: Any) -> dict[str, Any]:
    doc = sample_document(**changes)
    return create_plan(client, tenant, name=doc["name"], document=doc)


def audit_actions(client: Any, tenant: Any, entity_id: Any) -> list[str]:
    """Audit actions recorded for `entity_id`, oldest first."""
    response = client.get(
        "/api/v1/audit",
        params={"entity_id": str(entity_id), "limit": 500},
        headers=tenant.users["admin"].headers,
    )
    assert response.status_code == 200, response.text
    return [event["action"] for event in reversed(response.json()["items"])]


def audit_events(client: Any, tenant: Any, entity_id: Any) -> list[dict[str, Any]]:
    response = client.get(
        "/api/v1/audit",
        params={"entity_id": str(entity_id), "limit": 500},
        headers=tenant.users["admin"].headers,
    )
    return list(reversed(response.json()["items"]))
