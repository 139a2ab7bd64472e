"""GET /runs/{runId}/workbook: the frozen audit workbook of a real run, through the API.

The cover carries the run's own hashes and approvals, the Calc sheet real formulas, and
`verify_workbook` (an independent recalculation with `formulas`) agrees with the engine on
every row. Roles below the gate get 403, other tenants 404, tampered stored rows 409."""

from __future__ import annotations

import hashlib
import io
import zipfile
from datetime import UTC, datetime

import psycopg
import pytest
from openpyxl import load_workbook

from engine.backends.excel_verify import verify_workbook
from server.modules.auth.permissions import Role
from tests.runs.support import wait_for_run
from tests.runs.test_approvals import act, extra_user

pytestmark = pytest.mark.usefixtures("consumer")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
EMPLOYEES = 24


@pytest.fixture
def computed_run(rc, make_tenant, sample_inputs):
    """A tenant with one computed run of EMPLOYEES people, started by a separate hr user."""
    tenant = make_tenant()
    sample = sample_inputs(tenant, count=EMPLOYEES, funds=3)
    starter = extra_user(tenant, Role.HR)
    started = rc.post("/api/v1/runs", json=sample.body(scenario_name="Audit"), headers=starter)
    assert started.status_code == 202, started.text
    run = wait_for_run(rc, started.json()["run_id"], starter)
    assert run["status"] == "draft", run["error"]
    return tenant, sample, run


def cover_of(workbook) -> dict[str, object]:
    sheet = workbook["Cover"]
    return {row[0]: row[1] for row in sheet.iter_rows(min_row=3, values_only=True) if row[0]}


def test_audit_workbook_of_a_run(rc, computed_run, tmp_path):
    tenant, sample, run = computed_run
    manager = tenant.users["manager"]
    assert act(rc, run["id"], manager.headers, "manager_approve", "looks right").status_code == 200
    auditor = tenant.users["auditor"].headers
    response = rc.get(f"/api/v1/runs/{run['id']}/workbook", headers=auditor)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert f"run-{run['id']}-audit.xlsx" in response.headers["content-disposition"]
    path = tmp_path / "audit.xlsx"
    path.write_bytes(response.content)

    finished = datetime.fromisoformat(run["finished_at"]).astimezone(UTC).replace(
        tzinfo=None, microsecond=0)
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        stamps = {info.date_time for info in archive.infolist()}
        core = archive.read("docProps/core.xml").decode()
    even = finished.replace(second=finished.second // 2 * 2)
    assert stamps == {even.timetuple()[:6]}, "zip entries carry the run's finish time"
    assert core.count(f"{finished.isoformat()}Z") == 2, core  # created and modified

    workbook = load_workbook(io.BytesIO(response.content))
    cover = cover_of(workbook)
    plan = rc.get(f"/api/v1/bonus-plans/{sample.plan_id}", headers=auditor).json()
    totals = rc.get(f"/api/v1/runs/{run['id']}", headers=auditor).json()["totals"]
    assert cover["run id"] == run["id"]
    assert cover["plan hash"] == plan["plan_hash"]
    assert cover["snapshot hash"] == run["snapshot_hash"]
    assert cover["results hash"] == run["results_hash"]
    assert len(str(cover["input data hash"])) == 64
    assert cover["status"] == "manager_approved"
    assert cover["headcount"] == EMPLOYEES
    assert cover["total payout"] == totals["total_payout"]
    assert cover["null payouts"] == 0
    approval = str(cover["approval 1"])
    for part in ("manager_approve", manager.email, "role manager", "looks right",
                 "draft → manager_approved"):
        assert part in approval, approval

    calc = workbook["Calc"]
    headers = {cell.value: cell.column_letter for cell in calc[1] if cell.value}
    assert {"bonus", "bonus (engine)", "check", "employee_ref"} <= set(headers)
    bonus = calc[f"{headers['bonus']}2"].value
    assert isinstance(bonus, str) and bonus.startswith("="), bonus
    assert str(calc[f"{headers['check']}2"].value).startswith("=AND(")
    refs = [calc[f"{headers['employee_ref']}{row}"].value for row in range(2, EMPLOYEES + 2)]
    assert refs == sorted(refs) and len(set(refs)) == EMPLOYEES

    report = verify_workbook(path)
    assert report.ok, report.problems[:5]
    assert report.rows == EMPLOYEES

    events = rc.get("/api/v1/audit", params={"entity_id": run["id"]}, headers=auditor).json()
    downloads = [e for e in events["items"] if e["action"] == "run.workbook"]
    assert len(downloads) == 1
    assert downloads[0]["actor_user_id"] == str(tenant.users["auditor"].id)
    assert downloads[0]["after"]["sha256"] == hashlib.sha256(response.content).hexdigest()


def test_workbook_roles_and_tenancy(rc, computed_run, make_tenant):
    tenant, _, run = computed_run
    url = f"/api/v1/runs/{run['id']}/workbook"
    for role in ("readonly", "manager"):
        refused = rc.get(url, headers=tenant.users[role].headers)
        assert refused.status_code == 403, (role, refused.text)
        assert "runs.workbook" in refused.json()["detail"]
    files = set()
    for role in ("admin", "hr", "finance"):
        response = rc.get(url, headers=tenant.users[role].headers)
        assert response.status_code == 200, role
        files.add(response.content)
    assert len(files) == 1, "the same run in the same state gives the same bytes"
    other = make_tenant()
    assert rc.get(url, headers=other.users["auditor"].headers).status_code == 404
    unknown = "/api/v1/runs/00000000-0000-4000-8000-000000000000/workbook"
    assert rc.get(unknown, headers=tenant.users["auditor"].headers).status_code == 404


def test_tampered_results_are_refused(rc, computed_run, database):
    tenant, _, run = computed_run
    with psycopg.connect(database.app, autocommit=True) as conn:
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
        changed = conn.execute(
            "update comp.run_results set values = jsonb_set(values, '{bonus}', '\"1.0000000000\"')"
            " where run_id = %s and employee_ref = (select min(employee_ref) from "
            "comp.run_results where run_id = %s)", (run["id"], run["id"]))
        assert changed.rowcount == 1
    refused = rc.get(f"/api/v1/runs/{run['id']}/workbook",
                     headers=tenant.users["auditor"].headers)
    assert refused.status_code == 409
    assert "do not match the run's results hash" in refused.json()["detail"]


def test_a_failed_run_has_no_workbook(rc, make_tenant, sample_inputs):
    tenant = make_tenant()
    sample = sample_inputs(tenant, count=6, funds=2)
    failing = sample.body(parameters={"deferral_threshold": "0",
                                      "deferral_percent": "9000000000000000000000000000"})
    hr = tenant.users["hr"].headers
    run = wait_for_run(rc, rc.post("/api/v1/runs", json=failing, headers=hr).json()["run_id"], hr)
    assert run["status"] == "failed"
    refused = rc.get(f"/api/v1/runs/{run['id']}/workbook", headers=tenant.users["auditor"].headers)
    assert refused.status_code == 409
    assert "failed" in refused.json()["detail"]
