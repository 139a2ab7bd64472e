"""Validating a mapped file and producing its typed, normalised form.

Two streaming passes, so memory stays bounded whatever the file size:
1. `batches.data_batches`: frames of the mapped columns (as text) with each row's
   spreadsheet row number; ragged rows and undecodable bytes are reported, text cleaned and
   numbers/dates read with the reading profile (warnings say what changed).
2. Each batch is typed with `engine.data.typed_column`
   (the engine's own number/date/bool rules), then checked against the catalog's
   `validation` JSON (min, max, regex, allowed), formula injection and the reference
   columns. While no error has been seen, typed batches go to Parquet and the raw mapped
   values to a spool (Parquet) from which `employee_rows` is filled once the upload is ready.
Problem counts are complete; at most `MAX_LISTED` entries are kept for the report.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any, BinaryIO

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from engine.data import (
    FALSE_WORDS,
    ISO_DATE,
    LINE_COLUMN,
    NUMBER,
    TOO_LARGE,
    TOO_MANY_DECIMALS,
    TRUE_WORDS,
    DataProblem,
    typed_column,
)
from engine.plan import InputSpec
from server.modules.keys import service as keys
from server.modules.uploads.parsing import FileFormat
from server.modules.uploads.report import Problem, Progress, Report
from server.modules.uploads.targets import Target

PROGRESS_EVERY = 100_000
# Columns of the rows spool besides the mapped input keys (which never start with "__").
SPOOL_ROW, SPOOL_REF = "__file_row", "__ref"
REFERENCE_KEYS = ("employee_ref", "fund_ref")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
FORMULA_PATTERN = r"^[=+\-@\t\r]"

HINTS = {
    "not a decimal number": (
        {"type": "decimal"},
        "Use digits with an optional leading minus and a dot for decimals, without thousands "
        "separators, currency symbols or %, e.g. 1234.56"),
    "more than 10 decimal places": (
        {"type": "decimal", "max_scale": 10}, "Round the value to at most 10 decimal places"),
    "out of range (|x| must be below 1e28)": (
        {"type": "decimal", "max_abs": "1e28"}, "Check the value: it is far too large"),
    "not a whole number": ({"type": "int"}, "Use a whole number such as 3"),
    "not a boolean (true/false, 1/0, yes/no)": (
        {"type": "bool"}, "Use true/false, yes/no or 1/0"),
    "not an ISO date (YYYY-MM-DD)": (
        {"type": "date", "format": "YYYY-MM-DD"},
        "Write dates as YYYY-MM-DD, e.g. 2025-03-31 (in Excel, format the column as "
        "yyyy-mm-dd before saving)"),
    "required value is empty": (
        {"required": True}, "Fill in a value: this input is required and has no default"),
}


@dataclass(frozen=True)
class MappedColumn:
    target: Target
    column: str
    index: int


def mapped_columns(fmt: FileFormat, mapping: dict[str, str], targets: Sequence[Target]
                   ) -> list[MappedColumn]:
    by_key = {t.key: t for t in targets}
    columns = [MappedColumn(by_key[key], column, fmt.columns.index(column))
               for key, column in mapping.items()]
    return sorted(columns, key=lambda c: (c.index, c.target.key))


def _spec(target: Target) -> InputSpec:
    dtype = target.dtype if target.key not in REFERENCE_KEYS else "text"
    return InputSpec(key=target.key, label=target.label, dtype=dtype, scope=target.scope,
                     required=target.required, default=target.default)


def _engine_problem(problem: DataProblem, column: MappedColumn) -> Problem:
    rule, hint = HINTS.get(problem.message, ({"type": column.target.dtype}, "Correct the value"))
    if problem.message == "required value is empty" and column.target.key in REFERENCE_KEYS:
        hint = f"Every row needs a {column.target.label}"
    return Problem(problem.line, column.column, column.target.key, problem.value, rule,
                   f"{problem.message} (expected {column.target.dtype})"
                   if "required" not in problem.message else problem.message, hint)


def _bound(dtype: str, raw: Any) -> Any:
    return date.fromisoformat(str(raw)) if dtype == "date" else Decimal(str(raw))


def _rule_checks(column: MappedColumn, typed: pl.Expr, text: pl.Expr
                 ) -> list[tuple[pl.Expr, dict[str, Any], str, str]]:
    """(bad-cell expression, rule, message, hint) for the catalog's validation JSON."""
    rules = column.target.validation or {}
    dtype = column.target.dtype
    checks: list[tuple[pl.Expr, dict[str, Any], str, str]] = []
    if "min" in rules and dtype in ("decimal", "int", "date"):
        low = _bound(dtype, rules["min"])
        checks.append((typed < low, {"min": str(rules["min"])}, f"below the minimum {low}",
                       f"Use a value of at least {low}"))
    if "max" in rules and dtype in ("decimal", "int", "date"):
        high = _bound(dtype, rules["max"])
        checks.append((typed > high, {"max": str(rules["max"])}, f"above the maximum {high}",
                       f"Use a value of at most {high}"))
    if rules.get("regex"):
        pattern = f"^(?:{rules['regex']})$"
        checks.append((~text.str.contains(pattern), {"regex": rules["regex"]},
                       "does not match the required pattern",
                       f"The value must match the pattern {rules['regex']}"))
    if rules.get("allowed"):
        allowed = [str(v) for v in rules["allowed"]]
        shown = ", ".join(allowed[:10]) + (" ..." if len(allowed) > 10 else "")
        checks.append((~text.is_in(allowed), {"allowed": allowed}, "not an allowed value",
                       f"Use one of: {shown}"))
    return checks


