"""Read a filled plan workbook into the ENGINE.md §1 plan document.

The workbook is untrusted: the file size is capped by the caller, sheets are read in
openpyxl's read-only mode, rows beyond the template's range are refused, and every value is
checked where it stands, so each error names its sheet, row and column (`Steps!C12`).
Values Excel may have turned into numbers or dates are turned back into the text an author
typed (a float by its shortest repr, a date as ISO), never kept as floats.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from openpyxl import load_workbook
from openpyxl.utils.exceptions import InvalidFileException
from pydantic import ValidationError

from engine.plan import PlanDocument, coerce_value
from server.modules.workbooks.layout import FIRST_ROW, HEADER_ROW, Table, layout
from server.modules.workbooks.sheets import OpenpyxlBook, SheetBook

REQUIRED_SHEETS = ("Plan", "Inputs", "Parameters", "Steps")
MAX_UNPACKED_BYTES = 100 * 1024 * 1024
"""A template unpacks to well under 1 MB; far more is a zip bomb, refused before parsing."""
TRUE_WORDS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


@dataclass(frozen=True)
class CellError:
    sheet: str
    row: int | None
    column: str | None
    code: str
    message: str

    @property
    def cell(self) -> str:
        if self.row is None:
            return self.sheet
        return f"{self.sheet}!{self.column or ''}{self.row}"

    def as_dict(self) -> dict[str, Any]:
        return {"sheet": self.sheet, "row": self.row, "column": self.column, "cell": self.cell,
                "code": self.code, "message": self.message}


@dataclass
class WorkbookRead:
    """The document read (possibly incomplete), the errors, and the test vectors."""

    document: dict[str, Any]
    errors: list[CellError] = field(default_factory=list)
    tests: list[dict[str, Any]] = field(default_factory=list)
    rows: dict[str, list[int]] = field(default_factory=dict)
    """Sheet row of each item of document[part], in document order."""
    plan_id: str | None = None
    """The Plan sheet's plan id (written by the server on the first sync), if any."""

    @property
    def ok(self) -> bool:
        return not self.errors


class WorkbookUnreadable(ValueError):
    """Not an .xlsx file, or not a Paysheet plan workbook at all."""


def cell_text(value: Any) -> str | None:
    """A cell's value as the text the author typed; empty cells and blank text are None."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    text = str(value).strip()
    return text or None


def read_workbook(data: bytes) -> WorkbookRead:
    """Parse an uploaded workbook; raises WorkbookUnreadable if it is not one.

    Whatever a damaged file makes the ZIP, XML or openpyxl layers raise (a bad CRC, a
    truncated deflate stream, malformed or hostile XML in any part, a missing part) is
    the file's fault, so it becomes WorkbookUnreadable too (a 422), never a 500."""
    _check_unpacked_size(data)
    try:
        workbook = load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as error:
        raise WorkbookUnreadable(f"not a readable .xlsx workbook: {error}") from None
    except Exception as error:  # see the docstring
        raise _damaged(error) from None
    try:
        return read_book(OpenpyxlBook(workbook))
    except WorkbookUnreadable:
        raise
    except Exception as error:  # see the docstring
        raise _damaged(error) from None
    finally:
        workbook.close()


def _damaged(error: Exception) -> WorkbookUnreadable:
    detail = str(error).splitlines()[0][:200] if str(error) else "no detail"
    return WorkbookUnreadable(
        f"not a readable .xlsx workbook: it is damaged ({type(error).__name__}: {detail}); "
        "open it in Excel and save it again as .xlsx, or start from the template")


def read_book(book: SheetBook) -> WorkbookRead:
    """The plan document of a workbook behind the SheetBook protocol (an uploaded file, or
    the workbook open in Excel); raises WorkbookUnreadable if it is not a plan workbook."""
    names = book.sheet_names()
    missing = [name for name in REQUIRED_SHEETS if name not in names]
    if missing:
        raise WorkbookUnreadable(
            f"not a Paysheet plan workbook: missing sheet(s) {', '.join(missing)}"
        )
    grids = {name: _grid(book, name) for name in (*REQUIRED_SHEETS, "Tests") if name in names}
    result = read_grids(grids)
    result.plan_id = _value(grids["Plan"], layout().plan_field("plan_id").row, 1)
    return result


def _check_unpacked_size(data: bytes) -> None:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            unpacked = sum(info.file_size for info in archive.infolist())
    except zipfile.BadZipFile as error:
        raise WorkbookUnreadable(f"not a readable .xlsx workbook: {error}") from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise WorkbookUnreadable(
            f"not a plan workbook: it unpacks to {unpacked // (1024 * 1024)} MB"
        )


def _width(name: str) -> int:
    spec = layout()
    if name == "Plan":
        return 3
    if name == "Tests":
        return len(spec.tests_fixed) + spec.tests_free_columns
    return len(spec.tables[name].columns)


