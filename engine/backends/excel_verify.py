"""`paysheet verify-workbook`: prove an audit workbook is what Paysheet wrote, or name the cell
where it is not.

It recompiles the plan stored in the Meta sheet and checks every formula cell (steps, helpers,
check) against what the Excel backend emits (a formula replaced by a constant is caught), then
recalculates every row with `formulas` and compares each step with the stored engine value to
the cent (a changed input or a changed stored value is caught).

A workbook opened and saved again by a spreadsheet application is still the same workbook:
LibreOffice writes `FALSE` as `FALSE()`, Excel and LibreOffice may store a boolean constant as
the formula `=TRUE()`, prefix functions with `_xlfn.` and share formulas between cells
(openpyxl expands shared formulas back into each cell's own text). `normal_formula` and
`normal_value` bring those forms back to Paysheet's before comparing, and nothing else: any
other difference in a formula is reported.

Each workbook is checked against the formulas of the generator that wrote it: the Meta sheet
carries its `formula_version` (`engine.backends.excel.FORMULA_VERSIONS`); a workbook from
before the version was recorded is version 1, recognised by its layout (no `range` column).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.backends.excel import SHEET, compile_plan
from engine.backends.excel_audit import (
    META,
    AuditLayout,
    agrees,
    check_formula,
    recalculated,
)
from engine.plan import CompiledPlan
from engine.plan import compile_plan as compile_document

_STRING_OR_TOKEN = re.compile(r'("(?:[^"]|"")*")|\b(TRUE|FALSE)\(\)|_xlfn\.|\s+')
_BOOLEAN_FORMULA = {"=TRUE": True, "=TRUE()": True, "=FALSE": False, "=FALSE()": False}


def normal_formula(value: Any) -> Any:
    """A formula's text in Paysheet's spelling: `TRUE()`/`FALSE()` as `TRUE`/`FALSE`, no
    `_xlfn.` prefix, no spaces outside string literals. Other values are returned as they are."""
    if not isinstance(value, str) or not value.startswith("="):
        return value

    def keep(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return match.group(1)
        return match.group(2) or ""

    return _STRING_OR_TOKEN.sub(keep, value)


def normal_value(value: Any) -> Any:
    """A data cell's value: a boolean stored as a formula (`=TRUE()`) is the boolean."""
    if isinstance(value, str) and value.startswith("="):
        compact = value.replace(" ", "").upper()
        if compact in _BOOLEAN_FORMULA:
            return _BOOLEAN_FORMULA[compact]
        if compact == "=NA()":
            return "=NA()"
    return value


@dataclass
class Verification:
    """What `verify_workbook` found: problems in row order, each naming its cell."""

    rows: int = 0
    steps: int = 0
    problems: list[str] = field(default_factory=list)
    formula_version: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class _Meta:
    plan: CompiledPlan
    audit: AuditLayout
    formula_version: int


def formula_version_of(meta: Mapping[str, Any]) -> int:
    """The formula version a Meta payload was written with. Workbooks of the first generator
    recorded none; they are the ones without a `range` column (version 2 added both)."""
    if "formula_version" in meta:
        return meta["formula_version"]
    return 2 if meta["layout"].get("range_column") else 1


def _read_meta(grid: Mapping[int, Sequence[Any]]) -> _Meta:
    from engine.plan import validate_document

    payload = "".join(str(row[0]) for _, row in sorted(grid.items()) if row and row[0])
    meta = json.loads(payload)
    return _Meta(compile_document(validate_document(meta["document"])),
                 AuditLayout(**meta["layout"]), formula_version_of(meta))


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

    grid, calc = _grids(path)
    meta = _read_meta(grid)
    plan, audit = meta.plan, meta.audit
    sheet = _Cells(calc)
    rows = list(range(audit.first_row, audit.last_row + 1))
    report = Verification(rows=len(rows), steps=len(plan.display_order),
                          formula_version=meta.formula_version)
    if rows == [audit.first_row] and not any(calc.get(audit.first_row, ())):
        report.rows = 0  # the workbook of a run without employees
        return report
    if any(sheet.value(audit.employee_ref, row) is None for row in rows):
        raise ValueError(f"{SHEET}: rows {audit.first_row}-{audit.last_row} must each hold "
                         "an employee_ref")
    expected = _expected_layout(plan, audit, meta.formula_version)
    changed = _changed_formulas(sheet, expected, plan, audit, rows)
    inputs = {letter: [normal_value(sheet.value(letter, row)) for row in rows]
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


def _expected_layout(plan: CompiledPlan, audit: AuditLayout, version: int) -> Any:
    first_step = min(audit.formula_columns.values(), key=_column_number)
    helpers = _column_number(audit.range_column or audit.check_column) + 1
    return compile_plan(plan, audit.input_columns, audit.first_row, audit.last_row,
                        _column_number(first_step), first_helper_column=helpers,
                        formula_version=version)


def _changed_formulas(sheet: _Cells, expected: Any, plan: CompiledPlan, audit: AuditLayout,
                      rows: list[int]) -> dict[int, list[str]]:
    """Row → the formula cells that are not what the backend emits for the stored plan."""
    changed: dict[int, list[str]] = {}
    for row in rows:
        for column in expected.columns:
            if normal_formula(sheet.value(column.letter, row)) != \
                    normal_formula(column.formula(row)):
                changed.setdefault(row, []).append(
                    f"{SHEET}!{column.letter}{row}: formula of '{column.key}' was changed")
        if normal_formula(sheet.value(audit.check_column, row)) != \
                normal_formula(check_formula(plan, audit, row)):
            changed.setdefault(row, []).append(
                f"{SHEET}!{audit.check_column}{row}: the check formula was changed")
    return changed


def _disagreements(sheet: _Cells, plan: CompiledPlan, audit: AuditLayout, row: int,
                   computed: Mapping[str, list[Any]], index: int) -> list[str]:
    ref = sheet.value(audit.employee_ref, row)
    found = []
    for name in plan.display_order:
        letter = audit.formula_columns[name]
        got = recalculated(computed[letter][index])
        stored_at = f"{audit.engine_columns[name]}{row}"
        stored = normal_value(sheet.value(audit.engine_columns[name], row))
        if not agrees(stored, got, audit.step_types[name]):
            found.append(f"{SHEET}!{letter}{row} (employee {ref}, step '{name}'): workbook "
                         f"{got!r}, engine {stored!r} ({SHEET}!{stored_at})")
    return found


def _column_number(letters: str) -> int:
    number = 0
    for char in letters:
        number = number * 26 + ord(char) - 64
    return number
