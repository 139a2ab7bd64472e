"""The plan workbook's cells behind a small protocol, so reading a plan and writing the
per-row Status/Message back run unchanged over openpyxl (the server's import and export, the
tests) and over xlwings (a running Excel: `paysheet excel push|pull`, desktop.py).

The writing follows the add-in's (`addin/src/workbook.js`): every used row of Inputs,
Parameters and Steps gets `ok` or `error` and its messages, unused rows are cleared, the
authoring cells' highlight is cleared and the offending cells highlighted, and the Plan sheet
gets the plan-level messages.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from openpyxl.styles import PatternFill
from openpyxl.utils import range_boundaries

from server.modules.workbooks.layout import FIRST_ROW, layout

ERROR_COLOR = "F8CBAD"
TABLES = ("Inputs", "Parameters", "Steps")


class SheetBook(Protocol):
    """What the plan-workbook code needs from a workbook."""

    def sheet_names(self) -> list[str]:
        """The names of the workbook's sheets."""
        ...

    def values(self, sheet: str, rows: int, columns: int) -> list[list[Any]]:
        """The values of the block A1 to (rows, columns), one list per row, each `columns`
        long (empty cells are None; a cell's value, never its formula)."""
        ...

    def write(self, sheet: str, row: int, column: int, block: Sequence[Sequence[Any]]) -> None:
        """Write `block` (rows of values) with its top-left cell at (row, column). Text is
        written as text, never as a formula; None empties the cell."""
        ...

    def fill(self, sheet: str, cells: str, color: str | None) -> None:
        """Fill a cell or range (`C5`, `A2:F501`) with an RGB hex colour, or clear it."""
        ...

    def unprotected(self, sheet: str) -> contextlib.AbstractContextManager[None]:
        """Lift the sheet's protection for the writes inside the block, then restore it."""
        ...


class OpenpyxlBook:
    """A SheetBook over an openpyxl workbook (read-only workbooks can only be read)."""

    def __init__(self, workbook: Any) -> None:
        self.workbook = workbook

    def sheet_names(self) -> list[str]:
        return list(self.workbook.sheetnames)

    def values(self, sheet: str, rows: int, columns: int) -> list[list[Any]]:
        found = [
            list(row)[:columns] + [None] * (columns - len(row))
            for row in self.workbook[sheet].iter_rows(
                min_row=1, max_row=rows, max_col=columns, values_only=True)
        ]
        return found + [[None] * columns for _ in range(rows - len(found))]

    def write(self, sheet: str, row: int, column: int, block: Sequence[Sequence[Any]]) -> None:
        target = self.workbook[sheet]
        for down, values in enumerate(block):
            for across, value in enumerate(values):
                cell = target.cell(row + down, column + across)
                if value is None and cell.value is None:
                    continue
                cell.value = value
                if isinstance(value, str):
                    cell.data_type = "s"  # text, even when it starts with '='

    def fill(self, sheet: str, cells: str, color: str | None) -> None:
        pattern = PatternFill("solid", fgColor=color) if color else PatternFill(fill_type=None)
        left, top, right, bottom = range_boundaries(cells)
        target = self.workbook[sheet]
        for row in range(top, bottom + 1):
            for column in range(left, right + 1):
                cell = target.cell(row, column)
                if color or cell.fill.fill_type is not None:
                    cell.fill = pattern

    @contextlib.contextmanager
    def unprotected(self, sheet: str) -> Iterator[None]:
        yield  # openpyxl writes regardless of protection, which it keeps


def _editable_letters(sheet: str) -> list[str]:
    return [c.letter for c in layout().tables[sheet].columns if c.editable]


def write_statuses(book: SheetBook, document: Mapping[str, Any],
                   located: Sequence[Mapping[str, Any]],
                   rows: Mapping[str, Sequence[int]] | None = None) -> None:
    """Status/Message of every row, offending cells highlighted, plan-level messages.

    `located` are diagnostics or cell errors with sheet, row, column and message (see
    locate.py); `rows` the sheet row of each document item (as read), else the rows the
    template writes."""
    spec = layout()
    by_row: dict[tuple[str, int], list[str]] = {}
    plan_messages: list[str] = []
    for item in located:
        sheet, row = item.get("sheet"), item.get("row")
        if sheet in TABLES and row is not None:
            by_row.setdefault((sheet, row), []).append(str(item["message"]))
        else:
            prefix = "" if sheet in (None, "Plan") else f"{item.get('cell') or sheet}: "
            plan_messages.append(prefix + str(item["message"]))
    for sheet in TABLES:
        part = sheet.lower()
        count = len(document.get(part) or [])
        used = set(rows[part]) if rows is not None and part in rows else set(
            range(FIRST_ROW, FIRST_ROW + count))
        block = []
        for row in range(FIRST_ROW, spec.last_row + 1):
            messages = by_row.get((sheet, row))
            if messages:
                block.append(["error", "; ".join(messages)])
            else:
                block.append(["ok" if row in used else None, None])
        table = spec.tables[sheet]
        status = table.column("status")
        with book.unprotected(sheet):
            for letter in _editable_letters(sheet):
                book.fill(sheet, f"{letter}{FIRST_ROW}:{letter}{spec.last_row}", None)
            book.write(sheet, FIRST_ROW, _number(status.letter), block)
            _highlight(book, sheet, located)
    _write_plan_messages(book, located, plan_messages)


def _write_plan_messages(book: SheetBook, located: Sequence[Mapping[str, Any]],
                         messages: list[str]) -> None:
    spec = layout()
    with book.unprotected("Plan"):
        for field in spec.plan_fields:
            if field.editable:
                book.fill("Plan", f"B{field.row}", None)
        _highlight(book, "Plan", located)
        row = spec.plan_field("message").row
        book.write("Plan", row, 2, [["; ".join(messages) or None]])


def _highlight(book: SheetBook, sheet: str, located: Sequence[Mapping[str, Any]]) -> None:
    for item in located:
        if item.get("sheet") == sheet and item.get("row") and item.get("column"):
            book.fill(sheet, f"{item['column']}{item['row']}", ERROR_COLOR)


def write_plan_meta(book: SheetBook, meta: Mapping[str, Any]) -> None:
    """Plan id, status, hash and version (the server-owned Plan cells) that `meta` holds."""
    spec = layout()
    with book.unprotected("Plan"):
        for key in ("plan_id", "status", "plan_hash", "version"):
            if key in meta:
                value = meta[key]
                book.write("Plan", spec.plan_field(key).row, 2,
                           [[value if value is None or key == "version" else str(value)]])


def _number(letter: str) -> int:
    return range_boundaries(f"{letter}1")[0]
