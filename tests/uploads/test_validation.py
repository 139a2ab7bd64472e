"""Validation report, ready uploads (Parquet + employee_rows) and mapping checks."""

from __future__ import annotations

import hashlib
from decimal import Decimal

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq

from tests.uploads.conftest import API, add_catalog, multipart
from tests.uploads.sealed import opened_typed

CATALOG = [
    {"key": "base_salary", "label": "Base salary", "dtype": "decimal",
     "validation": {"min": "0", "max": "5000000"}},
    {"key": "performance_score", "label": "Performance score", "dtype": "decimal",
     "validation": {"min": "1", "max": "5"}},
    {"key": "level", "label": "Level", "dtype": "text",
     "validation": {"allowed": ["analyst", "associate", "vp", "director", "md"]}},
    {"key": "team", "label": "Team", "dtype": "text", "validation": {"regex": "T[0-9]{2}"}},
    {"key": "start_date", "label": "Start date", "dtype": "date", "required": False},
    {"key": "headcount", "label": "Headcount", "dtype": "int", "required": False},
    {"key": "fund_return", "label": "Fund return", "dtype": "decimal", "scope": "fund"},
]
MAPPING = {"employee_ref": "Emp ID", "base_salary": "Salary", "performance_score": "Score",
           "level": "Level", "team": "Team", "start_date": "Start", "headcount": "HC"}
HEADER = "Emp ID,Salary,Score,Level,Team,Start,HC\n"


def _tenant(make_tenant, database):
    tenant = make_tenant()
    add_catalog(database, tenant.id, CATALOG)
    return tenant, tenant.users["hr"].headers


def _validate(uc, headers, text: str, mapping=MAPPING):
    upload_id = multipart(uc, headers, text.encode()).json()["id"]
    response = uc.post(f"{API}/uploads/{upload_id}/map", headers=headers, json=mapping)
    assert response.status_code == 202, response.text
    return upload_id, uc.get(f"{API}/uploads/{upload_id}/validation", headers=headers).json()


def test_every_problem_has_row_column_value_rule_and_hint(uc, make_tenant, database) -> None:
    _, headers = _tenant(make_tenant, database)
    text = HEADER + (
        "E1,100000.50,3.5,vp,T01,2025-03-01,1\n"     # row 2: clean
        "E2,abc,6,boss,Team 7,2025-02-30,1.5\n"      # row 3: six problems
        ",1,2,md,T02,,\n"                           # row 4: empty employee id
        "E1,=HYPERLINK(\"x\"),2,md,@T03,,\n"         # row 5: duplicate + two formulas
        "E5,-1,,analyst,T04,,\n"                     # row 6: below min, empty required
    )
    upload_id, report = _validate(uc, headers, text)
    assert report["status"] == "failed"
    found = [(p["row"], p["column"], p["input_key"], p["value"], next(iter(p["rule"])))
             for p in report["problems"]]
    assert found == [
        (3, "Salary", "base_salary", "abc", "type"),
        (3, "Score", "performance_score", "6", "max"),
        (3, "Level", "level", "boss", "allowed"),
        (3, "Team", "team", "Team 7", "regex"),
        (3, "Start", "start_date", "2025-02-30", "type"),
        (3, "HC", "headcount", "1.5", "type"),
        (4, "Emp ID", "employee_ref", None, "required"),
        (5, "Emp ID", "employee_ref", "E1", "unique"),
        (5, "Salary", "base_salary", '=HYPERLINK("x")', "type"),
        (5, "Salary", "base_salary", '=HYPERLINK("x")', "formula_injection"),
        (5, "Team", "team", "@T03", "regex"),
        (5, "Team", "team", "@T03", "formula_injection"),
        (6, "Salary", "base_salary", "-1", "min"),
        (6, "Score", "performance_score", None, "required"),
    ]
    assert all(p["hint"] and p["message"] for p in report["problems"])
    by_row = {(p["row"], next(iter(p["rule"]))): p for p in report["problems"]}
    start = next(p for p in report["problems"] if p["column"] == "Start")
    assert "YYYY-MM-DD" in start["hint"] and start["rule"] == {"type": "date",
                                                               "format": "YYYY-MM-DD"}
    assert by_row[(5, "unique")]["message"] == "duplicate Employee ID: row 2 has the same value"
    assert report["summary"]["errors"] == 14 and report["summary"]["rows"] == 5
    assert report["summary"]["by_rule"]["formula_injection"] == 2
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["status"] == "failed" and body["parquet_sha256"] is None


def test_report_pages_with_a_cursor(uc, make_tenant, database) -> None:
    _, headers = _tenant(make_tenant, database)
    text = HEADER + "".join(f"E{i},x,3,vp,T01,,\n" for i in range(30))
    upload_id, report = _validate(uc, headers, text)
    assert report["summary"]["errors"] == 30
    first = uc.get(f"{API}/uploads/{upload_id}/validation", params={"limit": 20},
                   headers=headers).json()
    second = uc.get(f"{API}/uploads/{upload_id}/validation",
                    params={"limit": 20, "cursor": first["next_cursor"]}, headers=headers).json()
    rows = [p["row"] for p in first["problems"] + second["problems"]]
    assert rows == list(range(2, 32)) and second["next_cursor"] is None


