"""The Decimal reference backend: R10 arithmetic, nulls, guards, every catalog function."""

import math
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.backends.base import ValueOverflow
from engine.backends.reference import evaluate, explain
from tests.engine.budget import examples
from tests.engine.oracle import exact_r10
from tests.engine.plans import frame, plan


def run(
    expr: str,
    inputs: dict[str, str] | None = None,
    rows: list[dict] | None = None,
    condition: str | None = None,
    default: str | None = None,
):
    """Evaluate `expr` as step `s` over `rows`; returns (R10 texts, diagnostic codes)."""
    inputs = inputs or {}
    rows = rows or [{}]
    step = {"order": 1, "name": "s", "expr": expr}
    if condition is not None:
        step["condition"] = condition
    if default is not None:
        step["default"] = default
    compiled = plan([step, {"order": 2, "name": "p", "expr": "1"}], inputs, payout="p")
    result = evaluate(compiled, frame(inputs, rows)).frame
    values = result["s"].cast(pl.String).to_list()
    codes = [[d["code"] for d in row] for row in result["diagnostics"].to_list()]
    return values, codes


def value(expr: str, **inputs) -> str | None:
    """The single R10 text value of `expr` with decimal inputs given as keywords."""
    values, _ = run(expr, {k: "decimal" for k in inputs}, [inputs])
    return values[0]


WORKED_EXAMPLES = [
    ("2 / 3 * 3", {}, "2.0000000001"),
    ("1.01 ^ 12", {}, "1.1268250302"),
    ("-7 % 3", {}, "2.0000000000"),
    ("7 % -3", {}, "-2.0000000000"),
    ("round2(2.675)", {}, "2.6800000000"),
    ("round2(-0.125)", {}, "-0.1200000000"),
    ("0.0000000001 * 0.5", {}, "0.0000000000"),
    ("0.0000000003 * 0.5", {}, "0.0000000002"),
    ("100000 / 7", {}, "14285.7142857143"),
    ("pct(12.5)", {}, "0.1250000000"),
    ("-(x * 0)", {"x": 5}, "0.0000000000"),
    ("max(a, b)", {"a": 1, "b": None}, None),
    ("cap_floor(x, 100, 200)", {"x": 150}, "100.0000000000"),
    ("clip(x, 200, 100)", {"x": 150}, "100.0000000000"),
]


@pytest.mark.parametrize(("expr", "inputs", "expected"), WORKED_EXAMPLES)
def test_engine_md_worked_examples(expr, inputs, expected):
    assert value(expr, **inputs) == expected


def test_worked_example_pct_change_by_zero_and_its_guard():
    inputs = {"cur": "decimal", "prev": "decimal"}
    rows = [{"cur": 110, "prev": 0}]
    assert run("pct_change(cur, prev)", inputs, rows) == ([None], [["division_by_zero"]])
    guarded = "if(prev == 0) then 0 else pct_change(cur, prev)"
    assert run(guarded, inputs, rows) == (["0.0000000000"], [[]])


def test_worked_example_prorate_joiner():
    inputs = {"st": "date", "e": "date", "ps": "date", "pe": "date"}
    rows = [{"st": "2025-07-01", "e": None, "ps": "2025-01-01", "pe": "2025-12-31"}]
    assert run("prorate(st, e, ps, pe)", inputs, rows)[0] == ["0.5041095890"]


def test_worked_example_allocate_equal_weights():
    rows = [{"employee_ref": f"E{i}", "w": 1} for i in (1, 2, 3)]
    values, _ = run("allocate(100, w)", {"w": "decimal"}, rows)
    assert values == ["33.3400000000", "33.3300000000", "33.3300000000"]


def test_worked_example_allocate_remainder_ties_by_employee_ref():
    rows = [
        {"employee_ref": "B", "w": 2},
        {"employee_ref": "A", "w": 1},
        {"employee_ref": "C", "w": 1},
        {"employee_ref": "D", "w": 3},
    ]
    values, _ = run("allocate(1000, w)", {"w": "decimal"}, rows)
    assert values == ["285.7100000000", "142.8600000000", "142.8600000000", "428.5700000000"]


