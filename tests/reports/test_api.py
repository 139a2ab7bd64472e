"""Reports over real runs: plans, uploads, runs, approvals and finalize through their APIs."""

from __future__ import annotations

import base64
import io
import re
import time
import uuid
import zipfile
from decimal import Decimal

import polars as pl
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from openpyxl import load_workbook

from server.db import session as db
from server.modules.auth.permissions import Role
from server.modules.reports.bundle import verify_bundle
from tests.reports.conftest import pdf_text, pdf_words
from tests.runs.support import (
    TenantRun,
    extra_user,
    finalize_run,
    guarded_document,
    small_draft_run,
    start_draft_run,
)

API = "/api/v1"
MANAGER_TEAM = "T1"  # the team make_tenant gives its manager


@pytest.fixture
def draft_run(rc, consumer, make_tenant, sample_inputs) -> TenantRun:
    """A draft run in a new tenant; E0000001 and E0000002 are in its manager's team."""
    return small_draft_run(
        rc, make_tenant(), sample_inputs,
        edit_employees=lambda people: people.with_columns(
            pl.when(pl.col("employee_ref").is_in(["E0000001", "E0000002"]))
            .then(pl.lit(MANAGER_TEAM)).otherwise(pl.col("team")).alias("team")))


def _statement(rc, run: TenantRun, role: str, employee_ref: str, fmt: str = "pdf"):
    return rc.post(f"{API}/reports/individual-statement", headers=run.headers(role),
                   json={"run_id": run.run_id, "employee_ref": employee_ref, "format": fmt})


def test_statements_match_the_runs_tape_and_lose_draft_on_finalize(rc, draft_run) -> None:
    tape = rc.get(f"{API}/runs/{draft_run.run_id}/results",
                  params={"employee_ref": "E0000003"}, headers=draft_run.headers("hr")).json()
    response = _statement(rc, draft_run, "hr", "E0000003")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    text = pdf_text(response.content, "-layout")
    assert f"US${Decimal(tape['payout']):,.2f}" in text  # the tenant's default locale, en-GB
    steps = {step["step"]: step["result"] for step in tape["steps"]}
    assert re.search(rf"Target bonus\s+US\${Decimal(steps['target_bonus']):,.2f}\n", text)
    assert "DRAFT" in pdf_text(response.content, "-raw")
    xlsx = _statement(rc, draft_run, "finance", "E0000003", "xlsx")
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    payout = next(row[1] for row in sheet.iter_rows() if row[0].value == "Payout")
    assert payout.data_type == "n"
    finalize_run(rc, draft_run)
    # Words, not lines: the approvers' random user ids decide where their table cell wraps.
    final = pdf_words(_statement(rc, draft_run, "auditor", "E0000003").content)
    assert "DRAFT" not in final
    assert "Status Finalized" in final
    assert "Finalized Finance 2 " in final  # the run's finaliser, by name


def test_statement_roles_teams_and_tenants(rc, draft_run, make_tenant) -> None:
    assert _statement(rc, draft_run, "manager", "E0000001").status_code == 200
    hidden = _statement(rc, draft_run, "manager", "E0000003")
    assert hidden.status_code == 404 and "E0000003" in hidden.json()["detail"]
    assert _statement(rc, draft_run, "readonly", "E0000001").status_code == 403
    assert _statement(rc, draft_run, "admin", "E9999999").status_code == 404
    other = make_tenant()
    foreign = rc.post(f"{API}/reports/individual-statement", headers=other.users["admin"].headers,
                      json={"run_id": draft_run.run_id, "employee_ref": "E0000001"})
    assert foreign.status_code == 404
    bad = _statement(rc, draft_run, "admin", "E0000001", "docx")
    assert bad.status_code == 422


