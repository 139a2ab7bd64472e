"""The Polars backend's fast paths (docs/engine.md "Performance"): each is checked against
the reference on the inputs that would break it, and the Polars behaviours they rely on are
pinned so a Polars upgrade that changes them fails here first.

- constant folding: row-independent sub-expressions (literals and parameters) are computed
  once at compile time; a constant divisor that is not 0 needs no zero test or diagnostic;
  a constant `if` condition or step guard compiles only the branch every row takes;
- `prorate` over a literal, valid period needs no `invalid_period` test;
- division and `%` by a column null the dividend where the divisor is 0;
- `allocate` floors, ranks and hands out cents on the Int128 physical values;
- `count_over` without a guard counts with `pl.len()`;
- a literal is never the left operand of a comparison (a Polars 2.1 bug, below);
- a whole-number literal multiplies (and divides) as a Decimal(38,0), exactly;
- inputs without a null in the frame compile without null tests (a separate compilation
  from the one for a frame with nulls);
- a product by a short decimal literal runs as a whole-number product and quotient;
- an aggregate under a guard that takes whole groups of its key is the unguarded one;
- a frame without a diagnostic gets its empty lists from one broadcast literal, and an
  empty frame never reads the any-diagnostic scalar.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Context, Decimal

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from engine.backends import polars as fast
from engine.backends import reference
from engine.backends.base import ValueOverflow
from engine.plan import compile_plan, validate_document

DEC = pl.Decimal(38, 10)
SCHEMA = {
    "employee_ref": pl.String,
    "fund_ref": pl.String,
    "x": DEC,
    "w": DEC,
    "g": pl.String,
    "d1": pl.Date,
    "d2": pl.Date,
}
INPUTS = [
    {"key": "x", "dtype": "decimal", "required": False},
    {"key": "w", "dtype": "decimal", "required": False},
    {"key": "g", "dtype": "text", "required": False},
    {"key": "d1", "dtype": "date", "required": False},
    {"key": "d2", "dtype": "date", "required": False},
]
PARAMETERS = [
    {"key": "pool", "dtype": "decimal", "value": "1000"},
    {"key": "divisor", "dtype": "decimal", "value": "4"},
    {"key": "nothing", "dtype": "decimal", "value": "0"},
    {"key": "ps", "dtype": "date", "value": "2025-01-01"},
    {"key": "pe", "dtype": "date", "value": "2025-12-31"},
    {"key": "backwards", "dtype": "date", "value": "2024-12-31"},
]


def plan_of(
    expr: str,
    condition: str | None = None,
    default: str | None = None,
    before: dict[str, str] | None = None,
):
    """A plan whose payout step `out` is `expr`, after the steps `before` (name: expr)."""
    steps: list[dict] = [
        {"order": order, "name": name, "expr": text}
        for order, (name, text) in enumerate((before or {}).items(), start=1)
    ]
    step: dict = {"order": len(steps) + 1, "name": "out", "expr": expr}
    if condition is not None:
        step["condition"] = condition
    if default is not None:
        step["default"] = default
    document = {
        "name": "fastpaths",
        "effective_from": "2025-01-01",
        "currency": "USD",
        "inputs": INPUTS,
        "parameters": PARAMETERS,
        "steps": [*steps, step],
        "payout": "out",
    }
    return compile_plan(validate_document(document))


def frame_of(rows: list[tuple]) -> pl.DataFrame:
    """Rows of (employee_ref, fund_ref, x, w, g, d1, d2); decimals as strings."""
    columns = list(zip(*rows, strict=True)) if rows else [[] for _ in SCHEMA]
    data = {}
    for name, values in zip(SCHEMA, columns, strict=True):
        if SCHEMA[name] == DEC:
            values = [None if v is None else Decimal(v) for v in values]
        data[name] = list(values)
    return pl.DataFrame(data, schema=SCHEMA)


def simple_frame(xs: list[str | None]) -> pl.DataFrame:
    return frame_of([(f"E{i}", "F1", x, "1", "a", None, None) for i, x in enumerate(xs, start=1)])


def same(plan, data: pl.DataFrame) -> pl.DataFrame:
    """The Polars frame, after asserting it equals the reference's cell for cell."""
    expected = reference.evaluate(plan, data).frame
    actual = fast.evaluate(plan, data).frame
    assert_frame_equal(actual, expected)
    return actual


def codes(result: pl.DataFrame) -> list[list[str]]:
    return [[d["code"] for d in row] for row in result["diagnostics"].to_list()]


def diagnostic_columns(plan) -> dict[str, str]:
    return fast.compiled(plan, {}, exact=False).diag_columns["out"]


def compiled_text(plan, non_null: frozenset[str] = frozenset()) -> str:
    """Every expression of the plan's fast-mode stages, in full (an Expr's repr is cut)."""
    stages = fast.compiled(plan, {}, False, non_null).stages
    return "\n".join(str(expr) for stage in stages for expr in stage.values())


# -- Polars behaviours the fast paths rely on ---------------------------------------------
def test_polars_decimal_division_skips_the_zero_test_on_null_dividends() -> None:
    data = pl.DataFrame(
        {"a": [Decimal(7), Decimal(-7), None], "b": [Decimal(0), Decimal(3), Decimal(0)]},
        schema={"a": DEC, "b": DEC},
    )
    a, b = pl.col("a"), pl.col("b")
    guarded = data.select(
        q=pl.when(b != 0).then(a) / b,
        r=pl.when(b != 0).then(a) % b,
        n=a.filter(a.is_null()).first() / b,  # a null dividend over 0 is null, no error
    )
    assert guarded["q"].to_list() == [None, Decimal("-2.3333333333"), None]
    assert guarded["r"].to_list() == [None, Decimal(2), None]
    with pytest.raises(pl.exceptions.ComputeError, match="division by zero"):
        data.select(a / b)  # and without the null it does raise: the guard is needed


def test_literal_vs_broadcast_column_comparison_is_still_short_in_polars() -> None:
    """Why `compare` never puts a literal on the left: against a column that holds one
    broadcast value (what `with_columns` stores for a literal or a scalar aggregate), Polars
    2.1 answers `literal < column` with ONE row. If this starts failing, Polars fixed it and
    the swap in `compare` is merely harmless."""
    data = pl.DataFrame({"a": [1, 2]}).with_columns(y=fast.dec(1), s=pl.lit("q"))
    assert data.select(pl.col("y") > fast.dec(0)).height == 2
    assert data.select(fast.dec(0) < pl.col("y")).height == 1
    assert data.select(pl.lit("q") == pl.col("s")).height == 1


