"""engine.data: typed loading of employee and fund CSVs, and every data problem reported."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest

from engine.data import LINE_COLUMN, DataError, DataProblem, load_inputs, typed_column
from engine.plan import InputSpec, compile_plan, validate_document

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


def _compiled(inputs: list[dict[str, object]]):
    return compile_plan(
        validate_document(
            {
                "name": "p",
                "effective_from": "2025-01-01",
                "currency": "USD",
                "inputs": inputs,
                "steps": [{"order": 1, "name": "pay", "expr": "1"}],
                "payout": "pay",
            }
        )
    )


def test_dates_texts_and_blank_cells_load_to_their_values() -> None:
    """A cell of spaces is empty (it takes the default); dates and texts load as written."""
    compiled = _compiled(
        [
            {"key": "start", "dtype": "date"},
            {"key": "level", "dtype": "text"},
            {"key": "bonus", "dtype": "decimal", "default": "5"},
        ]
    )
    employees = b"employee_ref,start,level,bonus\nE1,2025-03-01,vp,   \nE2, 2024-12-31 ,analyst,2\n"
    loaded = load_inputs(compiled, employees)
    assert loaded["start"].to_list() == [date(2025, 3, 1), date(2024, 12, 31)]
    assert loaded["level"].to_list() == ["vp", "analyst"]
    assert loaded["bonus"].to_list() == [Decimal(5), Decimal(2)]


def test_a_malformed_date_leaves_the_other_dates_of_the_column_alone() -> None:
    """Dates are read as YYYY-MM-DD only: a first cell in another format is reported and
    does not make the loader guess another format for the rest of the column; an unpadded
    month or day is not ISO."""
    compiled = _compiled([{"key": "start", "dtype": "date"}])
    employees = b"employee_ref,start\nE1,02/01/2025\nE2,2025-01-05\nE3,2025-1-5\n"
    with pytest.raises(DataError) as raised:
        load_inputs(compiled, employees)
    assert [(p.line, p.value) for p in raised.value.problems] == [
        (2, "02/01/2025"),
        (4, "2025-1-5"),
    ]


def test_an_optional_column_missing_from_the_file_is_typed_and_empty() -> None:
    compiled = _compiled(
        [
            {"key": "start", "dtype": "date", "required": False},
            {"key": "rate", "dtype": "decimal", "required": False},
            {"key": "grade", "dtype": "int", "required": False, "default": 3},
        ]
    )
    loaded = load_inputs(compiled, b"employee_ref\nE1\n")
    assert (loaded.schema["start"], loaded.schema["rate"]) == (pl.Date, pl.Decimal(38, 10))
    assert loaded.schema["fund_ref"] == pl.String
    assert loaded.row(0) == ("E1", None, None, None, Decimal(3))


def test_an_unreadable_file_is_one_problem_naming_the_file() -> None:
    compiled = _compiled([{"key": "x", "dtype": "decimal"}])
    with pytest.raises(DataError) as raised:
        load_inputs(compiled, b"")
    (problem,) = raised.value.problems
    assert (problem.file, problem.line, problem.column, problem.value) == (
        "employees.csv",
        None,
        "",
        None,
    )
    assert problem.message.startswith("cannot read CSV: ")
    assert str(raised.value) == (
        f"input data has 1 problem(s):\n  - employees.csv, column '': {problem.message}"
    )


def test_problems_come_sorted_by_file_line_and_column_each_naming_its_file(
    tmp_path: Path,
) -> None:
    """Files given as bytes are named employees.csv / funds.csv, paths by their path; the
    whole-column problems of a file (no line) come before its cell problems."""
    compiled = _compiled(
        [
            {"key": "b", "dtype": "decimal"},
            {"key": "a", "dtype": "decimal"},
            {"key": "c", "dtype": "decimal"},
            {"key": "r", "dtype": "decimal", "scope": "fund"},
        ]
    )
    employees = _write(tmp_path / "e.csv", "employee_ref,fund_ref,b,a\nE1,F1,1,x\nE2,F1,y,2\n")
    funds = b"fund_ref,r\nF1,z\n"
    with pytest.raises(DataError) as raised:
        load_inputs(compiled, employees, funds)
    assert [(p.file, p.line, p.column) for p in raised.value.problems] == [
        (str(employees), None, "c"),
        (str(employees), 2, "a"),
        (str(employees), 3, "b"),
        ("funds.csv", 2, "r"),
    ]
    assert str(raised.value).splitlines() == [
        "input data has 4 problem(s):",
        f"  - {employees}, column 'c': required column is missing",
        f"  - {employees}, line 2, column 'a': not a decimal number (value 'x')",
        f"  - {employees}, line 3, column 'b': not a decimal number (value 'y')",
        "  - funds.csv, line 2, column 'r': not a decimal number (value 'z')",
    ]
    with pytest.raises(DataError) as from_bytes:
        load_inputs(compiled, employees.read_bytes(), funds)
    assert from_bytes.value.problems[0].file == "employees.csv"


@pytest.mark.parametrize(
    ("count", "listed", "tail"), [(50, 50, []), (51, 50, ["  ... and 1 more"])]
)
def test_the_data_error_message_lists_fifty_problems_then_counts_the_rest(
    count: int, listed: int, tail: list[str]
) -> None:
    problems = [DataProblem("e.csv", line, "x", "?", "bad") for line in range(2, 2 + count)]
    lines = str(DataError(problems)).splitlines()
    assert lines[0] == f"input data has {count} problem(s):"
    assert (
        lines[1:]
        == [f"  - e.csv, line {n}, column 'x': bad (value '?')" for n in range(2, 2 + listed)]
        + tail
    )


def test_typed_column_types_one_batch_and_reports_its_cells_by_line() -> None:
    """The server's batch validation: problems carry the line from LINE_COLUMN and no file
    name; the expression gives the typed values, defaults filled in."""
    spec = InputSpec(key="x", dtype="decimal", required=False, default="7")
    batch = pl.DataFrame({LINE_COLUMN: [10, 11, 12], "x": ["1.5", "abc", None]})
    expr, problems = typed_column(batch, spec)
    assert problems == [DataProblem("", 11, "x", "abc", "not a decimal number")]
    assert batch.select(expr)["x"].to_list() == [Decimal("1.5"), Decimal(7), Decimal(7)]


def test_reference_columns_must_be_present_filled_and_unique() -> None:
    """employee_ref (and fund_ref in the funds file) identify rows: a missing column, an
    empty or blank cell and a repeated value are problems naming the file and line."""
    compiled = _compiled([{"key": "x", "dtype": "decimal"}])

    def problems(employees: bytes) -> list[DataProblem]:
        with pytest.raises(DataError) as raised:
            load_inputs(compiled, employees)
        return raised.value.problems

    missing = "required column is missing"
    empty = "required value is empty"
    assert problems(b"x\n1\n") == [
        DataProblem("employees.csv", None, "employee_ref", None, missing)
    ]
    assert problems(b"employee_ref,x\n,1\n  ,2\nE3,3\n") == [
        DataProblem("employees.csv", 2, "employee_ref", None, empty),
        DataProblem("employees.csv", 3, "employee_ref", "  ", empty),
    ]
    assert problems(b"employee_ref,x\nE1,1\nE1,2\n") == [
        DataProblem("employees.csv", 2, "employee_ref", "E1", "duplicate value"),
        DataProblem("employees.csv", 3, "employee_ref", "E1", "duplicate value"),
    ]


def test_fund_references_are_checked_in_both_files() -> None:
    """With a funds file, every employee needs a fund_ref, and the funds file needs one
    fund_ref column with a unique, non-empty value on each row."""
    compiled = _compiled([{"key": "r", "dtype": "decimal", "scope": "fund"}])
    employees = b"employee_ref,fund_ref\nE1,F1\nE2,\n"
    with pytest.raises(DataError) as raised:
        load_inputs(compiled, employees, b"fund_ref,r\nF1,1\nF1,2\n ,3\n")
    assert raised.value.problems == [
        DataProblem("employees.csv", 3, "fund_ref", None, "required value is empty"),
        DataProblem("funds.csv", 2, "fund_ref", "F1", "duplicate value"),
        DataProblem("funds.csv", 3, "fund_ref", "F1", "duplicate value"),
        DataProblem("funds.csv", 4, "fund_ref", " ", "required value is empty"),
    ]
    with pytest.raises(DataError) as no_fund_column:
        load_inputs(compiled, employees, b"r\n1\n")
    assert DataProblem("funds.csv", None, "fund_ref", None, "required column is missing") in (
        no_fund_column.value.problems
    )
    with pytest.raises(DataError) as unreadable:
        load_inputs(compiled, employees, b"")
    assert [(p.file, p.line, p.column) for p in unreadable.value.problems] == [
        ("funds.csv", None, "")
    ]
    assert unreadable.value.problems[0].message.startswith("cannot read CSV: ")


def test_without_a_funds_file_fund_inputs_come_from_the_employees_file() -> None:
    compiled = _compiled([{"key": "r", "dtype": "decimal", "scope": "fund"}])
    loaded = load_inputs(compiled, b"employee_ref,r\nE1,0.5\n")
    assert loaded["r"].to_list() == [Decimal("0.5")]


def test_employees_without_a_fund_are_kept_when_nothing_needs_their_fund() -> None:
    """A funds file given for a plan without fund inputs never drops an employee."""
    compiled = _compiled([{"key": "x", "dtype": "decimal"}])
    employees = b"employee_ref,fund_ref,x\nE1,F1,1\nE2,,2\n"
    loaded = load_inputs(compiled, employees, b"fund_ref\nF1\n")
    assert loaded.select("employee_ref", "fund_ref").rows() == [("E1", "F1"), ("E2", None)]
