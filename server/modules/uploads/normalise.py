"""Cleaning and reading the mapped cells of one batch, every change a counted warning.

Text is cleaned in every mapped column: non-breaking spaces and line breaks become single
spaces, leading and trailing spaces go, Unicode is composed (NFC); keys are compared after
this. Numbers and dates not already in the engine's canonical form (`1234.5`,
`2025-12-31`) are read with the upload's reading profile (`profile.read_number`,
`read_date`); a value that cannot be read without guessing is a problem naming the fix.
Only the cells that need it go through Python: a clean file costs one vectorised pass.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import polars as pl

from engine.data import ISO_DATE, LINE_COLUMN, NUMBER
from server.modules.uploads.profile import (
    AMBIGUOUS_DOT,
    ReadingProfile,
    Unreadable,
    read_date,
    read_number,
)

SAMPLES = 5
SPACES = "[\u00a0\u2007\u202f]"
BREAKS = r"[ \t]*[\r\n\u2028\u2029]+[ \t]*"
SUSPECT = r"^\s|\s$|[^\x20-\x7e]"  # what cleaning could change: edge spaces, non-ASCII
CURRENCY_NAMES = {"$": "USD", "€": "EUR", "£": "GBP", "¥": "JPY"}

MESSAGES = {
    "trimmed": "leading or trailing spaces removed",
    "nbsp": "non-breaking spaces turned into ordinary spaces",
    "line_break": "line breaks inside a cell turned into single spaces",
    "nfc": "Unicode characters composed (NFC), so equal-looking text compares equal",
    "percent": "percentages read as fractions (12% is 0.12)",
    "currency": "currency marks removed",
    "thousands": "thousands separators removed",
    "decimal_comma": "decimal commas read as decimal points",
    "parenthesised_negative": "numbers in parentheses read as negative: (150) is -150",
    "trailing_minus": "numbers with a trailing minus read as negative: 150- is -150",
    "midnight_time": "date-times at 00:00 read as their date",
    "date_format": "dates rewritten as YYYY-MM-DD",
    "serial_date": "Excel serial day numbers read as dates (45657 is 2024-12-31)",
    "date_order": "dates read in the order the column's values settle",
    "yes_no": "Y/N read as yes/no",
}


@dataclass
class Warning:
    """One kind of change in one column: how many cells, and the first few."""

    kind: str
    column: str
    input_key: str
    message: str
    count: int = 0
    samples: list[dict[str, Any]] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"kind": self.kind, "column": self.column, "input_key": self.input_key,
                "message": self.message, "count": self.count, "samples": self.samples}


class ColumnLike(Protocol):
    column: str

    @property
    def target(self) -> Any: ...


class Sink(Protocol):
    """Where warnings and problems go (validation's Report)."""

    def warn(self, kind: str, column: str, key: str, count: int,
             samples: list[dict[str, Any]], message: str | None = None) -> None: ...

    def cell_problem(self, row: int, column: str, key: str, value: str, rule: dict[str, Any],
                     message: str, hint: str) -> None: ...


def cleaned_text(raw: pl.Expr) -> pl.Expr:
    """The cleaned form of a text cell (empty after cleaning becomes null)."""
    text = (raw.str.replace_all(SPACES, " ").str.replace_all(BREAKS, " ")
            .str.strip_chars().str.normalize("NFC"))
    return pl.when(text == "").then(None).otherwise(text)


def _clean_flags(key: str) -> dict[str, pl.Expr]:
    raw = pl.col(key)
    return {
        "nbsp": raw.str.contains(SPACES),
        "line_break": raw.str.contains(r"[\r\n\u2028\u2029]"),
        "trimmed": raw.str.replace_all(SPACES, " ").str.replace_all(BREAKS, " ")
        != raw.str.replace_all(SPACES, " ").str.replace_all(BREAKS, " ").str.strip_chars(),
        "nfc": raw != raw.str.normalize("NFC"),
    }


class Cleaner:
    """Applies cleaning and the reading profile to batches, reporting into `sink`. Keeps
    per-column state across batches (the date order a column's values settled)."""

    def __init__(self, columns: Sequence[ColumnLike], profile: ReadingProfile,
                 sink: Sink) -> None:
        self.columns = columns
        self.profile = profile
        self.sink = sink
        self.orders: dict[str, str | None] = {c.target.key: profile.date_order
                                              for c in columns}
        self.currencies: dict[str, str] = {}

    def apply(self, frame: pl.DataFrame) -> pl.DataFrame:
        if frame.is_empty() or not self.columns:
            return frame
        keys = [c.target.key for c in self.columns]
        suspect = frame.select(pl.any_horizontal(
            pl.col(k).str.contains(SUSPECT).fill_null(False) for k in keys)).to_series()
        if suspect.any():  # a clean ASCII batch costs this one check per column
            self._text_warnings(frame.filter(suspect))
            frame = frame.with_columns(cleaned_text(pl.col(k)).alias(k) for k in keys)
        for column in self.columns:
            frame = self._read_values(frame, column)
        return frame

    def _text_warnings(self, frame: pl.DataFrame) -> None:
        """Counts of each cleaning kind per column; a trimmed number is not a change."""
        exprs = []
        for column in self.columns:
            key = column.target.key
            for kind, flag in _clean_flags(key).items():
                if kind == "trimmed" and column.target.dtype != "text" and \
                        key not in ("employee_ref", "fund_ref"):
                    continue
                exprs.append(flag.fill_null(False).alias(f"{kind}\x1f{key}"))
        flags = frame.select(pl.col(LINE_COLUMN), *exprs)
        counts = flags.select(pl.all().exclude(LINE_COLUMN).sum()).row(0, named=True)
        by_key = {c.target.key: c for c in self.columns}
        for name, count in counts.items():
            if not count:
                continue
            kind, key = name.split("\x1f")
            rows = frame.filter(flags.get_column(name)).head(SAMPLES)
            samples = [{"row": row, "value": value, "read_as": _clean_one(value)}
                       for row, value in rows.select(LINE_COLUMN, key).iter_rows()]
            self.sink.warn(kind, by_key[key].column, key, count, samples)

    def _read_values(self, frame: pl.DataFrame, column: ColumnLike) -> pl.DataFrame:
        key, dtype = column.target.key, column.target.dtype
        if key in ("employee_ref", "fund_ref") or dtype not in ("decimal", "int", "date",
                                                                 "bool"):
            return frame
        text = pl.col(key)
        if dtype in ("decimal", "int"):
            odd = ~text.str.contains(NUMBER)
            if self.profile.decimal == ",":
                odd = odd | text.str.contains(".", literal=True)
            elif self.profile.decimal is None:  # 1.234: a thousand or one point two?
                odd = odd | text.str.contains(AMBIGUOUS_DOT)
        elif dtype == "date":
            odd = ~text.str.contains(ISO_DATE)
        else:
            odd = text.str.to_lowercase().is_in(["y", "n"])
        pending = frame.filter(text.is_not_null() & odd).select(LINE_COLUMN, key)
        if pending.is_empty():
            return frame
        found: dict[int, str] = {}
        changes: dict[str, list[dict[str, Any]]] = {}
        for row, value in pending.iter_rows():
            try:
                result, kinds = self._read_one(value, dtype, key)
            except Unreadable as problem:
                if problem.rule == "type":
                    continue  # left as it is: the engine reports it with its usual hint
                self.sink.cell_problem(row, column.column, key, value, {problem.rule: True},
                                       str(problem), problem.hint)
                continue
            found[row] = result
            for kind in kinds:
                changes.setdefault(kind, []).append({"row": row, "value": value,
                                                     "read_as": result})
        for kind, items in changes.items():
            self.sink.warn(kind, column.column, key, len(items), items[:SAMPLES],
                           self._message(kind, key))
        if not found:
            return frame
        patch = pl.DataFrame({LINE_COLUMN: list(found), "__read": list(found.values())},
                             schema={LINE_COLUMN: frame.schema[LINE_COLUMN],
                                     "__read": pl.String})
        return (frame.join(patch, on=LINE_COLUMN, how="left", maintain_order="left")
                .with_columns(pl.coalesce("__read", key).alias(key)).drop("__read"))

    def _read_one(self, value: str, dtype: str, key: str) -> tuple[str, set[str]]:
        if dtype == "bool":
            return ("yes" if value.lower() == "y" else "no"), {"yes_no"}
        if dtype == "date":
            result, kinds, settles = read_date(value, self.orders[key])
            if settles and self.orders[key] is None:
                self.orders[key] = settles
                kinds.add("date_order")
            return result, kinds
        result, kinds, currency = read_number(value, self.profile)
        if currency:
            name = CURRENCY_NAMES.get(currency, currency)
            first = self.currencies.setdefault(key, name)
            if first != name:
                raise Unreadable(f"'{value}' is in {name} where the column's first amounts "
                                 f"are in {first}", "Convert the amounts to one currency, "
                                 "or map each currency's amounts separately", "mixed_currency")
        return result, kinds

    def _message(self, kind: str, key: str) -> str:
        if kind == "date_order":
            order = self.orders.get(key)
            return ("dates read day-first (DD/MM/YYYY), as the column's values settle"
                    if order == "dmy" else
                    "dates read month-first (MM/DD/YYYY), as the column's values settle")
        if kind == "currency" and key in self.currencies:
            return f"currency marks removed (amounts in {self.currencies[key]})"
        return MESSAGES[kind]


def _clean_one(value: str) -> str:
    return pl.select(cleaned_text(pl.lit(value, dtype=pl.String))).item() or ""
