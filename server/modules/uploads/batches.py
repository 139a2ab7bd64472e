"""Validation's pass 1: the mapped cells of a file as text frames, cleaned and read.

`data_batches` yields frames of `LINE_COLUMN` + one text column per mapped input (empty
cells null). Ragged rows and undecodable bytes are reported on the way, then each frame
goes through `normalise.Cleaner` (text cleaning, the reading profile), so everything after
it (typing, rules, duplicate keys, the rows spool) sees the cleaned values.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import polars as pl

from engine.data import LINE_COLUMN
from server.modules.uploads.normalise import Cleaner
from server.modules.uploads.parsing import BAD_TEXT, FileFormat, iter_records
from server.modules.uploads.profile import ReadingProfile
from server.modules.uploads.report import Problem, Progress, Report

if TYPE_CHECKING:
    from server.modules.uploads.validation import MappedColumn

BATCH_ROWS = 50_000
BLOCK_BYTES = 4 * 1024 * 1024
FAST_ENCODINGS = ("utf-8", "utf-8-sig")


def data_batches(source: Path, fmt: FileFormat, columns: Sequence[MappedColumn],
                 report: Report, progress: Progress) -> Iterator[pl.DataFrame]:
    """Pass 1: frames of `LINE_COLUMN` + the mapped cells as text (empty cells null).

    Ragged rows and undecodable bytes are reported on the way. UTF-8 CSV without quoted
    line breaks takes the Polars fast path (lines split natively, quoted lines through
    `csv`); workbooks, other encodings and CSV with multi-line cells go record by record."""
    fast = (fmt.format == "csv" and fmt.encoding in FAST_ENCODINGS
            and not _needs_record_reader(source))
    cleaner = Cleaner(columns, ReadingProfile.from_json(fmt.profile), report)
    batches = _line_batches(source, fmt) if fast else _record_batches(source, fmt)
    width, indexes = len(fmt.columns), [c.index for c in columns]
    for frame in batches:
        _shape_problems(frame, width, fmt, report)
        out = frame.select(pl.col(LINE_COLUMN), *(
            pl.col("cells").list.get(c.index, null_on_oob=True).replace("", None)
            .alias(c.target.key) for c in columns)) if indexes else frame.select(LINE_COLUMN)
        out = cleaner.apply(out)
        _totals_rows(out, columns, report)
        report.rows += out.height
        progress("parsing", report.rows)
        yield out


TOTALS = r"(?i)^(grand\s+|sub\s*-?\s*)?(total|totals|sum|summe|totaal|somme)\b"


def _totals_rows(frame: pl.DataFrame, columns: Sequence[MappedColumn], report: Report
                 ) -> None:
    """A row whose reference reads "Total", "Grand total", "Subtotal"... is a problem: summed
    into the data it would be paid as an employee (or a fund)."""
    for column in columns:
        key = column.target.key
        if key not in ("employee_ref", "fund_ref"):
            continue
        found = frame.filter(pl.col(key).str.contains(TOTALS).fill_null(False))
        for row, value in found.select(LINE_COLUMN, key).iter_rows():
            report.cell_problem(
                row, column.column, key, value, {"totals_row": True},
                "the row looks like a totals row, not one " + (
                    "employee" if key == "employee_ref" else "fund"),
                "Delete totals and subtotal rows: the file needs one row per "
                f"{'employee' if key == 'employee_ref' else 'fund'}; the plan computes totals")


def _needs_record_reader(source: Path) -> bool:
    """True when a quoted cell spans lines (a line with an odd number of quotes) or a line
    holds the unit separator the fast path splits lines with."""
    for _, block in _blocks(source):
        odd = _lines(block).select(
            ((pl.col("line").str.count_matches('"', literal=True) % 2) == 1).any()
            | pl.col("line").str.contains("\x1f", literal=True).any())
        if odd.item():
            return True
    return False


def _blocks(source: Path) -> Iterator[tuple[int, bytes]]:
    """(first line number, bytes) pieces of about BLOCK_BYTES, each ending at a line end.

    Read with plain reads rather than Polars' memory map, so the process's resident memory
    stays at a few blocks whatever the file size."""
    first_line, carry = 1, b""
    with source.open("rb") as handle:
        while chunk := handle.read(BLOCK_BYTES):
            data = carry + chunk
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            block, carry = data[:cut], data[cut:]
            yield first_line, block
            first_line += block.count(b"\n")
    if carry:
        yield first_line, carry


def _lines(block: bytes) -> pl.DataFrame:
    return pl.read_csv(io.BytesIO(block), has_header=False, separator="\x1f", quote_char=None,
                       schema={"line": pl.String}, encoding="utf8-lossy",
                       truncate_ragged_lines=True)


BATCH_SCHEMA = {LINE_COLUMN: pl.Int64, "cells": pl.List(pl.String), "bad": pl.Boolean}
_NOT_BLANK = pl.col("cells").list.eval(pl.element().str.strip_chars() != "").list.any()


def _line_batches(source: Path, fmt: FileFormat) -> Iterator[pl.DataFrame]:
    delimiter = fmt.delimiter or ","
    for first_line, block in _blocks(source):
        batch = (_lines(block).with_row_index(LINE_COLUMN, offset=first_line)
                 .filter(pl.col(LINE_COLUMN) > fmt.header_row))
        batch = batch.filter(pl.col("line").is_not_null()).with_columns(
            pl.col(LINE_COLUMN).cast(pl.Int64),
            pl.col("line").str.contains(BAD_TEXT, literal=True).alias("bad"))
        quoted = pl.col("line").str.contains('"', literal=True)
        plain = batch.filter(~quoted).select(
            LINE_COLUMN, pl.col("line").str.split(delimiter).alias("cells"), "bad")
        rows = batch.filter(quoted).select(LINE_COLUMN, "line", "bad").rows()
        parsed = pl.DataFrame({
            LINE_COLUMN: [r[0] for r in rows],
            "cells": [next(csv.reader([r[1]], delimiter=delimiter), []) for r in rows],
            "bad": [r[2] for r in rows]}, schema=BATCH_SCHEMA)
        yield pl.concat([plain, parsed]).sort(LINE_COLUMN).filter(_NOT_BLANK)


def _record_batches(source: Path, fmt: FileFormat) -> Iterator[pl.DataFrame]:
    rows: list[int] = []
    cells: list[list[str]] = []
    bad: list[bool] = []
    for record in iter_records(source, fmt):
        rows.append(record.row)
        cells.append(record.cells)
        bad.append(record.bad_encoding)
        if len(rows) == BATCH_ROWS:
            yield pl.DataFrame({LINE_COLUMN: rows, "cells": cells, "bad": bad},
                               schema=BATCH_SCHEMA)
            rows, cells, bad = [], [], []
    if rows:
        yield pl.DataFrame({LINE_COLUMN: rows, "cells": cells, "bad": bad}, schema=BATCH_SCHEMA)


def _shape_problems(frame: pl.DataFrame, width: int, fmt: FileFormat, report: Report) -> None:
    count = pl.col("cells").list.len()
    extra = pl.col("cells").list.slice(width).list.eval(
        pl.element().str.strip_chars() != "").list.any()
    flagged = frame.filter((count < width) | ((count > width) & extra) | pl.col("bad"))
    for row, cells, bad in flagged.select(LINE_COLUMN, "cells", "bad").iter_rows():
        if len(cells) < width or (len(cells) > width and any(c.strip() for c in cells[width:])):
            report.add(_ragged(row, len(cells), width))
        if bad:
            report.add(Problem(
                row, None, None, None, {"encoding": fmt.encoding},
                f"the row holds bytes that are not valid {fmt.encoding}",
                "Save the file as CSV UTF-8 (in Excel: Save As → CSV UTF-8)"))


def _ragged(row: int, count: int, width: int) -> Problem:
    kind = "fewer" if count < width else "more"
    return Problem(row, None, None, None, {"shape": {"cells": count, "expected": width}},
                   f"the row has {count} cells, {kind} than the {width} columns of the header",
                   "Check for a missing or extra delimiter (a comma inside a value needs quotes)")


