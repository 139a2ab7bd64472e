"""Reading uploaded files: format, encoding, delimiter, sheet and header-row detection.

CSV is read with the standard `csv` module in streaming fashion (one record at a time), so a
file of any size needs constant memory; workbooks (XLSX, XLSB, XLS, ODS) with calamine
after `workbooks.check_workbook` has checked their size limits. Rows are numbered as a
spreadsheet shows them: the first record of the file is row 1, blank rows count, a quoted
cell spanning two lines is still one row.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from server.modules.uploads import workbooks
from server.modules.uploads.mapping import TargetLike, suggest
from server.modules.uploads.profile import detect_profile

SAMPLE_BYTES = 256 * 1024
SAMPLE_ROWS = 1_000
PREVIEW_SAMPLE = 100
HEADER_SCAN_ROWS = 20
MAX_SHEETS = 20
SHEET_MATCH = 0.8
DELIMITERS = (",", ";", "\t")
BAD_TEXT = "\ufffd"
csv.field_size_limit(16 * 1024 * 1024)

_NUMBERISH = re.compile(r"^[+-]?[(]?[$€£¥]?\s?[\d.,' ]+%?[)]?-?$")
_DATEISH = re.compile(r"^\d{1,4}[-/.]\d{1,2}[-/.]\d{1,4}([ T]\d{1,2}:\d{2}(:\d{2})?)?$")
_CONTROL = re.compile(rb"[\x00-\x08\x0b\x0e-\x1f]")


class FileRejected(ValueError):
    """The file cannot be used at all; `code` is stable, the message says what to do."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass
class FileFormat:
    """How to read one file; stored in `uploads.metadata["format"]` (without `sample`, the
    first data rows, which the service keeps apart as `metadata["sample"]`)."""

    format: str
    header_row: int
    columns: list[str]
    encoding: str | None = None
    delimiter: str | None = None
    sheet: str | None = None
    complete_sample: bool = False
    notes: list[str] = field(default_factory=list)
    encoding_detected: str | None = None
    sheet_reason: str | None = None
    sheets: list[dict[str, Any]] = field(default_factory=list)
    profile: dict[str, Any] = field(default_factory=dict)
    sample: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("sample")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> FileFormat:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


