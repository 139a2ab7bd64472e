"""Build a workbook with the Excel backend, recalculate it with `formulas` (each formula column
compiled once, called per row: engine.backends.excel_recalc.RowModel), and compare every step
cell with the reference backend."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from openpyxl import load_workbook

from engine.backends import reference
from engine.backends.excel import SHEET, CalcWorkbook, build_workbook
from engine.backends.excel_recalc import RowModel, is_error
from engine.plan import CompiledPlan

EXCEL_EPOCH = date(1899, 12, 30)
CENT = Decimal("0.01")


def saved_inputs(plan: CompiledPlan, frame: pl.DataFrame, tmp: Path
                 ) -> tuple[CalcWorkbook, dict[str, list[Any]]]:
    """The built workbook and its input columns (letter → values in row order) as read back
    from the saved file, so the inputs are what a file holds."""
    built = build_workbook(plan, frame)
    path = tmp / "calc.xlsx"
    built.workbook.save(path)
    sheet = load_workbook(path)[SHEET]
    rows = [built.row_of(index) for index in range(len(built.employee_refs))]
    inputs = {letter: [sheet[f"{letter}{row}"].value for row in rows]
              for letter in built.input_columns.values()}
    return built, inputs


def excel_values(plan: CompiledPlan, frame: pl.DataFrame, tmp: Path) -> dict[str, list[Any]]:
    """Step name → recalculated values in the frame's employee_ref order (None for errors)."""
    built, inputs = saved_inputs(plan, frame, tmp)
    if not built.employee_refs:
        return {name: [] for name in built.layout.step_columns}
    computed = RowModel(built.layout).calculate(inputs)
    by_ref = {
        name: [None if is_error(v) else v for v in computed[letter]]
        for name, letter in built.layout.step_columns.items()
    }
    order = {ref: i for i, ref in enumerate(built.employee_refs)}
    wanted = [order[str(ref)] for ref in frame["employee_ref"].to_list()]
    return {name: [values[i] for i in wanted] for name, values in by_ref.items()}


def mismatches(
    plan: CompiledPlan,
    frame: pl.DataFrame,
    tmp: Path,
    actual: dict[str, list[Any]] | None = None,
) -> list[str]:
    """Every step cell where Excel and the reference disagree (decimals: by a cent or more).
    `actual` is the recalculated workbook (`excel_values`) when the caller has it already."""
    expected = reference.evaluate(plan, frame).frame
    actual = actual if actual is not None else excel_values(plan, frame, tmp)
    refs = expected["employee_ref"].to_list()
    problems = []
    for name, values in actual.items():
        for ref, want, got in zip(refs, expected[name].to_list(), values, strict=True):
            if not agrees(want, got):
                problems.append(f"{name} @ {ref}: engine {want!r}, excel {got!r}")
    return problems


def agrees(want: Any, got: Any) -> bool:
    if want is None or got is None:
        return want is None and got is None
    if isinstance(want, bool):
        return isinstance(got, bool | np.bool_) and bool(got) == want
    if isinstance(want, Decimal):
        return abs(Decimal(repr(float(got))) - want) < CENT
    if isinstance(want, date):
        return EXCEL_EPOCH + timedelta(days=int(got)) == want
    return got == want
