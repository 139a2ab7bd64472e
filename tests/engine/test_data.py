"""engine.data: typed loading of employee and fund CSVs, and every data problem reported."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.data import DataError, load_inputs
from engine.plan import compile_plan, validate_document

PLAN = {
    "name": "p",
    "effective_from": "2025-01-01",
    "currency": "USD",
    "inputs": [
        {"key": "salary", "dtype": "decimal"},
        {"key": "grade", "dtype": "int", "required": False, "default": "1"},
        {"key": "active", "dtype": "bool"},
        {"key": "start", "dtype": "date", "required": False},
        {"key": "level", "dtype": "text"},
        {"key": "ret", "dtype": "decimal", "scope": "fund"},
    ],
    "steps": [{"order": 1, "name": "pay", "expr": "salary * ret + grade"}],
    "payout": "pay",
}


@pytest.fixture
def plan():
    return compile_plan(validate_document(PLAN))


def _write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_loads_typed_columns_with_defaults_and_fund_join(plan, tmp_path: Path) -> None:
    employees = _write(
        tmp_path / "e.csv",
        "employee_ref,fund_ref,salary,grade,active,start,level\n"
        "E1,F1,100.5,,YES,2025-03-01,vp\n"
        "E2,F2,-0.0000000001,3,0,,analyst\n",
    )
    funds = _write(tmp_path / "f.csv", "fund_ref,ret\nF1,0.05\nF2,-0.1\n")
    frame = load_inputs(plan, employees, funds)
    assert frame.columns == [
        "employee_ref",
        "fund_ref",
        "salary",
        "grade",
        "active",
        "start",
        "level",
        "ret",
    ]
    assert frame.schema["salary"] == pl.Decimal(38, 10)
    assert frame["grade"].to_list() == [Decimal(1), Decimal(3)]
    assert frame["active"].to_list() == [True, False]
    assert frame["start"].to_list()[1] is None
    assert frame["ret"].to_list() == [Decimal("0.05"), Decimal("-0.1")]
    assert frame["salary"].to_list()[1] == Decimal("-0.0000000001")


def test_every_problem_is_reported_with_line_and_column(plan, tmp_path: Path) -> None:
    employees = _write(
        tmp_path / "e.csv",
        "employee_ref,fund_ref,salary,grade,active,start,level\n"
        "E1,F1,1e5,2.5,maybe,2025-02-30,vp\n"
        "E1,F9,1.12345678901,,true,,\n"
        "E3,F1,,,true,01/02/2025,x\n"
        "E4,F1,99999999999999999999999999999,1,true,,x\n",
    )
    funds = _write(tmp_path / "f.csv", "fund_ref,ret\nF1,0.05\n")
    with pytest.raises(DataError) as raised:
        load_inputs(plan, employees, funds)
    found = {(p.line, p.column, p.message) for p in raised.value.problems}
    assert found == {
        (2, "salary", "not a decimal number"),
        (2, "grade", "not a whole number"),
        (2, "active", "not a boolean (true/false, 1/0, yes/no)"),
        (2, "start", "not an ISO date (YYYY-MM-DD)"),
        (2, "employee_ref", "duplicate value"),
        (3, "employee_ref", "duplicate value"),
        (3, "salary", "more than 10 decimal places"),
        (3, "level", "required value is empty"),
        (3, "fund_ref", "unknown fund_ref (not in the funds file)"),
        (4, "salary", "required value is empty"),
        (4, "start", "not an ISO date (YYYY-MM-DD)"),
        (5, "salary", "out of range (|x| must be below 1e28)"),
    }
    assert "line 2, column 'salary'" in str(raised.value)


def test_missing_required_columns_are_named(plan, tmp_path: Path) -> None:
    employees = _write(tmp_path / "e.csv", "employee_ref,fund_ref,salary\nE1,F1,1\n")
    funds = _write(tmp_path / "f.csv", "fund_ref\nF1\n")
    with pytest.raises(DataError) as raised:
        load_inputs(plan, employees, funds)
    missing = {(p.file.endswith("f.csv"), p.column) for p in raised.value.problems}
    assert missing == {(False, "active"), (False, "level"), (True, "ret")}
    assert all(p.line is None for p in raised.value.problems)
