"""Least privilege on pay data, derived from the OpenAPI document.

Every operation of the API is either a PAY route (it returns per-employee values: it is
called below as manager and as readonly) or listed in NO_EMPLOYEE_VALUES with the reason it
cannot return any. A new route in neither list fails `test_every_route_is_classified`, so it
cannot slip through. Over a real run whose manager's team T1 holds two of six employees,
every call's response (JSON, CSV, XLSX and zip members, PDF text) is scanned for employee
refs: a manager may see only E0000001 and E0000002, readonly none at all.
"""

from __future__ import annotations

import io
import re
import time
import uuid
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import polars as pl
import pytest
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocketDisconnect

from server.app import API_PREFIX, API_ROUTERS
from tests.reports.conftest import pdf_text
from tests.runs.conftest import consumer, rc, runs_settings, sample_inputs  # noqa: F401
from tests.runs.support import sample_document, wait_for_run

API = "/api/v1"
TEAM = "T1"  # make_tenant's manager team
MINE = {"E0000001", "E0000002"}
REF = re.compile(r"E\d{7}")

# Operations that return no per-employee value, and why (a reviewer checks the reason).
NO_EMPLOYEE_VALUES: dict[tuple[str, str], str] = {
    ("POST", "/api/v1/auth/token"): "credentials in, token out",
    ("POST", "/api/v1/auth/logout"): "no body",
    ("POST", "/api/v1/auth/oidc/logout"): "the provider's logout URL only",
    ("GET", "/api/v1/auth/oidc/{tenantId}/provider"): "provider name and login URL",
    ("GET", "/api/v1/auth/oidc/{tenantId}/login"): "a redirect to the provider",
    ("GET", "/api/v1/auth/oidc/callback"): "a bearer token",
    ("GET", "/api/v1/tenants/{tenantId}/identity-provider"): "identity provider settings",
    ("PUT", "/api/v1/tenants/{tenantId}/identity-provider"): "identity provider settings",
    ("DELETE", "/api/v1/tenants/{tenantId}/identity-provider"): "no body",
    ("GET", "/api/v1/me"): "the caller's own account",
    ("GET", "/api/v1/tenants/{tenantId}"): "tenant facts",
    ("PATCH", "/api/v1/tenants/{tenantId}/settings"): "tenant policies",
    ("GET", "/api/v1/tenants/{tenantId}/users"): "user accounts, admin only",
    ("POST", "/api/v1/tenants/{tenantId}/users"): "creates an account",
    ("PATCH", "/api/v1/users/{userId}"): "changes an account",
    ("PUT", "/api/v1/me/password"): "sets the caller's password",
    ("POST", "/api/v1/me/sessions/revoke"): "signs the caller out",
    ("POST", "/api/v1/users/{userId}/password-reset"): "one-time password, admin only",
    ("POST", "/api/v1/users/{userId}/sessions/revoke"): "signs a user out, admin only",
    ("GET", "/api/v1/audit"): "audit.read: admin and auditor only (scanned below)",
    ("GET", "/api/v1/audit/verify"): "chain status",
    ("GET", "/api/v1/tenants/{tenantId}/input-catalog"): "input definitions",
    ("POST", "/api/v1/tenants/{tenantId}/input-catalog"): "input definitions",
    ("PATCH", "/api/v1/input-catalog/{inputId}"): "input definitions",
    ("DELETE", "/api/v1/input-catalog/{inputId}"): "input definitions",
    ("POST", "/api/v1/tenants/{tenantId}/bonus-plans"): "plan authoring",
    ("GET", "/api/v1/tenants/{tenantId}/bonus-plans"): "plan authoring",
    ("GET", "/api/v1/bonus-plans/{planId}"): "plan authoring",
    ("PATCH", "/api/v1/bonus-plans/{planId}"): "plan authoring",
    ("GET", "/api/v1/bonus-plans/{planId}/steps"): "plan authoring",
    ("POST", "/api/v1/bonus-plans/{planId}/steps"): "plan authoring",
    ("PATCH", "/api/v1/bonus-plans/{planId}/steps/{stepId}"): "plan authoring",
    ("DELETE", "/api/v1/bonus-plans/{planId}/steps/{stepId}"): "plan authoring",
    ("POST", "/api/v1/bonus-plans/{planId}/steps/reorder"): "plan authoring",
    ("GET", "/api/v1/bonus-plans/{planId}/inputs"): "plan authoring",
    ("PUT", "/api/v1/bonus-plans/{planId}/inputs"): "plan authoring",
    ("PUT", "/api/v1/bonus-plans/{planId}/document"): "plan authoring",
    ("GET", "/api/v1/bonus-plans/{planId}/document"): "plan authoring",
    ("POST", "/api/v1/bonus-plans/{planId}/validate"): "plan authoring",
    ("POST", "/api/v1/bonus-plans/{planId}/lock"): "plan authoring",
    ("POST", "/api/v1/bonus-plans/{planId}/versions"): "plan authoring",
    ("GET", "/api/v1/bonus-plans/{planId}/diff"): "plan authoring",
    ("POST", "/api/v1/bonus-plans/{planId}/evaluate"): "evaluates the caller's own rows",
    ("POST", "/api/v1/uploads"): "uploads.write: admin and hr",
    ("GET", "/api/v1/uploads"): "uploads.read excludes manager and readonly (scanned below)",
    ("PATCH", "/api/v1/uploads/{upload_id}"): "uploads.write",
    ("DELETE", "/api/v1/uploads/{upload_id}"): "uploads.write",
    ("GET", "/api/v1/uploads/{upload_id}"): "uploads.read (scanned below)",
    ("GET", "/api/v1/uploads/{upload_id}/preview"): "uploads.read (scanned below)",
    ("GET", "/api/v1/uploads/{upload_id}/mapping-suggestions"): "uploads.read (scanned below)",
    ("POST", "/api/v1/uploads/{upload_id}/map"): "uploads.write",
    ("POST", "/api/v1/uploads/{upload_id}/rows"): "uploads.write",
    ("GET", "/api/v1/uploads/{upload_id}/validation"): "uploads.read (scanned below)",
    ("GET", "/api/v1/mapping-presets"): "column mappings",
    ("PATCH", "/api/v1/mapping-presets/{preset_id}"): "column mappings",
    ("DELETE", "/api/v1/mapping-presets/{preset_id}"): "column mappings",
    ("GET", "/api/v1/templates/plan.xlsx"): "empty template",
    ("GET", "/api/v1/templates/plan-layout.json"): "empty template",
    ("POST", "/api/v1/tenants/{tenantId}/bonus-plans/import"): "plan authoring",
    ("GET", "/api/v1/bonus-plans/{planId}/workbook"): "plan workbook, no data",
    ("GET", "/api/v1/tenants/{tenantId}/signing-key"): "public key",
    ("GET", "/api/v1/reports/pool-vs-target"): "per pool and fund: aggregates (scanned)",
    ("GET", "/api/v1/reports/history"): "per period and group: aggregates (scanned)",
    ("GET", "/api/v1/reports/jobs/{job_id}"): "job status (scanned)",
    ("POST", "/api/v1/runs"): "starts a run",
    ("GET", "/api/v1/runs"): "run list without totals (scanned)",
    ("GET", "/api/v1/runs/{run_id}"): "status and totals: aggregates (scanned)",
    ("POST", "/api/v1/runs/{run_id}/approve"): "approval state",
    ("POST", "/api/v1/runs/{run_id}/finalize"): "approval state",
    ("GET", "/healthz"): "ops",
    ("GET", "/readyz"): "ops",
    ("GET", "/api/v1/ops/slo"): "SLO attainment, admins only",
    ("POST", "/api/v1/reports/jobs/{job_id}/cancel"): "job status",
    ("POST", "/api/v1/runs/{run_id}/deliveries"): "queues a delivery: admin, hr, finance",
    ("PUT", "/api/v1/uploads/{upload_id}/reading"): "uploads.write",
    ("GET", "/api/v1/mapping-aliases"): "column names",
    ("PUT", "/api/v1/mapping-aliases/{input_key}"): "column names",
    # Deferrals: deferrals.read, fund_navs.write, vesting.create, adjustments.create and
    # deferrals.propose/decide exclude managers and readonly (tests/security/
    # test_deferrals_roles.py); the GETs are scanned below as both roles. A vesting run's
    # transition is role-gated per stage like a run's.
    ("GET", "/api/v1/deferrals"): "deferrals.read (scanned)",
    ("GET", "/api/v1/deferrals/employees/{employee_ref}/schedule"): "deferrals.read (scanned)",
    ("GET", "/api/v1/deferrals/liability"): "deferrals.read (scanned)",
    ("GET", "/api/v1/deferrals/payroll/{run_id}"): "deferrals.read (scanned)",
    ("GET", "/api/v1/deferrals/verify"): "audit.read: chain status",
    ("POST", "/api/v1/deferrals/leavers"): "deferrals.propose",
    ("GET", "/api/v1/fund-navs"): "fund prices: deferrals.read (scanned)",
    ("POST", "/api/v1/fund-navs"): "fund_navs.write",
    ("POST", "/api/v1/fund-navs/upload"): "fund_navs.write",
    ("GET", "/api/v1/vesting-runs"): "deferrals.read (scanned)",
    ("GET", "/api/v1/vesting-runs/{run_id}"): "deferrals.read (scanned)",
    ("GET", "/api/v1/vesting-runs/{run_id}/statements/{employee_ref}"): "deferrals.read",
    ("POST", "/api/v1/vesting-runs"): "vesting.create",
    ("POST", "/api/v1/vesting-runs/{run_id}/transition"): "approval state",
    ("GET", "/api/v1/adjustment-runs/{run_id}"): "reports.export: no manager or readonly",
    ("GET", "/api/v1/adjustment-runs/{run_id}/statements/{employee_ref}"):
        "auth.access.pay_scope: a manager's teams only",
    ("POST", "/api/v1/adjustment-runs"): "adjustments.create",
    ("GET", "/api/v1/malus"): "deferrals.read (scanned)",
    ("GET", "/api/v1/malus/{action_id}"): "deferrals.read (scanned)",
    ("POST", "/api/v1/malus"): "deferrals.propose",
    ("POST", "/api/v1/malus/{action_id}/decision"): "deferrals.decide",
    ("GET", "/api/v1/clawbacks"): "deferrals.read (scanned)",
    ("GET", "/api/v1/clawbacks/{action_id}"): "deferrals.read (scanned)",
    ("POST", "/api/v1/clawbacks"): "deferrals.propose",
    ("POST", "/api/v1/clawbacks/{action_id}/decision"): "deferrals.decide",
    # Inquiries: readonly lacks inquiries.read; a manager sees only the inquiries they
    # raised, on employees of their teams (server/modules/inquiries/service.py).
    ("GET", "/api/v1/inquiries"): "a manager's own inquiries only (scanned)",
    ("GET", "/api/v1/inquiries/{inquiry_id}"): "a manager's own inquiries only (scanned)",
    ("POST", "/api/v1/inquiries"): "a manager raises on their teams only",
    ("POST", "/api/v1/inquiries/{inquiry_id}/answer"): "inquiries.handle: admin, hr",
    ("POST", "/api/v1/inquiries/{inquiry_id}/reject"): "inquiries.handle: admin, hr",
    ("POST", "/api/v1/inquiries/{inquiry_id}/resolve"): "inquiries.handle: admin, hr",
}


