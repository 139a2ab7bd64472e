"""Builders for the deferral tests: a plan with a deferral policy, a tiny employees file, NAVs,
and the approval path of a run, all through the real API."""

from __future__ import annotations

from typing import Any

from server.modules.auth.permissions import Role
from tests.runs.support import create_locked_plan, extra_user, ready_upload, wait_for_run

API = "/api/v1"


def deferral_document(**policy: Any) -> dict[str, Any]:
    """Variable pay is an input; above 100,000 the plan defers 40% of it (the whole amount),
    50% of the deferred part in units of fund F1, pro rata over 3 years."""
    return {
        "name": "Deferral plan", "version": 1, "effective_from": "2025-01-01",
        "effective_to": "2025-12-31", "currency": "EUR",
        "inputs": [
            {"key": "variable_pay", "dtype": "decimal", "scope": "employee", "required": True},
            {"key": "team", "dtype": "text", "scope": "employee", "required": True},
        ],
        "parameters": [{"key": "deferral_threshold", "dtype": "decimal", "value": "100000"}],
        "steps": [
            {"order": 10, "name": "bonus", "expr": "variable_pay"},
            {"order": 20, "name": "deferred", "expr": "round2(bonus * 0.4)",
             "condition": "bonus > deferral_threshold", "default": "0"},
            {"order": 30, "name": "cash_now", "expr": "bonus - deferred"},
        ],
        "payout": "bonus",
        "deferral": {
            "variable_pay_step": "bonus", "deferred_step": "deferred",
            "award_date": "2026-03-01",
            "instruments": [{"fund_ref": "F1", "share": "0.5"}],
            "schedule": {"kind": "pro_rata", "years": 3, "first_vesting_months": 12},
            "retention_months": 6, "unit_decimals": 4,
            "leaver": {"good": "keep_schedule", "bad": "forfeit_unvested"},
        } | policy,
    }


def employees_upload(rc: Any, tenant: Any, plan_id: str, rows: list[tuple[str, str, str]]
                     ) -> str:
    text = "employee_ref,variable_pay,team\n" + "".join(f"{r},{p},{t}\n" for r, p, t in rows)
    mapping = {"employee_ref": "employee_ref", "variable_pay": "variable_pay", "team": "team"}
    return ready_upload(rc, tenant, text.encode(), "employees", plan_id, mapping)


def add_nav(rc: Any, tenant: Any, fund: str, when: str, nav: str) -> None:
    response = rc.post(f"{API}/fund-navs", headers=tenant.users["finance"].headers,
                       json={"navs": [{"fund_ref": fund, "nav_date": when, "nav": nav,
                                       "currency": "EUR"}]})
    assert response.status_code == 201, response.text


def computed_run(rc: Any, tenant: Any, starter: dict[str, str], plan_id: str,
                 upload_id: str) -> str:
    response = rc.post(f"{API}/runs", headers=starter,
                       json={"plan_id": plan_id, "upload_id": upload_id})
    assert response.status_code == 202, response.text
    run_id = response.json()["run_id"]
    assert wait_for_run(rc, run_id, starter)["status"] == "draft"
    return run_id


def approve_to_finance(rc: Any, tenant: Any, run_id: str) -> None:
    for role, action in (("manager", "manager_approve"), ("hr", "hr_approve"),
                         ("finance", "finance_approve")):
        response = rc.post(f"{API}/runs/{run_id}/approve", headers=tenant.users[role].headers,
                           json={"action": action, "comment": "ok"})
        assert response.status_code == 200, response.text


def finalize(rc: Any, tenant: Any, run_id: str, **body: Any) -> Any:
    # admin: with separation of duties the finance approver may not also finalize
    return rc.post(f"{API}/runs/{run_id}/finalize", headers=tenant.users["admin"].headers,
                   json={"comment": "final", **body})


def deferral_setup(rc: Any, make_tenant: Any, rows: list[tuple[str, str, str]],
                   **policy: Any) -> tuple[Any, dict[str, str], str, str]:
    """(tenant, starter headers, plan id, upload id) with a locked deferral plan."""
    tenant = make_tenant()
    starter = extra_user(tenant, Role.HR)
    plan_id = create_locked_plan(rc, tenant, deferral_document(**policy))
    upload_id = employees_upload(rc, tenant, plan_id, rows)
    return tenant, starter, plan_id, upload_id