def test_a_literal_compared_with_a_constant_step() -> None:
    steps = [
        {"order": 1, "name": "days", "expr": "days_between(ps, pe) + 1"},
        {"order": 2, "name": "long", "expr": '300 < days && "a" == g && 1 != days'},
        {"order": 3, "name": "out", "expr": "if (long) then x else 0"},
    ]
    document = {
        "name": "constant steps",
        "effective_from": "2025-01-01",
        "currency": "USD",
        "inputs": INPUTS,
        "parameters": PARAMETERS,
        "steps": steps,
        "payout": "out",
    }
    plan = compile_plan(validate_document(document))
    result = same(plan, simple_frame(["1", "2", None]))
    assert result["long"].to_list() == [True, True, True]


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_literal_left_of_a_comparison_against_an_all_null_aggregate(op: str) -> None:
    """`0 < allocate(x, 0)` over all-null x once came back one row short (see above)."""
    plan = plan_of(f"if ((0) {op} allocate(x, (0))) then 1 else 2")
    result = same(plan, simple_frame([None, None, None]))
    assert result["out"].to_list() == [None, None, None]


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_unfolded_literal_left_of_a_comparison_in_exact_mode(op: str) -> None:
    """Exact mode folds no constants, so `-0` is an expression, not a literal; it must still
    not sit left of a broadcast column (found by the parity test after an overflow)."""
    plan = plan_of(f"if ((-0) {op} allocate(x, (0))) then 1 else 2")
    data = simple_frame([None, None, None])
    exact, _ = fast._run(plan, data, {}, exact=True)
    assert exact["out"].to_list() == [None, None, None]
    assert exact["out"].to_list() == same(plan, data)["out"].to_list()


@pytest.mark.parametrize("op", ["<", "<=", ">", ">=", "==", "!="])
def test_literal_left_comparisons_keep_their_meaning(op: str) -> None:
    plan = plan_of(f"if (1 {op} x) then 1 else 0")
    result = same(plan, simple_frame(["0", "1", "2", None]))
    expected = {"<": [0, 0, 1], "<=": [0, 1, 1], ">": [1, 0, 0], ">=": [1, 1, 0]}
    expected |= {"==": [0, 1, 0], "!=": [1, 0, 1]}
    assert result["out"].to_list() == [Decimal(v) for v in expected[op]] + [None]


# -- constant folding and literal-aware guards --------------------------------------------
@pytest.mark.parametrize(
    ("expr", "values", "diagnostics"),
    [
        ("x / divisor", ["1", "-3", None], False),
        ("x / (2 - 2)", ["1", None], True),
        ("x / nothing", ["1", None], True),
        ("x % (1 - 1)", ["1", None], True),
        ("x % (divisor - 1)", ["-7", "7", None], False),
        ("x / (1 / 3)", ["1", "2"], False),
        ("x * pct(40) + round(1 / 3, 4) - 2 ^ 3", ["1.5", None], False),
        ("x * (days_between(ps, pe) + 1)", ["0.5", None], False),
        ("hurdle(0.05, x)", ["0.01", "0.05", "0.5", None], False),
        ("min(x, 3, divisor)", ["1", "5", None], False),
        ("clip(x, 1 - 1, pool / 10)", ["-1", "50", "500", None], False),
        ("if (1 > 2) then x / 0 else x", ["1", None], False),
        ("if (1 < 2) then x else x / 0", ["1", None], False),
        ("if (divisor == 4 && 1 / 0 > 0) then 1 else x", ["1"], True),
        ("if (divisor == 4 || 1 / 0 > 0) then 1 else x", ["1"], False),
    ],
)
def test_constant_subexpressions_give_the_reference_values_and_diagnostics(
    expr: str, values: list[str | None], diagnostics: bool
) -> None:
    result = same(plan_of(expr), simple_frame(values))
    recorded = any("division_by_zero" in row for row in codes(result))
    assert recorded == diagnostics


@pytest.mark.parametrize(
    ("expr", "by_column"),
    [
        ("x / divisor", "x / w"),
        ("x / (pool / 250)", "x / (w / 250)"),
        ("x % divisor", "x % w"),
        ("x / 4", "x / (w + 4)"),
    ],
)
def test_a_non_zero_constant_divisor_needs_no_zero_test(expr: str, by_column: str) -> None:
    assert diagnostic_columns(plan_of(expr)) == {}
    assert diagnostic_columns(plan_of(by_column)) == {
        "division_by_zero": "__diag__out__division_by_zero"
    }


def test_a_constant_if_compiles_only_the_branch_it_takes() -> None:
    assert diagnostic_columns(plan_of("if (divisor > 1) then x else x / w")) == {}
    assert diagnostic_columns(plan_of("if (divisor < 1) then x else x / w")) != {}


@pytest.mark.parametrize(
    ("condition", "default", "expected"),
    [
        ("1 < 2", None, ["3.0000000000", "3.0000000000"]),
        ("divisor > 10", None, ["0.0000000000", "0.0000000000"]),
        ("1 > 2", "-1.5", ["-1.5000000000", "-1.5000000000"]),
    ],
)
def test_constant_step_guards(condition: str, default: str | None, expected: list) -> None:
    result = same(
        plan_of("sum_over(x) + count_over()", condition, default), simple_frame(["1", None])
    )
    assert [format(v, "f") for v in result["out"].to_list()] == expected
    result = same(plan_of("x / (2 - 2)", condition, default), simple_frame(["1", None]))
    taken = expected[0] == "3.0000000000"
    assert codes(result)[0] == (["division_by_zero", "null_payout"] if taken else [])


def assert_overflow_on(plan, data: pl.DataFrame, step: str, employee_ref: str) -> None:
    """Both backends fail the run with ValueOverflow; Polars names `step` and `employee_ref`."""
    with pytest.raises(ValueOverflow) as raised:
        fast.evaluate(plan, data)
    assert (raised.value.step, raised.value.employee_ref) == (step, employee_ref)
    with pytest.raises(ValueOverflow):
        reference.evaluate(plan, data)


def test_an_overflowing_constant_fails_only_where_it_is_taken() -> None:
    plan = plan_of("if (x > 0) then 5000000000000000000000000000 * 2 else x")
    same(plan, simple_frame(["-1", "0", None]))
    assert_overflow_on(plan, simple_frame(["-1", "2"]), "out", "E2")


@pytest.mark.parametrize("period", ["ps, pe", "ps, backwards", "backwards, ps", "pe, pe"])
def test_prorate_over_a_parameter_period(period: str) -> None:
    plan = plan_of(f"prorate(d1, d2, {period})")
    start = date(2025, 1, 1)
    rows = [
        ("E1", "F1", None, None, None, None, None),
        ("E2", "F1", None, None, None, start + timedelta(days=100), None),
        ("E3", "F1", None, None, None, None, start + timedelta(days=30)),
        ("E4", "F1", None, None, None, start - timedelta(days=5), start + timedelta(days=400)),
        ("E5", "F1", None, None, None, start + timedelta(days=200), start + timedelta(days=3)),
    ]
    result = same(plan, frame_of(rows))
    if period == "ps, pe":
        assert diagnostic_columns(plan) == {}
        assert result["out"][0] == Decimal(1)
    invalid = ["invalid_period" in row for row in codes(result)]
    assert invalid == [period == "ps, backwards"] * len(rows)


# -- allocate ---------------------------------------------------------------------------
WEIGHTS = st.one_of(
    st.none(),
    st.sampled_from(["0", "1", "1", "2", "3", "-1", "0.0000000001", "7", "1.5", "1000000"]),
)
POOLS = st.sampled_from(["100", "1000", "0.05", "-100", "99.99", "1", "0", "7.777", "123456.78"])


