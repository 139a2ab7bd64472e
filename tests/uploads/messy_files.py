"""A corpus of messy HR files, each made from one clean table by test code.

Every case is either read into exactly the clean file's values (`SAME`), refused at upload
with a message naming the fix (`refused`), or failed by validation with problems naming the
fix (`problems`). Written for these tests; the values and shapes are those of real exports
(European Excel, payroll systems, hand-kept workbooks).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from tests.uploads.workbook_files import encrypted, ods, xls, xlsx

CATALOG = [
    {"key": "base_salary", "label": "Base salary", "dtype": "decimal"},
    {"key": "performance_score", "label": "Performance score", "dtype": "decimal"},
    {"key": "level", "label": "Level", "dtype": "text",
     "validation": {"allowed": ["analyst", "vp", "md"]}},
    {"key": "team", "label": "Team", "dtype": "text"},
    {"key": "start_date", "label": "Start date", "dtype": "date"},
    {"key": "leave_date", "label": "Leave date", "dtype": "date", "required": False},
    {"key": "target_bonus_pct", "label": "Target bonus", "dtype": "decimal"},
    {"key": "adjustment", "label": "Adjustment", "dtype": "decimal", "required": False},
    {"key": "eligible", "label": "Eligible", "dtype": "bool", "required": False},
]
HEADER = ["Employee ID", "Base Salary", "Score", "Level", "Team", "Start Date", "Leave Date",
          "Target Bonus", "Adjustment", "Eligible"]
MAPPING = dict(zip(["employee_ref", *(c["key"] for c in CATALOG)], HEADER, strict=True))
# (id, salary, score, level, team, start, leave, target, adjustment, eligible)
ROWS: list[tuple[Any, ...]] = [
    ("E001", "85000.50", "3.5", "md", "Fixed Income NY", date(2020, 1, 31), None, "0.12",
     "-150000.00", True),
    ("E002", "120000", "4", "vp", "Crédit Desk", date(2019, 12, 13), date(2025, 6, 30), "0.2",
     "0", False),
    ("E003", "64000.25", "2.75", "analyst", "O\u2019Neil Team", date(2021, 3, 5), None,
     "0.125", "1500.5", True),
    ("E004", "1250000", "5", "md", "Fixed Income NY", date(2018, 7, 4), None, "0.3", None,
     False),
    ("E005", "99999.99", "1", "analyst", "Crédit Desk", date(2022, 11, 11), date(2025, 1, 2),
     "0.05", "-20.5", True),
]
SALARY, SCORE, LEVEL, TEAM, START, LEAVE, TARGET, ADJUST, ELIGIBLE = range(1, 10)


def text_table() -> list[list[str]]:
    """The clean table as a CSV export holds it (ISO dates, plain numbers)."""
    def cell(value: Any) -> str:
        if value is None:
            return ""
        if isinstance(value, bool):
            return "yes" if value else "no"
        return value.isoformat() if isinstance(value, date) else str(value)
    return [list(HEADER)] + [[cell(v) for v in row] for row in ROWS]


def to_csv(table: list[list[str]], delimiter: str = ",", encoding: str = "utf-8",
           newline: str = "\n") -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator=newline).writerows(table)
    return buffer.getvalue().encode(encoding)


def edit(column: int, change: Callable[[str, int], str]) -> list[list[str]]:
    """The clean text table with `change(value, data_row_index)` applied to one column."""
    table = text_table()
    for index, row in enumerate(table[1:]):
        row[column] = change(row[column], index) if row[column] else row[column]
    return table


def _dmy(value: str, _: int) -> str:
    return f"{value[8:10]}/{value[5:7]}/{value[:4]}"


def _mdy(value: str, _: int) -> str:
    return f"{value[5:7]}/{value[8:10]}/{value[:4]}"


def _serial(value: str, _: int) -> str:
    return str((date.fromisoformat(value) - date(1899, 12, 30)).days)


def _money(value: str, _: int) -> str:
    number = Decimal(value)
    text = f"{abs(number):,.2f}"
    return f"({text})" if number < 0 else text


def _european(value: str, _: int) -> str:
    number = Decimal(value)
    text = f"{number:,.2f}".replace(",", "_").replace(".", ",").replace("_", ".")
    return text


def _percent(value: str, _: int) -> str:
    return f"{(Decimal(value) * 100).normalize():f}%"


def _typed_rows(percent_as_number: bool = True) -> list[list[Any]]:
    """The clean table with real numbers, dates and booleans, as a workbook holds it."""
    rows: list[list[Any]] = [list(HEADER)]
    for row in ROWS:
        rows.append([row[0], float(row[1]), float(row[2]), row[3], row[4], row[5], row[6],
                     float(row[7]) if percent_as_number else row[7],
                     float(row[8]) if row[8] is not None else None,
                     "yes" if row[9] else "no"])
    return rows


def _with_title(rows: list[list[Any]]) -> list[list[Any]]:
    return [["Year-end bonus data, fund manager X"], ["Confidential"], [], *rows]


def _european_file() -> bytes:
    table = edit(SALARY, _european)
    for column in (SCORE, TARGET, ADJUST):
        table = _apply(table, column, lambda v, _: v.replace(".", ","))
    table = _apply(table, START, _dmy)
    return to_csv(table, ";", "cp1252", "\r\n")


def _apply(table: list[list[str]], column: int, change: Callable[[str, int], str]
           ) -> list[list[str]]:
    for index, row in enumerate(table[1:]):
        row[column] = change(row[column], index) if row[column] else row[column]
    return table


def _whole_numbers(table: list[list[str]]) -> list[list[str]]:
    """No other column settles the decimal separator (a 3.5 would: '.' is decimal)."""
    for column in (SCORE, TARGET, ADJUST):
        table = _apply(table, column, lambda v, _: v.split(".")[0])
    return table


def _append(table: list[list[str]], *rows: list[str]) -> list[list[str]]:
    return table + [list(r) for r in rows]


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    make: Callable[[], bytes]
    outcome: str = "same"            # same | refused | problems
    words: tuple[str, ...] = ()      # in the refusal, or in the problems' message + hint
    warns: tuple[str, ...] = ()      # warning kinds the report must hold


CASES = [
    Case("clean csv", "clean.csv", lambda: to_csv(text_table())),
    Case("trailing spaces in keys and text", "spaces.csv",
         lambda: to_csv(_apply(edit(LEVEL, lambda v, _: v + " "), 0, lambda v, _: f" {v} ")),
         warns=("trimmed",)),
    Case("non-breaking spaces", "nbsp.csv",
         lambda: to_csv(edit(TEAM, lambda v, _: v.replace(" ", "\u00a0"))), warns=("nbsp",)),
    Case("line breaks inside cells", "breaks.csv",
         lambda: to_csv(edit(TEAM, lambda v, _: v.replace(" ", "\n", 1))),
         warns=("line_break",)),
    Case("decomposed accents (NFD)", "nfd.csv",
         lambda: to_csv(edit(TEAM, lambda v, _: v.replace("é", "e\u0301"))), warns=("nfc",)),
    Case("windows-1252", "cp1252.csv", lambda: to_csv(text_table(), encoding="cp1252")),
    Case("utf-8 with BOM", "bom.csv", lambda: to_csv(text_table(), encoding="utf-8-sig")),
    Case("utf-16 tab-separated (Excel Unicode text)", "unicode.txt",
         lambda: to_csv(text_table(), "\t", "utf-16", "\r\n")),
    Case("tab-separated, CRLF", "tabs.tsv", lambda: to_csv(text_table(), "\t", "utf-8", "\r\n")),
    Case("european excel: semicolons, decimal commas, day-first", "european.csv",
         _european_file, warns=("decimal_comma", "thousands", "date_format")),
    Case("thousands separators and parentheses", "money.csv",
         lambda: to_csv(_apply(edit(SALARY, _money), ADJUST, _money)),
         warns=("thousands", "parenthesised_negative")),
    Case("currency symbols", "dollars.csv",
         lambda: to_csv(edit(SALARY, lambda v, _: "$" + v)), warns=("currency",)),
    Case("currency codes after amounts", "codes.csv",
         lambda: to_csv(edit(SALARY, lambda v, _: v + " USD")), warns=("currency",)),
    Case("trailing minus", "minus.csv",
         lambda: to_csv(edit(ADJUST, lambda v, _: v[1:] + "-" if v.startswith("-") else v)),
         warns=("trailing_minus",)),
    Case("percent cells", "percent.csv", lambda: to_csv(edit(TARGET, _percent)),
         warns=("percent",)),
    Case("day-first dates", "dmy.csv", lambda: to_csv(_apply(edit(START, _dmy), LEAVE, _dmy)),
         warns=("date_format",)),
    Case("month-first dates", "mdy.csv",
         lambda: to_csv(_apply(edit(START, _mdy), LEAVE, _mdy)), warns=("date_format",)),
    Case("excel serial dates", "serial.csv", lambda: to_csv(edit(START, _serial)),
         warns=("serial_date",)),
    Case("date-times at midnight", "midnight.csv",
         lambda: to_csv(edit(START, lambda v, _: v + " 00:00:00")), warns=("midnight_time",)),
    Case("Y/N booleans", "yn.csv",
         lambda: to_csv(edit(ELIGIBLE, lambda v, _: "Y" if v == "yes" else "N")),
         warns=("yes_no",)),
    Case("title block above the header", "title.csv",
         lambda: to_csv([["Bonus data 2025", "", ""], ["exported 2025-12-31"], [], *text_table()])),
    Case("empty trailing columns", "trailing.csv",
         lambda: to_csv([[*row, "", ""] for row in text_table()])),
    Case("xlsx", "clean.xlsx", lambda: xlsx({"Data": _typed_rows()})),
    Case("xlsx data on the second sheet, title block, duplicated header", "second.xlsx",
         lambda: xlsx({"Read me": [["How to fill this in"], ["one row per employee"]],
                       "Staff": _with_title([[*row, f"note {i}", f"note {i}"] for i, row in
                                             enumerate(_typed_rows())])})),
    Case("xlsx dates as date-times at midnight", "datetimes.xlsx",
         lambda: xlsx({"S": [[datetime.combine(v, datetime.min.time())
                              if isinstance(v, date) else v for v in row]
                             for row in _typed_rows()]})),
    Case("xls (Excel 97-2003)", "old.xls", lambda: xls(_typed_rows())),
    Case("ods (LibreOffice)", "calc.ods", lambda: ods(_typed_rows())),
    Case("xlsx formulas without saved values", "formulas.xlsx",
         lambda: xlsx({"S": [[*row[:2], "=1+1", *row[3:]] for row in _typed_rows()]}),
         "refused", ("Calculate Now",)),
    Case("password-protected xlsx", "locked.xlsx",
         lambda: encrypted(xlsx({"S": _typed_rows()})), "refused", ("Encrypt with Password",)),
    Case("xlsx date-time with a time of day", "times.xlsx",
         lambda: xlsx({"S": [[*row[:5], datetime(2020, 1, 31, 9, 30), *row[6:]]
                             if row[0] == "E001" else row for row in _typed_rows()]}),
         "problems", ("time of day", "Format Cells")),
    Case("totals row at the bottom", "totals.csv",
         lambda: to_csv(_append(text_table(), ["Total", "1618999.74", "", "", "", "", "", "",
                                               "", ""])),
         "problems", ("totals row", "Delete totals")),
    Case("thousands or decimals, unsettled (no value says which)", "unsettled.csv",
         lambda: to_csv(_whole_numbers(edit(SALARY, lambda v, i: [
             "85,000", "120,000", "64,000", "125,000", "99,999"][i]))),
         "problems", ("ambiguous", "decimal separator")),
    Case("mixed currencies", "currencies.csv",
         lambda: to_csv(edit(SALARY, lambda v, i: ("€" if i == 3 else "$") + v)),
         "problems", ("EUR", "one currency")),
    Case("key duplicated once spaces are trimmed", "dupe.csv",
         lambda: to_csv(_apply(text_table(), 0, lambda v, i: "E001 " if i == 1 else v)),
         "problems", ("duplicate",)),
    Case("binary file renamed .csv", "photo.csv", lambda: bytes(range(256)) * 20,
         "refused", ("not text",)),
]
