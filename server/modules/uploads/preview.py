"""Preview: each column's likely type over the first rows, and what reading will do to its
values (`12%` → 0.12, `(150)` → -150, `31/12/2025` → 2025-12-31), or why it cannot.

Uses the same readers as validation (`profile.read_number`, `read_date`) with the upload's
reading profile, so what the preview says is what validation will do.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from engine.data import ISO_DATE, NUMBER
from server.modules.uploads.normalise import MESSAGES
from server.modules.uploads.profile import (
    AMBIGUOUS_DOT,
    ReadingProfile,
    Unreadable,
    read_date,
    read_number,
)

FORMULA_START = ("=", "+", "-", "@")
BOOL_WORDS = {"true", "false", "yes", "no"}
MAX_WARNINGS = 20
_NUMBER_RE = re.compile(NUMBER)
_DATE_RE = re.compile(ISO_DATE)
_AMBIGUOUS = re.compile(AMBIGUOUS_DOT)
_SPACES = re.compile(r"[\u00a0\u2007\u202f\r\n]")


def _kind(value: str, profile: ReadingProfile) -> tuple[str, str | None, list[str], str | None]:
    """(kind, value as read, kinds of change, problem) of one non-empty cell."""
    if _NUMBER_RE.match(value) and not (profile.decimal == "," and "." in value) and not (
            profile.decimal is None and _AMBIGUOUS.match(value)):
        return ("int" if "." not in value else "decimal"), value, [], None
    if _DATE_RE.match(value):
        return "date", value, [], None
    if value.lower() in BOOL_WORDS:
        return "bool", value, [], None
    try:
        read, kinds, _ = read_number(value, profile)
        return ("int" if "." not in read else "decimal"), read, sorted(kinds), None
    except Unreadable as problem:
        number_problem = str(problem) if problem.rule != "type" else None
    try:
        read, kinds, _ = read_date(value, profile.date_order)
        return "date", read, sorted(kinds), None
    except Unreadable as problem:
        if problem.rule != "type":
            return "date", None, [], f"{problem} ({problem.hint})"
    if number_problem:
        return "decimal", None, [], number_problem
    return "text", value, [], None


def infer_column(name: str, values: Sequence[tuple[int, str]], profile: ReadingProfile
                 ) -> tuple[str, list[dict[str, Any]]]:
    """Inferred type of a column from (row, value) samples, and per cell what reading does
    to it (`read_as` and why) or why it will not load."""
    filled = [(row, v) for row, v in values if v.strip()]
    if not filled:
        return "empty", []
    looked = [(row, value, *_kind(value.strip(), profile)) for row, value in filled]
    kinds = Counter(kind for _, _, kind, *_ in looked)
    numeric = kinds["int"] + kinds["decimal"]
    if numeric >= max(kinds["date"], kinds["bool"], kinds["text"]):
        inferred = "decimal" if kinds["decimal"] else "int"
    else:
        inferred = max(("date", "bool", "text"), key=lambda k: kinds[k])
    warnings: list[dict[str, Any]] = []
    for row, value, kind, read, changes, problem in looked:
        entry = {"row": row, "column": name, "value": value}
        same_family = (kind in ("int", "decimal")) == (inferred in ("int", "decimal"))
        if problem and (kind == inferred or same_family):
            warnings.append({**entry, "message": problem})
        elif inferred in ("int", "decimal", "date") and not same_family and kind != inferred:
            wanted = "a date" if inferred == "date" else "a number"
            warnings.append({**entry, "message": f"not {wanted}"})
        elif changes and same_family:
            warnings.append({**entry, "read_as": read,
                             "message": "; ".join(MESSAGES[c] for c in changes)})
        elif inferred == "text" and value.startswith(FORMULA_START):
            warnings.append({**entry, "message": "starts with = + - or @ (spreadsheet formula)"})
        elif inferred == "text" and (value != value.strip() or _SPACES.search(value)):
            warnings.append({**entry, "read_as": " ".join(value.split()),
                             "message": "spaces, non-breaking spaces or line breaks cleaned"})
    return inferred, warnings[:MAX_WARNINGS]