def _grid(book: SheetBook, name: str) -> dict[int, list[Any]]:
    """Non-empty rows (one past the template's last row, to detect overflow), only the
    template's columns: a hostile sheet's far-away cells are never read."""
    limit = layout().last_row + 1
    return {index: values
            for index, values in enumerate(book.values(name, limit, _width(name)), start=1)
            if any(cell_text(v) is not None for v in values)}


def read_grids(grids: dict[str, dict[int, list[Any]]]) -> WorkbookRead:
    """The document from sheet grids ({sheet: {row number: [values]}})."""
    result = WorkbookRead(document={})
    spec = layout()
    for name, rows in grids.items():
        beyond = [row for row in rows if row > spec.last_row]
        if beyond:
            result.errors.append(CellError(name, beyond[0], "A", "too_many_rows",
                                           f"{name} holds at most {spec.max_rows} rows"))
    document = _plan_fields(grids["Plan"], result)
    for part, check in (("inputs", _input), ("parameters", _parameter), ("steps", _step)):
        table = spec.tables[part.title()]
        items, numbers = [], []
        for row, item in _table(grids[table.sheet], table, result):
            check(item, row, result)
            items.append(item)
            numbers.append(row)
        document[part] = items
        result.rows[part] = numbers
    result.document = document
    if "Tests" in grids:
        result.tests = _tests(grids["Tests"], result)
    if result.ok:
        _model_errors(document, result)
    return result


def _value(rows: dict[int, list[Any]], row: int, index: int) -> str | None:
    values = rows.get(row, [])
    return cell_text(values[index]) if index < len(values) else None


def _plan_fields(rows: dict[int, list[Any]], result: WorkbookRead) -> dict[str, Any]:
    document: dict[str, Any] = {}
    for spec_field in layout().plan_fields:
        if not spec_field.editable and spec_field.key != "version":
            continue
        text = _value(rows, spec_field.row, 1)
        where = ("Plan", spec_field.row, "B")
        if spec_field.key == "version":
            document["version"] = _integer(text, where, result, "version") if text else 1
        elif spec_field.key in ("effective_from", "effective_to"):
            document[spec_field.key] = _date_text(text, where, result, spec_field.label)
        else:
            document[spec_field.key] = text
        if text is None and spec_field.key in ("name", "effective_from", "currency", "payout"):
            result.errors.append(CellError(*where, "missing", f"{spec_field.label} is empty"))
    return document


def _table(rows: dict[int, list[Any]], table: Table, result: WorkbookRead
           ) -> Iterable[tuple[int, dict[str, Any]]]:
    """(row, {key: text}) of every non-empty authoring row, after checking the headers."""
    header = rows.get(HEADER_ROW, [])
    for index, column in enumerate(table.columns):
        found = cell_text(header[index]) if index < len(header) else None
        if found != column.header:
            result.errors.append(CellError(table.sheet, HEADER_ROW, column.letter, "header",
                                           f"expected header '{column.header}', found {found!r}"))
    editable = [(i, c) for i, c in enumerate(table.columns) if c.editable]
    for row in sorted(rows):
        if row < FIRST_ROW or row > layout().last_row:
            continue
        item = {column.key: _value(rows, row, index) for index, column in editable}
        if any(v is not None for v in item.values()):
            yield row, item


def _error(result: WorkbookRead, table: Table, row: int, key: str, code: str,
           message: str) -> None:
    result.errors.append(CellError(table.sheet, row, table.column(key).letter, code, message))


def _choice(item: dict[str, Any], key: str, table: Table, row: int, result: WorkbookRead,
            default: str | None = None) -> str | None:
    column = table.column(key)
    value = item.get(key)
    if value is None:
        if default is None:
            _error(result, table, row, key, "missing", f"{column.header} is empty")
        return default
    if value.lower() not in column.choices and value.upper() not in column.choices:
        _error(result, table, row, key, "invalid_value",
               f"{column.header} must be one of {', '.join(column.choices)}, got {value!r}")
        return None
    return value.lower()


def _typed_text(dtype: str | None, text: str | None, table: Table, row: int, key: str,
                result: WorkbookRead) -> Any:
    """A default/value as document JSON (text), checked against its dtype."""
    if text is None or dtype is None:
        return None
    if dtype == "text" and text == '""':
        return ""
    try:
        coerce_value(dtype, text)
    except ValueError as error:
        _error(result, table, row, key, "invalid_value", f"{table.column(key).header}: {error}")
    return text


