"""How report values look: exact decimal text for people, typed values for spreadsheets.

Nothing here rounds. A decimal is shown with every significant digit it has (R10: at most 10
decimals), with thousands separators and at least two decimals, so a statement never shows a
figure the engine did not compute.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from typing import Any

from engine.dsl.ast import Type

MISSING = "—"
HEX_COLOUR = re.compile(r"#[0-9A-Fa-f]{6}")
# XLSX number formats: at least 2 decimals, up to the 10 of R10; dates ISO.
XLSX_DECIMAL_FORMAT = "#,##0.00########;-#,##0.00########"
XLSX_DATE_FORMAT = "yyyy-mm-dd"


def typed_value(kind: Type, raw: Any) -> Any:
    """A tape/JSON value (R10 string, ISO date, bool, text, None) as its Python type.

    Raises ValueError naming the problem when the value does not fit the type (a tape that
    does not belong to the plan it is rendered with)."""
    if raw is None:
        return None
    if kind is Type.DECIMAL:
        if isinstance(raw, bool) or not isinstance(raw, str | int | Decimal):
            raise ValueError(f"expected a decimal string, got {raw!r}")
        return Decimal(raw)
    if kind is Type.BOOL:
        if not isinstance(raw, bool):
            raise ValueError(f"expected true or false, got {raw!r}")
        return raw
    if kind is Type.DATE:
        return raw if isinstance(raw, date) else date.fromisoformat(str(raw))
    if not isinstance(raw, str):
        raise ValueError(f"expected text, got {raw!r}")
    return raw


def decimal_text(value: Decimal) -> str:
    """Thousands separators, at least 2 decimals, no trailing zeros beyond them, no rounding:
    Decimal('18617.0500000000') -> '18,617.05'; Decimal('0.8625000000') -> '0.8625'."""
    sign = "-" if value.is_signed() and value != 0 else ""
    whole, _, fraction = format(abs(value), "f").partition(".")
    fraction = fraction.rstrip("0").ljust(2, "0")
    return f"{sign}{int(whole):,}.{fraction}"


def display(value: Any) -> str:
    """A typed value as statement text."""
    if value is None:
        return MISSING
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return decimal_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def money(value: Decimal | None, currency: str) -> str:
    """`USD 19,399.48` (or the missing mark)."""
    return MISSING if value is None else f"{currency} {decimal_text(value)}"


def colour(value: Any, fallback: str) -> str:
    """A `#RRGGBB` colour from tenant settings, or `fallback` (never raw text into CSS)."""
    return value if isinstance(value, str) and HEX_COLOUR.fullmatch(value) else fallback


MAX_LOGO_BYTES = 64 * 1024
_SVG_REFUSED = re.compile(r"<!(DOCTYPE|ENTITY)|<script|\bhref\s*=\s*[\"'](?!#)|<foreignObject",
                          re.IGNORECASE)


def safe_svg(value: Any) -> str | None:
    """A tenant logo as SVG text, or None: at most 64 KiB, a well-formed `<svg>` document
    with no DTD/entities, scripts, foreign objects or external references (only `#id`
    links). Renderers never fetch anything, this keeps the logo from trying."""
    if not isinstance(value, str) or len(value.encode("utf-8")) > MAX_LOGO_BYTES:
        return None
    if _SVG_REFUSED.search(value):
        return None
    import xml.etree.ElementTree as ElementTree  # parsing only well-formedness, no DTD here

    try:
        root = ElementTree.fromstring(value)
    except ElementTree.ParseError:
        return None
    return value if root.tag in ("svg", "{http://www.w3.org/2000/svg}svg") else None
