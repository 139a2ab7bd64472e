"""The one formula-injection rule, in CSV text and in real XLSX files."""

from __future__ import annotations

import csv
import io
import zipfile
from datetime import date
from decimal import Decimal

import pytest
from openpyxl import Workbook, load_workbook

from engine.safe_cells import csv_text, is_dangerous, safe_cell, safe_text
from server.modules.reports.files import csv_bytes, put_row, save_workbook

HOSTILE = '=HYPERLINK("http://x","y")'


@pytest.mark.parametrize("text", [HOSTILE, "+1+1", "-2+3+cmd|' /C calc'!A0", "@SUM(A1)",
                                  "\t=1", "\r=1", "-", "=", "-1e3"])
def test_formula_starts_are_neutralised(text: str) -> None:
    assert is_dangerous(text)
    assert safe_text(text) == "'" + text


@pytest.mark.parametrize("text", ["Alice", " =1", "1=1", "E0001", "", "'=already", "-12.50",
                                  "+3", "-0.0000000001", "1250.5000000000"])
def test_plain_text_and_numbers_pass_unchanged(text: str) -> None:
    assert safe_text(text) == text


def test_typed_values_keep_their_type() -> None:
    assert safe_cell(Decimal("-5.25")) == Decimal("-5.25")
    assert safe_cell(-3) == -3
    assert safe_cell(True) is True
    assert safe_cell(None) is None
    assert safe_cell(date(2025, 1, 2)) == date(2025, 1, 2)
    with pytest.raises(TypeError, match="float"):
        safe_cell(1.5)


def test_csv_text_is_exact() -> None:
    assert csv_text(Decimal("1E+3")) == "1000"
    assert csv_text(Decimal("-0.1000000000")) == "-0.1000000000"
    assert csv_text(False) == "false"
    assert csv_text(None) == ""
    assert csv_text(HOSTILE) == "'" + HOSTILE


def test_hyperlink_is_inert_in_csv() -> None:
    payload = csv_bytes(["employee_ref", "team", "bonus"],
                        [[HOSTILE, "@evil", Decimal("-12.50")]])
    rows = list(csv.reader(io.StringIO(payload.decode("utf-8"))))
    assert rows[1] == ["'" + HOSTILE, "'@evil", "-12.50"]


def test_hyperlink_is_inert_in_xlsx() -> None:
    workbook = Workbook()
    put_row(workbook.active, 1, [HOSTILE, Decimal("-12.50"), "+cmd"])
    data = save_workbook(workbook)
    sheet = load_workbook(io.BytesIO(data)).active
    assert sheet["A1"].data_type == "s" and sheet["A1"].value == "'" + HOSTILE
    assert sheet["B1"].data_type == "n" and sheet["B1"].value == -12.5
    assert sheet["C1"].value == "'+cmd"
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        xml = archive.read("xl/worksheets/sheet1.xml")
    assert b"<f>" not in xml and b"<f " not in xml  # no formula element anywhere


def test_workbook_bytes_do_not_depend_on_the_clock() -> None:
    def build() -> bytes:
        workbook = Workbook()
        put_row(workbook.active, 1, ["a", Decimal("1.5")])
        return save_workbook(workbook)

    first = build()
    assert build() == first
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        assert b"2000-01-01T00:00:00Z" in archive.read("docProps/core.xml")
