"""Write the plan workbook: the blank template, or a plan exported into it.

Every sheet is protected (no password: the protection guides authors, it is not a security
boundary) with only the authoring cells unlocked; Type/Scope/Required have drop-down data
validation; the Status and Message columns, the plan id, status and hash are written by the
server (and the add-in) only. Values that must stay exact (parameter values, defaults,
expressions, dates) are written as text in text-formatted cells, so Excel never turns
`0.1000000001` into a binary float or `2025-01-01` into a serial number.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill, Protection
from openpyxl.workbook.protection import WorkbookProtection
from openpyxl.worksheet.datavalidation import DataValidation
from openpyxl.worksheet.worksheet import Worksheet

from engine.catalog import CATALOG, CATALOG_VERSION
from server.modules.workbooks.layout import FIRST_ROW, HEADER_ROW, Layout, Table, layout
from server.modules.workbooks.locate import locate_all
from server.modules.workbooks.sheets import OpenpyxlBook, write_statuses

HEADER_FILL = PatternFill("solid", fgColor="1F4E78")
HEADER_FONT = Font(bold=True, color="FFFFFF")
SERVER_FILL = PatternFill("solid", fgColor="EDEDED")
UNLOCKED = Protection(locked=False)
TEXT_FORMAT = "@"

HELP_LINES = (
    "Paysheet plan workbook",
    "",
    "Plan: the plan's name, dates, currency and payout step. Grey cells are written by the server.",
    "Inputs: one row per input column of the employee or fund data (key, type, scope, default).",
    "Parameters: plan-level constants (pool sizes, rates); part of the plan version.",
    "Steps: one row per step. Expression and Guard use the Paysheet DSL (see Functions).",
    "  Steps are evaluated in dependency order; Order is for display.",
    "  A step whose Guard is false takes its Default (0, false, \"\" or an ISO date).",
    "Tests: test vectors. Put input keys, 'expect <step>' and optionally 'Group' in the header "
    "row after Message; each row is evaluated on its own, rows with the same Group together.",
    "Functions: every function the DSL knows, with signature and example (read only).",
    "",
    "Sync with the Paysheet add-in (Home > Paysheet) or import the file on the server:",
    "  POST /api/v1/tenants/{tenantId}/bonus-plans/import",
    "Status and Message columns show each row's problems after a sync.",
    "Numbers carry at most 10 decimal places; money is never rounded to a float.",
)


def build_workbook(
    document: Mapping[str, Any] | None = None,
    meta: Mapping[str, Any] | None = None,
    diagnostics: Sequence[Mapping[str, Any]] | None = None,
) -> Workbook:
    """The template, filled from an ENGINE.md §1 `document` (JSON form) when given.

    `meta` may carry plan_id, status, plan_hash and version; `diagnostics` (the plans API's
    {step, field, line, column, code, message}) are written into the Status/Message cells."""
    spec = layout()
    workbook = Workbook()
    workbook.remove(workbook.active)
    document = document or {}
    _plan_sheet(workbook.create_sheet("Plan"), spec, document, meta or {})
    for name, items in (
        ("Inputs", document.get("inputs") or []),
        ("Parameters", document.get("parameters") or []),
        ("Steps", sorted(document.get("steps") or [], key=lambda s: (s["order"], s["name"]))),
    ):
        _table_sheet(workbook.create_sheet(name), spec, spec.tables[name], items)
    _tests_sheet(workbook.create_sheet("Tests"), spec)
    _functions_sheet(workbook.create_sheet("Functions"))
    _help_sheet(workbook.create_sheet("Help"))
    if diagnostics is not None:
        write_diagnostics(workbook, document, diagnostics)
    workbook.security = WorkbookProtection(lockStructure=True)
    return workbook


def workbook_bytes(workbook: Workbook) -> bytes:
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def plain_text(value: Any, dtype: str | None = None) -> str | None:
    """A plan value as the text an author would type (None stays None)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    if value == "" and dtype == "text":
        return '""'  # an empty text default, distinct from no default
    return str(value)


def _set_text(cell: Any, value: str | None) -> None:
    """A string cell, never a formula (an author's note may start with '=')."""
    cell.value = value
    if value is not None:
        cell.data_type = "s"


def _header(sheet: Worksheet, headers: Sequence[tuple[str, int]]) -> None:
    for index, (text, width) in enumerate(headers, start=1):
        cell = sheet.cell(HEADER_ROW, index, text)
        cell.fill, cell.font = HEADER_FILL, HEADER_FONT
        sheet.column_dimensions[cell.column_letter].width = width
    sheet.freeze_panes = sheet.cell(FIRST_ROW, 1)


def _protect(sheet: Worksheet) -> None:
    sheet.protection.sheet = True
    sheet.protection.formatColumns = False  # authors may widen columns


