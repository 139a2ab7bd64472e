"""employee_rows of a ready upload: filled after `ready`, one row per valid data row, a
failed fill reported with nothing stored and retried, and the integrity triggers of 0040."""

from __future__ import annotations

import hashlib
import shutil
import uuid

import psycopg
import pytest

from server.db.session import tenant_session
from server.modules.auth.dependencies import Principal
from server.modules.auth.permissions import Role
from server.modules.uploads import rows, service
from tests.uploads.conftest import API, add_catalog, multipart
from tests.uploads.sealed import opened_typed

CATALOG = [{"key": "base_salary", "label": "Base salary", "dtype": "decimal"},
           {"key": "team", "label": "Team", "dtype": "text", "required": False}]
MAPPING = {"employee_ref": "ID", "base_salary": "Salary", "team": "Team"}


def _tenant(make_tenant, database):
    tenant = make_tenant()
    add_catalog(database, tenant.id, CATALOG)
    return tenant, tenant.users["hr"].headers


def _principal(tenant) -> Principal:
    hr = tenant.users["hr"]
    return Principal(user_id=hr.id, tenant_id=tenant.id, role=Role.HR, email=hr.email,
                     display_name=None, teams=())


def _stored(database, tenant_id, upload_id) -> list[tuple]:
    with psycopg.connect(database.app) as conn:
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant_id),))
        return conn.execute("select file_row, employee_ref, raw from comp.employee_rows "
                            "where upload_id = %s order by file_row", (upload_id,)).fetchall()


def test_rows_are_filled_after_ready_one_per_valid_row(uc, make_tenant, database,
                                                       uploads_settings) -> None:
    tenant, headers = _tenant(make_tenant, database)
    text = "ID,Salary,Team\nE1,100.50,T1\n\nE2 ,200,\nE3,300,T3\n"
    upload_id = multipart(uc, headers, text.encode()).json()["id"]
    assert uc.post(f"{API}/uploads/{upload_id}/map", headers=headers,
                   json=MAPPING).status_code == 202
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["status"] == "ready" and body["summary"]["rows"] == 3
    assert body["rows"]["status"] == "filled"
    assert body["rows"]["count"] == body["rows"]["expected"] == 3
    assert {"parse", "validate", "parquet", "spool", "sha256", "scan"} <= set(body["timings"])
    stored = _stored(database, tenant.id, upload_id)
    assert [(r[0], r[1]) for r in stored] == [(2, "E1"), (4, "E2"), (5, "E3")]
    # keys are stored as compared: cleaned ("E2 " in the file; a warning says so)
    assert stored[1][2] == {"employee_ref": "E2", "base_salary": "200", "team": None}
    spool = service.rows_spool_path(uploads_settings, tenant.id, uuid.UUID(upload_id))
    assert not spool.exists()
    again = uc.post(f"{API}/uploads/{upload_id}/rows", headers=headers)
    assert again.status_code == 409 and "filled" in again.json()["detail"]


def _latin1_file(count: int) -> bytes:
    """A latin-1 file: read record by record, so the spool holds several batches."""
    lines = ["ID,Salary,Team", "E0,1,Zürich"] + [f"E{i},{i},T{i % 7}" for i in range(1, count)]
    return ("\n".join(lines) + "\n").encode("latin-1")