@st.composite
def allocation_frames(draw) -> pl.DataFrame:
    size = draw(st.integers(1, 30))
    refs = draw(st.permutations([f"E{i:02d}" for i in range(size)]))
    funds = draw(st.lists(st.sampled_from(["F1", "F2", "F3", None]), min_size=size, max_size=size))
    pools = {fund: draw(POOLS) for fund in ("F1", "F2", "F3", None)}
    varying = draw(st.booleans())  # occasionally a pool that differs within a fund
    rows = []
    for ref, fund in zip(refs, funds, strict=True):
        pool = draw(st.one_of(POOLS, st.none())) if varying else pools[fund]
        rows.append((ref, fund, pool, draw(WEIGHTS), draw(st.sampled_from(["a", "b"])), None, None))
    return frame_of(rows)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=allocation_frames(),
    expr=st.sampled_from(
        [
            "allocate(x, w, fund_ref)",
            "allocate(x, w)",
            "allocate(x, w, g)",
            "allocate(x, w * w, fund_ref)",
            "allocate(100, w, fund_ref)",
            'if (g == "a") then allocate(x, w, fund_ref) else -1',
        ]
    ),
    guarded=st.booleans(),
)
def test_allocate_matches_the_reference(data: pl.DataFrame, expr: str, guarded: bool) -> None:
    plan = plan_of(expr, "w != 1" if guarded else None)
    result = same(plan, data)
    if expr == "allocate(x, w, fund_ref)" and not guarded:
        _cents_add_up(data.with_columns(share=result["out"]))


def _cents_add_up(data: pl.DataFrame) -> None:
    """Per fund with a share, the shares add up to the floored pool (unless a weight below 1
    rounds a product away: then the leftover cents are clamped to the row count)."""
    for (fund,), group in data.filter(pl.col("share").is_not_null()).group_by(["fund_ref"]):
        if any(Decimal(0) < w < 1 for w in group["w"].to_list()):
            continue
        pool = group["x"][0]
        cents = (pool * 100).to_integral_value(rounding="ROUND_FLOOR") / 100
        assert sum(group["share"].to_list()) == cents, fund


@pytest.mark.parametrize(
    ("pool", "weights", "expected"),
    [
        ("100", ["1", "1", "1"], ["33.34", "33.33", "33.33"]),
        ("-100", ["1", "1", "1"], ["-33.33", "-33.33", "-33.34"]),
        ("0.05", ["1", "1", "1", "1", "1", "1"], ["0.01"] * 5 + ["0.00"]),
        ("10", ["5"], ["10.00"]),
        ("10", ["0", "0"], [None, None]),
        ("10", ["0", "2"], ["0.00", "10.00"]),
        ("10", ["-1", "1"], [None, "10.00"]),
        ("10", [None, "3"], [None, "10.00"]),
        ("7", ["1", "2", "1", "2"], ["1.17", "2.33", "1.17", "2.33"]),
        ("7", ["2", "1", "2", "1"], ["2.33", "1.17", "2.33", "1.17"]),
    ],
)
def test_allocate_worked_cases(pool: str, weights: list, expected: list) -> None:
    rows = [(f"E{i}", "F1", pool, w, "a", None, None) for i, w in enumerate(weights, start=1)]
    result = same(plan_of("allocate(x, w, fund_ref)"), frame_of(rows))
    shares = [None if v is None else f"{v:.2f}" for v in result["out"].to_list()]
    assert shares == expected


def test_allocate_groups_of_one_and_ties_across_groups() -> None:
    rows = [
        ("E3", "F1", "1", "1", "a", None, None),
        ("E1", "F2", "1", "1", "a", None, None),
        ("E2", "F2", "1", "1", "a", None, None),
        ("E4", "F2", "1", "1", "a", None, None),
        ("E0", "F3", "0.01", "0.5", "a", None, None),
    ]
    result = same(plan_of("allocate(x, w, fund_ref)"), frame_of(rows))
    assert [f"{v:.2f}" for v in result["out"].to_list()] == ["1.00", "0.34", "0.33", "0.33", "0.01"]


# -- count_over ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("expr", "condition"),
    [("count_over(g)", None), ("count_over()", None), ("count_over(g)", "x > 0")],
)
def test_count_over_with_null_keys(expr: str, condition: str | None) -> None:
    rows = [
        ("E1", "F1", "1", "1", "a", None, None),
        ("E2", "F1", "-1", "1", None, None, None),
        ("E3", "F1", "2", "1", "a", None, None),
        ("E4", "F1", None, "1", "b", None, None),
        ("E5", "F1", "3", "1", None, None, None),
    ]
    result = same(plan_of(expr, condition), frame_of(rows))
    if expr == "count_over(g)" and condition is None:
        assert result["out"].to_list() == [Decimal(2), None, Decimal(2), Decimal(1), None]


DATES = st.one_of(
    st.none(), st.integers(-400, 800).map(lambda d: date(2025, 1, 1) + timedelta(days=d))
)


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    dates=st.lists(st.tuples(DATES, DATES), min_size=1, max_size=12),
    period=st.sampled_from(["ps, pe", "backwards, ps", "pe, pe", "ps, backwards"]),
    guard=st.sampled_from([None, "x > 0"]),
)
def test_prorate_over_a_literal_period_matches_the_reference(dates, period, guard) -> None:
    """The literal-period path works on day numbers: joiners, leavers, both, neither, dates
    outside the period on either side, and start after end."""
    rows = [
        (f"E{i}", "F1", str(i % 3 - 1), None, None, start, end)
        for i, (start, end) in enumerate(dates)
    ]
    same(plan_of(f"prorate(d1, d2, {period})", guard), frame_of(rows))


@pytest.mark.parametrize("days", [1, 2, 3, 7, 365, 366, 997])
def test_prorate_share_table_is_the_exact_quotient(days: int) -> None:
    """The looked-up shares are k / days rounded half-even to 10 decimals (R10)."""
    table = fast._day_shares(days).to_list()
    tenth = Decimal("0.0000000001")
    expected = [
        (Decimal(k) / Decimal(days)).quantize(tenth, "ROUND_HALF_EVEN") for k in range(days + 1)
    ]
    assert table == expected


def test_prorate_over_a_period_too_long_for_the_table_divides() -> None:
    """A literal period longer than MAX_SHARE_TABLE days still matches the reference."""
    rows = [
        ("E1", "F1", "1", None, None, date(2025, 6, 1), None),
        ("E2", "F1", "1", None, None, None, date(2100, 1, 1)),
        ("E3", "F1", "1", None, None, None, None),
    ]
    plan = plan_of("prorate(d1, d2, ps, pe)")
    long = {"pe": "2400-01-01"}
    assert (date(2400, 1, 1) - date(2025, 1, 1)).days + 1 > fast.MAX_SHARE_TABLE
    expected = reference.evaluate(plan, frame_of(rows), long).frame
    assert_frame_equal(fast.evaluate(plan, frame_of(rows), long).frame, expected)


