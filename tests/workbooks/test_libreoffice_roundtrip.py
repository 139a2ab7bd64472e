"""A 500-employee audit workbook through LibreOffice Calc (headless): written without cached
values, recalculated by LibreOffice and saved, every step cell agrees with the engine (0
differ), every formula cell has a value, sheets stay protected and helpers hidden, and the
re-saved copy (LibreOffice writes `FALSE()` for `FALSE`) passes `verify-workbook`. A tampered
copy re-saved the same way fails, naming each changed cell."""

from __future__ import annotations

from decimal import Decimal

import pytest
from openpyxl import load_workbook

from engine.backends.excel_audit import build_audit_workbook
from engine.backends.excel_verify import verify_workbook
from tests.workbooks.libreoffice import resave
from tests.workbooks.sample_audit import assert_tampering_named, evaluate_sample, tamper


@pytest.fixture(scope="module")
def run_500(tmp_path_factory):
    """(blank workbook, cached workbook, plan, engine result) of 500 employees."""
    tmp = tmp_path_factory.mktemp("lo500")
    compiled, data, result = evaluate_sample(tmp)
    blank, cached = tmp / "blank.xlsx", tmp / "cached.xlsx"
    blank.write_bytes(build_audit_workbook(compiled, data, result, {}, cached=False))
    cached.write_bytes(build_audit_workbook(compiled, data, result, {}))
    return blank, cached, compiled, result


def test_libreoffice_recalculates_500_employees_like_the_engine(run_500, tmp_path):
    blank, _, compiled, result = run_500
    header = {c.value: c.column_letter for c in load_workbook(blank, read_only=True)["Calc"][1]}
    before = load_workbook(blank, data_only=True)["Calc"]
    assert before[f"{header['bonus']}2"].value is None  # nothing cached: LibreOffice computes

    saved = resave(blank, tmp_path)
    formulas = load_workbook(saved)
    values = load_workbook(saved, data_only=True)["Calc"]
    calc = formulas["Calc"]
    assert all(formulas[name].protection.sheet for name in ("Cover", "Calc", "Meta"))
    assert formulas["Meta"].sheet_state == "hidden"
    hidden = {c for d in calc.column_dimensions.values() if d.hidden
              for c in range(d.min, d.max + 1)}
    helpers = [c.column for c in calc[1] if c.value and c.value.count(".") == 2]
    assert helpers and set(helpers) <= hidden

    empty = [cell.coordinate for row in calc.iter_rows(min_row=2) for cell in row
             if isinstance(cell.value, str) and cell.value.startswith("=")
             and values[cell.coordinate].value is None]
    assert empty == []
    engine = result.frame.sort("employee_ref")
    differ, compared = [], 0
    for name in compiled.display_order:
        for offset in range(500):
            got = values[f"{header[name]}{offset + 2}"].value
            want = engine[name][offset]
            compared += 1
            if isinstance(want, Decimal):
                same = isinstance(got, int | float) and abs(Decimal(repr(got)) - want) < \
                    Decimal("0.005")
            else:
                same = got == want or (want is None and got == "#N/A")
            if not same:
                differ.append((f"{header[name]}{offset + 2}", name, got, want))
    assert compared == 500 * 17 and differ == []
    assert {values[f"{header['check']}{row}"].value for row in range(2, 502)} == {True}

    report = verify_workbook(saved)  # FALSE() and friends are LibreOffice's spelling
    assert (report.rows, report.problems) == (500, [])


def test_the_downloaded_form_re_saved_by_libreoffice_verifies(run_500, tmp_path):
    """The file as users get it (cached values, formula version on Meta), opened and saved
    by LibreOffice untouched: still protected, helpers still hidden, and it verifies."""
    _, cached, _, _ = run_500
    saved = resave(cached, tmp_path)
    formulas = load_workbook(saved)
    assert all(formulas[name].protection.sheet for name in ("Cover", "Calc", "Meta"))
    assert formulas["Meta"].sheet_state == "hidden"
    report = verify_workbook(saved)
    assert (report.rows, report.steps, report.problems) == (500, 17, [])
    assert report.formula_version == 2


def test_a_tampered_copy_re_saved_by_libreoffice_fails_naming_the_cells(run_500, tmp_path):
    _, cached, _, _ = run_500
    tampered = tamper(cached, tmp_path / "tampered.xlsx")
    assert_tampering_named(resave(tampered.path, tmp_path), tampered)
