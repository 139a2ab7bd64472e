"""The frozen audit workbook (issue 7, finished in issue 17): a run's inputs, one real formula
column per step, the engine's stored values beside them, a check column per row and a cover.

Sheet `Calc`: inputs | step formulas | "<step> (engine)" values | check | range | helper
columns. A hidden sheet `Meta` holds the plan document, so `excel_verify.verify_workbook` can
recompile the plan and prove every formula is exactly what the Excel backend emits.

It is written with XlsxWriter because a frozen document must read as one without being
recalculated: every formula carries a cached value (the engine's result for a step, the
`formulas` recalculation for helpers and checks), so previews and `data_only` readers see
numbers. Text from users and data (plan and scenario names, text inputs and step values) is
always written as a string cell, never through a path that could turn `=…` into a formula.
Every sheet is protected (filters and sorting allowed), headers are bold and frozen, helper
columns grouped and hidden, and the number formats come from the plan (`excel_format`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from openpyxl.utils import get_column_letter

from engine.backends.base import EvalResult
from engine.backends.excel import (
    FORMULA_VERSION,
    HEADER_ROW,
    SHEET,
    ExcelPlan,
    compile_plan,
    input_layout,
)
from engine.backends.excel_format import (
    DATE,
    DECIMAL,
    MAX_DIGITS,
    RANGE_LIMIT,
    TEXT,
    out_of_range,
    row_range_flags,
    step_format,
)
from engine.dsl.ast import Type
from engine.plan import CompiledPlan

COVER = "Cover"
META = "Meta"
CHECK_HEADER = "check"
RANGE_HEADER = "range"
EXCEL_EPOCH = date(1899, 12, 30)
TOLERANCE = Decimal("0.01")
META_CHUNK = 30_000  # a cell holds at most 32,767 characters
RANGE_TEXT = (f"decimals below {RANGE_LIMIT:.0e} in magnitude; inputs and parameters with at "
              f"most {MAX_DIGITS} significant digits (docs/excel.md)")


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
    range_column: str | None = None


def agreement(formula: str, engine: str, kind: str) -> str:
    """True where the recalculated step and the stored engine value agree (null = error/empty)."""
    both_null = f'AND(ISERROR({formula}),{engine}="")'
    if kind == Type.DECIMAL.value:
        return f"IFERROR(ABS({formula}-{engine})<0.01,{both_null})"
    if kind == Type.TEXT.value:
        return f"IFERROR(EXACT({formula},{engine}),{both_null})"
    return f"IFERROR({formula}={engine},{both_null})"


def check_formula(plan: CompiledPlan, audit: AuditLayout, row: int) -> str:
    """The check column's formula of one row: every step agrees with its engine value."""
    parts = [agreement(f"{audit.formula_columns[n]}{row}", f"{audit.engine_columns[n]}{row}",
                       audit.step_types[n]) for n in plan.display_order]
    return f"=AND({','.join(parts)})"


def layout_of(plan: CompiledPlan, frame: Any) -> tuple[AuditLayout, ExcelPlan]:
    """The audit layout of `frame` (sorted by employee_ref) and its compiled formulas."""
    input_columns = input_layout(plan, frame)
    steps = plan.display_order
    first_row, last_row = HEADER_ROW + 1, max(HEADER_ROW + 1, HEADER_ROW + frame.height)
    engine_start = len(input_columns) + len(steps) + 1
    check = engine_start + len(steps)
    excel = compile_plan(plan, input_columns, first_row, last_row, len(input_columns) + 1,
                         first_helper_column=check + 2)
    audit = AuditLayout(
        first_row=first_row, last_row=last_row,
        employee_ref=input_columns["employee_ref"], input_columns=dict(input_columns),
        formula_columns=dict(excel.step_columns),
        engine_columns={name: get_column_letter(engine_start + i) for i, name in enumerate(steps)},
        step_types={step.name: step.type.value for step in plan.steps},
        check_column=get_column_letter(check), range_column=get_column_letter(check + 1),
    )
    return audit, excel


def cell_input(value: Any) -> Any:
    """An input as the workbook holds it (and openpyxl reads it back): null is `=NA()`."""
    if value is None:
        return "=NA()"
    return float(value) if isinstance(value, Decimal) else value