def test_allocate_ties_in_remainders_go_by_employee_ref_not_row_order() -> None:
    """Seven leftover cents among ten equal remainders: the seven smallest employee_refs get
    them, wherever their rows are; a second fund and a null key in between change nothing."""
    refs = ["E5", "E9", "E0", "E3", "E7", "E1", "E8", "E2", "E6", "E4"]
    rows = [(ref, "F1", "0.07", "1", "a", None, None) for ref in refs]
    rows.insert(4, ("E10", "F2", "-0.05", "2", "a", None, None))
    rows.insert(6, ("E11", None, "0.07", "1", "a", None, None))
    rows.append(("E12", "F2", "-0.05", "1", "a", None, None))
    result = same(plan_of("allocate(x, w, fund_ref)"), frame_of(rows))
    shares = dict(zip(result["employee_ref"], result["out"], strict=True))
    assert [shares[f"E{i}"] for i in range(10)] == [Decimal("0.01")] * 7 + [Decimal(0)] * 3
    assert (shares["E10"], shares["E11"], shares["E12"]) == (
        Decimal("-0.03"),
        None,
        Decimal("-0.02"),
    )


def test_division_zero_test_on_an_untaken_overflowing_dividend() -> None:
    """`(x + x) / x`'s division_by_zero mask reads `x + x`; on an untaken row holding MAX it
    overflows in Polars, which must re-run in exact mode rather than fail (found by the
    parity test)."""
    most = "9999999999999999999999999999.9999999999"
    rows = [("E1", "F1", None, "1", "a", None, None), ("E2", "F1", most, "0", "a", None, None)]
    result = same(plan_of("(x + x) / x", "w > 0"), frame_of(rows))
    assert result["out"].to_list() == [None, Decimal(0)]


# -- whole-number literals, null-free inputs ---------------------------------------------
ROUNDING = ["1.0000000001", "-2.5000000005", "0.3333333333", "123456789.9876543210", None]


@pytest.mark.parametrize(
    "expr",
    [
        "x * 2",
        "2 * x",
        "x * -3",
        "x * 365",
        "x * 2.5",
        "x * (divisor - 1)",
        "x / 7",
        "x % 3",
        "pct(x)",
        "x * 0",
        "-x * 1000000",
    ],
)
def test_whole_number_literal_products_and_quotients_match_the_reference(expr: str) -> None:
    same(plan_of(expr), simple_frame(ROUNDING))


TIES = ["0.0000000001", "0.0000000003", "-0.0000000001", "-0.0000000007", "0.0000000002", None]


@pytest.mark.parametrize(
    "expr",
    ["x * 0.5", "0.5 * x", "x * -0.5", "x * 1.25", "x * 0.0000000001", "x * 0.4000000000",
     "x * -0.035", "x * 499999.5", "x * 500000.5"],
)
def test_short_decimal_literal_products_round_like_the_reference(expr: str) -> None:
    """x * 1.25 runs as (x * 5) / 4: products that tie at the 10th decimal (0.5 of
    0.0000000001) still round half to even, and a literal whose numerator is too long for
    that (1000001 / 2) multiplies as before."""
    plan = plan_of(expr)
    same(plan, simple_frame(TIES + ROUNDING))
    rescaled = "500000.5" in expr  # a Decimal(38,10) literal; a short one is whole numbers
    assert (".5000000000" in compiled_text(plan)) == rescaled


@pytest.mark.parametrize("x", ["1e22", "6e22", "-6e22"])
def test_a_short_decimal_literal_product_whose_numerator_product_overflows(x: str) -> None:
    """x * 99999.5 runs as (x * 199999) / 2, and x * 199999 overflows from |x| > 5e22 while
    the product only does from 1e23: fast mode fails there, and exact mode gives the value."""
    data = simple_frame(["1", format(Decimal(x), "f")])
    assert same(plan_of("x * 99999.5"), data)["out"][1] == Decimal(x) * Decimal("99999.5")


def test_a_short_decimal_literal_product_overflows_like_the_reference() -> None:
    data = simple_frame(["1", format(Decimal("2e23"), "f")])
    assert_overflow_on(plan_of("x * 99999.5"), data, "out", "E2")


def test_a_whole_number_literal_product_still_overflows_like_the_reference() -> None:
    plan = plan_of("x * 10")
    assert_overflow_on(plan, simple_frame(["1", "1000000000000000000000000000"]), "out", "E2")


NULL_SENSITIVE = [
    "if (x > 1) then 1 else 2",
    "hurdle(x, 1)",
    "min(x, 3)",
    "clip(x, 0, 5)",
    "cap_floor(x, 5, 0)",
    "if (x > 1 && not(x > 4)) then x * 2 else -x",
    "round2(abs(x) / 3) + days_between(d1, d2)",
]


@pytest.mark.parametrize("expr", NULL_SENSITIVE)
def test_null_free_inputs_compile_without_null_tests_and_agree_with_the_reference(
    expr: str,
) -> None:
    plan = plan_of(expr, condition="x != 3", default="-1")
    fast._COMPILED.clear()
    # First a frame where x holds no null (its compilation is cached), then one where it
    # does: a cache that ignored nulls would send the null row down the `else` branch.
    without = frame_of([(f"E{i}", "F1", x, "1", "a", None, None) for i, x in enumerate("0235")])
    assert "x" in fast.null_free_inputs(plan, without)
    same(plan, without)
    same(plan, simple_frame(["0", "2", "3", "5", None]))

    def null_tests(non_null: frozenset[str]) -> int:
        return compiled_text(plan, non_null).count("is_null")

    assert null_tests(fast.null_free_inputs(plan, without)) < null_tests(frozenset())


@pytest.mark.parametrize(
    "expr", ["sum_over(1, g)", "sum_over(x) + sum_over(2, g)", "sum_over(-x, g)"]
)
def test_sum_over_a_literal_by_a_key_without_nulls_sums_every_row(expr: str) -> None:
    """Found by the soak parity run: with the key's mask left out, a literal summed per
    group was a single 1, not one per row."""
    same(
        plan_of(expr),
        frame_of(
            [
                ("E1", "F1", None, "1", "a", None, None),
                ("E2", "F1", None, "1", "a", None, None),
                ("E3", "F1", "4", "1", "b", None, None),
            ]
        ),
    )


# -- every catalog function, each argument computed, in both modes (mutation kills) --------
def same_in_mode(exact: bool, plan, data: pl.DataFrame, parameters=None) -> pl.DataFrame | None:
    """`same`, in fast or exact mode (exact mode normally runs only after an overflow; here
    it is forced, as `evaluate` runs it): the same frame, or the same ValueOverflow (None)."""
    parameters = parameters or {}

    def evaluate() -> pl.DataFrame:
        if not exact:
            return fast.evaluate(plan, data, parameters).frame
        result, compiler = fast._run(plan, data, parameters, exact=True)
        fast._raise_first_overflow(plan, result, compiler)
        return result.select(["employee_ref", *plan.display_order, "diagnostics"])

    try:
        expected = reference.evaluate(plan, data, parameters).frame
    except ValueOverflow as error:
        with pytest.raises(ValueOverflow) as raised:
            evaluate()
        assert (raised.value.step, raised.value.employee_ref) == (error.step, error.employee_ref)
        return None
    actual = evaluate()
    assert_frame_equal(actual, expected)
    return actual


