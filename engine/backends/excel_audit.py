"""The frozen audit workbook (issue 7): a run's inputs, one real formula column per step, the
engine's stored values beside them, a check column per row and a cover sheet; and its
verification, which recalculates the workbook independently with `formulas`.

Sheet `Calc`: inputs | step formulas | "<step> (engine)" values | check | helper columns.
A hidden sheet `Meta` holds the plan document, so `verify_workbook` can recompile the plan
and prove that every formula cell is exactly what the Excel backend emits (a formula replaced
by a constant is caught), then that every recalculated step agrees with the stored engine
value to the cent (a changed input or a changed stored value is caught).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl.utils import get_column_letter

from engine.backends.base import EvalResult
from engine.backends.excel import (
    HEADER_ROW,
    SHEET,
    _write_value,
    compile_plan,
    input_layout,
    write_formulas,
    write_inputs,
)
from engine.dsl.ast import Type
from engine.plan import CompiledPlan
from engine.plan import compile_plan as compile_document

COVER = "Cover"
META = "Meta"
CHECK_HEADER = "check"
TOLERANCE = Decimal("0.01")
EXCEL_EPOCH = date(1899, 12, 30)
META_CHUNK = 30_000  # a cell holds at most 32,767 characters


@dataclass(frozen=True)
class AuditLayout:
    """Where the audit workbook keeps things (also stored, as JSON, in the Meta sheet)."""

    first_row: int
    last_row: int
    employee_ref: str
    input_columns: dict[str, str]
    formula_columns: dict[str, str]
    engine_columns: dict[str, str]
    step_types: dict[str, str]
    check_column: str


def _agreement(formula: str, engine: str, kind: str) -> str:
    """True where the recalculated step and the stored engine value agree (null = error/empty)."""
    both_null = f'AND(ISERROR({formula}),{engine}="")'
    if kind == Type.DECIMAL.value:
        return f"IFERROR(ABS({formula}-{engine})<0.01,{both_null})"
    if kind == Type.TEXT.value:
        return f"IFERROR(EXACT({formula},{engine}),{both_null})"
    return f"IFERROR({formula}={engine},{both_null})"


def build_audit_workbook(
    plan: CompiledPlan, frame: Any, result: EvalResult, cover: Mapping[str, Any]
) -> Any:
    """The audit workbook of an evaluated run. `frame` is the input frame the engine saw,
    `result` its EvalResult, `cover` the lines of the cover sheet (hashes, approvals, …)."""
    from openpyxl import Workbook

    frame = frame.sort("employee_ref")
    values = result.frame.sort("employee_ref")
    input_columns = input_layout(plan, frame)
    steps = plan.display_order
    first_row, last_row = HEADER_ROW + 1, max(HEADER_ROW + 1, HEADER_ROW + frame.height)
    engine_start = len(input_columns) + len(steps) + 1
    check = engine_start + len(steps)
    excel = compile_plan(plan, input_columns, first_row, last_row, len(input_columns) + 1,
                         first_helper_column=check + 1)
    audit = AuditLayout(
        first_row=first_row,
        last_row=last_row,
        employee_ref=input_columns["employee_ref"],
        input_columns=dict(input_columns),
        formula_columns=dict(excel.step_columns),
        engine_columns={name: get_column_letter(engine_start + i) for i, name in enumerate(steps)},
        step_types={step.name: step.type.value for step in plan.steps},
        check_column=get_column_letter(check),
    )
    workbook = Workbook()
    _cover_sheet(workbook.active, plan, cover)
    sheet = workbook.create_sheet(SHEET)
    write_inputs(sheet, frame, input_columns)
    write_formulas(sheet, excel, frame.height)
    for name, letter in audit.engine_columns.items():
        sheet[f"{letter}{HEADER_ROW}"] = f"{name} (engine)"
        for offset, value in enumerate(values[name].to_list()):
            if value is not None:
                _write_value(sheet[f"{letter}{audit.first_row + offset}"], value)
    sheet[f"{audit.check_column}{HEADER_ROW}"] = CHECK_HEADER
    for row in range(audit.first_row, audit.first_row + frame.height):
        parts = [
            _agreement(f"{audit.formula_columns[n]}{row}", f"{audit.engine_columns[n]}{row}",
                       audit.step_types[n])
            for n in plan.display_order
        ]
        sheet[f"{audit.check_column}{row}"] = f"=AND({','.join(parts)})"
    _meta_sheet(workbook.create_sheet(META), plan, audit)
    return workbook


def _cover_sheet(sheet: Any, plan: CompiledPlan, cover: Mapping[str, Any]) -> None:
    sheet.title = COVER
    lines = {"plan": plan.document.name, "plan version": plan.document.version,
             "plan hash": plan.plan_hash, **cover}
    sheet["A1"] = "Paysheet audit workbook"
    for row, (key, value) in enumerate(lines.items(), start=3):
        sheet[f"A{row}"] = key
        sheet[f"B{row}"] = value if isinstance(value, int | str) else json.dumps(value)
    sheet.column_dimensions["A"].width = 24
    sheet.column_dimensions["B"].width = 80


def _meta_sheet(sheet: Any, plan: CompiledPlan, audit: AuditLayout) -> None:
    payload = json.dumps({
        "document": plan.document.model_dump(mode="json"),
        "layout": audit.__dict__,
    })
    for index in range(0, len(payload), META_CHUNK):
        sheet.cell(index // META_CHUNK + 1, 1, payload[index:index + META_CHUNK])
    sheet.sheet_state = "hidden"


# --- verification ----------------------------------------------------------------------------


@dataclass
class Verification:
    """What `verify_workbook` found: problems in row order, each naming its cell."""

    rows: int = 0
    steps: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _read_meta(grid: Mapping[int, Sequence[Any]]) -> tuple[CompiledPlan, AuditLayout]:
    from engine.plan import validate_document

    payload = "".join(str(row[0]) for _, row in sorted(grid.items()) if row and row[0])
    meta = json.loads(payload)
    return compile_document(validate_document(meta["document"])), AuditLayout(**meta["layout"])


def _grids(path: str | Path) -> tuple[dict[int, tuple[Any, ...]], dict[int, tuple[Any, ...]]]:
    """(Meta, Calc) as {row number: cell values}, formulas as their text."""
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True)
    try:
        if META not in workbook.sheetnames or SHEET not in workbook.sheetnames:
            raise ValueError("not a Paysheet audit workbook (no Meta or Calc sheet)")
        return tuple(  # type: ignore[return-value]
            {index: row for index, row in
             enumerate(workbook[name].iter_rows(values_only=True), start=1)}
            for name in (META, SHEET)
        )
    finally:
        workbook.close()


def verify_workbook(path: str | Path) -> Verification:
    """Check every formula cell (steps, helpers, check) against the backend's output for the
    stored plan, then recalculate every row with `formulas` (each column compiled once) and
    compare each step with the stored engine value to the cent."""
    from engine.backends.excel_recalc import RowModel

    meta, calc = _grids(path)
    plan, audit = _read_meta(meta)
    sheet = _Cells(calc)
    rows = list(range(audit.first_row, audit.last_row + 1))
    report = Verification(rows=len(rows), steps=len(plan.display_order))
    if rows == [audit.first_row] and not any(calc.get(audit.first_row, ())):
        report.rows = 0  # the workbook of a run without employees
        return report
    if any(sheet.value(audit.employee_ref, row) is None for row in rows):
        raise ValueError(f"{SHEET}: rows {audit.first_row}-{audit.last_row} must each hold "
                         "an employee_ref")
    expected = _expected_layout(plan, audit)
    changed = _changed_formulas(sheet, expected, plan, audit, rows)
    inputs = {letter: [sheet.value(letter, row) for row in rows]
              for letter in audit.input_columns.values()}
    computed = RowModel(expected).calculate(inputs)
    for index, row in enumerate(rows):
        report.problems += changed.get(row, [])
        report.problems += _disagreements(sheet, plan, audit, row, computed, index)
    return report


class _Cells:
    """Cell values of a read-only grid by column letter and row number."""

    def __init__(self, grid: Mapping[int, Sequence[Any]]) -> None:
        self.grid = grid

    def value(self, letter: str, row: int) -> Any:
        values = self.grid.get(row, ())
        index = _column_number(letter) - 1
        return values[index] if index < len(values) else None


def _expected_layout(plan: CompiledPlan, audit: AuditLayout) -> Any:
    first_step = min(audit.formula_columns.values(), key=_column_number)
    helpers = _column_number(audit.check_column) + 1
    return compile_plan(plan, audit.input_columns, audit.first_row, audit.last_row,
                        _column_number(first_step), first_helper_column=helpers)


def _changed_formulas(sheet: _Cells, expected: Any, plan: CompiledPlan, audit: AuditLayout,
                      rows: list[int]) -> dict[int, list[str]]:
    """Row → the formula cells that are not what the backend emits for the stored plan."""
    changed: dict[int, list[str]] = {}
    for row in rows:
        for column in expected.columns:
            if sheet.value(column.letter, row) != column.formula(row):
                changed.setdefault(row, []).append(
                    f"{SHEET}!{column.letter}{row}: formula of '{column.key}' was changed")
        if sheet.value(audit.check_column, row) != _check_formula(plan, audit, row):
            changed.setdefault(row, []).append(
                f"{SHEET}!{audit.check_column}{row}: the check formula was changed")
    return changed


def _check_formula(plan: CompiledPlan, audit: AuditLayout, row: int) -> str:
    parts = [
        _agreement(f"{audit.formula_columns[n]}{row}", f"{audit.engine_columns[n]}{row}",
                   audit.step_types[n])
        for n in plan.display_order
    ]
    return f"=AND({','.join(parts)})"


def _disagreements(sheet: _Cells, plan: CompiledPlan, audit: AuditLayout, row: int,
                   computed: Mapping[str, list[Any]], index: int) -> list[str]:
    from engine.backends.excel_recalc import is_error

    ref = sheet.value(audit.employee_ref, row)
    found = []
    for name in plan.display_order:
        letter = audit.formula_columns[name]
        got = computed[letter][index]
        got = None if got is None or is_error(got) else got
        stored_at = f"{audit.engine_columns[name]}{row}"
        stored = sheet.value(audit.engine_columns[name], row)
        if not agrees(stored, got, audit.step_types[name]):
            found.append(f"{SHEET}!{letter}{row} (employee {ref}, step '{name}'): workbook "
                         f"{got!r}, engine {stored!r} ({SHEET}!{stored_at})")
    return found


def _column_number(letters: str) -> int:
    number = 0
    for char in letters:
        number = number * 26 + ord(char) - 64
    return number


def agrees(stored: Any, got: Any, kind: str) -> bool:
    """Stored engine value vs recalculated value: decimals within a cent, others exactly.
    An empty text is stored as an empty cell (xlsx keeps no empty strings), as Excel's EXACT
    in the check column also sees it."""
    if kind == Type.TEXT.value and got == "" and stored in (None, ""):
        return True
    if stored is None or stored == "" or got is None:
        return (stored is None or stored == "") and got is None
    if kind == Type.DECIMAL.value:
        if isinstance(got, bool | str) or isinstance(stored, bool | str):
            return False
        return abs(Decimal(repr(float(got))) - Decimal(repr(float(stored)))) < TOLERANCE
    if kind == Type.BOOL.value:
        return isinstance(got, bool) and isinstance(stored, bool) and got is stored
    if kind == Type.DATE.value:
        if not isinstance(got, int | float) or isinstance(got, bool):
            return False
        stored_date = stored.date() if isinstance(stored, datetime) else stored
        return EXCEL_EPOCH + timedelta(days=int(got)) == stored_date
    return isinstance(got, str) and got == str(stored)
