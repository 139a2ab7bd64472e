"""Reading uploaded files: format, encoding, delimiter and header-row detection, records.

CSV is read with the standard `csv` module in streaming fashion (one record at a time), so a
file of any size needs constant memory; XLSX is read with openpyxl in read-only mode. Rows
are numbered as a spreadsheet shows them: the first record of the file is row 1, blank rows
count, a quoted cell spanning two lines is still one row.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import zipfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import Any, Literal

SAMPLE_BYTES = 256 * 1024
HEADER_SCAN_ROWS = 20
DELIMITERS = (",", ";", "\t")
BAD_TEXT = "\ufffd"
csv.field_size_limit(16 * 1024 * 1024)

_NUMBERISH = re.compile(r"^[+-]?[\d.,]+%?$")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f]")


class FileRejected(ValueError):
    """The file cannot be used at all; `code` is stable, the message says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class FileFormat:
    """How to read one file; stored in `uploads.metadata["format"]`."""

    format: Literal["csv", "xlsx"]
    header_row: int
    columns: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    complete_sample: bool = False
    notes: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileFormat:
        return cls(**data)


def column_letter(index: int) -> str:
    """Spreadsheet column letters for a 0-based index: 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _is_xlsx(head: bytes, path: Path) -> bool:
    if not head.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(path) as archive:
            return "xl/workbook.xml" in archive.namelist()
    except zipfile.BadZipFile:
        return False


def _encoding(head: bytes, complete: bool) -> str:
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise FileRejected("encoding", "the file is UTF-16 text; save it as CSV UTF-8")
    if b"\x00" in head or len(_CONTROL.findall(head)) > max(8, len(head) // 100):
        raise FileRejected(
            "binary", "the file is not text (binary content); upload a CSV or XLSX file")
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
        return "utf-8"
    except UnicodeDecodeError:
        return "latin-1"


def _sample_text(head: bytes, encoding: str, complete: bool) -> str:
    text = head.decode(encoding, errors="replace")
    if not complete and "\n" in text:
        text = text[: text.rindex("\n") + 1]  # drop the partial last line
    return text


def _delimiter(text: str) -> str:
    best, best_key = ",", (0.0, 0)
    for candidate in DELIMITERS:
        widths = [len(r) for r in csv.reader(io.StringIO(text), delimiter=candidate) if r]
        if not widths:
            continue
        width, count = Counter(widths).most_common(1)[0]
        if width < 2:
            continue
        key = (count / len(widths), width)
        if key > best_key:
            best, best_key = candidate, key
    return best


def _looks_like_header(cells: list[str], width: int) -> bool:
    filled = [c.strip() for c in cells if c.strip()]
    if len(filled) < max(1, round(width * 0.8)):
        return False
    texty = [c for c in filled if not _NUMBERISH.match(c)]
    return len(texty) == len(filled) and len(set(filled)) == len(filled)


def detect_header_row(rows: list[list[str]]) -> int:
    """0-based index of the header among the first rows: the first row that is as wide as
    the data, all text (no numbers) and has no repeated names; else the first non-blank."""
    widths = [len([c for c in r if c.strip()]) for r in rows]
    nonblank = [w for w in widths if w]
    if not nonblank:
        return 0
    width = Counter(nonblank).most_common(1)[0][0]
    for index, row in enumerate(rows):
        if _looks_like_header(row, width):
            return index
    return next(i for i, w in enumerate(widths) if w)


def header_names(cells: list[str]) -> list[str]:
    """Trimmed names; a blank becomes `Column C`, a repeat gets ` (2)`, ` (3)`..."""
    names: list[str] = []
    seen: Counter[str] = Counter()
    for index, cell in enumerate(cells):
        name = cell.strip() or f"Column {column_letter(index)}"
        seen[name.lower()] += 1
        if seen[name.lower()] > 1:
            name = f"{name} ({seen[name.lower()]})"
        names.append(name)
    return names


def sniff(path: Path, sheet: str | None = None) -> FileFormat:
    """Work out how to read `path`; raises FileRejected with a clear reason."""
    size = path.stat().st_size
    if size == 0:
        raise FileRejected("empty", "the file is empty")
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    if _is_xlsx(head, path):
        return _sniff_xlsx(path, sheet)
    if head.startswith(b"PK\x03\x04"):
        raise FileRejected("binary", "the file is a ZIP archive, not a CSV or XLSX workbook")
    complete = size <= SAMPLE_BYTES
    encoding = _encoding(head, complete)
    text = _sample_text(head, encoding, complete)
    delimiter = _delimiter(text)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))[:HEADER_SCAN_ROWS]
    return _finish(rows, complete, FileFormat("csv", 0, [], encoding, delimiter))


def _finish(rows: list[list[str]], complete: bool, fmt: FileFormat) -> FileFormat:
    if not any(any(c.strip() for c in r) for r in rows):
        raise FileRejected("empty", "the file has no content (only blank rows)")
    header = detect_header_row(rows)
    fmt.header_row = header + 1
    fmt.columns = header_names(rows[header])
    fmt.complete_sample = complete
    data_rows = [r for r in rows[header + 1:] if any(c.strip() for c in r)]
    if complete and not data_rows:
        raise FileRejected(
            "header_only", f"the file has a header row (row {fmt.header_row}) but no data rows")
    if header:
        fmt.notes.append(f"rows 1-{header} above the header row were skipped")
    return fmt


def _open_xlsx(path: Path) -> Any:
    from openpyxl import load_workbook

    try:
        # A file object, not the path: stored uploads end in .bin and openpyxl checks names.
        return load_workbook(path.open("rb"), read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many types for damaged workbooks
        raise FileRejected("xlsx", f"the workbook cannot be read: {error}") from None


def _sheet(workbook: Any, sheet: str | None) -> Any:
    if sheet is None:
        return workbook.worksheets[0]
    if sheet not in workbook.sheetnames:
        names = ", ".join(workbook.sheetnames)
        raise FileRejected("sheet", f"the workbook has no sheet '{sheet}' (sheets: {names})")
    return workbook[sheet]


def cell_text(value: Any) -> str:
    """A workbook cell as the text a CSV export would hold (dates as ISO, no float noise)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time(0) else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    return str(value)