def _input(item: dict[str, Any], row: int, result: WorkbookRead) -> None:
    table = layout().tables["Inputs"]
    if item["key"] is None:
        _error(result, table, row, "key", "missing", "Key is empty")
    item["dtype"] = _choice(item, "dtype", table, row, result)
    item["scope"] = _choice(item, "scope", table, row, result, default="employee")
    required = item.get("required")
    if required is None:
        item["required"] = True
    elif required.lower() in TRUE_WORDS:
        item["required"] = TRUE_WORDS[required.lower()]
    else:
        _error(result, table, row, "required", "invalid_value",
               f"Required must be TRUE or FALSE, got {required!r}")
    item["default"] = _typed_text(item["dtype"], item.get("default"), table, row, "default",
                                  result)


def _parameter(item: dict[str, Any], row: int, result: WorkbookRead) -> None:
    table = layout().tables["Parameters"]
    if item["key"] is None:
        _error(result, table, row, "key", "missing", "Key is empty")
    item["dtype"] = _choice(item, "dtype", table, row, result)
    if item.get("value") is None:
        _error(result, table, row, "value", "missing", "Value is empty")
    item["value"] = _typed_text(item["dtype"], item.get("value"), table, row, "value", result)


def _step(item: dict[str, Any], row: int, result: WorkbookRead) -> None:
    table = layout().tables["Steps"]
    for key in ("name", "expr"):
        if item.get(key) is None:
            _error(result, table, row, key, "missing", f"{table.column(key).header} is empty")
    order = item.get("order")
    if order is None:
        _error(result, table, row, "order", "missing", "Order is empty")
    else:
        item["order"] = _integer(order, ("Steps", row, table.column("order").letter), result,
                                 "Order")
    item["notes"] = item.get("notes") or ""


def _integer(text: str | None, where: tuple[str, int, str], result: WorkbookRead,
             label: str) -> int | None:
    try:
        return int(str(text))
    except ValueError:
        result.errors.append(CellError(*where, "invalid_value",
                                       f"{label} must be a whole number, got {text!r}"))
        return None


def _date_text(text: str | None, where: tuple[str, int, str], result: WorkbookRead,
               label: str) -> str | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        result.errors.append(CellError(*where, "invalid_value",
                                       f"{label} must be an ISO date like 2025-01-31, "
                                       f"got {text!r}"))
        return None


GROUP_TITLE = "Group"
"""The Tests header whose column puts rows into one population (the add-in's vectors.js)."""


def _tests(rows: dict[int, list[Any]], result: WorkbookRead) -> list[dict[str, Any]]:
    """Test vectors: {row, case, inputs {key: text}, expected {step: text}, group}."""
    spec = layout()
    fixed = len(spec.tests_fixed)
    header = [cell_text(v) for v in rows.get(HEADER_ROW, [])][fixed:]
    vectors = []
    for row in sorted(r for r in rows if r >= FIRST_ROW):
        values = rows[row]
        inputs, expected, group = {}, {}, None
        for offset, title in enumerate(header):
            text = cell_text(values[fixed + offset]) if fixed + offset < len(values) else None
            if title is None or text is None:
                continue
            if title == GROUP_TITLE:
                group = text
            elif title.lower().startswith("expect "):
                expected[title[7:].strip()] = text
            else:
                inputs[title] = text
        if inputs or expected:
            case = cell_text(values[0]) if values else None
            vectors.append({"row": row, "case": case or f"row {row}", "inputs": inputs,
                            "expected": expected, "group": group})
    return vectors


def _model_errors(document: dict[str, Any], result: WorkbookRead) -> None:
    """Anything the engine's document model still refuses, located by its field path."""
    try:
        PlanDocument.model_validate(document)
    except ValidationError as error:
        for problem in error.errors():
            result.errors.append(locate_field(problem["loc"], problem["msg"], result.rows))


def locate_field(loc: Sequence[Any], message: str, rows: Mapping[str, Sequence[int]]
                 ) -> CellError:
    """A document field path (`("steps", 3, "expr")`, as pydantic and the API's 422 errors
    give it) as the workbook cell it came from."""
    spec = layout()
    part = str(loc[0]) if loc else ""
    sheet = {"inputs": "Inputs", "parameters": "Parameters", "steps": "Steps"}.get(part)
    if sheet and len(loc) > 1 and isinstance(loc[1], int):
        table = spec.tables[sheet]
        key = str(loc[2]) if len(loc) > 2 else table.columns[0].key
        keys = [c.key for c in table.columns]
        column = table.column(key).letter if key in keys else "A"
        numbers = rows.get(part, [])
        row = numbers[loc[1]] if loc[1] < len(numbers) else None
        return CellError(sheet, row, column, "invalid_value", message)
    if part in {f.key for f in spec.plan_fields}:
        return CellError("Plan", spec.plan_field(part).row, "B", "invalid_value", message)
    return CellError("Plan", None, None, "invalid_value", f"{part or 'plan'}: {message}")