@dataclass(frozen=True)
class World:
    tenant: Any
    values: dict[str, str]

    def headers(self, role: str) -> dict[str, str]:
        return self.tenant.users[role].headers


Call = Callable[[Any, World, str], list[Any]]  # (client, world, role) -> responses


def _results(client, world: World, role: str) -> list[Any]:
    path = f"{API}/runs/{world.values['run_id']}/results"
    answers = [client.get(path, headers=world.headers(role))]
    answers += [client.get(path, params={"employee_ref": f"E000000{n}"},
                           headers=world.headers(role)) for n in range(1, 7)]
    return answers


def _compare(client, world: World, role: str) -> list[Any]:
    v = world.values
    return [client.get(f"{API}/runs/{v['run_id']}/compare/{v['other_run_id']}",
                       headers=world.headers(role))]


def _statement(client, world: World, role: str) -> list[Any]:
    return [client.post(f"{API}/reports/individual-statement", headers=world.headers(role),
                        json={"run_id": world.values["run_id"], "employee_ref": f"E000000{n}",
                              "format": "html"}) for n in range(1, 7)]


def _deltas(client, world: World, role: str) -> list[Any]:
    v = world.values
    return [client.get(f"{API}/reports/scenario-deltas", headers=world.headers(role),
                       params={"run_id": v["run_id"], "other_run_id": v["other_run_id"]})]


