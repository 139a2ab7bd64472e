"""Spreadsheet workbooks (XLSX/XLSM, XLSB, XLS, ODS): recognised, checked, read with calamine.

Cells are read by python-calamine (Rust), which holds one sheet's valued cells in memory
(about 85 bytes a cell), so the limits below are checked BEFORE calamine sees a sheet:
- every XML part of a zipped workbook is inflated as a stream and counted (never trusting
  the sizes the archive declares): a sheet over `MAX_SHEET_XML_BYTES` is refused after at
  most that many bytes, which bounds time and memory for ZIP bombs and sheets formatted
  down to row 1,048,576 without a `<dimension>` element;
- valued cells (`<v>`, inline strings) over `MAX_CELLS` and columns over `MAX_COLUMNS` are
  refused naming the limit; an XML part declaring a DTD (entities: billion laughs) too;
- formula cells without a saved value are found on the way (calamine reads them as empty,
  which would look like missing data).
"""

from __future__ import annotations

import html
import re
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

MAX_SHEET_XML_BYTES = 256 * 1024 * 1024
MAX_PART_BYTES = 256 * 1024 * 1024
MAX_CELLS = 3_000_000
MAX_COLUMNS = 1_000
MAX_XLS_BYTES = 64 * 1024 * 1024
MAX_XLSB_SHEET_BYTES = MAX_CELLS * 16
CHUNK = 4 * 1024 * 1024
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
WORKBOOK_FORMATS = ("xlsx", "xlsb", "xls", "ods")
SHOWN_REFS = 5

_ROW_REF = re.compile(rb'<row\b[^>]*?\br="(\d+)"')
_CELL_COLUMN = re.compile(rb'<c\b[^>]*?\br="([A-Z]{1,3})\d+"')
_CELL_REF = re.compile(rb'\br="([A-Z]{1,3}\d+)"')
_SHEET_ENTRY = re.compile(r'<sheet\b([^>]*)/?>')
_ATTR = re.compile(r'([\w:]+)="([^"]*)"')
_REL = re.compile(r'<Relationship\b([^>]*)/?>')


class WorkbookRejected(ValueError):
    """The workbook cannot be read; `code` is stable, the message says what to do in Excel."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


PASSWORD = ("the workbook is password-protected (encrypted), so it cannot be read; in Excel "
            "open it, choose File → Info → Protect Workbook → Encrypt with Password, clear the "
            "password, save, and upload the file again")


@dataclass
class SheetScan:
    """What streaming one sheet's XML found (zipped formats; zeros when not scanned)."""

    xml_bytes: int = 0
    cells: int = 0
    rows: int = 0
    columns: int = 0
    formulas_without_value: list[str] = field(default_factory=list)
    formulas_without_value_count: int = 0


def column_number(letters: bytes | str) -> int:
    """1-based column number of spreadsheet letters: A → 1, AA → 27."""
    number = 0
    for char in letters if isinstance(letters, str) else letters.decode():
        number = number * 26 + ord(char) - 64
    return number


def workbook_format(path: Path, head: bytes) -> str | None:
    """xlsx, xlsb, ods or xls for a workbook, None for anything else (text, probably).

    Raises WorkbookRejected for an encrypted workbook and a ZIP that is no workbook."""
    if head.startswith(OLE_MAGIC):
        return _ole_format(path)
    if not head.startswith(b"PK\x03\x04"):
        return None
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "xl/workbook.xml" in names:
                return "xlsx"
            if "xl/workbook.bin" in names:
                return "xlsb"
            if "content.xml" in names and b"opendocument.spreadsheet" in _small(archive,
                                                                                   "mimetype"):
                return "ods"
    except zipfile.BadZipFile:
        raise WorkbookRejected("zip", "the file is a damaged ZIP archive, not a readable "
                               "workbook; save it again from Excel as .xlsx") from None
    raise WorkbookRejected("zip", "the file is a ZIP archive, not a CSV file or a workbook "
                           "(.xlsx, .xlsb, .xls, .ods)")


def _small(archive: zipfile.ZipFile, name: str) -> bytes:
    try:
        with archive.open(name) as member:
            return member.read(256)
    except KeyError:
        return b""


def _ole_format(path: Path) -> str:
    import olefile

    try:
        with olefile.OleFileIO(str(path)) as ole:
            streams = {"/".join(entry) for entry in ole.listdir()}
    except (OSError, ValueError, IndexError):  # olefile's errors for damaged containers
        raise WorkbookRejected("xls", "the file looks like an old Office file but is "
                               "damaged; save it again from Excel as .xlsx") from None
    if "EncryptedPackage" in streams or "EncryptionInfo" in streams:
        raise WorkbookRejected("password", PASSWORD)
    if "Workbook" in streams or "Book" in streams:
        if path.stat().st_size > MAX_XLS_BYTES:
            raise WorkbookRejected("too_large", f"the .xls workbook is over the limit of "
                                   f"{MAX_XLS_BYTES // 2**20} MB for this old format; save "
                                   "it as .xlsx (or CSV UTF-8) in Excel and upload that")
        return "xls"
    raise WorkbookRejected("binary", "the file is an Office document but not a workbook; "
                           "upload a CSV or an Excel workbook")