@pytest.mark.parametrize(
    ("x", "expected"),
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
        ("0.0051", "0.01"),
        ("-2.675", "-2.68"),
    ],
)
def test_round2_is_bankers_rounding(x, expected):
    assert value("round2(x)", x=x) == expected + "00000000"


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        ("0.0000000005 * 0.5", "0.0000000002"),
        ("0.0000000007 * 0.5", "0.0000000004"),
        ("-0.0000000003 * 0.5", "-0.0000000002"),
        ("-0.0000000001 * 0.5", "0.0000000000"),
        ("0.0000000001 / 2", "0.0000000000"),
        ("0.0000000003 / 2", "0.0000000002"),
        ("-0.0000000003 / 2", "-0.0000000002"),
        ("-0.0000000001 / 2", "0.0000000000"),
        ("1 / 3", "0.3333333333"),
        ("2 / 3", "0.6666666667"),
        ("-2 / 3", "-0.6666666667"),
        ("1 / 8", "0.1250000000"),
        ("0.0000000015 * 0.1", "0.0000000002"),
        ("0.0000000025 * 0.1", "0.0000000002"),
    ],
)
def test_ties_at_the_tenth_decimal_round_half_even(expr, expected):
    assert value(expr) == expected


def test_arithmetic_is_exact_at_numeric_38_10_scale():
    # 38 significant digits: precision 28 would round these
    assert value("x + 0.0000000001", x="999999999999999999999999.9999999999") == (
        "1000000000000000000000000.0000000000"
    )
    assert value("-x", x="123456789012345678901234567.1234567891") == (
        "-123456789012345678901234567.1234567891"
    )
    assert value("x * 3 / 3", x="123456789012345678.123456789") == "123456789012345678.1234567890"
    assert value("x / 3", x="1000000000000000000000000") == "333333333333333333333333.3333333333"
    assert (
        value("x * x", x="99999999999999.9999999999") == "9999999999999999999999980000.0000000000"
    )


def test_modulo_is_floored_and_exact():
    assert value("-7.5 % 2") == "0.5000000000"
    assert value("7.5 % -2") == "-0.5000000000"
    assert value("-6 % 3") == "0.0000000000"
    assert value("x % 0.0000000003", x="1") == "0.0000000001"


def test_power_is_repeated_rounded_multiplication():
    assert value("x ^ 0", x="0") == "1.0000000000"
    assert value("x ^ 1", x="-2.5") == "-2.5000000000"
    assert value("x ^ 3", x="-2") == "-8.0000000000"
    # (0.00001 ^ 2) rounds to 0.0000000001, then * 0.00001 rounds to 0
    assert value("x ^ 3", x="0.00001") == "0.0000000000"
    # 0.5 ^ 31 is 4.66e-10 exactly, but step by step: ...09 * 0.5 = ...045 -> ...04
    assert value("0.5 ^ 31") == "0.0000000004"
    assert value("0.5 ^ 34") == "0.0000000000"  # ...01 * 0.5 is a tie: half to even


def test_no_negative_zero_anywhere():
    for expr in ("-x", "x * -1", "-x / 7", "round2(-x)", "abs(-x) * -1", "-x % 3", "-(-x)"):
        assert value(expr, x="0") == "0.0000000000", expr
    assert value("round2(x)", x="-0.004") == "0.0000000000"


def test_division_and_modulo_by_zero_are_null_with_a_diagnostic():
    inputs = {"x": "decimal", "y": "decimal"}
    rows = [{"x": 1, "y": 0}, {"x": None, "y": 0}, {"x": 1, "y": None}, {"x": 6, "y": 4}]
    assert run("x / y", inputs, rows) == (
        [None, None, None, "1.5000000000"],
        [["division_by_zero"], [], [], []],
    )
    assert run("x % y", inputs, rows)[1] == [["division_by_zero"], [], [], []]


