"""Plan import answers 422 problems for every kind of broken workbook, never a 500: bad
ZIP archives, corrupt members, malformed or hostile XML in any part."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from server.modules.workbooks.template import build_workbook, workbook_bytes

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = json.loads((ROOT / "samples/plans/fund_bonus.json").read_text())
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LAUGHS = ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
          '<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">'
          '<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>'
          '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
          '<sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>&lol3;</t></is></c></row>'
          '</sheetData></worksheet>')


def _sample() -> bytes:
    return workbook_bytes(build_workbook(SAMPLE | {"name": "Broken"}))


def _rewrite(change: Callable[[str, bytes], bytes | None]) -> bytes:
    """The sample workbook with each member passed through `change` (None drops it)."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(_sample())) as source, \
            zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = change(info.filename, source.read(info))
            if data is not None:
                target.writestr(info.filename, data)
    return out.getvalue()


def _truncate(part: str) -> Callable[[str, bytes], bytes | None]:
    return lambda name, data: data[: len(data) // 2] if name == part else data


def _replace(part: str, text: str) -> Callable[[str, bytes], bytes | None]:
    return lambda name, data: text.encode() if name == part else data


def _corrupt_member() -> bytes:
    """A stored member whose bytes no longer match its CRC."""
    data = bytearray(_sample())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("xl/workbook.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 10
    for index in range(start, start + 20):
        data[index] ^= 0xFF
    return bytes(data)


def _only_text() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("readme.txt", "not a workbook")
    return out.getvalue()


BROKEN: dict[str, Callable[[], bytes]] = {
    "empty": lambda: b"",
    "truncated_zip": lambda: _sample()[: len(_sample()) // 2],
    "corrupt_member": _corrupt_member,
    "zip_of_text": _only_text,
    "sheet_xml_truncated": lambda: _rewrite(_truncate("xl/worksheets/sheet1.xml")),
    "every_sheet_malformed": lambda: _rewrite(
        lambda n, d: b"<worksheet><sheetData><row>" if n.startswith("xl/worksheets/") else d),
    "workbook_xml_malformed": lambda: _rewrite(_truncate("xl/workbook.xml")),
    "content_types_malformed": lambda: _rewrite(_truncate("[Content_Types].xml")),
    "styles_malformed": lambda: _rewrite(_replace("xl/styles.xml", "<styleSheet><")),
    "relationships_missing": lambda: _rewrite(
        lambda n, d: None if n == "xl/_rels/workbook.xml.rels" else d),
    "billion_laughs": lambda: _rewrite(_replace("xl/worksheets/sheet1.xml", LAUGHS)),
    "sheet_not_xml": lambda: _rewrite(_replace("xl/worksheets/sheet2.xml", "\x00\x01binary")),
}


def test_the_untouched_sample_imports(client, make_tenant) -> None:
    tenant = make_tenant()
    response = client.post(f"/api/v1/tenants/{tenant.id}/bonus-plans/import",
                           headers=tenant.users["hr"].headers,
                           files={"file": ("plan.xlsx", _sample(), XLSX)})
    assert response.status_code == 201, response.text


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_workbook_is_a_422_problem(client, make_tenant, case) -> None:
    tenant = make_tenant()
    response = client.post(f"/api/v1/tenants/{tenant.id}/bonus-plans/import",
                           headers=tenant.users["hr"].headers,
                           files={"file": ("plan.xlsx", BROKEN[case](), XLSX)})
    assert response.status_code == 422, (case, response.text)
    body = response.json()
    assert response.headers["content-type"].startswith("application/problem+json")
    assert body["errors"] and body["detail"]
    plans = client.get(f"/api/v1/tenants/{tenant.id}/bonus-plans",
                       headers=tenant.users["hr"].headers).json()
    assert plans["items"] == []  # nothing stored