def _formula_check(column: MappedColumn, text: pl.Expr) -> pl.Expr | None:
    """Cells a spreadsheet would run as a formula (the raw cell's first character, as a
    spreadsheet sees it). Numbers like -5 are not formulas."""
    starts = text.str.contains(FORMULA_PATTERN)
    if column.target.dtype in ("decimal", "int") and column.target.key not in REFERENCE_KEYS:
        return starts & ~text.str.strip_chars().str.contains(NUMBER)
    if column.target.dtype == "date" and column.target.key not in REFERENCE_KEYS:
        return starts & ~text.str.strip_chars().str.contains(ISO_DATE)
    return starts


def _suspect(column: MappedColumn) -> pl.Expr | None:
    """True for every cell `engine.data.typed_column` could report (a superset, built from
    the engine's own patterns), so clean rows skip the engine's per-rule filters."""
    spec = _spec(column.target)
    raw = pl.col(spec.key)
    text = raw.str.strip_chars()
    present = raw.is_not_null() & (text != "")
    bad: pl.Expr | None = None
    if spec.dtype in ("decimal", "int"):
        bad = (~text.str.contains(NUMBER) | text.str.contains(TOO_MANY_DECIMALS)
               | text.str.contains(TOO_LARGE))
        if spec.dtype == "int":
            bad = bad | text.str.contains(".", literal=True)
    elif spec.dtype == "date":
        bad = ~text.str.contains(ISO_DATE) | text.str.to_date("%Y-%m-%d", strict=False).is_null()
    elif spec.dtype == "bool":
        bad = ~text.str.to_lowercase().is_in([*TRUE_WORDS, *FALSE_WORDS])
    flag = (present & bad) if bad is not None else None
    if spec.required and spec.default is None:
        flag = ~present if flag is None else (flag | ~present)
    return flag


def _suspect_rows(frame: pl.DataFrame, columns: Sequence[MappedColumn]) -> pl.DataFrame:
    flags = [flag.fill_null(True) for c in columns if (flag := _suspect(c)) is not None]
    return frame.filter(pl.any_horizontal(flags)) if flags else frame.clear()


