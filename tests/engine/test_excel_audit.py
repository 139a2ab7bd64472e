"""The frozen audit workbook: formulas beside the engine's values, a check column, a cover; and
`paysheet verify-workbook`, which recalculates it with `formulas` and catches tampering, on a
500-employee run of the sample plan too."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from typer.testing import CliRunner

from engine.backends import reference
from engine.backends.excel_audit import build_audit_workbook
from engine.backends.excel_verify import verify_workbook
from engine.data import load_inputs
from engine.plan import compile_plan, load_plan
from samples.generate import write
from server.cli import app as cli
from tests.engine.plans import frame, plan
from tests.workbooks.sample_audit import assert_tampering_named, evaluate_sample, tamper

ROOT = Path(__file__).resolve().parents[2]
INPUTS = {"pool": "decimal", "w": "decimal", "team": "text"}


def _small(tmp_path: Path) -> Path:
    compiled = plan(
        [
            {"order": 1, "name": "share", "expr": "allocate(pool, w, fund_ref)",
             "condition": "w > 0"},
            {"order": 2, "name": "team_total", "expr": "sum_over(share, team)"},
            {"order": 3, "name": "big", "expr": "share > 100"},
            {"order": 4, "name": "label", "expr": 'if (big) then "big" else team'},
        ],
        INPUTS,
        payout="share",
    )
    rows = [
        {"employee_ref": "E1", "fund_ref": "F1", "pool": 1000, "w": 2, "team": "a"},
        {"employee_ref": "E2", "fund_ref": "F1", "pool": 1000, "w": 1, "team": "b"},
        {"employee_ref": "E3", "fund_ref": "F1", "pool": 1000, "w": 0, "team": "a"},
        {"employee_ref": "E4", "fund_ref": "F2", "pool": 50, "w": None, "team": "b"},
    ]
    data = frame(INPUTS, rows)
    workbook = build_audit_workbook(compiled, data, reference.evaluate(compiled, data),
                                    {"run": "run-1", "results hash": "ab" * 32})
    path = tmp_path / "audit.xlsx"
    path.write_bytes(workbook)
    return path


def test_audit_workbook_layout_and_cover(tmp_path):
    workbook = load_workbook(_small(tmp_path))
    assert workbook.sheetnames == ["Cover", "Calc", "Meta"]
    assert workbook["Meta"].sheet_state == "hidden"
    cover = {row[0]: row[1] for row in workbook["Cover"].iter_rows(min_row=3, values_only=True)}
    assert cover["run"] == "run-1" and len(cover["plan hash"]) == 64
    calc = workbook["Calc"]
    headers = [cell.value for cell in calc[1]][:14]
    assert headers == ["employee_ref", "fund_ref", "pool", "w", "team", "share", "team_total",
                       "big", "label", "share (engine)", "team_total (engine)", "big (engine)",
                       "label (engine)", "check"]
    assert calc["F2"].value.startswith("=IF(")  # a real formula
    # engine values: E1 666.67, E3 (guard false) 0, E4 (null weight) null, an empty cell
    assert (calc["J2"].value, calc["J4"].value, calc["J5"].value) == (666.67, 0, None)
    assert calc["N2"].value.startswith("=AND(")


def test_verify_accepts_a_true_workbook_and_catches_tampering(tmp_path):
    path = _small(tmp_path)
    assert verify_workbook(path).problems == []
    workbook = load_workbook(path)
    calc = workbook["Calc"]
    calc["D3"] = 4  # E2's weight: every share of fund F1 moves
    calc["M5"] = "b!"  # a stored engine value of E4
    calc["H2"] = True  # a formula replaced by a constant
    tampered = tmp_path / "tampered.xlsx"
    workbook.save(tampered)
    report = verify_workbook(tampered)
    assert report.problems == [
        "Calc!H2: formula of 'big' was changed",
        "Calc!F2 (employee E1, step 'share'): workbook 333.33, engine 666.67 (Calc!J2)",
        "Calc!G2 (employee E1, step 'team_total'): workbook 333.33, engine 666.67 (Calc!K2)",
        "Calc!F3 (employee E2, step 'share'): workbook 666.67, engine 333.33 (Calc!J3)",
        "Calc!G3 (employee E2, step 'team_total'): workbook 666.67, engine 333.33 (Calc!K3)",
        "Calc!G4 (employee E3, step 'team_total'): workbook 333.33, engine 666.67 (Calc!K4)",
        "Calc!G5 (employee E4, step 'team_total'): workbook 666.67, engine 333.33 (Calc!K5)",
        "Calc!I5 (employee E4, step 'label'): workbook None, engine 'b!' (Calc!M5)",
    ]

    result = CliRunner().invoke(cli, ["verify-workbook", str(tampered)])
    assert result.exit_code == 1 and "formula of 'big' was changed" in result.output


def test_a_changed_check_formula_is_reported(tmp_path):
    workbook = load_workbook(_small(tmp_path))
    workbook["Calc"]["N3"] = "=TRUE"
    tampered = tmp_path / "tampered.xlsx"
    workbook.save(tampered)
    assert verify_workbook(tampered).problems == ["Calc!N3: the check formula was changed"]


def test_a_run_without_employees_verifies_and_a_blanked_employee_cannot(tmp_path):
    compiled = plan({"s": "w * 2"}, INPUTS)
    empty = frame(INPUTS, [])
    path = tmp_path / "empty.xlsx"
    path.write_bytes(build_audit_workbook(compiled, empty, reference.evaluate(compiled, empty),
                                          {}))
    assert (verify_workbook(path).rows, verify_workbook(path).ok) == (0, True)
    workbook = load_workbook(_small(tmp_path))
    workbook["Calc"]["A3"] = None
    blanked = tmp_path / "blanked.xlsx"
    workbook.save(blanked)
    result = CliRunner().invoke(cli, ["verify-workbook", str(blanked)])
    assert result.exit_code == 2 and "rows 2-5 must each hold an employee_ref" in result.output


def test_not_an_audit_workbook_exits_2(tmp_path):
    path = tmp_path / "plain.xlsx"
    Workbook().save(path)
    result = CliRunner().invoke(cli, ["verify-workbook", str(path)])
    assert result.exit_code == 2 and "not a Paysheet audit workbook" in result.output


def test_sample_plan_audit_workbook_verifies_to_the_cent(tmp_path):
    compiled = compile_plan(load_plan(ROOT / "samples/plans/fund_bonus.json"))
    employees, funds = write(12, 2, 3, tmp_path / "data")
    data = load_inputs(compiled, employees, funds)
    path = tmp_path / "audit.xlsx"
    path.write_bytes(build_audit_workbook(compiled, data, reference.evaluate(compiled, data), {}))
    result = CliRunner().invoke(cli, ["verify-workbook", str(path)])
    assert result.exit_code == 0, result.output
    assert "12 rows x 17 steps agree with the engine to the cent" in result.output


@pytest.fixture(scope="module")
def run_500(tmp_path_factory) -> tuple[Path, object, object]:
    """The audit workbook of a 500-employee engine evaluation of the sample plan."""
    tmp = tmp_path_factory.mktemp("audit500")
    compiled, data, result = evaluate_sample(tmp)
    path = tmp / "audit.xlsx"
    path.write_bytes(build_audit_workbook(compiled, data, result, {"run": "run-500"}))
    return path, compiled, result


def test_500_employee_workbook_recomputes_to_the_cent(run_500):
    path, compiled, result = run_500
    report = verify_workbook(path)
    assert (report.rows, report.steps, report.problems) == (500, 17, [])
    # what it compared with is the engine's result itself, row by row (nulls: empty cells)
    calc = load_workbook(path, read_only=True)["Calc"]
    header = next(calc.iter_rows(max_row=1, values_only=True))
    engine = {name: header.index(f"{name} (engine)") for name in compiled.display_order}
    expected = result.frame.sort("employee_ref")
    for offset, row in enumerate(calc.iter_rows(min_row=2, values_only=True)):
        for name, index in engine.items():
            want = expected[name][offset]
            got = row[index]
            if isinstance(want, Decimal):
                assert Decimal(repr(got)) == want, (name, offset)
            elif want is None or isinstance(want, bool | str):
                assert got == want, (name, offset)
    result_cli = CliRunner().invoke(cli, ["verify-workbook", str(path)])
    assert result_cli.exit_code == 0, result_cli.output
    assert "500 rows x 17 steps agree with the engine to the cent" in result_cli.output


def test_500_employee_workbook_tampering_is_caught_with_the_cell(run_500, tmp_path):
    path, _, _ = run_500
    tampered = tamper(path, tmp_path / "tampered.xlsx")
    assert_tampering_named(tampered.path, tampered)
