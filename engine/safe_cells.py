"""Formula-injection guard for every CSV and XLSX cell the product writes (one shared rule).

Spreadsheet programs execute a cell whose text begins with `=`, `+`, `-` or `@` (and some
treat a leading tab or carriage return the same way), so a hostile employee name such as
`=HYPERLINK("http://x","y")` would become a live formula in an exported file. Every writer
passes its cells through `safe_cell` (typed values) or `safe_text` (CSV text): such text gets
a leading `'`, which makes it inert text; numbers stay numbers.

This lives in `engine` (pure, no dependencies) rather than `server` because `engine` may not
import `server`, while both the server's exports and any engine-side writer need the rule.
The engine's canonical results CSV (docs/engine.md §10) is deliberately NOT neutralised: it is
a hashing format that must stay byte-identical across backends, not a file for people.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import Decimal
from typing import Any

TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
ESCAPE = "'"
# Plain numbers written as text ("-1250.5000000000", R10 strings) are data, not formulas.
_PLAIN_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def is_dangerous(text: str) -> bool:
    """True when a spreadsheet could read `text` as a formula (or a DDE payload)."""
    return text.startswith(TRIGGERS) and _PLAIN_NUMBER.fullmatch(text) is None


def safe_text(text: str) -> str:
    """`text` made inert for a spreadsheet: prefixed with `'` when it starts like a formula."""
    return ESCAPE + text if is_dangerous(text) else text


def safe_cell(value: Any) -> Any:
    """A cell value for a CSV or XLSX writer: strings neutralised, everything else (numbers,
    booleans, dates, None) unchanged so numeric cells keep their type."""
    if isinstance(value, str):
        return safe_text(value)
    if value is None or isinstance(value, bool | int | Decimal | date | datetime):
        return value
    if isinstance(value, float):
        raise TypeError("floats are not written to exports: money is never a float")
    return safe_text(str(value))


def csv_text(value: Any) -> str:
    """A typed value as neutralised CSV text: None empty, booleans true/false, dates ISO,
    decimals exactly as given (never through a float)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, date | datetime):
        return value.isoformat()
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    return safe_cell(value)