def build_audit_workbook(plan: CompiledPlan, frame: Any, result: EvalResult,
                         cover: Mapping[str, Any], created: datetime | None = None,
                         cached: bool = True) -> bytes:
    """The .xlsx bytes of the audit workbook of an evaluated run. `frame` is the input frame
    the engine saw, `result` its EvalResult, `cover` the lines of the cover sheet (hashes,
    approvals, …); `created` fixes the document date (same run, same bytes). `cached=False`
    leaves formulas without cached values (tests prove a spreadsheet recalculates them)."""
    import xlsxwriter

    frame = frame.sort("employee_ref")
    values = result.frame.sort("employee_ref")
    audit, excel = layout_of(plan, frame)
    inputs = {letter: [cell_input(v) for v in frame[name].to_list()]
              for name, letter in audit.input_columns.items()}
    engine = {name: values[name].to_list() for name in plan.display_order}
    computed = _recalculate(excel, inputs) if cached and frame.height else {}
    flags = _range_flags(plan, audit, frame, engine)
    out = io.BytesIO()
    book = xlsxwriter.Workbook(out, {"in_memory": True, "strings_to_formulas": False,
                                     "strings_to_numbers": False, "strings_to_urls": False})
    book.set_properties({"title": f"Paysheet audit workbook: {plan.document.name}",
                         "created": created or datetime(2000, 1, 1)})
    styles = _Styles(book)
    _cover_sheet(book.add_worksheet(COVER), styles, plan, cover, flags, audit)
    sheet = book.add_worksheet(SHEET, worksheet_class=_formula_sheet())
    writer = _CalcWriter(sheet, styles, plan, audit, excel)
    writer.headers()
    writer.inputs(frame, inputs)
    writer.formulas(frame.height, engine, computed)
    writer.engine_values(engine)
    writer.checks(frame.height, engine, computed, flags)
    writer.finish(frame.height)
    _meta_sheet(book.add_worksheet(META), plan, audit)
    book.close()
    return out.getvalue()


def _formula_sheet() -> type:
    """XlsxWriter's worksheet, writing formulas as given.

    Its `write_formula` rewrites every formula with ~60 regular expressions (future-function
    prefixes), which took 50 s for 500 rows, and would also rewrite a text literal such as
    `"SORT("` inside a formula. Paysheet's formulas use none of those functions, so the text
    is stored as the Excel backend emitted it (the verifier compares it character for
    character). Relies on XlsxWriter 3.x's cell table (pinned in pyproject.toml).
    """
    from xlsxwriter.worksheet import CellFormulaTuple, Worksheet

    class FormulaSheet(Worksheet):
        def _write_formula(self, row: int, col: int, formula: str, cell_format: Any = None,
                           value: Any = 0) -> int:
            if self._check_dimensions(row, col):
                return -1
            text = formula[1:] if formula.startswith("=") else formula
            self.table[row][col] = CellFormulaTuple(text, cell_format, value)
            return 0

    return FormulaSheet