def _statements_job(client, world: World, role: str) -> list[Any]:
    queued = client.post(f"{API}/runs/{world.values['run_id']}/statements",
                         headers=world.headers(role), json={"format": "html"})
    if queued.status_code != 202:
        return [queued]
    job_id = queued.json()["id"]
    deadline = time.monotonic() + 300
    while client.get(f"{API}/reports/jobs/{job_id}", headers=world.headers(role)
                     ).json()["status"] not in ("done", "failed"):
        assert time.monotonic() < deadline, "statements job did not finish"
        time.sleep(0.1)
    return [queued, client.get(f"{API}/reports/jobs/{job_id}/download",
                               headers=world.headers(role))]


def _simple(method: str, template: str, **kwargs: Any) -> Call:
    def call(client, world: World, role: str) -> list[Any]:
        return [client.request(method, template.format(**world.values),
                               headers=world.headers(role), **kwargs)]
    return call


# Operations that can return per-employee values, and how to ask for all of them.
PAY_ROUTES: dict[tuple[str, str], Call] = {
    ("GET", "/api/v1/runs/{run_id}/results"): _results,
    ("GET", "/api/v1/runs/{run_id}/compare/{other_run_id}"): _compare,
    ("POST", "/api/v1/reports/individual-statement"): _statement,
    ("GET", "/api/v1/reports/scenario-deltas"): _deltas,
    ("POST", "/api/v1/runs/{run_id}/statements"): _statements_job,
    ("GET", "/api/v1/reports/jobs/{job_id}/download"):
        _simple("GET", API + "/reports/jobs/{job_id}/download"),
    ("GET", "/api/v1/reports/deliveries/{link_id}/download"):
        _simple("GET", API + "/reports/deliveries/{job_id}/download"),
    ("POST", "/api/v1/runs/{run_id}/export"): _simple("POST", API + "/runs/{run_id}/export"),
    ("GET", "/api/v1/runs/{run_id}/workbook"): _simple("GET", API + "/runs/{run_id}/workbook"),
    ("POST", "/api/v1/runs/{run_id}/reproduce"):
        _simple("POST", API + "/runs/{run_id}/reproduce"),
    ("POST", "/api/v1/runs/{run_id}/parity"): _simple(
        "POST", API + "/runs/{run_id}/parity", data={"amount_column": "amount"},
        files={"file": ("legacy.csv", b"employee_ref,amount\nE0000003,1\n", "text/csv")}),
}


