"""Reading profiles: how a file writes numbers and dates, and reading one value by it.

A profile says which decimal and thousands separators the file uses, whether dates are
day-first or month-first, and which currency marks it carries. `detect_profile` settles
what the file's own values settle (`1.234,50` settles a decimal comma, `31/12/2025`
day-first); what they do not settle stays None and every value that depends on it is a
problem naming the choice to make, never a guess. The user confirms or overrides the
profile in the preview (`PUT /uploads/{id}/reading`).

`read_number` and `read_date` turn one cell into the engine's canonical text (`-1234.5`,
`2025-12-31`) and say what they did (`percent`, `currency`, ...), so each change becomes a
visible warning. Digits are moved as text: a number never passes through a float (R10).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

CURRENCY_SYMBOLS = "$€£¥₣₹"
CURRENCY_CODES = ("USD", "EUR", "GBP", "CHF", "JPY", "SGD", "HKD", "CAD", "AUD", "SEK", "NOK",
                  "DKK", "CNY", "INR", "ZAR", "NZD")
EXCEL_EPOCH = date(1899, 12, 30)
MAX_SERIAL = 2_958_465  # 9999-12-31
MIN_SERIAL = 10_000  # 1927-05-18: smaller whole numbers in a date column are more likely years

_CODE = "|".join(CURRENCY_CODES)
_CURRENCY = re.compile(rf"^(?:[{CURRENCY_SYMBOLS}]|(?:{_CODE})\b)\s*|\s*(?:[{CURRENCY_SYMBOLS}]|"
                       rf"\b(?:{_CODE}))$", re.IGNORECASE)
_CORE = re.compile(r"^\d[\d.,' \u00a0\u202f]*$|^[.,]\d+$")
_GROUPED = re.compile(r"^(\d*|\d{1,3}([.,' \u00a0\u202f]\d{3})+)$")
_CANONICAL = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)$")
_DMY = re.compile(r"^(\d{1,2})([/.-])(\d{1,2})\2(\d{4}|\d{2})"
                  r"(?:[ T](\d{1,2}):(\d{2})(?::(\d{2}))?)?$")
_ISO = re.compile(r"^(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})(?:[ T](\d{1,2}):(\d{2})(?::(\d{2})"
                  r"(?:\.\d+)?)?)?$")
_SERIAL = re.compile(r"^\d{2,7}(\.0+)?$")
_NAMED_FORMATS = ("%d-%b-%Y", "%d %b %Y", "%d %B %Y", "%b %d, %Y", "%B %d, %Y", "%d-%B-%Y",
                  "%d.%b.%Y", "%b %d %Y")


@dataclass
class ReadingProfile:
    """How the file writes numbers and dates; None = not settled by the file."""

    decimal: str | None = None
    thousands: str | None = None
    date_order: str | None = None
    currencies: list[str] = field(default_factory=list)
    percent: str = "fraction"
    decided: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any] | None) -> ReadingProfile:
        data = data or {}
        known = {"decimal", "thousands", "date_order", "currencies", "percent", "decided"}
        return cls(**{k: v for k, v in data.items() if k in known})


class Unreadable(ValueError):
    """A value that cannot be read (or only by guessing); the message names the fix."""

    def __init__(self, message: str, hint: str, rule: str) -> None:
        super().__init__(message)
        self.hint = hint
        self.rule = rule


def _strip_marks(text: str) -> tuple[str, bool, set[str], str | None]:
    """(core, negative, kinds of marks removed, currency mark) of a formatted number."""
    kinds: set[str] = set()
    negative = False
    core = text
    if core.startswith("(") and core.endswith(")"):
        core, negative = core[1:-1].strip(), True
        kinds.add("parenthesised_negative")
    if core.endswith("-") and not core.startswith(("-", "+")):
        core, negative = core[:-1].strip(), True
        kinds.add("trailing_minus")
    if core.startswith(("-", "+")) and len(core) > 1 and not core[1].isdigit():
        negative, core = core[0] == "-", core[1:].strip()
    currency = None
    for _ in range(2):
        match = _CURRENCY.search(core)
        if match:
            currency = match.group(0).strip().upper()
            core = (core[:match.start()] + core[match.end():]).strip()
            kinds.add("currency")
    if core.startswith(("-", "+")) and not negative:
        negative, core = core[0] == "-", core[1:].strip()
    return core, negative, kinds, currency


AMBIGUOUS_DOT = r"^[+-]?[1-9]\d{0,2}\.\d{3}$"


def number_shape(core: str) -> tuple[str | None, str | None]:
    """(decimal separator, thousands separator) that a number's digits settle, else None."""
    seps = [c for c in core if c in ".,' \u00a0\u202f"]
    if not seps:
        return None, None
    marks = set(seps)
    if len(marks) >= 2:
        last = seps[-1]
        if last in ".," and seps.count(last) == 1:
            others = [s for s in marks if s != last]
            return last, others[0] if len(others) == 1 else None
        return None, None
    mark = seps[0]
    groups = re.split(r"[.,' \u00a0\u202f]", core)
    if mark in "' \u00a0\u202f":
        return None, mark
    if len(seps) > 1:
        return ("," if mark == "." else "."), mark
    if len(groups[-1]) != 3 or groups[0] in ("", "0"):
        return mark, None
    return None, None  # 1,234 or 1.234: thousands or decimals, the file must say


