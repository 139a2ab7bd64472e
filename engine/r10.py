"""Rule R10 primitives on Python Decimals (ENGINE.md §4), shared by the plan loader, the
reference backend and the hashing/CSV code.

Every value is fixed-point with exactly 10 decimal places. Operations run in a private
context of precision 100 with ROUND_HALF_EVEN (precision 28 cannot hold numeric(38,10)).
Values are kept quantised to 10 dp, so `format(x, 'f')` is the R10 text form.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import ROUND_FLOOR, ROUND_HALF_EVEN, Context, Decimal

CONTEXT = Context(prec=100, rounding=ROUND_HALF_EVEN, Emax=999999, Emin=-999999)
QUANTUM = Decimal("1E-10")
ZERO = Decimal("0E-10")
ONE = Decimal("1.0000000000")
LIMIT = Decimal(10) ** 28
SCALE = 10**10


def r10(value: Decimal) -> Decimal:
    """Round to 10 dp, half to even, and normalise -0 to 0."""
    result = value.quantize(QUANTUM, rounding=ROUND_HALF_EVEN, context=CONTEXT)
    return ZERO if result.is_zero() else result


def round_to(value: Decimal, places: int) -> Decimal:
    """Round half-even to `places` (0..10) decimals, then re-express with 10 dp."""
    rounded = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_EVEN, context=CONTEXT)
    return r10(rounded)


def floor_to(value: Decimal, places: int) -> Decimal:
    """Round toward minus infinity to `places` decimals, re-expressed with 10 dp."""
    floored = value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_FLOOR, context=CONTEXT)
    return r10(floored)


def add(a: Decimal, b: Decimal) -> Decimal:
    return r10(CONTEXT.add(a, b))


def total(values: Iterable[Decimal | None]) -> Decimal:
    """The exact sum of the non-null values (aggregates skip nulls); 0 when there are none."""
    result = ZERO
    for value in values:
        if value is not None:
            result = add(result, value)
    return result


def sub(a: Decimal, b: Decimal) -> Decimal:
    return r10(CONTEXT.subtract(a, b))


def mul(a: Decimal, b: Decimal) -> Decimal:
    """Exact product (at most 76 digits, within precision 100), rounded once to 10 dp."""
    return r10(CONTEXT.multiply(a, b))


def _scaled(value: Decimal) -> int:
    return int(value.scaleb(10, context=CONTEXT))


def div(a: Decimal, b: Decimal) -> Decimal:
    """a / b computed exactly on scaled integers, rounded once half-even to 10 dp.

    b must be non-zero. Integer arithmetic avoids the double rounding a 100-digit
    Decimal quotient followed by a quantise could, in principle, introduce.
    """
    numerator, denominator = _scaled(a) * SCALE, _scaled(b)
    if denominator < 0:
        numerator, denominator = -numerator, -denominator
    quotient, remainder = divmod(numerator, denominator)
    twice = 2 * remainder
    if twice > denominator or (twice == denominator and quotient % 2 == 1):
        quotient += 1
    return r10(Decimal(quotient).scaleb(-10, context=CONTEXT))


def mod(a: Decimal, b: Decimal) -> Decimal:
    """Floored modulo (the result takes the divisor's sign): -7 % 3 == 2. b non-zero."""
    return r10(Decimal(_scaled(a) % _scaled(b)).scaleb(-10, context=CONTEXT))


def text(value: Decimal) -> str:
    """The R10 text form: exactly 10 decimals, no exponent, no negative zero."""
    return format(r10(value), "f")


def overflows(value: Decimal) -> bool:
    return abs(value) >= LIMIT