def _export(rc, run: TenantRun, role: str):
    """POST the export (202 + Location), follow the job, download the bundle."""
    queued = rc.post(f"{API}/runs/{run.run_id}/export", headers=run.headers(role))
    assert queued.status_code == 202, queued.text
    job_id = queued.json()["id"]
    assert queued.headers["location"] == f"{API}/reports/jobs/{job_id}"
    assert queued.json()["kind"] == "export"
    job = _wait_for_job(rc, job_id, run.headers(role))
    assert job["status"] == "done", job
    download = rc.get(f"{API}/reports/jobs/{job_id}/download", headers=run.headers(role))
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    return download


def test_export_bundle_of_a_finalized_run(rc, draft_run) -> None:
    path = f"{API}/runs/{draft_run.run_id}/export"
    refused = rc.post(path, headers=draft_run.headers("finance"))
    assert refused.status_code == 409 and "finalized" in refused.json()["detail"]
    finalize_run(rc, draft_run)
    for role in ("hr", "manager", "readonly"):
        assert rc.post(path, headers=draft_run.headers(role)).status_code == 403
    first = _export(rc, draft_run, "auditor")
    again = _export(rc, draft_run, "admin")
    assert again.content == first.content  # identical bytes when exported twice
    key = rc.get(f"{API}/tenants/{draft_run.tenant.id}/signing-key",
                 headers=draft_run.headers("readonly")).json()
    public = Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"]))
    report = verify_bundle(first.content, public)
    assert report.ok, report.problems
    run = rc.get(f"{API}/runs/{draft_run.run_id}", headers=draft_run.headers("hr")).json()
    assert report.manifest["run"]["results_hash"] == run["results_hash"]
    assert report.manifest["run"]["results_csv_matches_results_hash"] is True
    with zipfile.ZipFile(io.BytesIO(first.content)) as archive:
        names = archive.namelist()
        events = archive.read("audit_events.json").decode()
        workbook = load_workbook(io.BytesIO(archive.read("audit_workbook.xlsx")))
    assert len([n for n in names if n.startswith("statements/")]) == 6
    assert {"results.csv", "results.xlsx", "audit_events.json", "audit_workbook.xlsx",
            "manifest.json", "manifest.sig"} <= set(names)
    assert len(workbook.sheetnames) > 1
    assert '"run.finalize"' in events and '"run.export"' not in events
    audit = rc.get(f"{API}/audit", params={"entity_id": draft_run.run_id},
                   headers=draft_run.headers("auditor")).json()
    actions = [event["action"] for event in audit["items"]]
    assert actions.count("run.export") == 2 and actions.count("run.export.done") == 2


def test_pool_vs_target_history_and_scenario_deltas(rc, draft_run) -> None:
    pool = rc.get(f"{API}/reports/pool-vs-target", params={"run_id": draft_run.run_id},
                  headers=draft_run.headers("finance"))
    assert pool.status_code == 200, pool.text
    lines = pool.json()["lines"]
    assert lines[-1]["group"] == "Total" and lines[-1]["headcount"] == 6
    xlsx = rc.get(f"{API}/reports/pool-vs-target", headers=draft_run.headers("finance"),
                  params={"run_id": draft_run.run_id, "format": "xlsx"})
    assert xlsx.headers["content-type"].startswith("application/vnd.openxmlformats")
    assert rc.get(f"{API}/reports/pool-vs-target", params={"run_id": draft_run.run_id},
                  headers=draft_run.headers("readonly")).status_code == 403

    empty = rc.get(f"{API}/reports/history", headers=draft_run.headers("finance")).json()
    assert empty["cells"] == []  # draft runs are not history
    finalize_run(rc, draft_run)
    history = rc.get(f"{API}/reports/history", params={"group_by": "fund"},
                     headers=draft_run.headers("finance")).json()
    total = sum(Decimal(cell["total"]) for cell in history["cells"])
    assert history["periods"] == ["2025-01-01"]
    assert total == Decimal(lines[-1]["allocated"])
    outside = rc.get(f"{API}/reports/history", params={"from": "2026-01-01"},
                     headers=draft_run.headers("finance")).json()
    assert outside["cells"] == []

    deltas = rc.get(f"{API}/reports/scenario-deltas", headers=draft_run.headers("manager"),
                    params={"run_id": draft_run.run_id, "other_run_id": draft_run.run_id})
    assert deltas.status_code == 200, deltas.text
    sheet = load_workbook(io.BytesIO(deltas.content)).active
    refs = [row[0].value for row in sheet.iter_rows(min_row=4) if row[0].value != "Total"]
    assert refs == ["E0000001", "E0000002"]  # the manager's team only


