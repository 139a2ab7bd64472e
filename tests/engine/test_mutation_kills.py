"""Behaviour that the mutation run (docs/engine.md "Mutation testing") showed no other test
pinned down: each test here kills one or more surviving mutants, and each asserts a rule of
ENGINE.md or docs/engine.md, not the mutant."""

from __future__ import annotations

import math
from decimal import ROUND_DOWN, Context, Decimal, localcontext
from fractions import Fraction

import pytest

from engine import r10

WIDE = Decimal("9876543210987654321098765432.1234567891")  # 38 significant digits
WIDE_DIVISOR = Decimal("1234567890123456789012345678.9876543211")


def _oracle(value: Fraction) -> Decimal:
    """Round a rational half-even to 10 places with integers only (independent of Decimal)."""
    scaled = value * 10**10
    floor = scaled.numerator // scaled.denominator
    rest = scaled - floor
    if rest > Fraction(1, 2) or (rest == Fraction(1, 2) and floor % 2 == 1):
        floor += 1
    sign = "-" if floor < 0 else ""
    digits = str(abs(floor)).rjust(11, "0")
    return Decimal(f"{sign}{digits[:-10]}.{digits[-10:]}")


@pytest.mark.parametrize(
    "ambient",
    [Context(), Context(prec=6, rounding=ROUND_DOWN)],
    ids=["python-default-28-digits", "six-digits-round-down"],
)
def test_r10_primitives_ignore_the_callers_decimal_context(ambient: Context) -> None:
    """R10 rule 7: every primitive runs in its own precision-100 context, so 38-digit values
    come out exact even when the caller's thread context is narrower (as it is outside the
    reference backend's localcontext)."""
    a, b = Fraction(WIDE), Fraction(WIDE_DIVISOR)
    negative_wide, negative_divisor = WIDE.copy_negate(), WIDE_DIVISOR.copy_negate()  # exact
    with localcontext(ambient):
        assert r10.add(WIDE, negative_divisor) == _oracle(a - b)
        assert r10.sub(WIDE, WIDE_DIVISOR) == _oracle(a - b)
        assert r10.div(WIDE, WIDE_DIVISOR) == _oracle(a / b)
        assert r10.mod(WIDE, WIDE_DIVISOR) == _oracle(a - b * math.floor(a / b))
        assert r10.mod(negative_wide, WIDE_DIVISOR) == _oracle(-a - b * math.floor(-a / b))
        assert r10.round_to(WIDE, 2) == Decimal("9876543210987654321098765432.1200000000")
        assert r10.floor_to(negative_wide, 3) == Decimal("-9876543210987654321098765432.1240000000")
        assert r10.text(WIDE) == "9876543210987654321098765432.1234567891"