def test_nulls_are_strict_for_arithmetic_comparisons_and_functions():
    inputs = {"x": "decimal", "d": "date"}
    rows = [{"x": None, "d": None}]
    for expr in (
        "x + 1",
        "-x",
        "x ^ 2",
        "abs(x)",
        "round2(x)",
        "pct(x)",
        "hurdle(x, 1)",
        "clip(x, 0, 1)",
        "days_between(d, d)",
        "min(1, 2, x)",
    ):
        assert run(expr, inputs, rows) == ([None], [[]]), expr
    assert run("x == 1", inputs, rows) == ([None], [[]])
    assert run("not(x > 1)", inputs, rows) == ([None], [[]])


def test_and_or_are_three_valued():
    inputs = {"a": "bool", "b": "bool"}
    cases = [
        (None, False, "false", "null"),
        (None, True, "null", "true"),
        (False, None, "false", "null"),
        (True, None, "null", "true"),
        (None, None, "null", "null"),
        (True, False, "false", "true"),
    ]
    rows = [{"a": a, "b": b} for a, b, _, _ in cases]
    ands, _ = run("a && b", inputs, rows)
    ors, _ = run("a || b", inputs, rows)
    assert [v or "null" for v in ands] == [c[2] for c in cases]
    assert [v or "null" for v in ors] == [c[3] for c in cases]


def test_short_circuit_masks_diagnostics_on_the_right_side():
    inputs = {"cur": "decimal", "prev": "decimal"}
    rows = [{"cur": 110, "prev": 0}, {"cur": 110, "prev": 100}, {"cur": 105, "prev": 100}]
    assert run("prev != 0 && cur / prev > 1.05", inputs, rows) == (
        ["false", "true", "false"],
        [[], [], []],
    )
    assert run("prev == 0 || cur / prev > 1.05", inputs, rows) == (
        ["true", "true", "false"],
        [[], [], []],
    )
    # without the guard the division is taken on the first row
    assert run("cur / prev > 1.05", inputs, rows)[1] == [["division_by_zero"], [], []]


def test_if_with_null_condition_is_null_and_takes_neither_branch():
    inputs = {"c": "bool", "x": "decimal"}
    rows = [{"c": None, "x": 0}, {"c": True, "x": 0}, {"c": False, "x": 0}]
    values, codes = run("if (c) then 1 / x else 2 / x", inputs, rows)
    assert values == [None, None, None]
    assert codes == [[], ["division_by_zero"], ["division_by_zero"]]
    values, codes = run("if (c) then 1 else 2", inputs, rows)
    assert values == [None, "1.0000000000", "2.0000000000"]


def test_step_condition_true_false_null():
    inputs = {"g": "bool", "x": "decimal"}
    rows = [{"g": True, "x": 0}, {"g": False, "x": 0}, {"g": None, "x": 0}, {"g": True, "x": 4}]
    values, codes = run("10 / x", inputs, rows, condition="g", default="-1")
    assert values == [None, "-1.0000000000", None, "2.5000000000"]
    assert codes == [["division_by_zero"], [], [], []]


def test_omitted_defaults_by_type():
    inputs = {"g": "bool", "t": "text", "d": "date", "x": "decimal"}
    rows = [{"g": False, "t": "a", "d": "2025-01-01", "x": 1}]
    assert run("x", inputs, rows, condition="g")[0] == ["0.0000000000"]
    assert run("g", inputs, rows, condition="g")[0] == ["false"]
    assert run("t", inputs, rows, condition="g")[0] == [""]
    assert run("d", inputs, rows, condition="g")[0] == [None]
    assert run("d", inputs, rows, condition="g", default='"2024-12-31"')[0] == ["2024-12-31"]


def test_diagnostics_only_on_taken_rows_inside_nested_branches():
    inputs = {"a": "bool", "b": "bool", "x": "decimal"}
    rows = [
        {"a": True, "b": True, "x": 0},
        {"a": True, "b": False, "x": 0},
        {"a": False, "b": True, "x": 0},
    ]
    _, codes = run("if (a) then (if (b) then 1 / x else 0) else 2", inputs, rows)
    assert codes == [["division_by_zero"], [], []]


