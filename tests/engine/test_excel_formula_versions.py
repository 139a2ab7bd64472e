"""verify-workbook checks each audit workbook against the formulas of the generator that wrote
it: the Meta sheet carries a formula version, and a workbook of the first generator (no
version recorded, snaps spelled `ROUND(x*100,8)`) still verifies, and is still caught when
tampered with. `data/audit-v1.xlsx` was written by that generator (see
`data/make_audit_v1.py` for how)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from openpyxl import load_workbook
from typer.testing import CliRunner

from engine.backends import reference
from engine.backends.excel import FORMULA_VERSION
from engine.backends.excel_audit import build_audit_workbook
from engine.backends.excel_verify import verify_workbook
from server.cli import app as cli
from tests.engine.plans import frame, plan

V1 = Path(__file__).parent / "data" / "audit-v1.xlsx"


def _meta(path: Path) -> dict:
    book = load_workbook(path, read_only=True)
    try:
        return json.loads("".join(row[0] for row in book["Meta"].iter_rows(values_only=True)
                                  if row and row[0]))
    finally:
        book.close()


def _rewrite_meta(path: Path, change) -> None:
    book = load_workbook(path)
    sheet = book["Meta"]
    meta = json.loads("".join(cell.value for cell in sheet["A"] if cell.value))
    change(meta)
    sheet.delete_rows(1, sheet.max_row)
    sheet["A1"] = json.dumps(meta)
    book.save(path)


def test_the_old_fixture_is_in_the_old_form():
    """The fixture really is version 1: no version recorded, no range column, old snaps."""
    meta = _meta(V1)
    assert "formula_version" not in meta and "range_column" not in meta["layout"]
    calc = load_workbook(V1)["Calc"]
    formulas = [cell.value for row in calc.iter_rows(min_row=2, max_row=2) for cell in row
                if isinstance(cell.value, str) and cell.value.startswith("=")]
    assert any("*100,8)" in text for text in formulas)
    assert not any("LOG10" in text for text in formulas)


def test_a_version_1_workbook_verifies(tmp_path):
    report = verify_workbook(V1)
    assert report.problems == []
    assert (report.rows, report.steps, report.formula_version) == (6, 6, 1)
    result = CliRunner().invoke(cli, ["verify-workbook", str(V1)])
    assert result.exit_code == 0, result.output
    assert "formula version 1" in result.output


def test_a_tampered_version_1_workbook_fails_naming_the_cells(tmp_path):
    path = tmp_path / "tampered.xlsx"
    shutil.copy(V1, path)
    book = load_workbook(path)
    calc = book["Calc"]
    headers = {cell.value: cell.column_letter for cell in calc[1]}
    calc[f"{headers['w']}3"] = 7  # E2's weight: F1's shares move
    calc[f"{headers['bonus (engine)']}5"] = 999  # E4's stored payout
    calc[f"{headers['eighth']}6"] = 0.05  # a formula replaced by a constant
    book.save(path)
    report = verify_workbook(path)
    text = "\n".join(report.problems)
    assert f"Calc!{headers['share']}3 (employee E2, step 'share')" in text
    assert f"Calc!{headers['bonus']}5 (employee E4, step 'bonus')" in text
    assert f"Calc!{headers['eighth']}6: formula of 'eighth' was changed" in text
    result = CliRunner().invoke(cli, ["verify-workbook", str(path)])
    assert result.exit_code == 1


def test_the_version_decides_which_formulas_are_expected(tmp_path):
    """The same old file claiming today's version fails on its formulas: the version is what
    makes it verify, not a loosened comparison."""
    path = tmp_path / "claims-v2.xlsx"
    shutil.copy(V1, path)
    _rewrite_meta(path, lambda meta: meta.update(formula_version=2))
    report = verify_workbook(path)
    assert report.formula_version == 2
    assert any(": formula of 'share' was changed" in p for p in report.problems)


def test_an_unknown_version_is_refused_with_exit_2(tmp_path):
    path = tmp_path / "future.xlsx"
    shutil.copy(V1, path)
    _rewrite_meta(path, lambda meta: meta.update(formula_version=99))
    result = CliRunner().invoke(cli, ["verify-workbook", str(path)])
    assert result.exit_code == 2
    assert "formula version 99" in result.output


def test_a_new_workbook_records_todays_version_and_verifies(tmp_path):
    inputs = {"pool": "decimal", "w": "decimal"}
    compiled = plan([{"order": 1, "name": "share", "expr": "allocate(pool, w, fund_ref)"}],
                    inputs)
    data = frame(inputs, [{"employee_ref": "E1", "fund_ref": "F1", "pool": 10, "w": 1},
                          {"employee_ref": "E2", "fund_ref": "F1", "pool": 10, "w": 2}])
    path = tmp_path / "new.xlsx"
    path.write_bytes(build_audit_workbook(compiled, data, reference.evaluate(compiled, data),
                                          {"run": "r"}))
    assert _meta(path)["formula_version"] == FORMULA_VERSION == 2
    report = verify_workbook(path)
    assert report.problems == [] and report.formula_version == FORMULA_VERSION
