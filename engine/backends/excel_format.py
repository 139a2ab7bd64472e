"""How Paysheet's workbooks show values, and the range in which the Excel formulas are exact.

Display formats come from the plan itself (the plan document has no format field): a step
whose expression is `round2(…)`, `allocate(…)` or that is the payout shows cents; `round(x, n)`
shows n decimals; other decimals show up to 10 decimals without trailing zeros; dates ISO; bools
and texts as they are. The Tests sheet, the audit workbook and the Results sheet use the same
formats, so one step looks the same everywhere.

The stated range (docs/excel.md, "Exactness and its range"): a workbook recalculated in
binary64 agrees with the engine to the cent while every decimal it holds has a magnitude below
`RANGE_LIMIT` and every number written into a cell (inputs, parameters) has at most
`MAX_DIGITS` significant digits, so the cell holds exactly the engine's decimal. Values outside
are flagged by `out_of_range`, never silently trusted.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from engine.dsl.ast import Type
from engine.plan import CompiledPlan

RANGE_LIMIT = Decimal("1e11")
"""|x| below this keeps cents exact in a double (13 digits, 2 spare for the formulas' noise)."""

MAX_DIGITS = 15
"""A double holds 15 significant decimal digits exactly."""

CENTS = "#,##0.00"
DATE = "yyyy-mm-dd"
TEXT = "@"
DECIMAL = "#,##0.00########"
_ROUND = re.compile(r"^\s*round\s*\([\s\S]*,\s*(\d+)\s*\)\s*$")
_CENTS = re.compile(r"^\s*(round2|allocate)\s*\(")


def step_format(plan: CompiledPlan, name: str) -> str:
    """The Excel number format of step `name` (see the module docstring)."""
    step = next(s for s in plan.steps if s.name == name)
    if step.type == Type.DATE:
        return DATE
    if step.type == Type.TEXT:
        return TEXT
    if step.type == Type.BOOL:
        return "General"
    spec = next(s for s in plan.document.steps if s.name == name)
    if name == plan.payout or _CENTS.match(spec.expr):
        return CENTS
    rounded = _ROUND.match(spec.expr)
    if rounded:
        places = int(rounded.group(1))
        return "#,##0" + ("." + "0" * places if places else "")
    return DECIMAL


def display(value: Any, number_format: str) -> str:
    """`value` as text in `number_format` (for pane and log messages: no 10-place noise)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, date):
        return value.isoformat()
    if not isinstance(value, Decimal | int | float):
        return str(value)
    number = Decimal(str(value))
    if number_format == DECIMAL:
        text = format(number.normalize(), "f")
        return text if "." not in text else text.rstrip("0").rstrip(".")
    places = len(number_format.split(".")[1]) if "." in number_format else 0
    return format(number.quantize(Decimal(1).scaleb(-places)), "f")


def significant_digits(value: Decimal) -> int:
    """Significant digits of a decimal without its trailing zeros (0 has none)."""
    if value == 0:
        return 0
    digits = value.normalize().as_tuple().digits
    return len(digits)


def out_of_range(value: Any, written: bool) -> str | None:
    """Why `value` leaves the stated range, or None. `written` values (inputs, parameters)
    must also fit in a double's 15 significant digits."""
    if isinstance(value, bool) or not isinstance(value, Decimal | int | float):
        return None
    number = Decimal(str(value))
    if abs(number) >= RANGE_LIMIT:
        return f"|{format(number.normalize(), 'f')}| is not below {RANGE_LIMIT:.0e}"
    if written and significant_digits(number) > MAX_DIGITS:
        return (f"{format(number.normalize(), 'f')} has {significant_digits(number)} "
                f"significant digits (a cell holds {MAX_DIGITS})")
    return None


def row_range_flags(inputs: Mapping[str, Any], steps: Mapping[str, Any]) -> list[str]:
    """The stated-range flags of one row: each input or step value that leaves the range."""
    flags = []
    for name, value in inputs.items():
        reason = out_of_range(value, written=True)
        if reason:
            flags.append(f"{name}: {reason}")
    for name, value in steps.items():
        reason = out_of_range(value, written=False)
        if reason:
            flags.append(f"{name}: {reason}")
    return flags