def test_min_max_on_decimals_and_dates():
    assert value("min(3, 1, 2)") == "1.0000000000"
    assert value("max(-3, -1, -2)") == "-1.0000000000"
    inputs = {"a": "date", "b": "date"}
    rows = [{"a": "2025-03-01", "b": "2025-02-01"}]
    assert run("max(a, b)", inputs, rows)[0] == ["2025-03-01"]
    assert run("min(a, b)", inputs, rows)[0] == ["2025-02-01"]


def test_abs_not_round_hurdle_pct():
    assert value("abs(x)", x="-1.5") == "1.5000000000"
    assert run("not(b)", {"b": "bool"}, [{"b": True}, {"b": None}])[0] == ["false", None]
    assert value("round(x, 0)", x="2.5") == "2.0000000000"
    assert value("round(x, 0)", x="3.5") == "4.0000000000"
    assert value("round(x, 3)", x="-1.23450") == "-1.2340000000"
    assert value("round(x, 10)", x="1.0000000001") == "1.0000000001"
    assert value("hurdle(x, 0.05)", x="0.0499999999") == "0.0000000000"
    assert value("hurdle(x, 0.05)", x="0.05") == "0.0500000000"
    assert value("hurdle(x, 0.05)", x="-1") == "0.0000000000"
    assert value("pct(x)", x="-0.0000000001") == "0.0000000000"
    assert value("pct(x)", x="-0.0000000150") == "-0.0000000002"


def test_clip_and_cap_floor_bounds():
    assert value("clip(x, 0, 10)", x="-1") == "0.0000000000"
    assert value("clip(x, 0, 10)", x="11") == "10.0000000000"
    assert value("clip(x, 0, 10)", x="5") == "5.0000000000"
    assert value("cap_floor(x, 10, 0)", x="-1") == "0.0000000000"
    assert value("cap_floor(x, 10, 0)", x="11") == "10.0000000000"


def test_pct_change():
    assert value("pct_change(cur, prev)", cur="110", prev="100") == "0.1000000000"
    assert value("pct_change(cur, prev)", cur="90", prev="-100") == "-1.9000000000"
    assert value("pct_change(cur, prev)", cur="1", prev="3") == "-0.6666666667"
    inputs = {"cur": "decimal", "prev": "decimal"}
    assert run("pct_change(cur, prev)", inputs, [{"cur": None, "prev": 0}]) == ([None], [[]])


def test_days_between():
    inputs = {"a": "date", "b": "date"}
    rows = [
        {"a": "2025-01-01", "b": "2025-12-31"},
        {"a": "2025-03-01", "b": "2025-02-01"},
        {"a": "2024-02-28", "b": "2024-03-01"},
        {"a": "2025-01-01", "b": None},
    ]
    values, _ = run("days_between(a, b)", inputs, rows)
    assert values == ["364.0000000000", "-28.0000000000", "2.0000000000", None]


def test_prorate_edge_cases():
    inputs = {"st": "date", "e": "date", "ps": "date", "pe": "date"}
    year = {"ps": "2025-01-01", "pe": "2025-12-31"}
    rows = [
        {"st": None, "e": None, **year},
        {"st": "2024-06-01", "e": "2026-01-31", **year},
        {"st": "2025-12-31", "e": None, **year},
        {"st": "2025-03-01", "e": "2025-02-01", **year},
        {"st": "2026-01-01", "e": None, **year},
        {"st": None, "e": None, "ps": "2025-02-01", "pe": "2025-01-31"},
        {"st": None, "e": None, "ps": None, "pe": "2025-01-31"},
        {"st": None, "e": None, "ps": "2024-01-01", "pe": "2024-12-31"},
        {"st": "2024-12-31", "e": None, "ps": "2024-01-01", "pe": "2024-12-31"},
    ]
    values, codes = run("prorate(st, e, ps, pe)", inputs, rows)
    assert values == [
        "1.0000000000",
        "1.0000000000",
        "0.0027397260",
        "0.0000000000",
        "0.0000000000",
        None,
        None,
        "1.0000000000",
        "0.0027322404",
    ]
    assert codes[5] == ["invalid_period"]
    assert codes[6] == []


