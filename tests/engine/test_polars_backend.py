"""The Polars backend on its own: ENGINE.md §11 worked examples, R10 edge cases at the
limits of Decimal(38,10), exact-mode fallbacks and Polars pitfalls it must avoid."""

from __future__ import annotations

from decimal import Decimal

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backends import polars as fast
from engine.backends import reference
from engine.backends.base import ValueOverflow
from engine.plan import compile_plan, validate_document
from engine.r10 import CONTEXT
from tests.engine.budget import examples

DEC = pl.Decimal(38, 10)
MAX = Decimal("9999999999999999999999999999.9999999999")


def plan_for(expr: str, condition: str | None = None):
    step = {"order": 1, "name": "out", "expr": expr}
    if condition:
        step["condition"] = condition
    return compile_plan(
        validate_document(
            {
                "name": "t",
                "effective_from": "2025-01-01",
                "currency": "USD",
                "inputs": [
                    {"key": "a", "dtype": "decimal", "required": False},
                    {"key": "b", "dtype": "decimal", "required": False},
                    {"key": "s", "dtype": "date", "required": False},
                    {"key": "e", "dtype": "date", "required": False},
                ],
                "steps": [step],
                "payout": "out",
            }
        )
    )


def _unscaled(scaled: int) -> Decimal:
    return Decimal(scaled).scaleb(-10, context=CONTEXT)


def frame(a: list, b: list | None = None, refs: list[str] | None = None) -> pl.DataFrame:
    size = len(a)
    return pl.DataFrame(
        {
            "employee_ref": refs or [f"E{i + 1}" for i in range(size)],
            "fund_ref": ["F1"] * size,
            "a": pl.Series(a, dtype=pl.String).cast(DEC),
            "b": pl.Series(b or [None] * size, dtype=pl.String).cast(DEC),
            "s": [None] * size,
            "e": [None] * size,
        },
        schema={
            "employee_ref": pl.String,
            "fund_ref": pl.String,
            "a": DEC,
            "b": DEC,
            "s": pl.Date,
            "e": pl.Date,
        },
    )


def out(expr: str, data: pl.DataFrame, condition: str | None = None) -> list[str | None]:
    """Polars result of `expr` as R10 text, after checking it equals the reference frame."""
    plan = plan_for(expr, condition)
    result = fast.evaluate(plan, data).frame
    assert result.equals(reference.evaluate(plan, data).frame)
    return [None if v is None else format(v, "f") for v in result["out"].to_list()]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("2 / 3 * 3", "2.0000000001"),
        ("1.01 ^ 12", "1.1268250302"),
        ("-7 % 3", "2.0000000000"),
        ("7 % -3", "-2.0000000000"),
        ("round2(2.675)", "2.6800000000"),
        ("round2(-0.125)", "-0.1200000000"),
        ("0.0000000001 * 0.5", "0.0000000000"),
        ("0.0000000003 * 0.5", "0.0000000002"),
        ("100000 / 7", "14285.7142857143"),
        ("pct(12.5)", "0.1250000000"),
        ("-(5 * 0)", "0.0000000000"),
        ("cap_floor(150, 100, 200)", "100.0000000000"),
        ("clip(150, 200, 100)", "100.0000000000"),
        ("x ^ 0", None),
    ],
)
def test_worked_examples(expr: str, expected: str | None) -> None:
    if expected is None:  # x ^ 0 is 1, but null stays null
        assert out("a ^ 0", frame(["5", None])) == ["1.0000000000", None]
        return
    assert out(expr, frame(["1"])) == [expected]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("0.125", "0.12"),
        ("0.135", "0.14"),
        ("2.675", "2.68"),
        ("-0.125", "-0.12"),
        ("1.005", "1.00"),
        ("-1.005", "-1.00"),
        ("0.145", "0.14"),
        ("2.665", "2.66"),
        ("0.005", "0.00"),
        ("-0.005", "0.00"),
    ],
)
def test_round2_is_half_even(value: str, expected: str) -> None:
    assert out("round2(a)", frame([value])) == [f"{expected}00000000"]


def test_guarded_division_records_nothing_on_the_untaken_branch() -> None:
    data = frame(["110", "110"], ["0", "100"])
    plan = plan_for("if (b == 0) then 0 else pct_change(a, b)")
    result = fast.evaluate(plan, data).frame
    assert result["out"].to_list() == [Decimal(0), Decimal("0.1")]
    assert result["diagnostics"].to_list() == [[], []]
    bare = fast.evaluate(plan_for("pct_change(a, b)"), data).frame
    assert [d["code"] for d in bare["diagnostics"][0]] == ["division_by_zero", "null_payout"]


def test_allocate_cents_add_up_with_ties_by_employee_ref() -> None:
    data = frame(["1000"] * 4, ["2", "1", "1", "3"], refs=["B", "A", "C", "D"])
    assert out("allocate(a, b)", data) == [
        "285.7100000000",
        "142.8600000000",
        "142.8600000000",
        "428.5700000000",
    ]
    assert out("allocate(a, b)", frame(["100"] * 3, ["1"] * 3)) == [
        "33.3400000000",
        "33.3300000000",
        "33.3300000000",
    ]