def _wait_for_job(rc, job_id: str, headers: dict[str, str]) -> dict:
    """Poll the job until it is done or failed (bounded by a deadline, not a sleep)."""
    deadline = time.monotonic() + 300
    while True:
        job = rc.get(f"{API}/reports/jobs/{job_id}", headers=headers)
        assert job.status_code == 200, job.text
        if job.json()["status"] in ("done", "failed", "cancelled"):
            return job.json()
        assert time.monotonic() < deadline, job.json()
        time.sleep(0.1)


def test_bulk_statements_job_for_a_managers_team(rc, draft_run) -> None:
    path = f"{API}/runs/{draft_run.run_id}/statements"
    manager = draft_run.headers("manager")
    assert rc.post(path, headers=draft_run.headers("readonly"), json={}).status_code == 403
    leak = rc.post(path, headers=manager, json={"employee_refs": ["E0000001", "E0000004"]})
    assert leak.status_code == 404 and "E0000004" in leak.json()["detail"]
    queued = rc.post(path, headers=manager, json={"format": "pdf"})
    assert queued.status_code == 202, queued.text
    job = _wait_for_job(rc, queued.json()["id"], manager)
    assert job["status"] == "done", job
    assert job["progress"] == {"done": 2, "total": 2}
    assert rc.get(f"{API}/reports/jobs/{job['id']}",
                  headers=draft_run.headers("finance")).status_code == 404
    download = rc.get(f"{API}/reports/jobs/{job['id']}/download", headers=manager)
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
        assert archive.namelist() == ["statements/E0000001.pdf", "statements/E0000002.pdf"]
        assert "E0000002" in pdf_text(archive.read("statements/E0000002.pdf"))
    team = rc.post(path, headers=draft_run.headers("admin"),
                   json={"team": MANAGER_TEAM, "format": "xlsx"})
    assert team.status_code == 202
    assert _wait_for_job(rc, team.json()["id"], draft_run.headers("admin"))["progress"] == {
        "done": 2, "total": 2}


def test_pool_vs_target_reads_the_stored_totals_of_the_callers_run_only(
        rc, draft_run, make_tenant, runs_settings) -> None:
    """The JSON is the recomputation from the stored results; a target step the totals do
    not carry is recomputed; another tenant's caller gets 404, a non-decimal target 409."""
    from server.modules.reports.pool import pool_json, pool_vs_target
    from server.modules.runs.stored import load_stored_run

    url, finance = f"{API}/reports/pool-vs-target", draft_run.headers("finance")
    answer = rc.get(url, params={"run_id": draft_run.run_id}, headers=finance)
    assert answer.status_code == 200, answer.text
    with db.tenant_session(draft_run.tenant.id) as session:
        stored = load_stored_run(session, runs_settings, uuid.UUID(draft_run.run_id))
    assert answer.json()["lines"] == pool_json(
        pool_vs_target(stored.plan, stored.frame, stored.result))
    points = rc.get(url, params={"run_id": draft_run.run_id, "target_step": "points"},
                    headers=finance).json()["lines"]
    assert Decimal(points[-1]["target_sum"]) == stored.result.frame["points"].sum()
    assert rc.get(url, params={"run_id": draft_run.run_id, "target_step": "eligible"},
                  headers=finance).status_code == 409
    stranger = make_tenant().users["finance"].headers
    assert rc.get(url, params={"run_id": draft_run.run_id},
                  headers=stranger).status_code == 404