@pytest.mark.parametrize("expr", ["x / w", "allocate(pool, x, g)", "sum_over(x, g) + count_over()"])
def test_an_empty_frame_gives_an_empty_result_like_the_reference(expr: str) -> None:
    """No row: the any-diagnostic test is a scalar of an empty frame, and must not be read."""
    assert same(plan_of(expr), frame_of([])).height == 0


# Rows in two crossing groupings: g (a sums to 0, b, a null key) and fund_ref (F2 < 0).
CROSSED = [
    ("E1", "F1", "4", "1", "a", None, None),
    ("E2", "F1", "-4", "2", "a", None, None),
    ("E3", "F2", "3", "0", "b", None, None),
    ("E4", "F1", "5", None, "b", None, None),
    ("E5", "F2", "-6", "7", "b", None, None),
    ("E6", "F2", "2", "1", None, None, None),
    ("E7", "F1", None, "3", "b", None, None),
]


def sums_over_g(plan) -> int:
    """How many per-group sums over g the compiled plan computes."""
    return compiled_text(plan).count("sum().over(")


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize(
    ("expr", "condition", "sums"),
    [
        ("if (sum_over(x, g) == 0) then 0 else x / sum_over(x, g)", None, 1),
        ("if (not(sum_over(x, g) < 0) && count_over(g) > 1) then sum_over(x, g) else -1", None, 1),
        ("if (sum_over(x, g) > 0 || sum_over(x) < 0) then -sum_over(x, g) else 1", None, 2),
        ("count_over(g) + sum_over(x, g)", "sum_over(x, g) > 0", 1),
        ("count_over(g) + sum_over(w, g)", "sum_over(x) > 0", 1),
        ("if (sum_over(x, g) > sum_over(x)) then x / sum_over(x, g) else 0", None, 1),
    ],
)
def test_a_guard_that_takes_whole_groups_shares_the_unguarded_aggregate(
    expr: str, condition: str | None, sums: int, exact: bool
) -> None:
    """A guard built from aggregates over the same key (or the whole frame) takes every row
    of a group or none: the guarded call is the unguarded one, computed once."""
    plan = plan_of(expr, condition=condition, default="7")
    same_in_mode(exact, plan, frame_of(CROSSED))
    assert sums_over_g(plan) == sums


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize(
    "expr",
    [
        "if (x > 0) then sum_over(x, g) else 0",
        "if (sum_over(x, fund_ref) > 0) then sum_over(x, g) else 0",
        "if (sum_over(x, fund_ref) > 0) then count_over(g) else 0",
        "if (sum_over(x, g) + x > 0) then sum_over(w, g) else 0",
        "if (round(sum_over(x, g), 0) > 0) then sum_over(w, g) else 0",
        "if (sum_over(x, g) > 0 && sum_over(x, fund_ref) > 0) then sum_over(w, fund_ref) else 0",
        "if (sum_over(x, fund_ref) > 0 && sum_over(x, g) > 0) then sum_over(w, g) else 0",
        "if (sum_over(x, g) + sum_over(x, fund_ref) > 0) then sum_over(w, fund_ref) else 0",
        "if (x > 0) then (if (count_over(g) > 1) then sum_over(w, g) else 0) else 0",
        "if (x > 0) then (if (size > 1) then sum_over(w, g) else 0) else 0",
        "if (size > 1 && x > 0) then sum_over(w, g) else 0",
        "if (x > 0 && size > 1) then sum_over(w, g) else 0",
        "if ((if (x > 0) then size else 0) > 1) then sum_over(w, g) else 0",
        "if ((if (size > 1) then x else 0) > 0) then sum_over(w, g) else 0",
        "if ((if (size > 5) then 0 else x) > 0) then sum_over(w, g) else 0",
        "if (w > 1) then 0 else sum_over(x, g)",  # w is null on E4: neither branch takes it
    ],
)
def test_a_guard_that_splits_groups_sums_only_its_rows(expr: str, exact: bool) -> None:
    """Here the taken rows of a group differ (by x, or by another key), so the sum over g
    must count only the taken ones; CROSSED makes the two answers differ. `size`, a step
    uniform over g, is tested inside a guard (x > 0) that is not."""
    plan = plan_of(expr, before={"size": "count_over(g)"})
    same_in_mode(exact, plan, frame_of(CROSSED))


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize(
    "expr", ["if (count_over(g) > 2) then sum_over(x, g) else 0", "sum_over(x, g)"]
)
def test_an_untaken_group_whose_sum_overflows_is_no_error(expr: str, exact: bool) -> None:
    """Group a's sum overflows. Under a guard that leaves a out, its (unmasked) sum is
    computed and never used: no error, as in the reference; without the guard, E1's."""
    huge = "9000000000000000000000000000"
    rows = [("E1", "F1", huge, "1", "a", None, None), ("E2", "F1", huge, "1", "a", None, None)]
    same_in_mode(exact, plan_of(expr), frame_of(rows + CROSSED[2:]))


def test_masks_of_null_free_conditions_need_no_null_fill() -> None:
    plan = plan_of("if (x > 1) then sum_over(w, g) else 0")
    assert "fill_null" not in compiled_text(plan, frozenset(fast.input_columns(plan)))
    assert "fill_null" in compiled_text(plan)


@pytest.mark.parametrize(
    "expr",
    [
        "x * (1 / nothing)",
        'sum_over(x, if (1 / nothing > 0) then "a" else "b")',
        'count_over(if (1 / nothing > 0) then "a" else "b")',
    ],
)
def test_a_literal_that_is_null_as_operand_or_key(expr: str) -> None:
    """1 / 0 is folded to a null literal (and division_by_zero on every row): a product by
    it, and an aggregate keyed by a null, are null on every row."""
    result = same(plan_of(expr), frame_of(CROSSED))
    assert result["out"].null_count() == len(CROSSED)


def test_unary_plus_is_its_operand() -> None:
    result = same(plan_of("+x - +2 * -(+w)"), simple_frame(["1", None, "-3"]))
    assert result["out"].to_list() == [Decimal(3), None, Decimal(-1)]


# A computed argument of each type: materialised (so a result claiming a lower stage than
# its argument reads a column that does not exist yet), null where w is null on a taken row,
# and dividing by zero where x = 0, a row the guard `x != 0` does not take.
PROBES = {
    "decimal": "(w / x)",
    "date": "(if (w / x > 0) then d1 else d2)",
    "key": '(if (w / x > 0) then g else "z")',
    "bool": "(w / x > 0)",
}
PLAIN = {"decimal": "x", "date": "d1", "key": "g", "bool": "x > 1"}
CONSTANT = {"decimal": "1.5", "date": "pe", "key": '"k"', "bool": "true"}
SIGNATURES = {
    "min": ["decimal", "decimal", "decimal"],
    "max": ["decimal", "decimal"],
    "abs": ["decimal"],
    "not": ["bool"],
    "round2": ["decimal"],
    "clip": ["decimal", "decimal", "decimal"],
    "cap_floor": ["decimal", "decimal", "decimal"],
    "hurdle": ["decimal", "decimal"],
    "pct": ["decimal"],
    "pct_change": ["decimal", "decimal"],
    "days_between": ["date", "date"],
    "prorate": ["date", "date", "date", "date"],
    "sum_over": ["decimal", "key"],
    "count_over": ["key"],
    "allocate": ["decimal", "decimal", "key"],
}


