"""Behaviour that the mutation run (docs/engine.md "Mutation testing") showed no other test
pinned down: each test here kills one or more surviving mutants, and each asserts a rule of
ENGINE.md or docs/engine.md, not the mutant."""

from __future__ import annotations

import csv
import io
import json
import math
from decimal import ROUND_DOWN, Context, Decimal, localcontext
from fractions import Fraction

import polars as pl
import pytest

from engine import r10
from engine.backends import reference
from engine.backends.base import ValueOverflow
from tests.engine.oracle import exact_r10
from tests.engine.plans import frame, plan

WIDE = Decimal("9876543210987654321098765432.1234567891")  # 38 significant digits
WIDE_DIVISOR = Decimal("1234567890123456789012345678.9876543211")


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
        assert r10.add(WIDE, negative_divisor) == exact_r10(a - b)
        assert r10.sub(WIDE, WIDE_DIVISOR) == exact_r10(a - b)
        assert r10.div(WIDE, WIDE_DIVISOR) == exact_r10(a / b)
        assert r10.mod(WIDE, WIDE_DIVISOR) == exact_r10(a - b * math.floor(a / b))
        assert r10.mod(negative_wide, WIDE_DIVISOR) == exact_r10(-a - b * math.floor(-a / b))
        assert r10.round_to(WIDE, 2) == Decimal("9876543210987654321098765432.1200000000")
        assert r10.floor_to(negative_wide, 3) == Decimal("-9876543210987654321098765432.1240000000")
        assert r10.text(WIDE) == "9876543210987654321098765432.1234567891"


def test_explain_many_without_refs_tapes_every_employee_from_one_evaluation() -> None:
    """explain_many's default is everyone in the frame, in frame order, each tape cut from
    the same evaluation (so an aggregate is the same on every tape)."""
    compiled = plan({"share": "x / sum_over(x)"}, {"x": "decimal"})
    data = frame({"x": "decimal"}, [{"employee_ref": r, "x": v} for r, v in [("B", 1), ("A", 3)]])
    tapes = reference.explain_many(compiled, data)
    assert list(tapes) == ["B", "A"]
    assert [tape.payout for tape in tapes.values()] == [Decimal("0.25"), Decimal("0.75")]
    assert [tape.employee_ref for tape in tapes.values()] == ["B", "A"]


BIG = 6 * 10**27  # two of them reach 1.2e28, beyond R10's |x| < 1e28


@pytest.mark.parametrize(
    ("expr", "small", "big"),
    [
        ("pct_change(x, y)", (1, 2), (9 * 10**27, -2 * 10**27)),  # the difference overflows
        ("pct_change(x, y)", (1, 2), (10**20, "0.0000000001")),  # the quotient overflows
        ("sum_over(x, k)", (1, 1), (BIG, 0)),
        ("allocate(0.01, x, k)", (1, 1), (BIG, 0)),  # only the weight sum overflows
        ("allocate(x, y, k)", (1, 1), (10**20, 10**10)),  # only pool * weight overflows
    ],
    ids=[
        "pct_change-difference",
        "pct_change-quotient",
        "sum_over-total",
        "allocate-weight-sum",
        "allocate-pool-times-weight",
    ],
)
def test_out_of_range_intermediate_fails_the_run_naming_step_and_first_row(expr, small, big):
    """R10 rule 1 holds inside functions too: an intermediate |x| >= 1e28 fails the run,
    naming the step and the first employee (in frame order) whose value overflowed."""
    inputs = {"x": "decimal", "y": "decimal", "k": "text"}
    rows = [
        {"employee_ref": "A", "x": small[0], "y": small[1], "k": "small"},
        {"employee_ref": "B", "x": big[0], "y": big[1], "k": "big"},
        {"employee_ref": "C", "x": big[0], "y": big[1], "k": "big"},
    ]
    compiled = plan({"s": expr}, inputs)
    with pytest.raises(ValueOverflow) as raised:
        reference.evaluate(compiled, frame(inputs, rows))
    assert (raised.value.step, raised.value.employee_ref) == ("s", "B")


def test_allocate_gives_tied_leftover_cents_by_employee_ref_not_row_order() -> None:
    """docs/engine.md §4: equal remainders get the leftover cents in employee_ref order, so
    the result does not depend on how the input rows happen to be ordered."""
    compiled = plan({"share": "allocate(0.02, w)"}, {"w": "decimal"})
    rows = [{"employee_ref": ref, "w": 1} for ref in ("C", "A", "B")]
    result = reference.evaluate(compiled, frame({"w": "decimal"}, rows)).frame
    shares = dict(zip(result["employee_ref"], result["share"], strict=True))
    assert shares == {"A": Decimal("0.01"), "B": Decimal("0.01"), "C": Decimal(0)}


def test_an_empty_frame_gives_an_empty_result_with_the_result_schema() -> None:
    """Zero employees is a valid (if dull) run: the result frame keeps its column types."""
    compiled = plan({"bonus": "x * 2"}, {"x": "decimal"})
    result = reference.evaluate(compiled, frame({"x": "decimal"}, [])).frame
    assert result.height == 0
    assert result.schema["employee_ref"] == pl.String
    assert result.schema["bonus"] == pl.Decimal(38, 10)


