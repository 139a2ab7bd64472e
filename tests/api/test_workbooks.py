"""Workbook routes: template download, import of a filled template into a draft plan (through
the plans service), export of a stored plan, round trip of the plan hash, located errors,
roles and cross-tenant 404s."""

from __future__ import annotations

import io
import json
from pathlib import Path

from openpyxl import load_workbook

from server.modules.workbooks.template import build_workbook, workbook_bytes
from tests.api.plan_helpers import create_document_plan

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "samples/plans/fund_bonus.json").read_text())
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _import(client, tenant, data: bytes, role: str = "hr"):
    return client.post(
        f"/api/v1/tenants/{tenant.id}/bonus-plans/import",
        headers=tenant.users[role].headers,
        files={"file": ("plan.xlsx", data, XLSX)},
    )


def _sample_bytes(**changes) -> bytes:
    return workbook_bytes(build_workbook(SAMPLE | changes))


def test_template_download_is_a_protected_workbook(client, make_tenant) -> None:
    tenant = make_tenant()
    response = client.get("/api/v1/templates/plan.xlsx", headers=tenant.users["readonly"].headers)
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook["Steps"].protection.sheet
    assert client.get("/api/v1/templates/plan.xlsx").status_code == 401


def test_layout_is_served_for_the_addin(client, make_tenant) -> None:
    tenant = make_tenant()
    response = client.get("/api/v1/templates/plan-layout.json",
                          headers=tenant.users["hr"].headers)
    assert response.status_code == 200
    assert [c["key"] for c in response.json()["sheets"]["Steps"]["columns"]][:3] == [
        "order", "name", "expr"]


def test_import_creates_a_valid_draft_and_export_round_trips_the_hash(client, make_tenant):
    tenant = make_tenant()
    imported = _import(client, tenant, _sample_bytes(name="Imported plan"))
    assert imported.status_code == 201, imported.text
    body = imported.json()
    assert body["valid"] and body["diagnostics"] == []
    assert body["plan"]["status"] == "draft" and body["plan"]["name"] == "Imported plan"
    plan_id = body["plan"]["id"]
    document = client.get(f"/api/v1/bonus-plans/{plan_id}/document",
                          headers=tenant.users["hr"].headers).json()
    assert [s["name"] for s in document["steps"]] == [s["name"] for s in SAMPLE["steps"]]

    exported = client.get(f"/api/v1/bonus-plans/{plan_id}/workbook",
                          headers=tenant.users["readonly"].headers)
    assert exported.status_code == 200 and exported.headers["content-type"] == XLSX
    assert "Imported_plan_v1.xlsx" in exported.headers["content-disposition"]
    sheet = load_workbook(io.BytesIO(exported.content))["Plan"]
    assert sheet["B8"].value == plan_id and sheet["B9"].value == "draft"

    workbook = load_workbook(io.BytesIO(exported.content))
    workbook["Plan"]["B2"] = "Imported plan again"
    again = _import(client, tenant, workbook_bytes(workbook))
    assert again.status_code == 201, again.text
    assert again.json()["plan_hash"] != body["plan_hash"]  # the name is part of the hash
    workbook["Plan"]["B2"] = "Imported plan"
    other = make_tenant()
    same = _import(client, other, workbook_bytes(workbook))
    assert same.json()["plan_hash"] == body["plan_hash"]


def test_import_of_a_workbook_with_bad_cells_names_every_cell(client, make_tenant) -> None:
    tenant = make_tenant()
    workbook = load_workbook(io.BytesIO(_sample_bytes()))
    workbook["Inputs"]["D4"] = "team"
    workbook["Steps"]["A3"] = "2.5"
    response = _import(client, tenant, workbook_bytes(workbook))
    assert response.status_code == 422
    assert response.headers["content-type"].startswith("application/problem+json")
    errors = response.json()["errors"]
    assert [(e["sheet"], e["row"], e["column"], e["cell"]) for e in errors] == [
        ("Inputs", 4, "D", "Inputs!D4"), ("Steps", 3, "A", "Steps!A3")]
    assert "Inputs!D4" in response.json()["detail"]


def test_import_of_an_invalid_plan_stores_a_draft_with_located_diagnostics(client, make_tenant):
    tenant = make_tenant()
    steps = [dict(step) for step in SAMPLE["steps"]]
    steps[2]["expr"] = "clip(round(0.25 + (performance_score / 5) ^ 2 * 1.25, 4), 0, 1.5"
    steps[4]["condition"] = "excess_retrun > 0"
    response = _import(client, tenant, _sample_bytes(steps=steps))
    assert response.status_code == 201, response.text
    body = response.json()
    assert not body["valid"] and body["plan_hash"] is None
    cells = {d["cell"]: d for d in body["diagnostics"]}
    assert set(cells) == {"Steps!C4", "Steps!D6"}
    assert cells["Steps!C4"]["code"] == "syntax" and cells["Steps!C4"]["expr_line"] == 1
    assert "did you mean 'excess_return'" in cells["Steps!D6"]["message"]


def test_import_refuses_junk_and_large_files(client, make_tenant) -> None:
    tenant = make_tenant()
    junk = _import(client, tenant, b"definitely not a workbook")
    assert junk.status_code == 422 and "not a readable .xlsx" in junk.json()["detail"]
    large = _import(client, tenant, b"0" * (5 * 1024 * 1024 + 10))
    assert large.status_code == 422 and "larger than 5 MB" in large.json()["detail"]


def test_import_roles_and_other_tenants(client, make_tenant) -> None:
    tenant, other = make_tenant(), make_tenant()
    assert _import(client, tenant, _sample_bytes(), role="readonly").status_code == 403
    response = client.post(
        f"/api/v1/tenants/{other.id}/bonus-plans/import", headers=tenant.users["hr"].headers,
        files={"file": ("plan.xlsx", _sample_bytes(), XLSX)})
    assert response.status_code == 404
    plan = create_document_plan(client, tenant)
    foreign = client.get(f"/api/v1/bonus-plans/{plan['id']}/workbook",
                         headers=other.users["hr"].headers)
    assert foreign.status_code == 404


def test_export_writes_diagnostics_of_an_invalid_draft(client, make_tenant) -> None:
    tenant = make_tenant()
    plan = create_document_plan(client, tenant, payout="nothing")
    response = client.get(f"/api/v1/bonus-plans/{plan['id']}/workbook",
                          headers=tenant.users["hr"].headers)
    workbook = load_workbook(io.BytesIO(response.content))
    assert workbook["Steps"]["G2"].value == "ok"
    assert "payout" in workbook["Plan"]["B11"].value or "nothing" in workbook["Plan"]["B11"].value

