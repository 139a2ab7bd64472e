"""Byte-for-byte reproducible files: zips, XLSX workbooks and CSV text.

A signed export must come out identical when exported twice, so nothing here may depend on
the clock: zip entries carry a fixed timestamp and mode, XLSX core properties carry the
run's own time, and every CSV/XLSX cell goes through the shared formula-injection guard.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

from openpyxl import Workbook
from openpyxl.cell.cell import Cell
from openpyxl.worksheet.worksheet import Worksheet

from engine.safe_cells import csv_text, safe_cell
from server.modules.reports.formatting import XLSX_DATE_FORMAT, XLSX_DECIMAL_FORMAT

ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o644 << 16
UNIX = 3
FIXED_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)
PRECOMPRESSED = (".pdf", ".xlsx", ".zip", ".png")
_MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")
_CREATED = re.compile(rb"(<dcterms:created[^>]*>)[^<]*(</dcterms:created>)")


def deterministic_zip(entries: Iterable[tuple[str, bytes]]) -> bytes:
    """A zip of `entries` in the given order with fixed timestamps, modes and creator, so the
    same entries always give the same bytes (for one zlib build)."""
    buffer = io.BytesIO()
    write_zip(buffer, entries)
    return buffer.getvalue()


def write_zip(target: BinaryIO, entries: Iterable[tuple[str, bytes | Path]]) -> None:
    """`deterministic_zip` into a seekable file; a `Path` entry is read from disk one entry
    at a time, so a bundle of 10,000 statements never sits whole in memory. The same entries
    give the same bytes as `deterministic_zip`."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, payload in entries:
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            # PDF and XLSX content is compressed already: deflating it again costs CPU
            # (a third of a 2,000-statement export) and saves almost nothing.
            stored = name.endswith(PRECOMPRESSED)
            info.compress_type = zipfile.ZIP_STORED if stored else zipfile.ZIP_DEFLATED
            info.external_attr = FILE_MODE
            info.create_system = UNIX
            data = payload.read_bytes() if isinstance(payload, Path) else payload
            archive.writestr(info, data, compresslevel=None if stored else 6)


def save_workbook(workbook: Workbook, moment: datetime | None = None) -> bytes:
    """The workbook's bytes with `moment` (default a fixed date) as created/modified time and
    fixed zip metadata: openpyxl stamps the wall clock otherwise."""
    stamp = (moment or FIXED_MOMENT).astimezone(UTC).replace(tzinfo=None, microsecond=0)
    workbook.properties.created = stamp
    workbook.properties.creator = "Paysheet"
    buffer = io.BytesIO()
    workbook.save(buffer)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    entries = []
    with zipfile.ZipFile(io.BytesIO(buffer.getvalue())) as archive:
        for info in archive.infolist():
            payload = archive.read(info.filename)
            if info.filename == "docProps/core.xml":
                payload = _MODIFIED.sub(rb"\g<1>" + text + rb"\g<2>", payload)
                payload = _CREATED.sub(rb"\g<1>" + text + rb"\g<2>", payload)
            entries.append((info.filename, payload))
    return deterministic_zip(entries)


def put(sheet: Worksheet, row: int, column: int, value: Any, number_format: str | None = None
        ) -> Cell:
    """Write one neutralised cell: decimals stay numbers (with an R10-friendly format),
    dates are dates, text that looks like a formula gets a leading `'`."""
    cell = sheet.cell(row=row, column=column, value=safe_cell(value))
    if number_format:
        cell.number_format = number_format
    elif isinstance(value, Decimal):
        cell.number_format = XLSX_DECIMAL_FORMAT
    elif isinstance(value, int) and not isinstance(value, bool):
        cell.number_format = "0"
    elif isinstance(value, date):
        cell.number_format = XLSX_DATE_FORMAT
    return cell


def put_row(sheet: Worksheet, row: int, values: Sequence[Any], start: int = 1) -> None:
    for offset, value in enumerate(values):
        put(sheet, row, start + offset, value)


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """UTF-8 CSV with "\\n" line ends; every cell through the formula-injection guard."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([csv_text(name) for name in header])
    for row in rows:
        writer.writerow([csv_text(value) for value in row])
    return buffer.getvalue().encode("utf-8")
