"""Numbers and dates the way a reader in the tenant's locale writes them (Babel).

A statement is read by people, so a value is shown by what it means (the plan's `format`
hint: money, percent, points, integer, number), in the tenant's locale (`en-GB`, `en-US`,
`de-DE`, `fr-FR`, any locale Babel knows). Nothing is rounded away: money shows at least its
currency's decimals and every further digit the engine computed (R10: at most 10), so a
statement never shows a figure the engine did not compute. A whole-number format on a value
that is not whole shows the fraction too, rather than hiding it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any

from babel import Locale, UnknownLocaleError
from babel.dates import format_date, format_time
from babel.numbers import format_currency, format_decimal, format_percent

from server.modules.reports.messages import words

MISSING = "—"
DEFAULT_LOCALE = "en-GB"
EXACT = "#,##0.##########"  # every digit R10 can hold, none invented
FORMATS = ("money", "percent", "points", "integer", "number")


@lru_cache(maxsize=32)
def parse_locale(tag: str | None) -> Locale:
    """A Babel locale from a tag like `de-DE` or `fr_FR`; ValueError names a bad tag."""
    text = (tag or DEFAULT_LOCALE).strip().replace("-", "_")
    try:
        return Locale.parse(text)
    except (UnknownLocaleError, ValueError, TypeError):
        raise ValueError(f"unknown locale {tag!r} (use a tag like en-GB, de-DE)") from None


def is_known_locale(tag: Any) -> bool:
    if not isinstance(tag, str) or len(tag) > 20:
        return False
    try:
        parse_locale(tag)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class Localizer:
    """Formats typed values for one locale and currency."""

    locale_tag: str = DEFAULT_LOCALE
    currency: str = "USD"

    @property
    def locale(self) -> Locale:
        return parse_locale(self.locale_tag)

    def money(self, value: Decimal | None) -> str:
        if value is None:
            return MISSING
        return format_currency(value, self.currency, locale=self.locale,
                               decimal_quantization=False)

    def percent(self, value: Decimal | None) -> str:
        """A fraction as a percentage: -0.0132 -> -1.32%."""
        if value is None:
            return MISSING
        return format_percent(value, EXACT + "%", locale=self.locale)

    def points(self, value: Decimal | None) -> str:
        """A value already in percent: 40 -> 40%."""
        return MISSING if value is None else self.percent(value / 100)

    def integer(self, value: Decimal | None) -> str:
        return self.number(value)

    def number(self, value: Decimal | None) -> str:
        """As computed, trailing zeros dropped: 365.0000000000 -> 365, 0.8625 -> 0.8625."""
        if value is None:
            return MISSING
        return format_decimal(value, EXACT, locale=self.locale)

    def date(self, value: date | None) -> str:
        if value is None:
            return MISSING
        return format_date(value, "long", locale=self.locale)

    def timestamp(self, value: datetime | str | None) -> str:
        """An ISO timestamp as a date and time in the locale (UTC as stored)."""
        if value is None or value == "":
            return MISSING
        moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
        return (f"{format_date(moment, 'medium', locale=self.locale)} "
                f"{format_time(moment, 'short', tzinfo=moment.tzinfo, locale=self.locale)}")

    def value(self, value: Any, fmt: str | None = None) -> str:
        """Any typed value (Decimal, bool, date, text, None) by its display format."""
        if value is None:
            return MISSING
        if isinstance(value, bool):
            return words(self.locale_tag)["yes" if value else "no"]
        if isinstance(value, Decimal):
            return getattr(self, fmt if fmt in FORMATS else "number")(value)
        if isinstance(value, date):
            return self.date(value)
        return str(value)