def read_number(text: str, profile: ReadingProfile) -> tuple[str, set[str], str | None]:
    """(canonical number text, kinds of change, currency mark) or Unreadable."""
    core, negative, kinds, currency = _strip_marks(text.strip())
    percent = core.endswith("%")
    if percent:
        core = core[:-1].strip()
        kinds.add("percent")
    if not _CORE.match(core):
        raise Unreadable("not a number", "Use digits, e.g. 1234.56", "type")
    decimal, _ = number_shape(core)
    if decimal and profile.decimal and decimal != profile.decimal:
        raise Unreadable(f"'{text}' has '{decimal}' as decimal separator where the file uses "
                         f"'{profile.decimal}'", "Check the value, or correct the reading "
                         "profile's decimal separator in the preview", "mixed_separators")
    decimal = decimal or profile.decimal
    if decimal is None and any(c in core for c in ".,"):
        raise Unreadable(
            f"'{text}' is ambiguous: the file does not say whether ',' or '.' is the "
            "decimal separator", "Set the reading profile's decimal separator in the "
            "preview (1,234 is one thousand two hundred and thirty-four with '.' as "
            "decimal separator, 1.234 with ',')", "ambiguous_number")
    whole = core.rsplit(decimal, 1)[0] if decimal and decimal in core else core
    if not _GROUPED.match(whole):
        raise Unreadable("not a number", "Use digits, e.g. 1234.56", "type")
    digits = core
    for mark in ".,' \u00a0\u202f":
        if mark != decimal and mark in digits:
            digits = digits.replace(mark, "")
            kinds.add("thousands")
    if decimal == "," and "," in digits:
        digits = digits.replace(",", ".")
        kinds.add("decimal_comma")
    if digits.count(".") > 1:
        raise Unreadable("not a number", "Use one decimal separator", "type")
    if percent:
        digits = _shift_left(digits, 2)
    canonical = ("-" if negative else "") + digits
    if not _CANONICAL.match(canonical):
        raise Unreadable("not a number", "Use digits, e.g. 1234.56", "type")
    return canonical, kinds, currency


def _shift_left(digits: str, places: int) -> str:
    """Divide a plain decimal text by 10**places exactly (12.5 → 0.125)."""
    whole, _, fraction = digits.partition(".")
    whole = whole.rjust(places + 1, "0")
    out = f"{whole[:-places]}.{whole[-places:]}{fraction}".rstrip("0").rstrip(".")
    head, _, tail = out.partition(".")
    return (head.lstrip("0") or "0") + (f".{tail}" if tail else "")


def _time_problem(text: str, hour: str, minute: str) -> Unreadable:
    return Unreadable(
        f"'{text}' holds a time of day ({int(hour):02d}:{minute}), not just a date",
        "In Excel, give the column a date format without time (Format Cells → Date) and "
        "remove the times, e.g. with =INT(A2) pasted as values; the plan reads dates only",
        "time_of_day")


def read_date(text: str, order: str | None) -> tuple[str, set[str], str | None]:
    """(ISO date, kinds of change, order the value settles) or Unreadable. `order` is the
    profile's (or the column's settled) dmy/mdy, None when not settled."""
    text = text.strip()
    iso = _ISO.match(text)
    if iso:
        year, month, day, hour, minute, second = iso.groups()
        kinds = set()
        if hour is not None:
            if int(hour) or int(minute) or int(second or 0):
                raise _time_problem(text, hour, minute)
            kinds.add("midnight_time")
        if "-" not in text[:10] or len(month) == 1 or len(day) == 1:
            kinds.add("date_format")
        return _iso(int(year), int(month), int(day), text), kinds, None
    match = _DMY.match(text)
    if match:
        return _read_dmy(text, match, order)
    if _SERIAL.match(text) and MIN_SERIAL <= int(float(text)) <= MAX_SERIAL:
        day = EXCEL_EPOCH + timedelta(days=int(float(text)))
        return day.isoformat(), {"serial_date"}, None
    for pattern in _NAMED_FORMATS:
        try:
            return datetime.strptime(text, pattern).date().isoformat(), {"date_format"}, None
        except ValueError:
            continue
    raise Unreadable("not a date", "Write dates as YYYY-MM-DD, e.g. 2025-03-31", "type")