class Normaliser:
    """Pass 2 over the mapped batches: typed Parquet, and while error-free a spool of the
    rows for `employee_rows` (an Arrow IPC stream of file row, reference and the mapped
    cells as text: the cheapest format to write, ~1 s per 2M rows against ~5 s for
    Parquet), which the rows fill loads after the upload is ready.

    `timings` holds the seconds spent parsing (pulling batches), validating, writing the
    typed Parquet, writing the rows spool and finding duplicates."""

    def __init__(self, columns: Sequence[MappedColumn], kind: str, parquet: Path,
                 rows_spool: Path, report: Report, progress: Progress,
                 reread: Callable[[], Iterable[pl.DataFrame]], cipher: keys.TenantCipher):
        """`reread` yields the batches again; it is called only when two references share
        a hash (a duplicate, almost always), to read the values of those rows. Both files
        are written sealed under the tenant's data key (`cipher`): no plaintext on disk;
        the Parquet's hash is its plaintext's (what snapshots name)."""
        self.columns = columns
        self.kind = kind
        self.ref_key = "fund_ref" if kind == "funds" else "employee_ref"
        self.parquet = parquet
        self.rows_spool = rows_spool
        self.report = report
        self.progress = progress
        self.cipher = cipher
        self.writer: pq.ParquetWriter | None = None
        self.spool_writer: pa.ipc.RecordBatchStreamWriter | None = None
        self.sealers: list[tuple[BinaryIO, Any]] = []
        self.parquet_sealer: Any = None
        self.reread = reread
        self.hashes: list[pl.DataFrame] = []
        self.done = 0
        self.timings: Counter[str] = Counter()

    def run(self, batches: Iterable[pl.DataFrame]) -> None:
        try:
            for batch in _timed(batches, self.timings):
                self._batch(batch)
            started = time.perf_counter()
            self._duplicates()
            self.timings["duplicates"] += time.perf_counter() - started
        finally:
            for writer in (self.writer, self.spool_writer):
                if writer is not None:
                    writer.close()
            for handle, sealer in self.sealers:
                sealer.close()
                handle.close()
        if self.report.ok and self.writer is not None:
            self.report.parquet_sha256 = self.parquet_sealer.sha256
            self.report.parquet_bytes = self.parquet.stat().st_size
        else:
            self.parquet.unlink(missing_ok=True)
            self.rows_spool.unlink(missing_ok=True)

    def _batch(self, frame: pl.DataFrame) -> None:
        started = time.perf_counter()
        problems: list[tuple[int, int, Problem]] = []
        typed_exprs = []
        suspects = _suspect_rows(frame, self.columns)
        for order, column in enumerate(self.columns):
            # The engine's typing expression does not depend on the frame; only its problem
            # listing does, so it looks at the (usually empty) suspect rows alone.
            expr, engine_problems = typed_column(suspects, _spec(column.target))
            typed_exprs.append(expr)
            problems += [(p.line or 0, order, _engine_problem(p, column))
                         for p in engine_problems]
        typed = frame.select(pl.col(LINE_COLUMN), *typed_exprs).with_columns(
            pl.col(k).str.strip_chars() for k in REFERENCE_KEYS if k in frame.columns)
        problems += self._extra_problems(frame, typed)
        seen = self.report.reported_cells
        for _, _, problem in sorted(problems, key=lambda item: (item[0], item[1])):
            if (problem.row or 0, problem.input_key or "") not in seen:
                self.report.add(problem)
        if self.ref_key in frame.columns:
            ref = pl.col(self.ref_key).str.strip_chars()
            self.hashes.append(frame.filter(ref != "").select(
                pl.col(LINE_COLUMN).cast(pl.Int32), ref.hash(7).alias("hash")))
        self.timings["validate"] += time.perf_counter() - started
        if self.report.ok:
            self._emit(frame, typed)
        self.done += frame.height
        self.progress("validating", self.done)

    def _extra_problems(self, frame: pl.DataFrame, typed: pl.DataFrame
                        ) -> list[tuple[int, int, Problem]]:
        """Catalog rules and formula injection: every check as one boolean column in a
        single pass, then only the (usually zero) failing rows are looked at."""
        raw = [pl.col(c.target.key).alias(f"raw:{c.target.key}") for c in self.columns]
        both = frame.select(pl.col(LINE_COLUMN), *raw).hstack(typed.drop(LINE_COLUMN))
        checks: list[tuple[int, MappedColumn, dict[str, Any], str, str]] = []
        flags: list[pl.Expr] = []
        for order, column in enumerate(self.columns):
            key = column.target.key
            text = pl.col(f"raw:{key}").str.strip_chars()
            present = text.is_not_null() & (text != "")
            found = _rule_checks(column, pl.col(key), text)
            formula = _formula_check(column, pl.col(f"raw:{key}"))
            if formula is not None:
                found.append((formula, {"formula_injection": True},
                              "starts with = + - or @ and would run as a spreadsheet formula",
                              "Remove the leading character, or prefix the value with an "
                              "apostrophe if it is meant as text"))
            found.append((text.str.contains("\x00", literal=True), {"nul_character": True},
                          "holds a NUL character (byte 0), which cannot be stored",
                          "Remove the NUL characters; a file that has them is often damaged "
                          "or not really text"))
            for bad, rule, message, hint in found:
                flags.append((present & bad.fill_null(False)).alias(f"check:{len(checks)}"))
                checks.append((order, column, rule, message, hint))
        if not flags:
            return []
        flagged = (both.lazy().with_columns(flags)
                   .filter(pl.any_horizontal(pl.col("^check:.*$"))).collect())
        problems: list[tuple[int, int, Problem]] = []
        for record in flagged.iter_rows(named=True):
            for index, (order, column, rule, message, hint) in enumerate(checks):
                if record[f"check:{index}"]:
                    line, key = record[LINE_COLUMN], column.target.key
                    problems.append((line, order, Problem(
                        line, column.column, key, record[f"raw:{key}"], rule, message, hint)))
        return problems

    def _emit(self, frame: pl.DataFrame, typed: pl.DataFrame) -> None:
        started = time.perf_counter()
        table = typed.drop(LINE_COLUMN).to_arrow()
        if self.writer is None:
            self.parquet_sealer = self._sealed(self.parquet, keys.TYPED_DATA)
            self.writer = pq.ParquetWriter(self.parquet_sealer, table.schema)
        self.writer.write_table(table)
        written = time.perf_counter()
        rows = frame.select(pl.col(LINE_COLUMN).cast(pl.Int32).alias(SPOOL_ROW),
                            pl.col(self.ref_key).str.strip_chars().alias(SPOOL_REF),
                            *(pl.col(c.target.key) for c in self.columns)).to_arrow()
        if self.spool_writer is None:
            self.spool_writer = pa.ipc.new_stream(
                self._sealed(self.rows_spool, keys.ROWS_SPOOL), rows.schema,
                options=pa.ipc.IpcWriteOptions(compression="lz4"))
        self.spool_writer.write_table(rows)
        self.timings["parquet"] += written - started
        self.timings["spool"] += time.perf_counter() - written

    def _sealed(self, path: Path, field: str) -> Any:
        handle = open(path, "wb")  # noqa: SIM115 (closed by run(), after its writer)
        sealer = self.cipher.writer(handle, field)
        self.sealers.append((handle, sealer))
        return sealer

    def _duplicates(self) -> None:
        """Duplicate references. Only (row, 64-bit hash) is kept per row (12 bytes: 24 MB
        for 2M rows, where the values would take several times that); rows whose hash
        repeats are read again and compared by value."""
        if not self.hashes:
            return
        hashes = pl.concat([h.get_column("hash") for h in self.hashes]).sort()
        repeated = hashes.filter(hashes == hashes.shift(1)).unique()
        del hashes
        if repeated.is_empty():
            return
        lines = pl.concat([h.filter(pl.col("hash").is_in(repeated.implode()))
                           for h in self.hashes]).get_column(LINE_COLUMN)
        self.hashes = []
        refs = pl.concat([
            batch.filter(pl.col(LINE_COLUMN).is_in(lines.implode())).select(
                pl.col(LINE_COLUMN).cast(pl.Int32), pl.col(self.ref_key).str.strip_chars())
            for batch in self.reread()])
        column = next(c for c in self.columns if c.target.key == self.ref_key)
        dupes = refs.filter(pl.col(self.ref_key).is_duplicated())
        first = dupes.group_by(self.ref_key).agg(pl.col(LINE_COLUMN).min().alias("first"))
        dupes = dupes.join(first, on=self.ref_key).filter(pl.col(LINE_COLUMN) != pl.col("first"))
        for line, value, first_row in dupes.sort(LINE_COLUMN).select(
                LINE_COLUMN, self.ref_key, "first").iter_rows():
            self.report.add(Problem(
                line, column.column, self.ref_key, value, {"unique": True},
                f"duplicate {column.target.label}: row {first_row} has the same value",
                "Each row needs its own reference; remove the repeated row or fix the id"))


def _timed(batches: Iterable[pl.DataFrame], timings: Counter[str]) -> Iterator[pl.DataFrame]:
    """`batches`, adding the time spent producing each one to `timings["parse"]`."""
    iterator = iter(batches)
    while True:
        started = time.perf_counter()
        batch = next(iterator, None)
        timings["parse"] += time.perf_counter() - started
        if batch is None:
            return
        yield batch