def _probed(name: str, types: list[str], probed: int, others: dict[str, str]) -> str:
    """`name(...)` with the probe as argument `probed` and `others` for the rest."""
    args = [PROBES[t] if i == probed else others[t] for i, t in enumerate(types)]
    return f"{name}({', '.join(args)})"


PROBED_CALLS = list(
    dict.fromkeys(
        [
            _probed(name, types, probed, others)
            for others in (PLAIN, CONSTANT)
            for name, types in SIGNATURES.items()
            for probed in range(len(types))
        ]
        + [
            f"round({PROBES['decimal']}, 3)",
            f"min({PROBES['date']}, d2)",
            f"max(d1, {PROBES['date']})",
            f"sum_over({PROBES['decimal']})",
            f"allocate({PROBES['decimal']}, x)",
            f"allocate(x, {PROBES['decimal']})",
            "count_over()",
            'count_over("k")',
            'sum_over(w, "k")',
        ]
    )
)
PROBE_ROWS = [
    ("E1", "F1", "2", "3", "a", date(2025, 3, 1), date(2025, 9, 30)),
    ("E2", "F1", "0", "1", "b", date(2025, 1, 1), date(2025, 2, 1)),
    ("E3", "F2", "-4", None, "a", None, date(2025, 6, 30)),
    ("E4", "F2", "5", "-2.5", None, date(2025, 7, 1), None),
    ("E5", "F1", None, "2", "b", date(2025, 2, 1), date(2025, 3, 1)),
    ("E6", "F2", "8", "0.125", "b", date(2025, 12, 1), date(2025, 4, 1)),
    ("E7", "F1", "3", "7", "a", date(2024, 12, 1), date(2026, 1, 31)),
]


def _wrapped(call: str) -> str:
    """The call under the guard `x != 0`, read by a consumer that leaves out the null test of
    a value that promises to hold no null (so a wrong promise shows as a non-null result)."""
    if call.startswith("not("):
        return f"if (x != 0) then (if ({call}) then 1 else 2) else 0"
    if call.startswith(("min(", "max(")) and "d1" in call:
        return f"if (x != 0) then days_between(d2, min({call}, d2)) else 0"
    return f"if (x != 0) then min({call}, 1000) else 0"


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize("call", PROBED_CALLS)
def test_each_function_with_a_computed_guarded_argument_matches_the_reference(
    call: str, exact: bool
) -> None:
    """Per function and argument: the argument's diagnostics stay on taken rows, a null from
    it makes the result null, the result waits for the stage that computes the argument,
    and untaken rows take no part in an aggregate; in fast and in exact mode."""
    same_in_mode(exact, plan_of(_wrapped(call)), frame_of(PROBE_ROWS))


MAX = Decimal("9999999999999999999999999999.9999999999")


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize("places", [0, 2, 4, 9, 10])
def test_rounding_up_to_1e28_overflows_from_the_tie_on(places: int, exact: bool) -> None:
    """`round(x, n)` overflows exactly when it rounds up to 1e28: from 1e28 - 0.5 * 10^-n on
    (half-even: the last kept digit is a 9, so the tie rounds up), and only on taken rows.
    One unit (1e-10) below, the result is the largest n-place value. n = 10 never rounds."""
    if places < 10:
        tie = Decimal("9" * 28 + "." + "9" * places + "5")  # 1e28 - 0.5 * 10^-n, exactly
        below = Context(prec=50).subtract(tie, Decimal("0.0000000001"))  # one unit below
    else:
        tie = below = MAX
    wide = Context(prec=50)
    call = "round2(x)" if places == 2 else f"round(x, {places})"
    plan = plan_of(f"if (w > 0) then {call} else 0")

    def row(ref: str, x: Decimal | None, taken: bool) -> tuple:
        return (ref, "F1", None if x is None else str(x), "1" if taken else "0", "a", None, None)

    safe = [row("E1", below, True), row("E2", below.copy_negate(), True), row("E3", None, True)]
    untaken = [row("E4", tie, False), row("E5", tie.copy_negate(), False)]
    result = same_in_mode(exact, plan, frame_of(safe + untaken))
    assert result is not None and result["out"][0] == wide.quantize(below, Decimal(10) ** -places)
    taken = [row("E4", tie, False), row("E5", tie.copy_negate(), True)]
    assert (same_in_mode(exact, plan, frame_of(safe + taken)) is None) == (places < 10)


# Rows with g = "b" are not taken by `if (g == "a") ...`; on them every operation overflows
# (or divides by zero). The taken rows are in range, except the last two (E10: x - w, x * w
# and x ^ 3 overflow; E8: x / w, x * x and x ^ 3 do).
MOST = str(MAX)
GUARDED_ROWS = [
    ("E1", "F1", "7", "2", "a", None, None),
    ("E2", "F1", MOST, MOST, "b", None, None),
    ("E3", "F1", MOST, "-" + MOST, "b", None, None),
    ("E4", "F1", MOST, "0.5", "b", None, None),
    ("E5", "F1", MOST, "0", "b", None, None),
    ("E6", "F1", "-" + MOST, "0.5", "b", None, None),
    ("E7", "F1", "-7.5", "3", "a", None, None),
    ("E9", "F1", None, "1", "a", None, None),
    ("E11", "F1", "1", None, "a", None, None),
    ("E10", "F1", "9000000000000000000000000000", "-2000000000000000000000000000", "a", None, None),
    ("E8", "F1", "6000000000000000000000000000", "0.5", "a", None, None),
]


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize(
    "operation",
    [
        "x + w",
        "x - w",
        "x * w",
        "x / w",
        "x % w",
        "x ^ 3",
        "-x * w",
        "pct_change(x, w)",
        "sum_over(x)",
        "sum_over(x, fund_ref)",
        "allocate(1, x)",
        "x * x",
    ],
)
def test_overflow_and_division_by_zero_count_only_on_taken_rows(
    operation: str, exact: bool
) -> None:
    """An operation that overflows or divides by zero on rows that do not take it records
    nothing there (ENGINE.md §5, docs/engine.md §2, §11-§12); on taken rows the run fails
    naming the first of them, as the reference does."""
    plan = plan_of(f'if (g == "a") then {operation} else 0')
    same_in_mode(exact, plan, frame_of(GUARDED_ROWS[:-2]))
    same_in_mode(exact, plan, frame_of(GUARDED_ROWS))