def column_letter(index: int) -> str:
    """Spreadsheet column letters for a 0-based index: 0 → A, 26 → AA."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def detect_encoding(head: bytes, complete: bool) -> tuple[str, str]:
    """(encoding, how it was decided) from the first bytes: a BOM, valid UTF-8, UTF-16
    without BOM (every other byte zero), else charset-normalizer among the encodings
    spreadsheets export (cp1252 rather than latin-1: Excel's "CSV" on Windows is cp1252,
    where 0x92 is a right quote, not a C1 control)."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig", "UTF-8 byte order mark"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "UTF-16 byte order mark"
    utf16 = _utf16_without_bom(head[: 64 * 1024])
    if utf16:
        return utf16, "UTF-16 without byte order mark (zero bytes between letters)"
    if b"\x00" in head or len(_CONTROL.findall(head)) > max(8, len(head) // 100):
        raise FileRejected(
            "binary", "the file is not text (binary content); upload a CSV file or an Excel "
            "workbook (.xlsx, .xlsb, .xls, .ods)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=complete)
        return "utf-8", "valid UTF-8"
    except UnicodeDecodeError:
        pass
    return _legacy_encoding(head)


def _utf16_without_bom(sample: bytes) -> str | None:
    """utf-16-le/-be when zero bytes sit at every other position (ASCII text in UTF-16)
    and the decoded text has no control characters; None otherwise."""
    half = len(sample) // 2
    if half < 2:
        return None
    even, odd = sample[0::2].count(0), sample[1::2].count(0)
    for name, zeros, other in (("utf-16-le", odd, even), ("utf-16-be", even, odd)):
        if zeros >= half * 0.3 and other <= half * 0.02:
            text = sample[: half * 2].decode(name, errors="replace")
            if not re.search(r"[\x00-\x08\x0b\x0e-\x1f]", text):
                return name
    return None


LEGACY_ENCODINGS = ("cp1252", "cp1250", "iso8859_15", "mac_roman", "cp850", "latin_1")


def _legacy_encoding(head: bytes) -> tuple[str, str]:
    from charset_normalizer import from_bytes

    results = from_bytes(head[:SAMPLE_BYTES], cp_isolation=list(LEGACY_ENCODINGS))
    best = results.best()
    encoding = best.encoding if best is not None else "cp1252"
    # Several single-byte encodings read most Western text alike (é is 0xE9 in each);
    # prefer cp1252, Excel's on Windows, unless it reads clearly worse.
    # (charset-normalizer lists encodings that decode to the same text under one match.)
    cp1252 = next((m for m in results if "cp1252" in m.could_be_from_charset), None)
    if cp1252 is not None and best is not None and cp1252.chaos <= best.chaos + 0.1:
        encoding = "cp1252"
    name = codecs.lookup(encoding).name
    return name, f"not UTF-8; detected {name} from the bytes (charset-normalizer)"


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


def _is_texty(cell: str) -> bool:
    return not _NUMBERISH.match(cell) and not _DATEISH.match(cell)


def _header_score(row: list[str], width: int) -> float:
    """How much a row looks like the header of data `width` columns wide: share of the
    width filled with text (not numbers or dates). Repeated names are allowed (they get
    ` (2)`), a title block (one or two cells) scores low."""
    filled = [c.strip() for c in row if c.strip()]
    if len(filled) < 2 and width > 1:
        return 0.0
    texty = [c for c in filled if _is_texty(c)]
    if len(texty) < len(filled) * 0.9:
        return 0.0
    return min(len(texty), width) / max(width, 1)


def detect_header_row(rows: list[list[str]]) -> int:
    """0-based index of the header among the first rows: the first row that fills at least
    80% of the data's width with text (title blocks, notes and blank rows above it are
    skipped; duplicated names are kept as `Name (2)`); else the best-scoring row."""
    scan = rows[:HEADER_SCAN_ROWS]
    widths = [len([c for c in r if c.strip()]) for r in rows]
    nonblank = [w for w in widths if w]
    if not nonblank:
        return 0
    width = Counter(nonblank).most_common(1)[0][0]
    scores = [_header_score(row, width) for row in scan]
    for index, score in enumerate(scores):
        if score >= 0.8:
            return index
    best = max(range(len(scan)), key=lambda i: (scores[i], -i))
    return best if scores[best] > 0 else next(i for i, w in enumerate(widths) if w)


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


def sniff(path: Path, sheet: str | None = None, *, encoding: str | None = None,
          header_row: int | None = None, targets: Sequence[TargetLike] | None = None
          ) -> FileFormat:
    """Work out how to read `path`; raises FileRejected with a clear reason.

    `sheet`, `encoding` and `header_row` (1-based) override what detection would choose;
    `targets` (the inputs the file may feed) let a workbook's best-matching sheet be picked.
    """
    size = path.stat().st_size
    if size == 0:
        raise FileRejected("empty", "the file is empty")
    with path.open("rb") as handle:
        head = handle.read(SAMPLE_BYTES)
    try:
        kind = workbooks.workbook_format(path, head)
        if kind is not None:
            return _sniff_workbook(path, kind, sheet, header_row, targets)
    except workbooks.WorkbookRejected as rejected:
        raise FileRejected(rejected.code, str(rejected)) from None
    complete = size <= SAMPLE_BYTES
    if encoding:
        how = "chosen"
        try:
            encoding = codecs.lookup(encoding).name
        except LookupError:
            raise FileRejected("encoding", f"unknown encoding '{encoding}'") from None
    else:
        encoding, how = detect_encoding(head, complete)
    text = _sample_text(head, encoding, complete)
    delimiter = _delimiter(text)
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))[:SAMPLE_ROWS]
    fmt = FileFormat("csv", 0, [], encoding, delimiter, encoding_detected=how)
    return _finish(rows, complete, fmt, header_row)


def _header_index(rows: list[list[str]], header_row: int | None) -> int:
    if header_row is None:
        return detect_header_row(rows)
    if not 1 <= header_row <= min(len(rows), HEADER_SCAN_ROWS):
        raise FileRejected("header_row", f"the header row must be one of rows 1-"
                           f"{min(len(rows), HEADER_SCAN_ROWS)}, not {header_row}")
    return header_row - 1


def _finish(rows: list[list[str]], complete: bool, fmt: FileFormat,
            header_row: int | None = None) -> FileFormat:
    if not any(any(c.strip() for c in r) for r in rows):
        raise FileRejected("empty", "the file has no content (only blank rows)")
    header = _header_index(rows, header_row)
    fmt.header_row = header + 1
    fmt.columns = header_names(rows[header])
    fmt.complete_sample = complete
    data_rows = [r for r in rows[header + 1:] if any(c.strip() for c in r)]
    if complete and not data_rows:
        raise FileRejected(
            "header_only", f"the file has a header row (row {fmt.header_row}) but no data rows")
    if header:
        fmt.notes.append(f"rows 1-{header} above the header row (row {header + 1}) were "
                         "skipped" if header > 1 else "row 1 above the header row was skipped")
    profile = detect_profile(fmt.columns, data_rows)
    if fmt.format != "csv" and profile.decimal is None:
        profile.decimal = "."
        profile.decided["decimal"] = "the workbook stores numbers as numbers (no separators)"
    fmt.profile = profile.as_json()
    fmt.sample = [{"row": number, "cells": row} for number, row in
                  enumerate(rows, start=1) if number > fmt.header_row
                  and any(c.strip() for c in row)][:PREVIEW_SAMPLE]
    return fmt