def test_sum_over_and_count_over_whole_set_and_groups():
    inputs = {"x": "decimal", "k": "text"}
    rows = [
        {"x": 1, "k": "a"},
        {"x": 2, "k": "b"},
        {"x": None, "k": "a"},
        {"x": 4, "k": None},
        {"x": None, "k": "c"},
    ]
    assert run("sum_over(x)", inputs, rows)[0] == ["7.0000000000"] * 5
    assert run("sum_over(x, k)", inputs, rows)[0] == [
        "1.0000000000",
        "2.0000000000",
        "1.0000000000",
        None,
        "0.0000000000",
    ]
    assert run("count_over()", inputs, rows)[0] == ["5.0000000000"] * 5
    assert run("count_over(k)", inputs, rows)[0] == [
        "2.0000000000",
        "1.0000000000",
        "2.0000000000",
        None,
        "1.0000000000",
    ]


def test_aggregates_see_only_the_rows_that_take_them():
    inputs = {"x": "decimal", "eligible": "bool"}
    rows = [
        {"x": 10, "eligible": True},
        {"x": 20, "eligible": False},
        {"x": 30, "eligible": True},
        {"x": 40, "eligible": None},
    ]
    values, _ = run("if (eligible) then sum_over(x) else 0", inputs, rows)
    assert values == ["40.0000000000", "0.0000000000", "40.0000000000", None]
    values, _ = run("count_over()", inputs, rows, condition="eligible")
    assert values == ["2.0000000000", "0.0000000000", "2.0000000000", None]
    values, _ = run("allocate(100, x)", inputs, rows, condition="eligible")
    assert values == ["25.0000000000", "0.0000000000", "75.0000000000", None]


def test_allocate_groups_exclusions_and_diagnostics():
    inputs = {"w": "decimal", "pool": "decimal", "k": "text"}
    rows = [
        {"employee_ref": "A", "w": 1, "pool": 10, "k": "f1"},
        {"employee_ref": "B", "w": 3, "pool": 10, "k": "f1"},
        {"employee_ref": "C", "w": -1, "pool": 10, "k": "f1"},
        {"employee_ref": "D", "w": None, "pool": 10, "k": "f1"},
        {"employee_ref": "E", "w": 0, "pool": 5, "k": "f2"},
        {"employee_ref": "F", "w": 0, "pool": 5, "k": "f2"},
        {"employee_ref": "G", "w": 1, "pool": 5, "k": "f3"},
        {"employee_ref": "H", "w": 1, "pool": 6, "k": "f3"},
        {"employee_ref": "I", "w": 1, "pool": 6, "k": None},
    ]
    values, codes = run("allocate(pool, w, k)", inputs, rows)
    assert values == ["2.5000000000", "7.5000000000"] + [None] * 7
    assert codes == [
        [],
        [],
        ["negative_weight"],
        [],
        ["division_by_zero"],
        ["division_by_zero"],
        ["pool_not_constant"],
        ["pool_not_constant"],
        [],
    ]


def test_allocate_with_sub_cent_pool_hands_out_only_whole_cents():
    rows = [{"employee_ref": r, "w": 1} for r in ("A", "B", "C")]
    values, _ = run("allocate(0.029, w)", {"w": "decimal"}, rows)
    assert values == ["0.0100000000", "0.0100000000", "0.0000000000"]


def test_allocate_negative_pool_floors_toward_minus_infinity():
    rows = [{"employee_ref": r, "w": 1} for r in ("A", "B", "C")]
    values, _ = run("allocate(-100, w)", {"w": "decimal"}, rows)
    # raw -33.3333333333 floors to -33.34 (sum -100.02); the 2 cents left go to A and B
    assert values == ["-33.3300000000", "-33.3300000000", "-33.3400000000"]