def test_clean_file_becomes_ready_with_parquet_and_rows(uc, make_tenant, database,
                                                        uploads_settings) -> None:
    tenant, headers = _tenant(make_tenant, database)
    text = HEADER + (" E1 ,100000.50,3.5,vp,T01,2025-03-01,2\n"
                     "E2,250000,4,md,T02,,\n"
                     "E3,-0,1,analyst,T03,,0\n")
    upload_id, report = _validate(uc, headers, text)
    assert report["status"] == "ready" and report["problems"] == []
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    parquet = (uploads_settings.data_dir / "uploads" / str(tenant.id) / "objects"
               / f"{body['parquet_sha256']}.parquet")
    plain = opened_typed(uploads_settings, tenant.id, parquet)
    assert not parquet.read_bytes().startswith(b"PAR1")  # sealed at rest
    assert body["parquet_sha256"] == hashlib.sha256(plain).hexdigest()
    table = pq.read_table(pa.BufferReader(plain)).to_pylist()
    assert table[0]["employee_ref"] == "E1"
    assert table[0]["base_salary"] == Decimal("100000.5000000000")
    assert str(table[0]["start_date"]) == "2025-03-01" and table[1]["start_date"] is None
    assert table[0]["headcount"] == Decimal(2)
    with psycopg.connect(database.app) as conn:
        conn.execute("select set_config('app.tenant_id', %s, false)", (str(tenant.id),))
        rows = conn.execute("select employee_ref, raw from comp.employee_rows "
                            "where upload_id = %s order by employee_ref", (upload_id,)).fetchall()
    assert [r[0] for r in rows] == ["E1", "E2", "E3"]
    assert rows[0][1]["base_salary"] == "100000.50" and rows[1][1]["start_date"] is None
    remap = uc.post(f"{API}/uploads/{upload_id}/map", headers=headers, json=MAPPING)
    assert remap.status_code == 409


def test_parquet_hash_is_a_content_hash(uc, make_tenant, database) -> None:
    _, headers = _tenant(make_tenant, database)
    text = HEADER + "E1,100,3,vp,T01,,\nE2,200,4,md,T02,,\n"
    first, _ = _validate(uc, headers, text)
    second, _ = _validate(uc, headers, text)
    third, _ = _validate(uc, headers, text.replace("200", "201"))
    hashes = [uc.get(f"{API}/uploads/{u}", headers=headers).json()["parquet_sha256"]
              for u in (first, second, third)]
    assert hashes[0] == hashes[1] != hashes[2]


def test_failed_validation_can_be_remapped(uc, make_tenant, database) -> None:
    _, headers = _tenant(make_tenant, database)
    text = "Emp ID,Salary,Score,Level,Team,Other\nE1,100,3,vp,T01,x\n"
    wrong = {**{k: v for k, v in MAPPING.items() if k not in ("start_date", "headcount")},
             "base_salary": "Other"}
    upload_id, report = _validate(uc, headers, text, wrong)
    assert report["status"] == "failed"
    right = {k: v for k, v in MAPPING.items() if k not in ("start_date", "headcount")}
    assert uc.post(f"{API}/uploads/{upload_id}/map", headers=headers,
                   json=right).status_code == 202
    report = uc.get(f"{API}/uploads/{upload_id}/validation", headers=headers).json()
    assert report["status"] == "ready" and report["problems"] == []


def test_mapping_errors_name_the_key(uc, make_tenant, database) -> None:
    _, headers = _tenant(make_tenant, database)
    upload_id = multipart(uc, headers, (HEADER + "E1,1,3,vp,T01,,\n").encode()).json()["id"]
    response = uc.post(f"{API}/uploads/{upload_id}/map", headers=headers, json={
        "employee_ref": "Emp ID", "base_salary": "Nope", "bogus": "Salary"})
    assert response.status_code == 422
    errors = {tuple(e["loc"]): e["msg"] for e in response.json()["errors"]}
    assert errors[("body", "base_salary")] == "the file has no column 'Nope'"
    assert "not an input" in errors[("body", "bogus")]
    assert "is required and not mapped" in errors[("body", "level")]
    body = uc.get(f"{API}/uploads/{upload_id}", headers=headers).json()
    assert body["status"] == "received" and body["mapping"] is None


def test_funds_upload_is_keyed_by_fund_ref(uc, make_tenant, database) -> None:
    _, headers = _tenant(make_tenant, database)
    data = b"Fund Code,Net Return\nF001,0.1234\nF002,-0.05\nF001,0.2\n"
    upload_id = multipart(uc, headers, data, kind="funds").json()["id"]
    suggestions = uc.get(f"{API}/uploads/{upload_id}/mapping-suggestions",
                         headers=headers).json()["suggestions"]
    assert {s["key"]: s["column"] for s in suggestions} == {
        "fund_ref": "Fund Code", "fund_return": "Net Return"}
    uc.post(f"{API}/uploads/{upload_id}/map", headers=headers,
            json={"fund_ref": "Fund Code", "fund_return": "Net Return"})
    report = uc.get(f"{API}/uploads/{upload_id}/validation", headers=headers).json()
    assert [(p["row"], p["rule"]) for p in report["problems"]] == [(4, {"unique": True})]


def test_processing_upload_is_kept_unless_stale(uc, make_tenant, owner_conn) -> None:
    headers = make_tenant().users["hr"].headers
    upload_id = multipart(uc, headers, b"employee_ref\nE1\n").json()["id"]
    owner_conn.execute("update comp.uploads set status = 'processing' where id = %s",
                       (upload_id,))
    assert uc.delete(f"{API}/uploads/{upload_id}", headers=headers).status_code == 409
    owner_conn.execute("update comp.uploads set updated_at = now() - interval '2 hours' "
                       "where id = %s", (upload_id,))
    assert uc.delete(f"{API}/uploads/{upload_id}", headers=headers).status_code == 204