def check_workbook(path: Path, fmt: str) -> dict[str, SheetScan]:
    """Stream every XML/binary part of a zipped workbook under the limits; the scans of
    the XLSX sheets by sheet name (empty for other formats)."""
    if fmt == "xls":
        return {}
    with zipfile.ZipFile(path) as archive:
        sheet_parts = _sheet_parts(archive) if fmt == "xlsx" else {}
        by_part = {part: name for name, part in sheet_parts.items()}
        scans: dict[str, SheetScan] = {}
        for info in archive.infolist():
            if info.is_dir():
                continue
            sheet = by_part.get(info.filename)
            scan = _stream_part(archive, info, sheet)
            if sheet is not None:
                scans[sheet] = scan
        return scans


def _sheet_parts(archive: zipfile.ZipFile) -> dict[str, str]:
    """Sheet name → its XML part, from xl/workbook.xml and its relationships."""
    workbook = _read_part(archive, "xl/workbook.xml")
    rels = _read_part(archive, "xl/_rels/workbook.xml.rels")
    targets = {}
    for match in _REL.finditer(rels):
        attrs = dict(_ATTR.findall(match.group(1)))
        target = attrs.get("Target", "")
        targets[attrs.get("Id")] = (target.lstrip("/") if target.startswith("/")
                                    else "xl/" + target)
    parts = {}
    for match in _SHEET_ENTRY.finditer(workbook):
        attrs = dict(_ATTR.findall(match.group(1)))
        name = html.unescape(attrs.get("name", ""))
        part = targets.get(attrs.get("r:id"))
        if name and part:
            parts[name] = part
    return parts


def _read_part(archive: zipfile.ZipFile, name: str) -> str:
    try:
        info = archive.getinfo(name)
    except KeyError:
        return ""
    data = b"".join(_inflate(archive, info, MAX_PART_BYTES))
    _refuse_dtd(data, name)
    return data.decode("utf-8", "replace")