def _operations(client) -> set[tuple[str, str]]:
    document = client.get(f"{API}/openapi.json").json()
    return {(method.upper(), path) for path, operations in document["paths"].items()
            for method in operations}


def test_every_route_is_classified(client) -> None:
    operations = _operations(client)
    unclassified = operations - set(PAY_ROUTES) - set(NO_EMPLOYEE_VALUES)
    assert not unclassified, f"classify these routes in {__name__}: {sorted(unclassified)}"
    assert not set(PAY_ROUTES) & set(NO_EMPLOYEE_VALUES)
    stale = (set(PAY_ROUTES) | set(NO_EMPLOYEE_VALUES)) - operations
    assert not stale, f"routes gone from the API: {sorted(stale)}"


def _text(payload: bytes) -> str:
    """Everything readable in a response: zip members (xlsx too), PDF text, else the bytes."""
    if payload.startswith(b"PK\x03\x04"):
        with zipfile.ZipFile(io.BytesIO(payload)) as archive:
            return "\n".join([name + "\n" + _text(archive.read(name))
                              for name in archive.namelist()])
    if payload.startswith(b"%PDF"):
        return pdf_text(payload)
    return payload.decode("utf-8", errors="replace")


def _refs(responses: list[Any]) -> set[str]:
    """Refs in successful answers (an error's detail may echo the ref the caller sent)."""
    return {ref for response in responses if response.status_code < 400
            for ref in REF.findall(_text(response.content))}