@dataclass
class _SheetSample:
    name: str
    visible: bool
    rows: list[list[str]]
    complete: bool
    header: int = 0
    matched: list[str] = field(default_factory=list)
    data_rows: int = 0


def _sniff_workbook(path: Path, kind: str, sheet: str | None, header_row: int | None,
                    targets: Sequence[TargetLike] | None) -> FileFormat:
    scans = workbooks.check_workbook(path, kind)
    book = workbooks.open_workbook(path)
    try:
        infos = workbooks.sheets(book)
        names = [i.name for i in infos]
        if not infos:
            raise FileRejected("sheet", "the workbook has no worksheet")
        if sheet is not None and sheet not in names:
            raise FileRejected("sheet", f"the workbook has no sheet '{sheet}' (sheets: "
                               f"{', '.join(names)})")
        samples = [_sheet_sample(book, info, targets) for info in infos[:MAX_SHEETS]
                   if sheet is None or info.name == sheet]
    finally:
        book.close()
        workbooks.release_memory()
    chosen, reason = _choose_sheet(samples, sheet, targets)
    scan = scans.get(chosen.name)
    if scan is not None and scan.formulas_without_value_count:
        raise FileRejected("formula", workbooks.formula_message(chosen.name, scan))
    fmt = FileFormat(kind, 0, [], sheet=chosen.name, sheet_reason=reason, sheets=[
        {"name": s.name, "visible": s.visible, "header_row": s.header + 1,
         "matched_inputs": len(s.matched), "data_rows_in_sample": s.data_rows}
        for s in samples] + [{"name": i.name, "visible": i.visible, "header_row": None,
                              "matched_inputs": None, "data_rows_in_sample": None}
                             for i in infos if i.name not in {s.name for s in samples}])
    return _finish(chosen.rows, chosen.complete, fmt, header_row)


def _sheet_sample(book: Any, info: workbooks.SheetInfo,
                  targets: Sequence[TargetLike] | None) -> _SheetSample:
    rows: list[list[str]] = []
    complete = True
    for values in workbooks.sheet_rows(book, info.name):
        if len(rows) == SAMPLE_ROWS:
            complete = False
            break
        rows.append([workbooks.cell_text(v) for v in values])
    sample = _SheetSample(info.name, info.visible, rows, complete)
    if not any(any(c.strip() for c in r) for r in rows):
        return sample
    sample.header = detect_header_row(rows)
    sample.data_rows = sum(1 for r in rows[sample.header + 1:] if any(c.strip() for c in r))
    if targets:
        columns = header_names(rows[sample.header])
        sample.matched = [s.label for s in suggest(targets, columns)
                          if s.column and s.confidence >= SHEET_MATCH]
    return sample


def _choose_sheet(samples: list[_SheetSample], sheet: str | None,
                  targets: Sequence[TargetLike] | None) -> tuple[_SheetSample, str]:
    """The sheet to read and why: the one asked for; else the one whose header matches
    most inputs (then: has data rows, visible, first)."""
    if sheet is not None:
        return samples[0], f"sheet '{sheet}' as chosen"
    best = max(enumerate(samples), key=lambda item: (
        len(item[1].matched), item[1].data_rows > 0, item[1].visible, -item[0]))[1]
    others = [s for s in samples if s is not best]
    if targets and best.matched:
        why = (f"sheet '{best.name}' read: its header matches {len(best.matched)} of "
               f"{len(targets)} inputs ({', '.join(best.matched[:6])})")
        if others:
            why += "; " + ", ".join(f"'{s.name}' matches {len(s.matched)}" for s in others)
    elif best.data_rows:
        why = f"sheet '{best.name}' read: the first sheet with a header and data rows"
    else:
        why = f"sheet '{best.name}' read: no sheet has data rows"
    if others:
        why += "; choose another sheet in the preview if this is not the data"
    return best, why


def _workbook_records(path: Path, fmt: FileFormat) -> Iterator[Record]:
    try:
        book = workbooks.open_workbook(path)
    except workbooks.WorkbookRejected as rejected:
        raise FileRejected(rejected.code, str(rejected)) from None
    try:
        for number, values in enumerate(workbooks.sheet_rows(book, fmt.sheet or ""), start=1):
            if number <= fmt.header_row:
                continue
            cells = [workbooks.cell_text(v) for v in values]
            if any(cells):
                yield Record(number, cells)
    finally:
        book.close()
        workbooks.release_memory()


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
    if fmt.format in workbooks.WORKBOOK_FORMATS:
        yield from _workbook_records(path, fmt)
        return
    with path.open("r", encoding=fmt.encoding, errors="replace", newline="") as handle:
        lines = _FlaggingLines(iter(handle))
        reader = csv.reader(lines, delimiter=fmt.delimiter or ",")
        for number, cells in enumerate(reader, start=1):
            flagged, lines.flagged = lines.flagged, False
            if number <= fmt.header_row or not any(cells):
                continue
            yield Record(number, cells, flagged)