def test_power_of_a_column_keeps_going_after_a_null_row() -> None:
    """A null base gives a null power on that row only; later rows are still computed."""
    compiled = plan({"p": "x ^ 2"}, {"x": "decimal"})
    rows = [{"x": None}, {"x": 3}, {"x": None}, {"x": "-1.5"}]
    result = reference.evaluate(compiled, frame({"x": "decimal"}, rows)).frame
    assert result["p"].to_list() == [None, Decimal(9), None, Decimal("2.25")]


def test_an_unknown_parameter_override_is_refused_by_name() -> None:
    compiled = plan({"p": "x * 2"}, {"x": "decimal"})
    with pytest.raises(KeyError, match="unknown parameter 'bonus_rate'"):
        reference.evaluate(compiled, frame({"x": "decimal"}, [{"x": 1}]), {"bonus_rate": "1"})


def test_literals_on_an_untaken_branch_raise_no_diagnostic() -> None:
    """Diagnostics only on taken rows, even when every operand is a literal: a constant
    division by zero on the branch a row does not take leaves that row clean."""
    compiled = plan({"p": "if (x > 0) then 1 / 0 else 5"}, {"x": "decimal"})
    result = reference.evaluate(compiled, frame({"x": "decimal"}, [{"x": -1}, {"x": 1}])).frame
    assert result["p"].to_list() == [Decimal(5), None]
    codes = [[d["code"] for d in row] for row in result["diagnostics"].to_list()]
    assert codes == [[], ["division_by_zero", "null_payout"]]


def test_unary_plus_is_the_identity_and_unary_minus_negates() -> None:
    compiled = plan({"p": "+x", "m": "-x"}, {"x": "decimal"}, payout="p")
    result = reference.evaluate(compiled, frame({"x": "decimal"}, [{"x": "2.5"}])).frame
    assert (result["p"][0], result["m"][0]) == (Decimal("2.5"), Decimal("-2.5"))


def test_input_column_problems_name_the_column_and_the_rule() -> None:
    compiled = plan({"p": "x * 2"}, {"x": "decimal"})
    with pytest.raises(KeyError, match="input column 'x' is missing from the frame"):
        reference.evaluate(compiled, pl.DataFrame({"employee_ref": ["E1"]}))
    floats = pl.DataFrame({"employee_ref": ["E1"], "x": [0.5]})
    with pytest.raises(TypeError, match=r"decimal inputs must be Decimal \(never float\)"):
        reference.evaluate(compiled, floats)


def test_results_csv_keeps_a_row_with_exactly_one_diagnostic() -> None:
    """The canonical results CSV (and so the results hash) carries every diagnostic: a row
    with a single one shows it, a clean row leaves the column empty."""
    from engine.hashing import results_csv

    compiled = plan({"q": "x / y", "p": "x"}, {"x": "decimal", "y": "decimal"}, payout="p")
    rows = [{"x": 1, "y": 0}, {"x": 1, "y": 2}]
    result = reference.evaluate(compiled, frame({"x": "decimal", "y": "decimal"}, rows))
    header, first, second = csv.reader(io.StringIO(results_csv(compiled, result).decode()))
    assert header == ["employee_ref", "q", "p", "diagnostics"]
    assert first[:3] == ["E1", "", "1.0000000000"]
    assert [(d["step"], d["code"]) for d in json.loads(first[3])] == [("q", "division_by_zero")]
    assert second == ["E2", "0.5000000000", "1.0000000000", ""]


@pytest.mark.parametrize(("raw", "expected"), [
    ("true", True), ("TRUE", True), (" True ", True), ("false", False), ("FALSE", False),
    (True, True), (False, False),
])
def test_bool_plan_values_read_true_and_false_in_any_case(raw: object, expected: bool) -> None:
    from engine.plan import coerce_value

    assert coerce_value("bool", raw) is expected


def test_bool_plan_values_refuse_anything_else() -> None:
    from engine.plan import coerce_value

    for raw in ("yes", "1", 1, None):
        with pytest.raises(ValueError, match="expected true or false"):
            coerce_value("bool", raw)


def test_dsl_limits_admit_the_limit_and_refuse_one_beyond() -> None:
    """Length, nesting and name limits are inclusive: exactly at the limit parses."""
    from engine.dsl.errors import DslSyntaxError
    from engine.dsl.parser import MAX_DEPTH, MAX_LENGTH, parse

    parse("-" * (MAX_DEPTH - 1) + "x")  # MAX_DEPTH levels: 199 unary minus and a name
    with pytest.raises(DslSyntaxError, match="nested too deeply"):
        parse("-" * MAX_DEPTH + "x")
    parse("x" + " " * (MAX_LENGTH - 1))
    with pytest.raises(DslSyntaxError, match=f"longer than {MAX_LENGTH} characters"):
        parse("x" + " " * MAX_LENGTH)
    parse("a" * 63)
    with pytest.raises(DslSyntaxError, match="longer than 63 characters"):
        parse("a" * 64)
