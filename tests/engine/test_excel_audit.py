"""The frozen audit workbook: formulas beside the engine's values, a check column, a cover; and
`paysheet verify-workbook`, which recalculates it with `formulas` and catches tampering."""

from __future__ import annotations

from pathlib import Path

from openpyxl import load_workbook
from typer.testing import CliRunner

from engine.backends import reference
from engine.backends.excel_audit import build_audit_workbook, verify_workbook
from engine.data import load_inputs
from engine.plan import compile_plan, load_plan
from samples.generate import write
from server.cli import app as cli
from tests.engine.plans import frame, plan

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
    workbook.save(path)
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
    assert "Calc!H2: formula of 'big' was changed" in report.problems
    assert "employee E4, step 'label': workbook None, engine 'b!'" in report.problems
    assert "employee E2, step 'share': workbook 666.67, engine 333.33" in report.problems
    assert "employee E1, step 'share': workbook 333.33, engine 666.67" in report.problems

    result = CliRunner().invoke(cli, ["verify-workbook", str(tampered)])
    assert result.exit_code == 1 and "formula of 'big' was changed" in result.output


def test_sample_plan_audit_workbook_verifies_to_the_cent(tmp_path):
    compiled = compile_plan(load_plan(ROOT / "samples/plans/fund_bonus.json"))
    employees, funds = write(12, 2, 3, tmp_path / "data")
    data = load_inputs(compiled, employees, funds)
    workbook = build_audit_workbook(compiled, data, reference.evaluate(compiled, data), {})
    path = tmp_path / "audit.xlsx"
    workbook.save(path)
    result = CliRunner().invoke(cli, ["verify-workbook", str(path)])
    assert result.exit_code == 0, result.output
    assert "12 rows x 17 steps agree with the engine to the cent" in result.output