def test_failed_fill_is_reported_stores_nothing_and_can_be_retried(
        uc, make_tenant, database, uploads_settings) -> None:
    tenant, headers = _tenant(make_tenant, database)
    principal = _principal(tenant)
    count = 120_000
    upload_id = uuid.UUID(multipart(uc, headers, _latin1_file(count)).json()["id"])
    with tenant_session(tenant.id) as session:
        service.save_mapping(session, principal, uploads_settings, upload_id, MAPPING, None,
                             None)
    service.process_upload(uploads_settings, principal, upload_id)
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["status"] == "ready" and body["rows"] == {"status": "queued",
                                                         "expected": count}
    spool = service.rows_spool_path(uploads_settings, tenant.id, upload_id)
    intact = spool.with_suffix(".copy")
    shutil.copyfile(spool, intact)
    with spool.open("r+b") as handle:  # a damaged spool: the last batches cannot be read
        handle.truncate(spool.stat().st_size * 2 // 3)

    rows.fill_rows(uploads_settings, principal, upload_id)

    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["status"] == "ready" and body["rows"]["status"] == "failed"
    assert "storing the rows failed" in body["rows"]["error"]
    assert _stored(database, tenant.id, upload_id) == []  # earlier batches rolled back
    parquet = service.object_path(uploads_settings, tenant.id, body["parquet_sha256"])
    assert hashlib.sha256(opened_typed(uploads_settings, tenant.id, parquet)
                          ).hexdigest() == body["parquet_sha256"]
    assert spool.exists()
    audit = uc.get(f"{API}/audit", params={"entity_id": str(upload_id)},
                   headers=tenant.users["admin"].headers).json()["items"]
    assert audit[0]["action"] == "upload.rows_failed"

    shutil.move(intact, spool)
    retried = uc.post(f"{API}/uploads/{upload_id}/rows", headers=headers)
    assert retried.status_code == 202, retried.text
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["rows"]["status"] == "filled" and body["rows"]["count"] == count
    stored = _stored(database, tenant.id, upload_id)
    assert len(stored) == count and stored[0][:2] == (2, "E0")
    assert stored[0][2]["team"] == "Zürich" and stored[-1][0] == count + 1


def test_delete_waits_for_the_fill_then_removes_the_rows(uc, make_tenant, database,
                                                         uploads_settings) -> None:
    tenant, headers = _tenant(make_tenant, database)
    principal = _principal(tenant)
    upload_id = uuid.UUID(multipart(uc, headers, b"ID,Salary,Team\nE1,1,T\nE2,2,T\n"
                                    ).json()["id"])
    with tenant_session(tenant.id) as session:
        service.save_mapping(session, principal, uploads_settings, upload_id, MAPPING, None,
                             None)
    service.process_upload(uploads_settings, principal, upload_id)
    refused = uc.delete(f"{API}/uploads/{upload_id}", headers=headers)
    assert refused.status_code == 409 and "rows" in refused.json()["detail"]
    rows.fill_rows(uploads_settings, principal, upload_id)
    assert len(_stored(database, tenant.id, upload_id)) == 2
    assert uc.delete(f"{API}/uploads/{upload_id}", headers=headers).status_code == 204
    assert _stored(database, tenant.id, upload_id) == []


def test_rows_must_reference_an_existing_upload_of_their_tenant(
        uc, make_tenant, database) -> None:
    tenant, headers = _tenant(make_tenant, database)
    _, other_headers = _tenant(make_tenant, database)
    theirs = multipart(uc, other_headers, b"ID,Salary,Team\nE1,1,T\n").json()["id"]
    mine = multipart(uc, headers, b"ID,Salary,Team\nE1,1,T\n").json()["id"]
    insert = ("insert into comp.employee_rows (tenant_id, upload_id, file_row, employee_ref, "
              "raw) values (%s, %s, 2, 'E1', '{}')")
    with psycopg.connect(database.app) as conn:
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
        for upload_id in (str(uuid.uuid4()), theirs):
            with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
                conn.execute(insert, (tenant.id, upload_id))
        conn.execute(insert, (tenant.id, mine))
        with pytest.raises(psycopg.errors.ForeignKeyViolation), conn.transaction():
            conn.execute("update comp.employee_rows set upload_id = %s where upload_id = %s",
                         (theirs, mine))
        conn.rollback()


def test_a_nul_character_past_the_sniffed_head_is_a_validation_problem(
        uc, make_tenant, database) -> None:
    """PostgreSQL cannot store NUL, so the row could never reach employee_rows: the report
    names it (the format check only sees the first 256 KiB)."""
    tenant, headers = _tenant(make_tenant, database)
    body = "".join(f"E{i},{i},T{i % 7}\n" for i in range(30_000))
    data = ("ID,Salary,Team\n" + body + "E30000,1,T\x001\n").encode()
    upload_id = multipart(uc, headers, data).json()["id"]
    assert uc.post(f"{API}/uploads/{upload_id}/map", headers=headers,
                   json=MAPPING).status_code == 202
    report = uc.get(f"{API}/uploads/{upload_id}/validation", headers=headers).json()
    assert report["status"] == "failed"
    assert [(p["row"], p["column"], p["value"], p["rule"]) for p in report["problems"]] == [
        (30_002, "Team", "T\\x001", {"nul_character": True})]
    assert _stored(database, tenant.id, upload_id) == []