def test_overflow_fails_the_run_naming_step_and_first_row():
    inputs = {"x": "decimal"}
    rows = [
        {"employee_ref": "A", "x": 1},
        {"employee_ref": "B", "x": 10**14},
        {"employee_ref": "C", "x": 10**15},
    ]
    with pytest.raises(ValueOverflow) as info:
        run("x * x", inputs, rows)
    assert (info.value.step, info.value.employee_ref) == ("s", "B")
    assert "step 's'" in str(info.value) and "'B'" in str(info.value)


def test_overflow_on_an_untaken_branch_is_not_an_error():
    inputs = {"x": "decimal"}
    rows = [{"x": 1}, {"x": 10**15}]
    values, _ = run("if (x < 1000) then x * x else 0", inputs, rows)
    assert values == ["1.0000000000", "0.0000000000"]


def test_overflow_in_an_intermediate_power_product():
    with pytest.raises(ValueOverflow):
        run("(x ^ 3) * 0", {"x": "decimal"}, [{"x": 10**10}])


def test_null_payout_names_the_first_null_step_and_its_cause():
    compiled = plan(
        [
            {"order": 1, "name": "ratio", "expr": "cur / prev"},
            {"order": 2, "name": "other", "expr": "cur / prev"},
            {"order": 3, "name": "bonus", "expr": "ratio * 100"},
            {"order": 4, "name": "missing", "expr": "x"},
            {"order": 5, "name": "total", "expr": "bonus + missing"},
        ],
        {"cur": "decimal", "prev": "decimal", "x": "decimal"},
        payout="total",
    )
    data = frame(
        {"cur": "decimal", "prev": "decimal", "x": "decimal"},
        [
            {"cur": 1, "prev": 0, "x": 1},
            {"cur": 1, "prev": 1, "x": None},
            {"cur": 1, "prev": 1, "x": 1},
        ],
    )
    diagnostics = evaluate(compiled, data).frame["diagnostics"].to_list()
    assert diagnostics[0] == [
        {"step": "ratio", "code": "division_by_zero", "message": "division by zero"},
        {"step": "other", "code": "division_by_zero", "message": "division by zero"},
        {
            "step": "total",
            "code": "null_payout",
            "message": "payout 'total' is null; first null step 'ratio' (division_by_zero)",
        },
    ]
    assert diagnostics[1] == [
        {
            "step": "total",
            "code": "null_payout",
            "message": "payout 'total' is null; first null step 'missing'",
        },
    ]
    assert diagnostics[2] == []


def test_result_frame_layout_and_types():
    compiled = plan(
        [
            {"order": 2, "name": "b", "expr": "a > 1"},
            {"order": 1, "name": "a", "expr": "x * 2"},
            {"order": 3, "name": "t", "expr": "fund_ref"},
            {"order": 4, "name": "d", "expr": "start"},
        ],
        {"x": "decimal", "start": "date"},
        payout="a",
    )
    data = frame(
        {"x": "decimal", "start": "date"},
        [
            {"employee_ref": "Z", "fund_ref": "F1", "x": 1, "start": "2025-01-02"},
            {"employee_ref": "A", "fund_ref": "F2", "x": 2, "start": None},
        ],
    )
    result = evaluate(compiled, data).frame
    assert result.columns == ["employee_ref", "a", "b", "t", "d", "diagnostics"]
    assert result.schema["a"] == pl.Decimal(38, 10)
    assert result.schema["b"] == pl.Boolean
    assert result.schema["t"] == pl.String
    assert result.schema["d"] == pl.Date
    assert result["employee_ref"].to_list() == ["Z", "A"]
    assert result["d"].to_list() == [date(2025, 1, 2), None]
    assert result["diagnostics"].to_list() == [[], []]


def test_parameters_come_from_the_plan_and_can_be_overridden():
    compiled = plan(
        {"p": "x * rate"},
        {"x": "decimal"},
        parameters=[{"key": "rate", "dtype": "decimal", "value": "0.1"}],
    )
    data = frame({"x": "decimal"}, [{"x": 50}])
    assert evaluate(compiled, data).frame["p"].to_list() == [Decimal("5")]
    overridden = evaluate(compiled, data, {"rate": "0.3"}).frame["p"].to_list()
    assert overridden == [Decimal("15")]
    with pytest.raises(KeyError):
        evaluate(compiled, data, {"nope": 1})


