"""Hostile and broken files: each gets a clear error and leaves other uploads untouched."""

from __future__ import annotations

import hashlib
import io

import pytest
from openpyxl import Workbook

from tests.uploads.conftest import API, multipart, tus_upload

GOOD = b"employee_ref,base_salary\nE1,100\nE2,200\n"


def _kept_upload(uc, headers) -> tuple[str, str]:
    upload_id = tus_upload(uc, headers, GOOD)
    return upload_id, hashlib.sha256(GOOD).hexdigest()


def _assert_untouched(uc, headers, upload_id, sha) -> None:
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert (body["status"], body["phase"], body["sha256"]) == ("received", "uploaded", sha)
    preview = uc.get(f"{API}/uploads/{upload_id}/preview", headers=headers).json()
    assert [r["cells"] for r in preview["rows"]] == [["E1", "100"], ["E2", "200"]]


@pytest.mark.parametrize(("name", "data", "message"), [
    ("binary.csv", bytes(range(256)) * 40, "not text (binary content)"),
    ("archive.csv", b"PK\x03\x04" + b"\x00" * 200, "ZIP archive"),
    ("header-only.csv", b"employee_ref,base_salary\n", "header row (row 1) but no data rows"),
    ("blank.csv", b"\n\n , \n", "no content"),
])
def test_unusable_file_fails_with_a_clear_error(uc, make_tenant, name, data, message) -> None:
    tenant = make_tenant()
    headers = tenant.users["hr"].headers
    kept, sha = _kept_upload(uc, headers)
    response = multipart(uc, headers, data, filename=name)
    assert response.status_code == 422
    assert message in response.json()["detail"]
    failed = [u for u in uc.get(f"{API}/uploads", headers=headers).json()["items"]
              if u["id"] != kept]
    assert [(u["status"], u["phase"]) for u in failed] == [("failed", "rejected")]
    assert message in failed[0]["error"]
    _assert_untouched(uc, headers, kept, sha)


def test_tus_final_chunk_of_a_binary_file_is_422(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    upload_id = tus_upload(uc, headers, b"\x00\x01\x02" * 1000, filename="x.csv", chunk=1000)
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["status"] == "failed" and "binary" in body["error"]
    assert uc.get(f"{API}/uploads/{upload_id}/preview", headers=headers).status_code == 409


def test_empty_file_is_refused(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    response = multipart(uc, headers, b"")
    assert response.status_code == 422
    assert "the file is empty" in response.text


def _map_and_report(uc, headers, upload_id, mapping):
    response = uc.post(f"{API}/uploads/{upload_id}/map", headers=headers, json=mapping)
    assert response.status_code == 202, response.text
    return uc.get(f"{API}/uploads/{upload_id}/validation", headers=headers).json()


def test_ragged_rows_are_reported_by_row(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    data = b"employee_ref,team,level\nE1,T1,vp\nE2,T2\nE3,T3,md,extra\nE4,T4,vp,\n"
    upload_id = multipart(uc, headers, data).json()["id"]
    report = _map_and_report(uc, headers, upload_id, {"employee_ref": "employee_ref"})
    assert report["status"] == "failed"
    ragged = [(p["row"], p["message"]) for p in report["problems"]]
    assert ragged == [(3, "the row has 2 cells, fewer than the 3 columns of the header"),
                      (4, "the row has 4 cells, more than the 3 columns of the header")]
    assert report["problems"][0]["rule"] == {"shape": {"cells": 2, "expected": 3}}


def test_invalid_utf8_after_a_clean_start_names_the_row(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    head = b"employee_ref,team\n" + b"".join(b"E%d,T1\n" % i for i in range(40_000))
    data = head + b"E\xe9x,T2\n"  # latin-1 byte deep in a file that starts as UTF-8
    upload_id = tus_upload(uc, headers, data, chunk=200_000)
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["format"]["encoding"] == "utf-8"
    report = _map_and_report(uc, headers, upload_id, {"employee_ref": "employee_ref"})
    assert [(p["row"], p["rule"]) for p in report["problems"]] == [
        (40_002, {"encoding": "utf-8"})]
    assert "CSV UTF-8" in report["problems"][0]["hint"]


def test_latin1_and_semicolons_and_title_rows_are_detected(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    text = "Export du 2025-12-31;;\n;;\nmatricule;équipe;salaire\nE1;Trésor;10\nE2;Crédit;20\n"
    upload_id = multipart(uc, headers, text.encode("latin-1")).json()["id"]
    preview = uc.get(f"{API}/uploads/{upload_id}/preview", headers=headers).json()
    fmt = preview["format"]
    # Windows "CSV" is cp1252 (a superset of latin-1's letters), detected from the bytes.
    assert (fmt["encoding"], fmt["delimiter"], fmt["header_row"]) == ("cp1252", ";", 3)
    assert fmt["columns"] == ["matricule", "équipe", "salaire"]
    assert preview["rows"] == [{"row": 4, "cells": ["E1", "Trésor", "10"]},
                               {"row": 5, "cells": ["E2", "Crédit", "20"]}]


def test_xlsx_named_sheet_and_types(uc, make_tenant) -> None:
    from datetime import date

    headers = make_tenant().users["hr"].headers
    workbook = Workbook()
    workbook.active.title = "Notes"
    sheet = workbook.create_sheet("Staff")
    sheet.append(["Employee ID", "Salary", "Start"])
    sheet.append(["E1", 1200.5, date(2025, 3, 1)])
    sheet.append(["E2", 900, None])
    buffer = io.BytesIO()
    workbook.save(buffer)
    response = uc.post(f"{API}/uploads", headers=headers, files={
        "file": ("staff.xlsx", buffer.getvalue(), "application/octet-stream")},
        data={"kind": "employees", "sheet": "Staff"})
    assert response.status_code == 201, response.text
    preview = uc.get(f"{API}/uploads/{response.json()['id']}/preview", headers=headers).json()
    assert preview["format"]["sheet"] == "Staff"
    assert preview["rows"][0] == {"row": 2, "cells": ["E1", "1200.5", "2025-03-01"]}
    types = {c["name"]: c["inferred_type"] for c in preview["columns"]}
    assert types == {"Employee ID": "text", "Salary": "decimal", "Start": "date"}


def test_preview_warns_about_formatted_numbers_and_dates(uc, make_tenant) -> None:
    headers = make_tenant().users["hr"].headers
    data = b'id,salary,start\nE1,100,2025-01-01\nE2,"1,200",31/12/2025\nE3,300,2025-02-01\n'
    upload_id = multipart(uc, headers, data).json()["id"]
    columns = uc.get(f"{API}/uploads/{upload_id}/preview", headers=headers).json()["columns"]
    warnings = [(w["row"], w["column"], w["value"]) for c in columns for w in c["warnings"]]
    assert warnings == [(3, "salary", "1,200"), (3, "start", "31/12/2025")]