SIX = "6000000000000000000000000000"


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize("guarded", [False, True])
def test_allocate_weight_sum_overflow_names_the_groups_first_usable_row(
    exact: bool, guarded: bool
) -> None:
    """Regression (found by the mutation run): the reference checks a group's weight sum on
    every included row of the group, so an overflowing sum names the group's first such row
    (here E2: E1's weight is negative, so E1 is excluded), not the row where the running sum
    crosses 1e28 (E5), which the Polars backend used to name. A group whose pools differ
    shares nothing and sums nothing (F3), and F2's weights add up to just below 1e28."""
    below = str(Context(prec=50).subtract(Decimal(10) ** 28 - Decimal(SIX), Decimal("1e-10")))
    rows = [
        ("E0", "F2", "0.05", SIX, "a", None, None),
        ("E1", "F1", "0.07", "-1", "a", None, None),
        ("E2", "F1", "0.07", "1", "a", None, None),
        ("E3", "F3", "0.01", SIX, "a", None, None),
        ("E4", "F2", "0.05", below, "a", None, None),
        ("E5", "F1", "0.07", SIX, "a", None, None),
        ("E6", "F3", "0.02", SIX, "a", None, None),
        ("E7", "F1", "0.07", SIX, "a", None, None),
    ]
    plan = plan_of("allocate(x, w, fund_ref)", "w != 1" if guarded else None)
    assert same_in_mode(exact, plan, frame_of(rows[:6])) is not None
    with pytest.raises(ValueOverflow) as raised:
        fast.evaluate(plan, frame_of(rows))
    assert raised.value.employee_ref == ("E5" if guarded else "E2")
    same_in_mode(exact, plan, frame_of(rows))


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
def test_allocate_over_weights_that_sum_to_zero_in_both_modes(exact: bool) -> None:
    """F1's weights add up to 0 (division_by_zero on its rows, no share); F2 shares its
    pool; in exact mode too, where the weight sum also carries an overflow test."""
    rows = [
        ("E1", "F1", "100", "0", "a", None, None),
        ("E2", "F1", "100", "0", "a", None, None),
        ("E3", "F2", "10", "1", "a", None, None),
        ("E4", "F2", "10", "3", "a", None, None),
    ]
    result = same_in_mode(exact, plan_of("allocate(x, w, fund_ref)"), frame_of(rows))
    assert result is not None
    assert codes(result)[:2] == [["division_by_zero", "null_payout"]] * 2
    assert result["out"].to_list()[2:] == [Decimal("2.5"), Decimal("7.5")]


EMPLOYMENTS = [
    (None, None),
    (date(2024, 6, 1), date(2024, 12, 31)),  # ends before the period
    (date(2026, 1, 1), date(2026, 3, 1)),  # starts after it
    (date(2025, 3, 1), date(2025, 3, 1)),  # one day
    (date(2024, 1, 1), date(2026, 12, 31)),  # covers it
    (date(2025, 7, 1), None),  # joiner
    (None, date(2025, 1, 31)),  # leaver
    (date(2025, 12, 31), date(2025, 1, 1)),  # start after end
]


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize(
    "period",
    [
        "if (x > 0) then ps else pe, if (x > 0) then pe else backwards",  # per row; x <= 0: invalid
        "if (1 / 0 > 0) then ps else pe, pe",  # a constant, null period start
        "ps, if (1 / 0 > 0) then ps else pe",  # a constant, null period end
    ],
)
def test_prorate_over_a_computed_period_matches_the_reference(period: str, exact: bool) -> None:
    """The general `prorate` (a period that is not a literal, valid date pair): employments
    before, after, inside and around the period, open-ended, backwards; invalid periods."""
    rows = [
        (f"E{i}{sign}", "F1", sign, None, None, start, end)
        for i, (start, end) in enumerate(EMPLOYMENTS)
        for sign in ("1", "-1")
    ]
    rows.append(("E9", "F1", None, None, None, date(2025, 2, 1), None))
    same_in_mode(exact, plan_of(f"prorate(d1, d2, {period})"), frame_of(rows))


MAX_LESS_ONE = "9999999999999999999999999998.9999999999"
EXACT_PAIRS = [
    ("0.0000000001", MOST),  # a + b: one unit beyond MAX
    ("1", MAX_LESS_ONE),  # a + b = MAX exactly; a - b = -MAX + 2
    ("-0.0000000001", "-" + MOST),  # a + b: one unit below -MAX
    ("-1", "-" + MAX_LESS_ONE),  # a + b = -MAX exactly
    ("1", "-" + MAX_LESS_ONE),  # a - b = MAX exactly
    ("-1", MAX_LESS_ONE),  # a - b = -MAX exactly
    ("0", MOST),
    ("-0.0000000001", "0"),
    ("1999999999.9999999999", "1999999999.9999999999"),  # limb carries in the product
    ("98765432109.8765432109", "-12345678901.2345678901"),  # both limbs of both operands
    ("350000000000000", "100000000000000"),  # a * b = 3.5e28: far beyond MAX
    ("-10000000000", "10000000000.0000000001"),  # a * b = -1e20 - 1e-10 * 1e10
    ("0.0000000003", "0.5"),  # a * b: a tie, rounded to even (up)
    ("0.0000000001", "-0.5"),  # a * b: a tie, rounded to even (down)
    ("12345678901234567.89", "0.0000000007"),
    ("5000000000000000000000000000", "0.5"),  # a / b = 1e28 exactly: overflows
    ("-4999999999999999999999999999.9999999999", "0.5"),  # a / b = -(MAX - 1e-10)
    (MOST, "0.9999999999"),  # a / b just beyond MAX
    (MOST, "1"),  # a / b = MAX; the divisor is no longer below 1
    ("-1000000000000000000", "0.0000000001"),  # a / b = -1e28: the smallest divisor
    ("7", "2"),  # a divisor above 1: b * 1e28 would not fit Int128
]


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize("operation", ["x + w", "x - w", "x * w", "x / w", "x % w"])
@pytest.mark.parametrize(("a", "b"), EXACT_PAIRS)
def test_arithmetic_at_the_limits_matches_the_reference(
    a: str, b: str, operation: str, exact: bool
) -> None:
    """R10 arithmetic where exact mode's overflow tests and limb products have their edges:
    sums and differences at exactly ±MAX and one unit beyond, products with carries between
    19-digit limbs, far beyond MAX, and ties; in fast and in exact mode."""
    rows = [("E1", "F1", "2", "3", "a", None, None), ("E2", "F1", a, b, "a", None, None)]
    same_in_mode(exact, plan_of(operation), frame_of(rows))


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize(
    "aggregate", ["sum_over(x * w)", "sum_over(x * w, fund_ref)", "allocate(1, x * w)"]
)
def test_an_overflowed_value_counts_as_zero_in_its_steps_aggregate(
    aggregate: str, exact: bool
) -> None:
    """Regression (found by the mutation run): the reference notes an out-of-range value
    and counts it as 0 for the rest of the step (docs/engine.md §12), so the run names the
    row whose value overflowed (E2), not the first row of its group (E1) as the reference
    before engine-core 15b3e89 did and the Polars backend's `sum_over` still did."""
    rows = [("E1", "F1", MOST, "1", "a", None, None), ("E2", "F1", MOST, "2", "a", None, None)]
    with pytest.raises(ValueOverflow) as raised:
        fast.evaluate(plan_of(aggregate), frame_of(rows))
    assert raised.value.employee_ref == "E2"
    same_in_mode(exact, plan_of(aggregate), frame_of(rows))


