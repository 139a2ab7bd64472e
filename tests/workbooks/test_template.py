"""The plan workbook template, import and export without the server: protection, unlocked
cells, data validation, round trip of the plan hash, errors naming sheet/row/column."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from openpyxl import load_workbook
from typer.testing import CliRunner

from engine.catalog import CATALOG
from engine.check import check_plan
from engine.hashing import plan_hash
from engine.plan import load_plan, validate_document
from server.cli import app as cli
from server.modules.workbooks.layout import layout
from server.modules.workbooks.reader import WorkbookUnreadable, read_workbook
from server.modules.workbooks.template import build_workbook, workbook_bytes

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "samples/plans/fund_bonus.json"
SHEETS = ["Plan", "Inputs", "Parameters", "Steps", "Tests", "Functions", "Help"]


def _sample_document() -> dict:
    return json.loads(SAMPLE.read_text())


def _reopen(workbook) -> object:
    return load_workbook(io.BytesIO(workbook_bytes(workbook)))


def _filled_bytes(edit=None) -> bytes:
    """The sample plan exported into the template, then edited like an author would."""
    workbook = _reopen(build_workbook(_sample_document()))
    if edit:
        edit(workbook)
    return workbook_bytes(workbook)


def test_template_sheets_are_protected_with_only_authoring_cells_unlocked():
    workbook = _reopen(build_workbook())
    assert workbook.sheetnames == SHEETS
    assert workbook.security.lockStructure
    for name in SHEETS:
        assert workbook[name].protection.sheet, name
    steps = workbook["Steps"]
    for letter in "ABCDEF":  # order, name, expression, guard, default, notes
        assert steps[f"{letter}2"].protection.locked is False
        assert steps[f"{letter}{layout().last_row}"].protection.locked is False
    for letter in "GH":  # status, message: the server's
        assert steps[f"{letter}2"].protection.locked is True
    assert steps["A1"].protection.locked is True  # headers
    plan = workbook["Plan"]
    editable = {f.row for f in layout().plan_fields if f.editable}
    for field in layout().plan_fields:
        assert plan[f"B{field.row}"].protection.locked is (field.row not in editable)
    assert plan["A2"].protection.locked is True
    functions = workbook["Functions"]
    assert all(cell.protection.locked for row in functions.iter_rows() for cell in row)


def test_template_has_data_validation_for_dtype_scope_and_required():
    sheet = _reopen(build_workbook())["Inputs"]
    lists = {str(v.sqref): v.formula1 for v in sheet.data_validations.dataValidation}
    last = layout().last_row
    assert lists[f"C2:C{last}"] == '"decimal,int,bool,text,date"'
    assert lists[f"D2:D{last}"] == '"employee,fund"'
    assert lists[f"E2:E{last}"] == '"TRUE,FALSE"'


def test_functions_sheet_lists_the_catalog():
    sheet = _reopen(build_workbook())["Functions"]
    names = [sheet.cell(row, 1).value for row in range(2, 2 + len(CATALOG))]
    assert names == list(CATALOG)
    assert sheet["B3"].value == CATALOG[names[1]].signature()


def test_filled_template_imports_to_a_plan_that_passes_the_checks():
    read = read_workbook(_filled_bytes())
    assert read.errors == []
    compiled, problems = check_plan(validate_document(read.document))
    assert problems == [] and compiled is not None


def test_round_trip_keeps_the_plan_hash():
    original = load_plan(SAMPLE)
    read = read_workbook(_filled_bytes())
    assert plan_hash(validate_document(read.document)) == plan_hash(original)


def test_round_trip_keeps_exact_values_and_empty_text_defaults():
    document = _sample_document()
    document["parameters"].append({"key": "tiny", "dtype": "decimal", "value": "0.1000000001"})
    document["inputs"].append({"key": "grade", "dtype": "text", "scope": "employee",
                               "required": False, "default": ""})
    document["steps"][0]["notes"] = "=not a formula"
    read = read_workbook(workbook_bytes(build_workbook(document)))
    assert read.errors == []
    assert plan_hash(validate_document(read.document)) == plan_hash(validate_document(document))
    assert read.document["parameters"][-1]["value"] == "0.1000000001"


def test_numbers_and_dates_typed_by_excel_are_read_back_as_text():
    def edit(workbook):
        workbook["Parameters"]["C2"] = 0.07  # a float, as Excel stores a typed number
        from datetime import datetime
        workbook["Plan"]["B4"] = datetime(2025, 2, 1)  # a real date cell
    read = read_workbook(_filled_bytes(edit))
    assert read.errors == []
    assert read.document["parameters"][0]["value"] == "0.07"
    assert read.document["effective_from"] == "2025-02-01"


def test_cell_errors_name_sheet_row_and_column():
    def edit(workbook):
        workbook["Inputs"]["C3"] = "decimel"
        workbook["Steps"]["A5"] = "ten"
        workbook["Steps"]["C7"] = None
        workbook["Parameters"]["C2"] = "5%"
        workbook["Plan"]["B4"] = "1 Jan 2025"
    read = read_workbook(_filled_bytes(edit))
    cells = {error.cell: error.message for error in read.errors}
    assert set(cells) == {"Inputs!C3", "Steps!A5", "Steps!C7", "Parameters!C2", "Plan!B4"}
    assert "must be one of decimal" in cells["Inputs!C3"]
    assert "whole number" in cells["Steps!A5"]
    assert cells["Steps!C7"] == "Expression is empty"
    assert "expected a decimal number" in cells["Parameters!C2"]
    assert "ISO date" in cells["Plan!B4"]
    assert read.errors[0].as_dict()["sheet"] in {"Inputs", "Steps", "Parameters", "Plan"}


def test_blank_rows_are_skipped_and_rows_are_remembered():
    def edit(workbook):
        sheet = workbook["Steps"]
        sheet.protection.sheet = False
        sheet.insert_rows(4, 2)  # two empty rows inside the table
    read = read_workbook(_filled_bytes(edit))
    assert read.errors == []
    assert read.rows["steps"][:4] == [2, 3, 6, 7]


def test_not_a_workbook_and_a_foreign_workbook_are_refused():
    with pytest.raises(WorkbookUnreadable, match=r"not a readable \.xlsx"):
        read_workbook(b"PK\x03\x04 not really a zip")
    from openpyxl import Workbook
    with pytest.raises(WorkbookUnreadable, match="missing sheet"):
        read_workbook(workbook_bytes(Workbook()))


def test_a_zip_bomb_is_refused_before_parsing():
    import zipfile
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("xl/sharedStrings.xml", b"0" * (101 * 1024 * 1024))
    assert len(buffer.getvalue()) < 1024 * 1024
    with pytest.raises(WorkbookUnreadable, match="unpacks to 101 MB"):
        read_workbook(buffer.getvalue())


def test_rows_beyond_the_template_are_refused():
    def edit(workbook):
        workbook["Steps"][f"B{layout().last_row + 1}"] = "extra"
    read = read_workbook(_filled_bytes(edit))
    assert [e.cell for e in read.errors] == [f"Steps!A{layout().last_row + 1}"]


def test_diagnostics_are_written_into_status_and_message():
    document = _sample_document()
    document["steps"][1]["expr"] = "round2(base_salary * target_pc)"
    _, problems = check_plan(validate_document(document))
    diagnostics = [{"step": p.step, "field": p.field, "line": p.line, "column": p.column,
                    "code": p.code, "message": p.message} for p in problems]
    sheet = _reopen(build_workbook(document, {"plan_id": "x"}, diagnostics))["Steps"]
    assert sheet["G2"].value == "ok"
    assert sheet["G3"].value == "error"
    assert "did you mean 'target_pct'" in sheet["H3"].value
    assert sheet["C3"].fill.fgColor.rgb.endswith("F8CBAD")


def test_template_command_writes_blank_and_filled_workbooks(tmp_path):
    runner = CliRunner()
    blank = tmp_path / "blank.xlsx"
    result = runner.invoke(cli, ["template", str(blank)])
    assert result.exit_code == 0, result.output
    assert load_workbook(blank).sheetnames == SHEETS
    filled = tmp_path / "filled.xlsx"
    result = runner.invoke(cli, ["template", str(filled), "--plan", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    read = read_workbook(filled.read_bytes())
    assert plan_hash(validate_document(read.document)) == plan_hash(load_plan(SAMPLE))
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    result = runner.invoke(cli, ["template", str(tmp_path / "x.xlsx"), "--plan", str(bad)])
    assert result.exit_code == 1 and "invalid plan document" in result.output


def test_tests_sheet_vectors_carry_their_group():
    def edit(workbook):
        tests = workbook["Tests"]
        tests.protection.sheet = False
        for cell, value in {"D1": "base_salary", "E1": "Group", "F1": "expect bonus",
                            "A2": "alone", "D2": "1000", "F2": "15", "D3": "2000",
                            "E3": "fund A", "D4": "3000", "E4": "fund A"}.items():
            tests[cell] = value

    vectors = read_workbook(_filled_bytes(edit)).tests
    assert [(v["row"], v["group"], v["inputs"]) for v in vectors] == [
        (2, None, {"base_salary": "1000"}), (3, "fund A", {"base_salary": "2000"}),
        (4, "fund A", {"base_salary": "3000"})]
    assert vectors[0]["expected"] == {"bonus": "15"} and vectors[0]["case"] == "alone"