def test_explain_builds_the_tape_in_display_order():
    compiled = plan(
        [
            {"order": 20, "name": "bonus", "expr": "target * mult", "condition": "eligible"},
            {"order": 10, "name": "target", "expr": "salary * 0.1"},
            {"order": 15, "name": "mult", "expr": "if (score >= 0.8) then 1.2 else 0.9"},
            {"order": 30, "name": "share", "expr": "bonus / sum_over(bonus)"},
        ],
        {"salary": "decimal", "score": "decimal", "eligible": "bool"},
        payout="bonus",
    )
    data = frame(
        {"salary": "decimal", "score": "decimal", "eligible": "bool"},
        [
            {"employee_ref": "E1", "salary": 1000, "score": "0.9", "eligible": True},
            {"employee_ref": "E2", "salary": 3000, "score": "0.5", "eligible": True},
        ],
    )
    tape = explain(compiled, data, "E1").to_dict()
    assert {k: v for k, v in tape.items() if k != "steps"} == {
        "employee_ref": "E1",
        "plan_name": "test plan",
        "plan_hash": compiled.plan_hash,
        "payout_step": "bonus",
        "payout": "120.0000000000",
    }
    assert [s["step"] for s in tape["steps"]] == ["target", "mult", "bonus", "share"]
    bonus = tape["steps"][2]
    assert bonus == {
        "step": "bonus",
        "order": 20,
        "expr": "target * mult",
        "condition": "eligible",
        "condition_value": True,
        "bindings": {"eligible": True, "mult": "1.2000000000", "target": "100.0000000000"},
        "result": "120.0000000000",
        "diagnostics": [],
    }
    assert tape["steps"][3]["result"] == "0.3076923077"  # 120 / (120 + 270)
    with pytest.raises(KeyError):
        explain(compiled, data, "E9")


weights = st.decimals(min_value=0, max_value=10**6, places=4, allow_nan=False)


@settings(max_examples=examples(150), deadline=None)
@given(
    pool=st.decimals(min_value=-(10**9), max_value=10**9, places=3, allow_nan=False),
    members=st.lists(st.tuples(weights, st.sampled_from("abc")), min_size=1, max_size=25),
)
def test_allocate_hands_out_the_pool_to_the_cent(pool, members):
    inputs = {"w": "decimal", "k": "text"}
    rows = [{"employee_ref": f"E{i:03d}", "w": w, "k": k} for i, (w, k) in enumerate(members)]
    values, codes = run(f"allocate({pool:f}, w, k)", inputs, rows)
    pool_cents = Decimal(pool).quantize(Decimal("0.01"), rounding=ROUND_FLOOR)
    for group in "abc":
        members_of = [i for i, (_, k) in enumerate(members) if k == group]
        if not members_of:
            continue
        weight_sum = sum(Decimal(members[i][0]) for i in members_of)
        if weight_sum == 0:
            assert all(values[i] is None for i in members_of)
            assert all(codes[i] == ["division_by_zero"] for i in members_of)
            continue
        shares = [Decimal(values[i]) for i in members_of]
        assert sum(shares) == pool_cents
        for i, share in zip(members_of, shares, strict=True):
            assert share == share.quantize(Decimal("0.01"))
            exact = Decimal(pool) * Decimal(members[i][0]) / weight_sum
            assert abs(share - exact) <= Decimal("0.01")


def test_float_input_columns_are_refused():
    compiled = plan({"p": "x * 2"}, {"x": "decimal"})
    data = pl.DataFrame({"employee_ref": ["E1"], "x": [0.1]})
    with pytest.raises(TypeError, match="input column 'x' is Float64"):
        evaluate(compiled, data)