def _recalculate(excel: ExcelPlan, inputs: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    from engine.backends.excel_recalc import RowModel

    return RowModel(excel).calculate(inputs)


def _range_flags(plan: CompiledPlan, audit: AuditLayout, frame: Any,
                 engine: Mapping[str, list[Any]]) -> dict[int, list[str]]:
    """Row number → the values of that row that leave the stated range."""
    names = [n for n in audit.input_columns if n not in ("employee_ref", "fund_ref")]
    columns = {name: frame[name].to_list() for name in names}
    flags: dict[int, list[str]] = {}
    for index in range(frame.height):
        found = row_range_flags({n: columns[n][index] for n in names},
                                {n: engine[n][index] for n in plan.display_order})
        if found:
            flags[audit.first_row + index] = found
    return flags


class _Styles:
    """The workbook's cell formats, created once."""

    def __init__(self, book: Any) -> None:
        self.book = book
        self.header = book.add_format({"bold": True, "bottom": 1, "text_wrap": False})
        self.title = book.add_format({"bold": True, "font_size": 14})
        self.bold = book.add_format({"bold": True})
        self.flag = book.add_format({"font_color": "#9C0006", "bg_color": "#FFC7CE"})
        self._formats: dict[str, Any] = {}

    def number(self, number_format: str) -> Any:
        if number_format not in self._formats:
            self._formats[number_format] = self.book.add_format({"num_format": number_format})
        return self._formats[number_format]


def _cover_sheet(sheet: Any, styles: _Styles, plan: CompiledPlan, cover: Mapping[str, Any],
                 flags: Mapping[int, list[str]], audit: AuditLayout) -> None:
    lines: dict[str, Any] = {"plan": plan.document.name, "plan version": plan.document.version,
                             "plan hash": plan.plan_hash, **cover,
                             "stated range": RANGE_TEXT}
    parameters = [f"{name}: {reason}" for name, (_, value) in plan.parameters.items()
                  if (reason := out_of_range(value, written=True))]
    outside = [f"{SHEET}!{audit.range_column}{row}" for row in flags]
    if outside:
        more = " …" if len(outside) > 20 else ""
        parameters.append(f"{len(outside)} row(s): {', '.join(outside[:20])}{more}")
    lines["outside the stated range"] = "; ".join(parameters) or "none"
    sheet.write_string(0, 0, "Paysheet audit workbook", styles.title)
    for row, (key, value) in enumerate(lines.items(), start=2):
        sheet.write_string(row, 0, key, styles.bold)
        if isinstance(value, int) and not isinstance(value, bool):
            sheet.write_number(row, 1, value)
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            style = styles.flag if key == "outside the stated range" and text != "none" else None
            sheet.write_string(row, 1, text, style)
    sheet.set_column(0, 0, 24)
    sheet.set_column(1, 1, 90)
    sheet.protect()


class _CalcWriter:
    """Writes the Calc sheet: the data cells, formulas with cached values, the check."""

    def __init__(self, sheet: Any, styles: _Styles, plan: CompiledPlan, audit: AuditLayout,
                 excel: ExcelPlan) -> None:
        self.sheet, self.styles, self.plan, self.audit, self.excel = (sheet, styles, plan,
                                                                      audit, excel)
        self.formats = {name: step_format(plan, name) for name in plan.display_order}

    def headers(self) -> None:
        names = {**{v: k for k, v in self.audit.input_columns.items()},
                 **{c.letter: c.key for c in self.excel.columns},
                 **{v: f"{k} (engine)" for k, v in self.audit.engine_columns.items()},
                 self.audit.check_column: CHECK_HEADER, self.audit.range_column: RANGE_HEADER}
        for letter, name in names.items():
            self.sheet.write_string(f"{letter}{HEADER_ROW}", name, self.styles.header)

    def inputs(self, frame: Any, inputs: Mapping[str, list[Any]]) -> None:
        for name, letter in self.audit.input_columns.items():
            kind = frame.schema[name]
            style = self.styles.number(DATE if kind.is_temporal() else
                                       DECIMAL if kind.is_numeric() else TEXT)
            column = _column_number(letter) - 1
            self.sheet.set_column(column, column, _width(name), style)
            for offset, value in enumerate(inputs[letter]):
                _write(self.sheet, self.audit.first_row - 1 + offset, column, value, style)

    def formulas(self, rows: int, engine: Mapping[str, list[Any]],
                 computed: Mapping[str, list[Any]]) -> None:
        for column in self.excel.columns:
            number = _column_number(column.letter) - 1
            style = self.styles.number(self.formats[column.key] if column.is_step else DECIMAL)
            options = {} if column.is_step else {"hidden": True, "level": 1}
            self.sheet.set_column(number, number, _width(column.key), style, options)
            for offset in range(rows):
                row = self.audit.first_row + offset
                value: Any = ""  # no cached value: the application must recalculate
                if computed and column.is_step:
                    value = _cached(engine[column.key][offset], computed[column.letter][offset])
                elif computed:
                    value = _excel(computed[column.letter][offset])
                self.sheet.write_formula(row - 1, number, column.formula(row), style, value)

    def engine_values(self, engine: Mapping[str, list[Any]]) -> None:
        for name, letter in self.audit.engine_columns.items():
            column = _column_number(letter) - 1
            style = self.styles.number(self.formats[name])
            self.sheet.set_column(column, column, _width(f"{name} (engine)"), style)
            for offset, value in enumerate(engine[name]):
                if value is not None:
                    _write(self.sheet, self.audit.first_row - 1 + offset, column, value, style)

    def checks(self, rows: int, engine: Mapping[str, list[Any]],
               computed: Mapping[str, list[Any]], flags: Mapping[int, list[str]]) -> None:
        check = _column_number(self.audit.check_column) - 1
        self.sheet.set_column(check, check, 8)
        self.sheet.set_column(check + 1, check + 1, 40)
        for offset in range(rows):
            row = self.audit.first_row + offset
            ok: Any = "" if not computed else all(
                agrees(_excel_stored(engine[n][offset]),
                       recalculated(computed[self.excel.step_columns[n]][offset]),
                       self.audit.step_types[n])
                for n in self.plan.display_order)
            self.sheet.write_formula(row - 1, check, check_formula(self.plan, self.audit, row),
                                     None, ok)
            if row in flags:
                self.sheet.write_string(row - 1, check + 1, "outside the stated range: "
                                        + "; ".join(flags[row]), self.styles.flag)

    def finish(self, rows: int) -> None:
        self.sheet.freeze_panes(HEADER_ROW, 1)
        self.sheet.autofilter(HEADER_ROW - 1, 0, HEADER_ROW - 1 + max(rows, 1),
                              _column_number(self.audit.range_column) - 1)
        self.sheet.outline_settings(True, False, True, False)
        self.sheet.set_row(HEADER_ROW - 1, None, self.styles.header)
        self.sheet.protect("", {"autofilter": True, "format_columns": True})


def _write(sheet: Any, row: int, column: int, value: Any, style: Any) -> None:
    """One data cell by its type: text is always a string cell, null an `=NA()` error."""
    if isinstance(value, str) and value == "=NA()":
        sheet.write_formula(row, column, "=NA()", style, "#N/A")
    elif isinstance(value, bool):
        sheet.write_boolean(row, column, value, style)
    elif isinstance(value, Decimal | int | float):
        sheet.write_number(row, column, float(value), style)
    elif isinstance(value, datetime | date):
        sheet.write_datetime(row, column, value, style)
    else:
        sheet.write_string(row, column, str(value), style)


def recalculated(value: Any) -> Any:
    """A `formulas` result as the engine sees it: an error value is null."""
    from engine.backends.excel_recalc import is_error

    return None if value is None or is_error(value) else value


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


def _excel(value: Any) -> Any:
    """A `formulas` result as a cached cell value (errors as their code, dates as serials)."""
    from engine.backends.excel_recalc import is_error

    if value is None or is_error(value):
        return str(value) if value is not None else "#N/A"
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, str | bool | int | float):
        return value
    return ""


def _excel_stored(value: Any) -> Any:
    """An engine value as the engine column holds it (as openpyxl reads it back)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day)
    return value


def _cached(engine: Any, computed: Any) -> Any:
    """A step's cached value: the engine's result (null: the formula's own error code)."""
    if engine is None:
        error = _excel(computed)
        return error if isinstance(error, str) and error.startswith("#") else "#N/A"
    if isinstance(engine, Decimal):
        return float(engine)
    if isinstance(engine, date):
        return float((engine - EXCEL_EPOCH).days)
    return engine


def _meta_sheet(sheet: Any, plan: CompiledPlan, audit: AuditLayout) -> None:
    payload = json.dumps({"formula_version": FORMULA_VERSION,
                          "document": plan.document.model_dump(mode="json"),
                          "layout": audit.__dict__})
    for index in range(0, len(payload), META_CHUNK):
        sheet.write_string(index // META_CHUNK, 0, payload[index:index + META_CHUNK])
    sheet.hide()
    sheet.protect()


def _width(header: str) -> float:
    return max(10, min(32, len(header) + 2))


def _column_number(letters: str) -> int:
    number = 0
    for char in letters:
        number = number * 26 + ord(char) - 64
    return number