FIVE = "5000000000000000000000000000"
LIMB_CARRY = "12345678901.2345678901"  # low 20-digit limbs of several of these carry
SUM_CASES = {
    "MAX": [FIVE, str(Context(prec=50).subtract(MAX, Decimal(FIVE)))],
    "1e28": [FIVE, FIVE],
    "-MAX": ["-" + FIVE, "-" + str(Context(prec=50).subtract(MAX, Decimal(FIVE)))],
    "-1e28": ["-" + FIVE, "-" + FIVE],
    "carries": [LIMB_CARRY] * 9 + ["-" + LIMB_CARRY, "0.0000000001"],
    "negative": ["-" + LIMB_CARRY, "3", None],
}


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize("expr", ["sum_over(x)", "sum_over(x, fund_ref)", "allocate(1, x)"])
@pytest.mark.parametrize("case", list(SUM_CASES))
def test_sums_at_the_limits_match_the_reference(case: str, expr: str, exact: bool) -> None:
    """Exact mode sums on 20-digit limbs: a total of exactly ±MAX is in range, exactly
    ±1e28 overflows (naming the group's first row), and carries between the limbs of
    positive and negative values give the exact total; in fast and exact mode."""
    rows = [
        (f"E{i}", "F1", value, "1", "a", None, None)
        for i, value in enumerate(SUM_CASES[case], start=1)
    ]
    same_in_mode(exact, plan_of(expr), frame_of(rows))


def test_aggregates_by_a_constant_key_count_every_row() -> None:
    """A literal key puts every row in one group: a literal summed per row, counted rows."""
    plan = plan_of('sum_over(1, "k") + count_over("k") * 10 + sum_over(w, "k") * 100')
    result = same(plan, frame_of(PROBE_ROWS))
    assert result["out"][0] == 7 + 70 + 100 * sum(Decimal(r[3]) for r in PROBE_ROWS if r[3])


NULL_PROMISES = {
    "if_null_free_condition": "if (w > 0) then x else 0",  # the then branch may be null
    "if_nullable_condition": "if (x > 0) then 1 else 2",  # the condition may be null
    "if_constant_null_condition": "days_between(if (1 / 0 > 0) then d1 else d2, d2)",
}


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
def test_steps_and_ifs_that_can_be_null_say_so_to_later_steps(exact: bool) -> None:
    """A later step leaves out the null test of a value that promises no null; an `if` or a
    guarded step is null where its condition is null or the branch it takes is, so it must
    not promise otherwise (else `min(s, 1000)` gives 1000 where the reference gives null)."""
    steps = [{"order": 1, "name": "guarded_x", "expr": "x", "condition": "w > 0"}]
    steps.append({"order": 2, "name": "guard_may_be_null", "expr": "1", "condition": "x > 0"})
    steps += [
        {"order": 3 + i, "name": n, "expr": e} for i, (n, e) in enumerate(NULL_PROMISES.items())
    ]
    names = [step["name"] for step in steps]
    steps += [
        {"order": 10 + i, "name": f"min_{n}", "expr": f"min({n}, 1000)"}
        for i, n in enumerate(names)
    ]
    document = {
        "name": "null promises",
        "effective_from": "2025-01-01",
        "currency": "USD",
        "inputs": INPUTS,
        "parameters": PARAMETERS,
        "steps": steps,
        "payout": "min_guarded_x",
    }
    plan = compile_plan(validate_document(document))
    rows = [(ref, fund, x, w or "1", g, d1, d2) for ref, fund, x, w, g, d1, d2 in PROBE_ROWS]
    result = same_in_mode(exact, plan, frame_of(rows))
    assert result is not None and result["min_guarded_x"].null_count() == 1


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
def test_allocate_gives_a_cent_to_a_larger_remainder_before_any_lower_employee_ref(
    exact: bool,
) -> None:
    """70 rows: 69 of weight 1 and the last employee_ref (E69) of weight 1.0000000004, whose
    remainder is larger by 1e-10 only. The one leftover cent goes to E69: the remainder
    decides before employee_ref however many rows rank ahead by ref."""
    rows = [(f"E{i:02d}", "F1", "1.41", "1", "a", None, None) for i in range(69)]
    rows.append(("E69", "F1", "1.41", "1.0000000004", "a", None, None))
    result = same_in_mode(exact, plan_of("allocate(x, w, fund_ref)"), frame_of(rows))
    assert result is not None and result["out"][69] == Decimal("0.03")
    assert set(result["out"][:69].to_list()) == {Decimal("0.02")}


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize(
    "aggregate", ["sum_over(x, fund_ref)", "sum_over(x)", "allocate(0.01, x, fund_ref)"]
)
def test_an_overflowing_group_total_names_its_first_taking_row(aggregate: str, exact: bool) -> None:
    """A group total beyond 1e28 fails the run naming the group's first row that takes the
    call (E2), not an earlier row of the same group that does not (E1), as the reference
    does."""
    rows = [
        ("E1", "F1", SIX, "1", "b", None, None),
        ("E2", "F1", SIX, "1", "a", None, None),
        ("E3", "F1", SIX, "1", "a", None, None),
    ]
    plan = plan_of(f'if (g == "a") then {aggregate} else 0')
    assert same_in_mode(exact, plan, frame_of(rows)) is None
    with pytest.raises(ValueOverflow) as raised:
        fast.evaluate(plan, frame_of(rows))
    assert raised.value.employee_ref == "E2"


SHORT_CIRCUIT_ROWS = [
    ("E1", "F1", "2", "3", "a", None, None),
    ("E2", "F1", "0", "1", "a", None, None),
    ("E3", "F1", "0", None, "a", None, None),
    ("E4", "F1", "0", "1", "b", None, None),
    ("E5", "F1", None, "2", "a", None, None),
    ("E6", "F1", "0", None, "b", None, None),
]


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize(
    "condition",
    [
        "(x != 0) && (w / x > 0)",  # right side not taken where x = 0
        "(w > 0) && (1 / x > 0)",  # taken where w is null (left null), so x = 0 divides by 0
        "(1 / x > 0) && true",  # the left side is taken only where the `if` is
        "(x == 0) || (w / x > 0)",
        "(w < 0) || (1 / x > 0)",
        "(x != 0) && (sum_over(w) > 0)",  # an aggregate over the rows taking the right side
        '(g != "b") && (w > 0)',  # a left side without nulls, a right side with
        '(g == "b") || (w > 0)',
        '(w > 0) || (g == "b")',  # a left side with nulls, a right side without
    ],
)
def test_short_circuits_take_the_right_side_where_the_left_does_not_decide(
    condition: str, exact: bool
) -> None:
    """docs/engine.md §2: `l && r` takes r where l is not false, `l || r` where l is not
    true (null included), and both only where the expression itself is taken."""
    plan = plan_of(f'if (g == "a") then (if ({condition}) then 1 else 2) else 0')
    same_in_mode(exact, plan, frame_of(SHORT_CIRCUIT_ROWS))


@pytest.mark.parametrize("exact", [False, True], ids=["fast", "exact"])
@pytest.mark.parametrize(
    "condition", ["(x != 0) && (sum_over(w) > 0)", "(x == 0) || (sum_over(w) > 0)"]
)
def test_an_aggregate_right_of_a_short_circuit_waits_for_the_left_side(
    condition: str, exact: bool
) -> None:
    """Without a guard around it, the rows taking the right side come from the left side's
    column alone, so the aggregate must be staged after it."""
    same_in_mode(exact, plan_of(f"if ({condition}) then 1 else 2"), frame_of(SHORT_CIRCUIT_ROWS))