def _sniff_xlsx(path: Path, sheet: str | None) -> FileFormat:
    workbook = _open_xlsx(path)
    try:
        worksheet = _sheet(workbook, sheet)
        rows: list[list[str]] = []
        complete = True
        for values in worksheet.iter_rows(values_only=True):
            if len(rows) == HEADER_SCAN_ROWS:
                complete = False
                break
            rows.append([cell_text(v) for v in values])
        fmt = FileFormat("xlsx", 0, [], sheet=worksheet.title)
        return _finish(rows, complete, fmt)
    finally:
        workbook.close()


class _FlaggingLines:
    """Iterates text lines, remembering whether any held undecodable bytes (U+FFFD)."""

    def __init__(self, lines: Iterator[str]) -> None:
        self.lines = lines
        self.flagged = False

    def __iter__(self) -> _FlaggingLines:
        return self

    def __next__(self) -> str:
        line = next(self.lines)
        if BAD_TEXT in line:
            self.flagged = True
        return line


@dataclass(frozen=True)
class Record:
    """One data row: its spreadsheet row number and cells; `bad_encoding` when the row held
    bytes that are not valid in the file's encoding."""

    row: int
    cells: list[str]
    bad_encoding: bool = False


def iter_records(path: Path, fmt: FileFormat) -> Iterator[Record]:
    """The data rows after the header row, blank rows skipped (their numbers still count)."""
    if fmt.format == "xlsx":
        yield from _xlsx_records(path, fmt)
        return
    with path.open("r", encoding=fmt.encoding, errors="replace", newline="") as handle:
        lines = _FlaggingLines(iter(handle))
        reader = csv.reader(lines, delimiter=fmt.delimiter or ",")
        for number, cells in enumerate(reader, start=1):
            flagged, lines.flagged = lines.flagged, False
            if number <= fmt.header_row or not any(cells):
                continue
            yield Record(number, cells, flagged)


def _xlsx_records(path: Path, fmt: FileFormat) -> Iterator[Record]:
    workbook = _open_xlsx(path)
    try:
        worksheet = _sheet(workbook, fmt.sheet)
        for number, values in enumerate(worksheet.iter_rows(values_only=True), start=1):
            if number <= fmt.header_row:
                continue
            cells = [cell_text(v) for v in values]
            if any(cells):
                yield Record(number, cells)
    finally:
        workbook.close()