def test_product_rounding_down_to_max_is_not_an_overflow() -> None:
    """|A*B| in (1e48 - 1e10, 1e48 - 5e9) (scaled) rounds to MAX: valid under R10, although
    Polars' own Decimal multiply raises for it (so the exact Int128 path must handle it)."""
    low, high = 10**48 - 10**10, 10**48 - 5 * 10**9
    a_scaled, b_scaled = next(
        (a, -(-(low + 1) // a))
        for a in range(10**10, 10**10 + 100)
        if -(-(low + 1) // a) * a < high
    )
    assert low < a_scaled * b_scaled < high
    a, b = _unscaled(a_scaled), _unscaled(b_scaled)
    assert out("a * b", frame([str(a)], [str(b)])) == [format(MAX, "f")]
    assert out("-a * b", frame([str(a)], [str(b)])) == [format(MAX.copy_negate(), "f")]


def test_product_tie_at_the_limit_overflows() -> None:
    """Exactly MAX + 0.5e-10 rounds half-even up to 1e28: an overflow."""
    a_scaled, b_scaled = 5 * 10**9 * 17, (2 * 10**38 - 1) // 17  # 17 divides 2e38 - 1
    assert a_scaled * b_scaled == 10**48 - 5 * 10**9
    a, b = _unscaled(a_scaled), _unscaled(b_scaled)
    with pytest.raises(ValueOverflow) as raised:
        fast.evaluate(plan_for("a * b"), frame(["1", str(a)], ["1", str(b)]))
    assert (raised.value.step, raised.value.employee_ref) == ("out", "E2")


@pytest.mark.parametrize(
    ("expr", "a", "b", "overflows"),
    [
        ("a + b", MAX, Decimal("0.0000000001"), True),
        ("a + b", MAX, Decimal("-0.0000000001"), False),
        ("a - b", MAX.copy_negate(), Decimal("0.0000000001"), True),
        ("a - b", MAX.copy_negate(), Decimal("-0.0000000001"), False),
        ("a / b", Decimal("1000000000000000000"), Decimal("0.0000000001"), True),
        ("a / b", Decimal("999999999999999999.9999999999"), Decimal("0.1"), False),
        ("a * b", Decimal("100000000000000"), Decimal("100000000000000"), True),
        ("a * b", Decimal("99999999999999.99999"), Decimal("100000000000000"), False),
        ("round(a, 0)", MAX, Decimal(0), True),
        ("sum_over(a)", MAX, Decimal(0), True),
    ],
)
def test_overflow_boundaries_match_the_reference(expr, a, b, overflows) -> None:
    data = frame(["0", str(a)], ["1", str(b)]) if "sum" not in expr else frame([str(a)] * 2)
    plan = plan_for(expr)
    if overflows:
        with pytest.raises(ValueOverflow) as raised:
            fast.evaluate(plan, data)
        assert raised.value.employee_ref in ("E1", "E2")
        return
    assert fast.evaluate(plan, data).frame.equals(reference.evaluate(plan, data).frame)


def test_overflow_on_an_untaken_row_is_not_an_error() -> None:
    data = frame([str(MAX), "2"])
    assert out("if (a < 10) then a * a else 0", data) == ["0.0000000000", "4.0000000000"]
    assert out("a * a", data, condition="a < 10") == ["0.0000000000", "4.0000000000"]


def test_windowed_sum_overflow_is_detected() -> None:
    """Polars 2.1 wraps a windowed Decimal sum silently; the backend must not."""
    with pytest.raises(ValueOverflow):
        fast.evaluate(plan_for("sum_over(a, fund_ref)"), frame([str(MAX)] * 2))


def test_no_float_ever_reaches_a_literal() -> None:
    plan = plan_for("a * 0.1 + 0.2")
    compiler = fast.compiled(plan, {}, exact=False)
    text = " ".join(str(e) for stage in compiler.stages for e in stage.values())
    assert "dyn float" not in text and "f64" not in text


@pytest.mark.parametrize("expr", ["count_over()", "sum_over(1)", 'sum_over(2, "k")'])
def test_aggregates_under_a_literal_guard_see_every_row(expr):
    """A guard that is a literal (`true`) is a scalar in Polars; aggregates must still count
    and sum over every row, not over one broadcast value."""
    plan = plan_for(expr, condition="true")
    data = frame(["1", "2", "3"])
    expected = reference.evaluate(plan, data).frame
    actual = fast.evaluate(plan, data).frame
    assert actual["out"].to_list() == expected["out"].to_list()
    assert expected["out"].to_list()[0] in (Decimal(3), Decimal(6))


SCALED = st.one_of(
    st.integers(-(10**24), 10**24),
    st.integers(-(10**38) + 1, 10**38 - 1),
    st.sampled_from([0, 1, -1, 5, -5, 15, 10**10, -(10**10), 5 * 10**9, 10**19, 10**19 - 1]),
)


@settings(max_examples=examples(60), deadline=None)
@given(pairs=st.lists(st.tuples(SCALED, SCALED), min_size=1, max_size=8))
def test_exact_mode_arithmetic_equals_the_reference(pairs) -> None:
    """Exact mode (normally only used near 1e28) must give R10 results on every row: random
    signs, ties at the 10th decimal, limb boundaries (1e19) and values up to MAX."""
    a = [str(_unscaled(x)) for x, _ in pairs]
    b = [str(_unscaled(y)) for _, y in pairs]
    data = frame(a, b)
    for expr in ("a * b", "a + b", "a - b", "a / b"):
        plan = plan_for(expr)
        try:
            expected = reference.evaluate(plan, data).frame
        except ValueOverflow as error:
            with pytest.raises(ValueOverflow) as raised:
                fast.evaluate(plan, data)
            assert raised.value.employee_ref == error.employee_ref
            continue
        exact, _ = fast._run(plan, data, {}, exact=True)
        assert exact.select(expected.columns).equals(expected), expr
