"""Recalculate a workbook written by the Excel backend with the `formulas` package.

`formulas` is an independent Python implementation of Excel's calculation, so agreement
between its results and the engine's is real evidence that the emitted formulas mean what
the engine computes. Its ROUND is replaced by Excel's: the argument is first taken at 15
significant digits (as Excel displays and rounds it, so ROUND(2.675, 2) is 2.68 although the
double is 2.67499…), then rounded half away from zero.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Context, Decimal
from pathlib import Path
from typing import Any

_WIDE = Context(prec=80)


def excel_round(number: float, digits: float) -> float:
    """Excel's ROUND: 15 significant digits, then half away from zero to `digits`."""
    value = Decimal(format(float(number), ".15g"))
    quantum = Decimal(1).scaleb(-int(digits))
    return float(value.quantize(quantum, rounding=ROUND_HALF_UP, context=_WIDE))


def _install_excel_round() -> None:
    import formulas.functions as functions

    functions.FUNCTIONS["ROUND"] = functions.wrap_ufunc(excel_round)


def recalculate(path: str | Path) -> dict[str, Any]:
    """Every computed cell of the workbook at `path`, by reference like `Calc!B7`
    (sheet names upper-cased as `formulas` reports them). Errors are `formulas` error
    values; test them with `is_error`."""
    import formulas

    _install_excel_round()
    model = formulas.ExcelModel().loads(str(path)).finish()
    solution = model.calculate()
    cells: dict[str, Any] = {}
    for key, ranged in solution.items():
        reference = key.split("]", 1)[-1].replace("'", "")
        if ":" in reference:
            continue
        value = ranged.value[0][0] if hasattr(ranged, "value") else ranged
        cells[reference.upper()] = value
    return cells


def is_error(value: Any) -> bool:
    """True for an Excel error value (#N/A, #DIV/0!, #VALUE!, …): the DSL's null."""
    from formulas.tokens.operand import XlError

    return isinstance(value, XlError)
