"""An independent R10 oracle for the engine tests: rationals rounded with integers only."""

from __future__ import annotations

from decimal import Context, Decimal
from fractions import Fraction


def exact_r10(value: Fraction) -> Decimal:
    """Round a rational to 10 places, half to even, without Decimal arithmetic."""
    scaled = value * 10**10
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    return Decimal(floor).scaleb(-10, context=Context(prec=100)) if floor else Decimal("0E-10")
