"""Individual statements: the PDF and XLSX show exactly what the engine computed."""

from __future__ import annotations

import io
import zipfile
from decimal import Decimal

import pytest
from openpyxl import load_workbook

from engine.dsl.ast import Type
from server.modules.reports.formatting import decimal_text
from server.modules.reports.render import statement_html, statement_xlsx
from server.modules.reports.statement import Branding, build_statement
from tests.reports.conftest import (
    BRANDING,
    HOSTILE,
    HOSTILE_REF,
    Sample,
    run_info,
)


@pytest.mark.parametrize(("value", "text"), [
    ("18617.0500000000", "18,617.05"), ("0.8625000000", "0.8625"), ("-1.0000000000", "-1.00"),
    ("0E-10", "0.00"), ("1234567.1234567891", "1,234,567.1234567891"), ("-0.0000000001",
                                                                        "-0.0000000001"),
])
def test_decimal_text_shows_every_digit(value: str, text: str) -> None:
    assert decimal_text(Decimal(value)) == text


def _known_employee(sample: Sample) -> str:
    """The first eligible employee with a non-zero payout (so the tape has real values)."""
    for row in sample.results.iter_rows(named=True):
        if row["eligible"] and row["bonus"] and row["employee_ref"] != HOSTILE_REF:
            return row["employee_ref"]
    raise AssertionError("sample data has no paid employee")


def _statement(sample: Sample, ref: str, status: str = "draft", branding: Branding = BRANDING):
    return build_statement(sample.plan, sample.tape(ref), run_info(status), branding,
                           sample.inputs(ref))


def test_xlsx_holds_numbers_with_number_formats(sample: Sample) -> None:
    ref = _known_employee(sample)
    engine_row = sample.result_row(ref)
    sheet = load_workbook(io.BytesIO(statement_xlsx(_statement(sample, ref)))).active
    rows = {row[1].value: row for row in sheet.iter_rows() if isinstance(row[0].value, int)}
    for step in sample.plan.steps:
        cell = rows[step.name][5]
        expected = engine_row[step.name]
        if step.type is Type.DECIMAL and expected is not None:
            assert cell.data_type == "n", step.name
            assert Decimal(repr(cell.value)) == expected.normalize(), step.name
            assert cell.number_format.startswith("#,##0.00")
        elif step.type is Type.BOOL:
            assert cell.value is expected
    facts = {row[0].value: row[1] for row in sheet.iter_rows() if row[0].value}
    assert facts["Payout"].data_type == "n"
    assert Decimal(repr(facts["Payout"].value)) == engine_row["bonus"].normalize()
    assert "DRAFT" in sheet["A2"].value
    final = load_workbook(io.BytesIO(statement_xlsx(_statement(sample, ref, "finalized"))))
    assert "DRAFT" not in final.active["A2"].value


def test_hostile_text_is_inert_everywhere(sample: Sample) -> None:
    statement = _statement(sample, HOSTILE_REF)
    html = statement_html(statement)
    assert "<b>Partners</b>" not in html and "&lt;b&gt;Partners&lt;/b&gt;" in html
    assert HOSTILE.replace('"', "&#34;") in html
    data = statement_xlsx(statement)
    sheet = load_workbook(io.BytesIO(data)).active
    team = next(row[2] for row in sheet.iter_rows() if row[1].value == "team")
    assert team.data_type == "s" and team.value == "'" + HOSTILE
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        assert b"<f>" not in archive.read("xl/worksheets/sheet1.xml")


def test_bad_branding_colours_fall_back() -> None:
    brand = Branding.from_tenant("T", {"branding": {"primary": "red;} body{display:none",
                                                    "accent": "#00ff00"}})
    assert brand.primary == "#1F3A5F" and brand.accent == "#00ff00"


def test_tape_of_another_plan_is_refused(sample: Sample) -> None:
    tape = sample.tape(_known_employee(sample)) | {"plan_hash": "0" * 64}
    with pytest.raises(ValueError, match="plan hash"):
        build_statement(sample.plan, tape, run_info(), BRANDING)
