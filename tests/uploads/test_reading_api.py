"""Changing how an upload is read (PUT /uploads/{id}/reading), what the preview says, and
reading profiles kept with presets."""

from __future__ import annotations

from tests.uploads.conftest import API, add_catalog, multipart
from tests.uploads.workbook_files import xlsx

CATALOG = [{"key": "base_salary", "label": "Base salary", "dtype": "decimal"},
           {"key": "start_date", "label": "Start date", "dtype": "date"}]
MAPPING = {"employee_ref": "ID", "base_salary": "Pay", "start_date": "Joined"}
AMBIGUOUS = b"ID;Pay;Joined\nE1;1.234;03/04/2025\nE2;2.000;05/06/2024\n"


def _tenant(make_tenant, database):
    tenant = make_tenant()
    add_catalog(database, tenant.id, CATALOG)
    return tenant.users["hr"].headers


def _map(uc, headers, upload_id, **params):
    response = uc.post(f"{API}/uploads/{upload_id}/map", headers=headers, json=MAPPING,
                       params=params)
    assert response.status_code == 202, response.text
    return uc.get(f"{API}/uploads/{upload_id}/validation", headers=headers).json()


def test_unsettled_values_are_problems_until_the_profile_is_chosen(uc, make_tenant,
                                                                    database) -> None:
    headers = _tenant(make_tenant, database)
    upload_id = multipart(uc, headers, AMBIGUOUS).json()["id"]
    preview = uc.get(f"{API}/uploads/{upload_id}/preview", headers=headers).json()
    profile = preview["format"]["profile"]
    assert (profile["decimal"], profile["date_order"]) == (None, None)
    said = {w["value"]: w["message"] for c in preview["columns"] for w in c["warnings"]}
    assert "ambiguous" in said["1.234"] and "ambiguous" in said["03/04/2025"]
    report = _map(uc, headers, upload_id)
    assert report["status"] == "failed"
    rules = sorted((p["row"], next(iter(p["rule"]))) for p in report["problems"])
    assert rules == [(2, "ambiguous_date"), (2, "ambiguous_number"), (3, "ambiguous_date"),
                     (3, "ambiguous_number")]
    assert all("reading profile" in p["hint"] for p in report["problems"])
    changed = uc.put(f"{API}/uploads/{upload_id}/reading", headers=headers,
                     json={"decimal": ",", "date_order": "dmy"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["format"]["profile"]["decided"]["date_order"] == "chosen"
    preview = uc.get(f"{API}/uploads/{upload_id}/preview", headers=headers).json()
    read = {w["value"]: w.get("read_as") for c in preview["columns"] for w in c["warnings"]}
    assert (read["1.234"], read["03/04/2025"]) == ("1234", "2025-04-03")
    report = _map(uc, headers, upload_id, preset_name="Payroll NL")
    assert report["status"] == "ready", report["problems"]
    kinds = {(w["input_key"], w["kind"]): w["count"] for w in report["summary"]["warnings"]}
    assert kinds[("base_salary", "thousands")] == 2 and kinds[("start_date",
                                                                "date_format")] == 2
    again = multipart(uc, headers, AMBIGUOUS, filename="next.csv").json()
    decided = again["format"]["profile"]["decided"]
    assert again["format"]["profile"]["date_order"] == "dmy"
    assert decided["date_order"] == "from preset 'Payroll NL'"
    assert _map(uc, headers, again["id"])["status"] == "ready"
    assert uc.put(f"{API}/uploads/{upload_id}/reading", headers=headers,
                  json={"date_order": "mdy"}).status_code == 409  # ready: immutable


def test_sheet_header_row_and_encoding_can_be_chosen(uc, make_tenant, database) -> None:
    headers = _tenant(make_tenant, database)
    data = xlsx({"Summary": [["Team", "Total"], ["T1", 5]],
                 "Staff": [["ID", "Pay", "Joined"], ["E1", 100, "2025-01-01"]]})
    upload = uc.post(f"{API}/uploads", headers=headers, files={
        "file": ("two.xlsx", data, "application/octet-stream")}).json()
    assert upload["format"]["sheet"] == "Staff"  # its header matches the catalog
    assert "matches 2 of 4 inputs" in upload["format"]["sheet_reason"]
    other = uc.put(f"{API}/uploads/{upload['id']}/reading", headers=headers,
                   json={"sheet": "Summary"}).json()
    assert (other["format"]["sheet"], other["format"]["columns"]) == ("Summary",
                                                                      ["Team", "Total"])
    rows = uc.get(f"{API}/uploads/{upload['id']}/preview", headers=headers).json()["rows"]
    assert rows == [{"row": 2, "cells": ["T1", "5"]}]
    missing = uc.put(f"{API}/uploads/{upload['id']}/reading", headers=headers,
                     json={"sheet": "Nope"})
    assert missing.status_code == 422 and "Summary, Staff" in missing.text
    text = "Export\nID,Pay,Joined\nE1,5,2025-01-01\n".encode("cp1252")
    csv_id = multipart(uc, headers, text).json()["id"]
    chosen = uc.put(f"{API}/uploads/{csv_id}/reading", headers=headers,
                    json={"header_row": 1, "encoding": "latin-1"}).json()["format"]
    assert (chosen["header_row"], chosen["columns"], chosen["encoding"]) == (
        1, ["Export"], "iso8859-1")
    assert chosen["encoding_detected"] == "chosen"
    bad = uc.put(f"{API}/uploads/{csv_id}/reading", headers=headers,
                 json={"encoding": "klingon"})
    assert bad.status_code == 422 and "unknown encoding" in bad.text
    outsider = make_tenant().users["hr"].headers
    assert uc.put(f"{API}/uploads/{csv_id}/reading", headers=outsider,
                  json={"header_row": 2}).status_code == 404


def test_preview_says_what_reading_does(uc, make_tenant, database) -> None:
    headers = _tenant(make_tenant, database)
    data = ("ID,Pay,Bonus,Team\nE1,\"$1,200.50\",12%,Desk \nE2,(300),7.5%,Desk\n"
            "E3,100,1%,Trading\u00a0Desk\n").encode()
    upload_id = multipart(uc, headers, data).json()["id"]
    columns = {c["name"]: c for c in uc.get(f"{API}/uploads/{upload_id}/preview",
                                            headers=headers).json()["columns"]}
    assert columns["Pay"]["inferred_type"] == "decimal"
    pay = {w["value"]: (w["read_as"], w["message"]) for w in columns["Pay"]["warnings"]}
    assert pay["$1,200.50"][0] == "1200.50" and "currency" in pay["$1,200.50"][1]
    assert pay["(300)"] == ("-300", "numbers in parentheses read as negative: (150) is -150")
    bonus = {w["value"]: w["read_as"] for w in columns["Bonus"]["warnings"]}
    assert bonus == {"12%": "0.12", "7.5%": "0.075", "1%": "0.01"}
    team = {w["value"]: w["read_as"] for w in columns["Team"]["warnings"]}
    assert team == {"Desk ": "Desk", "Trading\u00a0Desk": "Trading Desk"}