def _inflate(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> Iterator[bytes]:
    """The part's bytes in chunks, refused once more than `limit` came out."""
    total = 0
    with archive.open(info) as member:
        while chunk := member.read(CHUNK):
            total += len(chunk)
            if total > limit:
                raise WorkbookRejected("too_large", _too_large(info.filename, limit))
            yield chunk


def _too_large(part: str, limit: int) -> str:
    return (f"the workbook part {part} holds more than {limit // 2**20} MB once unpacked "
            f"(limit {limit // 2**20} MB); a sheet formatted down to its last row often does "
            "this: in Excel select the empty rows below your data, delete them (Home → "
            "Delete → Delete Sheet Rows), do the same for empty columns, save and upload again")


def _refuse_dtd(data: bytes, part: str) -> None:
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise WorkbookRejected("xml", f"the workbook part {part} declares XML entities "
                               "(a DTD), which Excel never writes; the file was not read")


def _stream_part(archive: zipfile.ZipFile, info: zipfile.ZipInfo, sheet: str | None
                 ) -> SheetScan:
    limit = MAX_SHEET_XML_BYTES if sheet is not None else MAX_PART_BYTES
    if info.filename.startswith("xl/worksheets/") and info.filename.endswith(".bin"):
        limit = MAX_XLSB_SHEET_BYTES
    scan = SheetScan()
    xml = info.filename.endswith((".xml", ".rels", ".vml"))
    carry = b""
    for chunk in _inflate(archive, info, limit):
        if xml and not scan.xml_bytes:
            _refuse_dtd(chunk[:65536], info.filename)
        scan.xml_bytes += len(chunk)
        if not xml:
            continue
        data = carry + chunk
        cut = data.rfind(b"</row>") + 6 if sheet is not None else len(data)
        if cut < 6:
            carry = data
            if len(carry) > 4 * CHUNK:
                raise WorkbookRejected("too_large", f"sheet '{sheet}' has a row of more than "
                                       f"{4 * CHUNK // 2**20} MB of XML; it cannot be read")
            continue
        block, carry = data[:cut], data[cut:]
        if sheet is not None:
            _scan_block(block, scan, sheet)
    if sheet is not None and carry:
        _scan_block(carry, scan, sheet)
    return scan


def _scan_block(block: bytes, scan: SheetScan, sheet: str) -> None:
    scan.cells += block.count(b"<v>") + block.count(b"<v ") + block.count(b"<is>")
    rows = _ROW_REF.findall(block)
    scan.rows = max(scan.rows + block.count(b"<row"), int(rows[-1]) if rows else 0)
    letters = set(_CELL_COLUMN.findall(block))
    if letters:
        scan.columns = max(scan.columns, max(column_number(x) for x in letters))
    if scan.cells > MAX_CELLS:
        raise WorkbookRejected("too_many_cells", (
            f"sheet '{sheet}' has more than {MAX_CELLS:,} filled cells (limit {MAX_CELLS:,}); "
            "split it into several files, or remove the columns the plan does not need"))
    if scan.columns > MAX_COLUMNS:
        raise WorkbookRejected("too_many_columns", (
            f"sheet '{sheet}' uses column {scan.columns:,} (limit {MAX_COLUMNS:,} columns); "
            "in Excel delete the empty columns to the right of your data, save and upload "
            "again"))
    if b"<f" in block:
        for piece in block.split(b"<c ")[1:]:
            end = piece.find(b"</c>")
            cell = piece if end < 0 else piece[:end]
            if (b"<f>" in cell or b"<f " in cell) and (
                    b"<v" not in cell or b"<v></v>" in cell or b"<v/>" in cell):
                scan.formulas_without_value_count += 1
                if len(scan.formulas_without_value) < SHOWN_REFS:
                    ref = _CELL_REF.search(cell)
                    scan.formulas_without_value.append(ref.group(1).decode() if ref else "?")


def formula_message(sheet: str, scan: SheetScan) -> str:
    refs = ", ".join(scan.formulas_without_value)
    return (f"sheet '{sheet}' has {scan.formulas_without_value_count} formula cell(s) without a "
            f"saved value (e.g. {refs}); the file was written by a program that does not "
            "calculate. Open it in Excel, let it calculate (Formulas → Calculate Now), save, "
            "and upload again; or paste the cells as values (Paste Special → Values)")


@dataclass(frozen=True)
class SheetInfo:
    name: str
    visible: bool


def open_workbook(path: Path) -> Any:
    """A calamine workbook; password and damage errors become WorkbookRejected."""
    import python_calamine as calamine

    try:
        return calamine.CalamineWorkbook.from_path(str(path))
    except calamine.PasswordError:
        raise WorkbookRejected("password", PASSWORD) from None
    except Exception as error:  # calamine raises several types for damaged files
        raise WorkbookRejected("workbook", f"the workbook cannot be read ({error}); open it "
                               "in Excel, save it again as .xlsx and upload that") from None


def sheets(workbook: Any) -> list[SheetInfo]:
    """Worksheets (not chart sheets) in workbook order."""
    out = []
    for meta in workbook.sheets_metadata:
        if "Chart" in str(meta.typ):
            continue
        out.append(SheetInfo(meta.name, str(meta.visible).endswith("Visible")))
    return out


def sheet_rows(workbook: Any, name: str) -> Iterator[list[Any]]:
    """The sheet's rows from row 1 (calamine starts at the first used row: blank rows above
    are put back so row numbers match the spreadsheet)."""
    import python_calamine as calamine

    try:
        sheet = workbook.get_sheet_by_name(name)
    except calamine.PasswordError:
        raise WorkbookRejected("password", PASSWORD) from None
    except Exception as error:
        raise WorkbookRejected("workbook", f"sheet '{name}' cannot be read ({error})") from None
    if sheet.height * max(sheet.width, 1) > MAX_CELLS * 4:
        raise WorkbookRejected("too_many_cells", (
            f"sheet '{name}' spans {sheet.height:,} rows by {sheet.width:,} columns (limit "
            f"{MAX_CELLS * 4:,} cells); delete the empty rows and columns around the data"))
    first_row, first_column = sheet.start or (0, 0)
    for _ in range(first_row):
        yield []
    for values in sheet.iter_rows():
        yield [None] * first_column + list(values) if first_column else list(values)


class TimeOfDay(ValueError):
    """A date cell holding a time of day (not midnight)."""


def cell_text(value: Any) -> str:
    """A workbook cell as the text a CSV export would hold: dates as ISO (a date-time at
    midnight as its date), numbers in plain decimal notation without float noise."""
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat(" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        text = format(Decimal(repr(value)), "f")
        return text.rstrip("0").rstrip(".") if "." in text else text
    return str(value)


def release_memory() -> None:
    """Hand the memory a sheet used back to the system (glibc keeps freed blocks of a
    process otherwise, so a server that read one large workbook would stay large)."""
    import contextlib
    import ctypes

    with contextlib.suppress(OSError, AttributeError):  # not glibc: nothing to trim
        ctypes.CDLL("libc.so.6").malloc_trim(0)