def _plan_sheet(sheet: Worksheet, spec: Layout, document: Mapping[str, Any],
                meta: Mapping[str, Any]) -> None:
    _header(sheet, [("Field", 18), ("Value", 48), ("About", 60)])
    values = dict(document) | {key: meta.get(key) for key in ("plan_id", "status", "plan_hash")}
    values["version"] = meta.get("version", document.get("version"))
    for field in spec.plan_fields:
        sheet.cell(field.row, 1, field.label).font = Font(bold=True)
        value_cell = sheet.cell(field.row, 2)
        value_cell.number_format = TEXT_FORMAT
        raw = values.get(field.key)
        if field.key == "version" and raw is not None:
            value_cell.value = int(raw)
        else:
            _set_text(value_cell, plain_text(raw))
        if field.editable:
            value_cell.protection = UNLOCKED
        else:
            value_cell.fill = SERVER_FILL
        sheet.cell(field.row, 3, field.about).alignment = Alignment(wrap_text=True)
    _protect(sheet)


def _table_sheet(sheet: Worksheet, spec: Layout, table: Table,
                 items: Sequence[Mapping[str, Any]]) -> None:
    _header(sheet, [(column.header, column.width) for column in table.columns])
    last = spec.last_row
    for column in table.columns:
        span = f"{column.letter}{FIRST_ROW}:{column.letter}{last}"
        if column.choices:
            validation = DataValidation(
                type="list", formula1='"' + ",".join(column.choices) + '"', allow_blank=True,
                showErrorMessage=True, errorTitle=column.header,
                error=f"{column.header} must be one of: {', '.join(column.choices)}",
            )
            validation.add(span)
            sheet.add_data_validation(validation)
        if column.key == "order":
            validation = DataValidation(type="whole", operator="between", formula1="-1000000",
                                        formula2="1000000", allow_blank=True,
                                        showErrorMessage=True, error="Order is a whole number")
            validation.add(span)
            sheet.add_data_validation(validation)
        for row in range(FIRST_ROW, last + 1):
            cell = sheet[f"{column.letter}{row}"]
            if column.editable:
                cell.protection = UNLOCKED
                if column.text:
                    cell.number_format = TEXT_FORMAT
            else:
                cell.fill = SERVER_FILL
    for offset, item in enumerate(items):
        _write_item(sheet, table, FIRST_ROW + offset, item)
    _protect(sheet)


def _write_item(sheet: Worksheet, table: Table, row: int, item: Mapping[str, Any]) -> None:
    dtype = item.get("dtype")
    for column in table.columns:
        if column.key not in item or not column.editable:
            continue
        value = item[column.key]
        cell = sheet[f"{column.letter}{row}"]
        if column.key == "order":
            cell.value = int(value)
        elif column.key == "required":
            cell.value = bool(value)
        else:
            _set_text(cell, plain_text(value, dtype if column.key == "default" else None))


def _tests_sheet(sheet: Worksheet, spec: Layout) -> None:
    fixed = spec.tests_fixed
    free = spec.tests_free_columns
    _header(sheet, [(c.header, c.width) for c in fixed] + [("", 14)] * free)
    first_free = len(fixed) + 1
    for index in range(first_free, first_free + free):
        header = sheet.cell(HEADER_ROW, index)
        header.protection = UNLOCKED
    for row in range(FIRST_ROW, FIRST_ROW + spec.tests_max_rows):
        for index, column in enumerate(fixed, start=1):
            cell = sheet.cell(row, index)
            if column.editable:
                cell.protection = UNLOCKED
            else:
                cell.fill = SERVER_FILL
        for index in range(first_free, first_free + free):
            cell = sheet.cell(row, index)
            cell.protection = UNLOCKED
            cell.number_format = TEXT_FORMAT
    _protect(sheet)


def _functions_sheet(sheet: Worksheet) -> None:
    _header(sheet, [("Function", 14), ("Signature", 44), ("Returns", 10), ("Meaning", 70),
                    ("Example", 44), ("Aggregate", 10)])
    for row, spec in enumerate(CATALOG.values(), start=FIRST_ROW):
        result = spec.result.value if spec.result else "same as arguments"
        for index, value in enumerate(
            (spec.name, spec.signature(), result, spec.doc, spec.example,
             "yes" if spec.aggregate else ""),
            start=1,
        ):
            _set_text(sheet.cell(row, index), value)
    sheet.cell(FIRST_ROW + len(CATALOG) + 1, 1, f"Catalog version {CATALOG_VERSION}")
    _protect(sheet)


def _help_sheet(sheet: Worksheet) -> None:
    sheet.column_dimensions["A"].width = 110
    for row, line in enumerate(HELP_LINES, start=1):
        cell = sheet.cell(row, 1, line)
        if row == 1:
            cell.font = Font(bold=True, size=14)
    _protect(sheet)


def write_diagnostics(workbook: Workbook, document: Mapping[str, Any],
                      diagnostics: Sequence[Mapping[str, Any]]) -> None:
    """Status/Message of every row (ok or error), and the offending cells highlighted."""
    write_statuses(OpenpyxlBook(workbook), document, locate_all(document, diagnostics))