def test_every_report_of_a_run_names_its_own_plan_version(rc, consumer, make_tenant,
                                                          sample_inputs) -> None:
    """v2 locked unchanged from v1 has v1's plan hash (the hash leaves the version out), so
    anything cached by plan hash alone would hand v2's run v1's document: its statements
    (single and bulk), audit workbook and signed manifest would name version 1. Each run is
    reported after the other version's run has compiled, rendered and cached all it can."""
    tenant = make_tenant()
    hr, admin = tenant.users["hr"].headers, tenant.users["admin"].headers
    sample = sample_inputs(tenant, count=4, funds=2, document=guarded_document())
    second = rc.post(f"{API}/bonus-plans/{sample.plan_id}/versions", headers=hr)
    assert second.status_code == 201, second.text
    v2_id = second.json()["id"]
    assert rc.post(f"{API}/bonus-plans/{v2_id}/lock", headers=hr).status_code == 200
    v1, v2 = (rc.get(f"{API}/bonus-plans/{i}", headers=hr).json() for i in (sample.plan_id, v2_id))
    assert (v1["version"], v2["version"]) == (1, 2)
    assert v1["plan_hash"] == v2["plan_hash"]
    name = v1["name"]
    runs = {1: start_draft_run(rc, tenant, sample, plan_id=sample.plan_id),
            2: start_draft_run(rc, tenant, sample, plan_id=v2_id)}

    for version, run_id in runs.items():
        other = 3 - version
        statement = rc.post(f"{API}/reports/individual-statement", headers=hr,
                            json={"run_id": run_id, "employee_ref": "E0000001", "format": "html"})
        assert statement.status_code == 200, statement.text
        assert f"{name} · version {version} ·" in statement.text
        assert f"{name} · version {other} ·" not in statement.text
        # One statement is one chunk, rendered in this process, where the bulk renderer's
        # compiled plans outlive the job.
        queued = rc.post(f"{API}/runs/{run_id}/statements", headers=admin,
                         json={"employee_refs": ["E0000001"], "format": "html"})
        assert queued.status_code == 202, queued.text
        job = _wait_for_job(rc, queued.json()["id"], admin)
        assert job["status"] == "done", job
        download = rc.get(f"{API}/reports/jobs/{job['id']}/download", headers=admin)
        with zipfile.ZipFile(io.BytesIO(download.content)) as archive:
            assert archive.namelist() == ["statements/E0000001.html"]
            bulk = archive.read("statements/E0000001.html").decode()
        assert f"{name} · version {version} ·" in bulk
        workbook = rc.get(f"{API}/runs/{run_id}/workbook", headers=tenant.users["auditor"].headers)
        assert workbook.status_code == 200, workbook.text
        cover = load_workbook(io.BytesIO(workbook.content))["Cover"]
        lines = {row[0]: row[1] for row in cover.iter_rows(min_row=3, values_only=True) if row[0]}
        assert (lines["plan"], lines["plan version"]) == (name, version)

    final = TenantRun(tenant, runs[2], sample.upload_id, sample.funds_upload_id,
                      extra_user(tenant, Role.FINANCE))
    finalize_run(rc, final)
    bundle = _export(rc, final, "auditor")
    key = rc.get(f"{API}/tenants/{tenant.id}/signing-key", headers=hr).json()
    report = verify_bundle(bundle.content,
                           Ed25519PublicKey.from_public_bytes(base64.b64decode(key["public_key"])))
    assert report.ok, report.problems
    assert report.manifest["run"]["plan_version"] == 2
    with zipfile.ZipFile(io.BytesIO(bundle.content)) as archive:
        assert "version 2" in pdf_words(archive.read("statements/E0000001.pdf"))