def _read_dmy(text: str, match: re.Match[str], order: str | None
              ) -> tuple[str, set[str], str | None]:
    first, _, second, year, hour, minute, second_s = match.groups()
    kinds = {"date_format"}
    if hour is not None:
        if int(hour) or int(minute) or int(second_s or 0):
            raise _time_problem(text, hour, minute)
        kinds.add("midnight_time")
    if len(year) == 2:
        raise Unreadable(f"'{text}' has a two-digit year", "Write the year with four digits "
                         "(in Excel: Format Cells → Date → a format with yyyy)", "two_digit_year")
    a, b = int(first), int(second)
    settles = "dmy" if a > 12 else "mdy" if b > 12 else None
    use = settles or order or ("dmy" if a == b else None)
    if settles and order and settles != order:
        raise Unreadable(f"'{text}' cannot be {'day-first' if order == 'dmy' else 'month-first'}"
                         " like the rest of the column", "Check the value: the column mixes "
                         "day-first and month-first dates", "mixed_date_order")
    if use is None:
        raise Unreadable(
            f"'{text}' is ambiguous: day-first it is {_words(a, b)}, month-first "
            f"{_words(b, a)}", "Set the reading profile's date order (day-first or "
            "month-first) in the preview, or write dates as YYYY-MM-DD", "ambiguous_date")
    day, month = (a, b) if use == "dmy" else (b, a)
    return _iso(int(year), month, day, text), kinds, settles


def _words(day: int, month: int) -> str:
    try:
        return date(2000, month, day).strftime("%-d %B")
    except ValueError:
        return "no date"


def _iso(year: int, month: int, day: int, text: str) -> str:
    try:
        return date(year, month, day).isoformat()
    except ValueError:
        raise Unreadable(f"'{text}' is not a calendar date", "Correct the date",
                         "type") from None


def detect_profile(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> ReadingProfile:
    """The separators, date order and currencies the sample's values settle."""
    decimal: Counter[str] = Counter()
    thousands: Counter[str] = Counter()
    orders: Counter[str] = Counter()
    currencies: Counter[str] = Counter()
    examples: dict[str, str] = {}
    for row in rows:
        for cell in row:
            text = cell.strip()
            if not text:
                continue
            if _CANONICAL.match(text):
                shape = number_shape(text.lstrip("+-"))[0]
                if shape:
                    decimal[shape] += 1
                    examples.setdefault(f"decimal:{shape}", text)
                continue
            _detect_cell(text, decimal, thousands, orders, currencies, examples)
    profile = ReadingProfile(currencies=sorted(currencies))
    profile.decimal = _settled(decimal, "decimal", examples, profile)
    profile.thousands = _settled(thousands, "thousands", examples, profile)
    profile.date_order = _settled(orders, "date_order", examples, profile)
    if profile.decimal and profile.thousands == profile.decimal:
        profile.thousands = None
    return profile


def _detect_cell(text: str, decimal: Counter[str], thousands: Counter[str],
                 orders: Counter[str], currencies: Counter[str], examples: dict[str, str]
                 ) -> None:
    match = _DMY.match(text)
    if match:
        a, b = int(match.group(1)), int(match.group(3))
        if a > 12 or b > 12:
            order = "dmy" if a > 12 else "mdy"
            orders[order] += 1
            examples.setdefault(f"date_order:{order}", text)
        return
    core, _, _, currency = _strip_marks(text)
    core = core.removesuffix("%").strip()
    if not _CORE.match(core):
        return
    if currency:
        currencies[currency] += 1
    dec, thou = number_shape(core)
    if dec:
        decimal[dec] += 1
        examples.setdefault(f"decimal:{dec}", text)
    if thou:
        thousands[thou] += 1
        examples.setdefault(f"thousands:{thou}", text)


def _settled(votes: Counter[str], name: str, examples: dict[str, str],
             profile: ReadingProfile) -> str | None:
    if len(votes) == 1:
        value = next(iter(votes))
        profile.decided[name] = f"detected from values like '{examples[f'{name}:{value}']}'"
        return value
    if len(votes) > 1:
        shown = ", ".join(f"'{examples[f'{name}:{v}']}'" for v in votes)
        profile.decided[name] = f"not settled: the file has values read both ways ({shown})"
    return None