def test_one_entry_per_code_per_step_sorted_alphabetically_in_evaluation_order():
    compiled = plan(
        [
            {"order": 1, "name": "late", "expr": "early + 1 / x"},
            {"order": 2, "name": "early", "expr": "allocate(100, w) + 1 / x + 2 / x"},
        ],
        {"x": "decimal", "w": "decimal"},
        payout="late",
    )
    data = frame({"x": "decimal", "w": "decimal"}, [{"x": 0, "w": -1}])
    (row,) = evaluate(compiled, data).frame["diagnostics"].to_list()
    assert [(d["step"], d["code"]) for d in row] == [
        ("early", "division_by_zero"),
        ("early", "negative_weight"),
        ("late", "division_by_zero"),
        ("late", "null_payout"),
    ]


r10_values = st.decimals(
    min_value=-(10**13), max_value=10**13, places=10, allow_nan=False, allow_infinity=False
)


@settings(max_examples=examples(300), deadline=None)
@given(a=r10_values, b=r10_values)
def test_r10_primitives_match_an_exact_rational_oracle(a, b):
    from engine import r10

    fa, fb = Fraction(a), Fraction(b)
    assert r10.add(a, b) == exact_r10(fa + fb)
    assert r10.sub(a, b) == exact_r10(fa - fb)
    assert r10.mul(a, b) == exact_r10(fa * fb)
    if b != 0:
        assert r10.div(a, b) == exact_r10(fa / fb)
        floored = fa - fb * math.floor(fa / fb)
        assert r10.mod(a, b) == exact_r10(floored)
    for result in (r10.mul(a, b), r10.sub(a, a)):
        assert result.as_tuple().exponent == -10 and not (result.is_zero() and result.is_signed())


def test_tape_carries_each_steps_own_diagnostics_and_parameter_overrides():
    compiled = plan(
        [
            {"order": 1, "name": "ratio", "expr": "x / y"},
            {"order": 2, "name": "scaled", "expr": "x * rate"},
        ],
        {"x": "decimal", "y": "decimal"},
        parameters=[{"key": "rate", "dtype": "decimal", "value": "2"}],
        payout="ratio",
    )
    data = frame({"x": "decimal", "y": "decimal"}, [{"employee_ref": "E1", "x": 3, "y": 0}])
    tape = explain(compiled, data, "E1", {"rate": "5"}).to_dict()
    ratio, scaled = tape["steps"]
    assert ratio["diagnostics"] == [
        {"step": "ratio", "code": "division_by_zero", "message": "division by zero"},
        {
            "step": "ratio",
            "code": "null_payout",
            "message": "payout 'ratio' is null; first null step 'ratio' (division_by_zero)",
        },
    ]
    assert scaled["diagnostics"] == []
    assert scaled["bindings"] == {"rate": "5.0000000000", "x": "3.0000000000"}
    assert scaled["result"] == "15.0000000000"
    with pytest.raises(KeyError, match="employee 'E9' is not in the data"):
        explain(compiled, data, "E9")


def test_rounding_up_to_1e28_is_an_overflow():
    inputs = {"x": "decimal"}
    with pytest.raises(ValueOverflow):
        run("round(x, 0)", inputs, [{"x": "9999999999999999999999999999.5"}])
    with pytest.raises(ValueOverflow):
        run("round2(x)", inputs, [{"x": "9999999999999999999999999999.995"}])
    assert run("round(x, 0)", inputs, [{"x": "9999999999999999999999999999.4"}])[0] == [
        "9999999999999999999999999999.0000000000"
    ]


def test_an_overflowing_value_does_not_make_a_later_aggregate_name_another_row():
    rows = [{"employee_ref": "A", "x": 1}, {"employee_ref": "B", "x": 10**14}]
    with pytest.raises(ValueOverflow) as info:
        run("sum_over(x * x)", {"x": "decimal"}, rows)
    assert info.value.employee_ref == "B"


def test_r10_total_skips_nulls_and_is_exact():
    from engine import r10

    assert r10.total([]) == Decimal(0)
    assert r10.total([None, None]) == Decimal(0)
    values = [Decimal("0.1000000000"), None, Decimal("0.2000000000"), Decimal("-0.3000000000")]
    assert r10.text(r10.total(values)) == "0.0000000000"
    assert r10.text(r10.total([Decimal("1e27"), Decimal("0.0000000001")])) == (
        "1000000000000000000000000000.0000000001"
    )