def _run(rc, tenant, sample_inputs, scenario: str | None = None) -> str:  # noqa: F811
    document = sample_document()
    for step in document["steps"]:
        if step["name"] in ("points", "pool_share"):
            step["default"] = "0"
    sample = sample_inputs(
        tenant, count=6, funds=2, document=document,
        edit_employees=lambda people: people.with_columns(
            pl.when(pl.col("employee_ref").is_in(sorted(MINE))).then(pl.lit(TEAM))
            .otherwise(pl.lit("T9")).alias("team")))
    started = rc.post(f"{API}/runs", headers=tenant.users["admin"].headers,
                      json=sample.body(scenario_name=scenario))
    assert started.status_code == 202, started.text
    run = wait_for_run(rc, started.json()["run_id"], tenant.users["admin"].headers)
    assert run["status"] == "draft", run
    return run["id"] if "id" in run else started.json()["run_id"]


@pytest.fixture
def world(rc, consumer, make_tenant, sample_inputs) -> World:  # noqa: F811
    tenant = make_tenant()
    run_id = _run(rc, tenant, sample_inputs)
    other = _run(rc, tenant, sample_inputs, scenario="what-if")
    admin = tenant.users["admin"].headers
    job = rc.post(f"{API}/runs/{run_id}/statements", headers=admin, json={"format": "html"})
    assert job.status_code == 202, job.text
    run = rc.get(f"{API}/runs/{run_id}", headers=admin).json()
    plan_id = run.get("plan_id") or str(uuid.uuid4())
    uploads = rc.get(f"{API}/uploads", headers=admin).json()["items"]
    values = {"run_id": run_id, "other_run_id": other, "tenantId": str(tenant.id),
              "planId": plan_id, "upload_id": uploads[0]["id"], "job_id": job.json()["id"],
              "userId": str(tenant.users["readonly"].id), "inputId": str(uuid.uuid4()),
              "stepId": str(uuid.uuid4()), "preset_id": str(uuid.uuid4()),
              # an employee outside the manager's team: per-employee GETs must not show them
              "employee_ref": "E0000003", "action_id": str(uuid.uuid4()),
              "inquiry_id": str(uuid.uuid4()), "input_key": "base_salary"}
    return World(tenant, values)


QUERY = {"/api/v1/bonus-plans/{planId}/diff": "against={planId}",
         "/api/v1/reports/pool-vs-target": "run_id={run_id}"}


def test_pay_routes_show_managers_their_teams_and_readonly_nothing(rc, world) -> None:  # noqa: F811
    leaks: list[str] = []
    for (method, path), call in sorted(PAY_ROUTES.items()):
        seen = _refs(call(rc, world, "manager"))
        if seen - MINE:
            leaks.append(f"manager {method} {path}: {sorted(seen - MINE)}")
        readonly = call(rc, world, "readonly")
        if _refs(readonly):
            leaks.append(f"readonly {method} {path}: {sorted(_refs(readonly))}")
        if any(r.status_code == 200 for r in readonly):
            leaks.append(f"readonly {method} {path}: answered 200")
    # Every GET route, pay or not, scanned as both roles (aggregates carry no refs).
    for method, path in sorted(_operations(rc)):
        if method != "GET" or (method, path) in PAY_ROUTES:
            continue
        url = path.format(**world.values)
        if path in QUERY:
            url += "?" + QUERY[path].format(**world.values)
        for role, allowed in (("manager", MINE), ("readonly", set())):
            extra = _refs([rc.get(url, headers=world.headers(role))]) - allowed
            if extra:
                leaks.append(f"{role} GET {path}: {sorted(extra)}")
    assert leaks == []
    # The rule is not vacuous: the manager does get their own team's values.
    manager = _results(rc, world, "manager")
    assert {row["employee_ref"] for row in manager[0].json()["items"]} == MINE
    assert [r.status_code for r in manager[1:]] == [200, 200, 404, 404, 404, 404]
    assert _refs(_compare(rc, world, "manager")) == MINE
    hr = _results(rc, world, "hr")[0].json()["items"]
    assert len(hr) == 6  # other roles still see everyone


