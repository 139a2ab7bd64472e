"""Files are evidence: an upload that a run uses cannot be deleted, and a refused delete
touches nothing; a file that really is missing is a 410 problem naming it, never a 500.

Everything through the real API, a real queue consumer and the real data directory.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import psycopg
import pytest

from server.modules.uploads import service as uploads
from tests.runs.support import TenantRun, finalize_run, small_draft_run, wait_for_run

API = "/api/v1"
EMPLOYEE = "E0000003"


@pytest.fixture
def finalized(rc, consumer, make_tenant, sample_inputs) -> TenantRun:
    run = small_draft_run(rc, make_tenant(), sample_inputs)
    finalize_run(rc, run)
    return run


def _files(settings, tenant_id, upload: dict) -> dict[str, str]:
    """Every stored file of an upload, by path, with its SHA-256."""
    paths = [uploads.file_path(settings, tenant_id, uuid.UUID(upload["id"])),
             uploads.object_path(settings, tenant_id, upload["parquet_sha256"])]
    return {str(p): hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


def _row_count(database, tenant_id, upload_id: str) -> int:
    with psycopg.connect(database.app) as conn:
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant_id),))
        return conn.execute("select count(*) from comp.employee_rows where upload_id = %s",
                            (upload_id,)).fetchone()[0]


def _refuse_deletes(rc, runs_settings, database, run: TenantRun) -> None:
    """DELETE both uploads: 409 each, and nothing changed, neither in the database nor on
    disk."""
    headers = run.headers("hr")
    for upload_id in (run.upload_id, run.funds_upload_id):
        before = rc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
        files = _files(runs_settings, run.tenant.id, before)
        rows = _row_count(database, run.tenant.id, upload_id)
        refused = rc.delete(f"{API}/uploads/{upload_id}", headers=headers)
        assert refused.status_code == 409, refused.text
        assert refused.headers["content-type"].startswith("application/problem+json")
        assert upload_id in refused.json()["detail"] and "run" in refused.json()["detail"]
        after = rc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
        assert after == before
        assert _files(runs_settings, run.tenant.id, after) == files
        assert _row_count(database, run.tenant.id, upload_id) == rows > 0


# Every route that reads an upload's files, as (name, call) → response.
def _reproduce(rc, run: TenantRun):
    return rc.post(f"{API}/runs/{run.run_id}/reproduce", headers=run.headers("admin"))


def _tape(rc, run: TenantRun):
    return rc.get(f"{API}/runs/{run.run_id}/results", params={"employee_ref": EMPLOYEE},
                  headers=run.headers("hr"))


def _statement(rc, run: TenantRun):
    return rc.post(f"{API}/reports/individual-statement", headers=run.headers("hr"),
                   json={"run_id": run.run_id, "employee_ref": EMPLOYEE, "format": "pdf"})


def _workbook(rc, run: TenantRun):
    return rc.get(f"{API}/runs/{run.run_id}/workbook", headers=run.headers("auditor"))


def _export(rc, run: TenantRun):
    """The export job: queued by the request, built by the worker; answers with the
    downloaded bundle (or the request's own error, or the job when it did not finish)."""
    headers = run.headers("admin")
    queued = rc.post(f"{API}/runs/{run.run_id}/export", headers=headers)
    if queued.status_code != 202:
        return queued
    job = _finished_job(rc, queued.json()["id"], headers)
    if job.json()["status"] != "done":
        return job
    return rc.get(f"{API}/reports/jobs/{queued.json()['id']}/download", headers=headers)


def _finished_job(rc, job_id: str, headers: dict[str, str]):
    """The job once it left queued/running (bounded poll)."""
    deadline = time.monotonic() + 120
    while (job := rc.get(f"{API}/reports/jobs/{job_id}", headers=headers)).json()[
            "status"] in ("queued", "running"):
        assert time.monotonic() < deadline, job.text
        time.sleep(0.05)
    return job


def _history(rc, run: TenantRun):
    return rc.get(f"{API}/reports/history", params={"group_by": "fund"},
                  headers=run.headers("finance"))


def _statements_job(rc, run: TenantRun):
    """The bulk statements job: queued by the request, rendered by the worker; answers
    with the finished job (or the request's own error)."""
    headers = run.headers("hr")
    queued = rc.post(f"{API}/runs/{run.run_id}/statements", headers=headers,
                     json={"employee_refs": [EMPLOYEE], "format": "pdf"})
    if queued.status_code != 202:
        return queued
    return _finished_job(rc, queued.json()["id"], headers)


def _preview(rc, run: TenantRun):
    return rc.get(f"{API}/uploads/{run.upload_id}/preview", headers=run.headers("hr"))


def _check_reproduce(response) -> None:
    assert response.json()["identical"] is True


def _check_tape(response) -> None:
    assert response.json()["matches_stored"] is True


def _check_pdf(response) -> None:
    assert response.content.startswith(b"%PDF")


def _check_zip(response) -> None:
    assert response.content.startswith(b"PK")


def _check_history(response) -> None:
    assert response.json()["cells"], response.json()


def _check_job(response) -> None:
    assert response.json()["status"] == "done", response.json()


def _check_preview(response) -> None:
    assert len(response.json()["rows"]) == 6


ROUTES: dict[str, tuple[Callable, Callable]] = {
    "reproduce": (_reproduce, _check_reproduce),
    "tape": (_tape, _check_tape),
    "statement": (_statement, _check_pdf),
    "audit_workbook": (_workbook, _check_zip),
    "export": (_export, _check_zip),
    "history": (_history, _check_history),
    "statements_job": (_statements_job, _check_job),
    "preview": (_preview, _check_preview),
}
TYPED_DATA_ROUTES = [name for name in ROUTES if name != "preview"]


def test_refused_delete_keeps_every_piece_of_evidence(rc, runs_settings, database,
                                                      finalized) -> None:
    """The acceptance scenario: upload, run, approve through finalize, DELETE the upload
    (409), then reproduce, tape, statement, audit workbook, export and history all
    succeed."""
    _refuse_deletes(rc, runs_settings, database, finalized)
    for name, (call, check) in ROUTES.items():
        response = call(rc, finalized)
        assert response.status_code == 200, (name, response.text)
        check(response)


@pytest.mark.parametrize("route", list(ROUTES))
def test_each_route_reads_its_files_after_a_refused_delete(rc, runs_settings, database,
                                                           finalized, route) -> None:
    _refuse_deletes(rc, runs_settings, database, finalized)
    call, check = ROUTES[route]
    response = call(rc, finalized)
    assert response.status_code == 200, response.text
    check(response)


def test_a_draft_runs_upload_cannot_be_deleted_either(rc, consumer, runs_settings, database,
                                                       make_tenant, sample_inputs) -> None:
    draft = small_draft_run(rc, make_tenant(), sample_inputs)
    refused = rc.delete(f"{API}/uploads/{draft.upload_id}", headers=draft.headers("hr"))
    assert refused.status_code == 409, refused.text
    run = rc.get(f"{API}/runs/{draft.run_id}", headers=draft.headers("hr")).json()
    assert run["upload_id"] == draft.upload_id  # not cut off from its input
    assert _tape(rc, draft).json()["matches_stored"] is True


def _missing(response, upload_id: str, what: str) -> None:
    assert response.status_code == 410, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert upload_id in body["detail"] and "missing" in body["detail"]
    assert body["errors"][0]["loc"] == ["upload", upload_id, what]


@pytest.mark.parametrize("route", TYPED_DATA_ROUTES)
def test_missing_typed_data_is_410_naming_the_upload(rc, runs_settings, finalized,
                                                     route) -> None:
    upload = rc.get(f"{API}/uploads/{finalized.upload_id}",
                    headers=finalized.headers("hr")).json()
    obj = uploads.object_path(runs_settings, finalized.tenant.id, upload["parquet_sha256"])
    obj.unlink()
    call, _ = ROUTES[route]
    _missing(call(rc, finalized), finalized.upload_id, "typed")


def test_missing_original_file_is_410_for_mapping(rc, runs_settings, make_tenant
                                                              ) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    created = rc.post(f"{API}/uploads", headers=headers, data={"kind": "employees"},
                      files={"file": ("e.csv", b"employee_ref,base_salary\nE1,10\n", "text/csv")})
    assert created.status_code == 201, created.text
    upload_id = created.json()["id"]
    Path(uploads.file_path(runs_settings, tenant.id, uuid.UUID(upload_id))).unlink()
    # The preview answers from the sample kept at upload (docs/uploads.md) and reads no
    # file; mapping reads the file, and says it is gone.
    assert rc.get(f"{API}/uploads/{upload_id}/preview", headers=headers).status_code == 200
    mapped = rc.post(f"{API}/uploads/{upload_id}/map", headers=headers,
                     json={"employee_ref": "employee_ref"})
    _missing(mapped, upload_id, "original")
    assert rc.get(f"{API}/uploads/{upload_id}", headers=headers).json()["status"] == "received"


def test_unreferenced_delete_removes_files_but_keeps_a_shared_object(
        rc, consumer, runs_settings, make_tenant, sample_inputs) -> None:
    """Two uploads of the same bytes share one typed-data object: deleting one keeps it;
    deleting the other removes it, and each upload's own file goes with its row."""
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    first = sample_inputs(tenant, count=4, funds=2)
    second = sample_inputs(tenant, count=4, funds=2)
    one = rc.get(f"{API}/uploads/{first.upload_id}", headers=headers).json()
    two = rc.get(f"{API}/uploads/{second.upload_id}", headers=headers).json()
    assert one["parquet_sha256"] == two["parquet_sha256"]
    obj = uploads.object_path(runs_settings, tenant.id, one["parquet_sha256"])
    assert not obj.stat().st_mode & 0o222  # read-only
    own = uploads.file_path(runs_settings, tenant.id, uuid.UUID(first.upload_id))
    assert not own.stat().st_mode & 0o222  # the bytes as received are read-only too
    assert rc.delete(f"{API}/uploads/{first.upload_id}", headers=headers).status_code == 204
    assert not own.exists() and obj.is_file()
    assert rc.delete(f"{API}/uploads/{second.upload_id}", headers=headers).status_code == 204
    assert not obj.exists()


@pytest.mark.parametrize("literal", ["1e9999999", "1" * 5000, "0.05"])
def test_run_parameter_numbers_are_checked_before_decimal(rc, consumer, make_tenant,
                                                          sample_inputs, literal) -> None:
    """A what-if override is a JSON number like a plan's: over the limits it is 422 naming
    the parameter, and no run is created; a plain one runs."""
    tenant = make_tenant()
    sample = sample_inputs(tenant, count=3, funds=2)
    body = json.dumps(sample.body(parameters={"hurdle_rate": "__V__"})).replace(
        '"__V__"', literal)
    headers = {**tenant.users["admin"].headers, "Content-Type": "application/json"}
    response = rc.post(f"{API}/runs", headers=headers, content=body)
    runs = rc.get(f"{API}/runs", headers=headers).json()["items"]
    if literal == "0.05":
        assert response.status_code == 202, response.text
        run = wait_for_run(rc, response.json()["run_id"], headers)
        assert run["status"] == "draft" and run["parameters"] == {"hurdle_rate": "0.05"}
        return
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["loc"] == ["body", "parameters", "hurdle_rate"]
    assert runs == []