# WebSockets are not in the OpenAPI document: the routers' routes (server.app.API_ROUTERS,
# the one list every module's router is in) are walked instead, so a new socket must be
# classified here too. Each is read as manager and readonly below.
WEBSOCKETS: dict[str, str] = {
    "/api/v1/runs/{run_id}/events": "run status and progress counts; a failure's employee "
                                    "only to roles that see everyone",
    "/api/v1/uploads/{upload_id}/events": "uploads.read excludes manager and readonly",
    "/api/v1/reports/jobs/{job_id}/events": "status of the caller's own job",
}


def _socket_messages(client, path: str, token: str) -> list[str]:
    """Every message the socket sends before it closes (each of these closes by itself)."""
    messages: list[str] = []
    try:
        with client.websocket_connect(f"{path}?token={token}") as socket:
            while True:
                messages.append(socket.receive_text())
    except WebSocketDisconnect:
        return messages


def test_every_websocket_is_classified_and_carries_no_employee_values(rc, world) -> None:  # noqa: F811
    sockets = {API_PREFIX + route.path for router in API_ROUTERS for route in router.routes
               if isinstance(route, WebSocketRoute)}
    sockets |= {route.path for route in rc.app.routes if isinstance(route, WebSocketRoute)}
    assert sockets == set(WEBSOCKETS), f"classify these sockets in {__name__}"
    own_job = rc.post(f"{API}/runs/{world.values['run_id']}/statements",
                      headers=world.headers("manager"), json={"format": "html"})
    assert own_job.status_code == 202, own_job.text
    jobs = [world.values["job_id"], own_job.json()["id"]]
    heard: dict[str, list[str]] = {}
    for path in sorted(WEBSOCKETS):
        for role in ("manager", "readonly"):
            token = world.tenant.users[role].token
            for job_id in jobs if "{job_id}" in path else jobs[:1]:
                url = path.format(**(world.values | {"job_id": job_id}))
                heard[f"{role} {url}"] = _socket_messages(rc, url, token)
    leaks = {key: REF.findall("".join(messages)) for key, messages in heard.items()}
    assert not any(leaks.values()), leaks
    run_events = f"{API}/runs/{world.values['run_id']}/events"
    assert '"status"' in heard[f"readonly {run_events}"][0]  # the run socket does answer
    assert heard[f"manager {API}/reports/jobs/{jobs[1]}/events"]  # so does the own job's


def test_aggregates_hide_small_groups_from_managers_and_readonly(rc, world) -> None:  # noqa: F811
    run_path = f"{API}/runs/{world.values['run_id']}"
    full = rc.get(run_path, headers=world.headers("hr")).json()["totals"]
    assert "hidden_groups" not in full
    assert any(g["headcount"] < 5 for groups in full["breakdowns"].values() for g in groups)
    for role in ("manager", "readonly"):
        totals = rc.get(run_path, headers=world.headers(role)).json()["totals"]
        groups = [g for groups in totals["breakdowns"].values() for g in groups]
        groups += [g for pool in totals["pools"] for g in pool["groups"]]
        assert all(g["headcount"] >= 5 for g in groups), role
        assert totals["hidden_groups"] > 0 and totals["total_payout"] == full["total_payout"]
    pool = f"{API}/reports/pool-vs-target?run_id={world.values['run_id']}"
    everyone = rc.get(pool, headers=world.headers("hr")).json()["lines"]
    mine = rc.get(pool, headers=world.headers("manager")).json()["lines"]
    assert len(everyone) > len(mine) and mine[-1] == everyone[-1]  # the Total line stays
    assert all(line["headcount"] >= 5 for line in mine[:-1])
